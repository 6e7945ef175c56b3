"""How Kaggle says a run went wrong, read right: a 403 for one's own deleted kernel means gone, and
a session's failure message becomes its failure kind with a hint (out of memory, disk full, the
time limit, a dead kernel). kjob CLI -> kagglesdk -> HTTP -> the emulator, whose sessions can be
given memory and disk limits, so these failures happen for real.
"""

import json
import secrets

import pytest
from kaggle_fixtures import start_kaggle

from kjob.runs.ledger import Ledger


def ledger_runs(ws):
    with Ledger(ws.root / ".kjob/ledger.sqlite3") as ledger:
        return ledger.runs()


def one_error_line(result) -> str:
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def delete_kernel(kaggle, slug: str = "tiny-kernel") -> None:
    kaggle.emulator.store.handle("DeleteKernel", {"userName": "alice", "kernelSlug": slug}, "alice")


# -- a 403 on one's own kernel means gone -----------------------------------------------

@pytest.fixture
def kaggle403(tiny, tmp_path, monkeypatch):
    """An emulator answering 403 for a kernel that does not exist (deleted), as Kaggle does."""
    kaggle = start_kaggle(tiny, tmp_path, monkeypatch, missing_kernel_status=403)
    kaggle.emulator.faults.set(hold=True)
    yield kaggle
    kaggle.emulator.stop()


def test_a_403_for_ones_own_deleted_kernel_marks_the_run_gone_as_a_404_does(kaggle403):
    kaggle = kaggle403
    assert kaggle.push("tiny").exit_code == 0
    delete_kernel(kaggle)
    status = kaggle.kjob("status", "tiny")
    assert status.exit_code == 4, status.output  # gone, as on a 404: its session stopped with it
    assert "tiny v1: cancelled (kernel gone)" in status.stdout
    assert "refused access" not in status.output
    (run,) = ledger_runs(kaggle.ws)
    assert run.gone and run.state.status == "cancelled"
    assert "answers 403 for a deleted kernel of this account" in run.state.failure_message
    fetched = kaggle.kjob("fetch", "tiny", "--output")
    assert fetched.exit_code == 4, fetched.output  # gone, not refused: nothing to fetch, nothing mis-filed
    assert "tiny v1 no longer exists (Kaggle answers 403" in one_error_line(fetched)
    assert not (kaggle.ws.root / "downloads/tiny/v1/output").exists()


def test_a_403_while_a_finished_runs_outputs_are_fetched_is_gone_exit_4(kaggle403):
    kaggle = kaggle403
    kaggle.emulator.faults.set(hold=False)
    assert kaggle.push("tiny", "--wait").exit_code == 0
    delete_kernel(kaggle)
    before = kaggle.ws.snapshot("downloads/tiny")
    logs = kaggle.kjob("logs", "tiny")
    assert logs.exit_code == 4, logs.output
    assert "the Kaggle kernel alice/tiny-kernel of tiny v1 no longer exists" in one_error_line(logs)
    fetched = kaggle.kjob("fetch", "tiny", "--output")
    assert fetched.exit_code == 4, fetched.output
    assert kaggle.ws.snapshot("downloads/tiny") == before  # nothing of another kernel filed under v1


def test_a_403_for_another_accounts_kernel_stays_an_access_error(kaggle403, monkeypatch):
    kaggle = kaggle403
    assert kaggle.push("tiny").exit_code == 0
    carol = secrets.token_hex(16)
    kaggle.emulator._server.auth.users["carol"] = carol  # alice's kernel is private: carol gets 403
    (kaggle.config_dir / "kaggle.json").write_text(json.dumps({"username": "carol", "key": carol}))
    status = kaggle.kjob("status", "tiny")
    assert status.exit_code == 7, status.output
    assert "Kaggle refused access to kernel alice/tiny-kernel (HTTP 403" in one_error_line(status)
    (run,) = ledger_runs(kaggle.ws)
    assert not run.gone and run.state.status == "queued"


def test_a_token_is_asked_who_it_signs_in_as_before_a_403_means_gone(kaggle403, monkeypatch):
    kaggle = kaggle403
    assert kaggle.push("tiny").exit_code == 0
    token = "KGAT_" + secrets.token_hex(16)
    kaggle.emulator._server.auth.tokens = {token: "alice"}
    monkeypatch.setenv("KAGGLE_API_TOKEN", token)
    delete_kernel(kaggle)
    status = kaggle.kjob("status", "tiny")
    assert status.exit_code == 4, status.output
    assert "cancelled (kernel gone)" in status.stdout
    assert token not in status.output


# -- failure kinds, from Kaggle's wording, with a hint ----------------------------------

HUNGRY_RECIPE = """
title = "Hungry Kernel"
slug = "hungry-kernel"
modules = ["pkg/hungry.py"]
entry = "main"
accelerator = "none"

[parameters]
batch_size = 64
megabytes = 1
written = 0
die = false
"""

