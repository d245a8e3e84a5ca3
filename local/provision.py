"""Create every topic, table, queue and bucket the catalog describes (idempotent)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import Any

from confluent_kafka.admin import AdminClient, NewTopic

from local import naming
from shopstream import catalog, names
from shopstream.failed_batches import DEAD_LETTER_RETENTION, FAILED_BATCH_RETENTION, OBJECT_PREFIX, mapping_prefix


def create_topics(bootstrap_servers: str, timeout: float = 30.0, partitions: Mapping[str, int] | None = None
                  ) -> list[str]:
    """Topics with the catalog's retention, and its partitions unless ``partitions`` names others (a local runtime:
    dev's); existing ones are left as they are."""
    admin = AdminClient({"bootstrap.servers": bootstrap_servers})
    existing = set(admin.list_topics(timeout=timeout).topics)
    wanted = [
        NewTopic(t.name, num_partitions=(partitions or {}).get(t.name, t.partitions), replication_factor=1,
                 config={"retention.ms": str(t.retention_ms)})
        for t in catalog.TOPICS
        if t.name not in existing
    ]
    if wanted:
        for future in admin.create_topics(wanted, operation_timeout=timeout).values():
            future.result()
    return [t.name for t in catalog.TOPICS]


def _service_table_definition(name: str) -> dict[str, Any]:
    spec = catalog.SERVICE_TABLE
    attributes = {spec.partition_key, spec.sort_key, *(k for _, pk, sk in spec.indexes for k in (pk, sk))}
    return {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": a, "AttributeType": "S"} for a in sorted(attributes)],
        "KeySchema": [
            {"AttributeName": spec.partition_key, "KeyType": "HASH"},
            {"AttributeName": spec.sort_key, "KeyType": "RANGE"},
        ],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": index,
                "KeySchema": [{"AttributeName": pk, "KeyType": "HASH"}, {"AttributeName": sk, "KeyType": "RANGE"}],
                "Projection": {"ProjectionType": "ALL"},
            }
            for index, pk, sk in spec.indexes
        ],
        "StreamSpecification": {"StreamEnabled": True, "StreamViewType": spec.stream_view},
    }


def _idempotency_table_definition(name: str) -> dict[str, Any]:
    key = catalog.IDEMPOTENCY_TABLE.partition_key
    return {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": key, "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": key, "KeyType": "HASH"}],
    }


def _customer_keys_definition() -> dict[str, Any]:
    key = catalog.CUSTOMER_KEYS.partition_key
    return {
        "TableName": naming.CUSTOMER_KEYS_TABLE,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": key, "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": key, "KeyType": "HASH"}],
    }


def create_tables(dynamodb: Any) -> list[str]:
    """Every service's table and idempotency table, and the customer key store."""
    existing = set(dynamodb.list_tables()["TableNames"])
    created = []
    if naming.CUSTOMER_KEYS_TABLE not in existing:
        dynamodb.create_table(**_customer_keys_definition())
    created.append(naming.CUSTOMER_KEYS_TABLE)
    for service in catalog.SERVICES:
        for definition in (
            _service_table_definition(naming.table(service.name)),
            _idempotency_table_definition(naming.idempotency_table(service.name)),
        ):
            if definition["TableName"] not in existing:
                dynamodb.create_table(**definition)
            created.append(definition["TableName"])
    for service in catalog.SERVICES:
        dynamodb.update_time_to_live(
            TableName=naming.table(service.name),
            TimeToLiveSpecification={"Enabled": True, "AttributeName": catalog.SERVICE_TABLE.ttl_attribute},
        )
    return created


def create_queues(sqs: Any) -> dict[str, str]:
    retention = str(int(DEAD_LETTER_RETENTION.total_seconds()))
    return {
        name: sqs.create_queue(QueueName=name, Attributes={"MessageRetentionPeriod": retention})["QueueUrl"]
        for name in naming.all_queues()
    }


def _create_bucket(s3: Any, region: str, **kwargs: Any) -> None:
    if region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(**kwargs)


def create_buckets(s3: Any, region: str) -> list[str]:
    _create_bucket(s3, region, Bucket=naming.AUDIT_ARCHIVE_BUCKET, ObjectLockEnabledForBucket=True)
    return [naming.AUDIT_ARCHIVE_BUCKET]


