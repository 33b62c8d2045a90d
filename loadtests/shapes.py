"""Locust load shapes: step, spike and soak, chosen by LOCUST_SHAPE (none: -u and -r rule).

    LOCUST_SHAPE=step  LOCUST_SHAPE_USERS=8 LOCUST_SHAPE_SECONDS=120 locust -f loadtests/ --headless
    LOCUST_SHAPE=spike locust -f loadtests/ --headless OpenLoopContacts --arrival-rate 5

One shape class only: with several in the folder, headless Locust silently takes the first. The
arithmetic is harness/load/shapes.py (tested without Locust). In distributed mode the master
runs the shape; give it the same LOCUST_SHAPE.
"""

from __future__ import annotations

import os

from locust import LoadTestShape

from harness.load.shapes import shape_from_env

_SHAPE = shape_from_env(dict(os.environ))


class ProfileShape(LoadTestShape):
    """The LOCUST_SHAPE profile; absent (abstract) when LOCUST_SHAPE is unset."""

    abstract = _SHAPE is None

    def tick(self) -> tuple[int, float] | None:
        if _SHAPE is None:
            return None
        stage = _SHAPE.at(self.get_run_time())
        return None if stage is None else (stage.users, stage.spawn_rate)
