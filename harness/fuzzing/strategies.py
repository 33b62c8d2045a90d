"""Hand-written Hypothesis strategies for the two envelopes, keyed by the camelCase field names.

``st.from_type`` ignores pydantic's ``pattern=`` constraints (NOTES.md), so every field is
generated here, next to a table (``REQUEST_RULES``, ``REPLY_RULES``) that says what each field
accepts. The mutation strategies use the table to break exactly one field of a valid document.
"""

from __future__ import annotations

import copy
import re
import string
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from agent_service.contract.messages import (
    Priority,
    ReplyStatus,
    ResponseType,
    Role,
    TaskType,
)

Json = Any
FieldPath = tuple[str | int, ...]

# The largest epoch-milliseconds value a datetime can hold (9999-12-31T23:59:59.999Z). The
# contract itself has no upper bound; see test_codec_fuzz for what happens above this one.
MAX_DATETIME_MS = 253_402_300_799_999
MAX_INT64 = 2**63 - 1

# --- valid leaves --------------------------------------------------------------------------

# Built from pieces rather than ``st.from_regex``, which is several times slower.
_digits = "0123456789"
uuids = st.uuids().map(str) | st.uuids().map(lambda u: str(u).upper())
phones = st.builds(
    lambda first, rest: f"+{first}{rest}",
    st.integers(1, 9),
    st.text(_digits, min_size=6, max_size=14),
)
jids = st.builds(
    lambda user, group, server: f"{user}{group}@{server}",
    st.text(_digits, min_size=1, max_size=15),
    st.just("") | st.text(_digits, min_size=1, max_size=10).map(lambda g: "-" + g),
    st.sampled_from(["s.whatsapp.net", "lid", "g.us", "c.us"]),
)
country_codes = st.text(_digits, min_size=1, max_size=4)
error_codes = st.builds(
    str.__add__,
    st.sampled_from(string.ascii_uppercase),
    st.text(string.ascii_uppercase + _digits + "_", max_size=20),
)
timestamps = st.integers(0, MAX_DATETIME_MS) | st.sampled_from(
    [0, 1_234_567_890, 1_700_000_000_000]
)
counts = st.integers(0, MAX_INT64) | st.integers(0, 10)
# Strings: half from a list of awkward ones (one draw each, which keeps generation fast),
# half any Unicode text.
AWKWARD_TEXTS = (
    "",
    " ",
    "Hello, what are your opening hours?",
    "\x00",
    "\n",
    "line\r\nbreak",
    '"quoted" \\ backslash',
    "{name} {{braces}}",
    "é",
    "e\u0301",
    "😀👍🏽",
    "\u202eright-to-left",
    "\ufeffBOM",
    "\u2028\u2029",
    "中文 العربية",
    "a" * 300,
)
texts = st.sampled_from(AWKWARD_TEXTS) | st.text(max_size=10)
nonempty_texts = st.sampled_from(AWKWARD_TEXTS[1:]) | st.text(min_size=1, max_size=10)
# Names at the 256-character limit, cheaply: one character repeated.
names = (
    st.none()
    | st.sampled_from([t for t in AWKWARD_TEXTS if len(t) <= 256])
    | st.text(max_size=10)
    | st.builds(lambda c, n: c * n, st.characters(codec="utf-8"), st.integers(250, 256))
)
durations = (
    st.floats(min_value=0, max_value=1e12, allow_nan=False, allow_infinity=False)
    | st.integers(0, 10**6)
    | st.just(0.0)
)


def enum_values(enum: Any) -> st.SearchStrategy[str]:
    return st.sampled_from([member.value for member in enum])


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values: st.SearchStrategy[Json] = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)
# Free-form objects (sessionData, attachments) are opaque to the contract: shallow is enough.
json_objects = st.dictionaries(
    st.text(max_size=6), json_scalars | st.lists(json_scalars, max_size=2), max_size=3
)

# Fields added by a newer producer: the tolerant reader must ignore them.
extra_keys = st.sampled_from(["addedLater", "x_trace", "ünicode", "schemaVersion", ""])
extras = st.dictionaries(extra_keys, json_scalars | json_objects, max_size=2)


