"""What every service shares: layers, the HTTP API and its users, alarms, the audit archive, and the customer
key store (the key that wraps every customer's key, and the table of wrapped keys)."""

from __future__ import annotations

import json

import aws_cdk as cdk
import jsii
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from shopstream import catalog, names
from stacks.config import EnvironmentConfig, log_retention
from stacks.layers import Layers
from stacks.nag import acknowledge

# stacks.service.data and stacks.service.monitoring are imported where used: the stacks.service package imports this
# module, so importing them here would be an import cycle.

ADMIN_GROUP = "admin"
# The longest wait KMS allows between scheduling a key's deletion and the deletion (cancellable meanwhile).
# https://docs.aws.amazon.com/kms/latest/APIReference/API_ScheduleKeyDeletion.html
KEY_DELETION_WINDOW_DAYS = 30
# Only variables HTTP APIs define (REST API ones such as $context.resourcePath are not substituted);
# the caller is the JWT's subject, $context.identity.user being set only for IAM-authorised routes.
# https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-logging-variables.html
HTTP_API_ACCESS_LOG_FORMAT = {
    "requestId": "$context.requestId",
    "ip": "$context.identity.sourceIp",
    "requestTime": "$context.requestTime",
    "httpMethod": "$context.httpMethod",
    "routeKey": "$context.routeKey",
    "path": "$context.path",
    "protocol": "$context.protocol",
    "status": "$context.status",
    "responseLength": "$context.responseLength",
    "responseLatency": "$context.responseLatency",
    "integrationStatus": "$context.integration.status",
    "integrationError": "$context.integration.error",
    "authorizerError": "$context.authorizer.error",
    "user": "$context.authorizer.claims.sub",
}


def audit_archive_bucket_name(config: EnvironmentConfig) -> str:
    """Deterministic, so services name it without a cross-stack reference."""
    return names.audit_archive_bucket(config.prefix, cdk.Aws.ACCOUNT_ID, cdk.Aws.REGION)


def _user_pool_email(config: EnvironmentConfig) -> cognito.UserPoolEmail | None:
    """Sign-up verification and recovery codes through SES from the notification service's verified identity, in
    the pool's region (EmailSendingAccount DEVELOPER, the identity as SourceArn): Cognito's own sending allows "only a
    limited number of emails each day", "below the required delivery volume" of production. None (dev): Cognito's.
    https://docs.aws.amazon.com/cognito-user-identity-pools/latest/APIReference/API_EmailConfigurationType.html"""
    email = config.email
    if email is None:
        return None
    domain = email.identity if "@" not in email.identity else None
    return cognito.UserPoolEmail.with_ses(from_email=email.sender, from_name=email.sender_name,
                                          ses_region=config.region, ses_verified_domain=domain)


def break_glass_statements(stack: cdk.Stack, config: EnvironmentConfig) -> list[iam.PolicyStatement]:
    """Disabling a key that protects customer data stops the shop; deleting it makes every customer's data
    unreadable for good. The key policy denies both to every principal but the break-glass role (named by
    ARN, so it may be made, or made again, after the key), and a deletion always waits 30 days. The same statements
    protect the customer-data key's replica in the replication target region (stacks/recovery.py).

    kms:PutKeyPolicy stays allowed to the account (CDK's statement for it): KMS refuses a policy that would
    stop its setter, here CloudFormation's execution role, from setting the next one (the lockout safety
    check). Where CloudFormation deletes the key (removalPolicy "destroy"), that role may schedule the
    deletion too, or the environment could not be torn down."""
    exempted = [stack.format_arn(service="iam", region="", account=stack.account, resource="role",
                                 resource_name=config.break_glass_role_name)]
    if not config.retain and isinstance(stack.synthesizer, cdk.DefaultStackSynthesizer):
        # arn:${AWS::Partition}:iam::${AWS::AccountId}:role/cdk-<qualifier>-cfn-exec-role-...: placeholders
        # the CDK CLI fills in asset manifests only; Fn::Sub fills them in the template.
        exempted.append(cdk.Fn.sub(stack.synthesizer.cloud_formation_execution_role_arn))
    return [
        iam.PolicyStatement(
            sid="OnlyBreakGlassMayDisableOrDelete", effect=iam.Effect.DENY, principals=[iam.AnyPrincipal()],
            actions=["kms:DisableKey", "kms:ScheduleKeyDeletion"], resources=["*"],
            conditions={"ArnNotEquals": {"aws:PrincipalArn": exempted}}),
        iam.PolicyStatement(
            sid="DeletionWaitsThirtyDays", effect=iam.Effect.DENY, principals=[iam.AnyPrincipal()],
            actions=["kms:ScheduleKeyDeletion"], resources=["*"],
            conditions={"NumericLessThan": {
                "kms:ScheduleKeyDeletionPendingWindowInDays": str(KEY_DELETION_WINDOW_DAYS)}}),
    ]


