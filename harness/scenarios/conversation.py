"""The conversation mix: contacts that each wait for an answer before they write again."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass

from harness.stack import SimulationStack

# What customers write, by the task the Node side should route it to.
TEXTS: dict[str, list[str]] = {
    "conversation": [
        "Hello!",
        "Thanks, that helps!",
        "Good morning, how are you?",
        "Great, thank you very much",
    ],
    "appointment": [
        "Can I book an appointment tomorrow?",
        "Are there free slots for an appointment on Friday?",
        "I would like to book a slot please",
    ],
    "order": [
        "Where is my order {order}?",
        "What is the status of order {order}?",
        "Has my order {order} shipped yet?",
    ],
    "search": [
        "Do you have a phone charger in stock?",
        "Find me wireless headphones",
        "What is the price of the power bank?",
    ],
}
TASKS = list(TEXTS)


@dataclass(frozen=True)
class PlannedMessage:
    phone: str
    text: str
    task: str


def contact_phone(index: int) -> str:
    return f"+2567{index:08d}"


# Who owns which order in the agent's demo data (agent_service/agent/seed.sql; a unit test
# keeps the two in step). A contact asks about its own order; one without asks about 1042, and
# is told there is no such order of theirs, as a stranger must be.
DEMO_ORDER_OWNERS: dict[str, int] = {
    contact_phone(0): 1041,
    contact_phone(1): 1043,
    contact_phone(2): 1044,
    contact_phone(3): 1045,
    contact_phone(4): 1046,
    "+256703722777": 1042,
}


def conversation_plan(messages: int, contacts: int, seed: int = 7) -> list[list[PlannedMessage]]:
    """``messages`` turns spread over ``contacts`` conversations, every task type used."""
    rng = random.Random(seed)
    contacts = max(1, min(contacts, messages))
    plans: list[list[PlannedMessage]] = [[] for _ in range(contacts)]
    for n in range(messages):
        task = TASKS[n % len(TASKS)] if n < len(TASKS) else rng.choice(TASKS)
        phone = contact_phone(n % contacts)
        text = rng.choice(TEXTS[task]).format(order=DEMO_ORDER_OWNERS.get(phone, 1042))
        plans[n % contacts].append(PlannedMessage(phone, text, task))
    return plans


async def run_conversations(
    stack: SimulationStack,
    plans: list[list[PlannedMessage]],
    *,
    answer_timeout: float = 60.0,
    think_time: float = 0.05,
    duplicate_every: int = 0,
    bursts: bool = False,
    seed: int = 7,
) -> None:
    """Each contact sends its next message once the previous one has an outcome; with
    ``bursts``, two or three messages in a row without waiting, then waits for all of them."""
    rng = random.Random(seed)

    def duplicated(i: int) -> bool:
        return bool(duplicate_every) and i % duplicate_every == duplicate_every - 1

    async def chain(turns: list[PlannedMessage]) -> None:
        start = 0
        while start < len(turns):
            size = rng.choice((2, 3)) if bursts else 1
            group = enumerate(turns[start : start + size], start)
            entries = [
                await stack.say(turn.phone, turn.text, turn.task, duplicate=duplicated(i))
                for i, turn in group
            ]
            start += size
            await asyncio.gather(
                *(stack.wait_outcome(e, answer_timeout) for e in entries if e is not None)
            )
            await asyncio.sleep(rng.uniform(0, think_time))

    await asyncio.gather(*(chain(turns) for turns in plans))
