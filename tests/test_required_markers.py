"""The ``ircore.testing`` plugin turns skipped tests that carry a required marker into
failures when IRCORE_REQUIRE_MARKERS is set (what .ci/run relies on)."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

INI = """
[pytest]
markers =
    postgres: needs PostgreSQL
    external: needs a system binary
"""

TESTS = """
import pytest

@pytest.mark.postgres
@pytest.mark.skipif(True, reason="needs PostgreSQL")
def test_pg_skipif():
    pass

@pytest.mark.external
def test_external_skips_in_body():
    pytest.skip("alertmanager binary not found")

@pytest.fixture
def binary():
    pytest.skip("chromium not installed")

@pytest.mark.external
def test_external_skips_in_fixture(binary):
    pass

@pytest.mark.skip(reason="optional")
def test_unmarked_skip():
    pass

@pytest.mark.external
@pytest.mark.xfail(reason="known bug")
def test_external_xfail():
    assert False

def test_plain():
    pass

@pytest.mark.postgres
@pytest.mark.external
def test_pg_and_binary():
    pytest.skip("needs PostgreSQL")
"""


def run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, required: str | None, *args: str):
    if required is None:
        monkeypatch.delenv("IRCORE_REQUIRE_MARKERS", raising=False)
    else:
        monkeypatch.setenv("IRCORE_REQUIRE_MARKERS", required)
    pytester.makeini(INI)
    pytester.makepyfile(test_sample=TESTS)
    # Without pytest-django: the inner session has no Django project.
    return pytester.runpytest_inprocess("-p", "no:django", "-p", "no:cacheprovider",
                                         "-p", "ircore.testing", "-rA", *args)


def test_without_the_variable_skips_stay_skips(pytester, monkeypatch):
    result = run(pytester, monkeypatch, None)
    result.assert_outcomes(passed=1, skipped=5, xfailed=1)
    assert result.ret == 0


def test_required_marker_skips_fail_the_session_and_are_listed(pytester, monkeypatch):
    result = run(pytester, monkeypatch, "external")
    # Skipped in the body: a failure; skipped in a fixture: a setup error. Both exit 1.
    # test_pg_and_binary also needs PostgreSQL, which this run does not provide: a skip.
    result.assert_outcomes(passed=1, skipped=3, failed=1, errors=1, xfailed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    out = result.stdout.str()
    assert "required tests that were skipped (IRCORE_REQUIRE_MARKERS)" in out
    assert "test_external_skips_in_body [external: alertmanager binary not found]" in out
    assert "test_external_skips_in_fixture [external: chromium not installed]" in out
    assert "test_pg_skipif [" not in out  # postgres is not required in this run
    assert "test_pg_and_binary [" not in out


def test_several_markers_with_whitespace_under_xdist(pytester, monkeypatch):
    result = run(pytester, monkeypatch, " external , postgres ", "-n", "1")
    result.assert_outcomes(passed=1, skipped=1, failed=2, errors=2, xfailed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    out = result.stdout.str()
    assert "test_pg_skipif [postgres: needs PostgreSQL]" in out
    assert "test_pg_and_binary [external,postgres: needs PostgreSQL]" in out
