"""What a push to Kaggle sends, and the checks around it.

Before anything is recorded or sent (`check_limits`, kjob.kaggle_platform holds the numbers):
the session timeout within the accelerator's limit (12 h CPU and GPU, 9 h TPU), a machine
shape Kaggle knows and that matches the accelerator, and the notebook's source under 1 MB.
Before any push: every dataset source must exist and be readable by this account (one
GetDataset each, and a pinned "owner/slug/N" must have version N), because Kaggle accepts a
push with an unknown source and runs a session without it. (Kaggle's two GPU sessions and its
weekly GPU quota are the backend's `capacity` and `quota_left`: kjob.lifecycle.push checks them
against the ledger before anything is recorded.) After the push:
a rejection arrives as HTTP 200 with `error` or `invalid*Sources`, and a data source can
silently fail to attach, so both are turned into errors; so is a session that did not get the
accelerator asked for (a TPU push run on the standard image, kaggle-cli #1197).
A push with inputs (`push --input`) sends each input's model version among the model sources
and its manifest in a first cell (`with_inputs`); `check_attached` then holds Kaggle to each
version asked for (kjob.backends.kaggle_inputs publishes them before the push).
"""

import json

from kagglesdk.kernels.types import kernels_api_service as api

from kjob.errors import BackendError, ConfigError, NotFoundError, ValidationError
from kjob.kaggle_platform import (DEFAULT_MACHINE_SHAPE, GPU_SESSIONS, GPU_SHAPES, SESSION_LIMIT, SOURCE_LIMIT,
                                  TPU_SHAPES, KaggleRef, shape_accelerator)
from kjob.credentials import redact

GPU_SESSION_LIMIT = GPU_SESSIONS.value
DEFAULT_GPU_SHAPE = DEFAULT_MACHINE_SHAPE["gpu"]  # enable_gpu alone gets a P100, which today's image cannot use
_SOURCE_KEYS = (("dataset", "dataset_sources", "dataset_data_sources"),
                ("kernel", "kernel_sources", "kernel_data_sources"),
                ("model", "model_sources", "model_data_sources"),
                ("competition", "competition_sources", "competition_data_sources"))


def kaggle_text(notebook: dict) -> str:
    """The notebook as Kaggle expects it: each cell's source one string, outputs cleared."""
    nb = json.loads(json.dumps(notebook))
    for cell in nb.get("cells", []):
        if isinstance(cell.get("source"), list):
            cell["source"] = "".join(cell["source"])
        if cell.get("cell_type") == "code":
            cell["outputs"], cell["execution_count"] = [], None
    return json.dumps(nb, ensure_ascii=False)


INPUTS_TAG = "kjob-inputs"
_MANIFEST_CELL = """# kjob: this run's inputs (push --input), listed in kjob-inputs.json beside the working folder
import os as _kjob_os
_kjob_text = {text!r}
_kjob_inputs = _kjob_os.path.join(_kjob_os.path.dirname(_kjob_os.path.abspath(
    _kjob_os.environ.get("KAGGLE_WORKING_DIR", "/kaggle/working"))), "kjob-inputs.json")
try:
    with open(_kjob_inputs, "w") as _kjob_file:
        _kjob_file.write(_kjob_text)
except OSError:  # a read-only parent: the temporary folder
    import tempfile as _kjob_tempfile
    _kjob_inputs = _kjob_os.path.join(_kjob_tempfile.gettempdir(), "kjob-inputs.json")
    with open(_kjob_inputs, "w") as _kjob_file:
        _kjob_file.write(_kjob_text)
_kjob_os.environ["KJOB_INPUTS"] = _kjob_inputs
"""


def with_inputs(submission):
    """The submission as Kaggle gets it: each input's model version added to `model_sources`
    (pinned: `owner/model/other/variation/1`, kjob.backends.kaggle_inputs), and a first cell,
    tagged kjob-inputs, that writes kjob-inputs.json (the manifest local and Ray runs find in
    /kaggle/input, which is read-only on Kaggle) to /kaggle/kjob-inputs.json, the working
    folder's parent, and names it in KJOB_INPUTS."""
    from dataclasses import replace

    from kjob.backends.kaggle_inputs import source_of
    from kjob.runs.lineage import manifest

    if not submission.inputs:
        return submission
    records = [item.record for item in submission.inputs]
    meta = dict(submission.metadata)
    meta["model_sources"] = [*meta.get("model_sources", []), *(source_of(r) for r in records)]
    notebook = json.loads(json.dumps(submission.notebook))
    cell = {"cell_type": "code", "id": INPUTS_TAG, "execution_count": None, "outputs": [],
            "metadata": {"tags": [INPUTS_TAG]}, "source": _MANIFEST_CELL.format(text=manifest(records))}
    cells = [c for c in notebook.get("cells", []) if INPUTS_TAG not in c.get("metadata", {}).get("tags", [])]
    notebook["cells"] = [cell, *cells]
    return replace(submission, metadata=meta, notebook=notebook)


