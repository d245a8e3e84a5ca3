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
from shopstream.config import PARTIAL_BATCH_RESPONSE_ENV

# The CDK (aws_cdk and jsii: ~0.65 s) is imported only by ``log_retention``: the local runtime and the tools that read
# cdk.json without synthesising (local/naming.py, tools/capacity.py, tools/asyncapi.py) import this module.

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
# Enhanced monitoring levels of an MSK cluster, each adding metrics to the one before; DEFAULT's are free
# (https://docs.aws.amazon.com/msk/latest/developerguide/metrics-details.html).
MskMonitoring = Literal["DEFAULT", "PER_BROKER", "PER_TOPIC_PER_BROKER", "PER_TOPIC_PER_PARTITION"]
# Per-broker EBS storage: 1-16384 GiB.
# https://docs.aws.amazon.com/msk/latest/developerguide/msk-update-storage.html
MSK_MAX_VOLUME_GIB = 16384
REGION_PATTERN = r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$"
# The broker sizes MSK offers, by broker type ("Standard broker sizes", "Express broker sizes"; some sizes are not
# offered in every Region): https://docs.aws.amazon.com/msk/latest/developerguide/broker-instance-sizes.html
_M5 = ("large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge")
_M7G = ("large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge")
MSK_STANDARD_BROKER_SIZES = frozenset({"kafka.t3.small", *(f"kafka.m5.{s}" for s in _M5),
                                       *(f"kafka.m7g.{s}" for s in _M7G)})
MSK_EXPRESS_BROKER_SIZES = frozenset(f"express.m7g.{s}" for s in _M7G)
# Partitions per Standard broker, leader and follower replicas included (recommended; above the maximum MSK
# blocks configuration updates): https://docs.aws.amazon.com/msk/latest/developerguide/bestpractices.html
MSK_PARTITIONS_PER_BROKER = {"kafka.t3.small": 300, "kafka.m5.large": 1000, "kafka.m5.xlarge": 1000,
                             "kafka.m5.2xlarge": 2000, "kafka.m7g.large": 1000, "kafka.m7g.xlarge": 1000,
                             "kafka.m7g.2xlarge": 2000}
MSK_PARTITIONS_PER_LARGER_BROKER = 4000  # 4xlarge and up
# Express brokers (https://docs.aws.amazon.com/msk/latest/developerguide/msk-broker-types-express.html): "only
# available in a 3AZs configuration"; "supported on the following Apache Kafka versions: 3.6, 3.8, and 3.9".
# "replication is always set to 3 and the minimum in-sync replica is always set to 2"
# (https://docs.aws.amazon.com/msk/latest/developerguide/bestpractices-express.html); storage is "Fully MSK
# managed": no EBS volume, no tiered storage to set (https://docs.aws.amazon.com/msk/latest/developerguide/
# broker-instance-types.html).
EXPRESS_AVAILABILITY_ZONES = 3
EXPRESS_KAFKA_VERSIONS = ("3.6", "3.8", "3.9")
EXPRESS_REPLICATION_FACTOR = 3
EXPRESS_MIN_INSYNC_REPLICAS = 2
# Recommended partitions per Express broker, leader and follower replicas included ("Express broker partition
# quota", https://docs.aws.amazon.com/msk/latest/developerguide/limits.html#msk-express-quota; the maximum MSK
# allows is higher: 1,500 for large ... 32,000 for 16xlarge).
MSK_PARTITIONS_PER_EXPRESS_BROKER = {"express.m7g.large": 1000, "express.m7g.xlarge": 1000,
                                     "express.m7g.2xlarge": 2500, "express.m7g.4xlarge": 6000,
                                     "express.m7g.8xlarge": 12000, "express.m7g.12xlarge": 16000,
                                     "express.m7g.16xlarge": 20000}
