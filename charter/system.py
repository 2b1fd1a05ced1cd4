"""The `Charter` facade: one organisation's Charter, over one database."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal

from charter import budgets, orgversions, policyversions, readmodel, tracing
from charter.authority import Authority
from charter.clock import Clock, SystemClock
from charter.decisionlog import DecisionLog
from charter.errors import Conflict, NoOrgLoaded
from charter.governance import GovernanceVerbs, Snapshot
from charter.leaseverbs import LeaseVerbs
from charter.ledger import Checkpoint, Event, Ledger, VerifyReport
from charter.memoryverbs import MemoryVerbs
from charter.org import Org, read_org
from charter.orgversions import OrgVersion
from charter.policy import PolicyEngine, read_policy_files
from charter.proposalverbs import ProposalVerbs
from charter.reviewverbs import ReviewVerbs
from charter.secret import ServerSecret
from charter.settings import Settings
from charter.spendverbs import SpendVerbs
from charter.store import Store, ids_starting, open_store
from charter.store.schema import approvals as approvals_table
from charter.store.schema import tasks as tasks_table
from charter.suspensionverbs import SuspensionVerbs
from charter.tokenverbs import TokenVerbs
from charter.work import WorkVerbs


class Charter(GovernanceVerbs, SpendVerbs, WorkVerbs, LeaseVerbs, ProposalVerbs,
              MemoryVerbs, TokenVerbs, SuspensionVerbs, ReviewVerbs):
    """Charter's verbs over one store. Every command runs in one transaction that
    appends its ledger events and updates the read tables."""

    def __init__(self, store: Store, settings: Settings | None = None,
                 clock: Clock | None = None) -> None:
        self.settings = settings or Settings()
        tracing.install(self.settings)  # spans go to `otlp_endpoint` when it is set
        self.store = store
        self.clock = clock or SystemClock()
        secret = ServerSecret.from_settings(self.settings, store.database_file)
        self.ledger = Ledger(store, self.clock, secret)
        self._org_cache: OrgVersion | None = None
        self._org_checked = float("-inf")
        self._snapshot: Snapshot | None = None
        self._decisions = DecisionLog(self.ledger, self.settings.decision_flush_interval)

    # -- org --------------------------------------------------------------------------

    def load_org(self, path: str | Path | None = None, *, actor: str = "system") -> OrgVersion:
        """Validate the org file and its policies folder and make them the current
        versions (ledger events).

        An invalid file raises `OrgInvalid` (or `PolicyInvalid`) listing every problem
        and changes nothing.
        """
        org = read_org(Path(path or self.settings.org).resolve())
        return self.install_org(org, actor=actor)

    def install_org(self, org: Org, *, actor: str = "system") -> OrgVersion:
        """Make an already validated org the current version, with the policies in its
        folder (validated against the new org's schema first)."""
        engine = PolicyEngine.build(org, read_policy_files(org.policies_dir))
        with self.store.transaction() as conn:
            stranded = budgets.open_reservations_outside(conn, set(org.budgets))
            if stranded:
                raise Conflict(
                    "the new org removes budgets that hold open reservations ("
                    + ", ".join(sorted(stranded)) + "); commit or release them first; "
                    "nothing was changed")
            draft = orgversions.org_loaded_draft(conn, org, actor)
            event = readmodel.record_draft(conn, self.ledger, draft)
            current = policyversions.current_version_number(conn)
            loaded = None if current is None else policyversions.read_version(conn, current)
            if loaded is None or loaded.digest != engine.policies.digest:
                policies = policyversions.policy_loaded_draft(conn, engine.policies,
                                                              str(org.policies_dir), actor)
                readmodel.record_draft(conn, self.ledger, policies)
                current = policies.payload["version"]
        version = OrgVersion(draft.payload["version"], org, event.at, actor, event.seq)
        self._org_cache = version
        self._org_checked = time.monotonic()
        # Decide with the engine just built; the next decision still re-reads versions
        # and delegations, so a concurrent change elsewhere is not missed.
        self._snapshot = Snapshot(version.version, current, Authority(engine),
                                  float("-inf"))
        return version

    def current_org(self) -> OrgVersion | None:
        """The org in force, or None before the first load. A load made by this process
        is seen at once; one made by another node within `governance_refresh` seconds."""
        cached = self._org_cache
        if cached is not None and (time.monotonic() - self._org_checked
                                   < self.settings.governance_refresh):
            return cached
        with self.store.reading() as conn:
            number = orgversions.current_version_number(conn)
            if number is None:
                return None
            if cached is None or cached.version != number:
                self._org_cache = orgversions.read_version(conn, number)
        self._org_checked = time.monotonic()
        return self._org_cache

    @property
    def org(self) -> Org:
        """The org in force; raises `NoOrgLoaded` before the first load."""
        current = self.current_org()
        if current is None:
            raise NoOrgLoaded()
        return current.org

    def org_versions(self) -> list[dict[str, Any]]:
        with self.store.reading() as conn:
            return orgversions.list_versions(conn)

    # -- ledger -----------------------------------------------------------------------

    def verify_ledger(self) -> VerifyReport:
        """Recompute the hash chain and the signed head; name the first bad event."""
        return self.ledger.verify()

    def checkpoint(self) -> Checkpoint:
        """The signed head of the ledger, to anchor outside the database."""
        with self.store.reading() as conn:
            return self.ledger.checkpoint(conn)

    def events(self, *, after: int = 0, kind: str | None = None, subject: str | None = None,
               actor: str | None = None, limit: int | None = None) -> list[Event]:
        with self.store.reading() as conn:
            return list(self.ledger.read(conn, after=after, kind=kind, subject=subject,
                                         actor=actor, limit=limit))

    def tail(self, count: int = 20) -> list[Event]:
        """The newest `count` events, oldest first."""
        with self.store.reading() as conn:
            newest = list(self.ledger.read(conn, limit=count, newest_first=True))
        return newest[::-1]

    def export_ledger(self, out: IO[str], *, after: int = 0) -> int:
        """Write the events after seq `after` as JSON Lines; return how many."""
        written = 0
        with self.store.reading() as conn:
            for event in self.ledger.read(conn, after=after):
                out.write(json.dumps(event.to_json(), ensure_ascii=False) + "\n")
                written += 1
        return written

    def iter_events(self, *, after: int = 0) -> Iterator[Event]:
        with self.store.reading() as conn:
            yield from self.ledger.read(conn, after=after)

    def find_ids(self, kind: Literal["task", "approval"], prefix: str) -> list[str]:
        """Ids of tasks or approvals starting with `prefix` (two at most: enough to tell
        whether a short id is unique)."""
        column = tasks_table.c.id if kind == "task" else approvals_table.c.id
        with self.store.reading() as conn:
            return ids_starting(conn, column, prefix)

    def redact(self, seq: int, *, actor: str, reason: str) -> Event:
        """Erase event `seq`'s payload (keeping its digest) for an erasure request."""
        with self.store.transaction() as conn:
            return self.ledger.redact(conn, seq, actor, reason)

    def rebuild_read_tables(self) -> int:
        """Replay the whole ledger into empty read tables; return events replayed."""
        with self.store.transaction() as conn:
            replayed = readmodel.rebuild(conn, self.ledger)
        self._org_cache = None
        self._snapshot = None
        return replayed

    # -- lifetime ---------------------------------------------------------------------

    def close(self) -> None:
        """Write pending decisions to the ledger and close the database."""
        try:
            self._decisions.close()
        finally:
            self.store.close()

    def __enter__(self) -> Charter:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()


def open_charter(db_url: str | None = None, org_path: str | Path | None = None, *,
                 settings: Settings | None = None, clock: Clock | None = None,
                 actor: str = "system") -> Charter:
    """Open Charter on `db_url` (default: the `db` setting).

    With `org_path`, the org file is loaded when it differs from the version in force
    (opening again with the same file records nothing).
    """
    settings = settings or Settings()
    store = open_store(db_url, settings)
    charter = Charter(store, settings, clock)
    try:
        if org_path is not None:
            org = read_org(Path(org_path).resolve())
            current = charter.current_org()
            if current is None or current.org.digest != org.digest:
                charter.install_org(org, actor=actor)
    except BaseException:
        charter.close()
        raise
    return charter
