"""Budgets: nested spending envelopes; spend is reserved, then committed or released.

Envelopes nest as the org file declares them (org -> department or team -> member), and
spend against an envelope also draws on every envelope above it. Every change is a
ledger event applied to the `budgets` and `reservations` read tables by the projectors
in `charter.budgettotals`, which read nothing but the event and the tables, so a
replay rebuilds them.

Concurrency: a command first holds the ledger head (org loads hold it before they
update envelopes, so this is the one lock order that cannot deadlock), then locks the
envelopes it touches in id order, then checks and records. Periods: an envelope's
`committed` starts again from zero when its period (day, week, month, quarter, year;
`total` never ends) has moved on; projectors decide this from the event's own time.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Connection, Row, select

from charter.clock import Clock
from charter.errors import Conflict, InvalidInput, NotFound
from charter.ledger import Event, Ledger, format_time
from charter.org import Org
from charter.store.schema import budgets, reservations

RESERVED = "budget.reserved"
COMMITTED = "budget.committed"
RELEASED = "budget.released"
TOPPED_UP = "budget.topped_up"
SYSTEM_ACTOR = "system"
"""Who releases reservations whose time ran out."""

_PLACES = 4
"""Decimal places the MONEY columns keep."""
_LIMIT = Decimal(10) ** 16
"""The MONEY columns hold 20 digits, 4 of them after the point."""


@dataclass(frozen=True)
class Reservation:
    """Spend held against an envelope (and every envelope above it) until it is
    committed with the actual amount, released, or expires."""

    id: str
    budget_id: str
    member: str
    amount: Decimal
    purpose: str
    status: str
    created_at: str
    expires_at: str
    actual: Decimal | None = None
    settled_at: str | None = None

    def to_json(self) -> dict[str, Any]:
        """As JSON, amounts as text (money is exact)."""
        return {**self.__dict__, "amount": _text(self.amount),
                "actual": None if self.actual is None else _text(self.actual)}


@dataclass(frozen=True)
class EnvelopeUsage:
    """One envelope: its amount for the period and what is reserved and committed."""

    id: str
    parent_id: str | None
    owner: str | None
    amount: Decimal
    reserved: Decimal
    committed: Decimal
    period: str
    period_start: str | None

    @property
    def available(self) -> Decimal:
        return self.amount - self.reserved - self.committed

    def to_json(self) -> dict[str, Any]:
        """As JSON, amounts as text (money is exact)."""
        return {"id": self.id, "parent_id": self.parent_id, "owner": self.owner,
                "amount": _text(self.amount), "reserved": _text(self.reserved),
                "committed": _text(self.committed), "available": _text(self.available),
                "period": self.period, "period_start": self.period_start}


class OverBudget(Conflict):
    """The spend would take a budget below zero."""


def envelope_for(org: Org, member_id: str) -> str | None:
    """The envelope a member spends from: the innermost one naming it among its
    `members` (or owned by it, when the envelope names no members), else the innermost
    one owned by one of its teams and naming no members; None when there is neither."""
    member = org.member(member_id)

    def depth(budget_id: str) -> int:
        steps, parent = 0, org.budget_parent[budget_id]
        while parent is not None:
            steps, parent = steps + 1, org.budget_parent[parent]
        return steps

    own = [bid for bid, b in org.budgets.items() if member.id in (b.members or (b.owner,))]
    teams = [bid for bid, b in org.budgets.items() if not b.members and b.owner in member.teams]
    for found in (own, teams):
        if found:
            return max(found, key=depth)  # the first declared among the deepest
    return None


def reserve(conn: Connection, ledger: Ledger, clock: Clock, org: Org, *, member: str,
            amount: Decimal | int | str, purpose: str, budget: str | None = None,
            ttl: timedelta = timedelta(hours=1)) -> Reservation:
    """Hold `amount` for `member` against `budget` (default: `envelope_for` the member)
    and every envelope above it, for `ttl`. Raises `OverBudget` naming the innermost
    envelope that cannot cover it; `InvalidInput` for a bad amount, purpose or ttl;
    `NotFound` for an unknown member or budget. Releases expired reservations first."""
    requested = _money(amount, "amount")
    if not isinstance(purpose, str) or not purpose.strip():
        raise InvalidInput("a reservation needs a purpose (e.g. 'PO 4471, 40 monitors')")
    if not isinstance(ttl, timedelta) or ttl <= timedelta(0):
        raise InvalidInput(f"ttl must be a positive timedelta, got {ttl!r}")
    org.member(member)
    budget_id = budget if budget is not None else envelope_for(org, member)
    if budget_id is None:
        raise InvalidInput(f"no budget is spent from by `{member}` or owned by one of its "
                           "teams: name the budget to draw on")
    _hold_ledger(conn, ledger)
    release_expired(conn, ledger, clock)
    now = clock.now()
    chain = _chain(conn, budget_id)
    rows = _lock_envelopes(conn, ledger, chain)
    _check_room(rows, chain, requested, format_time(now))
    reservation_id = str(uuid.uuid4())
    _record(conn, ledger, RESERVED, actor=member, budget=budget_id, payload={
        "reservation": reservation_id, "budget": budget_id, "chain": chain,
        "member": member, "amount": _text(requested), "purpose": purpose,
        "expires_at": format_time(now + ttl)})
    return reservation(conn, reservation_id)


def commit(conn: Connection, ledger: Ledger, clock: Clock, reservation_id: str, *,
           actual: Decimal | int | str, actor: str) -> Reservation:
    """Settle a reservation at the amount actually spent: its amount leaves `reserved`
    and `actual` joins `committed` along the chain. Spending more than was reserved
    needs the difference available in every enclosing envelope, else `OverBudget`.
    A reservation already committed, released or expired raises `Conflict`."""
    spent = _money(actual, "actual", zero_ok=True)
    _hold_ledger(conn, ledger)
    row = _open_reservation(conn, ledger, reservation_id, "commit")
    at = format_time(clock.now())
    if row.expires_at <= at:
        raise Conflict(f"reservation {row.id} expired at {row.expires_at} and its hold is "
                       "released: reserve again", details={"reservation": row.id})
    chain = _chain(conn, row.budget_id)
    rows = _lock_envelopes(conn, ledger, chain)
    if spent > row.amount:
        _check_room(rows, chain, spent - row.amount, at)
    _record(conn, ledger, COMMITTED, actor=actor, budget=row.budget_id, payload={
        "reservation": row.id, "budget": row.budget_id, "chain": chain,
        "amount": _text(row.amount), "actual": _text(spent)})
    return reservation(conn, row.id)


def release(conn: Connection, ledger: Ledger, clock: Clock, reservation_id: str, *,
            actor: str, reason: str = "released") -> Reservation:
    """Give back a reservation's hold along its chain. A reservation already committed
    or released raises `Conflict`; one whose time ran out may still be released."""
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInput("a release needs a reason")
    _hold_ledger(conn, ledger)
    row = _open_reservation(conn, ledger, reservation_id, "release")
    _release(conn, ledger, row, actor, reason)
    return reservation(conn, row.id)


def release_expired(conn: Connection, ledger: Ledger, clock: Clock) -> list[Reservation]:
    """Release every open reservation whose time has run out (reason "expired")."""
    _hold_ledger(conn, ledger)
    at = format_time(clock.now())
    query = (select(reservations)
             .where(reservations.c.status == "reserved", reservations.c.expires_at <= at)
             .order_by(reservations.c.expires_at, reservations.c.id))
    expired = conn.execute(ledger.store.dialect.lock_for_update(query)).all()
    for row in expired:
        _release(conn, ledger, row, SYSTEM_ACTOR, "expired")
    return [reservation(conn, row.id) for row in expired]


def top_up(conn: Connection, ledger: Ledger, clock: Clock, budget_id: str, *,
           amount: Decimal | int | str, actor: str, reason: str) -> EnvelopeUsage:
    """Raise an envelope's amount by `amount` (an owner approving an override). The
    envelopes above it are unchanged; the next org load sets the amount from the file."""
    extra = _money(amount, "amount")
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInput("a top-up needs a reason (e.g. 'approval 81f3: Q4 campaign')")
    _hold_ledger(conn, ledger)
    _lock_envelopes(conn, ledger, _chain(conn, budget_id)[:1])
    _record(conn, ledger, TOPPED_UP, actor=actor, budget=budget_id,
            payload={"budget": budget_id, "amount": _text(extra), "reason": reason})
    row = conn.execute(select(budgets).where(budgets.c.id == budget_id)).one()
    return _usage_of(row, format_time(clock.now()))


def usage(conn: Connection, *, at: datetime | None = None) -> list[EnvelopeUsage]:
    """Every envelope, parents before their children. With `at`, an envelope whose
    period has ended since its last spend shows what the next command will see:
    nothing committed, in the new period."""
    rows = conn.execute(select(budgets).order_by(budgets.c.id)).all()
    moment = None if at is None else format_time(at)
    children: dict[str | None, list[Row[Any]]] = {}
    for row in rows:
        children.setdefault(row.parent_id, []).append(row)

    def subtree(row: Row[Any]) -> Iterator[Row[Any]]:
        yield row
        for child in children.get(row.id, []):
            yield from subtree(child)

    return [_usage_of(row, moment) for root in children.get(None, []) for row in subtree(root)]


def open_reservations_outside(conn: Connection, budget_ids: set[str]) -> set[str]:
    """Envelopes not in `budget_ids` that still hold open reservations."""
    query = select(reservations.c.budget_id).where(reservations.c.status == "reserved")
    return {budget for budget in conn.execute(query).scalars() if budget not in budget_ids}


def reservation(conn: Connection, reservation_id: str) -> Reservation:
    """One reservation, as it stands; `NotFound` if there is none with this id."""
    row = conn.execute(select(reservations)
                       .where(reservations.c.id == reservation_id)).first()
    if row is None:
        raise NotFound(f"no reservation `{reservation_id}`")
    return Reservation(**row._mapping)  # the fields are the table's columns


def period_start(period: str, at: str) -> str | None:
    """When the period holding ledger time `at` began (UTC); None for `total`."""
    moment = datetime.strptime(at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    starts = {"day": day, "week": day - timedelta(days=day.weekday()),
              "month": day.replace(day=1), "year": day.replace(month=1, day=1),
              "quarter": day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)}
    if period not in (*starts, "total"):
        raise ValueError(f"unknown budget period {period!r}")
    return format_time(starts[period]) if period in starts else None


# -- helpers --------------------------------------------------------------------------

def _usage_of(row: Row[Any], at: str | None) -> EnvelopeUsage:
    start, committed = (row.period_start, row.committed) if at is None else current_period(row, at)
    return EnvelopeUsage(row.id, row.parent_id, row.owner, row.amount, row.reserved,
                         committed, row.period, start)


def current_period(row: Row[Any], at: str) -> tuple[str | None, Decimal]:
    """The envelope's period start and committed amount at ledger time `at`."""
    start = period_start(row.period, at)
    if start is None:
        return row.period_start, row.committed
    return start, row.committed if start == row.period_start else Decimal(0)


