"""Runs made from runs: a run's inputs (what it was given: another run's outputs, pinned to a
version), the names that say which run (`train:v3`, `train:local-v3`, `train@kaggle:v1`), and
the lineage both ways.

A run's inputs are kept in its ledger row (schema 5, the `inputs` column, a JSON list of
`RunInput.as_dict()`), so lineage needs nothing but the ledger:

    made_from(ledger, run)   # the runs it was given (the ledger's rows, or what the row recorded)
    made_into(ledger, run)   # the runs given its outputs
"""

import json
import re
from dataclasses import dataclass, field

from kjob.errors import UsageError
from kjob.runs.record import parse_lane

# The backends that number their own runs, and so label them `<backend>-vN` (kjob.paths.version_label).
_LABEL = re.compile(r"^(?:k(?P<incarnation>\d+)-)?(?:(?P<backend>[a-z][a-z0-9]*)-)?v?(?P<version>\d+)$")


@dataclass(frozen=True)
class VersionName:
    """A version as the user writes it: `3`, `v3`, `local-v3`, `kaggle-v1`, `k2-v1`."""

    version: int
    backend: str | None = None  # named by the label (`local-v3`); None: any backend
    incarnation: int | None = None

    @classmethod
    def parse(cls, text: str, backends=None) -> "VersionName":
        match = _LABEL.match(str(text).strip())
        backend = match and match["backend"]
        if not match or (backends is not None and backend is not None and backend not in backends):
            known = ", ".join(f"{b}-v3" for b in backends or ("local", "kaggle", "ray"))
            raise UsageError(f"{str(text)!r} is not a version like 3, v3 or BACKEND-v3 ({known})")
        incarnation = int(match["incarnation"]) if match["incarnation"] else None
        return cls(int(match["version"]), backend, incarnation)


@dataclass(frozen=True)
class RunName:
    """`KERNEL[:VERSION][@BACKEND]` or `KERNEL@BACKEND:vN`: a run named on the command line.
    No version: the latest complete run. A kernel may itself hold an `@` (a campaign lane's
    `r3-dpt@kd-1`): only a known backend's name after the last `@` is read as the backend."""

    kernel: str
    version: int | None = None
    backend: str | None = None
    incarnation: int | None = None

    @classmethod
    def parse(cls, text: str, backends) -> "RunName":
        text = str(text).strip()
        kernel, backend, version = text, None, None
        if ":" in kernel:
            kernel, version = kernel.rsplit(":", 1)
        if "@" in kernel and kernel.rsplit("@", 1)[1] in backends:
            kernel, backend = kernel.rsplit("@", 1)
        if version is not None and "@" in version and version.rsplit("@", 1)[1] in backends:
            version, later = version.rsplit("@", 1)
            if backend not in (None, later):
                raise UsageError(f"{text}: two backends ({backend}, {later})")
            backend = later
        if not kernel:
            raise UsageError(f"{text!r}: name a kernel, as KERNEL[:vN][@BACKEND]")
        if version is None:
            return cls(kernel, None, backend)
        named = VersionName.parse(version, backends)
        if backend is not None and named.backend not in (None, backend):
            raise UsageError(f"{text}: the version names {named.backend}, not {backend}")
        return cls(kernel, named.version, backend or named.backend, named.incarnation)

    def __str__(self) -> str:
        version = f":v{self.version}" if self.version is not None else ""
        return f"{self.kernel}{version}{'@' + self.backend if self.backend else ''}"


@dataclass(frozen=True)
class RunInput:
    """One run's outputs given to another run: which run, where it is seen under /kaggle/input,
    and the SHA-256 of each file it got (name relative to the output folder)."""

    kernel: str
    backend: str
    version: int
    incarnation: int = 1
    identity: str | None = None  # the remote kernel's identity (Kaggle's kernel id), if any
    mounts: tuple[str, ...] = ()  # paths relative to /kaggle/input
    files: dict = field(default_factory=dict)  # name -> sha256

    @property
    def label(self) -> str:
        """`train:local-v3` (as `kjob runs` shows it)."""
        base = f"v{self.version}" if self.backend == "kaggle" else f"{self.backend}-v{self.version}"
        return f"{self.kernel}:{base if self.incarnation <= 1 else f'k{self.incarnation}-{base}'}"

    def as_dict(self) -> dict:
        return {"kernel": self.kernel, "backend": self.backend, "version": self.version,
                "incarnation": self.incarnation, "identity": self.identity, "mounts": list(self.mounts),
                "files": dict(sorted(self.files.items()))}

    @classmethod
    def from_dict(cls, data: dict) -> "RunInput":
        return cls(data["kernel"], data["backend"], int(data["version"]), int(data.get("incarnation") or 1),
                   data.get("identity"), tuple(data.get("mounts", ())), dict(data.get("files", {})))

    def is_run(self, run) -> bool:
        return (run.kernel, run.backend, run.version, run.incarnation) == (
            self.kernel, self.backend, self.version, self.incarnation)

    def matches(self, name: RunName) -> bool:
        """Whether `train`, `train:v3`, `train:local-v3` or `train@ray:v3` names this input."""
        return (name.kernel == self.kernel and (name.version is None or name.version == self.version)
                and (name.backend is None or name.backend == self.backend)
                and (name.incarnation is None or name.incarnation == self.incarnation))


