"""`kjob sweep`: a campaign's members pushed into lanes, followed, fetched, in the foreground.

Each tick reads the campaign's runs from the ledger (one query) and plans from them
(kjob.campaigns.plan); checks the runs in flight whose check is due, each on its backend's
schedule with one check at the moment alike members took to end; fetches each run that ended
(outputs of a complete one, status and log of a failed one) before its lane takes another
member; then pushes pending members into free lanes. Everything it knows is in the ledger, so
a sweep killed at any point resumes when started again: a complete member is never pushed
again, a run in flight is followed where it is, a push cut short is reconciled by its token,
and every run that ended unfetched (fetched_at empty: its fetch never ran, or was killed, its
temporary files then removed by kjob.lifecycle.fetch) is fetched. What it cannot fetch is named at the
end (kjob.campaigns.plan.unaccounted), and the campaign is not reported complete.

`interrupt()` (Ctrl-C) once: no more pushes, the members in flight are followed to their end
and fetched; twice: stop following them too (they run on).
"""

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from kjob.backends import get_backend
from kjob.campaigns.file import Campaign
from kjob.campaigns.plan import MemberState, Plan, Planner, expected_seconds, needs_fetch, source_digest
from kjob.errors import BackendError, KjobError, NoRoom, PushedWithProblem, QuotaLow
from kjob.campaigns.lanes import backend_lanes
from kjob.campaigns.lock import only_sweep
from kjob.build.kernel_metadata import lane_kernel
from kjob.runs.record import parse_lane
from kjob.runs.ledger import Ledger
from kjob.runs.metrics import is_number, metric_named
from kjob.runs.record import Run

_FETCH_TRIES = 3  # a fetch failing this often in one sweep is left for `kjob fetch`


def _fetch_tries(run: Run) -> int:
    """How often a sweep tries to fetch `run`: a run that ended and is not fetched, 3 times; one
    the ledger marks gone, once (on Kaggle there is nothing left, but a local or Ray run's files
    may be: a row marked gone by mistake must not lose a member's outputs); else never."""
    if needs_fetch(run):
        return _FETCH_TRIES
    return 1 if run.state.final and run.gone and run.fetched_at is None and run.version is not None else 0
_NAP = 0.5  # the longest sleep between looks at the stop flags (Ctrl-C)


@dataclass
class Event:
    kind: str  # lanes, pushed, adopted, status (queued -> running), ended, waiting, warning, stopped
    text: str


@dataclass
class SweepStats:
    status_calls: int = 0  # the backend asked how a run is doing
    pushes: int = 0
    fetches: int = 0
    started: float = field(default_factory=time.monotonic)


