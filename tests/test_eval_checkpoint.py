"""A checkpoint with malformed fields is one ValidationError line naming the file and the
key, for the library and for `kjob eval-local`; real torch.save'd checkpoints throughout."""

import math
import shutil
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from kjob.cli import cli
from kjob.errors import ValidationError
from speechscore.model import load_model

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo"


def save_checkpoint(path: Path, arch: str = "crn", config_changes: dict | None = None, **changes) -> Path:
    """The dict the training code writes for a CRN (or `arch`), with `changes` (and
    `config_changes` to its model_config) applied."""
    from enhancer.models import build_model

    torch.manual_seed(0)
    model = build_model(arch)
    obj = {"format_version": 1, "model_name": arch, "model_config": {**model.config, **(config_changes or {})},
           "state_dict": model.state_dict(), "epoch": 3, "val_loss": -1.5, "optimizer_state": {}}
    obj.update(changes)
    torch.save(obj, path)
    return path


MALFORMED = {
    "config a list": ({"model_config": [1, 2]}, "model_config: expected a dict of the model's settings, not [1, 2]"),
    "config a string": ({"model_config": "crn"}, "model_config: expected a dict of the model's settings, not 'crn'"),
    "config value text": ({"model_config": {"lstm_hidden": "abc"}}, "model_config.lstm_hidden: expected a value like 96, not 'abc'"),
    "config value float": ({"model_config": {"lstm_hidden": 1.5}}, "model_config.lstm_hidden: expected a value like 96, not 1.5"),
    "config channels": ({"model_config": {"channels": ["a", "b"]}}, "model_config.channels: expected a value like"),
    "config unknown": ({"model_config": {"width": 3}}, "model_config: 'width' is not a setting of the model"),
    "val_loss text": ({"val_loss": "low"}, "val_loss: expected a number, not 'low'"),
    "val_loss tensor": ({"val_loss": torch.tensor([0.5, 0.25, 0.1])}, "val_loss: expected a number, not a tensor of shape (3,)"),
    "epoch text": ({"epoch": "3"}, "epoch: expected an integer, not '3'"),
    "epoch fraction": ({"epoch": 2.5}, "epoch: expected an integer, not 2.5"),
    "epoch bool": ({"epoch": True}, "epoch: expected an integer, not True"),
    "model_name list": ({"model_name": ["crn"]}, "model_name: expected one of crn, dpt, not ['crn']"),
    # Issue 18: these gave tracebacks (IndexError) or failed only at inference, unnamed.
    "config channels empty": ({"config_changes": {"channels": []}},
                              "model_config.channels: expected a non-empty list like (16, 32, 32, 32, 32), not []"),
    "config channels zero": ({"config_changes": {"channels": [16, 0, 32, 32, 32]}},
                             "model_config.channels: expected positive integers like"),
    "config hop zero": ({"config_changes": {"hop_length": 0}},
                        "model_config.hop_length: expected a positive integer like 128, not 0"),
    "config lstm negative": ({"config_changes": {"lstm_hidden": -1}},
                             "model_config.lstm_hidden: expected a positive integer like 96, not -1"),
    "dpt channels three": ({"arch": "dpt", "config_changes": {"channels": [8, 8, 8]}},
                           "model_config.channels = [8, 8, 8]: cannot rebuild 'dpt' from it: DPT channels must list 2"),
    "epoch negative": ({"epoch": -3}, "epoch: expected an integer of at least 0, not -3"),
    "state_dict int keys": ({"state_dict": {0: torch.zeros(3)}}, "the state_dict's keys must be parameter names (text), not 0"),
    "dpt heads": ({"arch": "dpt", "config_changes": {"n_heads": 3}},
                  "model_config.n_heads = 3: the 'dpt' model built from it fails on a test input"),
    "dpt dropout": ({"arch": "dpt", "config_changes": {"dropout": 2.0}},
                    "model_config.dropout = 2.0: cannot rebuild 'dpt' from it: dropout probability"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_checkpoint_field_is_named(tmp_path, case):
    changes, expected = MALFORMED[case]
    path = save_checkpoint(tmp_path / "best.pt", **changes)
    with pytest.raises(ValidationError) as info:
        load_model(path)
    message = info.value.message
    assert message == f"{path}: {expected}" or message.startswith(f"{path}: {expected}"), message
    assert "\n" not in message


def test_well_formed_odd_values_load(tmp_path):
    path = save_checkpoint(tmp_path / "best.pt", val_loss=float("nan"), epoch=torch.tensor(4), model_config=None)
    loaded = load_model(path)
    assert math.isnan(loaded.val_loss) and loaded.epoch == 4 and loaded.name == "crn"
    path = save_checkpoint(tmp_path / "t.pt", val_loss=torch.tensor(-2.5), model_config={"channels": (16, 32, 32, 32, 32)})
    assert load_model(path).val_loss == -2.5


@pytest.mark.parametrize("changes, key", [({"model_config": ["x"]}, "model_config"),
                                          ({"val_loss": "abc"}, "val_loss"),
                                          ({"config_changes": {"channels": []}}, "model_config.channels"),
                                          ({"config_changes": {"channels": ["a"]}}, "model_config.channels")])
def test_eval_local_reports_a_malformed_checkpoint_in_one_line(tmp_path, monkeypatch, changes, key):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KJOB_WORKSPACE", raising=False)
    (tmp_path / "pyproject.toml").write_text('[tool.kjob]\nowner = "x"\n')
    for folder in ("test", "y_test"):
        (tmp_path / "data" / folder).mkdir(parents=True)
        shutil.copy(DEMO / folder / "0001.wav", tmp_path / "data" / folder / "0001.wav")
    save_checkpoint(tmp_path / "bad.pt", **changes)
    result = CliRunner().invoke(cli, ["eval-local", "--data", "data", "--checkpoint", "bad.pt"])
    assert result.exit_code == 3, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "bad.pt: " in lines[0] and f": {key}: expected" in lines[0], lines
