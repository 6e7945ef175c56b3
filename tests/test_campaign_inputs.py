"""Campaigns of runs made from runs (issue 23): a stage given an earlier stage's members as
inputs (`inputs = ["stage:train"]`), one per member, with lineage in the ledger; and a member
whose signature is a complete run's already adopts it instead of pushing, unless `--fresh`.
Real sweeps on the local backend of the campaign tests' `lab` recipe and a `judge` recipe
that reads its train member's outputs."""

import json

import pytest

from campaign_project import Lab
from kjob.runs.lineage import inputs_of

JUDGE_RECIPE = """
title = "Judge"
slug = "judge"
modules = ["lab/judge.py"]
entry = "main"
accelerator = "none"

[parameters]
bonus = 0.0

[metrics]
primary = "score"
mode = "max"
"""

JUDGE = '''
"""Scores what its train member wrote: params.json under /kaggle/input, as Kaggle mounts it."""
import json
import os


def main(bonus):
    root = os.environ.get("KAGGLE_INPUT_DIR", "/kaggle/input")
    given = json.load(open(os.path.join(root, "lab-model", "params.json")))
    manifest = json.load(open(os.path.join(root, "kjob-inputs.json")))
    with open("judged.json", "w") as f:
        json.dump({"given": given, "runs": [item["run"] for item in manifest["inputs"]]}, f)
    with open("metadata.json", "w") as f:
        json.dump({"metrics": {"score": given["lr"] * 10 + bonus}}, f)
'''

TRAIN_THEN_EVAL = """
recipe = "lab"
lanes = 2

[[stage]]
name = "train"
[[stage.grid]]
lr = {lrs}

[[stage]]
name = "eval"
recipe = "judge"
inputs = ["stage:train"]
"""


@pytest.fixture
def lab(tmp_path):
    lab = Lab(tmp_path)
    lab.write("builders/judge.toml", JUDGE_RECIPE)
    lab.write("src/lab/judge.py", JUDGE)
    return lab


def sweep_ok(lab, *args):
    result = lab.kjob("sweep", *args)
    assert result.exit_code == 0, result.output
    return result


def output(lab, run, name):
    return json.loads((lab.root / f"downloads/{run.kernel}/local-v{run.version}/output/{name}").read_text())


def test_each_train_member_is_evaluated_in_its_own_run_given_its_outputs(lab):
    lab.write("campaigns/te.toml", TRAIN_THEN_EVAL.format(lrs=[0.1, 0.01]))
    result = sweep_ok(lab, "te")
    runs = lab.runs("te")
    train = {r.id: r for r in runs if r.stage == "train"}
    evals = [r for r in runs if r.stage == "eval"]
    assert len(train) == 2 and len(evals) == 2 and all(r.state.status == "complete" for r in runs)
    for run in evals:  # each read exactly its own train member's outputs, and the ledger says which
        (given,) = inputs_of(run)
        source = next(r for r in train.values() if given.is_run(r))
        assert run.kernel == "judge" and output(lab, run, "judged.json")["given"]["lr"] == source.parameters["lr"]
        assert output(lab, run, "judged.json")["runs"] == [given.label]
        assert f"eval of train[lr={source.parameters['lr']}]" in result.output
    assert {inputs_of(r)[0].version for r in evals} == {r.version for r in train.values()}

    lineage = lab.kjob("runs", "lineage", "judge", "--version", str(evals[0].version))
    source = next(r for r in train.values() if inputs_of(evals[0])[0].is_run(r))
    assert lineage.exit_code == 0 and f"made from:\n  {source.ref}: complete" in lineage.output, lineage.output
    back = lab.kjob("runs", "lineage", "lab", "--version", str(source.version))
    assert f"made into:\n  {evals[0].ref}: complete" in back.output, back.output

    again = sweep_ok(lab, "te")  # resumed: every member, the eval ones too, is found by its signature
    assert "0 pushed" in again.output and len(lab.runs("te")) == 4

    lab.write("campaigns/te2.toml", TRAIN_THEN_EVAL.format(lrs=[0.1, 0.01]))  # another campaign: the same runs
    second = sweep_ok(lab, "te2")
    assert "0 pushed" in second.output and lab.runs("te2") == []
    for run in evals:
        assert f"adopted {run.ref}" in second.output


def test_a_member_adopts_a_complete_run_of_its_signature_and_fresh_pushes_anew(lab):
    pushed = lab.kjob("push", "lab", "-p", "lr=0.1", "--wait")
    assert pushed.exit_code == 0, pushed.output
    lab.write("campaigns/te.toml", TRAIN_THEN_EVAL.format(lrs=[0.1]))
    first = sweep_ok(lab, "te")
    assert "train[lr=0.1]: adopted lab v1 (local)" in first.output
    assert "complete (adopted lab v1 (local))" in first.output and "1 pushed" in first.output
    (fed,) = lab.runs("te")
    assert fed.stage == "eval" and inputs_of(fed)[0].version == 1
    assert output(lab, fed, "judged.json")["given"]["lr"] == 0.1  # the adopted run fed its eval member

    lab.write("campaigns/tr.toml", 'recipe = "lab"\n[[grid]]\nlr = [0.1]\n')
    assert "adopted lab v1 (local)" in lab.kjob("sweep", "tr", "--dry-run").output
    fresh = sweep_ok(lab, "tr", "--fresh")
    assert "1 pushed" in fresh.output and "adopted" not in fresh.output
    (run,) = lab.runs("tr")
    assert run.version == 2 and run.state.status == "complete" and run.signature == lab.runs()[0].signature


@pytest.mark.parametrize("stage, message", [
    ('inputs = ["stage:later"]', "[stage eval] inputs: expected stage:<an earlier stage> (train), not 'stage:later'"),
    ('inputs = ["lab:vx"]', "[stage eval] inputs: expected KERNEL[:vN][@BACKEND]"),
    ('inputs = "stage:train"', '[stage eval] inputs: expected a list like ["stage:train"]'),
    ('recipe = "nope"', "[stage eval] recipe: no recipe 'nope'"),
    ('top = 1\nfrom = "train"\ninputs = ["stage:train"]', "[stage eval] top takes the members of stage `from`"),
])
def test_a_bad_stage_input_is_one_line_before_anything_is_pushed(lab, stage, message):
    lab.write("campaigns/bad.toml", f'recipe = "lab"\n[[stage]]\nname = "train"\n[[stage]]\nname = "eval"\n{stage}\n')
    result = lab.kjob("sweep", "bad")
    assert result.exit_code == 2 and message in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1 and lab.runs() == []
