"""Envelopes from Hypothesis published to the running agent service (a process of its own):
a valid one gets exactly one conforming reply, an invalid one lands in dlx_agent once with its
reason, and the service keeps consuming. A short fixed-seed budget; `harness fuzz --minutes N`
runs the same check for longer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agent_service.contract.topology import Topology, declare, delete
from harness.agent_process import AgentServiceProcess
from harness.broker import Broker
from harness.fuzzing.envelopes import Envelope
from harness.fuzzing.live import LiveTarget, LoopThread, Tally
from harness.fuzzing.runner import fuzz_round
from harness.namespaces import run_prefix

pytestmark = [pytest.mark.fuzz, pytest.mark.e2e, pytest.mark.slow]


class Rig:
    def __init__(self, broker: Broker, log_dir: Path) -> None:
        self.loop = LoopThread()
        self.topology = Topology().renamed(run_prefix())
        self.service = AgentServiceProcess(
            broker.url, self.topology, log_path=log_dir / "agent.log", concurrent_tasks=10
        )
        self.target = LiveTarget(
            broker.url, self.topology, f"http://127.0.0.1:{self.service.health_port}/metrics"
        )
        self._url = broker.url

    async def start(self) -> None:
        import aio_pika

        async with await aio_pika.connect(self._url) as connection:
            await declare(await connection.channel(), self.topology)
        await self.service.start()
        await self.target.start()

    async def stop(self) -> None:
        import aio_pika

        await self.target.close()
        await self.service.terminate()
        async with await aio_pika.connect(self._url) as connection:
            await delete(await connection.channel(), self.topology)


@pytest.fixture
def rig(broker: Broker, tmp_path: Path) -> Iterator[Rig]:
    rig = Rig(broker, tmp_path)
    rig.loop.run(rig.start())
    try:
        yield rig
    finally:
        rig.loop.run(rig.stop())
        rig.loop.close()


def test_every_envelope_gets_the_outcome_the_contract_names(rig: Rig) -> None:
    tally = Tally()
    fuzz_round(rig.target, rig.loop, tally, examples=25, seed_value=20261201, batch=8, shrink=False)
    assert not tally.failures, tally.failures
    outcomes = tally.by_outcome()
    assert outcomes["dead-letter"] > 0 and outcomes["reply:success"] > 0
    assert rig.service.process is not None and rig.service.process.returncode is None


def test_the_check_catches_a_wrong_outcome(rig: Rig) -> None:
    # The oracle itself: an envelope the contract calls invalid but labelled valid must fail.
    body = b'{"not": "a request"}'
    with pytest.raises(AssertionError, match="a valid request was dead-lettered"):
        rig.loop.run(rig.target.exchange([Envelope("mislabelled", body, True, "req-x")]))
