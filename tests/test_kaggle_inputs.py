"""Inputs on the Kaggle backend (issue 23), through the emulator and the real kagglesdk client: an
input run's outputs published as a private model version, attached pinned by `model_sources`,
mounted by version, listed in kjob-inputs.json; reused on the next push; a killed push leaves
no row and no version."""

import hashlib
import json
import os
import subprocess
import sys

import pytest

from kjob.runs.ledger import Ledger

READER_RECIPE = """
title = "Reader"
slug = "reader"
modules = ["pkg/reader.py"]
entry = "main"
accelerator = "none"

[parameters]
resume = ""

[resume]
parameter = "resume"
"""

# Finds its inputs by the manifest alone, wherever the backend mounts them.
READER = '''
"""Reads each input's result.json through kjob-inputs.json."""
import json
import os


def main(resume):
    root = os.environ.get("KAGGLE_INPUT_DIR", "/kaggle/input")
    manifest_path = os.environ.get("KJOB_INPUTS") or os.path.join(root, "kjob-inputs.json")
    manifest = json.load(open(manifest_path))
    labels = {}
    for entry in manifest["inputs"]:
        folder = os.path.join(root, entry["paths"][0][len("/kaggle/input/"):])
        if os.path.isfile(os.path.join(folder, "result.json")):
            labels[entry["run"]] = json.load(open(os.path.join(folder, "result.json")))["label"]
    if resume:
        resume = os.path.join(root, resume[len("/kaggle/input/"):])
    with open("seen.json", "w") as f:
        json.dump({"labels": labels, "manifest": manifest, "where": manifest_path,
                   "resume": sorted(os.listdir(resume)) if resume else None}, f)
'''


@pytest.fixture
def two(kaggle):
    kaggle.ws.write("builders/reader.toml", READER_RECIPE)
    kaggle.ws.write("src/pkg/reader.py", READER)
    return kaggle


def ok(result):
    assert result.exit_code == 0, result.output
    return result


def seen(ws, version: int):
    return json.loads((ws.root / f"downloads/reader/v{version}/output/seen.json").read_text())


def rows(ws, kernel=None):
    with Ledger(ws.root / ".kjob/ledger.sqlite3") as ledger:
        return [r for r in ledger.runs() if kernel is None or r.kernel == kernel]


def variations(kaggle):
    """{model/framework/variation: number of versions} the emulator holds."""
    store = kaggle.emulator.store
    with store.lock:
        return {f"{m.ref}/{i.framework}/{i.slug}": len(i.versions) for m in store.models.values() for i in m.instances}


def test_an_older_kaggle_version_is_pinned_after_the_kernel_moved_on(two):
    ok(two.push("tiny", "-p", "label=first", "--wait"))
    ok(two.push("tiny", "-p", "label=second", "--wait"))
    ok(two.push("reader", "--input", "tiny:v1", "--wait"))
    got = seen(two.ws, 1)
    assert got["labels"] == {"tiny:v1": "first"}  # the version asked for, not the kernel's latest
    # kjob-inputs.json beside the working folder: /kaggle under bubblewrap, the session's folder without
    assert got["where"] in ("/kaggle/kjob-inputs.json", str(two.session("reader", 1).paths.folder / "kjob-inputs.json"))
    [entry] = got["manifest"]["inputs"]
    result = (two.ws.root / "downloads/tiny/v1/output/result.json").read_bytes()
    assert entry["files"]["result.json"] == hashlib.sha256(result).hexdigest()
    [path] = entry["paths"]
    assert path.startswith("/kaggle/input/models/alice/kjob-tiny/other/kaggle-v1-") and path.endswith("/1")
    source = path.removeprefix("/kaggle/input/models/")
    # Attached pinned, and the ledger keeps the model version as where the run saw it.
    [reader] = rows(two.ws, "reader")
    assert reader.inputs[0]["mounts"] == [path.removeprefix("/kaggle/input/")]
    with two.emulator.store.lock:
        attached = two.emulator.store.kernel("alice", "reader").versions[0].attached
    assert attached["model_data_sources"] == [source]
    # --resume-from: the reader's own v1, a second input beside tiny:v1 (reused, not published again).
    ok(two.push("reader", "--input", "tiny:v1", "--resume-from", "v1", "--wait"))
    again = seen(two.ws, 2)
    assert again["labels"] == {"tiny:v1": "first"} and again["resume"] == ["seen.json"]
    resumed = max(rows(two.ws, "reader"), key=lambda r: r.version)
    assert resumed.parameters["resume"].startswith("/kaggle/input/models/alice/kjob-reader/other/kaggle-v1-")
    assert sorted(variations(two).values()) == [1, 1]


def test_a_local_run_is_published_once_and_reused(two):
    ok(two.kjob("push", "tiny", "-p", "label=made-here", "--wait"))
    ok(two.push("reader", "--input", "tiny@local:v1", "--wait"))
    assert seen(two.ws, 1)["labels"] == {"tiny:local-v1": "made-here"}
    [made] = variations(two)
    assert made.startswith("alice/kjob-tiny/MODEL_FRAMEWORK_OTHER/local-v1-")
    published = json.loads((two.ws.root / ".kjob/published.json").read_text())
    [(_, record)] = published.items()
    assert record["run"] == "tiny:local-v1" and record["source"].endswith("/1")
    # Reused by the next push: no upload, no second variation or version. Kaggle not attaching it is an error.
    source = rows(two.ws, "reader")[0].inputs[0]["mounts"][0].removeprefix("models/")
    two.emulator.faults.set(unattached=[source])
    unattached = two.push("reader", "--input", "tiny@local:v1")
    assert unattached.exit_code == 7 and f"did not attach {source}" in unattached.output, unattached.output
    assert variations(two) == {made: 1}
    with two.emulator.store.lock:
        assert not list((two.emulator.store.root / "_blobs").glob("*.json"))  # no upload left unused


