"""The emulator's memory and its callers: state kept across restarts, tokens, the weekly quota."""

import json
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import requests

from kjob.emulator import quota
from kjob.emulator.server import Emulator

API = "/api/v1/kernels.KernelsApiService"
NOTEBOOK = json.dumps({"cells": [{"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
                                  "source": "print('hi')"}], "nbformat": 4, "nbformat_minor": 5,
                       "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}})


def test_kjob_runs_carry_on_across_an_emulator_restart(kaggle, monkeypatch):
    assert kaggle.push("tiny", "-p", "label=before", "--wait").exit_code == 0
    state, users = kaggle.emulator.store.root, {"alice": kaggle.key}
    kaggle.emulator.stop()
    again = Emulator(state, {"someone/some-data": kaggle.ws.root / "data/some"}, users=users, page_size=2).start()
    try:
        monkeypatch.setenv("KJOB_KAGGLE_ENDPOINT", again.url)  # a new port: only the folder is the same
        assert again.store.kernel("alice", "tiny-kernel").versions[0].session.final
        status = kaggle.kjob("status", "tiny")
        assert status.exit_code == 0 and "complete" in status.output
        # The run's download folder is refetched from the restarted server, byte for byte.
        output = kaggle.ws.root / "downloads/tiny/v1/output/result.json"
        before = output.read_bytes()
        output.parent.parent.joinpath(".fetched.json").unlink()
        output.unlink()
        assert kaggle.kjob("fetch", "tiny", "--output").exit_code == 0
        assert output.read_bytes() == before
        assert kaggle.push("tiny", "-p", "label=after", "--wait").exit_code == 0
        after = json.loads((kaggle.ws.root / "downloads/tiny/v2/output/result.json").read_text())
        assert after["label"] == "after"
    finally:
        again.stop()


def test_the_emulator_command_keeps_its_state_and_signs_tokens_in_as_its_user(tiny, tmp_path):
    kjob, state = Path(sys.executable).with_name("kjob"), tmp_path / "kept"

    def serve():
        process = subprocess.Popen([str(kjob), "emulator", "--port", "0", "--state-dir", str(state), "--user", "alice"],
                                   cwd=tiny.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines = [process.stdout.readline() for _ in range(4)]
        assert lines[0].startswith("Kaggle emulator on http://127.0.0.1:"), "".join(lines) + process.stderr.read()
        return process, lines[0].split()[3], lines

    def stop(process):
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0

    process, url, lines = serve()
    token = {"Authorization": "Bearer KGAT_0123456789abcdef"}
    try:
        assert "python -m kjob.emulator.kaggle_cli" in lines[2] and url in lines[2]  # how to bring the official CLI
        assert "tokens sign in as alice" in lines[3]
        who = requests.post(f"{url}/api/v1/security.OAuthService/IntrospectToken", json={"token": "KGAT_x"}, timeout=10)
        assert who.json() == {"active": True, "username": "alice"}
        push = {"slug": "alice/kept-kernel", "newTitle": "Kept Kernel", "text": NOTEBOOK, "language": "python",
                "kernelType": "notebook", "isPrivate": True}
        made = requests.post(f"{url}{API}/SaveKernel", json=push, headers=token, timeout=10).json()
        assert made["versionNumber"] == 1 and not made.get("error")
        theirs = requests.post(f"{url}{API}/SaveKernel", json={**push, "slug": "bob/kept-kernel"}, headers=token, timeout=10)
        assert theirs.status_code == 403  # a token is someone: it cannot push as another account
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status = requests.post(f"{url}{API}/GetKernelSessionStatus", headers=token, timeout=10,
                                   json={"userName": "alice", "kernelSlug": "kept-kernel"}).json()
            if status.get("status") == "COMPLETE":
                break
            time.sleep(0.2)
        assert status.get("status") == "COMPLETE"
    finally:
        stop(process)
    process, url, lines = serve()
    try:
        assert "1 kernels kept" in lines[0]
        listed = requests.post(f"{url}{API}/ListKernels", json={"group": "PROFILE"}, headers=token, timeout=10).json()
        assert [k["ref"] for k in listed["kernels"]] == ["alice/kept-kernel"]
        again = requests.post(f"{url}{API}/SaveKernel", json=push, headers=token, timeout=10).json()
        assert again["versionNumber"] == 2
    finally:
        stop(process)


def test_a_state_folder_it_cannot_read_is_refused_not_overwritten(tiny, tmp_path):
    state = tmp_path / "odd"
    state.mkdir()
    (state / "emulator-state.json").write_text('{"format": 99}')
    kjob = Path(sys.executable).with_name("kjob")
    result = subprocess.run([str(kjob), "emulator", "--port", "0", "--state-dir", str(state)], cwd=tiny.root,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "is not an emulator state this version can read" in result.stderr
    assert (state / "emulator-state.json").read_text() == '{"format": 99}'


def test_an_open_door_refuses_tokens_it_cannot_attribute(tmp_path):
    with Emulator(tmp_path / "e") as emulator:
        answer = requests.post(f"{emulator.url}{API}/ListKernels", json={}, timeout=10,
                               headers={"Authorization": "Bearer KGAT_whoever"})
        assert answer.status_code == 401 and "--user" in answer.json()["message"]
        who = requests.post(f"{emulator.url}/api/v1/security.OAuthService/IntrospectToken", json={"token": "x"}, timeout=10)
        assert who.json() == {"active": False}
        basic = requests.post(f"{emulator.url}{API}/ListKernels", json={}, auth=("carol", "any"), timeout=10)
        assert basic.status_code == 200 and basic.json() == {}


def test_the_quota_week_starts_on_saturday_at_midnight_utc():
    utc = timezone.utc
    friday_late = datetime(2026, 12, 4, 23, 59, tzinfo=utc)
    assert quota.week_start(friday_late) == datetime(2026, 11, 28, tzinfo=utc)
    assert quota.refresh_time(friday_late) == datetime(2026, 12, 5, tzinfo=utc)
    saturday = datetime(2026, 12, 5, tzinfo=utc)
    assert quota.week_start(saturday) == saturday
    # Saturday 01:00 in UTC+2 is still Friday in UTC: the week has not turned yet.
    east = datetime(2026, 12, 5, 1, 0, tzinfo=timezone(timedelta(hours=2)))
    assert quota.week_start(east) == datetime(2026, 11, 28, tzinfo=utc)
    assert quota.timestamp(quota.refresh_time(east)) == "2026-12-05T00:00:00.000Z"
    # Only the part of a session inside this week counts.
    start = datetime(2026, 12, 4, 23, 0, tzinfo=utc).timestamp()
    assert quota.used_seconds([(start, start + 7200)], datetime(2026, 12, 5, 2, 0, tzinfo=utc)) == 3600


def test_two_emulators_never_serve_one_state_folder(tmp_path):
    with Emulator(tmp_path / "shared"):
        try:
            Emulator(tmp_path / "shared")
        except ValueError as exc:
            assert "another emulator is serving" in str(exc)
        else:
            raise AssertionError("a second emulator took the same state folder")
    Emulator(tmp_path / "shared").stop()  # free again once the first has stopped


def test_the_emulator_command_answers_403_for_a_missing_kernel_or_404_when_told(tiny, tmp_path):
    kjob = Path(sys.executable).with_name("kjob")
    for extra, expected in (([], (403, "Permission 'kernels.get' was denied")),
                            (["--missing-kernel-status", "404"], (404, "Kernel alice/nothing not found"))):
        process = subprocess.Popen([str(kjob), "emulator", "--port", "0", "--state-dir", str(tmp_path / "s"), *extra],
                                   cwd=tiny.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            first = process.stdout.readline()
            assert first.startswith("Kaggle emulator on http://127.0.0.1:"), first + process.stderr.read()
            answer = requests.post(f"{first.split()[3]}{API}/GetKernelSessionStatus", auth=("alice", "any"), timeout=10,
                                   json={"userName": "alice", "kernelSlug": "nothing"})
            assert (answer.status_code, answer.json()["message"]) == expected
        finally:
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0
