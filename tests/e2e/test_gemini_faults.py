"""The production model path under the model's real failure modes, through the queues.

The agent service runs with ``AGENT_MODEL=gemini-2.5-flash``: ADK's Gemini model, google-genai
and HTTP, against FakeGemini on loopback. Each fault the fake can play ends in the outcome the
failure table names (docs/decisions.md, "The production model path"): transient ones retried
through the wait queues and finally answered, permanent ones an error reply with the fallback
text, a blocked or empty answer a clear error code.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aio_pika.abc import AbstractRobustConnection

from agent_service.agent.options import Latency
from agent_service.contract import FALLBACK_TEXT, AgentReply, ReplyStatus, TaskType
from agent_service.service import AgentService
from fakes.gemini import FakeGemini
from fakes.gemini_faults import (
    DropConnection,
    DropMidResponse,
    EmptyCandidates,
    ErrorResponse,
    Fault,
    FinishEarly,
    Hang,
    MalformedJson,
    PromptBlocked,
    RateLimited,
    SlowResponse,
    UnknownTool,
    WrongArgumentTypes,
)
from harness.message_factory import agent_request
from harness.pytest_plugin import ServiceFactory, TopologyFactory
from harness.queue_tools import ReplyCollector, publish_requests
from harness.waiting import wait_until

pytestmark = pytest.mark.e2e

KEY = "fake-gemini-key"


@pytest.fixture(scope="module")
async def gemini() -> AsyncIterator[FakeGemini]:
    async with FakeGemini(api_key=KEY) as fake:
        yield fake


@pytest.fixture
async def on_gemini(
    gemini: FakeGemini,
    monkeypatch: pytest.MonkeyPatch,
    make_topology: TopologyFactory,
    start_agent_service: ServiceFactory,
) -> AsyncIterator[tuple[FakeGemini, ServiceFactory, TopologyFactory]]:
    gemini.reset()
    monkeypatch.setenv("GOOGLE_API_KEY", KEY)
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", gemini.url)
    monkeypatch.delenv("GOOGLE_GENAI_USE_VERTEXAI", raising=False)
    yield gemini, start_agent_service, make_topology
    gemini.reset()


@dataclass(frozen=True)
class Case:
    fault: Fault
    times: int | None  # None: on every call
    status: ReplyStatus
    code: str | None = None  # error.code of an error reply
    retries: int = 0  # how many wait queues the request went through
    time_limit: float = 2.0  # MAX_PROCESSING_TIME
    text: str = "Order 1042?"
    task: TaskType = TaskType.ORDER


CASES = {
    "503 once": Case(ErrorResponse(503), 1, ReplyStatus.SUCCESS, retries=1),
    "500 once": Case(ErrorResponse(500), 1, ReplyStatus.SUCCESS, retries=1),
    "429 once": Case(RateLimited(retry_delay=0.1), 1, ReplyStatus.SUCCESS, retries=1),
    "503 always": Case(ErrorResponse(503), None, ReplyStatus.ERROR, "MODEL_UNAVAILABLE", 2),
    "400": Case(ErrorResponse(400), None, ReplyStatus.ERROR, "MODEL_REJECTED"),
    "403": Case(ErrorResponse(403), None, ReplyStatus.ERROR, "MODEL_REJECTED"),
    # google-genai tries a connection dropped before any answer once more by itself, after
    # 1 to 10 s (docs/gemini-fake.md): the service sees no failure at all.
    "dropped once": Case(DropConnection(), 1, ReplyStatus.SUCCESS, time_limit=15),
    "cut mid-answer": Case(DropMidResponse(), 1, ReplyStatus.SUCCESS, retries=1),
    "malformed JSON": Case(MalformedJson(), 1, ReplyStatus.SUCCESS, retries=1),
    "no answer in time": Case(Hang(), 1, ReplyStatus.SUCCESS, retries=1),
    "empty candidates": Case(EmptyCandidates(), None, ReplyStatus.ERROR, "EMPTY_ANSWER"),
    "SAFETY stop": Case(FinishEarly("SAFETY"), None, ReplyStatus.ERROR, "MODEL_BLOCKED"),
    "RECITATION stop": Case(FinishEarly("RECITATION"), None, ReplyStatus.ERROR, "MODEL_BLOCKED"),
    "MAX_TOKENS, no text": Case(FinishEarly("MAX_TOKENS"), None, ReplyStatus.ERROR, "EMPTY_ANSWER"),
    "MAX_TOKENS with text": Case(
        FinishEarly("MAX_TOKENS", keep_text=True),
        None,
        ReplyStatus.PARTIAL,
        text="Hello there",  # a greeting: answered without a tool call
        task=TaskType.CONVERSATION,
    ),
    "prompt blocked": Case(PromptBlocked("SAFETY"), None, ReplyStatus.ERROR, "MODEL_BLOCKED"),
    "unknown tool": Case(UnknownTool(), 1, ReplyStatus.PARTIAL),
    # search_catalogue(query=12345): the tool fails (get_order_status reads a number as one).
    "wrong argument types": Case(
        WrongArgumentTypes(), 1, ReplyStatus.PARTIAL, text="Any shampoo?", task=TaskType.SEARCH
    ),
    "slow": Case(SlowResponse(Latency.fixed(0.3)), None, ReplyStatus.SUCCESS),
}


async def _ask(
    connection: AbstractRobustConnection, service: AgentService, text: str, task: TaskType
) -> AgentReply:
    request = agent_request(task, text)
    async with ReplyCollector(connection, service.topology.webhook_queue) as collector:
        channel = await connection.channel(publisher_confirms=True)
        await publish_requests(channel, service.topology, [request])
        replies = await collector.wait_for([request.messageId], timeout=60)
    [reply] = replies[request.messageId]
    return reply


def _retries(service: AgentService) -> int:
    registry = service.metrics.registry
    return int(
        sum(
            s.value
            for m in registry.collect()
            for s in m.samples
            if s.name == "agent_retries_total"
        )
    )


@pytest.mark.parametrize("name", list(CASES))
async def test_each_model_fault_ends_in_its_outcome(
    name: str,
    on_gemini: tuple[FakeGemini, ServiceFactory, TopologyFactory],
    amqp_connection: AbstractRobustConnection,
) -> None:
    gemini, start, make_topology = on_gemini
    case = CASES[name]
    topology = await make_topology(agent_retry_delays_ms=(100, 100))
    service = await start(
        topology,
        agent_model="gemini-2.5-flash",
        max_processing_time=case.time_limit,
        max_retries=2,
    )
    gemini.inject(case.fault, times=case.times)
    reply = await _ask(amqp_connection, service, case.text, case.task)
    assert reply.status is case.status, (reply.error, reply.response.text)
    if case.code is not None:
        assert reply.error is not None and reply.error.code == case.code
        assert reply.response.text == FALLBACK_TEXT
    else:
        assert reply.response.text.strip() and reply.response.text != FALLBACK_TEXT
    assert _retries(service) == case.retries


async def test_the_time_limit_ends_a_hung_call_and_frees_its_connection(
    on_gemini: tuple[FakeGemini, ServiceFactory, TopologyFactory],
    amqp_connection: AbstractRobustConnection,
) -> None:
    gemini, start, make_topology = on_gemini
    topology = await make_topology(agent_retry_delays_ms=(100,))
    service = await start(
        topology, agent_model="gemini-2.5-flash", max_processing_time=1, max_retries=1
    )
    gemini.inject(Hang())
    reply = await _ask(amqp_connection, service, "Hello there", TaskType.CONVERSATION)
    assert reply.error is not None and reply.error.code == "PROCESSING_TIMEOUT"
    # Each cancelled call closed its connection: the fake holds no request any more.
    await wait_until(lambda: gemini.held == 0, timeout=10, what="no request held by the fake")
    assert len(gemini.requests) == 2  # the first try and its retry both reached the model
