"""The Kaggle backend, end to end: kjob CLI -> kagglesdk -> HTTP -> the emulator on 127.0.0.1.

Each test gets its own emulator on a free port, a throw-away API key in a private
KAGGLE_CONFIG_DIR, and fast retry/poll settings through kjob's environment variables.
"""

import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from kjob.emulator.server import Emulator
from kjob.runs.ledger import Ledger


def one_error_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def ledger_runs(ws):
    with Ledger(ws.root / ".kjob/ledger.sqlite3") as ledger:
        return ledger.runs()


# -- push ------------------------------------------------------------------------------

def test_a_gpu_push_sends_what_kaggle_needs(kaggle):
    kaggle.emulator.faults.set(hold=True)
    result = kaggle.push("tinygpu")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "tinygpu v1"
    body = kaggle.emulator.requests("SaveKernel")[-1]
    assert "id" not in body  # by slug, never by numeric id
    assert (body["slug"], body["newTitle"]) == ("alice/tiny-gpu-kernel", "Tiny Gpu Kernel")
    assert (body["machineShape"], body["enableGpu"], body["enableTpu"]) == ("NvidiaTeslaT4", True, False)
    assert (body["enableInternet"], body["isPrivate"]) == (False, True)  # written out, not left to defaults
    assert body["sessionTimeoutSeconds"] == 3600
    assert body["datasetDataSources"] == ["someone/some-data"]
    assert (body["language"], body["kernelType"]) == ("python", "notebook")
    sent = json.loads(body["text"])
    built = json.loads((kaggle.ws.root / "kernels/tinygpu/tinygpu.ipynb").read_text())
    assert all(isinstance(cell["source"], str) for cell in sent["cells"])
    assert [c["source"] for c in sent["cells"]] == [c["source"] for c in built["cells"]]
    assert all(c["outputs"] == [] for c in sent["cells"] if c["cell_type"] == "code")
    assert sent["metadata"]["kernelspec"]["name"] == "python3"
    (run,) = ledger_runs(kaggle.ws)
    assert (run.backend, run.version, run.state.status) == ("kaggle", 1, "queued")
    assert run.handle == {"slug": "alice/tiny-gpu-kernel", "gpu": True, "kernel_id": run.identity,
                          "url": f"{kaggle.emulator.url}/code/alice/tiny-gpu-kernel"}
    assert run.identity == str(kaggle.emulator.store.kernel("alice", "tiny-gpu-kernel").id)
    status = kaggle.kjob("status", "tinygpu")
    assert status.exit_code == 6
    assert f"{kaggle.emulator.url}/code/alice/tiny-gpu-kernel" in status.stdout
    assert kaggle.emulator.requests("GetKernelSessionStatus")[-1]["versionLabel"] == "v1"


def test_a_gpu_push_is_refused_on_low_quota_or_two_unfinished_gpu_runs(kaggle):
    kaggle.emulator.faults.set(hold=True, gpu_used_hours=29.5)
    low = kaggle.push("tinygpu")
    assert low.exit_code == 7
    assert "only 0.5 h of GPU quota left, less than the 1.0 h session timeout" in one_error_line(low)
    assert kaggle.emulator.requests("SaveKernel") == []
    assert kaggle.push("tinygpu", "--force").exit_code == 0
    kaggle.emulator.faults.set(gpu_used_hours=0.0)
    assert kaggle.push("tinygpu").exit_code == 0
    third = kaggle.push("tinygpu")
    assert third.exit_code == 7
    assert "2 Kaggle GPU runs have not finished (tinygpu v1, tinygpu v2)" in one_error_line(third)
    forced = kaggle.push("tinygpu", "--force")
    assert forced.exit_code == 7
    assert "Maximum batch GPU session count of 2 reached" in one_error_line(forced)
    assert [r.version for r in ledger_runs(kaggle.ws)] == [2, 1]


