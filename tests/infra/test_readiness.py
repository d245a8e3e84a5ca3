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
from tests.infra.conftest import ENVIRONMENTS, REPLICATED_ENVIRONMENTS, cdk_context, replicated
from tests.infra.readiness import RULES, Deployment, check, render
from tests.support import present


@pytest.fixture(scope="session")
def deployments(synthesized, synthesized_with_replication) -> dict[str, Deployment]:
    """Every environment as shipped (replication off), and by ``replicated(env)`` with replication on."""
    every = {**synthesized, **synthesized_with_replication}
    return {name: Deployment(s.name, s.templates, s.regions) for name, s in every.items()}


@pytest.mark.parametrize("rule", sorted(RULES))
@pytest.mark.parametrize("env", ENVIRONMENTS + tuple(replicated(env) for env in REPLICATED_ENVIRONMENTS))
def test_every_environment_meets_every_rule(deployments, env, rule):
    assert check(deployments[env], rule) == []


# --- the code analysis the reachability rule relies on -------------------------------------------------------
def test_the_code_analysis_finds_what_each_kind_of_function_calls():
    index = CodeIndex()
    notices = present(calls_of("notification.consumers.order_notices", index))
    assert {"sesv2", "sqs", "dynamodb"} <= notices.aws and not notices.kafka  # e-mail, DLQ, table + idempotency
    assert "s3" in present(calls_of("audit.consumers.trail_order", index)).aws  # the archive
    relay = present(calls_of("shopstream.relay.relay_handler", index))
    assert relay.kafka and relay.aws == {"xray"}  # produces to MSK; its spans go to X-Ray's OTLP endpoint
    assert "xray" in present(calls_of("order.api.handler", index)).aws  # every function exports its spans
    api = present(calls_of("order.api.handler", index))
    assert "dynamodb" in api.aws and not api.kafka
    assert calls_of("index.handler", index) is None  # not this repository's code


def test_what_only_direct_publish_reaches_counts_only_where_a_function_turns_it_on():
    index, on = CodeIndex(), {"SHOPSTREAM_DIRECT_PUBLISH": "true"}
    api = present(calls_of("order.api.handler", index))
    assert not api.kafka and api.under({}).kafka is False and api.under(on).kafka  # the brokers, behind the gate
    consumer = present(calls_of("inventory.consumers.order_reservations", index))
    assert not consumer.kafka and consumer.under(on).kafka
    relay = present(calls_of("shopstream.relay.relay_handler", index))
    assert relay.under({}).aws == {"xray"} and relay.under(on).aws == {"xray", "dynamodb"}  # the read-back


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
    other = present(calls_of("svc.handlers.other", CodeIndex()))
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


def _pollers_admitted_only_from_outside(d: Deployment) -> None:
    """The cluster's self-admitting rule names a security group of another account or stack instead."""
    for _, _, rule in d.resources("AWS::EC2::SecurityGroupIngress"):
        if rule["Properties"].get("SourceSecurityGroupId") == rule["Properties"]["GroupId"]:
            rule["Properties"]["SourceSecurityGroupId"] = "sg-0123456789abcdef0"


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


def _without_the_xray_endpoint(d: Deployment) -> None:
    stack, logical_id, _ = _first(d, "AWS::EC2::VPCEndpoint", "VpcXRay")
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




