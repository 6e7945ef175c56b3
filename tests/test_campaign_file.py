"""Campaign files: every problem is one line naming the file and the key (exit 2), before
anything is pushed; a good file's plan (`--dry-run`) spends nothing."""

import pytest

from campaign_project import Lab

GOOD = """
recipe = "lab"
lanes = 2

[parameters]
epochs = 3

[[grid]]
lr = [0.1, 0.01]
width = [8, 16]

[[grid]]
lr = 0.001
"""

BAD = [
    ('recipe = "lab"\nspeed = 1\n', "campaigns/c.toml: unknown keys: speed (known: backend, description, grid,"),
    ('backend = "local"\n', "campaigns/c.toml: missing required key 'recipe'"),
    ('recipe = "nope"\n', "campaigns/c.toml: recipe: no recipe 'nope' in builders/ (known: lab)"),
    ('recipe = "lab"\nbackend = "moon"\n', "campaigns/c.toml: backend: expected one of local, kaggle, ray, not 'moon'"),
    ('recipe = "lab"\nlanes = 0\n', "campaigns/c.toml: lanes: expected a whole number from 1 to 64, not 0"),
    ('recipe = "lab"\nmode = "up"\n', "campaigns/c.toml: mode: expected 'min' or 'max', not 'up'"),
    ('recipe = "lab"\n[parameters]\nlr = "fast"\n',
     "campaigns/c.toml: [parameters] lr: expected a number like the recipe's 0.1, not 'fast'"),
    ('recipe = "lab"\n[[grid]]\nspeed = [1, 2]\n',
     "campaigns/c.toml: [grid #1] speed: not a parameter of lab (known: lr, width, epochs, pause, fail)"),
    ('recipe = "lab"\n[[grid]]\nlr = [0.1]\n[[grid]]\nwidth = [1.5]\n',
     "campaigns/c.toml: [grid #2] width: expected an integer like the recipe's 8, not 1.5"),
    ('recipe = "lab"\n[[grid]]\nlr = []\n', "campaigns/c.toml: [grid #1] lr: expected a list of at least one value"),
    ('recipe = "lab"\n[parameters]\nlr = 0.1\n[[grid]]\nlr = [0.2]\n',
     "campaigns/c.toml: [grid #1] lr: also set by the parameters"),
    ('recipe = "lab"\n[[stage]]\nparameters = {epochs = 1}\n',
     "campaigns/c.toml: [stage #1] missing required key 'name'"),
    ('recipe = "lab"\n[[stage]]\nname = "a"\n[[stage]]\nname = "a"\n',
     "campaigns/c.toml: [stage a] a second stage of this name"),
    ('recipe = "lab"\n[[stage]]\nname = "a"\nrepeat = 2\n', "campaigns/c.toml: [stage a] unknown keys: repeat"),
    ('recipe = "lab"\n[[stage]]\nname = "a"\n[[stage]]\nname = "b"\ntop = 2\n',
     "campaigns/c.toml: [stage b] top needs from = an earlier stage (a)"),
    ('recipe = "lab"\n[[stage]]\nname = "a"\n[[stage]]\nname = "b"\ntop = 0\nfrom = "a"\n',
     "campaigns/c.toml: [stage b] top: expected a whole number from 1 to 10000, not 0"),
    ('recipe = "lab"\n[[stage]]\nname = "a"\n[[stage]]\nname = "b"\nfrom = "a"\n',
     "campaigns/c.toml: [stage b] from goes with top"),
    ('recipe = "lab"\n[[stage]]\nname = "a"\n[stage.gate]\nat_least = 1\n',
     "campaigns/c.toml: [stage a.gate] a gate judges the results of an earlier stage, and this is the first"),
    ('recipe = "lab"\n[[stage]]\nname = "a"\n[[stage]]\nname = "b"\n[stage.gate]\nabove = 1\nbelow = 2\n',
     "campaigns/c.toml: [stage b.gate] expected exactly one of at_least, above, at_most, below"),
    ('recipe = "lab"\n[[stage]]\nname = "a"\n[[stage]]\nname = "b"\n[stage.gate]\nmember = ["lr"]\nabove = 1\n',
     "campaigns/c.toml: [stage b.gate] member: expected NAME OP VALUE"),
    ('recipe = "lab"\n[[stage]]\nname = "a"\n[[stage]]\nname = "b"\n[stage.gate]\nstage = "z"\nabove = 1\n',
     "campaigns/c.toml: [stage b.gate] stage: expected an earlier stage (a), not 'z'"),
    ('recipe = "lab"\n[[stage]]\nname = "a"\nafter = ["b"]\n',
     "campaigns/c.toml: [stage a] after: expected earlier stages (there is none), not ['b']"),
    ('recipe = "lab"\n[[grid]]\nlr = [0.1]\n[[stage]]\nname = "a"\nparameters = {lr = 0.2}\n',
     "campaigns/c.toml: [stage a] parameters: lr also set by the campaign's [[grid]]"),
    ('recipe = "lab"\n[[stage]]\nname = "a"\n[[stage.grid]]\nlr = [0.1]\n[[stage.grid]]\nspeed = 3\n',
     "campaigns/c.toml: [stage a.grid #2] speed: not a parameter of lab"),
    ('recipe = "lab"\n[grid\n', "campaigns/c.toml: "),
]


