"""Scoring both sides of every pair with the score cache in front: what is cached is not
computed again, and a checkpoint whose every enhanced score is cached is not even run
(unless its output is needed for the report or --save-audio).

    noisy side      key: the clean and noisy samples
    enhanced files  key: the clean and enhanced samples
    a checkpoint    key: the clean samples, the checkpoint's bytes, the noisy samples and
                    the inference settings (which determine the output)
"""

import hashlib
import json
import time
from dataclasses import dataclass

from speechscore.cache import ScoreCache, samples_digest
from speechscore.scoring import score_tasks


@dataclass
class ModelSource:
    """Enhancement by a checkpoint: `enhance(indices) -> {index: wave}` runs the model."""
    checkpoint_sha256: str
    settings: dict  # model name, config, inference path, chunking, torch version
    enhance: object  # callable

    def signal_id(self, noisy_digest: str) -> str:
        text = json.dumps({"checkpoint": self.checkpoint_sha256, "noisy": noisy_digest, **self.settings},
                          sort_keys=True)
        return "model:" + hashlib.sha256(text.encode()).hexdigest()


def missing_result(metrics, reason: str = "no enhanced file") -> dict:
    return {"scores": {m: (None, reason) for m in metrics}, "lag": (None, 0.0), "si_sdr_ceiling": False}


def score_both_sides(pairs, metrics, cache: ScoreCache, jobs: int, enhanced_waves=None, model: ModelSource = None,
                     need_waves: bool = False, progress=None):
    """({index: {"noisy": result, "enhanced": result}}, enhanced waves (None where not
    computed), timing {"enhance_s", "score_s"}). Give enhanced_waves (a list, None where a
    pair has no file) or a model."""
    timing = {"enhance_s": 0.0}
    clean = [samples_digest(p.clean) for p in pairs]
    noisy = [samples_digest(p.noisy) for p in pairs]
    noisy_keys = [cache.key(c, n) for c, n in zip(clean, noisy)]
    results = {i: {"noisy": cache.get(k, "noisy")} for i, k in enumerate(noisy_keys)}
    if model is not None:
        keys = [cache.key(c, model.signal_id(n)) for c, n in zip(clean, noisy)]
        cached = [cache.get(k, "enhanced") for k in keys]
        wanted = [i for i, hit in enumerate(cached) if hit is None or need_waves]
        mark = time.perf_counter()
        made = model.enhance(wanted) if wanted else {}
        timing["enhance_s"] = time.perf_counter() - mark
        enhanced_waves = [made.get(i) for i in range(len(pairs))]
    else:
        keys = [cache.key(c, samples_digest(w)) if w is not None else None for c, w in zip(clean, enhanced_waves)]
        cached = [cache.get(k, "enhanced") if k else None for k in keys]
    mark = time.perf_counter()
    tasks = [((i, "noisy"), p.clean, p.noisy, metrics) for i, p in enumerate(pairs) if results[i]["noisy"] is None]
    for i, p in enumerate(pairs):
        if cached[i] is not None:
            results[i]["enhanced"] = cached[i]
        elif enhanced_waves[i] is None:
            results[i]["enhanced"] = missing_result(metrics)
        else:
            tasks.append(((i, "enhanced"), p.clean, enhanced_waves[i], metrics))
    for (i, side), result in score_tasks(tasks, jobs, progress).items():
        results[i][side] = result
        cache.put(noisy_keys[i] if side == "noisy" else keys[i], result)
    timing["score_s"] = time.perf_counter() - mark
    return results, enhanced_waves, timing
