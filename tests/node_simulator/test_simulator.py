"""NodeSimulator on a real RabbitMQ, with the real FakeWasender and FakeWhatsApp.

Each test gets its own topology (short retry delays) and plays the agent by hand: it reads
requests from ag_queue and puts replies on wb_queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aio_pika
import aiohttp
import pytest
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection
from aiohttp import web

from agent_service.contract.codec import now_ms, to_json_bytes
from agent_service.contract.messages import (
    FALLBACK_TEXT,
    AgentReply,
    AgentRequest,
    Contact,
    ErrorInfo,
    ReplyContact,
    ReplyStatus,
    Response,
    UserMessage,
    reply_id_for,
)
from agent_service.contract.topology import Topology
from fakes import FakeWasender, FakeWhatsApp, InvalidNumber, ServerError
from fakes.node_simulator import NodeSimulator, NodeSimulatorConfig
from harness.broker import Broker, PrivateNode
from harness.pytest_plugin import TopologyFactory
from harness.waiting import wait_until

pytestmark = pytest.mark.e2e

SECRET = "s3cret"
KEY = "test-key"
PHONE = "+256703722777"
OTHER = "+254712345678"


@dataclass
class Rig:
    """A running simulator and the test's hands on the broker."""

    node: NodeSimulator
    topology: Topology
    wasender: FakeWasender
    whatsapp: FakeWhatsApp
    channel: AbstractChannel

    async def post(self, event: dict[str, Any], **kwargs: Any) -> tuple[int, Any]:
        result = await self.whatsapp.post(self.node.webhook_url, event, **kwargs)
        return result.status, (json.loads(result.body) if result.body else None)

    async def say(self, text: str, phone: str = PHONE, **kwargs: Any) -> dict[str, Any]:
        event = self.whatsapp.text_event(phone, text, name="John Doe", **kwargs)
        status, body = await self.post(event)
        assert (status, body) == (200, {"status": "received", "processed": True})
        return event

    async def get(
        self, queue: str, timeout: float = 5.0, *, ack: bool = True
    ) -> AbstractIncomingMessage:
        """The next message on `queue`, waiting up to `timeout` seconds; acked, unless `ack` is
        False and the test settles it."""
        q = await self.channel.get_queue(queue, ensure=False)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = await q.get(no_ack=ack, fail=False)
            if message is not None:
                return message
            await asyncio.sleep(0.02)
        raise TimeoutError(f"nothing on {queue} within {timeout} s")

    async def depth(self, queue: str) -> int:
        declared = await self.channel.declare_queue(queue, passive=True)
        count = declared.declaration_result.message_count
        assert count is not None
        return count

    async def next_request(self) -> AgentRequest:
        message = await self.get(self.topology.agent_queue)
        return AgentRequest.model_validate_json(message.body)

    async def put(self, queue: str, body: bytes, **props: Any) -> None:
        persistent = aio_pika.DeliveryMode.PERSISTENT
        message = aio_pika.Message(
            body, delivery_mode=persistent, content_type="application/json", **props
        )
        await self.channel.default_exchange.publish(message, routing_key=queue)

    async def reply(self, reply: AgentReply) -> None:
        """Put a reply on wb_queue as the agent would: persistent, correlation_id set."""
        await self.put(
            self.topology.webhook_queue,
            to_json_bytes(reply),
            message_id=reply.messageId,
            correlation_id=reply.originalMessageId,
        )


def make_reply(
    request_id: str | None = None,
    text: str = "Hello from the agent",
    phone: str = PHONE,
    status: ReplyStatus = ReplyStatus.SUCCESS,
) -> AgentReply:
    request_id = request_id or str(uuid.uuid4())
    failed = status is ReplyStatus.ERROR
    error = ErrorInfo(code="AGENT_FAILED", message="model down") if failed else None
    return AgentReply(
        messageId=reply_id_for(request_id),
        originalMessageId=request_id,
        timestamp=now_ms(),
        status=status,
        contact=ReplyContact(remoteJid=phone[1:] + "@s.whatsapp.net", phoneNumber=phone),
        response=Response(text=text),
        error=error,
    )


