"""boto3 clients created on first use and reused for the life of the process.

Endpoints follow boto3's own configuration (AWS_ENDPOINT_URL points them at the local
moto server), so nothing here knows whether it runs on AWS or on a laptop.
"""

from __future__ import annotations

import threading
from functools import cache
from typing import TYPE_CHECKING, Any, Literal, overload

if TYPE_CHECKING:  # types-boto3's stubs (a development requirement): each service's client typed
    from types_boto3_cloudformation.client import CloudFormationClient
    from types_boto3_cognito_idp.client import CognitoIdentityProviderClient
    from types_boto3_dynamodb.client import DynamoDBClient
    from types_boto3_dynamodbstreams.client import DynamoDBStreamsClient
    from types_boto3_kms.client import KMSClient
    from types_boto3_lambda.client import LambdaClient
    from types_boto3_s3.client import S3Client
    from types_boto3_sesv2.client import SESV2Client
    from types_boto3_sqs.client import SQSClient
    from types_boto3_sts.client import STSClient

# boto3 and botocore's session (~105-120 ms on a function's init) are imported by the first client, not with this
# module: the functions import it at init and make no client there (nor in an invocation that calls no AWS API).

_lock = threading.Lock()


_models: Any = None  # botocore's loader of service models, kept across reset_clients()


@cache
def _session() -> Any:
    import boto3
    import botocore.session

    # One session for every client: each new session would load botocore's models again. The
    # loader (files of botocore, read-only once parsed) also outlives a reset: tests start each one
    # with fresh clients and would otherwise parse the same JSON models every time.
    global _models
    core = botocore.session.get_session()
    if _models is not None:
        core.register_component("data_loader", _models)
    session = boto3.session.Session(botocore_session=core)
    _models = core.get_component("data_loader")
    _models.search_paths[:] = dict.fromkeys(_models.search_paths)  # boto3 adds its path each time
    return session


@cache
def _client(service_name: str) -> Any:
    return _session().client(service_name)


@overload
def client(service_name: Literal["dynamodb"]) -> DynamoDBClient: ...
@overload
def client(service_name: Literal["dynamodbstreams"]) -> DynamoDBStreamsClient: ...
@overload
def client(service_name: Literal["sqs"]) -> SQSClient: ...
@overload
def client(service_name: Literal["s3"]) -> S3Client: ...
@overload
def client(service_name: Literal["kms"]) -> KMSClient: ...
@overload
def client(service_name: Literal["sts"]) -> STSClient: ...
@overload
def client(service_name: Literal["cognito-idp"]) -> CognitoIdentityProviderClient: ...
@overload
def client(service_name: Literal["cloudformation"]) -> CloudFormationClient: ...
@overload
def client(service_name: Literal["lambda"]) -> LambdaClient: ...
@overload
def client(service_name: Literal["sesv2"]) -> SESV2Client: ...
@overload
def client(service_name: str) -> Any: ...  # a name known only at run time (the operator's commands)
def client(service_name: str) -> Any:
    with _lock:  # creating clients from one session is not thread-safe; using them is
        return _client(service_name)


def reset_clients() -> None:
    with _lock:
        _client.cache_clear()
        _session.cache_clear()


def credentials() -> Any:
    """The process's AWS credentials (botocore's, refreshed as it refreshes them): what signs a request
    made outside a client (OTLP spans to X-Ray, shopstream.spans)."""
    return _session().get_credentials()
