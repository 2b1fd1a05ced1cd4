"""Tampering with a populated ledger (a few hundred events of real work) directly in the
database, with SQL, on SQLite and PostgreSQL: `verify_ledger()` and `charter ledger
verify` (exit code 1) name the first event that does not match, and a truncated tail is
caught by the signed head. After each case the ledger is put back and verifies again."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import Connection, text
from typer.testing import CliRunner

from charter import ManualClock, Settings
from charter.canonical import sha256_hex
from charter.cli import app
from charter.ledger import chain_hash
from charter.store import open_store
from charter.system import Charter
from tests.conftest import EXAMPLE_ORG
from tests.reliability.activity import populate
from tests.reliability.databases import KINDS, database
from tests.reliability.fleet import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.reliability]

SECRET = "tampering-secret"
FORGED_AT = "2026-01-01T00:00:30.000000Z"


@dataclass
class Populated:
    """A populated ledger as it was before any tampering, to put it back after each case."""

    system: Charter
    url: str
    rows: list[dict[str, Any]]
    head: dict[str, Any]

    def seq(self, kind: str, nth: int = 0) -> int:
        """The seq of the `nth` event of `kind`."""
        return [row["seq"] for row in self.rows if row["kind"] == kind][nth]

    def row(self, seq: int) -> dict[str, Any]:
        return self.rows[seq - 1]

    def restore(self) -> None:
        with self.system.store.transaction() as conn:
            conn.execute(text("DELETE FROM events"))
            conn.execute(text(
                "INSERT INTO events (seq, id, at, kind, actor, subject, payload, "
                "payload_digest, prev_hash, hash) VALUES (:seq, :id, :at, :kind, :actor, "
                ":subject, :payload, :payload_digest, :prev_hash, :hash)"), self.rows)
            conn.execute(text("UPDATE ledger_head SET seq = :seq, hash = :hash, mac = :mac, "
                              "at = :at WHERE id = 1"), self.head)


@pytest.fixture(scope="module", params=KINDS)
def ledger(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Populated]:
    folder = tmp_path_factory.mktemp(f"tampering-{request.param}")
    shutil.copytree(EXAMPLE_ORG.parent, folder / "org")
    with database(request.param, folder) as url:
        settings = Settings(secret=SECRET)
        clock = ManualClock()
        system = Charter(open_store(url, settings), settings, clock)
        try:
            system.load_org(folder / "org" / "charter.yaml")
            populate(system, clock)
            with system.store.reading() as conn:
                rows = [dict(row._mapping) for row in
                        conn.execute(text("SELECT * FROM events ORDER BY seq"))]
                head = dict(conn.execute(text("SELECT * FROM ledger_head")).one()._mapping)
            assert len(rows) >= 300 and system.verify_ledger().ok
            yield Populated(system, url, rows, head)
        finally:
            system.close()


# -- the tampering: each changes the database and says which seq must be named -----------

def forged(seq: int, prev_hash: str, *, chained: bool) -> dict[str, Any]:
    """A well-formed event at `seq` after `prev_hash`; its hash is right only if
    `chained`."""
    payload = json.dumps({"budget": "acme-opex", "amount": "99999"}, separators=(",", ":"))
    header = {"seq": seq, "id": f"00000000-0000-4000-8000-{seq:012d}", "at": FORGED_AT,
              "kind": "budget.committed", "actor": "mallory", "subject": "budget:acme-opex"}
    digest = sha256_hex(payload)
    return {**header, "payload": payload, "payload_digest": digest, "prev_hash": prev_hash,
            "hash": chain_hash(prev_hash, header, digest) if chained else "d" * 64}


def insert(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(text("INSERT INTO events (seq, id, at, kind, actor, subject, payload, "
                      "payload_digest, prev_hash, hash) VALUES (:seq, :id, :at, :kind, "
                      ":actor, :subject, :payload, :payload_digest, :prev_hash, :hash)"), row)


def shift(conn: Connection, first: int, by: int) -> None:
    """Renumber the events from `first` on by `by` (through negative seqs, so no two
    rows share a seq on the way)."""
    conn.execute(text("UPDATE events SET seq = -(seq + :by) WHERE seq >= :first"),
                 {"by": by, "first": first})
    conn.execute(text("UPDATE events SET seq = -seq WHERE seq < 0"))


def swap(conn: Connection, first: int, second: int) -> None:
    conn.execute(text("UPDATE events SET seq = -1 WHERE seq = :s"), {"s": first})
    conn.execute(text("UPDATE events SET seq = :f WHERE seq = :s"), {"f": first, "s": second})
    conn.execute(text("UPDATE events SET seq = :s WHERE seq = -1"), {"s": second})


Tamper = Callable[[Connection, Populated], tuple[int, str]]


def payload_changed(conn: Connection, ledger: Populated) -> tuple[int, str]:
    seq = ledger.seq("budget.committed", 10)
    payload = json.loads(ledger.row(seq)["payload"])
    payload["actual"] = "1"
    conn.execute(text("UPDATE events SET payload = :p WHERE seq = :s"),
                 {"p": json.dumps(payload, sort_keys=True, separators=(",", ":")), "s": seq})
    return seq, "the payload does not match its digest"


def actor_changed(conn: Connection, ledger: Populated) -> tuple[int, str]:
    seq = ledger.seq("approval.voted", 5)
    conn.execute(text("UPDATE events SET actor = 'mallory' WHERE seq = :s"), {"s": seq})
    return seq, "the hash does not match the event's contents"


def time_moved(conn: Connection, ledger: Populated) -> tuple[int, str]:
    seq = ledger.seq("task.completed", 7)
    conn.execute(text("UPDATE events SET at = :at WHERE seq = :s"), {"at": FORGED_AT, "s": seq})
    return seq, "the hash does not match the event's contents"


def hash_changed(conn: Connection, ledger: Populated) -> tuple[int, str]:
    seq = ledger.seq("task.claimed", 9)
    conn.execute(text("UPDATE events SET hash = :h WHERE seq = :s"), {"h": "0" * 64, "s": seq})
    return seq, "the hash does not match the event's contents"


def payload_rewritten_and_rehashed(conn: Connection, ledger: Populated) -> tuple[int, str]:
    """The event is changed and made consistent in itself (new digest, new hash): only
    its successor, which still names the old hash, shows it."""
    seq = ledger.seq("budget.committed", 6)
    row = dict(ledger.row(seq))
    payload = json.loads(row["payload"])
    payload["actual"] = "1"
    row["payload"] = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    row["payload_digest"] = sha256_hex(row["payload"])
    header = {k: row[k] for k in ("seq", "id", "at", "kind", "actor", "subject")}
    row["hash"] = chain_hash(row["prev_hash"], header, row["payload_digest"])
    conn.execute(text("UPDATE events SET payload = :payload, payload_digest = "
                      ":payload_digest, hash = :hash WHERE seq = :seq"), row)
    return seq, "was changed and its hash recomputed"


def payload_erased(conn: Connection, ledger: Populated) -> tuple[int, str]:
    seq = ledger.seq("memory.remembered", 3)
    conn.execute(text("UPDATE events SET payload = NULL WHERE seq = :s"), {"s": seq})
    return seq, "no redaction event names it"


def redacted_payload_refilled(conn: Connection, ledger: Populated) -> tuple[int, str]:
    seq = json.loads(ledger.row(ledger.seq("ledger.redacted"))["payload"])["seq"]
    assert ledger.row(seq)["payload"] is None
    conn.execute(text("UPDATE events SET payload = :p WHERE seq = :s"),
                 {"p": '{"text":"something else"}', "s": seq})
    return seq, "the payload does not match its digest"


def deleted(conn: Connection, ledger: Populated) -> tuple[int, str]:
    seq = ledger.seq("budget.reserved", 12)
    conn.execute(text("DELETE FROM events WHERE seq = :s"), {"s": seq})
    return seq, f"event {seq} is missing"


def deleted_and_renumbered(conn: Connection, ledger: Populated) -> tuple[int, str]:
    seq = ledger.seq("budget.reserved", 12)
    conn.execute(text("DELETE FROM events WHERE seq = :s"), {"s": seq})
    shift(conn, seq + 1, -1)
    return seq, "prev_hash does not match"


def inserted_unchained(conn: Connection, ledger: Populated) -> tuple[int, str]:
    seq = ledger.seq("task.submitted", 20)
    shift(conn, seq, 1)
    insert(conn, forged(seq, ledger.row(seq - 1)["hash"], chained=False))
    return seq, "the hash does not match the event's contents"


def inserted_chained(conn: Connection, ledger: Populated) -> tuple[int, str]:
    """The forged event is chained to the one before it: it is the first bad one."""
    seq = ledger.seq("task.submitted", 20)
    shift(conn, seq, 1)
    insert(conn, forged(seq, ledger.row(seq - 1)["hash"], chained=True))
    return seq, "was inserted"


def appended_past_the_head(conn: Connection, ledger: Populated) -> tuple[int, str]:
    last = ledger.rows[-1]
    insert(conn, forged(last["seq"] + 1, last["hash"], chained=True))
    return last["seq"] + 1, "past the signed head"


def swapped(conn: Connection, ledger: Populated) -> tuple[int, str]:
    first = ledger.seq("task.assigned", 8)
    swap(conn, first, first + 7)
    return first, "prev_hash does not match"


def swapped_neighbours(conn: Connection, ledger: Populated) -> tuple[int, str]:
    first = ledger.seq("lease.acquired", 4)
    swap(conn, first, first + 1)
    return first, "prev_hash does not match"


def tail_truncated(conn: Connection, ledger: Populated) -> tuple[int, str]:
    keep = len(ledger.rows) - 25
    conn.execute(text("DELETE FROM events WHERE seq > :k"), {"k": keep})
    return keep + 1, f"events after seq {keep} are missing: the signed head is seq"


def tail_truncated_and_head_moved_back(conn: Connection, ledger: Populated) -> tuple[int, str]:
    """The head cannot be signed again without the server secret: the moved head is
    refused where it now points."""
    keep = len(ledger.rows) - 25
    conn.execute(text("DELETE FROM events WHERE seq > :k"), {"k": keep})
    conn.execute(text("UPDATE ledger_head SET seq = :k, hash = :h WHERE id = 1"),
                 {"k": keep, "h": ledger.row(keep)["hash"]})
    return keep, "the signed head checkpoint does not verify"


def head_signature_changed(conn: Connection, ledger: Populated) -> tuple[int, str]:
    conn.execute(text("UPDATE ledger_head SET mac = :m WHERE id = 1"), {"m": "f" * 64})
    return ledger.head["seq"], "the signed head checkpoint does not verify"


TAMPERS: dict[str, Any] = {
    "a payload changed": payload_changed,
    "an actor changed": actor_changed,
    "a time moved": time_moved,
    "a hash changed": hash_changed,
    "a payload rewritten with its digest and hash": payload_rewritten_and_rehashed,
    "a payload erased without a redaction": payload_erased,
    "a redacted payload filled in again": redacted_payload_refilled,
    "an event deleted": deleted,
    "an event deleted and the rest renumbered": deleted_and_renumbered,
    "an event inserted, badly chained": inserted_unchained,
    "an event inserted, chained to the one before": inserted_chained,
    "an event appended past the signed head": appended_past_the_head,
    "two events swapped": swapped,
    "two neighbouring events swapped": swapped_neighbours,
    "the tail truncated": tail_truncated,
    "the tail truncated and the head moved back": tail_truncated_and_head_moved_back,
    "the head's signature changed": head_signature_changed,
}


def cli_verify(url: str) -> tuple[int, str]:
    """`charter ledger verify` in this process: its exit code and what it printed."""
    result = CliRunner().invoke(app, ["ledger", "verify", "--db", url],
                                env={"CHARTER_SECRET": SECRET})
    return result.exit_code, result.output


@pytest.mark.parametrize("tamper", list(TAMPERS.values()), ids=list(TAMPERS))
def test_tampering_is_named_at_the_first_bad_event(ledger: Populated, tamper: Tamper):
    try:
        with ledger.system.store.transaction() as conn:
            seq, problem = tamper(conn, ledger)
        report = ledger.system.verify_ledger()
        code, printed = cli_verify(ledger.url)
    finally:
        ledger.restore()
    assert ledger.system.verify_ledger().ok  # put back as it was
    assert not report.ok
    assert report.first_bad_seq == seq, report
    assert problem in (report.problem or ""), report
    named = re.search(r"FAILED at event (\d+)", printed)
    assert code == 1 and named is not None and int(named.group(1)) == seq, printed


def test_the_untouched_ledger_verifies_through_the_cli(ledger: Populated):
    code, printed = cli_verify(ledger.url)
    assert code == 0 and f"{len(ledger.rows)} events verify" in printed, printed
    assert "redacted payloads" in printed


def test_the_cli_process_exits_1_naming_a_deleted_event(ledger: Populated):
    """The real command, as an operator runs it."""
    seq = ledger.seq("task.completed", 3)
    try:
        with ledger.system.store.transaction() as conn:
            conn.execute(text("DELETE FROM events WHERE seq = :s"), {"s": seq})
        environment = {**{k: v for k, v in os.environ.items() if not k.startswith("CHARTER_")},
                       "CHARTER_SECRET": SECRET}
        done = subprocess.run([sys.executable, "-m", "charter", "ledger", "verify", "--db",
                               ledger.url], cwd=ROOT, env=environment, capture_output=True,
                              text=True, timeout=120, check=False)
    finally:
        ledger.restore()
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"FAILED at event {seq}: event {seq} is missing" in " ".join(done.stderr.split())
    assert ledger.system.verify_ledger().ok
