"""`kjob sweep`: campaigns of real runs, through the local backend and the Kaggle emulator.

Lanes (never more members in flight than allowed), resume by signature after an interrupted
and a killed sweep (nothing pushed twice, every output fetched), stages with top-k and gates,
an infrastructure failure retried and a failure in the user's code not, edits to the file,
and on the emulator two lane kernels with a third GPU session refused by Kaggle, waited for.
"""

import json
import os
import signal
import sqlite3
import sys
import threading
import time

import pytest

from campaign_project import Lab, accuracy
from kjob.cli import cli
from kjob.runs.ledger import SCHEMA_VERSION, Ledger

GRID = """
recipe = "lab"
lanes = 2

[parameters]
pause = {pause}

[[grid]]
lr = [0.1, 0.01, 0.001]
width = [8, 16]
"""


@pytest.fixture
def lab(tmp_path):
    return Lab(tmp_path)


def members(runs):
    """Each member's (stage, signature) -> its runs."""
    found = {}
    for run in runs:
        found.setdefault((run.stage, run.signature), []).append(run)
    return found


def most_in_flight(runs) -> int:
    """The most runs that were in flight at one moment (pushed, not yet ended)."""
    moments = sorted([(r.created_at, 1) for r in runs] + [(r.finished_at, -1) for r in runs])
    busy = most = 0
    for _, step in moments:
        busy += step
        most = max(most, busy)
    return most


def fetched(lab, run) -> bool:
    return (lab.root / f"downloads/{run.kernel}/local-v{run.version}/output/metadata.json").is_file()


def wait_for(predicate, seconds: float = 60, what: str = "it"):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"{what} never happened")


def test_a_grid_runs_two_at_a_time_fetches_each_and_ranks_them(lab):
    lab.write("campaigns/lr.toml", GRID.format(pause=0.0))
    result = lab.kjob("sweep", "lr")
    assert result.exit_code == 0, result.output
    runs = lab.runs("lr")
    assert len(runs) == 6 and len(members(runs)) == 6
    assert all(r.state.status == "complete" and r.fetched_at and fetched(lab, r) for r in runs)
    assert most_in_flight(runs) == 2
    assert {(r.parameters["lr"], r.parameters["width"]) for r in runs} == {
        (lr, w) for lr in (0.1, 0.01, 0.001) for w in (8, 16)}
    board = result.stdout.split("leaderboard by val_acc")[1].splitlines()[2:]
    assert [line.split()[1:3] for line in board[:2]] == [["main[lr=0.01", "width=16]"],
                                                         ["main[lr=0.001", "width=16]"]]
    assert board[0].split()[3] == str(accuracy(0.01, 16))
    assert "6 pushed, 6 fetched" in result.stderr
    ranked = lab.kjob("runs", "--campaign", "lr")  # ranked by the campaign's metric
    assert ranked.exit_code == 0, ranked.output
    assert ranked.stdout.splitlines()[0].split()[-2:] == ["VAL_ACC", "STAGE"]
    values = [float(line.split()[-2]) for line in ranked.stdout.splitlines()[1:]]
    assert values == sorted(values, reverse=True) and len(values) == 6
    status = lab.kjob("sweep", "lr", "--status")
    assert status.exit_code == 0 and status.stdout.count("complete") == 6
    again = lab.kjob("sweep", "lr")  # complete members are never run again
    assert again.exit_code == 0 and "0 pushed" in again.stderr and len(lab.runs("lr")) == 6


