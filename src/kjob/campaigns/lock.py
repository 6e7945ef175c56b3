"""One `kjob sweep` of a campaign at a time on a machine: its lock file."""

import os
from contextlib import contextmanager

from kjob.errors import UsageError


@contextmanager
def only_sweep(path, name: str):
    """Hold the campaign's lock: two sweeps of one campaign would both push its pending members.

    The file also names the holder (pid and start time). A lock whose named holder is gone is
    stale: a process the dead sweep left behind may still keep the file locked, and no sweep
    runs then, so this one goes on (and names itself in the file)."""
    from kjob.procs import alive, start_time

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        try:
            if os.name == "nt":
                import msvcrt

                msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder, _, started = handle.read().strip().partition(" ")
            pid = int(holder) if holder.isdigit() else None
            if pid is None or alive(pid, int(started) if started.isdigit() else None):
                raise UsageError(f"another `kjob sweep {name}` runs on this machine (pid {holder or '?'}): one sweep "
                                 f"of a campaign at a time; `kjob sweep {name} --status` shows where it is") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()} {start_time(os.getpid()) or ''}".strip())
        handle.flush()
        yield  # the lock goes with the file's closing (or the process's end)
