"""`kjob fetch`: a run's status, log and output listing (and with --output, its files) into
downloads/<kernel>/<version>/, never touching another version's folder.

- Only a finished run's files are downloaded: while it runs, its outputs are listed (they
  may be half-written), so nothing truncated ever lands under a final name.
- Each file streams to a temporary name unique to this process, is checked against the
  announced size and renamed only when complete; its SHA-256 (computed while it streams)
  is recorded in `.fetched.json`, with the remote stamp used to skip unchanged files.
- A local file that differs from what kjob downloaded (you edited it) is never silently
  replaced: fetch names it and refuses (exit 8) unless --force. So are status.json, log.txt
  and outputs.json, which kjob writes at every fetch (`.written.json` records what it wrote).
- Your own files win every collision, even with --force: an output named like a file kjob
  never downloaded (one you put in output/), or differing from one only in case or Unicode
  normalisation (one file on macOS and Windows), or named like kjob's temporary files, is not
  downloaded and is named in a warning (exit 7), as are names that collide with each other.
- A fetch killed half-way leaves a temporary file (`.kjob-<pid>-<random>.part`): the next fetch
  of that kernel removes it, once its writer is gone.
- A folder records the identity of the remote kernel its files came from; files of another
  kernel (a deleted and re-created one) are refused.
"""

import hashlib
import json
import os
import re
import threading
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from kjob.backends.base import Backend, LogEntry, RemoteFile
from kjob.errors import BackendError, LocalFileError, NotServed, UsageError
from kjob.fsutil import (atomic_write_json, atomic_write_text, is_temporary_name, read_json, safe_relative_path,
                         sha256_file, sweep_temporaries, temporary_path)
from kjob.runs.ledger import Ledger
from kjob.runs.metrics import ModeBook, read_run_metrics, recipe_spec
from kjob.paths import DownloadPaths
from kjob.runs.record import Run, run_record
from kjob.lifecycle.watch import refresh
from kjob.workspace import Workspace

_CHUNK = 1 << 20
_MAX_NAME_BYTES = 255  # one path component, on every common file system


@dataclass
class FetchReport:
    run: Run
    folder: Path
    listed: int = 0
    downloaded: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # names that would escape the folder, never written
    problems: list[str] = field(default_factory=list)  # "name: why" for names that cannot be stored here
    conflicts: list[str] = field(default_factory=list)  # local files edited since kjob wrote them
    gone_remotely: list[str] = field(default_factory=list)  # local copies with no remote file
    waiting: bool = False  # the run has not ended: outputs listed, not downloaded
    notes: list[str] = field(default_factory=list)  # one line each: what was left as it was, and why


def log_as_text(entries: list[LogEntry]) -> str:
    """Plain text with each stderr line marked; stdout lines as they are."""
    lines = []
    for entry in entries:
        for line in entry.text.splitlines():
            lines.append(f"[stderr] {line}" if entry.stream == "stderr" else line)
    return "\n".join(lines) + ("\n" if lines else "")


def fetch_run(ws: Workspace, ledger: Ledger, backend: Backend, run: Run, outputs: bool = False,
              pattern: str | None = None, force: bool = False) -> FetchReport:
    try:
        wanted = re.compile(pattern) if pattern else None
    except re.error as exc:
        raise UsageError(f"--pattern: {exc}") from exc
    run = refresh(ledger, backend, run)
    if run.version is None:
        raise UsageError(f"{run.ref} was never confirmed by {run.backend}: there is nothing to fetch")
    paths = ws.paths.download(run.kernel, run.backend, run.version, run.incarnation)
    if run.archived:
        raise UsageError(f"{run.ref} is archived in {ws.paths.relative(paths.archive)}: restore it first "
                         f"(kjob runs archive {run.kernel} --version {run.version} --backend {run.backend} --restore)")
    _check_same_kernel(ws, paths, run)
    sweep_temporaries(paths.folder.parent)  # left by a killed archive or restore
    sweep_temporaries(paths.folder, recursive=True)  # left by a killed fetch
    report = FetchReport(run, paths.folder)
    try:
        log = log_as_text(backend.log(run))
    except NotServed as exc:
        if not outputs:
            raise
        log = None  # the outputs are still served (Kaggle: an older version's): its log.txt stays as it was
        report.notes.append(f"log.txt not fetched: {exc.message}")
    listing = backend.list_outputs(run)
    report.listed = len(listing)
    own = {paths.status: _json_text({**run_record(run), "url": backend.url(run)}),
           paths.listing: _json_text([{"name": f.name, "size": f.size} for f in listing])}
    if log is not None:
        own[paths.log] = log
    for path, text in own.items():
        if not _write_own_file(paths, path, text, force):
            report.conflicts.append(ws.paths.relative(path))
    if outputs and not run.state.final:
        report.waiting = True
    elif outputs:
        _download_outputs(backend, run, paths, listing, wanted, report, force)
        spec = recipe_spec(ws, run.kernel)
        found = summarize_metrics(paths.output_dir, ModeBook([spec]), paths.log, spec.log if spec else (),
                                  report.notes)
        for source, values in found.items():
            report.run = ledger.set_metrics(report.run, values, source)
    if run.state.final and (outputs or run.state.status != "complete"):
        # what there is to keep is here now: a sweep may push the kernel's next version
        report.run = ledger.mark_fetched(report.run)
    return report


