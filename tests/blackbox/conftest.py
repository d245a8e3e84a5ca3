"""The deployment the black-box suite drives (tests/blackbox/deployments.py): `make e2e ENV=<env>` or
`API_URL=<url>` choose one; without either, a `make local` is started for the run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.blackbox import deployments


@pytest.fixture(scope="session")
def deployment(tmp_path_factory):
    environment = os.environ.get(deployments.ENV_VARIABLE)
    api_url = os.environ.get(deployments.API_URL_VARIABLE)
    if environment:
        if not deployments.has_aws_credentials():
            reason = f"no AWS credentials: the black-box suite cannot reach the {environment} environment"
            if os.environ.get("CI"):  # the train's check after a deploy must not pass by not running
                pytest.fail(reason)
            pytest.skip(reason)
        chosen = deployments.aws_deployment(environment)
        try:
            yield chosen
        finally:
            chosen.clean_up()
    elif api_url:
        chosen = deployments.running_local(api_url, Path(".local") / "jwt-secret")
        try:
            yield chosen
        finally:
            chosen.clean_up()
    else:
        with deployments.started_local(tmp_path_factory.mktemp("blackbox")) as chosen:
            yield chosen
