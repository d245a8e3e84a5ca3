"""JSON Schema of every (eventType, eventVersion), and the backward-compatibility rule.

Backward compatible means every event valid under the old schema is still valid under
the new one *and* still carries every field consumers read. So: no field removed, no new
required field, no type narrowed (fewer types, fewer enum values, tighter bounds).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import create_model

from shopstream import catalog
from shopstream.envelope import EventEnvelope
from shopstream.events import model_of
from shopstream.personal import PERSONAL

SCHEMA_DIALECT = "http://json-schema.org/draft-07/schema#"  # Glue accepts drafts 4 to 7


def schema_file_name(name: str, version: str) -> str:
    return f"{name}.{version}.json"


def event_schema(spec: catalog.EventSpec) -> dict[str, Any]:
    """The whole envelope, with ``data`` typed by the event's model."""
    model = create_model(
        f"{spec.name}{spec.version.upper()}",
        __base__=EventEnvelope,
        event_type=(Literal[spec.name], ...),  # type: ignore[arg-type]
        event_version=(Literal[spec.version], ...),  # type: ignore[arg-type]
        data=(model_of(spec), ...),
    )
    schema = model.model_json_schema(by_alias=True, mode="validation")
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": f"https://shopstream.example/schemas/{schema_file_name(spec.name, spec.version)}",
        "x-topic": spec.topic,
        "x-key": spec.key_field,
        **schema,
    }


def all_schemas() -> dict[str, dict[str, Any]]:
    return {schema_file_name(s.name, s.version): event_schema(s) for s in catalog.EVENTS}


# --- compatibility --------------------------------------------------------------------
_LOWER_BOUNDS = ("minimum", "exclusiveMinimum", "minLength", "minItems")
_UPPER_BOUNDS = ("maximum", "exclusiveMaximum", "maxLength", "maxItems")


