"""A small HTTP client for the local API (demo, e2e tests, benchmarks)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

from local import auth


class ApiClient:
    def __init__(self, base_url: str, secret_path=auth.SECRET_FILE):
        self.base_url = base_url.rstrip("/")
        self.secret_path = secret_path
        self._tokens: dict[tuple[str, bool], str] = {}

    def token(self, user: str, admin: bool = False) -> str:
        key = (user, admin)
        if key not in self._tokens:
            self._tokens[key] = auth.issue(user, admin=admin, path=self.secret_path)
        return self._tokens[key]

    def call(self, method: str, path: str, *, user: str | None = None, admin: bool = False, body: Any = None,
             headers: dict[str, str] | None = None) -> tuple[int, Any, dict[str, str]]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.base_url}{path}", data=data, method=method,
                                         headers={"Content-Type": "application/json", **(headers or {})})
        if user:
            request.add_header("Authorization", f"Bearer {self.token(user, admin)}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                raw, status, got = response.read(), response.status, dict(response.headers)
        except urllib.error.HTTPError as error:
            raw, status, got = error.read(), error.code, dict(error.headers)
        return status, json.loads(raw) if raw else None, got

    def wait_until(self, predicate, timeout: float = 60, interval: float = 0.2):
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError("condition not met in time")
            time.sleep(interval)

    def healthy(self) -> bool:
        try:
            return self.call("GET", "/health")[0] == 200
        except OSError:
            return False