def test_an_interrupted_then_killed_sweep_resumes_pushing_nothing_twice(lab):
    lab.write("campaigns/lr.toml", GRID.format(pause=2.0))
    sweep = lab.start("sweep", "lr")
    wait_for(lambda: len(lab.runs("lr")) == 2, what="two pushes")
    second = lab.kjob("sweep", "lr")  # one sweep of a campaign at a time
    assert second.exit_code == 2 and f"another `kjob sweep lr` runs on this machine (pid {sweep.pid})" in second.stderr
    sweep.send_signal(signal.SIGINT)  # Ctrl-C: no more pushes, the two in flight are followed
    _, err = sweep.communicate(timeout=60)
    assert sweep.returncode == 130, err
    assert "stopping: no more pushes" in err
    runs = lab.runs("lr")
    assert len(runs) == 2 and all(r.state.status == "complete" and fetched(lab, r) for r in runs)
    sweep = lab.start("sweep", "lr")
    # both pushes answered (a kill between a push's row and its answer is the hostile tests' case)
    wait_for(lambda: len([r for r in lab.runs("lr") if r.version is not None]) == 4, what="two more pushes")
    sweep.send_signal(signal.SIGKILL)  # the sweep dies; its two runs go on
    sweep.communicate(timeout=30)
    in_flight = [r for r in lab.runs("lr") if not r.state.final]
    assert len(in_flight) == 2
    result = lab.kjob("sweep", "lr")  # re-attaches the two, then runs the last two
    assert result.exit_code == 0, result.output
    runs = lab.runs("lr")
    assert len(runs) == 6 and all(len(attempts) == 1 for attempts in members(runs).values())
    assert all(r.state.status == "complete" and fetched(lab, r) for r in runs)
    assert len(list((lab.root / ".kjob/local/lab").iterdir())) == 6
    assert most_in_flight(runs) == 2
    assert "2 pushed, 4 fetched" in result.stderr  # the killed sweep's two were fetched by this one


STAGED = """
recipe = "lab"
lanes = 2
retries = 1

[parameters]
epochs = 2

[[stage]]
name = "screen"
[[stage.grid]]
lr = [0.1, 0.01, 0.001]
[[stage.grid]]
lr = 0.5
fail = true

[[stage]]
name = "full"
top = 2
from = "screen"
parameters = { epochs = 6 }

[[stage]]
name = "distill"
parameters = { width = 4 }
[[stage.grid]]
lr = [0.01]
[stage.gate]
stage = "full"
member = ["lr=0.01"]
minus = ["lr=0.001"]
at_least = 0.03

[[stage]]
name = "extra"
after = ["full"]
parameters = { width = 32 }
[stage.gate]
stage = "full"
at_least = 0.9
"""


def interrupted_push(lab, campaign: str, stage: str, index: int):
    """The row a sweep killed between recording a push and the backend's answer leaves: a
    `submitting` row of a process that is gone, which nothing runs."""
    from kjob.campaigns.file import load_campaign
    from kjob.campaigns.plan import Planner, source_digest
    from kjob.workspace import find_workspace

    ws = find_workspace(lab.root)
    campaign_ = load_campaign(ws, campaign)
    member = Planner(ws, campaign_, source_digest(ws, campaign_.recipe)).plan([]).stages[0].members[index - 1].member
    gone = {"pid": 2 ** 22 + 7, "start": 1}  # no such process
    with Ledger(lab.root / ".kjob/ledger.sqlite3") as ledger:
        ledger.begin(kernel="lab", backend="local", notebook_sha256="0" * 64, parameters=member.parameters,
                     overrides=member.overrides, git_commit=None, git_dirty=None, token="lost-push", submitter=gone,
                     signature=member.signature, campaign=campaign, stage=stage)


def test_stages_pick_the_top_k_judge_gates_and_retry_only_infrastructure_failures(lab):
    lab.write("campaigns/kd.toml", STAGED)
    interrupted_push(lab, "kd", "screen", 2)
    plan = lab.kjob("sweep", "kd", "--dry-run")
    assert plan.exit_code == 0, plan.output
    assert "stage full: waiting, waits for screen" in plan.stdout
    assert "to run: 7 member(s)" in plan.stdout and " submitting " in plan.stdout  # the interrupted push
    result = lab.kjob("sweep", "kd")
    assert result.exit_code == 1, result.output  # a member failed in its own code
    runs = lab.runs("kd")
    by_stage = {}
    for run in runs:
        by_stage.setdefault(run.stage, []).append(run)
    screen = by_stage["screen"]
    lost = [r for r in screen if r.token == "lost-push"]
    assert lost[0].state.failure_kind == "infrastructure" and lost[0].state.raw_status == "never submitted"
    retried = [r for r in screen if r.signature == lost[0].signature and r.id != lost[0].id]
    assert len(retried) == 1 and retried[0].state.status == "complete"  # retried once, and it ran
    failed = [r for r in screen if r.parameters["fail"]]
    assert len(failed) == 1 and failed[0].state.failure_kind == "user code"  # not retried
    assert "failed: ValueError: asked to fail at src/lab/train.py" in result.stdout
    full = sorted(by_stage["full"], key=lambda r: -r.metrics["val_acc"])
    assert [(r.parameters["lr"], r.parameters["epochs"]) for r in full] == [(0.01, 6), (0.001, 6)]
    assert "distill" not in by_stage  # 0.9286 - 0.9196 < 0.03
    assert ("stage distill: gated off, gate val_acc of full's best where lr=0.01 - val_acc of full's best where "
            "lr=0.001 >= 0.03 does not hold: 0.9286 - 0.9196 = 0.009") in result.stdout
    assert [r.parameters["width"] for r in by_stage["extra"]] == [32]  # its gate held: 0.9286 >= 0.9
    assert "stage extra: open, gate val_acc of full's best >= 0.9 holds: 0.9286" in result.stdout
    again = lab.kjob("sweep", "kd", "--retry-failed")  # asked: the failed member runs once more
    assert again.exit_code == 1 and "1 pushed" in again.stderr
    assert len([r for r in lab.runs("kd") if r.parameters["fail"]]) == 2
    assert "0 pushed" in lab.kjob("sweep", "kd").stderr