def _with_extras(
    strategy: st.SearchStrategy[dict[str, Json]],
) -> st.SearchStrategy[dict[str, Json]]:
    return st.builds(lambda doc, more: {**more, **doc}, strategy, extras)


def _object(
    required: dict[str, st.SearchStrategy[Json]],
    optional: dict[str, st.SearchStrategy[Json]] | None = None,
    *,
    full: bool = False,
    with_extras: bool = False,
) -> st.SearchStrategy[dict[str, Json]]:
    """An object with these fields. ``full``: the optional fields too, always. ``with_extras``:
    unknown fields as well (on a few objects only, as generating them is slow)."""
    optional = optional or {}
    strategy = (
        st.fixed_dictionaries({**required, **optional})
        if full
        else st.fixed_dictionaries(required, optional=optional)
    )
    return _with_extras(strategy) if with_extras else strategy


def _list(elements: st.SearchStrategy[Json], full: bool) -> st.SearchStrategy[list[Json]]:
    return st.lists(elements, min_size=1 if full else 0, max_size=3)


# --- valid documents -----------------------------------------------------------------------


def _contacts(full: bool, country: bool) -> st.SearchStrategy[dict[str, Json]]:
    optional = {"name": names, "countryCode": st.none() | country_codes}
    if not country:
        del optional["countryCode"]
    required = {"remoteJid": jids, "phoneNumber": phones}
    return _object(required, optional, full=full, with_extras=True)


def _requests(full: bool) -> st.SearchStrategy[dict[str, Json]]:
    history_turns = _object({"role": enum_values(Role), "content": texts})
    contexts = _object(
        {},
        {
            "conversationHistory": _list(history_turns, full),
            "userNotes": st.none() | texts,
            "sessionData": json_objects,
        },
        full=full,
    )
    metadata = _object(
        {},
        {"priority": enum_values(Priority), "retryCount": counts, "maxRetries": counts},
        full=full,
    )
    user_messages = _object(
        {"text": nonempty_texts, "messageId": nonempty_texts, "timestamp": timestamps}
    )
    return _object(
        {
            "messageId": uuids,
            "timestamp": timestamps,
            "taskType": enum_values(TaskType),
            "contact": _contacts(full, country=True),
            "message": user_messages,
        },
        {"context": contexts, "metadata": metadata},
        full=full,
        with_extras=True,
    )


def _replies(full: bool) -> st.SearchStrategy[dict[str, Json]]:
    responses = _object(
        {"text": nonempty_texts},
        {"type": enum_values(ResponseType), "attachments": _list(json_objects, full)},
        full=full,
    )
    agent_metadata = _object(
        {},
        {
            "toolsUsed": _list(texts, full),
            "reasoningSteps": _list(texts, full),
            "processingTime": durations,
            "tokensUsed": counts,
        },
        full=full,
    )
    error_infos = _object(
        {"code": error_codes, "message": texts}, {"stack": st.none() | texts}, full=full
    )
    fields = _object(
        {
            "messageId": uuids,
            "originalMessageId": uuids,
            "timestamp": timestamps,
            "status": enum_values(ReplyStatus),
            "contact": _contacts(full, country=False),
            "response": responses,
        },
        {"agentMetadata": agent_metadata},
        full=full,
        with_extras=True,
    )

    @st.composite
    def reply(draw: st.DrawFn) -> dict[str, Json]:
        doc = draw(fields)
        # The one cross-field rule: ``error`` is present exactly when status is "error".
        if doc["status"] == ReplyStatus.ERROR.value:
            doc["error"] = draw(error_infos)
        elif draw(st.booleans()):
            doc["error"] = None
        return doc

    return reply()


requests = _requests(full=False)
replies = _replies(full=False)
# Every optional field present and every list non-empty: what the mutations start from, so
# that every field of the table can be changed.
full_requests = _requests(full=True)
full_replies = _replies(full=True)

