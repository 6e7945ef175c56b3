"""`kjob sweep NAME`: run a campaign (campaigns/NAME.toml) in the foreground, or show it."""

import shutil
import signal
import sys
import threading
import time

import click

from kjob.cli.common import notify_command, notify_option, workspace
from kjob.cli.format import EXIT_INTERRUPTED, duration, number, table

_EXIT = {"complete": 0, "failed": 1, "unfinished": 6}


def member_rows(plan, metric: str | None) -> tuple[list[str], list[list[str]]]:
    """A row per member: its name (`stage[parameters]`, kjob.campaigns.plan), status, run, metric."""
    headers = ["MEMBER", "STATUS", "RUN"] + ([metric.upper()] if metric else [])
    rows = []
    for stage in plan.stages:
        source = f" (from {stage.stage.top.source})" if stage.stage.top else ""
        for state in stage.members:
            run = state.run
            status = state.status
            if status == "failed" and run is not None:
                status = f"failed: {run.state.describe_failure()}" if run.state.status == "error" else run.state.status
            elif state.note:
                status += f" ({state.note})"
            value = run.metrics.get(metric) if run is not None and metric else None
            rows.append([state.member.label + source, status, run.ref if run is not None else "-"]
                        + ([number(value)] if metric else []))
    return headers, rows


def stage_lines(plan) -> list[str]:
    lines = []
    for stage in plan.stages:
        if stage.state != "open" or stage.why:
            lines.append(f"stage {stage.stage.name}: {stage.state}" + (f", {stage.why}" if stage.why else ""))
    if plan.strays:
        lines.append(f"note: {len(plan.strays)} run(s) of this campaign are no member now (the file or the "
                     "sources changed); `kjob runs --campaign NAME` lists them")
    return lines


def outcome(plan) -> str:
    """complete: every member ended well and is fetched here (or its stage was gated off)."""
    from kjob.campaigns.plan import unaccounted

    states = [m.status for m in plan.members]
    if "failed" in states:
        return "failed"
    waiting = any(s.state == "waiting" for s in plan.stages)
    left = waiting or unaccounted(plan) or any(s not in ("complete", "gated off") for s in states)
    return "unfinished" if left else "complete"


def account_lines(plan, retry_failed: bool = False) -> list[str]:
    """One line per member whose end is not here (never fetched, gone), one for those with no
    run yet, and one for the failed members --retry-failed did not push again."""
    from kjob.campaigns.plan import RETRIED, unaccounted

    missing = unaccounted(plan)
    lines = [f"not accounted for: {state.member.label}: {why}" for state, why in missing if why != "no run"]
    lines += _listed("not accounted for: {n} member(s) with no run", [s for s, why in missing if why == "no run"])
    if retry_failed:
        lines += _listed("not pushed again: {n} failed member(s) that --retry-failed pushed once already and that "
                         "failed again (it retries a member once)", [m for m in plan.members if m.note == RETRIED])
    return lines


def _listed(text: str, states: list, most: int = 5) -> list[str]:
    if not states:
        return []
    names = ", ".join(s.member.label for s in states[:most]) + (", ..." if len(states) > most else "")
    return [f"{text.format(n=len(states))}: {names}"]


def leaderboard(plan, modes, metric: str | None) -> str | None:
    from kjob.runs.metrics import is_number
    from kjob.runs.query import sort_runs

    done = {m.run.id: m for m in plan.members if m.status == "complete"}
    runs = [m.run for m in done.values() if metric and is_number(m.run.metrics.get(metric))]
    if not runs:
        return None
    rows = [[str(rank), done[r.id].member.label, number(r.metrics[metric]), r.ref]
            for rank, r in enumerate(sort_runs(runs, metric, modes), 1)]
    return table(["RANK", "MEMBER", metric.upper(), "RUN"], rows)


class Progress:
    """Each event as a line on stderr; on a terminal, the members' table redrawn below them."""

    def __init__(self, metric):
        self.metric, self.began = metric, time.monotonic()
        self.live = sys.stderr.isatty()
        self.drawn = 0

    def __call__(self, event, plan) -> None:
        stamp = f"[{duration(time.monotonic() - self.began):>6}]"
        if event.kind == "status" and not self.live:
            return  # queued -> running: the table shows it; a log of lines needs only the ends
        if self.drawn:
            click.echo(f"\x1b[{self.drawn}F\x1b[J", nl=False, err=True)  # up over the old table, clear it
        if event.kind != "status":
            click.echo(f"{stamp} {event.text}", err=True)
        self.drawn = 0
        if self.live and plan is not None:
            size = shutil.get_terminal_size()
            # the redraw goes up one line per row: a row the terminal wrapped would leave debris
            from kjob.campaigns.plan import member_metric

            shown = table(*member_rows(plan, member_metric(plan, self.metric)))
            rows = [fit(line, size.columns - 1) for line in shown.splitlines()]
            if len(rows) + 2 < size.lines:  # taller: it could not be redrawn
                click.echo("\n".join(rows), err=True)
                self.drawn = len(rows)


