"""The ledger, the oracle of every e2e and chaos test: what it reports, and what it must not.

For each outcome kind there is a test that the ledger reports it when it happens and one that it
does not when it did not happen: an oracle that cannot say "no" proves nothing. The sections
follow ``MessageOutcome`` (reply, fallback, parked, missing), then duplicates, withdrawn
messages and unmatched alerts; a new outcome kind gets its own pair of tests in a new section.
"""

from __future__ import annotations

import pytest

from harness.ledger import Entry, Ledger, MessageOutcome

pytestmark = pytest.mark.unit

FALLBACK = "Sorry, we could not answer right now. We will get back to you soon."
ANN = "+256703722777"
BOB = "+254712345678"


@pytest.fixture
def ledger() -> Ledger:
    return Ledger(FALLBACK)


def say(ledger: Ledger, phone: str = ANN, n: int = 1, task: str = "conversation") -> Entry:
    """A user message accepted by the system (ids are unique per phone and ``n``)."""
    return ledger.injected(f"WA-{phone[-2:]}-{n}", phone, f"message {n}", task)


def send(
    ledger: Ledger, to: str, text: str, entry: Entry | None = None, after: float = 0.5
) -> None:
    """A send seen at the fake Wasender, ``after`` seconds after ``entry`` was injected."""
    ledger.on_send(to, text, (entry.sent_at if entry else 0.0) + after)


def alert(ledger: Ledger, entry: Entry, after: float = 0.5) -> None:
    """An admin alert about ``entry`` (the reply for it was parked)."""
    ledger.on_alert(entry.whatsapp_id, entry.sent_at + after)


def test_a_new_message_is_counted_and_waits(ledger: Ledger) -> None:
    entry = say(ledger, task="order")
    assert ledger.entries == [entry]
    assert (entry.phone, entry.task, entry.outcome) == ("256703722777", "order", None)
    assert entry.outcome is None
    assert ledger.pending == 1


# -- reply -----------------------------------------------------------------------------------


def test_a_send_to_the_contact_is_its_reply(ledger: Ledger) -> None:
    entry = say(ledger)
    send(ledger, ANN, "Your order has shipped.", entry, after=0.25)
    assert ledger.outcome_of(entry) is MessageOutcome.REPLY
    assert entry.reply_text == "Your order has shipped."
    assert entry.latency == pytest.approx(0.25)
    assert entry.outcome is not None
    assert ledger.pending == 0


def test_the_contact_can_be_written_as_a_jid_or_digits(ledger: Ledger) -> None:
    first, second = say(ledger, n=1), say(ledger, n=2)
    send(ledger, "256703722777@s.whatsapp.net", "one", first)
    send(ledger, "256703722777", "two", second)
    assert [ledger.outcome_of(e) for e in (first, second)] == [
        MessageOutcome.REPLY,
        MessageOutcome.REPLY,
    ]
    assert ledger.duplicates == []


def test_no_send_is_no_reply(ledger: Ledger) -> None:
    entry = say(ledger)
    assert ledger.outcome_of(entry) is not MessageOutcome.REPLY
    assert entry.reply_text is None and entry.latency is None


def test_a_send_to_another_contact_is_not_this_ones_reply(ledger: Ledger) -> None:
    ann, bob = say(ledger, ANN), say(ledger, BOB)
    send(ledger, BOB, "Hello Bob", bob)
    assert ledger.outcome_of(bob) is MessageOutcome.REPLY
    assert ledger.outcome_of(ann) is MessageOutcome.MISSING


def test_sends_to_one_contact_answer_its_messages_oldest_first(ledger: Ledger) -> None:
    # Today's rule (module docstring); exact per-message attribution will replace it.
    first, second = say(ledger, n=1), say(ledger, n=2)
    send(ledger, ANN, "answer A", first)
    assert (ledger.outcome_of(first), ledger.outcome_of(second)) == (
        MessageOutcome.REPLY,
        MessageOutcome.MISSING,
    )
    send(ledger, ANN, "answer B", second)
    assert (first.reply_text, second.reply_text) == ("answer A", "answer B")


# -- fallback --------------------------------------------------------------------------------


def test_the_fallback_text_is_a_fallback_not_a_reply(ledger: Ledger) -> None:
    entry = say(ledger)
    send(ledger, ANN, f"  {FALLBACK}\n", entry)  # whitespace around it does not matter
    assert ledger.outcome_of(entry) is MessageOutcome.FALLBACK
    assert entry.reply_text == f"  {FALLBACK}\n"


@pytest.mark.parametrize(
    "text", ["Your order has shipped.", FALLBACK + " Your order has shipped.", FALLBACK[:-1]]
)
def test_any_other_text_is_not_a_fallback(ledger: Ledger, text: str) -> None:
    entry = say(ledger)
    send(ledger, ANN, text, entry)
    assert ledger.outcome_of(entry) is MessageOutcome.REPLY


# -- parked ----------------------------------------------------------------------------------


