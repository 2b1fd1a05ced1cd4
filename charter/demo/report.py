"""The demo's report: what the month showed, as Rich tables.

It reads two results of the same month (same seed, same tasks): the run with the
learned allocator, in full, and the run with `round_robin`, as the baseline it is
compared with.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from rich.console import Group, RenderableType
from rich.rule import Rule
from rich.table import Table
from rich.text import Text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from charter.demo.results import EARLY_DAYS, MonthResult, Share
from charter.demo.truth import DRIFT


def render(learned: MonthResult, baseline: MonthResult) -> Group:
    """The whole report."""
    parts: list[RenderableType] = [
        Rule(f"Acme's simulated month: {learned.tasks} tasks, seed {learned.seed}"),
        comparison(learned, baseline), verdict(learned, baseline),
        Rule("Who does what (learned allocator)"), shares(learned.shares),
        people_share(learned, baseline),
        Rule("What the allocator learned"), beliefs(learned),
        Rule("Approvals"), approvals(learned, baseline),
        Rule("Conflicts"), conflicts(learned),
        Rule("Earned autonomy"), autonomy(learned),
        Rule("Engine swap"), swap(learned),
        Rule("Budgets"), budgets(learned),
        Rule("Ledger"), ledger(learned, baseline),
    ]
    return Group(*parts)


def comparison(learned: MonthResult, baseline: MonthResult) -> Table:
    """Learned vs round_robin on the same month."""
    table = Table(title=f"Learned allocator vs {baseline.strategy} (same seed, same tasks; "
                        "scored on the hidden truth)", title_justify="left")
    table.add_column("")
    table.add_column(learned.strategy, justify="right")
    table.add_column(baseline.strategy, justify="right")
    table.add_column("difference", justify="right")

    def row(name: str, a: float, b: float, shown: str = "{:,.0f}") -> None:
        table.add_row(name, shown.format(a), shown.format(b), _signed(a - b, shown))

    row("utility = Σ value·success - cost", learned.utility, baseline.utility)
    row("value delivered", learned.value, baseline.value)
    row("cost (agents' fees, people's time)", learned.cost, baseline.cost)
    row("success rate (results really right)", 100 * learned.success_rate,
        100 * baseline.success_rate, "{:.1f}%")
    row("tasks done", learned.count("done"), baseline.count("done"))
    row("tasks failed or cancelled", learned.count("failed") + learned.count("cancelled"),
        baseline.count("failed") + baseline.count("cancelled"))
    row("still open at month end", _open(learned), _open(baseline))
    row("approvals asked", learned.approvals.asked, baseline.approvals.asked)
    row("wrong results reported as right", learned.silent_failures,
        baseline.silent_failures)
    row("run time (s)", learned.seconds, baseline.seconds, "{:.1f}")
    return table


def verdict(learned: MonthResult, baseline: MonthResult) -> Text:
    gain = learned.utility - baseline.utility
    share = f" ({gain / abs(baseline.utility):+.0%})" if baseline.utility else ""
    if gain > 0:
        return Text(f"The learned allocator came out ahead of {baseline.strategy}: utility "
                    f"{learned.utility:,.0f} vs {baseline.utility:,.0f}, {gain:+,.0f}{share}; "
                    f"success {learned.success_rate:.1%} vs {baseline.success_rate:.1%}, "
                    f"cost {learned.cost:,.0f} vs {baseline.cost:,.0f}.", style="bold green")
    return Text(f"The learned allocator did NOT come out ahead of {baseline.strategy} this "
                f"time: utility {learned.utility:,.0f} vs {baseline.utility:,.0f}.",
                style="bold red")


def shares(found: Iterable[Share]) -> Table:
    """Each member's share of each task type, the first days against the last."""
    table = Table(title=f"Each member's share of the allocator's assignments of each task "
                        f"type (reassignments too): days 1 to {EARLY_DAYS:.0f} → the last "
                        f"{EARLY_DAYS:.0f} days", title_justify="left")
    for name in ("task type", "member", "early", "late", "month"):
        table.add_column(name, justify="left" if name in ("task type", "member") else "right")
    by_type: dict[str, list[Share]] = defaultdict(list)
    for share in found:
        by_type[share.task_type].append(share)
    for task_type, members in sorted(by_type.items()):
        any_early, any_late = (any(s.early for s in members), any(s.late for s in members))
        early = sum(s.early for s in members) or 1
        late = sum(s.late for s in members) or 1
        total = sum(s.total for s in members) or 1
        for index, share in enumerate(sorted(members, key=lambda s: -s.total)):
            moved = share.late / late - share.early / early
            style = "green" if moved > 0.1 else "red" if moved < -0.1 else ""
            table.add_row(task_type if index == 0 else "", share.member,
                          _share(share.early, early, any_early),
                          Text(_share(share.late, late, any_late), style=style),
                          f"{share.total / total:.0%}")
    return table


