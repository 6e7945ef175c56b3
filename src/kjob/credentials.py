"""Finding text that looks like a credential, or is one that kjob can see, without ever
echoing the credential itself.

Two kinds are found: text shaped like a credential (the patterns below), and the literal
values of the credentials this process holds (`held_secrets`: the configured Kaggle key and
token, every environment variable named *_KEY, *_TOKEN or *_SECRET, and the secrets stored
with `kjob secrets set`, read here by `stored_secrets`). A message shows a
secret only as its kind and length (`mask`), never a character of it.
"""

import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from kjob.paths import secret_store

_HEX32 = r"(?<![0-9A-Za-z])[0-9a-fA-F]{32}(?![0-9A-Za-z])"  # a legacy Kaggle key; not part of a longer hash
# (what it looks like, pattern). Each pattern's group "secret" is the part to hide.
_PATTERNS = [
    ("a Kaggle API token", r"(?P<secret>KGAT_[0-9a-fA-F]{16,})"),
    ("kaggle.json content", r"""["']key["']\s*:\s*["'](?P<secret>[0-9a-f]{32})["']"""),
    (
        "a Kaggle key",
        r"""KAGGLE_(?:KEY|API_TOKEN)["']?\s*(?:\]\s*)?[=:,]\s*["'](?P<secret>[^"'\s]{8,})["']""",
    ),
    # Unquoted, as in `%env KAGGLE_KEY=...` or a shell line.
    ("a Kaggle key", rf"KAGGLE_(?:KEY|API_TOKEN)\s*=\s*(?P<secret>{_HEX32})"),
    # A name ending in key or token (kaggle_key, api_key, key, token; also as a keyword
    # argument or a dict key) given 32 hex digits. Hashes are named md5, checksum, sha256 ...
    ("a Kaggle key", rf"""(?i:\b\w*(?:key|token))["']?\s*\]?\s*[=:]\s*["'](?P<secret>{_HEX32})["']"""),
    # ("user", "<32 hex>"): the pair `auth=` takes. A user name has no dots or slashes, which
    # keeps out (file name or URL, md5) pairs of dataset download tables.
    (
        "a user name and Kaggle key",
        rf"""["'](?![0-9a-fA-F]{{32}}["'])[A-Za-z0-9_-]{{1,64}}["']\s*,\s*["'](?P<secret>{_HEX32})["']""",
    ),
    ("an AWS access key", r"(?P<secret>\b(?:AKIA|ASIA)[0-9A-Z]{16}\b)"),
    ("a GitHub token", r"(?P<secret>\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,}))"),
    ("an OpenAI-style API key", r"(?P<secret>\bsk-(?:proj-)?[A-Za-z0-9_-]{32,})"),
    ("a Hugging Face token", r"(?P<secret>\bhf_[A-Za-z0-9]{30,})"),
    # A W&B API key is 40 hex digits, as a git commit's hash is: only where W&B takes one
    # (`wandb.login(key=...)`, `WANDB_API_KEY=...` in code, `%env` or a shell line).
    ("a W&B API key", r"""\bwandb\.login\s*\([^)]*?\bkey\s*=\s*["'](?P<secret>[0-9a-fA-F]{40})["']"""),
    ("a W&B API key",
     r"""WANDB_API_KEY["']?\s*\]?\s*[=:,]\s*["']?(?P<secret>[0-9a-fA-F]{40})(?![0-9A-Za-z])"""),
    ("a Slack token", r"(?P<secret>\bxox[abposr]-[A-Za-z0-9-]{10,})"),
    ("a Google API key", r"(?P<secret>\bAIza[0-9A-Za-z_-]{35})"),
    ("a private key", r"(?P<secret>-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----)"),
    (
        "a hard-coded secret",
        r"""(?i:\b\w*(?:api_?key|secret|passwd|password|access_?token|auth_?token)\w*)\s*"""
        r"""[=:]\s*["'](?P<secret>[A-Za-z0-9+/_\-.]{16,})["']""",
    ),
    # `token = "..."`: only names that end in token (not tokenizer_name), and only values
    # mixing letters and digits (not "bert-base-uncased").
    (
        "a hard-coded token",
        r"""(?i:\b\w*token)["']?\s*\]?\s*[=:]\s*["'](?P<secret>(?=[^"']*\d)(?=[^"']*[A-Za-z])[A-Za-z0-9+/_\-.]{16,})["']""",
    ),
]
_COMPILED = [(what, re.compile(pattern)) for what, pattern in _PATTERNS]


