"""A service's data: its table (shape from the catalog), its idempotency table, its queue key, and the bucket
where its mappings give up batches (shopstream/failed_batches.py)."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from shopstream import catalog
from shopstream.failed_batches import FAILED_BATCH_RETENTION, OBJECT_PREFIX
from stacks.config import DynamoDb, TableThroughput, Throughput
from stacks.nag import acknowledge


class ServiceData:
    """Adds the stateful resources to ``scope`` (the service construct: their logical ids stay put)."""

    def __init__(self, scope: Construct, *, service: str, removal: cdk.RemovalPolicy, billing: DynamoDb):
        self.key = kms.Key(scope, "Key", enable_key_rotation=True, removal_policy=removal,
                           description=f"shopstream {service}: dead-letter queues")
        self.throughput = billing.throughput(service)
        self.table = self._table(scope, removal, self.throughput, billing.target_utilisation)
        self.idempotency_table = self._idempotency_table(scope, removal)
        self.failed_batches = self._failed_batches(scope, removal)

    @staticmethod
    def _table(scope: Construct, removal: cdk.RemovalPolicy, throughput: TableThroughput | None,
               target_utilisation: float | None) -> dynamodb.Table:
        """On demand, or provisioned (``throughput``): created at its minimum, auto scaling keeps the table and its
        index at ``target_utilisation`` up to their maximum (docs/decisions.md, 2026-12-05)."""
        shape = catalog.SERVICE_TABLE
        table = dynamodb.Table(
            scope, "Table",
            partition_key=dynamodb.Attribute(name=shape.partition_key, type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=shape.sort_key, type=dynamodb.AttributeType.STRING),
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True),
            stream=dynamodb.StreamViewType[shape.stream_view],
            time_to_live_attribute=shape.ttl_attribute,
            removal_policy=removal,
            billing_mode=dynamodb.BillingMode.PROVISIONED if throughput else dynamodb.BillingMode.PAY_PER_REQUEST,
            read_capacity=throughput.min_rcu if throughput else None,
            write_capacity=throughput.min_wcu if throughput else None,
        )
        for index, pk, sk in shape.indexes:
            table.add_global_secondary_index(
                index_name=index,
                partition_key=dynamodb.Attribute(name=pk, type=dynamodb.AttributeType.STRING),
                sort_key=dynamodb.Attribute(name=sk, type=dynamodb.AttributeType.STRING),
                read_capacity=throughput.index.min_rcu if throughput else None,
                write_capacity=throughput.index.min_wcu if throughput else None,
            )
        if throughput is not None and target_utilisation is not None:
            percent = round(target_utilisation * 100, 1)
            auto_scale(table, throughput, percent)
            for index, _, _ in shape.indexes:
                table.auto_scale_global_secondary_index_write_capacity(
                    index, min_capacity=throughput.index.min_wcu, max_capacity=throughput.index.max_wcu
                ).scale_on_utilization(target_utilization_percent=percent)
                table.auto_scale_global_secondary_index_read_capacity(
                    index, min_capacity=throughput.index.min_rcu, max_capacity=throughput.index.max_rcu
                ).scale_on_utilization(target_utilization_percent=percent)
        return table

    @staticmethod
    def _idempotency_table(scope: Construct, removal: cdk.RemovalPolicy) -> dynamodb.Table:
        shape = catalog.IDEMPOTENCY_TABLE
        return dynamodb.Table(
            scope, "IdempotencyTable",
            partition_key=dynamodb.Attribute(name=shape.partition_key, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True),
            time_to_live_attribute=shape.ttl_attribute,
            removal_policy=removal,
        )

    @staticmethod
    def _failed_batches(scope: Construct, removal: cdk.RemovalPolicy) -> s3.Bucket:
        """The on-failure destination of every mapping of the service: Lambda writes the whole invocation
        (the records themselves, not only their offsets) here. Objects outlive the dead-letter messages that
        announce them (FAILED_BATCH_RETENTION). S3-managed encryption: with a customer key, CDK's notification
        wiring puts the bucket's ARN in that key's policy, a dependency cycle CloudFormation refuses; the
        records' personal fields are sealed per customer anyway (docs/decisions.md, 2026-12-04)."""
        bucket = s3.Bucket(
            scope, "FailedBatches",
            encryption=s3.BucketEncryption.S3_MANAGED, enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            lifecycle_rules=[s3.LifecycleRule(id="expire-after-the-dead-letters", prefix=OBJECT_PREFIX,
                                              expiration=cdk.Duration.days(FAILED_BATCH_RETENTION.days))],
            removal_policy=removal,
            # CloudFormation deletes only empty buckets: a destroyable environment empties it first.
            auto_delete_objects=removal == cdk.RemovalPolicy.DESTROY,
        )
        acknowledge(bucket, "AwsSolutions-S1",
                    "written only by the service's own event source mappings and read by the operators' redrive; "
                    "each object is announced to an alarmed dead-letter queue, which is the record of access")
        return bucket


def auto_scale(table: dynamodb.Table, throughput: Throughput, percent: float) -> None:
    """A provisioned table's read and write capacity kept at ``percent`` utilisation within ``throughput``'s bounds
    (its indexes are scaled by their own calls)."""
    table.auto_scale_write_capacity(min_capacity=throughput.min_wcu, max_capacity=throughput.max_wcu
                                    ).scale_on_utilization(target_utilization_percent=percent)
    table.auto_scale_read_capacity(min_capacity=throughput.min_rcu, max_capacity=throughput.max_rcu
                                   ).scale_on_utilization(target_utilization_percent=percent)
