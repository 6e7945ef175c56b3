"""What a run on this side of Kaggle sees in /kaggle/input: each dataset source's folder, as the
workspace maps it, and each input run's fetched outputs (`push --input`), under Kaggle's
layouts, with the inputs' manifest (kjob-inputs.json). One check for every backend that mounts
folders (local, Ray): of a recipe's sources they can mount dataset sources only."""

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kjob.errors import ConfigError
from kjob.fsutil import atomic_write_text
from kjob.kaggle_platform import KaggleRef, input_layouts
from kjob.runs.lineage import RunInput, manifest

MANIFEST = "kjob-inputs.json"  # beside the inputs, in /kaggle/input


def dataset_mounts(recipe, backend: str, folder_of: Callable[[str], object]) -> dict:
    """{path in /kaggle/input: folder} for the recipe's dataset sources; `folder_of` takes a
    source's `owner/slug` (its version dropped: a local folder has one) and answers its folder,
    or raises ConfigError saying where to map it. ConfigError for any other kind of source."""
    unsupported = [*recipe.kernel_sources, *recipe.model_sources, *recipe.competition_sources]
    if unsupported:
        raise ConfigError(f"the {backend} backend can only mount dataset sources, not {', '.join(unsupported)}")
    mounts = {}
    for source in recipe.dataset_sources:
        key = KaggleRef.parse(source).key
        folder = folder_of(key)
        mounts.update(dict.fromkeys(input_layouts("dataset", key), folder))
    return mounts


@dataclass(frozen=True)
class InputFolder:
    """An input run's fetched outputs (`folder`, its download's output/) and what the ledger
    keeps of it (`record`, whose `mounts` say where the run sees it)."""

    folder: Path
    record: RunInput


def input_mounts(inputs, manifest_file: Path, folder_of: Callable[[InputFolder], object] = None,
                 manifest_at=None) -> dict:
    """{path in /kaggle/input: folder} for each input, plus kjob-inputs.json, written to
    `manifest_file` (seen by the run at `manifest_at`, default that same path). `folder_of`
    says where a backend's run sees an input's folder (default: where it was fetched)."""
    if not inputs:
        return {}
    mounts = {}
    for item in inputs:
        where = folder_of(item) if folder_of else item.folder
        mounts.update(dict.fromkeys(item.record.mounts, where))
    atomic_write_text(manifest_file, manifest([item.record for item in inputs]))
    mounts[MANIFEST] = manifest_at or manifest_file
    return mounts


def shared_copy(source: Path, target: Path) -> Path:
    """`source`'s files at `target` (storage every node reaches): hard links where the file
    system has them, else copies; made under a temporary name and renamed, and reused when
    it is already there (an input run's outputs never change)."""
    if target.is_dir():
        return target
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    for path in sorted(source.rglob("*")):
        if path.is_dir() or path.is_symlink():
            continue
        destination = partial / path.relative_to(source)
        destination.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, destination)
        except OSError:
            shutil.copy2(path, destination)
    partial.mkdir(parents=True, exist_ok=True)
    try:
        partial.rename(target)
    except OSError:  # another push put it there first
        shutil.rmtree(partial, ignore_errors=True)
    return target
