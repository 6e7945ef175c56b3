"""What a scoring process runs. Imported (with numpy, pesq and pystoi) by the fork server
before any worker is forked, so each worker starts warm and single-threaded."""

import pesq
import pystoi

from speechscore.metrics import score_signal

# Loaded here, in the fork server, so that forked workers start with them.
PRELOADED = (pesq, pystoi)


def score_task(task: tuple) -> tuple:
    """(key, clean, signal, metrics) -> (key, {metric: (value, reason)})."""
    key, clean, signal, metrics = task
    scores = score_signal(clean, signal, metrics)
    return key, {m: (s.value, s.reason) for m, s in scores.items()}
