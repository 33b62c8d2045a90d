"""The skip guard of tests/conftest.py: a run with a skip that is not allowed fails."""

from __future__ import annotations

import pytest

from tests.conftest import NO_DOCKER_COMPOSE

pytestmark = pytest.mark.unit
pytest_plugins = ["pytester"]

INI = """
[pytest]
markers =
    slow: a marker to deselect by
asyncio_default_fixture_loop_scope = function
"""
# Plugins the inner runs do not need; Hypothesis's alone costs about 1.5 s per run.
QUIET = ("-p", "no:hypothesispytest", "-p", "no:locust", "-p", "no:pact", "-p", "no:cacheprovider")


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest(*QUIET, *args)


@pytest.fixture
def guarded(pytester: pytest.Pytester) -> pytest.Pytester:
    """A project whose conftest loads the guard, as tests/conftest.py does for this one."""
    pytester.makeini(INI)
    pytester.makeconftest("from tests.conftest import pytest_configure  # noqa: F401")
    return pytester


def test_a_skip_for_another_reason_fails_the_run_and_is_named(guarded: pytest.Pytester) -> None:
    guarded.makepyfile(
        test_it="""
        import pytest

        def test_runs():
            pass

        def test_hides_a_check():
            pytest.skip("the shared data is not checked out")
        """
    )
    result = run(guarded)
    result.assert_outcomes(passed=1, skipped=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "*= skips that fail the run =*",
            "test_it.py::test_hides_a_check: the shared data is not checked out",
        ]
    )


def test_skip_marks_and_skips_in_fixtures_count_too(guarded: pytest.Pytester) -> None:
    guarded.makepyfile(
        test_it="""
        import pytest

        @pytest.fixture
        def node():
            pytest.skip("needs rabbitmq-server installed")

        @pytest.mark.skipif(True, reason="rabbitmq-server is not installed")
        def test_marked():
            pass

        def test_with_fixture(node):
            pass
        """
    )
    result = run(guarded)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "test_it.py::test_marked: rabbitmq-server is not installed",
            "test_it.py::test_with_fixture: needs rabbitmq-server installed",
        ]
    )


def test_a_missing_docker_is_the_allowed_skip(guarded: pytest.Pytester) -> None:
    guarded.makepyfile(
        test_it=f"""
        import pytest

        def test_compose():
            pytest.skip({NO_DOCKER_COMPOSE!r})

        @pytest.mark.xfail(reason="a known bug, not a skip")
        def test_known_bug():
            assert False
        """
    )
    result = run(guarded)
    result.assert_outcomes(skipped=1, xfailed=1)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.no_fnmatch_line("*skips that fail the run*")


def test_deselected_tests_are_not_skips(guarded: pytest.Pytester) -> None:
    guarded.makepyfile(
        test_it="""
        import pytest

        def test_fast():
            pass

        @pytest.mark.slow
        def test_slow_and_skipping():
            pytest.skip("not ready")
        """
    )
    subset = run(guarded, "-m", "not slow")
    subset.assert_outcomes(passed=1, deselected=1)
    assert subset.ret == pytest.ExitCode.OK
    assert run(guarded).ret == pytest.ExitCode.TESTS_FAILED


def test_a_failing_run_keeps_its_failure(guarded: pytest.Pytester) -> None:
    guarded.makepyfile(
        test_it="""
        import pytest

        def test_broken():
            assert False

        def test_skipped():
            pytest.skip("later")
        """
    )
    result = run(guarded, "-x")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(failed=1)
