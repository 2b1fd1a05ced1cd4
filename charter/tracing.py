"""Tracing: OpenTelemetry spans along a task's life, one trace per task.

The submit span starts the task's trace. Its trace and span ids go into the
`task.submitted` event (so the trace id lands in `tasks.trace_id`, and a replay of the
ledger restores it), and every later span of the task — allocate, claim, engine run,
authorize, approval wait, complete or fail — is recorded as a child of the submit span
(or of the span around it, such as the engine run), whichever process records it.

Charter's code uses only the OpenTelemetry API, which records nothing until an SDK is
installed: `install` sets one up from the settings (an OTLP/HTTP exporter, from the
`otel` extra), and `use` sends Charter's spans to a provider of the caller's own (a
test's in-memory exporter). With tracing off, a span costs a no-op call and tasks keep
no trace id.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, NonRecordingSpan, Span, SpanContext, TraceFlags
from opentelemetry.util.types import AttributeValue
from sqlalchemy import Connection, bindparam, select

from charter.canonical import storable_text
from charter.errors import ConfigurationError
from charter.store.schema import events

if TYPE_CHECKING:
    from charter.settings import Settings
    from charter.store import Store
    from charter.tasks import Task

SCOPE = "charter"
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
ANY = ""
"""A trace id that is not known: `current_in` and `task_parent` take any current span."""


@dataclass
class _Recorder:
    """The tracer Charter's spans go to: the global provider's, unless `use` says."""

    tracer: trace.Tracer
    provider: trace.TracerProvider | None = None


_recorder = _Recorder(trace.get_tracer(SCOPE))
_exporting_to: set[str] = set()
_SUBMITTED = select(events.c.payload).where(
    events.c.subject == bindparam("subject"), events.c.kind == "task.submitted").limit(1)


def install(settings: Settings) -> None:
    """Export spans over OTLP/HTTP to the `otlp_endpoint` setting (nothing when it is
    empty), as the service `service_name`; once per endpoint in a process. The spans of
    other libraries in the process go there too, through the global tracer provider."""
    endpoint = settings.otlp_endpoint
    if not endpoint or endpoint in _exporting_to:
        return
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as missing:
        raise ConfigurationError(
            f"the otlp_endpoint setting needs {missing.name}: pip install 'charter[otel]'"
        ) from None
    current = trace.get_tracer_provider()
    provider = current if isinstance(current, TracerProvider) else TracerProvider(
        resource=Resource.create({SERVICE_NAME: settings.service_name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    if provider is not current:
        if isinstance(current, trace.ProxyTracerProvider):
            trace.set_tracer_provider(provider)
        else:  # another kind of provider is global: Charter's own spans still go out
            use(provider)
    _exporting_to.add(endpoint)


def use(provider: trace.TracerProvider | None) -> None:
    """Record Charter's spans with `provider`; None goes back to the global provider."""
    _recorder.provider = provider
    _recorder.tracer = (trace.get_tracer(SCOPE) if provider is None
                        else provider.get_tracer(SCOPE))


def enabled() -> bool:
    """Whether spans are recorded at all: lookups that serve only tracing are skipped
    when they are not."""
    return _recorder.provider is not None or not isinstance(
        trace.get_tracer_provider(), (trace.ProxyTracerProvider, trace.NoOpTracerProvider))


def attributes(**named: object) -> dict[str, AttributeValue]:
    """Span attributes named `charter.<name>` with `_` read as `.` (`task_id` is
    `charter.task.id`), leaving out those that are unknown; text as every exporter
    can encode it."""
    return {"charter." + key.replace("_", "."):
            value if isinstance(value, bool | int | float) else storable_text(str(value))
            for key, value in named.items() if value is not None}


def describe(span: Span, **named: object) -> None:
    """Add `attributes(**named)` to a span that is recorded (built only then)."""
    if span.is_recording():
        span.set_attributes(attributes(**named))


def note(**named: object) -> None:
    """Add attributes to the current span (how an engine run ended)."""
    describe(trace.get_current_span(), **named)


def start(name: str, *, parent: SpanContext | None = None, new_trace: bool = False,
          **named: object) -> AbstractContextManager[Span]:
    """A span around a block, made the current span, with `attributes(**named)`: under
    `parent`, or (`new_trace`) as the root of a new trace linked to the current span,
    or else under the current span. An exception leaving the block is recorded on it."""
    context, links = _placing(parent, new_trace)
    span = _recorder.tracer.start_span(name, context=context, links=links)
    if not span.get_span_context().is_valid:  # tracing is off: nothing to make current
        return nullcontext(span)
    describe(span, **named)
    return trace.use_span(span, end_on_exit=True)


