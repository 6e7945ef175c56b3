"""A push's inputs (`kjob push --input REF`, a recipe's `inputs`, `--resume-from vN`): each
REF resolved to one recorded run, its outputs fetched if they are not here yet, and every file
hashed, before anything is pushed. A REF that names no complete run with outputs is refused
(one line, no ledger row).

    REF = KERNEL[:vN][@BACKEND]      (or KERNEL@BACKEND:vN, KERNEL:local-vN)

No version: the latest complete run of KERNEL; no backend: the push's own.
"""


from kjob.backends import BACKENDS, get_backend
from kjob.backends.mounts import InputFolder
from kjob.build.kernel_metadata import kernel_slug
from kjob.errors import KjobError, NotFoundError, UsageError
from kjob.fsutil import read_json, sha256_file
from kjob.kaggle_platform import input_layouts
from kjob.lifecycle.fetch import fetch_run
from kjob.runs.ledger import Ledger
from kjob.runs.lineage import RunInput, RunName
from kjob.runs.record import Run
from kjob.workspace import Workspace

# An owner for the notebooks layout when the workspace names none (local runs need no Kaggle account).
_NO_OWNER = "kjob"


def parse_name(text: str) -> RunName:
    return RunName.parse(text, BACKENDS)


def find_named(ledger: Ledger, name: RunName, default_backend: str | None = None,
               complete_only: bool = False) -> Run:
    """The run `name` means: its version on its backend (the push's own when it names none, or
    any backend when `default_backend` is None and the version is on only one); without a
    version, the latest (complete, with `complete_only`) run."""
    backend = name.backend or default_backend
    if name.version is not None:
        run = ledger.find(name.kernel, name.version, backend)
        if name.incarnation is not None and run.incarnation != name.incarnation:
            rows = [r for r in ledger.runs(name.kernel) if r.version == name.version
                    and r.backend == run.backend and r.incarnation == name.incarnation]
            if not rows:
                raise NotFoundError(f"no recorded run of {name} (see `kjob runs`)")
            run = rows[0]
        return run
    rows = [r for r in ledger.runs(name.kernel) if r.version is not None and (backend is None or r.backend == backend)]
    if complete_only:
        rows = [r for r in rows if r.state.status == "complete" and not r.gone]
    if not rows:
        what = "complete run" if complete_only else "run"
        raise NotFoundError(f"no {what} of {name.kernel}{' on ' + backend if backend else ''} (see `kjob runs`)")
    return rows[0]


def resolve_inputs(ws: Workspace, ledger: Ledger, refs, backend_name: str) -> tuple[InputFolder, ...]:
    """Each REF as the fetched outputs of one complete run, hashed; refused (a KjobError of
    exit 2 or 4) when it is not complete, has no outputs, is gone or cannot be fetched."""
    found: dict[tuple, InputFolder] = {}
    for ref in refs:
        try:
            name = parse_name(ref)
            run = find_named(ledger, name, backend_name, complete_only=True)
        except KjobError as exc:
            raise type(exc)(f"input {ref}: {exc.message}") from exc
        key = (run.kernel, run.backend, run.incarnation, run.version)
        if key not in found:
            found[key] = _input_of(ws, ledger, ref, run)
    slugs: dict[str, str] = {}
    for item in found.values():  # two inputs may not share a folder in /kaggle/input
        for mount in item.record.mounts:
            if mount in slugs:
                raise UsageError(f"inputs {slugs[mount]} and {item.record.label} would both be /kaggle/input/{mount}: "
                                 "give one of them")
            slugs[mount] = item.record.label
    return tuple(found.values())


def _input_of(ws: Workspace, ledger: Ledger, ref: str, run: Run) -> InputFolder:
    if run.state.status != "complete":
        raise UsageError(f"input {ref}: {run.ref} is {run.state.status}, not complete")
    if run.gone:
        raise NotFoundError(f"input {ref}: {run.ref} is gone (its kernel was deleted)")
    if run.archived:
        raise UsageError(f"input {ref}: {run.ref} is archived: restore it first "
                         f"(kjob runs archive {run.kernel} --version {run.version} --backend {run.backend} --restore)")
    paths = ws.paths.download(run.kernel, run.backend, run.version, run.incarnation)
    if not _fetched(paths):
        try:
            fetch_run(ws, ledger, get_backend(ws, run.backend), run, outputs=True)
        except KjobError as exc:
            raise NotFoundError(f"input {ref}: {run.ref} cannot be fetched: {exc.message}") from exc
    files = _digests(paths)
    if not files:
        raise NotFoundError(f"input {ref}: {run.ref} has no output files")
    slug = _slug(ws, run.kernel)
    owner = ws.owner_or_none() or _NO_OWNER
    mounts = tuple(input_layouts("kernel", f"{owner}/{slug}"))
    record = RunInput(run.kernel, run.backend, run.version, run.incarnation, run.identity, mounts, files)
    return InputFolder(paths.output_dir.resolve(), record)


def _digests(paths) -> dict[str, str]:
    """{name: SHA-256} of the files in the download's output folder. A file the fetch wrote and
    nobody touched since (its size and mtime as recorded) has the digest the fetch computed
    while downloading: a push does not read a multi-GB checkpoint again."""
    if not paths.output_dir.is_dir():
        return {}
    fetched = read_json(paths.fetch_record, {}) or {}
    digests = {}
    for path in sorted(paths.output_dir.rglob("*")):
        if not path.is_file():
            continue
        name, stat = path.relative_to(paths.output_dir).as_posix(), path.stat()
        known = fetched.get(name) or {}
        same = known.get("sha256") and known.get("local") == [stat.st_size, stat.st_mtime_ns]
        digests[name] = known["sha256"] if same else sha256_file(path)
    return digests


def _fetched(paths) -> bool:
    """Whether the version's listed outputs are all here (a fetch of its outputs happened)."""
    listing = read_json(paths.listing, None)
    if not listing or not paths.output_dir.is_dir():
        return False
    return all(paths.output_file(item["name"]).is_file() for item in listing)


def _slug(ws: Workspace, kernel: str) -> str:
    try:
        return kernel_slug(ws, kernel)
    except KjobError:  # its recipe is gone: the kernel's name is its slug
        return kernel.split("@")[0]


