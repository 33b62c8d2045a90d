"""The structured message kinds of Wasender's send API: contact cards, locations and polls.

Media kinds are a URL field each (fakes.wasender_api.MEDIA_FIELDS); these three carry an object
instead, in the shapes the official SDKs send (PyPI and npm `wasenderapi`):

    {"to": ..., "messageType": "contact",  "contact":  {"name": "Jane", "phone": "+256..."}}
    {"to": ..., "messageType": "location", "location": {"latitude": 0.31, "longitude": 32.58,
                                                        "name"?: ..., "address"?: ...}}
    {"to": ..., "messageType": "poll",     "poll": {"question": ..., "options": [...],
                                                    "multiSelect"?: bool}}

Pure functions that add Laravel-style field errors to a dict, so validate_send can report every
problem of a body at once, as the real API does.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from fakes.phones import to_digits

# WhatsApp's own bounds on a poll.
POLL_MIN_OPTIONS = 2
POLL_MAX_OPTIONS = 12

Errors = dict[str, list[str]]


def _number(value: Any) -> float | None:
    """A coordinate as the SDKs send it: a JSON number, or a numeric string."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _optional_str(obj: dict[str, Any], field: str, where: str, errors: Errors) -> None:
    if field in obj and obj[field] is not None and not isinstance(obj[field], str):
        errors[f"{where}.{field}"] = [f"The {where}.{field} field must be a string."]


def check_contact(value: Any, errors: Errors) -> None:
    if not isinstance(value, dict):
        errors["contact"] = ["The contact field must be an object with name and phone."]
        return
    name = value.get("name")
    if not isinstance(name, str) or not name.strip():
        errors["contact.name"] = ["The contact.name field is required."]
    phone = value.get("phone")
    if not isinstance(phone, str) or not phone:
        errors["contact.phone"] = ["The contact.phone field is required."]
        return
    try:
        to_digits(phone)
    except ValueError:
        errors["contact.phone"] = ["The contact.phone field format is invalid."]


def check_location(value: Any, errors: Errors) -> None:
    if not isinstance(value, dict):
        errors["location"] = ["The location field must be an object with latitude and longitude."]
        return
    for field, bound in (("latitude", 90.0), ("longitude", 180.0)):
        number = _number(value.get(field))
        if number is None:
            errors[f"location.{field}"] = [f"The location.{field} field must be a number."]
        elif abs(number) > bound:
            errors[f"location.{field}"] = [
                f"The location.{field} field must be between {-bound:g} and {bound:g}."
            ]
    _optional_str(value, "name", "location", errors)
    _optional_str(value, "address", "location", errors)


def check_poll(value: Any, errors: Errors) -> None:
    if not isinstance(value, dict):
        errors["poll"] = ["The poll field must be an object with question and options."]
        return
    question = value.get("question")
    if not isinstance(question, str) or not question.strip():
        errors["poll.question"] = ["The poll.question field is required."]
    options = value.get("options")
    if (
        not isinstance(options, list)
        or not all(isinstance(o, str) and o.strip() for o in options)
        or not POLL_MIN_OPTIONS <= len(options) <= POLL_MAX_OPTIONS
    ):
        errors["poll.options"] = [
            f"The poll.options field must be {POLL_MIN_OPTIONS} to {POLL_MAX_OPTIONS} "
            "non-empty strings."
        ]
    elif len(set(options)) != len(options):
        errors["poll.options"] = ["The poll.options field must not repeat an option."]
    multi = value.get("multiSelect")
    if multi is not None and not isinstance(multi, bool):
        errors["poll.multiSelect"] = ["The poll.multiSelect field must be true or false."]


# Body field -> its checker, for the kinds that carry an object.
STRUCTURED: dict[str, Callable[[Any, Errors], None]] = {
    "contact": check_contact,
    "location": check_location,
    "poll": check_poll,
}