def _relay_retrying_past_the_stream(d: Deployment) -> None:
    _, _, mapping = _first(d, "AWS::Lambda::EventSourceMapping", "ServiceRelayMapping", "-order")
    mapping["Properties"]["MaximumRecordAgeInSeconds"] = -1  # until the stream drops the records, none kept


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
    ("every_api_a_function_calls_is_reachable_from_where_it_runs", "staging", _on_demand_pollers,
     "calls lambda from the VPC"),
    ("every_api_a_function_calls_is_reachable_from_where_it_runs", "dev", _pollers_shut_out,
     "does not admit itself on 9098"),
    ("every_api_a_function_calls_is_reachable_from_where_it_runs", "dev", _pollers_admitted_only_from_outside,
     "does not admit itself on 9098"),
    ("every_msk_mapping_role_has_the_documented_actions", "prod", _without_describe_dynamic_configuration,
     "lacks kafka-cluster:DescribeClusterDynamicConfiguration on the cluster"),
    ("every_msk_mapping_role_has_the_documented_actions", "dev", _topic_read_on_another_topic,
     "lacks kafka-cluster:ReadData on the topic"),
    ("every_msk_mapping_role_has_the_documented_actions", "staging", _mapping_without_list_bucket,
     "lacks s3:ListBucket on its on-failure destination"),
    ("every_api_a_function_calls_is_reachable_from_where_it_runs", "prod", _without_the_s3_endpoint,
     "(MSK pollers) calls s3 from the VPC"),
    # The relays export their spans from the VPC (shopstream.tracing): X-Ray's OTLP endpoint, through its own.
    ("every_api_a_function_calls_is_reachable_from_where_it_runs", "dev", _without_the_xray_endpoint,
     "calls xray from the VPC, which has no NAT gateway and no xray endpoint"),
    ("every_given_up_batch_is_announced_and_outlives_its_dead_letter", "prod", _mapping_gives_up_offsets_only,
     "which keeps no records"),
    ("every_given_up_batch_is_announced_and_outlives_its_dead_letter", "dev", _failed_batches_expire_in_a_week,
     "expire after 7 days"),
    ("every_given_up_batch_is_announced_and_outlives_its_dead_letter", "staging", _relay_batch_unannounced,
     "nothing announces its given-up batches"),
    ("every_given_up_batch_is_announced_and_outlives_its_dead_letter", "prod", _relay_retrying_past_the_stream,
     "never gives a batch up, but its records leave the stream after 24 h"),
    ("msk_triggered_functions_use_only_supported_settings", "prod", _traced_consumer, "X-Ray active tracing"),
    ("msk_triggered_functions_use_only_supported_settings", "dev", _fifteen_minute_consumer, "14 minutes"),
    ("msk_triggered_functions_use_only_supported_settings", "staging", _on_demand_pollers, "need provisioned mode"),
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



# --- issue 22, section 1: each finding as the templates had it, or the way it would come back ------------------
def _cluster(d: Deployment) -> dict:
    _, _, cluster = _first(d, "AWS::MSK::Cluster")
    return cluster["Properties"]


def _user_pool(d: Deployment) -> dict:
    _, _, pool = _first(d, "AWS::Cognito::UserPool")
    return pool["Properties"]


def _pool_with_cognito_email(d: Deployment) -> None:
    """The pool of issue 22: self sign-up and e-mail verification, no EmailConfiguration."""
    del _user_pool(d)["EmailConfiguration"]


def _ses_identity_in_another_region(d: Deployment) -> None:
    email = _user_pool(d)["EmailConfiguration"]
    email["SourceArn"] = json.loads(json.dumps(email["SourceArn"]).replace(":ses:eu-west-1:", ":ses:us-east-1:"))


def _sender_outside_the_identity(d: Deployment) -> None:
    _user_pool(d)["EmailConfiguration"]["From"] = "shopstream <shop@elsewhere.example>"


def _cluster_pinned_to_revision_one(d: Deployment) -> None:
    """The cluster of issue 22: ConfigurationInfo names revision 1 for good."""
    _cluster(d)["ConfigurationInfo"]["Revision"] = 1


def _brokers_msk_does_not_offer(d: Deployment) -> None:
    _cluster(d)["BrokerNodeGroupInfo"]["InstanceType"] = "kafka.m7g.medium"


def _express_brokers_with_standard_settings(d: Deployment) -> None:
    """Express brokers put into a Standard cluster's template: its EBS volume, tiered storage, its configuration's
    replication settings and its topics' min.insync.replicas."""
    _cluster(d)["BrokerNodeGroupInfo"]["InstanceType"] = "express.m7g.xlarge"


def _express_brokers_in_two_zones(d: Deployment) -> None:
    cluster = _cluster(d)
    cluster["BrokerNodeGroupInfo"]["InstanceType"] = "express.m7g.large"
    del cluster["BrokerNodeGroupInfo"]["StorageInfo"]
    del cluster["StorageMode"]


