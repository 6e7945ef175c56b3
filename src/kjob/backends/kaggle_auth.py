"""Kaggle credentials, from the places the official tools read them, never shown to anyone.

In order: `KAGGLE_API_TOKEN` (a token, or the path of a file holding one), then
`KAGGLE_USERNAME` with `KAGGLE_KEY`, then the files in `KAGGLE_CONFIG_DIR` (default
`~/.kaggle`): `access_token`, then `kaggle.json` ({"username", "key"}). A token goes as
`Authorization: Bearer`, a username and key as HTTP Basic.

Errors name where a credential came from, never its value; a file that other users can read
is refused, because a leaked key lets anyone use the account's GPU quota.
"""

import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from kjob.errors import BackendError

HOW_TO_GET_ONE = ("create an API token on kaggle.com (Settings > API) and save it as ~/.kaggle/kaggle.json "
                  "(chmod 600), or set KAGGLE_API_TOKEN, or KAGGLE_USERNAME and KAGGLE_KEY")


@dataclass(frozen=True)
class Credentials:
    source: str  # where they came from, for messages: "~/.kaggle/kaggle.json", "KAGGLE_API_TOKEN"
    username: str | None = None
    secret: str = field(default="", repr=False)  # the key (Basic) or the token (Bearer)

    @property
    def is_token(self) -> bool:
        return self.username is None


def load_credentials(environ: dict | None = None) -> Credentials:
    env = os.environ if environ is None else environ
    token = env.get("KAGGLE_API_TOKEN", "").strip()
    if token:
        path = Path(token).expanduser()
        if path.is_file():  # as kagglesdk reads it: a value naming a file means the file's content
            return Credentials(f"{_shown(path)} (named by KAGGLE_API_TOKEN)", None, _read_token(path))
        return Credentials("KAGGLE_API_TOKEN", None, token)
    username, key = env.get("KAGGLE_USERNAME", "").strip(), env.get("KAGGLE_KEY", "").strip()
    if username and key:
        return Credentials("KAGGLE_USERNAME/KAGGLE_KEY", username, key)
    if username or key:
        missing = "KAGGLE_KEY" if username else "KAGGLE_USERNAME"
        raise BackendError(f"{'KAGGLE_USERNAME' if username else 'KAGGLE_KEY'} is set but {missing} is not; "
                           "set both, or neither to use kaggle.json")
    folder = Path(env.get("KAGGLE_CONFIG_DIR") or Path.home() / ".kaggle").expanduser()
    for name in ("access_token", "access_token.txt"):
        if (folder / name).is_file():
            return Credentials(_shown(folder / name), None, _read_token(folder / name))
    if (folder / "kaggle.json").is_file():
        return _read_kaggle_json(folder / "kaggle.json")
    raise BackendError(f"no Kaggle credentials (looked for KAGGLE_API_TOKEN, KAGGLE_USERNAME/KAGGLE_KEY and "
                       f"{_shown(folder / 'kaggle.json')}): {HOW_TO_GET_ONE}")


def _shown(path: Path) -> str:
    """`path` as shown in messages (with ~ for the home folder)."""
    try:
        return "~/" + path.resolve().relative_to(Path.home().resolve()).as_posix()
    except (ValueError, RuntimeError):
        return str(path)


def _check_private(path: Path) -> None:
    mode = path.stat().st_mode
    if mode & (stat.S_IRGRP | stat.S_IROTH | stat.S_IWGRP | stat.S_IWOTH):
        raise BackendError(f"{_shown(path)} can be read by other users of this machine; "
                           f"make it private first: chmod 600 {_shown(path)}")


def _read_token(path: Path) -> str:
    _check_private(path)
    token = path.read_text(encoding="utf-8").strip()
    if not token:
        raise BackendError(f"{_shown(path)} is empty: {HOW_TO_GET_ONE}")
    return token


def _read_kaggle_json(path: Path) -> Credentials:
    _check_private(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BackendError(f"{_shown(path)} is not valid JSON: expected {{\"username\": ..., \"key\": ...}}") from None
    username = data.get("username") if isinstance(data, dict) else None
    key = data.get("key") if isinstance(data, dict) else None
    if not (isinstance(username, str) and username.strip() and isinstance(key, str) and key.strip()):
        raise BackendError(f"{_shown(path)} lacks a username or a key: expected {{\"username\": ..., \"key\": ...}}")
    return Credentials(_shown(path), username.strip(), key.strip())
