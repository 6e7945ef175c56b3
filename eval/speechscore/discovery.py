"""Finding (noisy, clean) test pairs: the training layouts (noisy/+clean/, test/+y_test/,
nested after extraction), .zip/.7z/.tar archives, or a CSV manifest with columns noisy,clean.

Files without a partner are reported, never silently dropped. Which folder holds what, and which
files pair, follows the same rules as the training's own code (`enhancer.data.folder_role`,
`match_key`, `match_stems`). They are written in both places on purpose: the training's copy is
inlined into Kaggle notebooks, which cannot import this installed package, and the evaluator must
work on any folder of audio, without the speech example's source. tests/test_pairing_parity.py
holds the two to the same answers, so they cannot drift.
"""

import csv
import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from kjob.errors import ConfigError, NotFoundError, UsageError, ValidationError

AUDIO_EXTENSIONS = (".wav", ".flac")
_NOISE_WORDS = {"noisy", "clean", "mix", "mixture", "x", "y"}
ARCHIVE_EXTENSIONS = (".zip", ".7z", ".tar", ".tar.gz", ".tgz")


@dataclass(frozen=True)
class Pair:
    name: str
    noisy: Path
    clean: Path


@dataclass(frozen=True)
class Unmatched:
    path: str
    side: str  # noisy, clean or enhanced
    why: str


@dataclass
class Discovery:
    pairs: list[Pair]
    unmatched: list[Unmatched] = field(default_factory=list)
    source: str = ""
    extracted: list[str] = field(default_factory=list)
    ignored_folders: list[str] = field(default_factory=list)
    # The training split found beside the test pairs ({"noisy": [...], "clean": [...]}), for
    # the leakage check; empty when the pairs are themselves the only split.
    train_files: dict = field(default_factory=dict)


def folder_role(rel_dir: str) -> tuple[str, str] | None:
    """(split, side) of a folder holding audio, from its last three path parts; the
    nearest recognised part wins (train/noisy, test/clean, noisy_testset_wav, y_test)."""
    parts = [p.lower() for p in rel_dir.replace("\\", "/").split("/") if p not in ("", ".")][-3:]
    side = None
    for part in reversed(parts):
        if "clean" in part or part == "y" or part.startswith("y_"):
            side = "clean"
        elif "noisy" in part or part in ("x", "train", "test", "mix", "mixture") or part.startswith("x_"):
            side = "noisy"
        if side:
            break
    if side is None:
        return None
    return ("test" if any("test" in p for p in parts) else "train"), side


def match_key(stem: str) -> str:
    """A file stem without noisy/clean words: noisy_0001 and clean_0001 both give 0001."""
    return "_".join(t for t in stem.lower().replace("-", "_").split("_") if t not in _NOISE_WORDS)


def match_stems(noisy, clean) -> tuple[dict[str, str], list[str], list[str]]:
    """({noisy stem: clean stem}, noisy stems left, clean stems left): by equal stem first, then
    by stem without noisy/clean words (each clean file once, noisy stems in name order)."""
    pairs = {s: s for s in noisy if s in clean}
    spare_clean = {match_key(s): s for s in clean if s not in pairs}
    for stem in sorted(noisy):
        key = match_key(stem)
        if stem not in pairs and key in spare_clean:
            pairs[stem] = spare_clean.pop(key)
    used = set(pairs.values())
    return pairs, [s for s in sorted(noisy) if s not in pairs], [s for s in sorted(clean) if s not in used]


def match_files(noisy: dict[str, Path], clean: dict[str, Path]) -> tuple[list[Pair], list[Unmatched]]:
    """Pairs by equal stem, then by stem without noisy/clean words; the rest unmatched."""
    pairs, lone_noisy, lone_clean = match_stems(noisy, clean)
    unmatched = [Unmatched(str(noisy[s]), "noisy", "no clean file of the same name") for s in lone_noisy]
    unmatched += [Unmatched(str(clean[s]), "clean", "no noisy file of the same name") for s in lone_clean]
    return [Pair(s, noisy[s], clean[pairs[s]]) for s in sorted(pairs)], unmatched


