"""Plain-text formatting shared by the commands: durations, tables, run lines."""

from kjob.runs.record import Run

# Exit codes for a run's status (documented in README).
EXIT_FOR_STATUS = {"complete": 0, "error": 1, "cancelled": 5, "submitting": 6, "queued": 6, "running": 6}
EXIT_INTERRUPTED = 130
EXIT_GONE = 4  # NotFoundError's: the run's remote kernel (or Ray job) no longer exists


def exit_code(run) -> int:
    """A run's exit code: by its status, except that a run whose kernel is gone (deleted on
    Kaggle, a Ray job its head lost) and that did not complete is gone, exit 4."""
    if run.gone and run.state.status != "complete":
        return EXIT_GONE
    return EXIT_FOR_STATUS[run.state.status]


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(x)) for x in column) for column in zip(headers, *rows)]
    lines = ["  ".join(str(h).ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines)


def params_text(params: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(params.items())) or "-"


def status_text(run: Run) -> str:
    text = run.state.status
    if run.state.status == "error":
        text += f": {run.state.describe_failure()}"
    if run.gone:
        text += " (kernel gone)"
    return text


def failure_hint_line(run: Run, root=None) -> str | None:
    """The failed run's hint (kjob.runs.failures), indented under its status line; None without one.
    `root`, the project's folder, lets a hint name a data file of the project the run did not see."""
    if run.state.status != "error":
        return None
    from kjob.runs.failures import failure_hint

    hint = failure_hint(run.state.failure_kind, run.parameters, run.state.failure_message, root)
    return f"  hint: {hint}" if hint else None


def number(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)
