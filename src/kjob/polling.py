"""How often kjob asks a backend about a run: exponential backoff with jitter, in one place."""

import random
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    start: float = 2.0  # seconds before the second check
    factor: float = 1.5
    cap: float = 30.0
    jitter: float = 0.1  # +-10 %, so that many watchers do not ask in step

    def delays(self, rng: random.Random | None = None) -> Iterator[float]:
        rng = rng or random.Random()
        delay = self.start
        while True:
            yield delay * (1 + rng.uniform(-self.jitter, self.jitter))
            delay = min(delay * self.factor, self.cap)
