"""Training entry point: main(**params) trains one model and writes its outputs."""

import json
import math
import os
import random
import time

import numpy as np
import torch

from enhancer.audio import make_synthetic_dataset
from enhancer.data import discover_pairs, make_loaders, split_train_val
from enhancer.models import MODELS, build_model, count_parameters
from enhancer.runtime import find_dataset, gpu_names, input_root, scratch_root, select_device, working_root
from enhancer.losses import enhancement_loss, si_sdr
from enhancer.stft import SAMPLE_RATE, STFT

# Kaggle ends a session at 12 hours (9 on a TPU), and a session cut off there keeps no outputs.
# Unless told otherwise, training stops this long before the limit: time for the last epoch's
# validation and checkpoints, and for the outputs to be saved. A recipe's own budget is its
# session_timeout less the same margin; 0 turns the budget off.
_TRAIN_SESSION_LIMIT_SECONDS = 12 * 3600
_TRAIN_BUDGET_MARGIN_SECONDS = 1800

TRAIN_DEFAULTS = {
    "model": "dpt",
    "model_config": None,
    "dataset": "earth16/libri-speech-noise-dataset",
    "data_dir": "",
    "synthetic": False,
    "device": "cuda",
    "epochs": 30,
    "steps_per_epoch": 0,
    "batch_size": 16,
    "crop_seconds": 3.0,
    "lr": 5e-4,
    "weight_decay": 1e-2,
    "warmup_steps": 500,
    "grad_clip": 5.0,
    "patience": 6,
    "max_val_files": 200,
    "val_fraction": 0.05,
    "num_workers": 2,
    "seed": 0,
    # Seconds from the start after which no new step or epoch begins; the epoch under way is
    # validated and saved (last.pt, best.pt), and the run ends normally.
    "time_budget_seconds": _TRAIN_SESSION_LIMIT_SECONDS - _TRAIN_BUDGET_MARGIN_SECONDS,
    "max_steps": 0,
    "schedule": "plateau",
    "num_threads": 0,
    "deterministic": False,
    "loss": "sisdr",
    # A checkpoint to continue from: a run's last.pt, or the folder holding it (an earlier
    # run's outputs, mounted as an input); "" starts afresh.
    "resume": "",
}


def _train_config(params):
    unknown = sorted(set(params) - set(TRAIN_DEFAULTS))
    if unknown:
        raise TypeError("main() got unknown parameter(s) %s; valid ones are: %s"
                        % (", ".join(unknown), ", ".join(TRAIN_DEFAULTS)))
    cfg = dict(TRAIN_DEFAULTS, **params)
    if isinstance(cfg["model_config"], str):
        # A recipe parameter is a scalar, so a recipe gives the model's settings as JSON text.
        cfg["model_config"] = json.loads(cfg["model_config"]) if cfg["model_config"].strip() else None
    if cfg["model"] not in MODELS:
        raise ValueError("model must be one of %s, not %r" % (sorted(MODELS), cfg["model"]))
    if cfg["loss"] not in ("sisdr", "l1"):
        raise ValueError("loss must be 'sisdr' or 'l1', not %r" % (cfg["loss"],))
    if cfg["schedule"] not in ("plateau", "cosine"):
        raise ValueError("schedule must be 'plateau' or 'cosine', not %r" % (cfg["schedule"],))
    if cfg["device"] not in ("cuda", "auto", "cpu"):
        raise ValueError("device must be 'cuda', 'auto' or 'cpu', not %r" % (cfg["device"],))
    for key in ("epochs", "batch_size"):
        if int(cfg[key]) < 1:
            raise ValueError("%s must be at least 1, not %r" % (key, cfg[key]))
    return cfg


def _train_cpu(obj):
    """Tensors moved to CPU and containers rebuilt as plain lists and dicts, so
    that torch.load(weights_only=True) accepts the checkpoint anywhere."""
    if torch.is_tensor(obj):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _train_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_train_cpu(v) for v in obj]
    if isinstance(obj, (np.generic,)):
        return obj.item()
    return obj


