"""Following a run and finding the run a command means, through the library that `kjob push
--wait`, `kjob demo`, `status`, `logs`, `fetch` and `cancel` call (kjob.lifecycle.follow and
kjob.lifecycle.lookup), on real local runs."""

import pytest

from kjob.backends import get_backend
from kjob.errors import NotFoundError, UsageError
from kjob.lifecycle.follow import StoppedWatching, follow_and_fetch, follow_run
from kjob.lifecycle.lookup import find_run, recent_runs
from kjob.lifecycle.push import push_kernel
from kjob.lifecycle.watch import refresh, watch
from kjob.runs.ledger import Ledger
from kjob.runs.record import PushRecord
from kjob.workspace import find_workspace

GONE = {"pid": 2 ** 22 + 7, "start": 1}  # no such process: its push was interrupted


def test_a_followed_run_hands_on_its_status_changes_and_log_lines_then_is_fetched(tiny):
    ws = find_workspace(tiny.root)
    run = push_kernel(ws, "tiny", "local").run
    updates = []
    report = follow_and_fetch(ws, run, on_update=updates.append)
    assert report.run.state.status == "complete" and report.downloaded == ["result.json"]
    assert updates[0].status_changed and updates[-1].run.state.status == "complete"
    changes = [u.run.state.status for u in updates if u.status_changed]
    assert changes[-1] == "complete" and len(changes) == len(set(changes))
    lines = [line for u in updates for line in u.lines]
    assert lines == ["wrote result.json with 3 values"]  # each line once, whole
    assert all(u.skipped == 0 for u in updates)


def test_a_failed_run_is_fetched_too_its_log_but_not_its_outputs(tiny):
    ws = find_workspace(tiny.root)
    run = push_kernel(ws, "tiny", "local", {"fail": True}).run
    report = follow_and_fetch(ws, run)
    assert report.run.state.status == "error"
    assert report.downloaded == [] and report.folder.joinpath("log.txt").is_file()


def test_a_run_is_found_by_name_and_version_and_an_unconfirmed_push_is_refused(tiny):
    ws = find_workspace(tiny.root)
    first = follow_and_fetch(ws, push_kernel(ws, "tiny", "local").run).run
    with Ledger(ws.paths.ledger) as ledger:
        ledger.begin(PushRecord(kernel="tiny", backend="local", notebook_sha256="0" * 64, parameters={},
                                git_commit=None, git_dirty=None, token="lost", submitter=GONE))
    with pytest.raises(UsageError, match=r"local has not confirmed this push \(error\)"):
        find_run(ws, "tiny")  # reconciled on the way: closed, its push never reached the backend
    found = find_run(ws, "tiny")  # the latest row never reached the backend: the latest real run is meant
    found.ledger.close()
    assert found.run.id == first.id and found.backend.name == "local"
    latest = find_run(ws, "tiny", need_version=False)  # what `kjob status tiny` shows: that row itself
    latest.ledger.close()
    assert latest.run.version is None and latest.run.state.status == "error"
    with pytest.raises(NotFoundError):
        find_run(ws, "tiny", version=9)
    listed = recent_runs(ws)
    assert [item.run.id for item in listed][-1] == first.id
    assert not any(item.as_last_seen or item.problem for item in listed)  # local runs are asked, cheaply


def test_ctrl_c_while_following_stops_watching_not_the_run(tiny):
    ws = find_workspace(tiny.root)
    run = push_kernel(ws, "tiny", "local", {"sleep": 30.0}).run
    backend = get_backend(ws, "local")

    def interrupted(update):
        raise KeyboardInterrupt

    with Ledger(ws.paths.ledger) as ledger:
        with pytest.raises(StoppedWatching) as stopped:
            follow_run(ledger, backend, run, interrupted)
        assert stopped.value.run == run
        assert not refresh(ledger, backend, run).state.final  # it goes on
        backend.cancel(run)
        assert watch(ledger, backend, run).state.status == "cancelled"


def test_the_runs_table_shows_a_remote_run_as_last_seen_and_says_how_to_ask(kaggle):
    assert kaggle.push("tiny").exit_code == 0
    listed = recent_runs(find_workspace(kaggle.ws.root))
    assert [(item.run.ref, item.asked, item.as_last_seen) for item in listed] == [("tiny v1", False, True)]
    table = kaggle.kjob("status")
    assert table.exit_code == 0
    assert "note: tiny v1 is shown as last seen; `kjob status tiny --version 1` asks kaggle" in table.stderr
