"""The run report built from a ledger: its counts, its verdict, and how it is written out.

Ledgers are built by hand with known latencies, so every number in a report has one right
value. ``lost`` counts only messages nothing happened to (missing); a parked message or a
fallback is an outcome the user or an admin saw, not a loss.
"""

from __future__ import annotations

import json

import pytest

from harness.ledger import Entry, Ledger, MessageOutcome
from harness.report import RunReport, build_report, percentile, render, tools_from_metrics

pytestmark = pytest.mark.unit

FALLBACK = "Sorry, we could not answer right now."
PHONES = [f"+2567037227{n:02d}" for n in range(100)]


class Run:
    """A ledger filled message by message: ``run.reply("order", after=0.2)``."""

    def __init__(self) -> None:
        self.ledger = Ledger(FALLBACK)
        self._next = 0

    def _message(self, task: str) -> Entry:
        phone = PHONES[self._next]
        self._next += 1
        return self.ledger.injected(f"WA{self._next}", phone, "hi", task)

    def reply(self, task: str = "conversation", after: float = 0.1) -> Entry:
        entry = self._message(task)
        self.ledger.on_send(entry.phone, "an answer", entry.sent_at + after)
        return entry

    def fallback(self, task: str = "conversation", after: float = 0.1) -> Entry:
        entry = self._message(task)
        self.ledger.on_send(entry.phone, FALLBACK, entry.sent_at + after)
        return entry

    def parked(self, task: str = "conversation", after: float = 0.1) -> Entry:
        entry = self._message(task)
        self.ledger.on_alert(entry.whatsapp_id, entry.sent_at + after)
        return entry

    def missing(self, task: str = "conversation") -> Entry:
        return self._message(task)

    def duplicate(self, entry: Entry) -> None:
        self.ledger.on_send(entry.phone, "the same answer again", entry.sent_at + 1.0)

    def report(
        self,
        duration: float = 10.0,
        depths: dict[str, int] | None = None,
        tools: dict[str, float] | None = None,
    ) -> RunReport:
        return build_report(
            "happy",
            self.ledger,
            duration=duration,
            depths=depths or {},
            tools=tools or {},
            broker="test broker",
        )


# -- percentile ------------------------------------------------------------------------------


def test_percentile_of_nothing_is_none() -> None:
    assert percentile([], 50) is None


def test_percentile_of_one_value_is_that_value() -> None:
    assert [percentile([0.7], q) for q in (0, 50, 99, 100)] == [0.7, 0.7, 0.7, 0.7]


def test_percentile_takes_the_nearest_rank_of_the_sorted_values() -> None:
    values = [float(v) for v in reversed(range(101))]  # 100.0 down to 0.0
    assert [percentile(values, q) for q in (0, 50, 95, 99, 100)] == [0.0, 50.0, 95.0, 99.0, 100.0]
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0


# -- counts ----------------------------------------------------------------------------------


def test_each_outcome_is_counted_and_every_kind_is_listed() -> None:
    run = Run()
    run.reply()
    run.reply()
    run.fallback()
    run.parked()
    run.missing()
    report = run.report()
    assert report.messages == 5
    assert report.outcomes == {"reply": 2, "fallback": 1, "parked": 1, "missing": 1}
    assert list(report.outcomes) == [o.value for o in MessageOutcome]


def test_an_empty_run_lists_every_kind_at_zero() -> None:
    report = Run().report()
    assert report.messages == 0
    assert report.outcomes == {o.value: 0 for o in MessageOutcome}
    assert (report.lost, report.duplicated, report.throughput_per_second) == (0, 0, 0.0)
    assert all(v is None for v in report.latency_seconds.values())


def test_lost_counts_the_missing_messages() -> None:
    run = Run()
    run.reply()
    run.missing()
    run.missing()
    assert run.report().lost == 2


def test_parked_and_fallback_messages_are_not_lost() -> None:
    run = Run()
    run.parked()
    run.parked()
    run.fallback()
    run.reply()
    report = run.report()
    assert report.lost == 0
    assert report.outcomes["parked"] == 2


def test_duplicated_counts_every_extra_send() -> None:
    run = Run()
    first = run.reply()
    run.duplicate(first)
    run.duplicate(first)
    run.duplicate(run.reply())
    report = run.report()
    assert report.duplicated == 3
    assert report.messages == 2 and report.outcomes["reply"] == 2


def test_no_extra_send_is_no_duplicate() -> None:
    run = Run()
    run.reply()
    run.fallback()
    run.parked()
    assert run.report().duplicated == 0


