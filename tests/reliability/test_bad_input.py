"""Bad input changes nothing: malformed org files, policies, API bodies and engine replies,
each given to a Charter with real activity behind it (SQLite and PostgreSQL), are each
answered by an error that says what is wrong and where, and the ledger head and every
table read afterwards are exactly as they were before."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request, Response
from fastapi.testclient import TestClient
from sqlalchemy import select

from charter import ManualClock, Settings
from charter.api import create_app
from charter.engines import EngineError, RunContext, build
from charter.errors import OrgInvalid
from charter.gate import ActionGate
from charter.policy import PolicyInvalid
from charter.store import open_store
from charter.store.schema import metadata
from charter.system import Charter
from charter.types import HttpEngine, OpenAIEngine
from tests.conftest import EXAMPLE_ORG
from tests.engines.servers import serve
from tests.reliability.activity import populate
from tests.reliability.databases import KINDS, database

pytestmark = [pytest.mark.slow, pytest.mark.reliability]

BOT, ADMIN = "buyer-bot-1", "dana.whitfield"


@dataclass
class World:
    """A Charter with the example org and some work done, an API client over it, and a
    server answering as badly behaved webhooks and chat-completion endpoints."""

    system: Charter
    org: Path
    client: TestClient
    headers: dict[str, dict[str, str]]
    """Bearer headers by member."""
    folder: Path


class BadReplies:
    """Answers POST /{hook|llm}/{case}... with the raw reply registered for the case."""

    def __init__(self) -> None:
        self.bodies: dict[str, bytes] = {}
        self.app = FastAPI()
        self.app.post("/hook/{case}")(self.answer)
        self.app.post("/llm/{case}/v1/chat/completions")(self.answer)

    async def answer(self, case: str, request: Request) -> Response:
        await request.body()
        return Response(self.bodies[case], media_type="application/json")


@pytest.fixture(scope="module")
def bad_replies() -> Iterator[tuple[BadReplies, str]]:
    replies = BadReplies()
    with serve(replies.app) as url:
        yield replies, url


@pytest.fixture(scope="module", params=KINDS)
def world(request: pytest.FixtureRequest,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder = tmp_path_factory.mktemp(f"bad-input-{request.param}")
    shutil.copytree(EXAMPLE_ORG.parent, folder / "org")
    with database(request.param, folder) as url:
        settings = Settings(secret="bad-input-secret")
        clock = ManualClock()
        system = Charter(open_store(url, settings), settings, clock)
        try:
            system.load_org(folder / "org" / "charter.yaml")
            populate(system, clock, rounds=4)
            headers = {member: {"Authorization": "Bearer " + system.create_token(
                member, admin=member == ADMIN).secret} for member in (BOT, ADMIN)}
            with TestClient(create_app(system), raise_server_exceptions=False) as client:
                yield World(system, folder / "org" / "charter.yaml", client, headers, folder)
        finally:
            system.close()


def state(system: Charter) -> dict[str, Any]:
    """Everything a later read could see: the signed head and every table's rows."""
    system.flush_decisions()
    dump: dict[str, Any] = {"head": system.checkpoint().to_json()}
    with system.store.reading() as conn:
        for table in metadata.sorted_tables:
            key = list(table.primary_key.columns) or list(table.columns)
            dump[table.name] = [tuple(row) for row in
                                conn.execute(select(table).order_by(*key))]
    return dump


def line_of(text: str, marker: str, start: int = 0) -> int:
    """The line of the first occurrence of `marker` in `text` from `start` on."""
    return text[:text.index(marker, start)].count("\n") + 1


# -- org files ------------------------------------------------------------------------------

@dataclass(frozen=True)
class OrgEdit:
    old: str
    new: str
    says: str
    at: str = ""
    """A piece of the edited text on the line the problem is reported at (default: the
    first line of `new`)."""
    below: int = 0
    """Lines below `at` that the problem is reported at."""