def people_share(learned: MonthResult, baseline: MonthResult) -> Text:
    """How much of the work each strategy first gave to people (whose time is dear)."""
    def share(result: MonthResult) -> float:
        total = sum(s.total for s in result.shares) or 1
        return sum(s.total for s in result.shares if s.member in result.people) / total

    return Text(f"People were given {share(learned):.0%} of the assignments by the learned "
                f"allocator and {share(baseline):.0%} by {baseline.strategy}, which takes "
                "turns whatever a turn costs.")


def beliefs(result: MonthResult) -> Table:
    """The allocator's estimates of each agent against the truth it never saw."""
    table = Table(title="Success rate per agent and task type: declared in the org, learned "
                        "from outcomes, and the hidden truth", title_justify="left")
    for name in ("task type", "agent", "engine", "declared", "learned", "truth (hidden)",
                 "outcomes", "verified"):
        table.add_column(name, justify="left" if name in ("task type", "agent", "engine")
                         else "right")
    for belief in result.beliefs:
        closer = abs(belief.learned - belief.truth) < abs(belief.declared - belief.truth)
        table.add_row(belief.task_type, belief.member, belief.engine, f"{belief.declared:.2f}",
                      Text(f"{belief.learned:.2f}", style="green" if closer else ""),
                      f"{belief.truth:.2f}", str(belief.outcomes), str(belief.verified))
    return table


def approvals(learned: MonthResult, baseline: MonthResult) -> Table:
    table = Table(title="Escalations answered by people (simulated delays; past the 4h SLA "
                        "an approval moves up the chain)", title_justify="left")
    table.add_column("")
    table.add_column(learned.strategy, justify="right")
    table.add_column(baseline.strategy, justify="right")
    for name, a, b in (("asked", learned.approvals.asked, baseline.approvals.asked),
                       ("approved", learned.approvals.approved, baseline.approvals.approved),
                       ("rejected", learned.approvals.rejected, baseline.approvals.rejected),
                       ("expired unanswered", learned.approvals.expired,
                        baseline.approvals.expired),
                       ("moved up the chain on timeout",
                        learned.approvals.escalated_on_timeout,
                        baseline.approvals.escalated_on_timeout),
                       ("still pending", learned.approvals.pending, baseline.approvals.pending)):
        table.add_row(name, str(a), str(b))
    table.add_row("median latency", _minutes(learned.approvals.median_minutes),
                  _minutes(baseline.approvals.median_minutes))
    table.add_row("90th percentile latency", _minutes(learned.approvals.p90_minutes),
                  _minutes(baseline.approvals.p90_minutes))
    table.add_row("by action", _counts(learned.approvals.by_action),
                  _counts(baseline.approvals.by_action))
    return table


def conflicts(result: MonthResult) -> Group:
    c = result.conflicts
    lines: list[RenderableType] = [Text(
        f"{c.proposals} price proposals (pricing-bot and people); {c.disputes} disputes: "
        f"{c.by_rule} decided by rule, {c.settled} escalated to the proposers' common "
        f"manager and settled, {c.unsettled} still waiting.")]
    lines.extend(Text(f"  e.g. {example}") for example in c.examples)
    return Group(*lines)


