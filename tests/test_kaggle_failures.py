"""How Kaggle says a run went wrong, read right: a 403 for one's own deleted kernel means gone, and
a session's failure message becomes its failure kind with a hint (out of memory, disk full, the
time limit, a dead kernel). kjob CLI -> kagglesdk -> HTTP -> the emulator, whose sessions can be
given memory and disk limits, so these failures happen for real.
"""

import json
import secrets

import pytest
from kaggle_fixtures import start_kaggle

from kjob.ledger import Ledger


def ledger_runs(ws):
    with Ledger(ws.root / ".kjob/ledger.sqlite3") as ledger:
        return ledger.runs()


def one_error_line(result) -> str:
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def delete_kernel(kaggle, slug: str = "tiny-kernel") -> None:
    kaggle.emulator.store.handle("DeleteKernel", {"userName": "alice", "kernelSlug": slug}, "alice")


def next_answer_403(kaggle) -> None:
    """The next API request is answered HTTP 403, as Kaggle answers a read of a deleted kernel."""
    kaggle.emulator.faults.set(fail_next=[403])


# -- a 403 on one's own kernel means gone -----------------------------------------------

@pytest.fixture
def kaggle403(tiny, tmp_path, monkeypatch):
    kaggle = start_kaggle(tiny, tmp_path, monkeypatch)
    kaggle.emulator.faults.set(hold=True)
    yield kaggle
    kaggle.emulator.stop()


def test_a_403_for_ones_own_deleted_kernel_marks_the_run_gone_as_a_404_does(kaggle403):
    kaggle = kaggle403
    assert kaggle.push("tiny").exit_code == 0
    delete_kernel(kaggle)
    next_answer_403(kaggle)
    status = kaggle.kjob("status", "tiny")
    assert status.exit_code == 5, status.output  # as on a 404: its session stopped with it
    assert "tiny v1: cancelled (kernel gone)" in status.stdout
    assert "refused access" not in status.output
    (run,) = ledger_runs(kaggle.ws)
    assert run.gone and run.state.status == "cancelled"
    assert "answers 403 for a deleted kernel of this account" in run.state.failure_message
    next_answer_403(kaggle)
    fetched = kaggle.kjob("fetch", "tiny", "--output")
    assert fetched.exit_code == 4, fetched.output  # gone, not refused: nothing to fetch, nothing mis-filed
    assert "tiny v1 no longer exists (Kaggle answers 403" in one_error_line(fetched)
    assert not (kaggle.ws.root / "downloads/tiny/v1/output").exists()


def test_a_403_while_a_finished_runs_outputs_are_fetched_is_gone_exit_4(kaggle403):
    kaggle = kaggle403
    kaggle.emulator.faults.set(hold=False)
    assert kaggle.push("tiny", "--wait").exit_code == 0
    delete_kernel(kaggle)
    before = kaggle.ws.snapshot("downloads/tiny")
    next_answer_403(kaggle)
    logs = kaggle.kjob("logs", "tiny")
    assert logs.exit_code == 4, logs.output
    assert "the Kaggle kernel alice/tiny-kernel of tiny v1 no longer exists" in one_error_line(logs)
    next_answer_403(kaggle)
    fetched = kaggle.kjob("fetch", "tiny", "--output")
    assert fetched.exit_code == 4, fetched.output
    assert kaggle.ws.snapshot("downloads/tiny") == before  # nothing of another kernel filed under v1


def test_a_403_for_another_accounts_kernel_stays_an_access_error(kaggle403, monkeypatch):
    kaggle = kaggle403
    assert kaggle.push("tiny").exit_code == 0
    carol = secrets.token_hex(16)
    kaggle.emulator._server.auth.users["carol"] = carol  # alice's kernel is private: carol gets 403
    (kaggle.config_dir / "kaggle.json").write_text(json.dumps({"username": "carol", "key": carol}))
    status = kaggle.kjob("status", "tiny")
    assert status.exit_code == 7, status.output
    assert "Kaggle refused access to kernel alice/tiny-kernel (HTTP 403" in one_error_line(status)
    (run,) = ledger_runs(kaggle.ws)
    assert not run.gone and run.state.status == "queued"


def test_a_token_is_asked_who_it_signs_in_as_before_a_403_means_gone(kaggle403, monkeypatch):
    kaggle = kaggle403
    assert kaggle.push("tiny").exit_code == 0
    token = "KGAT_" + secrets.token_hex(16)
    kaggle.emulator._server.auth.tokens = {token: "alice"}
    monkeypatch.setenv("KAGGLE_API_TOKEN", token)
    delete_kernel(kaggle)
    next_answer_403(kaggle)
    status = kaggle.kjob("status", "tiny")
    assert status.exit_code == 5, status.output
    assert "cancelled (kernel gone)" in status.stdout
    assert token not in status.output