ANCHORS = "abcdef"
BOMB = "policies: policies\nb0: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"b{n}: &{ANCHORS[n]} [{', '.join([f'*{ANCHORS[n - 1]}'] * 10)}]\n" for n in range(1, 6))
"""Six short lines, each naming the one before ten times: a million values."""
ORG_EDITS: dict[str, Any] = {
    "YAML syntax: an unclosed list": OrgEdit(
        "roles: [executive, manager, approver]", "roles: [executive, manager, approver",
        "YAML syntax error", below=1),
    "YAML: a key given twice": OrgEdit(
        "    capacity: 25\n", "    capacity: 25\n    capacity: 30\n",
        "duplicate key 'capacity'", at="capacity: 30"),
    "YAML: aliases that expand to millions of values": OrgEdit(
        "policies: policies", BOMB, "too large: aliases expand it", at="b5:"),
    "money with a thousands separator": OrgEdit('amount: 60000\n', 'amount: "60,000"\n',
                                                "Input should be a valid decimal"),
    "an unknown field": OrgEdit(
        "    capacity: 25\n", "    capacity: 25\n    capacty: 3\n", "unknown field `capacty`",
        at="capacty"),
    "a cycle in reports_to": OrgEdit(
        "    title: Chief Executive Officer\n",
        "    title: Chief Executive Officer\n    reports_to: buyer-bot-1\n",
        "the chain of command has a cycle: dana.whitfield → buyer-bot-1 → james.liu",
        at="reports_to: buyer-bot-1"),
    "reports_to an unknown member": OrgEdit(
        "reports_to: james.liu\n    skills: {purchasing: 0.8",
        "reports_to: james.lu\n    skills: {purchasing: 0.8", "unknown member `james.lu`"),
    "a member id given twice": OrgEdit("- id: buyer-bot-2", "- id: buyer-bot-1",
                                       "duplicate member id `buyer-bot-1`",
                                       at="- id: buyer-bot-1"),
    "an unknown skill": OrgEdit("skills: {purchasing: 0.8, negotiation: 0.5}",
                                "skills: {purchasing: 0.8, haggling: 0.5}",
                                "unknown skill `haggling`"),
    "a skill level above 1": OrgEdit("skills: {purchasing: 0.8, negotiation: 0.5}",
                                     "skills: {purchasing: 1.8, negotiation: 0.5}",
                                     "less than or equal to 1"),
    "a task type needing an unknown skill": OrgEdit(
        "skills: [purchasing]", "skills: [purchase]", "unknown skill `purchase`"),
    "money in words": OrgEdit("amount: 1500000\n", "amount: 1.5 million\n",
                              "Input should be a valid decimal"),
    "negative money": OrgEdit("limits: {purchase: 5000}", "limits: {purchase: -5000}",
                              "greater than or equal to 0"),
    "a negative cost": OrgEdit("cost: {per_task: 0.03}", "cost: {per_task: -0.03}",
                               "greater than or equal to 0"),
    "a currency that is not a code": OrgEdit("currency: USD", "currency: dollars",
                                             "org.currency"),
    "a child budget above its parent": OrgEdit(
        "amount: 60000\n", "amount: 900000\n", "exceeds its parent", at="amount: 900000"),
    "a budget owned by nobody known": OrgEdit("owner: james.liu", "owner: jim",
                                              "unknown owner `jim`"),
    "a duration in words": OrgEdit("lease: 15m", "lease: fifteen minutes", "such as '15m'"),
    "a fallback retrying -1 times": OrgEdit(
        "fallback: [{retry: 1}, {reassign: 2}, {escalate: supervisor}]",
        "fallback: [{retry: -1}]", "greater than or equal to 1"),
    "escalating to an AI agent": OrgEdit(
        "fallback: [{retry: 1}, {reassign: 2}, {escalate: supervisor}]",
        "fallback: [{retry: 1}, {reassign: 2}, {escalate: buyer-bot-1}]", "is an AI agent"),
    "a task type with an unknown action": OrgEdit("action: purchase.create",
                                                  "action: purchase.make", "unknown action"),
    "money with more digits than money holds": OrgEdit(
        "amount: 1500000\n", "amount: 100000000000000000000000000000\n", "amount"),
    "money written as 1e30": OrgEdit("amount: 1500000\n", "amount: 1e30\n", "amount"),
    "a NUL character": OrgEdit("title: Purchasing agent\n", "title: Purchasing\x00agent\n",
                               "control characters are not allowed"),
}


