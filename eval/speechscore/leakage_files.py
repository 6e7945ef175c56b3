"""The files side of the leakage audit: which audio files each side holds, what they
decode to (a digest of the samples, a fingerprint), cached by file content, and the
audits `kjob leakage` and `kjob eval-local` run.

Which files are fingerprinted: on a side that holds clean files (folders named clean,
y_*, ...), those only; the same clean utterance is the thing that must not leak, and
clean against clean is the comparison noise cannot blur. On a side without any, every
file. Exact duplicates are looked for among all files.
"""

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kjob.errors import NotFoundError, UsageError
from speechscore import audio, fingerprint as fp, leakage
from speechscore.discovery import AUDIO_EXTENSIONS, folder_role, refuse_loops


@dataclass(frozen=True)
class AudioFile:
    path: Path
    label: str  # shown in tables: the path from the folder's parent (y_train/0005.wav)
    inner: str  # the path inside the folder given, where --group-by looks
    side: str | None  # clean, noisy or None (unrecognised folder)


def collect(folders: list[Path], split: str) -> list[AudioFile]:
    """Every audio file under the folders. A folder that holds both a train and a test
    split (data/demo) gives only the files of `split`."""
    found = []
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            raise NotFoundError(f"no such folder: {folder}")
        files = []
        for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "__MACOSX")
            refuse_loops(folder, dirpath, dirnames)
            for name in sorted(filenames):
                if name.lower().endswith(AUDIO_EXTENSIONS) and not name.startswith("._"):
                    path = Path(dirpath) / name
                    label = path.relative_to(folder.parent).as_posix()
                    role = folder_role(str(Path(label).parent))
                    files.append((path, label, path.relative_to(folder).as_posix(), role))
        splits = {role[0] for *_, role in files if role}
        keep_split = split if splits >= {"train", "test"} else None
        found += [AudioFile(p, label, inner, role[1] if role else None) for p, label, inner, role in files
                  if keep_split is None or (role and role[0] == keep_split)]
    return found


def _check_apart(train: list[Path], test: list[Path]) -> None:
    for a in train:
        for b in test:
            ra, rb = Path(a).resolve(), Path(b).resolve()
            if ra == rb and not (_has_both_splits(ra)):
                raise UsageError(f"--train and --test are the same folder ({a}) and it holds no train/test split")
            if ra != rb and (ra.is_relative_to(rb) or rb.is_relative_to(ra)):
                raise UsageError(f"--train {a} and --test {b} overlap: one lies inside the other")


def _has_both_splits(folder: Path) -> bool:
    roles = {folder_role(os.path.relpath(d, folder.parent)) for d, _, files in os.walk(folder)
             if any(f.lower().endswith(AUDIO_EXTENSIONS) for f in files)}
    return {r[0] for r in roles if r} >= {"train", "test"}


def _file_key(path: Path) -> str:
    return hashlib.sha256(f"{audio.file_digest(path)}|fingerprint-{fp.FINGERPRINT_VERSION}".encode()).hexdigest()


def _decode(path: Path) -> tuple[str, np.ndarray, float]:
    """(digest of the decoded samples, the 16 kHz mono wave, seconds)."""
    import soundfile as sf

    try:
        samples, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError, OSError) as exc:
        raise audio.AudioError(f"cannot read {path}: {str(exc).splitlines()[0]}") from None
    digest = hashlib.sha256(f"{rate}|{samples.shape[1]}|".encode() + np.ascontiguousarray(samples).tobytes()).hexdigest()
    mono = samples.mean(axis=1) if samples.shape[1] > 1 else samples[:, 0]
    return digest, audio.resample(mono, int(rate)), samples.shape[0] / rate


def _fingerprinted(files: list[AudioFile]) -> list[bool]:
    """Which files the side rule above fingerprints."""
    has_clean = any(f.side == "clean" for f in files)
    return [f.side == "clean" or not has_clean for f in files]


def describe(files: list[AudioFile], cache_dir: Path | None, with_fingerprints: bool = True) -> list[leakage.AudioItem]:
    """AudioItems for the files; fingerprints only where the side rule above wants them."""
    return [_item(f, with_fingerprints and wanted, cache_dir) for f, wanted in zip(files, _fingerprinted(files))]


def _audit(train: list[AudioFile], test: list[AudioFile], pattern, cache_dir) -> leakage.LeakageResult:
    # Too many comparisons: near-duplicates are skipped (audit says so), so fingerprints
    # would be computed for nothing.
    pairs = sum(_fingerprinted(train)) * sum(_fingerprinted(test))
    within = pairs <= leakage.EXHAUSTIVE_LIMIT
    result = leakage.audit(describe(train, cache_dir, within), describe(test, cache_dir, within), pattern)
    if not within:
        result.skipped = leakage.too_many(pairs)
    return result


def _item(f: AudioFile, wanted: bool, cache_dir: Path | None) -> leakage.AudioItem:
    cached = cache_dir / f"{_file_key(f.path)}.npz" if cache_dir else None
    if cached is not None and cached.is_file():
        try:
            with np.load(cached) as held:
                return leakage.AudioItem(f.label, str(held["digest"]), held["fingerprint"] if wanted else None,
                                         float(held["seconds"]), f.inner)
        except (OSError, ValueError, KeyError):
            pass  # an unreadable cache entry is computed again
    digest, wave, seconds = _decode(f.path)
    if not wanted:
        return leakage.AudioItem(f.label, digest, None, seconds, f.inner)
    picture = fp.fingerprint(wave)
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_name(f".{cached.stem}.{os.getpid()}.npz")
        np.savez(tmp, digest=np.array(digest), fingerprint=picture, seconds=np.array(seconds))
        os.replace(tmp, cached)
    return leakage.AudioItem(f.label, digest, picture, seconds, f.inner)


def audit_folders(train: list[Path], test: list[Path], group_by: str | None = None,
                  cache_dir: Path | None = None) -> leakage.LeakageResult:
    """`kjob leakage`: the files under the --train folders against those under --test."""
    pattern = _pattern(group_by)
    _check_apart(train, test)
    train_files, test_files = collect(train, "train"), collect(test, "test")
    for what, files, folders in (("--train", train_files, train), ("--test", test_files, test)):
        if not files:
            raise NotFoundError(f"{what} {', '.join(map(str, folders))}: no audio files (.wav, .flac) found")
    return _audit(train_files, test_files, pattern, cache_dir)


def _pattern(group_by: str | None) -> re.Pattern | None:
    if group_by is None:
        return None
    try:
        return re.compile(group_by)
    except re.error as exc:
        raise UsageError(f"--group-by {group_by!r} is not a regular expression: {exc}") from None


def audit_beside(train_files: dict[str, list[Path]], root: Path, test_clean: list[Path], test_noisy: list[Path],
                 cache_dir: Path | None) -> leakage.LeakageResult:
    """eval-local's check: the training split found beside the test pairs against them."""
    def files(paths, side):
        return [AudioFile(p, _label(p, root), p.name, side) for p in paths]

    train = files(train_files.get("clean", []), "clean") + files(train_files.get("noisy", []), "noisy")
    test = files(test_clean, "clean") + files(test_noisy, "noisy")
    return _audit(train, test, None, cache_dir)


def _label(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)