def make_request(phone: str = PHONE) -> AgentRequest:
    return AgentRequest(
        messageId=str(uuid.uuid4()),
        timestamp=now_ms(),
        taskType="conversation",
        contact=Contact(remoteJid=phone[1:] + "@s.whatsapp.net", phoneNumber=phone),
        message=UserMessage(text="hi", messageId="3EB0AAAA", timestamp=1_764_000_000),
    )


async def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def sent_or_dropped(node: NodeSimulator) -> float:
    """wb_queue deliveries the simulator has finished with: sent, or dropped as duplicates."""
    sent = node.metrics.value("node_sends_total", kind="reply")
    return sent + node.metrics.value("node_duplicates_total", source="wb_queue")


RigFactory = Callable[..., Awaitable[Rig]]


@pytest.fixture
async def rig(
    broker: Broker,
    make_topology: TopologyFactory,
    amqp_connection: AbstractRobustConnection,
) -> AsyncIterator[RigFactory]:
    """`await rig(**config_overrides)`: a started simulator on a fresh topology.

    `retry_delays_ms` sets the wait queues; `sends_per_second` gives the fake Wasender a rate
    limit that refuses (429) any send beyond it."""
    async with contextlib.AsyncExitStack() as stack:

        async def factory(
            *,
            retry_delays_ms: tuple[int, ...] = (100, 200, 300),
            sends_per_second: int | None = None,
            **overrides: Any,
        ) -> Rig:
            limit: dict[str, Any] = {}
            if sends_per_second is not None:
                limit = {"rate_limit_per_minute": sends_per_second, "rate_limit_window_seconds": 1}
            wasender = await stack.enter_async_context(FakeWasender(api_key=KEY, **limit))
            topology = await make_topology(webhook_retry_delays_ms=retry_delays_ms)
            config = NodeSimulatorConfig(
                broker.url, topology, wasender.url, KEY, SECRET, **overrides
            )
            node = await stack.enter_async_context(NodeSimulator(config))
            channel = await amqp_connection.channel()
            return Rig(node, topology, wasender, FakeWhatsApp(SECRET, seed=7), channel)

        yield factory


# -- webhook -> ag_queue ---------------------------------------------------------------------


async def test_a_wrong_or_missing_signature_is_refused_and_nothing_published(
    rig: RigFactory,
) -> None:
    r = await rig()
    event = r.whatsapp.text_event(PHONE, "hello")
    assert (await r.post(event, signature="wrong"))[0] == 401
    assert (await r.post(event, signature=None))[0] == 401
    assert await r.depth(r.topology.agent_queue) == 0
    assert r.node.history(PHONE) == []


async def test_malformed_payloads_get_a_400_that_says_why(rig: RigFactory) -> None:
    r = await rig()
    status, body = await r.post({"event": "messages.upsert", "data": {}})
    assert status == 400
    assert "data.messages is missing" in body["error"]
    async with aiohttp.ClientSession() as http:
        headers = {"X-Webhook-Signature": SECRET}
        async with http.post(r.node.webhook_url, data=b"{nope", headers=headers) as response:
            assert response.status == 400
            assert (await response.json())["error"] == "body is not JSON"


async def test_a_text_webhook_publishes_a_valid_request(rig: RigFactory) -> None:
    r = await rig()
    event = await r.say("Can I book a slot on Friday?", shape="current")
    message = await r.get(r.topology.agent_queue)
    request = AgentRequest.model_validate_json(message.body)
    assert request.contact.model_dump() == {
        "remoteJid": "256703722777@s.whatsapp.net",
        "phoneNumber": PHONE,
        "name": "John Doe",
        "countryCode": "256",
    }
    assert request.message.text == "Can I book a slot on Friday?"
    assert request.message.messageId == event["data"]["messages"]["key"]["id"]
    assert request.taskType.value == "appointment"
    assert request.context.conversationHistory == []
    assert request.context.userNotes is None
    assert (request.metadata.priority.value, request.metadata.retryCount) == ("normal", 0)
    assert message.message_id == request.messageId
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert (message.content_type, message.type) == ("application/json", "appointment")
    assert r.node.metrics.value("node_published_ag_queue_total") == 1