def _list_streams_on_the_table_streams(d: Deployment) -> None:
    """The relay's statement of issue 22: ListStreams on the table's stream ARNs, which grants nothing."""
    for _, logical_id, policy in d.resources("AWS::IAM::Policy"):
        if logical_id.startswith("ServiceRelayRole"):
            statements = policy["Properties"]["PolicyDocument"]["Statement"]
            for statement in statements:
                if "dynamodb:ListStreams" in _as_list(statement["Action"]):
                    statement["Action"] = [a for a in _as_list(statement["Action"]) if a != "dynamodb:ListStreams"]
            statements.append({"Action": "dynamodb:ListStreams", "Effect": "Allow", "Resource": {
                "Fn::Join": ["", [{"Fn::GetAtt": ["ServiceTable603BACCB", "Arn"]}, "/stream/*"]]}})
            return
    raise LookupError("relay policy")


def _prod_on_smaller_brokers(d: Deployment) -> None:
    """What docs/deploy.md named for prod (issue 22), now in the template instead of in the guide."""
    _cluster(d)["BrokerNodeGroupInfo"]["InstanceType"] = "kafka.m7g.large"


def _dev_monitored_per_partition(d: Deployment) -> None:
    _cluster(d)["EnhancedMonitoring"] = "PER_TOPIC_PER_PARTITION"


def _mapping(d: Deployment, prefix: str, stack_part: str) -> dict:
    _, _, mapping = _first(d, "AWS::Lambda::EventSourceMapping", prefix, stack_part)
    return mapping["Properties"]


def _mapping_without_metrics(d: Deployment) -> None:
    del _mapping(d, "ServicePaymentOutcomesMapping", "-order")["MetricsConfig"]


def _mapping_without_logs(d: Deployment) -> None:
    del _mapping(d, "ServiceOrderReservationsMapping", "-inventory")["LoggingConfig"]


def _kafka_logging_on_the_relay(d: Deployment) -> None:
    _mapping(d, "ServiceRelayMapping", "-order")["LoggingConfig"] = {"SystemLogLevel": "WARN"}


def _lag_watched_by_the_function_only(d: Deployment) -> None:
    """The lag alarm as it was: the function's topic-level OffsetLag, not the mapping's own metric."""
    for _, logical_id, alarm in d.resources("AWS::CloudWatch::Alarm"):
        if logical_id.startswith("ServicePaymentOutcomesOffsetLag"):
            props = alarm["Properties"]
            topic = next(q for q in props.pop("Metrics") if q["Id"] == "topicLag")["MetricStat"]
            props.update(MetricName="OffsetLag", Namespace="AWS/Lambda", Dimensions=topic["Metric"]["Dimensions"],
                         Period=topic["Period"], Statistic=topic["Stat"])
            return
    raise LookupError("lag alarm")


def _kafka_mapping_letting_only_strings_through(d: Deployment) -> None:
    """The third pattern the mappings had before issue 21: meant to let values that are not JSON objects through."""
    _mapping(d, "ServicePaymentOutcomesMapping", "-order")["FilterCriteria"] = {
        "Filters": [{"Pattern": '{"value":[{"prefix":""}]}'}]}


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


