"""Datasets, end to end: `kjob dataset push` -> kagglesdk -> HTTP -> the emulator, kernels that read
what was pushed, the push check for missing sources, and the official CLI on the same datasets."""

import importlib.util
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from kjob.emulator.datasets import source_folder
from kjob.emulator.server import Emulator
from kjob.runs.ledger import Ledger

DATASETS = "/api/v1/datasets.DatasetApiService"

READER_RECIPE = """
title = "Reads Data"
slug = "reads-data"
modules = ["pkg/reader.py"]
entry = "main"
accelerator = "none"
dataset_sources = ["alice/my-data"]

[parameters]
name = "sub/b.csv"
"""

READER = '''
"""Reads one file of alice/my-data where Kaggle mounts it."""
import json
import os


def main(name):
    root = os.environ.get("KAGGLE_INPUT_DIR", "/kaggle/input")
    with open(os.path.join(root, "datasets", "alice", "my-data", name)) as f:
        text = f.read()
    with open("read.json", "w") as f:
        json.dump({"text": text}, f)
'''


def one_error_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def ledger_runs(ws):
    with Ledger(ws.root / ".kjob/ledger.sqlite3") as ledger:
        return ledger.runs()


def folder(ws, rel: str = "mydata", text: str = "1,2\n") -> str:
    ws.write(f"{rel}/hello.txt", "hello\n")
    ws.write(f"{rel}/sub/b.csv", f"a,b\n{text}")
    ws.write(f"{rel}/.hidden", "not uploaded\n")
    ws.write(f"{rel}/dataset-metadata.json", "{}")  # describes a dataset, is not part of it
    return rel


def dataset_push(kaggle, *args: str):
    return kaggle.kjob("dataset", "push", *args)


def test_a_folder_becomes_a_dataset_then_a_new_version_and_the_latest_is_served(kaggle):
    kaggle.ws.write("mydata/empty.txt", "")  # an empty file is a file too
    first = dataset_push(kaggle, folder(kaggle.ws), "--as", "alice/my-data")
    assert first.exit_code == 0, first.output
    assert "uploaded sub/b.csv (8 B)" in first.stdout
    assert "alice/my-data v1 (new dataset): 3 files, 14 B; ready at " in first.stdout
    store = kaggle.emulator.store
    dataset = store.datasets["alice/my-data"]
    assert dataset.private and [n for n, _ in dataset.version(1).files()] == ["empty.txt", "hello.txt", "sub/b.csv"]
    # Sub-folders travel as the create call's directories, each file its own upload.
    [create] = kaggle.emulator.requests("CreateDataset")
    assert create["isPrivate"] is True and create["directories"][0]["name"] == "sub"
    assert len(kaggle.emulator.requests("StartBlobUpload")) == 3
    assert [verb for verb, path in kaggle.emulator.http_requests if path.startswith("/upload/")] == ["PUT"] * 3
    assert kaggle.emulator.uploads == [False] * 3  # the signed upload URL never gets the credentials

    folder(kaggle.ws, text="3,4\n")
    second = dataset_push(kaggle, "mydata", "--as", "alice/my-data", "-m", "new rows")
    assert second.exit_code == 0, second.output
    assert "alice/my-data v2 (new version): 3 files" in second.stdout
    assert dataset.version(2).notes == "new rows"
    assert kaggle.emulator.requests("CreateDatasetVersion")[0]["body"]["versionNotes"] == "new rows"
    with store.lock:
        latest, first_one = source_folder(store, "alice/my-data", "alice"), source_folder(store, "alice/my-data/1", "alice")
        assert source_folder(store, "alice/my-data", "bob") is None  # private: only its owner's kernels
    assert (latest / "sub/b.csv").read_text() == "a,b\n3,4\n" and (first_one / "sub/b.csv").read_text() == "a,b\n1,2\n"
    assert not list(store.root.glob("_blobs/*"))  # every upload was taken by its version


