"""What does a governed decision cost? `Charter.authorize` against raw cedarpy.

The claim measured: on an org of 10,000 members and 100 Cedar policies, a decision through
`Charter.authorize` (the request checked against the org, the chain of command walked,
the decision logged to the ledger, an approval opened when it escalates) costs little
more than the Cedar evaluation it is built on, and logged decisions are sustained at
thousands per second.

The org is generated: a chain of command six levels deep (CEO → 5 VPs → 25 directors →
125 managers → 625 team leads → agents, with most members AI agents at the leaves), each
level with spending limits several times its reports'; five departments, one team per
manager; seven actions (five take an `amount: Amount` context) on vendors, customers
and projects; and 100 policies, with `@id`, mostly permits by role and department
within limits plus some forbids. It is written to a temporary directory and opened with
`charter.open("sqlite:///<tmp>/bench.db", ...)`.

Measured in one process, each request timed through Charter and through its raw
baselines one after the other (in alternating order), so both sides see the same
machine, caches and background ledger writer:

1. latency p50/p99 of `Charter.authorize` for an allow (an agent buys within its limit),
   a deny (an agent buys from a frozen vendor: the forbid never reads the principal, so
   it stops every approver alike and Charter denies without asking the chain) and an
   escalate (an agent buys above its director's limit: the member and its first three
   managers are not permitted, the 4th ancestor is the first who is; an approval is
   opened). Beside each:
   raw `cedarpy.is_authorized` on the same request with the engine's pre-parsed
   `PolicySet`, `Entities` and `Schema`; for the escalate, ONE raw
   `cedarpy.is_authorized_batch` over the member's chain (the principals Charter
   checks). Escalations are new distinct requests (another agent and amount each time,
   so each opens a new approval); the same escalation repeated (reusing its pending
   approval) is reported beside them. For context, also: the same Cedar work Charter
   does (one call for the member plus one batch over its chain); a deny that needs the
   whole chain (an amount over every limit: no forbid, nobody permitted); and a deny for
   the CEO (no chain to check).
2. sustained logged decisions: N allow decisions through `Charter.authorize`, then
   `flush_decisions()`, timed end to end; the ledger must then hold them all and verify.

Requests are measured in blocks of one kind (`--block`, default 50), cycling through the
kinds: with `--block 1` every request follows one of another kind, and the one right
after an escalation (its database transaction) finds the caches cold, and whichever side
is timed first pays for it.

Run:  python benchmarks/authorize.py [--members N] [--samples N] [--block N]
                                     [--decisions N] [--profile] [--json]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cedarpy
import yaml

import charter
from charter import Settings
from charter.system import Charter

POLICIES = 100
"""Policies in the generated set (the generator is built to make exactly this many)."""
WARMUP = 200
"""Requests of each kind made (Charter and raw) before any timing starts."""
TREND = 200
"""New escalations at each end of the run compared, to show latency growing with the
number of pending approvals."""
BLOCK = 50
"""Requests of one kind measured in a row, by default, before the next kind's."""
DEPARTMENTS = ("procurement", "finance", "support", "operations", "engineering")
FANOUT = 5
"""Reports per manager above the team leads: 5 VPs, 25 directors, 125 managers, 625 leads."""
LEVELS = ("ceo", "vp", "director", "manager", "lead", "agent")
LIMITS = {"ceo": 5_000_000, "vp": 500_000, "director": 100_000, "manager": 20_000,
          "lead": 5_000, "agent": 1_000}
"""Each level's limit for every amount action (the CEO's is the org's ceiling)."""
AMOUNT_ACTIONS = {
    # action: (limit name, the department's working role, resource type)
    "purchase.create": ("purchase", "buyer", "Vendor"),
    "invoice.approve": ("invoice", "accountant", "Vendor"),
    "payment.release": ("payment", "payments", "Vendor"),
    "refund.issue": ("refund", "refunds", "Customer"),
    "expense.submit": ("expense", "spender", "Project"),
}
PLAIN_ACTIONS = {"ticket.resolve": "Customer", "vendor.onboard": "Vendor"}
WORK_ROLES = {"procurement": ["buyer", "spender"], "finance": ["accountant", "payments"],
              "support": ["refunds", "support_agent"], "operations": ["spender"],
              "engineering": ["spender"]}
VENDORS = 60
FROZEN = ("vendor-007", "vendor-013", "vendor-042")
CUSTOMERS = 40
PROJECTS = 30


