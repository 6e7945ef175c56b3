"""Kaggle's limits, checked before anything is sent (and nothing recorded), and the accelerator
and image a push asks for: kjob CLI -> kagglesdk -> HTTP -> the emulator on 127.0.0.1.
The limits themselves live in kjob.kaggle_platform, each with its source.
"""

import json

import pytest
from kaggle_fixtures import start_kaggle

from kjob.kaggle_platform import OUTPUT_FILES_LISTED, SESSION_LIMIT, SOURCE_LIMIT, TPU_SHAPES
from kjob.runs.ledger import Ledger

TPU_RECIPE = """
title = "Tiny Tpu Kernel"
slug = "tiny-tpu-kernel"
modules = ["pkg/util.py", "pkg/job.py"]
entry = "main"
accelerator = "tpu"
dataset_sources = ["someone/some-data"]
{extra}
[parameters]
steps = 3
rate = 0.5
label = "tpu"
fail = false
sleep = 0.0
"""


@pytest.fixture
def kaggle(tiny, tmp_path, monkeypatch):
    kaggle = start_kaggle(tiny, tmp_path, monkeypatch)
    kaggle.emulator.faults.set(hold=True)  # nothing runs: these tests are about what is sent
    yield kaggle
    kaggle.emulator.stop()


def one_error_line(result) -> str:
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def runs(ws):
    path = ws.root / ".kjob/ledger.sqlite3"
    if not path.exists():
        return []
    with Ledger(path) as ledger:
        return ledger.runs()


def refused_before_anything(kaggle, result, code: int) -> str:
    """The push was refused with one line, and nothing reached Kaggle or the workspace."""
    assert result.exit_code == code, result.output
    line = one_error_line(result)
    assert kaggle.emulator.requests("SaveKernel") == []
    assert runs(kaggle.ws) == []
    assert not (kaggle.ws.root / "kernels").exists()  # not even the built kernel was written
    return line


# -- the session timeout against the accelerator's limit ------------------------------------

def test_a_tpu_session_over_9_hours_is_refused_before_anything_is_sent(kaggle):
    kaggle.ws.write("builders/tinytpu.toml", TPU_RECIPE.format(extra="session_timeout = 43200"))
    line = refused_before_anything(kaggle, kaggle.push("tinytpu"), 2)
    assert ("tinytpu: session timeout 12.0 h is over Kaggle's 9 h limit for TPU sessions: lower session_timeout "
            "in builders/tinytpu.toml (or push --timeout 32400); nothing was pushed") in line
    over = kaggle.push("tinytpu", "--timeout", str(9 * 3600 + 60))
    assert "over Kaggle's 9 h limit for TPU sessions" in refused_before_anything(kaggle, over, 2)


@pytest.mark.parametrize("recipe, label", [("tinygpu", "GPU"), ("tiny", "CPU")])
def test_a_cpu_or_gpu_session_over_12_hours_is_refused_and_12_hours_is_pushed(kaggle, recipe, label):
    limit = SESSION_LIMIT["gpu" if label == "GPU" else "none"].value
    over = kaggle.push(recipe, "--timeout", str(limit + 1))
    assert f"over Kaggle's 12 h limit for {label} sessions" in refused_before_anything(kaggle, over, 2)
    assert kaggle.push(recipe, "--timeout", str(limit)).exit_code == 0
    assert kaggle.emulator.requests("SaveKernel")[-1]["sessionTimeoutSeconds"] == limit == 12 * 3600


def test_a_tpu_recipe_gets_the_current_tpu_shape_and_its_own_limit_by_default(kaggle):
    kaggle.ws.write("builders/tinytpu.toml", TPU_RECIPE.format(extra=""))
    result = kaggle.push("tinytpu")
    assert result.exit_code == 0, result.output
    body = kaggle.emulator.requests("SaveKernel")[-1]
    assert (body["machineShape"], body["enableTpu"], body["enableGpu"]) == ("TpuV5E8", True, False)
    assert body["sessionTimeoutSeconds"] == SESSION_LIMIT["tpu"].value == 9 * 3600
    assert TPU_SHAPES[0] == "TpuV5E8"  # kaggle-cli #1198: the editor's "TPU v5e-8"