def failure_owners(spec: catalog.ServiceSpec) -> list[str]:
    """Whose mappings give batches up into the service's bucket: each handler's, and the relay's."""
    return [h.name for h in spec.handlers] + ([names.RELAY] if spec.publishes else [])


def create_failed_batch_buckets(s3: Any, sqs: Any, queues: dict[str, str], region: str) -> list[str]:
    """Each service's failed-batch bucket (shopstream.failed_batches), as its stack makes it: objects expire
    after FAILED_BATCH_RETENTION, and each mapping's objects are announced to its dead-letter queue."""
    created, notified = [], []
    for spec in catalog.SERVICES:
        owners = failure_owners(spec)
        if not owners:
            continue
        bucket = naming.failed_batches_bucket(spec.name)
        _create_bucket(s3, region, Bucket=bucket)
        s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [{
            "ID": "expire-after-the-dead-letters", "Status": "Enabled", "Filter": {"Prefix": OBJECT_PREFIX},
            "Expiration": {"Days": FAILED_BATCH_RETENTION.days}}]})
        configurations = []
        for owner in owners:
            url = queues[naming.dlq(spec.name, owner)]
            notified.append(url)
            configurations.append({
                "Id": owner, "Events": ["s3:ObjectCreated:*"], "QueueArn": _queue_arn(url, region),
                "Filter": {"Key": {"FilterRules": [{"Name": "prefix",
                                                    "Value": mapping_prefix(naming.mapping_id(spec.name, owner))}]}}})
        s3.put_bucket_notification_configuration(Bucket=bucket,
                                                 NotificationConfiguration={"QueueConfigurations": configurations})
        created.append(bucket)
    for url in notified:  # S3 greets each queue it will notify with a test event: not a dead letter
        _remove_test_events(sqs, url)
    return created


def _queue_arn(url: str, region: str) -> str:
    """A queue's ARN from its URL (``https://<host>/<account>/<name>``), without asking SQS."""
    account, name = url.rstrip("/").split("/")[-2:]
    return f"arn:aws:sqs:{region}:{account}:{name}"


def _remove_test_events(sqs: Any, url: str) -> None:
    """The queues are new: what they hold is S3's greeting (the local stack provisions once, at its start)."""
    with contextlib.suppress(sqs.exceptions.PurgeQueueInProgress):
        sqs.purge_queue(QueueUrl=url)


def create_customer_data_key(kms: Any) -> str:
    """The KMS key that wraps customers' keys (shopstream.personal), under its alias; its ARN."""
    for alias in kms.list_aliases()["Aliases"]:
        if alias["AliasName"] == naming.CUSTOMER_DATA_KEY and "TargetKeyId" in alias:
            return str(kms.describe_key(KeyId=alias["TargetKeyId"])["KeyMetadata"]["Arn"])
    key = kms.create_key(Description="shopstream local: wraps every customer's key")["KeyMetadata"]
    kms.create_alias(AliasName=naming.CUSTOMER_DATA_KEY, TargetKeyId=key["KeyId"])
    return str(key["Arn"])


def create_request_fingerprint_key(kms: Any) -> str:
    """The HMAC key that fingerprints request bodies for their Idempotency-Key (shopstream.key_binding), under
    its alias; its ARN."""
    for alias in kms.list_aliases()["Aliases"]:
        if alias["AliasName"] == naming.REQUEST_FINGERPRINT_KEY and "TargetKeyId" in alias:
            return str(kms.describe_key(KeyId=alias["TargetKeyId"])["KeyMetadata"]["Arn"])
    key = kms.create_key(Description="shopstream local: fingerprints request bodies", KeySpec="HMAC_256",
                         KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]
    kms.create_alias(AliasName=naming.REQUEST_FINGERPRINT_KEY, TargetKeyId=key["KeyId"])
    return str(key["Arn"])


def create_aws_resources(client: Callable[..., Any], region: str) -> dict[str, str]:
    """``client``: a client by service name (shopstream.aws.client, or boto3.client: its stubs type each name)."""
    """Every table, queue, bucket and key the services use, through ``client(service_name)``
    (moto in process, the moto server, or anything speaking the AWS APIs); the queue URLs by name."""
    create_tables(client("dynamodb"))
    queues = create_queues(client("sqs"))
    create_buckets(client("s3"), region)
    create_failed_batch_buckets(client("s3"), client("sqs"), queues, region)
    create_customer_data_key(client("kms"))
    create_request_fingerprint_key(client("kms"))
    return queues
