"""What changed between two synthesized cloud assemblies, stack by stack, like ``cdk diff``.

    python -m tools.template_diff BEFORE_DIR AFTER_DIR

Resources are compared by logical id; asset hashes (code bundles, their S3 keys) and CDK metadata
are left out, so a restructuring that changes no resource prints nothing but "no change".
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

_ASSET = re.compile(r"[0-9a-f]{64}(\.zip)?")


def _templates(directory: Path) -> dict[str, dict[str, Any]]:
    return {p.name.removesuffix(".template.json"): json.loads(p.read_text())
            for p in sorted(directory.glob("*.template.json"))}


def _normal(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items() if k not in ("Metadata",)}
    if isinstance(value, list):
        return [_normal(v) for v in value]
    if isinstance(value, str):
        return _ASSET.sub("<asset>", value)
    return value


def _changed_paths(before: Any, after: Any, path: str = "") -> list[str]:
    if type(before) is not type(after):
        return [path or "."]
    if isinstance(before, dict):
        out: list[str] = []
        for key in sorted(set(before) | set(after)):
            if key not in before or key not in after:
                out.append(f"{path}.{key}")
            else:
                out += _changed_paths(before[key], after[key], f"{path}.{key}")
        return out
    if isinstance(before, list):
        if len(before) != len(after):
            return [path]
        return [p for i, (b, a) in enumerate(zip(before, after, strict=True))
                for p in _changed_paths(b, a, f"{path}[{i}]")]
    return [] if before == after else [path]


def diff(before_dir: Path, after_dir: Path) -> list[str]:
    lines: list[str] = []
    before, after = _templates(before_dir), _templates(after_dir)
    for stack in sorted(set(before) | set(after)):
        if stack not in after:
            lines.append(f"{stack}: stack removed")
            continue
        if stack not in before:
            lines.append(f"{stack}: stack added")
            continue
        for section in ("Resources", "Outputs", "Parameters", "Conditions"):
            old, new = before[stack].get(section, {}), after[stack].get(section, {})
            for logical_id in sorted(set(old) | set(new)):
                kind = (new.get(logical_id) or old.get(logical_id) or {}).get("Type", section[:-1])
                if logical_id not in new:
                    lines.append(f"{stack}: [-] {kind} {logical_id}")
                elif logical_id not in old:
                    lines.append(f"{stack}: [+] {kind} {logical_id}")
                else:
                    changed = _changed_paths(_normal(old[logical_id]), _normal(new[logical_id]))
                    if changed:
                        lines.append(f"{stack}: [~] {kind} {logical_id}: {', '.join(changed[:6])}"
                                     f"{' ...' if len(changed) > 6 else ''}")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    args = parser.parse_args()
    lines = diff(args.before, args.after)
    print("\n".join(lines) if lines else "no change")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