@pytest.mark.parametrize("edit", list(ORG_EDITS.values()), ids=list(ORG_EDITS))
def test_an_invalid_org_file_is_refused_with_its_line_and_changes_nothing(world: World,
                                                                         edit: OrgEdit):
    source = world.org.read_text(encoding="utf-8")
    assert edit.old in source
    text = source.replace(edit.old, edit.new, 1)
    case = world.folder / "case"
    case.mkdir(exist_ok=True)
    (case / "policies").mkdir(exist_ok=True)
    for policy in (world.org.parent / "policies").glob("*.cedar"):
        shutil.copy(policy, case / "policies")
    path = case / "charter.yaml"
    path.write_text(text, encoding="utf-8")
    line = line_of(text, edit.at or edit.new.splitlines()[0], source.index(edit.old))
    line += edit.below
    before = state(world.system)
    with pytest.raises(OrgInvalid) as caught:
        world.system.load_org(path)
    assert f"charter.yaml:{line}:" in caught.value.message, caught.value.message
    assert edit.says in caught.value.message, caught.value.message
    assert "nothing was changed" in caught.value.message
    assert state(world.system) == before


def test_an_org_over_the_api_with_too_many_digits_is_refused_not_failed(world: World):
    """Money too long to hold, posted to /v1/org: a 422 naming the line."""
    text = world.org.read_text(encoding="utf-8").replace(
        "amount: 1500000\n", "amount: 100000000000000000000000000000\n", 1)
    before = state(world.system)
    answer = world.client.post("/v1/org", json={"yaml": text},
                               headers=world.headers[ADMIN])
    assert state(world.system) == before
    assert answer.status_code == 422, answer.text
    assert f"charter.yaml:{line_of(text, 'amount: 1000')}" in answer.json()["error"]["message"]


# -- policies -------------------------------------------------------------------------------

BAD_POLICIES = {
    "Cedar syntax error": ('@id("broken")\npermit (principal action, resource);\n', 1,
                           "unexpected token"),
    "an unknown entity type": ('\n\n@id("ghost")\npermit (principal is Ghost, action, '
                               'resource);\n', 3, "unrecognized entity type `Ghost`"),
    "an attribute members do not have": (
        '@id("salary")\npermit (principal, action == Action::"purchase.create", resource)\n'
        'when { principal.salary > 5 };\n', 1, "attribute `salary`"),
    "a string compared with money": (
        '@id("typed")\npermit (principal, action == Action::"purchase.create", resource)\n'
        'when { context.amount == "lots" };\n', 1, "not compatible"),
    "an unknown action": ('@id("nope")\npermit (principal, action == Action::"purchase.steal",'
                          ' resource);\n', 1, "unrecognized action"),
    "a policy id used twice": ('@id("frozen-vendors-blocked")\npermit (principal, action == '
                               'Action::"lease", resource);\n', 1, "duplicate policy id"),
    "a context attribute the action does not take": (
        '// refunds\n@id("by-reason")\npermit (principal, action == Action::"refund.issue", '
        'resource)\nwhen { context.reason == "goodwill" };\n', 2, "reason"),
}


@pytest.mark.parametrize(("text", "line", "says"), list(BAD_POLICIES.values()),
                         ids=list(BAD_POLICIES))
def test_an_invalid_policy_set_is_refused_with_file_and_line_and_changes_nothing(
        world: World, text: str, line: int, says: str):
    folder = world.folder / "bad-policies"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(world.org.parent / "policies", folder)
    (folder / "zz_bad.cedar").write_text(text, encoding="utf-8")
    before = state(world.system)
    with pytest.raises(PolicyInvalid) as caught:
        world.system.load_policies(folder)
    assert f"zz_bad.cedar:{line}" in caught.value.message, caught.value.message
    assert says in caught.value.message, caught.value.message
    assert state(world.system) == before
    assert world.system.authorize("buyer-bot-1", "purchase.create", "Vendor::globex",
                                  {"amount": 300}).outcome == "allow"  # the set in force


# -- API bodies -------------------------------------------------------------------------------

PURCHASE = {"type": "purchase_order", "subject": "Vendor::globex", "payload": {"amount": 100}}