HUNGRY_JOB = '''
"""Takes memory by the batch, writes outputs by the megabyte, or dies."""
import os
import signal
import time


def main(batch_size, megabytes, written, die):
    if die:
        os.kill(os.getpid(), signal.SIGKILL)
    for i in range(written):
        with open(f"part-{i}.bin", "wb") as f:
            f.write(b"x" * 10**6)
        time.sleep(0.05)
    block = bytearray(batch_size * megabytes * 10**6)
    print("took", len(block), "bytes")
'''


@pytest.fixture
def machine(tiny, tmp_path, monkeypatch):
    """An emulator whose sessions get 1.5 GB of memory and 5 MB of working folder."""
    tiny.write("builders/hungry.toml", HUNGRY_RECIPE)
    tiny.write("src/pkg/hungry.py", HUNGRY_JOB)
    kaggle = start_kaggle(tiny, tmp_path, monkeypatch)
    kaggle.emulator.faults.set(session_memory=1_500_000_000, session_disk=5_000_000)
    yield kaggle
    kaggle.emulator.stop()


def test_a_session_out_of_memory_is_filed_as_such_with_a_hint_naming_batch_size(machine):
    kaggle = machine
    ran = kaggle.push("hungry", "-p", "megabytes=50", "--wait")  # 64 x 50 MB: past the 1.5 GB machine
    assert ran.exit_code == 1, ran.output
    assert ("hungry v1: error: Your notebook tried to allocate more memory than is available. It has restarted. "
            "(out of memory)") in ran.stdout
    assert "hint: out of memory: lower batch_size (a parameter of this recipe) or use a larger machine" in ran.stdout
    status = kaggle.kjob("status", "hungry")
    assert status.exit_code == 1
    assert "hint: out of memory: lower batch_size (a parameter of this recipe)" in status.stdout
    (run,) = ledger_runs(kaggle.ws)
    assert run.state.failure_kind == "out of memory"
    assert "MemoryError" in (kaggle.ws.root / "downloads/hungry/v1/log.txt").read_text()
    fits = kaggle.push("hungry", "-p", "batch_size=2", "--wait")  # the hint's fix works
    assert fits.exit_code == 0, fits.output


def test_a_working_folder_past_the_machines_disk_is_disk_full_with_a_hint(machine):
    kaggle = machine
    ran = kaggle.push("hungry", "-p", "written=40", "--wait")  # 40 MB into a 5 MB working folder
    assert ran.exit_code == 1, ran.output
    assert "hungry v1: error: No space left on device: /kaggle/working passed its limit of 5,000,000 bytes" in ran.stdout
    assert "(disk full)" in ran.stdout
    assert "hint: disk full: /kaggle/working keeps at most 20 GB; keep fewer or smaller outputs" in ran.stdout
    (run,) = ledger_runs(kaggle.ws)
    assert run.state.failure_kind == "disk full"


def test_the_session_time_limit_and_a_dead_kernel_have_their_kinds_and_hints(machine):
    kaggle = machine
    late = kaggle.push("tiny", "-p", "sleep=30", "--timeout", "3", "--wait")
    assert late.exit_code == 1, late.output
    assert "time limit of 3 s exceeded" in late.stdout and "(timeout)" in late.stdout
    assert "hint: time limit: lower steps (a parameter of this recipe), or save checkpoints" in late.stdout
    dead = kaggle.push("hungry", "-p", "die=true", "--wait")
    assert dead.exit_code == 1, dead.output
    assert "(kernel died)" in dead.stdout
    assert "hint: the kernel died without a Python error, most often from memory" in dead.stdout


@pytest.mark.parametrize("message, kind", [
    ("Your notebook tried to allocate more memory than is available. It has restarted.", "out of memory"),
    ("OSError: [Errno 28] No space left on device: '/kaggle/working/model.pt'", "disk full"),
    ("Your notebook was stopped because it exceeded the maximum execution time", "timeout"),
    ("The kernel died unexpectedly", "kernel died"),
    ("src/pkg/job.py:11: ValueError: a timeout of -1 is not allowed", "user code"),  # an exception: its class
    ("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB", "out of memory"),
    ("ValueError: shapes do not match", "user code"),
])
def test_kaggles_failure_messages_become_failure_kinds(tiny, tmp_path, monkeypatch, message, kind):
    kaggle = start_kaggle(tiny, tmp_path, monkeypatch)
    try:
        kaggle.emulator.faults.set(hold=True)
        assert kaggle.push("tiny").exit_code == 0
        kaggle.emulator.faults.set(mangle_next=[{"method": "GetKernelSessionStatus",
                                                 "answer": {"status": "ERROR", "failureMessage": message}}])
        status = kaggle.kjob("status", "tiny")
        assert status.exit_code == 1, status.output
        assert f"({kind})" in status.stdout
        (run,) = ledger_runs(kaggle.ws)
        assert run.state.failure_kind == kind
        assert ("hint:" in status.stdout) == (kind != "user code")
    finally:
        kaggle.emulator.stop()


