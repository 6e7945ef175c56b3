"""How a run failed, read from what the platform said, and the one line that tells what to do.

Every backend files a failure under one of `kjob.runs.record.FAILURE_KINDS`. Kaggle says why a session
failed in words only (its `failureMessage`), and a local run's kernel says it with an exception:
both are read here, with Kaggle's own wording (kjob.kaggle_platform) first.

    out of memory   Kaggle: "Your notebook tried to allocate more memory than is available. It
                    has restarted."; Python's MemoryError; CUDA's "out of memory"
    disk full       "No space left on device" (ENOSPC), /kaggle/working past its 20 GB
    timeout         the session's time limit
    kernel died     the kernel process ended without a Python error
    user code       anything else
"""

import re
from pathlib import Path

from kjob.kaggle_platform import NO_SPACE_MESSAGE, OUT_OF_MEMORY_MESSAGE, OUTPUT_LIMIT, SESSION_LIMIT

_OUT_OF_MEMORY = ("allocate more memory than is available", "out of memory", "memoryerror", "memory limit",
                  "cannot allocate memory", "oom-kill", "oomkilled")
_DISK_FULL = ("no space left on device", "disk full", "disk quota exceeded", "enospc", "errno 28")
_TIMEOUT = ("time limit", "timed out", "timeout", "exceeded the maximum")
_DIED = ("kernel died", "kernel restarted", "dead kernel", "the kernel has died", "it has restarted")

# Parameters that set how much a run takes, most telling first: a name with one of these words
# (at its start or after "_"). The speech recipes' batch_size, crop_seconds, num_workers; their
# time_budget_seconds (the training stops itself) before epochs.
_MEMORY_PARAMETERS = (("batch",), ("crop", "seq_len", "seq_length", "max_len", "max_length", "segment",
                                   "window", "chunk", "clip", "length", "len"), ("workers",))
_TIME_PARAMETERS = (("time_budget", "budget", "max_time", "time_limit", "max_seconds", "max_minutes",
                     "max_hours"), ("epochs", "epoch"), ("steps", "iterations", "iters"))
# How many checkpoints or output files a run keeps: the ones a disk-full run lowers.
_DISK_PARAMETERS = (("keep_last", "keep_checkpoints", "max_checkpoints", "save_top_k", "num_checkpoints",
                     "save_total_limit"),)
# Names that contain those words but tune something else: lowering them frees nothing.
_NOT_A_SIZE = ("grad", "warmup", "lr", "rate", "decay", "patience", "seed", "val", "log", "print", "eval")


# A Python exception in a message ("src/x.py:3: ValueError: ..."): its class, then its text.
_EXCEPTION = re.compile(r"(?:^|[\s:])([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt))(?::|$)")


def failure_kind(message: str | None, default: str = "user code") -> str:
    """The kind of failure a platform's message describes; `default` when it names none. A
    message that reports a Python exception is read by its class (a user's ValueError saying
    "timeout" stays user code); otherwise by Kaggle's words."""
    match = _EXCEPTION.search(message or "")
    if match:
        return exception_kind(match.group(1), (message or "")[match.end():])
    text = (message or "").lower()
    for kind, words in (("out of memory", _OUT_OF_MEMORY), ("disk full", _DISK_FULL),
                        ("timeout", _TIMEOUT), ("kernel died", _DIED)):
        if any(word in text for word in words):
            return kind
    return default


def exception_kind(name: str, message: str = "") -> str:
    """The kind of failure an uncaught exception is: its class name and text, read narrowly (a
    user's own error whose text says "timeout" stays user code)."""
    short = name.rsplit(".", 1)[-1]
    if short in ("MemoryError", "OutOfMemoryError") or "out of memory" in message.lower():
        return "out of memory"  # Python's own, torch.cuda.OutOfMemoryError ("CUDA out of memory")
    if NO_SPACE_MESSAGE.lower() in message.lower() or "[errno 28]" in message.lower():
        return "disk full"
    return "user code"


def _parameter(parameters: dict, groups) -> str | None:
    """The recipe's parameter that the first group of words names: a positive number (0 mostly
    means "off" or "all", which lowering cannot change), not one that only contains the word
    (grad_clip is no clip length, warmup_steps no step count)."""
    names = [name for name, value in parameters.items()
             if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0
             and not any(re.search(rf"(^|_){word}(_|$)", name.lower()) for word in _NOT_A_SIZE)]
    for group in groups:
        for name in names:
            if any(re.search(rf"(^|_){re.escape(word)}", name.lower()) for word in group):
                return name
    return None


# What torch (and the speech example) say when code asks for a GPU where there is none.
_NO_GPU = ("torch not compiled with cuda enabled", "found no nvidia driver", "no cuda gpus are available",
           "cuda driver initialization failed", "torch.cuda.is_available() is false", "no cuda-capable device",
           "cuda is not available", "no gpu attached")


