"""Generate (or check) the files derived from the catalog: schemas/*.json, docs/events.md, docs/openapi.json and
docs/asyncapi.yaml (the topics' contract, tools/asyncapi.py).

    python -m tools.generate           write them
    python -m tools.generate --check   fail on drift or on a backward-incompatible change
    python -m tools.generate --narrow "why no stored event can violate the new bounds"
                                       write them although existing versions get tighter bounds
                                       (never a removed field, a new required field or a lost type);
                                       the reason and every narrowing are logged in docs/decisions.md
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from shopstream import catalog, names
from shopstream.schemas import all_schemas, compare_catalogs, personal_fields, personal_problems, schema_file_name
from tools import asyncapi

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS_DIR = ROOT / "schemas"
EVENTS_DOC = ROOT / "docs" / "events.md"
OPENAPI_DOC = ROOT / "docs" / "openapi.json"
ASYNCAPI_DOC = asyncapi.ASYNCAPI_DOC


def dump(schema: dict) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def committed_schemas(directory: Path = SCHEMAS_DIR) -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in sorted(directory.glob("*.json"))}


def _fields(model) -> str:
    schema = model.model_json_schema(by_alias=True)
    required = set(schema.get("required", []))
    return ", ".join(f"`{n}`" if n in required else f"`{n}?`" for n in schema.get("properties", {}))


def _personal(schemas: dict[str, dict], spec: catalog.EventSpec) -> str:
    fields = personal_fields(schemas[schema_file_name(spec.name, spec.version)])
    return ", ".join(f"`{path.removeprefix('$.data.')}` ({kind}, {'sealed' if sealed else 'in clear'})"
                     for path, (kind, sealed) in fields.items()) or "—"


def events_markdown() -> str:
    schemas = all_schemas()
    lines = [
        "# Event catalog",
        "",
        "Generated from `layers/shopstream/python/shopstream/catalog.py` by `make generate`;",
        "a test fails when this file and the code disagree. Do not edit by hand.",
        "",
        "Every record's value is the JSON envelope (`eventId`, `eventType`, `eventVersion`, `timestamp`,",
        "`source`, `correlationId`, `causationId`, `data`, `metadata{userId, sessionId}`); its key is the",
        "aggregate id named below; its headers are `eventType`, `eventVersion` and `correlationId`.",
        "JSON Schemas: `schemas/<EventType>.<version>.json`. `field?` marks an optional field. The same contract as",
        "AsyncAPI 3.0 (channels, messages with these schemas, each service's operations and consumer groups):",
        "docs/asyncapi.yaml, generated with this file; the console renders it at `/console/asyncapi`.",
        "",
        "Personal data: a field marked `x-personal` in its schema (`personal(kind)` in the model) holds a",
        "customer's e-mail address, name or postal address. Producers emit the newest version of each event,",
        "where every such field is sealed for the customer (`shopstream.personal.Sealed`: readable only with",
        "the customer's key, which erasure destroys); older versions with the field in clear are still",
        "accepted. `make generate` refuses a newest version with a personal field in clear and a field that",
        "loses its mark. Where each personal field is kept, for how long, and how erasure reaches it:",
        "docs/data-map.md.",
        "",
        "## Topics",
        "",
        "| topic | partitions | retention (days) | what flows there |",
        "|---|---|---|---|",
    ]
    for t in catalog.TOPICS:
        lines.append(f"| `{t.name}` | {t.partitions} | {t.retention.days} | {t.description} |")
    for t in catalog.TOPICS:
        lines += ["", f"## {t.name}", "",
                  "| event | version | key | producers | consumers | data fields | personal data |",
                  "|---|---|---|---|---|---|---|"]
        for e in (e for e in catalog.EVENTS if e.topic == t.name):
            producers = ", ".join(catalog.producers_of(e.name)) or "—"
            consumers = ", ".join(catalog.consumers_of(e.name)) or "—"
            if e.version != catalog.latest(e.name).version:
                producers = f"— (accepted; {catalog.latest(e.name).version} is produced)"
            lines.append(f"| {e.name} | {e.version} | `{e.key_field}` | {producers} | {consumers} "
                         f"| {_fields(e.model)} | {_personal(schemas, e)} |")
    lines += ["", "## Handlers (one consumer group each: `<service>-<handler>`)", "",
              "| service | handler | topic | event types | batch size | window (s) |", "|---|---|---|---|---|---|"]
    for s in catalog.SERVICES:
        for h in s.handlers:
            lines.append(f"| {s.name} | {h.name} | `{h.topic}` | {', '.join(h.event_types)} | "
                         f"{h.batch_size} | {h.max_batching_window_seconds} |")
    return "\n".join(lines) + "\n"


def openapi_document() -> dict:
    """Every service's routes merged into one document (what API Gateway serves)."""
    import importlib

    merged: dict = {"openapi": "3.1.0", "info": {"title": "shopstream API", "version": "1.0.0",
                    "description": "JWT bearer auth (Cognito); X-Correlation-Id on every response."},
                    "paths": {}, "components": {"schemas": {}}}
    for spec in catalog.SERVICES:
        if not spec.routes:
            continue
        document = importlib.import_module(f"{spec.name}.{names.API_MODULE}").service_api.openapi()
        for path, operations in document.get("paths", {}).items():
            for method, operation in operations.items():
                operation["tags"] = [spec.name]
                merged["paths"].setdefault(path, {})[method] = operation
        for name, schema in document.get("components", {}).get("schemas", {}).items():
            known = merged["components"]["schemas"].setdefault(name, schema)
            if known != schema:
                raise SystemExit(f"schema {name} differs between services; rename one")
    merged["paths"] = dict(sorted(merged["paths"].items()))
    merged["components"]["schemas"] = dict(sorted(merged["components"]["schemas"].items()))
    return merged


