"""Loading an enhancement model from a checkpoint, and chunked CPU inference.

A checkpoint is either the dict the training code writes ({"format_version", "model_name",
"model_config", "state_dict", ...}) or a plain state_dict (then the model name is needed).
"""

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kjob.errors import NotFoundError, UsageError, ValidationError

CHUNK_SECONDS = 10.0
OVERLAP_SECONDS = 1.0
_PREFIXES = ("module.", "_orig_mod.")


@dataclass
class LoadedModel:
    model: object  # a torch.nn.Module in eval mode
    name: str
    config: dict
    parameters: int
    path: Path
    epoch: int | None = None
    val_loss: float | None = None
    unexpected_keys: list[str] = field(default_factory=list)

    def provenance(self) -> dict:
        return {"checkpoint": str(self.path), "model": self.name, "model_config": self.config,
                "parameters": self.parameters, "epoch": self.epoch, "val_loss": self.val_loss,
                "unexpected_keys": self.unexpected_keys}


def _model_code():
    """The speech example's model definitions (`enhancer.models`), from the workspace's own
    source folder: they are the project's code, not something kjob installs."""
    from speechscore.example_code import enhancer_module

    models = enhancer_module("models", "the models checkpoints name live in src/enhancer/models.py, which {source} "
                                       "lacks: run eval-local in the speech example's workspace")
    return models.MODELS, models.build_model, models.count_parameters


def load_model(path: Path, model_name: str | None = None) -> LoadedModel:
    """Rebuild the model a checkpoint names (or `model_name` for a plain state_dict).

    Missing weights are an error (the numbers would describe a half-random model);
    unexpected keys are tolerated and reported."""
    MODELS, build_model, count_parameters = _model_code()

    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"no such checkpoint: {path}")
    if model_name is not None and model_name not in MODELS:
        raise UsageError(f"unknown model '{model_name}'; choose one of {', '.join(sorted(MODELS))}")
    obj = _read_checkpoint(path)
    name, config, state, epoch, val_loss = _unpack(path, obj, model_name, MODELS)
    config = _model_config(path, config, MODELS[name])
    state = _checked_state(path, state)
    model = _rebuild(path, name, config, build_model)
    result = _load_weights(path, name, model, state)
    model.eval()
    _trial_run(path, name, config, model, build_model)
    return LoadedModel(model, name, dict(getattr(model, "config", config) or {}), count_parameters(model),
                       path, epoch, val_loss, list(result.unexpected_keys))


