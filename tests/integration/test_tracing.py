"""Tracing: one OpenTelemetry trace per task, from submit to completion, recorded with
the SDK's in-memory exporter; with tracing off nothing changes; with `otlp_endpoint`
set the spans reach an OTLP/HTTP collector."""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
import yaml
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from charter import tracing
from charter.system import Charter
from tests.engines.orgs import edit_org
from tests.engines.shop import orders, work

ROOT = Path(__file__).resolve().parent.parent.parent
BUYER = {"kind": "python", "target": "tests.engines.agents:buyer"}


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Charter's spans, kept in memory for the test."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use(provider)
    yield exporter
    tracing.use(None)
    provider.shutdown()


@pytest.fixture
def shop(system: Charter, workspace: Path, tmp_path: Path) -> tuple[Charter, Path]:
    """The example org where buyer-bot-1 (a python engine) is the only buyer."""
    path = edit_org(workspace, engines={"buyer-bot-1": BUYER},
                    performers={"purchase.create": "tests.engines.shop:purchase"})
    org = yaml.safe_load(path.read_text())
    for member in org["members"]:
        if member["id"] != "buyer-bot-1":
            member.get("skills", {}).pop("purchasing", None)
    path.write_text(yaml.safe_dump(org, sort_keys=False))
    system.load_org(path)
    return system, tmp_path / "shop.jsonl"


def submit_order(system: Charter, shop_file: Path, amount: int) -> str:
    task = system.submit_task("purchase_order", "vendor:globex", {
        "vendor": "Vendor::globex", "amount": amount, "shop_file": str(shop_file)},
        requester="james.liu", dispatch=True)
    assert task.assignee == "buyer-bot-1"
    return task.id


def by_name(exporter: InMemorySpanExporter) -> dict[str, list[ReadableSpan]]:
    named: dict[str, list[ReadableSpan]] = {}
    for span in exporter.get_finished_spans():
        named.setdefault(span.name, []).append(span)
    return named


def parent_id(span: ReadableSpan) -> int | None:
    return None if span.parent is None else span.parent.span_id


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.span_id


def test_a_task_has_one_trace_from_submit_to_complete(shop, spans):
    system, shop_file = shop
    task_id = submit_order(system, shop_file, 800)
    work(system, max_tasks=1)
    task = system.task(task_id)
    assert task.state == "done" and len(orders(shop_file)) == 1

    assert task.trace_id is not None and len(task.trace_id) == 32
    named = by_name(spans)
    assert {s.context.trace_id for s in spans.get_finished_spans() if s.context} == {
        int(task.trace_id, 16)}
    [submit] = named["charter.task.submit"]
    [allocate] = named["charter.task.allocate"]
    [claim] = named["charter.task.claim"]
    [run] = named["charter.engine.run"]
    [authorize] = named["charter.authorize"]
    [complete] = named["charter.task.complete"]
    # the submit span starts the trace; every later step hangs under it
    assert submit.parent is None
    assert parent_id(allocate) == parent_id(claim) == span_id(submit)
    assert parent_id(run) == span_id(claim)
    assert parent_id(authorize) == parent_id(complete) == span_id(run)

    assert submit.attributes is not None
    assert (submit.attributes["charter.task.id"], submit.attributes["charter.task.type"],
            submit.attributes["charter.member"]) == (task_id, "purchase_order", "james.liu")
    assert allocate.attributes is not None
    assert allocate.attributes["charter.member"] == "buyer-bot-1"
    assert allocate.attributes["charter.state"] == "assigned"
    assert run.attributes is not None
    assert (run.attributes["charter.member"], run.attributes["charter.engine.kind"],
            run.attributes["charter.outcome"]) == ("buyer-bot-1", "python", "completed")
    assert authorize.attributes is not None
    assert dict(authorize.attributes) == {
        "charter.member": "buyer-bot-1", "charter.action": "purchase.create",
        "charter.task.type": "purchase_order", "charter.task.id": task_id,
        "charter.decision": "allow", "charter.resource": "Vendor::globex"}
    assert complete.attributes is not None
    assert complete.attributes["charter.state"] == "done"


def test_the_ledger_keeps_the_trace_and_a_replay_restores_it(shop, spans):
    system, shop_file = shop
    task_id = submit_order(system, shop_file, 300)
    trace_id = system.task(task_id).trace_id
    [submitted] = system.events(subject=f"task:{task_id}", kind="task.submitted")
    [submit] = by_name(spans)["charter.task.submit"]
    assert submitted.payload is not None
    assert submitted.payload["trace"] == {"trace_id": trace_id,
                                          "span_id": f"{span_id(submit):016x}"}
    system.rebuild_read_tables()
    assert system.task(task_id).trace_id == trace_id


