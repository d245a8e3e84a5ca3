"""Deploy readiness: every environment's templates against AWS rules that cfn-lint and cdk-nag do not
know (tests/infra/readiness.py, each rule citing its AWS documentation), and each rule shown to fire
on a deep copy of the templates broken in the way it guards against."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable

import pytest

from stacks.config import load
from tests.infra.code_calls import CodeIndex, calls_of
from tests.infra.conftest import ENVIRONMENTS, cdk_context
from tests.infra.readiness import RULES, Deployment, check, render


@pytest.fixture(scope="session")
def deployments(synthesized) -> dict[str, Deployment]:
    return {env: Deployment(env, s.templates, s.regions) for env, s in synthesized.items()}


@pytest.mark.parametrize("rule", sorted(RULES))
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_environment_meets_every_rule(deployments, env, rule):
    assert check(deployments[env], rule) == []


# --- the code analysis the reachability rule relies on -------------------------------------------------------
def test_the_code_analysis_finds_what_each_kind_of_function_calls():
    index = CodeIndex()
    notices = calls_of("notification.consumers.order_notices", index)
    assert {"sesv2", "sqs", "dynamodb"} <= notices.aws and not notices.kafka  # e-mail, DLQ, table + idempotency
    assert "s3" in calls_of("audit.consumers.trail_order", index).aws  # the archive
    relay = calls_of("shopstream.outbox.relay_handler", index)
    assert relay.kafka and not relay.aws  # produces to MSK, calls no AWS API itself
    api = calls_of("order.api.handler", index)
    assert "dynamodb" in api.aws and not api.kafka
    assert calls_of("index.handler", index) is None  # not this repository's code


def test_the_code_analysis_follows_what_runs_not_what_is_merely_defined(tmp_path, monkeypatch):
    from tests.infra import code_calls

    package = tmp_path / "svc"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "clients.py").write_text(
        "import boto3\n"
        "def kms():\n    return boto3.client('kms')\n"
        "def never_called():\n    return boto3.client('secretsmanager')\n"
        "class Sender:\n    def send(self):\n        return boto3.client('sns')\n"
        "    def unused(self):\n        return boto3.client('sqs')\n"
        "def dynamic(name):\n    return boto3.client(name)\n")
    (package / "handlers.py").write_text(
        "from . import clients\n"
        "from .clients import Sender\n"
        "class Entry:\n    def __call__(self, event, context):\n        clients.kms()\n        Sender().send()\n"
        "handler = Entry()\n"
        "def other(event, context):\n    return clients.dynamic('s3')\n")
    monkeypatch.setattr(code_calls, "SOURCE_ROOTS", (tmp_path,))
    assert calls_of("svc.handlers.handler", CodeIndex()) == code_calls.Calls(frozenset({"kms", "sns"}), False)
    other = calls_of("svc.handlers.other", CodeIndex())
    assert other.aws == frozenset() and other.unresolved == ("svc.clients:12",)


def test_every_function_of_ours_is_analysed_and_names_its_services_literally(deployments):
    """A client made from a variable service name (outside shopstream.aws) would hide a call."""
    index = CodeIndex()
    for _, logical_id, function in deployments["dev"].resources("AWS::Lambda::Function"):
        if logical_id.startswith("Service"):
            calls = calls_of(function["Properties"]["Handler"], index)
            assert calls is not None and calls.unresolved == (), (logical_id, calls)


# --- each rule fires on a template broken the way it guards against --------------------------------------------
def _first(deployment: Deployment, kind: str, prefix: str = "", stack_part: str = "") -> tuple[str, str, dict]:
    for stack, logical_id, resource in deployment.resources(kind):
        if logical_id.startswith(prefix) and stack.endswith(stack_part):
            return stack, logical_id, resource
    raise LookupError((kind, prefix, stack_part))


def _agnostic(d: Deployment) -> None:
    d.regions[next(iter(d.regions))] = None
    _, _, subnet = _first(d, "AWS::EC2::Subnet")
    subnet["Properties"]["AvailabilityZone"] = {"Fn::Select": [0, {"Fn::GetAZs": ""}]}


def _two_subnets_for_three_brokers(d: Deployment) -> None:
    _, _, cluster = _first(d, "AWS::MSK::Cluster")
    cluster["Properties"]["NumberOfBrokerNodes"] = 3
    cluster["Properties"]["BrokerNodeGroupInfo"]["ClientSubnets"].pop()


def _three_brokers_in_dev(d: Deployment) -> None:
    _, _, cluster = _first(d, "AWS::MSK::Cluster")
    cluster["Properties"]["NumberOfBrokerNodes"] = 3


def _export_the_layer_version(d: Deployment) -> None:
    """What the platform stack did before: the layer ARN exported, imported by a service."""
    platform, layer_id, _ = _first(d, "AWS::Lambda::LayerVersion")
    name = f"{platform}:ExportsOutputRef{layer_id}"
    d.templates[platform]["Outputs"]["LayerExport"] = {"Value": {"Ref": layer_id}, "Export": {"Name": name}}
    _, _, function = _first(d, "AWS::Lambda::Function", "ServiceApi", "-order")
    function["Properties"]["Layers"] = [{"Fn::ImportValue": name}]


def _notifications_in_the_vpc(d: Deployment) -> None:
    _, _, relay = _first(d, "AWS::Lambda::Function", "ServiceRelay", "-notification")
    _, _, notices = _first(d, "AWS::Lambda::Function", "ServiceOrderNotices", "-notification")
    notices["Properties"]["VpcConfig"] = copy.deepcopy(relay["Properties"]["VpcConfig"])


def _relay_out_of_the_vpc(d: Deployment) -> None:
    _, _, relay = _first(d, "AWS::Lambda::Function", "ServiceRelay", "-order")
    del relay["Properties"]["VpcConfig"]


def _on_demand_pollers(d: Deployment) -> None:
    _, _, mapping = _first(d, "AWS::Lambda::EventSourceMapping", "ServiceOrderReservations", "-inventory")
    del mapping["Properties"]["ProvisionedPollerConfig"]


def _pollers_shut_out(d: Deployment) -> None:
    """The cluster's security group no longer admits itself (the pollers use it)."""
    for stack, logical_id, rule in list(d.resources("AWS::EC2::SecurityGroupIngress")):
        if rule["Properties"].get("SourceSecurityGroupId") == rule["Properties"]["GroupId"]:
            del d.templates[stack]["Resources"][logical_id]


