"""The HTTP control API of FakeWasender, for tests and tools in other processes.

    GET    /_control/health     -> {"status": "ok"}
    GET    /_control/sends      -> {"sends": [...]}
    GET    /_control/attempts   -> {"attempts": [...]}
    DELETE /_control/sends      forget sends and attempts
    GET    /_control/faults     -> {"faults": [...], "invalid_numbers": [...]}
    POST   /_control/faults     {"fault": "server_error", "status": 503, "times": 2}
                                {"fault": "latency", "seconds": 0.5, "ratio": 0.5}
                                {"fault": "rate_limited", "retry_after": 2, "duration": 3}
                                {"fault": "invalid_number", "number": "+256700000000"}
    DELETE /_control/faults     remove all faults and invalid-number marks

No auth, as it is a test tool; requests from anywhere but loopback get 403. Bad input gets 400
with {"error": "..."}.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiohttp.typedefs import Handler

from fakes.wasender_faults import (
    DropConnection,
    Fault,
    InvalidNumber,
    RateLimited,
    ServerError,
    SlowResponse,
    SoftFailure,
    Timeout,
)

if TYPE_CHECKING:
    from fakes.wasender import FakeWasender

# Fault name -> (class, its parameters with their JSON types).
FAULTS: dict[str, tuple[type[Fault], dict[str, type]]] = {
    "latency": (SlowResponse, {"seconds": float}),
    "server_error": (ServerError, {"status": int}),
    "rate_limited": (RateLimited, {"retry_after": int}),
    "timeout": (Timeout, {"seconds": float}),
    "drop_connection": (DropConnection, {}),
    "invalid_number": (InvalidNumber, {}),
    "soft_failure": (SoftFailure, {"status": int, "message": str}),
}
SELECTORS: dict[str, type] = {"times": int, "ratio": float, "duration": float, "only_to": str}
LOOPBACK = {"127.0.0.1", "::1"}
CONTROL_PREFIX = "/_control/"


class ControlInputError(ValueError):
    """Bad control request; answered as 400 with the message."""


def add_control_routes(app: web.Application, fake: FakeWasender) -> None:
    """Mount the control API on the fake's application."""
    routes = _ControlRoutes(fake)
    app.middlewares.append(loopback_guard)
    app.router.add_get("/_control/health", routes.health)
    app.router.add_get("/_control/sends", routes.get_sends)
    app.router.add_delete("/_control/sends", routes.delete_sends)
    app.router.add_get("/_control/attempts", routes.get_attempts)
    app.router.add_get("/_control/faults", routes.get_faults)
    app.router.add_post("/_control/faults", routes.post_fault)
    app.router.add_delete("/_control/faults", routes.delete_faults)


def parse_fault_request(body: Any) -> tuple[Fault, dict[str, Any]]:
    """Turn a POST /_control/faults body into a fault and the selectors for inject()."""
    if not isinstance(body, dict):
        raise ControlInputError("body must be a JSON object with a 'fault' field")
    name = body.get("fault")
    if name not in FAULTS:
        raise ControlInputError(f"unknown fault {name!r}; known: {', '.join(sorted(FAULTS))}")
    cls, params = FAULTS[name]
    unknown = set(body) - {"fault"} - set(params) - set(SELECTORS)
    if unknown:
        raise ControlInputError(f"unknown field(s) for {name}: {', '.join(sorted(unknown))}")
    kwargs = {k: _typed(k, body[k], t) for k, t in params.items() if k in body}
    selectors = {k: _typed(k, body[k], t) for k, t in SELECTORS.items() if k in body}
    try:
        return cls(**kwargs), selectors
    except (TypeError, ValueError) as exc:
        raise ControlInputError(f"bad {name} fault: {exc}") from exc


def _typed(key: str, value: Any, expected: type) -> Any:
    # bool is an int in Python but never a sensible count or status here.
    ok = not isinstance(value, bool) and (
        isinstance(value, expected) or (expected is float and isinstance(value, int))
    )
    if not ok:
        raise ControlInputError(f"field {key!r} must be a {expected.__name__}, got {value!r}")
    return float(value) if expected is float else value


def _error(message: str, status: int = 400) -> web.Response:
    return web.json_response({"error": message}, status=status)


class _ControlRoutes:
    def __init__(self, fake: FakeWasender) -> None:
        self._fake = fake

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def get_sends(self, request: web.Request) -> web.Response:
        return web.json_response({"sends": [s.to_json() for s in self._fake.sends]})

    async def delete_sends(self, request: web.Request) -> web.Response:
        self._fake.clear()
        return web.json_response({"ok": True})

    async def get_attempts(self, request: web.Request) -> web.Response:
        return web.json_response({"attempts": [a.to_json() for a in self._fake.attempts]})

    async def get_faults(self, request: web.Request) -> web.Response:
        rules = [r.describe() for r in self._fake.faults]
        invalid = sorted(self._fake.invalid_numbers)
        return web.json_response({"faults": rules, "invalid_numbers": invalid})

    async def delete_faults(self, request: web.Request) -> web.Response:
        self._fake.clear_faults()
        return web.json_response({"ok": True})

    async def post_fault(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return _error("body must be JSON")
        try:
            if (
                isinstance(body, dict)
                and body.get("fault") == "invalid_number"
                and "number" in body
            ):
                return self._mark_invalid(body)
            fault, selectors = parse_fault_request(body)
            rule = self._fake.inject(fault, **selectors)
        except ValueError as exc:  # ControlInputError, or a selector make_rule rejected
            return _error(str(exc))
        return web.json_response({"ok": True, "rule": rule.describe()}, status=201)

    def _mark_invalid(self, body: dict[str, Any]) -> web.Response:
        if set(body) != {"fault", "number"}:
            raise ControlInputError("invalid_number with 'number' takes no other fields")
        number = body["number"]
        if not isinstance(number, str):
            raise ControlInputError("field 'number' must be a str")
        self._fake.mark_invalid(number)  # ValueError for a malformed number
        return web.json_response({"ok": True, "invalid_number": number}, status=201)


@web.middleware
async def loopback_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse control calls from anywhere but loopback (the fake binds 127.0.0.1 anyway)."""
    if request.path.startswith(CONTROL_PREFIX) and request.remote not in LOOPBACK:
        return _error("the control API answers loopback clients only", status=403)
    return await handler(request)
