"""Report names: they say what was evaluated and on which test set, and no evaluation ever
replaces another's report (an explicit --name or --out that exists needs --replace)."""

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from kjob.cli import cli

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo"


def copy_pairs(dest: Path, names: list[str]) -> Path:
    for side in ("test", "y_test"):
        (dest / side).mkdir(parents=True, exist_ok=True)
        for name in names:
            shutil.copy(DEMO / side / f"{name}.wav", dest / side / f"{name}.wav")
    return dest


@pytest.fixture
def ws(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KJOB_WORKSPACE", raising=False)
    (tmp_path / "pyproject.toml").write_text('[tool.kjob]\nowner = "x"\n')
    copy_pairs(tmp_path / "data", ["0001", "0002"])
    copy_pairs(tmp_path / "other" / "data", ["0003", "0004"])  # a second test set in a folder of the same name
    return tmp_path


def kjob(*args):
    return CliRunner().invoke(cli, list(args))


def reports(ws: Path) -> list[str]:
    return sorted(p.name for p in (ws / "eval" / "reports").iterdir() if not p.name.startswith("."))


def save_crn(path: Path) -> None:
    import torch

    from enhancer.models import build_model

    torch.manual_seed(0)
    model = build_model("crn")
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format_version": 1, "model_name": "crn", "model_config": model.config,
                "state_dict": model.state_dict(), "epoch": 3, "val_loss": -1.5}, path)


def test_one_checkpoint_on_two_test_sets_keeps_both_reports(ws):
    save_crn(ws / "ckpt" / "best.pt")
    assert kjob("eval-local", "--data", "data", "--checkpoint", "ckpt/best.pt").exit_code == 0
    assert kjob("eval-local", "--data", "other/data", "--checkpoint", "ckpt/best.pt").exit_code == 0
    first, second = reports(ws)
    assert first.startswith("ckpt-best--data-") and second.startswith("ckpt-best--data-") and first != second
    table = kjob("compare").stdout
    assert table.count("test set:") == 2 and table.count("| ckpt-best |") == 2

    # The same evaluation again refreshes its own report; nothing else moves.
    own = next(n for n in (first, second)
               if json.loads((ws / "eval" / "reports" / n / "summary.json").read_text())["data"]["root"] == "data")
    result = kjob("eval-local", "--data", "data", "--checkpoint", "ckpt/best.pt", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["name"] == own
    assert reports(ws) == [first, second]
    assert json.loads(result.stdout)["enhanced_cache"]["hits"] == 2  # same checkpoint, same inputs: no inference


def test_enhanced_folders_of_the_same_name_never_collide(ws):
    for where in ("a/enhanced", "b/enhanced", "x/a/enhanced"):
        shutil.copytree(ws / "data" / "y_test", ws / where)
    names = []
    for where in ("a/enhanced", "b/enhanced", "x/a/enhanced"):
        result = kjob("eval-local", "--data", "data", "--enhanced", where, "--json")
        assert result.exit_code == 0, result.output
        names.append(json.loads(result.stdout)["name"])
    assert names[0].startswith("a-enhanced--data-") and names[1].startswith("b-enhanced--data-")
    assert names[2] == names[0] + "-2"  # same folder names, another folder: the next free name
    assert reports(ws) == sorted(names)

    # A report written before identities existed is never taken over by a default name.
    old = ws / "eval" / "reports" / names[1]
    summary = json.loads((old / "summary.json").read_text())
    del summary["identity"]
    (old / "summary.json").write_text(json.dumps(summary))
    result = kjob("eval-local", "--data", "data", "--enhanced", "b/enhanced", "--json")
    assert json.loads(result.stdout)["name"] == names[1] + "-2"


def test_an_explicit_name_or_folder_that_exists_needs_replace(ws):
    args = ["eval-local", "--data", "data", "--enhanced", "data/y_test"]
    assert kjob(*args, "--name", "mine").exit_code == 0
    result = kjob(*args, "--name", "mine")
    assert result.exit_code == 2 and "already holds an evaluation report" in result.stderr and "--replace" in result.stderr
    assert result.stderr.count("\n") == 1
    result = kjob("eval-local", "--data", "other/data", "--enhanced", "other/data/test", "--name", "mine", "--replace")
    assert result.exit_code == 0, result.output
    summary = json.loads((ws / "eval" / "reports" / "mine" / "summary.json").read_text())
    assert summary["count"] == 2 and summary["provenance"]["enhanced_dir"] == "other/data/test"

    assert kjob(*args, "--out", "elsewhere").exit_code == 0
    assert kjob(*args, "--out", "elsewhere").exit_code == 2
    assert kjob(*args, "--out", "elsewhere", "--replace").exit_code == 0
    assert kjob(*args, "--out", "x", "--name", "y").exit_code == 2
