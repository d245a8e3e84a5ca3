"""A Lambda context for invoking handlers outside Lambda (local runner, tests, CLI): Powertools'
LambdaContext with the values Lambda would set, and a remaining time counted from creation."""

from __future__ import annotations

import time
import uuid

from aws_lambda_powertools.utilities.typing import LambdaContext


class LocalLambdaContext(LambdaContext):
    def __init__(self, function_name: str = "shopstream-local", *, timeout_seconds: float = 60.0,
                 memory_limit_in_mb: int = 512) -> None:
        self._function_name = function_name
        self._function_version = "$LATEST"
        self._invoked_function_arn = f"arn:aws:lambda:eu-west-1:000000000000:function:{function_name}"
        self._memory_limit_in_mb = memory_limit_in_mb
        self._aws_request_id = str(uuid.uuid4())
        self._log_group_name = f"/aws/lambda/{function_name}"
        self._log_stream_name = "local"
        self._tenant_id = None
        self.timeout_seconds = timeout_seconds
        self._started = time.monotonic()

    def get_remaining_time_in_millis(self) -> int:  # type: ignore[override]
        return max(int((self.timeout_seconds - (time.monotonic() - self._started)) * 1000), 0)
