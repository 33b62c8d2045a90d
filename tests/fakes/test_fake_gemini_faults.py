"""FakeGemini's faults as real clients see them, and google-genai's own retries, pinned.

The retry pins matter: the service retries transient model errors itself, through RabbitMQ wait
queues, so a google-genai upgrade that starts retrying by default would multiply the attempts.
docs/gemini-fake.md has the measured figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable

import aiohttp
import pytest
from google import genai
from google.adk.models import Gemini
from google.genai import errors, types

from agent_service.agent import Latency
from agent_service.errors import PermanentAgentError
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
from tests.fakes.gemini_support import (
    KEY,
    ask,
    endpoint,
    gemini_engine,
    genai_client,
    post,
    rest_body,
)

pytestmark = pytest.mark.unit


class FakeClock:
    """Epoch seconds that only move when the test says so."""

    def __init__(self) -> None:
        self.now = 1_764_290_000.0

    def __call__(self) -> float:
        return self.now


# -- error statuses --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "error", "code", "status"),
    [
        (ErrorResponse(500), errors.ServerError, 500, "INTERNAL"),
        (ErrorResponse(503), errors.ServerError, 503, "UNAVAILABLE"),
        (ErrorResponse(400), errors.ClientError, 400, "INVALID_ARGUMENT"),
        (ErrorResponse(403), errors.ClientError, 403, "PERMISSION_DENIED"),
        (RateLimited(), errors.ClientError, 429, "RESOURCE_EXHAUSTED"),
    ],
)
async def test_an_error_status_raises_the_matching_genai_error(
    gemini: FakeGemini,
    client: genai.Client,
    fault: Fault,
    error: type[errors.APIError],
    code: int,
    status: str,
) -> None:
    gemini.inject(fault, times=1)
    with pytest.raises(error) as caught:
        await ask(client, "hello")
    assert (caught.value.code, caught.value.status) == (code, status)
    assert (await ask(client, "hello")).text  # times=1: the next call is answered
    assert [(c.status, c.faults) for c in gemini.requests] == [(code, (fault.name,)), (200, ())]


async def test_rate_limited_carries_retry_info(gemini: FakeGemini, client: genai.Client) -> None:
    gemini.inject(RateLimited(retry_delay=2))
    with pytest.raises(errors.ClientError) as caught:
        await ask(client, "hello")
    details = caught.value.details["error"]["details"]
    retry = [d for d in details if d["@type"] == "type.googleapis.com/google.rpc.RetryInfo"]
    assert retry == [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "2s"}]


async def test_transport_faults_strike_before_the_key_is_checked(gemini: FakeGemini) -> None:
    gemini.inject(ErrorResponse(503), times=1)
    async with genai_client(gemini, key="wrong") as wrong:
        with pytest.raises(errors.ServerError):
            await ask(wrong, "hello")


async def test_answer_faults_only_count_valid_requests(
    gemini: FakeGemini, client: genai.Client
) -> None:
    gemini.inject(EmptyCandidates(), times=1)
    async with genai_client(gemini, key="wrong") as wrong:
        with pytest.raises(errors.ClientError):
            await ask(wrong, "hello")
    assert (await ask(client, "hello")).candidates == []
    assert (await ask(client, "hello")).text
    assert [c.answer for c in gemini.requests] == [None, "empty", "text"]


# -- broken transport ----------------------------------------------------------------------------


async def test_a_hung_response_ends_in_the_clients_timeout(gemini: FakeGemini) -> None:
    gemini.inject(Hang(), times=1)
    async with genai_client(gemini, timeout_ms=200) as impatient:
        with pytest.raises(TimeoutError):
            await ask(impatient, "hello")
        assert (await ask(impatient, "hello")).text
    assert [(c.status, c.error) for c in gemini.requests] == [(None, "hang"), (200, None)]


async def test_stop_releases_a_hung_request() -> None:
    # Raw aiohttp: google-genai would wait 1-10 s to retry the disconnect (see the pins below).
    fake = FakeGemini(api_key=KEY)
    await fake.start()
    fake.inject(Hang())
    async with aiohttp.ClientSession() as http:
        pending = asyncio.ensure_future(post(http, endpoint(fake), rest_body()))
        await fake.wait_for_requests(1)
        async with asyncio.timeout(5):  # a guard against hanging, not a measurement
            await fake.stop()
        with pytest.raises(aiohttp.ClientError):
            await pending


async def test_a_connection_dropped_mid_response_is_a_payload_error(
    gemini: FakeGemini, client: genai.Client
) -> None:
    gemini.inject(DropMidResponse(sent_bytes=30), times=1)
    with pytest.raises(aiohttp.ClientPayloadError, match="received 30 of"):
        await ask(client, "hello")
    [call] = gemini.requests
    assert (call.status, call.error) == (200, "drop_mid_response")


async def test_a_connection_dropped_before_any_response_is_a_disconnect(
    gemini: FakeGemini,
) -> None:
    # Through google-genai this waits 1-10 s for its hidden retry (pinned below, marked slow).
    gemini.inject(DropConnection(), times=1)
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await post(http, endpoint(gemini), rest_body())
    assert gemini.requests[0].status is None


async def test_malformed_json_fails_to_decode(gemini: FakeGemini, client: genai.Client) -> None:
    gemini.inject(MalformedJson(), times=1)
    with pytest.raises(json.JSONDecodeError):
        await ask(client, "hello")


async def test_latency_delays_and_stacks_with_an_error(
    gemini: FakeGemini, client: genai.Client
) -> None:
    gemini.inject(SlowResponse(Latency.lognormal(0.02, 0.5)), times=2)
    gemini.inject(ErrorResponse(503), times=1)
    with pytest.raises(errors.ServerError):
        await ask(client, "hello")
    assert (await ask(client, "hello")).text
    assert [c.faults for c in gemini.requests] == [("latency", "error"), ("latency",)]


# -- misbehaving model ---------------------------------------------------------------------------


async def test_empty_candidates(gemini: FakeGemini, client: genai.Client) -> None:
    gemini.inject(EmptyCandidates())
    response = await ask(client, "hello")
    assert (response.candidates, response.text, response.prompt_feedback) == ([], None, None)


@pytest.mark.parametrize("reason", ["SAFETY", "MAX_TOKENS", "RECITATION"])
async def test_finish_reason_without_text(
    gemini: FakeGemini, client: genai.Client, reason: str
) -> None:
    gemini.inject(FinishEarly(reason))
    [candidate] = (await ask(client, "hello")).candidates or []
    assert candidate.finish_reason == types.FinishReason(reason)
    assert candidate.content is None
    blocked = [r for r in candidate.safety_ratings or [] if r.blocked]
    assert len(blocked) == (reason == "SAFETY")


async def test_max_tokens_with_partial_text(gemini: FakeGemini, client: genai.Client) -> None:
    whole = (await ask(client, "hello")).text or ""
    gemini.inject(FinishEarly("MAX_TOKENS", keep_text=True))
    response = await ask(client, "hello")
    assert response.text and whole.startswith(response.text) and response.text != whole
    assert gemini.requests[-1].answer == "finish:MAX_TOKENS"


async def test_a_blocked_prompt_has_feedback_and_no_candidates(
    gemini: FakeGemini, client: genai.Client
) -> None:
    gemini.inject(PromptBlocked("SAFETY"))
    response = await ask(client, "hello")
    assert response.candidates is None
    assert response.prompt_feedback is not None
    assert response.prompt_feedback.block_reason == types.BlockedReason.SAFETY


async def test_a_call_to_an_undeclared_tool(gemini: FakeGemini, client: genai.Client) -> None:
    gemini.inject(UnknownTool())
    [call] = (await ask(client, "When are you open?")).function_calls or []
    assert call.name == "search_faq__fault"
    assert call.name not in gemini.requests[0].tools


async def test_a_call_with_arguments_of_the_wrong_types(
    gemini: FakeGemini, client: genai.Client
) -> None:
    gemini.inject(WrongArgumentTypes())
    [faq] = (await ask(client, "When are you open?")).function_calls or []
    assert (faq.name, faq.args) == ("search_faq", {"query": 12345})
    [slots] = (await ask(client, "hello")).function_calls or []  # no call planned: first tool
    assert (slots.name, slots.args) == ("list_free_slots", {"date": 12345})


# -- when a rule fires -------------------------------------------------------------------------


async def test_ratio_is_a_seeded_share_of_calls(client: genai.Client) -> None:
    outcomes: list[list[int | None]] = []
    for _ in range(2):
        async with FakeGemini(api_key=KEY, seed=7) as fake, genai_client(fake) as c:
            fake.inject(ErrorResponse(503), ratio=0.5)
            for _ in range(12):
                with contextlib.suppress(errors.ServerError):
                    await ask(c, "hello")
            outcomes.append([r.status for r in fake.requests])
    assert outcomes[0] == outcomes[1]
    assert 0 < outcomes[0].count(503) < 12


async def test_duration_is_a_window_on_the_fakes_clock() -> None:
    clock = FakeClock()
    async with FakeGemini(api_key=KEY, clock=clock) as fake, genai_client(fake) as c:
        fake.inject(ErrorResponse(503), duration=30)
        with pytest.raises(errors.ServerError):
            await ask(c, "hello")
        clock.now += 30
        assert (await ask(c, "hello")).text


# -- what the service's AgentEngine sees -----------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "check"),
    [
        (ErrorResponse(503), lambda e: isinstance(e, errors.ServerError) and e.code == 503),
        (RateLimited(), lambda e: isinstance(e, errors.ClientError) and e.code == 429),
        (
            FinishEarly("SAFETY"),
            lambda e: isinstance(e, PermanentAgentError) and e.code == "MODEL_BLOCKED",
        ),
        (
            PromptBlocked(),
            lambda e: isinstance(e, PermanentAgentError) and e.code == "MODEL_BLOCKED",
        ),
        (
            EmptyCandidates(),
            lambda e: isinstance(e, PermanentAgentError) and e.code == "EMPTY_ANSWER",
        ),
        (DropMidResponse(), lambda e: isinstance(e, aiohttp.ClientPayloadError)),
        (MalformedJson(), lambda e: isinstance(e, json.JSONDecodeError)),
    ],
)
async def test_the_agent_engine_raises_on_a_failed_model_call(
    gemini: FakeGemini,
    monkeypatch: pytest.MonkeyPatch,
    fault: Fault,
    check: Callable[[BaseException], bool],
) -> None:
    gemini.inject(fault)
    async with gemini_engine(monkeypatch, gemini) as engine:
        with pytest.raises(Exception) as caught:
            await engine.run(agent_request("conversation", "What are your opening hours?"))
    assert check(caught.value), repr(caught.value)


@pytest.mark.parametrize("fault", [UnknownTool(), WrongArgumentTypes()])
async def test_the_agent_engine_answers_after_a_bad_tool_call(
    gemini: FakeGemini, monkeypatch: pytest.MonkeyPatch, fault: Fault
) -> None:
    gemini.inject(fault, times=1)
    async with gemini_engine(monkeypatch, gemini) as engine:
        result = await engine.run(agent_request("conversation", "What are your opening hours?"))
    assert result.tool_failed
    assert result.text
    assert len(gemini.requests) == 2


# -- google-genai's own retries, pinned ------------------------------------------------------


def test_adk_gemini_sets_no_retry_options() -> None:
    # With retry_options None, google-genai builds tenacity.stop_after_attempt(1).
    assert Gemini(model="gemini-2.5-flash").retry_options is None


@pytest.mark.parametrize("fault", [ErrorResponse(503), RateLimited(), ErrorResponse(500)])
async def test_adk_makes_one_attempt_per_model_call_on_errors(
    gemini: FakeGemini, monkeypatch: pytest.MonkeyPatch, fault: Fault
) -> None:
    gemini.inject(fault)
    async with gemini_engine(monkeypatch, gemini) as engine:
        with pytest.raises(errors.APIError):
            await engine.run(agent_request("conversation", "hello"))
    assert len(gemini.requests) == 1


@pytest.mark.parametrize(
    ("fault", "attempts"),
    [(ErrorResponse(503), 5), (RateLimited(), 5), (ErrorResponse(400), 1)],
)
async def test_http_retry_options_default_to_five_attempts_on_transient_codes(
    gemini: FakeGemini, fault: Fault, attempts: int
) -> None:
    # Only the delays are shortened; the attempts and the retried codes are the defaults.
    retry = types.HttpRetryOptions(initial_delay=0.001, max_delay=0.001, jitter=0)
    gemini.inject(fault)
    async with genai_client(gemini, retry=retry) as retrying:
        with pytest.raises(errors.APIError):
            await ask(retrying, "hello")
    assert len(gemini.requests) == attempts


@pytest.mark.slow
async def test_genai_retries_a_dropped_connection_once_by_itself(
    gemini: FakeGemini, client: genai.Client
) -> None:
    # Without retry options google-genai's aiohttp path still sleeps 1-10 s and tries once more.
    gemini.inject(DropConnection())
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await ask(client, "hello")
    assert len(gemini.requests) == 2