def test_editing_the_campaign_adds_and_drops_members_leaving_finished_ones(lab):
    lab.write("campaigns/lr.toml", 'recipe = "lab"\n[[grid]]\nlr = [0.1, 0.01]\n')
    assert lab.kjob("sweep", "lr").exit_code == 0
    first = {r.parameters["lr"]: r for r in lab.runs("lr")}
    folder = lab.root / f"downloads/lab/local-v{first[0.1].version}"
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    lab.write("campaigns/lr.toml", 'recipe = "lab"\n[[grid]]\nlr = [0.01, 0.02]\n[[grid]]\nlr = 0.01\nwidth = 4\n')
    plan = lab.kjob("sweep", "lr", "--dry-run")
    assert "to run: 2 member(s)" in plan.stdout and "1 run(s) of this campaign are no member now" in plan.stdout
    result = lab.kjob("sweep", "lr")
    assert result.exit_code == 0, result.output
    assert "2 pushed" in result.stderr
    after = {(r.parameters["lr"], r.parameters["width"]): r for r in lab.runs("lr")}
    assert set(after) == {(0.1, 8), (0.01, 8), (0.02, 8), (0.01, 4)}
    assert after[(0.01, 8)].id == first[0.01].id and after[(0.1, 8)].id == first[0.1].id  # untouched
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before
    assert "main[lr=0.1]" not in result.stdout and "main[lr=0.01]" in result.stdout  # no member now


V3_LEDGER = """
CREATE TABLE runs (id INTEGER PRIMARY KEY, kernel TEXT NOT NULL, backend TEXT NOT NULL, version INTEGER,
  status TEXT NOT NULL, raw_status TEXT, failure_kind TEXT, failure_message TEXT, failure_location TEXT,
  notebook_sha256 TEXT NOT NULL, parameters TEXT NOT NULL, overrides TEXT NOT NULL DEFAULT '{}', git_commit TEXT,
  git_dirty INTEGER, created_at REAL NOT NULL, started_at REAL, finished_at REAL, handle TEXT NOT NULL DEFAULT '{}',
  metrics TEXT NOT NULL DEFAULT '{}', token TEXT, identity TEXT, incarnation INTEGER NOT NULL DEFAULT 1,
  gone_at REAL, submitter TEXT NOT NULL DEFAULT '{}', message TEXT, note TEXT, tags TEXT NOT NULL DEFAULT '[]',
  archived_at REAL, metric_spec TEXT NOT NULL DEFAULT '{}');
CREATE UNIQUE INDEX runs_identity ON runs (kernel, backend, incarnation, version);
INSERT INTO runs (kernel, backend, version, status, notebook_sha256, parameters, overrides, created_at, finished_at,
  metrics, message, tags, note)
  VALUES ('lab', 'local', 3, 'complete', 'ab', '{"lr": 0.1}', '{"lr": 0.1}', 1.0, 5.0,
          '{"metadata": {"val_acc": 0.8}}', 'baseline', '["keep"]', 'fine');
PRAGMA user_version=3;
"""


