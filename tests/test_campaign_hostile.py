"""Hostile cases for `kjob sweep` (issue 18): sweeps killed at random moments, files that would
be silently wrong, a grid too large to build, a second --retry-failed, a narrow terminal.

Every case goes through the real `kjob sweep` (CliRunner, or a process of its own to be killed)
on real local runs; nothing of kjob's is patched."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from campaign_project import Lab, accuracy


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
        sweep = lab.start("sweep", campaigns[kill % len(campaigns)], group=True)
        time.sleep(chance.uniform(0.3, 2.5))
        try:
            os.killpg(sweep.pid, signal.SIGKILL)  # the sweep and whatever it started in its group
        except ProcessLookupError:
            pass  # it had ended
        sweep.communicate(timeout=30)
    for name in campaigns:
        result = lab.kjob("sweep", name)
        assert result.exit_code == 0, result.output
        assert "complete" in result.stdout
        check_every_member_filed_once(lab, name, LRS, result)
        again = lab.kjob("sweep", name)  # nothing is pushed or fetched twice
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