def kjob_process(root, *args, env):
    return subprocess.run([sys.executable, "-c", "from kjob.cli import main; main()", *args], cwd=root,
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=60)


def test_a_push_killed_while_publishing_leaves_no_row_and_no_version(two):
    ok(two.kjob("push", "tiny", "-p", "label=kept", "--wait"))
    killed = kjob_process(two.ws.root, "push", "reader", "--backend", "kaggle", "--input", "tiny@local:v1",
                          env={"KJOB_KILL_AT": "push:publishing"})
    assert killed.returncode == -9, killed.stderr
    assert rows(two.ws, "reader") == []
    assert variations(two) == {}  # the files went up, and the model may exist, but no version came of them
    ok(two.push("reader", "--input", "tiny@local:v1", "--wait"))  # the next push publishes it whole
    assert list(variations(two).values()) == [1]
    assert seen(two.ws, 1)["labels"] == {"tiny:local-v1": "kept"}
    assert [r.version for r in rows(two.ws, "reader")] == [1]


SOURCES_RECIPE = """
title = "Sources"
slug = "sources"
modules = ["pkg/sources.py"]
entry = "main"
accelerator = "none"
kernel_sources = ["alice/tiny-kernel"]
model_sources = [{models}]
"""

SOURCES = '''
"""Lists what it was given."""
import json
import os


def main():
    root = os.environ.get("KAGGLE_INPUT_DIR", "/kaggle/input")
    found = {}
    for here, _, names in os.walk(root):
        for name in names:
            path = os.path.join(here, name)
            found[os.path.relpath(path, root)] = open(path).read()
    with open("found.json", "w") as f:
        json.dump(found, f)
'''


def call(kaggle, user: str, key: str, method: str, body: dict, service: str = "models.ModelApiService") -> dict:
    import requests

    answer = requests.post(f"{kaggle.emulator.url}/api/v1/{service}/{method}", json=body, auth=(user, key), timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_the_emulator_mounts_model_versions_and_the_latest_complete_kernel_output_refusing_others(
        tiny, tmp_path, monkeypatch):
    import requests
    from kaggle_fixtures import start_kaggle

    keys = {"alice": "a" * 32, "bob": "b" * 32}
    kaggle = start_kaggle(tiny, tmp_path, monkeypatch, users=keys)
    try:
        kaggle.write_credentials(keys["alice"])
        for user, model, private, versions in (("bob", "secret-model", True, ["hidden"]),
                                               ("alice", "own-model", True, ["one", "two"])):
            made = []
            for text in versions:
                blob = call(kaggle, user, keys[user], "StartBlobUpload",
                            {"type": "MODEL", "name": "note.txt", "contentLength": len(text)}, "blobs.BlobApiService")
                assert requests.put(blob["createUrl"], data=text.encode(), timeout=10).status_code in (200, 201)
                made.append({"token": blob["token"]})
            call(kaggle, user, keys[user], "CreateModel", {"ownerSlug": user, "slug": model, "title": model,
                                                           "isPrivate": private})
            call(kaggle, user, keys[user], "CreateModelInstance", {"ownerSlug": user, "modelSlug": model, "body": {
                "instanceSlug": "v", "framework": "MODEL_FRAMEWORK_OTHER", "files": made[:1]}})
            for file in made[1:]:
                call(kaggle, user, keys[user], "CreateModelInstanceVersion", {
                    "ownerSlug": user, "modelSlug": model, "framework": "MODEL_FRAMEWORK_OTHER", "instanceSlug": "v",
                    "body": {"files": [file]}})
        ok(kaggle.push("tiny", "-p", "label=done", "--wait"))
        assert kaggle.push("tiny", "-p", "fail=true", "--wait").exit_code != 0
        models = '"alice/own-model/other/v/1", "alice/own-model/other/v", "bob/secret-model/other/v/1", "alice/nothing/other/v/1"'
        kaggle.ws.write("builders/sources.toml", SOURCES_RECIPE.format(models=models))
        kaggle.ws.write("src/pkg/sources.py", SOURCES)
        pushed = kaggle.push("sources", "--wait")
        assert "invalid model sources: bob/secret-model/other/v/1, alice/nothing/other/v/1" in pushed.output
        kaggle.wait_for_session("sources", 1, "complete")
        found = json.loads((kaggle.session("sources", 1).paths.working_dir / "found.json").read_text())
        assert found["models/alice/own-model/other/v/1/note.txt"] == "one"  # by version
        assert found["models/alice/own-model/other/v/2/note.txt"] == "two"  # no version: the latest
        assert not any(name.startswith("models/bob") for name in found)
        # The kernel source: its latest complete version's output (v2 failed), under both layouts.
        for layout in ("notebooks/alice/tiny-kernel", "tiny-kernel"):
            assert json.loads(found[f"{layout}/result.json"])["label"] == "done"
    finally:
        kaggle.emulator.stop()
