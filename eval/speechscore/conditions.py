"""Each test pair's noise type and SNR, when the data say: a manifest.json beside the
test set (as data/demo's: {"files": [{"split", "file", "noise", "snr_db"}, ...]}), extra
columns of a CSV manifest (noise, snr_db), or words in the file names (babble_5dB.wav).
And the breakdown of scores by those conditions. Pure but for read_manifest."""

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


def read_manifest(data: Path) -> tuple[list[dict], str] | None:
    """(entries, what they came from) from a manifest.json in the data folder or a CSV
    manifest's extra columns; None when there is none or it cannot be read."""
    data = Path(data)
    try:
        if data.is_file() and data.suffix.lower() == ".csv":
            with open(data, newline="", encoding="utf-8-sig") as handle:
                rows = [{(k or "").strip().lower(): v for k, v in row.items()} for row in csv.DictReader(handle)]
            return (rows, data.name) if rows and any(k in rows[0] for k in _NOISE_KEYS + _SNR_KEYS) else None
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
    """{pair name: {"noise", "snr_db"}} for the pairs whose noisy file (path relative to
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
        noise, snr = _first(entry, _NOISE_KEYS), _snr(_first(entry, _SNR_KEYS))
        for name, parts in by_file.get(tail[-1], ()):
            if parts[-len(tail):] == tail and (not split or split in parts[:-1]):
                found[name] = {"noise": str(noise) if noise is not None else None, "snr_db": snr}
    return found


def from_names(noisy_paths: dict[str, str]) -> dict[str, dict]:
    """Noise words and SNRs ("5dB", "snr5", "snr_-2.5", "-2.5 dB") in the noisy files' paths."""
    found = {}
    for name, rel in noisy_paths.items():
        noise, snr = _NOISE.search(rel), _SNR.search(PurePosixPath(rel).name)
        if noise or snr:
            value = _snr(next(g for g in snr.groups() if g is not None)) if snr else None
            found[name] = {"noise": noise.group(1).lower() if noise else None, "snr_db": value}
    return found


def snr_band(snr: float) -> str:
    low = math.floor(snr / SNR_BAND_DB) * SNR_BAND_DB
    return f"{low:g} to {low + SNR_BAND_DB:g} dB"


def breakdown(rows: list[dict], metrics) -> dict:
    """Per noise type and per SNR band: count and, per metric, the noisy and enhanced means
    and the mean improvement (over the utterances where each is defined)."""
    def stats(members):
        out = {"count": len(members)}
        for m in metrics:
            for side in ("noisy", "enhanced", "delta"):
                values = [r[f"{m}_{side}"] for r in members if r[f"{m}_{side}"] is not None]
                out[f"{m}_{side}"] = statistics.fmean(values) if values else None
        return out

    by_noise: dict[str, list] = {}
    by_snr: dict[tuple, list] = {}
    for row in rows:
        if row.get("noise"):
            by_noise.setdefault(row["noise"], []).append(row)
        if row.get("snr_db") is not None:
            low = math.floor(row["snr_db"] / SNR_BAND_DB) * SNR_BAND_DB
            by_snr.setdefault((low, snr_band(row["snr_db"])), []).append(row)
    return {"by_noise": {k: stats(v) for k, v in sorted(by_noise.items())},
            "by_snr": {label: stats(v) for (_, label), v in sorted(by_snr.items())}}
