"""Every file and folder name kjob reads or writes in a workspace, defined once."""

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class KernelPaths:
    """kernels/<name>/: the folder pushed to a backend."""

    folder: Path

    @property
    def metadata(self) -> Path:
        return self.folder / "kernel-metadata.json"

    @property
    def notebook(self) -> Path:
        return self.folder / f"{self.folder.name}.ipynb"

    @property
    def build_record(self) -> Path:
        return self.folder / "build.json"


@dataclass(frozen=True)
class LocalRunPaths:
    """.kjob/local/<kernel>/v<N>/: one run of the local backend (its Kaggle-like sandbox).

    Every run sandbox (`kjob.sandbox.folder`) has this layout: the emulator's sessions and smoke runs too."""

    folder: Path

    @property
    def notebook(self) -> Path:
        return self.folder / "notebook.ipynb"

    @property
    def script(self) -> Path:
        """What a script run executes (`kernel_type: script`), in place of the notebook."""
        return self.folder / "script.py"

    @property
    def executed_notebook(self) -> Path:
        return self.folder / "executed.ipynb"

    @property
    def spec(self) -> Path:
        """What the runner needs: time limit, run type, extra environment; and the push's token."""
        return self.folder / "run.json"

    @property
    def state(self) -> Path:
        """The run's progress, written by whoever starts it and then by the runner: status, pids."""
        return self.folder / "state.json"

    @property
    def final(self) -> Path:
        """The final status (complete, error, cancelled) and its failure: created once, never rewritten."""
        return self.folder / "final.json"

    @property
    def log(self) -> Path:
        """The cells' (or the script's) output as JSON lines {stream_name, time, data}, as Kaggle logs it."""
        return self.folder / "log.jsonl"

    @property
    def runner_pid(self) -> Path:
        """The pid and start time of the process that leads the run's process group (the keeper)."""
        return self.folder / "pid.json"

    @property
    def cancel_marker(self) -> Path:
        """Present once a cancel was asked for."""
        return self.folder / "cancel"

    @property
    def runner_log(self) -> Path:
        """The runner and kernel processes' own output (not the notebook's)."""
        return self.folder / "runner.log"

    @property
    def input_dir(self) -> Path:
        return self.folder / "input"

    @property
    def working_dir(self) -> Path:
        return self.folder / "working"

    @property
    def temp_dir(self) -> Path:
        return self.folder / "temp"

    @property
    def home_dir(self) -> Path:
        """The kernel's HOME: nothing of the user's own home (credentials, caches) is visible."""
        return self.folder / "home"

    @property
    def secrets(self) -> Path:
        """The values of the secrets the run may read (mode 0600), until its runner takes them
        (`kjob.sandbox.secrets`): gone before the kernel starts, and once the run has ended."""
        return self.folder / "secrets.json"

    @property
    def inputs_manifest(self) -> Path:
        """kjob-inputs.json: the run's inputs (`push --input`), mounted at /kaggle/input/kjob-inputs.json."""
        return self.folder / "kjob-inputs.json"


@dataclass(frozen=True)
class SmokePaths(LocalRunPaths):
    """.kjob/smoke/<name>/: the last smoke run of a kernel, kept for inspection (a run sandbox)."""

    @property
    def kernel_log(self) -> Path:
        return self.runner_log


@dataclass(frozen=True)
class RayRunPaths(LocalRunPaths):
    """<storage>/<kernel>/v<N>/: one Ray run, on storage that this machine and the cluster share.

    The client claims the folder (an atomic mkdir takes the version number) and writes `claim`;
    the job on the cluster lays it out as a run sandbox (every LocalRunPaths name) and runs it."""

    @property
    def claim(self) -> Path:
        """The client's record of the submission: the job's token, id and cluster (checked by both sides)."""
        return self.folder / "submitted.json"


def secret_store(environ=None) -> Path:
    """The user's secret store (`kjob secrets set`), outside every workspace: secrets.json in
    kjob's folder of the user's configuration (XDG_CONFIG_HOME, else ~/.config; %APPDATA% on
    Windows)."""
    import os

    env = os.environ if environ is None else environ
    if os.name == "nt" and env.get("APPDATA"):
        base = Path(env["APPDATA"])
    else:
        xdg = env.get("XDG_CONFIG_HOME", "")
        base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".config"  # the XDG spec ignores a relative one
    return base / "kjob" / "secrets.json"


