"""The synthesized CloudFormation, checked against the catalog and the requirement."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest

from shopstream import catalog
from shopstream.filters import esm_filter_patterns, passes
from stacks.config import load
from stacks.nag import ACKNOWLEDGED
from stacks.service import construct_name
from tests.infra.conftest import (
    ENVIRONMENTS,
    REPLICATED_ENVIRONMENTS,
    REPLICATION,
    ROOT,
    cdk_context,
    replicated,
    synthesize,
)
from tests.unit.test_catalog import ADR_TOPICS
from tools import capacity

KAFKA_ESM = "AWS::Lambda::EventSourceMapping"


def _kafka_mappings(synth):
    for stack_name, logical_id, resource in synth.resources(KAFKA_ESM):
        if "Topics" in resource["Properties"]:
            yield stack_name, logical_id, resource["Properties"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_topics_in_the_template_are_the_catalog_and_the_adr_table(synthesized, env):
    synth = synthesized[env]
    topics = {}
    for _, _, resource in synth.resources("AWS::MSK::Topic", "messaging"):
        props = resource["Properties"]
        configs = json.loads(base64.b64decode(props["Configs"]))
        topics[props["TopicName"]] = (props["PartitionCount"], int(configs["retention.ms"]) // 86_400_000)
    config = load(cdk_context()["environments"], env)
    assert topics == {t.name: (config.partition_count(t.name), t.retention.days) for t in catalog.TOPICS}
    if not config.partitions:  # an environment without overrides has the catalog's (the ADR's) partitions
        assert topics == {**ADR_TOPICS, "cart-events": (12, 30), "analytics-events": (4, 30)}


def test_prod_has_the_partitions_the_capacity_model_needs_at_2000_orders_per_second(synthesized):
    topics = {r["Properties"]["TopicName"]: r["Properties"]["PartitionCount"]
              for _, _, r in synthesized["prod"].resources("AWS::MSK::Topic")}
    for topic_name, (needed, _) in capacity.partitions_needed(2000).items():
        assert topics[topic_name] >= needed, topic_name
    assert {r["Properties"]["PartitionCount"] for _, _, r in synthesized["dev"].resources("AWS::MSK::Topic")} == {2}


def test_seven_year_topics_use_tiered_storage_where_enabled(synthesized):
    def configs(env):
        return {r["Properties"]["TopicName"]: json.loads(base64.b64decode(r["Properties"]["Configs"]))
                for _, _, r in synthesized[env].resources("AWS::MSK::Topic")}

    prod, dev = configs("prod"), configs("dev")
    assert prod["payment-events"]["remote.storage.enable"] == "true"
    assert prod["audit-events"]["remote.storage.enable"] == "true"
    assert "remote.storage.enable" not in prod["inventory-events"]
    assert all("remote.storage.enable" not in c for c in dev.values())
    [(_, _, cluster)] = synthesized["prod"].resources("AWS::MSK::Cluster")
    assert cluster["Properties"]["StorageMode"] == "TIERED"
    assert prod["order-events"]["min.insync.replicas"] == "2"


def test_cluster_is_iam_only_tls_and_encrypted(synthesized):
    [(_, _, cluster)] = synthesized["prod"].resources("AWS::MSK::Cluster")
    props = cluster["Properties"]
    assert props["ClientAuthentication"]["Sasl"]["Iam"]["Enabled"] is True
    assert props["ClientAuthentication"]["Unauthenticated"]["Enabled"] is False
    assert props["EncryptionInfo"]["EncryptionInTransit"] == {"ClientBroker": "TLS", "InCluster": True}
    assert "DataVolumeKMSKeyId" in props["EncryptionInfo"]["EncryptionAtRest"]
    assert props["NumberOfBrokerNodes"] == 6 and props["BrokerNodeGroupInfo"]["InstanceType"] == "kafka.m7g.xlarge"
    assert props["KafkaVersion"] >= "3.6"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_kafka_mapping_reports_partial_failures_retries_boundedly_and_dead_letters(synthesized, env):
    """In provisioned mode; on demand (dev) none of the error-handling controls, and the consumer fails a batch
    whole instead (docs/decisions.md, 2026-12-05)."""
    on_demand = load(cdk_context()["environments"], env).on_demand_pollers
    mappings = list(_kafka_mappings(synthesized[env]))
    assert len(mappings) == sum(len(s.handlers) for s in catalog.SERVICES)
    functions = {lid: r["Properties"] for _, lid, r in synthesized[env].resources("AWS::Lambda::Function")}
    for _, logical_id, props in mappings:
        assert "Fn::GetAtt" in props["DestinationConfig"]["OnFailure"]["Destination"]
        assert props["StartingPosition"] == "TRIM_HORIZON"
        variables = functions[props["FunctionName"]["Ref"]]["Environment"]["Variables"]
        if on_demand:
            assert not {"FunctionResponseTypes", "BisectBatchOnFunctionError", "MaximumRetryAttempts",
                        "MaximumRecordAgeInSeconds", "ProvisionedPollerConfig"} & set(props), logical_id
            assert variables["SHOPSTREAM_PARTIAL_BATCH_RESPONSE"] == "false", logical_id
            continue
        assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"], logical_id
        assert props["BisectBatchOnFunctionError"] is True
        assert 0 <= props["MaximumRetryAttempts"] <= 10
        assert 0 < props["MaximumRecordAgeInSeconds"] <= 7 * 24 * 3600
        assert props["ProvisionedPollerConfig"]["MinimumPollers"] >= 1
        assert "SHOPSTREAM_PARTIAL_BATCH_RESPONSE" not in variables, logical_id


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_critical_path_mappings_invoke_at_once_in_provisioned_mode_and_every_mapping_shares_a_poller_group(
        synthesized, env):
    """Lambda's low-latency Kafka setting: provisioned mode and MaximumBatchingWindowInSeconds 0
    (https://docs.aws.amazon.com/lambda/latest/dg/with-kafka-low-latency.html)."""
    config = load(cdk_context()["environments"], env)
    handlers = {catalog.consumer_group_id(s.name, h.name): h for s in catalog.SERVICES for h in s.handlers}
    critical = set()
    groups: dict[str, list[int]] = {}
    for _, logical_id, props in _kafka_mappings(synthesized[env]):
        handler = handlers[props["AmazonManagedKafkaEventSourceConfig"]["ConsumerGroupId"]]
        if handler.critical_path:
            critical.add(props["AmazonManagedKafkaEventSourceConfig"]["ConsumerGroupId"])
        assert props["MaximumBatchingWindowInSeconds"] == (0 if handler.critical_path else 1), logical_id
        if config.on_demand_pollers:  # dev: Lambda's own pollers, no group (docs/decisions.md, 2026-12-05)
            assert "ProvisionedPollerConfig" not in props, logical_id
            continue
        pollers = props["ProvisionedPollerConfig"]
        assert (pollers["MinimumPollers"], pollers["MaximumPollers"]) == config.pollers(handler), logical_id
        groups.setdefault(pollers["PollerGroupName"], []).append(pollers["MaximumPollers"])
        assert pollers["PollerGroupName"] == f"shopstream-{env}-{'saga' if handler.critical_path else 'events'}"
    # POST /orders -> OrderCreated -> the reservation and the authorisation side by side -> CONFIRMED
    assert critical == {"inventory-order-reservations", "payment-order-payments", "order-inventory-outcomes",
                        "order-payment-outcomes"}
    # Lambda: at most 100 mappings per poller group, their maximum pollers adding up to at most 2,000.
    assert all(len(maxima) <= 100 and sum(maxima) <= 2000 for maxima in groups.values())


def test_relays_whose_events_the_critical_path_waits_for_invoke_as_soon_as_records_arrive(synthesized):
    windows = {}
    for stack_name, _, resource in synthesized["prod"].resources(KAFKA_ESM):
        if "Topics" not in resource["Properties"]:
            service = stack_name.removeprefix("shopstream-prod-")
            windows[service] = resource["Properties"]["MaximumBatchingWindowInSeconds"]
    assert {service for service, window in windows.items() if window == 0} == {"order", "inventory", "payment"}
    assert set(windows.values()) == {0, 1}


def test_consumer_groups_topics_and_filters_come_from_the_catalog(synthesized):
    expected = {}
    for spec in catalog.SERVICES:
        for handler in spec.handlers:
            expected[catalog.consumer_group_id(spec.name, handler.name)] = (handler.topic, esm_filter_patterns(handler))
    actual = {}
    for _, _, props in _kafka_mappings(synthesized["dev"]):
        group = props["AmazonManagedKafkaEventSourceConfig"]["ConsumerGroupId"]
        filters = [json.loads(f["Pattern"]) for f in props.get("FilterCriteria", {}).get("Filters", [])]
        actual[group] = (props["Topics"][0], filters)
    assert actual == expected


def test_no_kafka_mapping_filters_so_no_poison_record_can_be_dropped_before_the_function(synthesized):
    """Lambda's treatment of values that are not JSON objects under a filter is undocumented
    (shopstream/filters.py): every record reaches the function, which skips known unwanted types."""
    mappings = list(_kafka_mappings(synthesized["dev"]))
    assert mappings and not [props for _, _, props in mappings if "FilterCriteria" in props]
    handler = catalog.service("inventory").handler("order-reservations")  # OrderCreated, OrderCancelled
    assert esm_filter_patterns(handler) == []
    assert all(passes([], value) for value in (b'{"eventType": "OrderShipped"}', b"42", b"\xff", b"", None))


def _statements(template, role_logical_id):
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::IAM::Policy" and {"Ref": role_logical_id} in resource["Properties"]["Roles"]:
            yield from resource["Properties"]["PolicyDocument"]["Statement"]


def _as_list(value):
    return value if isinstance(value, list) else [value]


def _refs(value) -> set[str]:
    """Logical ids a policy resource points at (Ref / GetAtt, also inside Fn::Join)."""
    found = set()
    if isinstance(value, dict):
        if "Ref" in value:
            found.add(value["Ref"])
        if "Fn::GetAtt" in value:
            found.add(value["Fn::GetAtt"][0])
        for inner in value.values():
            found |= _refs(inner)
    elif isinstance(value, list):
        for inner in value:
            found |= _refs(inner)
    return found


def _construct(logical_id: str) -> str:
    """``ServiceOrderReservationsDlq1A2B3C4D`` -> ``OrderReservationsDlq`` (CDK adds an 8-char hash)."""
    return logical_id.removeprefix("Service")[:-8]


def _literals(value) -> str:
    return json.dumps(value)


@pytest.mark.parametrize("env", ["prod", "staging"])  # staging publishes directly (cdk.json directPublish)
@pytest.mark.parametrize("spec", catalog.SERVICES, ids=lambda s: s.name)
def test_every_function_touches_only_its_own_resources(synthesized, spec, env):
    template = synthesized[env].stack(spec.name)
    resources = template["Resources"]
    functions = {lid: r for lid, r in resources.items() if r["Type"] == "AWS::Lambda::Function"
                 and lid.startswith("Service")}
    assert functions
    consumers = {construct_name(h.entry): h for h in spec.handlers}
    for function_id, function in functions.items():
        name = _construct(function_id)
        role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
        handler = consumers.get(name)
        needs = set(handler.needs if handler else spec.api_needs if name == "Api" else ())
        for statement in _statements(template, role_id):
            actions = _as_list(statement["Action"])
            targets = _as_list(statement["Resource"])
            services = {a.split(":")[0] for a in actions}
            if targets == ["*"]:
                # and ListStreams, which takes no resource, for the relay's stream pollers (issue 22)
                unscoped = [a for a in actions if a.split(":")[0] not in {"ec2", "xray"}]
                assert unscoped == [] or (unscoped == ["dynamodb:ListStreams"] and name == "Relay"), \
                    (function_id, actions)
                continue
            # The cluster ARN arrives as an import; everything else must be in this service's stack, except the
            # customer key store and the user pool, which the platform stack shares (checked below).
            refs = {r for r in _refs(targets) if not r.startswith("AWS::")}
            assert refs <= set(resources), (function_id, refs)
            if _imports_of(targets, "CustomerKeys", "CustomerDataKey", "Users"):
                _check_personal_data_statement(function_id, needs, statement)
                continue
            if _imports_of(targets, "RequestFingerprintKey"):  # the platform's HMAC key (shopstream.key_binding)
                assert name == "Api" and spec.takes_idempotency_keys, function_id
                assert actions == ["kms:GenerateMac"], (function_id, actions)
                continue
            if services & {"dynamodb"}:
                assert refs <= {r for r in resources if r.startswith(("ServiceTable", "ServiceIdempotencyTable"))}, \
                    (function_id, refs)
                # the idempotency table: consumers (eventIds), and the API where a route takes Idempotency-Key
                api_keys = name == "Api" and any(r.idempotent for r in spec.routes)
                if name == "Relay" or (name not in consumers and not api_keys):
                    assert not any(r.startswith("ServiceIdempotencyTable") for r in refs), function_id
            if services & {"sqs"}:
                assert {_construct(r) for r in refs} == {f"{name}Dlq"}, (function_id, refs)
            if services & {"kms"}:
                if refs:  # this service's own key (dead-letter queues)
                    assert {_construct(r) for r in refs} == {"Key"}, (function_id, refs)
                else:  # the archive's key, imported, for handlers that write the archive
                    assert "AuditArchiveKey" in _literals(targets), (function_id, targets)
                    assert handler is not None and "audit-archive" in handler.needs, function_id
            if "kafka-cluster" in services and any(a in actions for a in ("kafka-cluster:ReadData",
                                                                           "kafka-cluster:WriteData")):
                text = _literals(targets)
                writes = "kafka-cluster:WriteData" in actions
                allowed = ({handler.topic} if handler and not writes else set(spec.produces_topics))
                named = {t.name for t in catalog.TOPICS if f"/{t.name}\"" in text}
                assert named == allowed, (function_id, named, allowed)
                if writes:  # the relay, and where direct publish is on the critical path's committers
                    variables = function["Properties"]["Environment"]["Variables"]
                    assert name == "Relay" or variables.get(catalog.DIRECT_PUBLISH_ENV) == "true", function_id
            if "kafka-cluster:AlterGroup" in actions:
                assert handler is not None
                assert f"/{catalog.consumer_group_id(spec.name, handler.name)}\"" in _literals(targets)


def _imports_of(targets, *platform_resources: str) -> set[str]:
    """Which of the platform stack's resources (by logical id prefix) the targets import."""
    text = json.dumps(targets)
    return {r for r in platform_resources if f'ExportsOutputFnGetAtt{r}' in text}


# The customer key store (shopstream.personal): who may do what with it. Opening a personal value needs
# kms:Decrypt with the customer-data key; only functions that must read a personal field have it.
CUSTOMER_CONTEXT = {"ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["customerId"]},
                    "Null": {"kms:EncryptionContext:customerId": "false"}}


def _check_personal_data_statement(function_id: str, needs: set[str], statement: dict) -> None:
    actions, imported = set(_as_list(statement["Action"])), _imports_of(statement["Resource"], "CustomerKeys",
                                                                         "CustomerDataKey", "Users")
    assert len(imported) == 1, (function_id, imported)
    if imported == {"CustomerKeys"}:  # the table of wrapped keys and public halves
        assert needs & set(catalog.PERSONAL_NEEDS), (function_id, actions)
        allowed = {"dynamodb:GetItem"} | ({"dynamodb:PutItem", "dynamodb:DeleteItem"} if "customer-keys" in needs
                                          else set()) | ({"dynamodb:BatchGetItem", "dynamodb:ConditionCheckItem"}
                                                         if "personal-check" in needs else set())
        assert actions <= allowed, (function_id, actions)
    elif imported == {"CustomerDataKey"}:  # the KMS key that wraps customers' keys
        allowed = ({"kms:Decrypt"} if needs & {"personal-open", "customer-keys"} else set()) | (
            {"kms:GenerateDataKey"} if "customer-keys" in needs else set())
        assert actions and actions <= allowed, (function_id, actions, needs)
        assert statement.get("Condition") == CUSTOMER_CONTEXT, (function_id, statement.get("Condition"))
    else:  # the user pool: erasure deletes the sign-in identity
        assert "identity" in needs and actions == {"cognito-idp:AdminDeleteUser"}, (function_id, actions)


def test_only_functions_that_must_read_a_personal_field_may_decrypt_it(synthesized):
    """The least-privilege matrix of personal data, pinned: who opens, who seals, who creates and erases keys."""
    granted: dict[str, set[tuple[str, str]]] = {"decrypt": set(), "read-keys": set(), "write-keys": set(),
                                                "generate": set(), "identity": set()}
    for stack_name, _, policy in synthesized["prod"].resources("AWS::IAM::Policy"):
        service = stack_name.removeprefix("shopstream-prod-")
        roles = [_construct(r["Ref"]).removesuffix("Role") for r in policy["Properties"]["Roles"]]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = set(_as_list(statement["Action"]))
            fingerprints = actions == {"kms:GenerateMac"} and _imports_of(statement["Resource"],
                                                                           "RequestFingerprintKey")
            assert fingerprints or not any(a.startswith("kms:") and a not in ("kms:Decrypt", "kms:GenerateDataKey")
                                           for a in actions), (stack_name, actions)  # no ScheduleKeyDeletion, ...
            imported = _imports_of(statement["Resource"], "CustomerKeys", "CustomerDataKey", "Users")
            for role in roles:
                who = (service, role)
                if "CustomerDataKey" in imported:
                    if "kms:Decrypt" in actions:
                        granted["decrypt"].add(who)
                    if "kms:GenerateDataKey" in actions:
                        granted["generate"].add(who)
                if "CustomerKeys" in imported:
                    granted["read-keys"].add(who)
                    if actions & {"dynamodb:PutItem", "dynamodb:DeleteItem"}:
                        granted["write-keys"].add(who)
                if "Users" in imported:
                    granted["identity"].add(who)
    notices = {("notification", f"{kind}Notices") for kind in ("User", "Order", "Payment", "Shipping", "Cart")}
    assert granted["decrypt"] == {("user", "Api"), ("order", "Api"), ("shipping", "Api"), *notices}
    assert granted["read-keys"] == granted["decrypt"] | {("order", "UserReplica"), ("shipping", "OrderFulfilment")}
    assert granted["write-keys"] == granted["generate"] == {("user", "Api")}
    # The erasure request deletes the sign-in identity if it can; UserErased's handler until it is done.
    assert granted["identity"] == {("user", "Api"), ("user", "IdentityErasure")}


def test_only_apis_with_a_creating_route_fingerprint_request_bodies_with_an_hmac_key(synthesized):
    """The Idempotency-Key bindings and Powertools' records keep a keyed fingerprint of a body, never a plain hash
    (shopstream.key_binding): the HMAC key is the platform's, and only the APIs that take keys may use it."""
    granted = set()
    for stack_name, _, policy in synthesized["prod"].resources("AWS::IAM::Policy"):
        roles = [_construct(r["Ref"]).removesuffix("Role") for r in policy["Properties"]["Roles"]]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if _imports_of(statement["Resource"], "RequestFingerprintKey"):
                assert _as_list(statement["Action"]) == ["kms:GenerateMac"], (stack_name, statement)
                granted |= {(stack_name.removeprefix("shopstream-prod-"), role) for role in roles}
    assert granted == {(s.name, "Api") for s in catalog.SERVICES if s.takes_idempotency_keys}
    assert {s for s, _ in granted} == {"user", "catalog", "inventory", "cart", "order"}
    platform = synthesized["prod"].stack("platform")["Resources"]
    [key] = [k for lid, k in platform.items()
             if lid.startswith("RequestFingerprintKey") and k["Type"] == "AWS::KMS::Key"]
    assert (key["Properties"]["KeySpec"], key["Properties"]["KeyUsage"]) == ("HMAC_256", "GENERATE_VERIFY_MAC")
    assert [a["Properties"]["AliasName"] for a in platform.values() if a["Type"] == "AWS::KMS::Alias"
            and "request-fingerprint" in json.dumps(a)] == ["alias/shopstream-prod-request-fingerprint"]


def test_the_customer_key_store_keeps_no_backup_and_no_stream(synthesized):
    """dev: a plain table and a single-Region key; where data is retained, a global table (no replica yet, so no
    stream) and a multi-Region key, which replication needs and neither could become later (docs/decisions.md)."""
    for env in ENVIRONMENTS:
        kind = "AWS::DynamoDB::Table" if env == "dev" else "AWS::DynamoDB::GlobalTable"
        [(_, _, table)] = list(synthesized[env].resources(kind, "platform"))
        props = table["Properties"]
        assert props["TableName"] == f"shopstream-{env}-customer-keys"
        backups = [props] if env == "dev" else props["Replicas"]
        assert [b["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] for b in backups] == [False]
        assert "StreamSpecification" not in props and "TimeToLiveSpecification" not in props
        assert table.get("DeletionPolicy") == ("Delete" if env == "dev" else "Retain")
        [key] = [k for lid, k in synthesized[env].stack("platform")["Resources"].items()
                 if lid.startswith("CustomerDataKey") and k["Type"] == "AWS::KMS::Key"]
        assert key["Properties"]["EnableKeyRotation"] is True
        assert key["Properties"].get("MultiRegion") is (True if env != "dev" else None)  # dev's key as deployed
        assert key.get("DeletionPolicy") == ("Delete" if env == "dev" else "Retain")
        [fingerprints] = [k for lid, k in synthesized[env].stack("platform")["Resources"].items()
                          if lid.startswith("RequestFingerprintKey") and k["Type"] == "AWS::KMS::Key"]
        assert fingerprints["Properties"].get("MultiRegion") is (True if env != "dev" else None)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_no_function_has_aws_managed_policies_or_wildcard_actions(synthesized, env):
    for _, logical_id, role in synthesized[env].resources("AWS::IAM::Role"):
        if logical_id.startswith("Service"):
            assert "ManagedPolicyArns" not in role["Properties"], logical_id
    for _, logical_id, policy in synthesized[env].resources("AWS::IAM::Policy"):
        if not logical_id.startswith("Service"):
            continue
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            for action in _as_list(statement["Action"]):
                assert "*" not in action, (logical_id, action)


def test_prod_keeps_its_data_and_dev_can_be_torn_down(synthesized):
    for env, policy in (("prod", "Retain"), ("staging", "Retain"), ("dev", "Delete")):
        for kind in ("AWS::DynamoDB::Table", "AWS::S3::Bucket", "AWS::MSK::Cluster", "AWS::SQS::Queue"):
            found = list(synthesized[env].resources(kind))
            assert found, kind
            for _, logical_id, resource in found:
                assert resource.get("DeletionPolicy") == policy, (env, logical_id)


def test_every_service_table_has_pitr_stream_and_ttl(synthesized):
    tables = [t for t in synthesized["prod"].resources("AWS::DynamoDB::Table") if not t[1].startswith("CustomerKeys")]
    assert len(tables) == 2 * len(catalog.SERVICES)  # and the customer key store (its own test)
    billing = load(cdk_context()["environments"], "prod").dynamodb
    for stack, logical_id, table in tables:
        props = table["Properties"]
        assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
        throughput = None if "Idempotency" in logical_id else billing.throughput(stack.rsplit("-", 1)[1])
        if throughput is None:  # on demand: the idempotency tables, and prod's quiet service (user)
            assert props["BillingMode"] == "PAY_PER_REQUEST"
        else:  # provisioned (CloudFormation's default), created at its minimum (docs/decisions.md, 2026-12-05)
            assert props.get("BillingMode", "PROVISIONED") == "PROVISIONED"
            assert props["ProvisionedThroughput"] == {"ReadCapacityUnits": throughput.min_rcu,
                                                      "WriteCapacityUnits": throughput.min_wcu}
        assert props["TimeToLiveSpecification"]["Enabled"] is True
        if "Idempotency" not in logical_id:
            assert props["StreamSpecification"]["StreamViewType"] == "NEW_IMAGE"


def test_prods_key_store_is_provisioned_and_scaled_as_its_tables_and_the_others_are_on_demand(
        synthesized, synthesized_with_replication):
    """Every notice checks and reads a customer's key (docs/decisions.md, 2026-12-05): in prod the key store is
    provisioned (cdk.json dynamodb.keyStore), created at its minimum, auto scaled at the tables' target, the replica
    (when replication is on) reading within the same bounds, throttling alarmed."""
    sized = load(cdk_context()["environments"], "prod").dynamodb.key_store_throughput()
    assert sized is not None
    for synth in (synthesized["prod"], synthesized_with_replication[replicated("prod")]):
        [(_, _, store)] = synth.resources("AWS::DynamoDB::GlobalTable", "platform")
        props = store["Properties"]
        assert props["BillingMode"] == "PROVISIONED"
        write = props["WriteProvisionedThroughputSettings"]["WriteCapacityAutoScalingSettings"]
        assert (write["MinCapacity"], write["MaxCapacity"]) == (sized.min_wcu, sized.max_wcu)
        # switching the table from on demand needs a seed for every auto scaled capacity (CapacityAutoScalingSettings)
        assert write["SeedCapacity"] == sized.min_wcu
        assert write["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] == 70
        for replica in props["Replicas"]:
            read = replica["ReadProvisionedThroughputSettings"]["ReadCapacityAutoScalingSettings"]
            assert (read["MinCapacity"], read["MaxCapacity"]) == (sized.min_rcu, sized.max_rcu)
        alarms = [a for _, i, a in synth.resources("AWS::CloudWatch::Alarm", "platform")
                  if i.startswith("CustomerKeysThrottled")]
        assert len(alarms) == 1 and alarms[0]["Properties"]["EvaluationPeriods"] == 5
    for env in ("dev", "staging"):
        stores = [t for kind in ("AWS::DynamoDB::Table", "AWS::DynamoDB::GlobalTable")
                  for _, i, t in synthesized[env].resources(kind, "platform") if i.startswith("CustomerKeys")]
        assert [t["Properties"]["BillingMode"] for t in stores] == ["PAY_PER_REQUEST"], env


def test_dead_letter_queues_are_encrypted_tls_only_and_alarmed(synthesized):
    prod = synthesized["prod"]
    queues = list(prod.resources("AWS::SQS::Queue"))
    # One per handler, one per relay (services that publish), one per schedule (failed asynchronous runs).
    assert len(queues) == sum(len(s.handlers) + bool(s.publishes) + len(s.schedules) for s in catalog.SERVICES)
    for _stack, logical_id, queue in queues:
        assert queue["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600
        assert "KmsMasterKeyId" in queue["Properties"]
        alarms = [a for _, _, a in prod.resources("AWS::CloudWatch::Alarm")
                  if _refs(a["Properties"].get("Dimensions", [])) == {logical_id}]
        assert alarms, logical_id
    policies = [p for _, _, p in prod.resources("AWS::SQS::QueuePolicy")]
    assert all("aws:SecureTransport" in json.dumps(p) for p in policies) and len(policies) == len(queues)


def test_api_routes_are_the_service_specs_behind_the_jwt_authorizer(synthesized):
    routes = {}
    for _, _, route in synthesized["dev"].resources("AWS::ApiGatewayV2::Route"):
        routes[route["Properties"]["RouteKey"]] = route["Properties"].get("AuthorizationType")
    expected = {f"{r.method} {r.path}" for s in catalog.SERVICES for r in s.routes}
    assert set(routes) == expected
    assert set(routes.values()) == {"JWT"}
    [(_, _, stage)] = synthesized["dev"].resources("AWS::ApiGatewayV2::Stage")
    log_format = json.loads(stage["Properties"]["AccessLogSettings"]["Format"])
    assert log_format["routeKey"] == "$context.routeKey" and log_format["user"] == "$context.authorizer.claims.sub"
    assert stage["Properties"]["DefaultRouteSettings"]["ThrottlingRateLimit"] == 50


def test_audit_archive_is_object_locked_for_seven_years_in_prod(synthesized):
    buckets = [b for _, lid, b in synthesized["prod"].resources("AWS::S3::Bucket") if lid.startswith("AuditArchive")
               and "AccessLogs" not in lid]
    [bucket] = buckets
    lock = bucket["Properties"]["ObjectLockConfiguration"]["Rule"]["DefaultRetention"]
    assert lock == {"Mode": "COMPLIANCE", "Days": 2555}
    assert bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
        "ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"


def test_dev_audit_archive_has_no_object_lock_and_is_emptied_on_destroy(synthesized):
    """`make destroy ENV=dev` must be able to delete the archive: no lock, and emptied first."""
    platform = synthesized["dev"].stack("platform")["Resources"]
    buckets = {lid: b for lid, b in platform.items() if b["Type"] == "AWS::S3::Bucket"}
    assert len(buckets) == 2
    emptied = {r["Properties"]["BucketName"]["Ref"] for r in platform.values()
               if r["Type"] == "Custom::S3AutoDeleteObjects"}
    for logical_id, bucket in buckets.items():
        assert not bucket["Properties"].get("ObjectLockEnabled"), logical_id
        assert logical_id in emptied, logical_id


def test_schema_registry_holds_every_event_schema_with_backward_compatibility(synthesized):
    schemas = [s["Properties"] for _, _, s in synthesized["dev"].resources("AWS::Glue::Schema")]
    assert {s["Name"] for s in schemas} == {f"{e.name}-{e.version}" for e in catalog.EVENTS}
    assert {s["Compatibility"] for s in schemas} == {"BACKWARD"}
    assert {s["DataFormat"] for s in schemas} == {"JSON"}


def test_functions_get_the_environment_the_local_runner_derives_from_the_same_specs(synthesized):
    spec = catalog.service("inventory")
    template = synthesized["dev"].stack("inventory")
    local = catalog.function_environment(spec, environment="local", table_name="t", idempotency_table_name="i",
                                         bootstrap_servers="b", kafka_auth="none",
                                         handler=spec.handler("order-reservations"), dlq_url="q")
    [function] = [r for lid, r in template["Resources"].items()
                  if r["Type"] == "AWS::Lambda::Function" and lid.startswith("ServiceOrderReservations")]
    variables = function["Properties"]["Environment"]["Variables"]
    # Deployment-only: the metric's function dimension, no tracer behind an MSK mapping (X-Ray does
    # not trace those invocations), and the service's per-environment settings (locally: their defaults), dev's
    # whole-batch consumers among them (its mappings run on demand; local/bus.py has the mode too).
    assert set(variables) - {"POWERTOOLS_METRICS_FUNCTION_NAME", "POWERTOOLS_TRACE_DISABLED",
                             "SHOPSTREAM_INVENTORY_STOCK_SHARDS", "SHOPSTREAM_TRACE_EXPORT",
                             "SHOPSTREAM_TRACE_SAMPLE_RATE", "SHOPSTREAM_PARTIAL_BATCH_RESPONSE"} == set(local)
    assert variables["SHOPSTREAM_PARTIAL_BATCH_RESPONSE"] == "false"
    assert variables["POWERTOOLS_TRACE_DISABLED"] == "true"
    # Spans go to X-Ray's OTLP endpoint, every one of dev's traces (cdk.json traceSampleRate).
    assert (variables["SHOPSTREAM_TRACE_EXPORT"], variables["SHOPSTREAM_TRACE_SAMPLE_RATE"]) == ("xray", "1")
    assert variables["SHOPSTREAM_INVENTORY_STOCK_SHARDS"] == "1"  # dev's stockShards
    assert variables["SHOPSTREAM_HANDLER"] == "order-reservations"
    assert variables["SHOPSTREAM_KAFKA_AUTH"] == "iam"
    assert function["Properties"]["Architectures"] == ["arm64"]
    assert function["Properties"]["Runtime"].startswith("python3.1")


def test_every_nag_acknowledgement_has_a_reason(synthesized):
    assert ACKNOWLEDGED
    for ack in ACKNOWLEDGED:
        assert len(ack.reason) >= 20 and ack.rule.startswith("AwsSolutions-"), ack


# --- cross-region replication (cdk.json `replication`; docs/runbooks/failover.md) -------------------------------------
def _manifest_dependencies(synth) -> dict[str, set[str]]:
    manifest = json.loads((synth.outdir / "manifest.json").read_text())
    return {name: {d for d in artifact.get("dependencies", []) if not d.endswith(".assets")}
            for name, artifact in manifest["artifacts"].items() if artifact["type"] == "aws:cloudformation:stack"}


def test_no_environment_ships_replication_and_none_builds_a_second_region(synthesized):
    for env in ENVIRONMENTS:
        assert load(cdk_context()["environments"], env).replication is None
        assert not list(synthesized[env].resources("AWS::MSK::Replicator"))
        assert not list(synthesized[env].resources("AWS::MSK::ClusterPolicy"))
        assert set(synthesized[env].regions.values()) == {load(cdk_context()["environments"], env).region}


@pytest.mark.parametrize("env", REPLICATED_ENVIRONMENTS)
def test_the_replicator_lives_in_the_target_region_with_a_cluster_like_the_source(synthesized_with_replication, env):
    synth = synthesized_with_replication[replicated(env)]
    target = REPLICATION["targetRegion"]
    dr_stacks = {f"shopstream-{env}-dr-network", f"shopstream-{env}-dr-messaging", f"shopstream-{env}-dr-keys"}
    assert {stack for stack, region in synth.regions.items() if region == target} == dr_stacks
    [(stack, _, replicator)] = synth.resources("AWS::MSK::Replicator")
    assert stack == f"shopstream-{env}-dr-messaging"
    source = synth.stack("messaging")["Resources"]["Cluster"]["Properties"]
    copy = synth.stack("dr-messaging")["Resources"]["Cluster"]["Properties"]
    for setting in ("NumberOfBrokerNodes", "KafkaVersion", "EnhancedMonitoring", "StorageMode", "ClientAuthentication",
                    "EncryptionInfo"):
        assert copy.get(setting) == source.get(setting), setting
    assert copy["BrokerNodeGroupInfo"]["InstanceType"] == source["BrokerNodeGroupInfo"]["InstanceType"]
    assert len(copy["BrokerNodeGroupInfo"]["ClientSubnets"]) == len(REPLICATION["targetAvailabilityZones"])
    zones = {r["Properties"]["AvailabilityZone"] for _, _, r in synth.resources("AWS::EC2::Subnet", "dr-network")}
    assert zones == set(REPLICATION["targetAvailabilityZones"])
    # Only the source has the catalog's topics as resources: the Replicator makes the target's.
    assert not list(synth.resources("AWS::MSK::Topic", "dr-messaging"))
    assert len(list(synth.resources("AWS::MSK::Topic", "messaging"))) == len(catalog.TOPICS)
    # The target side deploys after the source side it reads, the key's replica after its primary.
    dependencies = _manifest_dependencies(synth)
    assert f"shopstream-{env}-messaging" in dependencies[f"shopstream-{env}-dr-messaging"]
    assert f"shopstream-{env}-platform" in dependencies[f"shopstream-{env}-dr-keys"]


@pytest.mark.parametrize("env", REPLICATED_ENVIRONMENTS)
def test_the_replicator_copies_every_topic_and_consumer_group_whole_under_the_same_names(
        synthesized_with_replication, env):
    """Failover without reconfiguring a consumer: the catalog's topic names (IDENTICAL), the history from the
    earliest offset, every mapping's consumer group with its offsets."""
    [(_, _, replicator)] = synthesized_with_replication[replicated(env)].resources("AWS::MSK::Replicator")
    [info] = replicator["Properties"]["ReplicationInfoList"]
    topics = info["TopicReplication"]
    assert topics["TopicsToReplicate"] == [t.name for t in catalog.TOPICS]
    assert topics["TopicNameConfiguration"] == {"Type": "IDENTICAL"}
    assert topics["StartingPosition"] == {"Type": "EARLIEST"}
    assert topics["CopyTopicConfigurations"] is True
    groups = info["ConsumerGroupReplication"]
    assert set(groups["ConsumerGroupsToReplicate"]) == {
        catalog.consumer_group_id(s.name, h.name) for s in catalog.SERVICES for h in s.handlers}
    assert groups["SynchroniseConsumerGroupOffsets"] is True


@pytest.mark.parametrize("env", REPLICATED_ENVIRONMENTS)
def test_the_source_admits_the_replicator_in_its_own_template(synthesized_with_replication, env):
    """What docs/deploy.md once asked the operator to do by hand on a cluster CloudFormation owns."""
    synth = synthesized_with_replication[replicated(env)]
    cluster = synth.stack("messaging")["Resources"]["Cluster"]["Properties"]
    assert cluster["BrokerNodeGroupInfo"]["ConnectivityInfo"] == {
        "VpcConnectivity": {"ClientAuthentication": {"Sasl": {"Iam": {"Enabled": True}}}}}
    [(_, _, policy)] = synth.resources("AWS::MSK::ClusterPolicy", "messaging")
    assert policy["Properties"]["ClusterArn"] == {"Fn::GetAtt": ["Cluster", "Arn"]}
    [statement] = policy["Properties"]["Policy"]["Statement"]
    assert statement["Principal"] == {"Service": "kafka.amazonaws.com"}
    assert statement["Action"] == ["kafka:CreateVpcConnection", "kafka:GetBootstrapBrokers", "kafka:DescribeClusterV2"]


@pytest.mark.parametrize("env", REPLICATED_ENVIRONMENTS)
def test_the_target_region_can_open_what_is_sealed_and_erasure_reaches_it(synthesized_with_replication, env):
    synth = synthesized_with_replication[replicated(env)]
    [(_, _, store)] = synth.resources("AWS::DynamoDB::GlobalTable", "platform")
    assert {r["Region"] for r in store["Properties"]["Replicas"]} == {"eu-west-1", REPLICATION["targetRegion"]}
    assert all(r["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is False
               for r in store["Properties"]["Replicas"])
    assert store["Properties"]["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    [(_, _, replica)] = synth.resources("AWS::KMS::ReplicaKey", "dr-keys")
    assert replica.get("DeletionPolicy") == "Retain" and replica["Properties"]["PendingWindowInDays"] == 30
    [(_, _, alias)] = synth.resources("AWS::KMS::Alias", "dr-keys")
    assert alias["Properties"]["AliasName"] == f"alias/shopstream-{env}-customer-data"


@pytest.mark.parametrize("env", REPLICATED_ENVIRONMENTS)
def test_cfn_lint_is_clean_with_replication(synthesized_with_replication, env):
    _cfn_lint(synthesized_with_replication[replicated(env)])


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_cfn_lint_is_clean(synthesized, env):
    _cfn_lint(synthesized[env])


def _cfn_lint(synth) -> None:
    templates = sorted(str(p) for p in synth.outdir.glob("*.template.json"))
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    # W3010 (hard-coded AZs) is intended: each environment names its zones so that the MSK client
    # subnets synthesized are the ones deployed (docs/decisions.md, 2026-11-29).
    result = subprocess.run([str(cfn_lint), "--ignore-checks", "W3005", "W3010", "--", *templates],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_pinned_cdk_cli_synthesizes_the_app_and_the_same_templates_again(synthesized, tmp_path):
    """A second synthesis, by another process through the CLI, gives the same templates and asset
    hashes: an unchanged redeploy has nothing to change (`cdk diff` shows no differences)."""
    result = subprocess.run(["npx", "--no-install", "cdk", "synth", "-c", "env=dev", "--quiet", "-o", str(tmp_path)],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    again = {p.name.removesuffix(".template.json"): json.loads(p.read_text())
             for p in tmp_path.glob("*.template.json")}
    assert set(again) == set(synthesized["dev"].templates)
    for stack, template in synthesized["dev"].templates.items():
        assert _deployed_part(again[stack]) == _deployed_part(template), stack


def _deployed_part(template: dict) -> dict:
    """Without what the CLI adds for its own bookkeeping (construct paths, asset metadata, version report)."""
    template = json.loads(json.dumps(template))
    template["Resources"].pop("CDKMetadata", None)
    template.get("Conditions", {}).pop("CDKMetadataAvailable", None)
    for resource in template["Resources"].values():
        metadata = {k: v for k, v in resource.pop("Metadata", {}).items() if not k.startswith("aws:")}
        if metadata:
            resource["Metadata"] = metadata
    return template


def test_only_handlers_that_need_them_get_the_archive_and_email(synthesized):
    def actions_of(template, prefix):
        """Each function's actions, except on its own service's failed-batch bucket (every mapping's
        on-failure destination), and its environment variables."""
        found = {}
        for logical_id, resource in template["Resources"].items():
            if resource["Type"] == "AWS::Lambda::Function" and logical_id.startswith(f"Service{prefix}"):
                role = resource["Properties"]["Role"]["Fn::GetAtt"][0]
                found[logical_id] = {a for s in _statements(template, role) for a in _as_list(s["Action"])
                                     if not all(_refs(r) and all(ref.startswith("ServiceFailedBatches")
                                                                 for ref in _refs(r)) for r in _as_list(s["Resource"]))}
                found[logical_id] |= set(resource["Properties"]["Environment"]["Variables"])
        return found

    audit = synthesized["dev"].stack("audit")
    for logical_id, granted in actions_of(audit, "Trail").items():
        assert "s3:PutObject" in granted and "SHOPSTREAM_AUDIT_ARCHIVE_BUCKET" in granted, logical_id
    for logical_id, granted in actions_of(audit, "Analytics").items():
        assert "s3:PutObject" not in granted, logical_id
    notices = actions_of(synthesized["dev"].stack("notification"), "")
    assert notices and all("ses:SendEmail" in g for lid, g in notices.items() if "Notices" in lid)
    assert not any("ses:SendEmail" in g for lid, g in notices.items() if "Relay" in lid)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_layer_versions_and_bootstrap_brokers_reach_services_through_ssm_not_exports(synthesized, env):
    synth = synthesized[env]
    platform = synth.stack("platform")["Resources"]
    layers = {lid: r for lid, r in platform.items() if r["Type"] == "AWS::Lambda::LayerVersion"}
    assert len(layers) == 2
    assert all(r["DeletionPolicy"] == "Retain" for r in layers.values())  # rollbacks need the old version
    written = {r["Properties"]["Name"] for _, _, r in synth.resources("AWS::SSM::Parameter")}
    assert written == {f"/shopstream/{env}/layers/shared", f"/shopstream/{env}/layers/dependencies",
                       f"/shopstream/{env}/kafka/bootstrap-servers-iam"}
    for spec in catalog.SERVICES:
        template = synth.stack(spec.name)
        read = {p["Default"] for p in template["Parameters"].values()
                if p["Type"] == "AWS::SSM::Parameter::Value<String>" and p["Default"].startswith("/shopstream/")}
        assert read == written, spec.name
        imported = json.dumps(_imports(template))
        assert "Layers" not in imported and "BootstrapBrokers" not in imported, spec.name


def _imports(value) -> list:
    if isinstance(value, dict):
        if "Fn::ImportValue" in value:
            return [value["Fn::ImportValue"]]
        return [i for inner in value.values() for i in _imports(inner)]
    if isinstance(value, list):
        return [i for inner in value for i in _imports(inner)]
    return []


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_only_the_relays_and_direct_publishers_run_in_the_vpc_and_no_function_uses_active_tracing(synthesized, env):
    direct = load(cdk_context()["environments"], env).direct_publish
    placed, publishing = {}, set()
    for stack_name, logical_id, function in synthesized[env].resources("AWS::Lambda::Function"):
        if not logical_id.startswith("Service"):
            continue
        props = function["Properties"]
        variables = props.get("Environment", {}).get("Variables", {})
        placed[(stack_name, _construct(logical_id))] = ("VpcConfig" in props,
                                                        props.get("TracingConfig", {}).get("Mode"))
        if variables.get(catalog.DIRECT_PUBLISH_ENV) == "true" and _construct(logical_id) != "Relay":
            entry = "api" if _construct(logical_id) == "Api" else variables["SHOPSTREAM_HANDLER"]
            publishing.add((stack_name, _construct(logical_id)))
            assert f"{variables['SHOPSTREAM_SERVICE']}.{entry}" in catalog.DIRECT_PUBLISHERS, logical_id
    for (stack_name, name), (in_vpc, tracing) in placed.items():
        assert in_vpc == (name == "Relay" or (stack_name, name) in publishing), (stack_name, name)
        # Every function exports its own OpenTelemetry spans (shopstream.tracing): no X-Ray active tracing.
        assert tracing is None, (stack_name, name)
    assert sum(1 for _, name in placed if name == "Relay") == sum(1 for s in catalog.SERVICES if s.publishes)
    # Where cdk.json turns direct publish on, exactly the catalog's direct publishers publish directly.
    assert len(publishing) == (len(catalog.DIRECT_PUBLISHERS) if direct else 0), publishing


def test_api_functions_use_snapstart_through_an_alias(synthesized):
    template = synthesized["dev"].stack("order")
    [api] = [r for lid, r in template["Resources"].items()
             if r["Type"] == "AWS::Lambda::Function" and lid.startswith("ServiceApi")]
    assert api["Properties"]["SnapStart"] == {"ApplyOn": "PublishedVersions"}
    aliases = [r for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Alias"]
    assert [a["Properties"]["Name"] for a in aliases] == ["live"]
    integrations = [r for r in template["Resources"].values() if r["Type"] == "AWS::ApiGatewayV2::Integration"]
    assert all("ApiLive" in json.dumps(i["Properties"]["IntegrationUri"]) for i in integrations)


def test_a_long_poll_fits_its_function_and_its_function_fits_the_integration(synthesized):
    """GET /orders/{orderId}?waitFor= waits up to 25 s: the order API function's timeout allows it, the other
    APIs keep their short one, and every function times out before API Gateway gives up on it."""
    from shopstream import long_poll

    for spec in catalog.SERVICES:
        if not spec.routes:
            continue
        template = synthesized["dev"].stack(spec.name)
        [api] = [r for lid, r in template["Resources"].items()
                 if r["Type"] == "AWS::Lambda::Function" and lid.startswith("ServiceApi")]
        waits = any(route.long_poll for route in spec.routes)
        assert api["Properties"]["Timeout"] == (long_poll.LONG_POLL_FUNCTION_TIMEOUT_SECONDS if waits else 10)
        integrations = [r for r in template["Resources"].values() if r["Type"] == "AWS::ApiGatewayV2::Integration"]
        assert [i["Properties"]["TimeoutInMillis"] for i in integrations] == [
            long_poll.INTEGRATION_TIMEOUT_SECONDS * 1000] * len(integrations)
    assert [spec.name for spec in catalog.SERVICES if any(r.long_poll for r in spec.routes)] == ["order"]


# --- issue 22: the user pool's e-mail, the configuration's revision, Express brokers, the mappings' metrics ---------
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_user_pool_sends_through_ses_where_configured_and_the_cluster_follows_its_configuration(synthesized, env):
    config = load(cdk_context()["environments"], env)
    [(_, _, pool)] = synthesized[env].resources("AWS::Cognito::UserPool")
    email = pool["Properties"].get("EmailConfiguration")
    if config.email is None:
        assert email is None
    else:
        assert email["EmailSendingAccount"] == "DEVELOPER" and email["From"] == config.email.from_header
        assert json.dumps(email["SourceArn"]).endswith(f':ses:{config.region}:", {{"Ref": "AWS::AccountId"}}, '
                                                       f'":identity/{config.email.identity}"]]}}')
    [(_, _, cluster)] = synthesized[env].resources("AWS::MSK::Cluster")
    assert cluster["Properties"]["ConfigurationInfo"]["Revision"] == {
        "Fn::GetAtt": ["BrokerConfiguration", "LatestRevision.Revision"]}
    assert cluster["Properties"]["EnhancedMonitoring"] == config.msk_monitoring_level


def test_express_brokers_synthesize_a_cluster_with_no_storage_and_only_the_settings_express_takes(tmp_path):
    from tests.infra.readiness import Deployment, check

    express = synthesize("dev", tmp_path, {
        "availabilityZones": ["eu-west-1a", "eu-west-1b", "eu-west-1c"], "brokerInstanceType": "express.m7g.large",
        "brokerCount": 3, "brokerVolumeGiB": None, "replicationFactor": 3, "minInsyncReplicas": 2})
    [(_, _, cluster)] = express.resources("AWS::MSK::Cluster")
    props = cluster["Properties"]
    assert "StorageInfo" not in props["BrokerNodeGroupInfo"] and "StorageMode" not in props
    [(_, _, configuration)] = express.resources("AWS::MSK::Configuration")
    assert configuration["Properties"]["ServerProperties"] == (
        "auto.create.topics.enable=false\nallow.everyone.if.no.acl.found=false")
    for _, _, topic in express.resources("AWS::MSK::Topic"):
        assert topic["Properties"]["ReplicationFactor"] == 3
        assert "min.insync.replicas" not in json.loads(base64.b64decode(topic["Properties"]["Configs"]))
    deployment = Deployment("dev", express.templates, express.regions)
    for rule in ("msk_brokers_are_a_size_msk_offers_and_the_cluster_suits_them",
                 "msk_clusters_follow_their_configurations_latest_revision",
                 "msk_brokers_spread_evenly_over_client_subnets"):
        assert check(deployment, rule) == [], rule


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_kafka_mapping_emits_its_metrics_and_system_logs_and_the_relays_list_streams_anywhere(synthesized, env):
    """Provisioned mode only: on demand (dev) a mapping has no system logs, and no metrics to pay for."""
    on_demand = load(cdk_context()["environments"], env).on_demand_pollers
    for _, logical_id, props in _kafka_mappings(synthesized[env]):
        if on_demand:
            assert "MetricsConfig" not in props and "LoggingConfig" not in props, logical_id
            continue
        assert props["MetricsConfig"] == {"Metrics": ["EventCount", "ErrorCount", "KafkaMetrics"]}, logical_id
        assert props["LoggingConfig"] == {"SystemLogLevel": "WARN"}, logical_id
    for _, logical_id, policy in synthesized[env].resources("AWS::IAM::Policy"):
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if "dynamodb:ListStreams" in statement["Action"]:
                assert statement["Resource"] == "*", logical_id
