"""The whole request pipeline with a fake engine, an in-memory outlet and a fake sleep: one test
per agent-side row of the failure table (DESIGN.md section 5), with no broker and no model."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from agent_service.contract.amqp import DEAD_LETTER_DETAIL_HEADER, DEAD_LETTER_REASON_HEADER
from agent_service.contract.codec import to_json_bytes
from agent_service.contract.messages import FALLBACK_TEXT, AgentRequest, ReplyStatus, TaskType
from agent_service.errors import ErrorCode, PermanentAgentError, TransientAgentError
from agent_service.pipeline.deliveries import DeliveryLog, MemoryDeliveryLog, SqliteDeliveryLog
from agent_service.pipeline.engine import AgentAnswer
from agent_service.pipeline.handler import Incoming, Limits
from agent_service.testing import FakeEngine, MemoryOutlet, MemoryPipeline
from harness.message_factory import agent_request

pytestmark = pytest.mark.unit


def body_of(request: AgentRequest, **changes: Any) -> bytes:
    data = json.loads(to_json_bytes(request))
    data.update(changes)
    return json.dumps(data).encode()


def failing(exc: BaseException, times: int | None = None) -> Any:
    """A behaviour that raises ``exc`` (the first ``times`` calls only, if given)."""
    calls = {"n": 0}

    def behave(request: AgentRequest) -> AgentAnswer:
        calls["n"] += 1
        if times is None or calls["n"] <= times:
            raise exc
        return AgentAnswer("fine now")

    return behave


# --- the happy path and duplicates -----------------------------------------------------------


async def test_an_answer_is_published_then_the_delivery_acked() -> None:
    pipeline = MemoryPipeline(FakeEngine())
    request = agent_request(TaskType.ORDER)
    delivery = await pipeline.deliver(body_of(request))
    assert delivery.acked and not delivery.handed_back
    [reply] = pipeline.outlet.replies
    assert reply.status is ReplyStatus.SUCCESS and reply.originalMessageId == request.messageId
    assert pipeline.counter("agent_messages_published_total", status="success") == 1


async def test_a_second_delivery_of_an_answered_request_is_acked_without_a_second_reply() -> None:
    engine = FakeEngine()
    pipeline = MemoryPipeline(engine)
    body = body_of(agent_request())
    await pipeline.deliver(body)
    again = await pipeline.deliver(body, redelivered=True)
    assert again.acked
    assert len(pipeline.outlet.replies) == 1 and len(engine.calls) == 1
    assert pipeline.counter("agent_duplicates_total") == 1


async def test_two_deliveries_at_once_run_the_agent_once() -> None:
    started, release = asyncio.Event(), asyncio.Event()

    async def slow(_: AgentRequest) -> AgentAnswer:
        started.set()
        await release.wait()
        return AgentAnswer("done")

    engine = FakeEngine(slow)
    pipeline = MemoryPipeline(engine)
    body = body_of(agent_request())
    first = asyncio.create_task(pipeline.deliver(body))
    await started.wait()
    second = asyncio.create_task(pipeline.deliver(body))
    for _ in range(20):  # let the second delivery reach the request held by the first
        await asyncio.sleep(0)
    assert not second.done()
    release.set()
    deliveries = await asyncio.gather(first, second)
    assert all(d.acked for d in deliveries)
    assert len(engine.calls) == 1 and len(pipeline.outlet.replies) == 1


# --- invalid messages ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"\xff\xfe", b"[]", json.dumps({"messageId": "x"}).encode(), b"x" * 300_000],
    ids=["not-json", "not-utf8", "array", "schema", "oversized"],
)
async def test_an_invalid_request_is_dead_lettered_with_its_reason(body: bytes) -> None:
    engine = FakeEngine()
    pipeline = MemoryPipeline(engine)
    delivery = await pipeline.deliver(body)
    assert delivery.acked and not engine.calls and not pipeline.outlet.replies
    [dead] = pipeline.outlet.dead_letters
    assert dead.body == body
    assert dead.headers[DEAD_LETTER_REASON_HEADER] == ErrorCode.INVALID_MESSAGE
    assert dead.headers[DEAD_LETTER_DETAIL_HEADER].startswith("invalid ag_queue request message")
    assert pipeline.counter("agent_dead_lettered_total", reason="INVALID_MESSAGE") == 1


async def test_a_number_too_large_for_a_float_is_refused_at_decode() -> None:
    # 1e400 in an unknown field used to pass, then came back as "Infinity" in the retry copy.
    request = agent_request()
    body = body_of(request)[:-1] + b', "extra": 1e400}'
    pipeline = MemoryPipeline(FakeEngine(failing(TransientAgentError("busy"))))
    await pipeline.deliver(body)
    [dead] = pipeline.outlet.dead_letters
    assert "1e400" in dead.headers[DEAD_LETTER_DETAIL_HEADER] and not pipeline.outlet.retries


# --- transient failures, retries, permanent failures, timeouts -----------------------------


async def test_a_transient_failure_is_retried_through_the_next_wait_queue() -> None:
    pipeline = MemoryPipeline(FakeEngine(failing(TransientAgentError("model busy"))))
    request = agent_request(retry_count=1)
    delivery = await pipeline.deliver(body_of(request, unknownField={"kept": True}))
    assert delivery.acked and not pipeline.outlet.replies
    [retry] = pipeline.outlet.retries
    sent = json.loads(retry.body)
    assert retry.level == 2 and retry.reason == ErrorCode.MODEL_UNAVAILABLE
    assert sent["metadata"]["retryCount"] == 2 and sent["unknownField"] == {"kept": True}
    assert pipeline.counter("agent_retries_total", level="2") == 1


async def test_retries_past_the_last_wait_queue_reuse_it() -> None:
    pipeline = MemoryPipeline(
        FakeEngine(failing(TransientAgentError("busy"))), limits=Limits(max_retries=5)
    )
    await pipeline.deliver(body_of(agent_request(retry_count=4, max_retries=5)))
    assert pipeline.outlet.retries[0].level == 3


async def test_retries_used_up_give_an_error_reply_with_the_fallback_text() -> None:
    pipeline = MemoryPipeline(FakeEngine(failing(TransientAgentError("model busy"))))
    delivery = await pipeline.deliver(body_of(agent_request(retry_count=3)))
    assert delivery.acked and not pipeline.outlet.retries
    [reply] = pipeline.outlet.replies
    assert reply.status is ReplyStatus.ERROR and reply.error is not None
    assert reply.error.code == ErrorCode.MODEL_UNAVAILABLE
    assert "gave up after 3 retries" in reply.error.message
    assert reply.response.text == FALLBACK_TEXT and reply.error.stack is None


async def test_the_requests_own_max_retries_wins_when_lower() -> None:
    pipeline = MemoryPipeline(FakeEngine(failing(TransientAgentError("busy"))))
    await pipeline.deliver(body_of(agent_request(retry_count=1, max_retries=1)))
    assert not pipeline.outlet.retries and pipeline.outlet.replies[0].status is ReplyStatus.ERROR


async def test_a_permanent_failure_answers_at_once_without_a_retry() -> None:
    pipeline = MemoryPipeline(
        FakeEngine(failing(PermanentAgentError("refused", code="MODEL_REJECTED"))),
        limits=Limits(include_stack=True),
    )
    await pipeline.deliver(body_of(agent_request()))
    [reply] = pipeline.outlet.replies
    assert not pipeline.outlet.retries
    assert reply.error is not None and reply.error.code == "MODEL_REJECTED"
    assert reply.error.stack is not None and "PermanentAgentError" in reply.error.stack


async def test_a_run_past_the_time_limit_is_retried() -> None:
    async def hang(_: AgentRequest) -> AgentAnswer:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    pipeline = MemoryPipeline(FakeEngine(hang), limits=Limits(max_processing_time=0.01))
    await pipeline.deliver(body_of(agent_request()))
    [retry] = pipeline.outlet.retries
    assert retry.reason == ErrorCode.PROCESSING_TIMEOUT


async def test_a_dropped_model_connection_is_retried_not_answered_with_the_fallback() -> None:
    pipeline = MemoryPipeline(FakeEngine(failing(aiohttp.ServerDisconnectedError())))
    await pipeline.deliver(body_of(agent_request()))
    assert [r.reason for r in pipeline.outlet.retries] == [ErrorCode.MODEL_UNAVAILABLE]
    assert not pipeline.outlet.replies


async def test_a_tool_failure_with_an_answer_is_partial() -> None:
    pipeline = MemoryPipeline(FakeEngine(lambda _: AgentAnswer("sorry", tool_failed=True)))
    await pipeline.deliver(body_of(agent_request()))
    assert pipeline.outlet.replies[0].status is ReplyStatus.PARTIAL


# --- crashes, redeliveries and poison requests -----------------------------------------------


async def test_a_crash_after_the_reply_was_built_republishes_that_reply() -> None:
    engine = FakeEngine()
    outlet = MemoryOutlet(fail_next=[ConnectionError("link down")])
    pipeline = MemoryPipeline(engine, outlet=outlet)
    body = body_of(agent_request())
    first = await pipeline.deliver(body)
    assert first.handed_back and not outlet.replies
    second = await pipeline.deliver(body, redelivered=True)
    assert second.acked and len(outlet.replies) == 1 and len(engine.calls) == 1


async def crash_on(body: bytes, log: DeliveryLog, times: int) -> None:
    """``times`` service processes that each take the delivery and die before settling it:
    the delivery log is what survives them (an SQLite file in the service)."""
    for attempt in range(times):
        doomed = MemoryPipeline(FakeEngine(), deliveries=log)
        await doomed.handler.decide(Incoming(body, redelivered=attempt > 0))


@pytest.mark.parametrize("crashes", [2, 3])
async def test_a_request_that_crashes_the_service_every_time_is_dead_lettered(
    crashes: int,
) -> None:
    body = body_of(agent_request())
    log = MemoryDeliveryLog()
    await crash_on(body, log, crashes)
    engine = FakeEngine()
    survivor = MemoryPipeline(engine, deliveries=log, limits=Limits(max_deliveries=3))
    last = await survivor.deliver(body, redelivered=True)
    assert last.acked
    if crashes < 3:  # below MAX_DELIVERIES the request is still answered
        assert len(survivor.outlet.replies) == 1 and not survivor.outlet.dead_letters
        return
    assert not engine.calls and not survivor.outlet.replies
    [dead] = survivor.outlet.dead_letters
    assert dead.headers[DEAD_LETTER_REASON_HEADER] == ErrorCode.MAX_DELIVERIES
    assert "delivered 3 times" in dead.headers[DEAD_LETTER_DETAIL_HEADER]


async def test_the_delivery_count_survives_a_restart_in_its_sqlite_file(tmp_path: Path) -> None:
    body = body_of(agent_request())
    path = tmp_path / "deliveries.sqlite3"
    for attempt in range(2):  # two processes, each dies while holding the delivery
        log = SqliteDeliveryLog(path)
        doomed = MemoryPipeline(FakeEngine(), deliveries=log)
        await doomed.handler.decide(Incoming(body, redelivered=attempt > 0))
        log.close()
    log = SqliteDeliveryLog(path)
    survivor = MemoryPipeline(FakeEngine(), deliveries=log, limits=Limits(max_deliveries=2))
    await survivor.deliver(body, redelivered=True)
    assert (
        survivor.outlet.dead_letters[0].headers[DEAD_LETTER_REASON_HEADER]
        == ErrorCode.MAX_DELIVERIES
    )
    log.close()


async def test_deliberate_hand_backs_do_not_count_as_crashes() -> None:
    outlet = MemoryOutlet(missing={"wb_queue"})
    pipeline = MemoryPipeline(FakeEngine(), outlet=outlet, limits=Limits(max_deliveries=2))
    body = body_of(agent_request())
    redelivered = False
    for _ in range(6):
        assert (await pipeline.deliver(body, redelivered=redelivered)).handed_back
        redelivered = True
    outlet.missing.clear()
    assert (await pipeline.deliver(body, redelivered=True)).acked
    assert len(outlet.replies) == 1 and not outlet.dead_letters


# --- a reply or retry that no queue takes ----------------------------------------------------


async def test_a_returned_reply_keeps_the_request_until_the_queue_is_back() -> None:
    engine = FakeEngine()
    outlet = MemoryOutlet(missing={"wb_queue"})
    pipeline = MemoryPipeline(engine, outlet=outlet)
    body = body_of(agent_request())
    for redelivered in (False, True, True):
        delivery = await pipeline.deliver(body, redelivered=redelivered)
        assert delivery.handed_back and not delivery.acked
    assert not pipeline.settler.publishing  # /readyz reports not ready
    assert pipeline.sleep.pauses == [0.5, 1.0, 2.0]  # the pause grows
    assert pipeline.counter("agent_publish_returned_total", destination="wb_queue") == 3
    assert pipeline.counter("agent_messages_published_total", status="success") == 0
    outlet.missing.clear()  # someone declared wb_queue again
    assert (await pipeline.deliver(body, redelivered=True)).acked
    assert pipeline.settler.publishing
    assert len(outlet.replies) == 1 and len(engine.calls) == 1  # the same reply, agent not rerun


async def test_a_returned_retry_keeps_the_request() -> None:
    outlet = MemoryOutlet(missing={"ag_queue.retry.1"})
    pipeline = MemoryPipeline(FakeEngine(failing(TransientAgentError("busy"))), outlet=outlet)
    delivery = await pipeline.deliver(body_of(agent_request()))
    assert delivery.handed_back and not outlet.retries and not outlet.replies
    assert not pipeline.settler.publishing


async def test_a_returned_dead_letter_keeps_the_message() -> None:
    outlet = MemoryOutlet(missing={"dlx_agent"})
    pipeline = MemoryPipeline(FakeEngine(), outlet=outlet)
    assert (await pipeline.deliver(b"{not json")).handed_back


async def test_the_pause_is_reset_by_a_publish_that_works() -> None:
    outlet = MemoryOutlet(missing={"wb_queue"})
    pipeline = MemoryPipeline(FakeEngine(), outlet=outlet)
    await pipeline.deliver(body_of(agent_request()))
    await pipeline.deliver(body_of(agent_request()))
    outlet.missing.clear()
    await pipeline.deliver(body_of(agent_request()))
    outlet.missing.add("wb_queue")
    await pipeline.deliver(body_of(agent_request()))
    assert pipeline.sleep.pauses == [0.5, 1.0, 0.5]


async def test_a_broken_link_hands_the_delivery_back_after_a_short_pause() -> None:
    outlet = MemoryOutlet(fail_next=[ConnectionError("gone")])
    pipeline = MemoryPipeline(FakeEngine(), outlet=outlet)
    assert (await pipeline.deliver(body_of(agent_request()))).handed_back
    assert pipeline.settler.publishing  # a link failure is not a missing queue
    assert pipeline.sleep.pauses == [0.5]


# --- cancellations ---------------------------------------------------------------------------


async def test_a_cancellation_from_inside_the_agent_hands_the_delivery_back() -> None:
    def cancel(_: AgentRequest) -> AgentAnswer:
        raise asyncio.CancelledError

    engine = FakeEngine(cancel)
    pipeline = MemoryPipeline(engine)
    body = body_of(agent_request())
    assert (await pipeline.deliver(body)).handed_back
    engine.behaviour = None
    assert (await pipeline.deliver(body, redelivered=True)).acked
    assert len(pipeline.outlet.replies) == 1


async def test_a_stray_cancel_of_the_task_hands_back_and_frees_the_slot() -> None:
    started = asyncio.Event()

    async def wait(_: AgentRequest) -> AgentAnswer:
        started.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    engine = FakeEngine(wait)
    pipeline = MemoryPipeline(engine)
    body = body_of(agent_request())
    task = asyncio.create_task(pipeline.deliver(body))
    await started.wait()
    task.cancel()
    delivery = await task  # returns normally: the cancellation was not the service stopping
    assert delivery.handed_back and not task.cancelled()
    engine.behaviour = None
    assert (await pipeline.deliver(body, redelivered=True)).acked  # not stuck in flight


async def test_a_cancel_while_stopping_leaves_the_delivery_to_the_broker() -> None:
    started = asyncio.Event()

    async def wait(_: AgentRequest) -> AgentAnswer:
        started.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    pipeline = MemoryPipeline(FakeEngine(wait))
    pipeline.stopping = True
    task = asyncio.create_task(pipeline.deliver(body_of(agent_request())))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not pipeline.outlet.replies


async def test_a_fault_of_the_handler_itself_hands_the_delivery_back() -> None:
    class BrokenLog:
        async def arrived(self, request_id: str, *, redelivered: bool) -> int:
            raise OSError("disk full")

        async def settled(self, request_id: str, *, final: bool) -> None:
            return None

        def close(self) -> None:
            return None

    pipeline = MemoryPipeline(FakeEngine(), deliveries=BrokenLog())
    assert (await pipeline.deliver(body_of(agent_request()))).handed_back


async def test_tool_labels_come_only_from_the_agents_own_tools() -> None:
    # Found in a review: a tool name the model chose became a label, so series were unbounded.
    made_up = ("search_faq", "drop_tables_please", "get_order_status__fault")
    pipeline = MemoryPipeline(FakeEngine(lambda _: AgentAnswer("ok", made_up)))
    await pipeline.deliver(body_of(agent_request()))
    assert pipeline.counter("agent_tools_used_total", tool="search_faq") == 1
    assert pipeline.counter("agent_tools_used_total", tool="unknown") == 2
    labels = {s.labels.get("tool") for m in pipeline.metrics.registry.collect() for s in m.samples}
    assert not labels & {"drop_tables_please", "get_order_status__fault"}