# What the mutations start from: fixed documents with every optional field present (so every
# field of the table can be changed) and every list non-empty. Drawing the base document would
# spend most of the time on fields the mutation does not touch; the round-trip tests vary them.
_REQUEST_BASE: dict[str, Json] = {
    "messageId": "6f1c1c5e-8a4e-4c1e-9a51-3d2f0b7f9a10",
    "timestamp": 1_234_567_890,
    "taskType": "conversation",
    "contact": {
        "remoteJid": "256703722777@s.whatsapp.net",
        "phoneNumber": "+256703722777",
        "name": "John Doe",
        "countryCode": "256",
    },
    "message": {"text": "User's message text", "messageId": "3EB0ABCD", "timestamp": 1_234_567_890},
    "context": {
        "conversationHistory": [
            {"role": "user", "content": "Previous message 1"},
            {"role": "assistant", "content": "Previous response 1"},
        ],
        "userNotes": "VIP customer - priority support",
        "sessionData": {"cart": [1, 2], "lang": "en"},
    },
    "metadata": {"priority": "normal", "retryCount": 0, "maxRetries": 3},
}
BASE_REQUESTS: list[dict[str, Json]] = [
    _REQUEST_BASE,
    {
        **_REQUEST_BASE,
        "messageId": "6F1C1C5E-8A4E-4C1E-9A51-3D2F0B7F9A10",
        "timestamp": 1_700_000_000_000,
        "taskType": "order",
        "contact": {
            "remoteJid": "120363025246125486-1609459200@g.us",
            "phoneNumber": "+4915112345678",
            "name": "Zoë 中文 😀",
            "countryCode": None,
            "avatar": "added by a newer Node version",
        },
        "context": {
            "conversationHistory": [{"role": "assistant", "content": ""}],
            "userNotes": None,
            "sessionData": {},
        },
        "metadata": {"priority": "urgent", "retryCount": 2, "maxRetries": 2},
        "schemaVersion": 2,
    },
]
_REPLY_BASE: dict[str, Json] = {
    "messageId": "0d3b8a52-2f0e-4d8c-9a3c-1f2e3d4c5b6a",
    "originalMessageId": "6f1c1c5e-8a4e-4c1e-9a51-3d2f0b7f9a10",
    "timestamp": 1_700_000_000_000,
    "status": "success",
    "contact": {
        "remoteJid": "256703722777@s.whatsapp.net",
        "phoneNumber": "+256703722777",
        "name": "John Doe",
    },
    "response": {"text": "Agent's response message", "type": "text", "attachments": [{}]},
    "agentMetadata": {
        "toolsUsed": ["database_query"],
        "reasoningSteps": ["Step 1"],
        "processingTime": 2.5,
        "tokensUsed": 150,
    },
}
ERROR_REPLY: dict[str, Json] = {
    **_REPLY_BASE,
    "status": "error",
    "response": {"text": "Sorry, something went wrong.", "attachments": [{"url": "x"}]},
    "error": {"code": "AGENT_TIMEOUT", "message": "took too long", "stack": "Traceback"},
}
BASE_REPLIES: list[dict[str, Json]] = [
    _REPLY_BASE,
    {
        **_REPLY_BASE,
        "status": "partial",
        "contact": {"remoteJid": "12345678@lid", "phoneNumber": "+12345678", "name": None},
        "response": {"text": "Here", "type": "image", "attachments": [{"url": "https://x/y.png"}]},
        "agentMetadata": {
            "toolsUsed": ["web_search", "database_query"],
            "reasoningSteps": ["a", "b"],
            "processingTime": 0,
            "tokensUsed": 0,
        },
        "error": None,
    },
    ERROR_REPLY,
]


# --- the field table -----------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """What one field accepts. ``kind`` picks the invalid values; ``choices`` the enum values."""

    kind: str
    required: bool = False
    nullable: bool = False
    choices: tuple[str, ...] = ()


def _enum(enum: Any, required: bool = False) -> Rule:
    return Rule("enum", required, choices=tuple(member.value for member in enum))


_CONTACT_RULES: dict[str, Rule] = {
    "contact": Rule("object", required=True),
    "contact.remoteJid": Rule("jid", required=True),
    "contact.phoneNumber": Rule("phone", required=True),
    "contact.name": Rule("name", nullable=True),
}

