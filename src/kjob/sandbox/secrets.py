"""Secrets a run may read with `kaggle_secrets.UserSecretsClient().get_secret(NAME)`, as on Kaggle.

Three places, and the value's way through them:

- the user's store (`kjob.paths.secret_store`: ~/.config/kjob/secrets.json, mode 0600, written
  atomically by `set_secret`/`delete_secret`, read by `kjob.credentials.stored_secrets`, so
  that every message and log kjob writes masks the values);
- the run's file (`LocalRunPaths.secrets`, mode 0600): the recipe's names and the values of
  those that are set, written when the sandbox is laid out (`write_run_secrets`) and taken,
  read and deleted, by the runner before the kernel starts (`take_run_secrets`), or deleted
  with the run's final status if it never started;
- the runner's memory, served to the kernel by a per-run endpoint (`SecretsEndpoint`) that
  speaks Kaggle's protocol on 127.0.0.1 and answers only with the run's token. The kernel
  finds `kaggle_secrets` (kjob's stand-in, `kernel_modules/kaggle_secrets.py`) on its
  PYTHONPATH and the endpoint in KAGGLE_URL_BASE and KAGGLE_USER_SECRETS_TOKEN, as on Kaggle.

No value is ever on a command line, in an environment variable or in the run's folder while
the kernel runs. docs/security.md says why an endpoint rather than a file the kernel reads.
"""

import hmac
import json
import os
import re
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from secrets import token_urlsafe

from kjob.credentials import mask, shown_path, stored_secrets
from kjob.errors import ConfigError, UsageError
from kjob.fsutil import temporary_path
from kjob.paths import secret_store

KERNEL_MODULES = Path(__file__).resolve().parent / "kernel_modules"  # put on every kernel's PYTHONPATH
LABEL_ENDPOINT = "/requests/GetUserSecretByLabelRequest"


NAME_RE = re.compile(r"[A-Z_][A-Z0-9_]*")  # as Kaggle and environment variables spell them (WANDB_API_KEY)


def _name_problem(name: str) -> str | None:
    if not NAME_RE.fullmatch(name):
        return f"a secret's name is upper-case letters, digits and _ (like WANDB_API_KEY), not {name!r}"
    return None


# -- the user's store ---------------------------------------------------------------------------

def _read_store(path: Path) -> dict[str, str]:
    """The store's secrets, for changing them: a store that cannot be read is an error, never
    silently replaced."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ConfigError(f"the secret store {shown_path(path)} cannot be read ({type(exc).__name__}); "
                          "fix or remove it") from exc
    values = data.get("secrets") if isinstance(data, dict) else None
    if not isinstance(values, dict):
        raise ConfigError(f"the secret store {shown_path(path)} is not kjob's (no 'secrets' table); fix or remove it")
    return dict(values)


def _write_private(path: Path, data) -> None:
    """`data` as JSON at `path`, readable by this user only from its first byte, swapped in whole."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = temporary_path(path.parent)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def set_secret(name: str, value: str) -> Path:
    """Store `value` under `name` (replacing any); the store's path."""
    problem = _name_problem(name)
    if problem:
        raise UsageError(problem)
    value = value.rstrip("\r\n")  # what `echo ... |` or a heredoc adds
    if not value:
        raise UsageError(f"no value for {name} on standard input")
    path = secret_store()
    values = _read_store(path)
    values[name] = value
    _write_private(path, {"secrets": values})
    return path


def delete_secret(name: str) -> bool:
    """Remove `name` from the store; whether it was there."""
    path = secret_store()
    values = _read_store(path)
    if name not in values:
        return False
    del values[name]
    _write_private(path, {"secrets": values})
    return True


def secret_names() -> list[str]:
    return sorted(_read_store(secret_store()))


# -- one run's secrets ----------------------------------------------------------------------------

def _store_values(names: Iterable[str]) -> dict[str, str]:
    """The stored values of `names` that are set. A store other users can read is refused."""
    path = secret_store()
    if os.name != "nt" and path.exists() and path.stat().st_mode & 0o077:
        raise ConfigError(f"the secret store {shown_path(path)} can be read by other users: chmod 600 it")
    stored = stored_secrets()
    return {name: stored[name] for name in names if name in stored}


