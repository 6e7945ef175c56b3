"""Hostile cases for `kjob sweep` (issue 18): sweeps killed at random moments, files that would
be silently wrong, a grid too large to build, a second --retry-failed, a narrow terminal.

Every case goes through the real `kjob sweep` (CliRunner, or a process of its own to be killed)
on real local runs; nothing of kjob's is patched."""

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

from campaign_project import KJOB, Lab, accuracy
from proc_helpers import processes_with_home


@pytest.fixture
def lab(tmp_path):
    return Lab(tmp_path)


def download(lab, run):
    return lab.root / f"downloads/{run.kernel}/local-v{run.version}"


def leftovers(lab) -> list[str]:
    """Hidden temporary files (`.NAME....part`) anywhere under downloads/."""
    folder = lab.root / "downloads"
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*.part")) if folder.is_dir() else []


def dead_pid() -> int:
    """The pid of a process that has ended (as a killed fetch's is)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def check_every_member_filed_once(lab, campaign: str, lrs: list[float], result) -> None:
    """Each member: one complete run, fetched, under a version of its own, whose download folder
    holds its own parameters and whose metric is on the leaderboard; no row gone or re-numbered."""
    runs = lab.runs(campaign)
    assert all(r.state.final for r in runs), [r.ref for r in runs]
    assert not [r.ref for r in runs if r.gone or r.incarnation != 1], [r.ref for r in runs]
    versions = [(r.kernel, r.version) for r in runs if r.version is not None]
    assert len(versions) == len(set(versions)), versions  # no version filed twice
    board = result.stdout.split("leaderboard by val_acc")[1]
    for lr in lrs:
        complete = [r for r in runs if r.parameters["lr"] == lr and r.state.status == "complete"]
        assert len(complete) == 1, (lr, [r.ref for r in runs if r.parameters["lr"] == lr])
        run = complete[0]
        assert run.fetched_at is not None, run.ref
        output = download(lab, run) / "output"
        assert json.loads((output / "params.json").read_text())["lr"] == lr, run.ref
        assert json.loads((output / "metadata.json").read_text())["metrics"]["val_acc"] == accuracy(lr)
        assert run.metrics["val_acc"] == accuracy(lr)
        shown = [line.rstrip()[: -len(run.ref)].split()[-1] for line in board.splitlines()
                 if line.rstrip().endswith(run.ref)]
        assert [float(v) for v in shown] == [accuracy(lr)], board
    others = [r for r in runs if r.state.status != "complete"]  # cut short by a kill: never ran
    assert all(r.state.failure_kind == "infrastructure" for r in others), [(r.ref, r.state) for r in others]
    assert leftovers(lab) == []


# -- 1. a sweep killed at random moments resumes with every member accounted for ---------------

THREE = """
recipe = "lab"
lanes = 2