def save_request(submission) -> api.ApiSaveKernelRequest:
    meta = submission.metadata
    request = api.ApiSaveKernelRequest()
    request.slug = meta["id"]
    request.new_title = meta["title"]
    request.text = kaggle_text(submission.notebook)
    request.language = meta.get("language", "python")
    request.kernel_type = meta.get("kernel_type", "notebook")
    for _, meta_key, field in _SOURCE_KEYS:
        setattr(request, field, list(meta.get(meta_key, [])))
    request.category_ids = list(meta.get("keywords", []))
    # Written out even when false: a field left out takes Kaggle's default, not the recipe's.
    request.is_private = bool(meta.get("is_private", True))
    request.enable_gpu = bool(meta.get("enable_gpu"))
    request.enable_tpu = bool(meta.get("enable_tpu"))
    request.enable_internet = bool(meta.get("enable_internet"))
    request.session_timeout_seconds = int(submission.session_timeout)
    shape = meta.get("machine_shape") or (DEFAULT_GPU_SHAPE if request.enable_gpu else None)
    if shape:
        request.machine_shape = shape
    if meta.get("docker_image"):  # the image pinned (kaggle-cli PR #774 sends it the same way)
        request.docker_image = meta["docker_image"]
    return request


# -- Kaggle's limits, before anything is recorded or sent ---------------------------------

def accelerator(meta: dict) -> str:
    """"tpu", "gpu" or "none", as the kernel's metadata asks."""
    return "tpu" if meta.get("enable_tpu") else ("gpu" if meta.get("enable_gpu") else "none")


def _megabytes(size: int) -> str:
    return f"{size / 10**6:.2f} MB" if size >= 10**4 else f"{size / 1000:.1f} kB"


def source_sizes(notebook: dict) -> dict[str, int]:
    """Bytes of the notebook's source per module it inlines (cells kjob marked with their
    src file), the rest under "other cells"."""
    sizes: dict[str, int] = {}
    for cell in notebook.get("cells", []):
        source = cell.get("source", "")
        text = "".join(source) if isinstance(source, list) else str(source)
        where = ((cell.get("metadata") or {}).get("kjob") or {}).get("source") or "other cells"
        sizes[where] = sizes.get(where, 0) + len(text.encode("utf-8"))
    return sizes


def check_limits(submission) -> None:
    """Refuse, in one line with the limit and the fix, a push Kaggle would refuse or cut short.

    Called before the ledger row and the kernel folder are written: a refusal leaves nothing."""
    meta, recipe = submission.metadata, submission.recipe
    where = f"builders/{recipe.name}.toml"
    wanted = accelerator(meta)
    shape = meta.get("machine_shape")
    kind = shape_accelerator(shape)
    if kind == "unknown":
        raise ConfigError(f"{where}: machine_shape '{shape}' is not one of Kaggle's (GPU: {', '.join(GPU_SHAPES)}; "
                          f"TPU: {', '.join(TPU_SHAPES)}): pick one, or leave it out for the accelerator's default")
    if kind is not None and kind != wanted:
        raise ConfigError(f"{where}: machine_shape '{shape}' is a {kind.upper()} but accelerator is '{wanted}': make "
                          f"them agree (the default {wanted} shape is {DEFAULT_MACHINE_SHAPE[wanted] or 'none'})")
    if recipe.secrets and not meta.get("enable_internet"):
        raise ConfigError(f"{where}: secrets ({', '.join(recipe.secrets)}) need internet = true on Kaggle: its "
                          "kaggle_secrets client asks Kaggle's service for them, which a kernel without internet "
                          "cannot reach; nothing was pushed")
    limit = SESSION_LIMIT[wanted]
    if submission.session_timeout > limit.value:
        label = "CPU" if wanted == "none" else wanted.upper()
        raise ConfigError(f"{recipe.name}: session timeout {hours(submission.session_timeout)} is over Kaggle's "
                          f"{limit.value // 3600} h limit for {label} sessions: lower session_timeout in {where} "
                          f"(or push --timeout {limit.value}); nothing was pushed")
    size = len(kaggle_text(submission.notebook).encode("utf-8"))
    if size >= SOURCE_LIMIT.value:
        biggest = sorted(source_sizes(submission.notebook).items(), key=lambda item: -item[1])[:3]
        named = ", ".join(f"{name} {_megabytes(n)}" for name, n in biggest)
        raise ValidationError(f"{recipe.name}: the notebook's source is {_megabytes(size)}, over Kaggle's limit of "
                              f"{_megabytes(SOURCE_LIMIT.value)} (Kaggle refuses it: \"The kernel source must be less "
                              f"than 1 megabytes in size\"); biggest: {named}; move large tables or data out of "
                              "the modules into a dataset (kjob dataset push) read from /kaggle/input; nothing was "
                              "pushed")


