"""A service's data: its table (shape from the catalog), its idempotency table, its queue key."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from constructs import Construct

from shopstream import catalog


class ServiceData:
    """Adds the stateful resources to ``scope`` (the service construct: their logical ids stay put)."""

    def __init__(self, scope: Construct, *, service: str, removal: cdk.RemovalPolicy):
        self.key = kms.Key(scope, "Key", enable_key_rotation=True, removal_policy=removal,
                           description=f"shopstream {service}: dead-letter queues")
        self.table = self._table(scope, removal)
        self.idempotency_table = self._idempotency_table(scope, removal)

    @staticmethod
    def _table(scope: Construct, removal: cdk.RemovalPolicy) -> dynamodb.Table:
        shape = catalog.SERVICE_TABLE
        table = dynamodb.Table(
            scope, "Table",
            partition_key=dynamodb.Attribute(name=shape.partition_key, type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=shape.sort_key, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True),
            stream=dynamodb.StreamViewType[shape.stream_view],
            time_to_live_attribute=shape.ttl_attribute,
            removal_policy=removal,
        )
        for index, pk, sk in shape.indexes:
            table.add_global_secondary_index(
                index_name=index,
                partition_key=dynamodb.Attribute(name=pk, type=dynamodb.AttributeType.STRING),
                sort_key=dynamodb.Attribute(name=sk, type=dynamodb.AttributeType.STRING),
            )
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