def test_a_machine_shape_kaggle_does_not_know_or_of_another_accelerator_is_refused(kaggle):
    kaggle.ws.write("builders/tinytpu.toml", TPU_RECIPE.format(extra='machine_shape = "TpuV9000"'))
    line = refused_before_anything(kaggle, kaggle.push("tinytpu"), 2)
    assert "machine_shape 'TpuV9000' is not one of Kaggle's (GPU: NvidiaTeslaT4" in line
    kaggle.ws.write("builders/tinytpu.toml", TPU_RECIPE.format(extra='machine_shape = "NvidiaTeslaT4"'))
    line = refused_before_anything(kaggle, kaggle.push("tinytpu"), 2)
    assert "machine_shape 'NvidiaTeslaT4' is a GPU but accelerator is 'tpu'" in line


# -- the built kernel's source against 1 MB --------------------------------------------------

def test_a_source_over_1_mb_is_refused_naming_the_biggest_modules(kaggle):
    table = "TABLE = [\n" + "".join(f"    {i!r},\n" for i in range(SOURCE_LIMIT.value // 8)) + "]\n"
    kaggle.ws.write("src/pkg/table.py", table)
    recipe = (kaggle.ws.root / "builders/tiny.toml").read_text()
    kaggle.ws.write("builders/tiny.toml", recipe.replace('modules = ["pkg/util.py", "pkg/job.py"]',
                                                         'modules = ["pkg/table.py", "pkg/util.py", "pkg/job.py"]'))
    line = refused_before_anything(kaggle, kaggle.push("tiny"), 3)
    assert "tiny: the notebook's source is 1." in line and "over Kaggle's limit of 1.00 MB" in line
    assert "biggest: src/pkg/table.py 1." in line and "src/pkg/job.py" in line
    assert "into a dataset (kjob dataset push)" in line


def test_a_source_just_under_1_mb_is_pushed(kaggle):
    kaggle.ws.write("src/pkg/table.py", "TABLE = '" + "x" * (SOURCE_LIMIT.value - 30_000) + "'\n")
    recipe = (kaggle.ws.root / "builders/tiny.toml").read_text()
    kaggle.ws.write("builders/tiny.toml", recipe.replace('modules = ["pkg/util.py", "pkg/job.py"]',
                                                         'modules = ["pkg/table.py", "pkg/util.py", "pkg/job.py"]'))
    result = kaggle.push("tiny")
    assert result.exit_code == 0, result.output
    assert len(kaggle.emulator.requests("SaveKernel")[-1]["text"].encode()) < SOURCE_LIMIT.value


# -- the output limits, warned about from the smoke run ---------------------------------------

def test_the_smoke_run_warns_of_outputs_past_20_gb_and_past_the_listed_500(tiny):
    job = (tiny.root / "src/pkg/job.py").read_text()
    tiny.write("src/pkg/job.py", job.replace('    print("wrote result.json', '''    with open("big.bin", "wb") as f:
        f.truncate(21 * 10**9)  # sparse: its size counts, no disk is used
    import os
    os.makedirs("many", exist_ok=True)
    for i in range(501):
        open(f"many/{i}.txt", "w").close()
    print("wrote result.json'''))
    result = tiny.kjob("build", "tiny", "--smoke")
    assert result.exit_code == 0, result.output
    assert ("the outputs take 21.0 GB, and Kaggle's /kaggle/working holds at most 20 GB: keep fewer or smaller "
            "files") in result.output
    assert (f"the run writes 503 output files, and Kaggle lists only the first {OUTPUT_FILES_LISTED.value} "
            "(kaggle-cli #463, #664)") in result.output


# -- the accelerator and image asked for --------------------------------------------------------

def test_a_tpu_push_that_got_the_standard_image_is_an_error_and_still_recorded(kaggle):
    kaggle.ws.write("builders/tinytpu.toml", TPU_RECIPE.format(extra=""))
    # Kaggle makes the version, and its metadata says no TPU (kaggle-cli #1197)
    kaggle.emulator.faults.set(mangle_next=[{"method": "GetKernel", "answer": {"metadata": {
        "id": 1, "ref": "alice/tiny-tpu-kernel", "currentVersionNumber": 1, "enableTpu": False, "machineShape": "",
        "datasetDataSources": ["someone/some-data"]}}}])
    result = kaggle.push("tinytpu")
    assert result.exit_code == 7, result.output
    line = one_error_line(result)
    assert ("Kaggle made alice/tiny-tpu-kernel v1 but asked for accelerator 'tpu' (TpuV5E8) but Kaggle's metadata "
            "says enableTpu false, enableGpu false, machineShape '': it runs on the standard image without a TPU "
            "(kaggle-cli #1197)") in line
    assert [(r.kernel, r.version) for r in runs(kaggle.ws)] == [("tinytpu", 1)]  # it runs: recorded


def test_a_gpu_push_given_another_shape_is_an_error(kaggle):
    kaggle.emulator.faults.set(mangle_next=[{"method": "GetKernel", "answer": {"metadata": {
        "id": 1, "ref": "alice/tiny-gpu-kernel", "currentVersionNumber": 1, "enableGpu": True,
        "machineShape": "NvidiaTeslaP100", "datasetDataSources": ["someone/some-data"]}}}])
    result = kaggle.push("tinygpu")
    assert result.exit_code == 7, result.output
    assert "asked for machine shape NvidiaTeslaT4 but Kaggle's metadata says NvidiaTeslaP100" in one_error_line(result)
    assert len(runs(kaggle.ws)) == 1


def test_a_pinned_docker_image_is_sent_and_recorded_with_the_run(kaggle):
    image = "gcr.io/kaggle-images/python@sha256:" + "ab" * 32
    recipe = (kaggle.ws.root / "builders/tiny.toml").read_text()
    kaggle.ws.write("builders/tiny.toml", recipe.replace('accelerator = "none"',
                                                         f'accelerator = "none"\ndocker_image = "{image}"'))
    result = kaggle.push("tiny")
    assert result.exit_code == 0, result.output
    assert kaggle.emulator.requests("SaveKernel")[-1]["dockerImage"] == image
    (run,) = runs(kaggle.ws)
    assert run.handle["docker_image"] == image
    meta = json.loads((kaggle.ws.root / "kernels/tiny/kernel-metadata.json").read_text())
    assert meta["docker_image"] == image
    kaggle.ws.write("builders/tiny.toml", recipe.replace('accelerator = "none"',
                                                         'accelerator = "none"\ndocker_image = "--privileged"'))
    bad = kaggle.push("tiny")
    assert bad.exit_code == 2 and "docker_image: expected a Kaggle image" in one_error_line(bad)


# -- an older version's outputs: served whole by DownloadKernelOutput ----------------------------

def test_an_older_versions_outputs_are_fetched_through_download_kernel_output(kaggle):
    import shutil

    kaggle.emulator.faults.set(hold=False)
    assert kaggle.push("tiny", "-p", "label=first", "--wait").exit_code == 0
    assert kaggle.push("tiny", "-p", "label=second", "--wait").exit_code == 0
    root = kaggle.ws.root
    log = (root / "downloads/tiny/v1/log.txt").read_bytes()
    shutil.rmtree(root / "downloads/tiny/v1/output")
    (root / "downloads/tiny/v1/.fetched.json").unlink(missing_ok=True)
    latest = kaggle.ws.snapshot("downloads/tiny/v2")
    old = kaggle.kjob("fetch", "tiny", "--version", "1", "--output")
    assert old.exit_code == 0, old.output
    assert json.loads((root / "downloads/tiny/v1/output/result.json").read_text())["label"] == "first"
    assert (root / "downloads/tiny/v1/log.txt").read_bytes() == log  # kept: Kaggle serves the latest log only
    assert "note: log.txt not fetched: tiny v1 is no longer the latest version" in old.stderr
    assert kaggle.ws.snapshot("downloads/tiny/v2") == latest  # nothing filed under another version
    (asked,) = kaggle.emulator.requests("DownloadKernelOutput")
    assert (asked["ownerSlug"], asked["kernelSlug"], asked["versionNumber"]) == ("alice", "tiny-kernel", 1)
    assert not [p for p in (root / "downloads").rglob(".kjob-*")]  # the archive is gone
    plain = kaggle.kjob("fetch", "tiny", "--version", "1")  # without --output: the log alone, refused as before
    assert plain.exit_code == 7
    assert ("Kaggle serves the log of the latest version only, so that of v1 cannot be fetched any more (its "
            "outputs can: kjob fetch tiny --version kaggle-v1 --output)") in one_error_line(plain)


def test_an_older_version_kaggle_does_not_serve_is_refused_as_before(kaggle):
    assert kaggle.push("tiny").exit_code == 0  # held: v1 never ends, and has no output to download
    assert kaggle.push("tiny").exit_code == 0
    before = kaggle.ws.snapshot(".")
    old = kaggle.kjob("fetch", "tiny", "--version", "1", "--output")
    assert old.exit_code == 7, old.output
    assert ("tiny v1 is no longer the latest version of alice/tiny-kernel (v2 is): Kaggle serves the outputs and log "
            "of the latest version only (DownloadKernelOutput by versionNumber:") in one_error_line(old)
    assert kaggle.ws.snapshot(".") == before
