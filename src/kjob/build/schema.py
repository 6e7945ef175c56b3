"""The types a recipe's keys (and the workspace's parameter tables) must have.

Every wrong value becomes one ConfigError line naming the file and the key, e.g.
`builders/x.toml: [smoke] timeout: expected a whole number of seconds above 0, not 'abc'`,
instead of a TypeError deep inside the build.
"""

import re

from kjob.toml_tables import (  # noqa: F401  (re-exported: the recipe's vocabulary)
    ParamValue, Where, is_identifier, kind_of, param_value_problem, shown, typed_like,
)
from kjob.kaggle_platform import DEFAULT_MACHINE_SHAPE, REF_RE, REQUIREMENT_RE, SESSION_LIMIT, KaggleRef
from kjob.runs.metrics import metrics_spec
from kjob.sandbox.secrets import NAME_RE as SECRET_NAME

_ONE_LINE = re.compile(r"[^\n\r]+")

SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
SOURCE_RE = REF_RE  # owner/slug or owner/slug/N, as Kaggle names sources
COMPETITION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# A shape's name (NvidiaTeslaT4, TpuV5E8), never 32 hex digits: that is a legacy Kaggle key.
MACHINE_SHAPE_RE = re.compile(r"^(?![0-9a-fA-F]{32}$)[A-Za-z][A-Za-z0-9]*$")
# A Kaggle image reference: gcr.io/kaggle-images/python@sha256:<64 hex>, or a name with a tag.
DOCKER_IMAGE_RE = re.compile(r"^[a-z0-9][a-z0-9._/-]*(?::[A-Za-z0-9._-]+)?(?:@sha256:[0-9a-f]{64})?$")
ACCELERATORS = ("gpu", "tpu", "none")
# The longest any Kaggle session may run (kjob.kaggle_platform: per accelerator, checked at push).
KAGGLE_MAX_SESSION_SECONDS = max(limit.value for limit in SESSION_LIMIT.values())
DEFAULT_SMOKE_TIMEOUT = 120

_KEYS = {
    "title", "slug", "description", "modules", "entry", "parameters", "smoke",
    "dataset_sources", "kernel_sources", "model_sources", "competition_sources",
    "accelerator", "machine_shape", "internet", "private", "session_timeout", "metrics",
    "pip", "pip_modules", "docker_image", "secrets", "inputs", "resume", "namespaces",
}
# How the inlined modules run: all in the notebook's one namespace, or each as its own module.
NAMESPACES = ("shared", "modules")
# An input run (`inputs = ["train:v3"]`): KERNEL[:VERSION][@BACKEND], read by kjob.runs.lineage.
INPUT_REF_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*(?:@[A-Za-z0-9_.-]+)*(?::(?:k\d+-)?(?:[a-z]+-)?v?\d+)?(?:@[a-z]+)?$")
_SOURCE_KEYS = ("dataset_sources", "kernel_sources", "model_sources", "competition_sources")


def _string(w: Where, data: dict, key: str, default=None, *, pattern=None, expected="expected a string"):
    value = data.get(key, default)
    if not isinstance(value, str) or (pattern is not None and not pattern.fullmatch(value)):
        raise w.fail(key, expected, value)
    return value


def _seconds(w: Where, data: dict, key: str, default: int, low: int, high: int | None = None) -> int:
    value = data.get(key, default)
    if type(value) is not int or value < low or (high is not None and value > high):
        span = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise w.fail(key, f"expected a whole number of seconds {span}", value)
    return value


def _module_path(value) -> bool:
    """REL.py under the source folder, or ../FOLDER/REL.py in another top-level folder of the
    workspace (kjob.build.module_paths): no other '..', nothing empty."""
    if not isinstance(value, str):
        return False
    outside = value.startswith("../")
    parts = value.removeprefix("../").split("/")
    return (len(parts) >= (2 if outside else 1) and value.endswith(".py") and "\\" not in value
            and all(p not in ("", ".", "..") for p in parts))


