"""Executing a notebook with nbclient and turning the outcome into something a person can act on.

Called by the runner of every run sandbox (`kjob.sandbox.folder`: local runs, the emulator's
sessions, smoke runs), in the runner's own process.
"""

import json
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kjob.runs.failures import exception_kind
from kjob.sandbox.isolation import allowed_environment
from kjob.notebook import locate

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_FRAME = re.compile(r"(?:Cell In\s*\[(\d+)\]|<ipython-input-(\d+)-[0-9a-f]+>)(?:,)? line (\d+)"
                    r'|File "?(?P<file>[^"\s,:]+)(?::(?P<fline>\d+)|", line (?P<fline2>\d+))')


@dataclass
class Failure:
    kind: str  # one of kjob.runs.record.FAILURE_KINDS: "user code", "timeout", "kernel died", "out of memory", ...
    message: str  # one line: "ZeroDivisionError: division by zero"
    cell_index: int | None = None
    location: str | None = None  # "src/pkg/mod.py:12" when the failing line is in a src module

    def describe(self) -> str:
        where = f"{self.location}: " if self.location else (f"cell {self.cell_index}: " if self.cell_index is not None else "")
        return f"{where}{self.message}"


@dataclass
class Execution:
    notebook: dict
    seconds: float
    failure: Failure | None = None
    outputs: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failure is None


OutputHook = Callable[[str, str], None]  # (stream name, text)
StartHook = Callable[[int | None], None]  # the kernel's process id


def execute_notebook(
    nb: dict, working_dir: Path, env: dict[str, str], timeout: float, kernel_log: Path,
    on_output: OutputHook | None = None, on_start: StartHook | None = None,
) -> Execution:
    """Run every cell of `nb` in a fresh python3 kernel whose cwd is `working_dir`.

    The kernel's environment is `env` over the allow-listed part of this process's
    (`kjob.sandbox.isolation.allowed_environment`): nothing else of it reaches the notebook.
    `timeout` bounds the whole run (each cell gets what is left of it). The kernel process's
    own stdout/stderr (not the cells' output, which lands in the notebook) go to `kernel_log`.
    `on_output` sees the cells' output as it arrives; `on_start` the kernel's pid."""
    import tempfile

    import nbformat
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    node = nbformat.reads(json.dumps(nb), as_version=4)
    started = time.monotonic()
    # IPC sockets in a private folder: no TCP ports, and no ipykernel warning about them.
    sockets = Path(tempfile.mkdtemp(prefix="kjob-kernel-"))
    client = _client(node, sockets, working_dir, timeout, started + timeout, on_output, on_start)
    failure = None
    log = kernel_log.open("ab")
    try:
        # cleanup_kc: the kernel ends here, before the run's outcome is recorded (nbclient would
        # leave a kernel it was handed running until this process exits).
        client.execute(cleanup_kc=True, env={**allowed_environment(os.environ), **env}, stdout=log, stderr=log)
    except CellTimeoutError:
        index = _running_cell(node)
        failure = Failure("timeout", f"time limit of {timeout:.0f} s exceeded", index, _cell_location(nb, index))
    except DeadKernelError as exc:
        failure = Failure("kernel died", f"the kernel died: {str(exc).splitlines()[0] if str(exc) else 'no reason given'}", _running_cell(node))
    except CellExecutionError:
        failure = user_code_failure(node)
    finally:
        log.close()
        shutil.rmtree(sockets, ignore_errors=True)
    return Execution(_as_dict(node), time.monotonic() - started, failure, _list_outputs(working_dir))


def _client(node, sockets: Path, working_dir: Path, timeout: float, deadline: float,
            on_output: OutputHook | None, on_start: StartHook | None):
    """An nbclient client for `node` whose kernel talks over IPC sockets in `sockets`, passing
    the cells' output to `on_output` as it arrives and the kernel's pid to `on_start`; each
    cell gets what is left until `deadline`."""
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient

    manager = AsyncKernelManager(kernel_name="python3", transport="ipc", ip=str(sockets / "k"))

    class StreamingClient(NotebookClient):
        def output(self, outs, msg, display_id, cell_index):
            result = super().output(outs, msg, display_id, cell_index)
            if on_output is not None:
                _forward(msg, on_output)
            return result

        async def async_start_new_kernel(self, **kwargs):
            await super().async_start_new_kernel(**kwargs)
            if on_start is not None:  # as soon as it exists, before it is even ready
                on_start(getattr(manager.provisioner, "pid", None))

    return StreamingClient(
        node,
        km=manager,
        kernel_name="python3",
        timeout=int(timeout),
        timeout_func=lambda cell: max(1, int(deadline - time.monotonic())),
        resources={"metadata": {"path": str(working_dir)}},
        record_timing=False,
    )


def _as_dict(node) -> dict:
    """The executed notebook as plain JSON data, each cell's source one string (nbformat
    splits sources into lines)."""
    import nbformat

    executed = json.loads(nbformat.writes(node))
    for cell in executed["cells"]:
        if isinstance(cell.get("source"), list):
            cell["source"] = "".join(cell["source"])
    return executed


def _forward(msg: dict, on_output: OutputHook) -> None:
    kind, content = msg["msg_type"], msg["content"]
    if kind == "stream":
        on_output(content.get("name", "stdout"), content.get("text", ""))
    elif kind == "error":
        on_output("stderr", _ANSI.sub("", "\n".join(content.get("traceback", []))) + "\n")
    elif kind in ("execute_result", "display_data"):
        text = content.get("data", {}).get("text/plain")
        if text:
            on_output("stdout", text + "\n")


def _running_cell(nb) -> int | None:
    """The last code cell that started executing (has an execution count)."""
    last = None
    for index, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code" and cell.get("execution_count") is not None:
            last = index
    return last


def _cell_location(nb: dict, index: int | None) -> str | None:
    if index is None:
        return None
    source = nb["cells"][index].get("metadata", {}).get("kjob", {}).get("source")
    return source


def user_code_failure(nb) -> Failure:
    """The failing cell's exception, with its innermost frame in our cells mapped to a src line."""
    counts = {cell.get("execution_count"): i for i, cell in enumerate(nb["cells"]) if cell["cell_type"] == "code"}
    sources = {cell.get("metadata", {}).get("kjob", {}).get("source") for cell in nb["cells"]} - {None}
    for index, cell in enumerate(nb["cells"]):
        for output in cell.get("outputs", []) if cell["cell_type"] == "code" else []:
            if output.get("output_type") != "error":
                continue
            message = f"{output.get('ename', 'Error')}: {output.get('evalue', '')}".strip()
            location = None
            for frame in _FRAME.finditer(_ANSI.sub("", "\n".join(output.get("traceback", [])))):
                if frame.group("file"):  # a module run as its own (namespaces = "modules"): its file's line
                    if frame.group("file") in sources:
                        location = f"{frame.group('file')}:{frame.group('fline') or frame.group('fline2')}"
                    continue
                count = int(frame.group(1) or frame.group(2))
                if count in counts:
                    location = locate(nb, counts[count], int(frame.group(3))) or location
            kind = exception_kind(output.get("ename", ""), output.get("evalue", ""))
            return Failure(kind, message.splitlines()[0] if message else "error", index, location)
    return Failure("user code", "a cell raised an error", _running_cell(nb))


def _list_outputs(folder: Path) -> list[str]:
    if not folder.is_dir():
        return []
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