class Sweep:
    def __init__(self, ws, campaign: Campaign, retry_failed: bool = False,
                 on_event: Callable[[Event, Plan], None] | None = None,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 on_tick: Callable[[Plan], None] | None = None, fresh: bool = False):
        """`fresh`: no member adopts a complete run of its signature (kjob.campaigns.inputs)."""
        self.ws, self.campaign = ws, campaign
        self.on_tick = on_tick  # after each tick, with its plan (`kjob sweep --board` rewrites the board)
        self.backend = get_backend(ws, campaign.backend)
        self.planner = Planner(ws, campaign, source_digest(ws, campaign.recipe), fresh=fresh)
        self.announced: set[tuple] = set()  # members whose adoption was said
        self.since = time.time() if retry_failed else 0.0
        self.on_event = on_event or (lambda event, plan: None)
        self.clock, self.sleep = clock, sleep
        self.stats = SweepStats(started=clock())
        self.push_failures: dict[tuple, int] = {}  # member key -> pushes that left no row
        self.not_before: dict[tuple, float] = {}  # member key -> no push before (after a failed push)
        self.checks: dict[int, list] = {}  # run id -> [delays, next check]
        self.fetch_tries: dict[int, list] = {}  # run id -> [failures, next try]
        self.expected: dict[str, float | None] = {}  # stage -> seconds its members take
        self.room_delays = None  # after the backend said it has no room: when to ask again
        self.room_at = 0.0
        self.lanes = None
        self.stopping = False  # no more pushes (Ctrl-C once, a quota, an error)
        self.leaving = False  # stop following (Ctrl-C twice)
        self.stop_reason: str | None = None
        self.error: KjobError | None = None
        self.plan: Plan | None = None

    # -- the loop -----------------------------------------------------------------------

    def interrupt(self) -> None:
        if self.stopping:
            self.leaving = True
        else:
            self.stopping, self.stop_reason = True, "interrupted"

    def run(self) -> Plan:
        with only_sweep(self.ws.paths.campaign_lock(self.campaign.name), self.campaign.name), \
                Ledger(self.ws.paths.ledger) as ledger:
            self.ledger = ledger
            self.lanes = backend_lanes(self.backend, self.campaign.recipe, self.campaign.name, self.campaign.lanes)
            self._emit("lanes", f"lanes: {self.lanes.why}")
            while True:
                self.tick()
                if self.on_tick is not None:
                    self.on_tick(self.plan)
                if self.leaving or self._finished():
                    return self.plan
                self._nap()

    def follow_only(self) -> Plan:
        """One look at the runs in flight (`--status`): statuses asked, nothing pushed or fetched."""
        with Ledger(self.ws.paths.ledger) as ledger:
            self.ledger = ledger
            for run in ledger.runs(campaign=self.campaign.name):
                if not run.state.final and run.backend == self.backend.name:
                    self._refresh(run)
            self.plan = self._replan()
            return self.plan

    def tick(self) -> Plan:
        self.plan = self._replan()
        now = self.clock()
        for run in self._campaign_runs():
            if not run.state.final and self._due(run, now):
                self._follow(run)
        self._runs = self.ledger.runs(campaign=self.campaign.name)  # fetch what ended just now
        unfinished = {r.id for r in self._campaign_runs() if not r.state.final}
        self.checks = {k: v for k, v in self.checks.items() if k in unfinished}  # ended elsewhere too
        for run in self._fetchable():
            tries = self.fetch_tries.get(run.id, [0, 0.0])
            if tries[0] < _fetch_tries(run) and tries[1] <= now:
                self._fetch(run)
        self.plan = self._replan()
        if not self.stopping:
            self._schedule()
        return self.plan

    def _replan(self) -> Plan:
        self._runs = self.ledger.runs(campaign=self.campaign.name)
        plan = self.planner.plan(self._runs, self.push_failures, self.since, ledger=self.ledger)
        for stage in plan.stages:
            expected = expected_seconds(stage)
            if expected is not None and self.expected.get(stage.stage.name) is None:
                self.expected[stage.stage.name] = expected
                for member in stage.members:  # alike runs in flight: check them when this one ended
                    if member.run is not None and not member.run.state.final:
                        self._watch(member.run, first=None)
        self.plan = plan
        for state in plan.members:
            if state.adopted and state.member.key not in self.announced:
                self.announced.add(state.member.key)
                self.on_event(Event("adopted", f"{state.member.label}: adopted {state.run.ref} (complete, of the same "
                                               "sources, parameters, backend and inputs; --fresh runs it anew)"), plan)
        return plan

    def _campaign_runs(self) -> list[Run]:
        return [r for r in self._runs if r.backend == self.backend.name]

    def _fetchable(self) -> list[Run]:
        """The campaign's runs and those its members adopted (fetched as its own: a later stage
        may be given their outputs)."""
        runs = {r.id: r for r in self._campaign_runs()}
        runs.update((r.id, r) for r in (self.plan.adopted if self.plan else ()) if r.id not in runs)
        return list(runs.values())

    def _finished(self) -> bool:
        if any(not r.state.final for r in self._campaign_runs()):
            return False
        if any(self.fetch_tries.get(r.id, [0])[0] < _fetch_tries(r) for r in self._fetchable()):
            return False
        return self.stopping or not self._pushable()

    def _pushable(self) -> list[MemberState]:
        return [m for s in self.plan.stages if s.state == "open" for m in s.members
                if m.status in ("pending", "retry")]

    def _nap(self) -> None:
        """Sleep until the next thing due: a check (one due already: no sleep), a fetch to try
        again, or a push waiting for its time while a lane is free; never longer than _NAP."""
        now = self.clock()
        times = [c[1] for c in self.checks.values()]
        times += [t[1] for t in self.fetch_tries.values() if t[0] < _FETCH_TRIES]
        if self._pushable() and not self.stopping and self._free_lanes():
            later = [self.room_at] + [self.not_before.get(m.member.key, 0.0) for m in self._pushable()]
            times += [t for t in later if t > now]  # a push that could go now went this tick
        wake = min(times, default=now + _NAP)
        self.sleep(max(0.0, min(wake - now, _NAP)))

    # -- following and fetching ---------------------------------------------------------

    def _watch(self, run: Run, first: float | None) -> None:
        """Give `run` a schedule of checks: its backend's, with one at the moment its stage's
        members took to end (once one has); `first`: seconds to the first check (None: per schedule)."""
        expected = self.expected.get(run.stage)
        left = expected - (time.time() - run.created_at) if expected is not None else None
        if left is not None and left <= 0:
            first = 0.0  # its alike runs have ended by now: it likely has too
        delays = self.backend.poll.delays(expected=left if left and left > 0 else None)
        self.checks[run.id] = [delays, self.clock() + (next(delays) if first is None else first)]

    def _due(self, run: Run, now: float) -> bool:
        if run.id not in self.checks:
            self._watch(run, first=0.0)  # re-attached (an earlier sweep's run): look now
        return self.checks[run.id][1] <= now

    def _refresh(self, run: Run) -> Run:
        from kjob.lifecycle.push import reconcile
        from kjob.lifecycle.watch import refresh

        if run.state.status == "submitting" and run.submitter.get("pid") == os.getpid():
            run = reconcile(self.ledger, self.backend, run, push_over=True)  # our push has returned
        self.stats.status_calls += 1
        return refresh(self.ledger, self.backend, run)

    def _follow(self, run: Run) -> None:
        try:
            new = self._refresh(run)
        except KjobError as exc:
            self._emit("warning", f"{self._name(run)}: status not known ({exc.message}); asking again later")
            new = run
        if new.state.status != run.state.status and not needs_fetch(new):  # an ending fetched says it itself
            self._emit("ended" if new.state.final else "status", f"{self._name(new)}: {self._status_text(new)}",
                       fresh=True)
        if new.state.final:
            self.checks.pop(run.id, None)
            self.room_at = 0.0  # a session ended: a push the backend refused may go now
        else:
            delays, _ = self.checks[run.id]
            self.checks[run.id][1] = self.clock() + next(delays)

    def _fetch(self, run: Run) -> None:
        from kjob.lifecycle.fetch import fetch_run

        try:
            report = fetch_run(self.ws, self.ledger, self.backend, run, outputs=run.state.status == "complete")
        except KjobError as exc:
            tries = self.fetch_tries.setdefault(run.id, [0, 0.0])
            tries[0] += 1
            tries[1] = self.clock() + self.backend.poll.start * 2 ** tries[0]
            if tries[0] < _fetch_tries(run):
                more = "trying again"
            elif run.gone:
                more = "its kernel is gone"
            else:
                more = f"left for `kjob fetch {run.kernel} --version {run.version} --output`"
            self._emit("warning", f"{self._name(run)}: fetch failed ({exc.message}); {more}")
            return
        self.stats.fetches += 1
        folder = self.ws.paths.relative(report.folder)
        problems = report.problems + [f"{n}: edited here, not replaced" for n in report.conflicts]
        problems += [f"{n!r}: refused (it would escape the folder)" for n in report.refused]
        for problem in problems:
            self._emit("warning", f"{self._name(run)}: output {problem}")
        for note in report.notes:  # no metrics found, a metrics reader not installed
            self._emit("note", f"{self._name(run)}: note: {note}")
        run = report.run
        what = f"{len(report.downloaded) + len(report.unchanged)} output file(s)" if run.state.status == "complete" \
            else "status and log"
        metric = self.campaign.metric and (metric_named(self.campaign.metric, run.metrics) or self.campaign.metric)
        value = f", {metric} {run.metrics[metric]:.4g}" if metric and is_number(run.metrics.get(metric)) else ""
        self._emit("ended", f"{self._name(run)}: {self._status_text(run)}{value}; fetched {what} into {folder}",
                   fresh=True)

    # -- scheduling -----------------------------------------------------------------------

    def _in_flight(self) -> list[Run]:
        return [r for r in self._campaign_runs() if not r.state.final]

    def _free_lanes(self) -> list[int | None]:
        """The lanes that may take a member now: numbers (lane kernels) or None (a count)."""
        limit, busy = self.lanes.limit, self._in_flight()
        room = max(0, limit - len(busy))
        if not self.backend.serves_latest_only:
            return [None] * room
        taken = set()
        for run in self._campaign_runs():
            lane = parse_lane(run.kernel)
            if lane and (not run.state.final or needs_fetch(run)):
                taken.add(lane[2])  # in flight, or its outputs not yet fetched: the lane waits
        return [n for n in range(1, limit + 1) if n not in taken][:room]

    def _schedule(self) -> None:
        now = self.clock()
        if self.room_at > now:
            return
        if not self._in_flight() and (self.room_delays is not None or self.lanes.limit == 0) and self._pushable():
            # no room while none of ours runs: ask again who holds the backend's sessions
            self.lanes = backend_lanes(self.backend, self.campaign.recipe, self.campaign.name, self.campaign.lanes)
            if self.lanes.limit == 0:
                self.room_delays = self.room_delays or self.backend.poll.delays()
                self.room_at = self.clock() + next(self.room_delays)
                self._emit("waiting", f"no lane free: {self.lanes.why}")
                return
        for member, lane in zip([m for m in self._pushable() if self.not_before.get(m.member.key, 0) <= now],
                                self._free_lanes()):
            if not self._quota_allows(member) or not self._push(member, lane):
                break
        self.plan = self._replan()

    def _quota_allows(self, member: MemberState) -> bool:
        recipe = member.member.recipe
        if recipe.accelerator != "gpu":
            return True
        try:
            left = self.backend.quota_left(recipe)
        except BackendError as exc:  # the push's own check asks again, and refuses if it must
            self._emit("warning", f"the GPU quota is not known now ({exc.message})")
            return True
        if left is None:
            return True
        timeout = self.campaign.timeout or recipe.session_timeout
        # what the runs in flight may still use (the quota counts them as they run)
        committed = sum(max(0.0, timeout - (time.time() - (r.started_at or r.created_at))) for r in self._in_flight())
        if left - committed >= timeout:
            return True
        self._stop(f"the GPU quota left ({left / 3600:.1f} h, {committed / 3600:.1f} h of it held by the runs in "
                   f"flight) is less than a member's {timeout / 3600:.1f} h session timeout: no more pushes")
        return False

    def _push(self, state: MemberState, lane: int | None) -> bool:
        from kjob.lifecycle.push import MemberTag, push_kernel

        member, campaign = state.member, self.campaign
        lane_kernel_ = lane_kernel(member.recipe, campaign.name, lane) if lane else None
        tag = MemberTag(campaign.name, member.stage, lane_kernel_)
        try:
            outcome = push_kernel(self.ws, member.recipe.name, campaign.backend, member.overrides,
                                  timeout=campaign.timeout, member=tag, inputs=member.inputs)
        except NoRoom as exc:
            first = self.room_delays is None  # said once; asking again shows in the table only
            self.room_delays = self.room_delays or self.backend.poll.delays()
            self.room_at = self.clock() + next(self.room_delays)
            self._emit("waiting" if first else "status", f"{self._label(state)}: waits for a session ({exc.message})")
            return False
        except QuotaLow as exc:
            self._stop(exc.message)
            return False
        except PushedWithProblem as exc:  # it runs: recorded, followed, and the problem said
            self._emit("warning", f"{self._label(state)}: {exc.message}")
            return True
        except BackendError as exc:
            self._push_failed(state, exc)
            return False
        except KjobError as exc:  # configuration, a build that fails: every member would
            self.error = exc
            self._stop(f"{self._label(state)}: {exc.message}")
            return False
        self.room_delays = None
        self.stats.pushes += 1
        run = outcome.run
        self._watch(run, first=None)
        where = f" (lane {lane}: {run.kernel})" if lane else ""
        self._emit("pushed", f"{self._label(state)}: pushed {run.ref}{where}", fresh=True)
        if run.signature != member.signature:
            self._stop("the sources changed during the sweep: start it again to plan with them")
        return True

    def _push_failed(self, state: MemberState, exc: BackendError) -> None:
        key = state.member.key
        left_row = any(r.stage == key[0] and r.signature == key[1] and r.state.status == "submitting"
                       for r in self.ledger.runs(campaign=self.campaign.name, unfinished_only=True))
        if not left_row:  # nothing recorded: count it here (a row left is reconciled and counted)
            self.push_failures[key] = self.push_failures.get(key, 0) + 1
        failures = self.push_failures.get(key, 0) + len(state.runs)
        self.not_before[key] = self.clock() + min(self.backend.poll.cap, self.backend.poll.start * 2 ** failures)
        self._emit("warning", f"{self._label(state)}: push failed ({exc.message})")

    def _stop(self, reason: str) -> None:
        if not self.stopping:
            self.stopping, self.stop_reason = True, reason
            self._emit("stopped", reason)

    # -- words --------------------------------------------------------------------------

    def _emit(self, kind: str, text: str, fresh: bool = False) -> None:
        """Hand on an event with the plan; `fresh`: the ledger changed, plan again first (the
        table shown with the event must say what the event says)."""
        if fresh:
            self._replan()
        self.on_event(Event(kind, text), self.plan)

    def _label(self, state: MemberState) -> str:
        return state.member.label

    def _name(self, run: Run) -> str:
        for state in self.plan.members if self.plan else ():
            if any(r.id == run.id for r in state.runs):
                return f"{self._label(state)} ({run.ref})"
        return run.ref

    @staticmethod
    def _status_text(run: Run) -> str:
        text = run.state.status
        return f"{text}: {run.state.describe_failure()}" if text == "error" else text