# The static broker properties a configuration may set on Express brokers; MSK sets and protects the others
# (default.replication.factor, min.insync.replicas and unclean.leader.election.enable among the read-only ones):
# https://docs.aws.amazon.com/msk/latest/developerguide/msk-configuration-express-read-write.html
# https://docs.aws.amazon.com/msk/latest/developerguide/msk-configuration-express-read-only.html
EXPRESS_STATIC_PROPERTIES = frozenset({
    "allow.everyone.if.no.acl.found", "auto.create.topics.enable", "compression.type", "connections.max.idle.ms",
    "delete.topic.enable", "group.initial.rebalance.delay.ms", "group.max.session.timeout.ms",
    "leader.imbalance.per.broker.percentage", "log.cleanup.policy", "log.message.timestamp.after.max.ms",
    "log.message.timestamp.before.max.ms", "log.message.timestamp.type", "log.retention.bytes", "log.retention.ms",
    "max.connections.per.ip", "max.incremental.fetch.session.cache.slots", "message.max.bytes", "num.partitions",
    "offsets.retention.minutes", "replica.fetch.max.bytes", "replica.selector.class", "socket.receive.buffer.bytes",
    "socket.request.max.bytes", "socket.send.buffer.bytes", "transaction.max.timeout.ms",
    "transactional.id.expiration.ms"})
# Topic properties a topic on Express brokers does not set: MSK protects min.insync.replicas and
# unclean.leader.election.enable from change (same page), and the others belong to Standard brokers' tiered storage
# (https://docs.aws.amazon.com/msk/latest/developerguide/msk-tiered-storage.html).
EXPRESS_UNSETTABLE_TOPIC_PROPERTIES = frozenset({"min.insync.replicas", "unclean.leader.election.enable",
                                                 "remote.storage.enable", "local.retention.ms",
                                                 "local.retention.bytes"})
# An e-mail address, as the sender of the user pool's messages and of the notification service's.
EMAIL_ADDRESS_PATTERN = r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$"
# MSK Replicator: "MSK Replicator supports clusters using instance types of m5.large or larger. t3.small clusters
# aren't supported." "If you are using MSK Replicator with an MSK Provisioned cluster, you need a minimum of three
# brokers in both source and target clusters. You can replicate data across clusters in two Availability Zones, but
# you would need a minimum of four brokers in those clusters."
# https://docs.aws.amazon.com/msk/latest/developerguide/msk-replicator-supported-clusters-versions.html
# Multi-VPC private connectivity, which a cross-region source needs, does not support t3.small either:
# https://docs.aws.amazon.com/msk/latest/developerguide/aws-access-mult-vpc.html#mvpc-requirements
REPLICATOR_MIN_BROKERS = 3
REPLICATOR_MIN_BROKERS_ON_TWO_ZONES = 4
REPLICATOR_UNSUPPORTED_BROKERS = ".t3."
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
# DynamoDB throughput quotas by default, per Region: in provisioned mode 40,000 RCU and 40,000 WCU for any table or
# any of its GSIs, and 80,000 for all the account's tables and GSIs together; at least 1 unit each. Adjustable through
# Service Quotas (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html).
DYNAMODB_TABLE_UNITS = 40_000
DYNAMODB_ACCOUNT_UNITS = 80_000
# DynamoDB auto scaling's target utilisation, 20-90% of the provisioned capacity
# (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/AutoScaling.html).
MIN_TARGET_UTILISATION, MAX_TARGET_UTILISATION = 0.2, 0.9
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
    """The pollers of the MSK event source mappings (docs/capacity.md).

    ``provisioned``: each mapping keeps at least its minimum, the two poller groups (critical path, the rest) share
    the pollers' capacity, billed by the event poller unit hour whether records come or not. Kafka's error-handling
    controls (bounded retries, record age, bisect, partial batch response) and the mappings' metrics and system
    logs are only had in this mode (https://docs.aws.amazon.com/lambda/latest/dg/kafka-retry-configurations.html).
    ``on-demand``: Lambda scales the pollers and bills none of them; a failed batch is retried whole until its
    records leave the topic, the consumers fail a batch whole (Settings.partial_batch_response), and the pollers
    reach Lambda and STS through VPC endpoints (docs/decisions.md, 2026-12-05)."""

    mode: Literal["provisioned", "on-demand"] = "provisioned"
    minimum: int | None = Field(default=None, ge=1, le=MAX_MINIMUM_POLLERS)  # each mapping off the critical path
    critical_path_minimum: int | None = Field(default=None, ge=1, le=MAX_MINIMUM_POLLERS)  # each critical-path one

    @model_validator(mode="after")
    def _minimums_in_provisioned_mode_only(self) -> EventPollers:
        minimums = {"minimum": self.minimum, "criticalPathMinimum": self.critical_path_minimum}
        given = [name for name, value in minimums.items() if value is not None]
        if self.mode == "provisioned" and len(given) < 2:
            raise ValueError("minimum and criticalPathMinimum are required in provisioned mode")
        if self.mode == "on-demand" and given:
            raise ValueError(f"{' and '.join(given)}: no minimum in on-demand mode (Lambda scales the pollers itself)")
        return self


