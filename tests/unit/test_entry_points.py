"""Each kind of function imports only what it runs (docs/decisions.md, 2026-11-29): a consumer never
loads the HTTP layer, the API never the batch machinery. Checked in fresh interpreters, as Lambda
starts one, and every handler setting the stacks deploy resolves to a function."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from local import entry_points
from shopstream import catalog, names

ROOT = Path(__file__).resolve().parents[2]
HTTP_LAYER = ("aws_lambda_powertools.event_handler", "shopstream.api")
# The consumer runtime (shopstream.consumer) itself is light: service logic imports its InboundEvent
# and PoisonRecord; the batch processor is loaded on a consumer's first invocation.
BATCH_MACHINERY = ("aws_lambda_powertools.utilities.batch", "shopstream.batch")


def _loaded_by(modules: list[str]) -> set[str]:
    code = ("import importlib, json, sys\n"
            f"for name in {modules!r}:\n    importlib.import_module(name)\n"
            "print(json.dumps(sorted(sys.modules)))")
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'layers/shopstream/python'}:{ROOT / 'functions'}:{ROOT}"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.splitlines()[-1]))


def _modules(kind: str) -> list[str]:
    having = {names.API_MODULE: lambda s: s.routes, names.CONSUMERS_MODULE: lambda s: s.handlers,
              names.SCHEDULES_MODULE: lambda s: s.schedules}[kind]
    return [f"{s.name}.{kind}" for s in catalog.SERVICES if having(s)]


@pytest.mark.parametrize(("kind", "never"), [
    (names.CONSUMERS_MODULE, HTTP_LAYER),
    (names.API_MODULE, BATCH_MACHINERY),
    (names.SCHEDULES_MODULE, HTTP_LAYER + BATCH_MACHINERY),
])
def test_an_entry_module_imports_only_what_its_kind_of_function_runs(kind, never):
    loaded = _loaded_by(_modules(kind))
    assert not {m for m in loaded if m.startswith(never)}, f"{kind} modules load {sorted(never)}"


def test_every_function_the_catalog_declares_is_found_where_its_handler_setting_points():
    for spec in catalog.SERVICES:
        functions = [*([entry_points.api(spec.name)] if spec.routes else []),
                     *(entry_points.consumer(spec.name, h) for h in spec.handlers),
                     *(entry_points.schedule(spec.name, s) for s in spec.schedules)]
        assert all(callable(f) for f in functions), spec.name
