"""A real Ray head for tests and benchmarks: started on free 127.0.0.1 ports, stopped by its PID.

`ray start --head --block` runs in a process group of its own and is stopped with SIGTERM to
that one PID (SIGKILL of its group if it lingers). Never `ray stop`: it stops every Ray
process on the host, other people's too. The head uses token authentication, so every test
also proves that kjob sends the token.
"""

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

RAY = Path(sys.executable).with_name("ray")


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class RayHead:
    def __init__(self, cpus: int = 2):
        self.cpus = cpus
        self.token = secrets.token_hex(32)
        # Short: Ray's unix sockets live under it, and socket paths are limited to ~107 bytes.
        self.temp = Path(tempfile.mkdtemp(prefix="kr", dir="/tmp"))
        self.port, self.dashboard_port, self.client_port, self.agent_port = free_ports(4)
        self.address = f"http://127.0.0.1:{self.dashboard_port}"
        self.process: subprocess.Popen | None = None
        self.started_in = 0.0

    @property
    def env(self) -> dict[str, str]:
        """What a client needs to talk to this head."""
        return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": self.token}

    def start(self, timeout: float = 60) -> "RayHead":
        began = time.monotonic()
        env = {**os.environ, **self.env, "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0"}
        env.pop("RAY_ADDRESS", None)
        command = [str(RAY), "start", "--head", "--node-ip-address=127.0.0.1", f"--port={self.port}",
                   "--dashboard-host=127.0.0.1", f"--dashboard-port={self.dashboard_port}",
                   f"--ray-client-server-port={self.client_port}", f"--dashboard-agent-listen-port={self.agent_port}",
                   f"--num-cpus={self.cpus}", f"--temp-dir={self.temp}", "--disable-usage-stats", "--block"]
        self.log = (self.temp / "head.log").open("ab")
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
                                        env=env, start_new_session=True)
        headers = {"Authorization": f"Bearer {self.token}"}
        while time.monotonic() - began < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"ray start exited ({self.process.returncode}): {self.tail()}")
            try:  # ready once the head lists itself as an alive node, with its CPUs
                answer = requests.get(f"{self.address}/api/v0/nodes?detail=1", headers=headers, timeout=2)
                nodes = answer.json()["data"]["result"]["result"] if answer.status_code == 200 else []
                if any(node.get("state") == "ALIVE" for node in nodes):
                    self.started_in = time.monotonic() - began
                    return self
            except (requests.RequestException, ValueError, KeyError, TypeError):
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the Ray head did not answer within {timeout} s: {self.tail()}")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(process.pid, 0)  # anything of its group still there?
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        process.wait(10)
        self.log.close()

    def restart(self) -> None:
        """The same address, a new head: Ray's job history is gone."""
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.temp, ignore_errors=True)

    def tail(self) -> str:
        try:
            return (self.temp / "head.log").read_text(errors="replace")[-1500:]
        except OSError:
            return ""