def record(name: str, *, parent: SpanContext | None, start_ns: int,
           end_ns: int | None = None, **named: object) -> SpanContext | None:
    """A span that already happened, from `start_ns` to `end_ns` (default: now), under
    `parent` (or the current span), with `attributes(**named)`. Returns its context for
    spans under it (None when it is not recorded)."""
    return _record(name, parent, start_ns, end_ns, named)


def task_step(conn: Connection, name: str, task: Task, *, member: str | None,
              start_ns: int, **named: object) -> SpanContext | None:
    """Record a command on `task` that ran from `start_ns` until now, in the task's
    trace, naming the task, its type, the member and `named`."""
    return _record(name, task_parent(conn, task.id, task.trace_id), start_ns, None,
                   {"task_id": task.id, "task_type": task.type, "member": member, **named})


def ids(span: Span) -> dict[str, str] | None:
    """The trace and span ids of a sampled span as hex, as the ledger keeps them; None
    when it is not recorded (tracing off, or sampled out)."""
    context = span.get_span_context()
    if not context.is_valid or not context.trace_flags.sampled:
        return None
    return {"trace_id": trace.format_trace_id(context.trace_id),
            "span_id": trace.format_span_id(context.span_id)}


def remote(trace_id: str, span_id: str) -> SpanContext | None:
    """The context of a sampled span recorded elsewhere, from its hex ids."""
    try:
        context = SpanContext(int(trace_id, 16), int(span_id, 16), is_remote=True,
                              trace_flags=TraceFlags(TraceFlags.SAMPLED))
    except (TypeError, ValueError):
        return None
    return context if context.is_valid else None


def current_in(trace_id: str | None) -> SpanContext | None:
    """The current span's context when it is part of the trace `trace_id` (hex; `ANY`:
    whatever trace it is in)."""
    context = trace.get_current_span().get_span_context()
    if trace_id is None or not context.is_valid or (
            trace_id != ANY and context.trace_id != int(trace_id, 16)):
        return None
    return context


def task_parent(conn: Connection, task_id: str, trace_id: str | None) -> SpanContext | None:
    """Where a span of the task goes in its trace: under the current span when that is
    in the task's trace `trace_id` (an engine run), else under the task's submit span,
    read from its `task.submitted` event (only while spans are recorded). None for a
    task submitted with tracing off (`trace_id` None). With `trace_id` not known
    (`ANY`), a current span is taken to be the task's."""
    if trace_id is None or not enabled():
        return None
    current = current_in(trace_id)
    if current is not None:
        return current
    row = conn.execute(_SUBMITTED, {"subject": f"task:{task_id}"}).first()
    if row is None or row.payload is None:  # redacted: the span starts a trace of its own
        return None
    kept: dict[str, str] = json.loads(row.payload).get("trace") or {}
    return remote(kept.get("trace_id", ""), kept.get("span_id", ""))


def request_parent(store: Store, task_id: str | None) -> SpanContext | None:
    """For a request bound to task `task_id` made outside any span (not from an engine
    run): the task's submit span, read only while spans are recorded; else None (the
    current span, if any, is the parent)."""
    if task_id is None or not enabled() or current_in(ANY) is not None:
        return None
    with store.reading() as conn:
        return task_parent(conn, task_id, ANY)


def nanoseconds(at: str) -> int:
    """A ledger time (`2026-01-01T00:00:00.000000Z`) as a span time."""
    moment = datetime.strptime(at, TIME_FORMAT).replace(tzinfo=UTC)
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1_000


def _record(name: str, parent: SpanContext | None, start_ns: int, end_ns: int | None,
            named: dict[str, object]) -> SpanContext | None:
    context, _ = _placing(parent, False)
    span = _recorder.tracer.start_span(name, context=context, start_time=start_ns)
    describe(span, **named)
    span.end(end_time=end_ns)
    recorded = span.get_span_context()
    return recorded if recorded.is_valid else None


def _placing(parent: SpanContext | None,
             new_trace: bool) -> tuple[Context | None, Sequence[Link]]:
    if parent is not None:
        return trace.set_span_in_context(NonRecordingSpan(parent)), ()
    if not new_trace:
        return None, ()
    current = trace.get_current_span().get_span_context()
    return Context(), (Link(current),) if current.is_valid else ()
