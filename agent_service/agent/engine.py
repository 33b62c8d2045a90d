"""Runs one ``AgentRequest`` through the ADK agent of its task type.

Built once per process: one ``Agent`` per task type with its own tool subset, one ``Runner`` per
agent, one ``InMemorySessionService``. Each run gets a fresh session holding the conversation
history as real turns, and deletes it afterwards, so runs are independent and nothing leaks.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from contextlib import aclosing
from typing import Any

from google.adk.agents import Agent
from google.adk.agents.readonly_context import ReadonlyContext
from google.adk.events import Event
from google.adk.models import BaseLlm
from google.adk.runners import Runner
from google.adk.sessions import InMemorySessionService, Session
from google.adk.tools.base_tool import BaseTool
from google.adk.tools.tool_context import ToolContext
from google.genai import types

from agent_service.agent.business.records import BusinessStore
from agent_service.agent.prompts import MAX_NAME_CHARS, build_instruction, clean, context_block
from agent_service.agent.tools import (
    CONTACT_NAME_STATE,
    CONTACT_PHONE_STATE,
    REQUEST_ID_STATE,
    BusinessTools,
    ToolFunction,
)
from agent_service.contract.messages import AgentRequest, HistoryTurn, Role, TaskType
from agent_service.errors import ErrorCode, PermanentAgentError
from agent_service.pipeline.engine import AgentAnswer

logger = logging.getLogger(__name__)

TOOLS_BY_TASK: dict[TaskType, tuple[str, ...]] = {
    TaskType.CONVERSATION: (
        "search_faq",
        "search_catalogue",
        "get_order_status",
        "list_free_slots",
    ),
    TaskType.APPOINTMENT: ("list_free_slots", "book_appointment", "search_faq"),
    TaskType.ORDER: ("get_order_status", "search_faq"),
    TaskType.SEARCH: ("search_catalogue", "search_faq"),
}

_STATE_FAILED_TOOLS = "failed_tools"
# One user id for every session: InMemorySessionService keeps an (empty) entry per user id
# after its sessions are deleted, which would grow with every new phone number.
_USER_ID = "whatsapp"


def agent_name(task: TaskType) -> str:
    return f"{task.value}_agent"


class AgentEngine:
    """The agents of every task type, ready to run requests concurrently."""

    def __init__(
        self, model: BaseLlm | str, database: BusinessStore, *, app_name: str = "wa_agent"
    ) -> None:
        tools = BusinessTools(database).by_name()
        self._sessions = InMemorySessionService()
        self._agents = {task: _build_agent(task, model, tools) for task in TaskType}
        self._runners = {
            task: Runner(
                agent=agent, app_name=f"{app_name}_{task.value}", session_service=self._sessions
            )
            for task, agent in self._agents.items()
        }

    @property
    def tool_names(self) -> frozenset[str]:
        return frozenset(name for names in TOOLS_BY_TASK.values() for name in names)

    async def run(self, request: AgentRequest) -> AgentAnswer:
        """Answer one request. Model errors propagate unchanged; the caller classifies them."""
        task = TaskType(request.taskType)
        if not self._runners:
            raise RuntimeError("AgentEngine.run() after close()")
        runner, agent = self._runners[task], self._agents[task]
        # Unique per call: the same request may be processed twice, even concurrently.
        session_id = f"{request.messageId}-{uuid.uuid4().hex}"
        session = await self._sessions.create_session(
            app_name=runner.app_name,
            user_id=_USER_ID,
            session_id=session_id,
            # What the tools act for: the request's own contact, never a model argument.
            state={
                CONTACT_PHONE_STATE: request.contact.phoneNumber,
                CONTACT_NAME_STATE: clean(request.contact.name, MAX_NAME_CHARS),
                REQUEST_ID_STATE: request.messageId,
            },
        )
        details = context_block(request.contact.name, request.context.userNotes)
        try:
            await self._add_history(session, agent.name, request.context.conversationHistory)
            events = await self._run_turn(runner, session_id, request.message.text, details)
        finally:
            await self._sessions.delete_session(
                app_name=runner.app_name, user_id=_USER_ID, session_id=session_id
            )
        return summarise(events, agent.name)

    async def open_sessions(self) -> int:
        """How many sessions exist now (0 between runs: each run deletes its own)."""
        total = 0
        for runner in self._runners.values():
            listed = await self._sessions.list_sessions(app_name=runner.app_name)
            total += len(listed.sessions)
        return total

    async def close(self) -> None:
        """Release the runners. Idempotent; the database belongs to the caller."""
        runners, self._runners = list(self._runners.values()), {}
        for runner in runners:
            await runner.close()

    async def __aenter__(self) -> AgentEngine:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _add_history(self, session: Session, author: str, history: list[HistoryTurn]) -> None:
        for turn in history:
            if not turn.content.strip():
                continue
            is_user = turn.role is Role.USER
            event = Event(
                author="user" if is_user else author,
                content=types.Content(
                    role="user" if is_user else "model", parts=[types.Part(text=turn.content)]
                ),
            )
            await self._sessions.append_event(session, event)

    async def _run_turn(
        self, runner: Runner, session_id: str, text: str, details: str | None
    ) -> list[Event]:
        # The customer's details ride in the message as a first, quoted part: data beside the
        # user's words, never part of the instruction.
        parts = [types.Part(text=details)] if details else []
        message = types.Content(role="user", parts=[*parts, types.Part(text=text)])
        # aclosing: on cancellation (a processing timeout) ADK's generator is closed here, in
        # this task, instead of whenever the garbage collector finds it.
        async with aclosing(
            runner.run_async(user_id=_USER_ID, session_id=session_id, new_message=message)
        ) as stream:
            return [event async for event in stream]


def summarise(events: list[Event], author: str) -> AgentAnswer:
    """The result of a run, from the events the runner yielded."""
    tools_used: list[str] = []
    steps = [f"routed to {author}"]
    failed: set[str] = set()
    tokens = model_calls = 0
    text = ""
    stop: str | None = None  # why the model's last answer ended, when it was not a plain stop
    for event in events:
        if event.usage_metadata is not None:
            tokens += event.usage_metadata.total_token_count or 0
        failed.update(event.actions.state_delta.get(_STATE_FAILED_TOOLS) or [])
        if event.partial or event.author != author:
            continue
        if not event.get_function_responses():
            model_calls += 1
        for call in event.get_function_calls():
            name = call.name or "?"
            steps.append(f"called {name}")
            if name not in tools_used:
                tools_used.append(name)
        steps.extend(f"{r.name} failed" for r in event.get_function_responses() if r.name in failed)
        stop = _stop_reason(event)
        if event.is_final_response() and event.content is not None:
            text = "".join(p.text for p in event.content.parts or [] if p.text and not p.thought)
    truncated = stop == types.FinishReason.MAX_TOKENS.value
    if not text.strip():
        _raise_no_answer(stop)
    steps.append("answered, cut at the token limit" if truncated else "answered")
    return AgentAnswer(
        text.strip(),
        tuple(tools_used),
        tuple(steps),
        tokens,
        bool(failed),
        model_calls,
        truncated=truncated,
    )


# Why a model may end without an answer we can send: it was blocked (finish reasons and
# prompt feedback block reasons alike land in the event's error_code, see ADK's
# LlmResponse.create), or it had nothing to say.
_NOT_BLOCKED = frozenset({"STOP", "MAX_TOKENS", "FINISH_REASON_UNSPECIFIED"})


def _stop_reason(event: Event) -> str | None:
    reason = event.error_code or event.finish_reason
    if reason is None:
        return None
    value = reason.value if isinstance(reason, types.FinishReason | types.BlockedReason) else reason
    return None if value == "STOP" else str(value)


def _raise_no_answer(stop: str | None) -> None:
    if stop is not None and stop not in _NOT_BLOCKED:
        raise PermanentAgentError(
            f"the model refused to answer ({stop})", code=ErrorCode.MODEL_BLOCKED
        )
    detail = " before its token limit cut it" if stop == "MAX_TOKENS" else ""
    raise PermanentAgentError(
        f"the model returned no answer text{detail}", code=ErrorCode.EMPTY_ANSWER
    )


def _build_agent(task: TaskType, model: BaseLlm | str, tools: dict[str, ToolFunction]) -> Agent:
    return Agent(
        name=agent_name(task),
        model=model,
        description=f"Answers WhatsApp {task.value} requests.",
        instruction=_instruction_provider(task),
        tools=[tools[name] for name in TOOLS_BY_TASK[task]],
        on_tool_error_callback=_tool_failed,
    )


def _instruction_provider(task: TaskType) -> Callable[[ReadonlyContext], str]:
    # A callable, not a string: ADK treats string instructions as templates and would fill
    # {placeholders} from the session state.
    instruction = build_instruction(task)

    def provide(_: ReadonlyContext) -> str:
        return instruction

    return provide


def _tool_failed(
    tool: BaseTool, args: dict[str, Any], tool_context: ToolContext, error: Exception
) -> dict[str, Any] | None:
    """Turn a tool's exception into a result the model can answer from, and record it."""
    if isinstance(error, asyncio.CancelledError):
        return None  # ADK ignores answers to cancelled calls; nothing to record either
    failed = [*tool_context.state.get(_STATE_FAILED_TOOLS, []), tool.name]
    tool_context.state[_STATE_FAILED_TOOLS] = failed
    summary = next(iter(str(error).splitlines()), "")  # ADK's own messages run to 10 lines
    logger.warning("tool %s failed: %s: %s", tool.name, type(error).__name__, summary)
    return {
        "status": "error",
        "error": "tool_failed",
        "code": getattr(error, "code", type(error).__name__),
        "message": "The tool failed. Apologise and suggest trying again later.",
    }
