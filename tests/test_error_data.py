"""Errors carry the facts their one line was made from: the HTTP status and the request of a
backend's answer, and a failed smoke run's Failure. Each is raised here by a public function
over real components: the Kaggle backend against the emulator, a smoke build in its sandbox."""

import pytest

from kjob import BackendError, NotFoundError, RunFailed, RunGone, RunStatus, build_kernel, find_workspace, get_backend
from kjob.runs.ledger import Ledger


def recorded(ws, slug: str):
    """A Kaggle run of `slug`, as the ledger would hold it after a push."""
    with Ledger(ws.paths.ledger) as ledger:
        return ledger.record(kernel="tiny", backend="kaggle", version=1, notebook_sha256="0" * 64, parameters={},
                             git_commit=None, git_dirty=None, handle={"slug": slug}, state=RunStatus("queued", "QUEUED"))


def test_a_403_from_kaggle_keeps_its_status_and_method(kaggle):
    ws = find_workspace()
    run = recorded(ws, "bob/not-yours")  # the emulator, as Kaggle, answers 403 for another's (or no) kernel
    with pytest.raises(BackendError) as raised:
        get_backend(ws, "kaggle").status(run)
    error = raised.value
    assert (error.http_status, error.method) == (403, "GetKernel")
    assert str(error).startswith("Kaggle refused access to kernel bob/not-yours (HTTP 403")  # the line is unchanged
    assert "\n" not in str(error)


def test_a_404_from_kaggle_keeps_its_status_and_method_in_the_error_it_caused(kaggle):
    ws = find_workspace()
    run = recorded(ws, "alice/tiny-kernel")
    kaggle.emulator.faults.set(fail_next=[404])
    with pytest.raises(RunGone) as raised:
        get_backend(ws, "kaggle").status(run)
    cause = raised.value.__cause__
    assert isinstance(cause, NotFoundError) and (cause.http_status, cause.method) == (404, "GetKernel")
    assert raised.value.http_status is None  # what kjob concluded; the answer is its cause's


def test_an_error_made_without_an_answer_has_none():
    error = BackendError("the Ray cluster at x did not answer")
    assert (error.http_status, error.method) == (None, None)
    assert (RunFailed("failed").failure, RunFailed("failed").http_status) == (None, None)


def test_a_failing_smoke_build_carries_its_failure(tiny):
    ws = find_workspace()
    with pytest.raises(RunFailed) as raised:
        build_kernel(ws, "tiny", {"fail": True}, smoke=True)
    failure = raised.value.failure
    assert (failure.kind, failure.location) == ("user code", "src/pkg/job.py:11")
    assert failure.cell_index is not None and "RuntimeError: asked to fail" in failure.message
    assert str(raised.value).startswith("smoke run of tiny failed (user code) after ")
    assert f"{failure.location}: {failure.message}" in str(raised.value)
    assert not (tiny.root / "kernels/tiny").exists()
