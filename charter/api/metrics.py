"""`/metrics` in Prometheus' text format: decisions, tasks by state, claim latency,
approvals waiting, refused API calls. Counts read from the database at scrape time, so
every node reports the whole system; latencies and refusals are this process's."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from charter.store.schema import approvals, events, tasks
from charter.system import Charter


class SystemCounts(Collector):
    """Gauges read from the database when scraped."""

    def __init__(self, system: Charter) -> None:
        self.system = system

    def collect(self) -> Iterator[Metric]:
        with self.system.store.reading() as conn:
            by_state = conn.execute(select(tasks.c.state, func.count())
                                    .group_by(tasks.c.state)).all()
            waiting = conn.execute(select(func.count()).select_from(approvals)
                                   .where(approvals.c.status == "pending")).scalar_one()
            decided = conn.execute(select(func.count()).select_from(events)
                                   .where(events.c.kind == "decision.made")).scalar_one()
        states = GaugeMetricFamily("charter_tasks", "Tasks by state.", labels=["state"])
        for state, count in by_state:
            states.add_metric([state], count)
        yield states
        yield GaugeMetricFamily("charter_approvals_waiting", "Approvals pending.",
                                value=waiting)
        yield GaugeMetricFamily("charter_decisions", "Decisions recorded in the ledger.",
                                value=decided)


class ApiMetrics:
    """One registry per app, so several apps in one process do not collide."""

    def __init__(self, system: Charter) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(SystemCounts(system))
        self.claim_seconds = Histogram(
            "charter_claim_seconds", "Time to claim a task over the API.",
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0))
        self.refused = Counter("charter_api_refused", "API calls refused, by reason.",
                               ["reason"], registry=self.registry)
