"""Deciding what becomes of one delivery from ag_queue: the pipeline of DESIGN.md section 6.

decode and validate → count deliveries → claim (deduplicate) → run the agent (time-limited) →
build the reply → keep it → wait for the contact's turn. The answer is a ``Decision``; the
transport carries it out (``transport.settle``) and reports back through ``settled``, which
keeps the request states and the delivery log in step with what the broker was really told.
Failures go through ``failures.classify`` and ``failures.action_for``; nothing here acks, nacks
or publishes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from agent_service.contract.codec import ContractError, parse_body, validate
from agent_service.contract.messages import AgentRequest
from agent_service.errors import ErrorCode
from agent_service.observability.logging import mask_phone
from agent_service.observability.metrics import ServiceMetrics
from agent_service.pipeline.decisions import (
    DeadLetter,
    Decision,
    Duplicate,
    HandBack,
    Reply,
    Retry,
    Settlement,
)
from agent_service.pipeline.dedup import State
from agent_service.pipeline.deliveries import DeliveryLog
from agent_service.pipeline.engine import Engine
from agent_service.pipeline.failures import FailureAction, action_for, classify
from agent_service.pipeline.replies import error_reply, success_reply
from agent_service.pipeline.request_state import RequestStates, StateUnavailable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Incoming:
    """One delivery as the handler sees it: bytes and the broker's redelivered flag."""

    body: bytes
    redelivered: bool = False
    message_id: str | None = None  # the AMQP property, only for logs


@dataclass(frozen=True)
class Limits:
    max_processing_time: float = 300.0
    max_retries: int = 3
    retry_levels: int = 3
    """How many wait queues there are; later retries reuse the last one."""
    max_message_bytes: int = 262_144
    max_deliveries: int = 5
    include_stack: bool = False
    log_message_text: bool = False


