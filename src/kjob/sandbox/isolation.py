"""How a run is kept apart from the machine it runs on, as Kaggle keeps a notebook apart from yours.

Every run's kernel gets HOME inside its run folder and an allow-listed environment
(`allowed_environment`): the locale, PATH, thread limits, CUDA_VISIBLE_DEVICES and Kaggle's
own variables; nothing else (no GITHUB_PAT, DATABASE_URL, KAGGLE_KEY, AWS_*...). On top of
that, one of two levels, chosen once per process by `choose()`:

- "bubblewrap" (Linux with a working `bwrap`): the runner and its kernel see a private view
  of the filesystem. Its root is a tmpfs holding each top-level host folder read-only
  (symlinks recreated), /proc, a minimal /dev (plus the GPUs' device nodes), a private
  /tmp, and /home, /root and the workspace hidden behind empty tmpfs; then, read-only, what
  the runner needs to import (the interpreter's prefixes, the `kjob` package), the run
  folder itself read-write at its real path, and Kaggle's real paths: /kaggle/input
  (read-only, each mount under it), /kaggle/working and /kaggle/temp bound onto the run
  folder's working/ and temp/. Nothing is created on the host's /: /kaggle exists only in
  the view. The view has its own pid namespace (the notebook cannot read other processes'
  environments through /proc, and everything in it dies with it); the runner keeps its
  process group (no --new-session), so signals to the group reach it, and it dies with the
  process that started bwrap (--die-with-parent).
- "environment only" (macOS, Windows, containers without user namespaces, no bwrap): the
  kernel finds the run folder's input/, working/ and temp/ through KAGGLE_INPUT_DIR,
  KAGGLE_WORKING_DIR and KAGGLE_TEMP_DIR, and could still read the machine's files. The
  first run of a process that falls back gets a one-line `Isolation.note` saying so, and why
  (`environment_only_note`). On Linux the run's keeper adopts whatever the run detaches
  (setsid, a double fork) and ends it with the run (`kjob.sandbox.folder`); on macOS and Windows
  such processes may outlive the run, and the note says that too.

KJOB_SANDBOX chooses the level: `auto` (the default: bubblewrap where it works), `env`
(environment only, everywhere) or `bwrap` (bubblewrap, or a ConfigError saying why not).
"""

import glob
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from kjob.errors import ConfigError
from kjob.procs import can_adopt_orphans

BUBBLEWRAP = "bubblewrap"
ENVIRONMENT_ONLY = "environment only"
KAGGLE_ROOT = "/kaggle"

# What a kernel may inherit from the environment of whoever started the run.
_PASSED = frozenset({
    "PATH", "LANG", "LANGUAGE", "TZ", "TERM",
    "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
    "CUDA_VISIBLE_DEVICES", "PYTHONUNBUFFERED", "PYTHONHASHSEED",
})
# Without these a Windows process cannot even open a socket; none of them holds a secret.
_PASSED_ON_WINDOWS = frozenset({"SYSTEMROOT", "SYSTEMDRIVE", "WINDIR", "COMSPEC", "PATHEXT", "TEMP", "TMP",
                                "NUMBER_OF_PROCESSORS", "PROCESSOR_ARCHITECTURE"})


def allowed_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The variables of `environ` a notebook may see; the sandbox adds HOME and Kaggle's own."""
    passed = _PASSED | _PASSED_ON_WINDOWS if os.name == "nt" else _PASSED
    return {name: value for name, value in environ.items() if name.upper() in passed or name.startswith("LC_")}


def kaggle_variables(input_dir, working_dir, temp_dir, run_type: str) -> dict[str, str]:
    """Kaggle's layout variables, pointing at the real /kaggle paths or at their stand-ins."""
    return {
        "KAGGLE_INPUT_DIR": str(input_dir),
        "KAGGLE_WORKING_DIR": str(working_dir),
        "KAGGLE_TEMP_DIR": str(temp_dir),
        "KAGGLE_KERNEL_RUN_TYPE": run_type,
    }


@dataclass(frozen=True)
class Isolation:
    name: str  # BUBBLEWRAP | ENVIRONMENT_ONLY
    # One line for the user, set on the first fallback of a process (None afterwards, and for bubblewrap).
    note: str | None = None

    @property
    def kaggle_paths(self) -> bool:
        """Whether the run sees the real /kaggle paths."""
        return self.name == BUBBLEWRAP


_probe_result: list[str | None] = []  # [problem or None], once probed
_noted = False


def choose() -> Isolation:
    """The isolation a run started now gets (KJOB_SANDBOX, then whether bwrap works here)."""
    mode = _mode()
    if mode == "env":
        return _fallback("KJOB_SANDBOX=env")
    problem = bwrap_problem()
    if problem is None:
        return Isolation(BUBBLEWRAP)
    if mode != "auto":
        raise ConfigError(f"KJOB_SANDBOX={mode}, but bubblewrap cannot run here: {problem}")
    return _fallback(problem)


def _mode() -> str:
    mode = (os.environ.get("KJOB_SANDBOX") or "auto").strip().lower()
    if mode not in ("auto", "env", "bwrap", "bubblewrap"):
        raise ConfigError(f"KJOB_SANDBOX must be auto, env or bwrap, not {mode!r}")
    return mode