API_CALLS: dict[str, Any] = {
    "a task type that is a number": (
        "POST", "/v1/tasks", {"json": {**PURCHASE, "type": 3}}, 422, "body.type"),
    "an unknown task type": (
        "POST", "/v1/tasks", {"json": {**PURCHASE, "type": "purchase_orders"}}, 422,
        "unknown task type 'purchase_orders'"),
    "a NUL in the subject": (
        "POST", "/v1/tasks", {"json": {**PURCHASE, "subject": "Vendor::glo\x00bex"}}, 422,
        "body.subject"),
    "a NUL in the payload": (
        "POST", "/v1/tasks", {"json": {**PURCHASE, "payload": {"note": "a\x00b"}}}, 422,
        "NUL character"),
    "a subject over 256 characters": (
        "POST", "/v1/tasks", {"json": {**PURCHASE, "subject": "x" * 300}}, 422,
        "body.subject: String should have at most 256 characters"),
    "a priority out of range": (
        "POST", "/v1/tasks", {"json": {**PURCHASE, "priority": 10**30}}, 422,
        "body.priority"),
    "a payload that is a list": (
        "POST", "/v1/tasks", {"json": {**PURCHASE, "payload": [1, 2]}}, 422, "body.payload"),
    "a field that names who acts": (
        "POST", "/v1/tasks", {"json": {**PURCHASE, "requester": ADMIN}}, 422,
        "body.requester: Extra inputs are not permitted"),
    "a deadline in the past": (
        "POST", "/v1/tasks", {"json": {**PURCHASE, "deadline": "2020-01-01T00:00:00Z"}}, 422,
        "deadline must be a timezone-aware time in the future"),
    "a number too large for JSON": (
        "POST", "/v1/tasks", {"content": b'{"type": "purchase_order", "subject": '
                                         b'"Vendor::globex", "payload": {"amount": 1e400}}'},
        422, "body.payload"),
    "a body that is not JSON": (
        "POST", "/v1/tasks", {"content": b"{not json"}, 422, "JSON decode error"),
    "a body that is not UTF-8": (
        "POST", "/v1/tasks", {"content": b"\xff\xfe{}"}, 422, "JSON decode error"),
    "a fencing token that is text": (
        "POST", "/v1/tasks/some-task/complete", {"json": {"fencing": "one"}}, 422,
        "body.fencing"),
    "a cursor not made by Charter": (
        "GET", "/v1/tasks", {"params": {"cursor": "W1siYSJd"}}, 422,
        "that cursor was not made by Charter"),
    "a cursor over 512 characters": (
        "GET", "/v1/tasks", {"params": {"cursor": "x" * 600}}, 422, "query.cursor"),
    "a page of 0 items": (
        "GET", "/v1/tasks", {"params": {"limit": 0}}, 422, "query.limit"),
    "negative spend": (
        "POST", "/v1/spend", {"json": {"amount": "-5", "purpose": "x"}}, 422, "body.amount"),
    "spend of 1e400": (
        "POST", "/v1/spend", {"json": {"amount": "1e400", "purpose": "x"}}, 422,
        "body.amount"),
    "an empty memory": (
        "POST", "/v1/memory", {"json": {"subject": "Customer::1", "text": ""}}, 422,
        "body.text"),
    "an org that is not a mapping": (
        "POST", "/v1/org", {"json": {"yaml": "- just\n- a list\n"}, "as": ADMIN}, 422,
        "must be a mapping"),
    "a policy with a syntax error": (
        "POST", "/v1/policies", {"json": {"files": {"bad.cedar": "permit(principal, action"}},
                                 "as": ADMIN}, 422, "bad.cedar:1"),
    "a priority of true": (
        "POST", "/v1/tasks", {"json": {**PURCHASE, "priority": True}}, 422, "body.priority"),
    "a 2 MB task payload": (
        "POST", "/v1/tasks", {"json": {**PURCHASE, "payload": {"amount": 100,
                                                               "note": "x" * 2_000_000}}},
        413, "task payload is too large"),
    "a 9 MB body": (
        "POST", "/v1/tasks", {"content": b"{" + b" " * 9_000_000 + b"}"}, 413,
        "request body is too large"),
    "a 9 MB body in chunks of unannounced length": (
        "POST", "/v1/tasks", {"content": [b" " * 1_000_000] * 9}, 413,
        "request body is too large"),
}


