"""Garbage collection paused through a function's init on Lambda, and only there (shopstream/coldstart.py).
Each case runs in a fresh interpreter: collection is process-wide state."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import gc, json, sys
sys.path[:0] = [{layer!r}, {functions!r}, {root!r}]
from bench.cold_start import functions
function = next(f for f in functions() if f.name == {name!r})
module, attribute = function.handler.rsplit(".", 1)
import importlib
entry = getattr(importlib.import_module(module), attribute)
during_init = gc.isenabled()
if function.event is not None:
    entry(function.event, None)
else:
    entry({{}}, None)
after_first = gc.isenabled(), gc.get_freeze_count() > 0
print(json.dumps([during_init, *after_first]))
"""


def _run(name: str, on_lambda: bool) -> list[bool]:
    from bench.cold_start import functions

    [function] = [f for f in functions() if f.name == name]
    env = {**os.environ, **function.environment, "AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "eu-west-1",
           "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "POWERTOOLS_TRACE_DISABLED": "true"}
    env.pop("AWS_LAMBDA_FUNCTION_NAME", None)
    if on_lambda:
        env["AWS_LAMBDA_FUNCTION_NAME"] = name.replace(".", "-")
    code = PROBE.format(layer=str(ROOT / "layers/shopstream/python"), functions=str(ROOT / "functions"),
                        root=str(ROOT), name=name)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", ["order.inventory_outcomes", "order.api"])
def test_on_lambda_collection_is_paused_through_init_and_resumes_frozen_after_the_first_invocation(name):
    assert _run(name, True) == [False, True, True]


def test_elsewhere_collection_is_never_paused():
    assert _run("order.inventory_outcomes", False) == [True, True, False]