def check() -> list[str]:
    problems: list[str] = []
    generated = all_schemas()
    committed = committed_schemas()
    for name, reasons in compare_catalogs(committed, generated).items():
        problems += [f"schemas/{name}: BREAKING: {r}" for r in reasons]
    problems += [f"schemas/{p}" for p in personal_problems(committed, generated)]
    for name, schema in generated.items():
        if committed.get(name) != json.loads(dump(schema)):
            problems.append(f"schemas/{name}: out of date (run `make generate`)")
    if not EVENTS_DOC.exists() or EVENTS_DOC.read_text() != events_markdown():
        problems.append("docs/events.md: out of date (run `make generate`)")
    if not OPENAPI_DOC.exists() or json.loads(OPENAPI_DOC.read_text()) != openapi_document():
        problems.append("docs/openapi.json: out of date (run `make generate`)")
    if not ASYNCAPI_DOC.exists() or ASYNCAPI_DOC.read_text() != asyncapi.yaml_text():
        problems.append("docs/asyncapi.yaml: out of date (run `make generate`)")
    return problems


NARROWINGS = ("lowered to", "raised to", "pattern changed", "values no longer accepted", "narrowed to fixed values")


def _narrowing(problem: str) -> bool:
    return any(marker in problem for marker in NARROWINGS)


def _log_narrowings(reason: str, breaking: dict[str, list[str]]) -> None:
    from datetime import date

    kinds = sorted({p.split(": ", 1)[0] + ": " + p.split(": ", 1)[1] for ps in breaking.values() for p in ps})
    paths = sorted({k.split(": ")[0] for k in kinds})
    title = "bounds tightened on existing event versions (`make generate --narrow`)"
    entry = [f"\n## {date.today().isoformat()} — {title}",
             "", reason, "",
             f"{sum(len(v) for v in breaking.values())} narrowings in {len(breaking)} schemas, on these fields: "
             + ", ".join(f"`{p}`" for p in paths) + "."]
    with (ROOT / "docs" / "decisions.md").open("a") as log:
        log.write("\n".join(entry) + "\n")


def write(narrow_reason: str | None = None) -> None:
    SCHEMAS_DIR.mkdir(exist_ok=True)
    breaking = compare_catalogs(committed_schemas(), all_schemas())
    if breaking and narrow_reason and all(_narrowing(p) for ps in breaking.values() for p in ps):
        _log_narrowings(narrow_reason, breaking)
        breaking = {}
    if breaking:
        for name, reasons in breaking.items():
            print(f"refusing: {name} would break consumers: {reasons}", file=sys.stderr)
        print("a breaking change needs a new eventVersion with its own model", file=sys.stderr)
        raise SystemExit(1)
    if personal := personal_problems(committed_schemas(), all_schemas()):
        for problem in personal:
            print(f"refusing: {problem}", file=sys.stderr)
        raise SystemExit(1)
    for name, schema in all_schemas().items():
        (SCHEMAS_DIR / name).write_text(dump(schema))
    EVENTS_DOC.write_text(events_markdown())
    OPENAPI_DOC.write_text(json.dumps(openapi_document(), indent=2) + "\n")
    ASYNCAPI_DOC.write_text(asyncapi.yaml_text())
    print(f"wrote {len(all_schemas())} schemas, {EVENTS_DOC.relative_to(ROOT)}, {OPENAPI_DOC.relative_to(ROOT)} and "
          f"{ASYNCAPI_DOC.relative_to(ROOT)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--narrow", metavar="REASON", help="accept tighter bounds on existing versions, logged")
    args = parser.parse_args()
    if args.check:
        problems = check()
        for p in problems:
            print(p, file=sys.stderr)
        raise SystemExit(1 if problems else 0)
    write(args.narrow)


if __name__ == "__main__":
    main()
