"""An aiohttp application on a host and port (0: any free port), as a ``Lifecycle``.

The service's health server and every HTTP fake of the harness are one of these: a subclass
adds its routes (and middlewares); ``url`` and ``port`` are known once it runs.
"""

from __future__ import annotations

from contextlib import AsyncExitStack

from aiohttp import web
from aiohttp.typedefs import Middleware

from agent_service.lifecycle import Lifecycle


class HttpServer(Lifecycle):
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host = host
        self._port = port
        self._bound: tuple[str, int] | None = None

    def _routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def _middlewares(self) -> list[Middleware]:
        return []

    async def _start(self, stack: AsyncExitStack) -> None:
        app = web.Application(middlewares=self._middlewares())
        self._routes(app)
        # handler_cancellation: a held request ends as soon as its client gives up.
        runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=2.0
        )
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        await web.TCPSite(runner, self._host, self._port).start()
        # Port 0 asks for any free port: read back the one the listening socket got.
        host, port = runner.addresses[0][:2]
        self._bound = (str(host), int(port))
        stack.callback(self._forget)

    def _forget(self) -> None:
        self._bound = None

    @property
    def port(self) -> int:
        if self._bound is None:
            raise RuntimeError(f"{type(self).__name__} is not running; use `async with`")
        return self._bound[1]

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:40123``; only while running."""
        if self._bound is None:
            raise RuntimeError(f"{type(self).__name__} is not running; use `async with`")
        host, port = self._bound
        return f"http://{f'[{host}]' if ':' in host else host}:{port}"