def _resolve(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        path = node["$ref"].removeprefix("#/").split("/")
        target: Any = root
        for part in path:
            target = target[part]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _variants(node: dict[str, Any], root: dict[str, Any]) -> list[dict[str, Any]]:
    node = _resolve(node, root)
    for combinator in ("anyOf", "oneOf"):
        if combinator in node:
            return [v for option in node[combinator] for v in _variants(option, root)]
    return [node]


def _type_of(node: dict[str, Any]) -> str:
    if "const" in node or "enum" in node:
        values = node.get("enum", [node.get("const")])
        if not values:
            return "any"
        return {"str": "string", "int": "integer", "float": "number", "bool": "boolean",
                "NoneType": "null"}.get(type(values[0]).__name__, "any")
    declared = node.get("type", "any")
    return "object" if declared == "object" or "properties" in node else declared


def _covers(new: dict[str, Any], old: dict[str, Any], path: str, old_root: dict[str, Any],
            new_root: dict[str, Any], problems: list[str]) -> None:
    """Report how ``new`` accepts less than ``old`` (both single variants of one type)."""
    if _type_of(new) == "integer" and _type_of(old) == "number":
        problems.append(f"{path}: type narrowed from number to integer")
    old_values = old.get("enum", [old["const"]] if "const" in old else None)
    new_values = new.get("enum", [new["const"]] if "const" in new else None)
    if new_values is not None:
        if old_values is None:
            problems.append(f"{path}: narrowed to fixed values {new_values}")
        elif missing := [v for v in old_values if v not in new_values]:
            problems.append(f"{path}: values no longer accepted: {missing}")
    for bound in _LOWER_BOUNDS:
        if bound in new and new[bound] > old.get(bound, float("-inf")):
            problems.append(f"{path}: {bound} raised to {new[bound]}")
    for bound in _UPPER_BOUNDS:
        if bound in new and new[bound] < old.get(bound, float("inf")):
            problems.append(f"{path}: {bound} lowered to {new[bound]}")
    if "pattern" in new and new.get("pattern") != old.get("pattern"):
        problems.append(f"{path}: pattern changed to {new['pattern']!r}")
    if _type_of(old) == "object":
        _compare_objects(old, new, path, old_root, new_root, problems)
    if _type_of(old) == "array" and "items" in old and "items" in new:
        _compare(old["items"], new["items"], f"{path}[]", old_root, new_root, problems)


def _compare_objects(old: dict[str, Any], new: dict[str, Any], path: str, old_root: dict[str, Any],
                     new_root: dict[str, Any], problems: list[str]) -> None:
    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    for name in old_props:
        if name not in new_props:
            problems.append(f"{path}.{name}: field removed")
    for name in set(new.get("required", [])) - set(old.get("required", [])):
        problems.append(f"{path}.{name}: new required field")
    for name in old_props.keys() & new_props.keys():
        _compare(old_props[name], new_props[name], f"{path}.{name}", old_root, new_root, problems)


def _compare(old: dict[str, Any], new: dict[str, Any], path: str, old_root: dict[str, Any],
             new_root: dict[str, Any], problems: list[str]) -> None:
    old_variants, new_variants = _variants(old, old_root), _variants(new, new_root)
    new_by_type: dict[str, dict[str, Any]] = {}
    for variant in new_variants:
        new_by_type.setdefault(_type_of(variant), variant)
    if "any" in new_by_type:
        return
    for variant in old_variants:
        kind = _type_of(variant)
        match = new_by_type.get(kind) or (new_by_type.get("number") if kind == "integer" else None)
        if match is None:
            problems.append(f"{path}: type {kind} no longer accepted")
            continue
        _covers(match, variant, path, old_root, new_root, problems)


def breaking_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Why ``new`` is not a backward-compatible evolution of ``old`` (empty if it is)."""
    problems: list[str] = []
    _compare(old, new, "$", old, new, problems)
    return sorted(set(problems))


# --- personal data (shopstream.personal) ---------------------------------------------------
def personal_fields(schema: dict[str, Any]) -> dict[str, tuple[str, bool]]:
    """Every field of an event schema marked ``x-personal``: path -> (kind, whether it is sealed)."""
    found: dict[str, tuple[str, bool]] = {}

    def walk(node: dict[str, Any], path: str, seen: frozenset[str]) -> None:
        if PERSONAL in node:  # beside a $ref (or an anyOf with null): the field itself, not what it refers to
            variants = [v for v in node.get("anyOf", [node]) if v.get("type") != "null"]
            sealed = all(str(v.get("$ref", "")).endswith("/Sealed") for v in variants)
            found[path] = (str(node[PERSONAL]), sealed)
            return
        if "$ref" in node:
            if node["$ref"] in seen:
                return
            seen = seen | {node["$ref"]}
        node = _resolve(node, schema)
        for option in node.get("anyOf", []) + node.get("oneOf", []):
            walk(option, path, seen)
        for name, child in node.get("properties", {}).items():
            walk(child, f"{path}.{name}", seen)
        if isinstance(node.get("items"), dict):
            walk(node["items"], f"{path}[]", seen)

    walk(schema.get("properties", {}).get("data", {}), "$.data", frozenset())
    return found


def personal_problems(committed: dict[str, dict[str, Any]], generated: dict[str, dict[str, Any]]) -> list[str]:
    """What the personal markers forbid: a field that was marked personal losing its mark, and the newest
    version of an event (what producers emit) carrying a personal field in clear."""
    problems = []
    for name, old in committed.items():
        if name in generated:
            marked = personal_fields(generated[name])
            problems += [f"{name}: {path} was marked personal ({kind}) and no longer is"
                         for path, (kind, _) in personal_fields(old).items() if path not in marked]
    newest: dict[str, tuple[int, str]] = {}
    for spec in catalog.EVENTS:
        version = int(spec.version[1:])
        if version > newest.get(spec.name, (0, ""))[0]:
            newest[spec.name] = (version, schema_file_name(spec.name, spec.version))
    for _, file_name in sorted(newest.values()):
        problems += [f"{file_name}: {path} ({kind}) is in clear in the newest version; seal it in a new version"
                     for path, (kind, sealed) in personal_fields(generated[file_name]).items() if not sealed]
    return problems


def compare_catalogs(committed: dict[str, dict[str, Any]],
                     generated: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """Breaking changes per schema file; a (type, version) that disappeared is breaking too."""
    report: dict[str, list[str]] = {}
    for name, old in committed.items():
        if name not in generated:
            report[name] = ["event type/version removed from the catalog"]
        elif problems := breaking_changes(old, generated[name]):
            report[name] = problems
    return report
