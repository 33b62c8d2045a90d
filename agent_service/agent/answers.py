"""The scripted model's answer texts, built from the tool results it was sent."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

ASK_FOR_ORDER_NUMBER = (
    "Please send me your order number (for example #1042) and I will check its status."
)
TOOL_DOWN = (
    "Sorry, I could not reach our system just now, so I could not check that. "
    "Please try again in a few minutes."
)
_MAX_QUOTE = 80


def chit_chat(text: str, customer_name: str, earlier_user_texts: tuple[str, ...]) -> str:
    """A direct answer; it quotes the previous user turn, which shows the history arrived."""
    first_name = customer_name.split()[0] if customer_name.split() else ""
    parts = [f"Hi {first_name}!" if first_name else "Hi!"]
    if earlier_user_texts:
        parts.append(f'Earlier you said: "{_quote(earlier_user_texts[-1])}".')
    if text.strip():
        parts.append(f'You said: "{_quote(text)}".')
    parts.append("I can check an order, book an appointment or find a product for you.")
    return " ".join(parts)


def from_tool_result(tool: str, result: dict[str, Any], customer_name: str) -> str:
    """The final answer for the last tool result of the turn."""
    if result.get("status") == "error":
        if result.get("error") == "invalid_argument":
            return f"Sorry, I could not do that: {result.get('message', 'invalid request')}."
        return TOOL_DOWN
    composer = _COMPOSERS.get(tool)
    if composer is None:
        return "Done."
    return composer(result, customer_name)


def _order(result: dict[str, Any], _: str) -> str:
    if not result.get("found"):
        return (
            f"I could not find an order #{result.get('order_id')}. "
            "Please check the number and send it again."
        )
    order = result["order"]
    items = ", ".join(f"{item['quantity']} x {item['name']}" for item in order["items"])
    text = f"Order #{order['id']} is {order['status']}."
    if order.get("eta") and order["status"] in ("processing", "shipped"):
        text += f" Expected delivery: {order['eta']}."
    return f"{text} Items: {items}." if items else text


def _catalogue(result: dict[str, Any], _: str) -> str:
    products = result.get("results") or []
    if not products:
        return "Sorry, I could not find a matching product in our catalogue."
    lines = [
        f"{p['name']}: {p['price']:.2f} ({'in stock' if p['in_stock'] else 'out of stock'})"
        for p in products[:3]
    ]
    return "Here is what I found: " + "; ".join(lines) + "."


def _faq(result: dict[str, Any], _: str) -> str:
    entries = result.get("results") or []
    if not entries:
        return "I am not sure about that one; a member of our staff will get back to you."
    return str(entries[0]["answer"])


def _slots(result: dict[str, Any], _: str) -> str:
    slots = result.get("slots") or []
    if not slots:
        when = "" if result.get("date") in (None, "any") else f" on {result['date']}"
        return f"Sorry, there are no free appointment slots{when}."
    listed = "; ".join(
        f"slot {s['slot_id']}: {s['date']} {s['time']} ({s['service']})" for s in slots
    )
    return f"Free appointment slots: {listed}. Reply 'book slot N' to book one."


def _booking(result: dict[str, Any], customer_name: str) -> str:
    slot = result.get("slot") or {}
    if not result.get("booked"):
        return f"Sorry, that slot is not available ({result.get('reason', 'unknown')})."
    who = f", {customer_name}" if customer_name else ""
    return f"Done{who}! You are booked for {slot['service']} on {slot['date']} at {slot['time']}."


def _quote(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _MAX_QUOTE else flat[: _MAX_QUOTE - 1] + "…"


_COMPOSERS: dict[str, Callable[[dict[str, Any], str], str]] = {
    "get_order_status": _order,
    "search_catalogue": _catalogue,
    "search_faq": _faq,
    "list_free_slots": _slots,
    "book_appointment": _booking,
}
