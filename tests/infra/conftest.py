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
# Replication (cdk.json `replication`) is off in every environment as shipped: AWS refuses a cluster created with
# the multi-VPC connectivity it needs, so it is turned on by a later deploy (docs/deploy.md). The suites also build
# these environments with it on, to this target; dev cannot replicate (t3 brokers, two of them: test_config.py).
REPLICATION = {"targetRegion": "eu-central-1",
               "targetAvailabilityZones": ["eu-central-1a", "eu-central-1b", "eu-central-1c"]}
REPLICATED_ENVIRONMENTS = ("staging", "prod")


def replicated(env: str) -> str:
    """The name of an environment's variant with replication on."""
    return f"{env}+replication"


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
    return _synthesize_once(tmp_path_factory, "synthesized", {name: (name, None) for name in ENVIRONMENTS})


@pytest.fixture(scope="session")
def synthesized_with_replication(tmp_path_factory) -> dict[str, Synthesized]:
    """Each of REPLICATED_ENVIRONMENTS with replication on, by its ``replicated(env)`` name."""
    return _synthesize_once(tmp_path_factory, "replicated", {
        replicated(name): (name, {"replication": REPLICATION}) for name in REPLICATED_ENVIRONMENTS})


def _synthesize_once(tmp_path_factory, key: str,
                     variants: dict[str, tuple[str, dict | None]]) -> dict[str, Synthesized]:
    """Synthesize each variant (name -> environment, context overrides) once per session."""
    from stacks.nag import ACKNOWLEDGED, Acknowledged

    def outdir(base: Path, name: str) -> Path:
        return base / f"cdk-{name.replace('+', '-')}"

    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return {name: synthesize(env, tmp_path_factory.mktemp(outdir(Path(), name).name), overrides)
                for name, (env, overrides) in variants.items()}
    # Under pytest-xdist (`make test`) every worker has its own session: the first one to get here
    # synthesizes, the others read what it wrote (the templates are plain JSON).
    shared = tmp_path_factory.getbasetemp().parent / "cdk-synthesized"
    shared.mkdir(exist_ok=True)
    with open(shared / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = shared / f"{key}.json"
        if not done.exists():
            made = {name: synthesize(env, outdir(shared, name), overrides)
                    for name, (env, overrides) in variants.items()}
            done.write_text(json.dumps({
                "environments": {name: {"env": s.name, "outdir": str(s.outdir), "templates": s.templates,
                                        "regions": s.regions} for name, s in made.items()},
                "acknowledged": [asdict(ack) for ack in ACKNOWLEDGED]}))  # what synthesis recorded
            return made
    written = json.loads(done.read_text())
    known = set(ACKNOWLEDGED)
    ACKNOWLEDGED.extend(ack for ack in (Acknowledged(**a) for a in written["acknowledged"]) if ack not in known)
    return {name: Synthesized(s["env"], Path(s["outdir"]), s["templates"], s["regions"])
            for name, s in written["environments"].items()}