# -- the generated org -----------------------------------------------------------------

@dataclass
class GeneratedOrg:
    document: dict[str, Any]
    policies: dict[str, str]
    chains: dict[str, list[str]] = field(default_factory=dict)
    """Each member's managers, nearest first."""
    buyers: list[str] = field(default_factory=list)
    """Procurement agents: the requesters of every measured decision."""


def _member(member_id: str, level: str, department: str, roles: list[str],
            teams: list[str], reports_to: str | None) -> dict[str, Any]:
    limit = LIMITS[level]
    item: dict[str, Any] = {
        "id": member_id, "kind": "ai" if level == "agent" else "human",
        "title": level, "department": department, "roles": roles, "teams": teams,
        "limits": {name: limit for name, _, _ in AMOUNT_ACTIONS.values()},
    }
    if reports_to is not None:
        item["reports_to"] = reports_to
    return item


def generate_org(members: int) -> GeneratedOrg:
    """An org of `members` members (at least 1,406: 781 managers and a report for each
    of the 625 team leads), six levels deep."""
    members_doc = [_member("ceo", "ceo", "executive", ["executive", "approver"],
                           ["leadership"], None)]
    chains: dict[str, list[str]] = {"ceo": []}
    leads: list[tuple[str, str, str]] = []  # (lead, department, team)
    teams: dict[str, dict[str, str]] = {"leadership": {"name": "Leadership",
                                                       "department": "executive"}}
    for department in DEPARTMENTS:
        vp = f"vp-{department}"
        members_doc.append(_member(vp, "vp", department, ["vp", "approver"],
                                   ["leadership"], "ceo"))
        chains[vp] = ["ceo"]
        for d in range(FANOUT):
            director = f"dir-{department}-{d}"
            members_doc.append(_member(director, "director", department,
                                       ["director", "approver"], [], vp))
            chains[director] = [vp, "ceo"]
            for m in range(FANOUT):
                manager = f"mgr-{department}-{d}{m}"
                team = f"team-{department}-{d}{m}"
                teams[team] = {"name": f"Team {department} {d}{m}", "department": department}
                members_doc.append(_member(manager, "manager", department,
                                           ["manager", "approver"], [team], director))
                chains[manager] = [director, *chains[director]]
                for t in range(FANOUT):
                    lead = f"lead-{department}-{d}{m}{t}"
                    members_doc.append(_member(lead, "lead", department,
                                               ["lead", "approver"], [team], manager))
                    chains[lead] = [manager, *chains[manager]]
                    leads.append((lead, department, team))
    agents = members - len(members_doc)
    if agents < len(leads):
        raise SystemExit(f"--members must be at least {len(members_doc) + len(leads)}")
    buyers = []
    for number in range(agents):
        lead, department, team = leads[number % len(leads)]
        agent = f"agent-{number:05d}"
        members_doc.append(_member(agent, "agent", department, WORK_ROLES[department],
                                   [team], lead))
        chains[agent] = [lead, *chains[lead]]
        if department == "procurement":
            buyers.append(agent)
    document = {
        "org": {"id": "bench", "name": "Benchmark Corporation", "currency": "USD"},
        "departments": {"executive": "Executive office",
                        **{d: f"The {d} department" for d in DEPARTMENTS}},
        "roles": {role: f"The {role} role" for role in (
            "executive", "vp", "director", "manager", "lead", "approver", "buyer",
            "accountant", "payments", "refunds", "support_agent", "spender",
            "vendor_manager")},
        "teams": teams,
        "resources": {
            "Vendor": {"description": "A supplier",
                       "attributes": {"frozen": "Bool", "risk": "String"},
                       "items": {f"vendor-{v:03d}": {
                           "frozen": f"vendor-{v:03d}" in FROZEN,
                           "risk": ("low", "medium", "high")[v % 3]} for v in range(VENDORS)}},
            "Customer": {"description": "A customer account",
                         "attributes": {"tier": "String?"},
                         "items": {f"customer-{c:03d}": {"tier": ("basic", "vip")[c % 2]}
                                   for c in range(CUSTOMERS)}},
            "Project": {"description": "An internal project",
                        "attributes": {"sensitive": "Bool"},
                        "items": {f"project-{p:03d}": {"sensitive": p % 5 == 0}
                                  for p in range(PROJECTS)}},
        },
        "actions": {
            **{action: {"description": f"{action}, with an amount",
                        "context": {"amount": "Amount"}, "resources": [resource]}
               for action, (_, _, resource) in AMOUNT_ACTIONS.items()},
            **{action: {"description": action, "resources": [resource]}
               for action, resource in PLAIN_ACTIONS.items()},
        },
        "members": members_doc,
        "policies": "policies",
    }
    return GeneratedOrg(document, generate_policies(teams), chains, buyers)


