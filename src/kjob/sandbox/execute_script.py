"""Executing a script kernel (`kernel_type: script`): `python script.py`, its output streamed as it arrives.

Called by the runner of a run sandbox (`kjob.sandbox.runner`) in place of
`kjob.sandbox.execute_notebook.execute_notebook`, in the runner's main thread: while the script runs, SIGTERM
to the runner stops it, as nbclient's handler stops a notebook's kernel.

The script leads a process group of its own (as a notebook's kernel does), so that stopping
it reaches whatever it started, and a cancel's SIGTERM to the run's group reaches the runner
alone, which then decides how the script ends.
"""

import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from kjob.sandbox.execute_notebook import Failure, OutputHook, StartHook
from kjob.runs.failures import exception_kind
from kjob.sandbox.isolation import allowed_environment
from kjob.procs import detached, kill_group, terminate_group

# SIGTERM first (a cancel, the time limit), SIGKILL this long after: well within a cancel's own wait.
STOP_GRACE_SECONDS = 5.0
_POLL_SECONDS = 0.1
_PARTIAL_SECONDS = 0.5  # a line without its end is logged after this long
_STDERR_TAIL = 64_000  # characters of stderr kept to find the traceback, which comes last
_HEADER = "Traceback (most recent call last):"
_FRAME = re.compile(r'^\s+File "(?P<file>[^"]+)", line (?P<line>\d+)')
_EXCEPTION = re.compile(r"^[A-Za-z_][\w.]*(?::.*)?$")  # "ZeroDivisionError: division by zero", "KeyboardInterrupt"


@dataclass
class ScriptExecution:
    seconds: float
    exit_code: int | None  # negative: killed by that signal (POSIX)
    failure: Failure | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None


def execute_script(
    script: Path, working_dir: Path, env: dict[str, str], timeout: float,
    on_output: OutputHook | None = None, on_start: StartHook | None = None,
) -> ScriptExecution:
    """Run `python script` (this interpreter) with cwd `working_dir` and stdin closed.

    The environment is `env` over the allow-listed part of this process's, as a notebook's
    kernel gets it. `on_output` sees stdout and stderr as they arrive (from two threads, one
    at a time); `on_start` the script's pid. Past `timeout` seconds the script is stopped."""
    stopping = threading.Event()
    previous = {sig: signal.signal(sig, lambda signum, frame: stopping.set()) for sig in _stop_signals()}
    process = None
    try:
        started = time.monotonic()
        process = subprocess.Popen(
            [sys.executable, str(script)], cwd=working_dir, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, close_fds=True,
            env={**allowed_environment(os.environ), "PYTHONUNBUFFERED": "1", **env}, **detached(),
        )
        if on_start is not None:
            on_start(process.pid)
        streams = _Streams(process, on_output)
        code, why = _wait(process, started + timeout, stopping, streams)
        # What the script left running in its group would keep the pipes open (and outlive the run).
        # Its leader is reaped by now, but the group lives as long as any member does.
        kill_group(process.pid)
        stderr = streams.close(STOP_GRACE_SECONDS)
    finally:
        if process is not None and process.poll() is None:  # something here failed: the script must not outlive it
            kill_group(process.pid)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return ScriptExecution(time.monotonic() - started, code, _failure(code, why, stderr, script, timeout))


def _stop_signals() -> list[int]:
    return [signal.SIGTERM] + ([signal.SIGBREAK] if hasattr(signal, "SIGBREAK") else [])


def _wait(process: subprocess.Popen, deadline: float, stopping: threading.Event,
          streams: "_Streams") -> tuple[int, str | None]:
    """Wait for the script's exit code; stop it when asked or past the deadline ("stopped", "timeout")."""
    why, kill_at = None, None
    while True:
        streams.flush_partial()
        now = time.monotonic()
        if why is None and (stopping.is_set() or now >= deadline):
            why = "stopped" if stopping.is_set() else "timeout"
            terminate_group(process.pid)
            kill_at = now + STOP_GRACE_SECONDS
        elif kill_at is not None and now >= kill_at:
            kill_group(process.pid)
            kill_at = None
        try:
            return process.wait(_POLL_SECONDS), why
        except subprocess.TimeoutExpired:
            continue


