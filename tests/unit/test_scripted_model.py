"""The scripted model on its own (requests built by hand) and the model configuration."""

from __future__ import annotations

import asyncio
import random
import statistics
from typing import Any

import pytest
from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.adk.tools.base_tool import BaseTool
from google.genai import types

from agent_service.agent import (
    Latency,
    ModelConfigError,
    ScriptedModel,
    ScriptedModelOptions,
    build_model,
    parse_failure_rate,
    parse_latency,
    scripted_model,
    scripted_options,
)
from agent_service.agent.prompts import build_instruction, context_block
from agent_service.agent.scripted_model import parse_markers
from agent_service.contract.messages import TaskType
from agent_service.errors import PermanentAgentError, TransientAgentError
from harness.waiting import wait_until

pytestmark = pytest.mark.unit

ALL_TOOLS = ("search_catalogue", "get_order_status", "list_free_slots", "book_appointment")


def user(text: str, name: str | None = "Amos Okello") -> types.Content:
    """A customer's message as the engine sends it: the quoted details block, then the text."""
    details = context_block(name, None)
    parts = [types.Part(text=details)] if details else []
    return types.Content(role="user", parts=[*parts, types.Part(text=text)])


def tool_round(name: str, args: dict[str, Any], response: dict[str, Any]) -> list[types.Content]:
    call = types.Part(function_call=types.FunctionCall(name=name, args=args))
    result = types.Part(function_response=types.FunctionResponse(name=name, response=response))
    return [types.Content(role="model", parts=[call]), types.Content(role="user", parts=[result])]


def make_request(
    *contents: types.Content, task: str = "conversation", tools: tuple[str, ...] = ALL_TOOLS
) -> LlmRequest:
    instruction = build_instruction(TaskType(task))
    request = LlmRequest(
        contents=list(contents),
        config=types.GenerateContentConfig(system_instruction=instruction),
    )
    # Only the names matter to the scripted model.
    names = (*tools, "search_faq")
    request.tools_dict = {name: BaseTool(name=name, description=name) for name in names}
    return request


async def ask(model: ScriptedModel, request: LlmRequest) -> LlmResponse:
    responses = [r async for r in model.generate_content_async(request)]
    assert len(responses) == 1
    return responses[0]


def call_of(response: LlmResponse) -> tuple[str | None, dict[str, Any]]:
    assert response.content is not None and response.content.parts
    call = response.content.parts[0].function_call
    assert call is not None, response.content.parts[0].text
    return call.name, dict(call.args or {})


def text_of(response: LlmResponse) -> str:
    assert response.content is not None and response.content.parts
    return response.content.parts[0].text or ""


class _RecordingAsyncio:
    """The asyncio module as the scripted model sees it, with a ``sleep`` that records."""

    def __init__(self, slept: list[float]) -> None:
        self._slept = slept

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)

    async def sleep(self, delay: float) -> None:
        self._slept.append(delay)
        await asyncio.sleep(delay)


@pytest.fixture
def model_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every delay the scripted model sleeps, in order. Timing belongs in the benchmarks; here
    the model's waits are read as values. It calls asyncio.sleep and has no clock to inject,
    so its module's view of asyncio is swapped for one whose sleep records (and still sleeps)."""
    slept: list[float] = []
    monkeypatch.setattr(scripted_model, "asyncio", _RecordingAsyncio(slept))
    return slept


@pytest.mark.parametrize(
    ("task", "text", "tool", "args"),
    [
        ("order", "where is my order #1042?", "get_order_status", {"order_id": "1042"}),
        ("order", "1042'; DROP TABLE orders;--", "get_order_status", {"order_id": "1042"}),
        ("order", "can I get a refund?", "search_faq", {"query": "can I get a refund?"}),
        ("appointment", "any free slots on 2030-01-02?", "list_free_slots", {"date": "2030-01-02"}),
        ("appointment", "please book slot 7", "book_appointment", {"slot_id": 7}),
        ("appointment", "hello", "list_free_slots", {"date": ""}),
        ("search", "argan shampoo", "search_catalogue", {"query": "argan shampoo"}),
        ("search", "what are your opening hours", "search_faq", {}),
        ("conversation", "status of order 1043 please", "get_order_status", {"order_id": "1043"}),
        ("conversation", "I want an appointment tomorrow", "list_free_slots", {"date": "tomorrow"}),
        ("conversation", "price of the hair mask", "search_catalogue", {}),
        ("conversation", "Do you accept mobile money?", "search_faq", {}),
    ],
)
async def test_first_step_calls_the_tool_the_words_ask_for(
    task: str, text: str, tool: str, args: dict[str, Any]
) -> None:
    name, got = call_of(await ask(ScriptedModel(), make_request(user(text), task=task)))
    assert name == tool
    assert got.items() >= args.items()


async def test_a_tool_the_agent_lacks_is_never_called() -> None:
    request = make_request(user("price of argan shampoo?"), tools=("get_order_status",))
    name, _ = call_of(await ask(ScriptedModel(), request))
    assert name == "search_faq"  # the question fallback; search_catalogue is not offered