class Throughput(_Model):
    """What auto scaling may set a table's (or its index's) provisioned capacity to, in units per second. The minimum
    is also what the table is created with (the quotas count it at once)."""

    min_wcu: int = Field(ge=1)
    max_wcu: int = Field(ge=1)
    min_rcu: int = Field(ge=1)
    max_rcu: int = Field(ge=1)

    @model_validator(mode="after")
    def _minimum_below_maximum(self) -> Throughput:
        for unit in ("wcu", "rcu"):
            low, high = getattr(self, f"min_{unit}"), getattr(self, f"max_{unit}")
            if low > high:
                raise ValueError(f"min{unit.capitalize()} ({low}) exceeds max{unit.capitalize()} ({high})")
        return self


class TableThroughput(Throughput):
    index: Throughput  # the table's global secondary index (catalog.SERVICE_TABLE.indexes: gsi1)


class DynamoDbQuotas(_Model):
    """The account's DynamoDB throughput quotas in this environment's Region (provisioned mode), as raised through
    Service Quotas; AWS's defaults when not given."""

    table_units: int = Field(default=DYNAMODB_TABLE_UNITS, ge=1)  # per table or GSI, read and write each
    account_units: int = Field(default=DYNAMODB_ACCOUNT_UNITS, ge=1)  # all tables and GSIs together


class DynamoDb(_Model):
    """How the service tables are billed (docs/decisions.md, 2026-12-05). On demand: per request, nothing to size.
    Provisioned: the services in ``tables`` get provisioned capacity that auto scaling keeps at
    ``target_utilisation`` between each table's (and index's) minimum and maximum, throttled requests alarmed; the
    other services' tables and the idempotency tables stay on demand. ``key_store``: the customer key store
    provisioned the same way (its replica, if any, too); None: on demand."""

    billing: Literal["on-demand", "provisioned"]
    target_utilisation: float | None = Field(default=None, ge=MIN_TARGET_UTILISATION, le=MAX_TARGET_UTILISATION)
    tables: dict[str, TableThroughput] = Field(default_factory=dict)
    key_store: Throughput | None = None
    quotas: DynamoDbQuotas = Field(default_factory=DynamoDbQuotas)

    @model_validator(mode="after")
    def _sized_when_provisioned(self) -> DynamoDb:
        if self.billing == "on-demand":
            if self.tables or self.target_utilisation is not None or self.key_store is not None:
                raise ValueError("tables, keyStore and targetUtilisation size provisioned capacity: set billing to "
                                 "\"provisioned\" or remove them (on demand, nothing is provisioned)")
            return self
        if self.target_utilisation is None or not self.tables:
            raise ValueError("billing \"provisioned\" needs targetUtilisation and the tables it provisions")
        services = {spec.name for spec in catalog.SERVICES}
        for name in self.tables:
            if name not in services:
                raise ValueError(f"tables: {name!r} is not a service of the catalog ({', '.join(sorted(services))})")
        sized: list[tuple[str, Throughput]] = [
            (where, throughput) for name, table in self.tables.items()
            for where, throughput in ((f"tables.{name}", table), (f"tables.{name}.index", table.index))]
        if self.key_store is not None:
            sized.append(("keyStore", self.key_store))
        for unit in ("wcu", "rcu"):
            for where, throughput in sized:
                if getattr(throughput, f"max_{unit}") > self.quotas.table_units:
                    raise ValueError(
                        f"{where}: max{unit.capitalize()} {getattr(throughput, f'max_{unit}')} is above "
                        f"the per-table quota ({self.quotas.table_units}): raise it in Service Quotas and in "
                        "quotas.tableUnits")
            for bound in ("min", "max"):
                total = sum(getattr(throughput, f"{bound}_{unit}") for _, throughput in sized)
                if total > self.quotas.account_units:
                    raise ValueError(
                        f"tables and keyStore: the {bound}imum {unit.upper()} of all tables and indexes add up to "
                        f"{total}, above "
                        f"the account's quota ({self.quotas.account_units}; the minimum is provisioned at deploy, "
                        "the maximum is what auto scaling reaches at the design rate): raise it in Service Quotas and "
                        "in quotas.accountUnits")
        return self

    def throughput(self, service: str) -> TableThroughput | None:
        """The service table's provisioned throughput; None: on demand."""
        return self.tables.get(service) if self.billing == "provisioned" else None

    def key_store_throughput(self) -> Throughput | None:
        """The customer key store's provisioned throughput; None: on demand."""
        return self.key_store if self.billing == "provisioned" else None


