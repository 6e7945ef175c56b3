"""TOML tables checked key by key: `Where` names a file's table in one-line errors, and what a
parameter value may be (a Python literal: booleans, finite numbers, strings, lists of those).

The ground for every file kjob reads (the workspace's configuration, recipes, campaigns):
each wrong value becomes one ConfigError naming the file and the key, anything that looks
like a credential masked.
"""

import json
import keyword
import math
import re
from dataclasses import dataclass

from kjob.errors import ConfigError
from kjob.credentials import mask, redact

ParamValue = bool | int | float | str | list
_SCALARS = (bool, int, float, str)
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_KEY_LIKE = re.compile(r"(?<![0-9A-Za-z])[0-9a-fA-F]{32}(?![0-9A-Za-z])")


def shown(value) -> str:
    """A bad value as an error shows it: one line, short, anything credential-like masked
    (32 hex digits too: in a wrong value, a legacy Kaggle key is likelier than a hash)."""
    text = _KEY_LIKE.sub(lambda m: mask(m.group(0)), redact(repr(value)))
    return text if len(text) <= 80 else text[:77] + "..."


def is_identifier(name) -> bool:
    return isinstance(name, str) and name.isidentifier() and not keyword.iskeyword(name)


def _finite(value) -> bool:
    return not isinstance(value, float) or math.isfinite(value)


def param_value_problem(value) -> str | None:
    """What is wrong with `value` as a parameter value, or None.

    A parameters cell holds each value as a Python literal: inf and nan have none, and
    tables or dates would make the cell depend on imports."""
    if isinstance(value, _SCALARS):
        return None if _finite(value) else "expected a finite number (inf and nan have no literal)"
    if isinstance(value, list):
        if all(isinstance(item, _SCALARS) and _finite(item) for item in value):
            return None
        return "expected a list of booleans, numbers or strings"
    return "expected a boolean, number, string or a list of those"


def kind_of(default: ParamValue) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list"}[type(default)]


def typed_like(value, default: ParamValue):
    """`value` as the type of `default` (an int is taken for a float), or None if it is not."""
    if param_value_problem(value) is not None:
        return None
    if isinstance(default, float) and type(value) is int:
        return float(value)
    return value if type(value) is type(default) else None


@dataclass(frozen=True)
class Where:
    """A table of a TOML file, to name a key in an error: `pyproject.toml: [tool.kjob] owner`."""

    file: str
    table: str = ""  # dotted table name; "" for the file's top level

    def at(self, sub: str) -> "Where":
        return Where(self.file, f"{self.table}.{sub}" if self.table else sub)

    def key(self, key: str) -> str:
        name = key if _BARE_KEY.match(key) else json.dumps(key)
        return f"[{self.table}] {name}" if self.table else name

    def fail(self, key: str, expected: str, value) -> ConfigError:
        return ConfigError(f"{self.file}: {self.key(key)}: {expected}, not {shown(value)}")

    def problem(self, text: str) -> ConfigError:
        return ConfigError(f"{self.file}: {f'[{self.table}] ' if self.table else ''}{text}")

    def table_of(self, data: dict, key: str) -> dict:
        value = data.get(key, {})
        if not isinstance(value, dict):
            raise self.fail(key, "expected a table", value)
        return value

    def refuse_unknown(self, data: dict, known: set[str]) -> None:
        unknown = sorted(set(data) - known)
        if unknown:
            raise self.problem(f"unknown keys: {', '.join(unknown)} (known: {', '.join(sorted(known))})")

    def parameters(self, data: dict, key: str = "parameters") -> dict[str, ParamValue]:
        """The parameter table `key` of `data`: identifiers naming literal values."""
        table, inner = self.table_of(data, key), self.at(key)
        for name, value in table.items():
            if not is_identifier(name):
                raise inner.problem(f"{json.dumps(name)}: a parameter name must be a Python identifier")
            problem = param_value_problem(value)
            if problem:
                raise inner.fail(name, problem, value)
        return dict(table)
