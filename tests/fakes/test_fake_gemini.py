"""FakeGemini over real HTTP: google-genai and the service's AgentEngine as clients, the checks it
makes of each request, its request log and its control API. Faults: test_fake_gemini_faults.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from google import genai
from google.genai import errors, types

from agent_service.agent.engine import TOOLS_BY_TASK
from agent_service.contract.messages import TaskType
from fakes import FakeServerError
from fakes.gemini import FakeGemini
from fakes.gemini_faults import AnswerContext, AnswerFault, ErrorResponse
from fakes.gemini_request import RequestRules
from harness.message_factory import agent_request
from tests.fakes.gemini_support import (
    CONFIG,
    DETAILS,
    KEY,
    MODEL,
    ask,
    endpoint,
    gemini_engine,
    gemini_env,
    genai_client,
    post,
    rest_body,
)

pytestmark = pytest.mark.unit


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        yield session


# -- google-genai as the client ----------------------------------------------------------------


async def test_answers_text_in_the_documented_shape(
    gemini: FakeGemini, client: genai.Client
) -> None:
    response = await ask(client, "hello")
    assert response.text is not None and response.text.startswith("Hi Ann!")
    [candidate] = response.candidates or []
    assert candidate.finish_reason == types.FinishReason.STOP
    usage = response.usage_metadata
    assert usage is not None and usage.prompt_token_count and usage.candidates_token_count
    assert usage.total_token_count == usage.prompt_token_count + usage.candidates_token_count
    assert response.model_version == MODEL
    [call] = gemini.requests
    assert (call.model, call.method, call.key_ok, call.status) == (
        MODEL,
        "generateContent",
        True,
        200,
    )
    assert (call.tools, call.turns, call.answer, call.faults) == (
        ("search_faq", "list_free_slots"),
        1,
        "text",
        (),
    )


async def test_calls_a_tool_then_answers_from_its_result(client: genai.Client) -> None:
    question = types.Content(role="user", parts=[types.Part(text="When are you open?")])
    models = client.aio.models
    first = await models.generate_content(model=MODEL, contents=[question], config=CONFIG)
    [call] = first.function_calls or []
    assert (call.name, call.args) == ("search_faq", {"query": "When are you open?"})
    result = {"status": "ok", "count": 1, "results": [{"question": "Hours?", "answer": "9 to 6"}]}
    turns = [
        question,
        types.Content(role="model", parts=[types.Part(function_call=call)]),
        types.Content(
            role="user",
            parts=[types.Part.from_function_response(name="search_faq", response=result)],
        ),
    ]
    second = await models.generate_content(model=MODEL, contents=turns, config=CONFIG)
    assert second.text == "9 to 6"
    assert not second.function_calls


async def test_streams_text_in_chunks_over_sse(gemini: FakeGemini, client: genai.Client) -> None:
    whole = (await ask(client, "hello")).text
    message = types.Content(role="user", parts=[types.Part(text=DETAILS), types.Part(text="hello")])
    stream = await client.aio.models.generate_content_stream(
        model=MODEL, contents=message, config=CONFIG
    )
    chunks = [chunk async for chunk in stream]
    assert len(chunks) == 2
    assert "".join(c.text or "" for c in chunks) == whole
    assert chunks[-1].usage_metadata is not None
    assert [c.method for c in gemini.requests] == ["generateContent", "streamGenerateContent"]


async def test_the_base_url_can_come_from_the_environment(
    gemini: FakeGemini, monkeypatch: pytest.MonkeyPatch
) -> None:
    with gemini_env(monkeypatch, gemini):
        env_client = genai.Client()  # key and base URL from GOOGLE_API_KEY, ..._BASE_URL
        try:
            assert (await ask(env_client, "hello")).text
        finally:
            await env_client.aio.aclose()
    assert gemini.requests[0].key_ok


async def test_a_wrong_key_is_400_api_key_invalid(gemini: FakeGemini) -> None:
    async with genai_client(gemini, key="not-the-key") as wrong:
        with pytest.raises(errors.ClientError) as caught:
            await ask(wrong, "hello")
    assert (caught.value.code, caught.value.status) == (400, "INVALID_ARGUMENT")
    assert "API key not valid" in (caught.value.message or "")
    assert caught.value.details["error"]["details"][0]["reason"] == "API_KEY_INVALID"
    assert not gemini.requests[0].key_ok


async def test_a_missing_key_is_403_and_the_key_may_be_a_query_parameter(
    gemini: FakeGemini, http: aiohttp.ClientSession
) -> None:
    status, body = await post(http, endpoint(gemini), rest_body(), headers={})
    assert (status, body["error"]["status"]) == (403, "PERMISSION_DENIED")
    status, body = await post(http, endpoint(gemini) + f"?key={KEY}", rest_body(), headers={})
    assert status == 200 and body["candidates"][0]["content"]["parts"][0]["text"]


async def test_an_unknown_model_is_404(gemini: FakeGemini, client: genai.Client) -> None:
    with pytest.raises(errors.ClientError) as caught:
        await client.aio.models.generate_content(model="gpt-4o", contents="hi", config=CONFIG)
    assert (caught.value.code, caught.value.status) == (404, "NOT_FOUND")
    assert "models/gpt-4o is not found" in (caught.value.message or "")


# -- what the fake checks in a request ----------------------------------------------------------


def _without(key: str) -> dict[str, Any]:
    body = rest_body()
    del body[key]
    return body


def _with(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    body = rest_body()
    target: Any = body
    for step in path[:-1]:
        target = target[step]
    if isinstance(target, list) and path[-1] == len(target):
        target.append(value)
    else:
        target[path[-1]] = value
    return body


_DECLARATION = ("tools", 0, "functionDeclarations", 0)
_FAQ_DECL = rest_body()["tools"][0]["functionDeclarations"][0]
_CALL_TURN = {"role": "model", "parts": [{"functionCall": {"name": "search_faq", "args": {}}}]}
_RESPONSE_TURN = {
    "role": "user",
    "parts": [{"functionResponse": {"name": "search_faq", "response": {}}}],
}
_USER_TURN = {"role": "user", "parts": [{"text": "hello"}]}
_TWO_RESPONSES = {"role": "user", "parts": _RESPONSE_TURN["parts"] * 2}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (_without("contents"), "contents is not specified"),
        (_with(("contents", 0, "role"), "assistant"), "Please use a valid role: user, model."),
        (_with(("contents", 0, "parts"), []), "contents.parts must not be empty"),
        (_with(("contents", 0, "parts", 0), {}), "required oneof field 'data'"),
        (_with(("contents", 0, "parts", 0, "inlineText"), "x"), "Unknown name"),
        (_with(("generation",), {}), 'Unknown name "generation"'),
        (_without("systemInstruction"), "fake Gemini: no system instruction"),
        (_without("tools"), "fake Gemini: no function declarations"),
        (_with((*_DECLARATION, "name"), "search faq!"), "Invalid function name"),
        (_with(("tools", 1), {"functionDeclarations": [_FAQ_DECL]}), "Duplicate function"),
        (_with((*_DECLARATION, "parametersJsonSchema", "type"), "string"), "must be OBJECT"),
        (_with((*_DECLARATION, "parametersJsonSchema", "required"), ["q"]), "not defined"),
        (_with((*_DECLARATION, "parameters"), {"type": "OBJECT"}), "cannot both be set"),
        (_with(("contents",), [_USER_TURN, _RESPONSE_TURN]), "function response turn comes"),
        (_with(("contents",), [_CALL_TURN, _RESPONSE_TURN]), "function call turn comes"),
        (
            _with(("contents",), [_USER_TURN, _CALL_TURN, _TWO_RESPONSES]),
            "number of function response parts is equal",
        ),
        (_with(("contents",), [_USER_TURN, _USER_TURN]), "fake Gemini: role 'user' again"),
    ],
)
async def test_rejects_a_malformed_request_with_400_invalid_argument(
    gemini: FakeGemini, http: aiohttp.ClientSession, body: dict[str, Any], message: str
) -> None:
    status, answer = await post(http, endpoint(gemini), body)
    assert (status, answer["error"]["status"]) == (400, "INVALID_ARGUMENT"), answer
    assert message in answer["error"]["message"]
    [call] = gemini.requests
    assert (call.status, call.error, call.answer) == (400, "INVALID_ARGUMENT", None)


async def test_lenient_rules_accept_what_the_real_api_accepts(
    http: aiohttp.ClientSession,
) -> None:
    body = _with(("contents",), [_USER_TURN, _USER_TURN])
    del body["systemInstruction"], body["tools"]
    async with FakeGemini(api_key=KEY, rules=RequestRules.lenient()) as lenient:
        status, answer = await post(http, endpoint(lenient), body)
    assert status == 200, answer


async def test_snake_case_field_names_are_accepted_as_proto_json_allows(
    gemini: FakeGemini, http: aiohttp.ClientSession
) -> None:
    body = rest_body()
    body["system_instruction"] = body.pop("systemInstruction")
    declaration = body["tools"][0]["functionDeclarations"][0]
    declaration["parameters_json_schema"] = declaration.pop("parametersJsonSchema")
    status, answer = await post(http, endpoint(gemini), body)
    assert status == 200, answer


# -- the service's AgentEngine as the client -----------------------------------------------------


@pytest.mark.parametrize(
    ("task", "text", "tools", "answer_part"),
    [
        ("conversation", "What are your opening hours?", ["search_faq"], "Monday to Saturday"),
        ("order", "Where is my order 1042?", ["get_order_status"], "Order #1042 is shipped"),
        (
            "appointment",
            "Can I book an appointment tomorrow?",
            ["list_free_slots", "book_appointment"],
            "Done, John Doe!",
        ),
        ("search", "Do you sell argan oil shampoo?", ["search_catalogue"], "Argan Oil Shampoo"),
    ],
)
async def test_the_agent_engine_runs_each_task_through_a_real_tool_call(
    gemini: FakeGemini,
    monkeypatch: pytest.MonkeyPatch,
    task: str,
    text: str,
    tools: list[str],
    answer_part: str,
) -> None:
    async with gemini_engine(monkeypatch, gemini) as engine:
        result = await engine.run(agent_request(task, text))
    assert answer_part in result.text
    assert list(result.tools_used) == tools
    assert result.model_calls == len(tools) + 1
    assert result.tokens_used > 0
    calls = gemini.requests
    assert [c.answer for c in calls] == [*(f"call:{t}" for t in tools), "text"]
    assert all(c.key_ok and c.status == 200 and c.model == MODEL for c in calls)
    assert {c.tools for c in calls} == {TOOLS_BY_TASK[TaskType(task)]}
    assert [c.turns for c in calls] == [1 + 2 * i for i in range(len(tools) + 1)]


async def test_the_agent_engine_sends_history_as_alternating_turns(
    gemini: FakeGemini, monkeypatch: pytest.MonkeyPatch
) -> None:
    history = [("user", "hi"), ("assistant", "Hello!"), ("user", "ok"), ("assistant", "Sure.")]
    async with gemini_engine(monkeypatch, gemini) as engine:
        result = await engine.run(agent_request("conversation", "thanks", history=history))
    assert result.text.startswith("Hi John!")
    [call] = gemini.requests
    assert (call.turns, call.status) == (5, 200)


# -- the request log, the control API and the lifecycle ------------------------------------------


async def test_wait_for_requests_and_its_timeout_message(
    gemini: FakeGemini, client: genai.Client
) -> None:
    await ask(client, "hello")
    assert len(await gemini.wait_for_requests(1)) == 1
    with pytest.raises(TimeoutError, match=r"expected 2 request\(s\) within 0.05 s, got 1"):
        await gemini.wait_for_requests(2, timeout=0.05)


async def test_control_api_reads_and_resets_the_log(
    gemini: FakeGemini, client: genai.Client, http: aiohttp.ClientSession
) -> None:
    async with http.get(gemini.url + "/_control/health") as response:
        assert await response.json() == {"status": "ok"}
    await ask(client, "When are you open?")
    async with http.get(gemini.url + "/_control/requests") as response:
        [logged] = (await response.json())["requests"]
    assert (logged["model"], logged["answer"], logged["tools"]) == (
        MODEL,
        "call:search_faq",
        ["search_faq", "list_free_slots"],
    )
    async with http.delete(gemini.url + "/_control/requests") as response:
        assert response.status == 200
    assert gemini.requests == []


async def test_control_api_injects_lists_and_clears_faults(
    gemini: FakeGemini, client: genai.Client, http: aiohttp.ClientSession
) -> None:
    fault = {"fault": "error", "code": 503, "times": 1}
    async with http.post(gemini.url + "/_control/faults", json=fault) as response:
        assert response.status == 201
        assert (await response.json())["rule"]["params"] == {"code": 503, "message": None}
    latency = {"fault": "latency", "kind": "uniform", "mean": 0.01, "spread": 0.005}
    async with http.post(gemini.url + "/_control/faults", json=latency) as response:
        assert response.status == 201
    async with http.get(gemini.url + "/_control/faults") as response:
        listed = (await response.json())["faults"]
    assert [f["fault"] for f in listed] == ["error", "latency"]
    assert listed[1]["params"]["latency"] == {"kind": "uniform", "mean": 0.01, "spread": 0.005}
    with pytest.raises(errors.ServerError):
        await ask(client, "hello")
    async with http.delete(gemini.url + "/_control/faults") as response:
        assert response.status == 200
    assert (await ask(client, "hello")).text
    assert [c.status for c in gemini.requests] == [503, 200]
    gemini.inject(ErrorResponse(500))
    async with http.post(gemini.url + "/_control/reset") as response:
        assert response.status == 200
    assert (gemini.faults, gemini.requests) == ([], [])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"fault": "boom"}, "unknown fault 'boom'"),
        ({"fault": "error", "code": "503"}, "field 'code' must be a int"),
        ({"fault": "error", "code": 418}, "bad error fault"),
        ({"fault": "error", "colour": "red"}, "unknown field(s) for error: colour"),
        ({"fault": "latency", "kind": "gamma"}, "latency kind must be one of"),
        ({"fault": "finish_reason", "keep_text": 1}, "field 'keep_text' must be a bool"),
        ({"fault": "hang", "times": 0}, "times must be >= 1"),
        (["error"], "body must be a JSON object"),
    ],
)
async def test_control_api_rejects_bad_input(
    gemini: FakeGemini, http: aiohttp.ClientSession, body: Any, message: str
) -> None:
    async with http.post(gemini.url + "/_control/faults", json=body) as response:
        assert response.status == 400
        assert message in (await response.json())["error"]
    assert gemini.faults == []


async def test_a_crashing_handler_fails_the_test_on_exit(http: aiohttp.ClientSession) -> None:
    class Boom(AnswerFault):
        name = "boom"

        def answer(self, context: AnswerContext) -> Any:
            raise RuntimeError("bug in a fault")

    with pytest.raises(FakeServerError, match="bug in a fault"):
        async with FakeGemini(api_key=KEY) as fake:
            fake.inject(Boom())
            status, body = await post(http, endpoint(fake), rest_body())
            assert (status, body["error"]["status"]) == (500, "INTERNAL")


async def test_lifecycle_is_idempotent() -> None:
    fake = FakeGemini()
    with pytest.raises(RuntimeError, match="not running"):
        _ = fake.url
    async with fake:
        url = fake.url
        await fake.start()
        assert fake.url == url
        assert url.startswith("http://127.0.0.1:")
    await fake.stop()
