"""Whatever may arrive on the wire: token soup, any bytes, objects made of the field names."""

from __future__ import annotations

from hypothesis import strategies as st

from harness.fuzzing.rules import REPLY_RULES, REQUEST_RULES, parse_path
from harness.fuzzing.values import Json, json_scalars

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
