"""FakeWasender: a real HTTP server on 127.0.0.1 that imitates Wasender's send API.

    async with FakeWasender(api_key="test-key", rate_limit_per_minute=60) as wasender:
        ...  # point the client at wasender.url
        await wasender.wait_for_sends(1)

Inspect and steer it from Python (`sends`, `attempts`, `inject`, `mark_invalid`) or, from
another process, over the HTTP control API under `/_control/` (see fakes.wasender_control).
Order of checks for a send: injected faults, then auth (401), then the rate limit (429), then
validation (422), then invalid numbers (422), then accept (200). Faults come first because they
stand for the network and infrastructure in front of the real API; they neither count toward the
rate limit nor become sends. Every authenticated request counts toward the rate limit, accepted
or not, as Laravel's throttle counts requests rather than sends.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from fakes.faults import Delay, FaultRule, Hold, Respond, make_rule
from fakes.loopback_server import LoopbackServer
from fakes.phones import mask, to_digits
from fakes.wasender_api import (
    UNAUTHENTICATED_BODY,
    FixedWindowLimiter,
    RateDecision,
    ValidationFailed,
    validate_send,
)
from fakes.wasender_control import add_control_routes
from fakes.wasender_faults import Fault, invalid_number_body, rate_limited_body
from fakes.wasender_records import SendRecorder, SentMessage

logger = logging.getLogger(__name__)

FIRST_MSG_ID = 100_000


class FakeWasender(LoopbackServer, SendRecorder):
    """Imitates `POST /api/send-message`, records what arrives, and injects faults."""

    def __init__(
        self,
        api_key: str = "test-key",
        *,
        rate_limit_per_minute: int | None = None,
        rate_limit_window_seconds: float = 60.0,
        seed: int = 0,
        clock: Callable[[], float] = time.time,
        port: int = 0,
    ) -> None:
        """Configure the fake; it listens only once started.

        `rate_limit_per_minute=None` means unlimited (headers still sent, with a huge limit);
        `rate_limit_window_seconds` shortens the window, e.g. 5 s for "1 per 5 s" protection.
        `seed` drives `ratio` faults; `clock` (epoch seconds) drives the rate-limit window and
        fault durations, so tests can move time instead of sleeping.
        """
        LoopbackServer.__init__(self, port=port)
        SendRecorder.__init__(self)
        self.api_key = api_key
        self._clock = clock
        self._limiter = FixedWindowLimiter(rate_limit_per_minute, rate_limit_window_seconds, clock)
        self._rng = random.Random(seed)
        self._rules: list[FaultRule[Fault]] = []
        self._invalid: set[str] = set()
        self._next_id = FIRST_MSG_ID

    # -- lifecycle -------------------------------------------------------------------------
    # A fixed port (not 0) lets the Node team's real service be configured with this fake's
    # URL before the run.

    def _routes(self, app: web.Application) -> None:
        app.router.add_post("/api/send-message", self._handle_send)
        add_control_routes(app, self)

    def _crash_body(self) -> dict[str, Any]:
        return {"success": False, "message": "Server Error"}

    # -- faults ----------------------------------------------------------------------------

    def inject(
        self,
        fault: Fault,
        *,
        times: int | None = None,
        ratio: float | None = None,
        duration: float | None = None,
        only_to: str | None = None,
    ) -> FaultRule[Fault]:
        """Apply `fault` to the next `times` calls, a `ratio` of calls, or for `duration` s.

        Selectors combine (all set ones must agree); with none the fault hits every call until
        clear_faults(). Rules stack in injection order.
        """
        rule = make_rule(
            fault,
            now=self._clock(),
            times=times,
            ratio=ratio,
            duration=duration,
            only_to=None if only_to is None else to_digits(only_to),
        )
        self._rules.append(rule)
        logger.info("FakeWasender fault injected: %s", rule.describe() | {"only_to": mask(only_to)})
        return rule

    def mark_invalid(self, number: str) -> None:
        """From now on, sends to `number` get the "not on WhatsApp" answer."""
        self._invalid.add(to_digits(number))
        logger.info("FakeWasender marks %s as not on WhatsApp", mask(number))

    def clear_faults(self) -> None:
        """Remove injected faults and invalid-number marks."""
        self._rules.clear()
        self._invalid.clear()

    @property
    def faults(self) -> list[FaultRule[Fault]]:
        """Active fault rules (a copy)."""
        return [r for r in self._rules if not r.spent]

    @property
    def invalid_numbers(self) -> set[str]:
        """Digits of the numbers marked invalid (a copy)."""
        return set(self._invalid)

    # -- HTTP ------------------------------------------------------------------------------

    async def _handle_send(self, request: web.Request) -> web.StreamResponse:
        payload = await _read_json(request)
        raw_to = payload.get("to") if payload else None
        to = raw_to if isinstance(raw_to, str) else None
        faulted = await self._run_faults(request, payload, to)
        if faulted is not None:
            return faulted
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return self._answer(401, UNAUTHENTICATED_BODY, "unauthenticated", payload, to)
        decision = self._limiter.hit()
        if not decision.allowed:
            body = rate_limited_body(decision.retry_after)
            return self._answer(429, body, "rate_limited", payload, to, decision)
        try:
            valid = validate_send(payload)
        except ValidationFailed as exc:
            return self._answer(422, exc.body(), "validation_failed", payload, to, decision)
        if to_digits(valid.to) in self._invalid:
            body = invalid_number_body()
            return self._answer(422, body, "invalid_number", payload, to, decision)
        sent = SentMessage(
            msg_id=self._next_id,
            to=valid.to,
            text=valid.text,
            kind=valid.kind,
            payload=dict(payload or {}),
            received_at=time.monotonic(),
            wall_time=time.time(),
        )
        self._next_id += 1
        self._record_send(sent)
        data = {"msgId": sent.msg_id, "jid": sent.to, "status": "in_progress"}
        return self._answer(200, {"success": True, "data": data}, "sent", payload, to, decision)

    async def _run_faults(
        self, request: web.Request, payload: dict[str, Any] | None, to: str | None
    ) -> web.StreamResponse | None:
        digits = _digits_or_none(to)
        for rule in list(self._rules):
            if not rule.fires(self._clock(), self._rng, digits):
                continue
            outcome = rule.fault.outcome()
            label = f"fault:{rule.fault.name}"
            if isinstance(outcome, Delay):
                await self._sleep(outcome.seconds)
            elif isinstance(outcome, Respond):
                return self._answer(outcome.status, outcome.body, label, payload, to)
            else:
                self._record_attempt(None, label, payload, to)
                if isinstance(outcome, Hold):
                    await self._sleep(outcome.seconds)
                _abort(request)
                return web.Response()
        self._rules = [r for r in self._rules if not r.spent]
        return None

    def _answer(
        self,
        status: int,
        body: dict[str, Any],
        outcome: str,
        payload: dict[str, Any] | None,
        to: str | None,
        decision: RateDecision | None = None,
    ) -> web.Response:
        self._record_attempt(status, outcome, payload, to)
        headers = (decision or self._limiter.peek()).headers()
        return web.json_response(body, status=status, headers=headers)


async def _read_json(request: web.Request) -> dict[str, Any] | None:
    """The body as a JSON object, or None when it is not one (validated later as empty)."""
    try:
        body = json.loads(await request.read() or b"null")
    except (ValueError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


def _digits_or_none(to: str | None) -> str | None:
    try:
        return to_digits(to) if to else None
    except ValueError:
        return None


def _abort(request: web.Request) -> None:
    """Drop the TCP connection so the client gets no HTTP answer at all."""
    if request.transport is not None:
        request.transport.abort()
