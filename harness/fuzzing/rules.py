"""The field table: what each field of either envelope accepts, the values it refuses, and
the paths that name a field (``a.b[0].c``)."""

from __future__ import annotations

import re
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
from harness.fuzzing.values import (
    FieldPath,
    Json,
    country_codes,
    counts,
    durations,
    error_codes,
    jids,
    json_scalars,
    nonempty_texts,
    phones,
    texts,
    uuids,
)

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