class Email(_Model):
    """The user pool's e-mails (sign-up verification, password recovery) sent through Amazon SES from the identity
    the notification service sends from, instead of Cognito's own sending, whose daily limit is "below the required
    delivery volume" of a production pool
    (https://docs.aws.amazon.com/cognito-user-identity-pools/latest/APIReference/API_EmailConfigurationType.html).
    The identity is verified in SES outside the stacks, in the environment's region (docs/deploy.md)."""

    sender: str = Field(pattern=EMAIL_ADDRESS_PATTERN)  # the From address of both
    identity: str  # the verified SES identity: the sender's address, or its domain
    sender_name: str | None = Field(default=None, pattern=r"^[^<>\"@]{1,64}$")

    @model_validator(mode="after")
    def _sender_is_of_the_identity(self) -> Email:
        domain = self.sender.rsplit("@", 1)[1]
        if self.identity.lower() not in (self.sender.lower(), domain.lower()):
            raise ValueError(f"email.identity {self.identity!r} must be the sender {self.sender!r} or its domain "
                             f"{domain!r}: SES sends only from a verified address or an address of a verified domain")
        return self

    @property
    def from_header(self) -> str:
        return f"{self.sender_name} <{self.sender}>" if self.sender_name else self.sender


class Replication(_Model):
    """MSK Replicator from this environment's cluster to a cluster the stacks build in a second region (disaster
    recovery, phase 4; docs/runbooks/failover.md). The target has the source's brokers; its network has these zones."""

    target_region: str = Field(pattern=REGION_PATTERN)
    # The target cluster's client subnets, one per zone (as availabilityZones for the source).
    target_availability_zones: list[str] = Field(min_length=2, max_length=3)


