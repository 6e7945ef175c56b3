"""`[tool.kjob.ray]`: which cluster, which shared storage, what each run asks of the cluster.

    [tool.kjob.ray]
    address = "http://head:8265"         # the dashboard's (Jobs API) address; RAY_ADDRESS wins
    storage = "/mnt/shared/kjob-runs"    # this machine's path of storage every node also mounts
    cluster_storage = "/shared/kjob-runs"  # the same storage as the nodes see it (default: storage)
    python = "/opt/venv/bin/python"      # the interpreter on the nodes (default "python")

    [tool.kjob.ray.datasets]             # Kaggle data sources, as folders on the nodes
    "earth16/libri-speech-noise-dataset" = "/shared/data/libri"

    [tool.kjob.ray.resources.gpu]        # per recipe accelerator (gpu, none, tpu)
    cpus = 8
    gpus = 1
    memory_gb = 32
    resources = { A100 = 1 }             # custom Ray resources

Checked here, when the backend is used, so that a typo in this table never breaks commands
that do not touch the cluster. Credentials are never read from this table.
"""

import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from kjob.errors import ConfigError
from kjob.build.schema import Where
from kjob.kaggle_platform import KaggleRef

# What a run asks for when the workspace does not say: one CPU, plus one GPU for GPU recipes.
# TPUs have no common Ray resource name, so a TPU recipe needs its own table.
DEFAULT_REQUESTS = {"none": {"cpus": 1}, "gpu": {"cpus": 1, "gpus": 1}}
_REQUEST_KEYS = {"cpus", "gpus", "memory_gb", "resources"}
_SCHEME = re.compile(r"^https?://", re.IGNORECASE)
_PASSWORD = re.compile(r"(?P<user>\b[A-Za-z][A-Za-z0-9+.-]*://[^/?#@:\s]*):[^/?#\s]*@")


def shown_address(text: str) -> str:
    """An address as messages show it: the password of a `user:password@` part masked (in
    every URL of `text`)."""
    return _PASSWORD.sub(lambda m: f"{m.group('user')}:***@", text)


def browser_address(address: str) -> str:
    """`address` for a link a person opens (and kjob prints or writes): no `user:password@`
    part, for which a browser asks instead."""
    return _PASSWORD.sub(lambda m: m.group("user").rsplit("//", 1)[0] + "//", address)


def hide_password(text: str, address: str) -> str:
    """`text` (an error of Ray's or of requests, which may quote the URL) with `address`'s
    password masked wherever it appears."""
    text = shown_address(text)
    match = _PASSWORD.match(address)
    password = match.group(0)[len(match.group("user")) + 1:-1] if match else ""
    # Alone too, as some messages quote it; not a short one, which would mangle ordinary words.
    return text.replace(password, "***") if len(password) >= 6 else text


@dataclass(frozen=True)
class Request:
    """The resources one run reserves on the cluster (Ray's entrypoint_num_cpus, ...)."""

    cpus: float
    gpus: float = 0
    memory: int | None = None  # bytes
    custom: dict[str, float] = field(default_factory=dict)

    @property
    def threads(self) -> int:
        """The thread limit a run gets: its CPUs, so that torch and BLAS never oversubscribe a node."""
        return max(1, int(self.cpus))

    def needs(self) -> dict[str, float]:
        """The request in Ray's resource names, as a node's `resources_total` lists them."""
        wanted = {"CPU": self.cpus, "GPU": self.gpus, "memory": self.memory or 0, **self.custom}
        return {name: amount for name, amount in wanted.items() if amount}

    def describe(self) -> str:
        parts = [f"{_number(self.cpus)} CPU"]
        if self.gpus:
            parts.append(f"{_number(self.gpus)} GPU")
        if self.memory:
            parts.append(f"{self.memory / 2**30:.3g} GiB memory")
        parts += [f"{_number(amount)} {name}" for name, amount in sorted(self.custom.items())]
        return ", ".join(parts)


