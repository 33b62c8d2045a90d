"""A valid document with exactly one field removed or changed (driven by the field table)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from harness.fuzzing.documents import BASE_REPLIES, BASE_REQUESTS, ERROR_REPLY
from harness.fuzzing.rules import (
    REQUEST_RULES,
    Rule,
    invalid_values,
    lookup,
    parse_path,
    same_type_values,
)
from harness.fuzzing.values import FieldPath, Json

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
