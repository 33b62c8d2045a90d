"""``harness simulate``: the whole system end to end, with a report."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from agent_service.contract.topology import PROFILES
from harness.broker import Broker, BrokerCluster, BrokerError, PrivateNode, choose_broker
from harness.broker.external import ExternalBroker
from harness.broker.select import CHOICES
from harness.fakes_cli import ENV_OF_KEY, ENV_OF_SIGNATURE
from harness.ledger import Entry
from harness.node_service import ENV_NODE_URL, ENV_WASENDER_PORT, NodeServiceError
from harness.postgres import server_url
from harness.process_tools import free_port
from harness.report import RunReport, render
from harness.scenarios import SCENARIOS, Scenario, conversation_plan, run_conversations
from harness.stack import MODELS, SimulationStack, StackOptions
from harness.timeline import Timeline

# How often the HTML report's queue depths are sampled during a run.
DEPTH_INTERVAL = 0.5


def scenario_help() -> str:
    """The scenarios and what each does, for ``harness simulate --help``."""
    width = max(len(name) for name in SCENARIOS)
    lines = ["scenarios:"]
    lines += [f"  {s.name:<{width}}  {s.description}" for s in SCENARIOS.values()]
    return "\n".join(lines)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = (
        scenario_help()
        + "\n\nexit status: 0 every message had exactly one outcome; 1 a message was lost or"
        "\nduplicated; 2 it could not run (no broker, a scenario that needs a private node or a"
        "\ncluster)."
    )
    p.add_argument("--messages", type=int, default=80, help="user messages (default %(default)s)")
    p.add_argument("--contacts", type=int, default=10, help="contacts (default %(default)s)")
    p.add_argument(
        "--model-latency",
        default="uniform:0.05:0.3",
        help="scripted model latency: SECONDS, uniform:LOW:HIGH or lognormal:MEAN:SIGMA"
        " (default %(default)s)",
    )
    p.add_argument(
        "--model",
        choices=MODELS,
        default="scripted",
        help="scripted (in-process, the default) or gemini-fake: the production path, ADK's"
        " Gemini model through google-genai and HTTP to a fake Gemini API on loopback",
    )
    p.add_argument(
        "--scenario",
        choices=list(SCENARIOS),
        default="happy",
        help="what goes wrong during the run (default %(default)s; see below)",
    )
    p.add_argument(
        "--concurrent-tasks",
        type=int,
        default=10,
        help="CONCURRENT_TASKS of the agent service (default %(default)s)",
    )
    p.add_argument(
        "--deadline", type=float, default=300, help="seconds for the whole run (default 300)"
    )
    p.add_argument("--json", metavar="PATH", help="also write the report as JSON")
    p.add_argument(
        "--html",
        metavar="PATH",
        help="also write a self-contained HTML page: a timeline (messages/s, latency p50/p95,"
        " queue depths, outcomes, faults) and the summary table",
    )
    node = p.add_argument_group(
        "the Node team's real service (contracts/README.md, 'Running the harness against your"
        " service')"
    )
    node.add_argument(
        "--node-url",
        default=os.environ.get(ENV_NODE_URL) or None,
        help="its webhook URL, instead of the Node simulator (default: $HARNESS_NODE_URL). The"
        " run uses the production queue names on --broker-url, verifies them against the"
        " contract first, declares only what is missing and deletes nothing",
    )
    node.add_argument(
        "--broker-url",
        default=None,
        help="the broker the Node service uses (default: $HARNESS_BROKER_URL); needed with"
        " --node-url",
    )
    node.add_argument(
        "--wasender-port",
        type=int,
        default=int(os.environ.get(ENV_WASENDER_PORT) or 0),
        help="fixed port of the fake Wasender (default: $HARNESS_WASENDER_PORT; with --node-url"
        " a free one is chosen and printed)",
    )
    node.add_argument(
        "--wasender-api-key",
        default=os.environ.get(ENV_OF_KEY) or None,
        help="the fake Wasender's API key (default: $HARNESS_WASENDER_API_KEY, else generated and"
        " printed)",
    )
    node.add_argument(
        "--webhook-secret",
        default=os.environ.get(ENV_OF_SIGNATURE) or None,
        help="the webhook signature secret (default: $HARNESS_WEBHOOK_SECRET, else generated and"
        " printed)",
    )
    node.add_argument(
        "--alert-port",
        type=int,
        default=0,
        help="fixed port of the alert receiver (ALERT_URL; with --node-url a free one is chosen)",
    )
    node.add_argument(
        "--node-timeout",
        type=float,
        default=30.0,
        help="seconds the Node service may take to answer at the start (default %(default)s)",
    )
    p.add_argument(
        "--seed", type=int, default=7, help="seed of the conversation mix (default %(default)s)"
    )
    p.add_argument(
        "--replicas",
        type=int,
        default=1,
        help="agent service processes on ag_queue, sharing their state (default %(default)s)",
    )
    p.add_argument(
        "--broker",
        choices=CHOICES,
        default=None,
        help="how to get the broker, as HARNESS_BROKER says (default: HARNESS_BROKER, else"
        " auto); cluster: three private nodes in one cluster",
    )
    p.add_argument(
        "--topology-profile",
        choices=PROFILES,
        default=None,
        help="TOPOLOGY_PROFILE of both sides: classic or quorum queues (default: classic, or"
        " what the scenario needs)",
    )
    p.add_argument(
        "--postgres",
        nargs="?",
        const=server_url(),
        metavar="SERVER_URL",
        help="share the replicas' state in PostgreSQL: the run creates a database of its own on"
        " this server (default: HARNESS_POSTGRES_URL or the local one) and drops it at the end",
    )


def _node_options(
    args: argparse.Namespace, options: StackOptions, out: Callable[[str], object]
) -> StackOptions:
    """The options of a run against a real Node service, printed before anything starts:
    the Node service is started with them (a generated key or port is known only here)."""
    options = replace(
        options,
        node_webhook_url=args.node_url,
        wasender_port=args.wasender_port or free_port(),
        alert_port=getattr(args, "alert_port", 0) or free_port(),
        wasender_api_key=args.wasender_api_key or options.wasender_api_key,
        webhook_secret=args.webhook_secret or options.webhook_secret,
        node_timeout=getattr(args, "node_timeout", 30.0),
    )
    out("Start the Node service with these settings (or give yours with the options):")
    out(f"  WASENDER_API_URL=http://127.0.0.1:{options.wasender_port}")
    out(f"  WASENDER_API_KEY={options.wasender_api_key}")
    out(f"  WEBHOOK_SECRET={options.webhook_secret}")
    out(f"  ALERT_URL=http://127.0.0.1:{options.alert_port}/alerts")
    return options


def _node_broker(args: argparse.Namespace) -> Broker:
    url = getattr(args, "broker_url", None) or os.environ.get("HARNESS_BROKER_URL", "")
    if not url:
        raise NodeServiceError(
            "--node-url needs --broker-url (or HARNESS_BROKER_URL): the broker the Node service"
            " uses; a broker the harness starts itself is not known to it before the run"
        )
    return ExternalBroker(url)


@dataclass(frozen=True)
class SimulationResult:
    """A run's report, and the raw material of its timeline."""

    report: RunReport
    entries: list[Entry]
    timeline: Timeline


