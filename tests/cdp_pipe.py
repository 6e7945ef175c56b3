"""A real headless Chromium driven over its DevTools pipe (`--remote-debugging-pipe`: commands
on fd 3, answers on fd 4, each a JSON message ending in NUL), for tests that must act on a page
(evaluate script, wait for a change, screenshot) and see every request it makes. No extra
package: the protocol is JSON over two pipes."""

import base64
import json
import os
import subprocess
import time
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")


class Browser:
    def __init__(self, profile: Path, width: int = 1400, height: int = 900, proxy: str | None = None):
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def fds():  # in the child: the pipe ends as fd 3 (commands) and fd 4 (answers)
            a, b = os.dup(to_child_r), os.dup(from_child_w)
            os.dup2(a, 3)
            os.dup2(b, 4)
            os.set_inheritable(3, True)
            os.set_inheritable(4, True)

        args = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-default-apps", "--disable-extensions", "--remote-debugging-pipe",
                # Chromium's own calls home (time, updates, accounts): what the page asks for is what is tested
                "--disable-features=NetworkTimeServiceQuerying,OptimizationHints,MediaRouter,DialMediaRouteProvider,"
                "Translate,AutofillServerCommunication,PrivacySandboxSettings4,InterestFeedContentSuggestions",
                "--no-service-autorun", "--no-pings", "--disable-domain-reliability", "--disable-breakpad",
                "--disable-client-side-phishing-detection", "--metrics-recording-only", "--password-store=basic",
                "--use-mock-keychain", "--disable-sync-preferences", "--disable-signin-promo",
                f"--user-data-dir={profile}", f"--window-size={width},{height}", "--hide-scrollbars"]
        if proxy:  # any request that leaves the machine goes there (and fails there)
            args += [f"--proxy-server={proxy}", "--proxy-bypass-list=<-loopback>"]
        self.process = subprocess.Popen(args + ["about:blank"], preexec_fn=fds, close_fds=False,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_child_r)
        os.close(from_child_w)
        self._buffer = b""
        self._next = 0
        self.events: list[dict] = []
        self.width, self.height = width, height
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Network"):
            self.call(f"{domain}.enable", session=True)
        self.call("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1,
                                                         "mobile": False}, session=True)

    # -- the protocol --------------------------------------------------------------------------

    def _read(self, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while b"\0" not in self._buffer:
            import select

            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_child], [], [], left)[0]:
                raise TimeoutError("chromium did not answer")
            chunk = os.read(self._from_child, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed its pipe")
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(message)

    def call(self, method: str, params: dict | None = None, session: bool = False, timeout: float = 60) -> dict:
        self._next += 1
        message = {"id": self._next, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self.session
        os.write(self._to_child, json.dumps(message).encode() + b"\0")
        while True:
            answer = self._read(timeout)
            if answer.get("id") == self._next:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer.get("result", {})
            self.events.append(answer)

    # -- what a test does ----------------------------------------------------------------------

    def open(self, url: str, ready: str = "document.body && document.body.dataset.stamp", timeout: float = 60):
        self.call("Page.navigate", {"url": url}, session=True)
        return self.wait(ready, timeout)

    def js(self, expression: str):
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True}, session=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait(self, expression: str, timeout: float = 30):
        deadline = time.monotonic() + timeout
        while True:
            value = self.js(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"never true: {expression}")
            time.sleep(0.1)

    def requests(self) -> list[str]:
        """Every URL the page asked for (Network.requestWillBeSent), in order."""
        self.js("1")  # take in what arrived meanwhile
        return [e["params"]["request"]["url"] for e in self.events if e.get("method") == "Network.requestWillBeSent"]

    def screenshot(self, path: Path) -> Path:
        data = self.call("Page.captureScreenshot", {"format": "png"}, session=True)["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=10)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._to_child)
        os.close(self._from_child)
