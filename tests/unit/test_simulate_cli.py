"""``harness simulate``: its help explains every scenario, and a scenario that would stop or
kill the broker is refused before anything starts on a broker the harness does not own."""

from __future__ import annotations

import time

import pytest

from harness import cli
from harness.scenarios import SCENARIOS
from harness.timeline import FaultSpan, Timeline

pytestmark = pytest.mark.unit


def test_help_describes_every_scenario_and_the_exit_status(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        cli.main(["simulate", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    for scenario in SCENARIOS.values():
        assert f"{scenario.name} {scenario.description}" in text
    assert "exit status: 0" in text and "--html PATH" in text


@pytest.mark.parametrize("name", [s.name for s in SCENARIOS.values() if s.needs_private_node])
def test_a_broker_scenario_on_an_external_broker_is_refused_before_it_starts(
    name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Port 1: nothing listens there, so a run that started anything would fail differently.
    monkeypatch.setenv("HARNESS_BROKER", "external")
    monkeypatch.setenv("HARNESS_BROKER_URL", "amqp://127.0.0.1:1/")
    began = time.monotonic()
    code = cli.main(["simulate", "--scenario", name, "--messages", "2"])
    err = capsys.readouterr().err
    assert code == 2
    assert f"scenario '{name}'" in err and "HARNESS_BROKER=private" in err
    assert "Traceback" not in err
    assert time.monotonic() - began < 5


def test_scenarios_that_need_a_private_node_are_the_ones_that_control_the_broker() -> None:
    assert {s.name for s in SCENARIOS.values() if s.needs_private_node} == {
        "broker-restart",
        "broker-kill",
    }


@pytest.mark.parametrize("name", [s.name for s in SCENARIOS.values() if s.needs_cluster])
def test_a_cluster_scenario_on_a_single_broker_is_refused_before_it_starts(
    name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HARNESS_BROKER", "external")
    monkeypatch.setenv("HARNESS_BROKER_URL", "amqp://127.0.0.1:1/")
    code = cli.main(["simulate", "--scenario", name, "--messages", "2"])
    err = capsys.readouterr().err
    assert code == 2
    assert f"scenario '{name}'" in err and "--broker cluster" in err
    assert "Traceback" not in err
    assert {s.name for s in SCENARIOS.values() if s.needs_cluster} == {
        "node-loss",
        "rolling-restart",
    }
    assert SCENARIOS[name].stack_options["topology_profile"] == "quorum"


def test_failover_is_the_longest_stall_in_replies_after_each_node_loss() -> None:
    timeline = Timeline(began=0.0)
    timeline.faults = [
        FaultSpan("node 1 killed", 10.0, 20.0, failover=True),
        FaultSpan("Wasender 503", 12.0, 13.0),  # not a node loss: no failover measured
        FaultSpan("node 2 restarted", 50.0, 60.0, failover=True),
        FaultSpan("node 3 restarted", 99.0, None, failover=True),  # no reply after it
    ]
    # Node 1: one reply already under way leaves at 10.1, then nothing until 13.2.
    # Node 2: the loss falls into a pause of 48.0 .. 51.5.
    replies = [1.0, 9.5, 10.1, 13.2, 14.0, 48.0, 51.5, 52.0, 90.0]
    assert timeline.failover_seconds(replies, window=10.0) == [3.1, 3.5]
