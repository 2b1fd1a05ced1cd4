"""Memory on SQLite and PostgreSQL: full-text recall, governance, private memory,
forgetting (the text found nowhere afterwards), replay."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Connection, func, select, text

from charter import memory
from charter.errors import Forbidden, InvalidInput, NotFound
from charter.memory import Memory
from charter.store.schema import READ_TABLES, memories
from charter.system import Charter

CUSTOMERS = [f"Customer::{n}" for n in range(1, 7)]
MONTHS = ["January", "March", "April", "June", "September", "November"]
CITIES = ["Lyon", "Rotterdam", "Leipzig", "Porto", "Gdansk", "Turin"]
PLANS = ["Starter", "Team", "Business", "Enterprise"]

CUSTOMER_NOTES = [
    "Invoice {n} was disputed: they were charged twice for the {plan} plan in {month}.",
    "Asked to move the {plan} subscription to annual billing from {month}.",
    "Parcel for order {n} was delayed at the {city} depot; the courier promised delivery "
    "by Friday.",
    "Reset the account password after a lockout; login goes through single sign-on.",
    "Prefers to be contacted by email in the morning and dislikes phone calls.",
    "Contract renewal is due in {month}; they want a {pct}% discount for a two-year term.",
    "Reported that the mobile app crashes when exporting reports to spreadsheet files.",
    "Onboarding call held with their operations lead; they plan to add {pct} seats next "
    "quarter.",
    "Complained about slow answers from tier one support during the {month} outage.",
    "Uses the API integration with their warehouse system; rate limit raised to {n} "
    "requests per minute.",
    "Their finance team needs purchase order numbers printed on every invoice.",
    "Visited the {city} showroom and asked for a demo of the new dashboard.",
]
OTHER_NOTES = {
    "Vendor::globex": [
        "Globex delivered {pct} pallets of packaging {n} days late; penalty clause invoked.",
        "Globex quoted a {pct}% price increase on cardboard from {month}.",
        "Payment terms with Globex are net 30, with a 2% discount within ten days.",
    ],
    "Vendor::umbrella-supplies": [
        "Umbrella Supplies changed their bank details; verified by phone with their "
        "controller.",
        "Umbrella Supplies ships from {city}; lead time is {pct} days in {month}.",
    ],
    "Sku::grinder-2": [
        "The grinder sells {pct}% above the competitor's price in {city}.",
        "Stock of the grinder runs out in {pct} days at the current sales rate.",
    ],
}


@dataclass(frozen=True)
class Corpus:
    """What `fill` stored: the planted memories the tests look for, and the count."""

    relevant: tuple[str, ...]
    espresso_only: str
    refund_only: str
    elsewhere: str
    count: int


def _fill_in(template: str, rng: random.Random) -> str:
    return template.format(n=rng.randrange(1000, 9999), plan=rng.choice(PLANS),
                           month=rng.choice(MONTHS), city=rng.choice(CITIES),
                           pct=rng.randrange(2, 40))


def fill(system: Charter, size: int = 220) -> Corpus:
    """`size` varied memories over several subjects, most of them distractors, with a
    few planted on Customer::3 about a refunded espresso machine."""
    rng = random.Random(7)
    writers = ["support-bot", "triage-bot", "refund-bot", "ben.kowalski"]
    stored = 0
    planted = [
        ("Customer::3", "The customer returned a damaged espresso machine and asked for a "
                        "full refund; the refund was approved by Ben."),
        ("Customer::3", "Their espresso machine arrived with a cracked water tank, so a "
                        "refund was issued for order 5521."),
        ("Customer::3", "Second espresso machine complaint this year: we offered a refund "
                        "or a replacement unit."),
        ("Customer::3", "Asked how long the warranty on the espresso machine's steam wand "
                        "lasts."),
        ("Customer::3", "Refund of the duplicate shipping fee charged on order 5102."),
        ("Customer::4", "Wants a refund for the espresso machine bought at the Turin "
                        "showroom."),
    ]
    ids = []
    for index in range(size - len(planted)):
        if index % 4 == 3:
            subject = rng.choice(list(OTHER_NOTES))
            template = rng.choice(OTHER_NOTES[subject])
            writer = "buyer-bot-1" if subject.startswith("Vendor") else "pricing-bot"
        else:
            subject, template = rng.choice(CUSTOMERS), rng.choice(CUSTOMER_NOTES)
            writer = rng.choice(writers)
        system.remember(subject, _fill_in(template, rng), by=writer,
                        kind=rng.choice(["note", "fact", "summary"]),
                        tags=rng.sample(["billing", "shipping", "vip", "churn-risk",
                                         "api", "contract"], rng.randrange(0, 3)))
        stored += 1
        if index % 37 == 0 and planted:  # spread the planted ones through the ledger
            subject, note = planted.pop(0)
            ids.append(system.remember(subject, note, by=rng.choice(writers),
                                       kind="fact", tags=["returns"]).id)
            stored += 1
    for subject, note in planted:
        ids.append(system.remember(subject, note, by="refund-bot", tags=["returns"]).id)
        stored += 1
    return Corpus(tuple(ids[:3]), ids[3], ids[4], ids[5], stored)


def ids(found: list[Memory]) -> list[str]:
    return [item.id for item in found]


def count_memories(system: Charter) -> int:
    with system.store.reading() as conn:
        return int(conn.execute(select(func.count()).select_from(memories)).scalar_one())


# -- recall ---------------------------------------------------------------------------------

def test_recall_ranks_the_relevant_memories_first(acme: Charter):
    corpus = fill(acme)
    assert corpus.count >= 200
    found = acme.recall("Customer::3", "espresso refund", by="support-bot", limit=20)
    assert set(ids(found[:3])) == set(corpus.relevant)  # both words: first
    assert set(ids(found[3:])) == {corpus.espresso_only, corpus.refund_only}  # one word
    assert all(item.subject == "Customer::3" and item.score is not None for item in found)
    scores = [item.score for item in found]
    assert scores == sorted(scores, reverse=True)  # type: ignore[type-var]
    # Stemming: other forms of the words find the same memories.
    refunded = acme.recall("customer:3", "refunded machines", by="triage-bot", limit=3)
    assert set(ids(refunded)) == set(corpus.relevant)
    cracked = acme.recall("Customer::3", "cracked tank", by="triage-bot")
    assert ids(cracked)[:1] == [corpus.relevant[1]]
    assert acme.recall("Customer::3", "espresso refund", by="support-bot",
                       limit=2) == found[:2]
    assert acme.recall("Customer::3", "quokka", by="support-bot") == []


def test_an_empty_query_lists_the_subjects_latest(acme: Charter):
    fill(acme, size=200)
    latest = acme.recall("Customer::3", "", by="support-bot", limit=500)
    assert latest and all(item.subject == "Customer::3" for item in latest)
    assert [item.seq for item in latest] == sorted((item.seq for item in latest),
                                                   reverse=True)
    assert all(item.score is None for item in latest)
    assert acme.memories("Customer::3", by="support-bot", limit=3) == latest[:3]
    with acme.store.reading() as conn:
        assert memory.subject_memories(conn, "Customer::3", reader=None,
                                       limit=500) == latest


@pytest.mark.parametrize("query", [
    'espresso"', '"espresso', "espresso OR", "NEAR(espresso refund)", "text:espresso",
    "espresso*", "espresso & !refund | (x", "espresso'); DROP TABLE memories; --", "-espresso",
    "^espresso", "espresso:*", "{text tags}: espresso", "ESPRESSO", "espresso\\",
])
def test_query_text_is_words_never_search_syntax(acme: Charter, query: str):
    acme.remember("Customer::3", "The espresso machine was returned.", by="support-bot")
    acme.remember("Customer::3", "Asked about invoices.", by="support-bot")
    found = acme.recall("Customer::3", query, by="support-bot")
    assert [item.text for item in found][:1] == ["The espresso machine was returned."]
    assert count_memories(acme) == 2


def test_tags_are_searched_too(acme: Charter):
    tagged = acme.remember("Customer::5", "Renewal call booked.", by="support-bot",
                           tags=["churn-risk", "vip"])
    acme.remember("Customer::5", "Changed the billing address.", by="support-bot")
    assert ids(acme.recall("Customer::5", "churn", by="support-bot")) == [tagged.id]
    assert tagged.tags == ("churn-risk", "vip")


# -- governance -----------------------------------------------------------------------------

def test_only_finance_reads_and_writes_payroll_memory(acme: Charter):
    kept = acme.remember("Payroll::2026-11", "Bonus run for the support team moved to the "
                         "25th.", by="ap-bot-1", kind="fact")
    assert ids(acme.recall("Payroll::2026-11", "bonus", by="tom.brennan")) == [kept.id]
    before = len(acme.events())
    for refused in (lambda: acme.recall("Payroll::2026-11", "bonus", by="triage-bot"),
                    lambda: acme.recall("Payroll::2026-11", "", by="dana.whitfield"),
                    lambda: acme.memories("Payroll::2026-11", by="buyer-bot-1")):
        with pytest.raises(Forbidden, match="payroll-never-outside-finance") as caught:
            refused()
        assert "Bonus" not in caught.value.message
        assert caught.value.details["outcome"] == "deny"
    with pytest.raises(Forbidden, match="payroll-never-outside-finance"):
        acme.remember("Payroll::2026-11", "Salary of Dana is …", by="support-bot")
    acme.flush_decisions()
    logged = acme.events()[before:]
    assert [e.kind for e in logged] == ["decision.made"] * 4  # refusals, nothing else
    assert {e.payload["resource"] for e in logged if e.payload} == {"Payroll::2026-11"}
    assert count_memories(acme) == 1


def test_an_escalation_refuses_and_names_who_may(acme: Charter, workspace: Path):
    policies = workspace / "policies" / "memory.cedar"
    policies.write_text(policies.read_text(encoding="utf-8").replace(
        "resource is Customer || resource is Vendor || resource is Sku",
        "resource is Customer || resource is Vendor") + (
        '\n@id("sku-memory-for-managers")\npermit (principal in Role::"manager", '
        'action in [Action::"memory.read", Action::"memory.write"], resource is Sku);\n'),
        encoding="utf-8")
    acme.load_policies()
    acme.remember("Sku::espresso-9", "Margin is 31% after the supplier's increase.",
                  by="nina.kapoor")
    with pytest.raises(Forbidden, match=r"nina\.kapoor") as caught:
        acme.recall("Sku::espresso-9", "margin", by="pricing-bot")
    assert caught.value.details["outcome"] == "escalate"
    assert acme.approvals() == []  # memory is not shared by approval


def test_private_memory_is_read_back_by_its_author_only(acme: Charter):
    shared = acme.remember("Customer::3", "Espresso machine refund approved.",
                           by="support-bot")
    private = acme.remember("Customer::3", "I suspect the espresso refunds are abused.",
                            by="refund-bot", private=True)
    assert private.private and not shared.private
    assert set(ids(acme.recall("Customer::3", "espresso", by="refund-bot"))) == {
        shared.id, private.id}
    assert ids(acme.recall("Customer::3", "espresso", by="support-bot")) == [shared.id]
    assert ids(acme.memories("Customer::3", by="triage-bot")) == [shared.id]
    assert ids(acme.memories("Customer::3", by="refund-bot")) == [private.id, shared.id]
    with acme.store.reading() as conn:
        assert ids(memory.subject_memories(conn, "Customer::3", reader=None,
                                           limit=10)) == [shared.id]
        assert ids(memory.subject_memories(conn, "Customer::3", reader="refund-bot",
                                           limit=10)) == [private.id, shared.id]


def test_subjects_are_written_like_resources(acme: Charter):
    kept = acme.remember("customer:42", "Moved to the Team plan.", by="support-bot")
    assert kept.subject == "Customer::42"
    assert ids(acme.recall('Customer::"42"', "team plan", by="triage-bot")) == [kept.id]
    assert acme.recall("Customer::4", "team", by="triage-bot") == []


@pytest.mark.parametrize(("call", "message"), [
    ({"subject": ""}, "Type::id"),
    ({"subject": 42}, "Type::id"),
    ({"subject": "Nonsense::1"}, "Nonsense"),
    ({"subject": "Vendor::unknown-co"}, "not a known Vendor"),
    ({"subject": "Member::nobody"}, "no member"),
    ({"text": "   "}, "needs text"),
    ({"text": "x" * 20_001}, "at most 20,000"),
    ({"kind": "memo"}, "not one of fact, note, summary"),
    ({"tags": "vip"}, "list of words"),
    ({"tags": ["bad tag!"]}, "letters, digits"),
    ({"tags": [f"t{n}" for n in range(21)]}, "at most 20 tags"),
    ({"private": "yes"}, "true or false"),
    ({"by": "nobody"}, "no member 'nobody'"),
])
def test_invalid_memories_change_nothing(acme: Charter, call: dict[str, object],
                                         message: str):
    args: dict[str, object] = {"subject": "Customer::3", "text": "A note.",
                               "by": "support-bot", **call}
    before = len(acme.events())
    with pytest.raises(InvalidInput, match=message):
        acme.remember(args.pop("subject"), args.pop("text"), **args)  # type: ignore[arg-type]
    acme.flush_decisions()
    assert len(acme.events()) == before and count_memories(acme) == 0


@pytest.mark.parametrize(("call", "message"), [
    ({"limit": 0}, "limit"), ({"limit": 1001}, "limit"), ({"limit": True}, "limit"),
    ({"query": "x" * 1001}, "at most 1,000"), ({"query": "?!…"}, "no words"),
    ({"query": None}, "is text"), ({"by": "nobody"}, "no member"),
    ({"subject": "Customer::"}, "empty"),
])
def test_invalid_recalls_change_nothing(acme: Charter, call: dict[str, object],
                                        message: str):
    acme.remember("Customer::3", "A note.", by="support-bot")
    args: dict[str, object] = {"subject": "Customer::3", "query": "note",
                               "by": "support-bot", **call}
    before = len(acme.events())
    with pytest.raises(InvalidInput, match=message):
        acme.recall(args.pop("subject"), args.pop("query"), **args)  # type: ignore[arg-type]
    acme.flush_decisions()
    assert len(acme.events()) == before


# -- forget ---------------------------------------------------------------------------------

SECRET = "Confidential: Zqxvelt disclosed a quorblax condition to our agent."
MARKERS = ("zqxvelt", "quorblax")


def _text_everywhere(conn: Connection, dialect: str) -> set[str]:
    """Which markers any column of any table holds (the full-text index's shadow
    tables included), as text or bytes."""
    found: set[str] = set()
    if dialect == "sqlite":
        tables = conn.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type = 'table'").scalars().all()
        for table in tables:
            for row in conn.exec_driver_sql(f'SELECT * FROM "{table}"'):
                for value in row:
                    raw = value if isinstance(value, bytes) else str(value).encode()
                    found.update(m for m in MARKERS if m.encode() in raw.lower())
        return found
    columns = conn.execute(text(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND data_type IN "
        "('text', 'character varying', 'character', 'tsvector', 'json', 'jsonb')")).all()
    assert ("memories", "search") in {tuple(c) for c in columns}
    for table, column in columns:
        for marker in MARKERS:
            hits = conn.execute(text(f'SELECT count(*) FROM "{table}" '
                                     f'WHERE "{column}"::text ILIKE :pattern'),
                                {"pattern": f"%{marker}%"}).scalar_one()
            if hits:
                found.add(marker)
    return found


def _in_files(system: Charter) -> set[str]:
    path = system.store.database_file
    assert path is not None
    found: set[str] = set()
    for file in (path, path.with_name(path.name + "-wal")):
        if file.exists():
            raw = file.read_bytes().lower()
            found.update(m for m in MARKERS if m.encode() in raw)
    return found


def test_forget_leaves_the_text_nowhere(acme: Charter):
    corpus = fill(acme, size=200)
    secret = acme.remember("Customer::3", SECRET, by="support-bot", tags=["health"])
    acme.remember("Customer::3", "Call back about the invoice.", by="support-bot")
    dialect = acme.store.dialect.name
    with acme.store.reading() as conn:
        assert _text_everywhere(conn, dialect) == set(MARKERS)  # the scan does find it
    if dialect == "sqlite":
        assert _in_files(acme) == set(MARKERS)

    forgotten = acme.forget(secret.id, by="support-bot", reason="erasure request 118")

    assert forgotten.redacted_seq == secret.seq and forgotten.flushed
    with acme.store.reading() as conn:
        assert _text_everywhere(conn, dialect) == set()
    if dialect == "sqlite":
        assert _in_files(acme) == set()
    assert all(m not in str(e.payload).lower() for e in acme.events() for m in MARKERS)
    report = acme.verify_ledger()
    assert report.ok and report.redacted == (secret.seq,)
    assert acme.recall("Customer::3", "zqxvelt quorblax", by="support-bot") == []
    assert set(ids(acme.recall("Customer::3", "espresso refund", by="support-bot",
                               limit=3))) == set(corpus.relevant)
    kinds = [e.kind for e in acme.events(subject="Customer::3")][-2:]
    assert kinds == ["ledger.redacted", "memory.forgotten"]


def test_who_may_forget(acme: Charter, workspace: Path):
    payroll = acme.remember("Payroll::2026-11", "Overtime approved for Tom.",
                            by="tom.brennan")
    note = acme.remember("Customer::3", "Wants invoices in Dutch.", by="support-bot")
    before = len(acme.events())
    with pytest.raises(Forbidden, match="payroll-never-outside-finance"):
        acme.forget(payroll.id, by="triage-bot", reason="tidy up")
    with pytest.raises(InvalidInput, match="reason"):
        acme.forget(note.id, by="support-bot", reason=" ")
    with pytest.raises(NotFound, match="no memory"):
        acme.forget("no-such-memory", by="support-bot", reason="tidy up")
    acme.flush_decisions()
    assert [e.kind for e in acme.events()[before:]] == ["decision.made"]  # the refusal
    assert count_memories(acme) == 2 and acme.verify_ledger().redacted == ()
    # A member permitted memory.write on the subject may (an erasure request) ...
    acme.forget(payroll.id, by="elena.petrova", reason="erasure request 7")
    # ... and so may the author, even without memory.write.
    policies = workspace / "policies" / "memory.cedar"
    policies.write_text(policies.read_text(encoding="utf-8").replace(
        'action in [Action::"memory.read", Action::"memory.write"],\n  resource\n)',
        'action in [Action::"memory.read"],\n  resource\n)', 1), encoding="utf-8")
    acme.load_policies()
    with pytest.raises(Forbidden):
        acme.remember("Customer::3", "Another note.", by="support-bot")
    with pytest.raises(Forbidden, match="may not forget memory"):
        acme.forget(note.id, by="triage-bot", reason="erasure request 8")
    acme.forget(note.id, by="support-bot", reason="erasure request 8")
    with pytest.raises(NotFound):
        acme.forget(note.id, by="support-bot", reason="again")
    assert count_memories(acme) == 0
    assert acme.verify_ledger().redacted == (payroll.seq, note.seq)


def test_a_memory_whose_event_was_redacted_by_hand_can_still_be_forgotten(acme: Charter):
    kept = acme.remember("Customer::3", "Quorblax allergy noted.", by="support-bot")
    acme.redact(kept.seq, actor="dpo", reason="erasure request 12")
    forgotten = acme.forget(kept.id, by="support-bot", reason="erasure request 12")
    assert forgotten.redaction_seq is None and forgotten.redacted_seq == kept.seq
    assert count_memories(acme) == 0
    with acme.store.reading() as conn:
        assert _text_everywhere(conn, acme.store.dialect.name) == set()
    report = acme.verify_ledger()
    assert report.ok and report.redacted == (kept.seq,)


def test_replay_rebuilds_the_memories_and_recall_follows(acme: Charter):
    corpus = fill(acme, size=200)
    acme.remember("Customer::3", "Private espresso refund doubts.", by="refund-bot",
                  private=True)
    acme.forget(corpus.refund_only, by="refund-bot", reason="erasure request 9")
    queries = ["espresso refund", "invoice billing", "courier delivery Lyon", ""]

    def snapshot() -> tuple[dict[str, list[tuple[object, ...]]], list[list[Memory]]]:
        with acme.store.reading() as conn:
            tables = {t.name: sorted(map(tuple, conn.execute(select(t)).all()), key=repr)
                      for t in READ_TABLES}
        recalled = [acme.recall(subject, query, by=by, limit=50)
                    for subject in ("Customer::3", "Customer::5")
                    for query in queries for by in ("refund-bot", "support-bot")]
        return tables, recalled

    before = snapshot()
    assert len(before[0]["memories"]) == corpus.count
    acme.rebuild_read_tables()
    after = snapshot()
    assert after == before
    assert corpus.refund_only not in {m.id for found in after[1] for m in found}
    assert set(ids(acme.recall("Customer::3", "espresso refund", by="support-bot",
                               limit=3))) == set(corpus.relevant)
