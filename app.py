#!/usr/bin/env python3
"""CDK entry point: ``cdk synth -c env=dev|staging|prod`` (default dev)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
ROOT = Path(__file__).resolve().parent
sys.path[:0] = [str(ROOT / "layers" / "shopstream" / "python"), str(ROOT)]

import aws_cdk as cdk  # noqa: E402

from stacks import app as shopstream_app  # noqa: E402
from stacks.config import ConfigError, load  # noqa: E402


def main() -> None:
    app = cdk.App()
    name = app.node.try_get_context("env") or "dev"
    try:
        config = load(app.node.try_get_context("environments"), name)
    except ConfigError as error:
        sys.exit(f"shopstream: {error}")
    shopstream_app.build(app, config)
    app.synth()


if __name__ == "__main__":
    main()
