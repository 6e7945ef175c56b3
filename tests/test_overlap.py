"""Nothing mis-filed when pushes overlap: concurrent pushes of one kernel, and a push killed at
each of its steps followed by another push. Every run is filed once, under its own version,
with its own outputs; no local or Ray run is ever read as a re-created kernel.

The pushes are real `kjob` processes (not threads of the test), as a user's terminals are.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kjob.runs.ledger import Ledger
from kjob.paths import version_label

KJOB = [sys.executable, "-c", "from kjob.cli import main; main()"]


def kjob_process(root: Path, *args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([*KJOB, *args], cwd=root, env={**os.environ, **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def push_all(root: Path, labels: list[str], backend: str) -> list[subprocess.CompletedProcess]:
    """One `kjob push` per label, all started before any is waited for."""
    started = [kjob_process(root, "push", "tiny", "--backend", backend, "-p", f"label={label}") for label in labels]
    done = []
    for process in started:
        out, err = process.communicate(timeout=180)
        done.append(subprocess.CompletedProcess(process.args, process.returncode, out, err))
    return done


def ledger_rows(root: Path):
    with Ledger(root / ".kjob/ledger.sqlite3") as ledger:
        return sorted(ledger.runs(), key=lambda r: r.id)


def settle(ws, backend: str, seconds: float = 120, fetch: bool = True) -> list:
    """Every run of `tiny` ended (asked through `kjob status`, which also reconciles), then fetched
    (not on Kaggle, which serves the latest version's outputs only)."""
    deadline = time.monotonic() + seconds
    while True:
        ws.kjob("status")  # the table reconciles interrupted pushes
        rows = ledger_rows(ws.root)
        pending = [r for r in rows if not r.state.final]
        for run in pending:
            if run.version is not None:
                ws.kjob("status", "tiny", "--version", str(run.version), "--backend", backend)
        if not pending:
            break
        assert time.monotonic() < deadline, [(r.version, r.state.status) for r in pending]
        time.sleep(0.5)
    for run in rows if fetch else ():
        if run.version is not None and run.state.status == "complete":
            fetched = ws.kjob("fetch", "tiny", "--version", str(run.version), "--backend", backend, "--output")
            assert fetched.exit_code == 0, fetched.output
    return ledger_rows(ws.root)


def assert_each_run_filed_once(ws, rows, backend: str) -> None:
    versions = [r.version for r in rows if r.version is not None]
    assert len(versions) == len(set(versions)), versions
    for run in rows:
        assert (run.incarnation, run.gone) == (1, False), (run.ref, run.incarnation, run.gone)
        if run.state.status == "complete":
            folder = ws.root / "downloads/tiny" / version_label(backend, run.version)
            result = json.loads((folder / "output/result.json").read_text())
            assert result["label"] == run.parameters["label"], (run.ref, result, run.parameters)
    stray = sorted(p.name for p in (ws.root / "downloads/tiny").iterdir() if p.name[:1] == "k" and p.name[1:2].isdigit())
    assert not stray, stray  # nothing fetched as "kernel #2"


def test_eight_concurrent_local_pushes_of_one_kernel_each_get_their_own_version(tiny):
    labels = [f"p{i}" for i in range(8)]
    pushes = push_all(tiny.root, labels, "local")
    assert [p.returncode for p in pushes] == [0] * 8, [p.stderr for p in pushes]
    answered = sorted(p.stdout.splitlines()[0] for p in pushes)
    assert answered == sorted(f"tiny v{n} (local)" for n in range(1, 9))
    rows = settle(tiny, "local")
    assert sorted(r.version for r in rows) == list(range(1, 9))
    assert sorted(r.parameters["label"] for r in rows) == labels
    assert all(r.state.status == "complete" for r in rows)
    assert_each_run_filed_once(tiny, rows, "local")
    table = tiny.kjob("status")
    assert "kernel #" not in table.stdout and "gone" not in table.stdout, table.stdout


KILL_POINTS = ["push:begun", "local:claimed", "local:laid-out", "push:submitted"]


@pytest.mark.parametrize("point", KILL_POINTS)
def test_a_push_killed_at_each_step_then_another_push_files_every_run_once(tiny, point):
    killed = kjob_process(tiny.root, "push", "tiny", "-p", "label=killed", env={"KJOB_KILL_AT": point})
    killed.communicate(timeout=60)
    assert killed.returncode == -9, (point, killed.returncode)
    after = push_all(tiny.root, ["after-1", "after-2"], "local")
    assert [p.returncode for p in after] == [0, 0], [p.stderr for p in after]
    rows = settle(tiny, "local")
    assert_each_run_filed_once(tiny, rows, "local")
    by_label = {r.parameters["label"]: r for r in rows}
    assert by_label["after-1"].state.status == by_label["after-2"].state.status == "complete"
    victim = by_label["killed"]
    if point == "push:submitted":  # the run had started: reconciled by its token, filed as its own version
        assert (victim.state.status, victim.version) == ("complete", 1), victim
    else:  # nothing ran: the row says so, and holds no version another run could collide with
        assert victim.state.status == "error" and victim.state.failure_kind == "infrastructure", victim
        assert victim.state.failure_message.startswith(("the push was interrupted", "the run's sandbox did not start")), victim


def test_a_late_reconciled_push_after_newer_versions_is_not_a_new_kernel(tiny):
    """The red team's sequence: the killed push's run (v1) is reconciled only after v2 and v3 were
    recorded: v1 stays v1 of the same kernel, and v2 and v3 are not marked gone."""
    killed = kjob_process(tiny.root, "push", "tiny", "-p", "label=early", env={"KJOB_KILL_AT": "push:submitted"})
    killed.communicate(timeout=60)
    for label in ("second", "third"):
        pushed = tiny.kjob("push", "tiny", "-p", f"label={label}", "--wait")
        assert pushed.exit_code == 0, pushed.output
        assert "kernel #" not in pushed.stdout
    rows = settle(tiny, "local")
    assert sorted((r.version, r.parameters["label"]) for r in rows) == [(1, "early"), (2, "second"), (3, "third")]
    assert_each_run_filed_once(tiny, rows, "local")


def test_four_concurrent_kaggle_pushes_through_the_emulator_are_one_kernel(kaggle):
    """Kaggle numbers the versions; they all carry one kernel id, so none is "kernel #2"."""
    pushes = push_all(kaggle.ws.root, [f"k{i}" for i in range(4)], "kaggle")
    assert [p.returncode for p in pushes] == [0] * 4, [p.stderr for p in pushes]
    rows = settle(kaggle.ws, "kaggle", fetch=False)
    assert sorted(r.version for r in rows) == [1, 2, 3, 4]
    assert len({r.identity for r in rows}) == 1
    assert all((r.incarnation, r.gone) == (1, False) for r in rows), [(r.ref, r.gone) for r in rows]


# -- Ray: eight pushes from two workspaces that share the cluster's storage --------------------------


@pytest.fixture(scope="module")
def head():
    pytest.importorskip("ray.job_submission", reason="ray is not installed (pip install 'kjob[ray]')")
    from ray_head import RayHead

    head = RayHead(cpus=2).start()
    yield head
    head.close()


def ray_workspace(tiny, root: Path, address: str, storage: Path):
    import shutil

    if root != tiny.root:
        shutil.copytree(tiny.root, root, ignore=shutil.ignore_patterns(".kjob", "kernels", "downloads", "storage"))
    pyproject = root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + f"""
[tool.kjob.ray]
address = "{address}"
storage = "{storage}"
python = "{sys.executable}"

[tool.kjob.ray.datasets]
"someone/some-data" = "{tiny.root / 'data/some'}"
""")
    return type(tiny)(root, tiny.runner)


