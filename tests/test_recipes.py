"""The project's own recipes (r3-dpt, crn): built, checked and smoke-run for real."""

import json

import torch

from kjob.lifecycle.fetch import summarize_metrics
from kjob.build.kernel_metadata import validate_kernel_metadata

OUTPUTS = {"best.pt", "last.pt", "metrics.jsonl", "metadata.json"}


def test_both_recipes_build_and_smoke_run_on_the_cpu(project):
    result = project.kjob("build", "--all", "--smoke")
    assert result.exit_code == 0, result.output
    assert result.stdout.count("smoke run passed") == 3  # r3-dpt-eval's too: tests/test_eval_notebook.py
    for name, model in (("r3-dpt", "dpt"), ("crn", "crn")):
        working = project.root / f".kjob/smoke/{name}/working"
        assert OUTPUTS <= {p.name for p in working.iterdir()}
        checkpoint = torch.load(working / "best.pt", weights_only=True, map_location="cpu")
        assert {"format_version", "model_name", "model_config", "state_dict", "epoch", "val_loss",
                "optimizer_state"} <= set(checkpoint)
        assert checkpoint["model_name"] == model
        rows = [json.loads(line) for line in (working / "metrics.jsonl").read_text().splitlines()]
        assert rows and {"epoch", "train_loss", "val_loss", "lr", "seconds"} <= set(rows[0])
        metadata = json.loads((working / "metadata.json").read_text())
        assert metadata["parameters"] > 0 and metadata["torch_version"].startswith("2.")
        # What `kjob runs` reads of these outputs: the keys the training code really writes.
        found = summarize_metrics(working)
        assert {"best_val_loss", "best_epoch", "epochs_run"} <= set(found["metadata"])
        assert found["history"]["val_loss.best_epoch"] == found["metadata"]["best_epoch"]
        assert found["history"]["val_loss.best"] == found["metadata"]["best_val_loss"]
        record = json.loads((project.root / f"kernels/{name}/build.json").read_text())
        assert record["smoke"]["passed"] is True


def test_r3_dpt_asks_kaggle_for_a_t4_and_the_dataset(project):
    assert project.kjob("build", "r3-dpt").exit_code == 0
    folder = project.root / "kernels/r3-dpt"
    meta = json.loads((folder / "kernel-metadata.json").read_text())
    assert meta["id"] == "kjob-demo/r3-dpt"
    assert (meta["enable_gpu"], meta["machine_shape"], meta["enable_internet"]) == (True, "NvidiaTeslaT4", False)
    assert meta["dataset_sources"] == ["earth16/libri-speech-noise-dataset"]
    assert validate_kernel_metadata(meta, folder) == []
    nb = json.loads((folder / "r3-dpt.ipynb").read_text())
    headers = [c["source"].splitlines()[0] for c in nb["cells"] if c["metadata"].get("kjob")]
    assert headers[0] == "# ---- src/enhancer/runtime.py ----"
    assert headers[-1] == "# ---- src/enhancer/train.py ----"
    params = next(c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", []))
    assert "device = 'cuda'" in params["source"]  # fails fast on Kaggle if the GPU cannot run


def test_the_training_modules_know_nothing_of_kjob(project):
    for module in (project.root / "src/enhancer").glob("*.py"):
        assert "kjob" not in module.read_text(), module.name