def test_an_alert_naming_the_message_parks_it(ledger: Ledger) -> None:
    entry = say(ledger)
    alert(ledger, entry, after=2.0)
    assert ledger.outcome_of(entry) is MessageOutcome.PARKED
    assert entry.latency == pytest.approx(2.0)
    assert entry.reply_text is None
    assert ledger.pending == 0 and ledger.unmatched_alerts == []


def test_a_parked_message_takes_no_reply_a_later_send_is_a_duplicate(ledger: Ledger) -> None:
    entry = say(ledger)
    alert(ledger, entry)
    send(ledger, ANN, "late answer", entry)
    assert ledger.outcome_of(entry) is MessageOutcome.PARKED
    assert ledger.duplicates == [("256703722777", "late answer")]


def test_without_an_alert_nothing_is_parked(ledger: Ledger) -> None:
    answered, unanswered = say(ledger, ANN), say(ledger, BOB)
    send(ledger, ANN, "hello", answered)
    outcomes = {ledger.outcome_of(e) for e in ledger.entries}
    assert MessageOutcome.PARKED not in outcomes
    assert ledger.outcome_of(unanswered) is MessageOutcome.MISSING


def test_an_alert_about_another_message_parks_nothing_here(ledger: Ledger) -> None:
    ann, bob = say(ledger, ANN), say(ledger, BOB)
    alert(ledger, bob)
    assert ledger.outcome_of(ann) is MessageOutcome.MISSING
    assert ledger.outcome_of(bob) is MessageOutcome.PARKED
    # Ann's message is still waiting: her reply is still attributed to it.
    send(ledger, ANN, "hello Ann", ann)
    assert ledger.outcome_of(ann) is MessageOutcome.REPLY


# -- missing ---------------------------------------------------------------------------------


def test_a_message_nothing_happened_to_is_missing(ledger: Ledger) -> None:
    entry = say(ledger)
    assert ledger.outcome_of(entry) is MessageOutcome.MISSING
    assert entry.outcome is None  # missing is the verdict on no outcome, not an outcome set
    assert ledger.pending == 1


@pytest.mark.parametrize(
    "outcome", [MessageOutcome.REPLY, MessageOutcome.FALLBACK, MessageOutcome.PARKED]
)
def test_a_message_with_any_outcome_is_not_missing(ledger: Ledger, outcome: MessageOutcome) -> None:
    entry = say(ledger)
    if outcome is MessageOutcome.PARKED:
        alert(ledger, entry)
    else:
        send(ledger, ANN, FALLBACK if outcome is MessageOutcome.FALLBACK else "hi", entry)
    assert ledger.outcome_of(entry) is outcome
    assert ledger.pending == 0


# -- duplicates ------------------------------------------------------------------------------


def test_a_second_send_for_one_message_is_a_duplicate(ledger: Ledger) -> None:
    entry = say(ledger)
    send(ledger, ANN, "first answer", entry)
    send(ledger, "256703722777@s.whatsapp.net", "second answer", entry)
    assert ledger.duplicates == [("256703722777", "second answer")]
    # The message keeps its first outcome: a duplicate is reported, it does not overwrite.
    assert (ledger.outcome_of(entry), entry.reply_text) == (MessageOutcome.REPLY, "first answer")


def test_a_send_to_a_contact_who_wrote_nothing_is_a_duplicate(ledger: Ledger) -> None:
    say(ledger, ANN)
    send(ledger, BOB, "who asked?")
    assert ledger.duplicates == [("254712345678", "who asked?")]


def test_a_fallback_after_the_reply_is_a_duplicate(ledger: Ledger) -> None:
    entry = say(ledger)
    send(ledger, ANN, "the real answer", entry)
    send(ledger, ANN, FALLBACK, entry)
    assert ledger.outcome_of(entry) is MessageOutcome.REPLY
    assert ledger.duplicates == [("256703722777", FALLBACK)]


def test_one_send_per_message_is_no_duplicate(ledger: Ledger) -> None:
    a1, a2, b1 = say(ledger, ANN, 1), say(ledger, ANN, 2), say(ledger, BOB, 1)
    send(ledger, ANN, "one", a1)
    send(ledger, BOB, FALLBACK, b1)
    send(ledger, ANN, "two", a2)
    assert ledger.duplicates == []
    assert [ledger.outcome_of(e) for e in (a1, a2, b1)] == [
        MessageOutcome.REPLY,
        MessageOutcome.REPLY,
        MessageOutcome.FALLBACK,
    ]


# -- withdrawn messages ----------------------------------------------------------------------


def test_a_withdrawn_message_is_not_counted(ledger: Ledger) -> None:
    kept, refused = say(ledger, ANN, 1), say(ledger, ANN, 2)
    ledger.withdraw(refused)
    assert ledger.entries == [kept]
    assert ledger.pending == 1
    send(ledger, ANN, "answer", kept)
    assert ledger.outcome_of(kept) is MessageOutcome.REPLY
    send(ledger, ANN, "an answer to the refused one")
    assert ledger.duplicates == [("256703722777", "an answer to the refused one")]


def test_an_alert_for_a_withdrawn_message_matches_nothing(ledger: Ledger) -> None:
    refused = say(ledger)
    ledger.withdraw(refused)
    alert(ledger, refused)
    assert ledger.unmatched_alerts == [refused.whatsapp_id]


