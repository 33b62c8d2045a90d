"""Model-based chaos: a Hypothesis state machine whose steps are what happens to the system.

Rules: a contact sends a burst; an agent replica is killed or started; a broker node is killed
or started; a broker link is blackholed or healed; Wasender goes down or comes back; time
passes until the next outcome. After every step the invariants hold for what has settled
(harness/chaos/invariants.py); at the end of each example everything is healed, the run is
drained, and every message must have exactly one outcome, with no reply conflicts and each
contact's replies in order.

The system is one ``SimulationStack`` (with a network and several replicas) on an event loop
of its own (``ChaosWorld``), reused across examples: Hypothesis calls the rules from plain
code, and starting a stack per example would cost seconds each.

Broker nodes are what the broker offers (``broker_nodes``): a cluster's nodes when it has
``nodes``, the broker itself when the harness controls it (a private node: killing it is a
full outage), none otherwise (the rules are then never chosen).

The Node side's link to Wasender is not blackholed: a send whose answer is held past the send
timeout is sent again, since Wasender's API has no idempotency key. That is the seam's rule
(the Node team's retry policy), not a fault of the queues; Wasender's own faults cover it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from fakes.wasender_faults import ServerError
from harness.broker import Broker, ControllableBroker
from harness.chaos.invariants import final_problems, settled_problems
from harness.fuzzing.live import LoopThread
from harness.network import Network
from harness.scenarios.conversation import TEXTS, contact_phone
from harness.stack import SimulationStack, StackOptions
from harness.waiting import WaitTimeout, wait_until

T = TypeVar("T")

CONTACTS = 4
BROKER_LINKS = ("agent-", "node")
# How long the end of an example waits for every message to settle after healing: retries of
# 1, 2, 4 s and a parked message's alert fit many times over.
DRAIN_SECONDS = 180.0
BURST_TASKS = ("conversation", "search", "order")


def broker_nodes(broker: Broker) -> list[ControllableBroker]:
    """The broker's nodes the harness may kill and start (see the module docstring)."""
    nodes = getattr(broker, "nodes", None)
    if nodes:
        return [n for n in nodes if isinstance(n, ControllableBroker)]
    return [broker] if isinstance(broker, ControllableBroker) else []


def _running(node: ControllableBroker) -> bool:
    is_running = getattr(node, "is_running", None)
    return bool(is_running()) if callable(is_running) else True


_LOOP: LoopThread | None = None


def _process_loop() -> LoopThread:
    """One loop thread for the life of the process, never closed: a broker node started from
    it dies with the thread that started it (``PR_SET_PDEATHSIG`` follows the forking thread,
    not the process), so a thread that ended would take the node with it (found: the next
    test's node restart failed, its distribution port still held)."""
    global _LOOP
    if _LOOP is None:
        _LOOP = LoopThread()
    return _LOOP


