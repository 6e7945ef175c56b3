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


# -- when the end is expected: the schedule (kjob.polling) and watch() using it (issue 24) --

def around(duration: float, count: int, rng) -> list[float]:
    import math

    return [duration * math.exp(rng.gauss(0, 0.1)) for _ in range(count)]


def test_checks_are_dense_around_the_expected_end_for_the_plain_backoffs_number_of_calls():
    import random
    import statistics

    from kjob.backends.kaggle import KaggleBackend
    from kjob.polling import seen_after

    schedule = KaggleBackend.poll  # 5 s, x1.5, capped at 60 s
    assert list(zip(range(8), schedule.delays(random.Random(3), None))) == \
        list(zip(range(8), schedule.delays(random.Random(3))))  # nothing expected: the plain backoff
    rng = random.Random(5)
    for duration in (600.0, 3600.0):
        late, calls = {"plain": [], "expected": []}, {"plain": [], "expected": []}
        for _ in range(300):
            earlier = around(duration, 5, rng)
            median = statistics.median(earlier)
            spread = 1.4826 * statistics.median(abs(s - median) for s in earlier)
            end = around(duration, 1, rng)[0]
            for name, delays in (("plain", schedule.delays(rng)), ("expected", schedule.delays(rng, median, spread))):
                count, behind = seen_after(delays, end)
                late[name].append(behind)
                calls[name].append(count)
        assert statistics.median(late["plain"]) > 25  # one cap apart: about half a cap late
        assert statistics.median(late["expected"]) < 15
        # the same number of status calls: a run that ends when expected costs what it did, one
        # that ends later a few more, one that ends sooner fewer (within 3 % on the whole)
        assert statistics.mean(calls["expected"]) <= 1.03 * statistics.mean(calls["plain"])
    waits = list(zip(range(400), schedule.delays(random.Random(1), 600.0, 30.0)))
    at, spacing = 0.0, {}
    for _, wait in waits:
        spacing.setdefault("window" if 555 <= at < 645 else "before" if at < 555 else "after", []).append(wait)
        at += wait
    assert max(spacing["window"]) < 20 < 60 < max(spacing["before"]) <= 2 * 60 * 1.1  # far from it: sparser
    assert max(spacing["after"]) <= 60 * 1.1  # a run later than expected: the plain cap again


def test_watch_expects_a_run_to_end_when_its_recipes_earlier_runs_did(tiny):
    """Five earlier complete runs of `tiny` (and of one of its campaign lanes) took about ten
    minutes: a new run that takes as long is seen ended within seconds, where the plain
    schedule (no earlier runs) sees it about half a minute late."""
    import random
    import time

    from kjob.backends.kaggle import KaggleBackend
    from kjob.lifecycle.watch import expected_span
    from kjob.runs.record import RunStatus

    class Clock:
        now = 0.0

        def sleep(self, seconds):
            self.now += seconds

    class Timed(KaggleBackend):
        """Kaggle's schedule; the run is running until `ends` on the fake clock."""

        def __init__(self, clock, ends):
            self.clock, self.ends, self.calls = clock, ends, 0

        def status(self, run):
            self.calls += 1
            return RunStatus("complete" if self.clock.now >= self.ends else "running")

        def log(self, run):
            return []

    def record(ledger, kernel, seconds=None):
        run = ledger.record(kernel=kernel, backend="kaggle", version=len(ledger.runs()) + 1, notebook_sha256="0" * 64,
                            parameters={}, git_commit=None, git_dirty=None, handle={})
        if seconds is not None:
            run = ledger.update(run, RunStatus("complete", finished_at=run.created_at + seconds))
        return run

    def watched(ledger, ends, kernel="tiny"):
        clock = Clock()
        backend = Timed(clock, ends)
        run = record(ledger, kernel)
        watch(ledger, backend, run, clock=lambda: clock.now, sleep=clock.sleep, rng=random.Random(2))
        return clock.now - ends, backend.calls

    ws = find_workspace(tiny.root)
    with Ledger(ws.paths.ledger) as ledger:
        plain_late, plain_calls = watched(ledger, 612.0, "fresh")  # a recipe with no earlier runs
        for kernel, seconds in (("tiny", 590), ("tiny", 600), ("tiny@sweep-1", 615), ("tiny", 630), ("other", 60)):
            record(ledger, kernel, seconds)
        record(ledger, "tiny")  # one that has not ended counts for nothing
        median, spread = expected_span(ledger, record(ledger, "tiny"))
        assert median == 607.5 and 10 < spread < 30  # "other" is another recipe
        began = time.monotonic()
        late, calls = watched(ledger, 612.0)
    assert time.monotonic() - began < 2  # ten minutes of watching, no real sleeping
    assert late < 8 < 20 < plain_late and calls <= plain_calls