@dataclass(frozen=True)
class Leak:
    line: int  # 1-based line in the scanned text
    what: str
    masked: str  # its kind and length only (`mask`)


_HEX = re.compile(r"[0-9a-fA-F]+")


def mask(secret: str) -> str:
    """What a message shows of `secret`: its kind and length, none of its characters."""
    kind = "hex characters" if _HEX.fullmatch(secret) else "characters"
    return f"<{len(secret)} {kind}>"


def find_leaks(text: str) -> list[Leak]:
    """One Leak per line that holds a credential kjob can see, or looks like it holds one."""
    held = [(value, where) for value, where in held_secrets().items() if value in text]
    leaks = []
    for number, line in enumerate(text.splitlines(), start=1):
        found = _leak_in(line, held)
        if found:
            what, secret = found
            leaks.append(Leak(number, what, mask(secret)))
    return leaks


def _leak_in(line: str, held: list[tuple[str, str]]) -> tuple[str, str] | None:
    """(what it is, the secret) of the first credential in `line`, if any."""
    for value, where in held:
        if value in line:
            return f"the value of {where}", value
    for what, pattern in _COMPILED:
        match = pattern.search(line)
        if match:
            return what, match.group("secret")
    return None


def redact(text: str) -> str:
    """`text` with the credentials kjob holds, and everything that looks like one, masked."""
    text = redact_held(text)
    for _, pattern in _COMPILED:
        text = pattern.sub(lambda m: m.group(0).replace(m.group("secret"), mask(m.group("secret"))), text)
    return text


def redact_held(text: str) -> str:
    """`text` with the literal values of the credentials kjob holds masked (cheap: for logs)."""
    for value in held_secrets():
        if value in text:
            text = text.replace(value, mask(value))
    return text


# --- the credentials this process can see --------------------------------------------------

_SECRET_NAME = re.compile(r".+_(?:KEY|TOKEN|SECRET)", re.IGNORECASE)
MIN_SECRET_LENGTH = 8  # shorter values (SOME_KEY=1, a flag) would be found everywhere


def _trivial(value: str) -> bool:
    """Too short or too plain to be a credential: found in ordinary text it would refuse it."""
    if len(value) < MIN_SECRET_LENGTH or value.isdigit():
        return True
    try:  # a variable naming a file holds where a credential is, not the credential
        return ("/" in value or os.sep in value) and os.path.exists(os.path.expanduser(value))
    except (OSError, ValueError):
        return False


# How often the credential files are looked at again (a stat of a missing file costs 20 us,
# and this runs for every log entry and run status): an edit is seen within this time.
RESTAT_SECONDS = 1.0


@dataclass
class _Held:
    environ: dict  # the environment they were read from
    files: tuple[Path, ...]  # the credential files that environment points at
    stamps: tuple | None = None  # each file's (inode, size, mtime) when it was read
    checked: float = 0.0  # time.monotonic() of the last look at the files
    values: dict | None = None  # secret -> where it is held ("KAGGLE_KEY", "~/.kaggle/kaggle.json")


_held: _Held | None = None


def _environ() -> dict:
    # The raw mapping copies and compares in two microseconds; decoding os.environ costs ten
    # times that.
    raw = getattr(os.environ, "_data", None)
    return dict(raw) if isinstance(raw, dict) else dict(os.environ)


def _stamp(path: Path):
    try:
        st = path.stat()
        return st.st_ino, st.st_size, st.st_mtime_ns
    except (OSError, ValueError):
        return None


def held_secrets() -> dict[str, str]:
    """The credentials this process can see, value -> where it is held (for messages).

    Read once, and again when the environment changes or a credential file did (tests run
    many workspaces in one process)."""
    global _held
    environ = _environ()
    if _held is None or _held.environ != environ:
        _held = _Held(environ, (*credential_files(), secret_store()))
    now = time.monotonic()
    if _held.values is not None and now - _held.checked < RESTAT_SECONDS:
        return _held.values
    _held.checked = now
    stamps = tuple(_stamp(path) for path in _held.files)
    if _held.values is None or stamps != _held.stamps:
        found = [(value, name) for name, value in os.environ.items()
                 if _SECRET_NAME.fullmatch(name) and name != "KAGGLE_API_TOKEN"]  # a token, or its file's path
        found += credential_values().items()
        found += [(value, f"the kjob secret {name}") for name, value in stored_secrets().items()]
        values = {}
        for value, where in found:
            # Each line of a value on several lines (a private key) too: scans and logs go by line.
            lines = value.strip().splitlines()
            for part in [value.strip(), *(line.strip() for line in lines if len(lines) > 1)]:
                if not _trivial(part):
                    values.setdefault(part, where)
        _held.stamps = stamps
        # Longest first: a value that holds another is masked whole, not around the shorter one.
        _held.values = dict(sorted(values.items(), key=lambda item: -len(item[0])))
    return _held.values