def recipe_fields(name: str, rel: str, data: dict) -> dict:
    """The KernelRecipe fields of recipe table `data` (file `rel`), each checked for its type."""
    w = Where(rel)
    w.refuse_unknown(data, _KEYS)
    for key in ("title", "modules", "entry"):
        if key not in data:
            raise w.problem(f"missing required key '{key}'")
    fields = {
        "title": _string(w, data, "title", pattern=_ONE_LINE, expected="expected a one-line string"),
        "slug": _string(w, data, "slug", name, pattern=SLUG_RE,
                        expected="expected lowercase letters, digits and single dashes"),
        "description": _string(w, data, "description", ""),
        "entry": data["entry"],
    }
    modules = data["modules"]
    if not isinstance(modules, list) or not modules:
        raise w.fail("modules", "expected a non-empty list of .py paths relative to src/", modules)
    for item in modules:
        if not _module_path(item):
            raise w.fail("modules", "expected .py paths relative to src/, or ../FOLDER/path.py in another "
                         "top-level folder (no other '..')", item)
    if isinstance(fields["entry"], str) and fields["entry"].endswith(".py"):  # a script entry, run as __main__
        if fields["entry"] not in modules or fields["entry"].startswith("../"):
            raise w.fail("entry", "expected a function name, or a script under src/ among modules", fields["entry"])
    elif not is_identifier(fields["entry"]):
        raise w.fail("entry", "expected a function name", fields["entry"])
    fields["modules"] = tuple(modules)
    for key in _SOURCE_KEYS:
        values = data.get(key, [])
        pattern, expected = ((COMPETITION_RE, "expected a competition name") if key == "competition_sources"
                             else (SOURCE_RE, "expected 'owner/slug' or 'owner/slug/version'"))
        if not isinstance(values, list):
            raise w.fail(key, "expected a list of strings", values)
        for value in values:
            if not isinstance(value, str) or not pattern.match(value):
                raise w.fail(key, expected, value)
        fields[key] = tuple(values)
    accelerator = data.get("accelerator", "gpu")
    if not isinstance(accelerator, str) or accelerator not in ACCELERATORS:
        raise w.fail("accelerator", f"expected one of {', '.join(map(repr, ACCELERATORS))}", accelerator)
    fields["accelerator"] = accelerator
    fields["machine_shape"] = DEFAULT_MACHINE_SHAPE[accelerator]
    if "machine_shape" in data:
        fields["machine_shape"] = _string(w, data, "machine_shape", pattern=MACHINE_SHAPE_RE,
                                          expected="expected a Kaggle machine shape such as 'NvidiaTeslaT4'")
    for key, default in (("internet", False), ("private", True)):
        fields[key] = data.get(key, default)
        if not isinstance(fields[key], bool):
            raise w.fail(key, "expected true or false", fields[key])
    fields.update(_pip_fields(w, data, fields["internet"]))
    fields["secrets"] = _secret_names(w, data)
    fields.update(_input_fields(w, data))
    if "docker_image" in data:  # Kaggle's image pinned, for a run that must not drift (SaveKernel dockerImage)
        fields["docker_image"] = _string(w, data, "docker_image", pattern=DOCKER_IMAGE_RE,
                                         expected="expected a Kaggle image such as "
                                                  "'gcr.io/kaggle-images/python@sha256:<digest>'")
    fields["namespaces"] = _string(w, data, "namespaces", "shared", pattern=re.compile("|".join(NAMESPACES)),
                                   expected=f"expected one of {', '.join(map(repr, NAMESPACES))}")
    # Default: the accelerator's own limit (9 h on a TPU); longer is refused at a Kaggle push.
    fields["session_timeout"] = _seconds(w, data, "session_timeout", SESSION_LIMIT[accelerator].value,
                                         60, KAGGLE_MAX_SESSION_SECONDS)
    fields["parameters"] = params = w.parameters(data)
    fields.update(_smoke_fields(w, data, params))
    fields["metrics"] = metrics_spec(w, data)
    if fields["resume_parameter"] is not None and fields["resume_parameter"] not in params:
        raise w.fail("resume.parameter", "expected one of the recipe's parameters", fields["resume_parameter"])
    return fields


