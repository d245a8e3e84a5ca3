"""Deploy-readiness rules: what AWS refuses at deploy time or breaks in the first hour, that neither
cfn-lint nor cdk-nag knows. Each rule reads the synthesized templates of one environment and returns
its violations as sentences (empty: the rule holds). Each cites the AWS documentation it comes from.

The rules take plain template dicts, so tests can break a deep copy and show that a rule fires.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from tests.infra.code_calls import CodeIndex, calls_of


@dataclass
class Deployment:
    """The stacks of one environment as synthesized."""

    name: str
    templates: dict[str, dict]  # stack name -> template
    regions: dict[str, str | None] = field(default_factory=dict)  # stack name -> region (None: agnostic)

    def resources(self, *types: str) -> Iterator[tuple[str, str, dict]]:
        for stack, template in self.templates.items():
            for logical_id, resource in template.get("Resources", {}).items():
                if not types or resource["Type"] in types:
                    yield stack, logical_id, resource

    @property
    def region(self) -> str | None:
        regions = {r for r in self.regions.values() if r}
        return regions.pop() if len(regions) == 1 else None

    # -- references -------------------------------------------------------------------------------
    def exports(self) -> dict[str, tuple[str, object]]:
        found = {}
        for stack, template in self.templates.items():
            for output in template.get("Outputs", {}).values():
                if "Export" in output:
                    found[_export_name(output["Export"]["Name"])] = (stack, output["Value"])
        return found

    def resolve(self, stack: str, value: object, _depth: int = 0) -> tuple[str, object]:
        """Follow an ``Fn::ImportValue`` to the producing stack's exported value."""
        if isinstance(value, dict) and "Fn::ImportValue" in value and _depth < 5:
            name = value["Fn::ImportValue"]
            exported = self.exports().get(name if isinstance(name, str) else json.dumps(name))
            if exported:
                return self.resolve(exported[0], exported[1], _depth + 1)
        return stack, value

    def target(self, stack: str, value: object) -> tuple[str, str] | None:
        """(stack, logical id) that a Ref / Fn::GetAtt (possibly imported) points at."""
        stack, value = self.resolve(stack, value)
        if isinstance(value, dict):
            if "Ref" in value and not str(value["Ref"]).startswith("AWS::"):
                return stack, value["Ref"]
            if "Fn::GetAtt" in value:
                attribute = value["Fn::GetAtt"]
                return stack, attribute[0] if isinstance(attribute, list) else attribute.split(".")[0]
        return None

    def resource(self, address: tuple[str, str] | None) -> dict | None:
        if address is None:
            return None
        return self.templates.get(address[0], {}).get("Resources", {}).get(address[1])

    def role_statements(self, stack: str, role_value: object) -> list[dict]:
        """Every statement of a role's inline and attached AWS::IAM::Policy documents."""
        address = self.target(stack, role_value)
        role = self.resource(address)
        if role is None:
            return []
        statements = [s for p in role["Properties"].get("Policies", []) for s in _as_list(
            p["PolicyDocument"]["Statement"])]
        for _, _, policy in self.resources("AWS::IAM::Policy"):
            roles = [self.target(address[0], r) for r in policy["Properties"].get("Roles", [])]
            if address in roles:
                statements += _as_list(policy["Properties"]["PolicyDocument"]["Statement"])
        return [s for s in statements if s.get("Effect", "Allow") == "Allow"]


def _export_name(name: object) -> str:
    return name if isinstance(name, str) else json.dumps(name)


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


PSEUDO_MAX = {"AWS::AccountId": "0" * 12, "AWS::Partition": "aws-cn", "AWS::URLSuffix": "amazonaws.com.cn",
              "AWS::Region": "x" * 14}


def render(value: object, pseudo: dict[str, str] | None = None) -> str:
    """A template value as text: pseudo parameters substituted, other tokens as ``{...}``."""
    pseudo = pseudo or {}
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float, bool)):
        return json.dumps(value)
    if isinstance(value, dict) and len(value) == 1:
        [(key, argument)] = value.items()
        if key == "Ref":
            return pseudo.get(argument, f"{{{argument}}}")
        if key == "Fn::Join" and isinstance(argument[1], list):
            return argument[0].join(render(part, pseudo) for part in argument[1])
        if key == "Fn::Sub":
            text = argument if isinstance(argument, str) else argument[0]
            return re.sub(r"\$\{([^}]+)\}", lambda m: pseudo.get(m.group(1), f"{{{m.group(1)}}}"), text)
        if key == "Fn::GetAtt":
            return "{" + (".".join(argument) if isinstance(argument, list) else argument) + "}"
        return "{" + key + "}"
    return "{?}"


def _references(value: object) -> set[str]:
    """Logical ids a value points at with Ref / Fn::GetAtt / ${X} in Fn::Sub (not pseudo parameters)."""
    found: set[str] = set()
    if isinstance(value, dict):
        if "Ref" in value and not str(value["Ref"]).startswith("AWS::"):
            found.add(value["Ref"])
        if "Fn::GetAtt" in value:
            attribute = value["Fn::GetAtt"]
            found.add(attribute[0] if isinstance(attribute, list) else attribute.split(".")[0])
        if "Fn::Sub" in value:
            text = value["Fn::Sub"] if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"][0]
            found |= {m.split(".")[0] for m in re.findall(r"\$\{([^}!]+)\}", text) if not m.startswith("AWS::")}
        for inner in value.values():
            found |= _references(inner)
    elif isinstance(value, list):
        for inner in value:
            found |= _references(inner)
    return found


Rule = Callable[[Deployment], list[str]]
RULES: dict[str, Rule] = {}


def rule(function: Rule) -> Rule:
    RULES[function.__name__.removeprefix("rule_")] = function
    return function


