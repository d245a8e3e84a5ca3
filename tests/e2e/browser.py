"""A real browser for the console tests: Debian's Chromium under playwright-core (tests/e2e/browser.mjs).

``chromium_or_skip()`` says why the browser tests cannot run here, and skips them, unless CI is set:
under CI a missing browser is a failure (.ci/run installs Debian's chromium when it is missing).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).resolve().parent / "browser.mjs"
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")


def chromium_or_skip() -> str:
    found = next((c for c in (os.environ.get("CHROMIUM"), *CHROMIUM_CANDIDATES) if c and Path(c).exists()), None)
    missing = []
    if found is None:
        missing.append("no Chromium (apt-get install -y chromium)")
    if shutil.which("node") is None:
        missing.append("no node")
    if not (ROOT / "node_modules" / "playwright-core").exists():
        missing.append("no node_modules/playwright-core (make node)")
    if missing:
        reason = "browser tests cannot run: " + "; ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(reason + " (CI must run them)")
        pytest.skip(reason)
    assert found is not None
    return found


class Browser:
    def __init__(self, chromium: str):
        self.process = subprocess.Popen(["node", str(DRIVER)], cwd=ROOT, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                        env={**os.environ, "CHROMIUM": chromium})
        hello = self._read()
        if not hello.get("ok"):
            raise RuntimeError(f"browser did not start: {hello}")

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            assert self.process.stderr is not None
            raise RuntimeError(f"browser driver exited: {self.process.stderr.read()[-3000:]}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def __call__(self, command: str, **args: Any) -> Any:
        """Run one command; ``timeout`` in seconds."""
        if "timeout" in args:
            args["timeout"] = int(args["timeout"] * 1000)
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"command": command, **args}) + "\n")
        self.process.stdin.flush()
        answer = self._read()
        if not answer["ok"]:
            raise AssertionError(f"{command} {args}: {answer['error']}")
        return answer.get("result")

    def close(self) -> None:
        try:
            self("close")
        finally:
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
