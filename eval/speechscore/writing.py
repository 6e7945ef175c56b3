"""Writing one evaluation's folder: into a temporary folder beside it, then renamed into
place, so that a reader never sees half a report; under a name that never takes another
evaluation's place (speechscore.naming)."""

import errno
import hashlib
import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path

from kjob.errors import LocalFileError
from kjob.fsutil import atomic_write_json, atomic_write_text
from speechscore import CSV_FILE, REPORT_FILE, SUMMARY_FILE, audio, naming, report, summary as summ

ENHANCED_DIR = "enhanced"
_TAKEN = (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR)


def write_evaluation(request, result: dict, rows: list[dict], pairs, enhanced, metrics) -> Path:
    """The folder written: request.out, or the first default name this evaluation may use."""
    if request.out is not None:
        out = Path(request.out).resolve()
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = _fill(out.parent, out.name, request, result, rows, pairs, enhanced, metrics)
        naming.check_explicit(out, request.replace)  # again: another evaluation may have written meanwhile
        _swap_in(tmp, out)
        return out
    reports = Path(request.reports).resolve()
    reports.mkdir(parents=True, exist_ok=True)
    base = naming.default_name(result["label"], Path(request.data), result["data"]["fingerprint"])
    for folder in naming.candidates(reports, base):
        if not naming.usable(folder, result["identity"]):
            continue
        tmp = _fill(reports, folder.name, request, result, rows, pairs, enhanced, metrics)
        try:
            _swap_in(tmp, folder, only_if=result["identity"])
            return folder
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            if exc.errno not in _TAKEN:
                raise
            # Another evaluation took this name between the check and the rename: next one.
    raise LocalFileError("no free report name")  # unreachable: candidates never end


def _fill(parent: Path, name: str, request, result, rows, pairs, enhanced, metrics) -> Path:
    tmp = Path(tempfile.mkdtemp(dir=parent, prefix=f".{name}.part-"))
    try:
        _default_mode(tmp)  # mkdtemp makes it private; a report is an ordinary folder
        result["name"] = name
        outputs = {"per_utterance": CSV_FILE, "summary": SUMMARY_FILE, "report": None, "enhanced_audio": None}
        if request.save_audio:
            outputs["enhanced_audio"] = ENHANCED_DIR + "/"
            names = audio_file_names([p.pair.name for p in pairs])
            for row, name, wave in zip(rows, names, enhanced):
                if wave is not None:
                    row["enhanced_file"] = f"{ENHANCED_DIR}/{name}"
                    audio.write(tmp / row["enhanced_file"], wave, subtype="FLOAT")
        scales = []
        if request.report:
            outputs["report"] = REPORT_FILE
            for i, (p, wave) in enumerate(zip(pairs, enhanced)):
                waves = {"noisy": p.noisy, "enhanced": wave if wave is not None else 0 * p.noisy, "clean": p.clean}
                scales.append(report.write_media(tmp, i, waves))
        result["outputs"] = outputs
        atomic_write_text(tmp / CSV_FILE, summ.csv_text(rows, metrics))
        atomic_write_json(tmp / SUMMARY_FILE, result)
        if request.report:
            atomic_write_text(tmp / REPORT_FILE, report.render(result, rows, scales))
        return tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _swap_in(tmp: Path, out: Path, only_if: dict | None = None) -> None:
    """Rename tmp to out. An existing out is moved aside first; with only_if, only when it
    holds that identity's report (else the rename fails as taken)."""
    old = None
    try:
        if out.exists():
            if only_if is not None and not naming.usable(out, only_if):
                raise OSError(errno.EEXIST, "taken", str(out))
            if any(out.iterdir()):
                old = out.parent / f".{out.name}.old-{os.getpid()}"
                os.rename(out, old)
        os.rename(tmp, out)
    except BaseException:
        if old is not None and not out.exists():
            os.rename(old, out)  # put the earlier report back
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _default_mode(folder: Path) -> None:
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(folder, 0o777 & ~mask)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name).lstrip(".") or "utterance"


def audio_file_names(names: list[str]) -> list[str]:
    """A distinct WAV file name for each utterance name, the same whatever the order: the
    name itself when it is safe (letters, digits, '.', '_', '-'), else its safe form with
    a short hash of the real name (a"b and a?b would both be a_b). Names that still meet,
    even only in case (case-insensitive file systems), get longer hashes."""
    def hashed(name: str, length: int) -> str:
        return f"{_safe(name)[:100]}-{hashlib.sha256(name.encode('utf-8', 'surrogatepass')).hexdigest()[:length]}"

    chosen = [name if _safe(name) == name and len(name) <= 120 else hashed(name, 8) for name in names]
    for length in (16, 64):
        folded = Counter(c.lower() for c in chosen)
        clashes = [i for i, c in enumerate(chosen) if folded[c.lower()] > 1]
        if not clashes:
            break
        for i in clashes:
            chosen[i] = hashed(names[i], length)
    return [f"{c}.wav" for c in chosen]