# --- where the environment deploys --------------------------------------------------------------
@rule
def rule_environment_is_pinned(deployment: Deployment) -> list[str]:
    """An environment-agnostic stack gets two placeholder AZs (Fn::GetAZs) whatever the VPC asks for,
    so a 3-AZ network synthesizes as 2: every stack names its region and every subnet a literal AZ.
    https://docs.aws.amazon.com/cdk/v2/guide/environments.html
    https://docs.aws.amazon.com/cdk/api/v2/docs/aws-cdk-lib.Stack.html#availabilityzones"""
    problems = [f"{stack}: environment-agnostic (no region)" for stack, region in deployment.regions.items()
                if not region]
    if len({r for r in deployment.regions.values() if r}) > 1:
        problems.append(f"stacks of one environment in several regions: {sorted(set(deployment.regions.values()))}")
    region = deployment.region
    for stack, logical_id, subnet in deployment.resources("AWS::EC2::Subnet"):
        zone = subnet["Properties"].get("AvailabilityZone")
        if not isinstance(zone, str) or (region and not re.fullmatch(rf"{re.escape(region)}[a-z]", zone)):
            problems.append(f"{stack}/{logical_id}: AvailabilityZone {json.dumps(zone)} is not a literal AZ of "
                            f"{region}")
    return problems


# --- Amazon MSK -------------------------------------------------------------------------------------
@rule
def rule_msk_brokers_spread_evenly_over_client_subnets(deployment: Deployment) -> list[str]:
    """"When you create a cluster, Amazon MSK distributes the broker nodes evenly across the subnets
    that you specify": the broker count must be a multiple of the client subnets, which are two or three
    (exactly two in us-west-1), in distinct Availability Zones.
    https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-properties-msk-cluster-brokernodegroupinfo.html
    https://docs.aws.amazon.com/msk/latest/developerguide/msk-create-cluster.html"""
    problems = []
    for stack, logical_id, cluster in deployment.resources("AWS::MSK::Cluster"):
        props = cluster["Properties"]
        subnets = props["BrokerNodeGroupInfo"]["ClientSubnets"]
        brokers = props["NumberOfBrokerNodes"]
        where = f"{stack}/{logical_id}"
        if not isinstance(subnets, list):
            problems.append(f"{where}: ClientSubnets is not a list the template fixes ({json.dumps(subnets)[:80]})")
            continue
        allowed = (2,) if deployment.region == "us-west-1" else (2, 3)
        if len(subnets) not in allowed:
            problems.append(f"{where}: {len(subnets)} client subnets; MSK takes {' or '.join(map(str, allowed))}")
        if brokers % len(subnets):
            problems.append(f"{where}: {brokers} brokers on {len(subnets)} client subnets; MSK needs a multiple")
        zones = []
        for subnet in subnets:
            resource = deployment.resource(deployment.target(stack, subnet))
            zones.append(json.dumps(resource["Properties"].get("AvailabilityZone")) if resource else json.dumps(subnet))
        if len(set(zones)) != len(zones):
            problems.append(f"{where}: client subnets share an Availability Zone: {zones}")
    return problems


# --- cross-stack references ----------------------------------------------------------------------------
# Types whose Ref/GetAtt changes on every update of their content: each update publishes a new
# version ("Update requires: Replacement" for every property).
# https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-lambda-layerversion.html
# https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-lambda-version.html
VOLATILE_TYPES = {"AWS::Lambda::LayerVersion", "AWS::Lambda::Version", "AWS::ApiGateway::Deployment"}
ASSET_HASH = re.compile(r"\b[0-9a-f]{64}\b")


@rule
def rule_no_import_of_a_value_that_changes_between_deploys(deployment: Deployment) -> list[str]:
    """CloudFormation refuses to update an export that another stack imports ("Export ... cannot be
    updated as it is in use by ..."): an imported value must be one that never changes on redeploy —
    not a layer/function version, not a custom resource's answer, not an asset hash.
    https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-stack-exports.html"""
    imported: dict[str, set[str]] = {}
    for stack, template in deployment.templates.items():
        for name in _imports(template):
            imported.setdefault(name, set()).add(stack)
    problems = []
    for name, (stack, value) in deployment.exports().items():
        if name not in imported:
            continue
        resources = deployment.templates[stack].get("Resources", {})
        for logical_id in _references(value):
            kind = resources.get(logical_id, {}).get("Type", "")
            if kind in VOLATILE_TYPES or kind.startswith("Custom::") or kind == "AWS::CloudFormation::CustomResource":
                problems.append(f"{stack} exports {name} ({kind} {logical_id}, changes on redeploy) and "
                                f"{sorted(imported[name])} import it")
        if ASSET_HASH.search(json.dumps(value)):
            problems.append(f"{stack} exports {name}, which contains an asset hash, to {sorted(imported[name])}")
    return problems


def _imports(value: object) -> list[str]:
    if isinstance(value, dict):
        if "Fn::ImportValue" in value:
            name = value["Fn::ImportValue"]
            return [name if isinstance(name, str) else json.dumps(name)]
        return [i for inner in value.values() for i in _imports(inner)]
    if isinstance(value, list):
        return [i for inner in value for i in _imports(inner)]
    return []


# --- network reachability -------------------------------------------------------------------------------
# Interface/gateway endpoint service of a botocore client (com.amazonaws.<region>.<service>).
# https://docs.aws.amazon.com/vpc/latest/privatelink/aws-services-privatelink-support.html
ENDPOINT_SERVICE = {"sesv2": "email", "ses": "email", "dynamodbstreams": "streams.dynamodb"}
MSK_IAM_PORT = 9098  # https://docs.aws.amazon.com/msk/latest/developerguide/port-info.html
ARN_SERVICE = {"AWS::SQS::Queue": "sqs", "AWS::SNS::Topic": "sns", "AWS::S3::Bucket": "s3"}


@dataclass
class _Network:
    endpoints: dict[str, dict]  # service suffix -> endpoint resource
    endpoint_stack: dict[str, str]
    nat: bool
    ingress: list[tuple[tuple[str, str], tuple[str, str] | None, int, int]]  # (to SG, from SG | None=CIDR, ports)


