"""Faults the emulator injects on demand, as real Kaggle produces them now and then.

Set them from Python (`emulator.faults.set(...)`) or over HTTP (`POST /_emulator/faults`
with a JSON object of the same names). Counted faults are used up one request at a time.

    fail_next       [429, 503, ...]  the next API requests get these statuses (HTML bodies)
    delay           seconds          the next `delay_count` API requests answer this late
    delay_count     int              (-1: every request)
    delay_method    str              only requests for this API method are delayed (and counted)
    drop_downloads  int              the next N file downloads break after `drop_fraction` of the bytes
    drop_streams    int              the next N live-log streams break after `drop_stream_after` events
    reject_push     str              the next push is refused with this `error`
    unattached      [owner/slug]     sources accepted but silently not attached
    hostile_names   [name]           extra output files with these (escaping) names
    hold            bool             new sessions stay queued until released (setting it false
                                     over HTTP starts them; from Python: store.mark_released())
    gpu_used_hours  float            GPU quota already used this week (of gpu_total_hours)
    max_gpu_sessions int             unfinished GPU sessions per account before a push is refused
    fail_uploads    int              the next N blob uploads (PUT /upload/...) answer 503, keeping nothing
    dataset_pending int              the next N GetDatasetStatus answers say BLOBS_RECEIVED, not READY
    session_memory  int              bytes of memory (RLIMIT_AS) each new session's kernel gets; 0: no limit
    session_disk    int              bytes each new session's working folder may hold; 0: no limit
                                     (the emulator's machine limits: sessions.py; Emulator(faults=...))

Broken answers: each entry is used up by the next request it names, an API method M
("GetKernel") or, where shown, "download" (a GET of an output file). The store still
handles a mangled or badly encoded request (a mangled push still makes its version): only
the bytes on the wire change, as when a proxy or a broken server front mangles them.

    mangle_next     [{"method": M, "answer": VALUE}]  M is answered (HTTP 200) with this JSON
                                     value instead ({} , [], "text", {"versionNumber": "abc"})
                    [{"method": M, "body": TEXT, "content_type": C}]  or with this raw text
    bad_gzip_next   [M | "download"] the answer says Content-Encoding: gzip over a body that is not
    redirect_loop_next [M | "download"]  answered 302 to itself (before credentials are checked),
                                     and so is every request that follows it: a loop without end
"""

import threading
from dataclasses import dataclass, field, fields

from kjob.kaggle_platform import GPU_SESSIONS


@dataclass
class Faults:
    fail_next: list[int] = field(default_factory=list)
    delay: float = 0.0
    delay_count: int = 0
    delay_method: str | None = None
    drop_downloads: int = 0
    drop_fraction: float = 0.5
    drop_streams: int = 0
    drop_stream_after: int = 1
    reject_push: str | None = None
    unattached: list[str] = field(default_factory=list)
    hostile_names: list[str] = field(default_factory=list)
    hold: bool = False
    gpu_used_hours: float = 0.0
    gpu_total_hours: float = 30.0
    max_gpu_sessions: int = GPU_SESSIONS.value
    fail_uploads: int = 0
    dataset_pending: int = 0
    session_memory: int = 0
    session_disk: int = 0
    mangle_next: list[dict] = field(default_factory=list)
    bad_gzip_next: list[str] = field(default_factory=list)
    redirect_loop_next: list[str] = field(default_factory=list)

    def __post_init__(self):
        self._lock = threading.Lock()

    def set(self, **changes) -> None:
        known = {f.name: f for f in fields(self)}
        unknown = set(changes) - set(known)
        if unknown:
            raise ValueError(f"unknown fault(s): {', '.join(sorted(unknown))}")
        for entry in changes.get("mangle_next", []):
            if not (isinstance(entry, dict) and isinstance(entry.get("method"), str)
                    and ("answer" in entry or isinstance(entry.get("body"), str))):
                raise ValueError('each mangle_next entry needs a "method" and an "answer" (JSON) or a "body" (text)')
        with self._lock:
            for name, value in changes.items():
                setattr(self, name, list(value) if isinstance(value, (list, tuple)) else value)

    def session_limits(self) -> dict:
        """The limits a new session gets (sessions.Session.create)."""
        with self._lock:
            return {"memory": self.session_memory, "working": self.session_disk}

    def snapshot(self) -> dict:
        with self._lock:
            return {f.name: getattr(self, f.name) for f in fields(self)}

    def next_status(self) -> int | None:
        with self._lock:
            return self.fail_next.pop(0) if self.fail_next else None

    def next_delay(self, method: str | None = None) -> float:
        with self._lock:
            if self.delay <= 0 or self.delay_count == 0 or (self.delay_method and method != self.delay_method):
                return 0.0
            if self.delay_count > 0:
                self.delay_count -= 1
            return self.delay

    def _take(self, name: str) -> bool:
        with self._lock:
            if getattr(self, name) > 0:
                setattr(self, name, getattr(self, name) - 1)
                return True
            return False

    def take_download_drop(self) -> bool:
        return self._take("drop_downloads")

    def take_stream_drop(self) -> bool:
        return self._take("drop_streams")

    def take_upload_failure(self) -> bool:
        return self._take("fail_uploads")

    def take_dataset_pending(self) -> bool:
        return self._take("dataset_pending")

    def take_push_rejection(self) -> str | None:
        with self._lock:
            message, self.reject_push = self.reject_push, None
            return message

    def take_for(self, name: str, target: str):
        """The first entry of the list fault `name` meant for `target` (a method or "download"),
        removed from the list; None when there is none."""
        with self._lock:
            entries = getattr(self, name)
            for index, entry in enumerate(entries):
                if (entry.get("method") if isinstance(entry, dict) else entry) == target:
                    return entries.pop(index)
            return None
