"""The ``harness`` command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from agent_service.contract.version import CONTRACT_VERSION
from harness import contract_files, contract_node, contract_versions, simulate
from harness.broker import BrokerError
from harness.smoke import smoke
from harness.topology_cli import add_commands as add_topology_commands

# Every harness command exits with one of these (docs/reference.md lists them, from here).
EXIT_CODES: dict[int, str] = {
    0: "done: every check passed (simulate: every message had exactly one outcome)",
    1: "done, and something was found: a message lost or duplicated, a topology difference,"
    " a stale or invalid contract file, a refused migration",
    2: "could not run: a bad argument or setting, no broker, the broker unreachable, a"
    " scenario that needs a private node on another broker",
    130: "interrupted (Ctrl-C)",
}


def _contracts_generate() -> int:
    written = contract_files.generate()
    print("\n".join(f"wrote {p}" for p in written) or "contracts are up to date")
    return 0


def _contracts_check() -> int:
    """Up to date, accepted by the official AsyncAPI parser, and a consistent released version."""
    problems = [
        f"STALE contracts/{rel}: run `harness contracts generate` and commit the result"
        for rel in contract_files.stale()
    ]
    try:
        problems += contract_versions.check()
    except contract_node.NodeToolsMissing as exc:
        problems.append(f"ASYNCAPI {exc}")
    print("\n".join(problems) or "contracts are up to date, valid AsyncAPI, and released")
    return 1 if problems else 0


def _contracts_release() -> int:
    stale = contract_files.stale()
    if stale:
        print(f"STALE {', '.join(stale)}: run `harness contracts generate` first")
        return 1
    try:
        written = contract_versions.release()
    except contract_versions.ReleaseRefused as exc:
        print("\n".join(f"REFUSED {p}" for p in exc.problems))
        return 1
    version = CONTRACT_VERSION
    if written is None:
        print(f"version {version} is already released")
    else:
        print(f"released {version}: wrote {written}; commit it with CHANGELOG.md")
    return 0


def _contracts(args: argparse.Namespace) -> int:
    actions = {
        "generate": _contracts_generate,
        "check": _contracts_check,
        "release": _contracts_release,
    }
    return actions[args.action]()


def _reference(args: argparse.Namespace) -> int:
    from harness import reference

    if args.action == "generate":
        written = reference.generate()
        print("\n".join(f"wrote {p}" for p in written) or "the reference is up to date")
        return 0
    found = reference.problems()
    print("\n".join(found) or "the reference is up to date")
    return 1 if found else 0


def _smoke(args: argparse.Namespace) -> int:
    return 0 if asyncio.run(smoke()) else 1


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="harness",
        description="A real RabbitMQ broker and fakes of every other party: run, check and"
        " measure the whole WhatsApp agent system on one machine (docs/reference.md).",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no log lines, only results")
    sub = p.add_subparsers(dest="command", required=True)

    add_topology_commands(sub)

    c = sub.add_parser(
        "contracts",
        help="regenerate, check or release the files in contracts/",
        description=(
            "generate: write contracts/ from the models. check: the files are up to date, the "
            "official AsyncAPI parser accepts asyncapi.yaml, and its version is released with "
            "a bump that fits its changes (contracts/README.md). release: snapshot the current "
            "version into contracts/versions/."
        ),
    )
    c.add_argument("action", choices=["generate", "check", "release"])
    c.set_defaults(func=_contracts)

    r = sub.add_parser(
        "reference",
        help="regenerate or check docs/reference.md and deploy/agent-service.env.example",
        description="generate: write the operations reference and the example .env from the"
        " code (settings, metrics, error codes, exit codes, these commands). check: exit 1 when"
        " a committed file is stale or a setting has no description.",
    )
    r.add_argument("action", choices=["generate", "check"])
    r.set_defaults(func=_reference)

    s = sub.add_parser("smoke", help="broker smoke run: topology, one message each way")
    s.set_defaults(func=_smoke)

    sim = sub.add_parser("simulate", help="the whole system end to end, with a report")
    simulate.add_arguments(sim)
    sim.set_defaults(func=simulate.main)

    b = sub.add_parser("bench", help="replies/s, latency, memory and recovery figures")
    from harness.bench import command as bench

    bench.add_arguments(b)
    b.set_defaults(func=bench.main)

    from harness import fakes_cli

    fakes_cli.add_arguments(
        sub.add_parser("fakes", help="the fakes standalone: serve, send-webhook")
    )

    from harness.conformance import command as conformance

    conformance.add_arguments(sub.add_parser("conformance", help="the Node side's checks"))
    from harness.fuzzing import webhook_runner

    webhook_runner.add_arguments(
        sub.add_parser("fuzz-webhook", help="Hypothesis webhook events against the Node side")
    )
    ch = sub.add_parser(
        "chaos",
        help="a Hypothesis state machine of faults over the whole system, for minutes",
        description="Bursts, replica and broker node kills, blackholed links and Wasender"
        " outages, interleaved by Hypothesis; the ledger is checked after every step and at the"
        " end of each example. A failure is shrunk and its steps printed. Exit 1 on a failure.",
    )
    ch.set_defaults(func=_chaos)
    _chaos_arguments(ch)

    f = sub.add_parser("fuzz", help="Hypothesis envelopes against the running agent service")
    f.set_defaults(func=_fuzz)
    _fuzz_arguments(f)
    return p


def _fuzz_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--minutes", type=float, default=1.0, help="how long (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="first Hypothesis seed (default 0)")
    p.add_argument("--batch", type=int, default=8, help="envelopes per example (default 8)")
    p.add_argument(
        "--db",
        default=".hypothesis/live-envelopes",
        help="example database: failing examples are saved here and replayed first",
    )


def _chaos_arguments(p: argparse.ArgumentParser) -> None:
    from harness.chaos import runner

    runner.add_arguments(p)


def _chaos(args: argparse.Namespace) -> int:
    from harness.chaos import runner

    return runner.main(args)


def _fuzz(args: argparse.Namespace) -> int:
    try:  # Hypothesis comes with the test extra, not with the service
        from harness.fuzzing import runner
    except ImportError as exc:
        print(f"error: harness fuzz needs the test extra ({exc}): pip install -e '.[test]'")
        return 2
    return runner.main(args)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # Reconnect chatter from the AMQP clients and the fakes' expected failures during fault
    # scenarios would bury the report; the report itself accounts for every message.
    for name in ("aiormq", "aio_pika"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    logging.getLogger("fakes").setLevel(logging.CRITICAL if args.quiet else logging.ERROR)
    try:
        return int(args.func(args))
    except BrokerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