def _permit(policy_id: str, principal: str, action: str, resource: str = "resource",
            when: str | None = None) -> str:
    condition = f"\nwhen {{ {when} }}" if when else ""
    return (f'@id("{policy_id}")\npermit (\n  principal{principal},\n'
            f'  action == Action::"{action}",\n  {resource}\n){condition};\n')


def _within(limit: str) -> str:
    return f"principal.limits has {limit} && context.amount <= principal.limits.{limit}"


def generate_policies(teams: dict[str, dict[str, str]]) -> dict[str, str]:
    """Exactly `POLICIES` policies, in one file per concern."""
    files: dict[str, list[str]] = {"spending.cedar": [], "approvals.cedar": [],
                                   "executive.cedar": [], "teams.cedar": [],
                                   "forbids.cedar": []}
    # 25: each department's working role, within its own limit, in its department.
    for department in DEPARTMENTS:
        for action, (limit, role, _) in AMOUNT_ACTIONS.items():
            files["spending.cedar"].append(_permit(
                f"{department}-{role}-{action}", f' in Role::"{role}"', action,
                when=f'principal in Department::"{department}" && {_within(limit)}'))
    # 25: approvers of each department, within their limit (what escalations climb to).
    for department in DEPARTMENTS:
        for action, (limit, _, _) in AMOUNT_ACTIONS.items():
            files["approvals.cedar"].append(_permit(
                f"{department}-approvers-{action}", ' in Role::"approver"', action,
                when=f'principal in Department::"{department}" && {_within(limit)}'))
    # 5: officers, within their limit, anywhere.
    for action, (limit, _, _) in AMOUNT_ACTIONS.items():
        files["executive.cedar"].append(_permit(
            f"executives-{action}", ' in Role::"executive"', action, when=_within(limit)))
    # 2: VPs and directors onboard vendors; vendor managers too.
    files["executive.cedar"].append(_permit("vps-onboard-vendors", ' in Role::"vp"',
                                            "vendor.onboard", "resource is Vendor"))
    files["executive.cedar"].append(_permit("vendor-managers-onboard",
                                            ' in Role::"vendor_manager"', "vendor.onboard",
                                            "resource is Vendor"))
    # 8 forbids.
    forbids = files["forbids.cedar"]
    forbids.append('@id("frozen-vendors-blocked")\nforbid (\n  principal,\n  action in ['
                   'Action::"purchase.create", Action::"invoice.approve", '
                   'Action::"payment.release"],\n  resource is Vendor\n)\n'
                   "when { resource.frozen };\n")
    for action, (limit, _, _) in AMOUNT_ACTIONS.items():
        forbids.append(f'@id("ai-never-above-{limit}-limit")\nforbid (\n  principal,\n'
                       f'  action == Action::"{action}",\n  resource\n)\n'
                       f'when {{ principal.kind == "ai" }}\nunless {{ {_within(limit)} }};\n')
    forbids.append('@id("high-risk-vendors-need-a-director")\nforbid (\n  principal,\n'
                   '  action == Action::"purchase.create",\n  resource is Vendor\n)\n'
                   'when { resource.risk == "high" && context.amount > 250000 && '
                   "principal.rank > 2 };\n")
    forbids.append('@id("sensitive-projects-no-ai-expenses")\nforbid (\n  principal,\n'
                   '  action == Action::"expense.submit",\n  resource is Project\n)\n'
                   'when { resource.sensitive && principal.kind == "ai" };\n')
    # The rest: support teams resolve tickets, team by team.
    remaining = POLICIES - sum(len(policies) for policies in files.values())
    support = sorted(team for team, spec in teams.items() if spec["department"] == "support")
    for team in (support * (remaining // len(support) + 1))[:remaining]:
        number = sum(1 for p in files["teams.cedar"] if f'"{team}' in p)
        files["teams.cedar"].append(_permit(
            f"{team}-resolves-tickets-{number}", f' in Team::"{team}"', "ticket.resolve",
            "resource is Customer", when='principal.status == "active"'))
    count = sum(len(policies) for policies in files.values())
    assert count == POLICIES, count
    return {name: "\n".join(policies) for name, policies in files.items()}


def write_org(generated: GeneratedOrg, directory: Path) -> Path:
    (directory / "policies").mkdir()
    for name, text in generated.policies.items():
        (directory / "policies" / name).write_text(text, encoding="utf-8")
    path = directory / "charter.yaml"
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    path.write_text(yaml.dump(generated.document, Dumper=dumper, sort_keys=False),
                    encoding="utf-8")
    return path


# -- the requests ----------------------------------------------------------------------

ACTION = "purchase.create"
OPEN_VENDORS = tuple(f"vendor-{v:03d}" for v in range(0, VENDORS, 3)
                     if f"vendor-{v:03d}" not in FROZEN)
"""Low-risk vendors that are not frozen."""


@dataclass(frozen=True)
class Request:
    member: str
    resource: str
    context: dict[str, int]
    cedar: dict[str, Any]
    """The same request in Cedar's form, for the raw calls."""
    chain: list[dict[str, Any]]
    """The same request for each member of the chain of command, for the raw batch."""


def make_request(generated: GeneratedOrg, member: str, vendor: str, amount: int) -> Request:
    base = {"action": {"type": "Action", "id": ACTION},
            "resource": {"type": "Vendor", "id": vendor}, "context": {"amount": amount}}
    return Request(member, f"Vendor::{vendor}", {"amount": amount},
                   {**base, "principal": {"type": "Member", "id": member}},
                   [{**base, "principal": {"type": "Member", "id": manager}}
                    for manager in generated.chains[member]])


class Requests:
    """The measured requests, each built before the clock starts. Escalations are
    numbered across the whole run, so every one is a new request (a new approval)."""

    def __init__(self, generated: GeneratedOrg) -> None:
        self.generated = generated
        self.buyers = generated.buyers
        self.escalations = 0

    def allow(self, number: int) -> Request:
        """An agent buys within its own limit from an open vendor."""
        return make_request(self.generated, self.buyers[number % len(self.buyers)],
                            OPEN_VENDORS[number % len(OPEN_VENDORS)], 1 + number % 1000)

    def deny(self, number: int) -> Request:
        """An agent buys from a frozen vendor: forbidden for everyone in its chain."""
        return make_request(self.generated, self.buyers[number % len(self.buyers)],
                            FROZEN[number % len(FROZEN)], 1 + number % 1000)

    def deny_everywhere(self, number: int) -> Request:
        """An agent buys above the CEO's limit: no forbid, but nobody in its chain is
        permitted, which only asking the whole chain shows."""
        return make_request(self.generated, self.buyers[number % len(self.buyers)],
                            OPEN_VENDORS[number % len(OPEN_VENDORS)],
                            LIMITS["ceo"] + 1 + number % 1000)

    def deny_at_top(self, number: int) -> Request:
        """The CEO buys from a frozen vendor: forbidden, and nobody above to ask."""
        return make_request(self.generated, "ceo", FROZEN[number % len(FROZEN)],
                            1 + number % 1000)

    def escalate(self, _number: int) -> Request:
        """Above the agent's, its lead's, manager's and director's limits (100,000),
        within its VP's (500,000): the 4th ancestor approves. New each time."""
        self.escalations += 1
        number = self.escalations
        return make_request(self.generated, self.buyers[number % len(self.buyers)],
                            OPEN_VENDORS[number % len(OPEN_VENDORS)], 100_000 + number)

    def escalate_again(self, _number: int) -> Request:
        """One escalation, the same each time: its pending approval is reused."""
        return make_request(self.generated, self.buyers[0], OPEN_VENDORS[0], 300_000)


# -- latency ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Handles:
    """The engine's pre-parsed Cedar handles: what a raw call is given."""

    policies: Any
    entities: Any
    schema: Any
    sliced: Any
    """The policies that can apply to the measured action alone: what Charter's engine
    evaluates a request against."""

    def single(self, request: Request) -> Any:
        return cedarpy.is_authorized(request.cedar, self.policies, self.entities, self.schema)

    def batch(self, request: Request) -> list[Any]:
        return list(cedarpy.is_authorized_batch(request.chain, self.policies,
                                                self.entities, self.schema))

    def single_and_batch(self, request: Request) -> list[Any]:
        return [self.single(request), *self.batch(request)]

    def single_sliced(self, request: Request) -> Any:
        return cedarpy.is_authorized(request.cedar, self.sliced, self.entities, self.schema)

    def single_and_batch_sliced(self, request: Request) -> list[Any]:
        return [self.single_sliced(request), *cedarpy.is_authorized_batch(
            request.chain, self.sliced, self.entities, self.schema)]


@dataclass
class Scenario:
    kind: str
    outcome: str
    make: Callable[[int], Request]
    baselines: dict[str, Callable[[Request], Any]]
    expected_raw: dict[str, list[str]]
    """Each baseline's expected Cedar decisions, in order (checked after timing)."""
    target: dict[str, float | None]
    """Per baseline: the p50 ratio the claim allows (None: shown for context)."""
    charter_ns: list[int] = field(default_factory=list)
    raw_ns: dict[str, list[int]] = field(default_factory=dict)
    decide_only: bool = False
    """Time `Authority.decide` (the decision alone: no approval opened, nothing logged)
    instead of `Charter.authorize`."""


def scenarios(requests: Requests, handles: Handles) -> list[Scenario]:
    allow, deny = "Decision.Allow", "Decision.Deny"
    single, sliced = "is_authorized", "sliced: is_authorized"
    batch, both = "batch(chain of 5), 1 call", "is_authorized + batch(chain of 5)"
    both_sliced = "sliced: is_authorized + batch"
    return [
        Scenario("allow", "allow", requests.allow,
                 {single: handles.single, sliced: handles.single_sliced},
                 {single: [allow], sliced: [allow]}, {single: 1.5, sliced: None}),
        Scenario("deny (frozen vendor: a forbid on everyone)", "deny", requests.deny,
                 {single: handles.single, sliced: handles.single_sliced},
                 {single: [deny], sliced: [deny]}, {single: 1.5, sliced: None}),
        Scenario("deny (over every limit: chain of 5 checked)", "deny",
                 requests.deny_everywhere,
                 {single: handles.single, both: handles.single_and_batch,
                  both_sliced: handles.single_and_batch_sliced},
                 {single: [deny], both: [deny] * 6, both_sliced: [deny] * 6},
                 {single: None, both: None, both_sliced: None}),
        Scenario("deny (same forbid, CEO: no chain to check)", "deny",
                 requests.deny_at_top, {single: handles.single},
                 {single: [deny]}, {single: None}),
        Scenario("escalate to 4th ancestor, new requests", "escalate", requests.escalate,
                 {batch: handles.batch, both: handles.single_and_batch,
                  both_sliced: handles.single_and_batch_sliced},
                 {batch: [deny] * 3 + [allow] * 2, both: [deny] * 4 + [allow] * 2,
                  both_sliced: [deny] * 4 + [allow] * 2},
                 {batch: 1.5, both: None, both_sliced: None}),
        Scenario("escalate, the decision alone (Authority.decide)", "escalate",
                 requests.escalate,
                 {batch: handles.batch, both: handles.single_and_batch,
                  both_sliced: handles.single_and_batch_sliced},
                 {batch: [deny] * 3 + [allow] * 2, both: [deny] * 4 + [allow] * 2,
                  both_sliced: [deny] * 4 + [allow] * 2},
                 {batch: None, both: None, both_sliced: None}, decide_only=True),
        Scenario("escalate, same request (approval reused)", "escalate",
                 requests.escalate_again,
                 {batch: handles.batch}, {batch: [deny] * 3 + [allow] * 2}, {batch: None}),
    ]


def _decisions(answer: Any) -> list[str]:
    answers = answer if isinstance(answer, list) else [answer]
    return [str(a.decision) for a in answers]


def run_latency(system: Charter, cases: list[Scenario], samples: int, *, block: int,
                record: bool) -> None:
    """`samples` requests of each kind, in blocks of `block` per kind, cycling through
    the kinds until done (so all kinds share any drift of the machine). Each request is
    timed through Charter and through each raw baseline, in alternating order."""
    for first in range(0, samples, block):
        for case in cases:
            for number in range(first, min(first + block, samples)):
                _sample(system, case, number, record=record)


def _sample(system: Charter, case: Scenario, number: int, *, record: bool) -> None:
    clock = time.perf_counter_ns
    request = case.make(number)
    timings: dict[str, int] = {}
    answers: dict[str, Any] = {}

    def raw() -> None:
        for name, call in case.baselines.items():
            start = clock()
            answers[name] = call(request)
            timings[name] = clock() - start

    if number % 2:
        raw()
    start = clock()
    if case.decide_only:
        decision = system.authority().decide(request.member, ACTION, request.resource,
                                              request.context, now=system.clock.now())
    else:
        decision = system.authorize(request.member, ACTION, request.resource,
                                    request.context)
    charter_ns = clock() - start
    if not number % 2:
        raw()
    if decision.outcome != case.outcome:
        raise SystemExit(f"{case.kind}: expected {case.outcome}, got {decision.explain()}")
    for name, answer in answers.items():
        if _decisions(answer) != case.expected_raw[name]:
            raise SystemExit(f"{case.kind}, raw {name}: expected "
                             f"{case.expected_raw[name]}, got {_decisions(answer)}")
    if record:
        case.charter_ns.append(charter_ns)
        for name, elapsed in timings.items():
            case.raw_ns.setdefault(name, []).append(elapsed)


@dataclass(frozen=True)
class Latency:
    kind: str
    samples: int
    charter_p50_us: float
    charter_p99_us: float
    baseline: str
    raw_p50_us: float
    raw_p99_us: float
    target: float | None

    @property
    def ratio(self) -> float:
        return self.charter_p50_us / self.raw_p50_us

    @property
    def holds(self) -> bool | None:
        return None if self.target is None else self.ratio <= self.target


def percentiles(values: list[int]) -> tuple[float, float]:
    """p50 and p99, in µs."""
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49] / 1000, cuts[98] / 1000


def trend(values: list[int]) -> tuple[float, float]:
    """p50 (µs) of the first and of the last `TREND` values."""
    size = min(TREND, len(values))
    return (statistics.median(values[:size]) / 1000, statistics.median(values[-size:]) / 1000)


def latencies(cases: list[Scenario]) -> list[Latency]:
    found = []
    for case in cases:
        charter_p50, charter_p99 = percentiles(case.charter_ns)
        for name, values in case.raw_ns.items():
            raw_p50, raw_p99 = percentiles(values)
            found.append(Latency(case.kind, len(case.charter_ns), charter_p50, charter_p99,
                                 name, raw_p50, raw_p99, case.target[name]))
    return found


# -- throughput ------------------------------------------------------------------------

@dataclass(frozen=True)
class Throughput:
    decisions: int
    seconds: float
    flush_wait_ms: float
    in_ledger: int
    verified: bool
    raw_per_s: float
    target_per_s: float = 3000

    @property
    def per_s(self) -> float:
        return self.decisions / self.seconds

    @property
    def holds(self) -> bool:
        return (self.per_s >= self.target_per_s and self.in_ledger == self.decisions
                and self.verified)


def run_throughput(system: Charter, requests: Requests, handles: Handles,
                   count: int) -> Throughput:
    """`count` allow decisions through `authorize`, then `flush_decisions`, end to end;
    then the ledger must hold them and verify. Raw `is_authorized` on the same requests
    (nothing logged) is timed after, for reference."""
    pending = [requests.allow(number) for number in range(count)]
    system.flush_decisions()
    before = system.tail(1)[0].seq
    start = time.perf_counter()
    for request in pending:
        system.authorize(request.member, ACTION, request.resource, request.context)
    submitted = time.perf_counter()
    system.flush_decisions()
    end = time.perf_counter()
    in_ledger = len(system.events(kind="decision.made", after=before))
    verified = system.verify_ledger().ok
    raw_start = time.perf_counter()
    for request in pending:
        handles.single(request)
    raw_seconds = time.perf_counter() - raw_start
    return Throughput(count, end - start, (end - submitted) * 1000, in_ledger, verified,
                      count / raw_seconds)


# -- profiles --------------------------------------------------------------------------

def profile(system: Charter, make: Callable[[int], Request], calls: int, top: int) -> str:
    """cProfile of `calls` authorize calls (this thread only: the background ledger
    writer is not in it), the `top` functions by cumulative time."""
    pending = [make(number) for number in range(calls)]
    profiler = cProfile.Profile()
    profiler.enable()
    for request in pending:
        system.authorize(request.member, ACTION, request.resource, request.context)
    profiler.disable()
    system.flush_decisions()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(top)
    return out.getvalue()


# -- the run ---------------------------------------------------------------------------

@dataclass
class Report:
    members: int
    policies: int
    block: int
    setup_seconds: dict[str, float]
    latency: list[Latency]
    throughput: Throughput
    load: tuple[float, float] = (0.0, 0.0)
    approvals: int = 0
    """Approvals opened by the latency run: one per new escalation, one reused."""
    escalate_trend: tuple[float, float] = (0.0, 0.0)
    """p50 (µs) of the first and of the last `TREND` new escalations timed."""
    profiles: dict[str, str] = field(default_factory=dict)
    action_policies: int = 0
    """How many of the policies can apply to the measured action (its slice)."""


def measure(members: int, samples: int, block: int, decisions: int,
            profiles: bool) -> Report:
    load_at_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="charter-bench-") as directory:
        setup: dict[str, float] = {}
        start = time.perf_counter()
        generated = generate_org(members)
        org_path = write_org(generated, Path(directory))
        setup["generate org and policies"] = time.perf_counter() - start
        start = time.perf_counter()
        system = charter.open(f"sqlite:///{Path(directory) / 'bench.db'}", org_path,
                              settings=Settings(secret="bench"))
        setup["charter.open (parse, validate, install)"] = time.perf_counter() - start
        try:
            start = time.perf_counter()
            engine = system.authority().engine
            setup["first authority() (engine from the db)"] = time.perf_counter() - start
            handles = Handles(engine.policies.policy_set, engine.entities, engine.schema,
                              engine.policies.slices.for_action(ACTION))
            requests = Requests(generated)
            cases = scenarios(requests, handles)
            run_latency(system, cases, WARMUP, block=block, record=False)
            run_latency(system, cases, samples, block=block, record=True)
            if system.authority().engine is not engine:
                raise SystemExit("the engine changed during the run")
            escalations = next(case for case in cases if case.make == requests.escalate)
            opened = len(system.events(kind="approval.requested"))
            authorized = sum(WARMUP + samples for case in cases
                             if case.make == requests.escalate and not case.decide_only)
            if opened != authorized + 1:
                raise SystemExit(f"{authorized} new escalations through authorize() and one "
                                 f"repeated opened {opened} approvals, not {authorized + 1}")
            throughput = run_throughput(system, requests, handles, decisions)
            report = Report(members, len(engine.policies.statements), block, setup,
                            latencies(cases), throughput,
                            (load_at_start, os.getloadavg()[0]), opened,
                            trend(escalations.charter_ns),
                            action_policies=len(engine.policies.slices.policy_ids(ACTION)))
            if profiles:
                report.profiles["allow"] = profile(system, requests.allow, 2000, 15)
                report.profiles["escalate (new requests)"] = profile(
                    system, requests.escalate, 500, 15)
            return report
        finally:
            system.close()