def test_unmatched_alerts_are_counted() -> None:
    run = Run()
    answered = run.reply()
    run.ledger.on_alert(answered.whatsapp_id, 1.0)
    run.ledger.on_alert(None, 1.0)
    assert run.report().unmatched_alerts == 2
    assert Run().report().unmatched_alerts == 0


# -- latency and throughput ------------------------------------------------------------------


def test_latency_percentiles_and_mean_of_known_latencies() -> None:
    run = Run()
    for tenths in range(1, 11):  # 0.1 s to 1.0 s
        run.reply(after=tenths / 10)
    run.missing()  # no latency: left out, not counted as zero
    lat = run.report().latency_seconds
    # Nearest rank of 10 values: p50 is the 5th (index round(4.5) = 4), p95 and p99 the 10th.
    assert lat["p50"] == pytest.approx(0.5)
    assert lat["p95"] == pytest.approx(1.0)
    assert lat["p99"] == pytest.approx(1.0)
    assert lat["mean"] == pytest.approx(0.55)


def test_parked_and_fallback_latencies_count_too() -> None:
    run = Run()
    run.parked(after=3.0)
    run.fallback(after=1.0)
    lat = run.report().latency_seconds
    assert lat["mean"] == pytest.approx(2.0)
    assert lat["p99"] == pytest.approx(3.0)


def test_throughput_is_settled_messages_per_second() -> None:
    run = Run()
    run.reply()
    run.fallback()
    run.parked()
    run.missing()  # 3 settled
    report = run.report(duration=4.0)
    assert report.throughput_per_second == 0.75
    assert report.duration_seconds == 4.0


def test_throughput_is_rounded_and_zero_without_duration() -> None:
    run = Run()
    run.reply()
    run.reply()
    assert run.report(duration=3.0).throughput_per_second == 0.67
    assert run.report(duration=0.0).throughput_per_second == 0.0
    assert run.report(duration=1.23456).duration_seconds == 1.23


# -- per task --------------------------------------------------------------------------------


def test_per_task_counts_outcomes_and_latency_by_task_type() -> None:
    run = Run()
    run.reply("order", after=0.2)
    run.reply("order", after=0.4)
    run.missing("order")
    run.parked("appointment", after=5.0)
    per_task = run.report().per_task
    assert list(per_task) == ["appointment", "order"]  # sorted by name
    assert per_task["order"]["messages"] == 3
    assert per_task["order"]["outcomes"] == {"reply": 2, "missing": 1}
    assert per_task["order"]["latency_seconds"]["mean"] == pytest.approx(0.3)
    assert per_task["appointment"]["outcomes"] == {"parked": 1}
    assert per_task["appointment"]["latency_seconds"]["p50"] == pytest.approx(5.0)


# -- ok, render, to_json ---------------------------------------------------------------------


def test_a_run_with_an_outcome_for_every_message_is_ok() -> None:
    run = Run()
    run.reply()
    run.fallback()
    run.parked()
    assert run.report().ok


def test_a_missing_message_makes_the_run_fail() -> None:
    run = Run()
    run.reply()
    run.missing()
    assert not run.report().ok


def test_a_duplicate_makes_the_run_fail() -> None:
    run = Run()
    run.duplicate(run.reply())
    assert not run.report().ok


def test_render_ends_with_pass_when_ok() -> None:
    run = Run()
    run.reply("order")
    run.parked("order")
    text = render(run.report())
    assert text.splitlines()[-1] == "PASS: every message has exactly one outcome"
    assert "  lost            0" in text.splitlines()
    assert "outcomes        reply 1, fallback 0, parked 1, missing 0" in text


@pytest.mark.parametrize("fault", ["missing", "duplicate"])
def test_render_ends_with_fail_when_lost_or_duplicated(fault: str) -> None:
    run = Run()
    entry = run.reply()
    if fault == "missing":
        run.missing()
    else:
        run.duplicate(entry)
    lines = render(run.report()).splitlines()
    assert lines[-1] == "FAIL: lost or duplicated"
    assert f"  lost            {1 if fault == 'missing' else 0}" in lines
    assert f"  duplicated      {1 if fault == 'duplicate' else 0}" in lines


def test_render_shows_the_run_and_its_numbers() -> None:
    run = Run()
    run.reply("order", after=0.25)
    report = run.report(
        duration=2.0, depths={"ag_queue": 0, "parking": 1}, tools={"search_faq": 3.0}
    )
    report.notes.append("the broker was killed once")
    text = render(report)
    assert text.startswith("Simulation report: scenario 'happy' on test broker")
    assert "p50 250 ms" in text
    assert "throughput      0.5 messages/s over 2.0 s" in text
    assert "tools used      search_faq 3" in text
    assert "queue depths    ag_queue 0, parking 1" in text
    assert "note            the broker was killed once" in text
    order_row = next(line for line in text.splitlines() if line.strip().startswith("order"))
    assert order_row.split()[:6] == ["order", "1", "1", "0", "0", "0"]


