"""The hash-chained ledger on SQLite and PostgreSQL: appends, tampering, redaction."""

from __future__ import annotations

import io
import itertools
import json
import threading

import pytest
from sqlalchemy import delete, insert, select, update

from charter.errors import InvalidInput, LedgerError, NotFound
from charter.ledger import EventDraft, chain_hash
from charter.store.schema import events, ledger_head
from charter.system import Charter


def fill(system: Charter, count: int, per_transaction: int = 1) -> None:
    for start in range(0, count, per_transaction):
        drafts = [EventDraft("test.happened", "tester", f"thing:{n % 7}",
                             {"n": n, "text": f"event {n}", "amount": n * 1.5})
                  for n in range(start, min(count, start + per_transaction))]
        with system.store.transaction() as conn:
            system.ledger.append_many(conn, drafts)


def test_append_chains_events(system: Charter):
    fill(system, 5)
    chain = system.events()
    assert [e.seq for e in chain] == [1, 2, 3, 4, 5]
    assert chain[0].prev_hash == "0" * 64
    for before, after in itertools.pairwise(chain):
        assert after.prev_hash == before.hash
        assert after.hash == chain_hash(before.hash, after.header(), after.payload_digest)
    report = system.verify_ledger()
    assert report.ok and report.events == 5 and report.head.seq == 5
    assert report.head.hash == chain[-1].hash and report.head.mac


def test_rolled_back_transaction_appends_nothing(system: Charter):
    fill(system, 2)
    with pytest.raises(RuntimeError), system.store.transaction() as conn:
        system.ledger.append(conn, "test.happened", "tester", "x", {"n": 99})
        raise RuntimeError("the command failed after appending")
    assert len(system.events()) == 2
    assert system.verify_ledger().ok


def test_appending_nothing_changes_nothing(system: Charter):
    fill(system, 2)
    head = system.checkpoint()
    with system.store.transaction() as conn:
        assert system.ledger.append_many(conn, []) == []
    assert system.checkpoint() == head


def test_bad_event_is_refused(system: Charter):
    with system.store.transaction() as conn:
        with pytest.raises(InvalidInput, match="actor"):
            system.ledger.append(conn, "k", "", "s", {})
        with pytest.raises(InvalidInput, match="kind"):
            system.ledger.append(conn, "k" * 65, "a", "s", {})
        with pytest.raises(ValueError, match="Out of range float"):
            system.ledger.append(conn, "k", "a", "s", {"x": float("nan")})
    assert system.events() == []


TAMPERS = {
    "id": "00000000-0000-0000-0000-000000000000",
    "at": "2030-01-01T00:00:00.000000Z",
    "kind": "test.forged",
    "actor": "mallory",
    "subject": "thing:forged",
    "payload": '{"amount":0,"n":3,"text":"event 3"}',
    "payload_digest": "f" * 64,
    "prev_hash": "e" * 64,
    "hash": "d" * 64,
}


@pytest.mark.parametrize("field", sorted(TAMPERS))
def test_changing_any_field_is_detected_at_that_event(system: Charter, field: str):
    fill(system, 10)
    with system.store.transaction() as conn:
        conn.execute(update(events).where(events.c.seq == 4).values({field: TAMPERS[field]}))
    report = system.verify_ledger()
    assert not report.ok
    assert report.first_bad_seq == 4, report.problem


def test_changing_seq_is_detected(system: Charter):
    fill(system, 10)
    with system.store.transaction() as conn:
        conn.execute(update(events).where(events.c.seq == 6).values(seq=60))
    report = system.verify_ledger()
    assert (report.ok, report.first_bad_seq) == (False, 6)
    assert "missing" in (report.problem or "")


def test_deleting_a_row_is_detected(system: Charter):
    fill(system, 10)
    with system.store.transaction() as conn:
        conn.execute(delete(events).where(events.c.seq == 3))
    report = system.verify_ledger()
    assert (report.ok, report.first_bad_seq) == (False, 3)


def test_deleting_the_newest_row_is_detected_by_the_signed_head(system: Charter):
    fill(system, 10)
    with system.store.transaction() as conn:
        conn.execute(delete(events).where(events.c.seq == 10))
    report = system.verify_ledger()
    assert (report.ok, report.first_bad_seq) == (False, 10)
    assert "signed head" in (report.problem or "")


def test_truncating_and_moving_the_head_back_is_detected(system: Charter):
    fill(system, 10)
    with system.store.transaction() as conn:
        nine = conn.execute(select(events).where(events.c.seq == 9)).one()
        conn.execute(delete(events).where(events.c.seq == 10))
        conn.execute(update(ledger_head).values(seq=9, hash=nine.hash))
    report = system.verify_ledger()
    assert (report.ok, report.first_bad_seq) == (False, 9)
    assert "does not verify" in (report.problem or "")


def test_inserting_a_well_formed_row_is_detected(system: Charter):
    fill(system, 10)
    last = system.events()[-1]
    header = {"seq": 11, "id": "forged-id", "at": last.at, "kind": "test.happened",
              "actor": "mallory", "subject": "thing:1"}
    payload = json.dumps({"n": 11})
    from charter.canonical import sha256_hex

    digest = sha256_hex(payload)
    with system.store.transaction() as conn:
        conn.execute(insert(events).values(
            **header, payload=payload, payload_digest=digest, prev_hash=last.hash,
            hash=chain_hash(last.hash, header, digest)))
    report = system.verify_ledger()
    assert (report.ok, report.first_bad_seq) == (False, 11)