def _network(deployment: Deployment) -> _Network:
    endpoints, stacks = {}, {}
    for stack, _, endpoint in deployment.resources("AWS::EC2::VPCEndpoint"):
        name = render(endpoint["Properties"]["ServiceName"])
        suffix = re.sub(r"^com\.amazonaws\.(\{AWS::Region\}|[a-z0-9-]+)\.", "", name)
        endpoints[suffix], stacks[suffix] = endpoint, stack
    nat = any(True for _ in deployment.resources("AWS::EC2::NatGateway"))
    ingress = []
    for stack, logical_id, group in deployment.resources("AWS::EC2::SecurityGroup"):
        for rule_ in group["Properties"].get("SecurityGroupIngress", []):
            source = deployment.target(stack, rule_["SourceSecurityGroupId"]) if "SourceSecurityGroupId" in rule_ \
                else None
            ingress.append(((stack, logical_id), source, *_ports(rule_)))
    for stack, _, rule_ in deployment.resources("AWS::EC2::SecurityGroupIngress"):
        props = rule_["Properties"]
        source = deployment.target(stack, props["SourceSecurityGroupId"]) if "SourceSecurityGroupId" in props else None
        ingress.append((deployment.target(stack, props["GroupId"]), source, *_ports(props)))
    return _Network(endpoints, stacks, nat, ingress)


def _ports(rule_: dict) -> tuple[int, int]:
    if str(rule_.get("IpProtocol")) == "-1":
        return 0, 65535
    return int(rule_.get("FromPort", 0)), int(rule_.get("ToPort", 65535))


def _admits(network: _Network, targets: set, sources: set, port: int) -> bool:
    return any(to in targets and (source is None or source in sources) and low <= port <= high
               for to, source, low, high in network.ingress)


def _reach_aws(deployment: Deployment, network: _Network, service: str, sources: set, who: str) -> list[str]:
    """An AWS API called from inside the VPC: a NAT gateway, or an endpoint that admits the caller."""
    if network.nat:
        return []
    suffix = ENDPOINT_SERVICE.get(service, service)
    endpoint = network.endpoints.get(suffix)
    if endpoint is None:
        return [f"{who} calls {service} from the VPC, which has no NAT gateway and no {suffix} endpoint"]
    props = endpoint["Properties"]
    if props.get("VpcEndpointType", "Gateway") == "Interface":
        if not props.get("PrivateDnsEnabled"):
            return [f"{who}: the {suffix} endpoint has no private DNS, so the SDK's default endpoint bypasses it"]
        groups = {deployment.target(network.endpoint_stack[suffix], g) for g in props.get("SecurityGroupIds", [])}
        if not _admits(network, groups, sources, 443):
            return [f"{who}: the {suffix} endpoint's security groups do not admit it on 443"]
    return []


@rule
def rule_every_api_a_function_calls_is_reachable_from_where_it_runs(deployment: Deployment) -> list[str]:
    """What a function calls is read from its code (code_calls.py). Outside a VPC a function reaches
    public AWS endpoints but not the MSK brokers (private, port 9098); in a VPC without NAT it reaches an
    AWS API only through a VPC endpoint for that service, and the brokers only if the cluster's security
    group admits it. The MSK pollers run in the cluster's subnets with its security group: they need the
    on-failure destination's endpoint, and in on-demand mode Lambda and STS endpoints.
    https://docs.aws.amazon.com/lambda/latest/dg/configuration-vpc-internet.html
    https://docs.aws.amazon.com/lambda/latest/dg/with-msk-cluster-network.html
    https://docs.aws.amazon.com/lambda/latest/dg/kafka-on-failure.html"""
    network = _network(deployment)
    clusters = {(stack, lid): c for stack, lid, c in deployment.resources("AWS::MSK::Cluster")}
    cluster_groups = {(stack, lid): {deployment.target(stack, g) for g in
                                     c["Properties"]["BrokerNodeGroupInfo"].get("SecurityGroups", [])}
                      for (stack, lid), c in clusters.items()}
    index = CodeIndex()
    problems = []
    for stack, logical_id, function in deployment.resources("AWS::Lambda::Function"):
        props = function["Properties"]
        calls = calls_of(props.get("Handler", ""), index)
        if calls is None:
            continue  # not this repository's code (CDK's custom resource providers)
        who = f"{stack}/{logical_id} ({props['Handler']})"
        vpc = props.get("VpcConfig", {})
        in_vpc = bool(vpc.get("SubnetIds"))
        groups = {deployment.target(stack, g) for g in vpc.get("SecurityGroupIds", [])}
        if calls.kafka:
            public = any(c["Properties"]["BrokerNodeGroupInfo"].get("ConnectivityInfo", {}).get(
                "PublicAccess", {}).get("Type", "DISABLED") != "DISABLED" for c in clusters.values())
            if not in_vpc and not public:
                problems.append(f"{who} connects to the MSK brokers but does not run in the VPC")
            elif in_vpc and clusters and not any(_admits(network, g, groups, MSK_IAM_PORT)
                                                 for g in cluster_groups.values()):
                problems.append(f"{who}: no cluster security group admits it on {MSK_IAM_PORT}")
        if in_vpc:
            for service in sorted(calls.aws):
                problems += _reach_aws(deployment, network, service, groups, who)
    for stack, logical_id, mapping in deployment.resources("AWS::Lambda::EventSourceMapping"):
        props = mapping["Properties"]
        cluster = deployment.target(stack, props.get("EventSourceArn"))
        if cluster not in clusters:
            continue
        who = f"{stack}/{logical_id} (MSK pollers)"
        groups = cluster_groups[cluster]
        if not _admits(network, groups, groups, MSK_IAM_PORT):
            problems.append(f"{who}: the cluster's security group does not admit itself on {MSK_IAM_PORT}")
        needs = [] if "ProvisionedPollerConfig" in props else ["lambda", "sts"]
        destination = props.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
        if destination is not None:
            kind = (deployment.resource(deployment.target(stack, destination)) or {}).get("Type")
            needs.append(ARN_SERVICE.get(kind) or render(destination).split(":")[2])
        for service in needs:
            problems += _reach_aws(deployment, network, service, groups, who)
    return problems


