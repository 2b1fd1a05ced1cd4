"""The ledger: append-only, hash-chained events, signed at the head.

Each event stores ``payload_digest = sha256(canonical_json(payload))`` and
``hash = sha256(prev_hash ‖ canonical_json(header) ‖ payload_digest)``, the header being
seq, id, at, kind, actor and subject. The chain commits to the payload's digest, not the
payload, so a payload can be redacted (leaving its digest) and the chain still verifies.
The head (seq, hash) is written with every append to a checkpoint carrying an HMAC of
the server secret, so a truncated tail is detected too.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Row, bindparam, func, insert, select, update

from charter.canonical import canonical_json, sha256_hex
from charter.clock import Clock
from charter.errors import InvalidInput, LedgerError, NotFound
from charter.secret import ServerSecret
from charter.store import GENESIS_HASH, Store
from charter.store.driverstatement import DriverStatement
from charter.store.schema import events, ledger_head

REDACTED = "ledger.redacted"
# Built once and run on the driver: appends are in every write transaction.
_EVENT_COLUMNS = ("seq", "id", "at", "kind", "actor", "subject", "payload",
                  "payload_digest", "prev_hash", "hash")
_INSERT_EVENTS = DriverStatement(insert(events), _EVENT_COLUMNS)
_MOVE_HEAD = DriverStatement(update(ledger_head).where(
    ledger_head.c.id == 1, ledger_head.c.seq == bindparam("old_seq"),
    ledger_head.c.hash == bindparam("old_hash")).values(
    seq=bindparam("new_seq"), hash=bindparam("new_hash"), mac=bindparam("new_mac"),
    at=bindparam("new_at")))
"""Moves the head only from where the appended events were chained: a head that is
elsewhere updates no row."""
_MAX_LENGTHS = {"kind": 64, "actor": 128, "subject": 256}
_HELD_HEAD = "charter.ledger.held_head"
"""Key, in a connection's info, of (its transaction, head seq, head hash)."""


def format_time(moment: datetime) -> str:
    """The ledger's one time format: fixed-width ISO 8601 in UTC."""
    if moment.tzinfo is None:
        raise ValueError("ledger times must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def chain_hash(prev_hash: str, header: dict[str, Any], payload_digest: str) -> str:
    data = prev_hash + canonical_json(header) + payload_digest
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Event:
    """One ledger entry. `payload` is None once redacted."""

    seq: int
    id: str
    at: str
    kind: str
    actor: str
    subject: str
    payload: dict[str, Any] | None
    payload_digest: str
    prev_hash: str
    hash: str

    def header(self) -> dict[str, Any]:
        return {"seq": self.seq, "id": self.id, "at": self.at, "kind": self.kind,
                "actor": self.actor, "subject": self.subject}

    def to_json(self) -> dict[str, Any]:
        return {**self.header(), "payload": self.payload,
                "payload_digest": self.payload_digest, "prev_hash": self.prev_hash,
                "hash": self.hash}

    @classmethod
    def from_row(cls, row: Row[Any]) -> Event:
        payload = None if row.payload is None else json.loads(row.payload)
        return cls(row.seq, row.id, row.at, row.kind, row.actor, row.subject, payload,
                   row.payload_digest, row.prev_hash, row.hash)


@dataclass(frozen=True)
class _Chained:
    """Events chained from a head, and the rows that store them."""

    events: list[Event]
    rows: list[dict[str, Any]]


@dataclass(frozen=True)
class EventDraft:
    """An event to append: the ledger fills in seq, id, time and hashes."""

    kind: str
    actor: str
    subject: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class Checkpoint:
    """The signed head of the ledger: anchor it outside the database."""

    seq: int
    hash: str
    mac: str | None
    at: str | None

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "hash": self.hash, "mac": self.mac, "at": self.at}


