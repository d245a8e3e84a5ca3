"""MSK cluster (IAM auth, TLS, encrypted), the catalog's topics, and the event schema registry."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_msk as msk
from aws_cdk import aws_ssm as ssm
from aws_cdk import custom_resources as cr
from constructs import Construct

from shopstream import catalog
from stacks.config import EnvironmentConfig, log_retention
from stacks.kafka_arns import group_arn, topic_arn
from stacks.nag import acknowledge, acknowledge_wildcard_resources
from stacks.network import NetworkStack

REPLICATOR_ACTIONS = [
    "kafka-cluster:Connect", "kafka-cluster:DescribeCluster", "kafka-cluster:AlterCluster",
    "kafka-cluster:DescribeTopic", "kafka-cluster:CreateTopic", "kafka-cluster:AlterTopic",
    "kafka-cluster:WriteData", "kafka-cluster:ReadData", "kafka-cluster:AlterGroup", "kafka-cluster:DescribeGroup",
    "kafka-cluster:DescribeTopicDynamicConfiguration", "kafka-cluster:AlterTopicDynamicConfiguration",
    "kafka-cluster:WriteDataIdempotently",
]
KAFKA_VERSION = "3.8.x"  # >= 3.6: AWS::MSK::Topic and tiered storage
SCHEMAS_DIR = Path(__file__).resolve().parents[1] / "schemas"
# Topics kept longer than this use tiered storage where the environment enables it;
# brokers keep the most recent LOCAL_RETENTION on their disks.
TIERED_ABOVE_DAYS = 30
LOCAL_RETENTION_MS = 3 * 24 * 3600 * 1000


def topic_configs(topic: catalog.Topic, config: EnvironmentConfig) -> dict[str, str]:
    """Kafka topic properties; AWS::MSK::Topic takes them as base64 of this JSON object."""
    configs = {
        "cleanup.policy": "delete",
        "retention.ms": str(topic.retention_ms),
        "min.insync.replicas": str(config.min_insync_replicas),
    }
    if config.tiered_storage and topic.retention.days > TIERED_ABOVE_DAYS:
        configs["remote.storage.enable"] = "true"
        configs["local.retention.ms"] = str(LOCAL_RETENTION_MS)
    return configs


def encode_configs(configs: dict[str, str]) -> str:
    return base64.b64encode(json.dumps(configs, sort_keys=True).encode()).decode()


def bootstrap_servers_parameter_name(config: EnvironmentConfig) -> str:
    """The IAM bootstrap string, read by the service stacks at deploy time (never exported: it changes
    when brokers are added, and an export in use cannot change)."""
    return f"{config.ssm_prefix}/kafka/bootstrap-servers-iam"


def glue_schema_definition(path: Path) -> str:
    """Glue's JSON format accepts drafts 4-7; our schemas are draft-07 compatible."""
    return json.dumps(json.loads(path.read_text()), sort_keys=True, separators=(",", ":"))


class MessagingStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig,
                 network: NetworkStack, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        removal = cdk.RemovalPolicy.RETAIN if config.retain else cdk.RemovalPolicy.DESTROY
        if config.existing_cluster_arn:
            self.cluster_arn = config.existing_cluster_arn
        else:
            self.cluster_arn = self._cluster(config, network, removal)

        for topic in catalog.TOPICS:
            cfn_topic = msk.CfnTopic(
                self,
                f"Topic-{topic.name}",
                cluster_arn=self.cluster_arn,
                topic_name=topic.name,
                # The environment's count (cdk.json `partitions`), the catalog's by default. MSK only adds
                # partitions to an existing topic; keys then move to other partitions (no consumer depends on
                # arrival order, docs/architecture.md).
                partition_count=config.partition_count(topic.name),
                replication_factor=config.replication_factor,
                configs=encode_configs(topic_configs(topic, config)),
            )
            cfn_topic.apply_removal_policy(removal)

        self.registry = glue.CfnRegistry(
            self, "SchemaRegistry", name=f"{config.prefix}-events",
            description="JSON Schema of every shopstream event type and version")
        for spec in catalog.EVENTS:
            glue.CfnSchema(
                self,
                f"Schema-{spec.name}-{spec.version}",
                name=f"{spec.name}-{spec.version}",
                registry=glue.CfnSchema.RegistryProperty(arn=self.registry.attr_arn),
                data_format="JSON",
                compatibility="BACKWARD",
                schema_definition=glue_schema_definition(SCHEMAS_DIR / f"{spec.name}.{spec.version}.json"),
                description=f"{spec.name} {spec.version} on {spec.topic}, key {spec.key_field}",
            )

        if config.replication:
            self._replicator(config, network)
        ssm.StringParameter(
            self, "BootstrapServersParameter", parameter_name=bootstrap_servers_parameter_name(config),
            string_value=self._bootstrap_servers(config),
            description="MSK bootstrap brokers for IAM authentication (SASL/TLS, port 9098)")

        cdk.CfnOutput(self, "ClusterArn", value=self.cluster_arn)

    def _bootstrap_servers(self, config: EnvironmentConfig) -> str:
        """The IAM (SASL/TLS) bootstrap string; CloudFormation does not return it, the API does.
        Looked up again whenever the broker count changes (the id changes with it)."""
        lookup = cr.AwsCustomResource(
            self, "BootstrapBrokers",
            on_update=cr.AwsSdkCall(
                service="Kafka", action="getBootstrapBrokers", parameters={"ClusterArn": self.cluster_arn},
                physical_resource_id=cr.PhysicalResourceId.of(
                    f"bootstrap-{self.node.addr}-{config.broker_count}"),
                output_paths=["BootstrapBrokerStringSaslIam"]),
            policy=cr.AwsCustomResourcePolicy.from_statements([iam.PolicyStatement(
                actions=["kafka:GetBootstrapBrokers"], resources=[self.cluster_arn])]),
            install_latest_aws_sdk=False,
        )
        acknowledge(self, "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                          "AWSLambdaBasicExecutionRole]",
                    "CDK's AwsCustomResource provider function uses the basic execution role for its logs")
        acknowledge(self, "AwsSolutions-L1",
                    "the AwsCustomResource provider runtime is chosen and kept current by aws-cdk-lib")
        return lookup.get_response_field("BootstrapBrokerStringSaslIam")

    def _cluster(self, config: EnvironmentConfig, network: NetworkStack, removal: cdk.RemovalPolicy) -> str:
        key = kms.Key(self, "ClusterKey", enable_key_rotation=True, removal_policy=removal,
                      description="shopstream MSK data at rest")
        broker_logs = logs.LogGroup(self, "BrokerLogs", retention=log_retention(config.log_retention_days),
                                    removal_policy=removal)
        server_properties = "\n".join([
            "auto.create.topics.enable=false",  # topics exist only as the catalog declares them
            f"default.replication.factor={config.replication_factor}",
            f"min.insync.replicas={config.min_insync_replicas}",
            "unclean.leader.election.enable=false",
            "allow.everyone.if.no.acl.found=false",
        ])
        configuration = msk.CfnConfiguration(
            self, "BrokerConfiguration", name=f"{config.prefix}-brokers",
            server_properties=server_properties, kafka_versions_list=[KAFKA_VERSION])
        cluster = msk.CfnCluster(
            self,
            "Cluster",
            cluster_name=config.prefix,
            kafka_version=KAFKA_VERSION,
            number_of_broker_nodes=config.broker_count,
            broker_node_group_info=msk.CfnCluster.BrokerNodeGroupInfoProperty(
                instance_type=config.broker_instance_type,
                client_subnets=[s.subnet_id for s in network.vpc.isolated_subnets],
                security_groups=[network.cluster_sg.security_group_id],
                storage_info=msk.CfnCluster.StorageInfoProperty(
                    ebs_storage_info=msk.CfnCluster.EBSStorageInfoProperty(volume_size=config.broker_volume_gi_b)),
            ),
            client_authentication=msk.CfnCluster.ClientAuthenticationProperty(
                sasl=msk.CfnCluster.SaslProperty(iam=msk.CfnCluster.IamProperty(enabled=True)),
                unauthenticated=msk.CfnCluster.UnauthenticatedProperty(enabled=False),
            ),
            encryption_info=msk.CfnCluster.EncryptionInfoProperty(
                encryption_at_rest=msk.CfnCluster.EncryptionAtRestProperty(data_volume_kms_key_id=key.key_arn),
                encryption_in_transit=msk.CfnCluster.EncryptionInTransitProperty(client_broker="TLS", in_cluster=True),
            ),
            logging_info=msk.CfnCluster.LoggingInfoProperty(
                broker_logs=msk.CfnCluster.BrokerLogsProperty(
                    cloud_watch_logs=msk.CfnCluster.CloudWatchLogsProperty(
                        enabled=True, log_group=broker_logs.log_group_name))),
            configuration_info=msk.CfnCluster.ConfigurationInfoProperty(
                arn=configuration.attr_arn, revision=1),
            enhanced_monitoring="PER_TOPIC_PER_PARTITION" if config.retain else "PER_BROKER",
            storage_mode="TIERED" if config.tiered_storage else "LOCAL",
        )
        cluster.apply_removal_policy(removal)
        return cluster.attr_arn

    def _replicator(self, config: EnvironmentConfig, network: NetworkStack) -> None:
        replication = config.replication
        assert replication is not None
        role = iam.Role(self, "ReplicatorRole", assumed_by=iam.ServicePrincipal("kafka.amazonaws.com"),
                        description="MSK Replicator: read the source cluster, write the target cluster")
        wildcards: list[str] = []
        for cluster_arn in (self.cluster_arn, replication.target_cluster_arn):
            scoped = [topic_arn(cluster_arn, "*"), group_arn(cluster_arn, "*")]
            wildcards += scoped
            role.add_to_policy(iam.PolicyStatement(actions=REPLICATOR_ACTIONS, resources=[cluster_arn, *scoped]))
        acknowledge_wildcard_resources(
            role, wildcards,
            "MSK Replicator creates and manages its own internal topics and groups on both clusters; access is "
            "limited to these two clusters (AWS's managed policy allows every cluster)")
        msk.CfnReplicator(
            self,
            "Replicator",
            replicator_name=f"{config.prefix}-to-{replication.target_region}",
            service_execution_role_arn=role.role_arn,
            kafka_clusters=[
                msk.CfnReplicator.KafkaClusterProperty(
                    amazon_msk_cluster=msk.CfnReplicator.AmazonMskClusterProperty(msk_cluster_arn=self.cluster_arn),
                    vpc_config=msk.CfnReplicator.KafkaClusterClientVpcConfigProperty(
                        subnet_ids=[s.subnet_id for s in network.vpc.isolated_subnets],
                        security_group_ids=[network.cluster_sg.security_group_id])),
                msk.CfnReplicator.KafkaClusterProperty(
                    amazon_msk_cluster=msk.CfnReplicator.AmazonMskClusterProperty(
                        msk_cluster_arn=replication.target_cluster_arn),
                    vpc_config=msk.CfnReplicator.KafkaClusterClientVpcConfigProperty(
                        subnet_ids=replication.target_subnet_ids,
                        security_group_ids=replication.target_security_group_ids)),
            ],
            replication_info_list=[msk.CfnReplicator.ReplicationInfoProperty(
                source_kafka_cluster_arn=self.cluster_arn,
                target_kafka_cluster_arn=replication.target_cluster_arn,
                target_compression_type="LZ4",
                topic_replication=msk.CfnReplicator.TopicReplicationProperty(
                    topics_to_replicate=[t.name for t in catalog.TOPICS],
                    copy_topic_configurations=True, copy_access_control_lists_for_topics=True,
                    detect_and_copy_new_topics=False),
                consumer_group_replication=msk.CfnReplicator.ConsumerGroupReplicationProperty(
                    consumer_groups_to_replicate=[
                        catalog.consumer_group_id(s.name, h.name) for s in catalog.SERVICES for h in s.handlers],
                    synchronise_consumer_group_offsets=True, detect_and_copy_new_consumer_groups=False),
            )],
        )

