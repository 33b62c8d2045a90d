"""What FakeWasender records: accepted sends and every attempt, with ways to query them."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

from fakes.phones import mask, to_digits
from fakes.wasender_api import MessageKind
from harness.waiting import wait_until

logger = logging.getLogger("fakes.wasender")


@dataclass(frozen=True, slots=True)
class SentMessage:
    """A send the fake accepted (answered 200 with a msgId)."""

    msg_id: int
    to: str
    text: str | None
    kind: MessageKind
    payload: dict[str, Any]
    received_at: float  # time.monotonic()
    wall_time: float  # time.time()

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Attempt:
    """Any request to the send endpoint, accepted or not.

    `status` is None when no HTTP answer was given (dropped or held connection); `outcome`
    names what happened ("sent", "unauthenticated", "validation_failed", "rate_limited",
    "invalid_number", or "fault:<name>").
    """

    to: str | None
    status: int | None
    outcome: str
    payload: dict[str, Any] | None
    received_at: float
    wall_time: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class SendRecorder:
    """The request log of the fake; FakeWasender builds on it."""

    def __init__(self) -> None:
        self._sends: list[SentMessage] = []
        self._attempts: list[Attempt] = []
        self._changed = asyncio.Event()

    def _record_send(self, sent: SentMessage) -> None:
        self._sends.append(sent)
        self._changed.set()

    def _record_attempt(
        self, status: int | None, outcome: str, payload: dict[str, Any] | None, to: str | None
    ) -> None:
        attempt = Attempt(to, status, outcome, payload, time.monotonic(), time.time())
        self._attempts.append(attempt)
        logger.debug("FakeWasender %s -> %s (%s)", mask(to), status, outcome)

    @property
    def sends(self) -> list[SentMessage]:
        """Accepted sends, oldest first (a copy)."""
        return list(self._sends)

    @property
    def attempts(self) -> list[Attempt]:
        """Every request to the send endpoint, accepted or not (a copy)."""
        return list(self._attempts)

    def sends_to(self, number: str) -> list[SentMessage]:
        """Sends to one recipient, whether written `+256...` or `256...@s.whatsapp.net`."""
        digits = to_digits(number)
        return [s for s in self._sends if to_digits(s.to) == digits]

    def clear(self) -> None:
        """Forget sends and attempts (message ids keep increasing, as on the real API)."""
        self._sends.clear()
        self._attempts.clear()

    # The timeout parameter is the documented API (like pytest-httpserver's waits).
    async def wait_for_sends(self, count: int, timeout: float = 5.0) -> list[SentMessage]:
        """Wait until at least `count` sends arrived; return all of them.

        Raises TimeoutError listing what did arrive, so a failing test explains itself.
        """
        await wait_until(
            lambda: len(self._sends) >= count,
            timeout=timeout,
            what=f"{count} send(s)",
            state=lambda: self._describe_shortfall(count, timeout),
            changed=self._changed,
        )
        return self.sends

    def _describe_shortfall(self, count: int, timeout: float) -> str:
        lines = [f"expected {count} send(s) within {timeout:g} s, got {len(self._sends)}"]
        lines += [
            f"  #{s.msg_id} {s.kind} to {mask(s.to)}: {(s.text or '')[:40]!r}" for s in self._sends
        ]
        failed = Counter(f"{a.status} {a.outcome}" for a in self._attempts if a.outcome != "sent")
        if failed:
            lines.append("failed attempts: " + ", ".join(f"{k} x{n}" for k, n in failed.items()))
        return "\n".join(lines)
