"""What a conformance check works with: the Node service's webhook, and every party around it.

The Node service under test is configured to send through ``wasender`` (our fake) and to alert
``alerts``; the checks play WhatsApp (``whatsapp``) and the agent (``agent``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from aio_pika.abc import AbstractRobustConnection

from agent_service.contract.topology import Topology
from fakes.alert_receiver import AlertReceiver
from fakes.wasender import FakeWasender
from fakes.whatsapp import FakeWhatsApp, PostResult
from harness.conformance.agent_double import AgentDouble, SeenRequest


class CheckFailed(AssertionError):
    """A check found the Node service not doing what the spec says; the message is evidence."""


class CheckSkipped(Exception):
    """The check does not apply to this target (say, no webhook secret is set)."""


@dataclass
class Target:
    webhook_url: str
    secret: str | None
    connection: AbstractRobustConnection
    topology: Topology
    wasender: FakeWasender
    alerts: AlertReceiver
    agent: AgentDouble
    whatsapp: FakeWhatsApp
    patience: float = 15.0  # how long an outcome that takes the Node service's retries may take

    async def post(self, event: dict[str, Any], **kwargs: Any) -> PostResult:
        return await self.whatsapp.post(self.webhook_url, event, **kwargs)

    async def say(self, phone: str, text: str, **kwargs: Any) -> tuple[str, PostResult]:
        """A contact writes; returns the WhatsApp message id and the webhook's answer."""
        event = self.whatsapp.text_event(phone, text, shape="current", **kwargs)
        result = await self.post(event)
        if result.status != 200:
            raise CheckFailed(f"the webhook answered {result.status} to a text message")
        return str(event["data"]["messages"]["key"]["id"]), result

    async def request_for(self, phone: str, text: str) -> SeenRequest:
        """Say ``text`` and return the request it made."""
        await self.say(phone, text)
        try:
            return (await self.agent.wait_requests(phone, 1, self.patience))[-1]
        except TimeoutError as exc:
            raise CheckFailed(f"no request on {self.topology.agent_queue}: {exc}") from None

    async def requests_before_sentinel(self, phone: str) -> list[SeenRequest]:
        """The contact's requests so far, made sure of: a sentinel message is sent after them,
        and what was published before the sentinel's request is on the queue before it."""
        text = f"sentinel {uuid.uuid4().hex[:8]}"
        await self.say(phone, text)
        try:
            await self.agent.wait_requests(phone, 1, self.patience)
            seen = self.agent.requests[phone]
            while not any(_text(r) == text for r in seen):
                await self.agent.wait_requests(phone, len(seen) + 1, self.patience)
                seen = self.agent.requests[phone]
        except TimeoutError:
            raise CheckFailed("the sentinel text message made no request") from None
        return [r for r in seen if _text(r) != text]


def _text(request: SeenRequest) -> str | None:
    try:
        return str(request.json()["message"]["text"])
    except (ValueError, KeyError, TypeError):
        return None
