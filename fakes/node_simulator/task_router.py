"""Choosing a request's taskType from the words of the user's message.

The Node service decides the taskType before the agent sees the message (the spec's request
carries it), so the simulator routes by a few keywords, checked in a fixed order: a message that
books a delivery slot is an appointment before it is an order.
"""

from __future__ import annotations

import re

from agent_service.contract.messages import TaskType

# Whole words, with the usual inflections, so "bookshelf" or "ordinary" route nowhere special.
_RULES: tuple[tuple[TaskType, re.Pattern[str]], ...] = (
    (
        TaskType.APPOINTMENT,
        re.compile(r"\b(?:appointments?|book(?:s|ed|ing)?|slots?)\b", re.IGNORECASE),
    ),
    (
        TaskType.ORDER,
        re.compile(r"\b(?:orders?|ordered|deliver(?:y|ies|ed)?)\b|#\d+", re.IGNORECASE),
    ),
    (
        TaskType.SEARCH,
        re.compile(
            r"\b(?:search(?:es|ing)?|find|prices?|stock|in stock)\b|\bdo\s+you\s+have\b",
            re.IGNORECASE,
        ),
    ),
)


def route_task(text: str) -> TaskType:
    """appointment / book / slot -> appointment; order / delivery / #123 -> order;
    search / find / price / stock / "do you have" -> search; anything else -> conversation."""
    for task_type, pattern in _RULES:
        if pattern.search(text):
            return task_type
    return TaskType.CONVERSATION