EMAIL_RULE = "user_pools_that_let_users_sign_up_send_their_email_through_ses"
BROKERS_RULE = "msk_brokers_are_a_size_msk_offers_and_the_cluster_suits_them"
MAPPINGS_RULE = "kafka_mappings_emit_their_metrics_and_logs_and_are_watched"
MUTATIONS += [
    (EMAIL_RULE, "prod", _pool_with_cognito_email, "with Cognito's default sending (COGNITO_DEFAULT)"),
    (EMAIL_RULE, "staging", _ses_identity_in_another_region, "its SES identity is in us-east-1, not the pool's region"),
    (EMAIL_RULE, "prod", _sender_outside_the_identity, "is not the SES identity 'shopstream.example'"),
    ("msk_clusters_follow_their_configurations_latest_revision", "prod", _cluster_pinned_to_revision_one,
     "ConfigurationInfo.Revision is 1, not BrokerConfiguration's LatestRevision.Revision"),
    (BROKERS_RULE, "dev", _brokers_msk_does_not_offer, "kafka.m7g.medium is not a broker size MSK offers"),
    (BROKERS_RULE, "prod", _express_brokers_with_standard_settings, "Express brokers have no storage to configure"),
    (BROKERS_RULE, "prod", _express_brokers_with_standard_settings, "StorageMode TIERED on express.m7g.xlarge"),
    (BROKERS_RULE, "prod", _express_brokers_with_standard_settings,
     "its configuration sets default.replication.factor, min.insync.replicas, unclean.leader.election.enable"),
    (BROKERS_RULE, "staging", _express_brokers_with_standard_settings,
     "sets min.insync.replicas, which a topic on Express brokers does not set"),
    (BROKERS_RULE, "dev", _express_brokers_in_two_zones, "2 client subnets; Express brokers run in exactly 3"),
    ("no_iam_statement_scopes_an_action_that_takes_no_resource", "prod", _list_streams_on_the_table_streams,
     "dynamodb:ListStreams scoped to {ServiceTable603BACCB.Arn}/stream/*"),
    ("the_deploy_guide_names_the_broker_size_each_environment_runs", "prod", _prod_on_smaller_brokers,
     "runs kafka.m7g.large brokers; docs/deploy.md names kafka.m7g.xlarge for prod"),
    ("the_cost_model_prices_the_monitoring_the_cluster_is_billed_for", "dev", _dev_monitored_per_partition,
     "EnhancedMonitoring PER_TOPIC_PER_PARTITION; the cost model prices DEFAULT for dev"),
    (MAPPINGS_RULE, "prod", _mapping_without_metrics, "does not emit ErrorCount, EventCount, KafkaMetrics"),
    (MAPPINGS_RULE, "staging", _mapping_without_logs, "its pollers send no system logs"),
    (MAPPINGS_RULE, "dev", _kafka_logging_on_the_relay, "LoggingConfig on a mapping that does not read Kafka"),
    (MAPPINGS_RULE, "prod", _lag_watched_by_the_function_only, "no alarm watches its offset lag"),
    ("kafka_mappings_drop_no_record_before_the_function", "dev", _kafka_mapping_letting_only_strings_through,
     "a Kafka mapping with filter patterns ({\"value\":[{\"prefix\":\"\"}]})"),
]


# --- dev's mappings on demand (docs/decisions.md, 2026-12-05) ---------------------------------------------------------
def _without_the_lambda_endpoint(d: Deployment) -> None:
    for stack, logical_id, endpoint in list(d.resources("AWS::EC2::VPCEndpoint")):
        if render(endpoint["Properties"]["ServiceName"]).endswith(".lambda"):
            del d.templates[stack]["Resources"][logical_id]
            return
    raise LookupError("the Lambda endpoint")


def _poller_endpoints_shut_out(d: Deployment) -> None:
    """The on-demand pollers' endpoints admit nothing (the pollers use the cluster's security group)."""
    stack, logical_id, group = _first(d, "AWS::EC2::SecurityGroup", "PollerEndpointsSg")
    group["Properties"].pop("SecurityGroupIngress", None)
    for ingress_stack, ingress_id, ingress in list(d.resources("AWS::EC2::SecurityGroupIngress")):
        if d.target(ingress_stack, ingress["Properties"]["GroupId"]) == (stack, logical_id):
            del d.templates[ingress_stack]["Resources"][ingress_id]


def _on_demand_consumer_reporting_partial_failures(d: Deployment) -> None:
    """A consumer behind an on-demand mapping left in its default mode: the records it names as failed are passed."""
    _, _, function = _first(d, "AWS::Lambda::Function", "ServicePaymentOutcomes", "-order")
    del function["Properties"]["Environment"]["Variables"]["SHOPSTREAM_PARTIAL_BATCH_RESPONSE"]


def _provisioned_mapping_without_partial_batch_response(d: Deployment) -> None:
    del _mapping(d, "ServicePaymentOutcomesMapping", "-order")["FunctionResponseTypes"]


def _on_demand_lag_unwatched(d: Deployment) -> None:
    for stack, logical_id, _ in list(d.resources("AWS::CloudWatch::Alarm")):
        if logical_id.startswith("ServicePaymentOutcomesOffsetLag") and stack.endswith("-order"):
            del d.templates[stack]["Resources"][logical_id]
            return
    raise LookupError("lag alarm")


WHOLE_BATCH_RULE = "consumers_behind_mappings_without_partial_batch_response_fail_batches_whole"
MUTATIONS += [
    ("every_api_a_function_calls_is_reachable_from_where_it_runs", "dev", _without_the_lambda_endpoint,
     "(MSK pollers) calls lambda from the VPC, which has no NAT gateway and no lambda endpoint"),
    ("every_api_a_function_calls_is_reachable_from_where_it_runs", "dev", _poller_endpoints_shut_out,
     "(MSK pollers): the sts endpoint's security groups do not admit it on 443"),
    (WHOLE_BATCH_RULE, "dev", _on_demand_consumer_reporting_partial_failures,
     "returns a partial batch response, which the mapping ignores"),
    (WHOLE_BATCH_RULE, "prod", _provisioned_mapping_without_partial_batch_response,
     "set SHOPSTREAM_PARTIAL_BATCH_RESPONSE=false"),
    (MAPPINGS_RULE, "dev", _on_demand_lag_unwatched, "on demand, no alarm watches its function's OffsetLag"),
]


