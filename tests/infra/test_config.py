"""cdk.json environments: every one loads, and a configuration AWS would refuse is refused at synth
with a message that names the setting (no synthesis here: these run in milliseconds)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from shopstream import catalog
from stacks.config import ConfigError, load
from tests.infra.conftest import ENVIRONMENTS, ROOT, cdk_context


def _environments(name: str = "prod", **overrides) -> dict:
    environments = cdk_context()["environments"]
    return {**environments, name: {**environments[name], **overrides}}


def _prod_dynamodb(**changes) -> dict:
    """prod's dynamodb settings with ``changes`` (None removes a setting)."""
    settings = {**cdk_context()["environments"]["prod"]["dynamodb"], **changes}
    return {"dynamodb": {k: v for k, v in settings.items() if v is not None}}


def _one_table(**throughput) -> dict:
    sized = {"minWcu": 1, "maxWcu": 10, "minRcu": 1, "maxRcu": 10}
    return {"order": {**sized, **throughput, "index": sized}}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_environment_loads_and_names_its_region_and_zones(env):
    config = load(cdk_context()["environments"], env)
    assert config.region and 2 <= len(config.availability_zones) <= 3
    assert config.broker_count % len(config.availability_zones) == 0


@pytest.mark.parametrize(("env", "overrides", "named"), [
    # Amazon MSK distributes brokers evenly over the client subnets (one per AZ).
    # https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-properties-msk-cluster-brokernodegroupinfo.html
    ("prod", {"availabilityZones": ["eu-west-1a", "eu-west-1b"], "brokerCount": 9},
     "brokerCount (9) must be a multiple"),
    ("dev", {"brokerCount": 3}, "brokerCount (3) must be a multiple of the number of availabilityZones (2)"),
    ("prod", {"availabilityZones": ["eu-west-1a", "eu-west-1a", "eu-west-1b"]}, "availabilityZones"),
    ("prod", {"availabilityZones": ["eu-west-1a", "eu-west-1b", "eu-west-1c", "eu-west-1d"]},
     "availabilityZones"),
    ("prod", {"availabilityZones": ["us-east-1a", "us-east-1b", "us-east-1c"]}, "is not an Availability Zone"),
    ("dev", {"region": "us-west-1", "availabilityZones": ["us-west-1a", "us-west-1b", "us-west-1c"],
             "brokerCount": 3, "replicationFactor": 3, "minInsyncReplicas": 2}, "exactly two client subnets"),
    ("prod", {"region": None}, "region"),
    ("prod", {"account": "12345"}, "account"),
    # Object Lock keeps object versions until retention ends: the bucket could not be deleted.
    # https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-lock.html
    ("dev", {"auditRetention": {"mode": "governance", "days": 1}}, "auditRetention must be null"),
    ("prod", {"auditRetention": None}, "auditRetention (Object Lock mode and days) is required"),
    ("prod", {"logRetentionDays": 42}, "logRetentionDays"),
    ("prod", {"brokerVolumeGiB": 20000}, "brokerVolumeGiB"),
    ("prod", {"maxAzs": 3}, "maxAzs"),  # the old setting: replaced by availabilityZones
    ("prod", {"existingClusterArn": "arn:aws:kafka:us-east-1:111122223333:cluster/x/y"}, "existingClusterArn"),
    # Partitions and pollers (docs/capacity.md): a topic the catalog lacks; more partition replicas than MSK
    # recommends per broker; a minimum Lambda refuses; a poller group scaling past 2,000 pollers.
    ("prod", {"partitions": {"orders": 60}}, "partitions: 'orders' is not a topic"),
    ("prod", {"brokerCount": 3, "partitions": {"order-events": 1000}},
     "partition replicas on 3 kafka.m7g.xlarge brokers"),
    ("dev", {"eventPollers": {"minimum": 0, "criticalPathMinimum": 1}}, "eventPollers.minimum"),
    ("dev", {"eventPollers": {"minimum": 1, "criticalPathMinimum": 201}}, "eventPollers.criticalPathMinimum"),
    # On demand Lambda scales the pollers (no minimum to set); provisioned, each mapping has one.
    ("dev", {"eventPollers": {"mode": "on-demand", "minimum": 1}}, "eventPollers: minimum: no minimum in on-demand"),
    ("prod", {"eventPollers": {"mode": "provisioned", "minimum": 1}}, "criticalPathMinimum are required"),
    ("prod", {"eventPollers": {"mode": "sometimes", "minimum": 1, "criticalPathMinimum": 1}}, "eventPollers.mode"),
    ("dev", {"mskMonitoring": "PER_PARTITION"}, "mskMonitoring"),
    ("prod", {"brokerInstanceType": "kafka.m7g.16xlarge", "partitions": {"order-events": 2400, "cart-events": 2400}},
     "may scale to"),
    # the trail lets events go after trailRetentionDays; the archive must keep them at least as long
    ("prod", {"trailRetentionDays": 0}, "trailRetentionDays"),
    ("prod", {"trailRetentionDays": 2556}, "trailRetentionDays (2556) must not exceed auditRetention.days (2555)"),
    # DynamoDB capacity (docs/decisions.md, 2026-12-05): provisioned needs its sizes, on demand takes none;
    # auto scaling's target is 20-90%; the account's quotas bound each table and all of them together
    # https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html
    ("prod", _prod_dynamodb(targetUtilisation=None), "needs targetUtilisation"),
    ("dev", {"dynamodb": {"billing": "on-demand", "targetUtilisation": 0.7}}, "set billing to \"provisioned\""),
    ("prod", _prod_dynamodb(targetUtilisation=0.95), "dynamodb.targetUtilisation"),
    ("prod", _prod_dynamodb(tables={"orders": _one_table()["order"]}), "'orders' is not a service"),
    ("prod", _prod_dynamodb(tables=_one_table(minWcu=20)), "minWcu (20) exceeds maxWcu (10)"),
    ("prod", _prod_dynamodb(quotas=None), "tables.audit: maxWcu 144000 is above the per-table quota (40000)"),
    ("prod", _prod_dynamodb(quotas={"tableUnits": 150000, "accountUnits": 80000}),
     "the maximum WCU of all tables and indexes add up to 608700"),  # with the key store's 21,000
    ("prod", _prod_dynamodb(keyStore={"minWcu": 10, "maxWcu": 160000, "minRcu": 10, "maxRcu": 10}),
     "keyStore: maxWcu 160000 is above the per-table quota (150000)"),
    ("dev", {"dynamodb": {"billing": "on-demand", "keyStore": {"minWcu": 1, "maxWcu": 1, "minRcu": 1, "maxRcu": 1}}},
     "set billing to \"provisioned\""),
    # an adjustment writes every stock counter and an event for each in one transaction (100 actions)
    ("prod", {"stockShards": 49}, "stockShards"),
    ("dev", {"stockShards": 0}, "stockShards"),
    # the key policies name the break-glass role as arn:...:role/<name>: an IAM role name, no path, no wildcard
    # https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateRole.html
    ("prod", {"breakGlassRoleName": "security/shopstream-break-glass"}, "breakGlassRoleName"),
    ("prod", {"breakGlassRoleName": "*"}, "breakGlassRoleName"),
    ("prod", {"breakGlassRoleName": "r" * 65}, "breakGlassRoleName"),
    ("prod", {"breakGlassRoleName": ""}, "breakGlassRoleName"),
])
def test_a_configuration_aws_would_refuse_is_refused_naming_the_setting(env, overrides, named):
    with pytest.raises(ConfigError) as refused:
        load(_environments(env, **overrides), env)
    assert named in str(refused.value), str(refused.value)
    assert f"environment {env!r}" in str(refused.value)


