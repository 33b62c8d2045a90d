"""The HTTP control API of FakeGemini, for tests and tools in other processes.

    GET    /_control/health     -> {"status": "ok"}
    GET    /_control/requests   -> {"requests": [...]}   (see fakes.gemini_records.ModelCall)
    DELETE /_control/requests   forget the recorded requests
    GET    /_control/faults     -> {"faults": [...]}
    POST   /_control/faults     {"fault": "error", "code": 503, "times": 2}
                                {"fault": "rate_limited", "retry_delay": 2, "ratio": 0.5}
                                {"fault": "latency", "kind": "lognormal", "mean": 0.8,
                                 "spread": 0.4, "duration": 30}
                                {"fault": "finish_reason", "reason": "MAX_TOKENS",
                                 "keep_text": true}
    DELETE /_control/faults     remove all faults
    POST   /_control/reset      remove all faults and forget the recorded requests

No auth, as it is a test tool; requests from anywhere but loopback get 403. Bad input gets 400
with {"error": "..."}.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, cast

from aiohttp import web

from agent_service.agent.options import Latency
from fakes import faults
from fakes.control import ControlRoutes
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

if TYPE_CHECKING:
    from fakes.gemini import FakeGemini

LatencyKind = Literal["fixed", "uniform", "lognormal"]
LATENCY_KINDS: tuple[LatencyKind, ...] = ("fixed", "uniform", "lognormal")


def _latency(kind: str = "fixed", mean: float = 0.0, spread: float = 0.0) -> Fault:
    if kind not in LATENCY_KINDS:
        raise ValueError(f"latency kind must be one of {', '.join(LATENCY_KINDS)}")
    return SlowResponse(Latency(kind, mean, spread))


# Fault name -> (how to build it, its parameters with their JSON types).
FAULTS: dict[str, tuple[Callable[..., Fault], dict[str, type]]] = {
    "latency": (_latency, {"kind": str, "mean": float, "spread": float}),
    "error": (ErrorResponse, {"code": int, "message": str}),
    "rate_limited": (RateLimited, {"retry_delay": float}),
    "hang": (Hang, {"seconds": float}),
    "drop_connection": (DropConnection, {}),
    "drop_mid_response": (DropMidResponse, {"sent_bytes": int}),
    "malformed_json": (MalformedJson, {}),
    "empty_candidates": (EmptyCandidates, {}),
    "finish_reason": (FinishEarly, {"reason": str, "keep_text": bool}),
    "prompt_blocked": (PromptBlocked, {"reason": str}),
    "unknown_tool": (UnknownTool, {}),
    "wrong_argument_types": (WrongArgumentTypes, {}),
}
SELECTORS = faults.SELECTORS


def add_control_routes(app: web.Application, fake: FakeGemini) -> None:
    """Mount the control API on the fake's application."""
    _GeminiRoutes(fake).mount(app)


def parse_fault_request(body: Any) -> tuple[Fault, dict[str, Any]]:
    """Turn a POST /_control/faults body into a fault and the selectors for inject()."""
    fault, selectors = faults.parse_fault_request(body, FAULTS, SELECTORS)
    return cast(Fault, fault), selectors


class _GeminiRoutes(ControlRoutes):
    def __init__(self, fake: FakeGemini) -> None:
        super().__init__(fake, FAULTS, SELECTORS)
        self._gemini = fake

    def _more_routes(self, app: web.Application) -> None:
        app.router.add_get("/_control/requests", self.get_requests)
        app.router.add_delete("/_control/requests", self.delete_requests)
        app.router.add_post("/_control/reset", self.reset)

    async def get_requests(self, request: web.Request) -> web.Response:
        return web.json_response({"requests": [c.to_json() for c in self._gemini.requests]})

    async def delete_requests(self, request: web.Request) -> web.Response:
        self._gemini.clear_requests()
        return web.json_response({"ok": True})

    async def reset(self, request: web.Request) -> web.Response:
        self._gemini.reset()
        return web.json_response({"ok": True})
