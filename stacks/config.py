"""Per-environment settings, read from cdk.json context (``-c env=dev|staging|prod``).

An environment names its region and the Availability Zones it uses, so the template that is
synthesized is the one that deploys (an environment-agnostic stack gets two placeholder AZs
whatever ``maxAzs`` says). ``load`` refuses, naming the setting, any configuration that AWS
would refuse at deploy time.
"""

from __future__ import annotations

import math
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from shopstream import catalog, names

# CloudWatch Logs retention values (PutRetentionPolicy retentionInDays) and the CDK enum members.
LOG_RETENTION_DAYS = {1: "ONE_DAY", 3: "THREE_DAYS", 5: "FIVE_DAYS", 7: "ONE_WEEK", 14: "TWO_WEEKS",
                      30: "ONE_MONTH", 60: "TWO_MONTHS", 90: "THREE_MONTHS", 120: "FOUR_MONTHS",
                      150: "FIVE_MONTHS", 180: "SIX_MONTHS", 365: "ONE_YEAR", 400: "THIRTEEN_MONTHS",
                      545: "EIGHTEEN_MONTHS", 731: "TWO_YEARS", 1827: "FIVE_YEARS", 3653: "TEN_YEARS"}
# Amazon MSK: "If you use the US West (N. California) Region, specify exactly two subnets. For other
# Regions ... either two or three subnets ... in distinct Availability Zones."
# https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-properties-msk-cluster-brokernodegroupinfo.html
MSK_TWO_SUBNET_REGIONS = frozenset({"us-west-1"})
# S3 bucket names are 3-63 characters.
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html
BUCKET_NAME_MAX = 63
# MSK ClusterName is 1-64 characters.
# https://docs.aws.amazon.com/msk/1.0/apireference/clusters.html#clusters-prop-createclusterrequest-clustername
MSK_CLUSTER_NAME_MAX = 64
# Per-broker EBS storage: 1-16384 GiB.
# https://docs.aws.amazon.com/msk/latest/developerguide/msk-update-storage.html
MSK_MAX_VOLUME_GIB = 16384
REGION_PATTERN = r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$"
# Partitions per Standard broker, leader and follower replicas included (recommended; above the maximum MSK
# blocks configuration updates): https://docs.aws.amazon.com/msk/latest/developerguide/bestpractices.html
MSK_PARTITIONS_PER_BROKER = {"kafka.t3.small": 300, "kafka.m5.large": 1000, "kafka.m5.xlarge": 1000,
                             "kafka.m5.2xlarge": 2000, "kafka.m7g.large": 1000, "kafka.m7g.xlarge": 1000,
                             "kafka.m7g.2xlarge": 2000}
MSK_PARTITIONS_PER_LARGER_BROKER = 4000  # 4xlarge and up
# Provisioned mode of a Kafka event source mapping: MinimumPollers 1-200, MaximumPollers 1-2,000 (capped by
# Lambda at the topic's partitions); a poller group holds at most 100 mappings of one VPC whose maximum
# pollers add up to at most 2,000 (https://docs.aws.amazon.com/lambda/latest/dg/kafka-scaling-modes.html,
# https://docs.aws.amazon.com/lambda/latest/dg/msk-esm-parameters.html).
MAX_MINIMUM_POLLERS = 200
MAX_MAPPINGS_PER_POLLER_GROUP = 100
MAX_POLLERS_PER_POLLER_GROUP = 2000
# "each event poller can handle up to 5 MB/sec of throughput or up to 5 concurrent invocations", and a mapping
# runs at most one invocation per partition (same page).
INVOCATIONS_PER_POLLER = 5
ACCOUNT_ID_LENGTH = 12
# An IAM role name: 1-64 of these characters (https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateRole.html).
# No path: the key policy names the role as arn:...:role/<name>.
IAM_ROLE_NAME_PATTERN = r"^[A-Za-z0-9+=,.@_-]{1,64}$"


class ConfigError(ValueError):
    """An environment in cdk.json that cannot deploy; the message names the setting."""


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True, extra="forbid")


class AuditRetention(_Model):
    mode: Literal["governance", "compliance"]
    days: int = Field(ge=1)


class ApiThrottle(_Model):
    rate_limit: int = Field(ge=1)
    burst_limit: int = Field(ge=1)


class EventPollers(_Model):
    """Provisioned-mode pollers of the MSK event source mappings (docs/capacity.md). Each mapping keeps at
    least its minimum; the two poller groups (critical path, the rest) share the pollers' capacity."""

    minimum: int = Field(ge=1, le=MAX_MINIMUM_POLLERS)  # each mapping off the critical path
    critical_path_minimum: int = Field(ge=1, le=MAX_MINIMUM_POLLERS)  # each critical-path mapping


class Replication(_Model):
    """MSK Replicator to a cluster in another region (disaster recovery, phase 4)."""

    target_region: str = Field(pattern=REGION_PATTERN)
    target_cluster_arn: str
    target_subnet_ids: list[str] = Field(min_length=2)
    target_security_group_ids: list[str] = Field(min_length=1)


