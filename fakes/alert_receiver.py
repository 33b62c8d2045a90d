"""A fake admin-alert endpoint: records every alert the Node side POSTs as JSON."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from aiohttp import web


@dataclass(frozen=True)
class ReceivedAlert:
    body: dict[str, Any]
    received_at: float  # time.monotonic()

    @property
    def reason(self) -> str:
        return str(self.body.get("reason", ""))

    @property
    def whatsapp_message_id(self) -> str | None:
        value = self.body.get("whatsapp_message_id") or self.body.get("whatsappMessageId")
        return str(value) if value else None


class AlertReceiver:
    """``async with AlertReceiver() as alerts:``; point the Node side at ``alerts.url``."""

    def __init__(self) -> None:
        self.alerts: list[ReceivedAlert] = []
        self._runner: web.AppRunner | None = None
        self._changed = asyncio.Event()
        self.url = ""

    async def _receive(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"error": "expected a JSON object"}, status=400)
        if not isinstance(body, dict):
            return web.json_response({"error": "expected a JSON object"}, status=400)
        self.alerts.append(ReceivedAlert(body, time.monotonic()))
        self._changed.set()
        return web.json_response({"status": "recorded"}, status=201)

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_post("/alerts", self._receive)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        try:
            await site.start()
        except BaseException:
            await self._runner.cleanup()
            raise
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/alerts"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