class RequestHandler:
    def __init__(
        self,
        engine: Engine,
        states: RequestStates,
        deliveries: DeliveryLog,
        metrics: ServiceMetrics,
        limits: Limits,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._states = states
        self._deliveries = deliveries
        self._metrics = metrics
        self._limits = limits
        self._clock = clock

    async def decide(self, incoming: Incoming) -> Decision:
        """The decision for one delivery. Raises only CancelledError, when this task itself is
        cancelled (the service stopping): then nothing was claimed and the delivery stays
        unacked for the broker to redeliver."""
        try:
            raw = parse_body(incoming.body, "ag_queue request", self._limits.max_message_bytes)
            request = validate(AgentRequest, raw, "ag_queue request")
        except ContractError as exc:
            self._metrics.failures.labels("invalid_message", ErrorCode.INVALID_MESSAGE).inc()
            log.warning(
                "invalid request: dead-lettering it",
                extra={"amqp_message_id": incoming.message_id, "problems": exc.problems[:10]},
            )
            return DeadLetter(ErrorCode.INVALID_MESSAGE, str(exc))
        self._log_consumed(request, incoming)
        try:
            earlier = await self._deliveries.arrived(
                request.messageId, redelivered=incoming.redelivered
            )
            if earlier >= self._limits.max_deliveries:
                log.error(
                    "request delivered too often without settling: dead-lettering it",
                    extra={"message_id": request.messageId, "deliveries": earlier},
                )
                detail = f"delivered {earlier} times without being settled (MAX_DELIVERIES)"
                return DeadLetter(ErrorCode.MAX_DELIVERIES, detail, request.messageId)
            claimed = await self._claim(request)
        except StateUnavailable as exc:
            # Nothing is claimed: the delivery comes back (after the hand-back pause) and
            # is answered once the store is reachable, never twice without knowing.
            log.error(
                "cannot reach the shared request states: handing the delivery back",
                extra={"message_id": request.messageId, "error": str(exc)},
            )
            return HandBack("the shared request states cannot be reached", request.messageId)
        if isinstance(claimed, Duplicate):
            return claimed
        try:
            decision = claimed or await self._answer(request, raw)
            if isinstance(decision, Reply):
                await self._states.remember_reply(request.messageId, decision.reply)
                await self._wait_turn(request)
            return decision
        except BaseException:
            # Stopping mid-run: the delivery goes back to the broker unsettled, on purpose.
            await self._states.release(request.messageId)
            await self._deliveries.settled(request.messageId, final=False)
            raise

    async def settled(self, decision: Decision, settlement: Settlement) -> None:
        """Keep the deduplication and the delivery log in step with what the broker was told."""
        request_id = decision.request_id
        if request_id is None:
            return
        if isinstance(decision, Reply):
            if settlement.done:
                await self._states.done(request_id)
            else:
                # Kept PENDING: the redelivery republishes this same reply, agent not run.
                await self._states.release(request_id)
        elif isinstance(decision, Retry):
            await self._states.release(request_id, retrying=True)
        elif isinstance(decision, HandBack):
            await self._states.release(request_id)
        await self._deliveries.settled(request_id, final=settlement.done)

    async def _claim(self, request: AgentRequest) -> Decision | None:
        """Duplicate when this delivery does not get to run the agent, the reply to republish
        when one was built before, else None (this delivery runs the agent)."""
        message_id = request.messageId
        claim = await self._states.claim(request)
        if claim.state is State.DONE or claim.state is State.IN_FLIGHT:
            self._metrics.duplicates.inc()
            log.info("duplicate request: acking it", extra={"message_id": message_id})
            return Duplicate(message_id)
        if claim.reply is not None:
            log.info("republishing the reply already built", extra={"message_id": message_id})
            return Reply(claim.reply)
        return None

    async def _wait_turn(self, request: AgentRequest) -> None:
        """Hold the reply until the contact's earlier requests have settled (bounded)."""
        began = self._clock()
        in_turn = await self._states.wait_turn(request)
        waited = self._clock() - began
        if waited > 0:
            self._metrics.order_wait.observe(waited)
        if not in_turn:
            self._metrics.order_timeouts.inc()
            log.warning(
                "an earlier request of the contact is still unsettled after ORDER_WAIT:"
                " replying out of order",
                extra={"message_id": request.messageId},
            )

    async def _answer(self, request: AgentRequest, raw: dict[str, Any]) -> Decision:
        began = self._clock()
        try:
            # asyncio.timeout, not wait_for: no second task per request (Python 3.11's
            # wait_for runs the awaitable in a task of its own; measured by harness bench).
            async with asyncio.timeout(self._limits.max_processing_time):
                answer = await self._engine.run(request)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # this task is being cancelled: the service is stopping
            # A cancellation from inside the agent, not aimed at us (found in a review: it
            # left the delivery unacked for ever and the consumer slot gone).
            log.warning("agent run cancelled from inside", extra={"message_id": request.messageId})
            return HandBack("the agent run was cancelled", request.messageId)
        except Exception as exc:
            return self._on_failure(request, raw, exc, self._clock() - began)
        elapsed = self._clock() - began
        self._metrics.processing.labels(request.taskType.value).observe(elapsed)
        known = self._engine.tool_names
        for tool in answer.tools_used:
            # A name the model made up is no label: the number of series stays bounded
            # (found in a review: any name became a Prometheus label value).
            self._metrics.tools.labels(tool if tool in known else "unknown").inc()
        return Reply(success_reply(request, answer, elapsed))

    def _on_failure(
        self, request: AgentRequest, raw: dict[str, Any], exc: Exception, elapsed: float
    ) -> Decision:
        failure = classify(exc)
        retries = request.metadata.retryCount
        action = action_for(
            failure, retries, min(request.metadata.maxRetries, self._limits.max_retries)
        )
        self._metrics.failures.labels(failure.kind.value, failure.code).inc()
        log.warning(
            "agent failed",
            extra={
                "message_id": request.messageId,
                "task_type": request.taskType.value,
                "failure_kind": failure.kind.value,
                "error_code": failure.code,
                "action": action.value,
                "retry_count": retries,
            },
        )
        if action is FailureAction.RETRY:
            body = retry_body(raw, retries + 1)
            level = min(retries + 1, self._limits.retry_levels)
            return Retry(request, body, level, failure.code)
        if failure.retryable:
            failure = replace(
                failure, message=f"{failure.message} (gave up after {retries} retries)"
            )
        reply = error_reply(
            request, failure, elapsed, exc=exc, include_stack=self._limits.include_stack
        )
        return Reply(reply)

    def _log_consumed(self, request: AgentRequest, incoming: Incoming) -> None:
        self._metrics.consumed.labels(request.taskType.value).inc()
        fields: dict[str, object] = {
            "message_id": request.messageId,
            "contact": mask_phone(request.contact.phoneNumber),
            "task_type": request.taskType.value,
            "retry_count": request.metadata.retryCount,
            "redelivered": incoming.redelivered,
        }
        if self._limits.log_message_text:  # LOG_MESSAGE_TEXT: personal data, off by default
            fields["text"] = request.message.text
        log.info("📥 Consumed from ag_queue", extra=fields)


def retry_body(raw: dict[str, Any], retry_count: int) -> bytes:
    """The request as it came, with ``metadata.retryCount`` set: the raw JSON is edited, not
    re-serialised from the model, so fields this version does not know survive the round trip
    (tolerant reader, faithful forwarder). Non-finite numbers were refused at decode."""
    body = dict(raw)
    metadata = dict(body.get("metadata") or {})
    metadata["retryCount"] = retry_count
    body["metadata"] = metadata
    return json.dumps(body, allow_nan=False, ensure_ascii=False).encode("utf-8")