def no_gpu_hint(message: str | None, parameters: dict | None = None) -> str | None:
    """The hint for code that asked for a GPU where there is none (a smoke run, a local run, the
    emulator): run it on the CPU through the recipe's own device parameter, if it has one."""
    if not any(words in (message or "").lower() for words in _NO_GPU):
        return None
    names = [n for n in (parameters or {}) if n in ("device", "cuda", "gpu", "use_cuda", "accelerator")]
    how = (f"-p {names[0]}={'cpu' if names[0] in ('device', 'accelerator') else 'false'}" if names
           else "-p device=cpu (a parameter of the recipe that picks the device)")
    return (f"no GPU here: the code asked for CUDA; run it on the CPU with {how}, or for every run on a backend "
            "with [tool.kjob.<backend>.parameters] (local, kaggle for the emulator, ray)")


# Python's words for a file it could not open: FileNotFoundError's "[Errno 2] No such file or directory: 'x'".
_MISSING_FILE = re.compile(r"No such file or directory: '([^'\n]+)'")


def missing_file_hint(message: str | None, parameters: dict | None = None, root: Path | None = None) -> str | None:
    """The hint for a run that could not open a relative path which is a file of the project at
    `root`: a kernel runs in /kaggle/working and reads data under /kaggle/input, so the project's
    folder holding it must be a dataset source (naming the recipe's parameter that holds the path)."""
    match = _MISSING_FILE.search(message or "")
    if root is None or not match:
        return None
    path = match.group(1)
    if path.startswith("/kaggle/working/"):
        path = path[len("/kaggle/working/"):]
    if not path or path.startswith("/") or ".." in Path(path).parts or not (Path(root) / path).exists():
        return None
    held = [name for name, value in (parameters or {}).items()
            if isinstance(value, str) and value.strip("./") and Path(value) == Path(path)]
    folder = Path(path).parent.as_posix()
    point = (f"set {held[0]} = \"/kaggle/input/SLUG/{Path(path).name}\"" if held
             else f"read it as /kaggle/input/SLUG/{Path(path).name}")
    return (f"{path} is a file of this project, but a kernel runs in /kaggle/working and reads data under "
            f"/kaggle/input: map its folder as a dataset source (\"OWNER/SLUG\" = \"{folder}\" under "
            f"[tool.kjob.datasets], \"OWNER/SLUG\" in the recipe's dataset_sources) and {point} "
            "(docs/own-project.md, \"Data files next to the code\")")


def failure_hint(kind: str | None, parameters: dict | None = None, message: str | None = None,
                 root: Path | None = None) -> str | None:
    """One line on what to change after a failure of `kind`, naming a parameter of the run's
    recipe where one sets what ran out (None for kinds without advice). `message`, the failure's
    text, tells a GPU recipe run where there is none, or a project's data file read from the
    working folder (`root`: the project's folder)."""
    parameters = parameters or {}
    in_the_code = (kind in (None, "user code", "kernel died") and no_gpu_hint(message, parameters)
                   or kind in (None, "user code") and missing_file_hint(message, parameters, root))
    if in_the_code:
        return in_the_code
    memory = _parameter(parameters, _MEMORY_PARAMETERS)
    if kind == "out of memory":
        lower = f"lower {memory} (a parameter of this recipe)" if memory else "use smaller batches or inputs"
        return f"out of memory: {lower} or use a larger machine"
    if kind == "disk full":
        name = _parameter(parameters, _DISK_PARAMETERS)
        fewer = f"lower {name} (a parameter of this recipe) or keep" if name else "keep"
        return (f"disk full: /kaggle/working keeps at most {OUTPUT_LIMIT.value // 10**9} GB; {fewer} fewer or smaller "
                "outputs (the best checkpoint only), and put scratch files in /kaggle/temp")
    if kind == "timeout":
        name = _parameter(parameters, _TIME_PARAMETERS)
        lower = f"lower {name} (a parameter of this recipe)" if name else "do less per run"
        hours = ", ".join(f"{limit.value // 3600} h {acc.upper() if acc != 'none' else 'CPU'}"
                          for acc, limit in SESSION_LIMIT.items())
        return (f"time limit: {lower}, or save checkpoints and resume in the next run; raise session_timeout "
                f"up to Kaggle's limit ({hours})")
    if kind == "kernel died":
        lower = f"lower {memory} (a parameter of this recipe)" if memory else "lower the batch or input size"
        return (f"the kernel died without a Python error, most often from memory: look at the end of `kjob logs`, "
                f"and {lower}")
    return None


__all__ = ["failure_kind", "failure_hint", "no_gpu_hint", "missing_file_hint", "exception_kind", "OUT_OF_MEMORY_MESSAGE", "NO_SPACE_MESSAGE"]