def environment_only_note(reason: str | None = None) -> str:
    """What a run isolated by environment only can do, and why it is (`reason`; by default
    KJOB_SANDBOX=env, or what stops bubblewrap here): one line for the user."""
    if reason is None:
        reason = "KJOB_SANDBOX=env" if _mode() == "env" else (bwrap_problem() or "bubblewrap was not used")
    note = (f"runs are isolated by environment only ({reason}): the notebook finds Kaggle's folders "
            f"through KAGGLE_*_DIR variables, not at /kaggle, and can read this machine's files")
    if not can_adopt_orphans():
        note += f"; processes it detaches (setsid, a double fork) may outlive the run on {sys.platform}"
    return note


def _fallback(reason: str) -> Isolation:
    global _noted
    note = None
    if not _noted:
        _noted = True
        note = environment_only_note(reason)
    return Isolation(ENVIRONMENT_ONLY, note)


def bwrap_problem() -> str | None:
    """Why bubblewrap cannot isolate runs here, or None when it can. Probed once per process."""
    if not _probe_result:
        _probe_result.append(_probe())
    return _probe_result[0]


def _probe() -> str | None:
    if not sys.platform.startswith("linux"):
        return f"bubblewrap needs Linux, this is {sys.platform}"
    if shutil.which("bwrap") is None:
        return "bwrap is not installed (Debian and Ubuntu: apt-get install bubblewrap)"
    true = shutil.which("true") or "/bin/true"
    command = [*_view(None, {}, (), ()), "--", os.path.realpath(true)]
    try:
        done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"bwrap does not start: {exc}"
    if done.returncode != 0:
        said = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        return f"bwrap fails here: {said}"
    return None


def runtime_paths() -> list[Path]:
    """What the runner needs to see in the view: the interpreter and the `kjob` package."""
    import kjob

    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
             os.path.dirname(os.path.realpath(sys.executable)), os.path.dirname(os.path.realpath(kjob.__file__))}
    return sorted(Path(os.path.realpath(p)) for p in paths if p and os.path.isdir(p))


def bwrap_command(command: list[str], folder: Path, mounts: Mapping[str, Path], hide: Iterable[Path] = ()) -> list[str]:
    """`command` wrapped by bwrap in the view described above, its cwd the run folder.

    `folder` has the run sandbox's layout (working/, temp/); `mounts` maps each path
    relative to /kaggle/input to a host folder (bound read-only); `hide` names host folders
    (the workspace) covered by an empty tmpfs before the runtime and the run folder are bound."""
    return [*_view(Path(os.path.realpath(folder)), mounts, hide, runtime_paths()), "--", *command]


# Kept out of the top-level binds: made anew (/proc, /dev, /tmp), hidden (/home, /root) or ours (/kaggle).
_OWN_TOP_LEVEL = ("proc", "dev", "tmp", "home", "root", "kaggle")
_HIDDEN = ("/tmp", "/home", "/root")


def _view(folder: Path | None, mounts: Mapping[str, Path], hide: Iterable[Path], keep: Iterable[Path]) -> list[str]:
    host: list[tuple[str, list[str]]] = []  # (where, bwrap arguments); deeper paths are mounted later
    for entry in sorted(os.scandir("/"), key=lambda e: e.name):
        if entry.name in _OWN_TOP_LEVEL:
            continue
        path = f"/{entry.name}"
        try:
            host.append((path, ["--symlink", os.readlink(path), path] if entry.is_symlink() else ["--ro-bind", path, path]))
        except OSError:
            continue
    host += [("/proc", ["--proc", "/proc"]), ("/dev", ["--dev", "/dev"])]
    host += [(dev, ["--dev-bind", dev, dev]) for dev in sorted(glob.glob("/dev/nvidia*") + glob.glob("/dev/dri"))]
    host += [(path, ["--tmpfs", path]) for path in _HIDDEN]
    for path in map(os.path.realpath, hide):
        if path != "/" and not any(path == h or path.startswith(h + "/") for h in _HIDDEN):
            host.append((path, ["--tmpfs", path]))
    host += [(str(path), ["--ro-bind", str(path), str(path)]) for path in keep]
    if folder is not None:
        host.append((str(folder), ["--bind", str(folder), str(folder)]))
    host.sort(key=lambda op: op[0].rstrip("/").count("/"))  # stable: same depth keeps its order

    args = ["bwrap", "--die-with-parent", "--unshare-pid"]
    for _, op in host:
        args += op
    args += ["--dir", KAGGLE_ROOT]
    if folder is not None:
        args += ["--bind", str(folder / "working"), f"{KAGGLE_ROOT}/working",
                 "--bind", str(folder / "temp"), f"{KAGGLE_ROOT}/temp",
                 "--tmpfs", f"{KAGGLE_ROOT}/input"]
        for relative, target in sorted(mounts.items()):
            args += ["--ro-bind", os.path.realpath(target), f"{KAGGLE_ROOT}/input/{relative}"]
        args += ["--remount-ro", f"{KAGGLE_ROOT}/input", "--chdir", str(folder)]
    return args