def _without_describe_dynamic_configuration(d: Deployment) -> None:
    for _, _, policy in d.resources("AWS::IAM::Policy"):
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            statement["Action"] = [a for a in actions if a != "kafka-cluster:DescribeClusterDynamicConfiguration"]


def _topic_read_on_another_topic(d: Deployment) -> None:
    for _, _, policy in d.resources("AWS::IAM::Policy"):
        text = json.dumps(policy).replace('/order-events"', '/cart-events"')
        policy.update(json.loads(text))


def _traced_consumer(d: Deployment) -> None:
    _, _, consumer = _first(d, "AWS::Lambda::Function", "ServiceOrderPayments", "-payment")
    consumer["Properties"]["TracingConfig"] = {"Mode": "Active"}


def _fifteen_minute_consumer(d: Deployment) -> None:
    _, _, consumer = _first(d, "AWS::Lambda::Function", "ServiceOrderPayments", "-payment")
    consumer["Properties"]["Timeout"] = 900


def _sweeper_without_destination(d: Deployment) -> None:
    stack, logical_id, _ = _first(d, "AWS::Lambda::EventInvokeConfig", "ServiceSweepSagaTimeouts", "-order")
    del d.templates[stack]["Resources"][logical_id]


def _sweeper_may_not_send(d: Deployment) -> None:
    for _, logical_id, policy in d.resources("AWS::IAM::Policy"):
        if logical_id.startswith("ServiceSweepAbandonedCarts"):
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                statement["Action"] = [a for a in actions if a != "sqs:SendMessage"] or ["sqs:GetQueueAttributes"]


def _long_function_name(d: Deployment) -> None:
    _, _, function = _first(d, "AWS::Lambda::Function", "ServiceApi", "-order")
    function["Properties"]["FunctionName"] = "shopstream-" + "x" * 54


def _long_queue_name(d: Deployment) -> None:
    _, _, queue = _first(d, "AWS::SQS::Queue")
    queue["Properties"]["QueueName"] = "q" * 81


def _five_hundred_and_one_resources(d: Deployment) -> None:
    stack = next(s for s in d.templates if s.endswith("-order"))
    resources = d.templates[stack]["Resources"]
    for i in range(501 - len(resources)):
        resources[f"Padding{i}"] = {"Type": "AWS::CloudFormation::WaitConditionHandle"}


def _two_hundred_and_one_outputs(d: Deployment) -> None:
    stack = next(s for s in d.templates if s.endswith("-order"))
    d.templates[stack]["Outputs"] = {f"Out{i}": {"Value": str(i)} for i in range(201)}


