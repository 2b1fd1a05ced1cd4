"""Envelope totals: what each budget event does to the `budgets` and `reservations` read
tables. Projectors read nothing but the event and the tables, so a replay rebuilds them;
an envelope's `committed` starts again from zero when its period has moved on, judged
from the event's own time."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, insert, select, update

from charter.budgets import COMMITTED, RELEASED, RESERVED, TOPPED_UP, current_period, period_start
from charter.ledger import Event
from charter.store.schema import budgets, reservations


def project_reserved(conn: Connection, event: Event) -> None:
    data = _payload(event)
    amount = Decimal(data["amount"])
    conn.execute(insert(reservations).values(
        id=data["reservation"], budget_id=data["budget"], member=data["member"],
        amount=amount, purpose=data["purpose"], status="reserved", created_at=event.at,
        expires_at=data["expires_at"]))
    _adjust(conn, event.at, data["chain"], reserved=amount)


def project_committed(conn: Connection, event: Event) -> None:
    data = _payload(event)
    actual = Decimal(data["actual"])
    _settle(conn, event, status="committed", actual=actual)
    _adjust(conn, event.at, data["chain"], reserved=-Decimal(data["amount"]),
            committed=actual)


def project_released(conn: Connection, event: Event) -> None:
    data = _payload(event)
    _settle(conn, event, status="released", actual=None)
    _adjust(conn, event.at, data["chain"], reserved=-Decimal(data["amount"]))


def project_topped_up(conn: Connection, event: Event) -> None:
    data = _payload(event)
    _adjust(conn, event.at, [data["budget"]], amount=Decimal(data["amount"]))


PROJECTORS: dict[str, Callable[[Connection, Event], None]] = {
    RESERVED: project_reserved, COMMITTED: project_committed, RELEASED: project_released,
    TOPPED_UP: project_topped_up,
}
"""For `charter.readmodel`: what each budget event does to the read tables."""


def _settle(conn: Connection, event: Event, *, status: str, actual: Decimal | None) -> None:
    conn.execute(update(reservations)
                 .where(reservations.c.id == _payload(event)["reservation"])
                 .values(status=status, settled_at=event.at, actual=actual))


def _adjust(conn: Connection, at: str, chain: Iterable[str], *, amount: Decimal = Decimal(0),
            reserved: Decimal = Decimal(0), committed: Decimal = Decimal(0)) -> None:
    # Sums are taken here in Decimal, not in SQL: SQLite keeps NUMERIC as a float.
    for row in conn.execute(select(budgets).where(budgets.c.id.in_(list(chain)))).all():
        start, current = current_period(row, at)
        conn.execute(update(budgets).where(budgets.c.id == row.id).values(
            amount=row.amount + amount, reserved=row.reserved + reserved,
            committed=current + committed, period_start=start))


def recompute_usage(conn: Connection, at: str) -> None:
    """Set every envelope's reserved and committed from the reservations, charging each
    to the envelopes it sits under now. An org load calls this after reshaping the tree,
    so moved envelopes leave no stale totals in their old parents."""
    rows = {row.id: row for row in conn.execute(select(budgets))}
    reserved = dict.fromkeys(rows, Decimal(0))
    committed = dict.fromkeys(rows, Decimal(0))
    starts = {budget_id: period_start(row.period, at) for budget_id, row in rows.items()}
    query = select(reservations).where(reservations.c.status.in_(("reserved", "committed")))
    for held in conn.execute(query):
        current: str | None = held.budget_id
        seen: set[str] = set()
        while current is not None and current in rows and current not in seen:
            seen.add(current)
            if held.status == "reserved":
                reserved[current] += held.amount
            elif starts[current] is None or held.settled_at >= starts[current]:
                committed[current] += held.actual
            current = rows[current].parent_id
    for budget_id, row in rows.items():
        if (row.reserved, row.committed) != (reserved[budget_id], committed[budget_id]):
            conn.execute(update(budgets).where(budgets.c.id == budget_id).values(
                reserved=reserved[budget_id], committed=committed[budget_id],
                period_start=starts[budget_id]))


def _payload(event: Event) -> dict[str, Any]:
    if event.payload is None:
        raise ValueError(f"event {event.seq} ({event.kind}) was redacted; the budgets it "
                         "changed cannot be rebuilt")
    return event.payload