def _read_checkpoint(path: Path) -> dict:
    """The checkpoint's dict, loaded weights-only on the CPU; one line naming the file when it
    is not one."""
    import pickle

    import torch

    try:
        obj = torch.load(path, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as exc:
        blocked = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
        if blocked:
            raise ValidationError(f"{path}: holds an object of type {blocked.group(1)}, which weights-only "
                                  "loading refuses; save a state_dict or the training checkpoint dict") from exc
        raise ValidationError(f"{path}: not a torch checkpoint (corrupt, or some other kind of file)") from exc
    except EOFError as exc:
        raise ValidationError(f"{path}: empty or truncated checkpoint file") from exc
    except (RuntimeError, OSError, ValueError, KeyError, AttributeError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0].split(". ")[0]
        raise ValidationError(f"{path}: not a readable torch checkpoint ({first[:160]})") from exc
    if not isinstance(obj, dict):
        raise ValidationError(f"{path}: expected a checkpoint dict or a state_dict, found {type(obj).__name__}")
    return obj


def _unpack(path: Path, obj: dict, model_name: str | None, MODELS: dict):
    """(model name, config, state_dict, epoch, val_loss) of a training checkpoint dict, or of a
    plain state_dict (whose architecture `model_name` names)."""
    if "state_dict" in obj and isinstance(obj["state_dict"], dict):
        saved_name, state = obj.get("model_name"), obj["state_dict"]
        if saved_name is not None and not (isinstance(saved_name, str) and saved_name in MODELS):
            raise ValidationError(f"{path}: model_name: expected one of {', '.join(sorted(MODELS))}, "
                                  f"not {_shown(saved_name)}")
        if model_name and saved_name and model_name != saved_name:
            raise UsageError(f"{path} holds a '{saved_name}' model, not '{model_name}' (drop --model)")
        name, config = model_name or saved_name, obj.get("model_config")
        epoch = _number(path, "epoch", obj.get("epoch"), integer=True)
        val_loss = _number(path, "val_loss", obj.get("val_loss"), integer=False)
    else:
        name, config, state, epoch, val_loss = model_name, {}, obj, None, None
    if not name:
        raise UsageError(f"{path} is a plain state_dict: name its architecture with --model "
                         f"({', '.join(sorted(MODELS))})")
    return name, config, state, epoch, val_loss


def _checked_state(path: Path, state) -> dict:
    """The state_dict: tensors named by text, without the prefixes wrappers add."""
    import torch
    from torch.nn.modules.utils import consume_prefix_in_state_dict_if_present

    if not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValidationError(f"{path}: the state_dict is empty or holds values that are not tensors")
    odd = next((k for k in state if not isinstance(k, str)), None)
    if odd is not None:
        raise ValidationError(f"{path}: the state_dict's keys must be parameter names (text), not {_shown(odd)}")
    state = dict(state)
    for prefix in _PREFIXES:
        consume_prefix_in_state_dict_if_present(state, prefix)
    return state


def _load_weights(path: Path, name: str, model, state: dict):
    """The weights into the model; every weight it has must be there (extra ones are left)."""
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:
        detail = next((ln.strip() for ln in str(exc).splitlines() if "size mismatch" in ln), str(exc).splitlines()[0])
        raise ValidationError(f"{path} does not fit model '{name}': {detail}") from exc
    if result.missing_keys:
        shown = ", ".join(result.missing_keys[:4]) + (" ..." if len(result.missing_keys) > 4 else "")
        raise ValidationError(f"{path} does not fit model '{name}': {len(result.missing_keys)} missing "
                              f"weight(s) ({shown}); {len(result.unexpected_keys)} unexpected")
    return result


def _first_line(exc: BaseException) -> str:
    return ((str(exc).strip().splitlines() or [type(exc).__name__])[0] or type(exc).__name__)[:200]


def _rebuild(path: Path, name: str, config: dict, build_model):
    """The model from its checked config; any failure of the model's own constructor is
    one line naming the setting that causes it, when one setting alone does."""
    try:
        return build_model(name, config)
    except Exception as exc:  # the constructor is the project's code: IndexError, ZeroDivisionError, ...
        key = _culprit(config, lambda one: build_model(name, one))
        where = f"model_config.{key} = {_shown(config[key])}" if key else "model_config"
        raise ValidationError(f"{path}: {where}: cannot rebuild '{name}' from it: {_first_line(exc)}") from exc


def _trial_run(path: Path, name: str, config: dict, model, build_model) -> None:
    """Run the model on a quarter second of silence, so that a setting the constructor
    accepts but inference cannot use (a hop of 0, heads that do not divide the width)
    is reported here, by its name, before any audio is read."""
    import torch

    n_fft = config.get("n_fft")
    samples = max(4000, 2 * n_fft) if isinstance(n_fft, int) else 4000  # longer than any window

    def run(module) -> None:
        with torch.inference_mode():
            module(torch.zeros(1, samples))

    try:
        run(model)
    except Exception as exc:
        key = _culprit(config, lambda one: run(build_model(name, one).eval()))
        where = f"model_config.{key} = {_shown(config[key])}" if key else "model_config"
        raise ValidationError(f"{path}: {where}: the '{name}' model built from it fails on a test input: "
                              f"{_first_line(exc)}") from exc


def _culprit(config: dict, attempt) -> str | None:
    """The first setting that makes `attempt` fail when it alone is applied to the
    model's defaults; None when none does on its own."""
    for key, value in config.items():
        try:
            attempt({key: value})
        except Exception:
            return key
    return None


def _shown(value) -> str:
    """A bad checkpoint value for a one-line error (a tensor by its shape, not its numbers)."""
    if hasattr(value, "shape") and hasattr(value, "numel"):
        return f"a tensor of shape {tuple(value.shape)}"
    text = " ".join(repr(value).split())
    return text if len(text) <= 60 else text[:57] + "..."


def _number(path: Path, key: str, value, *, integer: bool):
    """A checkpoint's epoch (an int) or val_loss (a float, NaN included), or None if absent."""
    if hasattr(value, "numel") and value.numel() == 1:  # a one-element tensor, as training may save it
        value = value.item()
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)) or (integer and value < 0):
        expected = "an integer of at least 0" if integer and isinstance(value, int) and not isinstance(value, bool) \
            else "an integer" if integer else "a number"
        raise ValidationError(f"{path}: {key}: expected {expected}, not {_shown(value)}")
    return int(value) if integer else float(value)