def _input_fields(w: Where, data: dict) -> dict:
    """`inputs = ["train:v3"]`: other runs' outputs the run is given (`push --input`);
    `[resume] parameter = "resume"`: the parameter `push --resume-from vN` sets to where that
    run's outputs are mounted."""
    inputs = data.get("inputs", [])
    if not isinstance(inputs, list) or not all(isinstance(i, str) and INPUT_REF_RE.match(i) for i in inputs):
        raise w.fail("inputs", "expected a list of runs such as 'train:v3' or 'train@local' (KERNEL[:vN][@BACKEND])",
                     inputs)
    resume = data.get("resume", {})
    if not isinstance(resume, dict) or set(resume) - {"parameter"}:
        raise w.fail("resume", "expected a table with one key, parameter", resume)
    parameter = resume.get("parameter")
    if parameter is not None and not is_identifier(parameter):
        raise w.fail("resume.parameter", "expected a parameter name", parameter)
    return {"inputs": tuple(inputs), "resume_parameter": parameter}


def _pip_fields(w: Where, data: dict, internet: bool) -> dict:
    """`pip = ["timm==0.9.16"]`: installed by the notebook's first cell, which needs internet on
    Kaggle; `pip_modules`: import names they provide that kjob.kaggle_platform cannot guess."""
    pip, modules = data.get("pip", []), data.get("pip_modules", [])
    expected = "expected requirement strings like 'timm==0.9.16' (a name, [extras], version specifiers)"
    if not isinstance(pip, list):
        raise w.fail("pip", expected, pip)
    for item in pip:
        if not (isinstance(item, str) and REQUIREMENT_RE.fullmatch(item.strip())):
            raise w.fail("pip", expected + "; no URLs, paths or pip options", item)
    if not isinstance(modules, list) or not all(is_identifier(m) for m in modules):
        raise w.fail("pip_modules", "expected a list of top-level module names", modules)
    if modules and not pip:
        raise w.problem("pip_modules: names what the pip packages provide; set pip too")
    if pip and not internet:
        raise w.problem("pip: a Kaggle run can only install packages with internet on; set internet = true, "
                        "or attach the packages as a dataset and drop pip")
    return {"pip": tuple(item.strip() for item in pip), "pip_modules": tuple(modules)}


def _secret_names(w: Where, data: dict) -> tuple[str, ...]:
    """`secrets = ["WANDB_API_KEY"]`: the names the kernel may read with kaggle_secrets (their
    values are never in a recipe: Kaggle's own on Kaggle, `kjob secrets set` here)."""
    names = data.get("secrets", [])
    if not isinstance(names, list):
        raise w.fail("secrets", "expected a list of secret names such as 'WANDB_API_KEY'", names)
    for name in names:
        if not isinstance(name, str) or not SECRET_NAME.fullmatch(name):
            raise w.fail("secrets", "expected upper-case names such as 'WANDB_API_KEY' (A-Z, 0-9, _)", name)
    if len(set(names)) != len(names):
        raise w.problem("secrets: a name is listed twice")
    return tuple(names)


def _smoke_fields(w: Where, data: dict, params: dict) -> dict:
    smoke = w.table_of(data, "smoke")
    sw = w.at("smoke")
    sw.refuse_unknown(smoke, {"timeout", "parameters", "datasets"})
    timeout = _seconds(sw, smoke, "timeout", DEFAULT_SMOKE_TIMEOUT, 1)
    datasets = sw.table_of(smoke, "datasets")  # "owner/slug" = a smaller sample folder, for smoke runs
    for key, folder in datasets.items():
        if key not in {KaggleRef.parse(s).key for s in data.get("dataset_sources", [])}:
            raise sw.at("datasets").problem(f"{key}: not one of dataset_sources")
        if not isinstance(folder, str) or not folder.strip():
            raise sw.at("datasets").fail(key, "expected a folder path (string), relative to the workspace", folder)
    values = sw.parameters(smoke)
    pw = sw.at("parameters")
    for key, value in values.items():
        if key not in params:
            known = ", ".join(params) or "none"
            raise pw.problem(f"{key}: not a recipe parameter (known: {known})")
        typed = typed_like(value, params[key])
        if typed is None:
            raise pw.fail(key, f"expected {kind_of(params[key])} like the recipe's {shown(params[key])}", value)
        values[key] = typed
    return {"smoke_parameters": values, "smoke_timeout": timeout, "smoke_datasets": dict(datasets)}