[[grid]]
lr = [0.1, 0.01, 0.001]
"""
LRS = [0.1, 0.01, 0.001]


def test_a_sweep_killed_20_times_at_random_moments_resumes_filing_every_member_once(lab):
    campaigns = [f"k{n}" for n in range(5)]
    for name in campaigns:
        lab.write(f"campaigns/{name}.toml", THREE)
    chance = random.Random(18)
    began = time.monotonic()
    for kill in range(20):  # each campaign killed 4 times, at moments from its start to its end
        sweep = lab.start("sweep", campaigns[kill % len(campaigns)], "--fresh", group=True)
        time.sleep(chance.uniform(0.3, 2.5))
        try:
            os.killpg(sweep.pid, signal.SIGKILL)  # the sweep and whatever it started in its group
        except ProcessLookupError:
            pass  # it had ended
        sweep.communicate(timeout=30)
    for name in campaigns:
        result = lab.kjob("sweep", name, "--fresh")  # five alike campaigns: each files its own runs
        assert result.exit_code == 0, result.output
        assert "complete" in result.stdout
        check_every_member_filed_once(lab, name, LRS, result)
        again = lab.kjob("sweep", name, "--fresh")  # nothing is pushed or fetched twice
        assert again.exit_code == 0 and "0 pushed, 0 fetched" in again.stderr, again.output
    assert time.monotonic() - began < 90


# -- 2, 3, 5, 6. campaign files that would be silently wrong: one line each, exit 2 ------------

STAGES = 'recipe = "lab"\n[[stage]]\nname = "a"\n[[stage.grid]]\nlr = [0.1, 0.01]\n[[stage]]\nname = "b"\n'
REFUSED = [
    (STAGES + "[stage.gate]\nat_least = nan\n",
     "campaigns/c.toml: [stage b.gate] at_least: expected a finite number, not nan"),
    (STAGES + "[stage.gate]\nbelow = -inf\n",
     "campaigns/c.toml: [stage b.gate] below: expected a finite number, not -inf"),
    (STAGES + "[stage.gate]\nabove = inf\n",
     "campaigns/c.toml: [stage b.gate] above: expected a finite number, not inf"),
    (STAGES + 'top = 1\nfrom = "a"\nwhere = ["lr<<<0.1"]\n',
     "campaigns/c.toml: [stage b] where: 'lr<<<0.1': '<<0.1' is not a value (an operator typed twice?)"),
    (STAGES + 'top = 1\nfrom = "a"\nwhere = ["lr>=nan"]\n',
     "campaigns/c.toml: [stage b] where: 'lr>=nan': 'nan' compares with nothing"),
    (STAGES + 'top = 1\nfrom = "a"\nwhere = ["lr<fast"]\n',
     "campaigns/c.toml: [stage b] where: 'lr<fast': lr is a number, 'fast' is not"),
    (STAGES + 'top = 1\nfrom = "a"\nwhere = ["fail>yes"]\n',
     "campaigns/c.toml: [stage b] where: 'fail>yes': fail is true or false: use = or != with one of those"),
    (STAGES + '[stage.gate]\nmember = ["lr==<0.1"]\nabove = 0.5\n',
     "campaigns/c.toml: [stage b.gate] member: 'lr==<0.1': '<0.1' is not a value"),
    ('recipe = "lab"\n[[grid]]\nlr = [0.1]\n[[stage]]\nname = "a"\n[[stage.grid]]\nwidth = [4]\n'
     '[[stage]]\nname = "b"\ntop = 1\nfrom = "a"\n',
     "campaigns/c.toml: grid: no stage uses the campaign's [[grid]] (each has its own [[stage.grid]] or a top)"),
]


@pytest.mark.parametrize("text, expected", REFUSED)
def test_a_file_that_would_be_silently_wrong_is_refused_in_one_line(lab, text, expected):
    lab.write("campaigns/c.toml", text)
    for command in (["sweep", "c", "--dry-run"], ["sweep", "c"]):
        result = lab.kjob(*command)
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith(f"error: {expected}"), result.stderr
        assert result.stderr.count("\n") == 1
    assert not (lab.root / ".kjob/local").exists()


def test_meaningful_conditions_and_a_grid_used_by_a_stage_are_accepted(lab):
    lab.write("campaigns/c.toml", 'recipe = "lab"\n[[grid]]\nlr = [0.1, 0.01]\n[[stage]]\nname = "a"\n'
                                  '[[stage]]\nname = "b"\ntop = 1\nfrom = "a"\n'
                                  'where = ["lr<0.05", "fail=false", "val_acc>=0.5", "lr!=\'0.2\'"]\n')
    result = lab.kjob("sweep", "c", "--dry-run")
    assert result.exit_code == 0, result.output


def test_a_grid_of_millions_is_refused_at_once_by_its_size(lab):
    values = ", ".join(str(n) for n in range(1, 41))  # 40^4 = 2,560,000 members
    lab.write("campaigns/c.toml", f'recipe = "lab"\n[[grid]]\nlr = [{values}]\nwidth = [{values}]\n'
                                  f'epochs = [{values}]\npause = [{values}]\n')
    began = time.monotonic()
    result = lab.kjob("sweep", "c", "--dry-run")
    assert time.monotonic() - began < 2
    assert result.exit_code == 2, result.output
    assert result.stderr == ("error: campaigns/c.toml: [grid #1] 40 x 40 x 40 x 40 = 2,560,000 members, more than "
                             "10,000: is a grid much larger than meant?\n")


def test_grids_are_counted_as_their_union(lab):
    """Two grids that overlap count once where they do: 10,000 members, not 15,000."""
    hundred = ", ".join(str(n) for n in range(1, 101))
    fifty = ", ".join(str(n) for n in range(51, 101))
    lab.write("campaigns/c.toml", f'recipe = "lab"\n[[grid]]\nwidth = [{hundred}]\nepochs = [{hundred}]\n'
                                  f'[[grid]]\nwidth = [{fifty}]\nepochs = [{hundred}, {hundred}]\n'
                                  f'[[grid]]\nwidth = [1000]\nepochs = [1, 2]\n')
    result = lab.kjob("sweep", "c", "--dry-run")
    assert result.exit_code == 2, result.output  # the third grid's two are the 10,001st and 2nd
    assert result.stderr == ("error: campaigns/c.toml: [grid #3] 1 x 2 = 2 members (10,000 more in the grids "
                             "before it), more than 10,000: is a grid much larger than meant?\n")


# -- 1. what a killed sweep leaves: runs ended but never fetched, a fetch's temporary file -----

SLOW = """
recipe = "lab"
lanes = 3

