"""What a scoring process runs. Imported (with numpy, pesq and pystoi) by the fork server
before any worker is forked, so each worker starts warm and single-threaded."""

import pesq
import pystoi

from speechscore.lag import estimate_lag
from speechscore.metrics import score_signal, si_sdr_at_ceiling

# Loaded here, in the fork server, so that forked workers start with them.
PRELOADED = (pesq, pystoi)


def score_task(task: tuple) -> tuple:
    """(key, clean, signal, metrics) -> (key, result), result as the score cache keeps it:
    {"scores": {metric: (value, reason)}, "lag": (samples or None, correlation),
    "si_sdr_ceiling": bool}."""
    key, clean, signal, metrics = task
    return key, signal_result(clean, signal, metrics)


def signal_result(clean, signal, metrics) -> dict:
    scores = score_signal(clean, signal, metrics)
    lag = estimate_lag(clean, signal)
    return {"scores": {m: (s.value, s.reason) for m, s in scores.items()},
            "lag": (lag.samples, lag.correlation),
            "si_sdr_ceiling": "si_sdr" in metrics and si_sdr_at_ceiling(clean, signal)}
