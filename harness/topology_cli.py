"""harness topology verify|declare|migrate|export: the topology on a live broker.

Each command reads the topology either from the built-in production values, or, with
--from-env, from the agent service's own settings (the same variables, so a deployment with
its own TTLs, retry delays or queue names is compared with what it really declares), and the
broker URL from --url or those settings. --vhost picks the virtual host.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import sys
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from agent_service.contract.topology import PROFILES, Topology
from agent_service.settings import SettingsError, load_settings
from harness.broker.select import LOCAL_URL
from harness.topology_check import definitions, verify
from harness.topology_migrate import MigrationRefused, migrate
from harness.topology_provision import Target, declare_missing, vhost_of, with_vhost

# Exit statuses, as for every harness command (harness/cli.py: EXIT_CODES).
_OK, _FOUND, _ERROR = 0, 1, 2


class _Unusable(Exception):
    """The command cannot run: bad settings, or the broker cannot be reached."""


def add_commands(sub: Any) -> None:
    """The ``topology`` command and its four actions, on the harness's subparsers."""
    topo = sub.add_parser(
        "topology",
        help="verify, declare, migrate or export the queues and exchanges",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = topo.add_subparsers(dest="action", required=True)
    v = actions.add_parser(
        "verify", help="report every queue or exchange missing or different; change nothing"
    )
    _broker_options(v)
    v.add_argument("--prefix", default="", help="name prefix of the topology to check")
    v.set_defaults(func=_verify)
    d = actions.add_parser(
        "declare",
        help="declare what is missing; change nothing that exists (differences are reported)",
    )
    _broker_options(d)
    d.set_defaults(func=_declare)
    m = actions.add_parser(
        "migrate",
        help="change queues that differ: move their messages out, redeclare, move them back",
        description="Stop the services that consume or publish to a queue before migrating it"
        " (docs/operations.md, 'Changing a queue argument'). Refuses while a queue has consumers.",
    )
    _broker_options(m)
    m.add_argument("--dry-run", action="store_true", help="say what would change, change nothing")
    m.set_defaults(func=_migrate)
    e = actions.add_parser("export", help="write a RabbitMQ definitions file (no users)")
    e.add_argument("--output", "-o", default="-", help="file path, or - for stdout")
    e.add_argument(
        "--vhost",
        default=None,
        help="virtual host of the definitions (default: /, or the settings' with --from-env)",
    )
    _from_env_option(e)
    e.set_defaults(func=_export)


def _from_env_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--from-env",
        action="store_true",
        help="the topology (and broker) of the agent service's settings: AGENT_QUEUE,"
        " MESSAGE_TTL, RETRY_DELAY, TOPOLOGY_PROFILE, ..., RABBITMQ_URL or RABBITMQ_HOST, ...",
    )
    p.add_argument(
        "--profile",
        choices=PROFILES,
        default=None,
        help="classic or quorum queues (default: classic, or TOPOLOGY_PROFILE with --from-env)",
    )


def _broker_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", default=None, help=f"AMQP URL (default: {LOCAL_URL}, or the settings')")
    p.add_argument("--vhost", default=None, help="virtual host (default: the URL's)")
    _from_env_option(p)


def _target(args: argparse.Namespace) -> Target:
    context: ssl.SSLContext | None = None
    if args.from_env:
        try:
            settings = load_settings()
        except SettingsError as exc:
            raise _Unusable(str(exc)) from None
        url = args.url or settings.amqp_url()
        topology = settings.topology()
        context = settings.ssl_context()
    else:
        url, topology = args.url or LOCAL_URL, Topology()
    if args.profile is not None:
        topology = replace(topology, profile=args.profile)
    if args.vhost is not None:
        url = with_vhost(url, args.vhost)
    if getattr(args, "prefix", ""):
        topology = topology.renamed(args.prefix)
    return Target(url, topology, context)


def _where(url: str) -> str:
    """Host, port and vhost of a URL, without its credentials (they are never printed)."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 5672} vhost '{vhost_of(url)}'"


def _run(args: argparse.Namespace, work: Callable[[Any, Target], Awaitable[int]]) -> int:
    try:
        target = _target(args)
    except _Unusable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return _ERROR

    async def go() -> int:
        try:
            connection = await target.connect()
        except (TimeoutError, OSError, ConnectionError) as exc:
            print(f"error: cannot reach the broker at {_where(target.url)}: {exc}", file=sys.stderr)
            return _ERROR
        except Exception as exc:  # aiormq's refusals (credentials, vhost) are no OSError
            print(f"error: the broker at {_where(target.url)} refused: {exc}", file=sys.stderr)
            return _ERROR
        async with connection:
            return await work(connection, target)

    return asyncio.run(go())


def _verify(args: argparse.Namespace) -> int:
    async def work(connection: Any, target: Target) -> int:
        drifts = await verify(connection, target.topology)
        for drift in drifts:
            print(f"DRIFT {drift}")
        t = target.topology
        names = len(t.queues()) + len(t.exchanges())
        where = _where(target.url)
        print(f"{names} queues and exchanges checked on {where}, {len(drifts)} differences")
        return _FOUND if drifts else _OK

    return _run(args, work)


def _declare(args: argparse.Namespace) -> int:
    async def work(connection: Any, target: Target) -> int:
        result = await declare_missing(connection, target.topology)
        for label in result.created:
            print(f"CREATED {label}")
        for drift in result.drifts:
            print(f"DRIFT {drift} (left as it is: see `harness topology migrate`)")
        print(
            f"{len(result.created)} created, {len(result.kept)} already there on"
            f" {_where(target.url)}, {len(result.drifts)} differences"
        )
        return _FOUND if result.drifts else _OK

    return _run(args, work)


def _migrate(args: argparse.Namespace) -> int:
    async def work(connection: Any, target: Target) -> int:
        try:
            result = await migrate(connection, target.topology, dry_run=args.dry_run)
        except MigrationRefused as exc:
            print(f"REFUSED {exc}")
            return _FOUND
        if args.dry_run:
            for drift in result.drifts:
                print(f"DRIFT {drift}")
            return _OK
        for label in result.created:
            print(f"CREATED {label}")
        for drift in result.remaining:
            print(f"DRIFT {drift}")
        print(f"{len(result.changed)} queues migrated, {len(result.remaining)} differences left")
        return _FOUND if result.remaining else _OK

    return _run(args, work)


def _export(args: argparse.Namespace) -> int:
    vhost = args.vhost
    topology = Topology()
    if args.from_env:
        try:
            settings = load_settings()
        except SettingsError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return _ERROR
        topology = settings.topology()
        vhost = vhost if vhost is not None else vhost_of(settings.amqp_url())
    if args.profile is not None:
        topology = replace(topology, profile=args.profile)
    text = json.dumps(definitions(topology, vhost=vhost or "/"), indent=2) + "\n"
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text)
        print(f"wrote {args.output}")
    return _OK
