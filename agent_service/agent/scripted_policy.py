"""What the scripted model says next: a pure function of the request it was sent.

The request's contents already hold everything: the last user text (and the quoted customer
details before it), the tool results of the current turn, the earlier turns and (in the system
instruction) the task.
Deriving each step from them keeps the model stateless, so one instance serves every session.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from google.genai import types

from agent_service.agent import answers
from agent_service.agent.prompts import (
    TASK_FIELD,
    CustomerDetails,
    read_context_block,
    read_field,
)

FAULTY_TOOL_SUFFIX = "__fault"
"""A tool name with this suffix is never registered, so ADK reports it as a failed tool."""

_ORDER_NUMBER = re.compile(r"(?<![\w\-:/.])#?(\d{3,9})(?![\w])(?![\-:/.]\d)")
_SLOT_NUMBER = re.compile(r"\bslot\s*#?\s*(\d{1,9})\b", re.IGNORECASE)
_ISO_DATE = re.compile(r"\b(\d{4}-\d{2}-\d{2})\b")


def _word_set(text: str) -> frozenset[str]:
    return frozenset(text.split())


_BOOKING_WORDS = _word_set("book booking appointment appointments slot slots schedule reserve")
_PRODUCT_WORDS = _word_set(
    "price prices cost costs buy sell sells stock product products catalogue shampoo "
    "conditioner oil mask spray brush polish moisturiser voucher vouchers cream"
)
_POLICY_WORDS = _word_set(
    "open opening hours located location address delivery shipping return returns refund "
    "pay payment services cancel reschedule"
)
_QUESTION_STARTS = _word_set("what when where how do does can is are which who why")


@dataclass(frozen=True)
class ToolCall:
    name: str
    args: dict[str, Any]


@dataclass(frozen=True)
class Turn:
    """The parts of a model request the policy decides on."""

    text: str
    task: str | None = None
    customer_name: str = ""
    earlier_user_texts: tuple[str, ...] = ()
    tool_results: tuple[tuple[str, dict[str, Any]], ...] = ()
    tools: frozenset[str] = field(default_factory=frozenset)

    @property
    def words(self) -> frozenset[str]:
        return frozenset(re.findall(r"\w+", self.text.lower()))


def read_turn(
    contents: list[types.Content], system_instruction: str, tools: frozenset[str]
) -> tuple[Turn, str]:
    """The turn a request is about, and the raw text of its last user message."""
    last = _last_user_text_index(contents)
    raw = _text_of(contents[last]) if last is not None else ""
    details = _details_of(contents[last]) if last is not None else None
    earlier = tuple(_text_of(c) for c in contents[: last or 0] if c.role == "user" and _text_of(c))
    results = tuple(
        (part.function_response.name or "", dict(part.function_response.response or {}))
        for content in contents[(last if last is not None else -1) + 1 :]
        for part in content.parts or []
        if part.function_response is not None
    )
    turn = Turn(
        text=raw,
        task=read_field(system_instruction, TASK_FIELD),
        customer_name=details.name if details is not None else "",
        earlier_user_texts=earlier,
        tool_results=results,
        tools=tools,
    )
    return turn, raw


def next_step(turn: Turn) -> ToolCall | str:
    """The next function call to make, or the final answer text."""
    if not turn.tool_results:
        call = first_call(turn)
        if call is not None:
            return call
        if turn.task == "order":
            return answers.ASK_FOR_ORDER_NUMBER
        return answers.chit_chat(turn.text, turn.customer_name, turn.earlier_user_texts)
    follow_up = _follow_up_call(turn)
    if follow_up is not None:
        return follow_up
    name, result = turn.tool_results[-1]
    return answers.from_tool_result(name, result, turn.customer_name)


def first_call(turn: Turn) -> ToolCall | None:
    """The tool the task and the user's words call for, if any (and if the agent has it)."""
    planners = {
        "order": (_order_call, _policy_call),
        "appointment": (_booking_call, _policy_call, _slots_call),
        "search": (_policy_call, _catalogue_call),
    }.get(turn.task or "", (_order_call, _booking_call, _product_call, _question_call))
    for plan in planners:
        call = plan(turn)
        if call is not None and call.name in turn.tools:
            return call
    return None


def faulty(call: ToolCall | None) -> ToolCall:
    """The same call sent to a tool name nobody registered, so the tool fails."""
    base = call or ToolCall("search_faq", {})
    return ToolCall(base.name + FAULTY_TOOL_SUFFIX, base.args)


def _order_call(turn: Turn) -> ToolCall | None:
    match = _ORDER_NUMBER.search(turn.text)
    if match is None or (turn.task != "order" and "order" not in turn.words):
        return None
    return ToolCall("get_order_status", {"order_id": match.group(1)})


def _booking_call(turn: Turn) -> ToolCall | None:
    if not turn.words & _BOOKING_WORDS:
        return None
    slot = _SLOT_NUMBER.search(turn.text)
    if slot is not None and "book" in turn.words and "book_appointment" in turn.tools:
        args = {"slot_id": int(slot.group(1))}
        return ToolCall("book_appointment", args)
    return _slots_call(turn)


def _slots_call(turn: Turn) -> ToolCall | None:
    iso = _ISO_DATE.search(turn.text)
    day = iso.group(1) if iso else next((w for w in ("today", "tomorrow") if w in turn.words), "")
    return ToolCall("list_free_slots", {"date": day})


def _policy_call(turn: Turn) -> ToolCall | None:
    if turn.words & _POLICY_WORDS and not turn.words & _BOOKING_WORDS:
        return ToolCall("search_faq", {"query": turn.text})
    return None


def _catalogue_call(turn: Turn) -> ToolCall | None:
    return ToolCall("search_catalogue", {"query": turn.text})


def _product_call(turn: Turn) -> ToolCall | None:
    return _catalogue_call(turn) if turn.words & _PRODUCT_WORDS else None


def _question_call(turn: Turn) -> ToolCall | None:
    words = turn.text.lower().split()
    if turn.text.rstrip().endswith("?") or (words and words[0] in _QUESTION_STARTS):
        return ToolCall("search_faq", {"query": turn.text})
    return None


def _follow_up_call(turn: Turn) -> ToolCall | None:
    # "book an appointment" without a slot number: list the slots, then take the first one.
    name, result = turn.tool_results[-1]
    called = {n for n, _ in turn.tool_results}
    slots = result.get("slots") or []
    if (
        name == "list_free_slots"
        and "book" in turn.words
        and "book_appointment" in turn.tools
        and "book_appointment" not in called
        and slots
    ):
        args = {"slot_id": slots[0]["slot_id"]}
        return ToolCall("book_appointment", args)
    return None


def _last_user_text_index(contents: list[types.Content]) -> int | None:
    for index in range(len(contents) - 1, -1, -1):
        content = contents[index]
        parts = content.parts or []
        has_text = any(p.text for p in parts)
        if content.role == "user" and has_text and not any(p.function_response for p in parts):
            return index
    return None


def _text_of(content: types.Content) -> str:
    """What the customer wrote: the text parts, without the quoted customer details."""
    return "".join(
        p.text
        for p in content.parts or []
        if p.text and not p.thought and read_context_block(p.text) is None
    )


def _details_of(content: types.Content) -> CustomerDetails | None:
    for part in content.parts or []:
        details = read_context_block(part.text) if part.text else None
        if details is not None:
            return details
    return None
