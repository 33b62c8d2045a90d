"""One request to FakeGemini being answered: the HTTP response and its entry in the log."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from fakes.gemini_api import ApiError, sse, stream_chunks
from fakes.gemini_faults import Cut
from fakes.gemini_records import ModelCall, RequestLog


class Exchange:
    """Writes the answer to one request, and records it (once) in the request log."""

    def __init__(
        self,
        log: RequestLog,
        request: web.Request,
        model: str,
        method: str,
        key_ok: bool,
        payload: dict[str, Any] | None,
    ) -> None:
        self.request = request
        self.model = model
        self.method = method
        self.key_ok = key_ok
        self.tools, self.turns = _summary(payload)
        self.faults: list[str] = []
        self._log = log
        self._received_at = time.monotonic()
        self._wall_time = time.time()

    def record(
        self, status: int | None, *, answer: str | None = None, error: str | None = None
    ) -> None:
        self._log.log_call(
            ModelCall(
                model=self.model,
                method=self.method,
                key_ok=self.key_ok,
                tools=self.tools,
                turns=self.turns,
                faults=tuple(self.faults),
                status=status,
                answer=answer,
                error=error,
                received_at=self._received_at,
                wall_time=self._wall_time,
            )
        )

    def error(self, exc: ApiError) -> web.Response:
        return self.json(exc.code, exc.body(), error=exc.status)

    def json(
        self, status: int, body: Any, *, error: str | None = None, answer: str | None = None
    ) -> web.Response:
        self.record(status, answer=answer, error=error)
        return web.json_response(body, status=status)

    def raw(self, status: int, body: bytes, label: str) -> web.Response:
        self.record(status, error=label)
        return web.Response(status=status, body=body, content_type="application/json")

    async def answer(self, body: dict[str, Any], pieces: int) -> web.StreamResponse:
        label = _label(body)
        if self.method == "generateContent":
            return self.json(200, body, answer=label)
        chunks = stream_chunks(body, pieces)
        if self.request.query.get("alt") != "sse":
            return self.json(200, chunks, answer=label)
        self.record(200, answer=label)
        return web.Response(body=sse(chunks), content_type="text/event-stream")

    async def cut(self, outcome: Cut, label: str) -> web.StreamResponse:
        self.record(200, error=label)
        response = web.StreamResponse(status=200)
        response.content_type = "application/json"
        response.content_length = outcome.length
        await response.prepare(self.request)
        await response.write(outcome.head)
        self.drop(flush=True)
        return response

    def drop(self, *, flush: bool) -> None:
        """End the TCP connection: after sending what is buffered, or at once (a reset)."""
        transport = self.request.transport
        if transport is not None:
            transport.close() if flush else transport.abort()


def _summary(payload: dict[str, Any] | None) -> tuple[tuple[str, ...], int]:
    """Tool names and number of turns, read leniently from any body, valid or not."""
    body = payload or {}
    contents = body.get("contents")
    names = [
        str(d.get("name"))
        for tool in body.get("tools") or []
        if isinstance(tool, dict)
        for d in tool.get("functionDeclarations") or tool.get("function_declarations") or []
        if isinstance(d, dict)
    ]
    return tuple(names), len(contents) if isinstance(contents, list) else 0


def _label(body: dict[str, Any]) -> str:
    """What the model said, for the request log."""
    if "candidates" not in body:
        return "blocked:" + str(body.get("promptFeedback", {}).get("blockReason"))
    if not body["candidates"]:
        return "empty"
    first = body["candidates"][0]
    if first.get("finishReason") != "STOP":
        return "finish:" + str(first.get("finishReason"))
    parts = first.get("content", {}).get("parts", [])
    calls = [p["functionCall"]["name"] for p in parts if "functionCall" in p]
    return f"call:{calls[0]}" if calls else "text"