def test_a_schema_3_ledger_is_upgraded_keeping_every_row(tmp_path):
    path = tmp_path / "ledger.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(V3_LEDGER)
    db.close()
    with Ledger(path) as ledger:
        assert SCHEMA_VERSION == 5 and ledger._db.execute("PRAGMA user_version").fetchone()[0] == 5
        [run] = ledger.runs()
        assert (run.kernel, run.version, run.parameters, run.metrics, run.notes.message, run.notes.tags, run.note) == (
            "lab", 3, {"lr": 0.1}, {"val_acc": 0.8}, "baseline", ("keep",), "fine")
        assert (run.campaign, run.stage, run.signature, run.fetched_at, run.inputs) == (None, None, None, None, ())
        run = ledger.mark_fetched(run)
        assert run.fetched_at is not None and ledger.runs(campaign="x") == []
    with Ledger(path) as ledger:
        assert len(ledger.runs()) == 1 and ledger.runs()[0].fetched_at is not None


# -- Kaggle: lane kernels, and a session Kaggle refuses -------------------------------------

GPU_CAMPAIGN = """
recipe = "tinygpu"
backend = "kaggle"

[[grid]]
label = ["a", "b", "c"]
"""


def other_machine(kaggle, tmp_path):
    """A second workspace on the same Kaggle account, with a ledger of its own."""
    import shutil

    other = tmp_path / "other-machine"
    other.mkdir()
    for name in ("pyproject.toml", "builders", "src", "data"):
        source = kaggle.ws.root / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, other / name)
    return other


def test_kaggle_lanes_have_kernels_of_their_own_and_a_refused_session_is_waited_for(kaggle, tmp_path):
    kaggle.ws.write("campaigns/gpu.toml", GPU_CAMPAIGN)
    kaggle.emulator.faults.set(hold=True)  # sessions stay queued until released
    other = other_machine(kaggle, tmp_path)
    pushed = kaggle.ws.runner.invoke(cli, ["push", "tinygpu", "--backend", "kaggle"],
                                     env={"KJOB_WORKSPACE": str(other)})
    assert pushed.exit_code == 0, pushed.output  # one GPU session this ledger knows nothing of
    plan = kaggle.kjob("sweep", "gpu", "--dry-run")
    assert plan.exit_code == 0, plan.output
    assert "lanes: 2 (Kaggle's 2 GPU sessions)" in plan.stdout
    assert "lane kernel alice/tiny-gpu-kernel-gpu-1 ('Tiny Gpu Kernel gpu 1', ledger name tinygpu@gpu-1)" in plan.stdout
    assert "GPU hours: at most 3.00 (session timeouts)" in plan.stdout
    assert not kaggle.emulator.requests("SaveKernel")[1:]  # the dry run pushed nothing

    def lane_pushes():
        return [b for b in kaggle.emulator.requests("SaveKernel") if "tiny-gpu-kernel-gpu" in b.get("slug", "")]

    def release_after_the_refusal():  # rejected (the fault), accepted, refused (no session left)
        wait_for(lambda: len(lane_pushes()) >= 3, what="a refused push")
        time.sleep(0.3)
        kaggle.emulator.faults.set(hold=False)
        kaggle.emulator.store.mark_released()

    releaser = threading.Thread(target=release_after_the_refusal, daemon=True)
    releaser.start()
    kaggle.emulator.faults.set(reject_push="Internal error, please try again")  # infrastructure: retried
    result = kaggle.kjob("sweep", "gpu")
    releaser.join(timeout=30)
    assert result.exit_code == 0, result.output
    assert "push failed" in result.stderr and "waits for a session" in result.stderr
    assert "Maximum batch GPU session count of 2 reached" in result.stderr
    with Ledger(kaggle.ws.root / ".kjob/ledger.sqlite3") as ledger:
        runs = sorted(ledger.runs(campaign="gpu"), key=lambda r: r.id)
    assert len(runs) == 3 and sorted(r.parameters["label"] for r in runs) == ["a", "b", "c"]  # each pushed once
    assert all(r.state.status == "complete" and r.fetched_at for r in runs)
    assert {r.kernel for r in runs} <= {"tinygpu@gpu-1", "tinygpu@gpu-2"}
    for run in runs:
        slug = run.handle["slug"].split("/")[1]
        assert slug == f"tiny-gpu-kernel-gpu-{run.kernel[-1]}"
        out = kaggle.ws.root / f"downloads/{run.kernel}/v{run.version}/output/result.json"
        assert json.loads(out.read_text())["label"] == run.parameters["label"]
    for kernel in {r.kernel for r in runs}:  # never two unfetched versions of one kernel
        versions = [r for r in runs if r.kernel == kernel]
        for earlier, later in zip(versions, versions[1:]):
            assert earlier.fetched_at <= later.created_at
    assert most_in_flight(runs) <= 2
    ranked = kaggle.kjob("runs", "--campaign", "gpu")
    assert ranked.exit_code == 0 and ranked.stdout.count("tinygpu@gpu-") == 3
    status = kaggle.kjob("status", runs[0].kernel, "--version", str(runs[0].version))
    assert status.exit_code == 0, status.output
    assert os.environ["KJOB_KAGGLE_POLL"] == "0.2"


