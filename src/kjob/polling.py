"""How often kjob asks a backend about a run: exponential backoff with jitter, in one place.

When the run's end can be expected (alike runs of its recipe ended after about E seconds,
their ends scattered over about S), the checks move from where the run will not end to where
it will. Before the window E +- 1.5 S the backoff may grow to twice its cap; up to E the window
gets evenly spaced checks, one falling on E, as many as the plain backoff would have made by E
(less one, and 5 % on long runs, for the waits after it); after E the waits start short again
and grow back to that spacing by the window's end, then to the cap. A run that ends about when
its alike runs did is seen within one spacing of its end, for the plain schedule's number of
calls (benchmarks/bench_follow.py: on Kaggle's schedule the median lateness goes from about
30 s to 10 to 13 s, at 0.99x the calls)."""

import math
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass

from kjob.errors import ConfigError

WINDOW = 1.5  # the dense window: the expected end +- this many spreads
SHARE = 0.95  # at most this share of the plain schedule's checks up to E go to the window before E
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
        plain = self.plain_checks(expected) - checks  # a run that ends when expected costs no more than that
        left = max(1.0, min(plain - 1, plain * SHARE))
        step = min(self.cap, max(self.start / 5, (expected - elapsed) / left))
        if elapsed < expected:  # evenly up to the expected moment, a check falling on it
            count = max(1, math.ceil((expected - elapsed) / step))
            for _ in range(count):
                yield (expected - elapsed) / count
            elapsed, wait = expected, min(step, max(self.start / 20, expected / 40))
            while elapsed < high:  # just after it, short waits: a run as long as its alike ones is seen at once
                elapsed += wait
                yield wait
                wait = min(wait * self.factor, step)
        else:
            wait = step
        yield from self._plain(rng, wait * self.factor)  # later than expected: backed off from again

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