def test_to_json_is_the_report_with_its_verdict() -> None:
    run = Run()
    run.reply("order")
    run.missing("order")
    report = run.report(depths={"ag_queue": 2})
    data = json.loads(json.dumps(report.to_json()))  # plain JSON, nothing left as an object
    assert data["ok"] is False
    assert (data["messages"], data["lost"], data["duplicated"]) == (2, 1, 0)
    assert data["outcomes"] == {"reply": 1, "fallback": 0, "parked": 0, "missing": 1}
    assert data["per_task"]["order"]["outcomes"] == {"reply": 1, "missing": 1}
    assert data["queue_depths"] == {"ag_queue": 2}
    assert (data["scenario"], data["broker"]) == ("happy", "test broker")
    assert run.report().to_json()["ok"] is False
    assert Run().report().to_json()["ok"] is True


def test_tools_are_read_from_the_agent_metrics() -> None:
    text = "\n".join(
        [
            "# TYPE agent_tools_used_total counter",
            'agent_tools_used_total{tool="search_faq"} 3.0',
            'agent_tools_used_total{tool="get_order_status"} 1.0',
            'agent_messages_consumed_total{task_type="order"} 9.0',
        ]
    )
    assert tools_from_metrics(text) == {"search_faq": 3.0, "get_order_status": 1.0}


# -- the whole text, as a person reads it ------------------------------------------------------

GOLDEN = """\
Simulation report: scenario 'steady' on a private node

  messages        3
  outcomes        reply 1, fallback 1, parked 1, missing 0
  lost            0
  duplicated      0
  latency         p50 250 ms   p95 1500 ms   p99 2000 ms
  throughput      1.5 messages/s over 2.0 s

  per task type   messages  reply  fallback  parked  missing    p50      p95
  order                  2      0         1       1        0   100 ms   900 ms
  faq                    2      1         0       0        1        -        -

  tools used      book 1, search_faq 2
  queue depths    ag_queue 0, wb_queue 4
  note            one note

PASS: every message has exactly one outcome"""


def test_render_is_exactly_the_table_a_person_reads() -> None:
    report = RunReport(
        scenario="steady",
        messages=3,
        outcomes={"reply": 1, "fallback": 1, "parked": 1, "missing": 0},
        lost=0,
        duplicated=0,
        latency_seconds={"p50": 0.25, "p95": 1.5, "p99": 2.0, "mean": 1.0},
        per_task={
            "order": {
                "messages": 2,
                "outcomes": {"fallback": 1, "parked": 1},
                "latency_seconds": {"p50": 0.1, "p95": 0.9},
            },
            "faq": {
                "messages": 2,
                "outcomes": {"reply": 1, "missing": 1},
                "latency_seconds": {"p50": None, "p95": None},
            },
        },
        tools_used={"search_faq": 2.0, "book": 1.0},
        queue_depths={"ag_queue": 0, "wb_queue": 4},
        duration_seconds=2.0,
        throughput_per_second=1.5,
        broker="a private node",
        notes=["one note"],
    )
    assert render(report) == GOLDEN


def test_render_of_an_empty_run_shows_dashes() -> None:
    text = render(Run().report(duration=0.0))
    assert "  latency         p50 -   p95 -   p99 -" in text.splitlines()
    assert "  tools used      -" in text.splitlines()
    assert "  queue depths    -" in text.splitlines()


def test_the_run_percentiles_are_p50_p95_p99_of_the_latencies() -> None:
    ledger = Ledger(FALLBACK)
    for i in range(101):
        entry = ledger.injected(f"WA{i}", f"+25670000{i:04d}", "hi", "faq")
        ledger.on_send(entry.phone, "an answer", entry.sent_at + i)
    report = build_report("many", ledger, duration=1.0, depths={}, tools={}, broker="b")
    latency = report.latency_seconds
    # sent_at is time.monotonic(): with a long uptime, (sent_at + i) - sent_at is i only to
    # within the float's precision there (found: 49.999999999999545).
    assert (latency["p50"], latency["p95"], latency["p99"]) == pytest.approx((50.0, 95.0, 99.0))


def test_percentile_above_100_is_the_largest_value() -> None:
    assert percentile([1.0, 2.0, 3.0], 150) == 3.0


def test_throughput_of_a_run_shorter_than_a_second() -> None:
    run = Run()
    run.reply()
    assert run.report(duration=0.5).throughput_per_second == 2.0
