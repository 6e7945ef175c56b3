"""Each test pair's noise type, SNR and voice, when the data say: a manifest.json beside
the test set (as data/demo's: {"files": [{"split", "file", "noise", "snr_db", "voice"},
...]}; other fields are ignored), extra columns of a CSV manifest (noise, snr_db, voice),
or words in the file names (babble_5dB.wav, VoiceBank's p232_001.wav). The input SNR
estimated from the clean and noisy signals where nothing says it. And the breakdown of
scores by those conditions. Pure but for read_manifest."""

import csv
import json
import math
import re
import statistics
from pathlib import Path, PurePosixPath

MANIFEST = "manifest.json"
SNR_BAND_DB = 5
NOISE_WORDS = ("babble", "white", "pink", "brown", "hum", "cafe", "cafeteria", "restaurant", "street",
               "traffic", "car", "bus", "metro", "station", "office", "kitchen", "living", "park",
               "music", "wind", "rain", "factory", "machine", "crowd")
_NOISE = re.compile(r"(?<![a-z])(" + "|".join(NOISE_WORDS) + r")(?![a-z])", re.I)
_SNR = re.compile(r"(?:snr[_-]?(-?\d+(?:\.\d+)?))|(?:(?<![0-9.a-z])(-?\d+(?:\.\d+)?)\s*db(?![a-z]))", re.I)
_FILE_KEYS = ("file", "noisy", "path", "name")
_NOISE_KEYS = ("noise", "noise_type", "noise_kind")
_SNR_KEYS = ("snr_db", "snr")
_VOICE_KEYS = ("voice", "speaker", "speaker_id", "talker")
_SPEAKER = re.compile(r"^(p\d{3})_\d+(?![^_])")  # VoiceBank-DEMAND / VCTK: p232_001


def read_manifest(data: Path) -> tuple[list[dict], str] | None:
    """(entries, what they came from) from a manifest.json in the data folder or a CSV
    manifest's extra columns; None when there is none or it cannot be read."""
    data = Path(data)
    try:
        if data.is_file() and data.suffix.lower() == ".csv":
            with open(data, newline="", encoding="utf-8-sig") as handle:
                rows = [{(k or "").strip().lower(): v for k, v in row.items()} for row in csv.DictReader(handle)]
            return (rows, data.name) if rows and any(k in rows[0] for k in _NOISE_KEYS + _SNR_KEYS + _VOICE_KEYS) else None
        path = data / MANIFEST
        if not path.is_file():
            return None
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, csv.Error):
        return None
    entries = loaded.get("files") if isinstance(loaded, dict) else loaded
    if not isinstance(entries, list):
        return None
    return [e for e in entries if isinstance(e, dict)], MANIFEST


def _first(entry: dict, keys) -> object:
    return next((entry[k] for k in keys if entry.get(k) not in (None, "")), None)


def _snr(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def from_manifest(entries: list[dict], noisy_paths: dict[str, str]) -> dict[str, dict]:
    """{pair name: {"noise", "snr_db", "voice"}} for the pairs whose noisy file (path relative to
    the data root, as in noisy_paths) an entry names: its path ends with the entry's
    file, and the entry's split, if any, is one of the path's folders."""
    by_file: dict[str, list] = {}
    for name, rel in noisy_paths.items():
        parts = PurePosixPath(rel).parts
        by_file.setdefault(parts[-1], []).append((name, parts))
    found = {}
    for entry in entries:
        file = _first(entry, _FILE_KEYS)
        if not isinstance(file, str) or not file.strip():
            continue
        tail, split = PurePosixPath(file.replace("\\", "/")).parts, entry.get("split")
        noise, snr, voice = _first(entry, _NOISE_KEYS), _snr(_first(entry, _SNR_KEYS)), _first(entry, _VOICE_KEYS)
        for name, parts in by_file.get(tail[-1], ()):
            if parts[-len(tail):] == tail and (not split or split in parts[:-1]):
                found[name] = {"noise": _text(noise), "snr_db": snr, "voice": _text(voice)}
    return found


def _text(value) -> str | None:
    """A condition's name from a manifest: text or a number, nothing nested."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    return str(value).strip() or None


def from_names(noisy_paths: dict[str, str]) -> dict[str, dict]:
    """Noise words, SNRs ("5dB", "snr5", "snr_-2.5", "-2.5 dB") and VoiceBank speakers
    (p232_001) in the noisy files' paths."""
    found = {}
    for name, rel in noisy_paths.items():
        stem = PurePosixPath(rel).stem
        noise, snr, speaker = _NOISE.search(rel), _SNR.search(PurePosixPath(rel).name), _SPEAKER.match(stem)
        if noise or snr or speaker:
            value = _snr(next(g for g in snr.groups() if g is not None)) if snr else None
            found[name] = {"noise": noise.group(1).lower() if noise else None, "snr_db": value,
                           "voice": speaker.group(1) if speaker else None}
    return found


def estimate_snr(clean, noisy) -> float | None:
    """10 log10 of the clean signal's energy over the energy of noisy minus clean, over the
    whole signal (the demo's manifest counts only active speech frames, so its SNR sits a
    little above this); None when either energy is zero or not finite."""
    import numpy as np

    clean = np.asarray(clean, dtype=np.float64)
    residual = np.asarray(noisy, dtype=np.float64) - clean
    signal, noise = float(np.sum(clean * clean)), float(np.sum(residual * residual))
    if not (math.isfinite(signal) and math.isfinite(noise)) or signal <= 0 or noise <= 0:
        return None
    return 10 * math.log10(signal / noise)


def snr_band(snr: float) -> str:
    low = math.floor(snr / SNR_BAND_DB) * SNR_BAND_DB
    return f"{low:g} to {low + SNR_BAND_DB:g} dB"


GROUPS = (("by_noise", "noise kind"), ("by_snr", "SNR band"), ("by_voice", "voice"))


def breakdown(rows: list[dict], metrics) -> dict:
    """Per noise type, per SNR band and per voice: count, how many got worse (on any
    metric), and per metric the noisy and enhanced means and the mean improvement (over
    the utterances where each is defined)."""
    def stats(members):
        out = {"count": len(members), "worse": sum(1 for r in members if r.get("change") == "worse"),
               "defined": sum(1 for r in members if r.get("change") not in (None, "undefined"))}
        for m in metrics:
            for side in ("noisy", "enhanced", "delta"):
                values = [r[f"{m}_{side}"] for r in members if r[f"{m}_{side}"] is not None]
                out[f"{m}_{side}"] = statistics.fmean(values) if values else None
        return out

    by_noise: dict[str, list] = {}
    by_snr: dict[tuple, list] = {}
    by_voice: dict[str, list] = {}
    for row in rows:
        if row.get("noise"):
            by_noise.setdefault(row["noise"], []).append(row)
        if row.get("voice"):
            by_voice.setdefault(row["voice"], []).append(row)
        if row.get("snr_db") is not None:
            low = math.floor(row["snr_db"] / SNR_BAND_DB) * SNR_BAND_DB
            by_snr.setdefault((low, snr_band(row["snr_db"])), []).append(row)
    return {"by_noise": {k: stats(v) for k, v in sorted(by_noise.items())},
            "by_snr": {label: stats(v) for (_, label), v in sorted(by_snr.items())},
            "by_voice": {k: stats(v) for k, v in sorted(by_voice.items())}}