# --- issue 22, section 1: cross-region replication, as the templates had it or the way it could come back ----------
PROD_REPLICATED, STAGING_REPLICATED = replicated("prod"), replicated("staging")
DR_TARGET_CLUSTER_ARN = "arn:aws:kafka:eu-central-1:111122223333:cluster/shopstream-dr/abc"


def _stack(d: Deployment, part: str) -> str:
    return f"shopstream-{d.name}-{part}"


def _resource(d: Deployment, part: str, logical_id: str) -> dict:
    """A resource of the stack ``shopstream-<env>-<part>``: by its logical id, or the first one it begins."""
    resources = d.templates[_stack(d, part)]["Resources"]
    return resources.get(logical_id) or next(r for lid, r in resources.items() if lid.startswith(logical_id))


def _replicator_in_the_source_region(d: Deployment) -> None:
    """Issue 22's layout: the Replicator in the source's messaging stack, the target a cluster ARN from cdk.json."""
    replicator = d.templates[_stack(d, "dr-messaging")]["Resources"].pop("Replicator")
    source = {"Fn::GetAtt": ["Cluster", "Arn"]}
    [info] = replicator["Properties"]["ReplicationInfoList"]
    info.update(SourceKafkaClusterArn=source, TargetKafkaClusterArn=DR_TARGET_CLUSTER_ARN)
    source_side, target_side = replicator["Properties"]["KafkaClusters"]
    source_side["AmazonMskCluster"]["MskClusterArn"] = source
    target_side["AmazonMskCluster"]["MskClusterArn"] = DR_TARGET_CLUSTER_ARN
    d.templates[_stack(d, "messaging")]["Resources"]["Replicator"] = replicator


def _target_without_security_groups(d: Deployment) -> None:
    del _resource(d, "dr-messaging", "Replicator")["Properties"]["KafkaClusters"][1]["VpcConfig"]["SecurityGroupIds"]


def _source_without_multi_vpc_connectivity(d: Deployment) -> None:
    """Issue 22's source cluster: docs/deploy.md asked the operator to turn multi-VPC connectivity on by hand."""
    del _resource(d, "messaging", "Cluster")["Properties"]["BrokerNodeGroupInfo"]["ConnectivityInfo"]


def _source_open_to_unauthenticated_clients(d: Deployment) -> None:
    _resource(d, "messaging", "Cluster")["Properties"]["ClientAuthentication"]["Unauthenticated"] = {"Enabled": True}


def _source_without_cluster_policy(d: Deployment) -> None:
    """Issue 22's source cluster: the cluster policy was to be added by hand."""
    del d.templates[_stack(d, "messaging")]["Resources"]["ReplicatorClusterPolicy"]


def _cluster_policy_without_describe_cluster_v2(d: Deployment) -> None:
    [statement] = _resource(d, "messaging", "ReplicatorClusterPolicy")["Properties"]["Policy"]["Statement"]
    statement["Action"] = [a for a in statement["Action"] if a != "kafka:DescribeClusterV2"]


def _source_of_two_brokers_on_two_zones(d: Deployment) -> None:
    """dev's cluster as the source (issue 22: the tests synthesized dev with replication)."""
    nodes = _resource(d, "messaging", "Cluster")["Properties"]
    nodes["NumberOfBrokerNodes"] = 2
    nodes["BrokerNodeGroupInfo"]["ClientSubnets"] = nodes["BrokerNodeGroupInfo"]["ClientSubnets"][:2]


def _target_on_t3_brokers(d: Deployment) -> None:
    _resource(d, "dr-messaging", "Cluster")["Properties"]["BrokerNodeGroupInfo"]["InstanceType"] = "kafka.t3.small"


