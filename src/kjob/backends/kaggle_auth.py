"""Kaggle credentials, from the places the official tools read them, never shown to anyone.

In order: `KAGGLE_API_TOKEN` (a token, or the path of a file holding one: a value that looks
like a path, with a slash or starting with ~ or ., and names no file is an error, where
kagglesdk would send the path itself as the token), then
`KAGGLE_USERNAME` with `KAGGLE_KEY`, then the files in `KAGGLE_CONFIG_DIR` (default
`~/.kaggle`): `access_token`, then `kaggle.json` ({"username", "key"}). A token goes as
`Authorization: Bearer`, a username and key as HTTP Basic.

Errors name where a credential came from, never its value; a file that other users can read
is refused, because a leaked key lets anyone use the account's GPU quota. Each credential is
checked before anything is sent: Kaggle issues printable ASCII without spaces, and anything
else (a pasted line break, a non-Latin-1 letter) would otherwise fail inside the HTTP library
with the value quoted in its message.
"""

import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from kjob.errors import BackendError
from kjob.credentials import TOKEN_FILES, as_path, config_folder, looks_like_path, shown_path

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
        path = as_path(token)
        if path is not None:  # as kagglesdk reads it: a value naming a file means the file's content
            where = f"{shown_path(path)} (named by KAGGLE_API_TOKEN)"
            return Credentials(where, None, _read_token(path, where))
        if looks_like_path(token):
            # kagglesdk would send the path itself as the token; the value is never shown, in
            # case it is a token after all
            raise BackendError("KAGGLE_API_TOKEN names a file that does not exist (or is not a file); nothing "
                               f"was sent: set it to the token itself or to its file's path, or {HOW_TO_GET_ONE}")
        return Credentials("KAGGLE_API_TOKEN", None, _checked(token, "token", "KAGGLE_API_TOKEN"))
    username, key = env.get("KAGGLE_USERNAME", "").strip(), env.get("KAGGLE_KEY", "").strip()
    if username and key:
        return Credentials("KAGGLE_USERNAME/KAGGLE_KEY", _checked(username, "username", "KAGGLE_USERNAME"),
                           _checked(key, "key", "KAGGLE_KEY"))
    if username or key:
        missing = "KAGGLE_KEY" if username else "KAGGLE_USERNAME"
        raise BackendError(f"{'KAGGLE_USERNAME' if username else 'KAGGLE_KEY'} is set but {missing} is not; "
                           "set both, or neither to use kaggle.json")
    folder = config_folder(env)
    for name in TOKEN_FILES:
        if (folder / name).is_file():
            return Credentials(shown_path(folder / name), None, _read_token(folder / name, shown_path(folder / name)))
    if (folder / "kaggle.json").is_file():
        return _read_kaggle_json(folder / "kaggle.json")
    raise BackendError(f"no Kaggle credentials (looked for KAGGLE_API_TOKEN, KAGGLE_USERNAME/KAGGLE_KEY and "
                       f"{shown_path(folder / 'kaggle.json')}): {HOW_TO_GET_ONE}")


def _checked(value: str, what: str, where: str) -> str:
    """`value` if it can go into an HTTP header as Kaggle issues them (printable ASCII, no
    spaces); otherwise an error naming `where` and the kind of character, never the value."""
    if not value:
        problem = "is empty"
    elif any(ord(c) < 32 or ord(c) == 127 for c in value):
        problem = "contains a line break or another control character"
    elif any(c.isspace() for c in value):
        problem = "has whitespace inside it"
    elif not value.isascii():
        problem = "contains a character outside ASCII (Kaggle's names, keys and tokens are plain ASCII)"
    elif what == "username" and ":" in value:
        problem = "contains ':', which no Kaggle username has"
    else:
        return value
    raise BackendError(f"{where}: the {what} {problem}; nothing was sent (copy it again from kaggle.com, "
                       "Settings > API)")


def _check_private(path: Path) -> None:
    mode = path.stat().st_mode
    if mode & (stat.S_IRGRP | stat.S_IROTH | stat.S_IWGRP | stat.S_IWOTH):
        raise BackendError(f"{shown_path(path)} can be read by other users of this machine; "
                           f"make it private first: chmod 600 {shown_path(path)}")


def _read_text(path: Path, where: str) -> str:
    """The file's text (a BOM, as some editors write, dropped), after checking it is private."""
    try:
        _check_private(path)
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BackendError(f"{where} is not UTF-8 text: {HOW_TO_GET_ONE}") from exc
    except OSError as exc:
        raise BackendError(f"could not read {where}: {exc.strerror or type(exc).__name__}") from exc


def _read_token(path: Path, where: str) -> str:
    token = _read_text(path, where).strip()
    if not token:
        raise BackendError(f"{where} is empty: {HOW_TO_GET_ONE}")
    return _checked(token, "token", where)


def _read_kaggle_json(path: Path) -> Credentials:
    where, expected = shown_path(path), 'expected {"username": ..., "key": ...}'
    try:
        data = json.loads(_read_text(path, where))
    except json.JSONDecodeError as exc:
        raise BackendError(f"{where} is not valid JSON: {expected}") from exc
    if not isinstance(data, dict):
        raise BackendError(f"{where} is not a JSON object: {expected}")
    values = {}
    for name in ("username", "key"):
        value = data.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            raise BackendError(f"{where} lacks a {name}: {expected}")
        if not isinstance(value, str):
            raise BackendError(f"{where}: its {name} is not a string: {expected}")
        values[name] = _checked(value.strip(), name, where)
    return Credentials(where, values["username"], values["key"])