def test_an_approval_wait_is_a_span_of_the_tasks_trace(shop, spans):
    system, shop_file = shop
    task_id = submit_order(system, shop_file, 8000)  # over buyer-bot-1's limit
    work(system, max_tasks=1)
    [approval] = system.approvals(task_id=task_id)
    system.approve(approval.id, approver="james.liu")
    work(system, max_tasks=1)
    task = system.task(task_id)
    assert task.state == "done" and task.trace_id is not None

    named = by_name(spans)
    assert {s.context.trace_id for s in spans.get_finished_spans() if s.context} == {
        int(task.trace_id, 16)}
    [submit] = named["charter.task.submit"]
    [escalated] = named["charter.authorize"]
    assert escalated.attributes is not None
    assert escalated.attributes["charter.decision"] == "escalate"
    assert escalated.attributes["charter.approval.id"] == approval.id
    [paused] = named["charter.task.await_approval"]
    [waited] = named["charter.task.approval_wait"]
    assert parent_id(waited) == span_id(submit)  # approved from outside any span
    assert waited.attributes is not None
    assert waited.attributes["charter.member"] == "buyer-bot-1"
    assert waited.start_time is not None and waited.end_time is not None
    assert waited.start_time <= waited.end_time
    first_run, second_run = sorted(named["charter.engine.run"],
                                   key=lambda s: s.start_time or 0)
    assert parent_id(paused) == span_id(first_run)
    assert first_run.attributes is not None and second_run.attributes is not None
    assert first_run.attributes["charter.outcome"] == "paused"
    assert second_run.attributes["charter.outcome"] == "completed"
    assert len(named["charter.task.claim"]) == 2
    assert all(parent_id(c) == span_id(submit) for c in named["charter.task.claim"])


def test_a_request_bound_to_a_task_joins_its_trace_from_outside_a_run(shop, spans):
    system, shop_file = shop
    task_id = submit_order(system, shop_file, 300)
    decision = system.authorize("buyer-bot-1", "purchase.create", "Vendor::globex",
                                {"amount": 300}, task_type="purchase_order",
                                task_id=task_id)
    named = by_name(spans)
    [submit] = named["charter.task.submit"]
    [authorize] = named["charter.authorize"]
    assert parent_id(authorize) == span_id(submit)
    assert authorize.attributes is not None
    assert authorize.attributes["charter.decision"] == decision.outcome == "allow"
    # a request bound to no task is a trace of its own
    system.authorize("buyer-bot-1", "purchase.create", "Vendor::globex", {"amount": 1})
    unbound = by_name(spans)["charter.authorize"][-1]
    assert unbound.parent is None and unbound.context is not None
    assert unbound.context.trace_id != submit.context.trace_id  # type: ignore[union-attr]


def test_with_tracing_off_tasks_run_and_keep_no_trace(shop):
    system, shop_file = shop
    assert not tracing.enabled()
    task_id = submit_order(system, shop_file, 800)
    work(system, max_tasks=1)
    task = system.task(task_id)
    assert task.state == "done" and task.trace_id is None
    [submitted] = system.events(subject=f"task:{task_id}", kind="task.submitted")
    assert submitted.payload is not None and "trace" not in submitted.payload


class Collector(http.server.BaseHTTPRequestHandler):
    """An OTLP/HTTP traces endpoint that keeps what it is sent."""

    received: ClassVar[list[tuple[str, str, bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, self.headers["Content-Type"], body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


SUBMIT_ONE = """
import sys
from charter import open_charter
with open_charter(sys.argv[1], sys.argv[2]) as system:
    task = system.submit_task("purchase_order", "vendor:globex", {"amount": 10},
                              requester="james.liu")
    print(task.trace_id)
"""


def test_the_otlp_endpoint_setting_exports_spans(tmp_path: Path):
    Collector.received = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}/v1/traces"
    env = {**os.environ, "CHARTER_OTLP_ENDPOINT": endpoint,
           "CHARTER_SERVICE_NAME": "charter-test", "CHARTER_SECRET": "test-secret"}
    try:
        done = subprocess.run(
            [sys.executable, "-c", SUBMIT_ONE, f"sqlite:///{tmp_path / 'charter.db'}",
             str(ROOT / "examples" / "acme" / "charter.yaml")],
            env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    finally:
        server.shutdown()
        server.server_close()
    assert done.returncode == 0, done.stderr
    trace_id = done.stdout.strip()
    assert len(trace_id) == 32
    assert Collector.received, "the collector received no spans"
    path, content_type, body = Collector.received[0]
    assert (path, content_type) == ("/v1/traces", "application/x-protobuf")
    sent = ExportTraceServiceRequest.FromString(body)
    [resource_spans] = sent.resource_spans
    service = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
    assert service["service.name"] == "charter-test"
    exported = [s for scope in resource_spans.scope_spans for s in scope.spans]
    assert [s.name for s in exported] == ["charter.task.submit"]
    assert exported[0].trace_id.hex() == trace_id