def test_a_kernel_reads_the_dataset_only_after_it_is_pushed(kaggle):
    kaggle.ws.write("builders/reader.toml", READER_RECIPE)
    kaggle.ws.write("src/pkg/reader.py", READER)
    early = kaggle.push("reader", "--wait")
    assert early.exit_code == 7
    assert one_error_line(early).startswith("error: dataset source missing on Kaggle: alice/my-data (not found); "
                                            "upload your own with `kjob dataset push")
    assert kaggle.emulator.requests("SaveKernel") == [] and ledger_runs(kaggle.ws) == []
    assert kaggle.kjob("status").exit_code == 0  # nothing left half-recorded

    assert dataset_push(kaggle, folder(kaggle.ws), "--as", "alice/my-data").exit_code == 0
    run = kaggle.push("reader", "--wait")
    assert run.exit_code == 0, run.output
    read = json.loads((kaggle.ws.root / "downloads/reader/v1/output/read.json").read_text())
    assert read == {"text": "a,b\n1,2\n"}
    [save] = kaggle.emulator.requests("SaveKernel")
    assert save["datasetDataSources"] == ["alice/my-data"]


def test_a_push_names_every_source_it_cannot_have(kaggle):
    store = kaggle.emulator.store  # bob's private dataset, made the way any client makes one
    with store.lock:
        blob = store.handle("StartBlobUpload", {"type": "DATASET", "name": "x.txt", "contentLength": 2}, "bob",
                            "blobs.BlobApiService")
    assert requests.put(blob["createUrl"], data=b"x\n", timeout=10).status_code == 200
    with store.lock:
        made = store.handle("CreateDataset", {"ownerSlug": "bob", "slug": "secret-data", "title": "Secret Data",
                                              "isPrivate": True, "files": [{"token": blob["token"]}]}, "bob",
                            "datasets.DatasetApiService")
    assert made["status"] == "ok"
    recipe = READER_RECIPE.replace('["alice/my-data"]', '["bob/secret-data", "someone/some-data/7", "nobody/nothing"]')
    kaggle.ws.write("builders/reader.toml", recipe)
    kaggle.ws.write("src/pkg/reader.py", READER)
    result = kaggle.push("reader")
    assert result.exit_code == 7
    assert ("dataset sources missing on Kaggle: bob/secret-data (not readable with these credentials), "
            "someone/some-data/7 (it has versions 1 to 1), nobody/nothing (not found)") in one_error_line(result)
    assert len(kaggle.emulator.requests("GetDataset")) == 3  # one request per source
    assert kaggle.emulator.requests("SaveKernel") == [] and ledger_runs(kaggle.ws) == []


def test_bad_folders_and_targets_are_one_line_and_nothing_is_sent(kaggle, tmp_path):
    ws = kaggle.ws
    ws.write("empty/.only-hidden", "x")
    cases = [
        (["empty", "--as", "alice/my-data"], 2, "holds no files to upload"),
        (["missing", "--as", "alice/my-data"], 2, "missing is not a folder"),
        ([folder(ws), "--as", "alice"], 2, "--as must be OWNER/SLUG"),
        (["mydata", "--as", "alice/my data"], 2, "--as must be OWNER/SLUG"),
        (["mydata", "--as", "alice/abc"], 2, "a new dataset's slug needs 6 to 50 characters"),
        (["mydata", "--as", "bob/my-data"], 7, "sign in as alice, who cannot push datasets of bob"),
    ]
    for args, code, message in cases:
        result = dataset_push(kaggle, *args)
        assert result.exit_code == code, (args, result.output)
        assert message in one_error_line(result), args
    big = ws.root / "huge/data.bin"
    big.parent.mkdir()
    with big.open("wb") as out:
        out.truncate(200 * 10**9 + 1)  # sparse: no disk used, and never read
    huge = dataset_push(kaggle, "huge", "--as", "alice/my-data")
    assert huge.exit_code == 2 and "over Kaggle's limit of 200 GB" in one_error_line(huge)
    (tmp_path / "outside.txt").write_text("secret\n")
    os.symlink(tmp_path / "outside.txt", ws.root / "mydata/leak.txt")
    ws.write("mydata/Hello.txt", "case\n")
    named = dataset_push(kaggle, "mydata", "--as", "alice/my-data")
    assert named.exit_code == 2
    lines = named.stderr.strip().splitlines()
    assert lines[-1] == "error: 2 file name(s) under mydata cannot be uploaded; rename or remove them"
    assert "error: leak.txt: a symlink that leads out of the folder" in lines
    assert any("hello.txt: differs from Hello.txt only in case" in line for line in lines)
    assert kaggle.emulator.requests("StartBlobUpload") == [] and kaggle.emulator.requests("CreateDataset") == []


