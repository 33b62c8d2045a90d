"""What a change to the AsyncAPI document means for the other team: the version bump it needs.

@asyncapi/diff classifies the document's structure (a removed channel is breaking, a new one
is not) but leaves everything inside a payload schema, and every binding, "unclassified". Those
are the changes that matter most here, so this module finishes the job:

- inside a payload: a new property is an addition (both sides' readers ignore unknown fields);
  a change to a ``title``, ``description`` or ``examples`` is documentation; anything else (a
  new or dropped ``required`` entry, an enum value, a type, a pattern, a bound, a removed
  property) is breaking, because one side's messages would stop validating on the other side;
- a binding change is breaking: RabbitMQ refuses to redeclare a queue with other arguments
  (PRECONDITION_FAILED), and the publish and ack rules are what each side codes against;
- except a new topology profile: adding a channel binding's ``x-arguments-<profile>`` (the
  queue's arguments under ``TOPOLOGY_PROFILE=<profile>``) is an addition, since a side that
  keeps the default profile declares what it did before; changing or removing one is breaking;
- whatever no rule vouches for is breaking: a wrong guess costs a major version, a missed
  break costs an outage.

Ignored: ``/info/version`` (the thing being decided, which @asyncapi/diff calls breaking) and
``/components`` (a component matters only where a channel or operation uses it, and the
dereferenced document repeats it there; an unused one changes no message).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum

from harness.contract_node import Change


class Bump(IntEnum):
    """The smallest version bump a set of changes needs, in semantic-versioning order."""

    NONE = 0
    PATCH = 1  # documentation only
    MINOR = 2  # additions a side may start to use; nothing breaks
    MAJOR = 3  # breaking

    @property
    def kind(self) -> str:
        """What a change needing this bump is called in reports."""
        return ("no change", "documentation", "addition", "breaking")[self]


IGNORED_PREFIXES = ("/info/version", "/components")
# The schemas of a message: their content is JSON Schema, with the rules below.
SCHEMA_KEYS = frozenset({"payload", "headers"})
# JSON Schema keywords whose next path segment is a property (or definition) name.
NAME_MAPS = frozenset(
    {"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"}
)
SCHEMA_ANNOTATIONS = frozenset({"title", "description", "examples", "$comment"})
# Document fields (outside schemas) that only explain.
DOC_FIELDS = frozenset(
    {"title", "summary", "description", "examples", "externalDocs", "tags", "contact", "license"}
)


def _segments(path: str) -> list[str]:
    return [s.replace("~1", "/").replace("~0", "~") for s in path.split("/")[1:]]


def _schema_bump(action: str, rest: list[str]) -> Bump:
    """A change at ``rest``, a path inside a payload or headers schema."""
    keywords: list[str] = []
    i = 0
    ends_on_property = False
    while i < len(rest):
        segment = rest[i]
        if segment.isdigit():  # an index into anyOf, required, enum, ...
            i += 1
            continue
        keywords.append(segment)
        if segment in NAME_MAPS and i + 1 < len(rest):
            ends_on_property = i + 2 == len(rest)
            i += 2
        else:
            ends_on_property = False
            i += 1
    if SCHEMA_ANNOTATIONS.intersection(keywords):
        return Bump.PATCH
    if ends_on_property and keywords[-1] == "properties" and action == "add":
        return Bump.MINOR
    return Bump.MAJOR


def bump_for(change: Change) -> Bump:
    """The bump one change needs (NONE when it is ignored)."""
    if change.path.startswith(IGNORED_PREFIXES):
        return Bump.NONE
    segments = _segments(change.path)
    for i, segment in enumerate(segments):
        # `payload` under a message (…/messages/<name>/payload); a later key of that name is
        # inside the schema, where the schema rules decide.
        if segment in SCHEMA_KEYS and i >= 2 and segments[i - 2] == "messages":
            if i + 1 == len(segments):
                break  # the whole schema added, removed or replaced: @asyncapi/diff's verdict
            return _schema_bump(change.action, segments[i + 1 :])
    if _new_profile(change.action, segments):
        return Bump.MINOR
    repeated = _channel_repeat_bump(change.action, segments)
    if repeated is not None:
        return repeated
    if change.type != "non-breaking":
        return Bump.MAJOR  # breaking, or unclassified, which counts as breaking
    return Bump.PATCH if DOC_FIELDS.intersection(segments) else Bump.MINOR


def _new_profile(action: str, segments: list[str]) -> bool:
    # …/bindings/amqp/x-arguments-<profile> of a channel (also where an operation repeats its
    # channel in the dereferenced document), added whole
    return (
        action == "add"
        and len(segments) >= 5
        and segments[0] in ("channels", "operations")
        and segments[-3:-1] == ["bindings", "amqp"]
        and segments[-1].startswith("x-arguments-")
    )


def _channel_repeat_bump(action: str, segments: list[str]) -> Bump | None:
    """An operation's dereferenced channel (``/operations/<op>/channel/...``) repeats the
    channel, whose own change @asyncapi/diff classifies; here it calls a new description or a
    new message of the repeat breaking (found when 1.2.0 documented the dead-letter headers).
    Give the repeat the channel's verdict for those two; anything else keeps the strict rule."""
    if len(segments) < 4 or segments[0] != "operations" or segments[2] != "channel":
        return None
    rest = segments[3:]
    if len(rest) == 1 and rest[0] in DOC_FIELDS:
        return Bump.PATCH
    if action == "add" and len(rest) == 2 and rest[0] == "messages":
        return Bump.MINOR
    return None


def required_bump(changes: Iterable[Change]) -> Bump:
    return max((bump_for(c) for c in changes), default=Bump.NONE)


@dataclass(frozen=True)
class Summary:
    """One change, as it was made: the dereferenced document repeats a message's payload under
    every channel and operation that uses it, so one edit to a model shows up several times."""

    bump: Bump
    action: str
    path: str  # where it shows first (channels before operations)
    places: int

    def __str__(self) -> str:
        more = f" (and {self.places - 1} more places)" if self.places > 1 else ""
        return f"{self.bump.kind}: {self.action} {self.path}{more}"


def _tail(path: str) -> str:
    # The path from the payload (or bindings) on is the same wherever the message is repeated.
    segments = _segments(path)
    for i in range(len(segments) - 1, -1, -1):
        if segments[i] in SCHEMA_KEYS | {"bindings"}:
            return "/".join(segments[i:])
    return path


def summarise(changes: Iterable[Change]) -> list[Summary]:
    """The changes that count, repeats folded, most serious first."""
    groups: dict[tuple[Bump, str, str, str], list[str]] = {}
    for change in changes:
        bump = bump_for(change)
        if bump is Bump.NONE:
            continue
        values = json.dumps([change.before, change.after], sort_keys=True, default=str)
        key = (bump, change.action, _tail(change.path), values)
        groups.setdefault(key, []).append(change.path)
    out = []
    for (bump, action, *_), paths in groups.items():
        first = min(paths, key=lambda p: (not p.startswith("/channels/"), p))
        out.append(Summary(bump=bump, action=action, path=first, places=len(paths)))
    return sorted(out, key=lambda s: (-s.bump, s.path))