def test_a_rejected_push_and_invalid_sources_fail_with_the_servers_message(kaggle):
    kaggle.emulator.faults.set(hold=True, reject_push="Notebook text exceeds the size limit")
    rejected = kaggle.push("tiny")
    assert rejected.exit_code == 7
    assert one_error_line(rejected) == ("error: Kaggle rejected the push of alice/tiny-kernel: "
                                        "Notebook text exceeds the size limit")
    missing = kaggle.push("lost")  # a dataset Kaggle does not have: refused before the push
    assert missing.exit_code == 7
    assert "dataset source missing on Kaggle: nobody/nothing (not found)" in one_error_line(missing)
    assert len(kaggle.emulator.requests("SaveKernel")) == 1 and ledger_runs(kaggle.ws) == []
    # A source Kaggle lists as invalid all the same (it went away meanwhile, say).
    answer = {"versionNumber": 1, "invalidDatasetSources": ["someone/some-data"]}
    kaggle.emulator.faults.set(mangle_next=[{"method": "SaveKernel", "answer": answer}])
    invalid = kaggle.push("tiny")
    assert invalid.exit_code == 7
    assert "Kaggle rejected the push of alice/tiny-kernel: invalid dataset source: someone/some-data" in one_error_line(invalid)
    # Kaggle made a version anyway (without the source): recorded; the refused pushes are not.
    assert [(r.kernel, r.version) for r in ledger_runs(kaggle.ws)] == [("tiny", 1)]


def test_a_source_that_silently_fails_to_attach_is_caught(kaggle):
    kaggle.emulator.faults.set(hold=True, unattached=["someone/some-data"])
    result = kaggle.push("tiny")
    assert result.exit_code == 7
    assert "Kaggle made alice/tiny-kernel v1 but did not attach someone/some-data" in one_error_line(result)
    # The version exists and runs on Kaggle: it is in the ledger, to be watched or stopped.
    assert [(r.kernel, r.version, r.backend) for r in ledger_runs(kaggle.ws)] == [("tiny", 1, "kaggle")]


# -- credentials and HTTP failures ----------------------------------------------------

def test_bad_credentials_and_missing_kernels_get_one_line_messages(kaggle):
    kaggle.emulator.faults.set(hold=True)
    kaggle.write_credentials(key="0" * 8 + kaggle.key[8:])
    wrong = kaggle.push("tiny")
    assert wrong.exit_code == 7
    assert "did not accept the credentials from ~/.kaggle/kaggle.json (HTTP 401)" in one_error_line(wrong)
    kaggle.write_credentials(mode=0o644)
    readable = kaggle.push("tiny")
    assert readable.exit_code == 7
    assert "~/.kaggle/kaggle.json can be read by other users" in one_error_line(readable)
    (kaggle.config_dir / "kaggle.json").unlink()
    missing = kaggle.push("tiny")
    assert missing.exit_code == 7 and "no Kaggle credentials" in one_error_line(missing)
    kaggle.write_credentials()
    assert kaggle.push("tiny").exit_code == 0
    kaggle.emulator.store.handle("DeleteKernel", {"userName": "alice", "kernelSlug": "tiny-kernel"}, "alice")
    gone = kaggle.kjob("status", "tiny")  # its session stopped with it
    assert gone.exit_code == 4
    assert "tiny v1: cancelled (kernel gone)" in gone.stdout


def test_rate_limits_and_outages_are_retried_and_a_long_streak_gives_up(kaggle, monkeypatch):
    kaggle.emulator.faults.set(hold=True, fail_next=[429, 503, 503])
    assert kaggle.push("tiny").exit_code == 0
    assert kaggle.emulator.faults.fail_next == []
    kaggle.emulator.faults.set(fail_next=[503] * 10)
    outage = kaggle.kjob("status", "tiny")
    assert outage.exit_code == 7
    line = one_error_line(outage)
    assert "gave up on kernel alice/tiny-kernel after 4 attempts" in line
    assert "HTTP 503 (an HTML page) x4" in line and "<html" not in outage.output.lower()
    kaggle.emulator.faults.set(fail_next=[])
    monkeypatch.setenv("KJOB_KAGGLE_TIMEOUT", "0.5")
    kaggle.emulator.faults.set(delay=6.0, delay_count=1)  # the first answer comes too late
    started = time.monotonic()
    slow = kaggle.kjob("status", "tiny")
    assert slow.exit_code == 6 and "queued" in slow.stdout
    assert time.monotonic() - started < 4.5  # it gave up on the slow answer and asked again


# -- running to the end ---------------------------------------------------------------