def _json_text(data) -> str:
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def _write_own_file(paths: DownloadPaths, path: Path, text: str, force: bool) -> bool:
    """Write one of kjob's own files (status, log, listing) unless it was edited since kjob
    wrote it (then False; --force writes it anyway). A folder fetched before kjob kept a
    record of these files has them replaced, as it always did."""
    record = read_json(paths.written_record, None)
    entry = (record or {}).get(path.name)
    data = text.encode("utf-8")
    if path.exists() and not force and record is not None:
        local = _local_digest(path, entry)
        if local and local != hashlib.sha256(data).hexdigest():
            return False
    atomic_write_text(path, text)
    stat = path.stat()
    record = read_json(paths.written_record, {}) or {}  # re-read: a fetch beside this one may have written
    record[path.name] = {"sha256": hashlib.sha256(data).hexdigest(), "local": [stat.st_size, stat.st_mtime_ns]}
    atomic_write_json(paths.written_record, record)
    return True


def _check_same_kernel(ws: Workspace, paths: DownloadPaths, run: Run) -> None:
    recorded = (read_json(paths.status, {}) or {}).get("identity")
    if recorded and run.identity and str(recorded) != str(run.identity):
        raise LocalFileError(f"{ws.paths.relative(paths.folder)} holds the outputs of another kernel (id {recorded}, "
                             f"not {run.identity}); kjob does not mix them")


def _download_outputs(backend, run, paths: DownloadPaths, listing, wanted, report: FetchReport, force: bool) -> None:
    remote_names, taken = set(), {}
    local = _local_names(paths.output_dir)
    for file in listing:
        relative = safe_relative_path(file.name)
        if relative is None:
            report.refused.append(file.name)
            continue
        name = relative.as_posix()
        problem = _storage_problem(name, taken, local) or _link_problem(paths.output_dir, name)
        if problem:
            report.problems.append(f"{name!r}: {problem}")
            continue
        remote_names.add(name)
        if wanted and not wanted.search(file.name):
            continue
        try:
            _fetch_file(backend, run, paths, file, name, report, force)
        except OSError as exc:
            if exc.errno in (28, 122):  # no space left, quota: nothing further can succeed
                raise
            report.problems.append(f"{name!r}: cannot be stored here ({exc.strerror or exc})")
    if paths.output_dir.is_dir():
        downloaded = read_json(paths.fetch_record, {}) or {}  # your own files were never remote
        for local in sorted(paths.output_dir.rglob("*")):
            name = local.relative_to(paths.output_dir).as_posix()
            if local.is_file() and name in downloaded and name not in remote_names:
                report.gone_remotely.append(name)


