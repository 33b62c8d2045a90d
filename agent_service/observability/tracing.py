"""Traces from the webhook to Wasender, with OpenTelemetry.

The Node side starts a trace when a webhook arrives and puts its W3C ``traceparent`` (and
``tracestate``) into the AMQP headers of the ag_queue request. Here ``consuming`` continues it
for the processing of that request; the agent run adds ADK's own spans (agent, model call,
tool call) under it; ``inject`` writes the context into the headers of the wb_queue reply,
where the Node side's send continues it.

Nothing is traced unless asked: with ``OTEL_EXPORTER_OTLP_ENDPOINT`` set (the standard
OpenTelemetry variable; ``OTEL_SERVICE_NAME`` and the other ``OTEL_*`` variables work as
documented there) spans are exported by OTLP over HTTP; tests pass an exporter of their own.
Unset, no provider is installed and both helpers return at once: no cost per message.

Why not opentelemetry-instrumentation-aio-pika: google-adk 2.13 holds OpenTelemetry at 1.44,
whose aio-pika instrumentation (0.65b0) refuses aio-pika 10. The propagation it would do is
the two calls below, on the two messages this service handles.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
_tracer = trace.get_tracer("agent_service")
_enabled = False


def tracing_requested() -> bool:
    return any(os.environ.get(name, "").strip() for name in ENDPOINT_VARIABLES)


def start_tracing(service_name: str, exporter: SpanExporter | None = None) -> TracerProvider | None:
    """Install a tracer provider (OTLP, or ``exporter``); None when tracing is not requested.
    Once per process (OpenTelemetry keeps the first provider it is given)."""
    global _enabled
    if exporter is None and not tracing_requested():
        return None
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", service_name)})
    provider = TracerProvider(resource=resource)
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    else:
        # A test's exporter sees each span as it ends.
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _enabled = True
    return provider


def stop_tracing(provider: TracerProvider | None) -> None:
    """Flush what is buffered and end the export (at shutdown)."""
    global _enabled
    if provider is not None:
        provider.shutdown()
        _enabled = False


@contextlib.contextmanager
def consuming(name: str, headers: Mapping[str, Any] | None, **attributes: str) -> Iterator[None]:
    """The processing of a consumed message, as a span continuing the trace in its headers."""
    if not _enabled:
        yield
        return
    carrier = {k: v for k, v in (headers or {}).items() if isinstance(v, str)}
    parent = propagate.extract(carrier)
    with _tracer.start_as_current_span(
        name, context=parent, kind=SpanKind.CONSUMER, attributes=attributes
    ):
        yield


@contextlib.contextmanager
def publishing(name: str, **attributes: str) -> Iterator[None]:
    """A span for a publish, current while the message's headers are written."""
    if not _enabled:
        yield
        return
    with _tracer.start_as_current_span(name, kind=SpanKind.PRODUCER, attributes=attributes):
        yield


def inject(headers: MutableMapping[str, Any]) -> None:
    """Write the current trace context (``traceparent``, ``tracestate``) into ``headers``."""
    if _enabled:
        propagate.inject(headers)