def test_push_wait_ends_with_the_exit_code_of_complete_error_and_cancelled(kaggle):
    done = kaggle.push("tiny", "--wait")
    assert done.exit_code == 0, done.output
    assert "tiny v1: complete" in done.stdout
    produced = json.loads((kaggle.ws.root / "downloads/tiny/v1/output/result.json").read_text())
    assert produced["inputs"] == {"found": {"some-data/hello.txt": True, "datasets/someone/some-data/hello.txt": True},
                                  "run_type": "Batch"}
    failed = kaggle.push("tiny", "-p", "fail=true", "--wait")
    assert failed.exit_code == 1
    assert "tiny v2: error: src/pkg/job.py:11: RuntimeError: asked to fail" in failed.stdout

    def cancel_when_running():
        kaggle.wait_for_session("tiny-kernel", 3, "running")
        requests.post(f"{kaggle.emulator.url}/_emulator/cancel", json={"kernel": "alice/tiny-kernel", "version": 3},
                      timeout=30)

    canceller = threading.Thread(target=cancel_when_running)
    canceller.start()
    cancelled = kaggle.push("tiny", "-p", "sleep=60", "--wait")
    canceller.join()
    assert cancelled.exit_code == 5
    assert "tiny v3: cancelled" in cancelled.stdout
    everything = b"".join(p.read_bytes() for p in kaggle.ws.root.rglob("*")
                          if p.is_file() and kaggle.config_dir not in p.parents)
    assert kaggle.key.encode() not in everything  # not in the ledger, downloads, run folders


def test_two_versions_land_in_separate_folders_and_an_older_ones_log_is_refused(kaggle):
    assert kaggle.push("tiny", "-p", "label=first", "--wait").exit_code == 0
    assert kaggle.push("tiny", "-p", "label=second", "--wait").exit_code == 0
    root = kaggle.ws.root
    first = json.loads((root / "downloads/tiny/v1/output/result.json").read_text())
    second = json.loads((root / "downloads/tiny/v2/output/result.json").read_text())
    assert (first["label"], second["label"]) == ("first", "second")
    before = kaggle.ws.snapshot("downloads/tiny")
    old = kaggle.kjob("fetch", "tiny", "--version", "1")
    assert old.exit_code == 7
    assert ("tiny v1 is no longer the latest version of alice/tiny-kernel (v2 is): Kaggle serves the log "
            "of the latest version only") in one_error_line(old)
    assert kaggle.ws.snapshot("downloads/tiny") == before
    # Its outputs are still served whole (DownloadKernelOutput): the same files, in v1's folder only
    # (tests/test_kaggle_limits.py follows an older version's outputs further).
    assert kaggle.kjob("fetch", "tiny", "--version", "1", "--output").exit_code == 0
    assert json.loads((root / "downloads/tiny/v1/output/result.json").read_text())["label"] == "first"
    assert kaggle.ws.snapshot("downloads/tiny/v2") == {k[3:]: v for k, v in before.items() if k.startswith("v2/")}
    labels = {body.get("versionLabel") for body in kaggle.emulator.requests("ListKernelSessionOutput")}
    assert labels == {"v1", "v2"}


def test_a_download_dropped_half_way_resumes_to_identical_bytes(kaggle):
    assert kaggle.push("tiny", "--wait").exit_code == 0
    blob = os.urandom(3 * 1024 * 1024 + 17)
    remote = kaggle.session("tiny-kernel", 1).paths.working_dir / "big/blob.bin"
    remote.parent.mkdir()
    remote.write_bytes(blob)
    kaggle.emulator.faults.set(drop_downloads=1)
    result = kaggle.kjob("fetch", "tiny", "--output")
    assert result.exit_code == 0, result.output
    local = kaggle.ws.root / "downloads/tiny/v1/output/big/blob.bin"
    assert local.read_bytes() == blob
    assert any(rng and rng.startswith("bytes=") and rng != "bytes=0-" for _, rng, _ in kaggle.emulator.downloads)
    assert not any(with_credentials for _, _, with_credentials in kaggle.emulator.downloads)
    remote.write_bytes(blob[::-1] + b"new")
    kaggle.emulator.faults.set(drop_downloads=10, drop_fraction=0.0)  # no progress at all: give up
    broken = kaggle.kjob("fetch", "tiny", "--output")
    assert broken.exit_code == 7
    assert "gave up on downloading big/blob.bin" in one_error_line(broken)
    assert local.read_bytes() == blob  # the earlier complete copy, not half of the new one
    assert not [p for p in (kaggle.ws.root / "downloads").rglob("*") if p.name.endswith(".part")]


