"""The ledger: every user message a scenario injects, and what the user got for it.

Outcomes are read where the user would see them: sends at the fake Wasender (a reply, or the
fallback text) and admin alerts (parked, by WhatsApp id). A send comes with the WhatsApp id of
the message it answered when the Node side recorded it (the Node simulator does: Wasender's
msgId against the request); a second send for a message is then a duplicate, even in a burst
where the contact's next message still waits. A send without one (the Node team's real
service) is attributed to the oldest message of that contact still waiting, which is exact
only when a contact waits for each answer; a send to a contact with nothing waiting is a
duplicate.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from enum import StrEnum

from fakes.phones import to_digits as digits_of


class MessageOutcome(StrEnum):
    REPLY = "reply"
    FALLBACK = "fallback"
    PARKED = "parked"
    MISSING = "missing"


@dataclass
class Entry:
    whatsapp_id: str
    phone: str
    text: str
    task: str
    sent_at: float
    outcome: MessageOutcome | None = None
    outcome_at: float | None = None
    reply_text: str | None = None
    exact: bool = False  # the outcome was tied to this message by its id, not by its phone

    @property
    def latency(self) -> float | None:
        return None if self.outcome_at is None else self.outcome_at - self.sent_at


@dataclass
class Ledger:
    fallback_text: str
    entries: list[Entry] = field(default_factory=list)
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (phone, text)
    unmatched_alerts: list[str] = field(default_factory=list)
    _waiting: dict[str, list[Entry]] = field(default_factory=lambda: defaultdict(list))
    _by_whatsapp_id: dict[str, Entry] = field(default_factory=dict)

    def injected(self, whatsapp_id: str, phone: str, text: str, task: str) -> Entry:
        entry = Entry(whatsapp_id, digits_of(phone), text, task, time.monotonic())
        self.entries.append(entry)
        self._waiting[entry.phone].append(entry)
        self._by_whatsapp_id[whatsapp_id] = entry
        return entry

    def withdraw(self, entry: Entry) -> None:
        """The message never entered the system (the webhook refused it): not counted."""
        self.entries.remove(entry)
        self._waiting[entry.phone].remove(entry)
        self._by_whatsapp_id.pop(entry.whatsapp_id, None)

    def on_send(self, to: str, text: str, at: float, whatsapp_id: str | None = None) -> None:
        outcome = (
            MessageOutcome.FALLBACK
            if text.strip() == self.fallback_text.strip()
            else MessageOutcome.REPLY
        )
        entry = self._by_whatsapp_id.get(whatsapp_id) if whatsapp_id else None
        if entry is not None:
            if entry.outcome is not None:
                self.duplicates.append((entry.phone, text))
                return
            self._waiting[entry.phone].remove(entry)
            self._settle(entry, outcome, at, text)
            entry.exact = True
            return
        waiting = self._waiting.get(digits_of(to))
        if not waiting:
            self.duplicates.append((digits_of(to), text))
            return
        self._settle(waiting.pop(0), outcome, at, text)

    def on_alert(self, whatsapp_id: str | None, at: float) -> None:
        entry = self._by_whatsapp_id.get(whatsapp_id or "")
        if entry is None:
            self.unmatched_alerts.append(whatsapp_id or "?")
            return
        if entry.outcome is not None:
            # An exact outcome is not moved: a second outcome for one message is an anomaly.
            if entry.exact or not self._shift_send(entry):
                self.unmatched_alerts.append(whatsapp_id or "?")
                return
        else:
            self._waiting[entry.phone].remove(entry)
        self._settle(entry, MessageOutcome.PARKED, at, None)

    def _shift_send(self, parked: Entry) -> bool:
        """A message parked after a later one of its contact was answered: the send that was
        taken for its answer was the later one's. Move it on to the contact's oldest message
        still waiting (found by the chaos state machine: a burst during a Wasender outage,
        the first message parked, the second sent). False when there is no such send."""
        if parked.outcome not in (MessageOutcome.REPLY, MessageOutcome.FALLBACK):
            return False
        waiting = self._waiting.get(parked.phone)
        if not waiting:
            return False
        taker = waiting.pop(0)
        assert parked.outcome is not None and parked.outcome_at is not None
        self._settle(taker, parked.outcome, parked.outcome_at, parked.reply_text)
        return True

    def _settle(self, entry: Entry, outcome: MessageOutcome, at: float, text: str | None) -> None:
        entry.outcome, entry.outcome_at, entry.reply_text = outcome, at, text

    @property
    def pending(self) -> int:
        return sum(1 for e in self.entries if e.outcome is None)

    def outcome_of(self, entry: Entry) -> MessageOutcome:
        return entry.outcome or MessageOutcome.MISSING
