"""A deterministic, offline model for the demo, the tests and load runs: an ADK ``BaseLlm``.

Each call derives its step from the request (see ``scripted_policy``), so one instance serves
concurrent sessions. Realism knobs come from ``ScriptedModelOptions``: a latency distribution
and a failure rate. Fault markers in the user's text drive end-to-end tests across processes:

- ``[[fail:transient]]``: every call raises TransientAgentError (code MODEL_UNAVAILABLE);
- ``[[fail:transient:N]]``: the first N calls for this exact user text raise it, later ones work;
- ``[[fail:after-tool:N]]``: the first N calls for this exact user text that come back with a
  tool's result raise TransientAgentError: the tool ran, then the model failed (a retry must not
  repeat the tool's side effect);
- ``[[fail:permanent]]``: raises PermanentAgentError (code MODEL_REJECTED);
- ``[[slow:S]]``: sleeps S seconds (a float) once per run, before its first answer;
- ``[[tool-error]]``: the run's first tool call goes to a tool that fails; the run still
  answers, with a failed tool (a partial result);
- ``[[crash]]``: the process kills itself with SIGKILL on the first model call, as an
  out-of-memory kill or a segfault would (for the poison-request tests: the broker redelivers,
  and the service must stop the loop after MAX_DELIVERIES).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import random
import re
import signal
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, replace
from typing import Any

from google.adk.models import BaseLlm
from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.genai import types
from pydantic import Field, PrivateAttr

from agent_service.agent.options import ScriptedModelOptions
from agent_service.agent.scripted_policy import ToolCall, faulty, first_call, next_step, read_turn
from agent_service.errors import ErrorCode, PermanentAgentError, TransientAgentError

logger = logging.getLogger(__name__)

SCRIPTED_MODEL_NAME = "scripted"
_MARKER = re.compile(
    r"\[\[(fail:transient(?::(\d+))?|fail:after-tool:(\d+)|fail:permanent"
    r"|slow:(\d+(?:\.\d+)?)|tool-error|crash)\]\]"
)
_CHARS_PER_TOKEN = 4
# Bounds the per-text counters of [[fail:transient:N]]: only marked texts are counted, but a
# long soak run must not grow without limit.
_MAX_COUNTED_TEXTS = 10_000


@dataclass(frozen=True)
class _Markers:
    transient: bool = False
    transient_count: int | None = None
    after_tool_count: int | None = None
    permanent: bool = False
    slow: float = 0.0
    tool_error: bool = False
    crash: bool = False


def parse_markers(text: str) -> tuple[_Markers, str]:
    """The fault markers in ``text``, and the text without them."""
    found: dict[str, Any] = {}
    for match in _MARKER.finditer(text):
        marker, count, after_tool, slow = match.groups()
        if after_tool is not None:
            found["after_tool_count"] = int(after_tool)
        elif marker == "fail:permanent":
            found["permanent"] = True
        elif marker == "crash":
            found["crash"] = True
        elif marker == "tool-error":
            found["tool_error"] = True
        elif slow is not None:
            found["slow"] = float(slow)
        elif count is not None:
            found["transient_count"] = int(count)
        else:
            found["transient"] = True
    return _Markers(**found), " ".join(_MARKER.sub(" ", text).split())


class ScriptedModel(BaseLlm):
    """The offline model. ``on_request`` (optional) sees every request, for tests to record."""

    model: str = SCRIPTED_MODEL_NAME
    options: ScriptedModelOptions = Field(default_factory=ScriptedModelOptions)
    on_request: Callable[[LlmRequest], None] | None = None

    _rng: random.Random = PrivateAttr()
    _transient_seen: dict[str, int] = PrivateAttr(default_factory=dict)

    def model_post_init(self, context: Any, /) -> None:
        super().model_post_init(context)
        self._rng = random.Random(self.options.seed)

    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        if self.on_request is not None:
            self.on_request(llm_request)
        instruction = _system_text(llm_request)
        turn, raw_text = read_turn(
            llm_request.contents, instruction, frozenset(llm_request.tools_dict)
        )
        markers, clean_text = (
            parse_markers(raw_text) if self.options.markers else (_Markers(), raw_text)
        )
        turn = replace(turn, text=clean_text)
        await self._wait(markers, first_of_turn=not turn.tool_results)
        self._raise_faults(markers, raw_text, after_tool=bool(turn.tool_results))
        step: ToolCall | str = next_step(turn)
        if markers.tool_error and not turn.tool_results:
            step = faulty(first_call(turn))
        yield _response(step, llm_request, instruction)

    async def _wait(self, markers: _Markers, *, first_of_turn: bool) -> None:
        delay = self.options.latency.sample(self._rng)
        if markers.slow and first_of_turn:
            delay += markers.slow
        if delay > 0:
            await asyncio.sleep(delay)

    def _raise_faults(self, markers: _Markers, raw_text: str, *, after_tool: bool) -> None:
        if markers.crash:
            logger.critical("scripted model: crash marker, killing this process")
            os.kill(os.getpid(), signal.SIGKILL)
        if markers.permanent:
            raise PermanentAgentError(
                "scripted model: permanent failure marker", code=ErrorCode.MODEL_REJECTED
            )
        if markers.transient:
            raise TransientAgentError("scripted model: transient failure marker")
        if (
            after_tool
            and markers.after_tool_count is not None
            and self._count_failure("after-tool:" + raw_text, markers.after_tool_count)
        ):
            raise TransientAgentError("scripted model: failure after a tool call (counted)")
        if markers.transient_count is not None and self._count_failure(
            raw_text, markers.transient_count
        ):
            raise TransientAgentError("scripted model: transient failure marker (counted)")
        if self.options.failure_rate and self._rng.random() < self.options.failure_rate:
            raise TransientAgentError("scripted model: simulated outage")

    def _count_failure(self, text: str, limit: int) -> bool:
        seen = self._transient_seen.get(text, 0)
        if seen >= limit:
            return False
        if text not in self._transient_seen and len(self._transient_seen) >= _MAX_COUNTED_TEXTS:
            self._transient_seen.pop(next(iter(self._transient_seen)))
        self._transient_seen[text] = seen + 1
        return True


def _system_text(llm_request: LlmRequest) -> str:
    instruction = llm_request.config.system_instruction
    if isinstance(instruction, str):
        return instruction
    if isinstance(instruction, types.Content):
        return "".join(p.text or "" for p in instruction.parts or [])
    return ""


def _response(step: ToolCall | str, llm_request: LlmRequest, instruction: str) -> LlmResponse:
    if isinstance(step, ToolCall):
        part = types.Part(function_call=types.FunctionCall(name=step.name, args=step.args))
        output_chars = len(step.name) + len(json.dumps(step.args))
    else:
        part = types.Part(text=step)
        output_chars = len(step)
    prompt_chars = len(instruction) + sum(
        len(c.model_dump_json(exclude_none=True)) for c in llm_request.contents
    )
    prompt_tokens = _tokens(prompt_chars)
    output_tokens = _tokens(output_chars)
    usage = types.GenerateContentResponseUsageMetadata(
        prompt_token_count=prompt_tokens,
        candidates_token_count=output_tokens,
        total_token_count=prompt_tokens + output_tokens,
    )
    content = types.Content(role="model", parts=[part])
    return LlmResponse(content=content, usage_metadata=usage, model_version=SCRIPTED_MODEL_NAME)


def _tokens(chars: int) -> int:
    return max(1, math.ceil(chars / _CHARS_PER_TOKEN))
