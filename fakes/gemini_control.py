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
from typing import TYPE_CHECKING, Any, Literal

from aiohttp import web

from agent_service.agent.options import Latency
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
from fakes.wasender_control import ControlInputError, loopback_guard

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
SELECTORS: dict[str, type] = {"times": int, "ratio": float, "duration": float}


def add_control_routes(app: web.Application, fake: FakeGemini) -> None:
    """Mount the control API on the fake's application."""
    routes = _ControlRoutes(fake)
    app.middlewares.append(loopback_guard)
    app.router.add_get("/_control/health", routes.health)
    app.router.add_get("/_control/requests", routes.get_requests)
    app.router.add_delete("/_control/requests", routes.delete_requests)
    app.router.add_get("/_control/faults", routes.get_faults)
    app.router.add_post("/_control/faults", routes.post_fault)
    app.router.add_delete("/_control/faults", routes.delete_faults)
    app.router.add_post("/_control/reset", routes.reset)


def parse_fault_request(body: Any) -> tuple[Fault, dict[str, Any]]:
    """Turn a POST /_control/faults body into a fault and the selectors for inject()."""
    if not isinstance(body, dict):
        raise ControlInputError("body must be a JSON object with a 'fault' field")
    name = body.get("fault")
    if name not in FAULTS:
        raise ControlInputError(f"unknown fault {name!r}; known: {', '.join(sorted(FAULTS))}")
    build, params = FAULTS[name]
    unknown = set(body) - {"fault"} - set(params) - set(SELECTORS)
    if unknown:
        raise ControlInputError(f"unknown field(s) for {name}: {', '.join(sorted(unknown))}")
    kwargs = {k: _typed(k, body[k], t) for k, t in params.items() if k in body}
    selectors = {k: _typed(k, body[k], t) for k, t in SELECTORS.items() if k in body}
    try:
        return build(**kwargs), selectors
    except (TypeError, ValueError) as exc:
        raise ControlInputError(f"bad {name} fault: {exc}") from exc


def _typed(key: str, value: Any, expected: type) -> Any:
    # bool is an int in Python but never a sensible count or code here, and vice versa.
    if expected is bool:
        ok = isinstance(value, bool)
    else:
        ok = not isinstance(value, bool) and (
            isinstance(value, expected) or (expected is float and isinstance(value, int))
        )
    if not ok:
        raise ControlInputError(f"field {key!r} must be a {expected.__name__}, got {value!r}")
    return float(value) if expected is float else value


def _error(message: str, status: int = 400) -> web.Response:
    return web.json_response({"error": message}, status=status)


class _ControlRoutes:
    def __init__(self, fake: FakeGemini) -> None:
        self._fake = fake

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def get_requests(self, request: web.Request) -> web.Response:
        return web.json_response({"requests": [c.to_json() for c in self._fake.requests]})

    async def delete_requests(self, request: web.Request) -> web.Response:
        self._fake.clear_requests()
        return web.json_response({"ok": True})

    async def get_faults(self, request: web.Request) -> web.Response:
        return web.json_response({"faults": [r.describe() for r in self._fake.faults]})

    async def post_fault(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return _error("body must be JSON")
        try:
            fault, selectors = parse_fault_request(body)
            rule = self._fake.inject(fault, **selectors)
        except ValueError as exc:  # ControlInputError, or a selector make_rule rejected
            return _error(str(exc))
        return web.json_response({"ok": True, "rule": rule.describe()}, status=201)

    async def delete_faults(self, request: web.Request) -> web.Response:
        self._fake.clear_faults()
        return web.json_response({"ok": True})

    async def reset(self, request: web.Request) -> web.Response:
        self._fake.reset()
        return web.json_response({"ok": True})