async def test_chit_chat_is_answered_directly_and_quotes_history() -> None:
    request = make_request(
        user("I love your salon"),
        types.Content(role="model", parts=[types.Part(text="Thanks!")]),
        user("hi again"),
    )
    text = text_of(await ask(ScriptedModel(), request))
    assert text.startswith("Hi Amos!")
    assert 'Earlier you said: "I love your salon"' in text


async def test_order_task_without_number_asks_for_it() -> None:
    text = text_of(await ask(ScriptedModel(), make_request(user("my parcel?!"), task="order")))
    assert "order number" in text


async def test_answer_is_built_from_the_tool_result() -> None:
    result = {
        "status": "ok",
        "found": True,
        "order": {
            "id": 1042,
            "status": "shipped",
            "eta": "2 days",
            "placed_on": "x",
            "items": [{"name": "Mask", "quantity": 1}],
        },
    }
    request = make_request(
        user("order 1042?"),
        *tool_round("get_order_status", {"order_id": "1042"}, result),
        task="order",
    )
    response = await ask(ScriptedModel(), request)
    assert (
        text_of(response) == "Order #1042 is shipped. Expected delivery: 2 days. Items: 1 x Mask."
    )
    usage = response.usage_metadata
    assert usage is not None and usage.total_token_count
    assert usage.total_token_count == (usage.prompt_token_count or 0) + (
        usage.candidates_token_count or 0
    )


async def test_booking_request_lists_then_books_the_first_free_slot() -> None:
    slots = {
        "status": "ok",
        "date": "any",
        "slots": [{"slot_id": 4, "date": "d", "time": "t", "service": "s"}],
    }
    request = make_request(
        user("book me in"), *tool_round("list_free_slots", {"date": ""}, slots), task="appointment"
    )
    name, args = call_of(await ask(ScriptedModel(), request))
    assert (name, args) == ("book_appointment", {"slot_id": 4})


async def test_a_failed_tool_result_still_gets_an_apology() -> None:
    failed = {"status": "error", "error": "tool_failed", "message": "down"}
    request = make_request(user("argan shampoo"), *tool_round("search_catalogue", {}, failed))
    assert "try again" in text_of(await ask(ScriptedModel(), request))


def test_markers_are_parsed_and_removed() -> None:
    markers, text = parse_markers("hi [[fail:transient:3]] there [[slow:0.25]][[tool-error]]")
    assert (markers.transient_count, markers.slow, markers.tool_error) == (3, 0.25, True)
    assert not markers.transient and not markers.permanent
    assert text == "hi there"
    assert parse_markers("[[fail:transient]] [[fail:permanent]]")[0].permanent


async def test_transient_n_marker_fails_n_times_per_text_then_succeeds() -> None:
    model = ScriptedModel()
    marked, other = user("hello [[fail:transient:2]]"), user("bye [[fail:transient:1]]")
    for _ in range(2):
        with pytest.raises(TransientAgentError) as caught:
            await ask(model, make_request(marked))
        assert caught.value.code == "MODEL_UNAVAILABLE"
    with pytest.raises(TransientAgentError):
        await ask(model, make_request(other))  # its own counter
    assert text_of(await ask(model, make_request(marked))).startswith("Hi")


async def test_always_failing_markers() -> None:
    model = ScriptedModel()
    for _ in range(3):
        with pytest.raises(TransientAgentError):
            await ask(model, make_request(user("[[fail:transient]] hi")))
    with pytest.raises(PermanentAgentError) as caught:
        await ask(model, make_request(user("[[fail:permanent]] hi")))
    assert not caught.value.retryable


async def test_markers_can_be_disabled() -> None:
    model = ScriptedModel(options=ScriptedModelOptions(markers=False))
    assert "[[fail:permanent]]" in text_of(
        await ask(model, make_request(user("[[fail:permanent]]")))
    )


async def test_slow_marker_sleeps_once_per_run_before_its_first_answer(
    model_sleeps: list[float],
) -> None:
    model = ScriptedModel(options=ScriptedModelOptions(latency=Latency.fixed(0.01)))
    await ask(model, make_request(user("hi [[slow:0.05]]")))
    assert model_sleeps == [pytest.approx(0.06)], "the marker adds to the model's latency"
    # The run's next step (after a tool result) answers without the marker's sleep.
    result = {"status": "ok", "results": []}
    later = make_request(
        user("argan shampoo [[slow:0.05]]"), *tool_round("search_catalogue", {}, result)
    )
    await ask(model, later)
    assert model_sleeps == [pytest.approx(0.06), 0.01]


async def test_a_slow_call_can_be_cancelled(model_sleeps: list[float]) -> None:
    call = asyncio.create_task(ask(ScriptedModel(), make_request(user("hi [[slow:30]]"))))
    await wait_until(lambda: model_sleeps == [30.0], timeout=5, what="the model sleeping")
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert call.cancelled(), "the sleep gives way to the cancellation"


