"""Knowing when runs end without watching: `push --wait --notify CMD`, `sweep --notify CMD`
(or `[tool.kjob] notify = "CMD"`) run CMD through the shell once a run has ended and been
fetched, with the run in its environment:

    KJOB_RUN         the run's reference, `snd v3 (local)`
    KJOB_KERNEL      its kernel, KJOB_VERSION its version, KJOB_BACKEND its backend
    KJOB_STATUS      complete, error or cancelled
    KJOB_METRIC      the primary metric's value ("" when the run has none), named by KJOB_METRIC_NAME
    KJOB_FAILURE     what failed and where ("" for a run that did not fail)
    KJOB_DURATION    seconds from start to end ("" when not known)
    KJOB_CAMPAIGN    its campaign and KJOB_STAGE its stage ("" outside a campaign)

The command runs in the workspace's folder for at most NOTIFY_TIMEOUT seconds. Whatever it
does, the run is already recorded and fetched: a command that fails, hangs or is not found
is one warning line, never an error of kjob's.
"""

import os
import subprocess
from dataclasses import dataclass, field

from kjob.runs.metrics import is_number, metric_named
from kjob.runs.record import Run, run_duration

NOTIFY_TIMEOUT = 60  # seconds


def notify_environment(run: Run, metric: str | None) -> dict[str, str]:
    metric = (metric_named(metric, run.metrics) or metric) if metric else metric  # `val_loss`: its best
    value = run.metrics.get(metric) if metric else None
    duration = run_duration(run)
    return {
        "KJOB_RUN": run.ref, "KJOB_KERNEL": run.kernel, "KJOB_VERSION": "" if run.version is None else str(run.version),
        "KJOB_BACKEND": run.backend, "KJOB_STATUS": run.state.status,
        "KJOB_METRIC": repr(value) if is_number(value) else "", "KJOB_METRIC_NAME": metric or "",
        "KJOB_FAILURE": run.state.describe_failure() if run.state.status == "error" else "",
        "KJOB_DURATION": f"{duration:.1f}" if duration is not None else "",
        "KJOB_CAMPAIGN": run.campaign or "", "KJOB_STAGE": run.stage or "",
    }


def notify(ws, command: str, run: Run, metric: str | None, timeout: float = NOTIFY_TIMEOUT) -> str | None:
    """Run `command` for an ended run; None when it succeeded, else one line saying why not."""
    try:
        done = subprocess.run(command, shell=True, cwd=ws.root, env={**os.environ, **notify_environment(run, metric)},
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace",
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"--notify for {run.ref}: `{command}` still ran after {timeout:g} s and was stopped"
    except OSError as exc:
        return f"--notify for {run.ref}: `{command}` could not start ({exc.strerror or exc})"
    if done.returncode == 0:
        return None
    said = [line.strip() for line in (done.stderr + done.stdout).splitlines() if line.strip()]
    return (f"--notify for {run.ref}: `{command}` exited with {done.returncode}"
            + (f": {said[-1][:200]}" if said else ""))


@dataclass
class EndNotifier:
    """Notifies each run once, when it has ended and is fetched (or can no longer be): the
    runs that had already ended when it was made are not news."""

    ws: object
    command: str
    metric: str | None
    known: set = field(default_factory=set)  # run ids already ended (or notified)

    def already_ended(self, runs) -> None:
        self.known.update(r.id for r in runs if r.state.final)

    def runs_seen(self, runs, settled) -> list[str]:
        """Notify each run of `runs` that ended and for which `settled(run)` holds; the warnings."""
        warnings = []
        for run in runs:
            if run.id in self.known or not run.state.final or not settled(run):
                continue
            self.known.add(run.id)
            warning = notify(self.ws, self.command, run, self.metric)
            if warning:
                warnings.append(warning)
        return warnings