def _train_save(path, obj):
    tmp = path + ".tmp"
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _train_num(value):
    """JSON has no NaN or infinity; write null instead."""
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def _train_write_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(obj, fh, indent=2, sort_keys=True, default=str)
    os.replace(tmp, path)


def _train_validate(model, loader, device, use_amp, loss_name, stft):
    """(mean loss, mean SI-SDR in dB, mean input SI-SDR in dB) over whole files."""
    model.eval()
    losses, scores, inputs = [], [], []
    with torch.no_grad():
        for noisy, clean, _ in loader:
            noisy = noisy.to(device, non_blocking=True)
            clean = clean.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
                estimate = model(noisy)
            estimate = estimate.float()
            losses.append(float(enhancement_loss(loss_name, estimate, clean, stft)))
            scores.append(float(si_sdr(estimate, clean).mean()))
            inputs.append(float(si_sdr(noisy, clean).mean()))
    model.train()
    return float(np.mean(losses)), float(np.mean(scores)), float(np.mean(inputs))


def _train_forever(loader):
    """Batches without end, so that an epoch of steps_per_epoch steps need not
    line up with a pass over the data."""
    while True:
        for batch in loader:
            yield batch


def _train_epoch(model, batches, n_total, optimizer, scaler, cfg, device, stft, state,
                 over_budget):
    """Run n_total steps; returns (mean loss, steps taken, steps skipped)."""
    use_amp = device.type == "cuda"
    model.train()
    loss_sum, n_steps, skipped = 0.0, 0, 0
    for _ in range(n_total):
        if (n_steps or skipped) and over_budget():
            state["stop_reason"] = "time_budget"
            break
        if cfg["max_steps"] and state["steps"] >= cfg["max_steps"]:
            state["stop_reason"] = "max_steps"
            break
        noisy, clean = next(batches)
        lr = _train_lr(cfg, state["steps"])
        if lr is not None:
            for group in optimizer.param_groups:
                group["lr"] = lr
        noisy = noisy.to(device, non_blocking=True)
        clean = clean.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
            estimate = model(noisy)
        loss = enhancement_loss(cfg["loss"], estimate.float(), clean, stft)
        state["steps"] += 1
        if not torch.isfinite(loss).item():
            skipped += 1
            continue
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if cfg["grad_clip"] and cfg["grad_clip"] > 0:
            # Clip the true gradients, not the loss-scaled ones.
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["grad_clip"])
        scaler.step(optimizer)
        scaler.update()
        loss_sum += float(loss.detach())
        n_steps += 1
    return (loss_sum / n_steps if n_steps else float("nan")), n_steps, skipped


def _train_total_steps(cfg, steps_per_epoch):
    total = int(cfg["epochs"]) * int(steps_per_epoch)
    return min(total, int(cfg["max_steps"])) if cfg["max_steps"] else total


def _train_lr(cfg, step):
    """The learning rate for optimizer step `step` (from 0), or None to leave it to the plateau
    scheduler: a linear warm-up, then for "cosine" a half cosine down to 5 % at the last step,
    which lets a run of a few dozen steps end on small, careful updates."""
    warmup = int(cfg["warmup_steps"])
    if step < warmup:
        return cfg["lr"] * (step + 1) / warmup
    if cfg["schedule"] != "cosine":
        return None
    span = max(1, cfg["_total_steps"] - warmup)
    progress = min(1.0, (step - warmup) / span)
    return cfg["lr"] * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))


def _train_resolve_data(cfg):
    if cfg["synthetic"]:
        root = os.path.join(scratch_root(), "synthetic")
        make_synthetic_dataset(root, n_train=12, n_test=4, seconds=1.0, seed=cfg["seed"])
        slug = "synthetic"
    elif cfg["data_dir"]:
        root, slug = cfg["data_dir"], os.path.basename(os.path.normpath(cfg["data_dir"]))
    else:
        root, slug = find_dataset(cfg["dataset"]), cfg["dataset"].rstrip("/").split("/")[-1]
    print("data: %s" % root, flush=True)
    return root, discover_pairs(root, os.path.join(scratch_root(), "extracted", slug))