# --- MSK event source mappings -----------------------------------------------------------------------
# "Configuring Lambda permissions for Amazon MSK event source mappings": IAM authentication, cluster
# access, VPC and on-failure destination permissions of the execution role.
# https://docs.aws.amazon.com/lambda/latest/dg/with-msk-permissions.html
MSK_ESM_ACTIONS = {
    "cluster": ("kafka-cluster:Connect", "kafka-cluster:DescribeClusterDynamicConfiguration",
                "kafka:GetBootstrapBrokers", ("kafka:DescribeClusterV2", "kafka:DescribeCluster")),
    "topic": ("kafka-cluster:DescribeTopic", "kafka-cluster:ReadData"),
    "group": ("kafka-cluster:DescribeGroup", "kafka-cluster:AlterGroup"),
    "any": ("ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DescribeVpcs",
            "ec2:DeleteNetworkInterface", "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups"),
}
DESTINATION_ACTIONS = {"sqs": ("sqs:SendMessage",), "sns": ("sns:Publish",), "s3": ("s3:PutObject", "s3:ListBucket")}


def _allows(deployment: Deployment, stack: str, statements: list[dict], action: str,
            covers: Callable[[str], bool]) -> bool:
    """Some statement allows ``action`` on a resource ``covers`` accepts (rendered after imports)."""
    service = action.split(":")[0]
    for statement in statements:
        actions = _as_list(statement.get("Action", []))
        if not any(a == action or a in (f"{service}:*", "*") for a in actions):
            continue
        for resource in _as_list(statement.get("Resource", [])):
            if resource == "*" or covers(render(deployment.resolve(stack, resource)[1])):
                return True
    return False


def _kafka_scoped(kind: str, name: str) -> Callable[[str], bool]:
    def covers(arn: str) -> bool:
        return f":{kind}/" in arn and (arn.endswith(f"/{name}") or arn.endswith("/*"))
    return covers


@rule
def rule_every_msk_mapping_role_has_the_documented_actions(deployment: Deployment) -> list[str]:
    """The function's execution role carries the MSK event source mapping's permissions (Lambda's list
    for IAM authentication, the cluster, the pollers' network interfaces, the on-failure destination).
    https://docs.aws.amazon.com/lambda/latest/dg/with-msk-permissions.html
    https://docs.aws.amazon.com/lambda/latest/dg/kafka-on-failure.html"""
    problems = []
    for stack, logical_id, mapping in deployment.resources("AWS::Lambda::EventSourceMapping"):
        props = mapping["Properties"]
        if "Topics" not in props:
            continue
        function = deployment.resource(deployment.target(stack, props["FunctionName"]))
        statements = deployment.role_statements(stack, function["Properties"]["Role"])
        cluster_text = render(deployment.resolve(stack, props["EventSourceArn"])[1])
        topic = props["Topics"][0]
        group = props.get("AmazonManagedKafkaEventSourceConfig", {}).get("ConsumerGroupId", "*")
        scopes = {"cluster": lambda arn, c=cluster_text: arn == c, "topic": _kafka_scoped("topic", topic),
                  "group": _kafka_scoped("group", group), "any": lambda arn: False}
        for scope, actions in MSK_ESM_ACTIONS.items():
            for action in actions:
                options = action if isinstance(action, tuple) else (action,)
                if not any(_allows(deployment, stack, statements, a, scopes[scope]) for a in options):
                    problems.append(f"{stack}/{logical_id}: the role lacks {' or '.join(options)}"
                                    f"{'' if scope == 'any' else f' on the {scope}'}")
        destination = props.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
        if destination is not None:
            problems += _destination_permissions(deployment, stack, destination, statements,
                                                 f"{stack}/{logical_id}")
    return problems


def _destination_permissions(deployment: Deployment, stack: str, destination: object, statements: list[dict],
                             who: str) -> list[str]:
    """Send to the destination, and — for an SSE-KMS queue or bucket — the key actions its producers need.
    https://docs.aws.amazon.com/lambda/latest/dg/kafka-on-failure.html (an S3 destination: PutObject and
    ListBucket; with the bucket's own KMS key, kms:GenerateDataKey)
    https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-key-management.html"""
    resource = deployment.resource(deployment.target(stack, destination)) or {}
    service = ARN_SERVICE.get(resource.get("Type", ""), "")
    text = render(deployment.resolve(stack, destination)[1])

    def on_objects(arn: str) -> bool:  # the keys Lambda writes start with aws/lambda/
        return arn in (f"{text}/*", f"{text}/aws/lambda/*")

    covers = {"s3:PutObject": on_objects}
    problems = [f"{who}: the role lacks {action} on its on-failure destination"
                for action in DESTINATION_ACTIONS.get(service, ())
                if not _allows(deployment, stack, statements, action, covers.get(action, lambda arn: arn == text))]
    props = resource.get("Properties", {})
    key, needed = None, ()
    if service == "sqs" and props.get("KmsMasterKeyId") not in (None, "alias/aws/sqs"):
        key, needed = props["KmsMasterKeyId"], ("kms:GenerateDataKey", "kms:Decrypt")
    for encryption in props.get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration", []):
        default = encryption.get("ServerSideEncryptionByDefault", {})
        if service == "s3" and default.get("SSEAlgorithm") == "aws:kms" and "KMSMasterKeyID" in default:
            key, needed = default["KMSMasterKeyID"], ("kms:GenerateDataKey",)
    if key is not None:
        key_text = render(key)
        for action in needed:
            if not _allows(deployment, stack, statements, action, lambda arn: arn == key_text):
                problems.append(f"{who}: the role lacks {action} on the destination's key")
    return problems


