"""The one place kjob talks to Kaggle over the network.

API calls go through kagglesdk's own HTTP client (its request/response types, its URL
scheme, its JSON handling); this module wraps it at its lowest seam, the `requests` session,
to add what the SDK lacks: a socket timeout on every request, retries with exponential
backoff and jitter on 429, 5xx (HTML bodies included), dropped connections and timeouts,
giving up after a bounded streak with one clear line, and one-line messages for 401/403/404.
Every answer is checked against the SDK's types before kjob reads it (kaggle_answers.py);
a malformed one, a body that does not decode, or a redirect loop is one line naming the call.

Output files are fetched with a plain unauthenticated GET (their URLs are signed and point
off Kaggle: credentials must never go there), streamed to disk in chunks and resumed with
HTTP Range after an interruption. Dataset files go up the same way: one unauthenticated,
streamed PUT per file to the signed URL StartBlobUpload gives, sent again whole on failure.

Tuning, for tests and slow links: KJOB_KAGGLE_RETRIES (attempts in a row, default 7),
KJOB_KAGGLE_RETRY_DELAY (first wait in seconds, default 2, doubling up to 60),
KJOB_KAGGLE_TIMEOUT (socket timeout in seconds, default 60). KJOB_KAGGLE_ENDPOINT
(e.g. http://127.0.0.1:8123) points the client at a Kaggle-compatible server on any port;
otherwise kagglesdk's KAGGLE_API_ENVIRONMENT decides (TEST: http://localhost:7777).
"""

import http.client
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import requests
from kagglesdk.kaggle_env import KaggleEnv, get_endpoint, get_env
from kagglesdk.kaggle_http_client import KaggleHttpClient
from requests.adapters import HTTPAdapter
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import NewConnectionError

from kjob import __version__
from kjob.backends.kaggle_answers import AnswerProblem, read_answer
from kjob.backends.kaggle_auth import Credentials
from kjob.errors import BackendError, ConfigError, NotFoundError
from kjob.credentials import redact
from kjob.polling import Backoff

# Measured (bench_fetch.py): 256 KiB reads beat 64 KiB ones (per-call overhead) and 1 MiB
# ones (each buffer that large is a fresh mmap, page-faulted and unmapped again), while
# 64 KiB writes cost the kernel a third of what 256 KiB writes do.
CHUNK = 256 << 10
WRITE = 64 << 10
COPY = 1 << 20  # the buffer of the direct socket-to-file path
_RETRIED = {429, 500, 502, 503, 504}
_NOT_PROCESSED = {429, 503}  # answers that say the request was not acted on: safe to resend a push
_REDIRECT_LOOP = "redirected in a loop (more than 30 redirects)"
_NOT_ENCODED = "its body is not in the Content-Encoding it declares"


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 7
    backoff: Backoff = field(default_factory=lambda: Backoff(start=2.0, factor=2.0, cap=60.0, jitter=0.25))
    connect_timeout: float = 15.0
    read_timeout: float = 60.0

    @classmethod
    def from_env(cls, env=None) -> "RetryPolicy":
        env = os.environ if env is None else env
        attempts = _number(env, "KJOB_KAGGLE_RETRIES", 7, int)
        start = _number(env, "KJOB_KAGGLE_RETRY_DELAY", 2.0, float)
        timeout = _number(env, "KJOB_KAGGLE_TIMEOUT", 60.0, float)
        return cls(max(1, attempts), Backoff(start=start, factor=2.0, cap=min(60.0, start * 30), jitter=0.25),
                   min(15.0, timeout), timeout)

    @property
    def timeout(self) -> tuple[float, float]:
        return (self.connect_timeout, self.read_timeout)