[parameters]
pause = 1.0

[[grid]]
lr = [0.1, 0.01, 0.001]
"""


def killed_with_runs_in_flight(lab, campaign: str, count: int):
    """A sweep killed once it has pushed `count` members; their runs go on to their end, which
    `kjob status` records (as any look at the run would): ended in the ledger, never fetched."""
    sweep = lab.start("sweep", campaign, group=True)
    deadline = time.monotonic() + 60
    while len([r for r in lab.runs(campaign) if r.version is not None]) < count:
        assert time.monotonic() < deadline and sweep.poll() is None, "the sweep never pushed"
        time.sleep(0.05)
    os.killpg(sweep.pid, signal.SIGKILL)
    sweep.communicate(timeout=30)
    for run in lab.runs(campaign):
        deadline = time.monotonic() + 60
        while lab.kjob("status", run.kernel, "--version", str(run.version)).exit_code != 0:
            assert time.monotonic() < deadline, f"{run.ref} never ended"
            time.sleep(0.2)
    runs = lab.runs(campaign)
    assert all(r.state.status == "complete" and r.fetched_at is None for r in runs)
    return {r.parameters["lr"]: r for r in runs}


def test_a_resumed_sweep_fetches_what_ended_removes_a_killed_fetchs_leftover_and_names_what_it_cannot(lab):
    lab.write("campaigns/c.toml", SLOW)
    runs = killed_with_runs_in_flight(lab, "c", 3)
    half = download(lab, runs[0.1]) / "output"  # a fetch killed half-way through a file
    half.mkdir(parents=True)
    leftover = half / f".kjob-{dead_pid()}-0badc0de.part"
    leftover.write_bytes(b"half a file")
    lost = runs[0.01]  # its run folder lost before anything fetched it: it cannot be fetched
    folder = lab.root / f".kjob/local/lab/v{lost.version}"
    deadline = time.monotonic() + 30
    while processes_with_home(folder / "home"):  # its runner writes the last files as it leaves
        assert time.monotonic() < deadline, "the run's processes never ended"
        time.sleep(0.1)
    shutil.rmtree(folder)
    result = lab.kjob("sweep", "c")
    assert result.exit_code == 6, result.output  # not "complete"
    assert (f"not accounted for: main[lr=0.01]: {lost.ref} ended but was never fetched: `kjob fetch lab --version "
            f"{lost.version} --output`") in result.stderr
    assert "0 pushed, 2 fetched" in result.stderr
    after = {r.parameters["lr"]: r for r in lab.runs("c")}
    assert len(lab.runs("c")) == 3 and after[0.01].fetched_at is None
    for lr in (0.1, 0.001):
        assert after[lr].fetched_at is not None and after[lr].metrics["val_acc"] == accuracy(lr)
        assert json.loads((download(lab, after[lr]) / "output/params.json").read_text())["lr"] == lr
    assert not leftover.exists() and leftovers(lab) == []
    status = lab.kjob("sweep", "c", "--status")  # the same account, asked again
    assert status.exit_code == 6 and "not accounted for: main[lr=0.01]" in status.stderr


def test_a_member_whose_row_was_marked_gone_by_mistake_is_still_fetched_and_ranked(lab):
    """A local run's files outlive a row marked gone (an earlier kjob marked rows gone on a
    version collision of its own numbering): the sweep fetches them once, and ranks the member."""
    from kjob.runs.ledger import Ledger

    lab.write("campaigns/c.toml", SLOW)
    runs = killed_with_runs_in_flight(lab, "c", 3)
    with Ledger(lab.root / ".kjob/ledger.sqlite3") as ledger:  # the row as that ledger left it
        ledger.mark_gone(runs[0.01])
    result = lab.kjob("sweep", "c")
    assert result.exit_code == 0, result.output
    assert "0 pushed, 3 fetched" in result.stderr
    run = {r.parameters["lr"]: r for r in lab.runs("c")}[0.01]
    assert run.fetched_at is not None and run.metrics["val_acc"] == accuracy(0.01)
    assert json.loads((download(lab, run) / "output/params.json").read_text())["lr"] == 0.01
    board = result.stdout.split("leaderboard by val_acc")[1]
    assert re.search(rf"main\[lr=0.01\]\s+{accuracy(0.01)}\s+{re.escape(run.ref)}", board), board


# -- 4. a member's name is its parameters: the same after any edit of the file ---------------


def members_shown(output: str) -> dict[str, tuple[str, str]]:
    """The members' table: MEMBER -> (STATUS, RUN)."""
    lines = output.split("\n\n")[0].splitlines()
    assert lines[0].split() == ["MEMBER", "STATUS", "RUN", "VAL_ACC"], lines
    return {cells[0]: (cells[1], cells[2]) for cells in (re.split(r"\s{2,}", line) for line in lines[1:]
                                                 if line.startswith("main"))}


