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
from shopstream.events import model_of

ROOT = Path(__file__).resolve().parents[2]
HTTP_LAYER = ("aws_lambda_powertools.event_handler", "shopstream.api")
# The consumer runtime (shopstream.consumer) itself is light: service logic imports InboundEvent (shopstream.inbound)
# and PoisonRecord; only a consumers module loads Powertools' batch processor.
BATCH_MACHINERY = ("aws_lambda_powertools.utilities.batch", "shopstream.batch")
# Powertools' parser models: a pydantic model of every AWS event source, which its batch module loads
# when pydantic was loaded before it (for type hints only). A consumers module loads the batch module
# first, so none of them is built (docs/decisions.md, 2026-11-29).
EVENT_SOURCE_MODELS = ("aws_lambda_powertools.utilities.parser",)
# The idempotency utility loads on the first invocation of a consumer that keeps records, never at import.
IDEMPOTENCY = ("aws_lambda_powertools.utilities.idempotency",)


def _loaded_by(modules: list[str]) -> set[str]:
    code = ("import importlib, json, sys\n"
            f"for name in {modules!r}:\n    importlib.import_module(name)\n"
            "print(json.dumps(sorted(sys.modules)))")
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'layers/shopstream/python'}:{ROOT / 'functions'}:{ROOT}"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.splitlines()[-1]))


def _modules(kind: str) -> list[str]:
    having = {names.API_MODULE: lambda s: s.routes, names.CONSUMERS_MODULE: lambda s: s.handlers,
              names.SCHEDULES_MODULE: lambda s: s.schedules, "logic": lambda s: True}[kind]
    return [f"{s.name}.{kind}" for s in catalog.SERVICES if having(s)]


@pytest.mark.parametrize(("kind", "never"), [
    (names.CONSUMERS_MODULE, HTTP_LAYER + EVENT_SOURCE_MODELS + IDEMPOTENCY),
    (names.API_MODULE, BATCH_MACHINERY + EVENT_SOURCE_MODELS),
    (names.SCHEDULES_MODULE, HTTP_LAYER + BATCH_MACHINERY + EVENT_SOURCE_MODELS),
    ("logic", HTTP_LAYER + BATCH_MACHINERY),  # service logic never imports the HTTP layer
])
def test_an_entry_module_imports_only_what_its_kind_of_function_runs(kind, never):
    loaded = _loaded_by(_modules(kind))
    assert not {m for m in loaded if m.startswith(never)}, f"{kind} modules load {sorted(never)}"


@pytest.mark.parametrize("service", [s.name for s in catalog.SERVICES if s.handlers])
def test_each_consumers_module_alone_keeps_out_the_http_layer_and_the_event_source_models(service):
    """One function per process, as on Lambda: no other module loaded first can hide an import."""
    loaded = _loaded_by([f"{service}.{names.CONSUMERS_MODULE}"])
    assert not {m for m in loaded if m.startswith(HTTP_LAYER + EVENT_SOURCE_MODELS)}


def test_the_catalog_loads_no_event_model_and_an_event_loads_only_its_topic():
    assert not {m for m in _loaded_by(["shopstream.catalog"]) if m.startswith(("shopstream.events", "pydantic"))}
    loaded = _loaded_by(["shopstream.catalog", "shopstream.events.order"])
    topics = {m.removeprefix("shopstream.events.") for m in loaded if m.startswith("shopstream.events.")} - {"_index"}
    assert topics == {"order", "common"}


def test_every_event_model_is_where_the_catalog_says():
    for spec in catalog.EVENTS:
        topic_module = f"shopstream.events.{spec.topic.removesuffix('-events')}"
        assert (model_of(spec).__name__, model_of(spec).__module__) == (spec.model_name, topic_module)


def test_no_event_or_wire_model_is_built_at_import():
    """Models build their validators on first use (defer_build): a function builds only what it uses."""
    code = ("import json, shopstream.events as ev\n"
            "from shopstream import catalog\n"
            "models = [ev.Money, *(ev.model_of(e) for e in catalog.EVENTS)]\n"
            "print(json.dumps([m.__name__ for m in models if m.__pydantic_complete__]))")
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'layers/shopstream/python'}:{ROOT / 'functions'}:{ROOT}"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.splitlines()[-1]) == []


def test_every_function_the_catalog_declares_is_found_where_its_handler_setting_points():
    for spec in catalog.SERVICES:
        functions = [*([entry_points.api(spec.name)] if spec.routes else []),
                     *(entry_points.consumer(spec.name, h) for h in spec.handlers),
                     *(entry_points.schedule(spec.name, s) for s in spec.schedules)]
        assert all(callable(f) for f in functions), spec.name