async def test_tool_error_marker_calls_a_tool_that_does_not_exist() -> None:
    name, _ = call_of(
        await ask(ScriptedModel(), make_request(user("order 1042 [[tool-error]]"), task="order"))
    )
    assert name == "get_order_status__fault"
    name, _ = call_of(await ask(ScriptedModel(), make_request(user("hi [[tool-error]]"))))
    assert name == "search_faq__fault"


async def test_failure_rate_one_always_fails_and_half_is_seeded() -> None:
    always = ScriptedModel(options=ScriptedModelOptions(failure_rate=1.0))
    with pytest.raises(TransientAgentError):
        await ask(always, make_request(user("hi")))

    async def outcomes(seed: int) -> list[bool]:
        model = ScriptedModel(options=ScriptedModelOptions(failure_rate=0.5, seed=seed))
        results = []
        for _ in range(40):
            try:
                await ask(model, make_request(user("hi")))
                results.append(True)
            except TransientAgentError:
                results.append(False)
        return results

    first = await outcomes(7)
    assert first == await outcomes(7)
    assert 5 < sum(first) < 35


async def test_fixed_latency_delays_each_call(model_sleeps: list[float]) -> None:
    model = ScriptedModel(options=ScriptedModelOptions(latency=Latency.fixed(0.03)))
    await ask(model, make_request(user("hi")))
    await ask(model, make_request(user("hello again")))
    assert model_sleeps == [0.03, 0.03]


async def test_no_latency_no_sleep(model_sleeps: list[float]) -> None:
    await ask(ScriptedModel(), make_request(user("hi")))
    assert model_sleeps == []


def test_latency_distributions() -> None:
    rng = random.Random(1)
    assert Latency.fixed(0.5).sample(rng) == 0.5
    uniform = [Latency.uniform(0.5, 1.5).sample(rng) for _ in range(2000)]
    assert min(uniform) >= 0.5 and max(uniform) <= 1.5
    lognormal = [Latency.lognormal(1.0, 0.3).sample(rng) for _ in range(4000)]
    assert statistics.fmean(lognormal) == pytest.approx(1.0, rel=0.05)
    assert min(lognormal) > 0
    assert Latency.lognormal(0.0, 0.3).sample(rng) == 0.0


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("0", Latency.fixed(0.0)),
        (" 1.0 ", Latency.fixed(1.0)),
        ("uniform:0.5:1.5", Latency("uniform", 1.0, 0.5)),
        ("lognormal:1.0:0.3", Latency("lognormal", 1.0, 0.3)),
        ("LOGNORMAL:2:0", Latency("lognormal", 2.0, 0.0)),
    ],
)
def test_parse_latency(spec: str, expected: Latency) -> None:
    assert parse_latency(spec) == expected


@pytest.mark.parametrize(
    "spec", ["", "-1", "fast", "uniform:2:1", "uniform:1", "lognormal:1:2:3", "gauss:1:1", "nan"]
)
def test_parse_latency_rejects_nonsense(spec: str) -> None:
    with pytest.raises(ModelConfigError):
        parse_latency(spec)


def test_parse_failure_rate_and_options() -> None:
    assert parse_failure_rate("0.25") == 0.25
    for bad in ("1.5", "-0.1", "half", "inf"):
        with pytest.raises(ModelConfigError):
            parse_failure_rate(bad)
    options = scripted_options("uniform:0:0.2", "0.1", seed=3)
    assert options == ScriptedModelOptions(Latency.uniform(0, 0.2), 0.1, seed=3)


def test_build_model_scripted_and_unknown() -> None:
    options = ScriptedModelOptions(failure_rate=0.5)
    model = build_model(" Scripted ", options)
    assert isinstance(model, ScriptedModel) and model.options is options
    with pytest.raises(ModelConfigError, match="unknown model"):
        build_model("gpt-9")


def test_gemini_without_credentials_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_GENAI_USE_VERTEXAI"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ModelConfigError, match="GOOGLE_API_KEY"):
        build_model("gemini-2.5-flash")
    assert isinstance(ModelConfigError("x"), ValueError)


@pytest.mark.parametrize(
    "environ",
    [
        {"GOOGLE_API_KEY": "k"},
        {"GEMINI_API_KEY": "k"},
        {"GOOGLE_GENAI_USE_VERTEXAI": "true", "GOOGLE_CLOUD_PROJECT": "p"},
    ],
)
def test_gemini_with_credentials_is_the_model_name(environ: dict[str, str]) -> None:
    assert build_model("gemini-2.5-flash", environ=environ) == "gemini-2.5-flash"


def test_vertex_without_project_is_rejected() -> None:
    with pytest.raises(ModelConfigError, match="GOOGLE_CLOUD_PROJECT"):
        build_model("gemini-2.5-flash", environ={"GOOGLE_GENAI_USE_VERTEXAI": "1"})
