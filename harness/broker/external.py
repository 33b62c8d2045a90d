"""A broker the harness did not start, reached by URL. It is never stopped or altered."""

from __future__ import annotations

from typing import Self

from harness.broker.base import redact
from harness.broker.readiness import wait_until_ready


class ExternalBroker:
    kind = "external"

    def __init__(self, url: str, *, ready_timeout: float = 10.0) -> None:
        self._url = url
        self.ready_timeout = ready_timeout

    @property
    def url(self) -> str:
        return self._url

    def describe(self) -> str:
        return f"external broker at {redact(self._url)}"

    async def __aenter__(self) -> Self:
        await wait_until_ready(self._url, timeout=self.ready_timeout)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None