# --- what a dead letter points at --------------------------------------------------------------------------
@rule
def rule_every_given_up_batch_is_announced_and_outlives_its_dead_letter(deployment: Deployment) -> list[str]:
    """A mapping that gives a batch up into a bucket keeps the records there (an SQS or SNS destination would
    keep offsets only); the object is announced to a dead-letter queue (an S3 notification filtered by the
    mapping's id, so the queue says whose records they are) and expires no earlier than that queue lets its
    message go. A relay's batch is its outbox items: they too must outlive the message that names them, which
    can arrive as late as the mapping's maximum record age.
    https://docs.aws.amazon.com/lambda/latest/dg/kafka-on-failure.html
    https://docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-errors.html"""
    from shopstream.config import Settings

    announced: dict[tuple[str, str], list[tuple[str, tuple[str, str] | None]]] = {}
    for stack, _, notifications in deployment.resources("Custom::S3BucketNotifications"):
        bucket = deployment.target(stack, notifications["Properties"]["BucketName"])
        for queue in notifications["Properties"]["NotificationConfiguration"].get("QueueConfigurations", []):
            rules = queue.get("Filter", {}).get("Key", {}).get("FilterRules", [])
            prefix = next((r["Value"] for r in rules if r.get("Name", "").lower() == "prefix"), "")
            if bucket is not None:
                queue_address = deployment.target(stack, queue["QueueArn"])
                announced.setdefault(bucket, []).append((json.dumps(prefix), queue_address))
    problems = []
    for stack, logical_id, mapping in deployment.resources("AWS::Lambda::EventSourceMapping"):
        props, who = mapping["Properties"], f"{stack}/{logical_id}"
        destination = props.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
        target = deployment.target(stack, destination) if destination is not None else None
        kind = (deployment.resource(target) or {}).get("Type")
        if kind != "AWS::S3::Bucket":
            problems.append(f"{who}: gives batches up to {kind or destination}, which keeps no records")
            continue
        assert target is not None
        queues = [queue for prefix, queue in announced.get(target, []) if f'"Ref": "{logical_id}"' in prefix]
        if not queues:
            problems.append(f"{who}: nothing announces its given-up batches to a dead-letter queue")
        expiry = _expiry_days(deployment.resource(target) or {})
        for queue in queues:
            kept = int((deployment.resource(queue) or {}).get("Properties", {}).get("MessageRetentionPeriod", 345600))
            if expiry is not None and expiry * 86400 < kept:
                problems.append(f"{who}: its batches expire after {expiry} days, before the dead-letter messages "
                                f"naming them ({kept // 86400} days)")
            source = deployment.resource(deployment.target(stack, props.get("EventSourceArn"))) or {}
            if source.get("Type") == "AWS::DynamoDB::Table":  # an outbox relay: its batch is outbox items
                age = int(props.get("MaximumRecordAgeInSeconds", 86400))
                if Settings().outbox_ttl_seconds < kept + age:
                    problems.append(f"{who}: outbox items live {Settings().outbox_ttl_seconds // 3600} h, less than a "
                                    f"given-up batch's {age // 3600} h plus its message's {kept // 3600} h")
    return problems


def _expiry_days(bucket: dict) -> int | None:
    """The days after which the bucket's lifecycle expires objects under aws/lambda/ (None: never)."""
    rules = bucket.get("Properties", {}).get("LifecycleConfiguration", {}).get("Rules", [])
    days = [r["ExpirationInDays"] for r in rules
            if r.get("Status") == "Enabled" and "ExpirationInDays" in r
            and "aws/lambda/".startswith(r.get("Prefix", r.get("Filter", {}).get("Prefix", "")))]
    return min(days) if days else None


@rule
def rule_msk_triggered_functions_use_only_supported_settings(deployment: Deployment) -> list[str]:
    """Behind an MSK mapping: no X-Ray active tracing (not supported), a timeout of at most 14 minutes,
    error-handling controls only in provisioned mode and within their ranges, pollers within limits.
    https://docs.aws.amazon.com/lambda/latest/dg/services-xray.html
    https://docs.aws.amazon.com/lambda/latest/dg/with-msk.html
    https://docs.aws.amazon.com/lambda/latest/dg/kafka-retry-configurations.html
    https://docs.aws.amazon.com/lambda/latest/api/API_ProvisionedPollerConfig.html"""
    problems = []
    clusters = {(stack, lid) for stack, lid, _ in deployment.resources("AWS::MSK::Cluster")}
    for stack, logical_id, mapping in deployment.resources("AWS::Lambda::EventSourceMapping"):
        props = mapping["Properties"]
        if "Topics" not in props and deployment.target(stack, props.get("EventSourceArn")) not in clusters:
            continue
        where = f"{stack}/{logical_id}"
        function = deployment.resource(deployment.target(stack, props["FunctionName"]))["Properties"]
        if function.get("TracingConfig", {}).get("Mode") == "Active":
            problems.append(f"{where}: its function has X-Ray active tracing, which MSK mappings do not support")
        if function.get("Timeout", 3) > 14 * 60:
            problems.append(f"{where}: function timeout {function['Timeout']}s exceeds the 14 minutes "
                            "MSK mappings allow")
        controls = [k for k in ("MaximumRetryAttempts", "MaximumRecordAgeInSeconds", "BisectBatchOnFunctionError",
                                "FunctionResponseTypes") if k in props]
        pollers = props.get("ProvisionedPollerConfig")
        if controls and pollers is None:
            problems.append(f"{where}: {controls} need provisioned mode (ProvisionedPollerConfig)")
        retries = props.get("MaximumRetryAttempts", -1)
        if not (retries == -1 or 0 <= retries <= 10000):
            problems.append(f"{where}: MaximumRetryAttempts {retries} outside -1 or 0..10000")
        age = props.get("MaximumRecordAgeInSeconds", -1)
        if not (age == -1 or 60 <= age <= 604800):
            problems.append(f"{where}: MaximumRecordAgeInSeconds {age} outside -1 or 60..604800")
        if pollers is not None:
            low, high = pollers.get("MinimumPollers", 1), pollers.get("MaximumPollers", 200)
            if not (1 <= low <= 200 and 1 <= high <= 2000 and low <= high):
                problems.append(f"{where}: pollers {low}..{high} outside MinimumPollers 1-200, MaximumPollers "
                                "1-2000, minimum <= maximum")
    return problems


# --- asynchronous invocations -------------------------------------------------------------------------------
ASYNC_PRINCIPALS = {"events.amazonaws.com", "s3.amazonaws.com", "sns.amazonaws.com", "scheduler.amazonaws.com"}


