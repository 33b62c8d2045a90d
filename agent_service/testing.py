"""In-memory fakes of the service's seams, to test the whole pipeline with no broker and no model.

    engine = FakeEngine()
    outlet, sleep = MemoryOutlet(), FakeSleep()
    pipeline = MemoryPipeline(engine, outlet=outlet, sleep=sleep)
    delivery = await pipeline.deliver(request_bytes)
    assert delivery.acked and outlet.replies

``MemoryPipeline`` wires the real ``RequestHandler`` and ``Settler`` exactly as the service
does, and runs deliveries through the real ``transport.settle.process``; only the engine, the
broker side and the clock are fakes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from agent_service.contract.messages import AgentReply, AgentRequest
from agent_service.observability.metrics import ServiceMetrics
from agent_service.pipeline.decisions import Retry
from agent_service.pipeline.dedup import Deduplicator
from agent_service.pipeline.deliveries import DeliveryLog, MemoryDeliveryLog
from agent_service.pipeline.engine import AgentAnswer
from agent_service.pipeline.handler import Incoming, Limits, RequestHandler
from agent_service.pipeline.request_state import MemoryRequestStates, RequestStates
from agent_service.transport.settle import Backoff, Properties, Settler, Unroutable, process

Behaviour = Callable[[AgentRequest], Any]


class FakeEngine:
    """Answers every request with ``answer`` unless ``behaviour`` says otherwise: a callable
    of the request that returns an AgentAnswer, raises, or returns an awaitable to await."""

    tool_names = frozenset({"search_faq", "get_order_status"})

    def __init__(self, behaviour: Behaviour | None = None) -> None:
        self.behaviour = behaviour
        self.calls: list[AgentRequest] = []

    async def run(self, request: AgentRequest) -> AgentAnswer:
        self.calls.append(request)
        if self.behaviour is None:
            return AgentAnswer(f"answer to {request.message.text}", ("search_faq",), ("step",))
        result = self.behaviour(request)
        if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
            result = await result
        assert isinstance(result, AgentAnswer), f"behaviour returned {result!r}"
        return result


@dataclass
class DeadLetterCopy:
    body: bytes
    properties: Properties
    headers: Mapping[str, str]


@dataclass
class MemoryOutlet:
    """Records what was published. ``missing`` holds destinations that return every publish
    (a deleted queue); ``fail_next`` makes the next publishes raise it (a broken link)."""

    replies: list[AgentReply] = field(default_factory=list)
    retries: list[Retry] = field(default_factory=list)
    dead_letters: list[DeadLetterCopy] = field(default_factory=list)
    missing: set[str] = field(default_factory=set)
    fail_next: list[BaseException] = field(default_factory=list)
    reply_queue: str = "wb_queue"
    dead_letter_exchange: str = "dlx_agent"

    def _check(self, destination: str) -> None:
        if self.fail_next:
            raise self.fail_next.pop(0)
        if destination in self.missing:
            raise Unroutable(destination)

    async def publish_reply(self, reply: AgentReply) -> None:
        self._check(self.reply_queue)
        self.replies.append(reply)

    async def publish_retry(self, retry: Retry) -> None:
        self._check(f"ag_queue.retry.{retry.level}")
        self.retries.append(retry)

    async def publish_dead_letter(
        self, body: bytes, properties: Properties, headers: Mapping[str, str]
    ) -> None:
        self._check(self.dead_letter_exchange)
        self.dead_letters.append(DeadLetterCopy(body, properties, dict(headers)))


@dataclass
class MemoryDelivery:
    """A delivery that records how it was settled."""

    body: bytes
    redelivered: bool = False
    properties: Properties = field(default_factory=Properties)
    acked: bool = False
    handed_back: bool = False

    @property
    def settled(self) -> bool:
        return self.acked or self.handed_back

    async def ack(self) -> None:
        assert not self.settled, "settled twice"
        self.acked = True

    async def hand_back(self) -> None:
        assert not self.settled, "settled twice"
        self.handed_back = True


@dataclass
class FakeSleep:
    """Records the pauses asked for and returns at once."""

    pauses: list[float] = field(default_factory=list)

    async def __call__(self, seconds: float) -> None:
        self.pauses.append(seconds)


class MemoryPipeline:
    """The service's pipeline with in-memory seams; ``deliver`` runs one delivery to its end."""

    def __init__(
        self,
        engine: FakeEngine,
        *,
        outlet: MemoryOutlet | None = None,
        sleep: FakeSleep | None = None,
        limits: Limits | None = None,
        deliveries: DeliveryLog | None = None,
        clock: Callable[[], float] | None = None,
        states: RequestStates | None = None,
    ) -> None:
        self.engine = engine
        self.outlet = outlet or MemoryOutlet()
        self.sleep = sleep or FakeSleep()
        self.metrics = ServiceMetrics()
        self.deliveries = deliveries or MemoryDeliveryLog()
        self.dedup = Deduplicator(clock=clock) if clock else Deduplicator()
        self.states = states or MemoryRequestStates(self.dedup)
        self.handler = RequestHandler(
            engine, self.states, self.deliveries, self.metrics, limits or Limits()
        )
        self.settler = Settler(self.outlet, self.metrics, sleep=self.sleep, backoff=Backoff())
        self.stopping = False

    async def deliver(self, body: bytes, *, redelivered: bool = False) -> MemoryDelivery:
        delivery = MemoryDelivery(body, redelivered)
        await process(
            self.handler,
            self.settler,
            Incoming(body, redelivered),
            delivery,
            stopping=lambda: self.stopping,
        )
        return delivery

    def counter(self, name: str, **labels: str) -> float:
        """A sample of the service's metrics by its exposed name (``agent_..._total``)."""
        value = self.metrics.registry.get_sample_value(name, labels or None)
        return value or 0.0