class EnvironmentConfig(_Model):
    name: str = Field(pattern=r"^[a-z][a-z0-9]{1,15}$")
    # Where the environment deploys. ``account`` may stay null: the stacks then deploy to the account
    # of the deploying credentials (the region and the AZs are still fixed in the template).
    account: str | None = Field(default=None, pattern=r"^\d{12}$")
    region: str = Field(pattern=REGION_PATTERN)
    availability_zones: list[str] = Field(min_length=2, max_length=3)
    broker_instance_type: str = Field(pattern=r"^(kafka|express)\.[a-z0-9]+\.[a-z0-9]+$")
    broker_count: int = Field(ge=2)
    # Each Standard broker's EBS volume; Express brokers have none (MSK manages their storage).
    broker_volume_gi_b: int | None = Field(default=None, ge=10, le=MSK_MAX_VOLUME_GIB, alias="brokerVolumeGiB")
    replication_factor: int = Field(ge=1)
    min_insync_replicas: int = Field(ge=1)
    tiered_storage: bool
    log_retention_days: int
    removal_policy: Literal["destroy", "retain"]
    # None: no Object Lock (an environment that must be destroyable; see docs/decisions.md).
    audit_retention: AuditRetention | None = None
    # Days the audit trail (DynamoDB, GET /audit/{correlationId}) keeps an event after its event time before its
    # TTL deletes it; the archive (S3) keeps every event for auditRetention.days (docs/decisions.md, 2026-12-05).
    trail_retention_days: int = Field(default=7, ge=1)
    # How the service tables are billed and, where provisioned, sized (DynamoDb).
    dynamodb: DynamoDb = Field(default_factory=lambda: DynamoDb(billing="on-demand"))
    alarm_email: str | None = None
    # None: the user pool sends with Cognito's own e-mail (a destroyable environment only).
    email: Email | None = None
    api_throttle: ApiThrottle
    existing_cluster_arn: str | None = None
    replication: Replication | None = None
    # Partitions per topic where this environment differs from the catalog (which local runs use).
    partitions: dict[str, int] = Field(default_factory=dict)
    event_pollers: EventPollers
    # The cluster's enhanced monitoring; None: the consumer lag of every partition where data is retained, per broker
    # elsewhere (msk_monitoring_level). Every level above DEFAULT is billed per CloudWatch metric (docs/capacity.md).
    msk_monitoring: MskMonitoring | None = None
    # Stock counters of each product created in this environment (docs/capacity.md: a product sells
    # ~80 reservations/s per counter before optimistic retries dominate); at most 48 (an adjustment
    # writes every counter and an event for each in one transaction).
    stock_shards: int = Field(default=4, ge=1, le=48)
    # The share of new traces whose spans are recorded and exported (OTLP to X-Ray, shopstream.tracing):
    # ParentBased(TraceIdRatioBased): an order's trace is kept or dropped whole. Between 0 and 1; dev keeps
    # every trace, a busy environment a rate (docs/decisions.md, 2026-12-04).
    trace_sample_rate: float = Field(ge=0.0, le=1.0)
    # The only role that may disable or schedule the deletion of the keys that protect customer data (the
    # customer-data key, the audit archive's key); made outside these stacks (docs/runbooks/customer-data-key.md).
    break_glass_role_name: str = Field(default="shopstream-break-glass", pattern=IAM_ROLE_NAME_PATTERN)
    # The critical path's committers (catalog.DIRECT_PUBLISHERS) publish their events right after their commit, the
    # outbox relays as the fallback (shopstream.direct): a stream hop less per step of the order. They then run in
    # the VPC, produce to MSK with IAM and reach DynamoDB, SQS and KMS through VPC endpoints (stacks/network.py).
    # Off: every event goes through its relay, as in dev (docs/decisions.md, 2026-12-05).
    direct_publish: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> EnvironmentConfig:
        self._zones_suit_the_cluster()
        self._brokers_are_offered_and_suit_the_cluster()
        if self.email is None and self.retain:
            raise ValueError(
                "email (the SES identity the user pool sends from) is required when removalPolicy is \"retain\": "
                "Cognito's own e-mail sending is limited below a production pool's volume")
        if self.log_retention_days not in LOG_RETENTION_DAYS:
            raise ValueError(f"logRetentionDays must be one of {sorted(LOG_RETENTION_DAYS)}")
        self._audit_retention_is_consistent()
        if len(self.audit_archive_bucket_name_pattern) > BUCKET_NAME_MAX:
            raise ValueError(
                f"the environment name {self.name!r} with region {self.region!r} makes the audit archive bucket name "
                f"{len(self.audit_archive_bucket_name_pattern)} characters long; S3 allows {BUCKET_NAME_MAX}")
        if len(self.prefix) > MSK_CLUSTER_NAME_MAX:
            raise ValueError(f"the environment name makes the MSK cluster name longer than {MSK_CLUSTER_NAME_MAX}")
        if self.existing_cluster_arn and f":kafka:{self.region}:" not in self.existing_cluster_arn:
            raise ValueError(f"existingClusterArn must be an MSK cluster in region {self.region}")
        if self.replication:
            self._replication_is_deployable(self.replication)
        self._partitions_fit_the_brokers_and_the_pollers()
        return self

    def _zones_suit_the_cluster(self) -> None:
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

    def _audit_retention_is_consistent(self) -> None:
        if self.audit_retention is not None and self.removal_policy == "destroy":
            raise ValueError(
                "auditRetention must be null when removalPolicy is \"destroy\": Object Lock keeps every object "
                "version until its retention ends, so CloudFormation could not delete the audit archive")
        if self.audit_retention is None and self.removal_policy == "retain":
            raise ValueError("auditRetention (Object Lock mode and days) is required when removalPolicy is \"retain\"")
        if self.audit_retention is not None and self.trail_retention_days > self.audit_retention.days:
            raise ValueError(f"trailRetentionDays ({self.trail_retention_days}) must not exceed auditRetention.days "
                             f"({self.audit_retention.days}): the archive keeps the history the trail lets go")

    def _partitions_fit_the_brokers_and_the_pollers(self) -> None:
        known = {t.name for t in catalog.TOPICS}
        for topic_name, count in self.partitions.items():
            if topic_name not in known:
                raise ValueError(f"partitions: {topic_name!r} is not a topic of the catalog")
            if count < 1:
                raise ValueError(f"partitions: {topic_name} needs at least one partition")
        replicas = sum(self.partition_count(t.name) for t in catalog.TOPICS) * self.replication_factor
        per_broker = self.partitions_per_broker
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

    def _brokers_are_offered_and_suit_the_cluster(self) -> None:
        kind = self.broker_instance_type
        if kind not in MSK_STANDARD_BROKER_SIZES | MSK_EXPRESS_BROKER_SIZES:
            raise ValueError(f"brokerInstanceType {kind!r} is not a broker size MSK offers (Standard: "
                             f"{', '.join(sorted(MSK_STANDARD_BROKER_SIZES))}; Express: "
                             f"{', '.join(sorted(MSK_EXPRESS_BROKER_SIZES))})")
        if not self.express_brokers:
            if self.broker_volume_gi_b is None:
                raise ValueError(f"brokerVolumeGiB is required: {kind} (a Standard broker) stores on its EBS volume")
            if self.tiered_storage and kind.startswith("kafka.t3"):
                raise ValueError("tiered storage needs kafka.m5/m7g brokers, not t3")
            return
        if self.broker_volume_gi_b is not None:
            raise ValueError(f"brokerVolumeGiB must be null with {kind}: MSK manages an Express broker's storage")
        if self.tiered_storage:
            raise ValueError(f"tieredStorage must be false with {kind}: Express brokers have no tiered storage to "
                             "enable (MSK manages their storage)")
        if len(self.availability_zones) != EXPRESS_AVAILABILITY_ZONES:
            raise ValueError(f"availabilityZones: Express brokers run in exactly {EXPRESS_AVAILABILITY_ZONES} "
                             f"Availability Zones, got {len(self.availability_zones)}")
        if (self.replication_factor, self.min_insync_replicas) != (EXPRESS_REPLICATION_FACTOR,
                                                                    EXPRESS_MIN_INSYNC_REPLICAS):
            raise ValueError(f"replicationFactor and minInsyncReplicas must be {EXPRESS_REPLICATION_FACTOR} and "
                             f"{EXPRESS_MIN_INSYNC_REPLICAS} with {kind}: MSK fixes them on Express brokers")

    def _replication_is_deployable(self, replication: Replication) -> None:
        """What MSK Replicator needs of both clusters (docs/decisions.md, 2026-12-04, cross-region replication)."""
        if replication.target_region == self.region:
            raise ValueError("replication.targetRegion must differ from region (same-region replication is not set up)")
        if self.existing_cluster_arn:
            raise ValueError("replication needs a cluster these stacks own (existingClusterArn is set): the source's "
                             "multi-VPC connectivity and cluster policy are properties of the cluster")
        if REPLICATOR_UNSUPPORTED_BROKERS in self.broker_instance_type:
            raise ValueError(f"replication: MSK Replicator does not support {self.broker_instance_type} brokers "
                             "(m5.large or larger), nor does multi-VPC private connectivity")
        for zones, where in ((self.availability_zones, "availabilityZones"),
                             (replication.target_availability_zones, "replication.targetAvailabilityZones")):
            least = REPLICATOR_MIN_BROKERS_ON_TWO_ZONES if len(zones) == 2 else REPLICATOR_MIN_BROKERS
            if self.broker_count < least:
                raise ValueError(
                    f"brokerCount ({self.broker_count}) must be at least {least} for replication with {len(zones)} "
                    f"{where}: MSK Replicator needs three brokers in the source and target clusters, four on two zones")
        try:
            self.replica()
        except ValidationError as error:
            raise ValueError("replication: the target cluster, built like this environment's in "
                             f"{replication.target_region}, cannot deploy: {_describe(error).strip()}") from None

    def replica(self) -> EnvironmentConfig:
        """This environment in its replication target region: the same brokers and settings in the target's zones,
        replicating nothing itself (stacks/recovery.py builds the target region's stacks from it)."""
        if self.replication is None:
            raise ValueError(f"environment {self.name!r} has no replication")
        settings = self.model_dump(by_alias=True, exclude={"name", "replication", "existing_cluster_arn"})
        return EnvironmentConfig.model_validate({
            **settings, "name": self.name, "region": self.replication.target_region,
            "availabilityZones": self.replication.target_availability_zones})

    @property
    def express_brokers(self) -> bool:
        return self.broker_instance_type in MSK_EXPRESS_BROKER_SIZES

    @property
    def partitions_per_broker(self) -> int:
        """Partition replicas MSK recommends per broker of this size."""
        if self.express_brokers:
            return MSK_PARTITIONS_PER_EXPRESS_BROKER[self.broker_instance_type]
        return MSK_PARTITIONS_PER_BROKER.get(self.broker_instance_type, MSK_PARTITIONS_PER_LARGER_BROKER)

    @property
    def msk_monitoring_level(self) -> str:
        """The cluster's enhanced monitoring: as set (mskMonitoring), else the consumer lag of every partition where
        data is retained, per broker elsewhere. Every level above DEFAULT is billed per CloudWatch metric
        (docs/capacity.md, cost)."""
        if self.msk_monitoring is not None:
            return self.msk_monitoring
        return "PER_TOPIC_PER_PARTITION" if self.retain else "PER_BROKER"

    @property
    def on_demand_pollers(self) -> bool:
        """Whether the MSK mappings run in on-demand mode (EventPollers)."""
        return self.event_pollers.mode == "on-demand"

    def consumer_settings(self) -> dict[str, str]:
        """What a consumer behind this environment's MSK mappings reads (``SHOPSTREAM_<NAME>``): behind on-demand
        mappings, which take no partial batch response, it fails a batch whole (shopstream.consumer)."""
        return {PARTIAL_BATCH_RESPONSE_ENV: "false"} if self.on_demand_pollers else {}

    def service_settings(self, service: str) -> dict[str, str]:
        """A service's settings that differ per environment, as its functions read them (``SHOPSTREAM_<NAME>``)."""
        if service == "inventory":
            return {"SHOPSTREAM_INVENTORY_STOCK_SHARDS": str(self.stock_shards)}
        if service == "audit":
            return {"SHOPSTREAM_TRAIL_RETENTION_DAYS": str(self.trail_retention_days)}
        if service == "notification" and self.email is not None:
            # The address the user pool sends from (Email): one verified identity for both.
            return {"SHOPSTREAM_NOTIFICATION_SENDER": self.email.sender}
        return {}

    def partition_count(self, topic_name: str) -> int:
        return self.partitions.get(topic_name, catalog.topic(topic_name).partitions)

    def poller_group(self, handler: catalog.HandlerSpec) -> str:
        """Critical-path mappings share a group of their own, so a burst elsewhere never takes their pollers."""
        return f"{self.prefix}-{'saga' if handler.critical_path else 'events'}"

    def pollers(self, handler: catalog.HandlerSpec) -> tuple[int, int]:
        """(minimum, maximum) pollers of the handler's mapping in provisioned mode: enough at most for an invocation on
        every partition at once (the records of a topic at 2,000 orders/s are a few MB/s, under one poller's 5)."""
        pollers = self.event_pollers
        minimum = pollers.critical_path_minimum if handler.critical_path else pollers.minimum
        if minimum is None:
            raise ValueError(f"environment {self.name!r} runs its mappings' pollers on demand: none are provisioned")
        partitions = self.partition_count(handler.topic)
        minimum = min(minimum, partitions)
        return minimum, max(minimum, math.ceil(partitions / INVOCATIONS_PER_POLLER))

    def poller_groups(self) -> dict[str, list[catalog.HandlerSpec]]:
        """The mappings of each provisioned poller group (none on demand: Lambda's own pollers, billed by none)."""
        groups: dict[str, list[catalog.HandlerSpec]] = {}
        if self.on_demand_pollers:
            return groups
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
    def may_fail_over(self) -> bool:
        """Whether what cannot become multi-Region later is made so from the start (the customer-data key, the
        customer key store): in every retained environment, where replication may be turned on after the first
        deploy, and wherever replication is on."""
        return self.retain or self.replication is not None

    @property
    def audit_archive_bucket_name_pattern(self) -> str:
        """The archive bucket's name with the account id as 12 characters (stacks/platform.py names it)."""
        return names.audit_archive_bucket(self.prefix, "0" * ACCOUNT_ID_LENGTH, self.region)

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


