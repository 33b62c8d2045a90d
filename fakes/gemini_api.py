"""What FakeGemini answers, in the Gemini REST API's own shapes: errors and model responses.

Pure code, no HTTP. The error shape is Google's `{"error": {"code", "message", "status",
"details"}}`; messages copy the real API's wording where it is known, so a log or an assertion
reads the same against the fake and the real service.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

from agent_service.agent.scripted_policy import ToolCall

STATUS_NAMES: dict[int, str] = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

DEFAULT_MESSAGES: dict[int, str] = {
    400: "Request contains an invalid argument.",
    403: "The caller does not have permission",
    404: "Requested entity was not found.",
    429: (
        "You exceeded your current quota, please check your plan and billing details. For more "
        "information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits."
    ),
    500: "An internal error has occurred. Please retry or report in "
    "https://developers.generativeai.google/guide/troubleshooting",
    503: "The model is overloaded. Please try again later.",
    504: "Deadline expired before operation could complete.",
}

NO_KEY_MESSAGE = (
    "Method doesn't allow unregistered callers (callers without established identity). "
    "Please use API Key or other form of API consumer identity to call this API."
)
BAD_KEY_MESSAGE = "API key not valid. Please pass a valid API key."
_TYPE_PREFIX = "type.googleapis.com/google.rpc."
_CHARS_PER_TOKEN = 4


class ApiError(Exception):
    """An answer in Google's error shape; `code` is the HTTP status."""

    def __init__(
        self, code: int, message: str | None = None, details: Iterable[dict[str, Any]] = ()
    ) -> None:
        self.code = code
        self.message = message or DEFAULT_MESSAGES.get(code, "Error")
        self.details = list(details)
        super().__init__(f"{code} {self.status}: {self.message}")

    @property
    def status(self) -> str:
        return STATUS_NAMES.get(self.code, "UNKNOWN")

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message, "status": self.status}
        if self.details:
            error["details"] = self.details
        return {"error": error}


def invalid_argument(path: str, message: str) -> ApiError:
    """A 400 in the real API's field-error form: `* GenerateContentRequest.<path>: <message>`."""
    where = f"GenerateContentRequest.{path}" if path else "GenerateContentRequest"
    return ApiError(400, f"* {where}: {message}\n")


def rate_limited(retry_delay_seconds: float) -> ApiError:
    """A 429 with the quota and RetryInfo details the real API attaches."""
    details: list[dict[str, Any]] = [
        {
            "@type": _TYPE_PREFIX + "QuotaFailure",
            "violations": [
                {
                    "quotaMetric": "generativelanguage.googleapis.com/generate_content_requests",
                    "quotaId": "GenerateRequestsPerMinutePerProjectPerModel",
                }
            ],
        },
        {
            "@type": _TYPE_PREFIX + "Help",
            "links": [
                {
                    "description": "Learn more about Gemini API quotas",
                    "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
                }
            ],
        },
        {"@type": _TYPE_PREFIX + "RetryInfo", "retryDelay": duration_text(retry_delay_seconds)},
    ]
    return ApiError(429, details=details)


def key_error(given: str | None, expected: str) -> ApiError | None:
    """The real API's answer to a missing (403) or wrong (400) API key; None when it is right."""
    if not given:
        return ApiError(403, NO_KEY_MESSAGE)
    if given != expected:
        info = {
            "@type": _TYPE_PREFIX + "ErrorInfo",
            "reason": "API_KEY_INVALID",
            "domain": "googleapis.com",
            "metadata": {"service": "generativelanguage.googleapis.com"},
        }
        return ApiError(400, BAD_KEY_MESSAGE, [info])
    return None


def duration_text(seconds: float) -> str:
    """A protobuf Duration in JSON: `2s`, `0.5s`."""
    return f"{seconds:g}s"


def step_part(step: ToolCall | str) -> dict[str, Any]:
    """The response part for the policy's next step."""
    if isinstance(step, ToolCall):
        return {"functionCall": {"name": step.name, "args": step.args}}
    return {"text": step}


def candidate(
    parts: list[dict[str, Any]] | None, finish_reason: str = "STOP", **extra: Any
) -> dict[str, Any]:
    """One candidate; `parts=None` leaves out the content, as blocked answers do."""
    body: dict[str, Any] = {}
    if parts is not None:
        body["content"] = {"role": "model", "parts": parts}
    body["finishReason"] = finish_reason
    body["index"] = 0
    return body | extra


def response_body(
    candidates: list[dict[str, Any]] | None,
    *,
    prompt_tokens: int,
    model_version: str,
    response_id: str,
    prompt_feedback: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A GenerateContentResponse; `candidates=None` leaves the field out, as a blocked prompt's
    answer does. Output tokens are counted from the candidates' parts."""
    output_chars = sum(
        len(json.dumps(part))
        for c in candidates or []
        for part in c.get("content", {}).get("parts", [])
    )
    output_tokens = tokens(output_chars) if output_chars else 0
    body: dict[str, Any] = {} if candidates is None else {"candidates": candidates}
    if prompt_feedback is not None:
        body["promptFeedback"] = prompt_feedback
    body["usageMetadata"] = {
        "promptTokenCount": prompt_tokens,
        "candidatesTokenCount": output_tokens,
        "totalTokenCount": prompt_tokens + output_tokens,
    }
    body["modelVersion"] = model_version
    body["responseId"] = response_id
    return body


def safety_ratings(blocked: str | None = None) -> list[dict[str, Any]]:
    """Ratings for the four categories; `blocked` names the one rated HIGH and blocked."""
    categories = (
        "HARM_CATEGORY_HATE_SPEECH",
        "HARM_CATEGORY_DANGEROUS_CONTENT",
        "HARM_CATEGORY_HARASSMENT",
        "HARM_CATEGORY_SEXUALLY_EXPLICIT",
    )
    ratings: list[dict[str, Any]] = []
    for category in categories:
        rating: dict[str, Any] = {"category": category, "probability": "NEGLIGIBLE"}
        if category == blocked:
            rating = rating | {"probability": "HIGH", "blocked": True}
        ratings.append(rating)
    return ratings


def tokens(chars: int) -> int:
    """A rough token count (4 characters a token), at least 1."""
    return max(1, math.ceil(chars / _CHARS_PER_TOKEN))


def stream_chunks(body: dict[str, Any], pieces: int) -> list[dict[str, Any]]:
    """Split a text answer into `pieces` chunks as streamGenerateContent sends them.

    Only the last chunk carries finishReason and usageMetadata, as on the real API; anything
    but a single text part (a function call, no content) stays one chunk.
    """
    cands = body.get("candidates") or []
    parts = cands[0].get("content", {}).get("parts", []) if cands else []
    if pieces <= 1 or len(parts) != 1 or "text" not in parts[0]:
        return [body]
    text: str = parts[0]["text"]
    size = max(1, math.ceil(len(text) / pieces))
    slices = [text[i : i + size] for i in range(0, len(text), size)] or [""]
    chunks: list[dict[str, Any]] = []
    for piece in slices[:-1]:
        first = {"content": {"role": "model", "parts": [{"text": piece}]}, "index": 0}
        chunks.append({"candidates": [first], "modelVersion": body["modelVersion"]})
    last = dict(cands[0]) | {"content": {"role": "model", "parts": [{"text": slices[-1]}]}}
    chunks.append(body | {"candidates": [last]})
    return chunks


def sse(chunks: list[dict[str, Any]]) -> bytes:
    """Server-sent events, one `data:` line per chunk (what `?alt=sse` returns)."""
    return b"".join(f"data: {json.dumps(chunk)}\r\n\r\n".encode() for chunk in chunks)
