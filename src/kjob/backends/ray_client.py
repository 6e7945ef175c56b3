"""The one seam between kjob and a Ray cluster: Ray's Jobs SDK, with what kjob needs added.

`JobSubmissionClient` packages and uploads a job's working_dir exactly as the cluster expects
and speaks every Ray version's Jobs API, but sends requests without a socket timeout and
reports every HTTP failure as a bare RuntimeError. Its subclass here adds a timeout to each
request and keeps the status code, so that a 404 (a job the head does not know) can be told
from a broken cluster. Ray is imported on first use only: `kjob --help` and the other
backends never load it.

Token authentication (`RAY_AUTH_MODE=token`): the token comes from RAY_AUTH_TOKEN, else the
file RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token names, and is sent as `Authorization: Bearer`.
It is never written anywhere kjob writes (ledger, handle, job metadata, runtime_env).
"""

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from kjob.backends.ray_settings import hide_password, shown_address
from kjob.errors import BackendError, ConfigError, NotFoundError

INSTALL_HINT = "pip install 'kjob[ray]'"
TIMEOUT_SECONDS = float(os.environ.get("KJOB_RAY_TIMEOUT") or 30)
# Ray's SDK logs every upload at INFO to stderr; kjob reports what matters itself.
_CHATTY = ("ray.dashboard.modules.dashboard_sdk", "ray._private.runtime_env.packaging",
           "ray._private.runtime_env.working_dir")


@dataclass(frozen=True)
class JobInfo:
    submission_id: str
    status: str  # PENDING, RUNNING, STOPPED, SUCCEEDED, FAILED
    message: str
    metadata: dict
    start_time: float | None  # epoch seconds
    end_time: float | None
    exit_code: int | None


class HttpError(Exception):
    def __init__(self, status: int, text: str, method: str | None = None):
        super().__init__(f"HTTP {status}: {(text.strip().splitlines() or [''])[0][:300]}")
        self.status = status
        self.method = method  # "GET /api/jobs/ID": the request, never its address (it may hold a password)


def auth_headers() -> dict[str, str]:
    """The bearer token header when the cluster uses token authentication, else nothing."""
    if (os.environ.get("RAY_AUTH_MODE") or "").strip().lower() != "token":
        return {}
    token = (os.environ.get("RAY_AUTH_TOKEN") or "").strip()
    if not token:
        path = Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token").expanduser()
        try:
            token = path.read_text(encoding="utf-8").strip()
        except OSError:
            raise ConfigError(f"RAY_AUTH_MODE=token, but neither RAY_AUTH_TOKEN nor {path} holds a token") from None
    if not token.isascii() or not token.isprintable() or " " in token:
        raise ConfigError("RAY_AUTH_TOKEN is not a token (printable ASCII without spaces)")
    return {"Authorization": f"Bearer {token}"}


class RayJobs:
    """A cluster's Jobs API; every failure is one kjob error naming the cluster."""

    def __init__(self, address: str, timeout: float = TIMEOUT_SECONDS):
        self.url = address  # what kjob connects to, a `user:password@` part included
        self.address = shown_address(address)  # what messages show: the password masked
        self.timeout = timeout
        self._client = None

    @property
    def client(self):
        if self._client is None:
            self._client = self._call("kjob's connection", lambda: _client_class()(
                self.url, headers=auth_headers(), timeout=self.timeout))
        return self._client

    def _call(self, what: str, action):
        import requests

        try:
            return action()
        except HttpError as exc:
            answer = {"http_status": exc.status, "method": exc.method}
            if exc.status == 404:
                raise NotFoundError(f"the Ray cluster at {self.address} has no such job "
                                    f"({hide_password(str(exc), self.url)})", **answer) from exc
            raise BackendError(f"the Ray cluster at {self.address} refused {what} "
                               f"({hide_password(str(exc), self.url)})", **answer) from exc
        except requests.Timeout as exc:
            raise BackendError(f"the Ray cluster at {self.address} did not answer {what} within "
                               f"{self.timeout:g} s") from exc
        except (requests.ConnectionError, ConnectionError) as exc:
            raise BackendError(f"cannot reach the Ray cluster at {self.address} ({what}): is its dashboard "
                               "(Jobs API, port 8265 by default) up at that address?") from exc
        except Exception as exc:
            if type(exc).__name__ == "AuthenticationError":  # ray.exceptions', when the token is missing or wrong
                raise BackendError(f"the Ray cluster at {self.address} rejected kjob's credentials: with token "
                                   "authentication set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN") from exc
            if isinstance(exc, (RuntimeError, ValueError, TypeError, OSError)):
                said = hide_password((str(exc).strip().splitlines() or [type(exc).__name__])[0], self.url)[:300]
                raise BackendError(f"Ray could not complete {what} on {self.address}: {said}") from exc
            raise

    def connect(self) -> "RayJobs":
        self.client  # noqa: B018 (made on first use: Ray's import, the version checks, the token)
        return self

    def submit(self, **request) -> str:
        return self._call("the job's submission", lambda: self.client.submit_job(**request))

    def info(self, submission_id: str) -> JobInfo:
        """The job as the head knows it; NotFoundError when it does not (restarted, deleted)."""
        return _info(self._call("the job's status", lambda: self.client.get_job_info(submission_id)))

    def jobs(self) -> list[JobInfo]:
        return [_info(job) for job in self._call("the job list", self.client.list_jobs)]

    def stop(self, submission_id: str) -> bool:
        return bool(self._call("the job's stop", lambda: self.client.stop_job(submission_id)))

    def nodes(self) -> list[dict] | None:
        """The alive nodes' total resources; None when this cluster's dashboard does not say."""

        def ask():
            answer = self.client._do_request("GET", "/api/v0/nodes?detail=1&limit=10000")
            return answer.json() if answer.status_code == 200 else None

        answer = self._call("the node list", ask)
        try:
            nodes = answer["data"]["result"]["result"]
        except (TypeError, KeyError):
            return None
        return [node.get("resources_total") or {} for node in nodes if node.get("state") == "ALIVE"]


def _info(details) -> JobInfo:
    def seconds(ms):
        return ms / 1000 if ms else None

    status = getattr(details.status, "value", details.status)
    return JobInfo(details.submission_id or details.job_id or "", str(status), details.message or "",
                   dict(details.metadata or {}), seconds(details.start_time), seconds(details.end_time),
                   getattr(details, "driver_exit_code", None))


_CLASS = []


def _client_class():
    """Ray's JobSubmissionClient with a timeout on every request and typed HTTP errors."""
    if _CLASS:
        return _CLASS[0]
    try:
        from ray.job_submission import JobSubmissionClient
    except ImportError as exc:
        raise ConfigError(f"the ray backend needs Ray's job client, which is not installed: {INSTALL_HINT}") from exc
    for name in _CHATTY:
        logging.getLogger(name).setLevel(logging.WARNING)

    class Client(JobSubmissionClient):
        def __init__(self, address, *, headers, timeout):
            self.kjob_timeout = timeout  # read by the version checks the constructor makes
            super().__init__(address, headers=headers)

        def _do_request(self, method, endpoint, **kwargs):
            kwargs.setdefault("timeout", self.kjob_timeout)
            return super()._do_request(method, endpoint, **kwargs)

        def _raise_error(self, r):
            request = getattr(r, "request", None)
            method = f"{request.method} {urlsplit(request.url).path}" if request is not None else None
            raise HttpError(r.status_code, r.text, method)

    _CLASS.append(Client)
    return Client
