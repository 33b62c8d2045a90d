"""The lifecycle every HTTP fake shares: an aiohttp app on 127.0.0.1, started and stopped once.

    class FakeThing(LoopbackServer):
        def _add_routes(self, app: web.Application) -> None: ...

    async with FakeThing() as fake:
        fake.url  # http://127.0.0.1:<free port>

A handler that crashes answers 500 and is kept; leaving the `async with` block re-raises it as
`FakeServerError`, so a broken fake fails the test that found it instead of only logging.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from types import TracebackType
from typing import Any, Self

from aiohttp import web
from aiohttp.typedefs import Handler

from fakes.wasender import FakeServerError

logger = logging.getLogger(__name__)


class LoopbackServer(ABC):
    """Start, stop, URL and crash capture for a fake; subclasses add the routes."""

    def __init__(self, *, port: int = 0) -> None:
        self._port = port
        self._stopping = asyncio.Event()
        self._errors: list[BaseException] = []
        self._runner: web.AppRunner | None = None
        self._url: str | None = None

    @abstractmethod
    def _add_routes(self, app: web.Application) -> None:
        """Mount the fake's routes (and its control API) on `app`."""

    def _crash_body(self) -> dict[str, Any]:
        """The JSON a crashed handler answers with, in the faked API's own error shape."""
        return {"error": "the fake's handler crashed"}

    @property
    def url(self) -> str:
        """Base URL, e.g. `http://127.0.0.1:40123`; only while running."""
        if self._url is None:
            raise RuntimeError(f"{type(self).__name__} is not running; use `async with`")
        return self._url

    async def start(self) -> None:
        """Listen on 127.0.0.1, on a free port unless one was given. Idempotent."""
        if self._runner is not None:
            return
        self._stopping = asyncio.Event()
        app = web.Application(middlewares=[self._capture_errors])
        self._add_routes(app)
        # handler_cancellation ends a held request as soon as the client gives up.
        runner = web.AppRunner(
            app, handler_cancellation=True, access_log=None, shutdown_timeout=2.0
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", self._port)
            await site.start()
            host, port = runner.addresses[0][:2]
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._url = f"http://{host}:{port}"
        logger.info("%s listening on %s", type(self).__name__, self._url)

    async def stop(self) -> None:
        """Stop listening and release held requests. Idempotent."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        self._stopping.set()
        await runner.cleanup()
        self._url = None
        logger.info("%s stopped", type(self).__name__)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
        if self._errors and exc is None:
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
