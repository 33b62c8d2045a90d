"""What FakeWasender imitates of the real API: request validation, records, the rate limiter.

Pure code, no HTTP, so each rule can be read (and tested) on its own.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, get_args

from fakes.phones import is_e164, is_pn_jid
from fakes.wasender_messages import STRUCTURED

MessageKind = Literal[
    "text", "image", "video", "document", "audio", "sticker", "contact", "location", "poll"
]
MESSAGE_KINDS: frozenset[str] = frozenset(get_args(MessageKind))

# Body field -> message kind. At most one media field per message, as in the real API.
MEDIA_FIELDS: dict[str, MessageKind] = {
    "imageUrl": "image",
    "videoUrl": "video",
    "documentUrl": "document",
    "audioUrl": "audio",
    "stickerUrl": "sticker",
}

UNAUTHENTICATED_BODY: dict[str, Any] = {"success": False, "message": "Unauthenticated."}
# Large enough never to bite, but still a number, so clients that parse the headers work
# against an unlimited fake exactly as against the real API.
UNLIMITED = 1_000_000


class ValidationFailed(Exception):
    """Laravel-style field errors, answered as 422."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__(errors)
        self.errors = errors

    def body(self) -> dict[str, Any]:
        return {"success": False, "message": "Validation failed", "errors": self.errors}


@dataclass(frozen=True, slots=True)
class ValidSend:
    """A send request that passed validation."""

    to: str
    text: str | None
    kind: MessageKind


def validate_send(payload: dict[str, Any] | None) -> ValidSend:
    """Check a send body the way the real API does; raise ValidationFailed otherwise.

    A body that is not a JSON object is treated as empty input, which is what Laravel sees.
    """
    body = payload or {}
    errors: dict[str, list[str]] = {}
    to = body.get("to")
    if to is None or to == "":
        errors["to"] = ["The to field is required."]
    elif not isinstance(to, str) or not (is_e164(to) or is_pn_jid(to)):
        errors["to"] = ["The to field format is invalid."]
    text = body.get("text")
    if text is not None and not isinstance(text, str):
        errors["text"] = ["The text field must be a string."]
    kinds = _content_kinds(body, errors)
    if not kinds and not text:
        errors.setdefault("text", []).append(
            "The text field is required when none of imageUrl / videoUrl / documentUrl / "
            "audioUrl / stickerUrl / contact / location / poll are present."
        )
    kind: MessageKind = kinds[0] if kinds else "text"
    _check_message_type(body.get("messageType"), kind, errors)
    if errors:
        raise ValidationFailed(errors)
    return ValidSend(to=str(to), text=text or None, kind=kind)


def _content_kinds(body: dict[str, Any], errors: dict[str, list[str]]) -> list[MessageKind]:
    """The kinds of content present (a media URL, a contact, a location, a poll), checked."""
    present: list[tuple[str, MessageKind]] = []
    for name, kind in MEDIA_FIELDS.items():
        url = body.get(name)
        if url in (None, ""):
            continue
        present.append((name, kind))
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            errors[name] = [f"The {name} field must be a valid URL."]
    for name, check in STRUCTURED.items():
        if body.get(name) is not None:
            present.append((name, name))  # type: ignore[arg-type]  # the field is the kind
            check(body[name], errors)
    if len(present) > 1:
        errors[present[1][0]] = ["Only one media URL, contact, location or poll per message."]
    return [kind for _, kind in present]


def _check_message_type(value: Any, kind: MessageKind, errors: dict[str, list[str]]) -> None:
    """`messageType` (sent by the SDKs, optional) must name the kind the body carries."""
    if value is None:
        return
    if not isinstance(value, str) or value not in MESSAGE_KINDS:
        errors["messageType"] = [
            f"The messageType must be one of {', '.join(sorted(MESSAGE_KINDS))}."
        ]
    elif value != kind:
        errors["messageType"] = [f"The messageType is {value} but the message carries a {kind}."]


@dataclass(frozen=True, slots=True)
class RateDecision:
    """The limiter's answer for one request, with the header values to send."""

    allowed: bool
    limit: int
    remaining: int
    reset: int  # epoch seconds
    retry_after: int

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset),
        }


class FixedWindowLimiter:
    """A fixed window that opens at the first counted request, like Laravel's throttle.

    The clock is injectable (epoch seconds) so tests can move time instead of sleeping.
    """

    def __init__(
        self, limit: int | None, window_seconds: float, clock: Callable[[], float]
    ) -> None:
        if limit is not None and limit < 1:
            raise ValueError("rate limit must be >= 1 or None")
        if window_seconds <= 0:
            raise ValueError("rate limit window must be > 0 seconds")
        self._limit = limit
        self._window = window_seconds
        self._clock = clock
        self._window_start: float | None = None
        self._used = 0

    def _roll(self, now: float) -> float:
        if self._window_start is None or now >= self._window_start + self._window:
            self._window_start = now
            self._used = 0
        return self._window_start + self._window

    def hit(self) -> RateDecision:
        """Count one request and say whether it may pass."""
        now = self._clock()
        reset_at = self._roll(now)
        limit = self._limit if self._limit is not None else UNLIMITED
        allowed = self._used < limit
        if allowed:
            self._used += 1
        return self._decision(allowed, limit, reset_at, now)

    def peek(self) -> RateDecision:
        """Header values without counting a request (for answers that bypass the limiter)."""
        now = self._clock()
        reset_at = self._roll(now)
        limit = self._limit if self._limit is not None else UNLIMITED
        return self._decision(True, limit, reset_at, now)

    def reset(self) -> None:
        self._window_start = None
        self._used = 0

    def _decision(self, allowed: bool, limit: int, reset_at: float, now: float) -> RateDecision:
        return RateDecision(
            allowed=allowed,
            limit=limit,
            remaining=max(0, limit - self._used),
            reset=math.ceil(reset_at),
            retry_after=max(1, math.ceil(reset_at - now)),
        )
