"""Reading audio as float32 mono at 16 kHz (soxr for other rates; several channels are
averaged, and the count kept so that the evaluation can say so) and writing WAVs."""

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from speechscore import SAMPLE_RATE


@dataclass(frozen=True)
class Audio:
    wave: np.ndarray  # float32, mono, SAMPLE_RATE
    rate: int  # the file's own rate
    frames: int  # the file's own length in samples
    channels: int = 1  # the file's own channels (more than one: averaged to mono)


class AudioError(Exception):
    """A file soundfile cannot read."""


def read(path: Path) -> Audio:
    import soundfile as sf

    try:
        wave, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError, OSError) as exc:
        raise AudioError(f"cannot read {path}: {str(exc).splitlines()[0]}") from None
    frames, channels = wave.shape
    wave = wave.mean(axis=1) if channels > 1 else wave[:, 0]
    return Audio(resample(wave, rate), int(rate), int(frames), int(channels))


def resample(wave: np.ndarray, rate: int, target: int = SAMPLE_RATE) -> np.ndarray:
    wave = np.ascontiguousarray(wave, dtype=np.float32)
    if rate == target or wave.size == 0:
        return wave
    import soxr

    return np.ascontiguousarray(soxr.resample(wave, rate, target, quality="HQ"), dtype=np.float32)


def write(path: Path, wave: np.ndarray, subtype: str = "FLOAT", rate: int = SAMPLE_RATE) -> None:
    """Write a WAV; PCM_16 clips to [-1, 1] (for players), FLOAT keeps what was scored."""
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    wave = np.nan_to_num(np.asarray(wave, np.float32))
    if subtype == "PCM_16":
        wave = np.clip(wave, -1.0, 1.0)
    sf.write(str(path), wave, rate, subtype=subtype, format="WAV")


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
