"""The functions of the catalog, loaded as Lambda loads them: from their handler settings
(shopstream.names.entry_point), so the local runtime, the in-process bus and the operations CLI run
the same modules the stacks deploy, one module per kind of function."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import ModuleType
from typing import Any

from shopstream import catalog, names

Function = Callable[[dict[str, Any], Any], Any]


def load(entry_point: str) -> Function:
    module, attribute = entry_point.rsplit(".", 1)
    function: Function = getattr(importlib.import_module(module), attribute)
    return function


def module(service: str, kind: str) -> ModuleType:
    """``kind``: names.API_MODULE, names.CONSUMERS_MODULE or names.SCHEDULES_MODULE."""
    return importlib.import_module(f"{service}.{kind}")


def api(service: str) -> Function:
    return load(names.entry_point(service, names.API_MODULE, catalog.service(service).api_entry))


def consumer(service: str, handler: catalog.HandlerSpec) -> Function:
    return load(names.entry_point(service, names.CONSUMERS_MODULE, handler.entry))


def schedule(service: str, schedule: catalog.ScheduleSpec) -> Function:
    return load(names.entry_point(service, names.SCHEDULES_MODULE, schedule.entry))
