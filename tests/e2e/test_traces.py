"""Traces from webhook to Wasender: each user message gives one connected trace, from the Node
side's webhook through ag_queue, the agent's run (ADK's own spans) and wb_queue to the send.

Both sides run in this process with one tracer provider and an in-memory exporter, so every
span of a message is seen; the trace context crosses the broker only in the AMQP headers."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agent_service.contract.topology import Topology
from agent_service.observability.tracing import start_tracing, stop_tracing
from fakes.wasender import FakeWasender
from fakes.whatsapp import FakeWhatsApp
from harness.waiting import wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture
async def spans() -> AsyncIterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = start_tracing("e2e", exporter=exporter)
    assert provider is not None
    try:
        yield exporter
    finally:
        stop_tracing(provider)  # the rest of the session runs untraced
        exporter.clear()


def traces(finished: tuple[ReadableSpan, ...]) -> dict[int, list[ReadableSpan]]:
    by_trace: dict[int, list[ReadableSpan]] = defaultdict(list)
    for span in finished:
        assert span.context is not None
        by_trace[span.context.trace_id].append(span)
    return by_trace


def roots_and_orphans(spans: list[ReadableSpan]) -> tuple[list[str], list[str]]:
    ids = {s.context.span_id for s in spans if s.context is not None}
    roots = [s.name for s in spans if s.parent is None]
    orphans = [s.name for s in spans if s.parent is not None and s.parent.span_id not in ids]
    return roots, orphans


async def test_each_message_is_one_connected_trace_from_webhook_to_send(
    spans: InMemorySpanExporter,
    make_topology: Callable[..., Awaitable[Topology]],
    start_agent_service: Callable[..., Awaitable[Any]],
    start_node_simulator: Callable[..., Awaitable[Any]],
    fake_wasender: FakeWasender,
    fake_whatsapp: FakeWhatsApp,
) -> None:
    topology = await make_topology()
    await start_agent_service(topology)
    node = await start_node_simulator(topology)
    texts = ["Where is my order 1042?", "Hello!", "Do you have argan shampoo?"]
    for n, text in enumerate(texts):
        event = fake_whatsapp.text_event(f"+2567000000{n:02d}", text)
        assert (await fake_whatsapp.post(node.webhook_url, event)).status == 200
    await fake_wasender.wait_for_sends(len(texts), timeout=30)

    def ended(name: str) -> int:
        return sum(1 for s in spans.get_finished_spans() if s.name == name)

    # The Node side's receive of each reply ends after its send is recorded at the fake.
    received = f"{topology.webhook_queue} receive"
    await wait_until(lambda: ended(received) == len(texts), timeout=10, what="the reply spans")
    by_trace = traces(spans.get_finished_spans())
    complete = {t: s for t, s in by_trace.items() if any(x.name == "webhook message" for x in s)}
    assert len(complete) == len(texts)
    for trace_spans in complete.values():
        names = [s.name for s in trace_spans]
        roots, orphans = roots_and_orphans(trace_spans)
        assert roots == ["webhook message"], names
        assert orphans == [], names
        assert names.count("wasender send") == 1, names
        # Both queue hops, published and consumed, and the agent's run in between.
        joined = " | ".join(names)
        assert f"{topology.agent_queue} send" in joined and f"{topology.agent_queue} receive" in (
            joined
        ), names
        assert f"{topology.webhook_queue} send" in joined, names
        assert f"{topology.webhook_queue} receive" in joined, names
        assert any(name.startswith("invoke_agent") for name in names), names
        assert any("call_llm" in name or "generate_content" in name for name in names), names
