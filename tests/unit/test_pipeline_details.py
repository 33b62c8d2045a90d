"""The pipeline's details that decide what happens next: what the handler tells the request
states and the delivery log after each end, the metrics each end counts, the times it
measures, the log records operators read, and the settler's own answers. No broker, no model."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from typing import Any

import pytest

from agent_service.contract.amqp import DEAD_LETTER_REASON_HEADER
from agent_service.contract.codec import to_json_bytes
from agent_service.contract.messages import AgentReply, AgentRequest, TaskType
from agent_service.errors import TransientAgentError
from agent_service.observability.metrics import ServiceMetrics
from agent_service.pipeline.decisions import DeadLetter, Duplicate, HandBack, Settlement
from agent_service.pipeline.dedup import Deduplicator
from agent_service.pipeline.deliveries import MemoryDeliveryLog
from agent_service.pipeline.engine import AgentAnswer
from agent_service.pipeline.handler import Limits, RequestHandler, retry_body
from agent_service.pipeline.request_state import (
    Claim,
    MemoryRequestStates,
    StateUnavailable,
)
from agent_service.testing import (
    FakeEngine,
    FakeSleep,
    MemoryDelivery,
    MemoryOutlet,
    MemoryPipeline,
)
from agent_service.transport.settle import Properties, Settler, Unroutable
from harness.message_factory import agent_request
from harness.waiting import wait_until

pytestmark = pytest.mark.unit

HANDLER_LOG = "agent_service.pipeline.handler"
SETTLE_LOG = "agent_service.transport.settle"


def body_of(request: AgentRequest) -> bytes:
    return to_json_bytes(request)


def records(caplog: pytest.LogCaptureFixture, message: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == message]


class RecordingStates(MemoryRequestStates):
    """The embedded states, recording how each delivery let go of its request."""

    def __init__(self) -> None:
        super().__init__(Deduplicator())
        self.releases: list[tuple[str, bool]] = []

    async def release(self, message_id: str, *, retrying: bool = False) -> None:
        self.releases.append((message_id, retrying))
        await super().release(message_id, retrying=retrying)


class UnreachableStates(MemoryRequestStates):
    def __init__(self) -> None:
        super().__init__(Deduplicator())

    async def claim(self, request: AgentRequest) -> Claim:
        raise StateUnavailable("connection refused")


def stepping_clock(start: float = 100.0, step: float = 1.0) -> Any:
    counter = itertools.count()
    return lambda: start + step * next(counter)


def with_clock(pipeline: MemoryPipeline, clock: Any, limits: Limits | None = None) -> None:
    pipeline.handler = RequestHandler(
        pipeline.engine,
        pipeline.states,
        pipeline.deliveries,
        pipeline.metrics,
        limits or Limits(),
        clock=clock,
    )


# --- what the request states and the delivery log are told -----------------------------------


async def test_a_retry_releases_the_request_as_retrying_and_a_lost_reply_not() -> None:
    states = RecordingStates()
    pipeline = MemoryPipeline(
        FakeEngine(lambda _: _raise(TransientAgentError("busy"))), states=states
    )
    retried = agent_request()
    await pipeline.deliver(body_of(retried))
    pipeline.engine.behaviour = None
    pipeline.outlet.fail_next.append(ConnectionError("gone"))
    lost = agent_request()
    await pipeline.deliver(body_of(lost))
    assert states.releases == [(retried.messageId, True), (lost.messageId, False)]


def _raise(exc: BaseException) -> AgentAnswer:
    raise exc


async def test_an_answered_redelivery_leaves_no_row_in_the_delivery_log() -> None:
    pipeline = MemoryPipeline(FakeEngine())
    request = agent_request()
    await pipeline.deliver(body_of(request), redelivered=True)
    await pipeline.deliver(body_of(request), redelivered=True)  # a duplicate, acked
    assert pipeline.deliveries.rows == {}  # type: ignore[attr-defined]


async def test_a_request_dead_lettered_for_max_deliveries_leaves_no_row() -> None:
    log = MemoryDeliveryLog()
    log.rows["x"] = (0, 0)
    request = agent_request()
    log.rows[request.messageId] = (5, 0)
    pipeline = MemoryPipeline(FakeEngine(), deliveries=log, limits=Limits(max_deliveries=3))
    await pipeline.deliver(body_of(request), redelivered=True)
    [dead] = pipeline.outlet.dead_letters
    assert dead.headers[DEAD_LETTER_REASON_HEADER] == "MAX_DELIVERIES"
    assert request.messageId not in log.rows


async def test_unreachable_states_hand_the_delivery_back_counted_as_settled(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    pipeline = MemoryPipeline(FakeEngine(), states=UnreachableStates())
    request = agent_request()
    delivery = await pipeline.deliver(body_of(request), redelivered=True)
    assert delivery.handed_back and not pipeline.engine.calls
    assert pipeline.deliveries.rows[request.messageId] == (2, 1)  # type: ignore[attr-defined]
    [record] = records(caplog, "handing the delivery back")
    assert record.reason == "the shared request states cannot be reached"  # type: ignore[attr-defined]
    [record] = records(caplog, "cannot reach the shared request states: handing the delivery back")
    assert record.error == "connection refused"  # type: ignore[attr-defined]


async def test_a_delivery_cancelled_while_stopping_counts_as_settled_not_final() -> None:
    started = asyncio.Event()

    async def wait(_: AgentRequest) -> AgentAnswer:
        started.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    pipeline = MemoryPipeline(FakeEngine(wait))
    pipeline.stopping = True
    request = agent_request()
    task = asyncio.create_task(pipeline.deliver(body_of(request), redelivered=True))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert pipeline.deliveries.rows == {request.messageId: (2, 1)}  # type: ignore[attr-defined]


async def test_a_cancel_while_publishing_keeps_the_built_reply_for_the_redelivery() -> None:
    class StuckOutlet(MemoryOutlet):
        stuck = True

        async def publish_reply(self, reply: AgentReply) -> None:
            if self.stuck:
                self.entered.set()
                await asyncio.Event().wait()
            await super().publish_reply(reply)

    outlet = StuckOutlet()
    outlet.entered = asyncio.Event()  # type: ignore[attr-defined]
    pipeline = MemoryPipeline(FakeEngine(), outlet=outlet)
    body = body_of(agent_request())

    async def deliver() -> tuple[MemoryDelivery, int]:
        delivery = await pipeline.deliver(body)
        task = asyncio.current_task()
        assert task is not None
        return delivery, task.cancelling()

    task = asyncio.create_task(deliver())
    await outlet.entered.wait()  # type: ignore[attr-defined]
    task.cancel()
    delivery, cancelling = await task
    assert delivery.handed_back and cancelling == 0  # the stray cancel was taken back
    outlet.stuck = False
    again = await pipeline.deliver(body, redelivered=True)
    assert again.acked and len(outlet.replies) == 1 and len(pipeline.engine.calls) == 1


# --- limits, metrics and measured times -------------------------------------------------------


async def test_the_body_limit_is_the_configured_one() -> None:
    request = agent_request(text="x" * 3000)
    pipeline = MemoryPipeline(FakeEngine(), limits=Limits(max_message_bytes=2000))
    await pipeline.deliver(body_of(request))
    assert pipeline.outlet.dead_letters and not pipeline.outlet.replies


async def test_each_failure_is_counted_by_kind_and_code() -> None:
    pipeline = MemoryPipeline(FakeEngine(lambda _: _raise(TransientAgentError("busy"))))
    await pipeline.deliver(b"{not json")
    await pipeline.deliver(body_of(agent_request()))
    count = pipeline.counter
    assert count("agent_failures_total", kind="invalid_message", code="INVALID_MESSAGE") == 1
    assert count("agent_failures_total", kind="transient", code="MODEL_UNAVAILABLE") == 1


async def test_consumed_and_processing_are_counted_by_task_type() -> None:
    pipeline = MemoryPipeline(FakeEngine())
    await pipeline.deliver(body_of(agent_request(TaskType.ORDER)))
    assert pipeline.counter("agent_messages_consumed_total", task_type="order") == 1
    assert pipeline.counter("agent_processing_seconds_count", task_type="order") == 1


async def test_processing_time_is_measured_on_the_handlers_clock() -> None:
    pipeline = MemoryPipeline(FakeEngine())
    with_clock(pipeline, stepping_clock(step=1.5))
    await pipeline.deliver(body_of(agent_request()))
    assert pipeline.outlet.replies[0].agentMetadata.processingTime == 1.5
    pipeline.engine.behaviour = lambda _: _raise(TransientAgentError("busy"))
    with_clock(pipeline, stepping_clock(step=2.0))
    await pipeline.deliver(body_of(agent_request(retry_count=3)))
    assert pipeline.outlet.replies[1].agentMetadata.processingTime == 2.0


async def test_the_order_wait_is_observed_only_when_there_was_one() -> None:
    pipeline = MemoryPipeline(FakeEngine())
    with_clock(pipeline, lambda: 5.0)
    await pipeline.deliver(body_of(agent_request()))
    assert pipeline.counter("agent_order_wait_seconds_count") == 0
    with_clock(pipeline, stepping_clock(step=0.5))
    await pipeline.deliver(body_of(agent_request()))
    assert pipeline.counter("agent_order_wait_seconds_count") == 1
    assert pipeline.counter("agent_order_wait_seconds_sum") == 0.5


# --- log records operators read (docs/operations.md) ------------------------------------------


async def test_the_consumed_record_masks_the_contact_and_carries_no_text_by_default(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=HANDLER_LOG)
    request = agent_request(TaskType.ORDER, text="my secret order", phone="+256703722777")
    await MemoryPipeline(FakeEngine()).deliver(body_of(request), redelivered=True)
    [record] = records(caplog, "📥 Consumed from ag_queue")
    fields = record.__dict__
    assert fields["message_id"] == request.messageId and fields["task_type"] == "order"
    assert fields["retry_count"] == 0 and fields["redelivered"] is True
    assert "703722777" not in fields["contact"] and fields["contact"].startswith("+256")
    assert "text" not in fields


async def test_log_message_text_puts_the_text_in_the_consumed_record(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=HANDLER_LOG)
    request = agent_request(text="hello there")
    await MemoryPipeline(FakeEngine(), limits=Limits(log_message_text=True)).deliver(
        body_of(request)
    )
    [record] = records(caplog, "📥 Consumed from ag_queue")
    assert record.text == "hello there"  # type: ignore[attr-defined]


async def test_a_failure_is_logged_with_what_was_decided(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=HANDLER_LOG)
    request = agent_request(TaskType.ORDER, retry_count=1)
    pipeline = MemoryPipeline(FakeEngine(lambda _: _raise(TransientAgentError("busy"))))
    await pipeline.deliver(body_of(request))
    [record] = records(caplog, "agent failed")
    assert {k: record.__dict__[k] for k in ("message_id", "task_type", "failure_kind")} == {
        "message_id": request.messageId,
        "task_type": "order",
        "failure_kind": "transient",
    }
    assert (record.error_code, record.action, record.retry_count) == (  # type: ignore[attr-defined]
        "MODEL_UNAVAILABLE",
        "retry",
        1,
    )


async def test_each_dead_letter_and_hand_back_is_logged_with_its_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    await MemoryPipeline(FakeEngine()).deliver(b"{not json")
    assert records(caplog, "invalid request: dead-lettering it")
    log = MemoryDeliveryLog()
    request = agent_request()
    log.rows[request.messageId] = (9, 0)
    pipeline = MemoryPipeline(FakeEngine(), deliveries=log, limits=Limits(max_deliveries=1))
    await pipeline.deliver(body_of(request), redelivered=True)
    [record] = records(caplog, "request delivered too often without settling: dead-lettering it")
    assert record.deliveries == 9  # type: ignore[attr-defined]


async def test_a_cancel_from_inside_the_agent_is_a_hand_back_after_the_pause(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    pipeline = MemoryPipeline(FakeEngine(lambda _: _raise(asyncio.CancelledError())))
    assert (await pipeline.deliver(body_of(agent_request()))).handed_back
    assert pipeline.sleep.pauses == [0.5]
    [record] = records(caplog, "handing the delivery back")
    assert record.reason == "the agent run was cancelled"  # type: ignore[attr-defined]


async def test_an_order_timeout_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=HANDLER_LOG)
    gate = asyncio.Event()

    async def behave(request: AgentRequest) -> AgentAnswer:
        if request.message.text == "first":
            await gate.wait()
        return AgentAnswer("ok")

    states = MemoryRequestStates(Deduplicator(), order_wait=0.01)
    pipeline = MemoryPipeline(FakeEngine(behave), states=states)
    first = asyncio.create_task(pipeline.deliver(body_of(agent_request(text="first"))))
    await wait_until(lambda: len(pipeline.engine.calls) == 1, timeout=10, what="the first run")
    second = agent_request(text="second")
    await pipeline.deliver(body_of(second))
    [record] = records(
        caplog,
        "an earlier request of the contact is still unsettled after ORDER_WAIT:"
        " replying out of order",
    )
    assert record.message_id == second.messageId  # type: ignore[attr-defined]
    gate.set()
    await first


async def test_a_fault_of_the_handler_is_handed_back_naming_the_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class BrokenLog(MemoryDeliveryLog):
        async def arrived(self, request_id: str, *, redelivered: bool) -> int:
            raise OSError("disk full")

    caplog.set_level(logging.INFO)
    pipeline = MemoryPipeline(FakeEngine(), deliveries=BrokenLog())
    assert (await pipeline.deliver(body_of(agent_request()))).handed_back
    [record] = records(caplog, "handing the delivery back")
    assert record.reason == "internal error: OSError"  # type: ignore[attr-defined]


# --- the settler's own answers ----------------------------------------------------------------


async def test_the_settler_answers_done_only_for_an_acked_end() -> None:
    sleep = FakeSleep()
    settler = Settler(MemoryOutlet(missing={"wb_queue"}), ServiceMetrics(), sleep=sleep)
    assert await settler.settle(Duplicate("m"), MemoryDelivery(b"")) == Settlement(done=True)
    assert await settler.settle(HandBack("why"), MemoryDelivery(b"")) == Settlement(done=False)
    assert sleep.pauses == [0.5]
    dead = DeadLetter("INVALID_MESSAGE", "bad")
    done = await Settler(MemoryOutlet(), ServiceMetrics(), sleep=sleep).settle(
        dead, MemoryDelivery(b"x")
    )
    assert done == Settlement(done=True)


async def test_a_returned_or_failed_publish_is_not_done_and_the_default_backoff_grows() -> None:
    sleep = FakeSleep()
    outlet = MemoryOutlet(missing={"dlx_agent"})
    settler = Settler(outlet, ServiceMetrics(), sleep=sleep)
    dead = DeadLetter("INVALID_MESSAGE", "bad")
    assert await settler.settle(dead, MemoryDelivery(b"x")) == Settlement(done=False)
    assert await settler.settle(dead, MemoryDelivery(b"x")) == Settlement(done=False)
    assert settler.publishing is False and sleep.pauses == [0.5, 1.0]
    outlet.missing.clear()
    outlet.fail_next.append(ConnectionError("gone"))
    assert await settler.settle(dead, MemoryDelivery(b"x")) == Settlement(done=False)


async def test_a_dead_letter_keeps_the_deliverys_properties() -> None:
    outlet = MemoryOutlet()
    properties = Properties(message_id="amqp-1", content_type="application/json")
    delivery = MemoryDelivery(b"{not json", properties=properties)
    await Settler(outlet, ServiceMetrics(), sleep=FakeSleep()).settle(
        DeadLetter("INVALID_MESSAGE", "bad"), delivery
    )
    assert outlet.dead_letters[0].properties == properties


async def test_publishing_works_again_is_logged_once_after_a_return(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=SETTLE_LOG)
    outlet = MemoryOutlet()
    settler = Settler(outlet, ServiceMetrics(), sleep=FakeSleep())
    dead = DeadLetter("INVALID_MESSAGE", "bad")
    await settler.settle(dead, MemoryDelivery(b"x"))
    assert not records(caplog, "publishing works again")
    outlet.missing.add("dlx_agent")
    await settler.settle(dead, MemoryDelivery(b"x"))
    [returned] = [r for r in caplog.records if r.getMessage().startswith("the broker returned")]
    assert returned.getMessage() == (
        "the broker returned a publish: no queue takes it; the request is kept and handed"
        " back until the queue exists again"
    )
    outlet.missing.clear()
    await settler.settle(dead, MemoryDelivery(b"x"))
    assert len(records(caplog, "publishing works again")) == 1


def test_unroutable_names_the_destination() -> None:
    assert str(Unroutable("wb_queue")) == "no queue takes messages for 'wb_queue'"


# --- the retry copy ---------------------------------------------------------------------------


def test_the_retry_copy_keeps_every_metadata_field_and_writes_utf8() -> None:
    raw = json.loads(to_json_bytes(agent_request(text="café ☕")))
    sent = json.loads(retry_body(raw, 2))
    assert sent["metadata"] == {**raw["metadata"], "retryCount": 2}
    assert "café ☕".encode() in retry_body(raw, 2)
    assert json.loads(retry_body({"messageId": "m"}, 1))["metadata"] == {"retryCount": 1}
