"""Process identity that survives pid reuse (a pid plus its start time), and stopping process groups.

Linux reads /proc; other POSIX systems ask `ps`; Windows asks kernel32. Where none of them
answers, a process counts as gone. Detached processes get their own session on POSIX
(`start_new_session`) and their own process group on Windows (`CREATE_NEW_PROCESS_GROUP`).

A process group or a session is something a process can leave (setsid, a double fork). On
Linux a process can instead become a child subreaper (`become_subreaper`): the orphans of its
descendants are then re-parented to it, not to init, so everything started below it stays
below it, and `end_descendants` can find and kill all of it. macOS and Windows have no such
thing (`can_adopt_orphans` says so).
"""

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time

_WINDOWS = os.name == "nt"


def start_time(pid: int) -> int | None:
    """The process's start time (an opaque integer), or None when it is gone or a zombie."""
    if not pid:
        return None
    if _WINDOWS:
        return _windows_start_time(pid)
    if os.path.isdir("/proc/self"):
        return _proc_start_time(pid)
    return _ps_start_time(pid)


def _proc_start_time(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError, PermissionError, OSError):
        return None
    if fields[0] in ("Z", "X"):  # exited, waiting to be reaped
        return None
    return int(fields[19])  # clock ticks since boot


def _ps_start_time(pid: int) -> int | None:
    """macOS and the BSDs: `ps` gives the state and the start time (to the second)."""
    try:
        done = subprocess.run(["ps", "-o", "stat=,lstart=", "-p", str(pid)], capture_output=True, text=True,
                              timeout=10, env={"LC_ALL": "C", "PATH": os.environ.get("PATH", "/bin:/usr/bin")})
    except (OSError, subprocess.SubprocessError):
        return None
    parts = done.stdout.split(None, 1)
    if done.returncode != 0 or len(parts) != 2 or parts[0].startswith("Z"):
        return None
    try:
        return int(time.mktime(time.strptime(parts[1].strip(), "%a %b %d %H:%M:%S %Y")))
    except ValueError:
        return None


def _windows_start_time(pid: int) -> int | None:
    import ctypes
    from ctypes import wintypes

    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
    handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
    if not handle:
        return None
    try:
        code = wintypes.DWORD()
        if not kernel32.GetExitCodeProcess(handle, ctypes.byref(code)) or code.value != 259:  # STILL_ACTIVE
            return None
        times = [wintypes.FILETIME() for _ in range(4)]
        if not kernel32.GetProcessTimes(handle, *(ctypes.byref(t) for t in times)):
            return None
        return (times[0].dwHighDateTime << 32) | times[0].dwLowDateTime
    finally:
        kernel32.CloseHandle(handle)


def alive(pid: int | None, started: int | None) -> bool:
    if not pid:
        return False
    now = start_time(pid)
    return now is not None and (started is None or now == started)


def detached() -> dict:
    """Popen options for a process that leads its own group and outlives its parent's terminal."""
    if _WINDOWS:
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    return {"start_new_session": True}


def terminate_group(pid: int | None) -> None:
    """Ask the process group led by `pid` to stop (SIGTERM; CTRL_BREAK on Windows)."""
    if not pid:
        return
    if _WINDOWS:
        try:
            os.kill(pid, signal.CTRL_BREAK_EVENT)
        except OSError:
            pass
        return
    _signal_group(pid, signal.SIGTERM)


def kill_group(pid: int | None, sig: int | None = None) -> None:
    """Signal the process group led by `pid` (and `pid` itself if it leads none); by default kill it."""
    if not pid:
        return
    if _WINDOWS:
        if sig is None:
            subprocess.run(["taskkill", "/F", "/T", "/PID", str(pid)], capture_output=True, check=False)
        else:
            try:
                os.kill(pid, sig)
            except OSError:
                pass
        return
    _signal_group(pid, signal.SIGKILL if sig is None else sig)


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def wait_gone(pid: int | None, started: int | None, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not alive(pid, started):
            return True
        time.sleep(0.05)
    return not alive(pid, started)



class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C's KeyboardInterrupt would be (`terminate_as_interrupt`), so
    that whatever cleans up after an interrupt (a foreground run's cancel) runs for `kill` too."""


@contextlib.contextmanager
def terminate_as_interrupt():
    """Within the block, SIGTERM raises `Terminated` in the main thread (once: a second one,
    while that clean-up runs, is ignored). Elsewhere (not the main thread), a no-op."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    raised = []

    def on_term(signum, frame):
        if not raised:
            raised.append(signum)
            raise Terminated()

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


_PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h


def can_adopt_orphans() -> bool:
    """Whether a process here can keep every process started below it (Linux's subreaper)."""
    return sys.platform.startswith("linux")


def become_subreaper() -> bool:
    """Make this process adopt its descendants' orphans (Linux); False where it cannot."""
    if not can_adopt_orphans():
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def descendants(pid: int) -> list[int]:
    """The living processes below `pid` (Linux /proc), parents before their children."""
    children: dict[int, list[int]] = {}
    try:
        entries = [entry.name for entry in os.scandir("/proc") if entry.name.isdigit()]
    except OSError:
        return []
    for name in entries:
        try:
            with open(f"/proc/{name}/stat", encoding="ascii") as handle:
                state, parent = handle.read().rsplit(")", 1)[1].split()[:2]
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
        if state not in ("Z", "X"):
            children.setdefault(int(parent), []).append(int(name))
    found, queue = [], list(children.get(pid, []))
    while queue:
        child = queue.pop(0)
        found.append(child)
        queue += children.get(child, [])
    return found


def reap_children() -> None:
    """Collect the exit status of every child that has ended (a subreaper's adopted orphans
    become zombies until someone does)."""
    if _WINDOWS:
        return
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def wait_reaping(process: subprocess.Popen) -> int:
    """Wait for `process` (a child of this one), reaping every other child that ends meanwhile:
    how a subreaper waits, so that its adopted orphans never pile up as zombies."""
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:  # reaped elsewhere; Popen knows how it ended, or never will
            return process.wait()
        if pid == process.pid:
            process.returncode = os.waitstatus_to_exitcode(status)
            return process.returncode


def end_descendants(seconds: float = 10.0) -> int:
    """Kill every process below this one, pass after pass (a dying parent's children come to a
    subreaper), until none is left or `seconds` have passed; how many were killed."""
    me, killed = os.getpid(), set()
    deadline = time.monotonic() + seconds
    while True:
        reap_children()
        found = descendants(me)
        if not found or time.monotonic() > deadline:
            return len(killed)
        for pid in found:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        killed.update(found)
        time.sleep(0.02)


# -- kill points ---------------------------------------------------------------------------
# Named points of a push where kjob can be made to kill itself, to prove that a push killed at
# any step loses nothing and mis-files nothing (`KJOB_KILL_AT=<point>`, used by the tests):
# `push:begun` (the ledger row written), `local:claimed` (a local run's version folder made),
# `local:laid-out` (its sandbox laid out, not started), `ray:claimed`, `push:submitted` (the
# backend answered, the row not yet completed).
KILL_AT = "KJOB_KILL_AT"


def kill_point(point: str) -> None:
    """SIGKILL this process when KJOB_KILL_AT names `point`: no handler, no clean-up runs,
    exactly as a user's `kill -9` or a machine losing power."""
    if os.environ.get(KILL_AT) == point:
        os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))
