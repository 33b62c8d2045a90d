"""The leaves of both envelopes as Hypothesis strategies: ids, phones, JIDs, timestamps,
awkward texts, free JSON, and the helpers that build objects of them."""

from __future__ import annotations

import string
from typing import Any

from hypothesis import strategies as st

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


def add_extras(
    strategy: st.SearchStrategy[dict[str, Json]],
) -> st.SearchStrategy[dict[str, Json]]:
    return st.builds(lambda doc, more: {**more, **doc}, strategy, extras)


def object_of(
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
    return add_extras(strategy) if with_extras else strategy


def list_of(elements: st.SearchStrategy[Json], full: bool) -> st.SearchStrategy[list[Json]]:
    return st.lists(elements, min_size=1 if full else 0, max_size=3)
