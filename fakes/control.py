"""The HTTP control API every fake shares, under ``/_control/``: health, and the faults.

    GET    /_control/health   {"status": "ok"}
    GET    /_control/faults   the active fault rules
    POST   /_control/faults   {"fault": NAME, ...its parameters, "times"|"ratio"|"duration"}
    DELETE /_control/faults   remove them

A fake subclasses ``ControlRoutes`` for its own records (sends, requests) and builds its faults
from its catalogue. The control API answers loopback clients only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from aiohttp import web
from aiohttp.typedefs import Handler

from fakes.faults import SELECTORS, Catalogue, FaultRule, parse_fault_request

LOOPBACK = {"127.0.0.1", "::1"}
CONTROL_PREFIX = "/_control/"


class FaultyFake(Protocol):
    """What the fault routes need of a fake."""

    @property
    def faults(self) -> list[FaultRule[Any]]: ...

    @property
    def inject(self) -> Callable[..., FaultRule[Any]]:
        """``inject(fault, times=..., ratio=..., duration=...)``."""
        ...

    def clear_faults(self) -> None: ...


def error(message: str, status: int = 400) -> web.Response:
    return web.json_response({"error": message}, status=status)


@web.middleware
async def loopback_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse control calls from anywhere but loopback (the fake binds 127.0.0.1 anyway)."""
    if request.path.startswith(CONTROL_PREFIX) and request.remote not in LOOPBACK:
        return error("the control API answers loopback clients only", status=403)
    return await handler(request)


class ControlRoutes:
    """Health and faults; a subclass adds its routes in ``_more_routes``."""

    def __init__(
        self, fake: FaultyFake, catalogue: Catalogue, selectors: Mapping[str, type] = SELECTORS
    ) -> None:
        self._fake = fake
        self._catalogue = catalogue
        self._selectors = selectors

    def mount(self, app: web.Application) -> None:
        app.middlewares.append(loopback_guard)
        app.router.add_get("/_control/health", self.health)
        app.router.add_get("/_control/faults", self.get_faults)
        app.router.add_post("/_control/faults", self.post_fault)
        app.router.add_delete("/_control/faults", self.delete_faults)
        self._more_routes(app)

    def _more_routes(self, app: web.Application) -> None:
        return None

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    def _faults_body(self) -> dict[str, Any]:
        return {"faults": [r.describe() for r in self._fake.faults]}

    async def get_faults(self, request: web.Request) -> web.Response:
        return web.json_response(self._faults_body())

    async def delete_faults(self, request: web.Request) -> web.Response:
        self._fake.clear_faults()
        return web.json_response({"ok": True})

    async def post_fault(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return error("body must be JSON")
        try:
            special = self._special_fault(body)
            if special is not None:
                return special
            fault, selectors = parse_fault_request(body, self._catalogue, self._selectors)
            rule = self._fake.inject(fault, **selectors)
        except ValueError as exc:  # ControlInputError, or a selector make_rule rejected
            return error(str(exc))
        return web.json_response({"ok": True, "rule": rule.describe()}, status=201)

    def _special_fault(self, body: Any) -> web.Response | None:
        """A fault body this fake handles otherwise than by injecting a rule (or None)."""
        return None