@rule
def rule_every_asynchronously_invoked_function_keeps_its_failures(deployment: Deployment) -> list[str]:
    """An asynchronous invocation that fails after Lambda's retries is discarded unless the function has
    an on-failure destination (or a dead-letter queue) that its role may send to.
    https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html
    https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html"""
    invoked: set[tuple[str, str]] = set()
    for stack, _, rule_ in deployment.resources("AWS::Events::Rule"):
        for target in rule_["Properties"].get("Targets", []):
            address = deployment.target(stack, target["Arn"])
            if (deployment.resource(address) or {}).get("Type") == "AWS::Lambda::Function":
                invoked.add(address)
    for stack, _, permission in deployment.resources("AWS::Lambda::Permission"):
        if permission["Properties"].get("Principal") in ASYNC_PRINCIPALS:
            address = deployment.target(stack, permission["Properties"]["FunctionName"])
            if address:
                invoked.add(address)
    configs = {}
    for stack, _, config in deployment.resources("AWS::Lambda::EventInvokeConfig"):
        configs[deployment.target(stack, config["Properties"]["FunctionName"])] = config["Properties"]
    problems = []
    for address in sorted(invoked):
        function = deployment.resource(address)["Properties"]
        config = configs.get(address, {})
        destination = config.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination") \
            or function.get("DeadLetterConfig", {}).get("TargetArn")
        who = f"{address[0]}/{address[1]}"
        if destination is None:
            problems.append(f"{who} is invoked asynchronously and has no on-failure destination or DLQ")
            continue
        statements = deployment.role_statements(address[0], function["Role"])
        problems += _destination_permissions(deployment, address[0], destination, statements, who)
        retries = config.get("MaximumRetryAttempts", 2)
        if not 0 <= retries <= 2:
            problems.append(f"{who}: MaximumRetryAttempts {retries} outside 0..2")
    return problems


# --- names and sizes ---------------------------------------------------------------------------------------
# (type, property): maximum length.
NAME_LIMITS = {
    # https://docs.aws.amazon.com/lambda/latest/api/API_CreateFunction.html (64 without the ARN)
    ("AWS::Lambda::Function", "FunctionName"): 64,
    # https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_CreateQueue.html
    ("AWS::SQS::Queue", "QueueName"): 80,
    # https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateRole.html
    ("AWS::IAM::Role", "RoleName"): 64,
    # https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.NamingRulesDataTypes.html
    ("AWS::DynamoDB::Table", "TableName"): 255,
    # https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_CreateLogGroup.html
    ("AWS::Logs::LogGroup", "LogGroupName"): 512,
    # https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html
    ("AWS::S3::Bucket", "BucketName"): 63,
    # https://docs.aws.amazon.com/msk/1.0/apireference/clusters.html#clusters-prop-createclusterrequest-clustername
    ("AWS::MSK::Cluster", "ClusterName"): 64,
    # https://docs.aws.amazon.com/sns/latest/api/API_CreateTopic.html
    ("AWS::SNS::Topic", "TopicName"): 256,
    # https://docs.aws.amazon.com/cognito-user-identity-pools/latest/APIReference/API_CreateUserPool.html
    ("AWS::Cognito::UserPool", "UserPoolName"): 128,
    # https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutDashboard.html
    ("AWS::CloudWatch::Dashboard", "DashboardName"): 255,
    # https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html
    ("AWS::CloudWatch::Alarm", "AlarmName"): 255,
    # https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutRule.html
    ("AWS::Events::Rule", "Name"): 64,
    # https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html
    ("AWS::SSM::Parameter", "Name"): 1011,
    # https://docs.aws.amazon.com/glue/latest/webapi/API_CreateRegistry.html
    ("AWS::Glue::Registry", "Name"): 255,
    # https://docs.aws.amazon.com/apigatewayv2/latest/api-reference/apis.html (name: 1-128)
    ("AWS::ApiGatewayV2::Api", "Name"): 128,
}


@rule
def rule_names_are_within_aws_length_limits(deployment: Deployment) -> list[str]:
    """Explicit resource names, with pseudo parameters at their longest (account 12, region as deployed);
    the length limits are on each property's API page (see NAME_LIMITS)."""
    pseudo = {**PSEUDO_MAX, **({"AWS::Region": deployment.region} if deployment.region else {})}
    problems = []
    for (kind, prop), limit in NAME_LIMITS.items():
        for stack, logical_id, resource in deployment.resources(kind):
            if prop not in resource.get("Properties", {}):
                continue
            name = render(resource["Properties"][prop], pseudo)
            known = re.sub(r"\{[^}]*\}", "", name)  # other tokens count as nothing: a lower bound
            if len(known) > limit:
                problems.append(f"{stack}/{logical_id}: {prop} {name!r} has {len(known)} characters; limit {limit}")
    return problems


# https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/cloudformation-limits.html
STACK_LIMITS = {"Resources": 500, "Outputs": 200, "Parameters": 200, "Mappings": 200}
TEMPLATE_BODY_MAX = 1_000_000  # bytes, for a template uploaded to S3 (CDK uploads every template)


@rule
def rule_stacks_are_within_cloudformation_limits(deployment: Deployment) -> list[str]:
    """Resources, outputs, parameters and mappings per template, and the template body size.
    https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/cloudformation-limits.html"""
    problems = []
    for stack, template in deployment.templates.items():
        for section, limit in STACK_LIMITS.items():
            if len(template.get(section, {})) > limit:
                problems.append(f"{stack}: {len(template[section])} {section.lower()}; CloudFormation allows {limit}")
        size = len(json.dumps(template, indent=1).encode())  # as cdk writes it
        if size > TEMPLATE_BODY_MAX:
            problems.append(f"{stack}: template body {size} bytes; CloudFormation allows {TEMPLATE_BODY_MAX}")
    return problems


