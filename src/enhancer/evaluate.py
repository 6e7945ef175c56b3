"""Evaluation entry point: evaluate(**params) scores one checkpoint on held-out pairs.

The checkpoint is a training run's output, mounted as an input. The inputs' manifest (when the
run got one) names the input that holds it, the run it came from and the SHA-256 of each file,
and the checkpoint read must have that digest: the evaluation scores exactly the version it was
given. Without a manifest it is the one file of that name under the input root.

The model's outputs are scored with the evaluator's own metric functions (metrics.py is the
local evaluator's module, inlined as it is), the noisy input beside them. Writes metadata.json
(the means, under "metrics", and what was scored), per_utterance.csv and report.md.
"""

import csv
import hashlib
import json
import math
import os
import time

import numpy as np
import torch

from enhancer.audio import make_synthetic_dataset, read_audio
from enhancer.data import discover_pairs
from speechscore.metrics import LABELS, active_metrics, score_signal
from enhancer.models import MODELS, build_model, count_parameters
from enhancer.runtime import find_dataset, input_root, scratch_root, select_device, working_root

EVAL_DEFAULTS = {
    # A checkpoint file, or a folder holding checkpoint_name; "" finds it among the inputs.
    "checkpoint": "",
    "checkpoint_name": "best.pt",
    # The name of a JSON file listing the inputs ({"inputs": [{"run", "paths", "files": {name:
    # sha256}}, ...]}), looked for in the input root, then beside the working folder (where a
    # notebook writes it when the input root is read-only); "" or none found: search the input
    # root instead.
    "inputs_manifest": "",
    # A model name: score that model untrained (a smoke run, which has no training run to read).
    "untrained_model": "",
    "dataset": "earth16/libri-speech-noise-dataset",
    "data_dir": "",
    "synthetic": False,
    "split": "test",
    "max_pairs": 0,  # the first N pairs (by name); 0: every pair
    "device": "auto",
    "num_threads": 0,
    "seed": 0,
}
_EVAL_SEARCH_DEPTH = 7  # models/<owner>/<model>/<framework>/<variation>/<version>/ is six deep


def _eval_config(params):
    unknown = sorted(set(params) - set(EVAL_DEFAULTS))
    if unknown:
        raise TypeError("evaluate() got unknown parameter(s) %s; valid ones are: %s"
                        % (", ".join(unknown), ", ".join(EVAL_DEFAULTS)))
    cfg = dict(EVAL_DEFAULTS, **params)
    if cfg["split"] not in ("test", "train"):
        raise ValueError("split must be 'test' or 'train', not %r" % (cfg["split"],))
    if cfg["untrained_model"] and cfg["untrained_model"] not in MODELS:
        raise ValueError("untrained_model must be one of %s, not %r" % (sorted(MODELS), cfg["untrained_model"]))
    if int(cfg["max_pairs"]) < 0:
        raise ValueError("max_pairs must be 0 (every pair) or more, not %r" % (cfg["max_pairs"],))
    return cfg


def _eval_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _eval_local_path(path):
    """A /kaggle/input path, read under this run's input root (KAGGLE_INPUT_DIR off Kaggle)."""
    kaggle_input = os.path.join(os.sep, "kaggle", "input") + os.sep
    if path.startswith(kaggle_input) and not os.path.exists(path):
        return os.path.join(input_root(), path[len(kaggle_input):])
    return path


def _eval_from_manifest(cfg):
    """(checkpoint path, its input's entry) from the inputs' manifest, or None without one."""
    if not cfg["inputs_manifest"]:
        return None
    folders = [input_root(), os.path.dirname(os.path.abspath(working_root()))]
    found = [os.path.join(f, cfg["inputs_manifest"]) for f in folders
             if os.path.isfile(os.path.join(f, cfg["inputs_manifest"]))]
    if not found:
        print("no %s in %s: searching the input root instead" % (cfg["inputs_manifest"], ", ".join(folders)), flush=True)
        return None
    manifest = found[0]
    with open(manifest) as fh:
        listed = json.load(fh).get("inputs") or []
    name = cfg["checkpoint_name"]
    holding = [item for item in listed if name in (item.get("files") or {})]
    if not holding:
        raise FileNotFoundError("%s lists no input with a %s (inputs: %s)"
                                % (manifest, name, ", ".join(str(i.get("run")) for i in listed) or "none"))
    if len(holding) > 1:
        raise ValueError("several inputs hold a %s (%s): pass checkpoint=... to say which"
                         % (name, ", ".join(str(i.get("run")) for i in holding)))
    item = holding[0]
    for folder in item.get("paths") or []:
        path = os.path.join(_eval_local_path(folder), name)
        if os.path.isfile(path):
            return path, item
    raise FileNotFoundError("input %s is listed with a %s, but it is not at %s"
                            % (item.get("run"), name, " or ".join(item.get("paths") or []) or "any path"))