@dataclass(frozen=True)
class VerifyReport:
    """What `verify` found: ok, or the first event that does not match and why."""

    ok: bool
    events: int
    head: Checkpoint
    first_bad_seq: int | None = None
    problem: str | None = None
    redacted: tuple[int, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "events": self.events, "head": self.head.to_json(),
                "first_bad_seq": self.first_bad_seq, "problem": self.problem,
                "redacted": list(self.redacted)}


class Ledger:
    """Appends events inside the caller's transaction; reads and verifies the chain."""

    def __init__(self, store: Store, clock: Clock, secret: ServerSecret) -> None:
        self.store = store
        self.clock = clock
        self.secret = secret
        self._last_head: tuple[int, str] | None = None
        """The head as this process last moved it: where the next append starts, unless
        another writer has moved it since (the head's update then finds no row)."""

    def hold_head(self, conn: Connection) -> None:
        """Take the ledger head for the rest of `conn`'s transaction. Commands that lock
        other rows take the head first: every append takes it, so this one order keeps
        writers from deadlocking. Where a write transaction excludes every other writer
        from its start, there is no order to keep."""
        if not self.store.dialect.one_writer and self._held(conn) is None:
            self._lock_head(conn)

    def _held(self, conn: Connection) -> tuple[int, str] | None:
        """The head (seq, hash) if `conn`'s transaction holds it: known here as the
        transaction's appends move it (nobody else can while it is held)."""
        held = conn.info.get(_HELD_HEAD)
        if held is not None and held[0] is conn.get_transaction():
            return held[1], held[2]
        return None

    def _lock_head(self, conn: Connection) -> tuple[int, str]:
        head = self.store.dialect.lock_ledger_head(conn)
        conn.info[_HELD_HEAD] = (conn.get_transaction(), head.seq, head.hash)
        return head.seq, head.hash

    def append(self, conn: Connection, kind: str, actor: str, subject: str,
               payload: dict[str, Any]) -> Event:
        """Append one event in `conn`'s transaction."""
        return self.append_many(conn, [EventDraft(kind, actor, subject, payload)])[0]

    def append_many(self, conn: Connection, drafts: Sequence[EventDraft]) -> list[Event]:
        """Append events in order in `conn`'s transaction, holding the head once.

        The first append of a transaction chains from the head this process last wrote
        and moves the head only from there, which takes the head in the same statement;
        when another writer has moved it since, the head is read (and taken) and the
        events chained again from it."""
        if not drafts:
            return []
        for draft in drafts:
            _check_draft(draft)
        at = format_time(self.clock.now())
        held = self._held(conn)
        start = held or self._last_head or self._lock_head(conn)
        chained = self._chain(drafts, start, at)
        if not self._move_head(conn, start, chained):
            if held is not None:
                raise LedgerError("the ledger head moved while this transaction held it")
            start = self._lock_head(conn)
            chained = self._chain(drafts, start, at)
            if not self._move_head(conn, start, chained):
                raise LedgerError("the ledger head moved while this transaction held it")
        _INSERT_EVENTS.run_many(conn, chained.rows)
        head = chained.events[-1].seq, chained.events[-1].hash
        conn.info[_HELD_HEAD] = (conn.get_transaction(), *head)
        self._last_head = head
        return chained.events

    def _chain(self, drafts: Sequence[EventDraft], start: tuple[int, str],
               at: str) -> _Chained:
        """The drafts as events chained from `start`, with their rows."""
        seq, prev_hash = start
        appended, rows = [], []
        for draft in drafts:
            seq += 1
            payload_text = canonical_json(draft.payload)
            header: dict[str, Any] = {"seq": seq, "id": str(uuid.uuid4()), "at": at,
                                      "kind": draft.kind, "actor": draft.actor,
                                      "subject": draft.subject}
            digest = sha256_hex(payload_text)
            event_hash = chain_hash(prev_hash, header, digest)
            chained: dict[str, Any] = {"payload_digest": digest, "prev_hash": prev_hash,
                                       "hash": event_hash}
            rows.append({**header, **chained, "payload": payload_text})
            appended.append(Event(payload=draft.payload, **header, **chained))
            prev_hash = event_hash
        return _Chained(appended, rows)

    def _move_head(self, conn: Connection, start: tuple[int, str],
                   chained: _Chained) -> bool:
        """Sign and write the head after `chained`, if it is still at `start`."""
        last = chained.events[-1]
        key = self.secret.get(create=start[0] == 0)
        return _MOVE_HEAD.run(conn, {
            "old_seq": start[0], "old_hash": start[1], "new_seq": last.seq,
            "new_hash": last.hash, "new_mac": _sign(key, last.seq, last.hash),
            "new_at": last.at}) == 1

    def redact(self, conn: Connection, seq: int, actor: str, reason: str) -> Event:
        """Erase event `seq`'s payload, keeping its digest; the erasure is an event."""
        if not reason.strip():
            raise InvalidInput("a redaction needs a reason (e.g. 'erasure request 118')")
        self.hold_head(conn)
        row = conn.execute(select(events).where(events.c.seq == seq)).first()
        if row is None:
            raise NotFound(f"no ledger event with seq {seq}")
        if row.kind == REDACTED:
            raise LedgerError(f"event {seq} records a redaction; it cannot be redacted")
        if row.payload is None:
            raise LedgerError(f"event {seq} is already redacted")
        conn.execute(update(events).where(events.c.seq == seq).values(payload=None))
        return self.append(conn, REDACTED, actor, row.subject,
                           {"seq": seq, "reason": reason, "payload_digest": row.payload_digest})

    def read(self, conn: Connection, *, after: int = 0, kind: str | None = None,
             subject: str | None = None, actor: str | None = None,
             limit: int | None = None, newest_first: bool = False,
             before: int | None = None) -> Iterator[Event]:
        """Events in seq order (or newest first), filtered by kind, subject, actor;
        only those after seq `after` and, with `before`, before that seq (the next page
        of a newest-first listing)."""
        query = select(events).where(events.c.seq > after)
        if before is not None:
            query = query.where(events.c.seq < before)
        for column, value in (("kind", kind), ("subject", subject), ("actor", actor)):
            if value is not None:
                query = query.where(events.c[column] == value)
        query = query.order_by(events.c.seq.desc() if newest_first else events.c.seq)
        if limit is not None:
            query = query.limit(limit)
        for row in conn.execute(query.execution_options(yield_per=2000)):
            yield Event.from_row(row)

    def checkpoint(self, conn: Connection) -> Checkpoint:
        row = conn.execute(select(ledger_head).where(ledger_head.c.id == 1)).one()
        return Checkpoint(row.seq, row.hash, row.mac, row.at)

    def count(self, conn: Connection) -> int:
        return int(conn.execute(select(func.count()).select_from(events)).scalar_one())

    def verify(self) -> VerifyReport:
        """Recompute the whole chain and the signed head; name the first bad event."""
        with self.store.reading() as conn:
            head = self.checkpoint(conn)
            redactions = _redaction_targets(conn)
            checked, bad = _verify_chain(conn, redactions)
        if bad is None:
            bad = self._verify_head(head, checked)
        redacted = tuple(sorted(redactions))
        if bad is not None:
            return VerifyReport(False, checked[0], head, bad[0], bad[1], redacted)
        return VerifyReport(True, checked[0], head, redacted=redacted)

    def _verify_head(self, head: Checkpoint,
                     checked: tuple[int, int, str]) -> tuple[int, str] | None:
        _, last_seq, last_hash = checked
        if head.seq == 0 and head.mac is None:
            if last_seq == 0:
                return None
            return 1, ("events exist but the signed head is empty: the checkpoint was "
                       "reset or the events were inserted")
        key = self.secret.get(create=False)
        if head.mac is None or not hmac.compare_digest(head.mac,
                                                       _sign(key, head.seq, head.hash)):
            return head.seq, ("the signed head checkpoint does not verify: it was altered, "
                              "or this is not the server secret the ledger was signed with")
        if last_seq < head.seq:
            return last_seq + 1, (f"events after seq {last_seq} are missing: the signed "
                                  f"head is seq {head.seq}")
        if last_seq > head.seq:
            return head.seq + 1, (f"event {head.seq + 1} is past the signed head (seq "
                                  f"{head.seq}): events were added outside the ledger")
        if last_hash != head.hash:
            return head.seq, "the last event's hash differs from the signed head"
        return None


