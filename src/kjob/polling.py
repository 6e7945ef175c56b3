"""How often kjob asks a backend about a run: exponential backoff with jitter, in one place.

When the run's end can be expected (alike runs of its recipe ended after about E seconds,
spread over about S), the checks are moved from where it will not end to where it will: the
window E +- 1.5 S gets evenly spaced checks, and the time before it waits longer (up to twice
the cap). The window gets as many checks as the plain backoff would have made by E + 3 S,
less those already made, so a run that ends as its alike runs did costs no more calls than
the plain schedule, and is seen within one window step of its end instead of one cap
(benchmarks/bench_follow.py simulates it: Kaggle's median lateness 30 s -> under 15 s)."""

import os
import random
from collections.abc import Iterator
from dataclasses import dataclass

from kjob.errors import ConfigError

WINDOW = 1.5  # the dense window: the expected end +- this many spreads
BUDGET = 3.0  # its checks: the plain schedule's up to the expected end + this many spreads
FAR = 2.0  # before the window, waits grow up to this many caps (the calls the window spends)


@dataclass(frozen=True)
class Backoff:
    start: float = 2.0  # seconds before the second check
    factor: float = 1.5
    cap: float = 30.0
    jitter: float = 0.1  # +-10 %, so that many watchers do not ask in step

    def delays(self, rng: random.Random | None = None, expected: float | None = None,
               spread: float | None = None) -> Iterator[float]:
        """The waits between checks. With `expected` (seconds from now until the run should
        end, judged by alike runs that ended) and `spread` (how far those runs' ends scatter
        around it, seconds; by default a tenth of `expected`), the checks are dense around that
        moment and sparse before it (see the module's docstring)."""
        rng = rng or random.Random()
        if expected is None or expected <= 0:
            yield from self._plain(rng, self.start)
            return
        spread = max(spread if spread is not None else expected / 10, self.start / 5)
        low, high = max(0.0, expected - WINDOW * spread), expected + WINDOW * spread
        delay, elapsed, checks = self.start, 0.0, 0
        while elapsed < low:  # far from the end: the backoff, its cap raised, never into the window
            wait = min(delay * (1 + rng.uniform(-self.jitter, self.jitter)), low - elapsed)
            delay = min(delay * self.factor, self.cap * FAR)
            elapsed, checks = elapsed + wait, checks + 1
            yield wait
        left = max(1, self.plain_checks(expected + BUDGET * spread) - checks)
        step = min(self.cap, max(self.start / 5, (high - elapsed) / left))
        while elapsed < high:
            elapsed += step
            yield step
        yield from self._plain(rng, step * self.factor)  # later than expected: backed off from again

    def _plain(self, rng: random.Random, delay: float) -> Iterator[float]:
        while True:
            yield delay * (1 + rng.uniform(-self.jitter, self.jitter))
            delay = min(delay * self.factor, self.cap)

    def plain_checks(self, seconds: float) -> int:
        """How many waits the plain schedule (no jitter) takes to pass `seconds`."""
        delay, elapsed, count = self.start, 0.0, 0
        while elapsed < seconds:
            elapsed, delay, count = elapsed + delay, min(delay * self.factor, self.cap), count + 1
        return count


def seen_after(delays: Iterator[float], end: float) -> tuple[int, float]:
    """(status checks made, seconds late) for a run that ends `end` seconds after the first
    check, watched on `delays`: what the schedule costs and gains, with no clock at all."""
    elapsed, checks = 0.0, 1
    while elapsed < end:
        elapsed, checks = elapsed + next(delays), checks + 1
    return checks, elapsed - end


def kaggle_first_wait(default: float) -> float:
    """The first wait between checks on Kaggle (a run's status, a dataset's processing):
    KJOB_KAGGLE_POLL seconds when it is set, for tests and slow links, else `default`."""
    raw = os.environ.get("KJOB_KAGGLE_POLL")
    try:
        return float(raw) if raw else default
    except ValueError:
        raise ConfigError(f"KJOB_KAGGLE_POLL must be a number of seconds, not '{raw}'") from None
