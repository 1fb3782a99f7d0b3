"""The test harness's reading of nuget 2.8.7's exit when mono aborts in its own teardown
(``support.nugetexe``): only a finished, successful command counts as exit 0."""

from __future__ import annotations

from support.nugetexe import NuGetResult, _past_mono_teardown_abort

ABORT = "* Assertion at mono-threads.c:2005, condition `previous_token == NULL' not met\n\nNative Crash"


def test_a_push_that_finished_before_mono_aborted_counts_as_done() -> None:
    out = f"Pushing X 1.0.0 to 'http://h/api/v2'...\nYour package was pushed.\n{ABORT}"
    assert _past_mono_teardown_abort(NuGetResult(-6, out)) == NuGetResult(0, out)


def test_a_refusal_or_another_crash_keeps_its_exit_code() -> None:
    refused = f"Pushing X 1.0.0 ...\nFailed to process request. 'Forbidden'.\n{ABORT}"
    assert _past_mono_teardown_abort(NuGetResult(-6, refused)).returncode == -6
    other = "Your package was pushed.\n* Assertion at gc.c:1: oops"
    assert _past_mono_teardown_abort(NuGetResult(-6, other)).returncode == -6
    assert _past_mono_teardown_abort(NuGetResult(1, "Your package was pushed.\n" + ABORT)).returncode == 1