def _hold_ledger(conn: Connection, ledger: Ledger) -> None:
    """Take the ledger head before any envelope (see the module docstring)."""
    ledger.hold_head(conn)


def _chain(conn: Connection, budget_id: str, *, missing_ok: bool = False) -> list[str]:
    """The envelope and those above it, innermost first ([] for an envelope the org no
    longer has, when `missing_ok`)."""
    query = select(budgets.c.id, budgets.c.parent_id)
    parents: dict[str, str | None] = {row.id: row.parent_id for row in conn.execute(query)}
    if budget_id not in parents:
        if missing_ok:
            return []
        raise NotFound(f"no budget `{budget_id}`")
    chain = [budget_id]
    while (parent := parents.get(chain[-1])) in parents and parent not in chain:
        chain.append(str(parent))
    return chain


def _lock_envelopes(conn: Connection, ledger: Ledger,
                    chain: list[str]) -> dict[str, Row[Any]]:
    query = select(budgets).where(budgets.c.id.in_(chain)).order_by(budgets.c.id)
    return {row.id: row
            for row in conn.execute(ledger.store.dialect.lock_for_update(query)).all()}


def _check_room(rows: dict[str, Row[Any]], chain: list[str], requested: Decimal,
                at: str) -> None:
    for budget_id in chain:
        row = rows[budget_id]
        available = row.amount - row.reserved - current_period(row, at)[1]
        if available < requested:
            shortfall = requested - available
            owner = row.owner or "no owner"
            raise OverBudget(
                f"over budget: {_text(requested)} is more than the {_text(available)} "
                f"available in `{row.id}` (owner {owner}), short by {_text(shortfall)}",
                details={"budget": row.id, "owner": row.owner,
                         "requested": _text(requested), "available": _text(available),
                         "shortfall": _text(shortfall)})


