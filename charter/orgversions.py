"""Versions of the org in the database: each load is a ledger event and a new version."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from charter import budgettotals
from charter.canonical import canonical_json
from charter.ledger import Event, EventDraft
from charter.org import Org, walk_budgets
from charter.store.schema import budgets, members, org_versions, task_types

ORG_LOADED = "org.loaded"


@dataclass(frozen=True)
class OrgVersion:
    """An org as loaded: its number, when, by whom, and the event that recorded it."""

    version: int
    org: Org
    loaded_at: str
    loaded_by: str
    event_seq: int


def org_loaded_draft(conn: Connection, org: Org, actor: str) -> EventDraft:
    """The event that makes `org` the next version."""
    latest = conn.execute(select(func.max(org_versions.c.version))).scalar()
    payload = {"version": (latest or 0) + 1, "digest": org.digest, "source": org.source,
               "document": org.document()}
    return EventDraft(ORG_LOADED, actor, f"org:{org.id}", payload)


def project_org_loaded(conn: Connection, event: Event) -> None:
    """Make the loaded org the current one in the read tables."""
    payload = _payload(event)
    document = payload["document"]
    version = payload["version"]
    org = Org.from_document(document, payload["source"])
    conn.execute(insert(org_versions).values(
        version=version, org_id=org.id, digest=payload["digest"], source=payload["source"],
        loaded_at=event.at, loaded_by=event.actor, event_seq=event.seq,
        document=canonical_json(document)))
    for table in (members, task_types):
        conn.execute(delete(table))
    if org.spec.members:
        conn.execute(insert(members), [
            {"id": m.id, "org_version": version, "kind": m.kind, "name": m.display_name,
             "title": m.title, "department": m.department, "reports_to": m.reports_to,
             "status": m.status, "capacity": m.capacity} for m in org.spec.members])
    if org.spec.task_types:
        conn.execute(insert(task_types), [
            {"id": t.id, "org_version": version, "action": t.action, "value": t.value,
             "autonomy_ceiling": t.autonomy_ceiling} for t in org.spec.task_types])
    _project_budgets(conn, org, version)
    budgettotals.recompute_usage(conn, event.at)


def _project_budgets(conn: Connection, org: Org, version: int) -> None:
    """Update envelopes in place, so their reserved and committed amounts survive a
    new org version; envelopes the org no longer has are removed."""
    existing = set(conn.execute(select(budgets.c.id)).scalars())
    for budget, parent in walk_budgets(org.spec.budgets, None):
        values = {"org_version": version, "parent_id": parent, "owner": budget.owner,
                  "amount": budget.amount, "period": budget.period}
        if budget.id in existing:
            conn.execute(update(budgets).where(budgets.c.id == budget.id).values(**values))
        else:
            conn.execute(insert(budgets).values(id=budget.id, reserved=0, committed=0,
                                                **values))
    removed = existing - set(org.budgets)
    if removed:
        conn.execute(delete(budgets).where(budgets.c.id.in_(removed)))


def current_version_number(conn: Connection) -> int | None:
    value = conn.execute(select(func.max(org_versions.c.version))).scalar()
    return None if value is None else int(value)


def read_version(conn: Connection, version: int) -> OrgVersion | None:
    row = conn.execute(select(org_versions).where(org_versions.c.version == version)).first()
    if row is None:
        return None
    org = Org.from_document(json.loads(row.document), row.source)
    return OrgVersion(row.version, org, row.loaded_at, row.loaded_by, row.event_seq)


def list_versions(conn: Connection) -> list[dict[str, Any]]:
    query = select(org_versions.c.version, org_versions.c.org_id, org_versions.c.digest,
                   org_versions.c.loaded_at, org_versions.c.loaded_by,
                   org_versions.c.event_seq).order_by(org_versions.c.version)
    return [dict(row._mapping) for row in conn.execute(query)]


def _payload(event: Event) -> dict[str, Any]:
    if event.payload is None:
        raise ValueError(f"event {event.seq} (org.loaded) was redacted; the org version "
                         "it recorded cannot be rebuilt")
    return event.payload
