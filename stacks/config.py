"""Per-environment settings, read from cdk.json context (``-c env=dev|staging|prod``).

An environment names its region and the Availability Zones it uses, so the template that is
synthesized is the one that deploys (an environment-agnostic stack gets two placeholder AZs
whatever ``maxAzs`` says). ``load`` refuses, naming the setting, any configuration that AWS
would refuse at deploy time.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from shopstream import names

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
ACCOUNT_ID_LENGTH = 12


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
        return self

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