def test_member_names_keep_their_meaning_when_the_file_is_edited(lab):
    lab.write("campaigns/c.toml", 'recipe = "lab"\n[[grid]]\nlr = [0.1, 0.01, 0.001]\nwidth = 8\n')
    first = lab.kjob("sweep", "c")
    assert first.exit_code == 0, first.output
    runs = {r.parameters["lr"]: r for r in lab.runs("c")}
    assert members_shown(first.stdout) == {f"main[lr={lr} width=8]": ("complete", run.ref) for lr, run in runs.items()}
    # a value dropped, the order changed, a value added: no name moves to another member
    lab.write("campaigns/c.toml", 'recipe = "lab"\n[[grid]]\nwidth = 8\nlr = [0.001, 0.2, 0.1]\n')
    status = lab.kjob("sweep", "c", "--status")
    assert members_shown(status.stdout) == {"main[lr=0.001 width=8]": ("complete", runs[0.001].ref),
                                            "main[lr=0.2 width=8]": ("pending", "-"),
                                            "main[lr=0.1 width=8]": ("complete", runs[0.1].ref)}
    second = lab.kjob("sweep", "c")  # the earlier sweep's runs are found: only the new member runs
    assert second.exit_code == 0 and "1 pushed, 1 fetched" in second.stderr, second.output
    assert "main[lr=0.2 width=8]: pushed" in second.stderr
    assert members_shown(second.stdout)["main[lr=0.001 width=8]"] == ("complete", runs[0.001].ref)


