"""Driving the emulator with the official `kaggle` CLI (2.2.4), as a user would.

The CLI reaches a local server only as KAGGLE_API_ENVIRONMENT=LOCALHOST, i.e. http://localhost
on port 80. `OfficialCli` runs its own entry point through `kjob.emulator.kaggle_cli`, which
points kagglesdk's LOCALHOST endpoint at the emulator's free port; `OfficialCli(port80=True)`
runs the installed `kaggle` console script itself against an emulator on port 80.
"""

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

from kjob.emulator.server import Emulator

CREDENTIAL_VARIABLES = ("KAGGLE_API_TOKEN", "KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_ENVIRONMENT",
                        "KAGGLE_CONFIG_DIR", "KJOB_KAGGLE_ENDPOINT")


def notebook(*sources: str) -> str:
    cells = [{"cell_type": "code", "id": f"c{i}", "metadata": {}, "execution_count": None, "outputs": [],
              "source": textwrap.dedent(s).strip("\n").splitlines(keepends=True)} for i, s in enumerate(sources)]
    return json.dumps({"cells": cells, "nbformat": 4, "nbformat_minor": 5, "metadata": {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"}}})


def kernel_folder(root: Path, ref: str, title: str, code: str, **meta) -> Path:
    """A folder as `kaggle kernels init` leaves it, filled in: kernel-metadata.json and the code file."""
    kind = meta.pop("kernel_type", "notebook")
    code_file = meta.pop("code_file", "main.ipynb" if kind == "notebook" else "main.py")
    folder = root / ref.replace("/", "__") / secrets.token_hex(3)
    folder.mkdir(parents=True)
    (folder / code_file).write_text(code, encoding="utf-8")
    data = {"id": ref, "title": title, "code_file": code_file, "language": "python", "kernel_type": kind,
            "is_private": True, "enable_gpu": False, "enable_internet": False, "dataset_sources": [],
            "competition_sources": [], "kernel_sources": [], "model_sources": [], **meta}
    (folder / "kernel-metadata.json").write_text(json.dumps(data, indent=1), encoding="utf-8")
    return folder


def port_80_free() -> bool:
    if os.name != "posix" or os.geteuid() != 0:
        return False
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", 80))
            return True
        except OSError:
            return False


@dataclass
class OfficialCli:
    emulator: Emulator
    home: Path
    keys: dict[str, str]  # username -> API key
    token: str  # alice's access token
    port80: bool = False
    calls: list[float] = field(default_factory=list)  # seconds per call

    def env(self, user: str | None = "alice", token: str | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in CREDENTIAL_VARIABLES}
        env.update(HOME=str(self.home), KAGGLE_CONFIG_DIR=str(self.home / ".kaggle"))
        if self.port80:
            env["KAGGLE_API_ENVIRONMENT"] = "LOCALHOST"
        else:
            env["KJOB_KAGGLE_ENDPOINT"] = self.emulator.url
        if token:
            env["KAGGLE_API_TOKEN"] = token
        elif user:
            env.update(KAGGLE_USERNAME=user, KAGGLE_KEY=self.keys[user])
        return env

    def __call__(self, *args: str, user: str | None = "alice", token: str | None = None,
                 cwd: Path | None = None) -> subprocess.CompletedProcess:
        if self.port80:
            command = [shutil.which("kaggle", path=str(Path(sys.executable).parent)) or "kaggle", *args]
        else:
            command = [sys.executable, "-m", "kjob.emulator.kaggle_cli", *args]
        started = time.monotonic()
        result = subprocess.run(command, env=self.env(user, token), cwd=cwd or self.home, capture_output=True,
                                text=True, timeout=120)
        self.calls.append(time.monotonic() - started)
        said = result.stdout + result.stderr
        assert not any(secret in said for secret in [*self.keys.values(), self.token]), "a credential was printed"
        return result

    def wait(self, ref: str, seconds: float = 90) -> str:
        """The final status of the kernel's latest version, from the emulator's own records."""
        owner, slug = ref.split("/")
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with self.emulator.store.lock:
                session = self.emulator.store.kernel(owner, slug).versions[-1].session
            if session.final:
                return session.kaggle_status()[0]
            time.sleep(0.1)
        raise AssertionError(f"{ref} did not finish")


def start(tmp_path: Path, port: int = 0, data_sources: dict | None = None, state: str = "emulator") -> OfficialCli:
    keys = {"alice": secrets.token_hex(16), "bob": secrets.token_hex(16)}
    token = "KGAT_" + secrets.token_hex(16)
    emulator = Emulator(tmp_path / state, data_sources or {}, users=keys, tokens={token: "alice"}, port=port).start()
    home = tmp_path / "home"
    (home / ".kaggle").mkdir(parents=True, exist_ok=True)
    return OfficialCli(emulator, home, keys, token, port80=port == 80)
