"""What must hold of a run at any moment (for what has settled) and at its end (for all of it).

Read from the ledger (what the user got: harness/ledger.py) and from the Node simulator's
record of every reply it consumed from wb_queue (what the agent service published).
"""

from __future__ import annotations

from collections import defaultdict

from harness.ledger import MessageOutcome
from harness.stack import SimulationStack


def reply_conflicts(stack: SimulationStack) -> dict[str, int]:
    """Requests the agent service answered with more than one different reply (a reply built
    twice has another timestamp even with the same text), and how many."""
    if stack.node is None:
        return {}
    replies: dict[str, set[tuple[str, int]]] = defaultdict(set)
    for seen in stack.node.replies_seen():
        replies[seen.original_message_id].add((seen.text, seen.built_at))
    return {request: len(built) for request, built in replies.items() if len(built) > 1}


def order_breaks(stack: SimulationStack) -> dict[str, list[str]]:
    """Contacts whose replies reached wb_queue out of the order their requests were
    published: the replied request ids, in reply order, when they are not ascending."""
    if stack.node is None:
        return {}
    replied: dict[str, list[str]] = defaultdict(list)
    for seen in stack.node.replies_seen():
        if seen.original_message_id not in replied[seen.phone]:
            replied[seen.phone].append(seen.original_message_id)
    breaks = {}
    for phone, replies in replied.items():
        published = stack.node.requests_of(phone)
        position = {request: n for n, request in enumerate(published)}
        ranks = [position[r] for r in replies if r in position]
        if ranks != sorted(ranks):
            breaks[phone] = replies
    return breaks


def settled_problems(stack: SimulationStack) -> list[str]:
    """What is wrong with what has settled so far (empty: nothing)."""
    stack.collect()
    ledger = stack.ledger
    problems = []
    if ledger.duplicates:
        problems.append(f"{len(ledger.duplicates)} sends with no message waiting (duplicates)")
    if ledger.unmatched_alerts:
        problems.append(f"{len(ledger.unmatched_alerts)} alerts for no waiting message")
    if conflicts := reply_conflicts(stack):
        problems.append(f"requests answered with different replies: {conflicts}")
    if breaks := order_breaks(stack):
        problems.append(f"replies out of order for {len(breaks)} contacts")
    return problems


def final_problems(stack: SimulationStack) -> list[str]:
    """``settled_problems`` plus: every message has exactly one outcome."""
    problems = settled_problems(stack)
    missing = [e for e in stack.ledger.entries if e.outcome in (None, MessageOutcome.MISSING)]
    if missing:
        problems.append(f"{len(missing)} of {len(stack.ledger.entries)} messages have no outcome")
    return problems
