"""MSK cluster (IAM auth, TLS, encrypted), the catalog's topics, and the event schema registry.

With replication (cdk.json ``replication``) the same stack is built twice: in the environment's region, the source,
which admits MSK Replicator (multi-VPC connectivity for IAM, a cluster policy); and in the target region, a cluster
of the same brokers that holds the Replicator, which AWS creates in the target cluster's region (stacks/recovery.py).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_msk as msk
from aws_cdk import aws_ssm as ssm
from aws_cdk import custom_resources as cr
from constructs import Construct

from shopstream import catalog
from stacks.config import EXPRESS_STATIC_PROPERTIES, EnvironmentConfig, log_retention
from stacks.kafka_arns import group_arn, topic_arn
from stacks.nag import acknowledge, acknowledge_wildcard_resources
from stacks.network import MSK_IAM_TLS_PORT, NetworkStack

REPLICATOR_ACTIONS = [
    "kafka-cluster:Connect", "kafka-cluster:DescribeCluster", "kafka-cluster:AlterCluster",
    "kafka-cluster:DescribeTopic", "kafka-cluster:CreateTopic", "kafka-cluster:AlterTopic",
    "kafka-cluster:WriteData", "kafka-cluster:ReadData", "kafka-cluster:AlterGroup", "kafka-cluster:DescribeGroup",
    "kafka-cluster:DescribeTopicDynamicConfiguration", "kafka-cluster:AlterTopicDynamicConfiguration",
    "kafka-cluster:WriteDataIdempotently",
]
# What a cross-region MSK Replicator calls on the source cluster, which its cluster policy must allow to the service:
# "attach a resource-based permissions policy to the source cluster to allow the kafka.amazonaws.com service principal
# to perform kafka:CreateVpcConnection, kafka:GetBootstrapBrokers, and kafka:DescribeClusterV2 actions"
# https://docs.aws.amazon.com/msk/latest/developerguide/msk-replicator-network-reqs.html
REPLICATOR_SOURCE_POLICY_ACTIONS = ["kafka:CreateVpcConnection", "kafka:GetBootstrapBrokers", "kafka:DescribeClusterV2"]
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
    }
    if not config.express_brokers:  # Express brokers fix it at 2 and protect it from change (stacks/config.py)
        configs["min.insync.replicas"] = str(config.min_insync_replicas)
    if config.tiered_storage and topic.retention.days > TIERED_ABOVE_DAYS:
        configs["remote.storage.enable"] = "true"
        configs["local.retention.ms"] = str(LOCAL_RETENTION_MS)
    return configs


def server_properties(config: EnvironmentConfig) -> str:
    """The brokers' configuration. On Express brokers MSK sets the replication factor, min.insync.replicas and
    unclean leader election itself (read-only there): the configuration sets only what Express lets it."""
    properties = {
        "auto.create.topics.enable": "false",  # topics exist only as the catalog declares them
        "default.replication.factor": str(config.replication_factor),
        "min.insync.replicas": str(config.min_insync_replicas),
        "unclean.leader.election.enable": "false",
        "allow.everyone.if.no.acl.found": "false",
    }
    if config.express_brokers:
        properties = {k: v for k, v in properties.items() if k in EXPRESS_STATIC_PROPERTIES}
    return "\n".join(f"{k}={v}" for k, v in properties.items())


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
                 network: NetworkStack, replicates_from: MessagingStack | None = None, **kwargs) -> None:
        """``replicates_from``: the source's messaging stack, when this one is the replication target (in the
        target region, built from ``config.replica()``)."""
        super().__init__(scope, construct_id, **kwargs)
        self.network = network
        removal = cdk.RemovalPolicy.RETAIN if config.retain else cdk.RemovalPolicy.DESTROY
        if config.existing_cluster_arn:
            self.cluster_arn = config.existing_cluster_arn
        else:
            self.cluster_arn = self._cluster(config, network, removal)

        # A replication target gets its topics from the Replicator, which creates each one with the source's
        # configuration (CopyTopicConfigurations); AWS documents no replication into topics made beforehand.
        for topic in catalog.TOPICS if replicates_from is None else ():
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

        if replicates_from is not None:
            self._replicator(config, network, replicates_from)
        elif config.replication:
            self._admit_the_replicator()
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
        configuration = msk.CfnConfiguration(
            self, "BrokerConfiguration", name=f"{config.prefix}-brokers",
            server_properties=server_properties(config), kafka_versions_list=[KAFKA_VERSION])
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
                # Express brokers have no volume to size: MSK manages their storage.
                storage_info=None if config.express_brokers else msk.CfnCluster.StorageInfoProperty(
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
            # The configuration's latest revision: a change of the server properties makes a new revision
            # (UpdateConfiguration), and the cluster takes it only if ConfigurationInfo names it.
            # https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-msk-configuration.html
            configuration_info=msk.CfnCluster.ConfigurationInfoProperty(
                arn=configuration.attr_arn, revision=configuration.attr_latest_revision_revision),
            enhanced_monitoring=config.msk_monitoring_level,
            storage_mode=None if config.express_brokers else "TIERED" if config.tiered_storage else "LOCAL",
        )
        cluster.apply_removal_policy(removal)
        return cluster.attr_arn

    def _admit_the_replicator(self) -> None:
        """The source side of cross-region replication: "The source cluster must have multi-VPC private connectivity
        turned on for IAM access control", plus a cluster policy letting the service connect to it
        (https://docs.aws.amazon.com/msk/latest/developerguide/msk-replicator-network-reqs.html). AWS refuses a
        cluster *created* with multi-VPC connectivity on ("When creating a cluster, all vpcConnectivity auth schemes
        must be disabled"): replication is turned on for a cluster that exists, by a second deploy, which updates the
        cluster in place (docs/deploy.md)."""
        cluster = self.node.find_child("Cluster")
        assert isinstance(cluster, msk.CfnCluster)
        cluster.add_property_override(
            "BrokerNodeGroupInfo.ConnectivityInfo.VpcConnectivity.ClientAuthentication.Sasl.Iam.Enabled", True)
        msk.CfnClusterPolicy(self, "ReplicatorClusterPolicy", cluster_arn=self.cluster_arn, policy={
            "Version": "2012-10-17",
            "Statement": [{
                "Sid": "MskReplicatorReadsThisCluster",
                "Effect": "Allow",
                "Principal": {"Service": "kafka.amazonaws.com"},
                "Action": REPLICATOR_SOURCE_POLICY_ACTIONS,
                "Resource": self.cluster_arn,
            }],
        })

    def _replicator(self, config: EnvironmentConfig, network: NetworkStack, source: MessagingStack) -> None:
        """The Replicator, in the target cluster's region: "To get started with MSK Replicator, you need create a new
        Replicator in your target cluster's AWS Region"
        (https://docs.aws.amazon.com/msk/latest/developerguide/msk-replicator-how-it-works.html). Every topic and
        every consumer group of the catalog, under the same names and from the earliest offset, so that the target
        holds the whole history and the consumers resume there where they were (docs/runbooks/failover.md)."""
        source_region = source.region
        role = iam.Role(
            self, "ReplicatorRole",
            # The documented trust policy of the service execution role, with aws:SourceAccount:
            # https://docs.aws.amazon.com/msk/latest/developerguide/msk-replicator-ser.html
            assumed_by=iam.ServicePrincipal("kafka.amazonaws.com",
                                            conditions={"StringEquals": {"aws:SourceAccount": self.account}}),
            description=f"MSK Replicator: read the cluster in {source_region}, write the cluster in {self.region}")
        # AWSMSKReplicatorExecutionRole's actions, on these two clusters only; "You need to add
        # kafka-cluster:WriteDataIdempotently permission to both the source and target cluster" (same page). The
        # source's topics and groups by its name (the cluster's name is the prefix, its ARN's id comes from another
        # region at deploy time), this cluster's by its ARN.
        source_scoped = [self.format_arn(service="kafka", region=source_region, resource=kind,
                                         resource_name=f"{config.prefix}/*") for kind in ("topic", "group")]
        target_scoped = [topic_arn(self.cluster_arn, "*"), group_arn(self.cluster_arn, "*")]
        wildcards = source_scoped + target_scoped
        for cluster_arn, scoped in ((source.cluster_arn, source_scoped), (self.cluster_arn, target_scoped)):
            role.add_to_policy(iam.PolicyStatement(actions=REPLICATOR_ACTIONS, resources=[cluster_arn, *scoped]))
        acknowledge_wildcard_resources(
            role, wildcards,
            "MSK Replicator creates and manages its own internal topics and groups on both clusters; access is "
            "limited to these two clusters (AWS's managed policy allows every cluster)")
        # "You do not need to provide security groups for the source cluster. You must provide security groups for
        # the target cluster with appropriate inbound and outbound rules on port 9098" (msk-replicator-network-reqs).
        replicator_sg = ec2.SecurityGroup(
            self, "ReplicatorSg", vpc=network.vpc, allow_all_outbound=False,
            description=f"MSK Replicator from {source_region}: writes to the brokers with IAM auth")
        replicator_sg.add_egress_rule(network.cluster_sg, ec2.Port.tcp(MSK_IAM_TLS_PORT), "to the target brokers")
        ec2.CfnSecurityGroupIngress(
            self, "BrokersAdmitTheReplicator", group_id=network.cluster_sg.security_group_id,
            source_security_group_id=replicator_sg.security_group_id, ip_protocol="tcp",
            from_port=MSK_IAM_TLS_PORT, to_port=MSK_IAM_TLS_PORT, description="MSK Replicator writes with IAM auth")
        msk.CfnReplicator(
            self,
            "Replicator",
            replicator_name=f"{config.prefix}-from-{source_region}",
            description=f"shopstream {config.name}: every topic and consumer group from {source_region}",
            service_execution_role_arn=role.role_arn,
            kafka_clusters=[
                msk.CfnReplicator.KafkaClusterProperty(
                    amazon_msk_cluster=msk.CfnReplicator.AmazonMskClusterProperty(msk_cluster_arn=source.cluster_arn),
                    vpc_config=msk.CfnReplicator.KafkaClusterClientVpcConfigProperty(
                        subnet_ids=[s.subnet_id for s in source.network.vpc.isolated_subnets])),
                msk.CfnReplicator.KafkaClusterProperty(
                    amazon_msk_cluster=msk.CfnReplicator.AmazonMskClusterProperty(msk_cluster_arn=self.cluster_arn),
                    vpc_config=msk.CfnReplicator.KafkaClusterClientVpcConfigProperty(
                        subnet_ids=[s.subnet_id for s in network.vpc.isolated_subnets],
                        security_group_ids=[replicator_sg.security_group_id])),
            ],
            replication_info_list=[msk.CfnReplicator.ReplicationInfoProperty(
                source_kafka_cluster_arn=source.cluster_arn,
                target_kafka_cluster_arn=self.cluster_arn,
                target_compression_type="LZ4",
                topic_replication=msk.CfnReplicator.TopicReplicationProperty(
                    topics_to_replicate=[t.name for t in catalog.TOPICS],
                    copy_topic_configurations=True, copy_access_control_lists_for_topics=True,
                    detect_and_copy_new_topics=False,
                    # The whole retained history, not only what is produced after the Replicator starts ("By
                    # default, MSK Replicator copies all data asynchronously from the latest offset").
                    starting_position=msk.CfnReplicator.ReplicationStartingPositionProperty(type="EARLIEST"),
                    # The catalog's topic names, so consumers fail over without another configuration ("Identical
                    # topic name replication"; needs Kafka 2.8.1 or later on both clusters).
                    # https://docs.aws.amazon.com/msk/latest/developerguide/msk-replicator-topic-naming.html
                    topic_name_configuration=msk.CfnReplicator.ReplicationTopicNameConfigurationProperty(
                        type="IDENTICAL")),
                consumer_group_replication=msk.CfnReplicator.ConsumerGroupReplicationProperty(
                    consumer_groups_to_replicate=[
                        catalog.consumer_group_id(s.name, h.name) for s in catalog.SERVICES for h in s.handlers],
                    synchronise_consumer_group_offsets=True, detect_and_copy_new_consumer_groups=False),
            )],
        )