def _number(env, name: str, default, kind):
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        value = kind(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise ConfigError(f"{name} must be a non-negative {'whole ' if kind is int else ''}number, not '{raw}'")
    return value


@dataclass(frozen=True)
class Endpoints:
    api: str  # ".../v1", the base of every API path
    web: str  # where people look at kernels

    @classmethod
    def from_env(cls, env=None) -> "Endpoints":
        env = os.environ if env is None else env
        override = env.get("KJOB_KAGGLE_ENDPOINT", "").rstrip("/")
        if override:
            if not override.startswith(("http://", "https://")):
                raise ConfigError(f"KJOB_KAGGLE_ENDPOINT must be an http(s) URL, not '{override}'")
            return cls(f"{override}/api/v1", override)
        try:
            kind = get_env()
        except Exception as exc:  # the SDK raises a bare Exception for an unknown name
            raise ConfigError(str(exc)) from exc
        if kind == KaggleEnv.PROD:
            return cls("https://api.kaggle.com/v1", "https://www.kaggle.com")
        return cls(f"{get_endpoint(kind)}/api/v1", get_endpoint(kind))


class _TimeoutAdapter(HTTPAdapter):
    """Gives every request a socket timeout (the SDK sets none)."""

    def __init__(self, timeout: tuple[float, float]):
        super().__init__()
        self.timeout = timeout

    def send(self, request, timeout=None, **kwargs):
        return super().send(request, timeout=timeout or self.timeout, **kwargs)


def _session(session: requests.Session, timeout) -> requests.Session:
    adapter = _TimeoutAdapter(timeout)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class _SdkClient(KaggleHttpClient):
    """kagglesdk's HTTP client with kjob's credentials, endpoint and socket timeouts."""

    def __init__(self, endpoints: Endpoints, credentials: Credentials, timeout):
        super().__init__(env=KaggleEnv.TEST, user_agent=f"kjob/{__version__}")
        self._kjob_api = endpoints.api
        self._kjob_timeout = timeout
        if credentials.is_token:
            self._kjob_auth = KaggleHttpClient.BearerAuth(credentials.secret)
        else:
            self._kjob_auth = requests.auth.HTTPBasicAuth(credentials.username, credentials.secret)

    def _init_session(self):
        if self._session is None:
            super()._init_session()
            _session(self._session, self._kjob_timeout)
        return self._session

    def _try_fill_auth(self):  # only the credentials kjob resolved, never whatever the SDK finds
        self._session.auth = self._kjob_auth
        self._signed_in = True

    def _get_request_url(self, service_name: str, request_name: str) -> str:
        return f"{self._kjob_api}/{service_name}/{request_name}"

    def session(self) -> requests.Session:
        return self._init_session()

    def call(self, service_name, request_name, request, response_type):
        # A body that does not decode, or a redirect loop, fails inside `requests` before any
        # answer exists: named here, where the method is known.
        try:
            return super().call(service_name, request_name, request, response_type)
        except requests.HTTPError as exc:
            exc.kjob_method = request_name  # the error kjob makes of it says which method was answered
            raise
        except requests.exceptions.ContentDecodingError as exc:
            raise AnswerProblem(request_name, f"could not be decoded: {_NOT_ENCODED}") from exc
        except requests.TooManyRedirects as exc:
            raise AnswerProblem(request_name, _REDIRECT_LOOP) from exc

    def _prepare_response(self, response_type, http_response):
        # Instead of the SDK's: the same HTTP errors, then the answer checked against its type.
        return read_answer(response_type, http_response)

    def redirect_of(self, service_name: str, request_name: str, request) -> str:
        """Where a method answered with a redirect (kagglesdk's HttpRedirect: DownloadKernelOutput)
        sends, without following it: the caller fetches it, with credentials only on the API's
        own host (`Transport.same_host`)."""
        session = self._init_session()
        response = session.send(self._prepare_request(service_name, request_name, request), allow_redirects=False)
        try:
            if response.status_code >= 400:
                try:
                    read_answer(None, response)  # raises the HTTP error, as every call does
                except requests.HTTPError as exc:
                    exc.kjob_method = request_name
                    raise
            location = response.headers.get("Location")
            if response.status_code not in (301, 302, 303, 307, 308) or not location:
                raise AnswerProblem(request_name, f"was not a redirect (HTTP {response.status_code})")
            return urljoin(response.url, location)
        finally:
            response.close()


class _Retry(Exception):
    def __init__(self, reason: str, wait: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.wait = wait


class Transport:
    def __init__(self, credentials: Credentials, policy: RetryPolicy | None = None,
                 endpoints: Endpoints | None = None, sleep: Callable[[float], None] = time.sleep):
        self.credentials = credentials
        self.policy = policy or RetryPolicy.from_env()
        self.endpoints = endpoints or Endpoints.from_env()
        self.sdk = _SdkClient(self.endpoints, credentials, self.policy.timeout)
        self.files = _session(requests.Session(), self.policy.timeout)
        self.files.headers.update({"User-Agent": f"kjob/{__version__}", "Accept-Encoding": "identity"})
        self.sleep = sleep

    # -- API calls ---------------------------------------------------------------------

    def call(self, fn: Callable, what: str, idempotent: bool = True):
        """`fn()` (one SDK call), retried on transient failures. `what` names the request in
        messages ("the status of alice/x v3"). A non-idempotent call (a push) is resent only
        when the server said it did not act on it."""
        return self._retrying(lambda: self._attempt(fn, what, idempotent), what)

    def _attempt(self, fn, what: str, idempotent: bool):
        try:
            return fn()
        except AnswerProblem as exc:
            # A 200 that kjob cannot read is a broken answer, not an overloaded server: not retried.
            acted = "" if idempotent else ("; Kaggle may have acted on it: look at the kernel's page before "
                                           "sending it again")
            raise BackendError(f"Kaggle's answer to {exc.method} for {what} {exc.text}{acted}",
                               method=exc.method) from exc
        except requests.HTTPError as exc:
            response = exc.response
            code = getattr(exc, "kaggle_code", None) or (response.status_code if response is not None else 0)
            if code in _RETRIED and (idempotent or code in _NOT_PROCESSED):
                raise _Retry(f"HTTP {code}{_body_kind(response)}", _retry_after(response)) from exc
            error = self._http_error(code, response, what)
            # for a caller telling "denied" (403) from other failures, and which request it was
            error.http_status, error.method = code, getattr(exc, "kjob_method", None) or _request_of(response)
            raise error from exc
        except requests.ConnectTimeout as exc:
            raise _Retry("connection timed out") from exc
        except requests.Timeout as exc:
            if not idempotent:
                raise _unsure(what, "no answer in time") from exc
            raise _Retry("no answer in time") from exc
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
            if _never_connected(exc):
                raise _Retry("connection refused or unreachable") from exc
            if not idempotent:
                raise _unsure(what, "connection broken") from exc
            raise _Retry("connection broken") from exc
        except requests.exceptions.ContentDecodingError as exc:  # the live log's stream
            raise BackendError(f"Kaggle's answer to {what} could not be decoded: {_NOT_ENCODED}") from exc
        except requests.TooManyRedirects as exc:
            raise BackendError(f"Kaggle's answer to {what} {_REDIRECT_LOOP}") from exc
        except (requests.RequestException, ValueError, KeyError, TypeError) as exc:
            # Never str(exc): requests quotes a rejected header's value, which may be a credential.
            raise BackendError(f"could not read Kaggle's answer to {what}: {type(exc).__name__}") from exc

    def _retrying(self, attempt: Callable, what: str):
        started, reasons = time.monotonic(), []
        delays = self.policy.backoff.delays()
        while True:
            try:
                return attempt()
            except _Retry as retry:
                reasons.append(retry.reason)
                if len(reasons) >= self.policy.attempts:
                    raise self._gave_up(what, reasons, started) from retry
                delay = next(delays)
                if retry.wait is not None:
                    delay = max(delay, min(retry.wait, self.policy.backoff.cap))
                self.sleep(delay)

    def _gave_up(self, what: str, reasons: list[str], started: float) -> BackendError:
        counted = ", ".join(f"{reason} x{n}" if n > 1 else reason for reason, n in Counter(reasons).items())
        return BackendError(f"gave up on {what} after {len(reasons)} attempts in {time.monotonic() - started:.0f} s "
                            f"({counted}): Kaggle is rate-limiting, unavailable or unreachable; try again later")

    def _http_error(self, code: int, response, what: str) -> BackendError:
        message = _server_message(response)
        said = f": {message}" if message else ""
        if code == 401:
            return BackendError(f"Kaggle did not accept the credentials from {self.credentials.source} (HTTP 401); "
                                "check them, or create a new API token on kaggle.com (Settings > API)")
        if code == 403:
            return BackendError(f"Kaggle refused access to {what} (HTTP 403{said}): it may belong to another "
                                "account, or these credentials may lack the permission")
        if code == 404:
            return NotFoundError(f"Kaggle has no {what} (HTTP 404): deleted, renamed, or a typo in the owner/slug")
        return BackendError(f"Kaggle answered HTTP {code} to {what}{said}")

    # -- streams -----------------------------------------------------------------------

    def open_stream(self, url: str, what: str) -> requests.Response:
        """An authenticated streaming GET on the API (the live log)."""
        session = self.sdk.session()

        def attempt():
            response = session.get(url, stream=True)
            if response.status_code >= 400:
                response.content  # an error's body is short: read it (for its message) and free the connection
                response.raise_for_status()
            return response

        return self.call(attempt, what)

    # -- uploads -----------------------------------------------------------------------

    def upload(self, url: str, path: Path, size: int, name: str) -> None:
        """PUT the file at `path` to the signed URL StartBlobUpload gave, streamed from disk
        (memory does not grow with the file), without credentials (the URL is signed and may
        point off Kaggle). A failed attempt is sent again whole: an upload is kept entire or not
        at all, so resending it is always safe. The URL is never shown: it may carry a signature."""
        if not url.startswith(("http://", "https://")):
            raise BackendError(f"uploading {name}: Kaggle gave an upload URL that is not http(s)")
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}

        def attempt():
            try:
                with path.open("rb") as data:
                    # An empty file goes as b"": requests would announce an empty file object as chunked.
                    response = self.files.put(url, data=data if size else b"", headers=headers)
                    code = response.status_code
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
                raise _Retry("connection broken or timed out") from exc
            except requests.RequestException as exc:
                raise BackendError(f"uploading {name}: {type(exc).__name__}") from exc
            if code in _RETRIED:
                raise _Retry(f"HTTP {code}{_body_kind(response)}", _retry_after(response))
            if code not in (200, 201):
                message = _server_message(response)
                raise BackendError(f"uploading {name}: HTTP {code}{f': {message}' if message else ''}",
                                   http_status=code, method="PUT")

        self._retrying(attempt, f"uploading {name}")

    # -- output files ------------------------------------------------------------------

    def same_host(self, url: str) -> bool:
        """Whether `url` is on the API's own host (where credentials may go)."""
        return urlsplit(url).netloc.lower() == urlsplit(self.endpoints.api).netloc.lower()

    def download(self, url: str, destination: Path, size: int | None, name: str, signed_in: bool = False) -> int:
        """Stream `url` into `destination`, resuming with Range after an interruption.

        The bytes end identical to the server's; memory does not grow with the file.
        `signed_in`: send the credentials (only to the API's own host, never elsewhere)."""
        if not url.startswith(("http://", "https://")):
            raise BackendError(f"{name}: Kaggle gave a download URL that is not http(s)")
        session = self.sdk.session() if signed_in and self.same_host(url) else self.files
        state = {"have": 0}
        # An empty file made by the caller is written in place, not truncated: on ext4 closing a
        # truncated file forces its data to disk (auto_da_alloc), a third of a 1 GiB fetch.
        with destination.open("r+b" if destination.is_file() else "wb") as out:
            started, reasons, delays = time.monotonic(), [], self.policy.backoff.delays()
            while True:
                before = state["have"]
                try:
                    return self._download_once(url, out, state, name, session)
                except _Retry as retry:
                    if state["have"] > before:  # progress: a new streak starts
                        reasons, delays = [], self.policy.backoff.delays()
                    reasons.append(retry.reason)
                    if len(reasons) >= self.policy.attempts:
                        raise self._gave_up(f"downloading {name}", reasons, started) from retry
                    self.sleep(next(delays))

    def _download_once(self, url: str, out, state: dict, name: str, session: requests.Session) -> int:
        have = state["have"]
        headers = {"Range": f"bytes={have}-"} if have else {}
        try:
            with session.get(url, headers=headers, stream=True) as response:
                code = response.status_code
                if code in _RETRIED:
                    raise _Retry(f"HTTP {code}{_body_kind(response)}", _retry_after(response))
                if code == 416 and have:
                    return have  # nothing left to send: the previous attempt got it all
                if code >= 400:
                    raise BackendError(f"downloading {name}: HTTP {code} (its URL may have expired; fetch again)",
                                       http_status=code, method="GET")
                if code == 206 and not response.headers.get("Content-Range", "").startswith(f"bytes {have}-"):
                    raise BackendError(f"downloading {name}: the server sent another part of the file than asked for")
                if code != 206:
                    have = 0  # the server sent the whole file
                encoded = response.headers.get("Content-Encoding", "identity") != "identity"
                length = response.headers.get("Content-Length")
                total = have + int(length) if length and not encoded else None
                out.seek(have)
                if os.fstat(out.fileno()).st_size != have:
                    out.truncate()
                state["have"] = have
                raw = getattr(response.raw, "_fp", None)  # http.client's response
                if not encoded and hasattr(raw, "readinto"):
                    _copy_into(raw, out, state)
                else:
                    for chunk in response.iter_content(CHUNK):
                        view = memoryview(chunk)
                        for start in range(0, len(view), WRITE):
                            out.write(view[start:start + WRITE])
                        state["have"] += len(chunk)
                out.flush()
        except requests.exceptions.ContentDecodingError as exc:  # before Urllib3Error: it is one too
            raise BackendError(f"downloading {name}: the server's answer could not be decoded: {_NOT_ENCODED}") from exc
        except requests.TooManyRedirects as exc:
            raise BackendError(f"downloading {name}: its URL {_REDIRECT_LOOP}") from exc
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError, Urllib3Error) as exc:
            raise _Retry("timed out" if "timed out" in str(exc).lower() else "connection dropped") from exc
        except requests.Timeout as exc:
            raise _Retry("timed out") from exc
        except requests.RequestException as exc:  # an unusable URL, say
            raise BackendError(f"downloading {name}: {type(exc).__name__}") from exc
        if total is not None and state["have"] < total:
            raise _Retry("connection ended early")
        return state["have"]