# Paths as the codec names them: dots between fields, ``[0]`` for the first list item.
REQUEST_RULES: dict[str, Rule] = {
    "messageId": Rule("uuid", required=True),
    "timestamp": Rule("count", required=True),
    "taskType": _enum(TaskType, required=True),
    **_CONTACT_RULES,
    "contact.countryCode": Rule("country", nullable=True),
    "message": Rule("object", required=True),
    "message.text": Rule("nonempty", required=True),
    "message.messageId": Rule("nonempty", required=True),
    "message.timestamp": Rule("count", required=True),
    "context": Rule("object"),
    "context.conversationHistory": Rule("list"),
    "context.conversationHistory[0]": Rule("object"),
    "context.conversationHistory[0].role": _enum(Role, required=True),
    "context.conversationHistory[0].content": Rule("string", required=True),
    "context.userNotes": Rule("string", nullable=True),
    "context.sessionData": Rule("object"),
    "metadata": Rule("object"),
    "metadata.priority": _enum(Priority),
    "metadata.retryCount": Rule("count"),
    "metadata.maxRetries": Rule("count"),
}

REPLY_RULES: dict[str, Rule] = {
    "messageId": Rule("uuid", required=True),
    "originalMessageId": Rule("uuid", required=True),
    "timestamp": Rule("count", required=True),
    "status": _enum(ReplyStatus, required=True),
    **_CONTACT_RULES,
    "response": Rule("object", required=True),
    "response.text": Rule("nonempty", required=True),
    "response.type": _enum(ResponseType),
    "response.attachments": Rule("list"),
    "response.attachments[0]": Rule("object"),
    "agentMetadata": Rule("object"),
    "agentMetadata.toolsUsed": Rule("list"),
    "agentMetadata.toolsUsed[0]": Rule("string"),
    "agentMetadata.reasoningSteps": Rule("list"),
    "agentMetadata.reasoningSteps[0]": Rule("string"),
    "agentMetadata.processingTime": Rule("duration"),
    "agentMetadata.tokensUsed": Rule("count"),
    # Required and not nullable only when status is "error": see the error⇔status exception.
    "error": Rule("object", nullable=True),
    "error.code": Rule("code", required=True),
    "error.message": Rule("string", required=True),
    "error.stack": Rule("string", nullable=True),
}


def parse_path(path: str) -> FieldPath:
    """``a.b[0].c`` to ``("a", "b", 0, "c")``."""
    parts: list[str | int] = []
    for dotted in path.split("."):
        name, _, rest = dotted.partition("[")
        parts.append(name)
        if rest:
            parts.append(int(rest.rstrip("]")))
    return tuple(parts)


def lookup(doc: Json, path: FieldPath) -> Iterator[Json]:
    """The value at ``path`` (one item) or nothing when the path is absent."""
    node = doc
    for part in path:
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                return
        elif not isinstance(node, dict) or part not in node:
            return
        node = node[part]
    yield node


# --- invalid values ------------------------------------------------------------------------

_OTHER_TYPES: dict[str, st.SearchStrategy[Json]] = {
    "null": st.none(),
    "bool": st.booleans(),
    "int": st.integers(-(10**6), 10**6),
    "float": st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: not f.is_integer()),
    # A float with no fractional part: JSON Schema calls it an integer, the strict model does
    # not (exception 2 in test_codec_fuzz).
    "integral_float": st.integers(-(10**6), 10**6).map(float),
    "string": st.text(max_size=10),
    "list": st.lists(json_scalars, max_size=2),
    "object": st.dictionaries(st.text(max_size=5), json_scalars, max_size=2),
}
_JSON_TYPES_OF_KIND: dict[str, set[str]] = {
    "uuid": {"string"},
    "jid": {"string"},
    "phone": {"string"},
    "country": {"string"},
    "code": {"string"},
    "name": {"string"},
    "nonempty": {"string"},
    "string": {"string"},
    "enum": {"string"},
    "count": {"int"},
    "duration": {"int", "float", "integral_float"},
    "object": {"object"},
    "list": {"list"},
}


def _not_matching(pattern: str, near_misses: Sequence[str]) -> st.SearchStrategy[str]:
    compiled = re.compile(pattern)
    return st.sampled_from(list(near_misses)) | st.text(max_size=20).filter(
        lambda s: compiled.fullmatch(s) is None
    )


