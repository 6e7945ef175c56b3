"""Report names, and the rule that no evaluation replaces another's report.

A default name says what was evaluated and on which test set:
`<what>--<set>-<fingerprint>`, e.g. `r3-dpt-local-v3--demo-1a2b3c4d` (the fingerprint
is the hash of the test pairs' file contents, so two sets in folders of the same name
still differ). A default-named folder that already holds a report is replaced only by
the same evaluation (same identity: the same checkpoint bytes, run or enhanced folder,
on the same test set); any other evaluation gets the next free name (`-2`, `-3`, ...).
An explicitly named folder (--name, --out) that holds a report is refused unless the
caller says replace.
"""

import json
import re
from pathlib import Path

from kjob.errors import UsageError
from speechscore import SUMMARY_FILE

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_GENERIC_FILES = ("best", "last", "model", "checkpoint", "final")
_GENERIC_FOLDERS = ("output", "outputs", "enhanced", "out", "wav", "wavs", "audio")
_ARCHIVES = (".tar.gz", ".tgz", ".zip", ".7z", ".tar", ".csv")


def clean(text: str) -> str:
    return _UNSAFE.sub("-", text).strip("-.") or "evaluation"


def checkpoint_base(path: Path) -> str:
    """downloads/crn/local-v2/output/best.pt -> crn-local-v2-best; my_model.pt -> my_model."""
    path = Path(path).resolve()
    if path.stem not in _GENERIC_FILES:
        return clean(path.stem)
    parts = path.parent.parts
    folders = list(parts[-3:-1]) if parts[-1] in _GENERIC_FOLDERS else list(parts[-1:])
    return clean("-".join([*folders, path.stem]))


def enhanced_base(folder: Path) -> str:
    """runs/a/enhanced -> a-enhanced: a generic folder name takes its parent's with it."""
    folder = Path(folder).resolve()
    if folder.name.lower() in _GENERIC_FOLDERS and folder.parent.name:
        return clean(f"{folder.parent.name}-{folder.name}")
    return clean(folder.name)


def set_label(data: Path) -> str:
    """The test set's name as people call it: data/demo -> demo, testset.zip -> testset."""
    name = Path(data).resolve().name
    for ext in _ARCHIVES:
        if name.lower().endswith(ext):
            name = name[: -len(ext)]
            break
    return clean(name)


def default_name(base: str, data: Path, fingerprint: str) -> str:
    return f"{base}--{set_label(data)}-{fingerprint[:8]}"


def identity(provenance: dict, fingerprint: str) -> dict:
    """What makes two evaluations the same one: what was scored, and on which test set."""
    if provenance.get("checkpoint_sha256"):
        source = f"checkpoint:{provenance['checkpoint_sha256']}"
    elif provenance.get("enhanced_dir"):
        source = f"enhanced:{Path(provenance['enhanced_dir']).resolve()}"
    else:
        source = f"run:{provenance.get('run_label')}"
    return {"source": source, "data": fingerprint}


def held_identity(folder: Path) -> dict | None | bool:
    """The identity in a folder's summary.json: a dict, None for a report without one
    (written before identities existed), False when the folder holds no report."""
    path = folder / SUMMARY_FILE
    if not path.is_file():
        return False
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    found = summary.get("identity") if isinstance(summary, dict) else None
    return found if isinstance(found, dict) else None


def check_explicit(out: Path, replace: bool) -> None:
    """An explicitly named folder: refused when it holds a report (unless replace) or
    anything that is not a report."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder")
    if not out.is_dir() or not any(out.iterdir()):
        return
    if held_identity(out) is False:
        raise UsageError(f"refusing to replace {out}: it is not empty and holds no earlier evaluation")
    if not replace:
        raise UsageError(f"{out} already holds an evaluation report; choose another --name or --out, "
                         "or add --replace to replace it")


def candidates(reports: Path, name: str):
    """name, name-2, name-3, ... under reports."""
    yield reports / name
    k = 2
    while True:
        yield reports / f"{name}-{k}"
        k += 1


def usable(folder: Path, ident: dict) -> bool:
    """Whether a default-named evaluation with `ident` may write to `folder`: it is free,
    empty, or holds the same evaluation's report."""
    if not folder.exists():
        return True
    if not folder.is_dir():
        return False
    return not any(folder.iterdir()) or held_identity(folder) == ident