def test_an_environment_name_that_makes_a_bucket_name_too_long_is_refused():
    environments = cdk_context()["environments"]
    with pytest.raises(ConfigError, match="bucket name .* S3 allows 63"):
        load({"sixteenletterenv": environments["prod"] | {"region": "ap-southeast-5", "availabilityZones": [
            "ap-southeast-5a", "ap-southeast-5b", "ap-southeast-5c"]}}, "sixteenletterenv")


def test_the_break_glass_role_is_named_per_environment_with_a_default():
    environments = cdk_context()["environments"]
    assert load(_environments("prod", breakGlassRoleName="acme-kms-break-glass"), "prod").break_glass_role_name == \
        "acme-kms-break-glass"
    without = {name: {k: v for k, v in env.items() if k != "breakGlassRoleName"} for name, env in environments.items()}
    assert load(without, "staging").break_glass_role_name == "shopstream-break-glass"


def test_pollers_stay_in_lambdas_ranges_and_critical_mappings_get_their_own_group():
    for env in ("staging", "prod"):  # provisioned (dev's are on demand: test_dev_runs_its_mappings_on_demand...)
        config = load(cdk_context()["environments"], env)
        groups = config.poller_groups()
        assert set(groups) == {f"shopstream-{env}-saga", f"shopstream-{env}-events"}
        assert all(h.critical_path for h in groups[f"shopstream-{env}-saga"])
        for handlers in groups.values():
            for handler in handlers:
                minimum, maximum = config.pollers(handler)
                assert 1 <= minimum <= maximum <= config.partition_count(handler.topic)


