"""`kjob runs archive`: a run's download folder packed into one file beside it, and back.

Packing writes `downloads/<kernel>/<label>.tar.gz` under a temporary name, reads it back to
check every file is in it, renames it into place, then removes the folder and marks the run
archived. Each step can be repeated after an interruption: an archive without its folder is
simply marked. Restoring unpacks into a temporary folder and renames it into place, so the
folder appears whole or not at all; fetch refuses an archived run until it is restored.
An archive or restore killed half-way leaves its temporary file or folder: the next archive,
restore or fetch of that kernel removes it (only once its writer is gone).
"""

import os
import shutil
import tarfile
from pathlib import Path

from kjob.errors import LocalFileError, NotFoundError, UsageError
from kjob.fsutil import is_temporary_name, sweep_temporaries, temporary_path
from kjob.runs.record import Run

_COMPRESSION = 6  # gzip level: most of 9's size at a fraction of its time on big checkpoints


def _paths(ws, run: Run):
    if run.version is None:
        raise UsageError(f"{run.ref} was never confirmed by {run.backend}: there is nothing to archive")
    paths = ws.paths.download(run.kernel, run.backend, run.version, run.incarnation)
    sweep_temporaries(paths.folder.parent)  # what a killed archive or restore left beside it
    return paths


def archive_run(ws, ledger, run: Run) -> tuple[Run, Path]:
    paths = _paths(ws, run)
    folder, archive, shown = paths.folder, paths.archive, ws.paths.relative
    if not run.state.final:
        raise UsageError(f"{run.ref} has not ended ({run.state.status}): archive it once it has")
    if archive.is_file() and not folder.exists():  # packed before, perhaps not yet marked
        return ledger.set_archived(run, True), archive
    if archive.exists():
        raise LocalFileError(f"{shown(archive)} already exists beside {shown(folder)}; move one of them aside")
    if not folder.is_dir():
        raise NotFoundError(f"{run.ref} has nothing fetched in {shown(folder)}: nothing to archive")
    sweep_temporaries(folder, recursive=True)  # downloads a killed fetch left unfinished
    busy = [path for path in folder.rglob(".*") if is_temporary_name(path.name)]
    if busy:
        raise LocalFileError(f"{shown(folder)} is being written by a fetch still running ({shown(busy[0])}); "
                             "archive it once that ends")
    members = {}
    partial = temporary_path(archive.parent)
    try:
        with tarfile.open(partial, "w:gz", compresslevel=_COMPRESSION) as tar:
            tar.add(folder, arcname=folder.name, recursive=False)
            for path in sorted(folder.rglob("*")):
                name = f"{folder.name}/{path.relative_to(folder).as_posix()}"
                tar.add(path, arcname=name, recursive=False)
                members[name] = path.stat().st_size if path.is_file() else None
        with tarfile.open(partial, "r:gz") as tar:
            packed = {m.name: m.size if m.isfile() else None for m in tar.getmembers()}
        if any(packed.get(name) != size for name, size in members.items()):
            raise LocalFileError(f"{shown(archive)}: the archive read back does not hold every file; "
                                 f"{shown(folder)} was left as it is")
        os.replace(partial, archive)
    finally:
        partial.unlink(missing_ok=True)
    shutil.rmtree(folder)
    return ledger.set_archived(run, True), archive


def restore_run(ws, ledger, run: Run) -> tuple[Run, Path]:
    paths = _paths(ws, run)
    folder, archive, shown = paths.folder, paths.archive, ws.paths.relative
    if not archive.is_file():
        if run.archived:
            raise NotFoundError(f"{run.ref} is marked archived, but {shown(archive)} is missing")
        raise UsageError(f"{run.ref} is not archived (no {shown(archive)})")
    if folder.exists():
        raise LocalFileError(f"{shown(folder)} exists already; move it aside to restore {shown(archive)}")
    staging = temporary_path(folder.parent, "restore")
    staging.mkdir()
    try:
        with tarfile.open(archive, "r:gz") as tar:
            outside = [m.name for m in tar.getmembers()
                       if m.name != folder.name and not m.name.startswith(folder.name + "/")]
            if outside:
                raise LocalFileError(f"{shown(archive)} holds {outside[0]!r}, outside {folder.name}/; not restored")
            tar.extractall(staging, filter="data")  # no absolute paths, links out or device files
        os.rename(staging / folder.name, folder)
    except tarfile.TarError as exc:
        raise LocalFileError(f"{shown(archive)} cannot be read ({exc}); nothing was restored") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    archive.unlink()
    return ledger.set_archived(run, False), folder
