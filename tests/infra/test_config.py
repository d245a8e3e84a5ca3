"""cdk.json environments: every one loads, and a configuration AWS would refuse is refused at synth
with a message that names the setting (no synthesis here: these run in milliseconds)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from stacks.config import ConfigError, load
from tests.infra.conftest import ENVIRONMENTS, ROOT, cdk_context


def _environments(name: str = "prod", **overrides) -> dict:
    environments = cdk_context()["environments"]
    return {**environments, name: {**environments[name], **overrides}}


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
    ("prod", {"brokerInstanceType": "kafka.m7g.16xlarge", "partitions": {"order-events": 2400, "cart-events": 2400}},
     "may scale to"),
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
    for env in ENVIRONMENTS:
        config = load(cdk_context()["environments"], env)
        groups = config.poller_groups()
        assert set(groups) == {f"shopstream-{env}-saga", f"shopstream-{env}-events"}
        assert all(h.critical_path for h in groups[f"shopstream-{env}-saga"])
        for handlers in groups.values():
            for handler in handlers:
                minimum, maximum = config.pollers(handler)
                assert 1 <= minimum <= maximum <= config.partition_count(handler.topic)


def test_an_idle_dev_environment_keeps_one_poller_per_mapping_in_two_shared_groups():
    config = load(cdk_context()["environments"], "dev")
    minimums = {name: sum(config.pollers(h)[0] for h in handlers) for name, handlers in config.poller_groups().items()}
    assert minimums == {"shopstream-dev-saga": 4, "shopstream-dev-events": 31}


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