def _replicator_role_without_idempotent_writes_on_the_source(d: Deployment) -> None:
    for _, logical_id, policy in d.resources("AWS::IAM::Policy"):
        if logical_id.startswith("ReplicatorRole"):
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                if "ExportsReader" in json.dumps(statement["Resource"]):  # the source's, from the other region
                    statement["Action"] = [a for a in statement["Action"] if a != "kafka-cluster:WriteDataIdempotently"]
                    return
    raise LookupError("the Replicator's statement on the source cluster")


def _target_brokers_shut_the_replicator_out(d: Deployment) -> None:
    del d.templates[_stack(d, "dr-messaging")]["Resources"]["BrokersAdmitTheReplicator"]


def _single_region_customer_data_key(d: Deployment) -> None:
    _resource(d, "platform", "CustomerDataKey")["Properties"]["MultiRegion"] = False


def _no_key_replica_in_the_target(d: Deployment) -> None:
    del d.templates[_stack(d, "dr-keys")]["Resources"]["CustomerDataKeyAlias"]


def _key_store_without_a_replica_in_the_target(d: Deployment) -> None:
    table = _resource(d, "platform", "CustomerKeys")["Properties"]
    table["Replicas"] = [r for r in table["Replicas"] if r["Region"] != "eu-central-1"]


def _key_store_as_a_plain_table(d: Deployment) -> None:
    _resource(d, "platform", "CustomerKeys")["Type"] = "AWS::DynamoDB::Table"


REPLICATOR_REGION_RULE = "an_msk_replicator_is_created_in_its_target_clusters_region"
REPLICATOR_SOURCE_RULE = "a_cross_region_replication_source_lets_msk_replicator_connect"
REPLICATOR_CLUSTERS_RULE = "replicated_msk_clusters_meet_msk_replicator_requirements"
REPLICATOR_ACCESS_RULE = "msk_replicator_may_use_both_clusters_and_reach_the_target"
FAILOVER_KEYS_RULE = "a_failover_region_can_open_what_the_environment_sealed"
MUTATIONS += [
    (REPLICATOR_REGION_RULE, PROD_REPLICATED, _replicator_in_the_source_region,
     "is created in eu-west-1, but its target cluster is in eu-central-1"),
    (REPLICATOR_REGION_RULE, STAGING_REPLICATED, _target_without_security_groups,
     "no security groups for the target cluster"),
    (REPLICATOR_SOURCE_RULE, PROD_REPLICATED, _source_without_multi_vpc_connectivity,
     "without multi-VPC private connectivity for IAM"),
    (REPLICATOR_SOURCE_RULE, STAGING_REPLICATED, _source_open_to_unauthenticated_clients,
     "allows unauthenticated access"),
    (REPLICATOR_SOURCE_RULE, PROD_REPLICATED, _source_without_cluster_policy,
     "does not let kafka.amazonaws.com call kafka:CreateVpcConnection, kafka:GetBootstrapBrokers, "
     "kafka:DescribeClusterV2 on it"),
    (REPLICATOR_SOURCE_RULE, STAGING_REPLICATED, _cluster_policy_without_describe_cluster_v2,
     "does not let kafka.amazonaws.com call kafka:DescribeClusterV2 on it"),
    (REPLICATOR_CLUSTERS_RULE, STAGING_REPLICATED, _source_of_two_brokers_on_two_zones,
     "2 brokers on 2 zones; MSK Replicator needs 4"),
    (REPLICATOR_CLUSTERS_RULE, PROD_REPLICATED, _target_on_t3_brokers,
     "kafka.t3.small brokers, which MSK Replicator does not support"),
    (REPLICATOR_ACCESS_RULE, PROD_REPLICATED, _replicator_role_without_idempotent_writes_on_the_source,
     "its role lacks kafka-cluster:WriteDataIdempotently on the source cluster"),
    (REPLICATOR_ACCESS_RULE, STAGING_REPLICATED, _target_brokers_shut_the_replicator_out,
     "the target cluster's security groups do not admit the Replicator's"),
    (FAILOVER_KEYS_RULE, "prod", _single_region_customer_data_key, "customer-data key is single-Region"),
    (FAILOVER_KEYS_RULE, PROD_REPLICATED, _no_key_replica_in_the_target,
     "no replica of it under alias/shopstream-prod-customer-data in eu-central-1"),
    (FAILOVER_KEYS_RULE, STAGING_REPLICATED, _key_store_without_a_replica_in_the_target,
     "no replica of the customer key store in eu-central-1"),
    (FAILOVER_KEYS_RULE, "staging", _key_store_as_a_plain_table, "is not a global table"),
]


