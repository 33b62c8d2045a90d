"""Sending through the Wasender API, and sorting every answer into what to do next.

One client per simulator: the rate limit is per Wasender account, so a 429 pauses every send
of this client, not just the one that got it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp

from fakes.phones import mask

logger = logging.getLogger("fakes.node_simulator")

SendStatus = Literal["sent", "rate_limited", "transient", "permanent"]


@dataclass(frozen=True, slots=True)
class SendResult:
    """One send attempt. `reason` is the metric label of a failure ("" when sent)."""

    status: SendStatus
    reason: str = ""
    http_status: int | None = None
    retry_after: float = 0.0
    msg_id: Any = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "sent"


class WasenderClient:
    """`POST {base}/api/send-message` with the Bearer key; never raises for a failed send."""

    def __init__(
        self, base_url: str, api_key: str, *, timeout: float, rate_limit_max_wait: float
    ) -> None:
        self._url = base_url.rstrip("/") + "/api/send-message"
        self._headers = {"Authorization": f"Bearer {api_key}"}
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._max_wait = rate_limit_max_wait
        self._session: aiohttp.ClientSession | None = None
        self._resume_at = 0.0  # monotonic; sends wait until then after a 429

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(self, to: str, text: str) -> SendResult:
        await self._wait_for_rate_limit()
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.post(
                self._url, json={"to": to, "text": text}, headers=self._headers
            ) as response:
                body = await _json_or_none(response)
                result = self._classify(response.status, body, response.headers)
        except TimeoutError:
            result = SendResult("transient", "timeout", detail="no answer in time")
        except aiohttp.ClientError as exc:
            result = SendResult("transient", "connection", detail=repr(exc))
        if not result.ok:
            logger.warning(
                "Wasender send to %s failed: %s %s %s",
                mask(to),
                result.reason,
                result.http_status,
                result.detail,
            )
        return result

    async def _wait_for_rate_limit(self) -> None:
        # One wait is enough: a send that still meets the limit after it gets its own 429,
        # which counts as an attempt and pauses everything again.
        delay = self._resume_at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)

    def _classify(self, status: int, body: Any, headers: Any) -> SendResult:
        detail = str(body.get("message", "")) if isinstance(body, dict) else ""
        if 200 <= status < 300:
            if isinstance(body, dict) and body.get("success") is True:
                data = body.get("data")
                msg_id = data.get("msgId") if isinstance(data, dict) else None
                return SendResult("sent", http_status=status, msg_id=msg_id)
            # A 2xx with success:false (or no JSON) is a failure the API may not repeat.
            return SendResult("transient", "soft_failure", status, detail=detail)
        if status == 429:
            wait = min(self._max_wait, _retry_after(body, headers))
            self._resume_at = max(self._resume_at, time.monotonic() + wait)
            return SendResult("rate_limited", "rate_limited", status, retry_after=wait)
        if status == 408:
            return SendResult("transient", "timeout", status, detail=detail)
        if status >= 500:
            return SendResult("transient", "server_error", status, detail=detail)
        errors = body.get("errors") if isinstance(body, dict) else None
        reason = "invalid_number" if isinstance(errors, dict) and "to" in errors else "client_error"
        return SendResult("permanent", reason, status, detail=detail)


async def _json_or_none(response: aiohttp.ClientResponse) -> Any:
    try:
        return await response.json(content_type=None)
    except (ValueError, aiohttp.ContentTypeError):
        return None


def _retry_after(body: Any, headers: Any) -> float:
    """Seconds to wait after a 429: the body's `retry_after` (Wasender's documented place),
    else the X-RateLimit-Reset header (epoch seconds), else one second."""
    value = body.get("retry_after") if isinstance(body, dict) else None
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    reset = headers.get("X-RateLimit-Reset") if headers is not None else None
    if isinstance(reset, str) and reset.isdigit():
        return max(0.0, int(reset) - time.time())
    return 1.0


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a round of sending decided: sent, retry later (attempts left), or park now."""

    action: Literal["sent", "retry", "park"]
    attempts: int  # failed attempts so far, including earlier deliveries
    result: SendResult
    reason: str = ""  # the park reason


async def send_until_verdict(
    client: WasenderClient,
    to: str,
    text: str,
    *,
    attempts: int,
    max_retries: int,
    on_failure: Callable[[SendResult], None],
) -> Verdict:
    """Send, waiting out 429s in place (each counts as an attempt), until sent, a transient
    failure that may be retried later, or a reason to park (permanent error, retries used up)."""
    while True:
        result = await client.send(to, text)
        if result.ok:
            return Verdict("sent", attempts, result)
        on_failure(result)
        if result.status == "permanent":
            return Verdict("park", attempts, result, result.reason)
        attempts += 1
        if attempts > max_retries:
            return Verdict("park", attempts, result, "retries_exhausted")
        if result.status == "transient":
            return Verdict("retry", attempts, result)
        # rate_limited: the client already pauses every send until retry_after has passed.
