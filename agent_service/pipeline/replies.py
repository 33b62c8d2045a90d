"""Building the wb_queue reply to a request: success, partial, or error."""

from __future__ import annotations

import traceback

from agent_service.contract.codec import now_ms
from agent_service.contract.messages import (
    FALLBACK_TEXT,
    AgentMetadata,
    AgentReply,
    AgentRequest,
    ErrorInfo,
    ReplyContact,
    ReplyStatus,
    Response,
    reply_id_for,
)
from agent_service.pipeline.engine import AgentAnswer
from agent_service.pipeline.failures import Failure

_MAX_STACK_CHARS = 8000
_MAX_ERROR_MESSAGE_CHARS = 500


def _contact(request: AgentRequest) -> ReplyContact:
    c = request.contact
    return ReplyContact(remoteJid=c.remoteJid, phoneNumber=c.phoneNumber, name=c.name)


def success_reply(request: AgentRequest, answer: AgentAnswer, processing_time: float) -> AgentReply:
    """``status: success``, or ``partial`` when a tool failed or the token limit cut the
    answer but an answer was still given."""
    return AgentReply(
        messageId=reply_id_for(request.messageId),
        originalMessageId=request.messageId,
        timestamp=now_ms(),
        status=ReplyStatus.PARTIAL if answer.partial else ReplyStatus.SUCCESS,
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
    """``status: error`` with error.code and error.message, and the fallback text for the user
    (Node sends response.text whatever the status). A stack only when ERROR_INCLUDE_STACK."""
    stack = None
    if include_stack and exc is not None:
        stack = "".join(traceback.format_exception(exc))[-_MAX_STACK_CHARS:]
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
    return failure.message[:_MAX_ERROR_MESSAGE_CHARS] or failure.code
