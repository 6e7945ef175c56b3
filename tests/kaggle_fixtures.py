"""For the Kaggle backend tests: recipes beside `tiny`, throw-away credentials, an emulator per test."""

import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from kjob.emulator.server import Emulator
from kjob.emulator.store import ApiError

GPU_RECIPE = """
title = "Tiny Gpu Kernel"
slug = "tiny-gpu-kernel"
modules = ["pkg/util.py", "pkg/job.py"]
entry = "main"
accelerator = "gpu"
session_timeout = 3600
dataset_sources = ["someone/some-data"]

[parameters]
steps = 3
rate = 0.5
label = "gpu"
fail = false
sleep = 0.0
"""

LOST_RECIPE = """
title = "Lost Kernel"
slug = "lost-kernel"
modules = ["pkg/util.py", "pkg/job.py"]
entry = "main"
accelerator = "none"
dataset_sources = ["nobody/nothing"]

[parameters]
steps = 1
rate = 0.5
label = "lost"
fail = false
sleep = 0.0
"""

CHATTY_RECIPE = """
title = "Chatty Kernel"
slug = "chatty-kernel"
modules = ["pkg/chatty.py"]
entry = "main"
accelerator = "none"

[parameters]
lines = 6
pause = 0.3
"""

CHATTY_JOB = '''
"""Prints a line now and then, and one to stderr."""
import sys
import time


def main(lines, pause):
    for i in range(lines):
        print(f"line {i}", flush=True)
        time.sleep(pause)
    print("almost done", file=sys.stderr, flush=True)
'''

# Where the machine's own credentials could come from: cleared for every test.
CREDENTIAL_VARIABLES = "KAGGLE_API_TOKEN KAGGLE_USERNAME KAGGLE_KEY KAGGLE_API_ENVIRONMENT KAGGLE_CONFIG_DIR".split()


@dataclass
class Kaggle:
    ws: object  # conftest.Workspace
    emulator: Emulator
    key: str  # the throw-away API key of user "alice"
    config_dir: Path

    def kjob(self, *args: str):
        result = self.ws.kjob(*args)
        assert self.key not in result.stdout + result.stderr, "a credential appeared in kjob's output"
        return result

    def push(self, *args: str):
        return self.kjob("push", *args, "--backend", "kaggle")

    def write_credentials(self, key: str | None = None, mode: int = 0o600) -> Path:
        path = self.config_dir / "kaggle.json"
        path.write_text(json.dumps({"username": "alice", "key": key or self.key}))
        os.chmod(path, mode)
        return path

    def session(self, slug: str, version: int):
        with self.emulator.store.lock:
            return self.emulator.store.kernel("alice", slug).versions[version - 1].session

    def wait_for_session(self, slug: str, version: int, status: str, seconds: float = 30):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                if self.session(slug, version).state().get("status") == status:
                    return
            except (ApiError, IndexError):  # not pushed yet
                pass
            time.sleep(0.1)
        raise AssertionError(f"{slug} v{version} never became {status}")


def start_kaggle(ws, tmp_path: Path, monkeypatch, **emulator_options) -> Kaggle:
    ws.write("builders/tinygpu.toml", GPU_RECIPE)
    ws.write("builders/lost.toml", LOST_RECIPE)
    ws.write("builders/chatty.toml", CHATTY_RECIPE)
    ws.write("src/pkg/chatty.py", CHATTY_JOB)
    for name in [*CREDENTIAL_VARIABLES, "KJOB_KAGGLE_ENDPOINT"]:
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    config_dir = home / ".kaggle"
    config_dir.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(config_dir))
    key = secrets.token_hex(16)
    options = {"users": {"alice": key}, "data_sources": {"someone/some-data": ws.root / "data/some"},
               "page_size": 2, **emulator_options}
    emulator = Emulator(tmp_path / "emulator", **options).start()
    monkeypatch.setenv("KJOB_KAGGLE_ENDPOINT", emulator.url)
    monkeypatch.setenv("KJOB_KAGGLE_POLL", "0.2")
    monkeypatch.setenv("KJOB_KAGGLE_RETRY_DELAY", "0.01")
    monkeypatch.setenv("KJOB_KAGGLE_RETRIES", "4")
    monkeypatch.setenv("KJOB_KAGGLE_TIMEOUT", "10")
    kaggle = Kaggle(ws, emulator, key, config_dir)
    kaggle.write_credentials()
    return kaggle
