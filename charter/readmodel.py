"""The read tables, and how ledger events change them.

Every command appends its events and applies them here in the same transaction, so the
read tables hold nothing the ledger does not explain, and `rebuild` can recreate them.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from sqlalchemy import Connection, delete

from charter.ledger import Event, EventDraft, Ledger
from charter.store.schema import READ_TABLES

Projector = Callable[[Connection, Event], None]


@cache
def projectors() -> dict[str, Projector]:
    """What each event kind does to the read tables (kinds not listed change none).

    Built on first use: the concept modules record their events through this module, so
    importing them here at load time would make the order of imports matter."""
    from charter import (
        actions,
        approvals,
        autonomy,
        breakers,
        budgettotals,
        delegations,
        leases,
        memory,
        orgversions,
        outcomes,
        policyversions,
        proposalprojection,
        reviews,
        suspensions,
        taskprojection,
    )
    found: dict[str, Projector] = {
        orgversions.ORG_LOADED: orgversions.project_org_loaded,
        policyversions.POLICY_LOADED: policyversions.project_policy_loaded,
        delegations.GRANTED: delegations.project_granted,
        delegations.REVOKED: delegations.project_revoked,
        **approvals.PROJECTORS,
        **budgettotals.PROJECTORS,
        **taskprojection.PROJECTORS,
        outcomes.RECORDED: outcomes.project_recorded,
        autonomy.PROMOTED: autonomy.project_change,
        autonomy.DEMOTED: autonomy.project_change,
        **leases.PROJECTORS,
        **proposalprojection.PROJECTORS,
        **memory.PROJECTORS,
        **actions.PROJECTORS,
        **suspensions.PROJECTORS,
        **breakers.PROJECTORS,
        **reviews.PROJECTORS,
    }
    for kind, also in breakers.ATTEMPT_PROJECTORS.items():
        found[kind] = _both(found[kind], also)
    return found


def _both(first: Projector, second: Projector) -> Projector:
    """Two modules' projections of one event kind, in order."""
    def project(conn: Connection, event: Event) -> None:
        first(conn, event)
        second(conn, event)
    return project


def apply(conn: Connection, event: Event) -> None:
    projector = projectors().get(event.kind)
    if projector is not None:
        projector(conn, event)


def record(conn: Connection, ledger: Ledger, *, kind: str, actor: str, subject: str,
           payload: dict[str, Any]) -> Event:
    """Append an event and apply it to the read tables, in `conn`'s transaction."""
    return record_draft(conn, ledger, EventDraft(kind, actor, subject, payload))


def record_draft(conn: Connection, ledger: Ledger, draft: EventDraft) -> Event:
    (event,) = record_drafts(conn, ledger, [draft])
    return event


def record_drafts(conn: Connection, ledger: Ledger, drafts: list[EventDraft]) -> list[Event]:
    """Append several events at once (one hold of the ledger head) and apply them."""
    events = ledger.append_many(conn, drafts)
    for event in events:
        apply(conn, event)
    return events


def rebuild(conn: Connection, ledger: Ledger, batch: int = 2000) -> int:
    """Empty the read tables and replay every event into them; return events replayed."""
    for table in reversed(READ_TABLES):
        conn.execute(delete(table))
    replayed, after = 0, 0
    while True:
        page = list(ledger.read(conn, after=after, limit=batch))
        for event in page:
            apply(conn, event)
        replayed += len(page)
        if len(page) < batch:
            return replayed
        after = page[-1].seq
