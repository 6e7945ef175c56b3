"""Noisy-side scores cached by content: they do not depend on the model, so evaluating a
second checkpoint on the same test set reuses them. One small JSON file per pair, written
atomically; the key covers both files' bytes, the metric set and the library versions."""

import hashlib
import json
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from kjob.fsutil import atomic_write_json, read_json

SCORE_VERSION = 1


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "unknown"


@dataclass
class NoisyScoreCache:
    folder: Path | None  # None: no cache (every lookup misses, nothing is written)
    metrics: tuple[str, ...]
    hits: int = 0
    misses: int = 0
    settings: dict = field(init=False)

    def __post_init__(self):
        self.settings = {"score_version": SCORE_VERSION, "metrics": list(self.metrics),
                         "pesq": _version("pesq"), "pystoi": _version("pystoi"),
                         "soxr": _version("soxr"), "soundfile": _version("soundfile"),
                         "numpy": _version("numpy")}

    def key(self, noisy_digest: str, clean_digest: str) -> str:
        text = json.dumps({"noisy": noisy_digest, "clean": clean_digest, **self.settings}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    def get(self, key: str) -> dict | None:
        """{metric: (value, reason)} or None; counts a hit or a miss."""
        found = read_json(self.folder / f"{key}.json") if self.folder else None
        scores = found.get("scores") if isinstance(found, dict) else None
        if not isinstance(scores, dict) or set(scores) != set(self.metrics):
            self.misses += 1
            return None
        self.hits += 1
        return {m: (v[0], v[1]) for m, v in scores.items()}

    def put(self, key: str, scores: dict) -> None:
        if self.folder:
            atomic_write_json(self.folder / f"{key}.json",
                              {"settings": self.settings, "scores": {m: list(v) for m, v in scores.items()}})

    def stats(self) -> dict:
        return {"hits": self.hits, "misses": self.misses, "folder": str(self.folder) if self.folder else None}