async def test_context_carries_the_stored_history_and_user_notes(rig: RigFactory) -> None:
    r = await rig(history_turns=3)
    r.node.set_user_notes(PHONE, "VIP customer")
    for n in (1, 2):
        await r.say(f"question {n}")
        request = await r.next_request()
        await r.reply(make_reply(request.messageId, f"answer {n}"))
        await r.wasender.wait_for_sends(n)
    await eventually(lambda: len(r.node.history(PHONE)) == 4)
    await r.say("question 3")
    request = await r.next_request()
    turns = [(t.role.value, t.content) for t in request.context.conversationHistory]
    # The last three turns before the current message, oldest first.
    assert turns == [("assistant", "answer 1"), ("user", "question 2"), ("assistant", "answer 2")]
    assert request.context.userNotes == "VIP customer"


async def test_the_same_message_as_upsert_and_received_is_published_once(rig: RigFactory) -> None:
    r = await rig()
    first, second = r.whatsapp.duplicate_pair(PHONE, "hello twice")
    results = await asyncio.gather(r.post(first), r.post(second))
    assert sorted(body["processed"] for _, body in results) == [False, True]
    # A webhook is answered only once the broker confirmed what it published: all of it is
    # on ag_queue now.
    assert await r.depth(r.topology.agent_queue) == 1
    assert (await r.next_request()).message.text == "hello twice"
    assert r.node.metrics.value("node_published_ag_queue_total") == 1
    assert r.node.metrics.value("node_duplicates_total", source="webhook") == 1


async def test_own_messages_and_media_without_caption_are_not_processed(rig: RigFactory) -> None:
    r = await rig()
    ignored = [r.whatsapp.from_me_event(PHONE, "sent by us"), r.whatsapp.image_event(PHONE, None)]
    for event in ignored:
        assert await r.post(event) == (200, {"status": "received", "processed": False})
    assert await r.depth(r.topology.agent_queue) == 0
    assert r.node.history(PHONE) == []


async def test_ai_disabled_contact_is_stored_not_published(rig: RigFactory) -> None:
    r = await rig()
    r.node.disable_ai(PHONE)
    await r.say("a human, please")
    assert [t.text for t in r.node.history(PHONE)] == ["a human, please"]
    assert await r.depth(r.topology.agent_queue) == 0


async def test_a_failed_publish_answers_503_and_the_retried_webhook_goes_through(
    rig: RigFactory,
) -> None:
    r = await rig()
    await r.channel.queue_delete(r.topology.agent_queue)  # the broker can no longer route it
    event = r.whatsapp.text_event(PHONE, "are you there?")
    assert (await r.post(event))[0] == 503
    assert r.node.metrics.value("node_publish_failures_total") == 1
    assert r.node.history(PHONE) == [], "undone, so Wasender's retry is not a duplicate"
    spec = r.topology.queue(r.topology.agent_queue)
    await r.channel.declare_queue(spec.name, durable=True, arguments=spec.arguments)
    assert await r.post(event) == (200, {"status": "received", "processed": True})
    assert (await r.next_request()).message.text == "are you there?"


# -- wb_queue -> Wasender --------------------------------------------------------------------


@pytest.mark.parametrize("status", list(ReplyStatus))
async def test_a_reply_is_sent_once_whatever_its_status(
    rig: RigFactory, status: ReplyStatus
) -> None:
    r = await rig()
    reply = make_reply(text="Your table is booked", status=status)
    await r.reply(reply)
    sends = await r.wasender.wait_for_sends(1)
    assert (sends[0].to, sends[0].text) == (PHONE, "Your table is booked")
    await eventually(lambda: r.node.outcomes() == {reply.originalMessageId: "reply"})
    assert r.node.history(PHONE)[-1].role == "assistant"
    assert r.node.metrics.value("node_consumed_wb_queue_total", status=status.value) == 1
    assert r.node.metrics.value("node_queue_latency_seconds_count") == 1


