"""A fake admin-alert endpoint: records every alert the Node side POSTs as JSON."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from fakes.loopback_server import LoopbackServer


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


class AlertReceiver(LoopbackServer):
    """``async with AlertReceiver() as alerts:``; point the Node side at ``alerts.url``."""

    def __init__(self, *, port: int = 0) -> None:
        super().__init__(port=port)
        self.alerts: list[ReceivedAlert] = []

    @property
    def url(self) -> str:
        """Where alerts are POSTed: ``http://127.0.0.1:<port>/alerts``."""
        return super().url + "/alerts"

    def _routes(self, app: web.Application) -> None:
        app.router.add_post("/alerts", self._receive)

    async def _receive(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"error": "expected a JSON object"}, status=400)
        if not isinstance(body, dict):
            return web.json_response({"error": "expected a JSON object"}, status=400)
        self.alerts.append(ReceivedAlert(body, time.monotonic()))
        return web.json_response({"status": "recorded"}, status=201)