def _megabyte_template(d: Deployment) -> None:
    stack = next(s for s in d.templates if s.endswith("-order"))
    d.templates[stack]["Metadata"] = {"Padding": "x" * 1_000_001}


def _rest_api_log_variable(d: Deployment) -> None:
    _, _, stage = _first(d, "AWS::ApiGatewayV2::Stage")
    settings = stage["Properties"]["AccessLogSettings"]
    settings["Format"] = settings["Format"].replace("$context.routeKey", "$context.resourcePath")


def _locked_dev_archive(d: Deployment) -> None:
    _, _, bucket = _first(d, "AWS::S3::Bucket", "AuditArchive6")
    bucket["Properties"]["ObjectLockEnabled"] = True


def _dev_archive_never_emptied(d: Deployment) -> None:
    for stack, logical_id, _ in list(d.resources("Custom::S3AutoDeleteObjects")):
        del d.templates[stack]["Resources"][logical_id]


def _key_policy(d: Deployment, key_prefix: str) -> list[dict]:
    _, _, key = _first(d, "AWS::KMS::Key", key_prefix)
    return key["Properties"]["KeyPolicy"]["Statement"]


def _statement(d: Deployment, key_prefix: str, sid: str) -> dict:
    return next(s for s in _key_policy(d, key_prefix) if s.get("Sid") == sid)


def _customer_data_key_as_before(d: Deployment) -> None:
    """The key policy of issue 21: the account's statement alone, nothing denied."""
    statements = _key_policy(d, "CustomerDataKey")
    statements[:] = [s for s in statements if s["Effect"] != "Deny"]


def _archive_key_as_before(d: Deployment) -> None:
    statements = _key_policy(d, "AuditArchiveKey")
    statements[:] = [s for s in statements if s["Effect"] != "Deny"]


def _every_role_exempted(d: Deployment) -> None:
    _statement(d, "CustomerDataKey", "OnlyBreakGlassMayDisableOrDelete")["Condition"] = {
        "ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/*"}}


def _cloudformation_may_delete_a_retained_key(d: Deployment) -> None:
    """dev's exemption (CloudFormation deletes dev's keys) in a retained environment."""
    exempted = _statement(d, "CustomerDataKey", "OnlyBreakGlassMayDisableOrDelete")["Condition"]["ArnNotEquals"]
    exempted["aws:PrincipalArn"].append(
        {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/cdk-hnb659fds-cfn-exec-role-"
                    "${AWS::AccountId}-eu-west-1"})


def _put_key_policy_denied_too(d: Deployment) -> None:
    _statement(d, "CustomerDataKey", "OnlyBreakGlassMayDisableOrDelete")["Action"].append("kms:PutKeyPolicy")


def _seven_day_deletion_window(d: Deployment) -> None:
    _, _, key = _first(d, "AWS::KMS::Key", "CustomerDataKey")
    key["Properties"]["PendingWindowInDays"] = 7


def _any_deletion_window_allowed(d: Deployment) -> None:
    statements = _key_policy(d, "AuditArchiveKey")
    statements[:] = [s for s in statements if s.get("Sid") != "DeletionWaitsThirtyDays"]


