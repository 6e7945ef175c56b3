"""The emulator's HTTP side: a real server on 127.0.0.1 speaking Kaggle's kernels protocol.

    POST /api/v1/kernels.KernelsApiService/<Method>   JSON in, JSON out (kagglesdk's types); the
                                                       downloads answer 302, the log stream SSE (answers.py)
    POST /api/v1/datasets.DatasetApiService/<Method>  datasets (datasets.py)
    POST /api/v1/models.ModelApiService/<Method>      models (models_api.py)
    POST /api/v1/blobs.BlobApiService/StartBlobUpload where a file's bytes go (blobs.py)
    PUT  /upload/<token>                               a file's bytes (no credentials, as GCS's
                                                       signed URLs take none)
    POST /api/v1/security.OAuthService/IntrospectToken who a token signs in as (official client)
    GET  /api/v1/kernels/logs/stream/<owner>/<slug>    live log: text/event-stream, END_OF_LOG
    GET  /api/v1/kernels/output/download_zip/<id>      a version's whole output, zipped (by its session id)
    GET  /files/<token>/<name>                         where the download calls redirect: a file or an
                                                       archive (no credentials, as a signed GCS URL)
    GET  /outputs/<token>                              an output file (no credentials; Range,
                                                       Last-Modified and ETag, as the official
                                                       client decides from them what to skip)
    GET  /code/<owner>/<slug>, /datasets/<owner>/<slug> the kernel's or dataset's "web page"
    POST /_emulator/faults, /_emulator/cancel          test controls (see faults.py)
    GET  /_emulator/requests                           what clients sent (bodies, no headers)

API calls without the expected credentials get 401; credentials are never logged or kept.

What a request may hold: a JSON body of at most MAX_JSON_BODY bytes (else 413, answered before
the body is read, and the connection closed), nested at most MAX_JSON_DEPTH deep (else 400);
a PUT /upload/<token> streams to disk and may hold the blob's reserved contentLength, no more
(else 413). A Content-Length that is not a count of bytes, or a broken chunked body, is 400.
The server remembers the last REQUEST_LOG_LIMIT requests (store.py), so its memory stays bounded.
Broken answers (mangled bodies, bad gzip, redirect loops) are made here, on the wire, from
the switches in faults.py; the store answers as usual underneath.
"""

import html
import json
import re
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from kjob.emulator import answers, blobs
from kjob.emulator.auth import Auth
from kjob.emulator.faults import Faults
from kjob.emulator.model import ApiError
from kjob.emulator.store import REQUEST_LOG_LIMIT, RequestLog, Store
from kjob.emulator.wire import PIECE as _PIECE, Refused as _Refused, Wire
from kjob.kaggle_platform import KaggleRef

_API = re.compile(r"^/api/v1/(kernels\.KernelsApiService|datasets\.DatasetApiService|blobs\.BlobApiService"
                  r"|models\.ModelApiService|security\.OAuthService)/([A-Za-z]+)$")
_STREAM = re.compile(r"^/api/v1/kernels/logs/stream/([^/]+)/([^/]+)$")
_OUTPUT_ZIP = re.compile(r"^/api/v1/kernels/output/download_zip/([0-9]+)$")
_LINKED = re.compile(r"^/files/([0-9a-f]{32})/[^/]+$")
_LOOP = "redirect-loop"  # the query mark of a request that followed a looping redirect
_HTML = "<!DOCTYPE html><html><head><title>{code}</title></head><body><h1>{code} {reason}</h1></body></html>"

# The largest JSON request body read (Kaggle's API bodies are a few kB; a pushed notebook with
# its modules inlined, a few MB). Blob uploads stream to disk, bounded by their reservation.
MAX_JSON_BODY = 32 * 2**20
# The deepest nesting of arrays and objects in a JSON body (Kaggle's bodies nest under 10).
MAX_JSON_DEPTH = 64


