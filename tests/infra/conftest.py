"""Synthesize each environment once per test session (jsii start-up and synthesis are slow)."""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENVIRONMENTS = ("dev", "staging", "prod")


@dataclass
class Synthesized:
    name: str
    outdir: Path
    templates: dict[str, dict]  # stack name -> template
    regions: dict[str, str | None] = field(default_factory=dict)  # stack name -> region (None: agnostic)

    def stack(self, part: str) -> dict:
        return self.templates[f"shopstream-{self.name}-{part}"]

    def resources(self, resource_type: str, part: str | None = None):
        for stack_name, template in self.templates.items():
            if part and stack_name != f"shopstream-{self.name}-{part}":
                continue
            for logical_id, resource in template["Resources"].items():
                if resource["Type"] == resource_type:
                    yield stack_name, logical_id, resource


def cdk_context() -> dict:
    return json.loads((ROOT / "cdk.json").read_text())["context"]


def synthesize(name: str, outdir: Path, context_overrides: dict | None = None) -> Synthesized:
    import aws_cdk as cdk

    from stacks import app as shopstream_app
    from stacks.config import load

    context = cdk_context()
    environments = context["environments"]
    if context_overrides:
        environments = {**environments, name: {**environments[name], **context_overrides}}
    app = cdk.App(outdir=str(outdir), context={**context, "environments": environments})
    shopstream_app.build(app, load(environments, name))
    assembly = app.synth()  # raises if cdk-nag reports an unacknowledged finding
    templates = {stack.stack_name: stack.template for stack in assembly.stacks}
    regions = {stack.stack_name: None if stack.environment.region == "unknown-region" else stack.environment.region
               for stack in assembly.stacks}
    return Synthesized(name, outdir, templates, regions)


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory) -> dict[str, Synthesized]:
    from stacks.nag import ACKNOWLEDGED, Acknowledged

    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return {name: synthesize(name, tmp_path_factory.mktemp(f"cdk-{name}")) for name in ENVIRONMENTS}
    # Under pytest-xdist (`make test`) every worker has its own session: the first one to get here
    # synthesizes, the others read what it wrote (the templates are plain JSON).
    shared = tmp_path_factory.getbasetemp().parent / "cdk-synthesized"
    shared.mkdir(exist_ok=True)
    with open(shared / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = shared / "synthesized.json"
        if not done.exists():
            made = {name: synthesize(name, shared / f"cdk-{name}") for name in ENVIRONMENTS}
            done.write_text(json.dumps({
                "environments": {name: {"outdir": str(s.outdir), "templates": s.templates, "regions": s.regions}
                                 for name, s in made.items()},
                "acknowledged": [asdict(ack) for ack in ACKNOWLEDGED]}))  # what synthesis recorded
            return made
    written = json.loads(done.read_text())
    ACKNOWLEDGED.extend(Acknowledged(**ack) for ack in written["acknowledged"])
    return {name: Synthesized(name, Path(s["outdir"]), s["templates"], s["regions"])
            for name, s in written["environments"].items()}