def _copy_into(raw, out, state: dict) -> None:
    """Socket to file through one reused buffer: the fastest path Python has (no bytes object
    per chunk), used when the body is sent as it is (no Content-Encoding to undo)."""
    buffer = memoryview(bytearray(COPY))
    while True:
        try:
            count = raw.readinto(buffer)
        except (http.client.HTTPException, OSError) as exc:  # a socket timeout or a cut, not the disk
            raise _Retry("timed out" if isinstance(exc, TimeoutError) else "connection dropped") from exc
        if not count:
            return
        out.write(buffer[:count])
        state["have"] += count


def _never_connected(exc: Exception) -> bool:
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError)


def _request_of(response) -> str | None:
    """The request an answer answered, "GET /path" (never its query: a signed URL's signature)."""
    request = getattr(response, "request", None)
    return f"{request.method} {urlsplit(request.url).path}" if request is not None and request.url else None


def _unsure(what: str, reason: str) -> BackendError:
    return BackendError(f"{reason} while sending {what}: Kaggle may or may not have acted on it, so kjob did not "
                        "send it again; look at the kernel's page before trying again")


def _body_kind(response) -> str:
    kind = (response.headers.get("Content-Type") or "") if response is not None else ""
    return " (an HTML page)" if "html" in kind else ""


def _retry_after(response) -> float | None:
    try:
        return max(0.0, float(response.headers.get("Retry-After")))
    except (TypeError, ValueError, AttributeError):
        return None


def _server_message(response) -> str:
    """The server's own one-line explanation, if it gave one as JSON (never an HTML page)."""
    if response is None or "json" not in (response.headers.get("Content-Type") or ""):
        return ""
    try:
        body = response.json()
    except ValueError:
        return ""
    message = (body.get("message") or body.get("error") or "") if isinstance(body, dict) else ""
    return redact(" ".join(str(message).split())[:300])


def iter_lines(response: requests.Response) -> Iterator[str]:
    """A streaming response's lines as they arrive (not once a buffer fills)."""
    buffer = b""
    raw = response.raw
    while True:
        data = raw.read1(65536)
        if not data:
            break
        buffer += data
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            yield line.rstrip(b"\r").decode("utf-8", "replace")
    if buffer:
        yield buffer.decode("utf-8", "replace")
