"""watch()'s schedule, driven by a fake clock: the waits between checks are the backend's
backoff (kjob.polling), a run that ends is seen at the first check after it ended, a run stopped
at its session timeout is recorded so, and Ctrl-C stops the watching. Nothing here sleeps:
`clock` and `sleep` are watch()'s own seams, and the backend is a real implementation of the
one interface whose run moves by the same clock (as submitit's tests move a fake clock)."""

import random
import time

import pytest

from kjob import Ledger, RunStatus, watch
from kjob.backends.base import Backend
from kjob.polling import Backoff


class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class ScriptedBackend(Backend):
    """A run that is queued, then running, then ends as `end` says, at the moments given on
    `clock`; every status check is counted."""

    name = "scripted"
    poll = Backoff(start=2.0, factor=1.5, cap=30.0)

    def __init__(self, clock: FakeClock, starts: float, ends: float, end: RunStatus):
        self.clock, self.starts, self.ends, self.end = clock, starts, ends, end
        self.checked_at: list[float] = []

    def status(self, run) -> RunStatus:
        self.checked_at.append(self.clock.now)
        if self.clock.now >= self.ends:
            return self.end
        return RunStatus("running", "RUNNING") if self.clock.now >= self.starts else RunStatus("queued", "QUEUED")

    def submit(self, submission):
        raise NotImplementedError

    def log(self, run):
        return []

    def list_outputs(self, run):
        return []

    def download(self, run, file, destination):
        raise NotImplementedError

    def cancel(self, run, delete_kernel=False):
        raise NotImplementedError


@pytest.fixture
def ledger(tmp_path):
    with Ledger(tmp_path / "ledger.sqlite3") as ledger:
        yield ledger


def recorded(ledger):
    return ledger.record(kernel="tiny", backend="scripted", version=1, notebook_sha256="0" * 64, parameters={},
                         git_commit=None, git_dirty=None, handle={}, state=RunStatus("queued", "QUEUED"))


def expected_waits(backend, seed: int, until: float) -> list[float]:
    """The backend's schedule with the same jitter, up to the first check at or after `until`."""
    waits, at = [], 0.0
    for wait in backend.poll.delays(random.Random(seed)):
        if at >= until:
            return waits
        waits.append(wait)
        at += wait


def test_watch_waits_on_the_backends_backoff_and_sees_the_end_at_the_next_check(ledger):
    clock = FakeClock()
    backend = ScriptedBackend(clock, starts=5.0, ends=300.0, end=RunStatus("complete", "COMPLETE"))
    seen = []
    began = time.monotonic()
    run = watch(ledger, backend, recorded(ledger), on_progress=lambda run, spent: seen.append((run.state.status, spent)),
                clock=clock, sleep=clock.sleep, rng=random.Random(7))
    assert time.monotonic() - began < 5  # five minutes of watching, and no real sleeping
    assert run.state.status == "complete" and ledger.get(run.id).state.status == "complete"
    assert clock.slept == expected_waits(backend, 7, 300.0)
    # 2 s, then 1.5 times longer each (+-10 % jitter), never past the 30 s cap
    assert 1.8 <= clock.slept[0] <= 2.2 and max(clock.slept) <= 30.0 * 1.1
    assert all(1.5 * 0.9 / 1.1 <= b / a <= 1.5 * 1.1 / 0.9 for a, b in zip(clock.slept[:5], clock.slept[1:6]))
    assert backend.checked_at == [sum(clock.slept[:n]) for n in range(len(clock.slept) + 1)]
    assert 300.0 <= clock.now < 300.0 + 33.0  # the end is seen at the first check after it
    assert [spent for _, spent in seen] == backend.checked_at  # the time it reports is the clock's
    assert [status for status, _ in seen][:2] == ["queued", "queued"] and seen[-1][0] == "complete"
    assert len(backend.checked_at) <= 20


def test_a_run_stopped_at_its_session_timeout_ends_the_watch_with_the_timeout_recorded(ledger):
    clock = FakeClock()
    stopped = RunStatus("error", "ERROR", "timeout", "time limit of 60 s exceeded")
    backend = ScriptedBackend(clock, starts=0.0, ends=60.0, end=stopped)
    run = watch(ledger, backend, recorded(ledger), clock=clock, sleep=clock.sleep, rng=random.Random(3))
    assert (run.state.status, run.state.failure_kind) == ("error", "timeout")
    assert ledger.get(run.id).state.failure_message == "time limit of 60 s exceeded"
    assert clock.slept == expected_waits(backend, 3, 60.0)
    assert backend.checked_at[-2] < 60.0 <= backend.checked_at[-1]  # not one check more


def test_ctrl_c_while_waiting_stops_the_watch_and_leaves_the_run_as_last_seen(ledger):
    clock = FakeClock()
    backend = ScriptedBackend(clock, starts=1.0, ends=10_000.0, end=RunStatus("complete", "COMPLETE"))

    def sleep(seconds):
        clock.sleep(seconds)
        if clock.now > 100:
            raise KeyboardInterrupt

    run = recorded(ledger)
    with pytest.raises(KeyboardInterrupt):
        watch(ledger, backend, run, clock=clock, sleep=sleep, rng=random.Random(1))
    assert ledger.get(run.id).state.status == "running"  # watching stopped, the run did not
