#!/usr/bin/env python3
"""CDK entry point of the delivery stacks (stacks/delivery.py), apart from the application's (app.py) so that
`make deploy` and the train never deploy the roles they run with. An administrator deploys them, once:

    npx cdk --app '.venv/bin/python delivery.py' deploy -c env=dev shopstream-github-oidc shopstream-dev-delivery

(the OIDC provider once per account: leave ``shopstream-github-oidc`` out where the account has it). docs/deploy.md.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
ROOT = Path(__file__).resolve().parent
sys.path[:0] = [str(ROOT / "layers" / "shopstream" / "python"), str(ROOT)]

import aws_cdk as cdk  # noqa: E402
from cdk_nag import AwsSolutionsChecks  # noqa: E402

from stacks import delivery  # noqa: E402
from stacks.config import ConfigError, load, load_delivery  # noqa: E402


def main() -> None:
    app = cdk.App()
    name = app.node.try_get_context("env") or "dev"
    try:
        config = load(app.node.try_get_context("environments"), name)
        settings = load_delivery({"delivery": app.node.try_get_context("delivery"),
                                  "environments": app.node.try_get_context("environments")})
    except ConfigError as error:
        sys.exit(f"shopstream: {error}")
    delivery.build(app, config, settings)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    app.synth()


if __name__ == "__main__":
    main()