def test_an_idle_provisioned_environment_keeps_its_minimum_pollers_per_mapping_in_two_shared_groups():
    config = load(cdk_context()["environments"], "staging")
    minimums = {name: sum(config.pollers(h)[0] for h in handlers) for name, handlers in config.poller_groups().items()}
    assert minimums == {"shopstream-staging-saga": 4 * 2, "shopstream-staging-events": 31}


def test_an_unknown_environment_is_refused():
    with pytest.raises(ConfigError, match="unknown environment 'qa'"):
        load(cdk_context()["environments"], "qa")


def test_the_app_exits_with_the_message_instead_of_a_traceback(tmp_path):
    """What `make synth ENV=...` prints: the CDK app refuses before building anything."""
    bad = {"dev": {**cdk_context()["environments"]["dev"], "brokerCount": 3}}
    import json

    result = subprocess.run(
        [sys.executable, "app.py"], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "CDK_OUTDIR": str(tmp_path),
             "CDK_CONTEXT_JSON": json.dumps({"env": "dev", "environments": bad})})
    assert result.returncode == 1
    assert "brokerCount (3) must be a multiple of the number of availabilityZones (2)" in result.stderr
    assert "Traceback" not in result.stderr


# --- issue 22: Express brokers, the user pool's e-mail ---------------------------------------------------------------
EXPRESS = {"brokerInstanceType": "express.m7g.xlarge", "brokerVolumeGiB": None, "tieredStorage": False}


@pytest.mark.parametrize(("env", "overrides", "named"), [
    # Broker sizes MSK offers: https://docs.aws.amazon.com/msk/latest/developerguide/broker-instance-sizes.html
    ("prod", {"brokerInstanceType": "kafka.m7g.medium"}, "'kafka.m7g.medium' is not a broker size MSK offers"),
    ("prod", {"brokerInstanceType": "express.m5.large"}, "is not a broker size MSK offers"),
    ("prod", {"brokerVolumeGiB": None}, "brokerVolumeGiB is required"),
    # Express: storage managed by MSK, 3 AZs only, replication 3 and min.insync.replicas 2 fixed
    # (https://docs.aws.amazon.com/msk/latest/developerguide/msk-broker-types-express.html, bestpractices-express.html)
    ("prod", {**EXPRESS, "brokerVolumeGiB": 1000}, "brokerVolumeGiB must be null with express.m7g.xlarge"),
    ("prod", {**EXPRESS, "tieredStorage": True}, "tieredStorage must be false with express.m7g.xlarge"),
    ("dev", {**EXPRESS, "brokerCount": 2}, "Express brokers run in exactly 3 Availability Zones, got 2"),
    ("staging", {**EXPRESS, "minInsyncReplicas": 1}, "replicationFactor and minInsyncReplicas must be 3 and 2"),
    ("prod", {**EXPRESS, "brokerCount": 3, "partitions": {"order-events": 1000}},
     "partition replicas on 3 express.m7g.xlarge brokers"),
    # The user pool's e-mail: through SES where data is retained, from the identity's address or domain.
    ("prod", {"email": None}, "email (the SES identity the user pool sends from) is required"),
    ("prod", {"email": {"sender": "shop@shopstream.example", "identity": "elsewhere.example"}},
     "must be the sender 'shop@shopstream.example' or its domain"),
    ("staging", {"email": {"sender": "shopstream", "identity": "shopstream.example"}}, "email.sender"),
])
def test_brokers_and_email_aws_would_refuse_are_refused_naming_the_setting(env, overrides, named):
    with pytest.raises(ConfigError) as refused:
        load(_environments(env, **overrides), env)
    assert named in str(refused.value), str(refused.value)


def test_express_brokers_are_accepted_where_msk_offers_them():
    prod = load(_environments("prod", **EXPRESS, brokerCount=3), "prod")
    assert prod.express_brokers and prod.broker_volume_gi_b is None and prod.partitions_per_broker == 1000
    staging = load(_environments("staging", **{**EXPRESS, "brokerInstanceType": "express.m7g.large"}), "staging")
    assert staging.express_brokers and staging.broker_count == 3
    for env in ENVIRONMENTS:  # today's environments are all on Standard brokers
        assert not load(cdk_context()["environments"], env).express_brokers


