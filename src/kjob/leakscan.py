"""Finding text that looks like a credential, without ever echoing the credential itself."""

import re
from dataclasses import dataclass

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
    masked: str  # first characters only: enough to find it, not enough to use it


def mask(secret: str) -> str:
    return secret[:4] + "…" if len(secret) > 8 else "…"


def find_leaks(text: str) -> list[Leak]:
    leaks = []
    for number, line in enumerate(text.splitlines(), start=1):
        for what, pattern in _COMPILED:
            match = pattern.search(line)
            if match:
                leaks.append(Leak(number, what, mask(match.group("secret"))))
                break
    return leaks


def redact(text: str) -> str:
    """`text` with everything that looks like a credential replaced by a mask."""
    for _, pattern in _COMPILED:
        text = pattern.sub(lambda m: m.group(0).replace(m.group("secret"), mask(m.group("secret"))), text)
    return text