def _eval_search(name):
    """The one file called `name` under the input root (the same file seen under both of
    Kaggle's layouts counts once)."""
    root = input_root()
    found = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames.sort()
        if os.path.relpath(dirpath, root).count(os.sep) >= _EVAL_SEARCH_DEPTH:
            dirnames[:] = []
        if name in filenames:
            path = os.path.join(dirpath, name)
            found.setdefault(_eval_sha256(path), path)
    if not found:
        raise FileNotFoundError("no %s under %s: give the run a training run's outputs as input "
                                "(the version to score), or pass checkpoint=..." % (name, root))
    if len(found) > 1:
        raise ValueError("%d different %s files under %s (%s): pass checkpoint=... to say which"
                         % (len(found), name, root, ", ".join(sorted(found.values()))))
    return next(iter(found.values()))


def _eval_checkpoint(cfg):
    """(path, what is known of where it came from): the `checkpoint` parameter, else the input
    the manifest names (its digest checked), else the one checkpoint under the input root."""
    if cfg["checkpoint"]:
        path = _eval_local_path(cfg["checkpoint"])
        if os.path.isdir(path):
            path = os.path.join(path, cfg["checkpoint_name"])
        if not os.path.isfile(path):
            raise FileNotFoundError("no checkpoint at %s" % path)
        return path, {"sha256": _eval_sha256(path)}
    listed = _eval_from_manifest(cfg)
    if listed is None:
        path = _eval_search(cfg["checkpoint_name"])
        return path, {"sha256": _eval_sha256(path)}
    path, item = listed
    digest, expected = _eval_sha256(path), item["files"][cfg["checkpoint_name"]]
    if digest != expected:
        raise ValueError("%s is not the checkpoint of %s: its SHA-256 is %s, the manifest says %s"
                         % (path, item.get("run"), digest, expected))
    source = {k: item.get(k) for k in ("run", "kernel", "backend", "version")}
    return path, dict(source, sha256=digest)


def _eval_model(cfg, device):
    """(model in eval mode, what the evaluation records of it)."""
    if cfg["untrained_model"]:
        torch.manual_seed(cfg["seed"])
        model = build_model(cfg["untrained_model"])
        info = {"untrained": True, "model_name": cfg["untrained_model"]}
    else:
        path, info = _eval_checkpoint(cfg)
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        model = build_model(checkpoint["model_name"], checkpoint.get("model_config"))
        model.load_state_dict(checkpoint["state_dict"], strict=True)
        info = dict(info, path=path, model_name=checkpoint["model_name"], epoch=checkpoint.get("epoch"),
                    val_loss=checkpoint.get("val_loss"))
        print("checkpoint %s (%s, epoch %s, sha256 %s)%s"
              % (path, info["model_name"], info["epoch"], info["sha256"][:12],
                 " of %s" % info["run"] if info.get("run") else ""), flush=True)
    info.update(model_config=dict(model.config), parameters=count_parameters(model))
    return model.to(device).eval(), info


def _eval_pairs(cfg):
    """(data root, every pair of the split, the pairs scored: the first max_pairs by name)."""
    if cfg["synthetic"]:
        root = make_synthetic_dataset(os.path.join(scratch_root(), "synthetic-eval"), n_train=2, n_test=4,
                                      seconds=1.0, seed=cfg["seed"])
        slug = "synthetic"
    elif cfg["data_dir"]:
        root, slug = cfg["data_dir"], os.path.basename(os.path.normpath(cfg["data_dir"]))
    else:
        root, slug = find_dataset(cfg["dataset"]), cfg["dataset"].rstrip("/").split("/")[-1]
    pairs = sorted(discover_pairs(root, os.path.join(scratch_root(), "extracted", slug))[cfg["split"]])
    if not pairs:
        raise FileNotFoundError("no %s pairs under %s" % (cfg["split"], root))
    return root, pairs, pairs[:int(cfg["max_pairs"])] if cfg["max_pairs"] else pairs


