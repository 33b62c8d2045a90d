"""Property-based fuzzing: Hypothesis strategies of both envelopes (``strategies``), envelopes
for the running service (``envelopes``), and the live check behind ``harness fuzz`` (``live``,
``runner``). Needs the ``test`` extra (Hypothesis)."""
