"""Hand-written Hypothesis strategies for the two envelopes, keyed by the camelCase field names.

``st.from_type`` ignores pydantic's ``pattern=`` constraints (NOTES.md), so every field is
generated here, next to a table (``REQUEST_RULES``, ``REPLY_RULES``) that says what each field
accepts. The mutation strategies use the table to break exactly one field of a valid document.

One import for the tests and the live fuzzer; the pieces live in ``values`` (leaves), ``documents``
(valid documents), ``rules`` (the field table and invalid values), ``mutations`` and ``wire``.
"""

from harness.fuzzing.documents import (
    BASE_REPLIES,
    BASE_REQUESTS,
    ERROR_REPLY,
    full_replies,
    full_requests,
    replies,
    requests,
)
from harness.fuzzing.mutations import (
    Mutation,
    mutations,
    set_field,
)
from harness.fuzzing.rules import (
    REPLY_RULES,
    REQUEST_RULES,
    Rule,
    invalid_values,
    lookup,
    parse_path,
    same_type_values,
)
from harness.fuzzing.values import (
    AWKWARD_TEXTS,
    MAX_DATETIME_MS,
    MAX_INT64,
    FieldPath,
    Json,
    country_codes,
    counts,
    durations,
    enum_values,
    error_codes,
    extra_keys,
    extras,
    jids,
    json_objects,
    json_scalars,
    json_values,
    names,
    nonempty_texts,
    phones,
    texts,
    timestamps,
    uuids,
)
from harness.fuzzing.wire import (
    arbitrary_bodies,
    json_like_bytes,
    look_alike_objects,
)

__all__ = [
    "AWKWARD_TEXTS",
    "BASE_REPLIES",
    "BASE_REQUESTS",
    "ERROR_REPLY",
    "MAX_DATETIME_MS",
    "MAX_INT64",
    "REPLY_RULES",
    "REQUEST_RULES",
    "FieldPath",
    "Json",
    "Mutation",
    "Rule",
    "arbitrary_bodies",
    "country_codes",
    "counts",
    "durations",
    "enum_values",
    "error_codes",
    "extra_keys",
    "extras",
    "full_replies",
    "full_requests",
    "invalid_values",
    "jids",
    "json_like_bytes",
    "json_objects",
    "json_scalars",
    "json_values",
    "look_alike_objects",
    "lookup",
    "mutations",
    "names",
    "nonempty_texts",
    "parse_path",
    "phones",
    "replies",
    "requests",
    "same_type_values",
    "set_field",
    "texts",
    "timestamps",
    "uuids",
]
