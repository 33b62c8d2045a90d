"""``harness conformance``: the spec's Node-side behaviours as named checks, with evidence.

    harness conformance                                  # our Node simulator
    harness conformance --broken no-retries              # a deliberately broken simulator
    harness conformance --url http://127.0.0.1:3000/webhook --broker-url "$AMQP_URL" \\
        --secret "$WEBHOOK_SECRET" --wasender-port 8081 --wasender-api-key dev-key \\
        --alerts-port 8082 --junit-xml conformance.xml

Against a real service: start it first, sending through http://127.0.0.1:<wasender-port>/api
with that key and alerting http://127.0.0.1:<alerts-port>/alerts, with short retry delays if
the run should be quick; the harness plays WhatsApp and the agent on its queues (production
names), so no agent service may consume them meanwhile. Exit code: the number of failed checks
(2 when it could not run at all).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

from agent_service.contract.topology import Topology
from harness.broker import choose_broker
from harness.conformance.checks import CHECKS
from harness.conformance.rig import PartyOptions, parties, simulator
from harness.conformance.runner import (
    CheckResult,
    failures,
    render,
    run_checks,
    select,
    to_json,
    to_junit,
)
from harness.conformance.target import Target
from harness.conformance.variants import variants
from harness.namespaces import topology_for

ENV_OF_SIGNATURE = "HARNESS_WEBHOOK_SECRET"
ENV_OF_KEY = "HARNESS_WASENDER_API_KEY"
# Our simulator retries a failed send after these (the production ones are 30 s, 60 s, 120 s).
QUICK_RETRY_DELAYS_MS = (1_000, 2_000, 4_000)


def add_arguments(p: argparse.ArgumentParser) -> None:
    names = ", ".join(c.name for c in CHECKS)
    p.description = (__doc__ or "").split("\n\n")[0] + f" Checks: {names}."
    p.add_argument("--url", default=None, help="the Node service's webhook (default: ours)")
    p.add_argument("--broker-url", default=None, help="with --url: the broker it uses")
    p.add_argument("--secret", default=os.environ.get(ENV_OF_SIGNATURE),
                   help=f"its webhook secret (default ${ENV_OF_SIGNATURE})")  # fmt: skip
    p.add_argument("--wasender-port", type=int, default=0, help="with --url: the fake's port")
    p.add_argument("--wasender-api-key", default=os.environ.get(ENV_OF_KEY),
                   help=f"with --url: the key it sends with (default ${ENV_OF_KEY})")  # fmt: skip
    p.add_argument("--alerts-port", type=int, default=0, help="with --url: the alert receiver")
    p.add_argument("--only", action="append", default=None, metavar="CHECK",
                   help="run only this check (repeatable)")  # fmt: skip
    p.add_argument("--broken", default=None, metavar="VARIANT",
                   choices=[v.name for v in variants("")],
                   help="our simulator broken on purpose (conformance/variants.py)")  # fmt: skip
    p.add_argument("--patience", type=float, default=None,
                   help="seconds an outcome may take (default 15; 200 with --url, as the"
                   " spec's retries wait 30 s + 60 s + 120 s)")  # fmt: skip
    p.add_argument("--json", type=Path, default=None, help="write the results as JSON here")
    p.add_argument("--junit-xml", type=Path, default=None, help="write JUnit XML here")
    p.set_defaults(func=main)


@contextlib.asynccontextmanager
async def _target(args: argparse.Namespace) -> AsyncIterator[Target]:
    if args.url:
        options = PartyOptions(
            args.broker_url,
            Topology(),
            args.secret,
            wasender_port=args.wasender_port,
            wasender_api_key=args.wasender_api_key or "",
            alerts_port=args.alerts_port,
            patience=args.patience or 200.0,
        )
        async with parties(options, args.url) as target:
            yield target
        return
    async with choose_broker() as broker:
        base = replace(Topology(), webhook_retry_delays_ms=QUICK_RETRY_DELAYS_MS)
        topology = topology_for(broker, base)
        async with simulator(broker.url, topology, args.broken, args.patience or 15.0) as target:
            yield target


async def _run(args: argparse.Namespace) -> tuple[str, list[CheckResult]]:
    checks = select(args.only)
    async with _target(args) as target:
        label = (
            args.url or f"the Node simulator{f' (broken: {args.broken})' if args.broken else ''}"
        )
        return label, await run_checks(target, checks)


def main(args: argparse.Namespace) -> int:
    if args.url and not args.broker_url:
        print("error: --url needs --broker-url", file=sys.stderr)
        return 2
    try:
        select(args.only)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    label, results = asyncio.run(_run(args))
    print(render(results, f"Conformance of {label}"))
    if args.json is not None:
        args.json.write_text(to_json(results, label) + "\n")
    if args.junit_xml is not None:
        args.junit_xml.write_text(to_junit(results, label) + "\n")
    return min(failures(results), 125)