def _fold(name: str) -> str:
    """The name as macOS and Windows compare names: case and Unicode normalisation ignored."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFD", name).casefold())


def _local_names(output_dir: Path) -> dict[str, list[str]]:
    """Every file and folder already under output/ (kjob's downloads and your own), by folded name."""
    found: dict[str, list[str]] = {}
    if output_dir.is_dir():
        for path in sorted(output_dir.rglob("*")):
            if not is_temporary_name(path.name):
                name = path.relative_to(output_dir).as_posix()
                found.setdefault(_fold(name), []).append(name)
    return found


def _storage_problem(name: str, taken: dict[str, str], local: dict[str, list[str]] | None = None) -> str | None:
    """Why `name` cannot be stored beside the names already taken by other outputs, or the
    files already under output/ (`local`), or None.

    Names are compared folded: on macOS and Windows `A.txt` and `a.txt` are one file, and so
    are a name's composed and decomposed Unicode forms. A local file keeps its name: an output
    that differs from it only so is not downloaded."""
    local = local or {}
    parts = name.split("/")
    if any(len(part.encode("utf-8")) > _MAX_NAME_BYTES for part in parts):
        return f"a part of the name is longer than {_MAX_NAME_BYTES} bytes"
    if any(is_temporary_name(part) for part in parts):
        return "has the form of kjob's temporary files, which fetch removes"
    folded = _fold(name)
    if folded in taken:
        other = taken[folded]
        if other != name and unicodedata.normalize("NFC", name) == unicodedata.normalize("NFC", other):
            return f"is {taken[folded]!r} written in another Unicode form (one file on macOS)"
        return f"collides with {taken[folded]!r}"
    if folded in local and name not in local[folded]:
        return f"differs only in case or accents from the local output/{local[folded][0]}, which was kept"
    folded_parts, exact_parts = folded.split("/"), name.split("/")
    for i in range(1, len(folded_parts)):
        prefix, exact = "/".join(folded_parts[:i]), "/".join(exact_parts[:i])
        if prefix in taken:
            return f"needs {taken[prefix]!r} to be a folder, but it is a file"
        if prefix in local and exact not in local[prefix]:
            return (f"its folder differs only in case or accents from the local output/{local[prefix][0]}, "
                    "which was kept")
    if any(other.startswith(folded + "/") for other in taken):
        return "is also a folder of other output files"
    taken[folded] = name
    return None


def _link_problem(output_dir: Path, name: str) -> str | None:
    """Why writing `name` would leave output/ through a link you made there, or None."""
    parent = (output_dir / name).parent
    while not parent.exists() and parent != output_dir:
        parent = parent.parent
    if parent.exists() and not parent.resolve().is_relative_to(output_dir.resolve()):
        link = parent.relative_to(output_dir).as_posix()
        return f"would be written through the link output/{link}, out of the folder"
    return None


def _fetch_file(backend, run, paths: DownloadPaths, file: RemoteFile, name: str, report: FetchReport,
                force: bool) -> None:
    target = paths.output_dir / name
    known = (read_json(paths.fetch_record, {}) or {}).get(name)
    same_remote = bool(known) and (known.get("size"), known.get("stamp")) == (file.size, file.stamp)
    local = _local_digest(target, known)  # None: not there; "": what kjob wrote; else the edited content's
    if same_remote and local == "":
        report.unchanged.append(file.name)
        return
    if same_remote and local and not force:  # edited, and the remote copy is the one it came from
        report.conflicts.append(name)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = temporary_path(target.parent)  # short: `name` may already be 255 bytes long
    try:
        digest = _download_hashed(backend, run, file, partial)
        size = partial.stat().st_size
        if file.size is not None and size != file.size:
            raise BackendError(f"{file.name}: got {size} bytes, expected {file.size}")
        if local and local != digest and not known:  # kjob never wrote it: your own file, kept even with --force
            report.problems.append(f"{name!r}: output/{name} is a file of yours (kjob did not download it), "
                                   "which was kept; move it aside to download this one")
            return
        if local and local != digest and not force:
            report.conflicts.append(name)
            return
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    stat = target.stat()
    entry = {"size": file.size, "stamp": file.stamp, "sha256": digest, "local": [stat.st_size, stat.st_mtime_ns]}
    record = read_json(paths.fetch_record, {}) or {}  # re-read: another fetch may have added files
    record[name] = entry
    atomic_write_json(paths.fetch_record, record)  # after each file: an interrupted fetch keeps what it got
    report.downloaded.append(file.name)


def _local_digest(target: Path, known: dict | None) -> str | None:
    """None when `target` does not exist, "" when it is what kjob wrote there, else the SHA-256
    of what is there now (edited, or put there by someone else)."""
    if not target.exists():
        return None
    if not target.is_file():
        return "not a file"
    stat = target.stat()
    if known and known.get("local") == [stat.st_size, stat.st_mtime_ns]:
        return ""  # untouched since kjob renamed it into place: no need to read it
    digest = sha256_file(target)
    return "" if known and digest == known.get("sha256") else digest


def _download_hashed(backend, run, file: RemoteFile, partial: Path) -> str:
    """Download into `partial` (created here, so the name is ours alone) while a second thread
    hashes what has been written so far: on two cores the checksum costs no time."""
    with partial.open("xb"):
        pass
    hasher = _TailHasher(partial)
    hasher.start()
    try:
        backend.download(run, file, partial)
    finally:
        hasher.finish()
    size = partial.stat().st_size
    if hasher.count != size:  # the download rewrote the file from the start: hash it again
        return sha256_file(partial)
    return hasher.hexdigest


class _TailHasher(threading.Thread):
    def __init__(self, path: Path):
        super().__init__(daemon=True)
        self.path, self.count, self.hexdigest = path, 0, ""
        self._done = threading.Event()

    def run(self) -> None:
        digest = hashlib.sha256()
        with self.path.open("rb") as handle:
            while True:
                done = self._done.is_set()  # asked before reading: then an empty read is the end
                chunk = handle.read(_CHUNK)
                if chunk:
                    digest.update(chunk)
                    self.count += len(chunk)
                elif done:
                    break
                else:
                    time.sleep(0.002)
        self.hexdigest = digest.hexdigest()

    def finish(self) -> None:
        self._done.set()
        self.join()


def summarize_metrics(output_dir: Path, modes: ModeBook | None = None, log: Path | None = None, patterns=(),
                      notes: list | None = None) -> dict[str, dict]:
    """What a fetched run's outputs (and log, through the recipe's `[metrics] log` patterns)
    say, by source: every number of metadata.json's `metrics` and `final` tables (nested keys
    joined with dots) and, for each per-step series (metrics.jsonl, TensorBoard events,
    metrics.csv, trainer_state.json, the log), its last and best value with the best's epoch
    or step (`kjob.runs.metrics`). A file the run did not write leaves its source out, so
    earlier values stay recorded; `notes` gets a line for a reader not installed, or for no
    metrics at all."""
    return read_run_metrics(output_dir, modes or ModeBook([]), log, patterns, notes)