def test_an_escaping_output_file_name_is_refused_and_nothing_lands_outside(kaggle):
    assert kaggle.push("tiny", "--wait").exit_code == 0
    kaggle.emulator.faults.set(hostile_names=["../evil.txt", "/tmp/evil-abs.txt", "ok/../../evil.txt"])
    result = kaggle.kjob("fetch", "tiny", "--output")
    assert result.exit_code == 7
    assert "refused output file name(s) that would escape the version folder: '../evil.txt'" in result.stderr
    assert (kaggle.ws.root / "downloads/tiny/v1/output/result.json").is_file()
    assert not [p for p in kaggle.ws.root.rglob("*evil*")]
    assert not Path("/tmp/evil-abs.txt").exists()
    assert len(kaggle.emulator.requests("ListKernelSessionOutput")) >= 2  # four files, pages of two


def test_logs_follow_the_live_stream_once_each_across_a_reconnect(kaggle):
    kaggle.emulator.faults.set(drop_streams=1, drop_stream_after=2)
    assert kaggle.push("chatty").exit_code == 0
    followed = kaggle.kjob("logs", "chatty", "--follow")
    assert followed.exit_code == 0, followed.output
    expected = [f"line {i}" for i in range(6)] + ["[stderr] almost done"]
    assert followed.stdout.splitlines() == expected
    assert kaggle.emulator.faults.drop_streams == 0  # the stream did break once
    assert kaggle.kjob("logs", "chatty").stdout.splitlines() == expected


def test_cancel_explains_what_kaggle_allows_and_delete_kernel_deletes(kaggle):
    kaggle.emulator.faults.set(hold=True)
    assert kaggle.push("tiny").exit_code == 0
    refused = kaggle.kjob("cancel", "tiny")
    assert refused.exit_code == 7
    line = one_error_line(refused)
    assert "Kaggle's API cannot stop a running batch session" in line
    assert f"{kaggle.emulator.url}/code/alice/tiny-kernel" in line and "--delete-kernel" in line
    deleted = kaggle.kjob("cancel", "tiny", "--delete-kernel")
    assert deleted.exit_code == 0, deleted.output
    assert "deleted the Kaggle kernel alice/tiny-kernel" in deleted.stdout
    assert "tiny v1: cancelled" in deleted.stdout
    assert kaggle.emulator.store.kernels == {}


# -- the SDK's own environment, tokens, and the emulator command ----------------------

def test_kaggle_api_environment_test_and_a_bearer_token_reach_port_7777(kaggle, monkeypatch, tmp_path):
    token = secrets.token_urlsafe(24)
    try:
        emulator = Emulator(tmp_path / "emulator-7777", port=7777, tokens={token: "alice"},
                            data_sources={"someone/some-data": kaggle.ws.root / "data/some"}).start()
    except OSError:
        pytest.skip("port 7777 is in use")
    try:
        emulator.faults.set(hold=True)
        monkeypatch.delenv("KJOB_KAGGLE_ENDPOINT")
        monkeypatch.setenv("KAGGLE_API_ENVIRONMENT", "TEST")
        monkeypatch.setenv("KAGGLE_API_TOKEN", token)
        result = kaggle.push("tiny")
        assert result.exit_code == 0, result.output
        assert token not in result.output
        assert len(emulator.requests("SaveKernel")) == 1 and kaggle.emulator.requests("SaveKernel") == []
        assert ledger_runs(kaggle.ws)[0].handle["url"] == "http://localhost:7777/code/alice/tiny-kernel"
    finally:
        emulator.stop()


def test_the_emulator_command_serves_until_stopped(tiny, tmp_path):
    kjob = Path(sys.executable).with_name("kjob")
    process = subprocess.Popen([str(kjob), "emulator", "--port", "0", "--data-source", "someone/some-data=data/some"],
                               cwd=tiny.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = process.stdout.readline()
        assert first.startswith("Kaggle emulator on http://127.0.0.1:"), first + process.stderr.read()
        url = first.split()[3]
        folder = Path(first.split("(state in ")[1].split(")")[0])
        assert "someone/some-data" in first and folder.is_dir()
        api = f"{url}/api/v1/kernels.KernelsApiService/GetKernel"
        assert requests.post(api, json={"userName": "alice", "kernelSlug": "x"}, timeout=10).status_code == 401
        answer = requests.post(api, json={"userName": "alice", "kernelSlug": "x"}, auth=("alice", "anything"), timeout=10)
        # As Kaggle: a kernel that does not exist is 403, not 404 (`--missing-kernel-status 404` for the old answer).
        assert (answer.status_code, answer.json()["message"]) == (403, "Permission 'kernels.get' was denied")
    finally:
        process.send_signal(signal.SIGTERM)  # as `kill` does; Ctrl-C (SIGINT) takes the same way out
        assert process.wait(timeout=30) == 0
    assert not folder.exists()
