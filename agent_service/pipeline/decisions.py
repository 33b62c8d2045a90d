"""What the handler decided for one delivery. The transport's ``settle`` carries it out.

Each decision names its single end: a reply published then acked, a retry published then
acked, a dead letter published then acked, a duplicate acked, or the delivery handed back to
the broker. Nothing here touches the AMQP client, so the failure table is testable without one.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent_service.contract.messages import AgentReply, AgentRequest


@dataclass(frozen=True)
class Reply:
    """Publish ``reply`` to wb_queue with a confirm, then ack (success, partial or error)."""

    reply: AgentReply

    @property
    def request_id(self) -> str:
        return self.reply.originalMessageId


@dataclass(frozen=True)
class Retry:
    """Publish ``body`` (the request with retryCount counted up) to wait queue ``level``,
    then ack; the wait queue's TTL sends it back to ag_queue."""

    request: AgentRequest
    body: bytes
    level: int
    reason: str

    @property
    def request_id(self) -> str:
        return self.request.messageId


@dataclass(frozen=True)
class DeadLetter:
    """Publish the delivery as it came to the dead-letter exchange, with ``code`` and
    ``detail`` in its headers, then ack. The Node side sends the fallback text."""

    code: str
    detail: str
    request_id: str | None = None


@dataclass(frozen=True)
class Duplicate:
    """This request was already answered (or another delivery holds it): ack, nothing else."""

    request_id: str


@dataclass(frozen=True)
class HandBack:
    """Give the delivery back to the broker unanswered (nack with requeue), to be tried again."""

    reason: str
    request_id: str | None = None


Decision = Reply | Retry | DeadLetter | Duplicate | HandBack


@dataclass(frozen=True)
class Settlement:
    """What the transport managed. ``done``: what the decision names was published with a
    confirm (or there was nothing to publish) and the delivery acked, or at least the ack was
    sent. False when the delivery went back to the broker instead, so it will come again."""

    done: bool