def _open_reservation(conn: Connection, ledger: Ledger, reservation_id: str,
                      verb: str) -> Row[Any]:
    query = select(reservations).where(reservations.c.id == reservation_id)
    row = conn.execute(ledger.store.dialect.lock_for_update(query)).first()
    if row is None:
        raise NotFound(f"no reservation `{reservation_id}`")
    if row.status != "reserved":
        raise Conflict(f"cannot {verb} reservation {row.id}: it is already {row.status}",
                       details={"reservation": row.id, "status": row.status})
    return row


def _release(conn: Connection, ledger: Ledger, row: Row[Any], actor: str,
             reason: str) -> None:
    chain = _chain(conn, row.budget_id, missing_ok=True)
    _lock_envelopes(conn, ledger, chain)
    _record(conn, ledger, RELEASED, actor=actor, budget=row.budget_id, payload={
        "reservation": row.id, "budget": row.budget_id, "chain": chain,
        "amount": _text(row.amount), "reason": reason})


def _record(conn: Connection, ledger: Ledger, kind: str, *, actor: str, budget: str,
            payload: dict[str, Any]) -> Event:
    from charter import readmodel  # readmodel imports this module for its projectors

    return readmodel.record(conn, ledger, kind=kind, actor=actor,
                            subject=f"budget:{budget}", payload=payload)


