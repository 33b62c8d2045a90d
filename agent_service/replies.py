"""Building the wb_queue reply to a request: success, partial, or error."""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field

from agent_service.contract.codec import now_ms
from agent_service.contract.messages import (
    AgentMetadata,
    AgentReply,
    AgentRequest,
    ErrorInfo,
    ReplyContact,
    ReplyStatus,
    Response,
    reply_id_for,
)
from agent_service.failures import Failure

# What the user reads when the agent could not answer (the spec's fallback text). Node sends
# response.text whatever the status, so an error reply carries it.
FALLBACK_TEXT = "I'm having trouble processing your request. Please try again."


@dataclass(frozen=True)
class AnswerSummary:
    """What the agent produced, as the reply reports it."""

    text: str
    tools_used: list[str] = field(default_factory=list)
    reasoning_steps: list[str] = field(default_factory=list)
    tokens_used: int = 0
    tool_failed: bool = False


def _contact(request: AgentRequest) -> ReplyContact:
    c = request.contact
    return ReplyContact(remoteJid=c.remoteJid, phoneNumber=c.phoneNumber, name=c.name)


def success_reply(
    request: AgentRequest, answer: AnswerSummary, processing_time: float
) -> AgentReply:
    """``status: success``, or ``partial`` when a tool failed but an answer was still given."""
    return AgentReply(
        messageId=reply_id_for(request.messageId),
        originalMessageId=request.messageId,
        timestamp=now_ms(),
        status=ReplyStatus.PARTIAL if answer.tool_failed else ReplyStatus.SUCCESS,
        contact=_contact(request),
        response=Response(text=answer.text),
        agentMetadata=AgentMetadata(
            toolsUsed=list(answer.tools_used),
            reasoningSteps=list(answer.reasoning_steps),
            processingTime=round(processing_time, 3),
            tokensUsed=answer.tokens_used,
        ),
    )


def error_reply(
    request: AgentRequest,
    failure: Failure,
    processing_time: float,
    *,
    exc: BaseException | None = None,
    include_stack: bool = False,
) -> AgentReply:
    """``status: error`` with error.code and error.message; a stack only when configured."""
    stack = None
    if include_stack and exc is not None:
        stack = "".join(traceback.format_exception(exc))[-8000:]
    return AgentReply(
        messageId=reply_id_for(request.messageId),
        originalMessageId=request.messageId,
        timestamp=now_ms(),
        status=ReplyStatus.ERROR,
        contact=_contact(request),
        response=Response(text=FALLBACK_TEXT),
        agentMetadata=AgentMetadata(processingTime=round(processing_time, 3)),
        error=ErrorInfo(code=failure.code, message=_public_message(failure), stack=stack),
    )


def _public_message(failure: Failure) -> str:
    # The message leaves the service: keep it to the failure's own words, bounded.
    return failure.message[:500] or failure.code