def inputs_of(run) -> tuple[RunInput, ...]:
    return tuple(RunInput.from_dict(item) for item in getattr(run, "inputs", ()) or ())


def inputs_text(run) -> str:
    """A run's inputs as one cell: `train:local-v3, prep:v2`."""
    return ", ".join(item.label for item in inputs_of(run))


def manifest(inputs) -> str:
    """kjob-inputs.json, as every backend gives it to a run beside its inputs (/kaggle/input)."""
    return json.dumps({"inputs": [{**item.as_dict(), "run": item.label,
                                   "paths": [f"/kaggle/input/{m}" for m in item.mounts]} for item in inputs]},
                      indent=2, sort_keys=True) + "\n"


def made_from(ledger, run) -> list[tuple[RunInput, object]]:
    """(input, its ledger row or None when the row is gone) for each input of `run`."""
    found = []
    for item in inputs_of(run):
        rows = [r for r in ledger.runs(item.kernel) if item.is_run(r)]
        found.append((item, rows[0] if rows else None))
    return found


def made_into(ledger, run) -> list:
    """The runs that were given `run`'s outputs, oldest first."""
    pattern = f'%"kernel": {json.dumps(run.kernel)}%'
    rows = ledger.read("SELECT id FROM runs WHERE inputs LIKE ? ORDER BY created_at, id", (pattern,))
    runs = ledger.runs_with_ids([r["id"] for r in rows])
    return [r for r in runs if any(item.is_run(run) for item in inputs_of(r))]


def input_names(run) -> list[str]:
    """Every way of naming each of a run's inputs (`train`, `train:v3`, `train:local-v3`,
    `train@local`, `train@local:v3`): `kjob runs --where input=train:v3` keeps runs given it."""
    names = []
    for item in inputs_of(run):
        label = item.label.split(":", 1)[1]
        names += [item.kernel, f"{item.kernel}:v{item.version}", f"{item.kernel}:{label}",
                  f"{item.kernel}@{item.backend}", f"{item.kernel}@{item.backend}:v{item.version}"]
    return list(dict.fromkeys(names))


@dataclass
class Link:
    """One run of a lineage: the input as recorded (None for the run asked about), its ledger row
    (None when the row is gone) and the runs on the next step (its inputs, or what was made from it)."""

    input: RunInput | None
    run: object
    next: list = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.run.ref if self.run is not None else f"{self.input.label} (no longer in the ledger)"


def lineage(ledger, run, depth: int = 20) -> tuple[list[Link], list[Link]]:
    """(what `run` was made from, what was made from it), each a tree `depth` steps deep at most."""
    def back(of, seen, left) -> list[Link]:
        links = []
        for item, row in made_from(ledger, of):
            link = Link(item, row)
            if row is not None and row.id not in seen and left > 1:
                link.next = back(row, seen | {row.id}, left - 1)
            links.append(link)
        return links

    def forward(of, seen, left) -> list[Link]:
        links = []
        for row in made_into(ledger, of):
            link = Link(next(i for i in inputs_of(row) if i.is_run(of)), row)
            if row.id not in seen and left > 1:
                link.next = forward(row, seen | {row.id}, left - 1)
            links.append(link)
        return links

    return back(run, {run.id}, depth), forward(run, {run.id}, depth)


def complete_run_with(ledger, signature: str, recipe: str):
    """The newest complete run of `recipe` (its own kernel or a campaign lane's) with this
    signature, still there (not gone, not archived); None if there is none."""
    rows = ledger.read("SELECT id, kernel FROM runs WHERE signature=? AND status='complete' AND version IS NOT NULL"
                       " AND gone_at IS NULL AND archived_at IS NULL ORDER BY created_at DESC, id DESC", (signature,))
    ids = [r["id"] for r in rows if r["kernel"] == recipe or (parse_lane(r["kernel"]) or ("",))[0] == recipe]
    return ledger.get(ids[0]) if ids else None