def fit(line: str, width: int) -> str:
    """`line` cut to `width` terminal cells, ending in `…` where it was cut (wide characters
    take two cells, combining ones none)."""
    import unicodedata

    def cells(char: str) -> int:
        return 0 if unicodedata.combining(char) else 2 if unicodedata.east_asian_width(char) in "WF" else 1

    if sum(map(cells, line)) <= width:
        return line
    if width < 1:
        return ""
    kept, used = [], 0
    for char in line:
        if used + cells(char) > width - 1:
            break
        kept.append(char)
        used += cells(char)
    return "".join(kept) + "…"


@click.command()
@click.argument("name")
@click.option("--status", "status_only", is_flag=True,
              help="Show the members and where each stands (runs in flight are asked); push and fetch nothing.")
@click.option("--dry-run", is_flag=True,
              help="Print the plan: members, lanes, estimated GPU hours. Nothing is pushed, asked or spent.")
@click.option("--retry-failed", is_flag=True,
              help="Push again, once, the members whose last run failed (in your code, a timeout, ...); "
                   "a member this pushed before is not pushed again.")
@click.option("--fresh", is_flag=True,
              help="Push every member that has no run of its own in this campaign, even where a complete run of "
                   "the same signature (another campaign's, a plain push) would be adopted.")
@click.option("--board", "keep_board", is_flag=True,
              help="Keep the board (.kjob/board/, as `kjob board --watch`) up to date while the members run; "
                   "an open page follows.")
@notify_option
def sweep(name, status_only, dry_run, retry_failed, notify_cmd, keep_board, fresh):
    """Run campaigns/NAME.toml: push its members into lanes, follow each, fetch each as it
    ends, then rank them. Ctrl-C stops pushing (the members in flight are followed and
    fetched; Ctrl-C again leaves them running); `kjob sweep NAME` again resumes. Exit: 0 every
    member complete and fetched, 1 a member failed, 6 members left or not accounted for
    (each named), 130 interrupted.

    Example: kjob sweep lr-sweep --dry-run   (then: kjob sweep lr-sweep)
    """
    from kjob.campaigns.file import load_campaign
    from kjob.campaigns.plan import campaign_modes, member_metric, unknown_metric

    ws = workspace()
    campaign = load_campaign(ws, name)
    if dry_run:
        return _dry_run(ws, campaign, fresh)
    from kjob.campaigns.sweep import Sweep

    progress = Progress(campaign.metric)
    notifier = _notifier(ws, campaign, notify_command(ws, notify_cmd)) if not status_only else None
    on_event = progress if notifier is None else _notifying(progress, notifier)
    board_keeper = _BoardKeeper(ws, name, progress) if keep_board else None
    runner = Sweep(ws, campaign, retry_failed=retry_failed, on_event=None if status_only else on_event,
                   on_tick=board_keeper, fresh=fresh)
    if status_only:
        plan = runner.follow_only()
    elif threading.current_thread() is not threading.main_thread():  # only the main thread may take signals
        plan = runner.run()
    else:
        previous = signal.signal(signal.SIGINT, lambda *_: _interrupted(runner))
        try:
            plan = runner.run()
        finally:
            signal.signal(signal.SIGINT, previous)
        if progress.drawn:
            click.echo(f"\x1b[{progress.drawn}F\x1b[J", nl=False, err=True)
    if board_keeper is not None:
        board_keeper.final(plan)
    if notifier is not None:  # the runs whose fetch never succeeded are told now, as they are
        _warn(notifier.runs_seen([m.run for m in plan.members if m.run is not None], lambda run: True))
    metric = member_metric(plan, campaign.metric)
    click.echo(table(*member_rows(plan, metric)))
    for line in stage_lines(plan):
        click.echo(line)
    _base_name_note(campaign, metric)
    board = leaderboard(plan, campaign_modes(campaign), metric)
    if board and not status_only:
        click.echo(f"\nleaderboard by {metric} (kjob runs --campaign {name}):\n{board}")
    if not status_only:
        stats = runner.stats
        click.echo(f"{stats.pushes} pushed, {stats.fetches} fetched, {stats.status_calls} status checks", err=True)
        if runner.error is not None:
            raise runner.error
        if (unknown := unknown_metric(plan, campaign.metric)) is not None:
            raise unknown  # a leaderboard ranking nothing, without a word, would hide it
        if runner.stop_reason == "interrupted":
            click.echo(f"interrupted: members in flight go on; `kjob sweep {name}` resumes", err=True)
            sys.exit(EXIT_INTERRUPTED)
    for line in account_lines(plan, retry_failed):
        click.echo(line, err=True)
    sys.exit(_EXIT[outcome(plan)])


