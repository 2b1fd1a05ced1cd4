"""A member's track record as the dashboard shows it: aggregates over the outcomes
table, so a member with tens of thousands of outcomes costs a few indexed queries, not a
Python pass over every row.

The figures count what `charter.memberstats` counts: one outcome per task and member,
the latest verified one where the task has one, else the latest self-report (a retry's
success replaces its earlier failure; a reviewer's verdict replaces the self-report).
The counting is kept up as outcomes are recorded, in hourly tallies
(`charter.outcometallies`), so a page reads a few thousand rows however long the history.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, case, exists, func, or_, select

from charter import outcometallies
from charter.autonomy import wilson_bounds
from charter.store.schema import outcome_tallies, outcomes


@dataclass(frozen=True)
class Figures:
    """Outcomes counted together, with the sums behind their means."""

    n: int = 0
    successes: int = 0
    verified: int = 0
    cost_total: Decimal = Decimal(0)
    costed: int = 0
    duration_total: float = 0.0
    timed: int = 0

    def __add__(self, other: Figures) -> Figures:
        return Figures(self.n + other.n, self.successes + other.successes,
                       self.verified + other.verified, self.cost_total + other.cost_total,
                       self.costed + other.costed, self.duration_total + other.duration_total,
                       self.timed + other.timed)

    @property
    def self_reported(self) -> int:
        return self.n - self.verified

    @property
    def rate(self) -> float | None:
        return self.successes / self.n if self.n else None

    @property
    def interval(self) -> tuple[float, float]:
        """The 95% Wilson interval of the success rate."""
        return wilson_bounds(self.successes, self.n)

    @property
    def mean_cost(self) -> Decimal | None:
        return self.cost_total / self.costed if self.costed else None

    @property
    def mean_duration_s(self) -> float | None:
        return self.duration_total / self.timed if self.timed else None


@dataclass(frozen=True)
class Granularity:
    """A width of the chart's time buckets: the first `width` characters of a ledger
    time (fixed-width ISO 8601, so a prefix is a bucket on every database)."""

    name: str
    width: int
    seconds: int

    def start(self, prefix: str) -> datetime:
        """The moment a bucket's prefix begins."""
        return datetime.fromisoformat(prefix + _EPOCH_TEXT[len(prefix):]).replace(tzinfo=UTC)


_EPOCH_TEXT = "0001-01-01T00:00:00"
GRANULARITIES = (
    Granularity("month", 7, 30 * 86400), Granularity("day", 10, 86400),
    Granularity("hour", 13, 3600), Granularity("10 minutes", 15, 600),
    Granularity("minute", 16, 60), Granularity("10 seconds", 18, 10),
    Granularity("second", 19, 1),
)
"""Coarsest first; each is a prefix of the ledger's time format."""
MIN_POINTS = 8
"""The chart uses the coarsest buckets that still give about this many points."""


def granularity_for(first: datetime, last: datetime) -> Granularity:
    """Buckets for a history from `first` to `last`: the coarsest giving `MIN_POINTS`
    or more (at most a few hundred), the finest for a history of seconds."""
    span = (last - first).total_seconds()
    for granularity in GRANULARITIES:
        if span / granularity.seconds >= MIN_POINTS:
            return granularity
    return GRANULARITIES[-1]


@dataclass(frozen=True)
class Point:
    """The outcomes of one time bucket."""

    at: datetime
    figures: Figures


@dataclass(frozen=True)
class MemberRecord:
    """A member's record per task type, per engine version and task type, and over
    time."""

    by_type: dict[str, Figures]
    by_version: dict[str, dict[str, Figures]]
    """engine version → task type → figures; versions in the order they first worked."""
    granularity: Granularity
    points: list[Point]

    @property
    def total(self) -> Figures:
        return sum(self.by_type.values(), Figures())


def kept() -> ColumnElement[bool]:
    """True for the outcome that counts for its task and member (see the module's
    docstring): no verified outcome replaces it, nor a later one of its own kind."""
    other = outcomes.alias("other")
    return ~exists().where(
        other.c.task_id == outcomes.c.task_id, other.c.member == outcomes.c.member,
        other.c.id != outcomes.c.id,
        or_(and_(other.c.verified, ~outcomes.c.verified),
            and_(other.c.verified == outcomes.c.verified,
                 or_(other.c.at > outcomes.c.at,
                     and_(other.c.at == outcomes.c.at, other.c.id > outcomes.c.id)))))


def _sums() -> tuple[ColumnElement[Any], ...]:
    return (func.count(), func.sum(case((outcomes.c.success, 1), else_=0)),
            func.sum(case((outcomes.c.verified, 1), else_=0)), func.sum(outcomes.c.cost),
            func.count(outcomes.c.cost), func.sum(outcomes.c.duration_s),
            func.count(outcomes.c.duration_s))


