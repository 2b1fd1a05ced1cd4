"""Versions of the policy set: each load is a ledger event carrying the set's hash."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import Connection, func, insert, select

from charter.ledger import Event, EventDraft
from charter.policy import CompiledPolicies
from charter.store.schema import policy_versions

POLICY_LOADED = "policy.loaded"


@dataclass(frozen=True)
class PolicyVersion:
    version: int
    digest: str
    source: str
    files: dict[str, str]
    loaded_at: str
    loaded_by: str
    event_seq: int


def policy_loaded_draft(conn: Connection, policies: CompiledPolicies, source: str,
                        actor: str) -> EventDraft:
    latest = conn.execute(select(func.max(policy_versions.c.version))).scalar()
    payload = {"version": (latest or 0) + 1, "digest": policies.digest, "source": source,
               "policies": sorted(policies.statements), "files": policies.files}
    return EventDraft(POLICY_LOADED, actor, "policies", payload)


def project_policy_loaded(conn: Connection, event: Event) -> None:
    if event.payload is None:
        raise ValueError(f"event {event.seq} (policy.loaded) was redacted; the policy "
                         "set it recorded cannot be rebuilt")
    payload = event.payload
    conn.execute(insert(policy_versions).values(
        version=payload["version"], digest=payload["digest"], source=payload["source"],
        loaded_at=event.at, loaded_by=event.actor, event_seq=event.seq,
        files=json.dumps(payload["files"], sort_keys=True)))


def current_version_number(conn: Connection) -> int | None:
    value = conn.execute(select(func.max(policy_versions.c.version))).scalar()
    return None if value is None else int(value)


def read_version(conn: Connection, version: int) -> PolicyVersion | None:
    row = conn.execute(select(policy_versions)
                       .where(policy_versions.c.version == version)).first()
    if row is None:
        return None
    return PolicyVersion(row.version, row.digest, row.source, json.loads(row.files),
                         row.loaded_at, row.loaded_by, row.event_seq)
