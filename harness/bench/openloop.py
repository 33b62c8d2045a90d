"""End to end at a constant arrival rate: what the system adds to the model's own time.

``harness bench --only openloop --rate 50``: the whole SimulationStack (fake WhatsApp, Node
simulator, broker, agent service, fake Wasender); messages posted to the webhook on a fixed
schedule (the n-th at start + n / rate, whatever the answers: open loop), each from a new
contact; the latency of each runs from the webhook post to the send at the fake Wasender.

The scripted model sleeps a constant ``model_latency`` on every call, so a message's model time
is its number of model calls times that. The calls per text are counted beforehand with the
same scripted model in this process (deterministic: the policy follows the text and the demo
data), and the overhead of a message is its latency minus its model time: the Node side, two
broker hops, the agent service and the engine's own CPU.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from agent_service.agent import AgentEngine, ScriptedModel, open_demo_database
from agent_service.contract.messages import TaskType
from harness.bench.procstat import load_average
from harness.broker import Broker
from harness.message_factory import agent_request
from harness.report import percentile
from harness.scenarios.conversation import DEMO_ORDER_OWNERS, TASKS, TEXTS, contact_phone
from harness.stack import SimulationStack, StackOptions

LIMIT_P50_MS = 10.0
LIMIT_P99_MS = 50.0


@dataclass
class OpenLoopRun:
    rate: float
    seconds: float
    model_latency: float
    concurrent_tasks: int
    sent: int = 0
    answered: int = 0
    other_outcomes: dict[str, int] = field(default_factory=dict)
    achieved_rate: float = 0.0
    schedule_lag_max_ms: float = 0.0  # how late the generator posted its latest message
    latency_ms: dict[str, float] = field(default_factory=dict)  # p50, p95, p99, max
    model_ms: dict[str, float] = field(default_factory=dict)
    overhead_ms: dict[str, float] = field(default_factory=dict)
    load_average: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @property
    def within_limits(self) -> bool:
        return (
            self.overhead_ms.get("p50", 1e9) <= LIMIT_P50_MS
            and self.overhead_ms.get("p99", 1e9) <= LIMIT_P99_MS
        )


def _texts() -> list[tuple[str, str, str]]:
    """(task, text, phone) in turn over every text of every task, phones all new."""
    phones = iter(range(5_000_000, 6_000_000))
    out = []
    for i in range(max(len(t) for t in TEXTS.values())):
        for task in TASKS:
            phone = contact_phone(next(phones))
            text = TEXTS[task][i % len(TEXTS[task])]
            out.append((task, text.format(order=DEMO_ORDER_OWNERS.get(phone, 1042)), phone))
    return out


async def model_calls(texts: list[tuple[str, str, str]]) -> dict[str, int]:
    """The scripted model's calls for each text, counted in this process."""
    calls = 0

    def count(_: object) -> None:
        nonlocal calls
        calls += 1

    result = {}
    with open_demo_database(None) as store:
        async with AgentEngine(ScriptedModel(on_request=count), store) as engine:
            for task, text, phone in texts:
                before = calls
                await engine.run(agent_request(TaskType(task), text, phone=phone))
                result[text] = calls - before
    return result


def _summary(values: list[float]) -> dict[str, float]:
    return {
        q: round(percentile(values, p) or 0.0, 1)
        for q, p in (("p50", 50), ("p95", 95), ("p99", 99), ("max", 100))
    }


async def openloop_run(run: OpenLoopRun, broker: Broker | None = None) -> OpenLoopRun:
    texts = _texts()
    calls = await model_calls(texts)
    options = StackOptions(
        model_latency=f"{run.model_latency:g}", concurrent_tasks=run.concurrent_tasks
    )
    async with SimulationStack(options, broker=broker) as stack:
        # A few messages first: the first sessions, lazy imports and connections of a cold
        # process are paid once, before the schedule starts.
        for task, text, phone in texts[:4]:
            entry = await stack.say(phone.replace("+2567", "+2566"), text, task)
            if entry is not None:
                await stack.wait_outcome(entry, 30.0)
        skip = len(stack.ledger.entries)
        total = round(run.rate * run.seconds)
        began, lag = time.monotonic(), 0.0
        posts: set[asyncio.Task[object]] = set()
        for n in range(total):
            due = began + n / run.rate
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            lag = max(lag, time.monotonic() - due)
            task, text, _ = texts[n % len(texts)]
            phone = contact_phone(6_000_000 + n)  # every message from a new contact
            post = asyncio.create_task(stack.say(phone, text, task))
            posts.add(post)
            post.add_done_callback(posts.discard)
        run.achieved_rate = total / (time.monotonic() - began)
        await asyncio.gather(*posts)
        await stack.wait_all(time.monotonic() + 30.0 + 10 * run.model_latency)
        run.load_average = load_average()
        entries = stack.ledger.entries[skip:]
    run.sent, run.schedule_lag_max_ms = len(entries), round(lag * 1000, 1)
    latencies, models = [], []
    for entry in entries:
        outcome = entry.outcome.value if entry.outcome else "missing"
        if outcome != "reply" or entry.latency is None:
            run.other_outcomes[outcome] = run.other_outcomes.get(outcome, 0) + 1
            continue
        latencies.append(entry.latency * 1000)
        models.append(calls.get(entry.text, 1) * run.model_latency * 1000)
    run.answered = len(latencies)
    run.latency_ms, run.model_ms = _summary(latencies), _summary(models)
    run.overhead_ms = _summary([lat - m for lat, m in zip(latencies, models, strict=True)])
    return run


def render_openloop(run: OpenLoopRun) -> list[str]:
    verdict = "within" if run.within_limits else "OVER"
    other = f", other outcomes {run.other_outcomes}" if run.other_outcomes else ""

    def row(name: str, values: dict[str, float]) -> str:
        return f"  {name:<28}" + "".join(f"{values.get(q, 0):>9.1f}" for q in values)

    return [
        "",
        f"open loop end to end: {run.rate:g} messages/s for {run.seconds:g} s (achieved"
        f" {run.achieved_rate:.1f}/s, generator at most {run.schedule_lag_max_ms:.1f} ms late),"
        f" model latency {run.model_latency:g} s per call, {run.concurrent_tasks} tasks",
        f"  {run.answered} of {run.sent} answered{other}; load average {run.load_average}",
        f"  {'ms':<28}{'p50':>9}{'p95':>9}{'p99':>9}{'max':>9}",
        row("webhook to Wasender send", run.latency_ms),
        row("model time (calls x latency)", run.model_ms),
        row("overhead beyond the model", run.overhead_ms),
        f"  limits p50 <= {LIMIT_P50_MS:g} ms, p99 <= {LIMIT_P99_MS:g} ms: {verdict}",
    ]
