"""The emulator's wire: a request's body read piece by piece (by Content-Length or chunked,
refused as soon as it is known to be too large) and a file's bytes sent as Kaggle's storage
sends them (Range, Last-Modified, ETag), with the download faults of faults.py. A mixin of the
server's request handler (server.py)."""

import email.utils
import re
import socket
from pathlib import Path

_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")
_COUNT = re.compile(r"^[0-9]+$")
PIECE = 1 << 20  # bodies are read at most this many bytes at a time


class Refused(Exception):
    """A request refused before or while its body is read: answered `code`, connection closed."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code, self.message = code, message


class Wire:
    """Reading request bodies and sending files, for a BaseHTTPRequestHandler."""

    def _chunked(self) -> bool:
        return "chunked" in self.headers.get("Transfer-Encoding", "").lower()

    def _declared_length(self) -> int:
        text = (self.headers.get("Content-Length") or "0").strip()
        if not _COUNT.match(text):
            raise Refused(400, f"Content-Length {text[:40]!r} is not a count of bytes")
        return int(text)

    def _chunks(self, limit: int, what: str):
        """The request body, piece by piece (never more than PIECE bytes at once): by
        Content-Length, or chunked transfer encoding. Refused (413) as soon as it is known
        to hold more than `limit` bytes, before they are read."""
        too_large = Refused(413, f"{what} may hold at most {limit} bytes")
        if self._chunked():
            got = 0
            while True:
                line = self.rfile.readline(1024).split(b";")[0].strip()
                try:
                    size = int(line or b"0", 16)
                except ValueError as exc:
                    raise Refused(400, f"bad chunked body: chunk size {line[:20]!r}") from exc
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):  # trailers
                        pass
                    return
                got += size
                if got > limit:
                    raise too_large
                yield from self._read(size)
                self.rfile.readline(1024)
        left = self._declared_length()
        if left > limit:
            raise too_large
        yield from self._read(left)

    def _read(self, count: int):
        while count > 0:
            piece = self.rfile.read(min(count, PIECE))
            if not piece:
                return
            count -= len(piece)
            yield piece

    def _send_file(self, path: Path, kind: str, name: str | None = None) -> None:
        stat = path.stat()
        self._content(path, stat.st_size, stat.st_mtime, f'"{stat.st_size:x}-{stat.st_mtime_ns:x}"', kind, name)

    def _content(self, content: Path | bytes, size: int, modified: float, tag: str, kind: str,
                 name: str | None = None) -> None:
        """A file's bytes, or the part a Range asks for, with what the official client decides from."""
        start, end = 0, size - 1
        match = _RANGE.match(self.headers.get("Range") or "")
        if match:
            start = int(match.group(1))
            end = min(int(match.group(2)), size - 1) if match.group(2) else size - 1
            if start >= size:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                return self.end_headers()
        length = max(0, end - start + 1)
        self.send_response(206 if match else 200)
        self.send_header("Content-Type", kind)
        if name:
            self.send_header("Content-Disposition", f'attachment; filename="{name}"')
        if self.server.store.faults.take_for("bad_gzip_next", "download"):
            self.send_header("Content-Encoding", "gzip")  # over bytes that are not gzip
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Last-Modified", email.utils.formatdate(modified, usegmt=True))
        self.send_header("ETag", tag)
        self.send_header("Content-Length", str(length))
        if match:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        drop = self.server.store.faults.take_download_drop()
        count = int(length * self.server.store.faults.drop_fraction) if drop else length
        if isinstance(content, Path):
            with content.open("rb") as handle:
                if count:
                    self.connection.sendfile(handle, start, count)
        else:
            self.wfile.write(content[start:start + count])
        if drop:
            self._break_connection()

    def _break_connection(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
