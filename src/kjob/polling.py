"""How often kjob asks a backend about a run: exponential backoff with jitter, in one place."""

import os
import random
from collections.abc import Iterator
from dataclasses import dataclass

from kjob.errors import ConfigError


@dataclass(frozen=True)
class Backoff:
    start: float = 2.0  # seconds before the second check
    factor: float = 1.5
    cap: float = 30.0
    jitter: float = 0.1  # +-10 %, so that many watchers do not ask in step

    def delays(self, rng: random.Random | None = None, expected: float | None = None) -> Iterator[float]:
        """The waits between checks. With `expected` (seconds from now until the run should
        end, judged by alike runs that ended), no wait passes that moment: a check falls on it,
        and from there the schedule starts again from a short wait (a fortieth of `expected`,
        from 0.1 s up to `start`), so a run that ends when expected is seen at once and one
        that goes on is backed off from again."""
        rng = rng or random.Random()
        delay, elapsed = self.start, 0.0
        while True:
            wait = delay * (1 + rng.uniform(-self.jitter, self.jitter))
            if expected is not None and elapsed < expected <= elapsed + wait:
                wait = expected - elapsed
                delay = min(self.start, max(0.1, expected / 40)) / self.factor
                expected = None
            elapsed += wait
            yield wait
            delay = min(delay * self.factor, self.cap)


def kaggle_first_wait(default: float) -> float:
    """The first wait between checks on Kaggle (a run's status, a dataset's processing):
    KJOB_KAGGLE_POLL seconds when it is set, for tests and slow links, else `default`."""
    raw = os.environ.get("KJOB_KAGGLE_POLL")
    try:
        return float(raw) if raw else default
    except ValueError:
        raise ConfigError(f"KJOB_KAGGLE_POLL must be a number of seconds, not '{raw}'") from None
