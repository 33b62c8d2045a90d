"""What the FakeGemini tests share: the key, a request in the service's shape, and clients."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import aiohttp
import pytest
from google import genai
from google.genai import types

from agent_service.agent import AgentEngine, open_demo_database
from agent_service.agent.prompts import context_block
from fakes.gemini import FakeGemini

KEY = "test-gemini-key"
MODEL = "gemini-2.5-flash"
SYSTEM = "You are the shop's assistant.\nTask: conversation"
# The customer's details travel in the message, as the engine sends them.
DETAILS = context_block("Ann", None) or ""
FAQ = types.FunctionDeclaration(
    name="search_faq",
    description="Search the FAQ.",
    parameters_json_schema={
        "type": "object",
        "properties": {"query": {"type": "string"}},
        "required": ["query"],
    },
)
SLOTS = types.FunctionDeclaration(
    name="list_free_slots",
    description="List free slots.",
    parameters_json_schema={"type": "object", "properties": {"date": {"type": "string"}}},
)
CONFIG = types.GenerateContentConfig(
    system_instruction=SYSTEM,
    tools=[types.Tool(function_declarations=[FAQ, SLOTS])],
    # The tests look at each answer; google-genai must not call Python tools itself.
    automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
)
REST_BODY: dict[str, Any] = {
    "contents": [{"role": "user", "parts": [{"text": "hello"}]}],
    "systemInstruction": {"parts": [{"text": SYSTEM}]},
    "tools": [
        {
            "functionDeclarations": [
                {
                    "name": "search_faq",
                    "parametersJsonSchema": {
                        "type": "object",
                        "properties": {"query": {"type": "string"}},
                    },
                }
            ]
        }
    ],
}


def rest_body() -> dict[str, Any]:
    """A valid REST request body, a fresh copy to change."""
    return copy.deepcopy(REST_BODY)


def endpoint(fake: FakeGemini, method: str = "generateContent", model: str = MODEL) -> str:
    return f"{fake.url}/v1beta/models/{model}:{method}"


@asynccontextmanager
async def genai_client(
    fake: FakeGemini,
    *,
    key: str = KEY,
    timeout_ms: int | None = None,
    retry: types.HttpRetryOptions | None = None,
) -> AsyncIterator[genai.Client]:
    """A real google-genai client pointed at the fake; its aiohttp session closed after."""
    options = types.HttpOptions(base_url=fake.url, timeout=timeout_ms, retry_options=retry)
    client = genai.Client(api_key=key, http_options=options)
    try:
        yield client
    finally:
        await client.aio.aclose()


async def ask(client: genai.Client, text: str) -> types.GenerateContentResponse:
    message = types.Content(role="user", parts=[types.Part(text=DETAILS), types.Part(text=text)])
    return await client.aio.models.generate_content(model=MODEL, contents=message, config=CONFIG)


async def post(
    http: aiohttp.ClientSession, url: str, body: Any, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    """A raw POST, for what google-genai would never send."""
    sent = {"x-goog-api-key": KEY} if headers is None else headers
    async with http.post(url, json=body, headers=sent) as response:
        return response.status, await response.json()


@contextmanager
def gemini_env(monkeypatch: pytest.MonkeyPatch, fake: FakeGemini) -> Iterator[None]:
    """The environment production uses for a Gemini model, pointed at the fake."""
    monkeypatch.setenv("GOOGLE_API_KEY", KEY)
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", fake.url)
    for name in ("GEMINI_API_KEY", "GOOGLE_GENAI_USE_VERTEXAI", "GOOGLE_GENAI_USE_ENTERPRISE"):
        monkeypatch.delenv(name, raising=False)
    yield


@asynccontextmanager
async def gemini_engine(
    monkeypatch: pytest.MonkeyPatch, fake: FakeGemini
) -> AsyncIterator[AgentEngine]:
    """The service's real AgentEngine with a Gemini model name, talking to the fake."""
    with gemini_env(monkeypatch, fake), open_demo_database(None) as db:
        async with AgentEngine(MODEL, db) as engine:
            yield engine
            assert await engine.open_sessions() == 0