# -- where the Kaggle tools keep credentials (kjob.backends.kaggle_auth signs in with them) --

TOKEN_FILES = ("access_token", "access_token.txt")


def config_folder(env) -> Path:
    return Path(env.get("KAGGLE_CONFIG_DIR") or Path.home() / ".kaggle").expanduser()


def credential_files(environ: dict | None = None) -> tuple[Path, ...]:
    """Every file a Kaggle key or token could be read from, whether it exists or not."""
    env = os.environ if environ is None else environ
    folder = config_folder(env)
    files = [folder / name for name in (*TOKEN_FILES, "kaggle.json")]
    token = env.get("KAGGLE_API_TOKEN", "").strip()
    path = as_path(token) if token else None
    return (*files, path) if path is not None else tuple(files)


def credential_values(environ: dict | None = None) -> dict[str, str]:
    """Every Kaggle key and token that could be configured, value -> where it is (for messages).

    For finding them where they must not be (a notebook, a log), not for signing in: nothing
    is checked, nothing raised, and every place is read, not only the one that wins."""
    env = os.environ if environ is None else environ
    found = []
    token = env.get("KAGGLE_API_TOKEN", "").strip()
    if token:
        path = as_path(token)
        if path is not None:
            found.append((quiet_read(path), f"{shown_path(path)} (named by KAGGLE_API_TOKEN)"))
        elif not looks_like_path(token):
            found.append((token, "KAGGLE_API_TOKEN"))
    found.append((env.get("KAGGLE_KEY", "").strip(), "KAGGLE_KEY"))
    folder = config_folder(env)
    found += [(quiet_read(folder / name), shown_path(folder / name)) for name in TOKEN_FILES]
    try:
        key = json.loads(quiet_read(folder / "kaggle.json") or "{}").get("key")
    except (ValueError, AttributeError):
        key = None
    if isinstance(key, str):
        found.append((key.strip(), shown_path(folder / "kaggle.json")))
    values = {}
    for value, where in found:
        if value:
            values.setdefault(value, where)
    return values


def kaggle_username(environ: dict | None = None) -> str | None:
    """The user name of the Kaggle credentials (KAGGLE_USERNAME, else kaggle.json's), or None:
    an access token names no user. Nothing is checked or raised."""
    env = os.environ if environ is None else environ
    name = env.get("KAGGLE_USERNAME", "").strip()
    if not name:
        try:
            name = json.loads(quiet_read(config_folder(env) / "kaggle.json") or "{}").get("username")
        except (ValueError, AttributeError):
            name = None
    return name.strip() if isinstance(name, str) and name.strip() else None


def stored_secrets(environ: dict | None = None) -> dict[str, str]:
    """The secrets stored with `kjob secrets set`, name -> value ({} when there is no store or
    it cannot be read: nothing is raised here; `kjob.sandbox.secrets` says what is wrong)."""
    try:
        data = json.loads(secret_store(environ).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    values = data.get("secrets") if isinstance(data, dict) else None
    if not isinstance(values, dict):
        return {}
    return {name: value for name, value in values.items() if isinstance(name, str) and isinstance(value, str)}


def quiet_read(path: Path) -> str:
    """The file's text, stripped; "" if it cannot be read (missing, a folder, not UTF-8)."""
    try:
        with path.open("rb") as handle:
            return handle.read(65536).decode("utf-8-sig").strip()  # a token is short
    except (OSError, ValueError):
        return ""


def looks_like_path(value: str) -> bool:
    """A value meant as a file's path (a token has no slash and starts with neither ~ nor .)."""
    return "/" in value or os.sep in value or value.startswith(("~", "."))


def as_path(value: str) -> Path | None:
    """The file `value` names, if it names one (a token is seldom a valid path: too long, say)."""
    try:
        path = Path(value).expanduser()
        return path if path.is_file() else None
    except (OSError, RuntimeError, ValueError):  # a name too long, ~nobody, a NUL
        return None


def shown_path(path: Path) -> str:
    """`path` as shown in messages (with ~ for the home folder)."""
    try:
        return "~/" + path.resolve().relative_to(Path.home().resolve()).as_posix()
    except (ValueError, RuntimeError, OSError):
        return str(path)