def test_eight_ray_pushes_from_two_workspaces_sharing_storage_are_each_filed_once(tiny, head, tmp_path, monkeypatch):
    for name, value in head.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    storage = tmp_path / "shared-storage"
    storage.mkdir()
    second = ray_workspace(tiny, tmp_path / "second", head.address, storage)
    first = ray_workspace(tiny, tiny.root, head.address, storage)
    started = [(ws, kjob_process(ws.root, "push", "tiny", "--backend", "ray", "-p", f"label={ws.root.name}-{i}"))
               for i in range(4) for ws in (first, second)]
    for ws, process in started:
        out, err = process.communicate(timeout=180)
        assert process.returncode == 0, err
    versions = []
    for ws in (first, second):
        monkeypatch.chdir(ws.root)
        rows = settle(ws, "ray", seconds=240)
        assert len(rows) == 4 and all(r.state.status == "complete" for r in rows), [(r.ref, r.state) for r in rows]
        assert_each_run_filed_once(ws, rows, "ray")
        versions += [r.version for r in rows]
    assert sorted(versions) == list(range(1, 9))  # claimed on the shared storage: never one number twice


def test_a_push_that_never_reached_the_backend_does_not_hide_the_latest_run_from_cancel_and_fetch(tiny):
    """An interrupted push's row (no version, its process gone) becomes an infrastructure error;
    `cancel` and `fetch` without --version then mean the latest run that exists."""
    assert tiny.kjob("push", "tiny", "--wait").exit_code == 0
    with Ledger(tiny.root / ".kjob/ledger.sqlite3") as ledger:
        ledger.begin(kernel="tiny", backend="local", notebook_sha256="0" * 64, parameters={}, git_commit=None,
                     git_dirty=None, token="never-sent", submitter={"pid": 2 ** 22 + 7, "start": 1})
    tiny.kjob("status")  # reconciles it: nothing was ever sent
    cancelled = tiny.kjob("cancel", "tiny", "--delete-kernel")
    assert cancelled.exit_code == 0, cancelled.output
    assert "tiny v1 (local) already ended" in cancelled.stdout
    fetched = tiny.kjob("fetch", "tiny")
    assert fetched.exit_code == 0 and "local-v1" in fetched.stdout, fetched.output