def _eval_score(model, device, pairs, metrics):
    """One row per pair: each metric of the enhanced output and of the noisy input."""
    rows = []
    with torch.inference_mode():
        for noisy_path, clean_path in pairs:
            noisy, clean = read_audio(noisy_path), read_audio(clean_path)
            enhanced = model(torch.from_numpy(noisy)[None].to(device))[0].float().cpu().numpy()
            row = {"name": os.path.basename(noisy_path)}
            for side, wave in (("noisy", noisy), ("enhanced", enhanced)):
                for metric, score in score_signal(clean, wave, metrics).items():
                    row[metric if side == "enhanced" else "%s_noisy" % metric] = score.value
                    if score.reason:
                        row.setdefault("problems", []).append("%s %s: %s" % (side, metric, score.reason))
            rows.append(row)
    return rows


def _eval_means(rows, metrics):
    """Means over the pairs where a metric is defined; improvements over the pairs where both
    sides are (the evaluator's convention)."""
    def mean(values):
        values = [v for v in values if v is not None and math.isfinite(v)]
        return round(float(np.mean(values)), 6) if values else None

    means = {}
    for metric in metrics:
        means[metric] = mean([r[metric] for r in rows])
        means["%s_noisy" % metric] = mean([r["%s_noisy" % metric] for r in rows])
        means["%s_improvement" % metric] = mean([r[metric] - r["%s_noisy" % metric] for r in rows
                                                 if r[metric] is not None and r["%s_noisy" % metric] is not None])
    return means


def _eval_write(out_dir, result, rows, metrics):
    columns = ["name"] + [c for m in metrics for c in ("%s_noisy" % m, m)] + ["problems"]
    with open(os.path.join(out_dir, "per_utterance.csv"), "w", newline="") as fh:
        writer = csv.DictWriter(fh, columns)
        writer.writeheader()
        for row in rows:
            writer.writerow(dict(row, problems="; ".join(row.get("problems", []))))
    means, model = result["metrics"], result["checkpoint"]
    lines = ["# Evaluation of %s" % (model.get("run") or model.get("path") or "an untrained %s" % model["model_name"]),
             "", "%s (%d parameters), %s" % (model["model_name"], model["parameters"], "untrained" if model.get("untrained")
                                             else "epoch %s, checkpoint sha256 %s" % (model.get("epoch"), model.get("sha256"))),
             "%d of %d %s pairs under %s" % (result["pairs"]["scored"], result["pairs"]["available"],
                                              result["pairs"]["split"], result["pairs"]["data_root"]),
             "", "| | %s |" % " | ".join(LABELS[m] for m in metrics), "|---|%s" % ("---|" * len(metrics))]
    for label, suffix in (("noisy input", "_noisy"), ("enhanced", ""), ("improvement", "_improvement")):
        cells = ["n/a" if means[m + suffix] is None else "%.3f" % means[m + suffix] for m in metrics]
        lines.append("| %s | %s |" % (label, " | ".join(cells)))
    worse = sum(1 for r in rows if any(r[m] is not None and r["%s_noisy" % m] is not None
                                       and r[m] < r["%s_noisy" % m] for m in metrics))
    lines += ["", "%d of %d utterances got worse on at least one metric." % (worse, len(rows))]
    with open(os.path.join(out_dir, "report.md"), "w") as fh:
        fh.write("\n".join(lines) + "\n")
    tmp = os.path.join(out_dir, "metadata.json.tmp")
    with open(tmp, "w") as fh:
        json.dump(result, fh, indent=2, sort_keys=True, default=str)
    os.replace(tmp, os.path.join(out_dir, "metadata.json"))
    print("\n".join(lines), flush=True)


def evaluate(**params):
    """Score one checkpoint on the held-out pairs; writes metadata.json, per_utterance.csv and
    report.md to the working directory and returns metadata.json's content."""
    started = time.time()
    cfg = _eval_config(params)
    if cfg["num_threads"]:
        torch.set_num_threads(int(cfg["num_threads"]))
    device = select_device(cfg["device"])
    model, info = _eval_model(cfg, device)
    data_root, every, pairs = _eval_pairs(cfg)
    metrics = active_metrics()
    rows = _eval_score(model, device, pairs, metrics)
    result = {"status": "completed", "config": cfg, "checkpoint": info,
              "pairs": {"split": cfg["split"], "available": len(every), "scored": len(rows), "data_root": data_root},
              "metrics": _eval_means(rows, metrics),
              "problems": sum(len(r.get("problems", [])) for r in rows),
              "durations": {"total_seconds": round(time.time() - started, 2)}}
    _eval_write(working_root(), result, rows, metrics)
    return result
