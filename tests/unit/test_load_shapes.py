"""The load shapes' arithmetic (harness/load/shapes.py), without Locust."""

from __future__ import annotations

import pytest

from harness.load.shapes import Shape, Stage, shape_from_env


def _users(shape: Shape, seconds: list[float]) -> list[int | None]:
    return [None if (s := shape.at(t)) is None else s.users for t in seconds]


def test_step_climbs_to_the_peak_in_equal_steps() -> None:
    shape = Shape("step", 100, 8)
    assert _users(shape, [0, 24, 25, 50, 75, 99.9, 100]) == [2, 2, 4, 6, 8, 8, None]


def test_spike_holds_the_peak_in_the_middle_fifth_only() -> None:
    shape = Shape("spike", 100, 10)
    assert _users(shape, [0, 39, 40, 59, 60, 99]) == [2, 2, 10, 10, 2, 2]


def test_soak_ramps_over_a_tenth_then_holds() -> None:
    shape = Shape("soak", 1000, 20)
    assert shape.at(0) == Stage(20, 20 / 100)
    assert shape.at(999) == Stage(20, 0.2)
    assert shape.at(1000) is None


def test_the_environment_picks_and_scales_the_shape() -> None:
    assert shape_from_env({}) is None
    env = {"LOCUST_SHAPE": "spike", "LOCUST_SHAPE_SECONDS": "6", "LOCUST_SHAPE_USERS": "3"}
    assert shape_from_env(env) == Shape("spike", 6.0, 3)


@pytest.mark.parametrize(("profile", "seconds", "peak"), [("ramp", 10, 1), ("step", 0, 1)])
def test_a_bad_shape_is_refused_by_name(profile: str, seconds: float, peak: int) -> None:
    with pytest.raises(ValueError, match=r"LOCUST_SHAPE|seconds > 0"):
        Shape(profile, seconds, peak)