def _api_function_outlives_its_integration(d: Deployment) -> None:
    _, _, function = _first(d, "AWS::Lambda::Function", "ServiceApi", "-order")
    function["Properties"]["Timeout"] = 30


def _integration_that_gives_up_first(d: Deployment) -> None:
    for stack, _, integration in d.resources("AWS::ApiGatewayV2::Integration"):
        if stack.endswith("-order"):
            integration["Properties"]["TimeoutInMillis"] = 10_000


INTEGRATION_TIMEOUT_RULE = "http_api_functions_answer_before_their_integration_gives_up"
MUTATIONS += [
    (INTEGRATION_TIMEOUT_RULE, "prod", _api_function_outlives_its_integration,
     "its function's timeout 30s is not under the integration's 29s"),
    (INTEGRATION_TIMEOUT_RULE, "dev", _integration_that_gives_up_first,
     "its function's timeout 28s is not under the integration's 10s"),
]


def _index_writes_not_scaled(d: Deployment) -> None:
    resources = d.templates[_stack(d, "order")]["Resources"]
    [target] = [logical_id for logical_id, r in resources.items()
                if r["Type"] == "AWS::ApplicationAutoScaling::ScalableTarget"
                and r["Properties"]["ScalableDimension"] == "dynamodb:index:WriteCapacityUnits"]
    del resources[target]


def _throttling_not_alarmed(d: Deployment) -> None:
    resources = d.templates[_stack(d, "audit")]["Resources"]
    [alarm] = [logical_id for logical_id in resources if logical_id.startswith("ServiceTableThrottled")]
    del resources[alarm]


def _provisioned_table_without_scaling(d: Deployment) -> None:
    """A dev table switched to provisioned capacity by hand, nothing else."""
    table = _resource(d, "cart", "ServiceTable")["Properties"]
    del table["BillingMode"]
    table["ProvisionedThroughput"] = {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}


def _key_store_writes_not_scaled(d: Deployment) -> None:
    del _resource(d, "platform", "CustomerKeys")["Properties"]["WriteProvisionedThroughputSettings"]


def _key_store_throttling_not_alarmed(d: Deployment) -> None:
    del d.templates[_stack(d, "platform")]["Resources"][
        next(i for i in d.templates[_stack(d, "platform")]["Resources"] if i.startswith("CustomerKeysThrottled"))]


PROVISIONED_RULE = "provisioned_tables_scale_and_alarm_on_throttling"
MUTATIONS += [
    (PROVISIONED_RULE, "prod", _index_writes_not_scaled, "index gsi1: no auto scaling of its write capacity"),
    (PROVISIONED_RULE, "prod", _throttling_not_alarmed, "no alarm watches its WriteThrottleEvents"),
    (PROVISIONED_RULE, "dev", _provisioned_table_without_scaling, "no auto scaling of its read capacity"),
    (PROVISIONED_RULE, "prod", _key_store_writes_not_scaled, "CustomerKeys"),
    (PROVISIONED_RULE, "prod", _key_store_throttling_not_alarmed, "no alarm watches its ReadThrottleEvents"),
]


def _direct_publisher_out_of_the_vpc(d: Deployment) -> None:
    _, _, api = _first(d, "AWS::Lambda::Function", "ServiceApi", "-order")
    del api["Properties"]["VpcConfig"]


def _without_the_dynamodb_endpoint(d: Deployment) -> None:
    stack, logical_id, _ = _first(d, "AWS::EC2::VPCEndpoint", "VpcDynamoDb")
    del d.templates[stack]["Resources"][logical_id]


def _without_action(prefix: str, stack_part: str, action: str) -> Callable[[Deployment], None]:
    def breaking(d: Deployment) -> None:
        for stack, logical_id, policy in d.resources("AWS::IAM::Policy"):
            if logical_id.startswith(prefix) and stack.endswith(stack_part):
                for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                    actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                    statement["Action"] = [a for a in actions if a != action] or ["sqs:GetQueueAttributes"]

    breaking.__name__ = f"_{prefix}_without_{action.split(':')[1]}"
    return breaking