def _model_config(path: Path, config, model_class) -> dict:
    """`config` checked against the model's constructor: known settings, each typed like its default."""
    import inspect

    if config is None:
        return {}
    if not isinstance(config, dict):
        raise ValidationError(f"{path}: model_config: expected a dict of the model's settings, not {_shown(config)}")
    settings = inspect.signature(model_class).parameters
    for key, value in config.items():
        if key not in settings:
            known = ", ".join(settings)
            raise ValidationError(f"{path}: model_config: {_shown(key)} is not a setting of the model ({known})")
        default = settings[key].default
        if not _typed_like(value, default):
            raise ValidationError(f"{path}: model_config.{key}: expected a value like {default!r}, not {_shown(value)}")
        if isinstance(default, (list, tuple)) and default and not value:
            raise ValidationError(f"{path}: model_config.{key}: expected a non-empty list like {default!r}, not {_shown(value)}")
        if not _positive_like(value, default):
            what = "positive integers" if isinstance(default, (list, tuple)) else "a positive integer"
            raise ValidationError(f"{path}: model_config.{key}: expected {what} like {default!r}, not {_shown(value)}")
    return dict(config)


def _positive_like(value, default) -> bool:
    """A size (an integer default above zero, or a list of them) stays above zero."""
    if isinstance(default, (list, tuple)):
        return all(_positive_like(v, default[0]) for v in value) if default else True
    if isinstance(default, int) and not isinstance(default, bool) and default > 0:
        return value > 0
    return True


def _typed_like(value, default) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, int):
        return isinstance(value, int)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    if isinstance(default, str):
        return isinstance(value, str)
    if isinstance(default, (list, tuple)):
        if not isinstance(value, (list, tuple)):
            return False
        return not default or all(_typed_like(item, default[0]) for item in value)
    return value is None or isinstance(value, (int, float, str, list, tuple))  # no default to compare with


def enhance(model, wave: np.ndarray, chunk_seconds: float = CHUNK_SECONDS,
            overlap_seconds: float = OVERLAP_SECONDS, rate: int = 16000) -> np.ndarray:
    """The model's output for one waveform, exactly as long as the input.

    Long inputs go through in overlapping chunks joined with linear cross-fades, so the
    attention cost stays bounded and memory flat."""
    import torch

    n = wave.shape[0]
    if n == 0:
        return np.zeros(0, np.float32)
    chunk, overlap = int(chunk_seconds * rate), int(overlap_seconds * rate)
    x = torch.from_numpy(np.ascontiguousarray(wave, np.float32))
    with torch.inference_mode():
        if n <= chunk:
            return model(x[None])[0].float().numpy().copy()
        out = np.zeros(n, np.float64)
        weight = np.zeros(n, np.float64)
        step = chunk - overlap
        starts = list(range(0, n - overlap, step))
        for start in starts:
            stop = min(start + chunk, n)
            piece = model(x[None, start:stop])[0].float().numpy().astype(np.float64)
            fade = np.ones(stop - start)
            ramp = np.linspace(0.0, 1.0, overlap + 2)[1:-1]
            if start > 0:
                fade[:overlap] = ramp
            if stop < n:
                fade[-overlap:] = ramp[::-1]
            out[start:stop] += piece * fade
            weight[start:stop] += fade
        return (out / np.maximum(weight, 1e-12)).astype(np.float32)


def enhance_all(model, waves: list[np.ndarray], names: list[str], threads: int | None = None,
                progress=None) -> list[np.ndarray]:
    """Enhance every waveform with torch using `threads` (default: all cores)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads or len(os.sched_getaffinity(0)))
    try:
        outputs = []
        for i, wave in enumerate(waves):
            try:
                outputs.append(enhance(model, wave))
            except RuntimeError as exc:
                first = (str(exc).strip().splitlines() or ["RuntimeError"])[0]
                raise ValidationError(f"the model failed on {names[i]} ({wave.size} samples): {first[:200]}") from exc
            if progress:
                progress("enhancing", i + 1, len(waves))
        return outputs
    finally:
        torch.set_num_threads(before)