def autonomy(result: MonthResult) -> Group:
    """The autonomy changes, and what became of the agent whose quality fell."""
    drifted = next((c for c in result.autonomy if c.member == DRIFT.member and
                    c.task_type == DRIFT.task_type and c.day >= DRIFT.day and
                    _rank(c.after) < _rank(c.before)), None)
    story = (f"Hidden from Charter: from day {DRIFT.day:.0f} {DRIFT.member} got "
             f"{1 - DRIFT.quality:.0%} of its {DRIFT.task_type} tasks wrong. ")
    if drifted is not None:
        story += (f"Earned autonomy demoted it on day {drifted.day:.1f} ({drifted.before} → "
                  f"{drifted.after}) on its manager's verified reviews: from then on its "
                  "actions wait for approval.")
    else:
        story += ("It was not demoted by the month's end: its verified record was still "
                  "too short to be sure.")
    parts: list[RenderableType] = [Text(story)]
    if not result.autonomy:
        parts.append(Text("No autonomy changes this month."))
        return Group(*parts)
    table = Table(title="Earned autonomy: promotions and demotions on verified outcomes",
                  title_justify="left")
    for name in ("day", "agent", "task type", "change", "because"):
        table.add_column(name)
    for change in result.autonomy:
        verb = "promoted" if _rank(change.after) > _rank(change.before) else "demoted"
        table.add_row(f"{change.day:.1f}", change.member, change.task_type,
                      Text(f"{verb}: {change.before} → {change.after}",
                           style="green" if verb == "promoted" else "red"), change.because)
    parts.append(table)
    return Group(*parts)


def swap(result: MonthResult) -> Text:
    s = result.swap
    if s is None:
        return Text("No engine swap this month.")
    return Text(
        f"Engine swap on day {s.day:.0f}: {s.member} moved from engine version {s.before} to "
        f"{s.after} (an edited org, loaded as a new version): same id, authority and "
        f"memory. On {s.task_type}: {s.before_n} outcomes at {s.before_rate:.0%} with the "
        f"old engine, {s.after_n} at {s.after_rate:.0%} with the new (verified where "
        "reviewed); the allocator keeps estimates per version.")


def budgets(result: MonthResult) -> Group:
    table = Table(title="Spend against budgets (this month's period)", title_justify="left")
    for name in ("envelope", "owner", "amount", "committed", "reserved", "available", "used"):
        table.add_column(name, justify="left" if name in ("envelope", "owner") else "right")
    for e in result.envelopes:
        used = (e.committed + e.reserved) / e.amount if e.amount else 0.0
        table.add_row(e.id, e.owner, f"{e.amount:,.0f}", f"{e.committed:,.2f}",
                      f"{e.reserved:,.2f}", f"{e.available:,.2f}",
                      Text(f"{used:.0%}", style="red" if used > 0.9 else ""))
    note = Text(f"Spend refused as over budget: {result.over_budget} requests (each escalated "
                f"to the envelope's owner); overrides granted: {result.overrides_granted}.")
    return Group(table, note)


def ledger(learned: MonthResult, baseline: MonthResult) -> Group:
    lines = []
    for result in (learned, baseline):
        if result.ledger_ok:
            lines.append(Text(f"{result.strategy}: ledger verified OK, {result.ledger_events:,} "
                              f"events in the hash chain ({shown_url(result.database)})",
                              style="green"))
        else:
            lines.append(Text(f"{result.strategy}: ledger verification FAILED at "
                              f"{result.ledger_problem}", style="bold red"))
    return Group(*lines)


def _share(count: int, total: int, any_at_all: bool) -> str:
    return f"{count / total:.0%}" if any_at_all else "n/a"


def shown_url(database: str) -> str:
    """A database URL fit to print: its password hidden."""
    try:
        return make_url(database).render_as_string(hide_password=True)
    except ArgumentError:
        return database


def _open(result: MonthResult) -> int:
    return sum(result.count(s) for s in ("queued", "assigned", "running", "awaiting_approval"))


def _signed(number: float, shown: str) -> str:
    text = shown.format(abs(number))
    return f"+{text}" if number > 0 else f"-{text}" if number < 0 else text


def _minutes(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.0f} min" if value < 120 else f"{value / 60:.1f} h"


def _counts(found: dict[str, int]) -> str:
    return ", ".join(f"{name} {count}" for name, count in found.items())


def _rank(level: str) -> int:
    return ("supervised", "notify", "autonomous").index(level)