def write_run_secrets(path: Path, names: Iterable[str], values: Mapping[str, str] | None = None) -> None:
    """The run's file: `names` (those the kernel may ask for) and the values of those set, from
    `values` or else the user's store. Nothing is written for a run that lists none."""
    names = list(dict.fromkeys(names))
    if not names:
        return
    values = _store_values(names) if values is None else {n: values[n] for n in names if n in values}
    _write_private(path, {"names": names, "values": values})


def take_run_secrets(path: Path) -> tuple[list[str], dict[str, str]]:
    """(names, values) of the run's file, which is deleted: ([], {}) without one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = {}
    finally:
        path.unlink(missing_ok=True)
    names = [n for n in data.get("names", []) if isinstance(n, str)] if isinstance(data, dict) else []
    values = data.get("values", {}) if isinstance(data, dict) else {}
    return names, {n: v for n, v in values.items() if n in names and isinstance(v, str)}


class SecretsEndpoint:
    """Kaggle's user-secrets service for one run, on 127.0.0.1 while the run lasts:

        with SecretsEndpoint(names, values) as endpoint:
            env.update(endpoint.variables())

    It answers a POST of {"Label": NAME} to /requests/GetUserSecretByLabelRequest carrying the
    run's token (`X-Kaggle-Authorization: Bearer`, or "JWE" in the body as older clients send
    it) with the value of a listed, set name; any other name gets Kaggle's answer for a secret
    not attached to the kernel (`wasSuccessful: false`, which its client raises as BackendError);
    a wrong token gets 401 (CredentialError)."""

    def __init__(self, names: Iterable[str], values: Mapping[str, str]):
        self.names = list(names)
        self.values = dict(values)
        self.token = token_urlsafe(32)
        self._server = None

    def __enter__(self) -> "SecretsEndpoint":
        from http.server import ThreadingHTTPServer

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="kjob-secrets", daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        self.values.clear()

    def variables(self) -> dict[str, str]:
        """What the kernel needs to find the endpoint, and kjob's kaggle_secrets."""
        host, port = self._server.server_address[:2]
        return {"KAGGLE_URL_BASE": f"http://{host}:{port}", "KAGGLE_USER_SECRETS_TOKEN": self.token,
                "PYTHONPATH": str(KERNEL_MODULES)}

    def hide(self, text: str) -> str:
        """`text` with every served value masked (as written, and as JSON escapes it)."""
        for value in sorted(self.values.values(), key=len, reverse=True):
            for form in {value, json.dumps(value)[1:-1]}:
                if form and form in text:
                    text = text.replace(form, mask(value))
        return text

    def answer(self, label) -> dict:
        if isinstance(label, str) and label in self.values:
            return {"wasSuccessful": True, "result": {"secret": self.values[label], "label": label}}
        if isinstance(label, str) and label in self.names:
            why = f"it is listed but not set on this machine (kjob secrets set {label})"
        else:
            listed = ", ".join(self.names) or "none"
            why = f"kjob attaches only the recipe's secrets ({listed}); add it to the recipe's secrets"
        return {"wasSuccessful": False, "errors": [f"No user secrets exist for kernel and label {label}: {why}"],
                "error": {"code": 5, "details": []}}

    def authorized(self, headers, body: dict) -> bool:
        given = headers.get("X-Kaggle-Authorization", "")
        given = given[len("Bearer "):] if given.startswith("Bearer ") else str(body.get("JWE") or "")
        return hmac.compare_digest(given.encode(), self.token.encode())


def _handler(endpoint: SecretsEndpoint):
    from http.server import BaseHTTPRequestHandler

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            try:
                length = min(int(self.headers.get("Content-Length") or 0), 65536)
                body = json.loads(self.rfile.read(length) or b"{}")
            except ValueError:
                body = None
            if not isinstance(body, dict):
                return self._send(400, {"wasSuccessful": False, "errors": ["the request is not a JSON object"]})
            if not endpoint.authorized(self.headers, body):
                return self._send(401, {"wasSuccessful": False, "errors": ["unauthorized"]})
            if self.path != LABEL_ENDPOINT:
                return self._send(404, {"wasSuccessful": False, "errors": [f"no such request: {self.path}"]})
            return self._send(200, endpoint.answer(body.get("Label")))

        def _send(self, status: int, data: dict) -> None:
            text = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(text)))
            self.end_headers()
            self.wfile.write(text)

        def log_message(self, format, *args):  # noqa: A002 (http.server's name): nothing in runner.log
            pass

    return Handler