def test_express_sizing_of_prod_at_2000_orders_per_second():
    """docs/capacity.md, Express brokers: egress (each mapping reads its whole topic) decides, within the 3 AZs'
    minimum for xlarge (~41 MB/s in, ~122 MB/s out)."""
    from tools import capacity

    prod = load(cdk_context()["environments"], "prod")
    partitions = {t.name: prod.partition_count(t.name) for t in catalog.TOPICS}
    assert capacity.express_brokers_needed("express.m7g.xlarge", 2000, partitions) == {
        "ingress": 2, "egress": 2, "partitions": 1, "brokers": 3}
    assert capacity.express_brokers_needed("express.m7g.large", 2000, partitions)["egress"] == 4
    assert capacity.express_brokers_needed("express.m7g.large", 2000, partitions)["brokers"] == 6
    with pytest.raises(ValueError, match="no price for express.m7g.xlarge"):
        capacity.monthly_cost(load(_environments("prod", **EXPRESS, brokerCount=3), "prod"), 0)


def test_staging_and_prod_send_the_user_pools_email_from_the_notification_services_identity():
    for env in ("staging", "prod"):
        config = load(cdk_context()["environments"], env)
        assert config.email is not None
        assert config.service_settings("notification") == {"SHOPSTREAM_NOTIFICATION_SENDER": config.email.sender}
    assert load(cdk_context()["environments"], "dev").email is None  # Cognito's own sending, dev only
    assert load(cdk_context()["environments"], "dev").service_settings("notification") == {}


def test_prod_provisions_its_busy_tables_and_the_others_are_billed_on_demand():
    for env in ("dev", "staging"):
        billing = load(cdk_context()["environments"], env).dynamodb
        assert billing.billing == "on-demand" and all(billing.throughput(s.name) is None for s in catalog.SERVICES)
    prod = load(cdk_context()["environments"], "prod").dynamodb
    assert prod.target_utilisation == 0.7
    assert {s.name for s in catalog.SERVICES if prod.throughput(s.name) is None} == {"user"}


def test_the_audit_functions_keep_the_trail_for_their_environments_retention():
    days = {env: load(cdk_context()["environments"], env).service_settings("audit") for env in ENVIRONMENTS}
    assert days == {env: {"SHOPSTREAM_TRAIL_RETENTION_DAYS": kept}
                    for env, kept in (("dev", "7"), ("staging", "7"), ("prod", "7"))}


def test_the_cost_model_counts_the_cloudwatch_metrics_each_monitoring_level_bills():
    from tools import capacity

    counts = {env: capacity.cloudwatch_metrics(load(cdk_context()["environments"], env)) for env in ENVIRONMENTS}
    # dev: DEFAULT monitoring bills no MSK metric, and its on-demand mappings emit none (no MetricsConfig).
    # prod: 6 brokers x 47, 10 topics x 6 brokers x 3, 2 lag metrics per partition each of the 35 groups reads
    # (390 on the key-parallel partitions of docs/capacity.md), 9 per mapping
    assert counts == {"dev": 0, "staging": 1418, "prod": 6 * 47 + 10 * 6 * 3 + 2 * 390 + 35 * 9}
    assert capacity.cloudwatch_metrics_cost(10_000) == pytest.approx(3000)
    assert capacity.cloudwatch_metrics_cost(12_000) == pytest.approx(3200)


# --- issue 22, section 1: cross-region replication ----------------------------------------------------------------
def _replicating(env: str, replication: dict | None = None, **overrides) -> dict:
    from tests.infra.conftest import REPLICATION

    return _environments(env, replication={**REPLICATION, **(replication or {})}, **overrides)