def _money(value: object, what: str, *, zero_ok: bool = False) -> Decimal:
    """An exact amount of money, or `InvalidInput` saying what is wrong with it."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise InvalidInput(f"{what} must be a Decimal, an integer or text such as '12.50' "
                           f"(not {type(value).__name__}: money is exact), got {value!r}")
    try:
        number = Decimal(value.strip() if isinstance(value, str) else value)
    except InvalidOperation:
        raise InvalidInput(f"{what} is not a number: {value!r}") from None
    least = "zero or more" if zero_ok else "more than zero"
    if not number.is_finite() or number < 0 or (number == 0 and not zero_ok):
        raise InvalidInput(f"{what} must be {least}, got {value!r}")
    if number >= _LIMIT:
        raise InvalidInput(f"{what} is too large: {value!r} (the most is {_LIMIT - 1})")
    exponent = number.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < -_PLACES:
        raise InvalidInput(f"{what} has more than {_PLACES} decimal places: {value!r}")
    return _plain(number)


def _plain(number: Decimal) -> Decimal:
    """One form per amount, without an exponent: 10, 12.5, 0.0004."""
    if number == number.to_integral_value():
        return number.quantize(Decimal(1)) if number else Decimal(0)
    return number.normalize()


def _text(number: Decimal) -> str:
    return format(_plain(number), "f")