def test_a_message_not_withdrawn_stays_counted(ledger: Ledger) -> None:
    first, second = say(ledger, ANN, 1), say(ledger, ANN, 2)
    ledger.withdraw(first)
    assert ledger.entries == [second]
    assert ledger.outcome_of(second) is MessageOutcome.MISSING


# -- unmatched alerts ------------------------------------------------------------------------


def test_an_alert_for_an_unknown_message_is_unmatched(ledger: Ledger) -> None:
    entry = say(ledger)
    ledger.on_alert("WA-NOBODY", 1.0)
    ledger.on_alert(None, 1.0)
    assert ledger.unmatched_alerts == ["WA-NOBODY", "?"]
    assert ledger.outcome_of(entry) is MessageOutcome.MISSING


def test_an_alert_for_an_answered_message_is_unmatched(ledger: Ledger) -> None:
    entry = say(ledger)
    send(ledger, ANN, "answer", entry)
    alert(ledger, entry)
    alert(ledger, entry)
    assert ledger.unmatched_alerts == [entry.whatsapp_id, entry.whatsapp_id]
    assert ledger.outcome_of(entry) is MessageOutcome.REPLY


def test_alerts_that_park_a_waiting_message_are_not_unmatched(ledger: Ledger) -> None:
    ann, bob = say(ledger, ANN), say(ledger, BOB)
    alert(ledger, ann)
    alert(ledger, bob)
    assert ledger.unmatched_alerts == []


def test_an_entry_keeps_the_text_it_was_injected_with(ledger: Ledger) -> None:
    assert ledger.injected("WA-T", "+256700000001", "my words", "faq").text == "my words"


def test_withdrawing_two_messages_that_share_an_id_is_harmless(ledger: Ledger) -> None:
    first = ledger.injected("WA-W", "+256700000002", "hi", "faq")
    second = ledger.injected("WA-W", "+256700000003", "hi again", "faq")
    ledger.withdraw(first)
    ledger.withdraw(second)  # the id is gone already: nothing to forget twice
    assert ledger.entries == []


def test_a_message_parked_after_a_later_one_was_answered_passes_the_send_on(
    ledger: Ledger,
) -> None:
    # A burst during a Wasender outage: the first message's send is parked, the second's
    # goes out first and is taken for the first's answer until the alert says otherwise.
    first, second = say(ledger, ANN, 1), say(ledger, ANN, 2)
    send(ledger, ANN, "answer to 2", second)
    alert(ledger, first, after=5.0)
    assert ledger.outcome_of(first) is MessageOutcome.PARKED
    assert ledger.outcome_of(second) is MessageOutcome.REPLY
    assert second.reply_text == "answer to 2"
    assert (ledger.unmatched_alerts, ledger.duplicates, ledger.pending) == ([], [], 0)


# -- bursts: sends tied to their message by id ----------------------------------------------


def send_for(ledger: Ledger, entry: Entry, text: str, after: float = 0.5) -> None:
    """A send the Node side recorded as the answer to ``entry`` (by its WhatsApp id)."""
    ledger.on_send(ANN, text, entry.sent_at + after, entry.whatsapp_id)


def test_in_a_burst_a_second_answer_to_the_first_message_is_a_duplicate(ledger: Ledger) -> None:
    first, second = say(ledger, n=1), say(ledger, n=2)
    send_for(ledger, first, "answer to 1")
    send_for(ledger, first, "answer to 1, again")
    assert ledger.duplicates == [(first.phone, "answer to 1, again")]
    # By phone, the second copy would have been taken for message 2's answer, hiding both.
    assert ledger.outcome_of(second) is MessageOutcome.MISSING


def test_in_a_burst_a_late_answer_goes_to_its_own_message(ledger: Ledger) -> None:
    first, second = say(ledger, n=1), say(ledger, n=2)
    send_for(ledger, second, "answer to 2")
    assert ledger.outcome_of(first) is MessageOutcome.MISSING
    assert (second.outcome, second.reply_text) == (MessageOutcome.REPLY, "answer to 2")
    send_for(ledger, first, "answer to 1", after=2.0)
    assert (first.reply_text, first.latency) == ("answer to 1", 2.0)
    assert ledger.duplicates == [] and first.exact and second.exact


def test_a_send_with_no_recorded_message_is_still_attributed_by_phone(ledger: Ledger) -> None:
    first, second = say(ledger, n=1), say(ledger, n=2)
    ledger.on_send(ANN, "an answer", first.sent_at + 0.5, "WA-unknown")
    assert first.outcome is MessageOutcome.REPLY and not first.exact
    assert second.outcome is None


def test_an_alert_after_an_exact_answer_is_not_moved_to_another_message(ledger: Ledger) -> None:
    first, second = say(ledger, n=1), say(ledger, n=2)
    send_for(ledger, first, "answer to 1")
    alert(ledger, first)
    assert ledger.outcome_of(second) is MessageOutcome.MISSING
    assert ledger.unmatched_alerts == [first.whatsapp_id]
