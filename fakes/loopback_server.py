"""What every HTTP fake shares: an ``HttpServer`` on 127.0.0.1 that catches its own crashes.

    class FakeThing(LoopbackServer):
        def _routes(self, app: web.Application) -> None: ...

    async with FakeThing() as fake:
        fake.url  # http://127.0.0.1:<free port>

A handler that crashes answers 500 and is kept; leaving the ``async with`` block re-raises it as
``FakeServerError``, so a broken fake fails the test that found it instead of only logging.
``_sleep`` waits out a fault's delay but wakes as soon as the server stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from contextlib import AsyncExitStack
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from agent_service.http_server import HttpServer

logger = logging.getLogger(__name__)


class FakeServerError(RuntimeError):
    """A handler of the fake crashed; raised when the fake stops so the test sees it."""


class LoopbackServer(HttpServer):
    """Start, stop, URL and crash capture for a fake; subclasses add the routes."""

    def __init__(self, *, port: int = 0) -> None:
        super().__init__("127.0.0.1", port)
        self._stopping = asyncio.Event()
        self._errors: list[BaseException] = []

    def _crash_body(self) -> dict[str, Any]:
        """The JSON a crashed handler answers with, in the faked API's own error shape."""
        return {"error": "the fake's handler crashed"}

    def _middlewares(self) -> list[Middleware]:
        return [self._capture_errors]

    async def _start(self, stack: AsyncExitStack) -> None:
        self._stopping = asyncio.Event()
        await super()._start(stack)
        logger.info("%s listening on %s", type(self).__name__, self.url)

    async def _before_stop(self) -> None:
        self._stopping.set()  # release held requests before the runner waits for them
        logger.info("%s stopping", type(self).__name__)

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()
        if self._errors and exc_info[1] is None:
            name = type(self).__name__
            raise FakeServerError(f"{name} handler failed: {self._errors[0]!r}") from (
                self._errors[0]
            )

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake as soon as the server stops so stop() stays fast."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    @web.middleware
    async def _capture_errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException:
            raise
        except Exception as exc:
            self._errors.append(exc)
            logger.exception("%s handler failed", type(self).__name__)
            return web.json_response(self._crash_body(), status=500)