@pytest.fixture
def lab(tmp_path):
    return Lab(tmp_path)


@pytest.mark.parametrize("text, expected", BAD)
def test_every_problem_is_one_line_naming_file_and_key(lab, text, expected):
    lab.write("campaigns/c.toml", text)
    result = lab.kjob("sweep", "c", "--dry-run")
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: {expected}"), result.stderr
    assert result.stderr.count("\n") == 1
    assert not (lab.root / ".kjob/local").exists()


def test_a_missing_campaign_names_the_known_ones(lab):
    lab.write("campaigns/good.toml", GOOD)
    result = lab.kjob("sweep", "other")
    assert result.exit_code == 4
    assert result.stderr == "error: no campaign 'other' in campaigns/ (known: good)\n"
    assert lab.kjob("sweep", "../good").exit_code == 2


def test_a_dry_run_shows_the_union_of_the_grids_and_spends_nothing(lab):
    lab.write("campaigns/good.toml", GOOD)
    result = lab.kjob("sweep", "good", "--dry-run")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "campaign good (campaigns/good.toml): recipe lab on local, 5 member(s) known" in out
    for point in ("lr=0.1 width=8", "lr=0.1 width=16", "lr=0.01 width=8", "lr=0.01 width=16", "lr=0.001"):
        assert f"main[{point}] " in out
    assert out.count("pending") == 5
    assert "lanes: 2 (the campaign's lanes)" in out
    # a CPU recipe never run here: no "at most 60 hours" of session timeouts for runs of seconds
    assert "to run: 5 member(s); hours (no GPU quota spent): not known until a run of the recipe completes" in out
    assert "at most" not in out
    assert not (lab.root / ".kjob/local").exists() and not (lab.root / "kernels").exists()
    assert lab.runs() == []


KD_RECIPE = """
title = "Kd Model"
slug = "kd-model"
modules = ["kd/train.py"]
entry = "main"
session_timeout = 7200

[parameters]
epochs = 10
model = "teacher"
lr = 1e-3
wd = 0.0
loss = "ce"
alpha = 0.5
temperature = 1.0
student = "small"
"""

KD_TRAIN = '''
def main(epochs, model, lr, wd, loss, alpha, temperature, student):
    return epochs
'''


def test_the_documented_campaign_is_the_knowledge_distillation_one(lab):
    import re
    from pathlib import Path

    page = (Path(__file__).resolve().parents[1] / "docs/campaigns.md").read_text()
    example = re.search(r"```toml\n(.*?)```", page, re.S).group(1)
    lab.write("builders/kd.toml", KD_RECIPE)
    lab.write("src/kd/__init__.py", "")
    lab.write("src/kd/train.py", KD_TRAIN)
    lab.write("campaigns/kd.toml", example)
    result = lab.kjob("sweep", "kd", "--dry-run")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.count("phase1[") == 11 and out.count("distill[") == 24  # 2 baselines + 3 x 3; 3 x 4 x 2
    assert "stage distill: waiting, waits for phase1" in out and "stage long: waiting, waits for distill" in out
    assert "lanes: 2 (Kaggle's 2 GPU sessions)" in out
    assert "lane kernel alice/kd-model-kd-1 ('Kd Model kd 1', ledger name kd@kd-1)" in out
    assert "to run: 37 member(s); GPU hours: at most 74.00 (session timeouts)" in out