@jsii.implements(apigwv2.IAccessLogSettings)
class _AccessLogs:
    def __init__(self, log_group: logs.ILogGroup):
        self._destination = apigwv2.LogGroupLogDestination(log_group)

    @property
    def destination(self) -> apigwv2.IAccessLogDestination:
        return self._destination

    @property
    def format(self) -> apigw.AccessLogFormat:
        return apigw.AccessLogFormat.custom(json.dumps(HTTP_API_ACCESS_LOG_FORMAT, separators=(",", ":")))


class PlatformStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.config = config
        removal = cdk.RemovalPolicy.RETAIN if config.retain else cdk.RemovalPolicy.DESTROY
        self.layers = Layers(self, "Layers", ssm_prefix=config.ssm_prefix)

        # --- alarms ------------------------------------------------------------------
        alarm_key = kms.Key(self, "AlarmKey", enable_key_rotation=True, removal_policy=removal,
                            pending_window=cdk.Duration.days(KEY_DELETION_WINDOW_DAYS),
                            description="shopstream alarm notifications")
        self.alarm_topic = sns.Topic(self, "Alarms", display_name=f"{config.prefix} alarms",
                                     master_key=alarm_key, enforce_ssl=True)
        alarm_key.grant_encrypt_decrypt(iam.ServicePrincipal("cloudwatch.amazonaws.com"))
        if config.alarm_email:
            self.alarm_topic.add_subscription(subscriptions.EmailSubscription(config.alarm_email))

        # --- identity and API ----------------------------------------------------------
        self.user_pool = cognito.UserPool(
            self, "Users", user_pool_name=f"{config.prefix}-users", self_sign_up_enabled=True,
            sign_in_aliases=cognito.SignInAliases(email=True), auto_verify=cognito.AutoVerifiedAttrs(email=True),
            password_policy=cognito.PasswordPolicy(min_length=12, require_digits=True, require_lowercase=True,
                                                   require_uppercase=True, require_symbols=True),
            mfa=cognito.Mfa.OPTIONAL, mfa_second_factor=cognito.MfaSecondFactor(otp=True, sms=False),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY, removal_policy=removal,
            email=_user_pool_email(config),
        )
        acknowledge(self.user_pool, "AwsSolutions-COG2",
                    "MFA is optional for shoppers (offered as TOTP); admins are required to enrol by policy")
        for rule in ("AwsSolutions-COG3", "AwsSolutions-COG8"):
            acknowledge(self.user_pool, rule,
                        "Cognito Plus (threat protection) is a per-environment cost decision, off by default")
        cognito.CfnUserPoolGroup(self, "AdminGroup", user_pool_id=self.user_pool.user_pool_id,
                                 group_name=ADMIN_GROUP, description="may manage products, stock and shipments")
        self.user_pool_client = self.user_pool.add_client(
            "WebClient", auth_flows=cognito.AuthFlow(user_srp=True), prevent_user_existence_errors=True)
        # The black-box suite's and operators' client (tests/blackbox): the admin password flow, which only a
        # caller with AWS credentials (cognito-idp:AdminInitiateAuth) can use; no secret, no self sign-in.
        self.operators_client = self.user_pool.add_client(
            "OperatorsClient", auth_flows=cognito.AuthFlow(admin_user_password=True),
            prevent_user_existence_errors=True)

        self.api = apigwv2.HttpApi(self, "Api", api_name=f"{config.prefix}-api", create_default_stage=False,
                                   description="shopstream synchronous API (reads and commands)")
        access_logs = logs.LogGroup(self, "ApiAccessLogs", retention=log_retention(config.log_retention_days),
                                    removal_policy=removal)
        self.stage = apigwv2.HttpStage(
            self, "DefaultStage", http_api=self.api, stage_name="$default", auto_deploy=True,
            access_log_settings=_AccessLogs(access_logs),
            throttle=apigwv2.ThrottleSettings(rate_limit=config.api_throttle.rate_limit,
                                              burst_limit=config.api_throttle.burst_limit),
        )
        self.authorizer = authorizers.HttpUserPoolAuthorizer(
            "Jwt", self.user_pool, user_pool_clients=[self.user_pool_client, self.operators_client])

        # --- audit archive -------------------------------------------------------------
        self.audit_archive = self._audit_archive(config, removal)

        # --- customer keys (shopstream.personal; docs/data-map.md) -----------------------
        self.customer_data_key, self.customer_keys = self._customer_keys(config, removal)
        self.request_fingerprint_key = self._request_fingerprint_key(config, removal)

        self._backbone_dashboard(config)
        cdk.CfnOutput(self, "ApiUrl", value=self.api.api_endpoint)
        cdk.CfnOutput(self, "UserPoolId", value=self.user_pool.user_pool_id)
        cdk.CfnOutput(self, "UserPoolClientId", value=self.user_pool_client.user_pool_client_id)
        cdk.CfnOutput(self, "OperatorsClientId", value=self.operators_client.user_pool_client_id)

    def _audit_archive(self, config: EnvironmentConfig, removal: cdk.RemovalPolicy) -> s3.Bucket:
        key = kms.Key(self, "AuditArchiveKey", enable_key_rotation=True, removal_policy=removal,
                      pending_window=cdk.Duration.days(KEY_DELETION_WINDOW_DAYS),
                      description="shopstream audit archive")
        # Years of sealed events under Object Lock: deleting this key would make them unreadable before their
        # retention ends, which Object Lock exists to prevent.
        self._only_break_glass_may_disable_or_delete(key, config)
        access_logs = s3.Bucket(
            self, "AuditArchiveAccessLogs", encryption=s3.BucketEncryption.S3_MANAGED, enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL, removal_policy=removal,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            lifecycle_rules=[s3.LifecycleRule(expiration=cdk.Duration.days(365))],
            # CloudFormation deletes only empty buckets: a destroyable environment empties it first.
            auto_delete_objects=not config.retain,
        )
        acknowledge(access_logs, "AwsSolutions-S1",
                    "this bucket receives the archive's server access logs; logging it would recurse")
        # Object Lock where data is retained (compliance in staging/prod). A destroyable environment has
        # none: locked object versions cannot be deleted before their retention ends, so the bucket could
        # never be removed (config.py refuses Object Lock with removalPolicy "destroy").
        lock = config.audit_retention
        default_retention = None
        if lock is not None:
            retention = cdk.Duration.days(lock.days)
            default_retention = (s3.ObjectLockRetention.compliance(retention) if lock.mode == "compliance"
                                 else s3.ObjectLockRetention.governance(retention))
        bucket = s3.Bucket(
            self,
            "AuditArchive",
            bucket_name=audit_archive_bucket_name(config),
            encryption=s3.BucketEncryption.KMS,
            encryption_key=key,
            bucket_key_enabled=True,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            versioned=True,
            object_lock_enabled=lock is not None,
            object_lock_default_retention=default_retention,
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix="audit-archive/",
            lifecycle_rules=[s3.LifecycleRule(transitions=[
                s3.Transition(storage_class=s3.StorageClass.GLACIER_INSTANT_RETRIEVAL,
                              transition_after=cdk.Duration.days(30)),
                s3.Transition(storage_class=s3.StorageClass.DEEP_ARCHIVE, transition_after=cdk.Duration.days(365)),
            ])],
            removal_policy=removal,
            auto_delete_objects=not config.retain,
        )
        if not config.retain:
            for rule in ("AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                         "AWSLambdaBasicExecutionRole]", "AwsSolutions-L1"):
                acknowledge(self, rule, "CDK's auto-delete-objects provider (empties the buckets of a destroyable "
                                        "environment); its runtime and logging role are chosen by aws-cdk-lib")
        return bucket

    def _customer_keys(self, config: EnvironmentConfig,
                       removal: cdk.RemovalPolicy) -> tuple[kms.Key, dynamodb.ITable]:
        """One KMS key wraps every customer's key (a data key each, not a KMS key each: a KMS key costs $1 a
        month and erasure would have to wait out its 7-30 day deletion window). The wrapped keys live in a
        table of their own: the user service writes and deletes them (erasure deletes the customer's item,
        which is what makes their data unreadable); functions that seal read the public halves; only those
        that must read a personal field may decrypt. Only the user API writes, through IAM (stacks/service/)."""
        key = kms.Key(self, "CustomerDataKey", enable_key_rotation=True, removal_policy=removal,
                      pending_window=cdk.Duration.days(KEY_DELETION_WINDOW_DAYS),
                      alias=names.customer_data_key_alias(config.prefix),
                      # Multi-Region wherever the environment may fail over: the target region needs a replica of
                      # this key to open anything sealed here, and "You decide whether a key is single-Region or
                      # multi-Region only when you create it; you can't change this property later"
                      # (https://docs.aws.amazon.com/kms/latest/developerguide/mrk-how-it-works.html). Elsewhere the
                      # property stays out of the template, as deployed before (a changed MultiRegion fails the update).
                      multi_region=True if config.may_fail_over else None,
                      description="shopstream: wraps each customer's key (personal data is sealed with those)")
        self._only_break_glass_may_disable_or_delete(key, config)
        table = self._customer_key_store(config, removal)
        acknowledge(table, "AwsSolutions-DDB3",
                    "crypto-shredding: a point-in-time backup would keep erased customers' keys (and so their data) "
                    "readable for 35 days; losing this table loses only what customers' data was sealed with")
        return key, table

    def _customer_key_store(self, config: EnvironmentConfig, removal: cdk.RemovalPolicy) -> dynamodb.ITable:
        """No point-in-time recovery: a backup would keep an erased customer's wrapped key for 35 days, and with it
        their data readable. No stream (nothing is relayed from it), except where the table has a replica.

        Where the environment may fail over it is a global table (AWS::DynamoDB::GlobalTable), with a replica in the
        replication target region once replication is on: without the wrapped keys there, everything sealed in the
        replicated events is unreadable after a failover. CloudFormation's AWS::DynamoDB::Table takes no replicas (CDK
        adds them through a custom resource whose provider holds dynamodb:* on the table), and no table turns into an
        AWS::DynamoDB::GlobalTable in place (another resource type under the same name): so the choice is made when
        the table is made, as for the key. A global
        table replicates through its stream, so an erasure's delete reaches the replica too; the stream keeps the
        deleted item's old image for up to 24 hours (docs/decisions.md, 2026-12-04)."""
        name = names.customer_keys_table(config.prefix)
        key_attribute = dynamodb.Attribute(name=catalog.CUSTOMER_KEYS.partition_key, type=dynamodb.AttributeType.STRING)
        no_backup = dynamodb.PointInTimeRecoverySpecification(point_in_time_recovery_enabled=False)
        # Provisioned where cdk.json sizes it (dynamodb.keyStore): every notice checks and reads a key here, a steady
        # load (docs/decisions.md, 2026-12-05); auto scaling keeps it at the tables' target utilisation.
        throughput = config.dynamodb.key_store_throughput()
        percent = round((config.dynamodb.target_utilisation or 0) * 100, 1)
        if not config.may_fail_over:
            plain = dynamodb.Table(
                self, "CustomerKeys", table_name=name, partition_key=key_attribute,
                billing_mode=dynamodb.BillingMode.PROVISIONED if throughput else dynamodb.BillingMode.PAY_PER_REQUEST,
                read_capacity=throughput.min_rcu if throughput else None,
                write_capacity=throughput.min_wcu if throughput else None,
                point_in_time_recovery_specification=no_backup, removal_policy=removal)
            if throughput:
                from stacks.service.data import auto_scale  # stacks.service imports this module

                auto_scale(plain, throughput, percent)
                self._key_store_throttled(plain, config)
            return plain
        replicas = [dynamodb.ReplicaTableProps(region=config.replication.target_region,
                                               point_in_time_recovery_specification=no_backup)
                    ] if config.replication else None
        # A global table's write capacity is one auto scaling for all replicas; each replica reads at its own (the
        # same bounds here: a failover moves the whole load). AWS::DynamoDB::GlobalTable's WriteProvisionedThroughput
        # Settings "must be specified if BillingMode is set to PROVISIONED". The seed is what a table switched from
        # on demand starts at until auto scaling takes over: "required when switching billing mode from
        # PAY_PER_REQUEST to PROVISIONED" (CapacityAutoScalingSettings.SeedCapacity), harmless on a new table.
        billing = dynamodb.Billing.provisioned(
            read_capacity=dynamodb.Capacity.autoscaled(min_capacity=throughput.min_rcu, max_capacity=throughput.max_rcu,
                                                       seed_capacity=throughput.min_rcu,
                                                       target_utilization_percent=percent),
            write_capacity=dynamodb.Capacity.autoscaled(min_capacity=throughput.min_wcu,
                                                        max_capacity=throughput.max_wcu,
                                                        seed_capacity=throughput.min_wcu,
                                                        target_utilization_percent=percent),
        ) if throughput else dynamodb.Billing.on_demand()
        table = dynamodb.TableV2(
            self, "CustomerKeys", table_name=name, partition_key=key_attribute, billing=billing,
            point_in_time_recovery_specification=no_backup, removal_policy=removal, replicas=replicas,
            # "You must provide a value for this property if your global table contains more than one replica."
            # https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-dynamodb-globaltable.html
            dynamo_stream=dynamodb.StreamViewType.NEW_AND_OLD_IMAGES if replicas else None)
        if throughput:
            self._key_store_throttled(table, config)
        return table

    def _key_store_throttled(self, table: dynamodb.ITable, config: EnvironmentConfig) -> None:
        """The alarm every provisioned table has (stacks/service/monitoring.py): the notices retry throttled reads
        and checks (transient), so nothing is lost; they wait."""
        from stacks.service.monitoring import Monitoring  # stacks.service imports this module

        Monitoring(self, service=config.prefix, alarm_topic=self.alarm_topic).table_throttled(
            table, [], construct_id="CustomerKeysThrottled", what="the customer key store",
            setting="dynamodb.keyStore")

    def _request_fingerprint_key(self, config: EnvironmentConfig, removal: cdk.RemovalPolicy) -> kms.Key:
        """The HMAC key that fingerprints a request's body for its Idempotency-Key (shopstream.key_binding): the
        bindings and Powertools' records keep that keyed fingerprint, never a plain hash of a body holding
        personal values. Not rotated (KMS rotates no HMAC key): another key would change every fingerprint,
        and the same request sent again would be refused as another one."""
        return kms.Key(self, "RequestFingerprintKey", key_spec=kms.KeySpec.HMAC_256,
                       key_usage=kms.KeyUsage.GENERATE_VERIFY_MAC, removal_policy=removal,
                       # As the customer-data key: a region that takes the bindings over needs the same key, and
                       # only a key made multi-Region can have a replica (docs/decisions.md, 2026-12-04).
                       multi_region=True if config.may_fail_over else None,
                       pending_window=cdk.Duration.days(KEY_DELETION_WINDOW_DAYS),
                       alias=names.request_fingerprint_key_alias(config.prefix),
                       description="shopstream: fingerprints request bodies for their Idempotency-Key")

    def _only_break_glass_may_disable_or_delete(self, key: kms.Key, config: EnvironmentConfig) -> None:
        for statement in break_glass_statements(self, config):
            key.add_to_resource_policy(statement)

    def _backbone_dashboard(self, config: EnvironmentConfig) -> None:
        """Event backbone across all services; SEARCH finds every function by its name prefix."""
        prefix = config.prefix

        def search(namespace_dims: str, metric: str, stat: str, label: str) -> cloudwatch.MathExpression:
            return cloudwatch.MathExpression(
                expression=f"SEARCH('{{{namespace_dims}}} MetricName=\"{metric}\" {prefix}', '{stat}', 60)",
                label=label, period=cdk.Duration.minutes(1))

        dashboard = cloudwatch.Dashboard(self, "Backbone", dashboard_name=f"{prefix}-event-backbone")
        dashboard.add_widgets(
            cloudwatch.GraphWidget(title="ESM offset lag (records behind, per function)", width=12,
                                   left=[search("AWS/Lambda,FunctionName", "OffsetLag", "Maximum", "")]),
            cloudwatch.GraphWidget(title="Dead-letter queue depth", width=12,
                                   left=[search("AWS/SQS,QueueName", "ApproximateNumberOfMessagesVisible",
                                                "Maximum", "")]),
            cloudwatch.GraphWidget(title="Function errors", width=8,
                                   left=[search("AWS/Lambda,FunctionName", "Errors", "Sum", "")]),
            cloudwatch.GraphWidget(title="Function throttles", width=8,
                                   left=[search("AWS/Lambda,FunctionName", "Throttles", "Sum", "")]),
            cloudwatch.GraphWidget(title="Duration p99", width=8,
                                   left=[search("AWS/Lambda,FunctionName", "Duration", "p99", "")]),
            cloudwatch.GraphWidget(title="Processing lag (ms, event timestamp to handled)", width=12,
                                   left=[cloudwatch.MathExpression(
                                       expression="SEARCH('{shopstream,service} MetricName=\"ProcessingLag\"', "
                                                  "'p99', 60)", label="", period=cdk.Duration.minutes(1))]),
            cloudwatch.GraphWidget(title="Events processed / failed / poisoned", width=12,
                                   left=[cloudwatch.MathExpression(
                                       expression=f"SEARCH('{{shopstream,service}} MetricName=\"{m}\"', 'Sum', 60)",
                                       label=m, period=cdk.Duration.minutes(1))
                                       for m in ("EventsProcessed", "EventsFailed", "EventsPoisoned")]),
        )