def ray_runs(storage: Path, kernel: str) -> Path:
    return storage / kernel


def ray_run(storage: Path, kernel: str, version: int) -> RayRunPaths:
    return RayRunPaths(ray_runs(storage, kernel) / f"v{version}")


def ray_input(storage: Path, kernel: str, label: str) -> Path:
    """<storage>/.inputs/<kernel>/<version label>/: an input run's outputs where every node reads
    them (`push --input` on Ray), put there once (hard links where the storage allows)."""
    return storage / ".inputs" / kernel / label


@dataclass(frozen=True)
class RayPackagePaths:
    """What travels to the cluster in a Ray job's runtime_env working_dir (the job's cwd there)."""

    folder: Path

    @property
    def notebook(self) -> Path:
        return self.folder / "notebook.ipynb"

    @property
    def spec(self) -> Path:
        """Where the run goes on storage, its mounts and its RunSpec: read by `kjob.backends.ray_job`."""
        return self.folder / "kjob-job.json"

    @property
    def package(self) -> Path:
        """A copy of this kjob package: the cluster runs the same sandbox and runner as the client."""
        return self.folder / "kjob"


# What a training run conventionally leaves in its working folder and kjob reads back:
# the best checkpoint (evaluated by `eval-local --run`) and its summaries (shown by `kjob runs`).
BEST_CHECKPOINT = "best.pt"
RUN_METADATA = "metadata.json"
RUN_METRICS = "metrics.jsonl"


@dataclass(frozen=True)
class DownloadPaths:
    """downloads/<kernel>/<version label>/: what `kjob fetch` stores for one version."""

    folder: Path

    @property
    def status(self) -> Path:
        return self.folder / "status.json"

    @property
    def log(self) -> Path:
        return self.folder / "log.txt"

    @property
    def listing(self) -> Path:
        """The run's output files (names, sizes) as the backend lists them."""
        return self.folder / "outputs.json"

    @property
    def output_dir(self) -> Path:
        return self.folder / "output"

    @property
    def fetch_record(self) -> Path:
        """What was downloaded, with the remote stamps used to skip unchanged files."""
        return self.folder / ".fetched.json"

    @property
    def written_record(self) -> Path:
        """What kjob itself last wrote here (status, log, listing): a file that differs was edited."""
        return self.folder / ".written.json"

    @property
    def own_files(self) -> tuple[Path, ...]:
        """The files kjob writes beside output/ at every fetch."""
        return (self.status, self.log, self.listing)

    def output_file(self, name: str) -> Path:
        return self.output_dir / name

    @property
    def best_checkpoint(self) -> Path:
        return self.output_file(BEST_CHECKPOINT)

    @property
    def archive(self) -> Path:
        """The whole folder packed into one file beside it (`kjob runs archive`), e.g.
        downloads/<kernel>/local-v3.tar.gz; the folder itself is gone while it exists."""
        return self.folder.with_name(f"{self.folder.name}{ARCHIVE_SUFFIX}")


ARCHIVE_SUFFIX = ".tar.gz"


def version_label(backend: str, version: int, incarnation: int = 1) -> str:
    """`v3` for Kaggle versions; other backends number their own runs (`local-v3`, `ray-v3`).

    A kernel deleted and re-created under the same name numbers its versions from 1 again:
    its runs get `k2-v1`, `k3-v1`, ... so that they never land in the first kernel's folders."""
    base = f"v{version}" if backend == "kaggle" else f"{backend}-v{version}"
    return base if incarnation <= 1 else f"k{incarnation}-{base}"


