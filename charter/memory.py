"""Memory: notes, facts and summaries kept about subjects, searchable and governed.

A memory belongs to a subject written like a resource (`Customer::42`,
`Payroll::2026-11`); it is shared with every member permitted `memory.read` on that
subject, or private to the member who wrote it. `recall` ranks a subject's memories by
full-text relevance (the dialect's: FTS5 bm25 on SQLite, ts_rank on PostgreSQL).

Each memory is stored by one `memory.remembered` event, whose ledger seq is the
memory's full-text row id. Forgetting deletes it from the read tables and the full-text
index and redacts that event's payload (the ledger keeps the digest, so the chain
still verifies and names the redaction): after a forget its text is in no table and
no ledger payload.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

from sqlalchemy import Connection, delete, insert, select

from charter import readmodel
from charter.errors import Forbidden, InvalidInput, NotFound
from charter.ledger import Event, Ledger
from charter.org import Org
from charter.requests import RequestInvalid, resource_name
from charter.store.dialect import Dialect
from charter.store.schema import events, memories

Kind = Literal["fact", "note", "summary"]
KINDS: tuple[str, ...] = get_args(Kind)
REMEMBERED = "memory.remembered"
FORGOTTEN = "memory.forgotten"
READ = "memory.read"
WRITE = "memory.write"

MAX_TEXT = 20_000
"""Characters in one memory: a note or a summary, not a document."""
MAX_TAGS = 20
MAX_QUERY = 1_000
MAX_TERMS = 16
"""Words of a query that are searched (the rest are ignored): recall is for a few
words, and each word is one more full-text lookup."""
MAX_LIMIT = 1_000
_TAG = re.compile(r"^[\w.:-]{1,64}$")
_WORD = re.compile(r"[^\W_]+")
_INSERT = insert(memories)


@dataclass(frozen=True)
class Memory:
    """One memory; `score` is its relevance to the recall that found it (higher is more
    relevant, comparable within one recall only), None when listed without a query."""

    id: str
    seq: int
    subject: str
    kind: Kind
    text: str
    tags: tuple[str, ...]
    by: str
    private: bool
    created_at: str
    score: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "seq": self.seq, "subject": self.subject, "kind": self.kind,
                "text": self.text, "tags": list(self.tags), "by": self.by,
                "private": self.private, "created_at": self.created_at,
                "score": self.score}


@dataclass(frozen=True)
class Forgotten:
    """What `forget` did: the memory's storing event `redacted_seq` lost its payload,
    as the redaction event `redaction_seq` records (None when that payload had already
    been redacted on its own, e.g. with `charter ledger redact`). `flushed` is False
    when SQLite could not yet truncate its write-ahead log (readers were active); the
    next checkpoint does."""

    id: str
    subject: str
    by: str
    reason: str
    redacted_seq: int
    redaction_seq: int | None
    flushed: bool = True

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "subject": self.subject, "by": self.by,
                "reason": self.reason, "redacted_seq": self.redacted_seq,
                "redaction_seq": self.redaction_seq, "flushed": self.flushed}


# -- checking input ------------------------------------------------------------------------

def canonical_subject(org: Org, subject: object, action: str = READ) -> str:
    """`subject` as memory stores it (`Type::id`, the type spelt as the org declares
    it), or `InvalidInput` saying what is wrong. `customer:42` and `Customer::"42"`
    both give `Customer::42`."""
    if not isinstance(subject, str) or not subject.strip() or len(subject) > 256:
        raise InvalidInput(f"a memory subject is `Type::id` of 1 to 256 characters (e.g. "
                           f"Customer::42), got {subject!r}")
    if action not in org.spec.actions:
        raise Forbidden(f"org {org.id} declares no {action} action, so no memory is "
                        f"governed by it: declare it under `actions:` and permit it in a "
                        "policy")
    try:
        name = resource_name(org, action, subject.strip())
    except RequestInvalid as error:
        raise InvalidInput(f"memory subject {subject!r}: {error}") from None
    if name.split("::", 1)[1].startswith(":"):  # `Customer::` reads as id `:`
        raise InvalidInput(f"memory subject {subject!r}: the id after `::` is empty")
    return name


def check_member(org: Org, member: object, role: str = "by") -> str:
    if not isinstance(member, str) or member not in org.members:
        raise InvalidInput(f"{role}: no member {member!r} in org {org.id}")
    return member


def check_text(text: object) -> str:
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("a memory needs text (a note, a fact or a summary)")
    if len(text) > MAX_TEXT:
        raise InvalidInput(f"a memory's text is at most {MAX_TEXT:,} characters, got "
                           f"{len(text):,}: keep a summary and the source's reference")
    return text.strip()


def check_kind(kind: object) -> Kind:
    if kind not in KINDS:
        raise InvalidInput(f"memory kind {kind!r} is not one of {', '.join(KINDS)}")
    return kind  # type: ignore[return-value]  # checked against KINDS just above


def check_tags(tags: object) -> tuple[str, ...]:
    if isinstance(tags, str) or not isinstance(tags, Iterable):
        raise InvalidInput(f"tags are a list of words (e.g. ['billing', 'vip']), got "
                           f"{tags!r}")
    checked: list[str] = []
    for tag in tags:
        if not isinstance(tag, str) or not _TAG.match(tag):
            raise InvalidInput(f"tag {tag!r} is not 1 to 64 letters, digits, `_`, `.`, "
                               "`:` or `-`")
        if tag not in checked:
            checked.append(tag)
    if len(checked) > MAX_TAGS:
        raise InvalidInput(f"a memory has at most {MAX_TAGS} tags, got {len(checked)}")
    return tuple(checked)


def check_limit(limit: object) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be a whole number from 1 to {MAX_LIMIT}, got "
                           f"{limit!r}")
    return limit


def query_terms(query: object) -> list[str]:
    """The words of a recall query, as plain search terms (no search syntax: quotes,
    operators and punctuation only separate words). Empty for a blank query."""
    if not isinstance(query, str):
        raise InvalidInput(f"a recall query is text, got {query!r}")
    if len(query) > MAX_QUERY:
        raise InvalidInput(f"a recall query is at most {MAX_QUERY:,} characters: search "
                           "for a few words")
    terms = list(dict.fromkeys(word.lower() for word in _WORD.findall(query)))
    if query.strip() and not terms:
        raise InvalidInput(f"the recall query {query!r} has no words to search for "
                           "(leave it empty to list the latest memories)")
    return terms[:MAX_TERMS]


# -- commands ------------------------------------------------------------------------------

def remember(conn: Connection, ledger: Ledger, *, subject: str, text: str, by: str,
             kind: Kind, tags: Sequence[str], private: bool,
             permitted_by: Sequence[str]) -> Memory:
    """Store a memory (already checked and permitted) in `conn`'s transaction."""
    payload: dict[str, Any] = {
        "id": str(uuid.uuid4()), "subject": subject, "kind": kind, "text": text,
        "tags": list(tags), "private": private, "permitted_by": list(permitted_by)}
    event = readmodel.record(conn, ledger, kind=REMEMBERED, actor=by, subject=subject,
                             payload=payload)
    return Memory(payload["id"], event.seq, subject, kind, text, tuple(tags), by, private,
                  event.at)


