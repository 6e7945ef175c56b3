"""Hostile output names, edited and left-over files in download folders, killed archives, fetches
and dataset pushes: the user's own files win, nothing half-written stays, a re-run resumes.
Real kjob commands, real local runs and killed subprocesses, the emulator over real HTTP."""

import json
import os
import signal
import subprocess
import sys
import time
import unicodedata
from pathlib import Path

KJOB = Path(sys.executable).with_name("kjob")

NAMES_RECIPE = """
title = "Names Kernel"
slug = "names-kernel"
modules = ["pkg/names.py"]
entry = "main"
accelerator = "none"

[parameters]
mib = 0
"""

# Written by the run: each name with its content (a big blob when mib > 0).
NAMES_JOB = '''
"""Writes output files with the names the test chose."""
import os

FILES = {files!r}


def main(mib):
    for name, text in FILES.items():
        os.makedirs(os.path.dirname(name) or ".", exist_ok=True)
        with open(name, "w", encoding="utf-8") as f:
            f.write(text)
    if mib:
        with open("blob.bin", "wb") as f:
            for _ in range(mib):
                f.write(os.urandom(1 << 20))
'''


def names_run(ws, files: dict[str, str], *args: str, fetch: bool = True):
    """Run `names` to its end (and fetch its outputs, unless not `fetch`): its download folder."""
    ws.write("builders/names.toml", NAMES_RECIPE)
    ws.write("src/pkg/names.py", NAMES_JOB.format(files=files))
    pushed = ws.kjob("push", "names", *(["--wait"] if fetch else []), *args)
    assert pushed.exit_code == 0, pushed.output
    deadline = time.monotonic() + 60
    while json.loads(ws.kjob("status", "names", "--json").stdout)["status"] != "complete":
        assert time.monotonic() < deadline, "the run never completed"
        time.sleep(0.2)
    return ws.root / "downloads/names/local-v1"


def temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(".*") if p.name.endswith((".part", ".restore")) or ".restore-" in p.name]


def warnings(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("warning: ")]


def kill_when(process: subprocess.Popen, ready, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not ready():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "never got there"
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)


