"""Reading the test set into memory at 16 kHz, with every problem named by its pair:
unreadable files and unequal lengths stop the evaluation before any work is done."""

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kjob.errors import ValidationError
from speechscore import SAMPLE_RATE, audio
from speechscore.discovery import AUDIO_EXTENSIONS, Pair, Unmatched


@dataclass
class LoadedPair:
    pair: Pair
    noisy: np.ndarray
    clean: np.ndarray
    rate: int  # the noisy file's own rate
    channels: dict = field(default_factory=dict)  # {"noisy": n, "clean": n}: the files' own channel counts


def _same_length(a: audio.Audio, b: audio.Audio) -> bool:
    """Equal length in the files' own samples, or within one sample at 16 kHz when the
    two files have different rates (resampling rounds)."""
    if a.rate == b.rate:
        return a.frames == b.frames
    return abs(a.wave.size - b.wave.size) <= 1


def _load_one(pair: Pair) -> LoadedPair | str:
    """The pair in memory, or what is wrong with it."""
    try:
        noisy, clean = audio.read(pair.noisy), audio.read(pair.clean)
    except audio.AudioError as exc:
        return f"{pair.name}: {exc}"
    if not _same_length(noisy, clean):
        return (f"{pair.name}: noisy {pair.noisy} has {noisy.frames} samples at {noisy.rate} Hz, "
                f"clean {pair.clean} has {clean.frames} at {clean.rate} Hz (they must be equally long)")
    n = min(noisy.wave.size, clean.wave.size)
    return LoadedPair(pair, noisy.wave[:n], clean.wave[:n], noisy.rate, {"noisy": noisy.channels, "clean": clean.channels})


def load_pairs(pairs: list[Pair], progress=None) -> list[LoadedPair]:
    loaded, problems = [], []
    for i, pair in enumerate(pairs):
        item = _load_one(pair)
        (problems if isinstance(item, str) else loaded).append(item)
        if progress:
            progress("loading", i + 1, len(pairs))
    if problems:
        first = problems[0] if len(problems) == 1 else f"{len(problems)} of {len(pairs)} pairs cannot be used (listed above)"
        raise ValidationError(f"test set: {first}", details=problems if len(problems) > 1 else None)
    return loaded


def load_enhanced(folder: Path, loaded: list[LoadedPair]) -> tuple[list, list[Unmatched]]:
    """Enhanced waves matched by file name (the pair's name, or its noisy or clean file's
    stem), None where a pair has none; files that match no pair are listed. A pair whose
    enhanced file has several channels gets channels["enhanced"]."""
    if not folder.is_dir():
        from kjob.errors import NotFoundError

        raise NotFoundError(f"no such folder of enhanced files: {folder}")
    files, unmatched = {}, []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for name in sorted(filenames):
            if name.lower().endswith(AUDIO_EXTENSIONS):
                stem = os.path.splitext(name)[0]
                if stem in files:  # matched by name: a second file of that name cannot be used
                    unmatched.append(Unmatched(str(Path(dirpath) / name), "enhanced", f"same file name as {files[stem]}"))
                    continue
                files[stem] = Path(dirpath) / name
    waves, used, problems = [], set(), []
    for item in loaded:
        stems = (item.pair.name, item.pair.noisy.stem, item.pair.clean.stem)
        stem = next((s for s in stems if s in files), None)
        if stem is None:
            waves.append(None)
            unmatched.append(Unmatched(str(item.pair.noisy), "noisy", f"no enhanced file named {item.pair.name} in {folder}"))
            continue
        used.add(stem)
        try:
            enhanced = audio.read(files[stem])
        except audio.AudioError as exc:
            problems.append(f"{item.pair.name}: {exc}")
            continue
        if abs(enhanced.wave.size - item.clean.size) > (0 if enhanced.rate == SAMPLE_RATE else 1):
            problems.append(f"{item.pair.name}: enhanced {files[stem]} has {enhanced.wave.size} samples at 16 kHz, "
                            f"its clean file {item.clean.size} (they must be equally long)")
            continue
        item.channels["enhanced"] = enhanced.channels
        wave = enhanced.wave[: item.clean.size]
        waves.append(np.pad(wave, (0, item.clean.size - wave.size)))
    unmatched += [Unmatched(str(files[s]), "enhanced", "matches no test pair") for s in sorted(files) if s not in used]
    if problems:
        first = problems[0] if len(problems) == 1 else f"{len(problems)} enhanced files cannot be used (listed above)"
        raise ValidationError(f"enhanced files: {first}", details=problems if len(problems) > 1 else None)
    return waves, unmatched