@pytest.mark.parametrize(("method", "path", "options", "status", "says"),
                         list(API_CALLS.values()), ids=list(API_CALLS))
def test_a_malformed_request_is_refused_saying_what_and_where_and_changes_nothing(
        world: World, method: str, path: str, options: dict[str, Any], status: int,
        says: str):
    options = dict(options)
    headers = {**world.headers[options.pop("as", BOT)]}
    if "content" in options:
        headers["Content-Type"] = "application/json"
    before = state(world.system)
    answer = world.client.request(method, path, headers=headers, **options)
    after = state(world.system)
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert set(error) == {"type", "message", "details"}
    assert says in error["message"], error
    assert after == before


# -- engine replies -------------------------------------------------------------------------

WEBHOOK_REPLIES = {
    "not JSON": (b"<html>502 Bad Gateway</html>", "answered with something that is not JSON"),
    "a JSON list": (b"[1, 2]", "the reply: Input should be a valid dictionary"),
    "success that is not a boolean": (b'{"success": "maybe"}', "success: Input should be"),
    "an unknown field": (b'{"sucess": true}', "sucess: Extra inputs are not permitted"),
    "an action without a resource": (b'{"actions": [{"action": "purchase.create"}]}',
                                     "actions.0.resource: Field required"),
    "a negative cost": (b'{"cost": -1}', "cost: Input should be greater than or equal to 0"),
    "token usage that is not a count": (b'{"usage": {"tokens": "many"}}', "usage.tokens"),
}
CHAT_REPLIES = {
    "not JSON": (b"garbage", "sent a reply that is not a chat completion"),
    "an empty object": (b"{}", "not a chat completion"),
    "no choices": (b'{"choices": []}', "sent a reply without choices"),
    "a message that is text": (b'{"choices": [{"message": "hello"}]}',
                               "not a chat completion"),
    "tool calls that are not a list": (
        b'{"choices": [{"message": {"tool_calls": "purchase_create"}}]}',
        "not a chat completion"),
}
ENGINE_REPLIES = [("http", name, *reply) for name, reply in WEBHOOK_REPLIES.items()] + [
    ("openai", name, *reply) for name, reply in CHAT_REPLIES.items()]


@pytest.mark.parametrize(("kind", "case", "reply", "says"), ENGINE_REPLIES,
                         ids=[f"{kind}: {case}" for kind, case, _, _ in ENGINE_REPLIES])
def test_a_malformed_engine_reply_fails_the_run_saying_why_and_changes_nothing(
        world: World, bad_replies: tuple[BadReplies, str], kind: str, case: str,
        reply: bytes, says: str):
    replies, url = bad_replies
    key = f"{kind}-{len(replies.bodies)}"
    replies.bodies[key] = reply
    if kind == "http":
        where = f"{url}/hook/{key}"
        spec: Any = HttpEngine(kind="http", url=where, retries=0)
    else:
        where = f"{url}/llm/{key}/v1"
        spec = OpenAIEngine(kind="openai", base_url=where, model="buyer")
    system = world.system
    task = system.submit_task("purchase_order", "Vendor::globex", {"amount": 100},
                              requester="james.liu")
    system.assign_task(task.id, BOT, actor="james.liu")
    claim = system.claim_next(BOT)
    assert claim is not None
    context = RunContext(system.org.member(BOT), system.org,
                         ActionGate(system, BOT, claim.task, claim.fencing))
    before = state(system)
    try:
        with pytest.raises(EngineError) as caught:
            asyncio.run(build(spec).run(claim.task, None, context))
        assert state(system) == before
    finally:
        system.cancel_task(claim.task.id, actor="james.liu", reason="the test is over")
    assert where in str(caught.value) and says in str(caught.value), str(caught.value)


def test_there_are_at_least_thirty_kinds_of_bad_input():
    kinds = (len(ORG_EDITS) + 1 + len(BAD_POLICIES) + len(API_CALLS) + len(ENGINE_REPLIES))
    assert kinds >= 30, kinds

