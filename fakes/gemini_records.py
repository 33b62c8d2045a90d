"""What FakeGemini records: one `ModelCall` per request to a model endpoint."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

from harness.waiting import wait_until

logger = logging.getLogger("fakes.gemini")


@dataclass(frozen=True, slots=True)
class ModelCall:
    """A request to `generateContent` or `streamGenerateContent`, however it was answered.

    `status` is None when no HTTP answer was given (a dropped or held connection). `answer` is
    what the model said: `text`, `call:<tool>`, `finish:<reason>`, `blocked:<reason>`, `empty`,
    or None when it said nothing. `error` is the Google status of an error answer
    (`UNAVAILABLE`), or the fault that broke the transport (`hang`, `drop_mid_response`...).
    `faults` names every fault that struck, in order. `turns` and `tools` are read from the
    body even when it failed validation, so a log shows what a rejected request looked like.
    `received_at` is when the request arrived, so gaps between retries can be read off it.
    """

    model: str
    method: str
    key_ok: bool
    tools: tuple[str, ...]
    turns: int
    faults: tuple[str, ...]
    status: int | None
    answer: str | None
    error: str | None
    received_at: float  # time.monotonic()
    wall_time: float  # time.time()

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class RequestLog:
    """The request log of the fake; FakeGemini builds on it."""

    def __init__(self) -> None:
        self._calls: list[ModelCall] = []
        self._changed = asyncio.Event()

    def log_call(self, call: ModelCall) -> None:
        """Add one entry; the server calls it once per request."""
        self._calls.append(call)
        self._changed.set()
        logger.debug("FakeGemini %s %s -> %s %s", call.model, call.method, call.status, call.answer)

    @property
    def requests(self) -> list[ModelCall]:
        """Every request to a model endpoint, oldest first (a copy)."""
        return list(self._calls)

    def clear_requests(self) -> None:
        """Forget the recorded requests."""
        self._calls.clear()

    # The timeout parameter is the documented API (like pytest-httpserver's waits).
    async def wait_for_requests(self, count: int, timeout: float = 5.0) -> list[ModelCall]:
        """Wait until at least `count` requests arrived; return all of them.

        Raises TimeoutError listing what did arrive, so a failing test explains itself.
        """
        await wait_until(
            lambda: len(self._calls) >= count,
            timeout=timeout,
            what=f"{count} request(s)",
            state=lambda: self._describe_shortfall(count, timeout),
            changed=self._changed,
        )
        return self.requests

    def _describe_shortfall(self, count: int, timeout: float) -> str:
        seen = Counter(f"{c.status} {c.answer or c.error}" for c in self._calls)
        got = ", ".join(f"{k} x{n}" for k, n in seen.items()) or "nothing"
        return f"expected {count} request(s) within {timeout:g} s, got {len(self._calls)}: {got}"