def _json_depth(value) -> int:
    """How deeply arrays and objects nest in a parsed JSON value (walked with a stack)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth)
            if depth <= MAX_JSON_DEPTH:
                stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # The listen backlog: socketserver's default of 5 made the kernel drop or reset the
    # connections of many clients connecting at once (25 of 800 requests from 50 clients).
    request_queue_size = 1024

    def __init__(self, address, store: Store, auth: Auth, verbose: bool, log_limit: int = REQUEST_LOG_LIMIT):
        super().__init__(address, _Handler)
        self.store, self.auth, self.verbose = store, auth, verbose
        self.stopping = threading.Event()
        # The latest `log_limit` of each, for tests to inspect (bounded: see store.RequestLog).
        # Per file request: (token, its Range header, whether it carried credentials).
        self.downloads: list[tuple[str, str | None, bool]] = RequestLog(log_limit)
        # Every request but the test controls: (verb, path), to prove that none was sent.
        self.seen: list[tuple[str, str]] = RequestLog(log_limit)
        # Per blob upload: whether it carried credentials (it must not).
        self.uploads: list[bool] = RequestLog(log_limit)

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class _Handler(Wire, BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self):
        super().setup()
        # Headers and body go out in separate writes: without this, each answer waits for
        # the client's delayed ACK (about 40 ms).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format, *args):  # the request line only, never headers
        if self.server.verbose:
            sys.stderr.write(f"emulator: {self.address_string()} {format % args}\n")

    # -- answers ------------------------------------------------------------------------

    def _send(self, code: int, body: bytes, kind: str, encoding: str | None = None, close: bool = False) -> None:
        self.send_response(code)
        self.send_header("Content-Type", kind)
        if encoding:
            self.send_header("Content-Encoding", encoding)
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")  # also sets close_connection
        self.end_headers()
        self.wfile.write(body)

    def _refuse(self, refused: _Refused) -> None:
        """Answer a request whose body was not read (or not all of it), then close: what is
        left of the body cannot be told from a next request. What the client still sends is
        read and dropped for a moment, so that closing does not reset the connection before
        the client has read the answer."""
        body = json.dumps({"code": refused.code, "message": refused.message}).encode()
        self._send(refused.code, body, "application/json", close=True)
        try:
            self.connection.shutdown(socket.SHUT_WR)
            self.connection.settimeout(0.5)
            deadline, dropped = time.monotonic() + 2, 0
            while time.monotonic() < deadline and dropped < 64 * _PIECE:
                piece = self.connection.recv(_PIECE)
                if not piece:
                    break
                dropped += len(piece)
        except OSError:  # the client went away first, or sent nothing more: either is fine
            pass

    def _json(self, code: int, data) -> None:
        self._send(code, json.dumps(data).encode(), "application/json")

    def _html_error(self, code: int) -> None:
        reason = self.responses.get(code, ("Error",))[0]
        self._send(code, _HTML.format(code=code, reason=reason).encode(), "text/html; charset=utf-8")

    def _answer(self, method: str, code: int, data) -> None:
        """An API answer, as the faults for `method` leave it."""
        faults = self.server.store.faults
        mangled = faults.take_for("mangle_next", method)
        if mangled is None:
            body, kind = json.dumps(data).encode(), "application/json"
        elif "body" in mangled:
            code, body = 200, mangled["body"].encode()
            kind = mangled.get("content_type") or "text/plain; charset=utf-8"
        else:
            code, body, kind = 200, json.dumps(mangled["answer"]).encode(), "application/json"
        # Plain bytes labelled gzip: the client's decoder fails on them.
        self._send(code, body, kind, "gzip" if faults.take_for("bad_gzip_next", method) else None)

    def _redirect_loop(self, path: str, target: str | None) -> bool:
        """Answers 302 to the same path when `target` has a redirect loop due, or when this
        request followed such a redirect (so the loop never ends)."""
        followed = _LOOP in self.path.partition("?")[2].split("&")
        if not followed and not (target and self.server.store.faults.take_for("redirect_loop_next", target)):
            return False
        self.send_response(302)
        self.send_header("Location", f"{path}?{_LOOP}")
        self.send_header("Content-Length", "0")
        self.end_headers()
        return True

    def _body(self) -> dict:
        """The JSON object the request carries ({} for none); _Refused if it is too large,
        nested too deeply or not a JSON object."""
        raw = b"".join(self._chunks(MAX_JSON_BODY, "a request body (JSON)"))
        try:
            data = json.loads(raw or b"{}")
        except RecursionError as exc:
            raise _Refused(400, f"bad request body: JSON nested more than {MAX_JSON_DEPTH} levels deep") from exc
        except ValueError as exc:  # UnicodeDecodeError included
            raise _Refused(400, f"bad request body: {exc}") from exc
        if not isinstance(data, dict):
            raise _Refused(400, "bad request body: the body must be a JSON object")
        if _json_depth(data) > MAX_JSON_DEPTH:
            raise _Refused(400, f"bad request body: JSON nested more than {MAX_JSON_DEPTH} levels deep")
        return data

    def _gate(self, signed_in: bool = True, method: str | None = None) -> tuple[bool, str | None]:
        """Injected faults first (a rate limiter answers before auth), then the credentials
        (unless the method authenticates by its body, as IntrospectToken does)."""
        delay = self.server.store.faults.next_delay(method)
        if delay:
            time.sleep(delay)
        status = self.server.store.faults.next_status()
        if status:
            self._html_error(status)
            return False, None
        if not signed_in:
            return True, None
        user, why = self.server.auth.check(self.headers.get("Authorization"))
        if user is None:
            self._json(401, {"code": 401, "message": f"Unauthenticated: {why}"})
        return user is not None, user

    # -- routes -------------------------------------------------------------------------

    def do_POST(self):
        try:
            body = self._body()
        except _Refused as refused:
            return self._refuse(refused)
        path = self.path.split("?")[0]
        if path.startswith("/_emulator/"):
            return self._control(path, body)
        self.server.seen.append(("POST", path))
        match = _API.match(path)
        method = match.group(2) if match else None
        if self._redirect_loop(path, method):
            return
        if not match:
            return self._json(404, {"code": 404, "message": f"no such endpoint {self.path}"})
        if match.group(1) == "security.OAuthService":
            return self._oauth(method, body)
        ok, user = self._gate(method=method)
        if not ok:
            return
        try:
            code, answer = 200, self.server.store.handle(method, body, user, match.group(1))
        except ApiError as exc:
            code, answer = exc.code, {"code": exc.code, "message": exc.message}
        if isinstance(answer, answers.Redirect):
            return self._redirect(answer.url)
        if isinstance(answer, answers.File):
            return self._send_file(answer.path, answer.content_type, answer.name)
        if isinstance(answer, answers.LogStream):
            return self._stream(answer.session)
        self._answer(method, code, answer)

    def _redirect(self, url: str) -> None:
        self.send_response(302)
        self.send_header("Location", url)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _oauth(self, method: str, body: dict) -> None:
        if method != "IntrospectToken":
            return self._json(404, {"code": 404, "message": f"the emulator does not implement OAuthService/{method}"})
        ok, _ = self._gate(signed_in=False, method=method)
        if ok:
            user = self.server.auth.introspect(str(body.get("token") or ""))
            # An unknown token is inactive, not an error: the official client then tries its other credentials.
            self._answer(method, 200, {"active": True, "username": user} if user else {"active": False})

    def do_GET(self):
        path = self.path.split("?")[0]
        if self.headers.get("Content-Length", "0").strip() not in ("", "0") or "Transfer-Encoding" in self.headers:
            self.close_connection = True  # a GET's body is never read: it must not pass for a next request
        if not path.startswith("/_emulator/"):
            self.server.seen.append(("GET", path))
        if self._redirect_loop(path, "download" if path.startswith("/outputs/") else None):
            return
        if path.startswith("/outputs/"):
            return self._file(path[len("/outputs/"):])
        linked = _LINKED.match(path)
        if linked:
            return self._linked(linked.group(1))
        if path == "/_emulator/requests":
            return self._json(200, [{"method": m, "body": b} for m, b in list(self.server.store.requests)])
        if path == "/_emulator/faults":
            return self._json(200, self.server.store.faults.snapshot())
        if path.startswith(("/code/", "/datasets/")):
            page = f"<!DOCTYPE html><html><body><h1>{html.escape(path)}</h1><p>kjob's Kaggle emulator</p></body></html>"
            return self._send(200, page.encode(), "text/html; charset=utf-8")
        zipped = _OUTPUT_ZIP.match(path)
        if zipped:
            return self._output_zip(int(zipped.group(1)))
        match = _STREAM.match(path)
        if not match:
            return self._json(404, {"code": 404, "message": f"no such endpoint {path}"})
        ok, user = self._gate()
        if ok:
            try:
                with self.server.store.lock:
                    kernel, _ = self.server.store.find({"userName": match.group(1), "kernelSlug": match.group(2)}, user)
                    session = kernel.version(None).session
            except ApiError as exc:
                return self._json(exc.code, {"code": exc.code, "message": exc.message})
            self._stream(session)

    def do_PUT(self):
        path = self.path.split("?")[0]
        self.server.seen.append(("PUT", path))
        try:
            self._put(path)
        except _Refused as refused:
            self._refuse(refused)

    def _put(self, path: str) -> None:
        if not path.startswith("/upload/"):
            raise _Refused(404, f"no such endpoint {path}")
        token, store = path[len("/upload/"):], self.server.store
        self.server.uploads.append("Authorization" in self.headers)
        chunked = self._chunked()
        if self.headers.get("Content-Range", "").startswith("bytes */") and not chunked and not self._declared_length():
            # GCS's "what did you get?": a blob is kept whole or not at all, so nothing or everything.
            return self._json(200, {}) if blobs.complete(store, token) else self._json(308, {})
        reserved = blobs.reserved_length(store, token)
        if reserved is None:
            raise _Refused(404, "no such upload (its token is unknown or was already used)")
        # The bytes go to disk, never all into memory; the reservation bounds how many.
        what = f"this upload (started for {reserved} bytes)"
        if store.faults.take_upload_failure():
            for _ in self._chunks(reserved, what):
                pass
            return self._html_error(503)
        code, message = blobs.receive(store, token, self._chunks(reserved, what))
        self._json(code, {"code": code, "message": message} if code != 200 else {})

    def _control(self, path: str, body: dict) -> None:
        store = self.server.store
        try:
            if path == "/_emulator/faults":
                store.faults.set(**body)
                if not store.faults.hold:
                    store.mark_released()
            elif path == "/_emulator/cancel":
                ref = KaggleRef.parse(str(body.get("kernel", "")))
                label = f"v{body['version']}" if body.get("version") else None
                with store.lock:
                    session = store.kernel(ref.owner, ref.slug).version(label).session
                session.cancel()
            else:
                return self._json(404, {"code": 404, "message": f"no such control {path}"})
        except (ValueError, TypeError) as exc:
            return self._json(400, {"code": 400, "message": str(exc)})
        except ApiError as exc:
            return self._json(exc.code, {"code": exc.code, "message": exc.message})
        self._json(200, {"ok": True})

    def _output_zip(self, number: int) -> None:
        """DownloadKernelOutputZip's REST path: signed in, as the API is."""
        from kjob.emulator.reads import output_zip

        ok, user = self._gate()
        if not ok:
            return
        try:
            with self.server.store.lock:
                found = output_zip(self.server.store, number, user)
        except ApiError as exc:
            return self._json(exc.code, {"code": exc.code, "message": exc.message})
        self._send_file(found.path, found.content_type, found.name)

    def _linked(self, token: str) -> None:
        found = self.server.store.linked_file(token)
        self.server.downloads.append((token, self.headers.get("Range"), "Authorization" in self.headers))
        if found is None or not found[0].is_file():
            return self._json(404, {"code": 404, "message": "no such file"})
        self._send_file(found[0], "application/octet-stream")

    def _file(self, token: str) -> None:
        found = self.server.store.output_file(token)
        self.server.downloads.append((token, self.headers.get("Range"), "Authorization" in self.headers))
        if found is None:
            return self._json(404, {"code": 404, "message": "no such file"})
        version, _, content = found
        if isinstance(content, Path):
            return self._send_file(content, "application/octet-stream")
        size, modified = len(content), version.session.state().get("finished_at") or time.time()
        self._content(content, size, modified, f'"{size:x}-{int(modified * 1e9):x}"', "application/octet-stream")

    def _stream(self, session) -> None:
        if session.final:
            return self._json(200, session.log_entries())
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        faults = self.server.store.faults
        limit = faults.drop_stream_after if faults.take_stream_drop() else None
        sent, offset, quiet_since = 0, 0, time.monotonic()
        while not self.server.stopping.is_set():
            final = session.final  # before reading: no entry written before the end is missed
            entries, offset = session.log_since(offset)
            for entry in entries:
                self.wfile.write(f"data: {json.dumps(entry)}\n\n".encode())
                sent += 1
                quiet_since = time.monotonic()
                if limit is not None and sent >= limit:
                    return self._break_connection()
            if final:
                self.wfile.write(b"data: END_OF_LOG\n\n")
                return
            if time.monotonic() - quiet_since > 10:
                self.wfile.write(b": keep-alive\n\n")
                quiet_since = time.monotonic()
            time.sleep(0.1)


