"""The two queue envelopes, with exactly the spec's camelCase field names.

These models are the single source of truth of the message contract: the JSON Schema, the
AsyncAPI document and the pact examples in ``contracts/`` are generated from them or checked
against them. Readers are tolerant (unknown fields are accepted and ignored); required fields,
types and enum values are enforced.
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
# E.164: a plus sign, then 7 to 15 digits, the first not zero.
PHONE_PATTERN = r"^\+[1-9][0-9]{6,14}$"
# A phone JID (digits@s.whatsapp.net), a LID (digits@lid) or a group JID (digits-digits@g.us).
JID_PATTERN = r"^[0-9]+(-[0-9]+)?@(s\.whatsapp\.net|lid|g\.us|c\.us)$"

# Node's Date.now() is milliseconds; the spec's example is seconds. Anything above this bound is
# taken as milliseconds (1e11 seconds is the year 5138).
_MS_THRESHOLD = 100_000_000_000

# A reply's id is uuid5(namespace, originalMessageId): a redelivered request can only ever
# produce a reply with the same id, so the Node side can deduplicate on either id.
REPLY_ID_NAMESPACE = uuid.UUID("6b1f3e0a-5a8e-4c43-9d0e-2f6c1b7a9e55")

# What the user reads when the agent could not answer (the spec's fallback text): the agent
# service puts it in an error reply's response.text, and the Node side sends it for a request
# that died in dlx_agent.
FALLBACK_TEXT = "I'm having trouble processing your request. Please try again."

Uuid = Annotated[
    str, Field(pattern=UUID_PATTERN, examples=["6f1c1c5e-8a4e-4c1e-9a51-3d2f0b7f9a10"])
]
# The last millisecond of year 9999: AMQP timestamps are datetimes, which end there (a larger
# value was accepted, then failed when the message was built; found by the fuzz tests).
MAX_TIMESTAMP_MS = 253_402_300_799_999
EpochTimestamp = Annotated[
    int,
    Field(
        ge=0,
        le=MAX_TIMESTAMP_MS,
        description="Unix epoch; producers here write milliseconds, readers accept seconds too",
    ),
]
Phone = Annotated[str, Field(pattern=PHONE_PATTERN, examples=["+256703722777"])]
Jid = Annotated[str, Field(pattern=JID_PATTERN, examples=["256703722777@s.whatsapp.net"])]


class TaskType(StrEnum):
    CONVERSATION = "conversation"
    APPOINTMENT = "appointment"
    ORDER = "order"
    SEARCH = "search"


class Priority(StrEnum):
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class ReplyStatus(StrEnum):
    SUCCESS = "success"
    ERROR = "error"
    PARTIAL = "partial"


class ResponseType(StrEnum):
    TEXT = "text"
    IMAGE = "image"
    DOCUMENT = "document"


class Role(StrEnum):
    USER = "user"
    ASSISTANT = "assistant"


class _Envelope(BaseModel):
    # Tolerant reader: extra fields are ignored, never an error.
    model_config = ConfigDict(extra="ignore", frozen=True)


class Contact(_Envelope):
    remoteJid: Jid
    phoneNumber: Phone
    name: str | None = Field(default=None, max_length=256)
    countryCode: str | None = Field(default=None, pattern=r"^[0-9]{1,4}$")


class UserMessage(_Envelope):
    text: str = Field(min_length=1, description="The user's message text")
    messageId: str = Field(min_length=1, description="WhatsApp's id of the message")
    timestamp: EpochTimestamp


class HistoryTurn(_Envelope):
    role: Role
    content: str


class Context(_Envelope):
    conversationHistory: list[HistoryTurn] = Field(default_factory=list)
    userNotes: str | None = None
    sessionData: dict[str, Any] = Field(default_factory=dict)


class RequestMetadata(_Envelope):
    priority: Priority = Field(
        default=Priority.NORMAL,
        description="The Node side's urgency label; the agent service logs it and does not"
        " reorder by it (ag_queue has no x-max-priority)",
    )
    retryCount: int = Field(
        default=0,
        ge=0,
        description="Retries so far: 0 from the Node side; the agent service counts it up on"
        " the copies it puts in its ag_queue.retry.N wait queues",
    )
    maxRetries: int = Field(
        default=3,
        ge=0,
        description="Most retries this request may get; the agent service uses"
        " min(maxRetries, its MAX_RETRIES setting), so it can only lower the service's limit",
    )
    previousMessageId: Uuid | None = Field(
        default=None,
        description="The messageId of the request the Node side published for this contact"
        " just before this one (absent for a contact's first message): the agent service"
        " publishes this request's reply only after that one's, so a contact's replies keep"
        " the order of their messages across replicas",
    )


class AgentRequest(_Envelope):
    """An AI processing request, published by the Node service to ``ag_queue``."""

    messageId: Uuid
    timestamp: EpochTimestamp
    taskType: TaskType
    contact: Contact
    message: UserMessage
    # Optional for the reader (tolerant), required of the Node publisher by the ag_queue pact.
    context: Context = Field(
        default_factory=Context,
        description="Optional here: a request without it reads as empty history, no notes."
        " The Node publisher always sends it (the ag_queue pact requires it)",
    )
    metadata: RequestMetadata = Field(
        default_factory=RequestMetadata,
        description="Optional here: a request without it reads as priority normal, retryCount"
        " 0, maxRetries 3. The Node publisher always sends it (the ag_queue pact requires it)",
    )


class ReplyContact(_Envelope):
    remoteJid: Jid
    phoneNumber: Phone
    name: str | None = Field(default=None, max_length=256)


class Response(_Envelope):
    text: str = Field(min_length=1, description="What is sent to the user (the fallback on error)")
    type: ResponseType = ResponseType.TEXT
    attachments: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Reserved for media replies: always [] today (the agent answers in text);"
        " a consumer must accept and may ignore it",
    )


class AgentMetadata(_Envelope):
    toolsUsed: list[str] = Field(
        default_factory=list,
        description="Names of the agent's tools called for this answer, each once, in the"
        " order of their first call",
    )
    reasoningSteps: list[str] = Field(
        default_factory=list,
        description='The agent\'s run step by step ("called search_catalogue", "search_faq'
        ' failed", "answered"), for logs and support; never shown to the user',
    )
    # Finite only: inf would be written as null and refused on the way back.
    processingTime: float = Field(default=0.0, ge=0, allow_inf_nan=False, description="Seconds")
    tokensUsed: int = Field(default=0, ge=0)


class ErrorInfo(_Envelope):
    code: str = Field(min_length=1, pattern=r"^[A-Z][A-Z0-9_]*$")
    message: str
    stack: str | None = None


class AgentReply(_Envelope):
    """The agent's answer, published by the agent service to ``wb_queue``."""

    messageId: Uuid
    originalMessageId: Uuid
    timestamp: EpochTimestamp
    status: ReplyStatus
    contact: ReplyContact
    response: Response
    agentMetadata: AgentMetadata = Field(default_factory=AgentMetadata)
    error: ErrorInfo | None = None

    @model_validator(mode="after")
    def _error_iff_status_error(self) -> Self:
        if (self.status is ReplyStatus.ERROR) != (self.error is not None):
            raise ValueError("error must be present exactly when status is 'error'")
        return self


def reply_id_for(original_message_id: str) -> str:
    """The deterministic id of the reply to a request."""
    return str(uuid.uuid5(REPLY_ID_NAMESPACE, original_message_id.lower()))


def epoch_seconds(timestamp: int) -> float:
    """A contract timestamp (seconds or milliseconds) as float seconds."""
    return timestamp / 1000 if timestamp >= _MS_THRESHOLD else float(timestamp)