_BAD_VALUES: dict[str, st.SearchStrategy[Json]] = {
    "uuid": _not_matching(
        r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
        [
            "",
            "6f1c1c5e8a4e4c1e9a513d2f0b7f9a10",
            "6f1c1c5e-8a4e-4c1e-9a51-3d2f0b7f9a1",
            "6f1c1c5e-8a4e-4c1e-9a51-3d2f0b7f9a10\n",
            " 6f1c1c5e-8a4e-4c1e-9a51-3d2f0b7f9a10",
            "{6f1c1c5e-8a4e-4c1e-9a51-3d2f0b7f9a10}",
            "6g1c1c5e-8a4e-4c1e-9a51-3d2f0b7f9a10",
        ],
    ),
    "phone": _not_matching(
        r"\+[1-9][0-9]{6,14}",
        [
            "",
            "256703722777",
            "+056703722777",
            "+123456",
            "+1234567890123456",
            "+256703722777\n",
            "+２５６703722777",
            "+256 703 722 777",
        ],
    ),
    "jid": _not_matching(
        r"[0-9]+(-[0-9]+)?@(s\.whatsapp\.net|lid|g\.us|c\.us)",
        [
            "",
            "256703722777",
            "256703722777@s.whatsapp.com",
            "256703722777@sXwhatsapp.net",
            "256703722777@lid\n",
            "abc@lid",
            "1-2-3@g.us",
            "@lid",
        ],
    ),
    "country": _not_matching(r"[0-9]{1,4}", ["", "12345", "+256", "25a", "256\n", "٢٥٦"]),
    "code": _not_matching(
        r"[A-Z][A-Z0-9_]*", ["", "timeout", "1TIMEOUT", "_X", "AGENT-TIMEOUT", "X\n", "É"]
    ),
    "name": st.text(min_size=257, max_size=300),
    "nonempty": st.just(""),
    "count": st.integers(-(10**12), -1),
    "duration": st.floats(max_value=-1e-9, allow_nan=False, allow_infinity=False),
}


def invalid_values(rule: Rule) -> st.SearchStrategy[Json]:
    """Values the field must refuse: another JSON type, or its own type breaking a constraint."""
    own = _JSON_TYPES_OF_KIND[rule.kind]
    wrong_types = [s for name, s in _OTHER_TYPES.items() if name not in own]
    if "int" in own:
        wrong_types.append(st.integers(-(10**6), 10**6).map(str))  # "42": no coercion
    if rule.nullable:
        wrong_types = [s for s in wrong_types if s is not _OTHER_TYPES["null"]]
    options = [st.one_of(wrong_types)]
    if rule.kind == "enum":
        options.append(
            st.sampled_from([c.upper() for c in rule.choices] + [" " + rule.choices[0], ""])
            | st.text(max_size=12).filter(lambda s: s not in rule.choices)
        )
    elif rule.kind in _BAD_VALUES:
        options.append(_BAD_VALUES[rule.kind])
    if rule.kind == "count":
        options.append(_OTHER_TYPES["integral_float"])
    # Pick the kind of breakage first: ``st.one_of`` would flatten the nested lists into one,
    # and the breakages of the field's own type would be drawn only now and then.
    return st.sampled_from(options).flatmap(lambda strategy: strategy)


def same_type_values(rule: Rule) -> st.SearchStrategy[Json]:
    """Values of the field's own type, mostly valid (an empty object may lack required fields):
    for the agreement test, where a mutation need not break the document."""
    valid: dict[str, st.SearchStrategy[Json]] = {
        "uuid": uuids,
        "jid": jids,
        "phone": phones,
        "country": country_codes,
        "code": error_codes,
        "name": st.text(max_size=256),
        "nonempty": nonempty_texts,
        "string": texts,
        "count": counts,
        "duration": durations,
        "object": st.just({}),
        "list": st.just([]),
    }
    if rule.kind == "enum":
        return st.sampled_from(rule.choices)
    strategy = valid[rule.kind]
    return st.none() | strategy if rule.nullable else strategy