@dataclass(frozen=True)
class RaySettings:
    address: str  # the dashboard's URL, no trailing slash
    storage: Path  # the shared storage, as this machine sees it
    cluster_storage: PurePosixPath  # the same, as the cluster's nodes see it
    datasets: dict[str, str]  # "owner/slug" -> folder on the nodes
    requests: dict[str, Request]  # recipe accelerator -> what a run asks for
    python: tuple[str, ...]  # the command that starts Python on the nodes

    def request(self, accelerator: str) -> Request:
        if accelerator not in self.requests:
            raise ConfigError(f"the ray backend does not know what a '{accelerator}' recipe should ask the cluster "
                              f"for: add [tool.kjob.ray.resources.{accelerator}] (cpus, gpus, memory_gb, resources)")
        return self.requests[accelerator]


def load_settings(ws) -> RaySettings:
    entry = ws.config.settings("ray")
    w, table = entry.where, entry.values
    address = os.environ.get("RAY_ADDRESS") or _text(w, table, "address")
    if not address:
        raise ConfigError("no Ray cluster to submit to: set RAY_ADDRESS or `address` under [tool.kjob.ray] "
                          "(the dashboard's address, e.g. http://HEAD:8265)")
    if not _SCHEME.match(address):
        if "://" in address:  # ray://, the Ray Client's: not what the Jobs API listens on
            raise ConfigError(f"the Ray address {shown_address(address)!r} is not the dashboard's: "
                              "use http://HEAD:8265")
        address = f"http://{address}"
    storage_text = _text(w, table, "storage")
    if not storage_text:
        raise ConfigError("no storage for Ray runs: set `storage` under [tool.kjob.ray] to a folder that this "
                          "machine and every node of the cluster mount (see README, Running on a Ray cluster)")
    storage = (ws.root / Path(storage_text).expanduser()).resolve()
    cluster_storage = PurePosixPath(_text(w, table, "cluster_storage") or storage.as_posix())
    if not cluster_storage.is_absolute():
        raise w.fail("cluster_storage", "expected an absolute path on the cluster's nodes", str(cluster_storage))
    python = table.get("python", "python")
    if isinstance(python, str):
        python = shlex.split(python)
    if not (isinstance(python, list) and python and all(isinstance(p, str) and p for p in python)):
        raise w.fail("python", "expected a command (a string, or a list of strings)", table.get("python"))
    return RaySettings(address.rstrip("/"), storage, cluster_storage, _datasets(w, table),
                       _requests(w, table), tuple(python))


def _text(w: Where, table: dict, key: str) -> str | None:
    value = table.get(key)
    if value is not None and not (isinstance(value, str) and value.strip()):
        raise w.fail(key, "expected a non-empty string", value)
    return value


def _datasets(w: Where, table: dict) -> dict[str, str]:
    datasets, inner = w.table_of(table, "datasets"), w.at("datasets")
    for key, folder in datasets.items():
        if KaggleRef.read(key, versioned=False) is None:
            raise inner.fail(key, "expected a key 'owner/slug' naming a Kaggle dataset", key)
        if not (isinstance(folder, str) and PurePosixPath(folder).is_absolute()):
            raise inner.fail(key, "expected an absolute folder path on the cluster's nodes", folder)
    return dict(datasets)


def _requests(w: Where, table: dict) -> dict[str, Request]:
    resources, inner = w.table_of(table, "resources"), w.at("resources")
    requests = {}
    for accelerator in sorted({*DEFAULT_REQUESTS, *resources}):
        if accelerator not in ("gpu", "tpu", "none"):
            raise inner.problem(f"unknown accelerator '{accelerator}' (known: gpu, none, tpu)")
        given = inner.table_of(resources, accelerator) if accelerator in resources else DEFAULT_REQUESTS[accelerator]
        at = inner.at(accelerator)
        at.refuse_unknown(given, _REQUEST_KEYS)
        custom = at.table_of(given, "resources")
        for name, amount in custom.items():
            _amount(at.at("resources"), name, amount, low=0)
        memory = given.get("memory_gb")
        requests[accelerator] = Request(
            cpus=_amount(at, "cpus", given.get("cpus", 1), low=0),
            gpus=_amount(at, "gpus", given.get("gpus", 0), low=0, zero=True),
            memory=None if memory is None else int(_amount(at, "memory_gb", memory, low=0) * 2**30),
            custom={name: float(amount) for name, amount in custom.items()},
        )
    return requests


def _amount(w: Where, key: str, value, low: float, zero: bool = False) -> float:
    number = type(value) in (int, float) and (value > low or (zero and value == 0))
    if not number:
        raise w.fail(key, f"expected a number {'of at least' if zero else 'above'} {low}", value)
    return float(value)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"
