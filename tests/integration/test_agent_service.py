"""The agent service against a real broker with the scripted model: one reply per request,
and every agent-side row of the failure table."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import aio_pika
import jsonschema
import pytest
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from agent_service.agent import open_demo_database
from agent_service.agent.tools import BusinessTools
from agent_service.contract import (
    AgentReply,
    AgentRequest,
    ReplyStatus,
    TaskType,
    Topology,
    reply_id_for,
    request_message,
)
from agent_service.contract.amqp import DEAD_LETTER_DETAIL_HEADER, DEAD_LETTER_REASON_HEADER
from harness.message_factory import agent_request
from harness.pytest_plugin import ServiceFactory, TopologyFactory
from harness.queue_tools import ReplyCollector, drain, publish_requests
from harness.waiting import wait_until
from tests.conftest import REPO

SCHEMA = json.loads((REPO / "contracts/schemas/wb_queue.reply.schema.json").read_text())

EXPECTED_TOOL = {
    TaskType.ORDER: "get_order_status",
    TaskType.APPOINTMENT: "list_free_slots",
    TaskType.SEARCH: "search_catalogue",
}


async def _confirm_channel(connection: AbstractRobustConnection) -> aio_pika.abc.AbstractChannel:
    return await connection.channel(publisher_confirms=True)


async def _ask(
    connection: AbstractRobustConnection,
    topology: Topology,
    request: AgentRequest,
    timeout: float = 20,
) -> tuple[list[AgentReply], list[AbstractIncomingMessage]]:
    """Publish one request; its replies (as models and as AMQP messages) once one arrived."""
    async with ReplyCollector(connection, topology.webhook_queue) as collector:
        await publish_requests(await _confirm_channel(connection), topology, [request])
        replies = (await collector.wait_for([request.messageId], timeout))[request.messageId]
        return replies, list(collector.messages)


@pytest.mark.parametrize("task_type", list(TaskType))
async def test_each_task_type_gets_exactly_one_valid_reply(
    task_type: TaskType,
    make_topology: TopologyFactory,
    start_agent_service: ServiceFactory,
    amqp_connection: AbstractRobustConnection,
) -> None:
    topology = await make_topology()
    await start_agent_service(topology)
    request = agent_request(task_type)
    replies, messages = await _ask(amqp_connection, topology, request)
    message = messages[0]
    assert len(replies) == 1
    reply = replies[0]
    jsonschema.validate(json.loads(message.body), SCHEMA)
    assert reply.status is ReplyStatus.SUCCESS
    assert reply.originalMessageId == request.messageId
    assert reply.messageId == reply_id_for(request.messageId) == message.message_id
    assert message.correlation_id == request.messageId
    assert message.content_type == "application/json" and message.delivery_mode == 2
    assert reply.contact.phoneNumber == request.contact.phoneNumber
    assert reply.response.text.strip()
    if task_type in EXPECTED_TOOL:
        assert EXPECTED_TOOL[task_type] in reply.agentMetadata.toolsUsed
    assert reply.agentMetadata.reasoningSteps and reply.agentMetadata.tokensUsed > 0


async def test_a_request_delivered_twice_gets_one_reply(
    make_topology: TopologyFactory,
    start_agent_service: ServiceFactory,
    amqp_connection: AbstractRobustConnection,
) -> None:
    topology = await make_topology()
    service = await start_agent_service(topology, concurrent_tasks=5, scripted_latency="0.3")
    registry = service.metrics.registry
    request = agent_request(TaskType.ORDER)
    channel = await _confirm_channel(amqp_connection)
    async with ReplyCollector(amqp_connection, topology.webhook_queue) as collector:
        # Twice at once (both in flight together), then once more after the answer.
        await publish_requests(channel, topology, [request, request])
        await collector.wait_for([request.messageId], timeout=20)
        await publish_requests(channel, topology, [request])
        # Not a fixed pause: until both extra deliveries were decided as duplicates (acked,
        # nothing published). A second reply instead would leave this count at one or zero.
        await wait_until(
            lambda: registry.get_sample_value("agent_duplicates_total") == 2,
            timeout=20,
            what="both extra deliveries decided as duplicates",
        )
        published = registry.get_sample_value(
            "agent_messages_published_total", {"status": "success"}
        )
        await collector.wait_for([request.messageId], timeout=5)
    assert published == 1 and len(collector.replies[request.messageId]) == 1


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"\xff\xfe", json.dumps({"messageId": "x"}).encode(), b"[]"],
    ids=["not-json", "not-utf8", "schema", "array"],
)
async def test_a_malformed_request_is_dead_lettered_and_consuming_goes_on(
    body: bytes,
    make_topology: TopologyFactory,
    start_agent_service: ServiceFactory,
    amqp_connection: AbstractRobustConnection,
) -> None:
    topology = await make_topology()
    service = await start_agent_service(topology)
    channel = await _confirm_channel(amqp_connection)
    valid = agent_request(TaskType.SEARCH)
    async with ReplyCollector(amqp_connection, topology.webhook_queue) as collector:
        await channel.default_exchange.publish(
            aio_pika.Message(body, message_id="bad-1"), routing_key=topology.agent_queue
        )
        await publish_requests(channel, topology, [valid])
        await collector.wait_for([valid.messageId], timeout=20)
    dead = await drain(amqp_connection, topology.dlx_agent)
    assert [m.body for m in dead] == [body]
    headers = dead[0].headers or {}
    assert headers[DEAD_LETTER_REASON_HEADER] == "INVALID_MESSAGE"
    assert str(headers[DEAD_LETTER_DETAIL_HEADER]).startswith("invalid ag_queue request message: ")
    assert dead[0].message_id == "bad-1"
    registry = service.metrics.registry
    assert (
        registry.get_sample_value("agent_dead_lettered_total", {"reason": "INVALID_MESSAGE"}) == 1
    )


async def test_a_transient_model_failure_succeeds_on_retry(
    make_topology: TopologyFactory,
    start_agent_service: ServiceFactory,
    amqp_connection: AbstractRobustConnection,
) -> None:
    topology = await make_topology(agent_retry_delays_ms=(200, 400, 800))
    service = await start_agent_service(topology)
    request = agent_request(TaskType.ORDER, "Where is my order 1042? [[fail:transient:2]]")
    replies, _ = await _ask(amqp_connection, topology, request, timeout=20)
    assert [r.status for r in replies] == [ReplyStatus.SUCCESS]
    assert "get_order_status" in replies[0].agentMetadata.toolsUsed
    retries = {s.labels["level"]: s.value for s in _samples(service, "agent_retries_total")}
    assert retries == {"1": 1.0, "2": 1.0}


def _samples(service: object, name: str) -> list[object]:
    registry = service.metrics.registry  # type: ignore[attr-defined]
    return [s for m in registry.collect() for s in m.samples if s.name == name]


async def test_retries_used_up_give_an_error_reply(
    make_topology: TopologyFactory,
    start_agent_service: ServiceFactory,
    amqp_connection: AbstractRobustConnection,
) -> None:
    topology = await make_topology(agent_retry_delays_ms=(100, 200))
    await start_agent_service(topology)
    request = agent_request(TaskType.CONVERSATION, "Hello [[fail:transient]]")
    replies, messages = await _ask(amqp_connection, topology, request)
    body = json.loads(messages[0].body)
    assert len(replies) == 1
    reply = replies[0]
    assert reply.status is ReplyStatus.ERROR and reply.error is not None
    assert reply.error.code == "MODEL_UNAVAILABLE"
    assert "after 2 retries" in reply.error.message
    assert "stack" not in body["error"]  # no stack leaves the service unless configured
    assert reply.response.text.startswith("I'm having trouble")


async def test_a_permanent_failure_answers_at_once_without_retrying(
    make_topology: TopologyFactory,
    start_agent_service: ServiceFactory,
    amqp_connection: AbstractRobustConnection,
) -> None:
    topology = await make_topology(agent_retry_delays_ms=(5000,))
    service = await start_agent_service(topology, error_include_stack="true")
    request = agent_request(TaskType.SEARCH, "find [[fail:permanent]]")
    replies, _ = await _ask(amqp_connection, topology, request, timeout=10)
    assert replies[0].status is ReplyStatus.ERROR and replies[0].error is not None
    assert replies[0].error.stack and "Traceback" in replies[0].error.stack  # configured on
    assert _samples(service, "agent_retries_total") == []


async def test_a_slow_model_hits_the_time_limit(
    make_topology: TopologyFactory,
    start_agent_service: ServiceFactory,
    amqp_connection: AbstractRobustConnection,
) -> None:
    topology = await make_topology(agent_retry_delays_ms=(100,))
    await start_agent_service(topology, max_processing_time=0.3)
    request = agent_request(TaskType.CONVERSATION, "Hi there [[slow:5]]")
    replies, _ = await _ask(amqp_connection, topology, request, timeout=10)
    assert replies[0].error is not None and replies[0].error.code == "PROCESSING_TIMEOUT"
    assert replies[0].agentMetadata.processingTime < 1.0


async def test_a_failed_tool_with_an_answer_is_partial(
    make_topology: TopologyFactory,
    start_agent_service: ServiceFactory,
    amqp_connection: AbstractRobustConnection,
) -> None:
    topology = await make_topology()
    await start_agent_service(topology)
    request = agent_request(TaskType.ORDER, "Where is my order 1042? [[tool-error]]")
    replies, _ = await _ask(amqp_connection, topology, request, timeout=10)
    assert replies[0].status is ReplyStatus.PARTIAL and replies[0].error is None
    assert replies[0].response.text


async def test_history_reaches_the_agent(
    make_topology: TopologyFactory,
    start_agent_service: ServiceFactory,
    amqp_connection: AbstractRobustConnection,
) -> None:
    topology = await make_topology()
    await start_agent_service(topology)
    request = agent_request(
        TaskType.CONVERSATION,
        "Thanks, that helps!",
        history=[("user", "Do you sell blue umbrellas?"), ("assistant", "Yes, we do.")],
    )
    replies, _ = await _ask(amqp_connection, topology, request, timeout=10)
    assert "blue umbrellas" in replies[0].response.text


async def test_request_message_properties_are_what_the_service_relies_on() -> None:
    message = request_message(agent_request(TaskType.ORDER))
    assert message.type == "order" and message.content_type == "application/json"


async def test_a_retry_after_a_booking_returns_that_booking(
    make_topology: TopologyFactory,
    start_agent_service: ServiceFactory,
    amqp_connection: AbstractRobustConnection,
    tmp_path: Path,
) -> None:
    # The model fails after book_appointment ran: the retry must not try to book again and
    # answer "that slot is not available" for the slot this very request booked.
    path = tmp_path / "shop.db"
    with open_demo_database(path) as db:
        slot = (await BusinessTools(db).list_free_slots(""))["slots"][0]["slot_id"]
    topology = await make_topology(agent_retry_delays_ms=(100, 100, 100))
    service = await start_agent_service(topology, agent_db_path=str(path))
    request = agent_request(TaskType.APPOINTMENT, f"Please book slot {slot} [[fail:after-tool:1]]")
    replies, _ = await _ask(amqp_connection, topology, request, timeout=20)
    assert [r.status for r in replies] == [ReplyStatus.SUCCESS]
    assert "You are booked" in replies[0].response.text, replies[0].response.text
    retries = {s.labels["level"]: s.value for s in _samples(service, "agent_retries_total")}
    assert retries == {"1": 1.0}  # the model did fail once, after the booking
    with sqlite3.connect(path) as db:
        booked = db.execute(
            "SELECT id, request_id FROM appointment_slots WHERE customer_name = ?", ("John Doe",)
        ).fetchall()
    assert booked == [(slot, request.messageId)]
