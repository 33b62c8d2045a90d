"""How FakeGemini reads a GenerateContentRequest: validation, and conversion for the policy.

Pure code, no HTTP. Field names are accepted in both spellings, `systemInstruction` and
`system_instruction`, because the real API parses proto3 JSON, which accepts both; google-genai
itself sends `parameters_json_schema` in snake case (seen on the wire). What the real API
rejects is answered with its 400 wording; `RequestRules` adds checks the real API does not make
but the service must always pass (a system instruction, tools, alternating turns), and their
messages start with "fake Gemini:" so nobody mistakes them for Google's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pydantic
from google.genai import types

from fakes.gemini_api import ApiError, invalid_argument


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


_TOP_LEVEL = _names(
    "model contents tools toolConfig safetySettings systemInstruction "
    "generationConfig cachedContent labels"
)
_DATA_FIELDS = _names(
    "text inlineData fileData functionCall functionResponse executableCode codeExecutionResult"
)
_TOOL_KINDS = _names(
    "functionDeclarations googleSearch googleSearchRetrieval codeExecution "
    "urlContext fileSearch computerUse googleMaps retrieval"
)
_DECLARATION_FIELDS = _names(
    "name description parameters parametersJsonSchema response responseJsonSchema behavior"
)
_FUNCTION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:\-]{0,63}")
_SCHEMA_TYPES = _names("string number integer boolean array object null")
_ROLES = ("user", "model")


@dataclass(frozen=True, slots=True)
class RequestRules:
    """Checks the real API does not make, for what the service must always send."""

    require_system_instruction: bool = True
    require_tools: bool = True
    alternating_turns: bool = True

    @classmethod
    def lenient(cls) -> RequestRules:
        """Only what the real API itself checks."""
        return cls(require_system_instruction=False, require_tools=False, alternating_turns=False)


@dataclass(frozen=True, slots=True)
class ModelRequest:
    """A request that passed validation, in the types the scripted policy reads."""

    model: str
    contents: tuple[types.Content, ...]
    system_text: str
    declarations: dict[str, dict[str, str]]
    """Tool name -> {parameter: JSON type in lower case}."""

    @property
    def tool_names(self) -> frozenset[str]:
        return frozenset(self.declarations)


def parse_request(model: str, body: Any, rules: RequestRules) -> ModelRequest:
    """Validate a request body as the real API does (plus `rules`); raise ApiError(400)."""
    if not isinstance(body, dict):
        raise ApiError(400, "Invalid JSON payload received. Expected an object.")
    for key in body:
        if _camel(key) not in _TOP_LEVEL:
            raise ApiError(
                400, f'Invalid JSON payload received. Unknown name "{key}": Cannot find field.'
            )
    contents = _contents(_get(body, "contents"))
    if rules.alternating_turns:
        _check_alternation(contents)
    system_text = _system_text(_get(body, "systemInstruction"), rules)
    declarations = _declarations(_get(body, "tools"))
    if rules.require_tools and not declarations:
        raise invalid_argument(
            "tools", "fake Gemini: no function declarations; every agent offers its tools"
        )
    return ModelRequest(model, tuple(contents), system_text, declarations)


def model_error(model: str, version: str, method: str) -> ApiError:
    """The real API's 404 for a model it does not serve."""
    return ApiError(
        404,
        f"models/{model} is not found for API version {version}, or is not supported for "
        f"{method}. Call ListModels to see the list of available models and their supported "
        "methods.",
    )


def _contents(raw: Any) -> list[types.Content]:
    if not isinstance(raw, list) or not raw:
        raise invalid_argument("contents", "contents is not specified")
    contents = [_content(item, f"contents[{i}]") for i, item in enumerate(raw)]
    for index in range(len(contents)):
        _check_function_turn(contents, index)
    return contents


def _content(raw: Any, path: str) -> types.Content:
    if not isinstance(raw, dict):
        raise ApiError(400, f"Invalid JSON payload received. {path}: expected an object.")
    role = raw.get("role") or "user"
    if role not in _ROLES:
        raise ApiError(400, "Please use a valid role: user, model.")
    parts = raw.get("parts")
    if not isinstance(parts, list) or not parts:
        raise invalid_argument(f"{path}.parts", "contents.parts must not be empty.")
    for j, part in enumerate(parts):
        _check_part(part, f"{path}.parts[{j}]")
    try:
        return types.Content.model_validate(raw | {"role": role})
    except pydantic.ValidationError as exc:
        where = ".".join(str(p) for p in exc.errors()[0]["loc"])
        raise ApiError(
            400, f"Invalid JSON payload received. Unknown name or bad value at '{path}.{where}'."
        ) from exc


def _check_part(part: Any, path: str) -> None:
    if not isinstance(part, dict):
        raise ApiError(400, f"Invalid JSON payload received. {path}: expected an object.")
    data = [key for key in part if _camel(key) in _DATA_FIELDS]
    if not data:
        raise invalid_argument(
            f"{path}.data", "required oneof field 'data' must have one initialized field"
        )
    if len(data) > 1:
        raise ApiError(
            400,
            f"Invalid JSON payload received. Oneof field 'data' is already set. Cannot set "
            f"'{data[1]}'",
        )
    call = _get(part, "functionCall")
    if call is not None and not (isinstance(call, dict) and call.get("name")):
        raise invalid_argument(f"{path}.function_call.name", "Name cannot be empty.")