def test_uploads_are_retried_and_processing_is_waited_for_then_given_up_on(kaggle):
    kaggle.emulator.faults.set(fail_uploads=2, dataset_pending=2)
    result = dataset_push(kaggle, folder(kaggle.ws), "--as", "alice/my-data")
    assert result.exit_code == 0, result.output
    assert len([p for v, p in kaggle.emulator.http_requests if v == "PUT"]) == 4  # two refused, sent again whole
    assert len(kaggle.emulator.requests("GetDatasetStatus")) == 3
    kaggle.emulator.faults.set(dataset_pending=100)
    slow = dataset_push(kaggle, "mydata", "--as", "alice/my-data", "--timeout", "0.5")
    assert slow.exit_code == 6
    assert "alice/my-data (new version) is still being processed by Kaggle after 0.5 s (status BLOBS_RECEIVED)" \
        in one_error_line(slow)
    kaggle.emulator.faults.set(dataset_pending=0, mangle_next=[{"method": "StartBlobUpload", "answer": {}}])
    nowhere = dataset_push(kaggle, "mydata", "--as", "alice/my-data")
    assert nowhere.exit_code == 7
    assert one_error_line(nowhere) == ("error: Kaggle's answer to StartBlobUpload for the upload of hello.txt was "
                                       "malformed: it has no token, which kjob needs")


def test_datasets_survive_a_restart_and_a_first_format_state_is_read(kaggle, monkeypatch, tmp_path):
    assert dataset_push(kaggle, folder(kaggle.ws), "--as", "alice/my-data").exit_code == 0
    state = kaggle.emulator.store.root
    kaggle.emulator.stop()
    again = Emulator(state, users={"alice": kaggle.key}).start()
    try:
        monkeypatch.setenv("KJOB_KAGGLE_ENDPOINT", again.url)
        assert [name for name, _ in again.store.datasets["alice/my-data"].version(1).files()] == ["hello.txt", "sub/b.csv"]
        second = dataset_push(kaggle, "mydata", "--as", "alice/my-data")
        assert second.exit_code == 0 and "alice/my-data v2 (new version)" in second.stdout
    finally:
        again.stop()
    old = tmp_path / "format-1"
    old.mkdir()
    (old / "emulator-state.json").write_text(json.dumps({"format": 1, "next_id": 4, "kernels": []}))
    with Emulator(old) as emulator:
        assert emulator.store.datasets == {} and emulator.store.next_id == 4
        emulator.store.save()
    assert json.loads((old / "emulator-state.json").read_text())["format"] == 3  # 3 added the models