def broker_for(scenario: Scenario, choice: str | None = None) -> Broker:
    """The broker the run will use, refused before anything starts when the scenario would
    stop or kill a broker the harness does not own (found: a traceback mid-run)."""
    env = dict(os.environ)
    if choice is not None:
        env["HARNESS_BROKER"] = choice
    broker = choose_broker(env)
    _check_broker(scenario, broker)
    return broker


def _check_broker(scenario: Scenario, broker: Broker) -> None:
    if scenario.needs_cluster and not isinstance(broker, BrokerCluster):
        raise BrokerError(
            f"scenario '{scenario.name}' kills nodes of a cluster, so it needs a cluster that"
            f" the harness starts itself; this run would use a {broker.kind} broker. Run it"
            " with --broker cluster (or HARNESS_BROKER=cluster, without HARNESS_BROKER_URLS)"
        )
    if scenario.needs_private_node and not isinstance(broker, PrivateNode):
        raise BrokerError(
            f"scenario '{scenario.name}' stops or kills the broker, so it needs a private"
            f" rabbitmq-server node that the harness starts itself; this run would use a"
            f" {broker.kind} broker. Run it with HARNESS_BROKER=private (and without"
            " HARNESS_BROKER_URL), on a machine with rabbitmq-server installed"
        )


