"""A Kaggle session's log: the `log` field of the output listing (a JSON array of
{stream_name, time, data}) and the live stream (server-sent events ending in END_OF_LOG).

A live stream that breaks is opened again, and the server replays it from the start: the
entries already shown are skipped, so each one is shown once.
"""

import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator

import requests
from urllib3.exceptions import HTTPError as Urllib3Error

from kjob.backends.base import LogEntry

END_OF_LOG = "END_OF_LOG"


def parse_log(text: str | None) -> list[LogEntry]:
    return parse_log_since(text, 0)[0]


def parse_log_since(text: str | None, seen: int) -> tuple[list[LogEntry], int]:
    """The entries of the log past the first `seen` items, and how many items it holds: Kaggle
    serves the whole log each time, so the items already handed on are counted, not built again."""
    if not text:
        return [], seen
    try:
        items = json.loads(text)
    except json.JSONDecodeError:
        return ([LogEntry("stdout", 0.0, text)] if seen == 0 else []), max(seen, 1)
    if not isinstance(items, list):
        items = [items]
    return [entry for entry in map(_entry, items[seen:]) if entry is not None], max(seen, len(items))


def _entry(item) -> LogEntry | None:
    if not isinstance(item, dict):
        return None
    stream = item.get("stream_name")
    try:
        at = float(item.get("time") or 0)
    except (TypeError, ValueError, OverflowError):
        at = 0.0
    return LogEntry("stderr" if stream == "stderr" else "stdout", at, str(item.get("data", "")))


def event_data(lines: Iterable[str]) -> Iterator[str]:
    """The data of each server-sent event (comment lines and other fields ignored)."""
    data: list[str] = []
    for line in lines:
        if line == "":
            if data:
                yield "\n".join(data)
            data = []
        elif line.startswith("data:"):
            data.append(line[6:] if line.startswith("data: ") else line[5:])
    if data:
        yield "\n".join(data)


class Replay:
    """Remembers what was shown; on each new connection, lets through only what is new."""

    def __init__(self):
        self.shown: Counter = Counter()
        self.connection: Counter = Counter()

    def reconnect(self) -> None:
        self.connection = Counter()

    def fresh(self, entry: LogEntry) -> bool:
        key = (entry.stream, entry.time, entry.text)
        self.connection[key] += 1
        if self.connection[key] > self.shown[key]:
            self.shown[key] += 1
            return True
        return False


def follow(open_stream: Callable[[], requests.Response], lines: Callable[[requests.Response], Iterable[str]],
           finished: Callable[[], bool], final_log: Callable[[], list[LogEntry]],
           pause: Callable[[], None]) -> Iterator[LogEntry]:
    """Entries from the live stream until END_OF_LOG (or the run's end), reconnecting as needed."""
    replay = Replay()
    while True:
        replay.reconnect()
        with open_stream() as response:
            try:
                if "json" in (response.headers.get("Content-Type") or ""):  # the session is over: the whole log
                    yield from (e for e in parse_log(response.text) if replay.fresh(e))
                    return
                for data in event_data(lines(response)):
                    if data.strip() == END_OF_LOG:
                        return
                    structured = data.lstrip().startswith(("{", "["))
                    entries = parse_log(data) if structured else [LogEntry("stdout", 0.0, data)]
                    yield from (e for e in entries if replay.fresh(e))
            except (requests.RequestException, Urllib3Error, OSError):
                pass  # the stream broke (or its body would not decode): open it again, or read the final log
        if finished():
            replay.reconnect()
            yield from (e for e in final_log() if replay.fresh(e))
            return
        pause()