@dataclass(frozen=True)
class BoardPaths:
    """.kjob/board/ (or `kjob board --out DIR`): the static board, one folder opened from disk."""

    folder: Path

    @property
    def index(self) -> Path:
        return self.folder / "index.html"

    @property
    def data(self) -> Path:
        """Every run's row, the campaigns and the columns, as a script (`<script src>` works from file://)."""
        return self.folder / "data.js"

    @property
    def runs(self) -> Path:
        return self.folder / "runs"

    def run_detail(self, run_id: int) -> Path:
        """One run's curves, log tail and outputs, loaded when the page shows that run."""
        return self.runs / f"{run_id}.js"

    def asset(self, name: str) -> Path:
        return self.folder / name


# The files of one evaluation's folder (eval/reports/<name>/), as the evaluator writes them
# (speechscore's SUMMARY_FILE and REPORT_FILE): the board links a run to its reports.
REPORT_SUMMARY = "summary.json"
REPORT_PAGE = "report.html"


@dataclass(frozen=True)
class WorkspacePaths:
    root: Path
    src_dir: str = "src"  # [tool.kjob] src_dir: "." when the modules sit at the root

    @property
    def builders(self) -> Path:
        return self.root / "builders"

    @property
    def src(self) -> Path:
        return self.root / self.src_dir

    @property
    def kernels(self) -> Path:
        return self.root / "kernels"

    @property
    def downloads(self) -> Path:
        return self.root / "downloads"

    @property
    def state(self) -> Path:
        """kjob's own state (ledger, smoke runs, local runs); git-ignored."""
        return self.root / ".kjob"

    @property
    def ledger(self) -> Path:
        return self.state / "ledger.sqlite3"

    @property
    def uploads(self) -> Path:
        """Dataset files uploaded but not yet in a dataset version: a re-run after a kill reuses them."""
        return self.state / "uploads.json"

    @property
    def published(self) -> Path:
        """Input runs published as Kaggle model versions (`push --input` on Kaggle): which holds which run."""
        return self.state / "published.json"

    @property
    def silent_ray_heads(self) -> Path:
        """When each Ray head that stopped answering was first found silent ({address: epoch}):
        a run on one silent for too long is lost (`kjob.backends.ray.LOST_AFTER_SECONDS`)."""
        return self.state / "silent-ray-heads.json"

    @property
    def notebooks(self) -> Path:
        """Every notebook kjob pushed, named by its SHA-256 (the ledger's notebook hash)."""
        return self.state / "notebooks"

    def pushed_notebook(self, sha256: str) -> Path:
        return self.notebooks / f"{sha256}.ipynb"

    def local_runs(self, kernel: str) -> Path:
        return self.state / "local" / kernel

    def local_run(self, kernel: str, version: int) -> LocalRunPaths:
        return LocalRunPaths(self.local_runs(kernel) / f"v{version}")

    def download(self, kernel: str, backend: str, version: int, incarnation: int = 1) -> DownloadPaths:
        return DownloadPaths(self.downloads / kernel / version_label(backend, version, incarnation))

    @property
    def reports(self) -> Path:
        """eval/reports/: one folder per evaluation (git-ignored)."""
        return self.root / "eval" / "reports"

    def report(self, name: str) -> Path:
        return self.reports / name

    @property
    def eval_cache(self) -> Path:
        """Noisy-side scores keyed by file content, shared by every evaluation."""
        return self.reports / ".cache"

    @property
    def board(self) -> BoardPaths:
        """.kjob/board/: `kjob board`'s default folder."""
        return BoardPaths(self.state / "board")

    def recipe(self, name: str) -> Path:
        return self.builders / f"{name}.toml"

    @property
    def campaigns(self) -> Path:
        """campaigns/: one file per campaign (`kjob sweep NAME`)."""
        return self.root / "campaigns"

    def campaign(self, name: str) -> Path:
        return self.campaigns / f"{name}.toml"

    def campaign_lock(self, name: str) -> Path:
        """Held by the one `kjob sweep NAME` running on this machine (its pid inside)."""
        return self.state / "campaigns" / f"{name}.lock"

    def kernel(self, name: str) -> KernelPaths:
        return KernelPaths(self.kernels / name)

    def smoke(self, name: str) -> SmokePaths:
        return SmokePaths(self.state / "smoke" / name)

    def relative(self, path: Path) -> str:
        """A path as shown to the user: relative to the workspace when inside it."""
        try:
            return path.resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return str(path)