@pytest.mark.parametrize(("env", "replication", "overrides", "named"), [
    # MSK Replicator: m5.large or larger, three brokers in both clusters, four on two zones
    # (https://docs.aws.amazon.com/msk/latest/developerguide/msk-replicator-supported-clusters-versions.html).
    ("dev", None, {}, "MSK Replicator does not support kafka.t3.small brokers"),
    ("dev", None, {"brokerInstanceType": "kafka.m5.large"},
     "brokerCount (2) must be at least 4 for replication with 2 availabilityZones"),
    ("staging", {"targetAvailabilityZones": ["eu-central-1a", "eu-central-1b"]}, {},
     "brokerCount (3) must be at least 4 for replication with 2 replication.targetAvailabilityZones"),
    ("prod", {"targetRegion": "eu-west-1"}, {}, "replication.targetRegion must differ from region"),
    ("prod", {"targetAvailabilityZones": ["eu-west-1a", "eu-west-1b", "eu-west-1c"]}, {},
     "'eu-west-1a' is not an Availability Zone of region 'eu-central-1'"),
    ("prod", {"targetAvailabilityZones": ["eu-central-1a", "eu-central-1a", "eu-central-1b"]}, {}, "repeats a zone"),
    # The target is built like the source: Express brokers there need three zones as well.
    ("prod", {"targetAvailabilityZones": ["eu-central-1a", "eu-central-1b"]},
     {"brokerInstanceType": "express.m7g.xlarge", "brokerVolumeGiB": None, "tieredStorage": False},
     "Express brokers run in exactly 3 Availability Zones"),
    # The source's multi-VPC connectivity and cluster policy are set on a cluster these stacks own.
    ("prod", None, {"existingClusterArn": "arn:aws:kafka:eu-west-1:111122223333:cluster/x/y"},
     "replication needs a cluster these stacks own"),
    # The settings of issue 22 (a target cluster made by hand, named by ARN) are no longer taken.
    ("prod", {"targetClusterArn": "arn:aws:kafka:eu-central-1:111122223333:cluster/shopstream-dr/abc"}, {},
     "replication.targetClusterArn"),
])
def test_replication_aws_would_refuse_is_refused_naming_the_setting(env, replication, overrides, named):
    with pytest.raises(ConfigError) as refused:
        load(_replicating(env, replication, **overrides), env)
    assert named in str(refused.value), str(refused.value)


def test_a_replicated_environment_is_built_again_in_its_target_region_with_the_same_brokers():
    prod = load(_replicating("prod"), "prod")
    replica = prod.replica()
    assert (replica.region, replica.availability_zones) == ("eu-central-1", ["eu-central-1a", "eu-central-1b",
                                                                            "eu-central-1c"])
    assert replica.replication is None and replica.name == prod.name
    assert (replica.broker_instance_type, replica.broker_count, replica.tiered_storage, replica.partitions) == (
        prod.broker_instance_type, prod.broker_count, prod.tiered_storage, prod.partitions)
    with pytest.raises(ValueError, match="has no replication"):
        replica.replica()


def test_what_cannot_become_multi_region_later_is_multi_region_wherever_an_environment_may_fail_over():
    environments = cdk_context()["environments"]
    assert [env for env in ENVIRONMENTS if load(environments, env).may_fail_over] == ["staging", "prod"]


def test_trace_sampling_is_set_per_environment_between_none_and_all():
    rates = {env: load(cdk_context()["environments"], env).trace_sample_rate for env in ENVIRONMENTS}
    assert rates["dev"] == 1.0 and 0 < rates["prod"] < rates["staging"] < 1  # dev keeps every trace
    for wrong in (-0.1, 1.5, "often"):
        with pytest.raises(ConfigError, match="traceSampleRate"):
            load(_environments("prod", traceSampleRate=wrong), "prod")
    without = {k: v for k, v in cdk_context()["environments"]["dev"].items() if k != "traceSampleRate"}
    with pytest.raises(ConfigError, match="traceSampleRate"):
        load({**cdk_context()["environments"], "dev": without}, "dev")


def test_dev_runs_its_mappings_on_demand_and_the_others_provisioned():
    """Dev idles without event poller units, per-metric monitoring or a large volume (docs/decisions.md, 2026-12-05);
    its consumers fail a batch whole, since on-demand mappings take no partial batch response."""
    configs = {env: load(cdk_context()["environments"], env) for env in ENVIRONMENTS}
    dev = configs["dev"]
    assert dev.on_demand_pollers and dev.poller_groups() == {}
    assert dev.consumer_settings() == {"SHOPSTREAM_PARTIAL_BATCH_RESPONSE": "false"}
    assert (dev.msk_monitoring_level, dev.broker_volume_gi_b) == ("DEFAULT", 10)
    handler = catalog.service("order").handler("payment-outcomes")
    with pytest.raises(ValueError, match="on demand: none are provisioned"):
        dev.pollers(handler)
    for env in ("staging", "prod"):
        config = configs[env]
        assert not config.on_demand_pollers and config.consumer_settings() == {}
        assert config.msk_monitoring_level == "PER_TOPIC_PER_PARTITION"  # retained: every partition's lag
        assert sum(len(mappings) for mappings in config.poller_groups().values()) == 35
        # never more pollers than the topic has partitions (prod's key-parallel payment-events has 6)
        minimum = config.event_pollers.critical_path_minimum
        assert minimum is not None  # provisioned
        assert config.pollers(handler)[0] == min(minimum, config.partition_count(handler.topic))
