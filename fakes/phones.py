"""Phone-number helpers shared by the fakes: normalising addresses and masking them for logs."""

from __future__ import annotations

import re

_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_PN_JID = re.compile(r"^([1-9]\d{6,14})@s\.whatsapp\.net$")
_DIGITS = re.compile(r"^[1-9]\d{6,14}$")

PN_JID_SUFFIX = "@s.whatsapp.net"
LID_JID_SUFFIX = "@lid"


def is_e164(value: str) -> bool:
    """True for `+` followed by 7 to 15 digits, the first not 0."""
    return bool(_E164.match(value))


def is_pn_jid(value: str) -> bool:
    """True for a phone-number JID such as `256703722777@s.whatsapp.net`."""
    return bool(_PN_JID.match(value))


def to_digits(value: str) -> str:
    """Reduce `+256...`, `256...@s.whatsapp.net` or bare digits to the digits alone.

    Raises ValueError for anything else (a LID is not a phone number).
    """
    value = value.strip()
    if is_e164(value):
        return value[1:]
    match = _PN_JID.match(value)
    if match:
        return match.group(1)
    if _DIGITS.match(value):
        return value
    raise ValueError(f"not a phone number or phone JID: {mask(value)}")


def to_e164(value: str) -> str:
    """Any accepted phone form as `+<digits>`."""
    return "+" + to_digits(value)


def mask(value: str | None) -> str:
    """Mask a phone number or JID for logs: `+256703722777` -> `+2567******77`.

    Keeps the country-code end and the last two digits, enough to tell test contacts apart
    without writing whole numbers into logs.
    """
    if not value:
        return "<none>"
    digits = "".join(ch for ch in value.split("@", 1)[0] if ch.isdigit())
    if len(digits) < 7:
        return "***"
    return "+" + digits[:4] + "*" * (len(digits) - 6) + digits[-2:]
