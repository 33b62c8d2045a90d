"""FakeGemini: a real HTTP server on 127.0.0.1 that imitates the Gemini API's generateContent.

    async with FakeGemini(api_key="test-key") as gemini:
        # GOOGLE_GEMINI_BASE_URL=gemini.url and GOOGLE_API_KEY=test-key, or
        # genai.Client(api_key="test-key", http_options=types.HttpOptions(base_url=gemini.url))
        ...
        await gemini.wait_for_requests(2)

It answers `POST /v1beta/models/{model}:generateContent` and `:streamGenerateContent` (with
`?alt=sse`, or a JSON array without) by running the project's scripted policy on the request, so
a Gemini-backed AgentEngine holds the same conversations as with the offline ScriptedModel, over
the same HTTP stack production uses. Order of handling: transport faults (they stand for the
network and Google's front end), then the API key (403 missing, 400 wrong), then the model name
(404), then request validation (400), then the policy's answer, which answer faults may rewrite.
Steer it from Python (`inject`, `requests`, `reset`) or over HTTP under `/_control/`
(see fakes.gemini_control).
"""

from __future__ import annotations

import itertools
import json
import logging
import random
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from agent_service.agent.scripted_policy import ToolCall, next_step, read_turn
from fakes.faults import Delay, FaultRule, Hold, Respond, make_rule
from fakes.gemini_api import (
    ApiError,
    candidate,
    key_error,
    response_body,
    step_part,
    tokens,
)
from fakes.gemini_control import add_control_routes
from fakes.gemini_exchange import Exchange
from fakes.gemini_faults import (
    Answer,
    AnswerContext,
    AnswerFault,
    Cut,
    Fault,
    Raw,
    TransportFault,
)
from fakes.gemini_records import RequestLog
from fakes.gemini_request import ModelRequest, RequestRules, model_error, parse_request
from fakes.loopback_server import LoopbackServer

logger = logging.getLogger(__name__)

METHODS = ("generateContent", "streamGenerateContent")
API_VERSIONS = ("v1beta", "v1")