def _train_prepare_torch(cfg, device):
    """Threads, determinism and seeds as configured; returns whether to use mixed precision
    (on CUDA, with TF32 matmuls)."""
    if cfg["num_threads"]:
        # CPU reductions split work by thread, so the thread count changes the last bits of the
        # sums; a fixed count keeps a CPU run's figures the same on every machine.
        torch.set_num_threads(int(cfg["num_threads"]))
    if cfg["deterministic"]:
        torch.use_deterministic_algorithms(True, warn_only=True)
    random.seed(cfg["seed"])
    np.random.seed(cfg["seed"])
    torch.manual_seed(cfg["seed"])
    use_amp = device.type == "cuda"
    if use_amp:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return use_amp


def _train_optimizer(model, cfg, use_amp):
    """AdamW, the plateau schedule (used when cfg["schedule"] is "plateau") and the AMP scaler."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg["lr"],
                                  weight_decay=cfg["weight_decay"])
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=0.5, patience=max(1, int(cfg["patience"]) // 3),
        min_lr=1e-6)
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    return optimizer, plateau, scaler


def _train_checkpoint(cfg, model, optimizer, epoch, val_loss, resume_state=None):
    """What best.pt and last.pt hold (format 1, read by the evaluator), on the CPU;
    `resume_state`: the scheduler's and scaler's states and the training state (steps, the
    best value so far and its epoch), which a resumed run continues from."""
    return {"format_version": 1, "model_name": cfg["model"],
            "model_config": _train_cpu(model.config),
            "state_dict": _train_cpu(model.state_dict()), "epoch": epoch,
            "val_loss": float(val_loss),
            "optimizer_state": _train_cpu(optimizer.state_dict()),
            **_train_cpu(resume_state or {})}


def _train_resume_file(path):
    """The checkpoint a resume starts from: `path`, or last.pt in the folder `path`. A path
    under /kaggle/input is read under this run's input root (KAGGLE_INPUT_DIR off Kaggle)."""
    kaggle_input = os.path.join(os.sep, "kaggle", "input") + os.sep
    if path.startswith(kaggle_input) and not os.path.exists(path):
        path = os.path.join(input_root(), path[len(kaggle_input):])
    if os.path.isdir(path):
        path = os.path.join(path, "last.pt")
    if not os.path.isfile(path):
        raise FileNotFoundError("resume: no checkpoint at %s" % path)
    return path


def _train_resume(path, cfg, model, optimizer, plateau, scaler, state, out_dir, metrics_path):
    """Continue from checkpoint `path`: the model's, optimizer's, scheduler's and scaler's
    states, the training state (steps, the best value so far and its epoch), the earlier
    epochs' metrics.jsonl rows and best.pt. Returns (the next epoch, epochs without improvement)."""
    path = _train_resume_file(path)
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    if checkpoint.get("model_name") != cfg["model"]:
        raise ValueError("resume: %s holds a %r model, not %r" % (path, checkpoint.get("model_name"), cfg["model"]))
    model.load_state_dict(checkpoint["state_dict"])
    optimizer.load_state_dict(checkpoint["optimizer_state"])
    if checkpoint.get("scheduler_state"):
        plateau.load_state_dict(checkpoint["scheduler_state"])
    if checkpoint.get("scaler_state") and scaler.is_enabled():
        scaler.load_state_dict(checkpoint["scaler_state"])
    saved = checkpoint.get("train_state") or {}
    state.update({k: saved[k] for k in ("best_val_loss", "best_epoch", "best_val_sisdr", "steps",
                                        "val_sisdr_noisy", "epochs_run") if k in saved})
    done = int(checkpoint["epoch"])
    folder = os.path.dirname(path)
    if os.path.isfile(os.path.join(folder, "best.pt")):
        with open(os.path.join(folder, "best.pt"), "rb") as src, open(os.path.join(out_dir, "best.pt"), "wb") as dst:
            dst.write(src.read())
    earlier = os.path.join(folder, "metrics.jsonl")
    if os.path.isfile(earlier):
        with open(earlier) as src, open(metrics_path, "w") as dst:
            for line in src:
                if line.strip() and json.loads(line).get("epoch", 0) <= done:
                    dst.write(line if line.endswith("\n") else line + "\n")
    print("resuming from %s: epoch %d done, best val %s at epoch %s, %d steps"
          % (path, done, state["best_val_loss"], state["best_epoch"], state["steps"]), flush=True)
    return done + 1, int(saved.get("stale", 0))