def refuse_loops(root, dirpath: str, dirnames: list[str]) -> None:
    """UsageError naming a folder link under `dirpath` that leads back to a folder holding it:
    os.walk(followlinks=True) would go round it until the path is too long (40 copies of
    every file), and round two such links 2**40 times."""
    parts = Path(os.path.relpath(dirpath, root)).parts
    above = {os.path.realpath(Path(root).joinpath(*parts[:i])) for i in range(len(parts) + 1)}
    for name in dirnames:
        link = os.path.join(dirpath, name)
        if os.path.islink(link) and os.path.realpath(link) in above:
            raise UsageError(f"{link}: a symlink loop (it leads back to {os.path.realpath(link)}); remove it")


def discover(data: Path, extract_dir: Path) -> Discovery:
    """The test pairs under `data` (a folder, an archive or a CSV manifest)."""
    data = Path(data)
    if not data.exists():
        raise NotFoundError(f"no such data folder or file: {data}")
    if data.is_file():
        if data.suffix.lower() == ".csv":
            return from_manifest(data)
        if not data.name.lower().endswith(ARCHIVE_EXTENSIONS):
            raise UsageError(f"--data {data}: expected a folder, a .zip/.7z/.tar archive or a CSV manifest")
        return _from_roots([extract(data, extract_dir)], data, [str(data)])
    found = _scan([data])
    if _has_pairs(found, "test"):
        return _choose(found, data, [])
    archives = [p for p in sorted(data.rglob("*")) if p.is_file() and p.name.lower().endswith(ARCHIVE_EXTENSIONS)]
    if not archives:
        return _choose(found, data, [])
    return _from_roots([data, *(extract(a, extract_dir) for a in archives)], data, [str(a) for a in archives])


def _from_roots(roots: list[Path], data: Path, extracted: list[str]) -> Discovery:
    return _choose(_scan(roots), data, extracted)


def _scan(roots: list[Path]) -> dict:
    """{(split, side): {stem: path}}, plus folder names under ("folders", role), "ignored",
    and "duplicates": files whose name another file of the same role already took."""
    found: dict = {"ignored": [], "duplicates": []}
    where: dict = {}  # (role, stem) -> path relative to its root, to tell copies from clashes
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "__MACOSX")
            refuse_loops(root, dirpath, dirnames)
            audio = sorted(f for f in filenames if f.lower().endswith(AUDIO_EXTENSIONS) and not f.startswith("._"))
            if not audio:
                continue
            rel = os.path.relpath(dirpath, root)
            role = folder_role(rel)
            if role is None:
                found["ignored"].append(rel)
                continue
            found.setdefault(("folders", role), []).append(rel + "/")
            files = found.setdefault(role, {})
            for name in audio:
                stem, relative = os.path.splitext(name)[0], os.path.join(rel, name)
                if stem not in files:
                    files[stem] = Path(dirpath) / name
                    where[(role, stem)] = relative
                elif where[(role, stem)] != relative:
                    # Same name in another folder (e.g. two speakers): pairs match by name, so
                    # it cannot be paired; list it rather than drop it. (The same relative path
                    # again is an archive's extracted copy: the first one wins.)
                    found["duplicates"].append((role, Path(dirpath) / name, files[stem]))
    return found


def _has_pairs(found: dict, split: str) -> bool:
    return bool(found.get((split, "noisy"))) and bool(found.get((split, "clean")))


def _choose(found: dict, data: Path, extracted: list[str]) -> Discovery:
    split = "test" if _has_pairs(found, "test") else "train"
    noisy, clean = found.get((split, "noisy"), {}), found.get((split, "clean"), {})
    pairs, unmatched = match_files(noisy, clean)
    unmatched += [Unmatched(str(path), role[1], f"same file name as {first}; pairs match by name")
                  for role, path, first in found["duplicates"] if role[0] == split]
    if not pairs:
        seen = [f"{'/'.join(k)}: {len(v)} files" for k, v in found.items()
                if isinstance(k, tuple) and k[0] != "folders"]
        seen += [f"unrecognised folder {d}" for d in found["ignored"]]
        raise NotFoundError(
            f"no noisy/clean pairs under {data}: expected folders noisy/ + clean/ or test/ + y_test/ "
            f"(possibly nested or in .zip/.7z archives) or a CSV manifest with columns noisy,clean; "
            f"found {'; '.join(seen[:10]) or 'no audio at all'}")
    folders = found.get(("folders", (split, "noisy")), []) + found.get(("folders", (split, "clean")), [])
    beside = {side: sorted(found.get(("train", side), {}).values()) for side in ("noisy", "clean")} if split == "test" else {}
    return Discovery(pairs, unmatched, " + ".join(dict.fromkeys(folders)), extracted, found["ignored"],
                     {side: files for side, files in beside.items() if files})