async def test_the_same_reply_twice_is_sent_once(rig: RigFactory) -> None:
    r = await rig()
    reply = make_reply()
    await r.reply(reply)
    await r.reply(reply)
    # Both copies handled: each one either sent (its send is recorded at the fake by then)
    # or dropped as a duplicate.
    await eventually(lambda: sent_or_dropped(r.node) == 2)
    assert len(r.wasender.sends) == 1
    assert r.node.metrics.value("node_duplicates_total", source="wb_queue") == 1


async def test_wasender_errors_are_retried_through_the_wait_queues(rig: RigFactory) -> None:
    # Waits far longer than the test: the reply leaves a wait queue only when the test lets it
    # out, as its TTL would, so any attempt made before that did not wait there. (The TTLs
    # themselves return replies in test_retries_used_up_park_the_reply_with_one_alert.)
    r = await rig(retry_delays_ms=(60_000, 60_000, 60_000))
    r.wasender.inject(ServerError(503), times=2)
    await r.reply(make_reply(text="eventually"))
    for level in (1, 2):
        waiting = await r.get(r.topology.webhook_retry_queue(level), ack=False)
        assert waiting.headers["x-retry-count"] == level
        assert [a.status for a in r.wasender.attempts] == [503] * level
        await waiting.reject(requeue=False)  # dead-lettered back to wb_queue, as on expiry
    sends = await r.wasender.wait_for_sends(1)
    assert sends[0].text == "eventually"
    assert [a.status for a in r.wasender.attempts] == [503, 503, 200]
    metrics = r.node.metrics
    assert metrics.value("node_send_failures_total", reason="server_error") == 2
    assert metrics.value("node_sends_total", kind="reply") == 1
    assert len(r.node.alerts) == 0


async def test_retries_used_up_park_the_reply_with_one_alert(rig: RigFactory) -> None:
    r = await rig()
    event = await r.say("hello?")
    request = await r.next_request()
    r.wasender.inject(ServerError(503))
    await r.reply(make_reply(request.messageId))
    parked = await r.get(r.topology.webhook_parking)
    assert parked.headers["x-park-reason"] == "retries_exhausted"
    assert parked.correlation_id == request.messageId
    assert len(r.wasender.attempts) == 4, "the first try and three retries"
    await eventually(lambda: len(r.node.alerts) == 1)
    alert = r.node.alerts[0]
    assert (alert.reason, alert.original_message_id) == ("retries_exhausted", request.messageId)
    assert alert.whatsapp_message_id == event["data"]["messages"][0]["key"]["id"]
    assert alert.phone == "+2567******77"
    assert r.node.outcomes() == {request.messageId: "parked"}
    assert r.node.metrics.value("node_parked_total", reason="retries_exhausted") == 1


async def test_a_429_holds_the_reply_for_retry_after(rig: RigFactory) -> None:
    # One send per second, as on a trial plan: of two replies at once the second is refused
    # (429, retry_after 1 s), and refused again if it is tried before that second is over.
    r = await rig(sends_per_second=1)
    await r.reply(make_reply(text="to John"))
    await r.reply(make_reply(text="to Jane", phone=OTHER))
    sends = await r.wasender.wait_for_sends(2, timeout=10)
    assert [a.status for a in r.wasender.attempts] == [200, 429, 200]
    assert sorted(s.text or "" for s in sends) == ["to Jane", "to John"]
    assert r.node.metrics.value("node_send_failures_total", reason="rate_limited") == 1
    assert len(r.node.alerts) == 0