# --- the delivery pipeline (.github/workflows/delivery.yml, stacks/delivery.py, docs/deploy.md) ----------------
# A GitHub repository as its OIDC tokens name it in their subject, ``repo:<owner>/<name>:...``: an owner of 1-39
# letters, digits and inner hyphens, a name of 1-100 letters, digits, '.', '_' and '-'. IAM compares the
# subject exactly (StringEquals), so the case must be GitHub's.
GITHUB_REPOSITORY_PATTERN = r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,37}[A-Za-z0-9])?/[A-Za-z0-9._-]{1,100}$"


class Delivery(_Model):
    """Who may deploy what from GitHub Actions (cdk.json ``context.delivery``): the repository whose workflow the
    deploy roles trust, the environment a pull request's ``cdk diff`` reads, and the environments the train runs
    the black-box suite against (their deploy roles may make and delete test users in the user pool)."""

    github_repository: str = Field(pattern=GITHUB_REPOSITORY_PATTERN)
    pull_request_diff_environment: str | None = None
    black_box_environments: list[str] = Field(default_factory=list)


def load_delivery(context: dict) -> Delivery:
    """``context.delivery`` of cdk.json, checked against the environments it names."""
    if "delivery" not in context:
        raise ConfigError("cdk.json has no context.delivery (githubRepository, ...): see docs/deploy.md")
    try:
        delivery = Delivery.model_validate(context["delivery"])
    except ValidationError as error:
        raise ConfigError(f"cdk.json delivery cannot deploy:\n{_describe(error)}") from None
    known = sorted(context.get("environments", {}))
    named = {"pullRequestDiffEnvironment": [delivery.pull_request_diff_environment] if
             delivery.pull_request_diff_environment else [], "blackBoxEnvironments": delivery.black_box_environments}
    for setting, environments in named.items():
        for environment in environments:
            if environment not in known:
                raise ConfigError(f"cdk.json delivery cannot deploy:\n  {setting}: {environment!r} is not an "
                                  f"environment; cdk.json defines {known}")
    return delivery