def test_the_emulator_command_serves_your_own_datasets_only_once_pushed(tiny, tmp_path):
    tiny.write("pyproject.toml", (tiny.root / "pyproject.toml").read_text() + '"alice/own-data" = "data/own"\n')
    tiny.write("data/own/x.txt", "mine\n")
    kjob, state = Path(sys.executable).with_name("kjob"), tmp_path / "kept"

    def serve():
        process = subprocess.Popen([str(kjob), "emulator", "--port", "0", "--state-dir", str(state)], cwd=tiny.root,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines = [process.stdout.readline() for _ in range(5)]
        assert lines[0].startswith("Kaggle emulator on http://127.0.0.1:"), "".join(lines) + process.stderr.read()
        return process, lines[0].split()[3], lines

    def stop(process):
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, process.stderr.read()

    def status(url, ref):
        owner, slug = ref.split("/")
        return requests.post(f"{url}{DATASETS}/GetDatasetStatus", json={"ownerSlug": owner, "datasetSlug": slug},
                             auth=("alice", "any"), timeout=10).status_code

    process, url, lines = serve()
    try:
        assert "data sources: someone/some-data" in lines[0] and "alice/own-data" not in lines[0], lines
        assert lines[4].strip() == ("your own datasets, served once pushed (kjob dataset push FOLDER --as OWNER/SLUG): "
                                    "alice/own-data (not pushed yet)")
        assert (status(url, "alice/own-data"), status(url, "someone/some-data")) == (404, 200)
        env = {**os.environ, "KJOB_KAGGLE_ENDPOINT": url, "KAGGLE_USERNAME": "alice", "KAGGLE_KEY": "any",
               "KAGGLE_CONFIG_DIR": str(tmp_path / "none")}
        pushed = subprocess.run([str(kjob), "dataset", "push", "data/own", "--as", "alice/own-data"], cwd=tiny.root,
                                env=env, capture_output=True, text=True, timeout=60)
        assert pushed.returncode == 0, pushed.stderr
        assert status(url, "alice/own-data") == 200
    finally:
        stop(process)
    process, url, lines = serve()
    try:
        assert "1 datasets kept" in lines[0] and lines[4].strip().endswith("alice/own-data (pushed)"), lines
        assert status(url, "alice/own-data") == 200
    finally:
        stop(process)


@pytest.mark.skipif(importlib.util.find_spec("kaggle") is None or importlib.util.find_spec("six") is None,
                    reason="the official client is a test extra: pip install -e '.[test]'")
def test_the_official_cli_sees_pushed_datasets_and_makes_its_own(tiny, tmp_path, monkeypatch):
    from official_cli import kernel_folder, notebook, start

    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))  # where the official CLI keeps its upload state
    (tmp_path / "tmp").mkdir()
    cli = start(tmp_path)
    try:
        env = {"KJOB_KAGGLE_ENDPOINT": cli.emulator.url, "KAGGLE_USERNAME": "alice", "KAGGLE_KEY": cli.keys["alice"],
               "KAGGLE_CONFIG_DIR": str(tmp_path / "none"), "KAGGLE_API_TOKEN": None}
        assert tiny.kjob("dataset", "push", folder(tiny), "--as", "alice/my-data", env=env).exit_code == 0
        status = cli("datasets", "status", "alice/my-data", "--format", "json")
        assert json.loads(status.stdout) == {"status": "ready", "current_version_number": 1}, status.stderr
        files = cli("datasets", "files", "alice/my-data")
        assert "hello.txt" in files.stdout and "sub/b.csv" in files.stdout
        assert cli("datasets", "status", "alice/my-data", user="bob").returncode != 0  # private
        # The official CLI's own upload, folders zipped (--dir-mode zip): Kaggle unpacks them.
        own = tmp_path / "official"
        (own / "nested").mkdir(parents=True)
        (own / "nested/y.txt").write_text("from a zip\n")
        (own / "x.csv").write_text("a\n1\n")
        (own / "dataset-metadata.json").write_text(json.dumps({"title": "Other Data Set", "id": "alice/other-data",
                                                               "licenses": [{"name": "CC0-1.0"}]}))
        made = cli("datasets", "create", "-p", str(own), "--dir-mode", "zip")
        assert made.returncode == 0 and "Your private Dataset is being created" in made.stdout, made.stdout
        again = cli("datasets", "version", "-p", str(own), "-m", "again", "--dir-mode", "zip")
        assert "Dataset version is being created" in again.stdout, again.stdout
        assert "nested/y.txt" in cli("datasets", "files", "alice/other-data").stdout
        reads = notebook("""
            import os
            root = os.environ.get("KAGGLE_INPUT_DIR", "/kaggle/input")
            print(open(os.path.join(root, "datasets/alice/other-data/nested/y.txt")).read(), end="")
        """)
        kernel = kernel_folder(tmp_path, "alice/reads-other", "Reads Other", reads, dataset_sources=["alice/other-data"])
        assert cli("kernels", "push", "-p", str(kernel)).returncode == 0
        assert cli.wait("alice/reads-other") == "COMPLETE"
        log = json.loads(cli("kernels", "logs", "alice/reads-other").stdout)
        assert "".join(entry["data"] for entry in log) == "from a zip\n"
    finally:
        cli.emulator.stop()