async def run(
    args: argparse.Namespace, out: Callable[[str], object] = print, broker: Broker | None = None
) -> SimulationResult:
    """One run of ``args``; on ``broker`` if given (it must be running), else on one of its
    own, chosen and checked before anything starts."""
    scenario = SCENARIOS[args.scenario]
    if broker is not None:
        _check_broker(scenario, broker)
    options = StackOptions(
        model=args.model,
        model_latency=args.model_latency,
        concurrent_tasks=args.concurrent_tasks,
        replicas=max(args.replicas, scenario.min_replicas),
        postgres=args.postgres,
    )
    options = replace(options, **scenario.stack_options)
    node_broker: Broker | None = None  # the Node service's, entered below like one of ours
    if getattr(args, "node_url", None):
        options = _node_options(args, options, out)
        if broker is None:
            node_broker = _node_broker(args)
            _check_broker(scenario, node_broker)
    profile = getattr(args, "topology_profile", None)
    if profile is not None:
        options = replace(options, topology_profile=profile)
    async with contextlib.AsyncExitStack() as exits:
        if broker is None:
            broker = await exits.enter_async_context(
                node_broker or broker_for(scenario, getattr(args, "broker", None))
            )
        stack = await exits.enter_async_context(SimulationStack(options, broker=broker))
        return await _drive(stack, scenario, args, out)
    raise AssertionError("unreachable")  # pragma: no cover - the block returns or raises


async def _drive(
    stack: SimulationStack,
    scenario: Scenario,
    args: argparse.Namespace,
    out: Callable[[str], object],
) -> SimulationResult:
    out(f"broker: {stack.broker.describe()}")
    if stack.provisioned is not None:
        created = ", ".join(stack.provisioned.created) or "nothing"
        out(f"Node service at {stack.webhook_url}: the topology agrees; created {created}")
    out(f"scenario '{scenario.name}': {scenario.description}")
    messages = max(args.messages, scenario.min_messages)
    plans = conversation_plan(messages, args.contacts, seed=args.seed)
    timeline = Timeline()
    sampler = asyncio.create_task(timeline.sample_depths(stack.depths, DEPTH_INTERVAL))
    try:
        deadline = timeline.began + args.deadline
        fault = asyncio.create_task(scenario.inject(stack, timeline))
        try:
            await asyncio.wait_for(
                run_conversations(
                    stack, plans, duplicate_every=scenario.duplicate_every, bursts=scenario.bursts
                ),
                timeout=args.deadline,
            )
        except TimeoutError:
            # The report still comes, with what had no outcome as missing (exit status 1).
            out(f"deadline of {args.deadline:g} s passed: the report counts what came by then")
            fault.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await fault
        await stack.wait_all(deadline)
        report = await stack.final_report(
            scenario.name, time.monotonic() - timeline.began, timeline.faults
        )
        report.failover_seconds = timeline.failover_seconds(
            [s.received_at for s in stack.wasender.sends]
        )
    finally:
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
    return SimulationResult(report, list(stack.ledger.entries), timeline)


def main(args: argparse.Namespace) -> int:
    result = asyncio.run(run(args))
    report = result.report
    print()
    print(render(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report.to_json(), indent=2) + "\n")
        print(f"\nJSON report written to {args.json}", file=sys.stderr)
    if args.html:
        from harness.html_report import render_html

        Path(args.html).write_text(render_html(report, result.entries, result.timeline))
        print(f"HTML report written to {args.html}", file=sys.stderr)
    return 0 if report.ok else 1