# --- mutations -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Mutation:
    """A valid document with one field changed. ``surely_invalid`` when the contract refuses it
    whatever the rest of the document (removing a required field, a wrong type, a bad value)."""

    doc: dict[str, Json]
    path: str
    action: str  # "removed", "invalid" or "retyped" (another value of the field's own type)
    value: Json = None
    surely_invalid: bool = False

    def describe(self) -> str:
        shown = "" if self.action == "removed" else f" = {self.value!r:.80}"
        return f"{self.action} {self.path}{shown}"


def _has_parent(doc: dict[str, Json], parts: FieldPath) -> bool:
    """Whether the object (or list) that holds the field at ``parts`` is in ``doc``."""
    return any(
        isinstance(parent, list if isinstance(parts[-1], int) else dict)
        for parent in lookup(doc, parts[:-1])
    )


def set_field(
    doc: dict[str, Json], path: FieldPath, value: Json, remove: bool = False
) -> dict[str, Json]:
    out = copy.deepcopy(doc)
    node: Any = out
    for part in path[:-1]:
        node = node[part]
    last = path[-1]
    if remove:
        if isinstance(node, dict):
            node.pop(last, None)
        else:
            del node[last]
    elif isinstance(node, list) and isinstance(last, int) and last >= len(node):
        node.append(value)  # the first item of an empty list
    else:
        node[last] = value
    return out


def mutations(
    rules: dict[str, Rule], path: str, *, only_invalid: bool
) -> st.SearchStrategy[Mutation]:
    """A base document with the field at ``path`` removed or replaced.

    ``only_invalid``: only changes the contract must refuse (for the refusal test); otherwise
    also removals of optional fields and values of the field's own type (for the agreement
    test)."""
    rule = rules[path]
    parts = parse_path(path)
    if rules is REQUEST_RULES:
        documents = st.sampled_from(BASE_REQUESTS)
    else:
        # The fields of ``error`` exist only in error replies.
        documents = st.sampled_from([ERROR_REPLY] if path.startswith("error.") else BASE_REPLIES)
    actions = ["invalid"]
    if rule.required or not only_invalid:
        actions.append("removed")
    if not only_invalid:
        actions.append("retyped")

    @st.composite
    def build(draw: st.DrawFn) -> Mutation:
        doc = draw(documents)
        assert _has_parent(doc, parts), f"{path} cannot be set in {doc}"
        action = draw(st.sampled_from(actions))
        if action == "removed":
            removed = set_field(doc, parts, None, remove=True)
            return Mutation(removed, path, action, surely_invalid=rule.required)
        strategy = invalid_values(rule) if action == "invalid" else same_type_values(rule)
        value = draw(strategy)
        return Mutation(set_field(doc, parts, value), path, action, value, action == "invalid")

    return build()


# --- whatever arrives on the wire ----------------------------------------------------------

_ALL_FIELD_NAMES = sorted(
    {
        str(part)
        for path in (*REQUEST_RULES, *REPLY_RULES)
        for part in parse_path(path)
        if isinstance(part, str)
    }
)
# JSON objects that use the real field names at every level, so validation gets deep.
look_alike_objects: st.SearchStrategy[Json] = st.recursive(
    json_scalars | st.sampled_from(["conversation", "error", "user", "+256703722777"]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(_ALL_FIELD_NAMES) | st.text(max_size=4), inner, max_size=6
        )
    ),
    max_leaves=20,
)

_JSON_TOKENS = [
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    '"a"',
    '"messageId"',
    "1",
    "-0",
    "1e5",
    "true",
    "null",
    "NaN",
    "Infinity",
    '"\\u00e9"',
    '"\\ud800"',
    " ",
    "\n",
    '"',
    "\\",
]
json_like_bytes = st.lists(st.sampled_from(_JSON_TOKENS), max_size=30).map(
    lambda tokens: "".join(tokens).encode("utf-8")
)
arbitrary_bodies = (
    st.binary(max_size=200)
    | json_like_bytes
    | st.text(alphabet=st.characters(codec="utf-8"), max_size=50).map(lambda s: s.encode("utf-8"))
)
