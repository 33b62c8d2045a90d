"""The harness: a real broker under control, fakes of every other party, scenarios, reports."""
