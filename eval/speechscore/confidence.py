"""Bootstrap confidence intervals for the mean improvements: resample the utterances with
replacement, take each resample's mean, and keep the middle 95 % of those means (the
percentile interval). Seeded, so the same scores always give the same interval."""

import numpy as np

RESAMPLES = 1000
LEVEL = 0.95
SEED = 0
CONVENTION = (f"95 % percentile bootstrap interval of each mean improvement: {RESAMPLES} resamples of the "
              f"utterances (with replacement) where both sides are defined, numpy default_rng(seed {SEED})")


def bootstrap_interval(values, resamples: int = RESAMPLES, level: float = LEVEL, seed: int = SEED):
    """(low, high) of the mean of `values`, or None with fewer than two values."""
    data = np.asarray([v for v in values if v is not None], dtype=np.float64)
    if data.size < 2:
        return None
    rng = np.random.default_rng(seed)
    rows = max(1, 1_000_000 // data.size)  # resamples drawn a block at a time: bounded memory on any set
    means = np.concatenate([data[rng.integers(0, data.size, size=(min(rows, resamples - start), data.size))].mean(axis=1)
                            for start in range(0, resamples, rows)])
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def improvement_intervals(rows: list[dict], metrics) -> dict:
    """{metric: {"low", "high", "n"}} for each metric's mean improvement (None bounds
    with fewer than two defined improvements)."""
    out = {}
    for m in metrics:
        deltas = [r[f"{m}_delta"] for r in rows if r[f"{m}_delta"] is not None]
        found = bootstrap_interval(deltas)
        out[m] = {"low": found[0] if found else None, "high": found[1] if found else None, "n": len(deltas)}
    return out
