"""Every AWS service the code calls by name has a typed client (shopstream.aws.client's overloads, from the
types-boto3 stubs pinned in requirements-dev.txt): a new service is typed, not silently Any."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ["layers/shopstream/python/shopstream", "functions", "stacks", "local", "tools", "bench"]


def _typed_services() -> set[str]:
    tree = ast.parse((ROOT / "layers/shopstream/python/shopstream/aws.py").read_text())
    return {node.slice.value for node in ast.walk(tree)
            if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == "Literal"
            and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str)}


def _services_called() -> set[str]:
    called = re.compile(r"""\bclient\(\s*["']([a-z0-9-]+)["']""")
    return {name for folder in SOURCES for path in (ROOT / folder).rglob("*.py")
            for name in called.findall(path.read_text())}


def test_every_service_called_by_name_has_a_typed_client():
    assert _services_called() - _typed_services() == set()


def test_every_typed_client_has_its_stubs_pinned():
    pinned = set(re.findall(r"^types-boto3-([a-z0-9-]+)==", (ROOT / "requirements-dev.txt").read_text(), re.M))
    assert _typed_services() - pinned == set()