def _check_function_turn(contents: list[types.Content], index: int) -> None:
    content = contents[index]
    calls = _calls(content)
    responses = [p for p in content.parts or [] if p.function_response is not None]
    previous = contents[index - 1] if index else None
    if calls:
        came_after_user = previous is not None and previous.role == "user"
        if content.role != "model" or not came_after_user:
            raise ApiError(
                400,
                "Please ensure that function call turn comes immediately after a user turn or "
                "after a function response turn.",
            )
    if responses:
        if previous is None or not _calls(previous):
            raise ApiError(
                400,
                "Please ensure that function response turn comes immediately after a function "
                "call turn.",
            )
        if len(responses) != len(_calls(previous)):
            raise ApiError(
                400,
                "Please ensure that the number of function response parts is equal to the "
                "number of function call parts of the function call turn.",
            )


def _check_alternation(contents: list[types.Content]) -> None:
    for index in range(1, len(contents)):
        role = contents[index].role
        if role == contents[index - 1].role:
            raise invalid_argument(
                f"contents[{index}]",
                f"fake Gemini: role {role!r} again after contents[{index - 1}]; expected "
                "alternating user and model turns",
            )


def _calls(content: types.Content) -> list[types.FunctionCall]:
    return [p.function_call for p in content.parts or [] if p.function_call is not None]


def _system_text(raw: Any, rules: RequestRules) -> str:
    text = ""
    if raw is not None:
        content = _content(raw, "system_instruction")
        text = "".join(p.text or "" for p in content.parts or [])
    if rules.require_system_instruction and not text.strip():
        raise invalid_argument(
            "system_instruction",
            "fake Gemini: no system instruction; the agent's instruction belongs here",
        )
    return text


def _declarations(raw: Any) -> dict[str, dict[str, str]]:
    if raw is None:
        return {}
    if not isinstance(raw, list):
        raise ApiError(400, "Invalid JSON payload received. tools: expected a list.")
    found: dict[str, dict[str, str]] = {}
    for i, tool in enumerate(raw):
        if not isinstance(tool, dict) or any(_camel(k) not in _TOOL_KINDS for k in tool):
            raise ApiError(400, f"Invalid JSON payload received. Unknown name in 'tools[{i}]'.")
        listed = _get(tool, "functionDeclarations") or []
        for j, declaration in enumerate(listed if isinstance(listed, list) else [None]):
            path = f"tools[{i}].function_declarations[{j}]"
            name, params = _declaration(declaration, path)
            if name in found:
                raise ApiError(400, f"Duplicate function declaration found: {name}")
            found[name] = params
    return found


def _declaration(raw: Any, path: str) -> tuple[str, dict[str, str]]:
    if not isinstance(raw, dict) or any(_camel(k) not in _DECLARATION_FIELDS for k in raw):
        raise ApiError(400, f"Invalid JSON payload received. Unknown name in '{path}'.")
    name = raw.get("name")
    if not isinstance(name, str) or not _FUNCTION_NAME.fullmatch(name):
        raise invalid_argument(
            f"{path}.name",
            "Invalid function name. Must start with a letter or an underscore. Must be "
            "alphameric (a-z, A-Z, 0-9), underscores (_), dots (.), colons (:), or dashes (-), "
            "with a maximum length of 64.",
        )
    schema, json_schema = _get(raw, "parameters"), _get(raw, "parametersJsonSchema")
    if schema is not None and json_schema is not None:
        raise invalid_argument(path, "parameters and parameters_json_schema cannot both be set")
    chosen = schema if schema is not None else json_schema
    return name, {} if chosen is None else _parameter_types(chosen, f"{path}.parameters")


def _parameter_types(schema: Any, path: str) -> dict[str, str]:
    if not isinstance(schema, dict) or str(schema.get("type", "")).lower() != "object":
        raise invalid_argument(f"{path}.type", "must be OBJECT for function parameters")
    properties = schema.get("properties") or {}
    if not isinstance(properties, dict):
        raise invalid_argument(f"{path}.properties", "must be a map of schemas")
    types_: dict[str, str] = {}
    for prop, sub in properties.items():
        kind = str(sub.get("type", "")).lower() if isinstance(sub, dict) else "?"
        if kind and kind not in _SCHEMA_TYPES:
            raise invalid_argument(f"{path}.properties[{prop}].type", "must be specified")
        types_[prop] = kind
    for k, required in enumerate(schema.get("required") or []):
        if required not in properties:
            raise invalid_argument(f"{path}.required[{k}]", "property is not defined")
    return types_


def _get(obj: dict[str, Any], camel: str) -> Any:
    """A field by its proto3 JSON name or its original snake-case name."""
    return obj[camel] if camel in obj else obj.get(_snake(camel))


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word.title() for word in rest)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
