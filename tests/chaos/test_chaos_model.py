"""Model-based chaos (harness/chaos/): the state machine's examples on one stack, with fixed
seeds and a small step budget; ``harness chaos --minutes N`` runs it long."""

from __future__ import annotations

import pytest

from harness.broker import PrivateNode
from harness.chaos.model import ChaosWorld, broker_nodes
from harness.chaos.runner import chaos_options, run_examples
from harness.postgres import server_url

pytestmark = [pytest.mark.chaos, pytest.mark.slow]

# Hypothesis's first example is its simplest; the others are drawn from the seed.
SEED, EXAMPLES, STEPS = 2026, 3, 6


def test_every_message_has_one_outcome_whatever_the_faults_interleave(
    controlled_node: PrivateNode,
) -> None:
    assert broker_nodes(controlled_node) == [controlled_node]
    world = ChaosWorld(chaos_options(server_url()), controlled_node)
    world.open()
    try:
        run_examples(world, SEED, EXAMPLES, STEPS, shrink=False)
    finally:
        world.close()
    assert world.examples == EXAMPLES
    assert len(world.stack.ledger.entries) > 0  # the seed's examples send messages