def _figures(row: Any, offset: int) -> Figures:
    n, successes, verified, cost, costed, duration, timed = row[offset:offset + 7]
    return Figures(int(n), int(successes or 0), int(verified or 0),
                   Decimal(0) if cost is None else Decimal(cost), int(costed),
                   float(duration or 0.0), int(timed))


def member_record(conn: Connection, member: str) -> MemberRecord:
    """The member's time span (two steps along `ix_outcomes_member_at`) sets the
    buckets; the figures are then summed per engine version, task type and bucket from
    the hourly tallies (`charter.outcometallies`) when the buckets are an hour or wider,
    else from the outcomes themselves, one per task (`kept`, decided on
    `ix_outcomes_task`). An engine version's start is its earliest recorded outcome."""
    # Two queries, not one: each is then a single step along `ix_outcomes_member_at`.
    first = conn.execute(select(func.min(outcomes.c.at))
                         .where(outcomes.c.member == member)).scalar()
    last = conn.execute(select(func.max(outcomes.c.at))
                        .where(outcomes.c.member == member)).scalar()
    if first is None or last is None:
        return MemberRecord({}, {}, GRANULARITIES[-1], [])
    granularity = granularity_for(_moment(first), _moment(last))
    if granularity.width <= outcometallies.HOUR:
        rows = outcometallies.summed(conn, member, granularity.width)
    else:
        rows = _summed_outcomes(conn, member, granularity.width)
    by_type: dict[str, Figures] = defaultdict(Figures)
    by_version: dict[str, dict[str, Figures]] = defaultdict(lambda: defaultdict(Figures))
    by_bucket: dict[str, Figures] = defaultdict(Figures)
    began: dict[str, str] = {}
    for row in rows:
        version, task_type, prefix, earliest = row[:4]
        began[version] = min(began.get(version, earliest), earliest)
        figures = _figures(row, 4)
        if not figures.n:
            continue
        by_type[task_type] += figures
        by_version[version][task_type] += figures
        by_bucket[prefix] += figures
    versions = sorted(by_version, key=lambda version: (began[version], version))
    return MemberRecord(
        dict(sorted(by_type.items())),
        {version: dict(sorted(by_version[version].items())) for version in versions},
        granularity,
        [Point(granularity.start(prefix), figures)
         for prefix, figures in sorted(by_bucket.items())])


def _summed_outcomes(conn: Connection, member: str, width: int) -> list[Any]:
    """What `outcometallies.summed` reads from the tallies, from the outcomes: the
    counted ones summed per engine version, task type and bucket, and each group's
    earliest outcome, counted or not."""
    bucket = func.substr(outcomes.c.at, 1, width)
    group = (outcomes.c.engine_version, outcomes.c.task_type, bucket)
    counted = {tuple(row[:3]): row for row in conn.execute(
        select(*group, *_sums())
        .where(outcomes.c.member == member, kept()).group_by(*group)).all()}
    earliest: list[Any] = list(conn.execute(
        select(*group, func.min(outcomes.c.at))
        .where(outcomes.c.member == member).group_by(*group)))
    nothing = (0, 0, 0, None, 0, None, 0)
    return [(version, task_type, prefix, at,
             *(counted[version, task_type, prefix][3:]
               if (version, task_type, prefix) in counted else nothing))
            for version, task_type, prefix, at in earliest]


def success_rates(conn: Connection, members: Iterable[str]) -> dict[str, Figures]:
    """Each member's figures over all task types, counted as on the member's page (one
    outcome per task), summed from the hourly tallies (`charter.outcometallies`): a page
    of members costs a few thousand rows however long the history."""
    wanted = list(members)
    if not wanted:
        return {}
    t = outcome_tallies.c
    rows = conn.execute(select(t.member, func.sum(t.n), func.sum(t.successes),
                               func.sum(t.verified))
                        .where(t.member.in_(wanted)).group_by(t.member)).all()
    return {member: Figures(int(n), int(successes), int(verified))
            for member, n, successes, verified in rows if n}


def chart_spec(record: MemberRecord, currency: str) -> dict[str, Any]:
    """The chart of success rate (left axis, 0..1) and mean cost (right axis) per bucket,
    in the shape `charter.js` draws."""
    points = record.points
    return {
        "series": [{"label": "success rate", "color": "#1d7a46", "scale": "rate",
                    "digits": 3},
                   {"label": f"mean cost ({currency})", "color": "#1f4e79", "scale": "cost",
                    "digits": 2}],
        "axes": [{"scale": "rate", "label": "success rate", "range": [0, 1]},
                 {"scale": "cost", "label": f"mean cost ({currency})"}],
        "data": [[int(point.at.timestamp()) for point in points],
                 [None if point.figures.rate is None else round(point.figures.rate, 4)
                  for point in points],
                 [None if point.figures.mean_cost is None
                  else float(round(point.figures.mean_cost, 4)) for point in points]],
    }


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