def test_redaction_keeps_the_chain_verifiable(system: Charter):
    fill(system, 10)
    redaction = system.redact(5, actor="dpo", reason="erasure request 118")
    assert redaction.kind == "ledger.redacted" and redaction.payload
    assert redaction.payload["seq"] == 5
    assert system.events(after=4, limit=1)[0].payload is None
    report = system.verify_ledger()
    assert report.ok and report.redacted == (5,)
    with pytest.raises(LedgerError, match="already redacted"):
        system.redact(5, actor="dpo", reason="again")
    with pytest.raises(LedgerError, match="cannot be redacted"):
        system.redact(redaction.seq, actor="dpo", reason="hide the redaction")
    with pytest.raises(NotFound):
        system.redact(999, actor="dpo", reason="nothing there")
    with pytest.raises(InvalidInput, match="reason"):
        system.redact(6, actor="dpo", reason=" ")


def test_erasing_a_payload_without_a_redaction_event_is_detected(system: Charter):
    fill(system, 10)
    with system.store.transaction() as conn:
        conn.execute(update(events).where(events.c.seq == 7).values(payload=None))
    report = system.verify_ledger()
    assert (report.ok, report.first_bad_seq) == (False, 7)


def test_wrong_secret_is_reported(system: Charter, store, clock):
    fill(system, 3)
    from charter.settings import Settings

    other = Charter(store, Settings(secret="another-secret"), clock)
    report = other.verify_ledger()
    assert not report.ok and "server secret" in (report.problem or "")


def test_export_writes_json_lines(system: Charter):
    fill(system, 4)
    buffer = io.StringIO()
    assert system.export_ledger(buffer, after=1) == 3
    lines = [json.loads(line) for line in buffer.getvalue().splitlines()]
    assert [line["seq"] for line in lines] == [2, 3, 4]
    assert set(lines[0]) == {"seq", "id", "at", "kind", "actor", "subject", "payload",
                             "payload_digest", "prev_hash", "hash"}


def test_tail_and_filters(system: Charter):
    fill(system, 30)
    assert [e.seq for e in system.tail(3)] == [28, 29, 30]
    assert {e.subject for e in system.events(subject="thing:2")} == {"thing:2"}
    assert len(system.events(subject="thing:2")) == len(range(2, 30, 7))


def test_newest_first_pages_before_a_seq(system: Charter):
    fill(system, 30)
    with system.store.reading() as conn:
        page = [e.seq for e in system.ledger.read(conn, subject="thing:2", before=23,
                                                  newest_first=True, limit=2)]
        rest = [e.seq for e in system.ledger.read(conn, subject="thing:2", before=page[-1],
                                                  newest_first=True)]
        window = [e.seq for e in system.ledger.read(conn, after=3, before=7)]
    assert page == [17, 10] and rest == [3]
    assert window == [4, 5, 6]


def test_hundred_thousand_events_verify(system: Charter):
    fill(system, 100_000, per_transaction=5_000)
    report = system.verify_ledger()
    assert report.ok and report.events == 100_000


def test_concurrent_writers_leave_one_linear_chain(system: Charter):
    writers, each = 8, 500
    errors: list[BaseException] = []

    def write(writer: int) -> None:
        try:
            for n in range(each):
                with system.store.transaction() as conn:
                    system.ledger.append(conn, "test.concurrent", f"writer-{writer}",
                                         f"w:{writer}", {"n": n})
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    report = system.verify_ledger()
    assert report.ok and report.events == writers * each
    chain = system.events()
    assert [e.seq for e in chain] == list(range(1, writers * each + 1))
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(chain))


def test_writers_that_know_an_old_head_chain_from_the_real_one(system: Charter, store,
                                                                clock):
    """Two nodes on one database: each starts an append from the head it last wrote,
    finds the other has moved it, and chains from the real head instead."""
    from charter.settings import Settings

    other = Charter(store, Settings(secret=system.settings.secret), clock)
    for n in range(6):
        writer = system if n % 2 == 0 else other
        with store.transaction() as conn:
            writer.ledger.append_many(conn, [
                EventDraft("test.happened", "tester", f"node:{n % 2}", {"n": n}),
                EventDraft("test.happened", "tester", f"node:{n % 2}", {"n": n, "m": 1})])
    chain = system.events()
    assert [e.seq for e in chain] == list(range(1, 13))
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(chain))
    report = system.verify_ledger()
    assert report.ok and report.head.seq == 12


def test_an_append_after_a_rolled_back_one_chains_from_the_committed_head(
        system: Charter):
    fill(system, 2)
    with pytest.raises(RuntimeError), system.store.transaction() as conn:
        system.ledger.append_many(conn, [EventDraft("test.happened", "tester", "x",
                                                    {"n": n}) for n in range(3)])
        raise RuntimeError("the command failed after appending")
    fill(system, 1)
    chain = system.events()
    assert [e.seq for e in chain] == [1, 2, 3]
    assert chain[2].prev_hash == chain[1].hash
    assert system.verify_ledger().ok
