"""The Node simulator's wb_queue consumer with no broker: each delivery is an in-memory message,
sends go to FakeWasender on loopback, publishes (retry and parking copies) are recorded. One
test per outcome a reply can have: sent, duplicate, invalid, retried, parked, released."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aio_pika
import aiormq
import pytest

from agent_service.contract.codec import to_json_bytes
from agent_service.contract.messages import FALLBACK_TEXT
from agent_service.contract.topology import Topology
from agent_service.pipeline.engine import AgentAnswer
from agent_service.pipeline.failures import Failure, FailureKind
from agent_service.pipeline.replies import error_reply, success_reply
from agent_service.transport.channels import PublishChannel
from fakes import FakeWasender, InvalidNumber, ServerError
from fakes.node_simulator.metrics import AlertSink, NodeMetrics
from fakes.node_simulator.reply_consumer import (
    PARK_KIND_HEADER,
    PARK_REASON_HEADER,
    RETRY_HEADER,
    Courier,
    Publisher,
    ReplyConsumer,
    SeenReply,
    copy_message,
    retry_count,
)
from fakes.node_simulator.store import OutcomeLedger, Store
from fakes.node_simulator.wasender_client import WasenderClient
from fakes.phones import mask
from fakes.webhooks import InboundMessage
from harness.message_factory import agent_request

pytestmark = pytest.mark.unit

PHONE = "+256703722777"


@dataclass
class Message:
    """The parts of an aio-pika incoming message the consumer reads, and how it was settled."""

    body: bytes
    headers: dict[str, Any] = field(default_factory=dict)
    content_type: str | None = "application/json"
    content_encoding: str | None = "utf-8"
    correlation_id: str | None = "corr-1"
    message_id: str | None = "amqp-1"
    timestamp: datetime | None = datetime(2026, 1, 1, tzinfo=UTC)
    type: str | None = "agent.reply"
    app_id: str | None = "agent-service"
    acked: bool = False
    rejected: bool | None = None  # the requeue flag, once rejected

    async def ack(self) -> None:
        self.acked = True

    async def reject(self, requeue: bool = False) -> None:
        self.rejected = requeue


@dataclass
class Node:
    courier: Courier
    consumer: ReplyConsumer
    wasender: FakeWasender
    store: Store
    published: list[tuple[str, aio_pika.Message]]

    def metric(self, name: str, **labels: str) -> float:
        value = self.courier.metrics.registry.get_sample_value(name, labels or None)
        return value or 0.0


@pytest.fixture
async def node(tmp_path: Path, fake_wasender: FakeWasender) -> AsyncIterator[Node]:
    wasender = fake_wasender  # the plugin's fake, API key test-key
    client = WasenderClient(wasender.url, "test-key", timeout=2, rate_limit_max_wait=1)
    store = Store(tmp_path / "node.db")
    metrics = NodeMetrics()
    published: list[tuple[str, aio_pika.Message]] = []

    async def publish(routing_key: str, message: aio_pika.Message) -> None:
        published.append((routing_key, message))

    courier = Courier(
        client=client,
        store=store,
        ledger=OutcomeLedger(store),
        metrics=metrics,
        alerts=AlertSink(metrics, None),
        publish=publish,
        topology=Topology(webhook_retry_delays_ms=(1000, 2000)),
        max_retries=3,
    )
    yield Node(courier, ReplyConsumer(courier), wasender, store, published)
    await client.close()


def reply_body(text: str = "your order ships today") -> tuple[str, bytes]:
    request = agent_request(phone=PHONE)
    reply = success_reply(request, AgentAnswer(text), 0.25)
    return request.messageId, to_json_bytes(reply)


async def test_a_reply_is_sent_recorded_and_acked(node: Node) -> None:
    request_id, body = reply_body()
    message = Message(body)
    await node.consumer.handle(message)  # type: ignore[arg-type]
    assert message.acked and message.rejected is None
    [sent] = node.wasender.sends
    assert (sent.to, sent.text) == (PHONE, "your order ships today")
    assert node.store.outcomes() == {request_id: "reply"}
    [seen] = node.courier.seen
    reply = json.loads(body)
    assert seen == SeenReply(request_id, PHONE, "your order ships today", reply["timestamp"])
    assert node.metric("node_consumed_wb_queue_total", status="success") == 1
    assert node.metric("node_sends_total", kind="reply") == 1
    assert node.metric("node_queue_latency_seconds_count") == 1
    last = node.store.history(PHONE)[-1]
    assert (last.text, last.request_id) == ("your order ships today", request_id)


async def test_a_second_copy_of_a_reply_is_acked_and_dropped(node: Node) -> None:
    _, body = reply_body()
    await node.consumer.handle(Message(body))  # type: ignore[arg-type]
    again = Message(body)
    await node.consumer.handle(again)  # type: ignore[arg-type]
    assert again.acked and len(node.wasender.sends) == 1
    assert node.metric("node_duplicates_total", source="wb_queue") == 1


async def test_an_invalid_reply_is_rejected_to_the_dead_letter_exchange(node: Node) -> None:
    message = Message(b'{"status": "success"}')
    await node.consumer.handle(message)  # type: ignore[arg-type]
    assert message.rejected is False and not message.acked and not node.wasender.sends
    assert node.metric("node_consumed_wb_queue_total", status="invalid") == 1


async def test_a_failed_send_goes_to_the_first_wait_queue(node: Node) -> None:
    node.wasender.inject(ServerError(503), times=1)
    request_id, body = reply_body()
    message = Message(body, headers={"x-death": [{"count": 1}], "x-first-death-queue": "q", "k": 1})
    await node.consumer.handle(message)  # type: ignore[arg-type]
    assert message.acked and not node.wasender.sends
    [(queue, copy)] = node.published
    assert queue == node.courier.topology.webhook_retry_queue(1)
    assert copy.body == body and copy.headers == {"k": 1, RETRY_HEADER: 1}
    assert copy.delivery_mode is aio_pika.DeliveryMode.PERSISTENT
    assert (copy.message_id, copy.correlation_id, copy.type) == ("amqp-1", "corr-1", "agent.reply")
    assert (copy.content_type, copy.content_encoding, copy.app_id) == (
        "application/json",
        "utf-8",
        "agent-service",
    )
    assert copy.timestamp == message.timestamp
    assert node.metric("node_send_failures_total", reason="server_error") == 1
    assert node.store.outcomes() == {}
    # The wait queue's copy comes back and is sent; it is not counted as seen again.
    back = Message(body, headers={RETRY_HEADER: 1})
    await node.consumer.handle(back)  # type: ignore[arg-type]
    assert back.acked and len(node.wasender.sends) == 1
    assert node.store.outcomes() == {request_id: "reply"} and len(node.courier.seen) == 1
    assert node.metric("node_queue_latency_seconds_count") == 1


async def test_later_retries_reuse_the_last_wait_queue(node: Node) -> None:
    node.wasender.inject(ServerError(503), times=1)
    _, body = reply_body()
    await node.consumer.handle(Message(body, headers={RETRY_HEADER: 2}))  # type: ignore[arg-type]
    [(queue, copy)] = node.published
    assert queue == node.courier.topology.webhook_retry_queue(2)
    assert copy.headers[RETRY_HEADER] == 3


async def test_an_undeliverable_reply_is_parked_with_an_alert(node: Node) -> None:
    node.wasender.inject(InvalidNumber(), times=1)
    request_id, body = reply_body()
    row = node.store.insert_inbound(
        InboundMessage("WA-1", PHONE[1:] + "@s.whatsapp.net", PHONE, "Ann", "hi", "text", 1, "x"),
        PHONE,
    )
    assert row is not None
    node.store.set_request_id(row, request_id)
    message = Message(body)
    await node.consumer.handle(message)  # type: ignore[arg-type]
    assert message.acked
    [(queue, parked)] = node.published
    assert queue == node.courier.topology.webhook_parking
    assert parked.headers == {
        PARK_REASON_HEADER: "invalid_number",
        PARK_KIND_HEADER: "reply",
        RETRY_HEADER: 0,  # a permanent refusal uses up no retry
    }
    assert node.store.outcomes() == {request_id: "parked"}
    assert node.metric("node_parked_total", reason="invalid_number") == 1
    [alert] = node.courier.alerts.alerts
    assert (alert.reason, alert.original_message_id) == ("invalid_number", request_id)
    assert alert.whatsapp_message_id == "WA-1" and alert.phone == mask(PHONE)
    assert "not registered" in alert.detail


async def test_retries_used_up_park_the_reply(node: Node) -> None:
    node.wasender.inject(ServerError(503), times=1)
    _, body = reply_body()
    await node.consumer.handle(Message(body, headers={RETRY_HEADER: 3}))  # type: ignore[arg-type]
    [(queue, _)] = node.published
    assert queue == node.courier.topology.webhook_parking


async def test_a_delivery_that_raises_lets_go_of_the_request(node: Node) -> None:
    async def broken(routing_key: str, message: aio_pika.Message) -> None:
        raise ConnectionError("channel closed")

    node.courier.publish = broken
    node.wasender.inject(ServerError(503), times=1)
    _, body = reply_body()
    first = Message(body)
    with pytest.raises(ConnectionError):
        await node.consumer.handle(first)  # type: ignore[arg-type]
    assert not first.acked
    redelivered = Message(body)
    await node.consumer.handle(redelivered)  # type: ignore[arg-type]
    assert redelivered.acked and len(node.wasender.sends) == 1  # not a duplicate


async def test_an_error_reply_sends_its_fallback_text(node: Node) -> None:
    request = agent_request(phone=PHONE)
    failure = Failure(FailureKind.PERMANENT, "AGENT_FAILED", "no")
    await node.consumer.handle(Message(to_json_bytes(error_reply(request, failure, 0.1))))  # type: ignore[arg-type]
    assert node.wasender.sends[0].text == FALLBACK_TEXT
    assert node.metric("node_consumed_wb_queue_total", status="error") == 1


@pytest.mark.parametrize(
    ("headers", "count"),
    [
        ({}, 0),
        ({RETRY_HEADER: 2}, 2),
        ({RETRY_HEADER: b"3"}, 3),
        ({RETRY_HEADER: "x"}, 0),
        ({RETRY_HEADER: -4}, 0),
        ({RETRY_HEADER: None}, 0),
        ({RETRY_HEADER: b"\xff"}, 0),
    ],
)
def test_the_retry_header_is_read_tolerantly(headers: dict[str, Any], count: int) -> None:
    assert retry_count(Message(b"", headers=headers)) == count  # type: ignore[arg-type]


def test_a_message_without_headers_counts_no_retries() -> None:
    message = Message(b"")
    message.headers = None  # type: ignore[assignment]
    assert retry_count(message) == 0  # type: ignore[arg-type]
    assert copy_message(message, {"a": 1}).headers == {"a": 1}  # type: ignore[arg-type]


async def test_a_first_copy_arriving_while_the_request_waits_for_its_retry_is_a_duplicate(
    node: Node,
) -> None:
    node.wasender.inject(ServerError(503), times=1)
    _, body = reply_body()
    await node.consumer.handle(Message(body))  # type: ignore[arg-type]
    twin = Message(body)  # the agent's redelivery, not the wait queue's copy
    await node.consumer.handle(twin)  # type: ignore[arg-type]
    assert twin.acked and not node.wasender.sends
    assert node.metric("node_duplicates_total", source="wb_queue") == 1


async def test_the_queue_latency_is_never_negative(node: Node) -> None:
    request = agent_request(phone=PHONE)
    future = success_reply(request, AgentAnswer("hi"), 0.1).model_copy(
        update={"timestamp": int((time.time() + 3600) * 1000)}
    )
    await node.consumer.handle(Message(to_json_bytes(future)))  # type: ignore[arg-type]
    assert node.metric("node_queue_latency_seconds_sum") == 0.0


async def test_a_fallback_and_a_park_without_detail(node: Node) -> None:
    node.courier.delivered("r-1", PHONE, "sorry", "fallback")
    assert node.store.outcomes() == {"r-1": "fallback"}
    assert node.metric("node_sends_total", kind="fallback") == 1
    await node.courier.park(
        Message(b"{}"),  # type: ignore[arg-type]
        request_id="r-2",
        phone=PHONE,
        reason="retries_exhausted",
        kind="late_reply",
        attempts=3,
    )
    [alert] = node.courier.alerts.alerts
    assert alert.detail == "late_reply"  # the kind stands in for a missing detail
    node.courier.alert("manual", request_id=None, phone=None)
    assert node.courier.alerts.alerts[-1].detail == ""


async def test_the_publisher_publishes_mandatory_with_its_timeout() -> None:
    calls: list[tuple[aio_pika.Message, dict[str, Any]]] = []

    class Exchange:
        async def publish(self, message: aio_pika.Message, **kwargs: Any) -> None:
            calls.append((message, kwargs))

    class Channel:
        default_exchange = Exchange()
        is_closed = False

    async def open_channel() -> Any:
        return Channel()

    message = aio_pika.Message(b"x")
    await Publisher(PublishChannel(open_channel), 2.5).publish("wb_queue.retry.1", message)
    assert calls == [
        (message, {"routing_key": "wb_queue.retry.1", "mandatory": True, "timeout": 2.5})
    ]


async def test_after_a_nack_the_publisher_publishes_on_a_fresh_channel() -> None:
    opened: list[Any] = []

    class Channel:
        def __init__(self, nack: bool) -> None:
            self.nack = nack
            self.is_closed = False
            self.published = 0
            self.default_exchange = self

        async def publish(self, message: aio_pika.Message, **kwargs: Any) -> None:
            if self.nack:
                raise aiormq.exceptions.DeliveryError(None, None)  # type: ignore[arg-type]
            self.published += 1

        async def close(self) -> None:
            self.is_closed = True

    async def open_channel() -> Any:
        opened.append(Channel(nack=not opened))  # the first channel nacks every publish
        return opened[-1]

    publisher = Publisher(PublishChannel(open_channel), 2.5)
    with pytest.raises(aiormq.exceptions.DeliveryError):
        await publisher.publish("ag_queue", aio_pika.Message(b"x"))
    await publisher.publish("ag_queue", aio_pika.Message(b"x"))
    assert [c.published for c in opened] == [0, 1]
    assert opened[0].is_closed