# -- 7. --retry-failed pushes a failed member once, not at every call ----------------------------


def test_a_second_retry_failed_does_not_push_a_member_already_retried(lab):
    lab.write("campaigns/c.toml", 'recipe = "lab"\nretries = 0\n[[grid]]\nlr = [0.1]\nfail = [false, true]\n')
    first = lab.kjob("sweep", "c")
    assert first.exit_code == 1 and "2 pushed" in first.stderr, first.output
    retried = lab.kjob("sweep", "c", "--retry-failed")
    assert retried.exit_code == 1 and "1 pushed" in retried.stderr, retried.output
    again = lab.kjob("sweep", "c", "--retry-failed")
    assert again.exit_code == 1 and "0 pushed" in again.stderr, again.output
    assert ("not pushed again: 1 failed member(s) that --retry-failed pushed once already and that failed again "
            "(it retries a member once): main[fail=true lr=0.1]") in again.stderr
    assert len([r for r in lab.runs("c") if r.parameters["fail"]]) == 2


# -- 8. the live table never wider than the terminal ---------------------------------------------


class Screen:
    """Just enough of a terminal: lines wrap at `columns`; ESC[nF (up n lines), ESC[J (clear below)."""

    def __init__(self, columns: int):
        self.columns, self.rows, self.y, self.x = columns, [[]], 0, 0

    def feed(self, text: str) -> None:
        for match in re.finditer(r"\x1b\[(\d*)([A-Za-z])|\r|\n|[^\x1b\r\n]", text):
            token = match.group(0)
            if match.group(2) == "F":
                self.y, self.x = max(0, self.y - int(match.group(1) or 1)), 0
            elif match.group(2) == "J":
                del self.rows[self.y][self.x:]
                del self.rows[self.y + 1:]
            elif token == "\r":
                self.x = 0
            elif token == "\n":
                self.y, self.x = self.y + 1, 0
            else:
                if self.x >= self.columns:  # the terminal wraps: one more row
                    self.y, self.x = self.y + 1, 0
                while len(self.rows) <= self.y:
                    self.rows.append([])
                row = self.rows[self.y]
                row.extend(" " * (self.x + 1 - len(row)))
                row[self.x] = token
                self.x += 1
            while len(self.rows) <= self.y:
                self.rows.append([])

    def lines(self) -> list[str]:
        return ["".join(row).rstrip() for row in self.rows]


def test_the_live_table_fits_a_narrow_terminal_and_leaves_no_debris(lab):
    import fcntl
    import pty
    import struct
    import termios

    lab.write("campaigns/c.toml", 'recipe = "lab"\nlanes = 1\n[[grid]]\nlr = [0.1, 0.01]\nwidth = [8, 1600000]\n')
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 60, 44, 0, 0))
    sweep = subprocess.Popen([str(KJOB), "sweep", "c"], cwd=lab.root, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=slave, env={**os.environ, "COLUMNS": "44", "LINES": "60"})
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the other end closed: the sweep has ended
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    out, _ = sweep.communicate(timeout=30)
    assert sweep.returncode == 0, seen.decode()
    text = seen.decode()
    assert "MEMBER" in text  # the table was drawn
    screen = Screen(44)
    screen.feed(text)
    debris = [line for line in screen.lines() if any(word in line for word in ("MEMBER", "pending", "running"))]
    assert debris == [], screen.lines()  # every redraw went up over every row it had drawn
    assert "…" in text  # by cutting the rows to fit
    assert "main[lr=0.01 width=1600000]" in out.decode()  # the final table on stdout is whole