# (rule, environment, how to break it, what the rule must say)
def _mapping_without_list_bucket(d: Deployment) -> None:
    for _, logical_id, policy in d.resources("AWS::IAM::Policy"):
        if logical_id.startswith("ServiceOrderPayments"):
            policy["Properties"]["PolicyDocument"]["Statement"] = [
                s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Action"] != "s3:ListBucket"]


def _without_the_s3_endpoint(d: Deployment) -> None:
    stack, logical_id, _ = _first(d, "AWS::EC2::VPCEndpoint", "VpcS3")
    del d.templates[stack]["Resources"][logical_id]


def _mapping_gives_up_offsets_only(d: Deployment) -> None:
    stack, _, mapping = _first(d, "AWS::Lambda::EventSourceMapping", "ServiceOrderPayments", "-payment")
    queue = next(lid for lid in d.templates[stack]["Resources"] if lid.startswith("ServiceOrderPaymentsDlq")
                 and d.templates[stack]["Resources"][lid]["Type"] == "AWS::SQS::Queue")
    mapping["Properties"]["DestinationConfig"]["OnFailure"]["Destination"] = {"Fn::GetAtt": [queue, "Arn"]}


def _failed_batches_expire_in_a_week(d: Deployment) -> None:
    _, _, bucket = _first(d, "AWS::S3::Bucket", "ServiceFailedBatches", "-inventory")
    for lifecycle in bucket["Properties"]["LifecycleConfiguration"]["Rules"]:
        lifecycle["ExpirationInDays"] = 7


def _relay_batch_unannounced(d: Deployment) -> None:
    for stack, _, notifications in d.resources("Custom::S3BucketNotifications"):
        if stack.endswith("-order"):
            configuration = notifications["Properties"]["NotificationConfiguration"]
            configuration["QueueConfigurations"] = [q for q in configuration["QueueConfigurations"]
                                                    if "RelayMapping" not in json.dumps(q)]


def _outbox_outlived_by_its_dead_letter(d: Deployment) -> None:
    _, _, mapping = _first(d, "AWS::Lambda::EventSourceMapping", "ServiceRelayMapping", "-order")
    mapping["Properties"]["MaximumRecordAgeInSeconds"] = 604800  # a week of retries, then two in the queue


MUTATIONS: list[tuple[str, str, Callable[[Deployment], None], str]] = [
    ("environment_is_pinned", "prod", _agnostic, "environment-agnostic"),
    ("environment_is_pinned", "prod", _agnostic, "is not a literal AZ"),
    ("msk_brokers_spread_evenly_over_client_subnets", "prod", _two_subnets_for_three_brokers,
     "3 brokers on 2 client subnets"),
    ("msk_brokers_spread_evenly_over_client_subnets", "dev", _three_brokers_in_dev, "3 brokers on 2 client subnets"),
    ("no_import_of_a_value_that_changes_between_deploys", "prod", _export_the_layer_version,
     "AWS::Lambda::LayerVersion"),
    ("every_api_a_function_calls_is_reachable_from_where_it_runs", "prod", _notifications_in_the_vpc,
     "calls sesv2 from the VPC"),
    ("every_api_a_function_calls_is_reachable_from_where_it_runs", "prod", _relay_out_of_the_vpc,
     "connects to the MSK brokers but does not run in the VPC"),
    ("every_api_a_function_calls_is_reachable_from_where_it_runs", "dev", _on_demand_pollers,
     "calls lambda from the VPC"),
    ("every_api_a_function_calls_is_reachable_from_where_it_runs", "dev", _pollers_shut_out,
     "does not admit itself on 9098"),
    ("every_msk_mapping_role_has_the_documented_actions", "prod", _without_describe_dynamic_configuration,
     "lacks kafka-cluster:DescribeClusterDynamicConfiguration on the cluster"),
    ("every_msk_mapping_role_has_the_documented_actions", "dev", _topic_read_on_another_topic,
     "lacks kafka-cluster:ReadData on the topic"),
    ("every_msk_mapping_role_has_the_documented_actions", "staging", _mapping_without_list_bucket,
     "lacks s3:ListBucket on its on-failure destination"),
    ("every_api_a_function_calls_is_reachable_from_where_it_runs", "prod", _without_the_s3_endpoint,
     "(MSK pollers) calls s3 from the VPC"),
    ("every_given_up_batch_is_announced_and_outlives_its_dead_letter", "prod", _mapping_gives_up_offsets_only,
     "which keeps no records"),
    ("every_given_up_batch_is_announced_and_outlives_its_dead_letter", "dev", _failed_batches_expire_in_a_week,
     "expire after 7 days"),
    ("every_given_up_batch_is_announced_and_outlives_its_dead_letter", "staging", _relay_batch_unannounced,
     "nothing announces its given-up batches"),
    ("every_given_up_batch_is_announced_and_outlives_its_dead_letter", "prod", _outbox_outlived_by_its_dead_letter,
     "outbox items live 360 h"),
    ("msk_triggered_functions_use_only_supported_settings", "prod", _traced_consumer, "X-Ray active tracing"),
    ("msk_triggered_functions_use_only_supported_settings", "dev", _fifteen_minute_consumer, "14 minutes"),
    ("msk_triggered_functions_use_only_supported_settings", "dev", _on_demand_pollers, "need provisioned mode"),
    ("every_asynchronously_invoked_function_keeps_its_failures", "prod", _sweeper_without_destination,
     "has no on-failure destination"),
    ("every_asynchronously_invoked_function_keeps_its_failures", "dev", _sweeper_may_not_send,
     "lacks sqs:SendMessage on its on-failure destination"),
    ("names_are_within_aws_length_limits", "prod", _long_function_name, "FunctionName"),
    ("names_are_within_aws_length_limits", "dev", _long_queue_name, "QueueName"),
    ("stacks_are_within_cloudformation_limits", "prod", _five_hundred_and_one_resources, "501 resources"),
    ("stacks_are_within_cloudformation_limits", "prod", _two_hundred_and_one_outputs, "201 outputs"),
    ("stacks_are_within_cloudformation_limits", "dev", _megabyte_template, "template body"),
    ("http_api_access_logs_use_http_api_variables", "prod", _rest_api_log_variable,
     "$context.resourcePath is not an HTTP API variable"),
    ("buckets_that_cloudformation_deletes_can_be_deleted", "dev", _locked_dev_archive, "Object Lock"),
    ("buckets_that_cloudformation_deletes_can_be_deleted", "dev", _dev_archive_never_emptied, "never emptied"),
    ("only_break_glass_may_disable_or_delete_keys_that_protect_customer_data", "prod", _customer_data_key_as_before,
     "(wraps every customer's key): its key policy does not deny kms:ScheduleKeyDeletion to every principal but "
     "the break-glass role"),
    ("only_break_glass_may_disable_or_delete_keys_that_protect_customer_data", "dev", _customer_data_key_as_before,
     "does not deny kms:DisableKey"),
    ("only_break_glass_may_disable_or_delete_keys_that_protect_customer_data", "staging", _archive_key_as_before,
     "(encrypts the audit archive): its key policy does not deny kms:DisableKey"),
    ("only_break_glass_may_disable_or_delete_keys_that_protect_customer_data", "prod", _every_role_exempted,
     "exempts 'arn:aws:iam::*:role/*', not a role of the account by name"),
    ("only_break_glass_may_disable_or_delete_keys_that_protect_customer_data", "prod",
     _cloudformation_may_delete_a_retained_key, "exempts CloudFormation's execution role"),
    ("only_break_glass_may_disable_or_delete_keys_that_protect_customer_data", "prod", _put_key_policy_denied_too,
     "the lockout safety check refuses such a policy"),
    ("only_break_glass_may_disable_or_delete_keys_that_protect_customer_data", "prod", _seven_day_deletion_window,
     "PendingWindowInDays 7"),
    ("only_break_glass_may_disable_or_delete_keys_that_protect_customer_data", "prod", _any_deletion_window_allowed,
     "lets ScheduleKeyDeletion wait less than 30 days"),
]


@pytest.mark.parametrize(("rule", "env", "breaking", "said"), MUTATIONS,
                         ids=[f"{r}-{b.__name__.strip('_')}" for r, _, b, _ in MUTATIONS])
def test_each_rule_fires_on_a_template_broken_the_way_it_guards_against(deployments, rule, env, breaking, said):
    broken = copy.deepcopy(deployments[env])
    breaking(broken)
    problems = check(broken, rule)
    assert any(said in p for p in problems), problems
    assert check(deployments[env], rule) == []  # the fixture itself was not touched


def test_every_rule_has_a_mutation():
    assert {rule for rule, *_ in MUTATIONS} == set(RULES)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_role_that_may_disable_or_delete_customer_data_keys_is_the_configured_break_glass_role(deployments, env):
    """The rule holds one named role exempted; this is the one cdk.json names (and, in dev, CloudFormation's)."""
    config = load(cdk_context()["environments"], env)
    break_glass = f"arn:{{AWS::Partition}}:iam::{{AWS::AccountId}}:role/{config.break_glass_role_name}"
    for key_prefix in ("CustomerDataKey", "AuditArchiveKey"):
        deny = _statement(deployments[env], key_prefix, "OnlyBreakGlassMayDisableOrDelete")
        exempted = [render(arn) for arn in deny["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]]
        assert exempted[0] == break_glass, exempted
        assert len(exempted) == (1 if config.retain else 2), exempted  # dev: CloudFormation tears it down


def test_the_issue_findings_are_what_the_rules_report_on_the_old_templates(deployments):
    """One broken copy with all five findings of issue 10 at once: each is reported by its rule."""
    broken = copy.deepcopy(deployments["prod"])
    for breaking in (_two_subnets_for_three_brokers, _export_the_layer_version, _notifications_in_the_vpc,
                     _without_describe_dynamic_configuration, _traced_consumer, _rest_api_log_variable,
                     _sweeper_without_destination):
        breaking(broken)
    reported = {rule for rule in RULES if check(broken, rule)}
    assert reported == {"msk_brokers_spread_evenly_over_client_subnets",
                        "no_import_of_a_value_that_changes_between_deploys",
                        "every_api_a_function_calls_is_reachable_from_where_it_runs",
                        "every_msk_mapping_role_has_the_documented_actions",
                        "msk_triggered_functions_use_only_supported_settings",
                        "http_api_access_logs_use_http_api_variables",
                        "every_asynchronously_invoked_function_keeps_its_failures"}