def background_kjob(*args: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen([str(KJOB), *args], env={**os.environ, **env}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


# -- 1. collisions: your files and kjob's own win -------------------------------------------


NFC = unicodedata.normalize("NFC", "café.txt")
NFD = unicodedata.normalize("NFD", "café.txt")


def test_outputs_colliding_with_your_files_or_each_other_are_reported_and_yours_are_kept(tiny):
    folder = names_run(tiny, {"notes.txt": "hostile notes", "Mine.txt": "hostile mine", NFC: "composed",
                              NFD: "decomposed", "log.txt": "hostile log", "status.json": "hostile status",
                              ".kjob-1-deadbeef.part": "looks like kjob's", "ok.txt": "fine"}, fetch=False)
    output = folder / "output"
    output.mkdir(parents=True)
    kept, lost = sorted([NFC, NFD])  # the first listed of two names for one file is stored
    (output / "notes.txt").write_text("my own notes")  # the user's own files, put there before any download
    (output / "mine.txt").write_text("my own mine")
    for force in ([], ["--force"]):  # --force replaces your edits of kjob's downloads, never your own files
        result = tiny.kjob("fetch", "names", "--output", *force)
        assert result.exit_code == 7, result.output
        shown = warnings(result)
        assert len(shown) == 4, result.stderr
        assert any("'notes.txt'" in line and "a file of yours" in line for line in shown)
        assert any("'Mine.txt'" in line and "output/mine.txt" in line for line in shown)
        assert any(repr(lost) in line and "another Unicode form" in line for line in shown)
        assert any(".kjob-1-deadbeef.part" in line and "temporary" in line for line in shown)
        assert (output / "notes.txt").read_text() == "my own notes"
        assert (output / "mine.txt").read_text() == "my own mine"
        assert not (output / "Mine.txt").exists() and not (output / lost).exists()
        assert (output / kept).read_text() == {NFC: "composed", NFD: "decomposed"}[kept]
        assert (output / "ok.txt").read_text() == "fine"
        # outputs named like kjob's own files land in output/, never over kjob's
        assert (output / "log.txt").read_text() == "hostile log"
        assert "hostile" not in (folder / "log.txt").read_text()
        assert json.loads((folder / "status.json").read_text())["kernel"] == "names"
        assert not (output / ".kjob-1-deadbeef.part").exists()


def test_an_output_into_a_linked_folder_of_yours_is_not_written_out_of_the_folder(tiny, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    folder = names_run(tiny, {"data/x.txt": "hostile", "ok.txt": "fine"}, fetch=False)
    (folder / "output").mkdir(parents=True)
    (folder / "output/data").symlink_to(elsewhere)
    result = tiny.kjob("fetch", "names", "--output")
    assert result.exit_code == 7 and "'data/x.txt'" in result.stderr and "link" in result.stderr
    assert list(elsewhere.iterdir()) == [] and (folder / "output/ok.txt").read_text() == "fine"


# -- 2. kjob's own files, edited, are kept too ----------------------------------------------


def test_an_edited_log_is_kept_until_force_and_an_untouched_one_is_rewritten(tiny):
    assert tiny.kjob("push", "tiny", "--wait").exit_code == 0
    folder = tiny.root / "downloads/tiny/local-v1"
    log = folder / "log.txt"
    original = log.read_text()
    assert "wrote result.json" in original
    again = tiny.kjob("fetch", "tiny", "--output")  # nothing edited: no false alarm
    assert again.exit_code == 0, again.output
    os.utime(log, (1, 1))  # touched, not changed: still kjob's
    assert tiny.kjob("fetch", "tiny").exit_code == 0
    log.write_text(original + "my notes about this run\n")
    listing = folder / "outputs.json"
    listing.write_text("[]\n")
    refused = tiny.kjob("fetch", "tiny", "--output")
    assert refused.exit_code == 8, refused.output
    error = [line for line in refused.stderr.splitlines() if line.startswith("error: ")]
    assert len(error) == 1 and "downloads/tiny/local-v1/log.txt" in error[0] and "outputs.json" in error[0]
    assert "--force" in error[0]
    assert log.read_text().endswith("my notes about this run\n") and listing.read_text() == "[]\n"
    assert (folder / "output/result.json").is_file()  # the rest of the fetch went on
    forced = tiny.kjob("fetch", "tiny", "--force")
    assert forced.exit_code == 0, forced.output
    assert log.read_text() == original and json.loads(listing.read_text())[0]["name"] == "result.json"


# -- 3, 6. what a killed archive or fetch leaves is removed ---------------------------------


def test_a_killed_archive_leaves_a_part_that_the_next_archive_removes(tiny):
    folder = names_run(tiny, {"a.part": "an output that merely ends in .part"}, "-p", "mib=48")
    assert tiny.kjob("fetch", "names", "--output").exit_code == 0
    blob = (folder / "output/blob.bin").read_bytes()
    kernel = folder.parent
    process = background_kjob("runs", "archive", "names", "--version", "1", KJOB_WORKSPACE=str(tiny.root))
    kill_when(process, lambda: [p for p in kernel.glob(".*.part") if p.stat().st_size > 0])
    assert temporaries(kernel) and folder.is_dir()  # the killed archive's half-written file
    archived = tiny.kjob("runs", "archive", "names", "--version", "1")
    assert archived.exit_code == 0, archived.output
    assert temporaries(kernel) == [] and not folder.exists()
    process = background_kjob("runs", "archive", "names", "--version", "1", "--restore",
                              KJOB_WORKSPACE=str(tiny.root))
    kill_when(process, lambda: any(p.is_dir() for p in temporaries(kernel)))
    assert temporaries(kernel)  # the killed restore's half-filled folder
    restored = tiny.kjob("runs", "archive", "names", "--version", "1", "--restore")
    assert restored.exit_code == 0, restored.output
    assert (folder / "output/blob.bin").read_bytes() == blob and temporaries(kernel) == []
    assert (folder / "output/a.part").read_text() == "an output that merely ends in .part"  # archived, not dropped


def test_a_killed_fetch_leaves_a_part_that_the_next_fetch_removes(kaggle):
    assert kaggle.push("tiny", "--wait").exit_code == 0
    output = kaggle.ws.root / "downloads/tiny/v1/output"
    (output / "result.json").unlink()
    (output.parent / ".fetched.json").unlink()
    kaggle.emulator.faults.set(drop_downloads=1, drop_fraction=0.5)  # then it waits a minute to try again
    process = background_kjob("fetch", "tiny", "--output", KJOB_KAGGLE_RETRY_DELAY="60")
    kill_when(process, lambda: [p for p in temporaries(output) if p.stat().st_size > 0])
    assert temporaries(output)
    writer = subprocess.Popen(["sleep", "60"])  # a fetch still running beside: its file stays
    try:
        live = output / f".kjob-{writer.pid}-0123abcd.part"
        live.write_bytes(b"half")
        abandoned = output / f".kjob-{writer.pid}-4567cdef.part"  # its pid is someone else's by now
        abandoned.write_bytes(b"old")
        os.utime(abandoned, (time.time() - 3 * 86400,) * 2)
        fetched = kaggle.kjob("fetch", "tiny", "--output")
        assert fetched.exit_code == 0, fetched.output
        assert temporaries(output) == [live]
        assert json.loads((output / "result.json").read_text())["label"] == "run"
        busy = kaggle.kjob("runs", "archive", "tiny", "--version", "1", "--backend", "kaggle")
        assert busy.exit_code == 8 and "being written by a fetch still running" in busy.stderr
    finally:
        writer.kill()
        writer.wait()
    assert kaggle.kjob("fetch", "tiny", "--output").exit_code == 0
    assert temporaries(output.parent) == []


# -- 4. names as long as a file system allows -----------------------------------------------


def test_output_names_of_244_to_255_bytes_are_fetched_and_archived(tiny):
    names = {"a" * 251 + ".txt": "255 bytes", "sub/" + "b" * 240 + ".txt": "244 bytes", "é" * 125 + ".bin": "254"}
    folder = names_run(tiny, names)
    result = tiny.kjob("fetch", "names", "--output")
    assert result.exit_code == 0, result.output
    for name, text in names.items():
        assert (folder / "output" / name).read_text() == text
    assert tiny.kjob("runs", "archive", "names", "--version", "1").exit_code == 0
    assert tiny.kjob("runs", "archive", "names", "--version", "1", "--restore").exit_code == 0
    assert all((folder / "output" / name).read_text() == text for name, text in names.items())


# -- 5. a killed dataset push, run again ------------------------------------------------------


def reservations(kaggle) -> int:
    with kaggle.emulator.store.lock:
        return sum(1 for method, _ in kaggle.emulator.store.requests if method == "StartBlobUpload")


def test_a_killed_dataset_push_run_again_sends_only_what_was_not_uploaded(kaggle):
    data = kaggle.ws.root / "big"
    data.mkdir()
    contents = {f"part{i}.bin": os.urandom(3 << 20) for i in range(3)}
    for name, content in contents.items():
        (data / name).write_bytes(content)
    blobs = kaggle.emulator.store.root / "_blobs"
    kaggle.emulator.faults.set(delay=1.0, delay_count=-1, delay_method="StartBlobUpload")
    process = background_kjob("dataset", "push", "big", "--as", "alice/big-data", KJOB_WORKSPACE=str(kaggle.ws.root))
    kill_when(process, lambda: blobs.is_dir() and len([p for p in blobs.iterdir() if len(p.name) == 32]) >= 2)
    kaggle.emulator.faults.set(delay=0.0, delay_count=0, delay_method=None)
    time.sleep(1.5)  # the killed push's last reservation, still delayed, is answered to no one
    assert "alice/big-data" not in kaggle.emulator.store.datasets
    before = reservations(kaggle)
    again = kaggle.kjob("dataset", "push", "big", "--as", "alice/big-data")
    assert again.exit_code == 0, again.output
    assert "alice/big-data v1 (new dataset): 3 files" in again.stdout
    assert reservations(kaggle) - before == 1  # only the file the killed push had not sent
    version = kaggle.emulator.store.datasets["alice/big-data"].version(1)
    assert {name: path.read_bytes() for name, path in version.files()} == contents
    assert json.loads((kaggle.ws.root / ".kjob/uploads.json").read_text()) == {}  # used: nothing left to reuse


def test_a_dataset_that_already_exists_when_created_gets_a_new_version(kaggle):
    kaggle.ws.write("mydata/a.txt", "one\n")
    assert kaggle.kjob("dataset", "push", "mydata", "--as", "alice/my-data").exit_code == 0
    kaggle.ws.write("mydata/a.txt", "two\n")
    # Kaggle still processing the killed push's dataset: not found at first, "already exists" on create
    kaggle.emulator.faults.set(fail_next=[404])
    again = kaggle.kjob("dataset", "push", "mydata", "--as", "alice/my-data")
    assert again.exit_code == 0, again.output
    assert "alice/my-data v2 (new version)" in again.stdout
    dataset = kaggle.emulator.store.datasets["alice/my-data"]
    assert [path.read_text() for _, path in dataset.version(2).files()] == ["two\n"]
