"""A service's synchronous entry point: one function behind the HTTP API's routes from the catalog."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from shopstream import long_poll, names
from stacks.service.functions import ServiceFunctions

API_FUNCTION_TIMEOUT_SECONDS = 10


def add_api(scope: Construct, functions: ServiceFunctions) -> None:
    spec, platform = functions.spec, functions.platform
    # A long-poll route waits up to long_poll.MAX_TIMEOUT_SECONDS and answers before its function's timeout,
    # which stays under the integration's (API Gateway answers 503 when an integration takes longer).
    long_polls = any(route.long_poll for route in spec.routes)
    timeout = long_poll.LONG_POLL_FUNCTION_TIMEOUT_SECONDS if long_polls else API_FUNCTION_TIMEOUT_SECONDS
    function = functions.create(names.API_FUNCTION, functions.entry_point(names.API_MODULE, spec.api_entry), kind="api",
                                environment=functions.environment(api=True), timeout=cdk.Duration.seconds(timeout),
                                snap_start=True)
    functions.allow_table(function)
    functions.allow_needed(function, spec.api_needs)  # the customer key store, the sign-in identities
    if spec.takes_idempotency_keys:  # Idempotency-Key on creating POSTs: responses kept, bodies fingerprinted
        functions.allow_idempotency(function)
        functions.allow_request_fingerprints(function)
    # SnapStart applies to published versions: the routes call the alias of the current one.
    live = lambda_.Alias(scope, "ApiLive", alias_name="live", version=function.current_version)
    integration = integrations.HttpLambdaIntegration(
        "Integration", live, timeout=cdk.Duration.seconds(long_poll.INTEGRATION_TIMEOUT_SECONDS))
    for route in spec.routes:
        apigwv2.HttpRoute(
            scope, f"Route{route.method}{route.path}".replace("/", "_").replace("{", "").replace("}", ""),
            http_api=platform.api,
            route_key=apigwv2.HttpRouteKey.with_(route.path, apigwv2.HttpMethod(route.method)),
            integration=integration,
            authorizer=None if route.public else platform.authorizer,
        )
