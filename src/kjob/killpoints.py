"""Named points of a push where kjob can be made to kill itself, to prove that a push killed
at any step loses nothing and mis-files nothing (`KJOB_KILL_AT=<point>`, used by the tests).

The points, in order: `push:begun` (the ledger row written), `local:claimed` (a local run's
version folder made), `local:laid-out` (its sandbox laid out, not started), `ray:claimed`,
`push:submitted` (the backend answered, the row not yet completed).
"""

import os
import signal

ENV = "KJOB_KILL_AT"


def reached(point: str) -> None:
    """SIGKILL this process when the environment names `point`: no handler, no clean-up runs,
    exactly as a user's `kill -9` or a machine losing power."""
    if os.environ.get(ENV) == point:
        os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))