def _sign(key: bytes, seq: int, head_hash: str) -> str:
    return hmac.new(key, f"{seq}:{head_hash}".encode("ascii"), hashlib.sha256).hexdigest()


def _check_draft(draft: EventDraft) -> None:
    for field, limit in _MAX_LENGTHS.items():
        value = getattr(draft, field)
        if not isinstance(value, str) or not value or len(value) > limit:
            raise InvalidInput(f"event {field} must be text of 1 to {limit} characters, "
                               f"got {value!r}")
    if not isinstance(draft.payload, dict):
        raise InvalidInput("an event payload must be a JSON object")


def _redaction_targets(conn: Connection) -> set[int]:
    """Seqs named by redaction events (their own payloads are checked by the chain)."""
    targets: set[int] = set()
    query = select(events.c.seq, events.c.payload).where(events.c.kind == REDACTED)
    for seq, payload in conn.execute(query):
        try:
            target = json.loads(payload)["seq"]
        except (TypeError, ValueError, KeyError):
            continue
        if isinstance(target, int) and target < seq:
            targets.add(target)
    return targets


def _verify_chain(conn: Connection,
                  redactions: set[int]) -> tuple[tuple[int, int, str], tuple[int, str] | None]:
    """Walk every event; return (count, last seq, last hash) and the first problem."""
    expected, prev_hash, count = 1, GENESIS_HASH, 0
    before_prev = ""
    """The hash the event before this one was chained to."""
    query = select(events).order_by(events.c.seq).execution_options(yield_per=5000)
    for row in conn.execute(query):
        if row.seq != expected:
            return (count, expected - 1, prev_hash), (
                expected, f"event {expected} is missing (the next stored is {row.seq})")
        header = {"seq": row.seq, "id": row.id, "at": row.at, "kind": row.kind,
                  "actor": row.actor, "subject": row.subject}
        if row.prev_hash != prev_hash:
            return (count, row.seq, prev_hash), _broken_link(row, header, before_prev, count)
        if row.payload is None:
            if row.seq not in redactions:
                return (count, row.seq, prev_hash), (
                    row.seq, "the payload is missing and no redaction event names it")
        elif sha256_hex(row.payload) != row.payload_digest:
            return (count, row.seq, prev_hash), (
                row.seq, "the payload does not match its digest (the payload was changed)")
        if chain_hash(prev_hash, header, row.payload_digest) != row.hash:
            return (count, row.seq, prev_hash), (
                row.seq, "the hash does not match the event's contents (a field was changed)")
        before_prev, prev_hash = prev_hash, row.hash
        count += 1
        expected += 1
    return (count, expected - 1, prev_hash), None


def _broken_link(row: Any, header: dict[str, Any], before_prev: str,
                 count: int) -> tuple[int, str]:
    """Which event to name when `row` is not chained to the event before it. That
    event is the forgery when `row` is intact in itself — it was chained, with its seq,
    to what the event before used to be (rewritten and re-hashed since), or to the
    event before that (the one between was inserted) — else `row` is."""
    if count:
        if row.prev_hash == before_prev:
            return row.seq - 1, (f"event {row.seq - 1} was inserted: event {row.seq}, written "
                                 f"before it, is chained to the event before it")
        intact = ((row.payload is None or sha256_hex(row.payload) == row.payload_digest)
                  and chain_hash(row.prev_hash, header, row.payload_digest) == row.hash)
        if intact:
            return row.seq - 1, (f"event {row.seq - 1} was changed and its hash recomputed: "
                                 f"event {row.seq}, written after it, is chained to a "
                                 f"different hash")
    return row.seq, "prev_hash does not match the hash of the event before it"