# -- output ----------------------------------------------------------------------------

def _verdict(holds: bool | None) -> str:
    return "-" if holds is None else ("yes" if holds else "NO")


def table(report: Report) -> str:
    first = report.latency[0]
    lines = [f"Charter.authorize on {report.members:,} members, {report.policies} policies "
             f"(SQLite), {first.samples:,} samples per kind in blocks of {report.block}, "
             f"after {WARMUP} warm-up requests per kind"]
    header = (f"{'decision':<50} {'charter µs':>16}   {'raw cedarpy baseline':<34}"
              f"{'raw µs':>16} {'p50':>6} {'target':>7} {'holds':>6}")
    sub = (f"{'':<50} {'p50':>7} {'p99':>8}   {'':<34}{'p50':>7} {'p99':>8} {'ratio':>6} "
           f"{'':>7} {'':>6}")
    lines += [header, sub, "-" * len(header)]
    previous = ""
    for row in report.latency:
        kind, charter_cells = "", f"{'':>7} {'':>8}"
        if row.kind != previous:
            kind = row.kind
            charter_cells = f"{row.charter_p50_us:>7,.0f} {row.charter_p99_us:>8,.0f}"
        previous = row.kind
        target = "-" if row.target is None else f"≤{row.target:.1f}x"
        lines.append(f"{kind:<50} {charter_cells}   {row.baseline:<34}"
                     f"{row.raw_p50_us:>7,.0f} {row.raw_p99_us:>8,.0f} {row.ratio:>5.2f}x "
                     f"{target:>7} {_verdict(row.holds):>6}")
    lines += [
        f"approvals opened: {report.approvals:,} (one per new escalation, warm-up included, "
        "and one for the repeated request, reused by every repeat)",
        f"escalate, new requests: p50 of the first {TREND} timed "
        f"{report.escalate_trend[0]:,.0f} µs, of the last {TREND} "
        f"{report.escalate_trend[1]:,.0f} µs (pending approvals {WARMUP + 1:,} → "
        f"{report.approvals:,})",
        "ratio = Charter p50 ÷ raw p50. Targets are judged on the claim's baselines: one",
        "is_authorized for allow and deny (an agent's deny), ONE is_authorized_batch over",
        "the chain for escalate, on NEW requests (each opens an approval); rows marked -",
        "are context (the same Cedar work Charter does; a deny only the whole chain can",
        "show; a root member; a repeated request).",
        f"sliced: raw cedarpy given only the {report.action_policies} of the "
        f"{report.policies} policies whose scope",
        "can apply to the action, which is what Charter's engine evaluates (Cedar skips a",
        "policy scoped to another action without evaluating it, so the decisions, reasons",
        "and errors are the same): the rows beside them show Charter's own overhead.",
    ]
    t = report.throughput
    lines += [
        "",
        f"{'sustained logged decisions':<50} {'decisions':>10} {'seconds':>8} "
        f"{'per s':>8} {'target':>9} {'holds':>6}",
        f"{'authorize (allow) x N, then flush_decisions()':<50} {t.decisions:>10,} "
        f"{t.seconds:>8.2f} {t.per_s:>8,.0f} {'≥' + format(t.target_per_s, ',.0f'):>9} "
        f"{_verdict(t.holds):>6}",
        f"  flush wait after the last authorize: {t.flush_wait_ms:,.0f} ms; ledger holds "
        f"{t.in_ledger:,} of {t.decisions:,} decisions; verify_ledger().ok: {t.verified}",
        f"  raw is_authorized on the same requests (nothing logged): {t.raw_per_s:,.0f}/s",
        "",
        "setup: " + "; ".join(f"{name} {seconds:.1f} s"
                              for name, seconds in report.setup_seconds.items()),
        f"load average (1 min) at start and end: {report.load[0]:.2f}, {report.load[1]:.2f} "
        f"on {os.cpu_count()} CPUs (other work on the machine skews the figures)",
    ]
    for name, text in report.profiles.items():
        lines += ["", f"profile: {name}", text.rstrip()]
    return "\n".join(lines)