def forget(conn: Connection, ledger: Ledger, dialect: Dialect, memory: Memory, *, by: str,
           reason: str) -> Forgotten:
    """Erase a memory (whose erasure is already permitted) in `conn`'s transaction:
    redact the payload of the event that stored it, record the forgetting, and purge
    its terms from the full-text index."""
    stored = conn.execute(select(events.c.payload).where(events.c.seq == memory.seq)).one()
    redaction = None if stored.payload is None else ledger.redact(conn, memory.seq, by,
                                                                  reason)
    readmodel.record(conn, ledger, kind=FORGOTTEN, actor=by, subject=memory.subject,
                     payload={"id": memory.id, "seq": memory.seq, "reason": reason})
    dialect.purge_search_index(conn)
    return Forgotten(memory.id, memory.subject, by, reason, memory.seq,
                     None if redaction is None else redaction.seq)


# -- queries -------------------------------------------------------------------------------

def get(conn: Connection, memory_id: str, *, lock: bool = False) -> Memory:
    query = select(memories).where(memories.c.id == memory_id)
    if lock:
        query = query.with_for_update()
    row = conn.execute(query).first()
    if row is None:
        raise NotFound(f"no memory {memory_id!r} (it may have been forgotten)")
    return _memory(row)


def subject_memories(conn: Connection, subject: str, *, reader: str | None,
                     limit: int) -> list[Memory]:
    """`subject`'s latest memories that `reader` may see (shared ones, and those
    private to `reader`; None sees shared ones only), newest first. No governance:
    the caller checks `memory.read`. `subject` is in the form `canonical_subject`
    gives (`Customer::42`)."""
    query = (select(memories).where(memories.c.subject == subject, _visible_to(reader))
             .order_by(memories.c.seq.desc()).limit(limit))
    return [_memory(row) for row in conn.execute(query)]


def page(conn: Connection, subject: str, *, reader: str | None, before: int | None,
         limit: int) -> list[Memory]:
    """`subject`'s memories visible to `reader`, newest first, stored before ledger seq
    `before` (that of the last one seen): keyset pages. No governance, as for
    `subject_memories`."""
    query = select(memories).where(memories.c.subject == subject, _visible_to(reader))
    if before is not None:
        query = query.where(memories.c.seq < before)
    query = query.order_by(memories.c.seq.desc()).limit(limit)
    return [_memory(row) for row in conn.execute(query)]


def search(conn: Connection, dialect: Dialect, subject: str, terms: Sequence[str], *,
           reader: str | None, limit: int) -> list[Memory]:
    """`subject`'s memories visible to `reader` matching any of `terms`, most relevant
    first, each with its score; the latest ones when there are no terms."""
    if not terms:
        return subject_memories(conn, subject, reader=reader, limit=limit)
    return [_memory(row, float(row.score)) for row in dialect.search_memories(
        conn, terms, subject=subject, reader=reader, limit=limit)]


def _visible_to(reader: str | None) -> Any:
    shared = memories.c.member.is_(None)
    return shared if reader is None else shared | (memories.c.member == reader)


def _memory(row: Any, score: float | None = None) -> Memory:
    return Memory(row.id, row.seq, row.subject, row.kind, row.text,
                  tuple(json.loads(row.tags)), row.by, row.member is not None,
                  row.created_at, score)


# -- projectors ----------------------------------------------------------------------------

def _project_remembered(conn: Connection, event: Event) -> None:
    p = event.payload
    if p is None:  # redacted: the memory was forgotten, and stays so on replay
        return
    conn.execute(_INSERT, {
        "id": p["id"], "seq": event.seq, "subject": p["subject"],
        "member": event.actor if p["private"] else None, "kind": p["kind"],
        "text": p["text"], "tags": json.dumps(p["tags"]), "by": event.actor,
        "created_at": event.at})


def _project_forgotten(conn: Connection, event: Event) -> None:
    conn.execute(delete(memories).where(memories.c.id == (event.payload or {})["id"]))


PROJECTORS: dict[str, Callable[[Connection, Event], None]] = {
    REMEMBERED: _project_remembered,
    FORGOTTEN: _project_forgotten,
}
"""How memory events change the `memories` table (and, through its triggers or
generated column, the full-text index)."""