# --- API Gateway -------------------------------------------------------------------------------------------------
# https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-logging-variables.html
HTTP_API_VARIABLES = {
    "accountId", "apiId", "authorizer.error", "authorizer.principalId", "awsEndpointRequestId",
    "awsEndpointRequestId2", "customDomain.basePathMatched", "dataProcessed", "domainName", "domainPrefix",
    "error.message", "error.messageString", "error.responseType", "extendedRequestId", "httpMethod",
    "identity.accountId", "identity.caller", "identity.cognitoAuthenticationProvider",
    "identity.cognitoAuthenticationType", "identity.cognitoIdentityId", "identity.cognitoIdentityPoolId",
    "identity.principalOrgId", "identity.clientCert.clientCertPem", "identity.clientCert.subjectDN",
    "identity.clientCert.issuerDN", "identity.clientCert.serialNumber", "identity.clientCert.validity.notBefore",
    "identity.clientCert.validity.notAfter", "identity.sourceIp", "identity.user", "identity.userAgent",
    "identity.userArn", "integration.error", "integration.integrationStatus", "integration.latency",
    "integration.requestId", "integration.status", "integrationErrorMessage", "integrationLatency",
    "integrationStatus", "path", "protocol", "requestId", "requestTime", "requestTimeEpoch", "responseLatency",
    "responseLength", "routeKey", "stage", "status",
}
IAM_ONLY_VARIABLES = {"identity.accountId", "identity.caller", "identity.user", "identity.userArn",
                      "identity.principalOrgId"}


@rule
def rule_http_api_access_logs_use_http_api_variables(deployment: Deployment) -> list[str]:
    """HTTP API stages substitute only HTTP API context variables (REST API ones such as
    $context.resourcePath are not among them); the identity.* caller variables are set only for routes
    with IAM authorization.
    https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-logging-variables.html"""
    iam_routes = any(r["Properties"].get("AuthorizationType") == "AWS_IAM"
                     for _, _, r in deployment.resources("AWS::ApiGatewayV2::Route"))
    problems = []
    for stack, logical_id, stage in deployment.resources("AWS::ApiGatewayV2::Stage"):
        log_format = stage["Properties"].get("AccessLogSettings", {}).get("Format", "")
        for variable in re.findall(r"\$context\.([A-Za-z0-9_.]+)", render(log_format)):
            allowed = variable in HTTP_API_VARIABLES or variable.startswith(("authorizer.claims.", "authorizer."))
            if not allowed:
                problems.append(f"{stack}/{logical_id}: $context.{variable} is not an HTTP API variable")
            elif variable in IAM_ONLY_VARIABLES and not iam_routes:
                problems.append(f"{stack}/{logical_id}: $context.{variable} is empty without IAM-authorised routes")
        if "$context.requestId" not in render(log_format) and "$context.extendedRequestId" not in render(log_format):
            problems.append(f"{stack}/{logical_id}: the access log format must include $context.requestId")
    return problems


# --- tearing an environment down ------------------------------------------------------------------------------------
@rule
def rule_buckets_that_cloudformation_deletes_can_be_deleted(deployment: Deployment) -> list[str]:
    """CloudFormation deletes only empty buckets, and Object Lock keeps object versions until their
    retention ends: a bucket with DeletionPolicy Delete has no Object Lock and is emptied first.
    https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-s3-bucket.html
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-lock.html"""
    emptied = set()
    for stack, _, resource in deployment.resources():
        if resource["Type"] == "Custom::S3AutoDeleteObjects":
            emptied.add(deployment.target(stack, resource["Properties"]["BucketName"]))
    problems = []
    for stack, logical_id, bucket in deployment.resources("AWS::S3::Bucket"):
        if bucket.get("DeletionPolicy", "Delete") != "Delete":
            continue
        if bucket["Properties"].get("ObjectLockEnabled"):
            problems.append(f"{stack}/{logical_id}: Object Lock on a bucket CloudFormation must delete")
        if (stack, logical_id) not in emptied:
            problems.append(f"{stack}/{logical_id}: deleted by CloudFormation but never emptied")
    return problems


# --- keys that protect customer data ------------------------------------------------------------------------------
# The key that wraps every customer's key (docs/data-map.md) is found by its alias, the audit archive's by the bucket
# it encrypts: sealed events kept for years under Object Lock.
CUSTOMER_DATA_KEY_ALIAS = re.compile(r"^alias/.+-customer-data$")
AUDIT_ARCHIVE_BUCKET = "-audit-archive-"
BREAK_GLASS_ONLY = ("kms:DisableKey", "kms:ScheduleKeyDeletion")
# Negated ARN/string operators that exempt the principals they name from a Deny.
PRINCIPAL_EXEMPTIONS = {"ArnNotEquals", "ArnNotLike", "StringNotEquals", "StringNotLike"}
# A role of the account by name: no path, no wildcard (https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateRole.html).
_PARTITION, _ACCOUNT = r"(\{AWS::Partition\}|aws[a-z-]*)", r"(\{AWS::AccountId\}|\d{12})"
ACCOUNT_ROLE_ARN = re.compile(rf"arn:{_PARTITION}:iam::{_ACCOUNT}:role/[A-Za-z0-9+=,.@_-]{{1,64}}")
# The role CloudFormation deploys with, made by `cdk bootstrap` (cdk-<qualifier>-cfn-exec-role-<account>-<region>).
CLOUDFORMATION_EXECUTION_ROLE = re.compile(
    rf"arn:{_PARTITION}:iam::{_ACCOUNT}:role/cdk-[a-z0-9]+-cfn-exec-role-{_ACCOUNT}-(\{{AWS::Region\}}|[a-z0-9-]+)")
KEY_DELETION_WINDOW_MAX_DAYS = 30


def _customer_data_keys(deployment: Deployment) -> dict[tuple[str, str], str]:
    """(stack, logical id) of each KMS key that protects customer data -> what it protects."""
    found: dict[tuple[str, str], str] = {}
    for stack, _, alias in deployment.resources("AWS::KMS::Alias"):
        if CUSTOMER_DATA_KEY_ALIAS.match(render(alias["Properties"]["AliasName"])):
            address = deployment.target(stack, alias["Properties"]["TargetKeyId"])
            if address:
                found[address] = "wraps every customer's key"
    for stack, _, bucket in deployment.resources("AWS::S3::Bucket"):
        if AUDIT_ARCHIVE_BUCKET not in render(bucket["Properties"].get("BucketName", "")):
            continue
        for encryption in bucket["Properties"].get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration", []):
            address = deployment.target(stack, encryption["ServerSideEncryptionByDefault"].get("KMSMasterKeyID"))
            if address:
                found[address] = "encrypts the audit archive"
    return found