def from_manifest(path: Path) -> Discovery:
    """Pairs from a CSV with columns noisy and clean (paths relative to the CSV's folder)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            columns = {(c or "").strip().lower(): c for c in reader.fieldnames or []}
            if "noisy" not in columns or "clean" not in columns:
                raise ValidationError(f"{path}: a manifest needs columns noisy and clean "
                                      f"(found: {', '.join(columns) or 'no header'})")
            rows = [(n, row.get(columns["noisy"]) or "", row.get(columns["clean"]) or "")
                    for n, row in enumerate(reader, start=2)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ValidationError(f"cannot read manifest {path}: {exc}") from None
    pairs, unmatched, names = [], [], set()
    for line, noisy, clean in rows:
        noisy_path, clean_path = (path.parent / noisy.strip(), path.parent / clean.strip())
        missing = [(side, p) for side, p, text in (("noisy", noisy_path, noisy), ("clean", clean_path, clean))
                   if not text.strip() or not p.is_file()]
        if missing:
            unmatched += [Unmatched(str(p), side, f"manifest line {line}: file not found") for side, p in missing]
            continue
        name, k = noisy_path.stem, 1
        while name in names:
            k += 1
            name = f"{noisy_path.stem}-{k}"
        names.add(name)
        pairs.append(Pair(name, noisy_path, clean_path))
    if not pairs:
        raise NotFoundError(f"manifest {path} lists no pair whose files both exist")
    return Discovery(pairs, unmatched, f"manifest {path.name}")


def extract(archive: Path, extract_dir: Path) -> Path:
    """Extract once into extract_dir/<name>-<key> (key: path, size, mtime); a folder that
    exists is complete, because extraction goes to a temporary name first."""
    stat = archive.stat()
    key = hashlib.sha256(f"{archive.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    base = archive.name
    for ext in ARCHIVE_EXTENSIONS:
        if base.lower().endswith(ext):
            base = base[: -len(ext)]
            break
    target = extract_dir / f"{base}-{key}"
    if target.is_dir():
        return target
    extract_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=extract_dir, prefix=f".{target.name}."))
    try:
        _extract_into(archive, tmp)
        try:
            os.rename(tmp, target)
        except OSError:
            if not target.is_dir():
                raise
            shutil.rmtree(tmp)  # another evaluation extracted it meanwhile
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _extract_into(archive: Path, target: Path) -> None:
    import tarfile
    import zipfile

    lower = archive.name.lower()
    try:
        if lower.endswith(".zip"):
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(target)  # zipfile drops absolute paths and '..'
        elif lower.endswith(".7z"):
            _extract_7z(archive, target)
        else:
            with tarfile.open(archive) as tf:
                tf.extractall(target, filter="data")
    except (zipfile.BadZipFile, tarfile.TarError, OSError, EOFError) as exc:
        raise ValidationError(f"cannot extract {archive}: {exc}") from None


def _extract_7z(archive: Path, target: Path) -> None:
    try:
        import py7zr
    except ImportError:
        py7zr = None
    if py7zr is not None:
        with py7zr.SevenZipFile(archive, mode="r") as zf:
            zf.extractall(path=target)
        return
    exe = next((shutil.which(n) for n in ("7z", "7zz", "7za", "7zr") if shutil.which(n)), None)
    if exe is None:
        raise ConfigError(f"cannot extract {archive}: no 7-Zip program found "
                          "(apt-get install 7zip, or pip install py7zr)")
    done = subprocess.run([exe, "x", "-y", f"-o{target}", str(archive)], capture_output=True, text=True)
    if done.returncode != 0:
        lines = [ln for ln in (done.stderr + done.stdout).splitlines() if "error" in ln.lower()]
        raise ValidationError(f"cannot extract {archive}: {(lines or ['7-Zip exit code %d' % done.returncode])[0].strip()}")