def _train_stop_reason(cfg, state, stale):
    """Why training stops after this epoch (the time budget or the step limit reached during
    it, the step limit, no improvement for `patience` epochs), or None to go on."""
    if state["stop_reason"] in ("time_budget", "max_steps"):
        return state["stop_reason"]
    if cfg["max_steps"] and state["steps"] >= cfg["max_steps"]:
        return "max_steps"
    if cfg["patience"] and stale >= cfg["patience"]:
        return "early_stopping"
    return None


def main(**params):
    """Train one model; writes best.pt, last.pt, metrics.jsonl and metadata.json
    to the working directory and returns a short summary dict."""
    started = time.time()
    cfg = _train_config(params)
    device = select_device(cfg["device"])
    use_amp = _train_prepare_torch(cfg, device)
    out_dir = working_root()
    data_root, found = _train_resolve_data(cfg)
    train_pairs, val_pairs = split_train_val(found["train"], cfg["val_fraction"])
    if cfg["max_val_files"]:
        val_pairs = val_pairs[:int(cfg["max_val_files"])]
    print("pairs: %d train, %d validation, %d test (test is not used here)"
          % (len(train_pairs), len(val_pairs), len(found["test"])), flush=True)
    crop = int(round(cfg["crop_seconds"] * SAMPLE_RATE))
    train_loader, val_loader = make_loaders(train_pairs, val_pairs, int(cfg["batch_size"]), crop,
                                            int(cfg["num_workers"]), device, cfg["seed"])
    model = build_model(cfg["model"], cfg["model_config"]).to(device)
    n_params = count_parameters(model)
    print("model %s: %d parameters, config %s" % (cfg["model"], n_params, model.config), flush=True)
    stft = STFT().to(device)
    optimizer, plateau, scaler = _train_optimizer(model, cfg, use_amp)
    metrics_path = os.path.join(out_dir, "metrics.jsonl")
    open(metrics_path, "w").close()
    state = {"best_val_loss": None, "best_epoch": 0, "best_val_sisdr": None, "epochs_run": 0,
             "steps": 0, "stop_reason": "epochs", "val_sisdr_noisy": None}
    first_epoch, stale = 1, 0
    if cfg["resume"]:
        first_epoch, stale = _train_resume(cfg["resume"], cfg, model, optimizer, plateau, scaler, state,
                                           out_dir, metrics_path)
    setup_seconds = time.time() - started
    budget = float(cfg["time_budget_seconds"] or 0)
    steps_per_epoch = int(cfg["steps_per_epoch"]) or len(train_loader)
    cfg["_total_steps"] = _train_total_steps(cfg, steps_per_epoch)
    batches = _train_forever(train_loader)
    last_epoch_seconds = 0.0

    def over_budget(extra=0.0):
        return budget > 0 and time.time() - started + extra > budget

    def metadata(status):
        return {"status": status, "config": {k: v for k, v in cfg.items() if not k.startswith("_")},
                "model_config": model.config,
                "parameters": n_params, "data_root": data_root,
                "pairs": {"train": len(train_pairs), "val": len(val_pairs),
                          "test": len(found["test"])},
                "device": str(device), "torch_version": torch.__version__,
                "cuda_version": torch.version.cuda, "gpu_names": gpu_names(),
                "durations": {"setup_seconds": round(setup_seconds, 2),
                              "train_seconds": round(time.time() - started - setup_seconds, 2),
                              "total_seconds": round(time.time() - started, 2)},
                "final": {k: _train_num(v) if isinstance(v, float) else v
                          for k, v in state.items()}}

    try:
        for epoch in range(first_epoch, int(cfg["epochs"]) + 1):
            # The first epoch always runs (at least one step) so that outputs exist.
            if epoch > first_epoch and over_budget(last_epoch_seconds):
                state["stop_reason"] = "time_budget"
                break
            epoch_start = time.time()
            model.train()
            train_loss, n_steps, skipped = _train_epoch(
                model, batches, steps_per_epoch, optimizer, scaler, cfg, device, stft, state,
                over_budget)
            if val_loader is not None:
                val_loss, val_sisdr, val_input = _train_validate(
                    model, val_loader, device, use_amp, cfg["loss"], stft)
                if state["val_sisdr_noisy"] is None:
                    print("validation SI-SDR of the noisy input: %.2f dB" % val_input, flush=True)
                state["val_sisdr_noisy"] = round(val_input, 4)
            else:
                val_loss, val_sisdr = train_loss, None
            if (cfg["schedule"] == "plateau" and state["steps"] >= cfg["warmup_steps"]
                    and math.isfinite(val_loss)):
                plateau.step(val_loss)
            # The first epoch always counts as best so that best.pt always exists.
            improved = state["best_val_loss"] is None or (
                math.isfinite(val_loss) and val_loss < state["best_val_loss"])
            lr = float(optimizer.param_groups[0]["lr"])
            if improved:
                state.update(best_val_loss=val_loss if math.isfinite(val_loss) else math.inf,
                             best_epoch=epoch, best_val_sisdr=val_sisdr)
                stale = 0
            else:
                stale += 1
            checkpoint = _train_checkpoint(cfg, model, optimizer, epoch, val_loss, {
                "scheduler_state": plateau.state_dict(), "scaler_state": scaler.state_dict(),
                "train_state": dict(state, epochs_run=epoch, stale=stale)})
            _train_save(os.path.join(out_dir, "last.pt"), checkpoint)
            if improved:
                _train_save(os.path.join(out_dir, "best.pt"), checkpoint)
            last_epoch_seconds = time.time() - epoch_start
            row = {"epoch": epoch, "train_loss": _train_num(train_loss),
                   "val_loss": _train_num(val_loss), "lr": lr,
                   "seconds": round(last_epoch_seconds, 2), "steps": n_steps,
                   "skipped_steps": skipped, "val_sisdr": _train_num(val_sisdr)}
            with open(metrics_path, "a") as fh:
                fh.write(json.dumps(row) + "\n")
            state["epochs_run"] = epoch
            print("epoch %d/%d  train %.4f  val %.4f  val SI-SDR %s dB  lr %.2e  %.1fs%s%s"
                  % (epoch, cfg["epochs"], train_loss, val_loss,
                     "n/a" if val_sisdr is None else "%.2f" % val_sisdr, lr,
                     last_epoch_seconds, "  (best)" if improved else "",
                     "  [%d non-finite steps skipped]" % skipped if skipped else ""), flush=True)
            _train_write_json(os.path.join(out_dir, "metadata.json"), metadata("running"))
            stop = _train_stop_reason(cfg, state, stale)
            if stop:
                state["stop_reason"] = stop
                break
    finally:
        # Drop the worker processes here rather than at interpreter exit, where
        # their shutdown prints spurious errors into the notebook log.
        batches.close()
        del batches, train_loader, val_loader
    _train_write_json(os.path.join(out_dir, "metadata.json"), metadata("completed"))
    state["best_val_loss"] = _train_num(state["best_val_loss"])
    summary = {"model": cfg["model"], "parameters": n_params, "epochs_run": state["epochs_run"],
               "best_epoch": state["best_epoch"], "best_val_loss": state["best_val_loss"],
               "best_val_sisdr": state["best_val_sisdr"], "stop_reason": state["stop_reason"],
               "seconds": round(time.time() - started, 2), "output_dir": out_dir}
    print("done: %s" % json.dumps(summary), flush=True)
    return summary
