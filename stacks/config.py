"""Per-environment settings, read from cdk.json context (``-c env=dev|staging|prod``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel


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

    target_region: str
    target_cluster_arn: str
    target_subnet_ids: list[str] = Field(min_length=2)
    target_security_group_ids: list[str] = Field(min_length=1)


class EnvironmentConfig(_Model):
    name: str = Field(pattern=r"^[a-z][a-z0-9]{1,15}$")
    broker_instance_type: str
    broker_count: int = Field(ge=2)
    broker_volume_gi_b: int = Field(ge=10, alias="brokerVolumeGiB")
    replication_factor: int = Field(ge=1)
    min_insync_replicas: int = Field(ge=1)
    tiered_storage: bool
    max_azs: int = Field(ge=2, le=3)
    log_retention_days: int
    removal_policy: Literal["destroy", "retain"]
    audit_retention: AuditRetention
    alarm_email: str | None = None
    api_throttle: ApiThrottle
    account: str | None = None
    region: str | None = None
    existing_cluster_arn: str | None = None
    replication: Replication | None = None

    @model_validator(mode="after")
    def _consistent(self) -> EnvironmentConfig:
        if self.replication_factor > self.broker_count:
            raise ValueError("replicationFactor cannot exceed brokerCount")
        if self.min_insync_replicas >= self.replication_factor and self.replication_factor > 1:
            raise ValueError("minInsyncReplicas must be below replicationFactor to survive a broker loss")
        if self.broker_count % self.max_azs:
            raise ValueError("brokerCount must be a multiple of maxAzs (MSK spreads brokers evenly)")
        if self.tiered_storage and self.broker_instance_type.startswith("kafka.t3"):
            raise ValueError("tiered storage needs kafka.m5/m7g brokers, not t3")
        return self

    @property
    def prefix(self) -> str:
        return f"shopstream-{self.name}"

    @property
    def retain(self) -> bool:
        return self.removal_policy == "retain"


def load(context_environments: dict, name: str) -> EnvironmentConfig:
    if name not in context_environments:
        raise SystemExit(f"unknown environment {name!r}; cdk.json defines {sorted(context_environments)}")
    return EnvironmentConfig.model_validate({"name": name, **context_environments[name]})


def log_retention(days: int):
    """The CloudWatch Logs retention enum member for a number of days."""
    from aws_cdk import aws_logs as logs

    by_days = {1: "ONE_DAY", 3: "THREE_DAYS", 5: "FIVE_DAYS", 7: "ONE_WEEK", 14: "TWO_WEEKS", 30: "ONE_MONTH",
               60: "TWO_MONTHS", 90: "THREE_MONTHS", 120: "FOUR_MONTHS", 150: "FIVE_MONTHS", 180: "SIX_MONTHS",
               365: "ONE_YEAR", 400: "THIRTEEN_MONTHS", 545: "EIGHTEEN_MONTHS", 731: "TWO_YEARS",
               1827: "FIVE_YEARS", 3653: "TEN_YEARS"}
    if days not in by_days:
        raise ValueError(f"logRetentionDays must be one of {sorted(by_days)}")
    return getattr(logs.RetentionDays, by_days[days])