class FakeGemini(LoopbackServer, RequestLog):
    """Imitates the Gemini API's content generation, records requests, and injects faults."""

    def __init__(
        self,
        api_key: str = "test-key",
        *,
        port: int = 0,
        rules: RequestRules | None = None,
        models: frozenset[str] | None = None,
        stream_pieces: int = 2,
        seed: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Configure the fake; it listens only once started.

        `rules` adds checks beyond the real API's (default: all on, see RequestRules);
        `models` is the set of model names served (None: any name starting with `gemini-`);
        `stream_pieces` is how many chunks a streamed text answer comes in. `seed` drives
        `ratio` faults and latency draws; `clock` (epoch seconds) drives fault durations.
        """
        LoopbackServer.__init__(self, port=port)
        RequestLog.__init__(self)
        self.api_key = api_key
        self._request_rules = rules or RequestRules()
        self._models = models
        self._stream_pieces = stream_pieces
        self._clock = clock
        self._rng = random.Random(seed)
        self._faults: list[FaultRule[Fault]] = []
        self._ids = itertools.count(1)
        self._open = 0

    # -- faults ----------------------------------------------------------------------------

    def inject(
        self,
        fault: Fault,
        *,
        times: int | None = None,
        ratio: float | None = None,
        duration: float | None = None,
    ) -> FaultRule[Fault]:
        """Apply `fault` to the next `times` calls, a `ratio` of calls, or for `duration` s.

        Selectors combine (all set ones must agree); with none the fault hits every call until
        clear_faults(). Rules stack in injection order; of the answer faults, the first that
        fires rewrites the answer.
        """
        rule = make_rule(fault, now=self._clock(), times=times, ratio=ratio, duration=duration)
        self._faults.append(rule)
        logger.info("FakeGemini fault injected: %s", rule.describe())
        return rule

    def clear_faults(self) -> None:
        self._faults.clear()

    @property
    def faults(self) -> list[FaultRule[Fault]]:
        """Active fault rules (a copy)."""
        return [r for r in self._faults if not r.spent]

    def reset(self) -> None:
        """Forget faults and recorded requests."""
        self.clear_faults()
        self.clear_requests()

    # -- HTTP ------------------------------------------------------------------------------

    def _routes(self, app: web.Application) -> None:
        app.router.add_post("/{version}/models/{call}", self._handle)
        add_control_routes(app, self)

    def _crash_body(self) -> dict[str, Any]:
        return ApiError(500).body()

    @property
    def held(self) -> int:
        """Model requests being answered now (a hung one counts until its client gives up)."""
        return self._open

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        # handler_cancellation: a client that closes its connection cancels this handler, so
        # the count falls back when a caller's time limit ends a hung call.
        self._open += 1
        try:
            return await self._answer(request)
        finally:
            self._open -= 1

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        version = request.match_info["version"]
        model, _, method = request.match_info["call"].rpartition(":")
        payload = _json_or_none(await request.read())
        given_key = request.headers.get("x-goog-api-key") or request.query.get("key")
        call = Exchange(self, request, model, method, given_key == self.api_key, payload)
        if version not in API_VERSIONS or method not in METHODS or not model:
            return call.error(ApiError(404, f"Method not found: {request.path}"))
        faulted = await self._transport_faults(call)
        if faulted is not None:
            return faulted
        rejected = key_error(given_key, self.api_key)
        if rejected is not None:
            return call.error(rejected)
        if not self._serves(model):
            return call.error(model_error(model, version, method))
        try:
            parsed = parse_request(model, payload, self._request_rules)
        except ApiError as exc:
            return call.error(exc)
        return await call.answer(self._answer_body(parsed, call), self._stream_pieces)

    async def _transport_faults(self, call: Exchange) -> web.StreamResponse | None:
        for rule in list(self._faults):
            if not isinstance(rule.fault, TransportFault):
                continue
            if not rule.fires(self._clock(), self._rng):
                continue
            call.faults.append(rule.fault.name)
            outcome = rule.fault.outcome(self._rng)
            if isinstance(outcome, Delay):
                await self._sleep(outcome.seconds)
            elif isinstance(outcome, Respond):
                status_name = outcome.body.get("error", {}).get("status")
                return call.json(outcome.status, outcome.body, error=status_name)
            elif isinstance(outcome, Raw):
                return call.raw(outcome.status, outcome.body, rule.fault.name)
            elif isinstance(outcome, Cut):
                return await call.cut(outcome, rule.fault.name)
            else:
                call.record(None, error=rule.fault.name)
                if isinstance(outcome, Hold):
                    await self._sleep(outcome.seconds)
                call.drop(flush=False)
                return web.Response()
        self._faults = [r for r in self._faults if not r.spent]
        return None

    def _answer_body(self, parsed: ModelRequest, call: Exchange) -> dict[str, Any]:
        turn, _ = read_turn(list(parsed.contents), parsed.system_text, parsed.tool_names)
        step: ToolCall | str = next_step(turn)
        answer = Answer([candidate([step_part(step)])])
        context = AnswerContext(step, parsed.declarations)
        for rule in self._faults:
            if isinstance(rule.fault, AnswerFault) and rule.fires(self._clock(), self._rng):
                call.faults.append(rule.fault.name)
                answer = rule.fault.answer(context)
                break
        self._faults = [r for r in self._faults if not r.spent]
        prompt = json.dumps([c.model_dump(mode="json", exclude_none=True) for c in parsed.contents])
        return response_body(
            answer.candidates,
            prompt_tokens=tokens(len(prompt) + len(parsed.system_text)),
            model_version=parsed.model,
            response_id=f"fake-{next(self._ids):06d}",
            prompt_feedback=answer.prompt_feedback,
        )

    def _serves(self, model: str) -> bool:
        return model in self._models if self._models is not None else model.startswith("gemini-")


def _json_or_none(raw: bytes) -> dict[str, Any] | None:
    try:
        body = json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None