def _denies_everyone(statement: dict, action: str) -> bool:
    """A Deny of ``action`` on the key (a key policy's "*") to any principal, conditions aside."""
    actions = _as_list(statement.get("Action", []))
    return (statement.get("Effect") == "Deny" and statement.get("Principal") in ("*", {"AWS": "*"}, {"AWS": ["*"]})
            and statement.get("Resource") in ("*", ["*"])
            and any(re.fullmatch(re.escape(a).replace(r"\*", ".*"), action, re.IGNORECASE) for a in actions))


def _exempted(statement: dict) -> list[str] | None:
    """The principal ARNs a Deny exempts ([]: nobody), or None if another condition narrows it."""
    condition = statement.get("Condition")
    if not condition:
        return []
    if len(condition) != 1:
        return None
    [(operator, keys)] = condition.items()
    if operator not in PRINCIPAL_EXEMPTIONS or [k.lower() for k in keys] != ["aws:principalarn"]:
        return None
    return [render(arn) for arn in _as_list(next(iter(keys.values())))]


@rule
def rule_only_break_glass_may_disable_or_delete_keys_that_protect_customer_data(deployment: Deployment) -> list[str]:
    """Disabling the customer-data key stops the shop and deleting it makes every customer's data unreadable for
    good; the audit archive's key holds years of sealed events that Object Lock keeps. Each key's policy denies
    DisableKey and ScheduleKeyDeletion to every principal but one role of the account, by name (and, where
    CloudFormation deletes the key, its execution role); a deletion waits the longest window, 30 days; and the
    policy does not deny PutKeyPolicy to CloudFormation's execution role, which creates and updates it (KMS
    refuses a policy its setter could not set again: the lockout safety check).
    https://docs.aws.amazon.com/kms/latest/developerguide/deleting-keys-adding-permission.html
    https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-schedule-key-deletion-pending-window-in-days
    https://docs.aws.amazon.com/kms/latest/APIReference/API_PutKeyPolicy.html
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-principalarn
    https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-kms-key.html"""
    keys = _customer_data_keys(deployment)
    problems = [] if "wraps every customer's key" in keys.values() else [
        "no KMS key has a customer-data alias (alias/<prefix>-customer-data)"]
    for address, what in sorted(keys.items()):
        key = deployment.resource(address) or {}
        problems += _customer_data_key_problems(f"{address[0]}/{address[1]} ({what})", key)
    return problems


def _customer_data_key_problems(where: str, key: dict) -> list[str]:
    statements = _as_list(key.get("Properties", {}).get("KeyPolicy", {}).get("Statement", []))
    deleted_by_cloudformation = key.get("DeletionPolicy", "Delete") == "Delete"
    problems = []
    for action in BREAK_GLASS_ONLY:
        exemptions = [e for e in (_exempted(s) for s in statements if _denies_everyone(s, action)) if e is not None]
        if not exemptions:
            problems.append(f"{where}: its key policy does not deny {action} to every principal but the break-glass "
                            "role")
            continue
        exempted = sorted(set(exemptions[0]).intersection(*exemptions[1:]))  # exempted from every deny
        named = [arn for arn in exempted if not CLOUDFORMATION_EXECUTION_ROLE.fullmatch(arn)]
        for arn in named:
            if not ACCOUNT_ROLE_ARN.fullmatch(arn):
                problems.append(f"{where}: the deny of {action} exempts {arn!r}, not a role of the account by name")
        if len(named) < len(exempted) and not deleted_by_cloudformation:
            problems.append(f"{where}: the deny of {action} exempts CloudFormation's execution role, which never "
                            "deletes this retained key")
        if len(named) > 1:
            problems.append(f"{where}: the deny of {action} exempts {len(named)} roles; only the break-glass role "
                            "may be")
    # Absent, CloudFormation schedules the deletion with 30 days.
    window = key.get("Properties", {}).get("PendingWindowInDays", KEY_DELETION_WINDOW_MAX_DAYS)
    if window != KEY_DELETION_WINDOW_MAX_DAYS:
        problems.append(f"{where}: PendingWindowInDays {window}; a key that protects customer data waits "
                        f"{KEY_DELETION_WINDOW_MAX_DAYS} days")
    if not any(_denies_everyone(s, "kms:ScheduleKeyDeletion") and _denies_a_shorter_window(s) for s in statements):
        problems.append(f"{where}: its key policy lets ScheduleKeyDeletion wait less than "
                        f"{KEY_DELETION_WINDOW_MAX_DAYS} days")
    for statement in statements:
        exempted_from_put = _exempted(statement) if _denies_everyone(statement, "kms:PutKeyPolicy") else None
        if exempted_from_put is not None and not any(CLOUDFORMATION_EXECUTION_ROLE.fullmatch(arn)
                                                     for arn in exempted_from_put):
            problems.append(f"{where}: its key policy denies kms:PutKeyPolicy to CloudFormation's execution role; "
                            "the lockout safety check refuses such a policy")
    if not any(s.get("Effect") == "Allow" and render(_aws_principal(s)).endswith(":root")
               and {"kms:*", "kms:PutKeyPolicy"} & set(_as_list(s.get("Action", []))) for s in statements):
        problems.append(f"{where}: its key policy does not let the account manage the key (kms:* for the account)")
    return problems


def _denies_a_shorter_window(statement: dict) -> bool:
    threshold = statement.get("Condition", {}).get("NumericLessThan", {}).get(
        "kms:ScheduleKeyDeletionPendingWindowInDays")
    return threshold is not None and int(threshold) >= KEY_DELETION_WINDOW_MAX_DAYS


def _aws_principal(statement: dict) -> object:
    principal = statement.get("Principal", {})
    return principal.get("AWS", "") if isinstance(principal, dict) else principal


def check(deployment: Deployment, name: str) -> list[str]:
    return RULES[name](deployment)
