"""``harness simulate``: the whole system end to end, with a report."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

from harness.postgres import server_url
from harness.report import RunReport, render
from harness.scenarios import SCENARIOS, conversation_plan, run_conversations
from harness.stack import MODELS, SimulationStack, StackOptions


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--messages", type=int, default=80, help="user messages (default %(default)s)")
    p.add_argument("--contacts", type=int, default=10, help="contacts (default %(default)s)")
    p.add_argument(
        "--model-latency",
        default="uniform:0.05:0.3",
        help="scripted model latency: SECONDS, uniform:LOW:HIGH or lognormal:MEAN:SIGMA",
    )
    p.add_argument(
        "--model",
        choices=MODELS,
        default="scripted",
        help="scripted (in-process, the default) or gemini-fake: the production path, ADK's"
        " Gemini model through google-genai and HTTP to a fake Gemini API on loopback",
    )
    p.add_argument("--scenario", choices=sorted(SCENARIOS), default="happy")
    p.add_argument("--concurrent-tasks", type=int, default=10)
    p.add_argument("--deadline", type=float, default=300, help="seconds for the whole run")
    p.add_argument("--json", metavar="PATH", help="also write the report as JSON")
    p.add_argument(
        "--node-url",
        help="the Node team's real webhook URL instead of the simulator; start it with the "
        "Wasender URL, API key and webhook secret this command prints",
    )
    p.add_argument("--wasender-port", type=int, default=0, help="fixed port for the fake Wasender")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument(
        "--replicas",
        type=int,
        default=1,
        help="agent service processes on ag_queue, sharing their state (default %(default)s)",
    )
    p.add_argument(
        "--postgres",
        nargs="?",
        const=server_url(),
        metavar="SERVER_URL",
        help="share the replicas' state in PostgreSQL: the run creates a database of its own on"
        " this server (default: HARNESS_POSTGRES_URL or the local one) and drops it at the end",
    )


async def run(args: argparse.Namespace, out: object = print) -> RunReport:
    scenario = SCENARIOS[args.scenario]
    options = StackOptions(
        model=args.model,
        model_latency=args.model_latency,
        concurrent_tasks=args.concurrent_tasks,
        node_webhook_url=args.node_url,
        wasender_port=args.wasender_port,
        replicas=max(args.replicas, scenario.min_replicas),
        postgres=args.postgres,
    )
    options = replace(options, **scenario.stack_options)
    say = out if callable(out) else print
    async with SimulationStack(options) as stack:
        say(f"broker: {stack.broker.describe()}")
        if args.node_url:
            say(f"fake Wasender: {stack.wasender.url} (API key and webhook secret in the options)")
        say(f"scenario '{scenario.name}': {scenario.description}")
        plans = conversation_plan(args.messages, args.contacts, seed=args.seed)
        began = time.monotonic()
        deadline = began + args.deadline
        fault = asyncio.create_task(scenario.fault(stack))
        await asyncio.wait_for(
            run_conversations(stack, plans, duplicate_every=scenario.duplicate_every),
            timeout=args.deadline,
        )
        await fault
        await stack.wait_all(deadline)
        report = await stack.final_report(scenario.name, time.monotonic() - began)
    return report


def main(args: argparse.Namespace) -> int:
    report = asyncio.run(run(args))
    print()
    print(render(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report.to_json(), indent=2) + "\n")
        print(f"\nJSON report written to {args.json}", file=sys.stderr)
    return 0 if report.ok else 1
