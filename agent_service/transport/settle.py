"""Carrying out a decision: the one place that acks or hands a delivery back (DESIGN.md 6).

Every decision ends the same way: publish what it names (mandatory, confirmed), and only
then ack. A publish that the broker returns because no queue takes it (wb_queue deleted, a
wrong name) is no success: the delivery is handed back after a pause that grows while the
destination stays missing, the service reports itself not ready, and the request is answered
once the queue exists again. This module speaks to the broker only through the two small
interfaces below, so it is tested with in-memory fakes and a fake sleep.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from agent_service.contract.amqp import DEAD_LETTER_DETAIL_HEADER, DEAD_LETTER_REASON_HEADER
from agent_service.contract.messages import AgentReply
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
from agent_service.pipeline.handler import Incoming

log = logging.getLogger(__name__)

_MAX_DETAIL_CHARS = 1000


class Unroutable(Exception):
    """The broker returned a mandatory publish: no queue is bound under that name."""

    def __init__(self, destination: str) -> None:
        super().__init__(f"no queue takes messages for {destination!r}")
        self.destination = destination


@dataclass(frozen=True)
class Properties:
    """The AMQP properties of a delivery that a dead-letter copy keeps."""

    message_id: str | None = None
    content_type: str | None = None
    correlation_id: str | None = None
    type: str | None = None
    timestamp: datetime | None = None
    headers: Mapping[str, Any] = field(default_factory=dict)


class Delivery(Protocol):
    """The delivery being settled."""

    @property
    def settled(self) -> bool:
        """True once ack or hand_back was sent."""
        ...

    @property
    def body(self) -> bytes: ...

    @property
    def properties(self) -> Properties: ...

    async def ack(self) -> None: ...

    async def hand_back(self) -> None:
        """nack with requeue: the broker delivers it again."""
        ...


class Outlet(Protocol):
    """Publishing with confirms; raises ``Unroutable`` when the broker returns the message."""

    async def publish_reply(self, reply: AgentReply) -> None: ...

    async def publish_retry(self, retry: Retry) -> None: ...

    async def publish_dead_letter(
        self, body: bytes, properties: Properties, headers: Mapping[str, str]
    ) -> None: ...


class Handler(Protocol):
    """``pipeline.handler.RequestHandler``, or a fake."""

    async def decide(self, incoming: Incoming) -> Decision: ...

    async def settled(self, decision: Decision, settlement: Settlement) -> None: ...


Sleep = Callable[[float], Awaitable[None]]


@dataclass
class Backoff:
    """The pause before handing back a delivery whose publish was returned, doubling while
    the destination stays missing, so a deleted queue does not make the service spin."""

    first: float = 0.5
    limit: float = 30.0
    _next: float = 0.0

    def pause(self) -> float:
        self._next = self.first if self._next == 0 else min(self.limit, self._next * 2)
        return self._next

    def reset(self) -> None:
        self._next = 0.0


class Settler:
    def __init__(
        self,
        outlet: Outlet,
        metrics: ServiceMetrics,
        *,
        sleep: Sleep = asyncio.sleep,
        backoff: Backoff | None = None,
        failure_pause: float = 0.5,
    ) -> None:
        self._outlet = outlet
        self._metrics = metrics
        self._sleep = sleep
        self._backoff = backoff or Backoff()
        self._failure_pause = failure_pause
        # Publishes failing one after another (a quorum queue without a leader nacks them for
        # the seconds of an election): the pause grows to 5 s, so a hand-back loop does not use
        # up the queue's x-delivery-limit, each hand-back being a delivery. Found by the
        # node-loss scenario: 10 of 150 requests were dead-lettered by the broker that way.
        self._failures = Backoff(first=failure_pause, limit=5.0)
        self.publishing = True
        """False from a returned publish until the next publish the broker takes."""

    async def settle(self, decision: Decision, delivery: Delivery) -> Settlement:
        if isinstance(decision, Duplicate):
            await self._ack(delivery)
            return Settlement(done=True)
        if isinstance(decision, HandBack):
            self._metrics.handed_back.inc()
            log.warning("handing the delivery back", extra={"reason": decision.reason})
            await self._sleep(self._failure_pause)
            await self._hand_back(delivery)
            return Settlement(done=False)
        try:
            await self._publish(decision, delivery)
        except Unroutable as exc:
            await self._returned(exc, delivery)
            return Settlement(done=False)
        except Exception as exc:
            # Typically the broker went away: hand the delivery back so it is tried again; if
            # its channel is gone the broker has requeued it already. The pause keeps a broken
            # link from spinning.
            self._metrics.handed_back.inc()
            pause = self._failures.pause()
            log.warning(
                "publish failed: handing the delivery back",
                extra={"error": repr(exc), "pause_seconds": pause},
            )
            await self._sleep(pause)
            await self._hand_back(delivery)
            return Settlement(done=False)
        self._published()
        self._count(decision)
        await self._ack(delivery)
        return Settlement(done=True)

    async def _publish(self, decision: Reply | Retry | DeadLetter, delivery: Delivery) -> None:
        if isinstance(decision, Reply):
            await self._outlet.publish_reply(decision.reply)
        elif isinstance(decision, Retry):
            await self._outlet.publish_retry(decision)
        else:
            headers = {
                DEAD_LETTER_REASON_HEADER: decision.code,
                DEAD_LETTER_DETAIL_HEADER: decision.detail[:_MAX_DETAIL_CHARS],
            }
            await self._outlet.publish_dead_letter(delivery.body, delivery.properties, headers)

    def _count(self, decision: Reply | Retry | DeadLetter) -> None:
        if isinstance(decision, Reply):
            self._metrics.published.labels(decision.reply.status.value).inc()
        elif isinstance(decision, Retry):
            self._metrics.retries.labels(str(decision.level)).inc()
        else:
            self._metrics.dead_lettered.labels(decision.code).inc()

    def _published(self) -> None:
        if not self.publishing:
            log.warning("publishing works again")
        self.publishing = True
        self._backoff.reset()
        self._failures.reset()

    async def _returned(self, exc: Unroutable, delivery: Delivery) -> None:
        self.publishing = False
        self._metrics.returned.labels(exc.destination).inc()
        self._metrics.handed_back.inc()
        pause = self._backoff.pause()
        log.error(
            "the broker returned a publish: no queue takes it; the request is kept and handed"
            " back until the queue exists again",
            extra={"destination": exc.destination, "pause_seconds": pause},
        )
        await self._sleep(pause)
        await self._hand_back(delivery)

    async def _ack(self, delivery: Delivery) -> None:
        try:
            await delivery.ack()
        except Exception as exc:
            # The channel is gone: the broker redelivers, and the deduplication (or the reply's
            # fixed id on the Node side) turns that into one answer.
            log.warning("ack failed", extra={"error": repr(exc)})

    async def hand_back(self, delivery: Delivery) -> None:
        """Hand the delivery back at once (no decision to carry out)."""
        self._metrics.handed_back.inc()
        await self._hand_back(delivery)

    async def _hand_back(self, delivery: Delivery) -> None:
        try:
            await delivery.hand_back()
        except Exception as exc:
            log.warning("hand-back failed; the broker requeues it", extra={"error": repr(exc)})


async def process(
    handler: Handler,
    settler: Settler,
    incoming: Incoming,
    delivery: Delivery,
    *,
    stopping: Callable[[], bool],
) -> None:
    """One delivery from start to end: decide, settle, tell the handler how it went.

    Cancelled while the service is stopping, the delivery stays unacked for the broker to give
    to someone else. Any other cancellation (found in a review: it left the delivery unacked for
    ever and the consumer slot gone) hands the delivery back and returns normally.
    """
    try:
        decision = await _decide(handler, incoming)
        settlement = Settlement(done=False)
        try:
            settlement = await settler.settle(decision, delivery)
        finally:
            # Also when cancelled half way: the handler must not hold the request for ever.
            await handler.settled(decision, settlement)
    except asyncio.CancelledError:
        if stopping():
            raise
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()  # not the service stopping: carry on, hand back, free the slot
        if not delivery.settled:
            log.warning("a delivery's task was cancelled: handing it back")
            await settler.hand_back(delivery)


async def _decide(handler: Handler, incoming: Incoming) -> Decision:
    try:
        return await handler.decide(incoming)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # a fault of the service itself, e.g. its state store
        log.exception("deciding on a delivery failed", extra={"error": repr(exc)})
        return HandBack(f"internal error: {type(exc).__name__}")