def test_lane_kernels_are_named_so_that_id_and_title_agree_and_lanes_follow_the_resources(lab):
    from types import SimpleNamespace

    from kjob.backends import get_backend
    from kjob.backends.ray import fitting
    from kjob.campaigns.lanes import backend_lanes
    from kjob.build.kernel_metadata import LaneKernel, lane_kernel
    from kjob.runs.record import parse_lane, recipe_name
    from kjob.build.kernel_metadata import slugify
    from kjob.runs.record import parse_run_spec
    from kjob.workspace import find_workspace

    recipe = SimpleNamespace(name="r3-dpt", title="R3 Dpt Speech", accelerator="none")
    lane = lane_kernel(recipe, "kd_phase2", 2)
    assert lane == LaneKernel("r3-dpt@kd_phase2-2", "r3-dpt-speech-kd-phase2-2", "R3 Dpt Speech kd_phase2 2")
    assert slugify(lane.title) == lane.slug  # Kaggle makes a new kernel at its title's slug
    assert parse_lane(lane.kernel) == ("r3-dpt", "kd_phase2", 2) and recipe_name(lane.kernel) == "r3-dpt"
    assert parse_lane("r3-dpt") is None and recipe_name("r3-dpt") == "r3-dpt"
    assert parse_run_spec("r3-dpt@kd-1:v3") == ("r3-dpt@kd-1", 3)
    # Ray: the runs of a request that the nodes' resources hold
    assert fitting([{"CPU": 8, "GPU": 2}, {"CPU": 4}], {"CPU": 2, "GPU": 1}) == 2
    assert fitting([{"CPU": 8}, {"CPU": 3}], {"CPU": 2}) == 5 and fitting(None, {"CPU": 1}) is None
    local = get_backend(find_workspace(lab.root), "local")
    assert backend_lanes(local, recipe, "c", None).limit == max(1, (os.cpu_count() or 1) // 2)
    assert backend_lanes(local, recipe, "c", 3).limit == 3


def test_a_kaggle_sweep_stops_pushing_before_the_gpu_quota_runs_out(kaggle):
    kaggle.ws.write("campaigns/gpu.toml", GPU_CAMPAIGN)
    kaggle.emulator.faults.set(gpu_used_hours=29.5)  # 0.5 h left, less than a member's 1 h session timeout
    result = kaggle.kjob("sweep", "gpu")
    assert result.exit_code == 6, result.output  # members left
    assert "the GPU quota left (0.5 h, 0.0 h of it held by the runs in flight) is less than a member's 1.0 h" \
        in result.stderr
    assert result.stdout.count("pending") == 3 and not kaggle.emulator.requests("SaveKernel")


def test_ray_lanes_are_the_runs_the_clusters_resources_hold(lab, monkeypatch):
    pytest.importorskip("ray")
    from ray_head import RayHead

    head = RayHead(cpus=2).start()  # each run asks for 1 CPU: two lanes
    try:
        for name, value in head.env.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("RAY_ADDRESS", raising=False)
        (lab.root / "storage").mkdir()
        ray = f'[tool.kjob.ray]\naddress = "{head.address}"\nstorage = "storage"\npython = "{sys.executable}"\n'
        lab.write("pyproject.toml", (lab.root / "pyproject.toml").read_text() + "\n" + ray)
        lab.write("campaigns/r.toml", 'recipe = "lab"\nbackend = "ray"\n[[grid]]\nlr = [0.1, 0.01, 0.001]\n')
        result = lab.kjob("sweep", "r")
        assert result.exit_code == 0, result.output
        assert "lanes: 2 (the cluster holds 2 such runs)" in result.stderr
        runs = lab.runs("r")
        assert len(runs) == 3 and all(r.state.status == "complete" and r.fetched_at for r in runs)
        assert most_in_flight(runs) == 2
    finally:
        head.close()
