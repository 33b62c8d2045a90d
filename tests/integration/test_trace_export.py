"""The agent service as its own process exports its spans by OTLP when
OTEL_EXPORTER_OTLP_ENDPOINT is set: the trace a request came with (its traceparent header)
goes on through the agent's run and into the reply's headers; without the variable nothing
is traced and no header is added."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aio_pika.abc import AbstractRobustConnection

from agent_service.contract.amqp import request_message
from agent_service.contract.topology import Topology
from fakes.otlp_collector import FakeCollector
from harness.agent_process import AgentServiceProcess
from harness.broker import Broker
from harness.message_factory import agent_request
from harness.queue_tools import ReplyCollector
from harness.waiting import wait_until

pytestmark = pytest.mark.e2e


async def ask_with_trace(
    connection: AbstractRobustConnection, topology: Topology, traceparent: str
) -> dict[str, Any]:
    """One request carrying ``traceparent``; the headers of its reply."""
    request = agent_request(text="Hello!")
    message = request_message(request)
    message.headers = {"traceparent": traceparent}
    async with ReplyCollector(connection, topology.webhook_queue) as replies:
        channel = await connection.channel(publisher_confirms=True)
        await channel.default_exchange.publish(message, routing_key=topology.agent_queue)
        await replies.wait_for([request.messageId], 30)
        return dict(replies.messages[0].headers or {})


async def test_spans_go_to_the_otlp_endpoint_in_the_trace_the_request_came_with(
    broker: Broker,
    make_topology: Callable[..., Awaitable[Topology]],
    amqp_connection: AbstractRobustConnection,
) -> None:
    topology = await make_topology()
    trace_id, parent = secrets.token_hex(16), secrets.token_hex(8)
    async with FakeCollector() as collector:
        service = AgentServiceProcess(
            broker.url,
            topology,
            OTEL_EXPORTER_OTLP_ENDPOINT=collector.url,
            OTEL_SERVICE_NAME="agent-under-test",
        )
        async with service:
            headers = await ask_with_trace(amqp_connection, topology, f"00-{trace_id}-{parent}-01")
        # Stopped (SIGTERM): what the batch processor held was flushed on the way out.
        await wait_until(lambda: collector.spans, timeout=10, what="exported spans")
    ours = [s for s in collector.spans if s.trace_id == trace_id]
    names = [s.name for s in ours]
    assert {s.service for s in ours} == {"agent-under-test"}
    assert f"{topology.agent_queue} receive" in names
    assert f"{topology.webhook_queue} send" in names
    assert any(name.startswith("invoke_agent") for name in names), names
    # The consume span is the child of the Node side's span named in the header.
    [received] = [s for s in ours if s.name == f"{topology.agent_queue} receive"]
    assert received.parent_span_id == parent
    # And the reply carries the same trace on, for the Node side's send.
    assert str(headers["traceparent"]).split("-")[1] == trace_id


async def test_without_an_endpoint_nothing_is_traced_and_no_header_added(
    broker: Broker,
    make_topology: Callable[..., Awaitable[Topology]],
    amqp_connection: AbstractRobustConnection,
) -> None:
    topology = await make_topology()
    async with AgentServiceProcess(broker.url, topology):
        headers = await ask_with_trace(
            amqp_connection, topology, f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"
        )
    assert "traceparent" not in headers
