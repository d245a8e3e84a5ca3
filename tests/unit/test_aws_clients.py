"""Clients are made once per process; a reset (every test) makes new ones without parsing botocore's models again."""

from __future__ import annotations

from typing import Any, cast

from shopstream import aws


def test_a_reset_makes_new_clients_from_the_models_already_loaded():
    first = cast(Any, aws.client("dynamodb"))  # its private _loader is what this test is about
    loader = first._loader
    assert aws.client("dynamodb") is first
    paths = list(loader.search_paths)
    aws.reset_clients()
    second = cast(Any, aws.client("dynamodb"))
    assert second is not first
    assert second._loader is loader  # the parsed models are reused
    aws.reset_clients()
    aws.client("sqs")
    assert loader.search_paths == paths  # boto3's own path is not added again at each reset
