"""A fake OpenTelemetry collector: OTLP over HTTP (protobuf) on loopback, spans recorded.

Point a process at it with ``OTEL_EXPORTER_OTLP_ENDPOINT=<collector.url>``; its exporter
POSTs to ``/v1/traces``. Only what the tests read is kept of each span.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from fakes.loopback_server import LoopbackServer

PROTOBUF = "application/x-protobuf"


@dataclass(frozen=True)
class CollectedSpan:
    service: str
    name: str
    trace_id: str  # 32 hex digits, as in a traceparent header
    span_id: str
    parent_span_id: str  # '' for a root


class FakeCollector(LoopbackServer):
    """``async with FakeCollector() as collector:``; spans land in ``collector.spans``."""

    def __init__(self, *, port: int = 0) -> None:
        super().__init__(port=port)
        self.spans: list[CollectedSpan] = []

    def _routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/traces", self._traces)

    async def _traces(self, request: web.Request) -> web.Response:
        if request.content_type != PROTOBUF:
            return web.Response(status=415, text=f"expected {PROTOBUF}")
        export = ExportTraceServiceRequest()
        export.ParseFromString(await request.read())
        for resource_spans in export.resource_spans:
            service = next(
                (
                    a.value.string_value
                    for a in resource_spans.resource.attributes
                    if a.key == "service.name"
                ),
                "",
            )
            for scope in resource_spans.scope_spans:
                for span in scope.spans:
                    self.spans.append(
                        CollectedSpan(
                            service,
                            span.name,
                            span.trace_id.hex(),
                            span.span_id.hex(),
                            span.parent_span_id.hex(),
                        )
                    )
        body = ExportTraceServiceResponse().SerializeToString()
        return web.Response(body=body, content_type=PROTOBUF)