@pytest.fixture
async def alert_receiver() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    async def collect(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/alerts", collect)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}/alerts", received
    await runner.cleanup()


async def test_an_invalid_number_is_parked_at_once_and_alerted(
    rig: RigFactory, alert_receiver: tuple[str, list[dict[str, Any]]]
) -> None:
    url, posted = alert_receiver
    r = await rig(alert_url=url)
    r.wasender.inject(InvalidNumber())
    reply = make_reply()
    await r.reply(reply)
    parked = await r.get(r.topology.webhook_parking)
    assert parked.headers["x-park-reason"] == "invalid_number"
    assert len(r.wasender.attempts) == 1, "no retries for a permanent error"
    await eventually(lambda: len(posted) == 1)
    assert posted[0]["reason"] == "invalid_number"
    assert posted[0]["original_message_id"] == reply.originalMessageId
    assert [a.reason for a in r.node.alerts] == ["invalid_number"]


# -- dead letters ----------------------------------------------------------------------------


async def test_a_dead_agent_request_gets_the_fallback_text(rig: RigFactory) -> None:
    r = await rig()
    request = make_request(OTHER)
    await r.put(r.topology.dlx_agent, to_json_bytes(request), message_id=request.messageId)
    sends = await r.wasender.wait_for_sends(1)
    assert (sends[0].to, sends[0].text) == (OTHER, FALLBACK_TEXT)
    await eventually(lambda: r.node.outcomes() == {request.messageId: "fallback"})
    # The same request dead again (or its late reply) gets nothing more: one outcome.
    await r.put(r.topology.dlx_agent, to_json_bytes(request))
    await r.reply(make_reply(request.messageId, phone=OTHER))
    await eventually(lambda: r.node.metrics.value("node_duplicates_total", source="wb_queue") == 1)
    assert r.node.metrics.value("node_duplicates_total", source="dlx_agent") == 1
    assert len(r.wasender.sends) == 1


async def test_no_fallback_after_the_real_reply(rig: RigFactory) -> None:
    r = await rig()
    request = make_request()
    await r.reply(make_reply(request.messageId, "the real answer"))
    await r.wasender.wait_for_sends(1)
    await r.put(r.topology.dlx_agent, to_json_bytes(request))
    await eventually(lambda: r.node.metrics.value("node_duplicates_total", source="dlx_agent") == 1)
    assert [s.text for s in r.wasender.sends] == ["the real answer"]


async def test_an_unreadable_dead_letter_is_alerted_not_sent(rig: RigFactory) -> None:
    r = await rig()
    await r.put(r.topology.dlx_agent, b"\xff not json at all")
    await eventually(lambda: len(r.node.alerts) == 1)
    assert r.node.alerts[0].reason == "unreadable_dead_letter"
    assert await r.depth(r.topology.dlx_agent) == 0, "acked, so it cannot loop"
    assert r.wasender.attempts == []


async def test_an_invalid_reply_is_dead_lettered_and_alerted(rig: RigFactory) -> None:
    r = await rig()
    await r.put(r.topology.webhook_queue, b'{"status": "success"}', correlation_id="x")
    await eventually(lambda: [a.reason for a in r.node.alerts] == ["invalid_reply"])
    assert r.node.metrics.value("node_consumed_wb_queue_total", status="invalid") == 1
    assert r.wasender.attempts == []


async def test_a_dead_reply_not_yet_sent_is_sent_late(rig: RigFactory) -> None:
    r = await rig()
    reply = make_reply(text="better late")
    await r.put(r.topology.dlx_webhook, to_json_bytes(reply), correlation_id=reply.messageId)
    sends = await r.wasender.wait_for_sends(1)
    assert sends[0].text == "better late"
    await eventually(lambda: r.node.metrics.value("node_sends_total", kind="late_reply") == 1)
    await eventually(lambda: r.node.outcomes() == {reply.originalMessageId: "reply"})


async def test_a_fallback_that_cannot_be_sent_is_parked_with_an_alert(rig: RigFactory) -> None:
    r = await rig()
    r.wasender.inject(ServerError(502))
    request = make_request()
    await r.put(r.topology.dlx_agent, to_json_bytes(request))
    parked = await r.get(r.topology.webhook_parking)
    assert (parked.headers["x-park-reason"], parked.headers["x-park-kind"]) == (
        "retries_exhausted",
        "fallback",
    )
    assert len(r.wasender.attempts) == 4
    # The parked copy can be seen on the queue a moment before the outcome is recorded.
    await eventually(lambda: r.node.outcomes() == {request.messageId: "parked"})
    await eventually(lambda: [a.reason for a in r.node.alerts] == ["retries_exhausted"])


# -- observability ---------------------------------------------------------------------------


async def test_metrics_and_health_endpoints(rig: RigFactory) -> None:
    r = await rig()
    await r.say("hello")
    request = await r.next_request()
    await r.reply(make_reply(request.messageId))
    await r.wasender.wait_for_sends(1)
    await eventually(lambda: r.node.metrics.value("node_sends_total", kind="reply") == 1)
    base = r.node.webhook_url.removesuffix("/webhook")
    async with aiohttp.ClientSession() as http:
        async with http.get(base + "/metrics") as response:
            text = await response.text()
        async with http.get(base + "/health") as response:
            assert (response.status, await response.json()) == (
                200,
                {"status": "ok", "broker": "up"},
            )
    assert "node_published_ag_queue_total 1.0" in text
    assert 'node_consumed_wb_queue_total{status="success"} 1.0' in text
    assert 'node_sends_total{kind="reply"} 1.0' in text
    assert "node_queue_latency_seconds_count 1.0" in text


async def test_a_start_that_fails_half_way_undoes_itself(
    broker: Broker, make_topology: TopologyFactory, amqp_connection: AbstractRobustConnection
) -> None:
    topology = await make_topology()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = NodeSimulatorConfig(broker.url, topology, "http://127.0.0.1:9", KEY, SECRET)
        node = NodeSimulator(replace(config, port=port))
        with pytest.raises(OSError):
            await node.start()  # the consumers are up by the time the webhook port is refused
    channel = await amqp_connection.channel()
    queue = await channel.declare_queue(topology.webhook_queue, passive=True)
    assert queue.declaration_result.consumer_count == 0
    with pytest.raises(RuntimeError, match="not running"):
        _ = node.webhook_url
    await node.stop()  # harmless


# -- chaos -----------------------------------------------------------------------------------


async def _health(node: NodeSimulator) -> int:
    url = node.webhook_url.removesuffix("/webhook") + "/health"
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return response.status


async def _healthy(node: NodeSimulator) -> bool:
    return await _health(node) == 200


@pytest.mark.chaos
@pytest.mark.slow
async def test_a_broker_crash_and_restart_is_survived(
    rig: RigFactory, broker: Broker, controlled_node: PrivateNode
) -> None:
    if controlled_node is not broker:
        pytest.skip("needs the session broker to be a node the harness may restart")
    r = await rig(publish_timeout=1.0)
    await controlled_node.kill()  # a crash: no goodbye to the clients
    event = r.whatsapp.text_event(PHONE, "anyone there?")
    assert (await r.post(event))[0] == 503, "Wasender must retry: the broker is down"
    assert await _health(r.node) == 503
    await controlled_node.start()
    await wait_until(
        lambda: _healthy(r.node), timeout=10, what="the simulator reconnected (/health 200)"
    )
    async with await aio_pika.connect(broker.url) as connection:
        r = replace(r, channel=await connection.channel())
        assert (await r.post(event))[0] == 200
        request = await r.next_request()
        await r.reply(make_reply(request.messageId, "back again"))
        sends = await r.wasender.wait_for_sends(1, timeout=10)
    assert sends[0].text == "back again"


async def test_a_restart_on_its_record_file_answers_nothing_twice(
    rig: RigFactory, tmp_path: Path
) -> None:
    r = await rig(db_path=tmp_path / "node-simulator.db")
    event = await r.say("Where is my order?")
    request = await r.next_request()
    await r.reply(make_reply(request.messageId, "It is on its way."))
    await eventually(lambda: len(r.wasender.sends) == 1)
    await r.node.stop()
    await r.node.start()
    # After the restart: a redelivered copy of the reply, and Wasender's retry of the webhook.
    await r.reply(make_reply(request.messageId, "It is on its way."))
    await eventually(lambda: r.node.metrics.value("node_duplicates_total", source="wb_queue") == 1)
    assert len(r.wasender.sends) == 1
    assert (await r.post(event))[0] == 200
    await r.say("And when does it arrive?")
    following = await r.next_request()  # the retried webhook made no request of its own
    assert following.message.text == "And when does it arrive?"
    history = [(turn.role, turn.content) for turn in following.context.conversationHistory]
    assert history[-2:] == [("user", "Where is my order?"), ("assistant", "It is on its way.")]
