"""Scores cached by content, for both sides of a pair.

The noisy side does not depend on the model, so a second checkpoint on the same test set
reuses it; the enhanced side is keyed by the enhanced samples (or, for a checkpoint, by
the checkpoint's bytes and the noisy samples it enhances), so evaluating the same files
again recomputes nothing. One small JSON file per signal, written atomically; the key
covers the reference's and the signal's samples, the metric set and the library versions.
"""

import hashlib
import json
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np

from kjob.fsutil import atomic_write_json, read_json

# 2: results carry the lag and the SI-SDR ceiling flag, keys are the decoded samples.
SCORE_VERSION = 2


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "unknown"


def samples_digest(wave: np.ndarray) -> str:
    """sha256 of float32 samples: what is scored, whatever file they were read from."""
    return hashlib.sha256(np.ascontiguousarray(wave, np.float32).tobytes()).hexdigest()


@dataclass
class SideStats:
    hits: int = 0
    misses: int = 0


@dataclass
class ScoreCache:
    folder: Path | None  # None: no cache (every lookup misses, nothing is written)
    metrics: tuple[str, ...]
    sides: dict = field(default_factory=lambda: {"noisy": SideStats(), "enhanced": SideStats()})
    settings: dict = field(init=False)

    def __post_init__(self):
        self.settings = {"score_version": SCORE_VERSION, "metrics": list(self.metrics),
                         "pesq": _version("pesq"), "pystoi": _version("pystoi"), "numpy": _version("numpy"),
                         "scipy": _version("scipy")}

    def key(self, clean_digest: str, signal_id: str) -> str:
        """signal_id: the signal's samples digest, or a description that determines it
        (a checkpoint's digest with the noisy samples' digest)."""
        text = json.dumps({"clean": clean_digest, "signal": signal_id, **self.settings}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    def get(self, key: str, side: str) -> dict | None:
        """The cached result ({"scores", "lag", "si_sdr_ceiling"}) or None; counts a hit or a miss."""
        found = read_json(self.folder / f"{key}.json") if self.folder else None
        result = found.get("result") if isinstance(found, dict) else None
        stats = self.sides[side]
        if not _well_formed(result, self.metrics):
            stats.misses += 1
            return None
        stats.hits += 1
        return {"scores": {m: (v[0], v[1]) for m, v in result["scores"].items()},
                "lag": tuple(result["lag"]), "si_sdr_ceiling": bool(result["si_sdr_ceiling"])}

    def put(self, key: str, result: dict) -> None:
        if self.folder:
            stored = {"scores": {m: list(v) for m, v in result["scores"].items()}, "lag": list(result["lag"]),
                      "si_sdr_ceiling": result["si_sdr_ceiling"]}
            atomic_write_json(self.folder / f"{key}.json", {"settings": self.settings, "result": stored})

    def stats(self, side: str) -> dict:
        s = self.sides[side]
        return {"hits": s.hits, "misses": s.misses, "folder": str(self.folder) if self.folder else None}


def _well_formed(result, metrics) -> bool:
    return (isinstance(result, dict) and isinstance(result.get("scores"), dict)
            and set(result["scores"]) == set(metrics) and isinstance(result.get("lag"), list)
            and len(result["lag"]) == 2 and isinstance(result.get("si_sdr_ceiling"), bool))