class ChaosWorld:
    """The system under chaos on its own loop thread, with what the rules did to it."""

    def __init__(self, options: StackOptions, broker: Broker) -> None:
        self.options = options
        self.broker = broker
        self.loop = _process_loop()
        self.stack = SimulationStack(options, broker=broker)
        self.steps = 0
        self.examples = 0
        self.wasender_down = False
        self._bursts: dict[int, asyncio.Task[None]] = {}
        self._said = 0
        self.history: list[str] = []  # the steps of the current example, by rule

    def _step(self, what: str) -> None:
        self.steps += 1
        self.history.append(what)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 600) -> T:
        return self.loop.run(coro, timeout)

    def open(self) -> None:
        self.run(self.stack.start())

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.run(self._heal_all(), timeout=120)
        self.run(self.stack.stop(), timeout=300)

    @property
    def network(self) -> Network:
        assert self.stack.network is not None, "the chaos stack runs with network=True"
        return self.stack.network

    # -- what the rules do -------------------------------------------------------------------

    def burst(self, contact: int, size: int) -> None:
        """The contact sends ``size`` messages one after the other, not waiting for answers;
        the rule returns at once (a webhook may take long while the broker is away)."""
        self._step("burst")
        phone = contact_phone(contact)
        texts = []
        for _ in range(size):
            task = BURST_TASKS[self._said % len(BURST_TASKS)]
            options = TEXTS[task]
            texts.append((options[self._said % len(options)].format(order=1042), task))
            self._said += 1
        before = self._bursts.get(contact)

        async def send() -> None:
            if before is not None:  # a contact's bursts go out in the order they were made
                with contextlib.suppress(Exception):
                    await before
            for text, task in texts:
                await self.stack.say(phone, text, task)

        async def schedule() -> None:
            self._bursts[contact] = asyncio.create_task(send())

        self.run(schedule())

    def live_replicas(self) -> list[int]:
        return [
            i for i, a in enumerate(self.stack.agents) if a.process and a.process.returncode is None
        ]

    def dead_replicas(self) -> list[int]:
        live = set(self.live_replicas())
        return [i for i in range(len(self.stack.agents)) if i not in live]

    def kill_replica(self, index: int) -> None:
        self._step("kill_replica")
        self.run(self.stack.agents[index].kill())

    def start_replica(self, index: int) -> None:
        # Not waiting for it to be ready: the broker may be away, and it comes up when it is.
        self._step("start_replica")
        self.run(self.stack.agents[index].start(wait_ready=False))

    def nodes(self) -> list[ControllableBroker]:
        return broker_nodes(self.broker)

    def kill_node(self, index: int) -> None:
        self._step("kill_node")
        self.run(self.nodes()[index].kill())

    def start_node(self, index: int) -> None:
        self._step("start_node")
        self.run(self.nodes()[index].start())

    def broker_links(self) -> list[str]:
        return [link.name for link in self.network.select(*BROKER_LINKS)]

    def links(self, *, held: bool) -> list[str]:
        return [n for n in self.broker_links() if self.network[n].blackholed is held]

    def blackhole(self, name: str) -> None:
        self._step("blackhole")
        self.run(self.network[name].blackhole())

    def heal(self, name: str) -> None:
        self._step("heal")
        self.run(self.network[name].heal())

    def set_wasender(self, *, down: bool) -> None:
        self._step("set_wasender")
        self.stack.wasender.clear_faults()
        if down:
            self.stack.wasender.inject(ServerError(503))
        self.wasender_down = down

    def let_time_pass(self) -> None:
        """Until one more message has its outcome, or a few seconds if none is coming."""
        self._step("let_time_pass")

        async def one_more() -> None:
            def count() -> int:
                self.stack.collect()
                return sum(1 for e in self.stack.ledger.entries if e.outcome is not None)

            target = count() + 1
            if self.stack.ledger.pending == 0:
                return  # nothing is on its way: no time needs to pass
            with contextlib.suppress(WaitTimeout):
                await wait_until(lambda: count() >= target, timeout=5, what="an outcome")

        self.run(one_more())

    # -- checks ------------------------------------------------------------------------------

    def settled_problems(self) -> list[str]:
        async def check() -> list[str]:
            return settled_problems(self.stack)

        return self.run(check())

    def heal_and_drain(self) -> list[str]:
        """Undo every fault, wait for every message, and say what is wrong (empty: nothing)."""
        self.examples += 1
        self.history = []
        return self.run(self._heal_and_drain(), timeout=DRAIN_SECONDS + 120)

    async def _heal_all(self) -> None:
        self.stack.wasender.clear_faults()
        self.wasender_down = False
        await self.network.restore()
        for node in self.nodes():
            if not _running(node):
                await node.start()
        for agent in self.stack.agents:
            if agent.process is None or agent.process.returncode is not None:
                await agent.start()

    async def _heal_and_drain(self) -> list[str]:
        await self._heal_all()
        bursts = list(self._bursts.values())
        await asyncio.gather(*bursts, return_exceptions=True)
        self._bursts.clear()
        await self.stack.wait_all(time.monotonic() + DRAIN_SECONDS)
        await asyncio.sleep(1.0)  # a late duplicate send is still seen
        return final_problems(self.stack)


def chaos_machine(world: ChaosWorld) -> type[RuleBasedStateMachine]:
    """A state machine class whose examples all run on ``world``."""

    class SystemUnderChaos(RuleBasedStateMachine):
        @rule(contact=st.integers(0, CONTACTS - 1), size=st.integers(1, 3))
        def burst(self, contact: int, size: int) -> None:
            world.burst(contact, size)

        @precondition(lambda self: len(world.live_replicas()) > 0)
        @rule(pick=st.integers(0, 15))
        def kill_replica(self, pick: int) -> None:
            live = world.live_replicas()
            world.kill_replica(live[pick % len(live)])

        @precondition(lambda self: len(world.dead_replicas()) > 0)
        @rule(pick=st.integers(0, 15))
        def start_replica(self, pick: int) -> None:
            dead = world.dead_replicas()
            world.start_replica(dead[pick % len(dead)])

        @precondition(lambda self: any(_running(n) for n in world.nodes()))
        @rule(pick=st.integers(0, 15))
        def kill_broker_node(self, pick: int) -> None:
            up = [i for i, n in enumerate(world.nodes()) if _running(n)]
            world.kill_node(up[pick % len(up)])

        @precondition(lambda self: any(not _running(n) for n in world.nodes()))
        @rule(pick=st.integers(0, 15))
        def start_broker_node(self, pick: int) -> None:
            down = [i for i, n in enumerate(world.nodes()) if not _running(n)]
            world.start_node(down[pick % len(down)])

        @precondition(
            lambda self: any(not world.network[n].blackholed for n in world.broker_links())
        )
        @rule(pick=st.integers(0, 15))
        def blackhole_link(self, pick: int) -> None:
            open_ = [n for n in world.broker_links() if not world.network[n].blackholed]
            world.blackhole(open_[pick % len(open_)])

        @precondition(lambda self: any(world.network[n].blackholed for n in world.broker_links()))
        @rule(pick=st.integers(0, 15))
        def heal_link(self, pick: int) -> None:
            held = [n for n in world.broker_links() if world.network[n].blackholed]
            world.heal(held[pick % len(held)])

        @precondition(lambda self: not world.wasender_down)
        @rule()
        def wasender_goes_down(self) -> None:
            world.set_wasender(down=True)

        @precondition(lambda self: world.wasender_down)
        @rule()
        def wasender_comes_back(self) -> None:
            world.set_wasender(down=False)

        @rule()
        def time_passes(self) -> None:
            world.let_time_pass()

        @invariant()
        def what_has_settled_is_right(self) -> None:
            problems = world.settled_problems()
            assert not problems, "; ".join(problems)

        def teardown(self) -> None:
            problems = world.heal_and_drain()
            assert not problems, "; ".join(problems)

    return SystemUnderChaos