class Emulator:
    """A Kaggle-compatible server on 127.0.0.1, its state under `state_dir` (what an earlier
    emulator left there is loaded: kernels, versions, outputs, quota).

    `data_sources` maps "owner/slug" (datasets, kernels), "slug" (competitions) or
    "owner/model/framework/variation" (models) to local folders, which stand for sources that
    exist on Kaggle (a dataset among them is also answered by GetDataset as a public one);
    datasets pushed to the emulator are served too; other sources are invalid.
    `users`, `tokens` and `token_user`: who may call (auth.py; by default anyone, tokens refused).
    `request_log_limit`: how many requests it remembers for inspection (the latest).
    `missing_kernel_status`: what a read of a kernel that does not exist (deleted, private to
    another account's eyes, a wrong slug) answers: 403 as Kaggle does, or 404 (store.py).
    """

    def __init__(self, state_dir: Path, data_sources: dict[str, Path] | None = None,
                 users: dict[str, str] | None = None, tokens: dict[str, str] | None = None,
                 port: int = 0, page_size: int = 50, faults: Faults | None = None, verbose: bool = False,
                 token_user: str | None = None, request_log_limit: int = REQUEST_LOG_LIMIT,
                 missing_kernel_status: int = 403):
        self.store = Store(Path(state_dir), data_sources, faults or Faults(), page_size, request_log_limit,
                           missing_kernel_status)
        try:
            self._server = _Server(("127.0.0.1", port), self.store, Auth(users, tokens, token_user), verbose,
                                   request_log_limit)
        except BaseException:
            self.store.close()
            raise
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.store.base_url = self.url
        self._thread: threading.Thread | None = None

    @property
    def faults(self) -> Faults:
        return self.store.faults

    @property
    def missing_kernel_status(self) -> int:
        return self.store.missing_kernel_status

    @missing_kernel_status.setter
    def missing_kernel_status(self, code: int) -> None:
        """403 (as Kaggle) or 404: switchable while serving, for a test of either answer."""
        if code not in (403, 404):
            raise ValueError(f"missing_kernel_status must be 403 or 404, not {code}")
        self.store.missing_kernel_status = code

    @property
    def downloads(self) -> list[tuple[str, str | None, bool]]:
        return list(self._server.downloads)

    @property
    def uploads(self) -> list[bool]:
        """Per blob upload (PUT), whether it carried credentials."""
        return list(self._server.uploads)

    @property
    def http_requests(self) -> list[tuple[str, str]]:
        """(verb, path) of every request that reached the server, the test controls aside."""
        return list(self._server.seen)

    def requests(self, method: str) -> list[dict]:
        with self.store.lock:
            return [body for name, body in self.store.requests if name == method]

    def start(self) -> "Emulator":
        self._release_kept()
        self._thread = threading.Thread(target=self._server.serve_forever, name="kaggle-emulator", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._release_kept()
        self._server.serve_forever()

    def _release_kept(self) -> None:
        """Sessions kept queued by an earlier emulator's `hold` start now, unless held again."""
        if not self.store.faults.hold:
            self.store.mark_released()

    def stop(self) -> None:
        """Stop answering and stop every session still running (their processes included)."""
        self._server.stopping.set()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(10)
        self._server.server_close()
        for session in self.store.all_sessions():
            session.cancel(wait=3)
        self.store.close()

    def __enter__(self) -> "Emulator":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