def _relay_not_told(d: Deployment) -> None:
    _, _, relay = _first(d, "AWS::Lambda::Function", "ServiceRelay", "-inventory")
    del relay["Properties"]["Environment"]["Variables"]["SHOPSTREAM_DIRECT_PUBLISH"]


def _relay_mapping_patterns(d: Deployment) -> list[dict]:
    _, _, mapping = _first(d, "AWS::Lambda::EventSourceMapping", "ServiceRelayMapping", "-payment")
    return mapping["Properties"]["FilterCriteria"]["Filters"]


def _relay_sees_no_deletes(d: Deployment) -> None:
    filters = _relay_mapping_patterns(d)
    filters[:] = [f for f in filters if '"REMOVE"' not in f["Pattern"]]


def _relay_sees_ttl_deletes(d: Deployment) -> None:
    for f in _relay_mapping_patterns(d):
        pattern = json.loads(f["Pattern"])
        pattern.pop("userIdentity", None)
        f["Pattern"] = json.dumps(pattern)


PRODUCER_RULE = "every_function_that_produces_to_kafka_may_write_its_topics"
DIRECT_RELAY_RULE = "a_relay_behind_functions_that_publish_directly_holds_their_events_back"
MUTATIONS += [
    ("every_api_a_function_calls_is_reachable_from_where_it_runs", "staging", _direct_publisher_out_of_the_vpc,
     "(order.api.handler) connects to the MSK brokers but does not run in the VPC"),
    ("every_api_a_function_calls_is_reachable_from_where_it_runs", "staging", _without_the_dynamodb_endpoint,
     "calls dynamodb from the VPC, which has no NAT gateway and no dynamodb endpoint"),
    (PRODUCER_RULE, "staging", _without_action("ServiceOrderReservations", "-inventory", "kafka-cluster:WriteData"),
     "publishes inventory's events but its role lacks kafka-cluster:WriteData on inventory-events"),
    (PRODUCER_RULE, "dev", _without_action("ServiceRelay", "-order", "kafka-cluster:WriteDataIdempotently"),
     "produces to MSK but its role lacks kafka-cluster:WriteDataIdempotently on the cluster"),
    (DIRECT_RELAY_RULE, "staging", _relay_not_told, "it publishes each of their events a second time"),
    (DIRECT_RELAY_RULE, "staging", _without_action("ServiceRelay", "-order", "dynamodb:BatchGetItem"),
     "cannot read the direct publishers' items back"),
    (DIRECT_RELAY_RULE, "staging", _relay_sees_no_deletes, "lets no outbox delete through"),
    (DIRECT_RELAY_RULE, "staging", _relay_sees_ttl_deletes, "lets TTL's deletes through too"),
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


def test_outbox_items_that_expire_before_their_stream_records_are_found(deployments, monkeypatch):
    """The outbox's TTL is the code's (Settings), not the template's: the same rule, with the code changed. A
    relay's given-up batch is in S3 whole; the items must only outlive their stream records (24 h)."""
    rule = "every_given_up_batch_is_announced_and_outlives_its_dead_letter"
    assert check(deployments["prod"], rule) == []
    monkeypatch.setenv("SHOPSTREAM_OUTBOX_TTL_SECONDS", str(12 * 3600))
    problems = check(deployments["prod"], rule)
    assert problems and all("outbox items live 12 h, less than their stream records' 24 h (the relay retries for "
                            "12 h)" in p for p in problems), problems


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


def test_issue_22s_findings_are_what_its_rules_report_on_the_old_templates(deployments):
    """prod as issue 22 found it: Cognito's own e-mail, revision 1, ListStreams scoped to the stream ARNs, mappings
    without their metrics and logs, their lag watched through the function only; each is reported by its rule."""
    broken = copy.deepcopy(deployments["prod"])
    for breaking in (_pool_with_cognito_email, _cluster_pinned_to_revision_one, _list_streams_on_the_table_streams,
                     _mapping_without_metrics, _lag_watched_by_the_function_only):
        breaking(broken)
    for _, _, mapping in broken.resources("AWS::Lambda::EventSourceMapping"):
        mapping["Properties"].pop("LoggingConfig", None)
    reported = {rule for rule in RULES if check(broken, rule)}
    assert reported == {EMAIL_RULE, "msk_clusters_follow_their_configurations_latest_revision",
                        "no_iam_statement_scopes_an_action_that_takes_no_resource", MAPPINGS_RULE}
