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

from typing import TYPE_CHECKING, Any, cast

from aiohttp import web

from fakes import faults
from fakes.control import ControlRoutes
from fakes.faults import ControlInputError
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
SELECTORS: dict[str, type] = {**faults.SELECTORS, "only_to": str}


def add_control_routes(app: web.Application, fake: FakeWasender) -> None:
    """Mount the control API on the fake's application."""
    _WasenderRoutes(fake).mount(app)


def parse_fault_request(body: Any) -> tuple[Fault, dict[str, Any]]:
    """Turn a POST /_control/faults body into a fault and the selectors for inject()."""
    fault, selectors = faults.parse_fault_request(body, FAULTS, SELECTORS)
    return cast(Fault, fault), selectors


class _WasenderRoutes(ControlRoutes):
    def __init__(self, fake: FakeWasender) -> None:
        super().__init__(fake, FAULTS, SELECTORS)
        self._wasender = fake

    def _more_routes(self, app: web.Application) -> None:
        app.router.add_get("/_control/sends", self.get_sends)
        app.router.add_delete("/_control/sends", self.delete_sends)
        app.router.add_get("/_control/attempts", self.get_attempts)

    async def get_sends(self, request: web.Request) -> web.Response:
        return web.json_response({"sends": [s.to_json() for s in self._wasender.sends]})

    async def delete_sends(self, request: web.Request) -> web.Response:
        self._wasender.clear()
        return web.json_response({"ok": True})

    async def get_attempts(self, request: web.Request) -> web.Response:
        return web.json_response({"attempts": [a.to_json() for a in self._wasender.attempts]})

    def _faults_body(self) -> dict[str, Any]:
        return super()._faults_body() | {"invalid_numbers": sorted(self._wasender.invalid_numbers)}

    def _special_fault(self, body: Any) -> web.Response | None:
        # invalid_number with a number marks that number (mark_invalid), not a fault rule.
        if not (isinstance(body, dict) and body.get("fault") == "invalid_number"):
            return None
        if "number" not in body:
            return None
        if set(body) != {"fault", "number"}:
            raise ControlInputError("invalid_number with 'number' takes no other fields")
        number = body["number"]
        if not isinstance(number, str):
            raise ControlInputError("field 'number' must be a str")
        self._wasender.mark_invalid(number)  # ValueError for a malformed number
        return web.json_response({"ok": True, "invalid_number": number}, status=201)