# -- after the push ------------------------------------------------------------------------

def check_accelerator(metadata: api.ApiKernelMetadata, meta: dict, ref, version: int) -> None:
    """BackendError when Kaggle's metadata of the new version says it got another accelerator,
    or another machine shape, than the push asked for (a TPU push silently run on the standard
    image: kaggle-cli #1197). Assumed: GetKernel's enableGpu, enableTpu and machineShape describe
    what the version runs on (the official client's `kernels pull -m` writes them as such)."""
    if metadata is None:
        return
    wanted, asked = accelerator(meta), meta.get("machine_shape") or None
    got_shape = metadata.machine_shape or None
    by_shape = shape_accelerator(got_shape)
    got = "tpu" if metadata.enable_tpu or by_shape == "tpu" else (
        "gpu" if metadata.enable_gpu or by_shape == "gpu" else "none")
    said = (f"enableTpu {str(bool(metadata.enable_tpu)).lower()}, enableGpu {str(bool(metadata.enable_gpu)).lower()}, "
            f"machineShape '{got_shape or ''}'")
    problem = None
    if wanted != got:
        problem = f"asked for accelerator '{wanted}' ({asked or 'no machine shape'}) but Kaggle's metadata says {said}"
        if wanted == "tpu":
            problem += ": it runs on the standard image without a TPU (kaggle-cli #1197)"
    elif asked and got_shape and got_shape.lower() != asked.lower():
        problem = f"asked for machine shape {asked} but Kaggle's metadata says {got_shape}"
    if problem:
        raise BackendError(f"Kaggle made {ref} v{version} but {problem}; stop it (kjob cancel --delete-kernel) if it "
                           "would waste the session, and push again, or choose another machine_shape")


def rejection(response: api.ApiSaveKernelResponse) -> str | None:
    """Why Kaggle refused the push, in one line, or None."""
    problems = [" ".join(redact(response.error).split())] if response.error else []
    for what, values in (("dataset source", response.invalid_dataset_sources),
                         ("competition source", response.invalid_competition_sources),
                         ("kernel source", response.invalid_kernel_sources),
                         ("model source", response.invalid_model_sources), ("tag", response.invalid_tags)):
        if values:
            plural = "s" if len(values) > 1 else ""
            problems.append(f"invalid {what}{plural}: {', '.join(redact(v) for v in values)}")
    return "; ".join(problems) or None


def _same_source(requested: str, attached: str) -> bool:
    requested, attached = requested.strip().lower(), attached.strip().lower()
    return requested == attached or requested.startswith(attached + "/") or attached.startswith(requested + "/")


def check_attached(metadata: api.ApiKernelMetadata, meta: dict, ref, version: int) -> None:
    missing = []
    for _, meta_key, field in _SOURCE_KEYS:
        attached = list(getattr(metadata, field, None) or []) if metadata is not None else []
        missing += [s for s in meta.get(meta_key, []) if not any(_same_source(s, a) for a in attached)]
    if missing:
        raise BackendError(f"Kaggle made {ref} v{version} but did not attach {', '.join(missing)}: that version runs "
                           "without it; check each name and that this account can read it, then push again")


def check_dataset_sources(datasets_api, meta: dict) -> None:
    """BackendError naming every dataset source Kaggle does not have, or will not show this account."""
    missing = []
    for source in meta.get("dataset_sources", []):
        ref = KaggleRef.parse(source)
        try:
            current = datasets_api.get(ref).current_version_number
        except NotFoundError:
            missing.append(f"{source} (not found)")
            continue
        except BackendError as exc:
            if getattr(exc, "http_status", None) != 403:
                raise
            missing.append(f"{source} (not readable with these credentials)")
            continue
        if ref.version and current and ref.version > current:
            missing.append(f"{source} (it has versions 1 to {current})")
    if missing:
        raise BackendError(f"dataset source{'s' if len(missing) > 1 else ''} missing on Kaggle: {', '.join(missing)}; "
                           "upload your own with `kjob dataset push FOLDER --as OWNER/SLUG`, or fix the recipe's "
                           "dataset_sources (nothing was pushed)")


def hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h"


def gpu_quota_left(backend) -> float | None:
    """Seconds of this week's GPU quota not used or reserved yet; None when Kaggle does not say."""
    quota = backend.api.gpu_quota()
    if quota is None or quota.total_time_allowed is None:
        return None
    used = sum(t.total_seconds() for t in (quota.time_used, quota.time_reserved) if t is not None)
    return quota.total_time_allowed.total_seconds() - used


