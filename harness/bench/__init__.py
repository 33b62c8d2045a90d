"""``harness bench``: the agent service's figures (``command``), its measurements (``runs``),
the report (``report``) and what is read of processes (``procstat``)."""
