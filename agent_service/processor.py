"""Processing one delivery from ag_queue: the pipeline of DESIGN.md section 6.

decode and validate → deduplicate → route and run the agent (time-limited) → build the reply →
publish with confirm → ack. Every failure goes through ``failures.classify`` and
``failures.outcome_for``; this module only carries out the outcome.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Protocol

from aio_pika.abc import AbstractIncomingMessage

from agent_service.contract.codec import ContractError, parse_body, validate
from agent_service.contract.messages import AgentReply, AgentRequest
from agent_service.dedup import Deduplicator, State
from agent_service.failures import Failure, FailureKind, Outcome, classify, outcome_for
from agent_service.observability.logging import mask_phone
from agent_service.observability.metrics import ServiceMetrics
from agent_service.queue.publisher import Publisher
from agent_service.replies import AnswerSummary, error_reply, success_reply

log = logging.getLogger(__name__)


class Engine(Protocol):
    """What the processor needs of the agent: one answer per request, or an exception."""

    async def run(self, request: AgentRequest) -> Any: ...


class Processor:
    def __init__(
        self,
        engine: Engine,
        publisher: Publisher,
        dedup: Deduplicator,
        metrics: ServiceMetrics,
        *,
        max_processing_time: float,
        max_retries: int,
        max_message_bytes: int,
        include_stack: bool = False,
    ) -> None:
        self._engine = engine
        self._publisher = publisher
        self._dedup = dedup
        self._metrics = metrics
        self._time_limit = max_processing_time
        self._max_retries = max_retries
        self._max_bytes = max_message_bytes
        self._include_stack = include_stack

    async def handle(self, message: AbstractIncomingMessage) -> None:
        """Process one delivery to its single outcome; never raises for a bad message."""
        try:
            raw = parse_body(message.body, "ag_queue request", self._max_bytes)
            request = validate(AgentRequest, raw, "ag_queue request")
        except ContractError as exc:
            await self._dead_letter(message, exc)
            return
        self._metrics.consumed.labels(request.taskType.value).inc()
        log.info(
            "📥 Consumed from ag_queue",
            extra={
                "message_id": request.messageId,
                "contact": mask_phone(request.contact.phoneNumber),
                "task_type": request.taskType.value,
                "retry_count": request.metadata.retryCount,
                "redelivered": message.redelivered,
            },
        )
        state, reply = self._dedup.claim(request.messageId)
        if state is State.IN_FLIGHT:
            state = await self._dedup.wait_settled(request.messageId)
            if state is State.NEW or state is State.PENDING:
                # The other delivery let go without a confirmed reply: this one takes over.
                state, reply = self._dedup.claim(request.messageId)
        if state is State.DONE or state is State.IN_FLIGHT:
            self._metrics.duplicates.inc()
            log.info("duplicate request dropped", extra={"message_id": request.messageId})
            await message.ack()
            return
        try:
            if reply is None:
                reply = await self._answer(message, request, raw)
                if reply is None:  # a retry was scheduled and the delivery acked
                    self._dedup.release(request.messageId)
                    return
                self._dedup.remember_reply(request.messageId, reply)
            await self._publisher.publish_response(reply)
        except BaseException:
            # Not confirmed: the broker redelivers (channel gone) or we are stopping. A built
            # reply is kept, so the redelivery sends that same reply.
            self._dedup.release(request.messageId)
            raise
        self._dedup.done(request.messageId)
        self._metrics.published.labels(reply.status.value).inc()
        await message.ack()

    async def _answer(
        self, message: AbstractIncomingMessage, request: AgentRequest, raw: dict[str, Any]
    ) -> AgentReply | None:
        began = time.monotonic()
        try:
            result = await asyncio.wait_for(self._engine.run(request), self._time_limit)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            return await self._on_failure(message, request, raw, exc, began)
        elapsed = time.monotonic() - began
        self._metrics.processing.labels(request.taskType.value).observe(elapsed)
        for tool in result.tools_used:
            self._metrics.tools.labels(tool).inc()
        answer = AnswerSummary(
            text=result.text,
            tools_used=list(result.tools_used),
            reasoning_steps=list(result.reasoning_steps),
            tokens_used=int(result.tokens_used),
            tool_failed=bool(result.tool_failed),
        )
        return success_reply(request, answer, elapsed)

    async def _on_failure(
        self,
        message: AbstractIncomingMessage,
        request: AgentRequest,
        raw: dict[str, Any],
        exc: Exception,
        began: float,
    ) -> AgentReply | None:
        failure = classify(exc)
        limit = min(request.metadata.maxRetries, self._max_retries)
        outcome = outcome_for(failure, request.metadata.retryCount, limit)
        self._metrics.failures.labels(failure.kind.value, failure.code).inc()
        self._log_failure(request, failure, outcome)
        if outcome is Outcome.RETRY:
            level = request.metadata.retryCount + 1
            await self._publisher.publish_retry(request, raw, level, failure.code)
            self._metrics.retries.labels(str(level)).inc()
            await message.ack()
            return None
        if failure.retryable:
            failure = Failure(
                failure.kind,
                failure.code,
                f"{failure.message} (gave up after {request.metadata.retryCount} retries)",
            )
        return error_reply(
            request,
            failure,
            time.monotonic() - began,
            exc=exc,
            include_stack=self._include_stack,
        )

    def _log_failure(self, request: AgentRequest, failure: Failure, outcome: Outcome) -> None:
        log.warning(
            "agent failed",
            extra={
                "message_id": request.messageId,
                "task_type": request.taskType.value,
                "failure_kind": failure.kind.value,
                "error_code": failure.code,
                "outcome": outcome.value,
                "retry_count": request.metadata.retryCount,
            },
        )

    async def _dead_letter(self, message: AbstractIncomingMessage, exc: ContractError) -> None:
        failure = classify(exc)
        self._metrics.failures.labels(FailureKind.INVALID_MESSAGE.value, failure.code).inc()
        self._metrics.dead_lettered.inc()
        log.warning(
            "invalid request rejected to the dead-letter exchange",
            extra={
                "amqp_message_id": message.message_id,
                "problems": [str(p) for p in exc.problems][:10],
                "body_bytes": len(message.body),
            },
        )
        await message.reject(requeue=False)