SIZED_RECIPE = """
title = "Sized Kernel"
slug = "sized-kernel"
modules = ["pkg/sized.py"]
entry = "main"
accelerator = "none"

[parameters]
warmup_steps = 500
grad_clip = 5.0
max_steps = 0
epochs = 60
crop_seconds = 2.0
batch_size = 8
num_workers = 2
keep_checkpoints = 3
time_budget_seconds = 30600
"""

SIZED_JOB = '''
def main(warmup_steps, grad_clip, max_steps, epochs, crop_seconds, batch_size, num_workers, keep_checkpoints,
         time_budget_seconds):
    pass
'''


@pytest.mark.parametrize("message, options, hint", [
    ("Your notebook tried to allocate more memory than is available. It has restarted.", (),
     "hint: out of memory: lower batch_size (a parameter of this recipe) or use a larger machine"),
    ("The kernel died unexpectedly", (), "and lower batch_size (a parameter of this recipe)"),
    ("OSError: [Errno 28] No space left on device", (), "lower keep_checkpoints (a parameter of this recipe) or keep"),
    ("Your notebook exceeded the maximum execution time", (), "lower time_budget_seconds (a parameter of this recipe)"),
    # a budget of 0 is off, so lowering it changes nothing; warmup_steps and max_steps = 0 are no run lengths
    ("Your notebook exceeded the maximum execution time", ("-p", "time_budget_seconds=0"),
     "time limit: lower epochs (a parameter of this recipe)"),
])
def test_each_hint_names_the_recipes_own_parameter_for_what_ran_out(tiny, tmp_path, monkeypatch, message, options,
                                                                     hint):
    tiny.write("builders/sized.toml", SIZED_RECIPE)
    tiny.write("src/pkg/sized.py", SIZED_JOB)
    kaggle = start_kaggle(tiny, tmp_path, monkeypatch)
    try:
        kaggle.emulator.faults.set(hold=True)
        assert kaggle.push("sized", *options).exit_code == 0
        kaggle.emulator.faults.set(mangle_next=[{"method": "GetKernelSessionStatus",
                                                 "answer": {"status": "ERROR", "failureMessage": message}}])
        status = kaggle.kjob("status", "sized")
        assert status.exit_code == 1, status.output
        (line,) = [line for line in status.stdout.splitlines() if "hint:" in line]
        assert hint in line, line
        assert not [name for name in ("warmup_steps", "grad_clip", "max_steps", "num_workers") if name in line]
    finally:
        kaggle.emulator.stop()


def test_an_out_of_memory_in_a_local_run_is_the_same_kind(tiny):
    tiny.write("builders/hungry.toml", HUNGRY_RECIPE)
    tiny.write("src/pkg/hungry.py", HUNGRY_JOB)
    ran = tiny.kjob("push", "hungry", "--backend", "local", "-p", "megabytes=10000000", "--wait")  # 640 TB
    assert ran.exit_code == 1, ran.output
    assert "MemoryError" in ran.stdout and "(out of memory)" in ran.stdout
    assert "hint: out of memory: lower batch_size (a parameter of this recipe) or use a larger machine" in ran.stdout


def test_the_emulator_command_gives_its_sessions_a_machines_memory_and_disk(tiny, tmp_path, monkeypatch):
    import subprocess
    import sys
    from pathlib import Path

    tiny.write("builders/hungry.toml", HUNGRY_RECIPE)
    tiny.write("src/pkg/hungry.py", HUNGRY_JOB)
    kjob = Path(sys.executable).with_name("kjob")
    bad = subprocess.run([str(kjob), "emulator", "--port", "0", "--session-memory", "lots"], cwd=tiny.root,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--session-memory 'lots' must be a size such as 16G" in bad.stderr
    process = subprocess.Popen([str(kjob), "emulator", "--port", "0", "--session-memory", "1.5G",
                                "--session-disk", "5M"], cwd=tiny.root, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        first = process.stdout.readline()
        assert first.startswith("Kaggle emulator on http://127.0.0.1:"), first + process.stderr.read()
        for name in ("KAGGLE_API_TOKEN", "KAGGLE_API_ENVIRONMENT"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HOME", str(tmp_path / "home"))
        monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "home/.kaggle"))
        env = {"KJOB_KAGGLE_ENDPOINT": first.split()[3], "KAGGLE_USERNAME": "alice", "KAGGLE_KEY": "anything",
               "KJOB_KAGGLE_POLL": "0.2"}
        oom = tiny.kjob("push", "hungry", "--backend", "kaggle", "-p", "megabytes=50", "--wait", env=env)
        assert oom.exit_code == 1, oom.output
        assert "It has restarted. (out of memory)" in oom.stdout
        full = tiny.kjob("push", "hungry", "--backend", "kaggle", "-p", "written=40", "--wait", env=env)
        assert full.exit_code == 1, full.output
        assert "No space left on device: /kaggle/working passed its limit of 5,000,000 bytes" in full.stdout
    finally:
        process.terminate()
        assert process.wait(timeout=30) == 0