class _Streams:
    """Reads stdout and stderr concurrently, passing each on a line at a time as soon as it is complete.

    Unbuffered, `print` writes a line's text and its newline apart; a partial line (a prompt,
    a progress bar's update after its "\r") is passed on once it is `_PARTIAL_SECONDS` old."""

    def __init__(self, process: subprocess.Popen, on_output: OutputHook | None):
        self.on_output = on_output
        self.lock = threading.Lock()
        self.closed = False
        self.pending: dict[str, tuple[str, float]] = {}  # stream: (a partial line, since when)
        self.stderr_tail = ""
        self.threads = [threading.Thread(target=self._pump, args=(pipe, name), daemon=True)
                        for pipe, name in ((process.stdout, "stdout"), (process.stderr, "stderr"))]
        for thread in self.threads:
            thread.start()

    def _pump(self, pipe, name: str) -> None:
        import codecs

        decoder = codecs.getincrementaldecoder("utf-8")("replace")  # a character split across reads stays whole
        with pipe:
            while chunk := pipe.read1(65536):  # what is there now, without waiting for a full buffer
                self._take(name, decoder.decode(chunk))
        self._take(name, decoder.decode(b"", final=True), end=True)

    def _take(self, name: str, text: str, end: bool = False) -> None:
        with self.lock:
            held, since = self.pending.pop(name, ("", time.monotonic()))
            text = held + text
            cut = len(text) if end else max(text.rfind("\n"), text.rfind("\r")) + 1
            self._emit(name, text[:cut])
            if text[cut:]:
                self.pending[name] = (text[cut:], since)

    def flush_partial(self) -> None:
        """Pass on the partial lines held longer than `_PARTIAL_SECONDS`."""
        with self.lock:
            for name, (text, since) in list(self.pending.items()):
                if time.monotonic() - since >= _PARTIAL_SECONDS:
                    del self.pending[name]
                    self._emit(name, text)

    def _emit(self, name: str, text: str) -> None:  # with the lock held
        if not text or self.closed:  # closed: the caller has moved on (and may have closed its log)
            return
        if name == "stderr":
            self.stderr_tail = (self.stderr_tail + text)[-_STDERR_TAIL:]
        if self.on_output is not None:
            self.on_output(name, text)

    def close(self, wait: float) -> str:
        """Wait for both pipes to end (a process that left the script's group may hold them); the stderr tail."""
        deadline = time.monotonic() + wait
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self.lock:
            for name, (text, _) in list(self.pending.items()):
                self._emit(name, text)
            self.closed = True
            return self.stderr_tail


def _failure(code: int, why: str | None, stderr: str, script: Path, timeout: float) -> Failure | None:
    if why == "timeout":
        return Failure("timeout", f"time limit of {timeout:.0f} s exceeded")
    if why == "stopped":  # a cancel, most likely: the runner finds its marker and says so
        return Failure("kernel died", "the script was stopped (SIGTERM to its runner)")
    if code == 0:
        return None
    if code < 0:
        return Failure("kernel died", _killed(-code))
    return traceback_failure(stderr, script) or Failure("user code", f"the script exited with code {code}")


def _killed(number: int) -> str:
    try:
        name = signal.Signals(number).name
    except ValueError:
        name = f"signal {number}"
    why = ", perhaps for using too much memory" if name == "SIGKILL" else ""
    return f"the script was killed by {name}{why}"


def traceback_failure(stderr: str, script: Path) -> Failure | None:
    """The last uncaught exception on `stderr`, located at its innermost frame in `script` itself.

    A syntax error has its frame but no "Traceback" header; a chained exception's last
    traceback is the one that ended the script."""
    found, frames = None, []
    for line in stderr.splitlines():
        if line.startswith(_HEADER):
            frames = []
        elif frame := _FRAME.match(line):
            frames.append(frame)
        elif frames and _EXCEPTION.match(line):
            found, frames = (line, frames), []
    if found is None:
        return None
    message, frames = found
    own = os.path.realpath(script)
    lines = [int(f["line"]) for f in frames if os.path.realpath(f["file"]) == own]
    name, _, said = message.strip().partition(":")
    where = f"{script.name}:{lines[-1]}" if lines else None
    return Failure(exception_kind(name, said), message.strip(), location=where)