def as_json(report: Report) -> str:
    rows = [{**asdict(row), "ratio": row.ratio, "holds": row.holds}
            for row in report.latency]
    t = report.throughput
    return json.dumps({"members": report.members, "policies": report.policies,
                       "action_policies": report.action_policies,
                       "block": report.block, "approvals_opened": report.approvals,
                       "escalate_p50_first_last_us": report.escalate_trend,
                       "load_average": report.load,
                       "setup_seconds": report.setup_seconds, "latency": rows,
                       "throughput": {**asdict(t), "per_s": t.per_s, "holds": t.holds},
                       "profiles": report.profiles}, indent=2, ensure_ascii=False)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--members", type=int, default=10_000,
                        help="members in the generated org (default 10000)")
    parser.add_argument("--samples", type=int, default=2000,
                        help="timed requests of each kind (default 2000)")
    parser.add_argument("--block", type=int, default=BLOCK,
                        help=f"requests of one kind in a row before the next kind (default "
                        f"{BLOCK}); 1 cycles the kinds every request, so each request "
                        "follows one of another kind (an escalation's database work "
                        "leaves the next request's Cedar call slower, on both sides)")
    parser.add_argument("--decisions", type=int, default=20_000,
                        help="allow decisions in the sustained run (default 20000)")
    parser.add_argument("--profile", action="store_true",
                        help="also print cProfile (top 15 by cumulative time) of 2,000 "
                        "allows and 500 new escalations")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if args.samples < 2 or args.decisions < 1 or args.block < 1:
        parser.error("--samples must be at least 2, --decisions and --block at least 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    report = measure(args.members, args.samples, args.block, args.decisions, args.profile)
    print(as_json(report) if args.json else table(report))


if __name__ == "__main__":
    main(sys.argv[1:])