class EnvironmentConfig(_Model):
    name: str = Field(pattern=r"^[a-z][a-z0-9]{1,15}$")
    # Where the environment deploys. ``account`` may stay null: the stacks then deploy to the account
    # of the deploying credentials (the region and the AZs are still fixed in the template).
    account: str | None = Field(default=None, pattern=r"^\d{12}$")
    region: str = Field(pattern=REGION_PATTERN)
    availability_zones: list[str] = Field(min_length=2, max_length=3)
    broker_instance_type: str = Field(pattern=r"^kafka\.[a-z0-9]+\.[a-z0-9]+$")
    broker_count: int = Field(ge=2)
    broker_volume_gi_b: int = Field(ge=10, le=MSK_MAX_VOLUME_GIB, alias="brokerVolumeGiB")
    replication_factor: int = Field(ge=1)
    min_insync_replicas: int = Field(ge=1)
    tiered_storage: bool
    log_retention_days: int
    removal_policy: Literal["destroy", "retain"]
    # None: no Object Lock (an environment that must be destroyable; see docs/decisions.md).
    audit_retention: AuditRetention | None = None
    alarm_email: str | None = None
    api_throttle: ApiThrottle
    existing_cluster_arn: str | None = None
    replication: Replication | None = None
    # Partitions per topic where this environment differs from the catalog (which local runs use).
    partitions: dict[str, int] = Field(default_factory=dict)
    event_pollers: EventPollers
    # Stock counters of each product created in this environment (docs/capacity.md: a product sells
    # ~80 reservations/s per counter before optimistic retries dominate); at most 48 (an adjustment
    # writes every counter and an event for each in one transaction).
    stock_shards: int = Field(default=4, ge=1, le=48)
    # The only role that may disable or schedule the deletion of the keys that protect customer data (the
    # customer-data key, the audit archive's key); made outside these stacks (docs/runbooks/customer-data-key.md).
    break_glass_role_name: str = Field(default="shopstream-break-glass", pattern=IAM_ROLE_NAME_PATTERN)

    @model_validator(mode="after")
    def _consistent(self) -> EnvironmentConfig:
        azs = self.availability_zones
        if len(set(azs)) != len(azs):
            raise ValueError(f"availabilityZones {azs} repeats a zone: MSK needs one client subnet per distinct AZ")
        for az in azs:
            if not re.fullmatch(rf"{re.escape(self.region)}[a-z]", az):
                raise ValueError(f"availabilityZones: {az!r} is not an Availability Zone of region {self.region!r}")
        if self.region in MSK_TWO_SUBNET_REGIONS and len(azs) != 2:
            raise ValueError(
                f"availabilityZones: MSK in {self.region} takes exactly two client subnets, got {len(azs)}")
        if self.broker_count % len(azs):
            raise ValueError(
                f"brokerCount ({self.broker_count}) must be a multiple of the number of availabilityZones "
                f"({len(azs)}): MSK places brokers evenly on one client subnet per AZ")
        if self.replication_factor > self.broker_count:
            raise ValueError("replicationFactor cannot exceed brokerCount")
        if self.min_insync_replicas >= self.replication_factor and self.replication_factor > 1:
            raise ValueError("minInsyncReplicas must be below replicationFactor to survive a broker loss")
        if self.tiered_storage and self.broker_instance_type.startswith("kafka.t3"):
            raise ValueError("tiered storage needs kafka.m5/m7g brokers, not t3")
        if self.log_retention_days not in LOG_RETENTION_DAYS:
            raise ValueError(f"logRetentionDays must be one of {sorted(LOG_RETENTION_DAYS)}")
        if self.audit_retention is not None and self.removal_policy == "destroy":
            raise ValueError(
                "auditRetention must be null when removalPolicy is \"destroy\": Object Lock keeps every object "
                "version until its retention ends, so CloudFormation could not delete the audit archive")
        if self.audit_retention is None and self.removal_policy == "retain":
            raise ValueError("auditRetention (Object Lock mode and days) is required when removalPolicy is \"retain\"")
        if len(self.audit_archive_bucket_name_pattern) > BUCKET_NAME_MAX:
            raise ValueError(
                f"the environment name {self.name!r} with region {self.region!r} makes the audit archive bucket name "
                f"{len(self.audit_archive_bucket_name_pattern)} characters long; S3 allows {BUCKET_NAME_MAX}")
        if len(self.prefix) > MSK_CLUSTER_NAME_MAX:
            raise ValueError(f"the environment name makes the MSK cluster name longer than {MSK_CLUSTER_NAME_MAX}")
        if self.existing_cluster_arn and f":kafka:{self.region}:" not in self.existing_cluster_arn:
            raise ValueError(f"existingClusterArn must be an MSK cluster in region {self.region}")
        if self.replication and self.replication.target_region == self.region:
            raise ValueError("replication.targetRegion must differ from region (same-region replication is not set up)")
        known = {t.name for t in catalog.TOPICS}
        for topic_name, count in self.partitions.items():
            if topic_name not in known:
                raise ValueError(f"partitions: {topic_name!r} is not a topic of the catalog")
            if count < 1:
                raise ValueError(f"partitions: {topic_name} needs at least one partition")
        replicas = sum(self.partition_count(t.name) for t in catalog.TOPICS) * self.replication_factor
        per_broker = MSK_PARTITIONS_PER_BROKER.get(self.broker_instance_type, MSK_PARTITIONS_PER_LARGER_BROKER)
        if replicas > per_broker * self.broker_count:
            raise ValueError(
                f"partitions: {replicas} partition replicas on {self.broker_count} {self.broker_instance_type} brokers "
                f"is more than MSK recommends ({per_broker} per broker); raise brokerCount or brokerInstanceType")
        for group, mappings in self.poller_groups().items():
            if len(mappings) > MAX_MAPPINGS_PER_POLLER_GROUP:
                raise ValueError(f"eventPollers: poller group {group} would hold {len(mappings)} mappings; "
                                 f"Lambda allows {MAX_MAPPINGS_PER_POLLER_GROUP}")
            total = sum(self.pollers(h)[1] for h in mappings)
            if total > MAX_POLLERS_PER_POLLER_GROUP:
                raise ValueError(f"partitions: the mappings of poller group {group} may scale to {total} pollers "
                                 f"(one per partition); Lambda allows {MAX_POLLERS_PER_POLLER_GROUP} per group")
        return self

    def service_settings(self, service: str) -> dict[str, str]:
        """A service's settings that differ per environment, as its functions read them (``SHOPSTREAM_<NAME>``)."""
        return {"SHOPSTREAM_INVENTORY_STOCK_SHARDS": str(self.stock_shards)} if service == "inventory" else {}

    def partition_count(self, topic_name: str) -> int:
        return self.partitions.get(topic_name, catalog.topic(topic_name).partitions)

    def poller_group(self, handler: catalog.HandlerSpec) -> str:
        """Critical-path mappings share a group of their own, so a burst elsewhere never takes their pollers."""
        return f"{self.prefix}-{'saga' if handler.critical_path else 'events'}"

    def pollers(self, handler: catalog.HandlerSpec) -> tuple[int, int]:
        """(minimum, maximum) pollers of the handler's mapping: enough at most for an invocation on every
        partition at once (the records of a topic at 2,000 orders/s are a few MB/s, under one poller's 5)."""
        partitions = self.partition_count(handler.topic)
        minimum = self.event_pollers.critical_path_minimum if handler.critical_path else self.event_pollers.minimum
        minimum = min(minimum, partitions)
        return minimum, max(minimum, math.ceil(partitions / INVOCATIONS_PER_POLLER))

    def poller_groups(self) -> dict[str, list[catalog.HandlerSpec]]:
        groups: dict[str, list[catalog.HandlerSpec]] = {}
        for spec in catalog.SERVICES:
            for handler in spec.handlers:
                groups.setdefault(self.poller_group(handler), []).append(handler)
        return groups

    @property
    def prefix(self) -> str:
        return names.prefix(self.name)

    @property
    def retain(self) -> bool:
        return self.removal_policy == "retain"

    @property
    def audit_archive_bucket_name_pattern(self) -> str:
        """The archive bucket's name with the account id as 12 characters (stacks/platform.py names it)."""
        return f"{self.prefix}-audit-archive-{'0' * ACCOUNT_ID_LENGTH}-{self.region}"

    @property
    def ssm_prefix(self) -> str:
        """Where stacks publish values that other stacks read at deploy time (never exported)."""
        return f"/shopstream/{self.name}"


def _describe(error: ValidationError) -> str:
    lines = []
    for problem in error.errors():
        where = ".".join(str(part) for part in problem["loc"]) or "settings"
        message = problem["msg"].removeprefix("Value error, ")
        lines.append(f"  {where}: {message}")
    return "\n".join(lines)


def load(context_environments: dict, name: str) -> EnvironmentConfig:
    if name not in context_environments:
        raise ConfigError(f"unknown environment {name!r}; cdk.json defines {sorted(context_environments)}")
    try:
        return EnvironmentConfig.model_validate({"name": name, **context_environments[name]})
    except ValidationError as error:
        raise ConfigError(f"cdk.json environment {name!r} cannot deploy:\n{_describe(error)}") from None


def log_retention(days: int):
    """The CloudWatch Logs retention enum member for a number of days."""
    from aws_cdk import aws_logs as logs

    if days not in LOG_RETENTION_DAYS:
        raise ValueError(f"logRetentionDays must be one of {sorted(LOG_RETENTION_DAYS)}")
    return getattr(logs.RetentionDays, LOG_RETENTION_DAYS[days])