def _notifier(ws, campaign, command):
    """Tells `command` of each member's run that ends during this sweep (kjob.lifecycle.notify)."""
    if not command:
        return None
    from kjob.runs.ledger import Ledger
    from kjob.lifecycle.notify import EndNotifier

    notifier = EndNotifier(ws, command, campaign.metric)
    with Ledger(ws.paths.ledger) as ledger:
        notifier.already_ended(ledger.runs(campaign=campaign.name))
    return notifier


def _notifying(progress, notifier):
    """`progress`, then the notification of each member's run that ended and was fetched."""
    from kjob.campaigns.plan import needs_fetch
    from kjob.campaigns.sweep import Event

    def on_event(event, plan):
        progress(event, plan)
        if plan is not None:
            for warning in notifier.runs_seen([m.run for m in plan.members if m.run is not None],
                                              lambda run: not needs_fetch(run)):
                progress(Event("warning", f"warning: {warning}"), plan)  # above the live table, as events are

    return on_event


class _BoardKeeper:
    """`--board`: the board rewritten after the sweep's ticks, as kjob.board.BoardKeeper says
    (the ledger changed, or every few seconds while members run), and once more at the end. A
    board that cannot be written is said once; the sweep goes on."""

    def __init__(self, ws, name: str, progress):
        from kjob.board import BoardKeeper

        self.keeper, self.progress, self.failed = BoardKeeper(ws), progress, False
        self.index = f"{ws.paths.relative(ws.paths.board.index)}#view=campaigns&campaign={name}"

    def __call__(self, plan, force: bool = False) -> None:
        from kjob.campaigns.sweep import Event
        from kjob.errors import KjobError

        if self.failed:
            return
        try:
            self.keeper(force=force)
        except (KjobError, OSError) as exc:
            self.failed = True
            self.progress(Event("warning", f"warning: the board is not kept ({getattr(exc, 'message', exc)})"), plan)

    def final(self, plan) -> None:
        self(plan, force=True)
        if not self.failed:
            click.echo(f"board: {self.index}", err=True)


def _warn(warnings) -> None:
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)


def _interrupted(runner) -> None:
    runner.interrupt()
    if runner.leaving:
        click.echo("stopped following: the members in flight go on", err=True)
    else:
        click.echo("stopping: no more pushes; following the members in flight (Ctrl-C again to leave them)",
                   err=True)


def _base_name_note(campaign, metric) -> None:
    from kjob.campaigns.plan import campaign_modes

    if metric and metric != campaign.metric:
        way = "lowest" if campaign_modes(campaign).mode(metric) == "min" else "highest"
        click.echo(f"note: {campaign.metric} is {metric} (each member's best {campaign.metric}, the {way})", err=True)


def _dry_run(ws, campaign, fresh: bool = False) -> None:
    from kjob.campaigns.estimate import dry_run
    from kjob.campaigns.plan import member_metric, unknown_metric

    plan = dry_run(ws, campaign, fresh)
    if (unknown := unknown_metric(plan.plan, campaign.metric)) is not None:
        raise unknown
    metric = member_metric(plan.plan, campaign.metric)
    recipe = campaign.recipe
    click.echo(f"campaign {campaign.name} ({campaign.rel}): recipe {recipe.name} on {campaign.backend}, "
               f"{len(plan.plan.members)} member(s) known")
    click.echo(table(*member_rows(plan.plan, metric)))
    for line in stage_lines(plan.plan):
        click.echo(line)
    _base_name_note(campaign, metric)
    click.echo(f"lanes: {plan.lanes.why}")
    for kernel in plan.lane_kernels:
        click.echo(f"  lane kernel {ws.owner()}/{kernel.slug} ({kernel.title!r}, ledger name {kernel.kernel})")
    click.echo(plan.estimate.line())
    click.echo("nothing was pushed")


COMMANDS = [sweep]
