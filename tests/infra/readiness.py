"""Deploy-readiness rules: what AWS refuses at deploy time or breaks in the first hour, that neither
cfn-lint nor cdk-nag knows. Each rule reads the synthesized templates of one environment and returns
its violations as sentences (empty: the rule holds). Each cites the AWS documentation it comes from.

The rules take plain template dicts, so tests can break a deep copy and show that a rule fires.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from stacks.config import (
    EXPRESS_AVAILABILITY_ZONES,
    EXPRESS_KAFKA_VERSIONS,
    EXPRESS_REPLICATION_FACTOR,
    EXPRESS_STATIC_PROPERTIES,
    EXPRESS_UNSETTABLE_TOPIC_PROPERTIES,
    MSK_EXPRESS_BROKER_SIZES,
    MSK_STANDARD_BROKER_SIZES,
    load,
)
from tests.infra.code_calls import CodeIndex, calls_of
from tests.support import present
from tools import capacity


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
        """The environment's region: where most of its stacks are (a replication target's stacks are elsewhere)."""
        counts: dict[str, int] = {}
        for region in self.regions.values():
            if region:
                counts[region] = counts.get(region, 0) + 1
        return max(sorted(counts), key=counts.__getitem__) if counts else None

    def region_of(self, stack: str) -> str | None:
        return self.regions.get(stack) or self.region

    # -- references -------------------------------------------------------------------------------
    def exports(self) -> dict[str, tuple[str, object]]:
        found = {}
        for stack, template in self.templates.items():
            for output in template.get("Outputs", {}).values():
                if "Export" in output:
                    found[_export_name(output["Export"]["Name"])] = (stack, output["Value"])
        return found

    def resolve(self, stack: str, value: object, _depth: int = 0) -> tuple[str, object]:
        """Follow an ``Fn::ImportValue``, or a cross-region reference (CDK's export reader), to the producing stack's
        exported value."""
        if isinstance(value, dict) and "Fn::ImportValue" in value and _depth < 5:
            name = value["Fn::ImportValue"]
            exported = self.exports().get(name if isinstance(name, str) else json.dumps(name))
            if exported:
                return self.resolve(exported[0], exported[1], _depth + 1)
        if isinstance(value, dict) and "Fn::GetAtt" in value and _depth < 5:
            attribute = value["Fn::GetAtt"]
            if isinstance(attribute, list) and len(attribute) == 2:
                reader = self.templates.get(stack, {}).get("Resources", {}).get(attribute[0], {})
                written = self.cross_region_exports().get(attribute[1])
                if reader.get("Type") == CROSS_REGION_READER and written:
                    return self.resolve(written[0], written[1], _depth + 1)
        return stack, value

    def cross_region_exports(self) -> dict[str, tuple[str, object]]:
        """SSM parameter name -> (producing stack, value) of every cross-region reference CDK writes."""
        found = {}
        for stack, _, writer in self.resources(CROSS_REGION_WRITER):
            for name, value in writer["Properties"]["WriterProps"]["exports"].items():
                found[name] = (stack, value)
        return found

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
        # A policy's Roles are resolved in the policy's own stack: every service stack has a role of the same
        # logical id (a relay's, say), so read in the role's stack they would all name it.
        for policy_stack, _, policy in self.resources("AWS::IAM::Policy"):
            roles = [self.target(policy_stack, r) for r in policy["Properties"].get("Roles", [])]
            if address in roles:
                statements += _as_list(policy["Properties"]["PolicyDocument"]["Statement"])
        return [s for s in statements if s.get("Effect", "Allow") == "Allow"]


# CDK's cross-region references: the producing stack writes an SSM parameter in the consumer's region, the consumer
# reads it at deploy time (https://docs.aws.amazon.com/cdk/api/v2/docs/aws-cdk-lib.StackProps.html#crossregionreferences).
CROSS_REGION_WRITER = "Custom::CrossRegionExportWriter"
CROSS_REGION_READER = "Custom::CrossRegionExportReader"


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
    # One region, and a second one only for a replication target: the region of its MSK Replicator.
    targets = {deployment.regions.get(stack) for stack, _, _ in deployment.resources("AWS::MSK::Replicator")}
    others = {r for r in deployment.regions.values() if r} - {deployment.region} - targets
    if others:
        regions = sorted({r for r in deployment.regions.values() if r})  # an agnostic stack is a problem above
        problems.append(f"stacks of one environment in several regions: {regions}")
    for stack, logical_id, subnet in deployment.resources("AWS::EC2::Subnet"):
        zone = subnet["Properties"].get("AvailabilityZone")
        region = deployment.region_of(stack)
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
        allowed = (2,) if deployment.region_of(stack) == "us-west-1" else (2, 3)
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


# (to SG | None=not a group of these stacks, from SG | None=CIDR, ports); a source group that is not one of
# these stacks' is OUTSIDE: it admits none of ours (read as a CIDR it would admit everything)
_Ingress = tuple[tuple[str, str] | None, tuple[str, str] | None, int, int]
OUTSIDE = ("", "a security group outside these stacks")


@dataclass
class _Network:
    endpoints: dict[str, dict]  # service suffix -> endpoint resource
    endpoint_stack: dict[str, str]
    nat: bool
    ingress: list[_Ingress]


def _network(deployment: Deployment) -> _Network:
    endpoints, stacks = {}, {}
    for stack, _, endpoint in deployment.resources("AWS::EC2::VPCEndpoint"):
        name = render(endpoint["Properties"]["ServiceName"])
        suffix = re.sub(r"^com\.amazonaws\.(\{AWS::Region\}|[a-z0-9-]+)\.", "", name)
        endpoints[suffix], stacks[suffix] = endpoint, stack
    nat = any(True for _ in deployment.resources("AWS::EC2::NatGateway"))
    ingress: list[_Ingress] = []
    for stack, logical_id, group in deployment.resources("AWS::EC2::SecurityGroup"):
        for rule_ in group["Properties"].get("SecurityGroupIngress", []):
            ingress.append(((stack, logical_id), _source(deployment, stack, rule_), *_ports(rule_)))
    for stack, _, rule_ in deployment.resources("AWS::EC2::SecurityGroupIngress"):
        props = rule_["Properties"]
        ingress.append((deployment.target(stack, props["GroupId"]), _source(deployment, stack, props), *_ports(props)))
    return _Network(endpoints, stacks, nat, ingress)


def _source(deployment: Deployment, stack: str, rule_: dict) -> tuple[str, str] | None:
    """The group a rule admits (None: a CIDR; OUTSIDE: a group that is not one of these stacks')."""
    if "SourceSecurityGroupId" not in rule_:
        return None
    return deployment.target(stack, rule_["SourceSecurityGroupId"]) or OUTSIDE


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
        calls = calls.under(props.get("Environment", {}).get("Variables", {}))  # what its settings turn on
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
            kind = (deployment.resource(deployment.target(stack, destination)) or {}).get("Type", "")
            needs.append(ARN_SERVICE.get(kind) or render(destination).split(":")[2])
        for service in needs:
            problems += _reach_aws(deployment, network, service, groups, who)
    return problems


# --- producers ------------------------------------------------------------------------------------------
# "IAM access control for Amazon MSK": a producer connects (kafka-cluster:Connect on the cluster), an idempotent
# one also needs kafka-cluster:WriteDataIdempotently on the cluster (librdkafka's enable.idempotence, which
# shopstream.publisher sets), and writes a topic with kafka-cluster:WriteData and kafka-cluster:DescribeTopic on it.
# https://docs.aws.amazon.com/msk/latest/developerguide/iam-access-control.html#kafka-actions
PRODUCER_CLUSTER_ACTIONS = ("kafka-cluster:Connect", "kafka-cluster:WriteDataIdempotently")
PRODUCER_TOPIC_ACTIONS = ("kafka-cluster:DescribeTopic", "kafka-cluster:WriteData")
DIRECT_PUBLISH = "SHOPSTREAM_DIRECT_PUBLISH"  # shopstream.catalog.DIRECT_PUBLISH_ENV
RELAY_HANDLER = "shopstream.relay.relay_handler"


def _msk_cluster_texts(deployment: Deployment) -> set[str]:
    """The MSK cluster ARNs (rendered) the deployment's Kafka mappings read from: the cluster producers write to."""
    return {render(deployment.resolve(stack, m["Properties"]["EventSourceArn"])[1])
            for stack, _, m in deployment.resources("AWS::Lambda::EventSourceMapping") if "Topics" in m["Properties"]}


def _variables(function: dict) -> dict:
    return function["Properties"].get("Environment", {}).get("Variables", {})


@rule
def rule_every_function_that_produces_to_kafka_may_write_its_topics(deployment: Deployment) -> list[str]:
    """A function that opens its own producer (what its code reaches with its settings: the outbox relays, and where
    direct publish is on the critical path's committers) may connect to the cluster, write idempotently, and write
    every topic its service publishes to; MSK refuses the connection or the record otherwise, and the producer only
    says so when it gives up (the events then wait in the outbox).
    https://docs.aws.amazon.com/msk/latest/developerguide/iam-access-control.html#kafka-actions"""
    from shopstream import catalog

    clusters = _msk_cluster_texts(deployment)
    if not clusters:
        return []
    index = CodeIndex()
    problems = []
    for stack, logical_id, function in deployment.resources("AWS::Lambda::Function"):
        props = function["Properties"]
        calls = calls_of(props.get("Handler", ""), index)
        if calls is None or not calls.under(_variables(function)).kafka:
            continue
        statements = deployment.role_statements(stack, props["Role"])
        who = f"{stack}/{logical_id} ({props['Handler']})"
        for action in PRODUCER_CLUSTER_ACTIONS:
            if not _allows(deployment, stack, statements, action, lambda arn: arn in clusters):
                problems.append(f"{who} produces to MSK but its role lacks {action} on the cluster")
        service = _variables(function).get("SHOPSTREAM_SERVICE", "")
        topics = catalog.service(service).produces_topics if service in {s.name for s in catalog.SERVICES} else ()
        for topic in topics:
            for action in PRODUCER_TOPIC_ACTIONS:
                if not _allows(deployment, stack, statements, action, _kafka_scoped("topic", topic)):
                    problems.append(f"{who} publishes {service}'s events but its role lacks {action} on {topic}")
    return problems


@rule
def rule_a_relay_behind_functions_that_publish_directly_holds_their_events_back(deployment: Deployment) -> list[str]:
    """Where a service's functions publish their events right after the commit (shopstream.direct), its outbox relay
    is their fallback: told so (or it publishes every such event a second time, and consumers take each twice),
    allowed to read their items back (dynamodb:BatchGetItem on the table, or it relays them all), and its stream
    mapping lets through the deletes that show an event was published (or it reads every one back), but not TTL's
    deletes (each would invoke it: one per outbox item, after 15 days).
    https://docs.aws.amazon.com/lambda/latest/dg/with-ddb-filtering.html
    https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/time-to-live-ttl-streams.html"""
    problems = []
    for stack, template in deployment.templates.items():
        functions = {lid: r for lid, r in template.get("Resources", {}).items() if r["Type"] == "AWS::Lambda::Function"}
        direct = [lid for lid, f in functions.items() if f["Properties"].get("Handler") != RELAY_HANDLER
                  and str(_variables(f).get(DIRECT_PUBLISH, "")).lower() == "true"]
        relays = [lid for lid, f in functions.items() if f["Properties"].get("Handler") == RELAY_HANDLER]
        if not direct:
            continue
        if not relays:
            problems.append(f"{stack}: {', '.join(direct)} publish directly but the service has no outbox relay")
            continue
        relay_id = relays[0]
        relay = functions[relay_id]
        who = f"{stack}/{relay_id}"
        if str(_variables(relay).get(DIRECT_PUBLISH, "")).lower() != "true":
            problems.append(f"{who}: {', '.join(direct)} publish directly, but the relay is not told "
                            f"({DIRECT_PUBLISH}): it publishes each of their events a second time")
            continue
        statements = deployment.role_statements(stack, relay["Properties"]["Role"])
        tables = {render({"Fn::GetAtt": [lid, "Arn"]}) for lid, r in template["Resources"].items()
                  if r["Type"] == "AWS::DynamoDB::Table"}
        if not _allows(deployment, stack, statements, "dynamodb:BatchGetItem", tables.__contains__):
            problems.append(f"{who} cannot read the direct publishers' items back (dynamodb:BatchGetItem on the table)")
        patterns = [json.loads(f["Pattern"]) for m in template["Resources"].values()
                    if m["Type"] == "AWS::Lambda::EventSourceMapping"
                    and deployment.target(stack, m["Properties"].get("FunctionName")) == (stack, relay_id)
                    for f in m["Properties"].get("FilterCriteria", {}).get("Filters", [])]
        deletes = [p for p in patterns if p.get("eventName") == ["REMOVE"]]
        if not deletes:
            problems.append(f"{who}: its mapping lets no outbox delete through, so it reads back every direct item")
        elif any(p.get("userIdentity", {}).get("type") != [{"exists": False}] for p in deletes):
            problems.append(f"{who}: its mapping lets TTL's deletes through too (one invocation per expired item)")
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


def _exactly(text: str) -> Callable[[str], bool]:
    def covers(arn: str) -> bool:
        return arn == text
    return covers


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
        function = present(deployment.resource(deployment.target(stack, props["FunctionName"])))
        statements = deployment.role_statements(stack, function["Properties"]["Role"])
        cluster_text = render(deployment.resolve(stack, props["EventSourceArn"])[1])
        topic = props["Topics"][0]
        group = props.get("AmazonManagedKafkaEventSourceConfig", {}).get("ConsumerGroupId", "*")
        scopes: dict[str, Callable[[str], bool]] = {
            "cluster": _exactly(cluster_text), "topic": _kafka_scoped("topic", topic),
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
    key: object = None
    needed: tuple[str, ...] = ()
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


STREAM_RETENTION_SECONDS = 24 * 3600  # "DynamoDB Streams ... stores this information in a log for up to 24 hours"

# --- what a dead letter points at --------------------------------------------------------------------------
@rule
def rule_every_given_up_batch_is_announced_and_outlives_its_dead_letter(deployment: Deployment) -> list[str]:
    """A mapping that gives a batch up into a bucket keeps the records there (an SQS or SNS destination would
    keep offsets only); the object is announced to a dead-letter queue (an S3 notification filtered by the
    mapping's id, so the queue says whose records they are) and expires no earlier than that queue lets its
    message go. A relay's batch is its outbox items, kept whole in the object ("For Amazon S3 destinations, Lambda
    also sends the entire invocation record along with the metadata"); the items themselves must outlive their
    stream records (24 hours), which the relay retries up to its maximum record age, and direct publish's
    read-back looks them up while it does.
    https://docs.aws.amazon.com/lambda/latest/dg/kafka-on-failure.html
    https://docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-errors.html
    https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Streams.html"""
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
            age = int(props.get("MaximumRecordAgeInSeconds", -1))
            if not 0 <= age < STREAM_RETENTION_SECONDS:  # -1: until the stream drops them, with no record kept
                gives_up = "never gives a batch up" if age < 0 else f"gives a batch up only after {age // 3600} h"
                problems.append(f"{who}: {gives_up}, but its records leave the stream after "
                                f"{STREAM_RETENTION_SECONDS // 3600} h, unkept (MaximumRecordAgeInSeconds)")
            reached = STREAM_RETENTION_SECONDS if age < 0 else min(age, STREAM_RETENTION_SECONDS)
            if Settings().outbox_ttl_seconds < STREAM_RETENTION_SECONDS:
                problems.append(f"{who}: outbox items live {Settings().outbox_ttl_seconds // 3600} h, less than "
                                f"their stream records' {STREAM_RETENTION_SECONDS // 3600} h (the relay retries "
                                f"for {reached // 3600} h)")
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
        function = present(deployment.resource(deployment.target(stack, props["FunctionName"])))["Properties"]
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
            if address is not None and (deployment.resource(address) or {}).get("Type") == "AWS::Lambda::Function":
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
        function = present(deployment.resource(address))["Properties"]
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
    problems = []
    for (kind, prop), limit in NAME_LIMITS.items():
        for stack, logical_id, resource in deployment.resources(kind):
            if prop not in resource.get("Properties", {}):
                continue
            region = deployment.region_of(stack)
            pseudo = {**PSEUDO_MAX, **({"AWS::Region": region} if region else {})}
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


HTTP_API_INTEGRATION_TIMEOUT_MILLIS = 30_000  # the most, and what an integration without TimeoutInMillis gets


@rule
def rule_http_api_functions_answer_before_their_integration_gives_up(deployment: Deployment) -> list[str]:
    """An HTTP API integration waits at most its TimeoutInMillis (50 ms to 30 s, not raisable) and then answers
    503 while the function runs on, billed: a Lambda proxy integration's function, through its alias, must time
    out first (a long-poll waits up to 25 s, shopstream.long_poll).
    https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-quotas.html
    https://docs.aws.amazon.com/apigatewayv2/latest/api-reference/apis-apiid-integrations.html"""
    problems = []
    for stack, logical_id, integration in deployment.resources("AWS::ApiGatewayV2::Integration"):
        props = integration["Properties"]
        if props.get("IntegrationType") != "AWS_PROXY":
            continue
        where, limit = f"{stack}/{logical_id}", props.get("TimeoutInMillis", HTTP_API_INTEGRATION_TIMEOUT_MILLIS)
        if not 50 <= limit <= HTTP_API_INTEGRATION_TIMEOUT_MILLIS:
            problems.append(f"{where}: TimeoutInMillis {limit} outside 50..30000")
        address = deployment.target(stack, props.get("IntegrationUri"))
        target = deployment.resource(address)
        if target is not None and target["Type"] == "AWS::Lambda::Alias" and address is not None:
            address = deployment.target(address[0], target["Properties"]["FunctionName"])
            target = deployment.resource(address)
        if target is None or target["Type"] != "AWS::Lambda::Function":
            problems.append(f"{where}: its function is not in the templates")
            continue
        timeout = target["Properties"].get("Timeout", 3)
        if timeout * 1000 >= limit:
            problems.append(f"{where}: its function's timeout {timeout}s is not under the integration's "
                            f"{limit / 1000:g}s")
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


# --- issue 22: e-mail, MSK configuration and brokers, IAM, the deploy guide and cost, mapping metrics ----------
REPOSITORY = Path(__file__).resolve().parents[2]


SES_IDENTITY_ARN = re.compile(r"arn:(?:\{AWS::Partition\}|aws[a-z-]*):ses:([^:]+):(?:\{AWS::AccountId\}|\d{12}):"
                              r"identity/(.+)")


def _email_address(sender: str) -> str:
    """The address of a From value: ``Name <address>`` or the address alone."""
    match = re.fullmatch(r"\s*(?:[^<>]*<([^<>]+)>|([^<>\s]+))\s*", sender)
    return (match.group(1) or match.group(2)) if match else ""


@rule
def rule_user_pools_that_let_users_sign_up_send_their_email_through_ses(deployment: Deployment) -> list[str]:
    """A user pool that lets users sign up and verifies their e-mail address sends a message per sign-up. Cognito's
    own sending (COGNITO_DEFAULT) "allows only a limited number of emails each day", "below the required delivery
    volume" of a production pool: a pool CloudFormation keeps (a retained environment) sends through SES
    (EmailSendingAccount DEVELOPER). With DEVELOPER, SourceArn is "the ARN of a verified email address or an address
    from a verified domain in Amazon SES", in the pool's Region (other Regions only "in some cases"), and From is
    that address or an address of that domain.
    https://docs.aws.amazon.com/cognito-user-identity-pools/latest/APIReference/API_EmailConfigurationType.html
    https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-properties-cognito-userpool-emailconfiguration.html"""
    problems = []
    for stack, logical_id, pool in deployment.resources("AWS::Cognito::UserPool"):
        props, where = pool["Properties"], f"{stack}/{logical_id}"
        email = props.get("EmailConfiguration") or {}
        account = email.get("EmailSendingAccount", "COGNITO_DEFAULT")
        signs_up = not props.get("AdminCreateUserConfig", {}).get("AllowAdminCreateUserOnly", False)
        verifies = "email" in props.get("AutoVerifiedAttributes", [])
        if signs_up and verifies and pool.get("DeletionPolicy", "Delete") == "Retain" and account != "DEVELOPER":
            problems.append(f"{where}: lets users sign up and verifies their e-mail with Cognito's default sending "
                            f"({account}), limited below a production pool's volume; send through SES "
                            "(EmailSendingAccount DEVELOPER)")
        if account != "DEVELOPER":
            continue
        region = deployment.regions.get(stack)
        source = render(email.get("SourceArn", ""), {"AWS::Region": region} if region else None)
        match = SES_IDENTITY_ARN.fullmatch(source)
        if not match:
            problems.append(f"{where}: EmailSendingAccount DEVELOPER with SourceArn {source!r}, not the ARN of an SES "
                            "identity")
            continue
        ses_region, identity = match.groups()
        if ses_region not in {region, "{AWS::Region}"}:
            problems.append(f"{where}: its SES identity is in {ses_region}, not the pool's region ({region})")
        sender = _email_address(render(email.get("From", ""))) or (identity if "@" in identity else "")
        if not sender:
            problems.append(f"{where}: no From address for the domain identity {identity!r}")
        elif identity.lower() not in (sender.lower(), sender.rsplit("@", 1)[-1].lower()):
            problems.append(f"{where}: From {sender!r} is not the SES identity {identity!r} nor an address of it")
    return problems


@rule
def rule_msk_clusters_follow_their_configurations_latest_revision(deployment: Deployment) -> list[str]:
    """Changing an AWS::MSK::Configuration's ServerProperties makes a new revision of it (LatestRevision.Revision);
    a cluster uses the revision its ConfigurationInfo names (Arn and Revision, both required). A literal revision
    keeps the cluster on the first one: the next change of the server properties never reaches the brokers.
    https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-msk-configuration.html
    https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-properties-msk-cluster-configurationinfo.html"""
    problems = []
    for stack, logical_id, cluster in deployment.resources("AWS::MSK::Cluster"):
        info = cluster["Properties"].get("ConfigurationInfo")
        if not info:
            continue
        configuration = deployment.target(stack, info.get("Arn"))
        if configuration is None or (deployment.resource(configuration) or {}).get("Type") != "AWS::MSK::Configuration":
            continue  # a configuration made elsewhere: its revision is chosen there
        revision = info.get("Revision")
        follows = (isinstance(revision, dict) and deployment.target(stack, revision) == configuration
                   and "LatestRevision.Revision" in json.dumps(revision))
        if not follows:
            problems.append(f"{stack}/{logical_id}: ConfigurationInfo.Revision is {json.dumps(revision)}, not "
                            f"{configuration[1]}'s LatestRevision.Revision: a change of its server properties makes "
                            "a revision the cluster never takes")
    return problems


def _server_properties(text: object) -> dict[str, str]:
    lines = [line.strip() for line in str(text).splitlines()]
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#") and "=" in line)


@rule
def rule_msk_brokers_are_a_size_msk_offers_and_the_cluster_suits_them(deployment: Deployment) -> list[str]:
    """The broker size is one MSK offers (Standard: kafka.t3/m5/m7g; Express: express.m7g). Express brokers have
    storage "Fully MSK managed" (no EBS volume, no tiered storage), run "only ... in a 3AZs configuration", on
    Apache Kafka 3.6, 3.8 or 3.9, with replication 3 and min.insync.replicas 2 that MSK fixes: a configuration sets
    only the static properties Express lets it, a topic asks for replication 3 and sets none of the protected
    properties. Tiered storage needs m5/m7g Standard brokers.
    https://docs.aws.amazon.com/msk/latest/developerguide/broker-instance-sizes.html
    https://docs.aws.amazon.com/msk/latest/developerguide/broker-instance-types.html
    https://docs.aws.amazon.com/msk/latest/developerguide/msk-broker-types-express.html
    https://docs.aws.amazon.com/msk/latest/developerguide/bestpractices-express.html
    https://docs.aws.amazon.com/msk/latest/developerguide/msk-configuration-express-read-write.html
    https://docs.aws.amazon.com/msk/latest/developerguide/msk-tiered-storage.html"""
    problems = []
    for stack, logical_id, cluster in deployment.resources("AWS::MSK::Cluster"):
        props, where = cluster["Properties"], f"{stack}/{logical_id}"
        nodes = props["BrokerNodeGroupInfo"]
        size = nodes.get("InstanceType")
        if size not in MSK_STANDARD_BROKER_SIZES | MSK_EXPRESS_BROKER_SIZES:
            problems.append(f"{where}: {size} is not a broker size MSK offers")
            continue
        if size not in MSK_EXPRESS_BROKER_SIZES:
            if props.get("StorageMode") == "TIERED" and size.startswith("kafka.t3"):
                problems.append(f"{where}: tiered storage on {size}; it needs m5 or m7g brokers")
            continue
        if "StorageInfo" in nodes:
            problems.append(f"{where}: StorageInfo on {size}: Express brokers have no storage to configure "
                            "(MSK manages it)")
        if props.get("StorageMode") == "TIERED":
            problems.append(f"{where}: StorageMode TIERED on {size}: Express brokers have no tiered storage")
        subnets = nodes.get("ClientSubnets")
        if isinstance(subnets, list) and len(subnets) != EXPRESS_AVAILABILITY_ZONES:
            problems.append(f"{where}: {len(subnets)} client subnets; Express brokers run in exactly "
                            f"{EXPRESS_AVAILABILITY_ZONES} Availability Zones")
        version = str(props.get("KafkaVersion", ""))
        if not any(version == v or version.startswith(f"{v}.") for v in EXPRESS_KAFKA_VERSIONS):
            problems.append(f"{where}: Kafka {version} on {size}; Express brokers run "
                            f"{', '.join(EXPRESS_KAFKA_VERSIONS)}")
        configuration = deployment.resource(deployment.target(stack, props.get("ConfigurationInfo", {}).get("Arn")))
        if configuration and configuration.get("Type") == "AWS::MSK::Configuration":
            refused = sorted(set(_server_properties(configuration["Properties"].get("ServerProperties", "")))
                             - EXPRESS_STATIC_PROPERTIES)
            if refused:
                problems.append(f"{where}: its configuration sets {', '.join(refused)}, which Express brokers do not "
                                "let a configuration set (MSK sets them)")
        problems += _express_topic_problems(deployment, (stack, logical_id))
    return problems


def _express_topic_problems(deployment: Deployment, cluster: tuple[str, str]) -> list[str]:
    """The topics of an Express cluster replicate 3 times and set none of the properties MSK protects."""
    problems = []
    for topic_stack, topic_id, topic in deployment.resources("AWS::MSK::Topic"):
        if deployment.target(topic_stack, topic["Properties"].get("ClusterArn")) != cluster:
            continue
        topic_props = topic["Properties"]
        if topic_props.get("ReplicationFactor") != EXPRESS_REPLICATION_FACTOR:
            problems.append(f"{topic_stack}/{topic_id}: ReplicationFactor {topic_props.get('ReplicationFactor')} "
                            f"on Express brokers, which replicate {EXPRESS_REPLICATION_FACTOR} times")
        configs = topic_props.get("Configs")
        if isinstance(configs, str):
            protected = sorted(set(json.loads(base64.b64decode(configs))) & EXPRESS_UNSETTABLE_TOPIC_PROPERTIES)
            if protected:
                problems.append(f"{topic_stack}/{topic_id}: sets {', '.join(protected)}, which a topic on "
                                "Express brokers does not set")
    return problems


# Actions that take no resource: the Service Authorization Reference lists no resource type for them, and "If the
# column is empty, the action does not support resource-level permissions and you must specify all resources ("*")".
# https://docs.aws.amazon.com/service-authorization/latest/reference/reference_policies_actions-resources-contextkeys.html
ACTIONS_WITHOUT_RESOURCES = {
    # https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazondynamodb.html
    "dynamodb:ListStreams", "dynamodb:ListTables",
    # "This action only works if it's allowed on all resources": https://docs.aws.amazon.com/lambda/latest/dg/configuration-vpc.html
    "ec2:DescribeNetworkInterfaces",
}


def _policy_documents(deployment: Deployment) -> Iterator[tuple[str, dict]]:
    for stack, logical_id, policy in deployment.resources("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        yield f"{stack}/{logical_id}", policy["Properties"].get("PolicyDocument", {})
    for stack, logical_id, role in deployment.resources("AWS::IAM::Role"):
        for inline in role["Properties"].get("Policies", []):
            yield f"{stack}/{logical_id} ({inline.get('PolicyName', '?')})", inline.get("PolicyDocument", {})


@rule
def rule_no_iam_statement_scopes_an_action_that_takes_no_resource(deployment: Deployment) -> list[str]:
    """A statement that names resources for an action that takes none matches no request of that action: the
    permission is not granted (and a Deny does not deny). Such an action is granted on "*" only.
    https://docs.aws.amazon.com/service-authorization/latest/reference/reference_policies_actions-resources-contextkeys.html"""
    problems = []
    for where, document in _policy_documents(deployment):
        for statement in _as_list(document.get("Statement", [])):
            if "Resource" not in statement:
                continue
            actions = {a for a in _as_list(statement.get("Action", [])) if a in ACTIONS_WITHOUT_RESOURCES}
            resources = _as_list(statement["Resource"])
            if actions and "*" not in resources:
                scoped = ", ".join(render(r) for r in resources)[:160]
                problems.append(f"{where}: {', '.join(sorted(actions))} scoped to {scoped}; the action takes no "
                                "resource, so only \"*\" grants it")
    return problems


@rule
def rule_the_deploy_guide_names_the_broker_size_each_environment_runs(deployment: Deployment) -> list[str]:
    """docs/deploy.md tells the account owner which MSK brokers to raise the quota for before the first deploy
    ("`<env>` N × <size>"): the size it names for this environment is the size the templates deploy.
    https://docs.aws.amazon.com/msk/latest/developerguide/limits.html"""
    guide = (REPOSITORY / "docs" / "deploy.md").read_text()
    named = {size for _, size in re.findall(rf"`{re.escape(deployment.name)}` (\d+) × ([a-z0-9.]+)", guide)}
    problems = []
    for stack, logical_id, cluster in deployment.resources("AWS::MSK::Cluster"):
        size = cluster["Properties"]["BrokerNodeGroupInfo"].get("InstanceType")
        if size not in named:
            problems.append(f"{stack}/{logical_id}: the cluster runs {size} brokers; docs/deploy.md names "
                            f"{', '.join(sorted(named)) or 'none'} for {deployment.name}")
    return problems


@rule
def rule_the_cost_model_prices_the_monitoring_the_cluster_is_billed_for(deployment: Deployment) -> list[str]:
    """Every MSK monitoring level above DEFAULT is billed per CloudWatch metric; PER_TOPIC_PER_PARTITION adds the
    consumer lag of every partition of every consumer group (several thousand metrics in prod). The cost model
    (tools/capacity.py, docs/capacity.md) prices the level the template sets, and the cost table has the line.
    https://docs.aws.amazon.com/msk/latest/developerguide/metrics-details.html"""
    environments = json.loads((REPOSITORY / "cdk.json").read_text())["context"]["environments"]
    problems = []
    if capacity.CLOUDWATCH_METRICS_ITEM not in (REPOSITORY / "docs" / "capacity.md").read_text():
        problems.append(f"docs/capacity.md's cost table has no line {capacity.CLOUDWATCH_METRICS_ITEM!r}")
    if deployment.name not in environments:
        return problems + [f"cdk.json has no environment {deployment.name!r} for the cost model to price"]
    priced = load(environments, deployment.name).msk_monitoring_level
    for stack, logical_id, cluster in deployment.resources("AWS::MSK::Cluster"):
        level = cluster["Properties"].get("EnhancedMonitoring", "DEFAULT")
        if level != priced:
            problems.append(f"{stack}/{logical_id}: EnhancedMonitoring {level}; the cost model prices {priced} for "
                            f"{deployment.name} (EnvironmentConfig.msk_monitoring_level)")
    return problems


KAFKA_MAPPING_METRICS = {"EventCount", "ErrorCount", "KafkaMetrics"}
KAFKA_ONLY_METRICS = {"ErrorCount", "KafkaMetrics"}
MAPPING_LAG_METRICS = {"MaxOffsetLag", "SumOffsetLag"}


def _alarm_metrics(alarm: dict) -> list[tuple[str, list[dict]]]:
    """(metric name, dimensions) of every metric an alarm reads, alone or in an expression."""
    props = alarm["Properties"]
    found = [(props["MetricName"], props.get("Dimensions", []))] if "MetricName" in props else []
    for query in props.get("Metrics", []):
        metric = query.get("MetricStat", {}).get("Metric")
        if metric:
            found.append((metric.get("MetricName", ""), metric.get("Dimensions", [])))
    return found


@rule
def rule_kafka_mappings_emit_their_metrics_and_logs_and_are_watched(deployment: Deployment) -> list[str]:
    """A Kafka mapping emits metrics only for the groups its MetricsConfig asks for: EventCount (polled, invoked,
    committed, dropped...), ErrorCount and KafkaMetrics (MaxOffsetLag, SumOffsetLag), the last two for Kafka only; its
    pollers' system logs need a LoggingConfig, "only available for Kafka event source mappings, and with Provisioned
    mode". An alarm watches each Kafka mapping's offset lag and its DroppedEventCount (records given up that did not
    reach the on-failure destination), by the mapping's UUID. A mapping in on-demand mode (no ProvisionedPollerConfig;
    dev's, docs/decisions.md 2026-12-05) is set up without metrics of its own: an alarm watches its function's
    OffsetLag, which Lambda reports for Kafka mappings in either mode.
    https://docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics-types.html#event-source-mapping-metrics
    https://docs.aws.amazon.com/lambda/latest/api/API_EventSourceMappingMetricsConfig.html
    https://docs.aws.amazon.com/lambda/latest/dg/esm-logging.html"""
    watched = _alarmed_mappings_and_functions(deployment)
    problems = []
    for stack, logical_id, mapping in deployment.resources("AWS::Lambda::EventSourceMapping"):
        problems += _mapping_observability_problems(deployment, watched, stack, logical_id, mapping["Properties"])
    return problems


def _alarmed_mappings_and_functions(deployment: Deployment) -> dict[tuple[str, str], set[str]]:
    """A mapping's (by its UUID) or a function's metrics that some alarm watches."""
    watched: dict[tuple[str, str], set[str]] = {}
    for stack, _, alarm in deployment.resources("AWS::CloudWatch::Alarm"):
        for name, dimensions in _alarm_metrics(alarm):
            for dimension in dimensions:
                target = deployment.target(stack, dimension.get("Value"))
                if dimension.get("Name") in ("EventSourceMappingUUID", "FunctionName") and target:
                    watched.setdefault(target, set()).add(name)
    return watched


def _mapping_observability_problems(deployment: Deployment, watched: dict[tuple[str, str], set[str]], stack: str,
                                    logical_id: str, props: dict) -> list[str]:
    where = f"{stack}/{logical_id}"
    metrics = set(props.get("MetricsConfig", {}).get("Metrics", []))
    kafka = any(k in props for k in ("Topics", "AmazonManagedKafkaEventSourceConfig", "SelfManagedEventSource"))
    problems = []
    if not kafka:
        if metrics & KAFKA_ONLY_METRICS:
            problems.append(f"{where}: {', '.join(sorted(metrics & KAFKA_ONLY_METRICS))} on a mapping that does "
                            "not read Kafka (Kafka mappings only)")
        if "LoggingConfig" in props:
            problems.append(f"{where}: LoggingConfig on a mapping that does not read Kafka (Kafka mappings only)")
        return problems
    if "ProvisionedPollerConfig" not in props:
        if "LoggingConfig" in props:
            problems.append(f"{where}: LoggingConfig needs provisioned mode (ProvisionedPollerConfig)")
        function = deployment.target(stack, props["FunctionName"])
        if function is None or "OffsetLag" not in watched.get(function, set()):
            problems.append(f"{where}: on demand, no alarm watches its function's OffsetLag (the mapping has no "
                            "metrics of its own)")
        return problems
    if KAFKA_MAPPING_METRICS - metrics:
        missing = ", ".join(sorted(KAFKA_MAPPING_METRICS - metrics))
        problems.append(f"{where}: does not emit {missing} (MetricsConfig)")
    level = props.get("LoggingConfig", {}).get("SystemLogLevel")
    if level not in ("DEBUG", "INFO", "WARN"):
        problems.append(f"{where}: its pollers send no system logs (LoggingConfig.SystemLogLevel)")
    alarmed = watched.get((stack, logical_id), set())
    if not alarmed & MAPPING_LAG_METRICS:
        problems.append(f"{where}: no alarm watches its offset lag (MaxOffsetLag/SumOffsetLag by its UUID)")
    if "DroppedEventCount" not in alarmed:
        problems.append(f"{where}: no alarm watches its DroppedEventCount (records given up and not kept)")
    return problems


def _dynamodb_scaling(deployment: Deployment) -> dict[tuple[str, str, str | None, str], tuple[str, dict]]:
    """(stack, table logical id, index name or None, Read|Write) -> (scalable target logical id, its properties)."""
    found = {}
    for stack, logical_id, target in deployment.resources("AWS::ApplicationAutoScaling::ScalableTarget"):
        props = target["Properties"]
        dimension = re.fullmatch(r"dynamodb:(table|index):(Read|Write)CapacityUnits",
                                 str(props.get("ScalableDimension")))
        if props.get("ServiceNamespace") != "dynamodb" or not dimension:
            continue
        index = re.search(r"/index/([^/{}]+)$", render(props.get("ResourceId")))
        for table in _references(props.get("ResourceId")):
            found[(stack, table, index.group(1) if index else None, dimension.group(2))] = (logical_id, props)
    return found


@rule
def rule_provisioned_tables_scale_and_alarm_on_throttling(deployment: Deployment) -> list[str]:
    """A provisioned table (BillingMode PROVISIONED, CloudFormation's default) serves what its capacity allows and
    throttles the rest, and so does each of its global secondary indexes, whose writes throttle the table's. Each of
    them has its read and its write capacity under auto scaling: a scalable target (namespace dynamodb, dimension
    dynamodb:table|index:Read|WriteCapacityUnits, ResourceId table/<name>[/index/<index>]) tracked by a policy on its
    DynamoDB<Read|Write>CapacityUtilization, created within the target's bounds; and an alarm on its read and write
    throttle events (ReadThrottleEvents, WriteThrottleEvents by TableName, and GlobalSecondaryIndexName for an index).
    https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/AutoScaling.html
    https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-applicationautoscaling-scalabletarget.html
    https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/metrics-dimensions.html"""
    scaling = _dynamodb_scaling(deployment)
    tracking = _target_tracking(deployment)
    watched = _throttle_alarms(deployment)
    problems = []
    for stack, logical_id, table in deployment.resources("AWS::DynamoDB::Table"):
        props = table["Properties"]
        if props.get("BillingMode", "PROVISIONED") != "PROVISIONED":
            continue
        parts = [(None, props.get("ProvisionedThroughput", {}))] + [
            (index["IndexName"], index.get("ProvisionedThroughput", {}))
            for index in props.get("GlobalSecondaryIndexes", [])]
        for index, created in parts:
            for kind in ("Read", "Write"):
                problems += _capacity_problems(stack, logical_id, index, kind, created, scaling, tracking, watched)
    # A global table (AWS::DynamoDB::GlobalTable) scales inline: WriteProvisionedThroughputSettings "must be specified
    # if BillingMode is set to PROVISIONED" (one write auto scaling for all replicas), and each replica reads at its
    # own ReadProvisionedThroughputSettings.
    # https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-properties-dynamodb-globaltable-writeprovisionedthroughputsettings.html
    for stack, logical_id, table in deployment.resources("AWS::DynamoDB::GlobalTable"):
        props = table["Properties"]
        if props.get("BillingMode", "PROVISIONED") == "PROVISIONED":
            problems += _global_table_capacity_problems(f"{stack}/{logical_id}", props,
                                                        watched.get((stack, logical_id), set()))
    return problems


def _target_tracking(deployment: Deployment) -> dict[tuple[str, str], str]:
    """(stack, scalable target) -> the metric its target tracking policy follows."""
    tracking: dict[tuple[str, str], str] = {}
    for stack, _, policy in deployment.resources("AWS::ApplicationAutoScaling::ScalingPolicy"):
        props = policy["Properties"]
        metric = props.get("TargetTrackingScalingPolicyConfiguration", {}).get(
            "PredefinedMetricSpecification", {}).get("PredefinedMetricType")
        if props.get("PolicyType") == "TargetTrackingScaling" and metric:
            for target in _references(props.get("ScalingTargetId")):
                tracking[(stack, target)] = metric
    return tracking


def _throttle_alarms(deployment: Deployment) -> dict[tuple[str, str], set[tuple[str | None, str]]]:
    """(stack, table) -> the (index or None, metric) pairs some alarm watches."""
    watched: dict[tuple[str, str], set[tuple[str | None, str]]] = {}
    for stack, _, alarm in deployment.resources("AWS::CloudWatch::Alarm"):
        for name, dimensions in _alarm_metrics(alarm):
            values = {d.get("Name"): d.get("Value") for d in dimensions}
            table = deployment.target(stack, values.get("TableName"))
            if table:
                watched.setdefault(table, set()).add((values.get("GlobalSecondaryIndexName"), name))
    return watched


def _capacity_problems(stack: str, logical_id: str, index: str | None, kind: str, created: dict,
                       scaling: dict[tuple[str, str, str | None, str], tuple[str, dict]],
                       tracking: dict[tuple[str, str], str],
                       watched: dict[tuple[str, str], set[tuple[str | None, str]]]) -> list[str]:
    """One table's or index's read or write capacity: scaled by target tracking, created within its bounds, and
    its throttling watched."""
    where = f"{stack}/{logical_id}" + (f" index {index}" if index else "")
    found = scaling.get((stack, logical_id, index, kind))
    if found is None:
        return [f"{where}: no auto scaling of its {kind.lower()} capacity (a scalable target for "
                f"dynamodb:{'index' if index else 'table'}:{kind}CapacityUnits)"]
    problems = []
    target, bounds = found
    if tracking.get((stack, target)) != f"DynamoDB{kind}CapacityUtilization":
        problems.append(f"{where}: no target tracking on DynamoDB{kind}CapacityUtilization scales its "
                        f"{kind.lower()} capacity ({target})")
    units = created.get(f"{kind}CapacityUnits")
    if isinstance(units, int) and not bounds.get("MinCapacity", 0) <= units <= bounds.get("MaxCapacity", 0):
        problems.append(f"{where}: created with {units} {kind.lower()} units, outside its auto scaling's "
                        f"{bounds.get('MinCapacity')}-{bounds.get('MaxCapacity')}")
    if (index, f"{kind}ThrottleEvents") not in watched.get((stack, logical_id), set()):
        problems.append(f"{where}: no alarm watches its {kind}ThrottleEvents")
    return problems


def _global_table_capacity_problems(where: str, props: dict, watched: set[tuple[str | None, str]]) -> list[str]:
    problems = []
    write = props.get("WriteProvisionedThroughputSettings", {}).get("WriteCapacityAutoScalingSettings", {})
    if not write.get("TargetTrackingScalingPolicyConfiguration"):
        problems.append(f"{where}: no auto scaling of its write capacity (WriteProvisionedThroughputSettings."
                        "WriteCapacityAutoScalingSettings with a target tracking policy)")
    for replica in props.get("Replicas", []):
        read = replica.get("ReadProvisionedThroughputSettings", {})
        scaled = read.get("ReadCapacityAutoScalingSettings", {}).get("TargetTrackingScalingPolicyConfiguration")
        if not scaled and not read.get("ReadCapacityUnits"):
            problems.append(f"{where}: its replica in {render(replica.get('Region'))} has no read capacity "
                            "(ReadProvisionedThroughputSettings)")
    for kind in ("Read", "Write"):
        if (None, f"{kind}ThrottleEvents") not in watched:
            problems.append(f"{where}: no alarm watches its {kind}ThrottleEvents")
    return problems


@rule
def rule_consumers_behind_mappings_without_partial_batch_response_fail_batches_whole(deployment: Deployment
                                                                                    ) -> list[str]:
    """A Kafka mapping honours a partial batch response only with ReportBatchItemFailures in FunctionResponseTypes,
    which it takes in provisioned mode only ("select Provisioned mode to configure error handling controls"). Without
    it, a function that returns commits the batch: a record it names as failed would never come again. So the function
    behind such a mapping runs its consumer in whole-batch mode (SHOPSTREAM_PARTIAL_BATCH_RESPONSE=false: any failed
    record fails the invocation, and Lambda delivers the whole batch again; shopstream.consumer).
    https://docs.aws.amazon.com/lambda/latest/dg/kafka-retry-configurations.html
    https://docs.aws.amazon.com/lambda/latest/dg/with-msk-process.html"""
    from shopstream.config import PARTIAL_BATCH_RESPONSE_ENV

    problems = []
    for stack, logical_id, mapping in deployment.resources("AWS::Lambda::EventSourceMapping"):
        props = mapping["Properties"]
        if "Topics" not in props or "ReportBatchItemFailures" in props.get("FunctionResponseTypes", []):
            continue
        function = deployment.resource(deployment.target(stack, props["FunctionName"])) or {}
        variables = function.get("Properties", {}).get("Environment", {}).get("Variables", {})
        if str(variables.get(PARTIAL_BATCH_RESPONSE_ENV, "true")).lower() != "false":
            problems.append(f"{stack}/{logical_id}: its function returns a partial batch response, which the mapping "
                            f"ignores (no ReportBatchItemFailures): set {PARTIAL_BATCH_RESPONSE_ENV}=false so that a "
                            "failed record fails the batch instead of being committed")
    return problems


@rule
def rule_kafka_mappings_drop_no_record_before_the_function(deployment: Deployment) -> list[str]:
    """A mapping drops every record no filter pattern matches, before the function and without a trace in the
    on-failure destination. For Kafka, AWS documents filtering "only ... on the value key" with patterns over a JSON
    value, and not what a value that is not a JSON object (plain text, bytes that are not UTF-8, none) matches: a
    poison record could be dropped instead of dead-lettered with its bytes. So a Kafka mapping carries no
    FilterCriteria; the function skips the types it does not handle (shopstream/filters.py). A stream mapping may
    filter (the relays' INSERT filter is the DynamoDB syntax AWS documents).
    https://docs.aws.amazon.com/lambda/latest/dg/kafka-filtering.html
    https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventfiltering.html"""
    problems = []
    for stack, logical_id, mapping in deployment.resources("AWS::Lambda::EventSourceMapping"):
        props = mapping["Properties"]
        kafka = any(k in props for k in ("Topics", "AmazonManagedKafkaEventSourceConfig", "SelfManagedEventSource"))
        filters = props.get("FilterCriteria", {}).get("Filters", [])
        if kafka and filters:
            patterns = "; ".join(str(f.get("Pattern")) for f in filters)
            problems.append(f"{stack}/{logical_id}: a Kafka mapping with filter patterns ({patterns}): a record none "
                            "matches, a poison record among them, is dropped before the function")
    return problems


# --- issue 22, section 1: cross-region replication (MSK Replicator) ---------------------------------------------
# The source cluster's policy must let the service call these: "attach a resource-based permissions policy to the
# source cluster to allow the kafka.amazonaws.com service principal to perform kafka:CreateVpcConnection,
# kafka:GetBootstrapBrokers, and kafka:DescribeClusterV2 actions"
# https://docs.aws.amazon.com/msk/latest/developerguide/msk-replicator-network-reqs.html
REPLICATOR_SOURCE_ACTIONS = ("kafka:CreateVpcConnection", "kafka:GetBootstrapBrokers", "kafka:DescribeClusterV2")
# The service execution role: AWSMSKReplicatorExecutionRole's actions, on the clusters, their topics and groups, and
# "You need to add kafka-cluster:WriteDataIdempotently permission to both the source and target cluster".
# https://docs.aws.amazon.com/msk/latest/developerguide/msk-replicator-ser.html
# https://docs.aws.amazon.com/msk/latest/developerguide/security-iam-awsmanpol-AWSMSKReplicatorExecutionRole.html
REPLICATOR_ROLE_ACTIONS = {
    "cluster": ("kafka-cluster:Connect", "kafka-cluster:DescribeCluster", "kafka-cluster:AlterCluster",
                "kafka-cluster:DescribeTopic", "kafka-cluster:CreateTopic", "kafka-cluster:AlterTopic",
                "kafka-cluster:WriteData", "kafka-cluster:ReadData", "kafka-cluster:AlterGroup",
                "kafka-cluster:DescribeGroup", "kafka-cluster:DescribeTopicDynamicConfiguration",
                "kafka-cluster:AlterTopicDynamicConfiguration", "kafka-cluster:WriteDataIdempotently"),
    "topic": ("kafka-cluster:DescribeTopic", "kafka-cluster:CreateTopic", "kafka-cluster:AlterTopic",
              "kafka-cluster:WriteData", "kafka-cluster:ReadData", "kafka-cluster:DescribeTopicDynamicConfiguration",
              "kafka-cluster:AlterTopicDynamicConfiguration", "kafka-cluster:AlterCluster"),
    "group": ("kafka-cluster:AlterGroup", "kafka-cluster:DescribeGroup"),
}
# "MSK Replicator supports clusters using instance types of m5.large or larger. t3.small clusters aren't supported",
# "a minimum of three brokers in both source and target clusters ... in two Availability Zones ... a minimum of four",
# "supported only on clusters running Apache Kafka 2.7.0 or higher", "Identical topic name replication ... requires
# ... Kafka version 2.8.1 or higher"; and "MSK Replicator uses IAM access control to connect to your clusters".
# https://docs.aws.amazon.com/msk/latest/developerguide/msk-replicator-supported-clusters-versions.html
REPLICATOR_MIN_KAFKA = (2, 7, 0)
IDENTICAL_TOPIC_NAMES_MIN_KAFKA = (2, 8, 1)


@dataclass
class _Replication:
    """One AWS::MSK::Replicator's flow: where the Replicator is, and its source and target clusters."""

    where: str
    stack: str
    region: str | None
    replicator: dict
    source: tuple[str, str] | None  # (stack, logical id) of a cluster of this deployment
    source_value: object
    target: tuple[str, str] | None
    target_value: object


def _replications(deployment: Deployment) -> list[_Replication]:
    flows = []
    for stack, logical_id, replicator in deployment.resources("AWS::MSK::Replicator"):
        for info in replicator["Properties"].get("ReplicationInfoList", []):
            source_value = info.get("SourceKafkaClusterArn")
            target_value = info.get("TargetKafkaClusterArn")
            flows.append(_Replication(
                f"{stack}/{logical_id}", stack, deployment.regions.get(stack), replicator,
                _cluster_address(deployment, stack, source_value), source_value,
                _cluster_address(deployment, stack, target_value), target_value))
    return flows


def _cluster_address(deployment: Deployment, stack: str, value: object) -> tuple[str, str] | None:
    address = deployment.target(stack, value)
    return address if (deployment.resource(address) or {}).get("Type") == "AWS::MSK::Cluster" else None


def _cluster_region(deployment: Deployment, stack: str, address: tuple[str, str] | None, value: object) -> str | None:
    """A cluster's region: its stack's, or the one its literal ARN names."""
    if address is not None:
        return deployment.region_of(address[0])
    match = re.match(r"arn:[a-z-]+:kafka:([a-z0-9-]+):", render(deployment.resolve(stack, value)[1]))
    return match.group(1) if match else None


def _kafka_version(text: object) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", str(text).split(".x")[0])[:3])


def _names_service(statement: dict, service: str) -> bool:
    principal = statement.get("Principal", {})
    return isinstance(principal, dict) and service in _as_list(principal.get("Service", []))


def _action_matches(granted: object, action: str) -> bool:
    return any(re.fullmatch(re.escape(g).replace(r"\*", ".*"), action, re.IGNORECASE)
               for g in _as_list(granted) if isinstance(g, str))


@rule
def rule_an_msk_replicator_is_created_in_its_target_clusters_region(deployment: Deployment) -> list[str]:
    """"To get started with MSK Replicator, you need create a new Replicator in your target cluster's AWS Region";
    it names both clusters (KafkaClusters), each with the subnets of a VPC that reaches it (2-3), and for cross-region
    replication "You must provide security groups for the target cluster".
    https://docs.aws.amazon.com/msk/latest/developerguide/msk-replicator-how-it-works.html
    https://docs.aws.amazon.com/msk/latest/developerguide/msk-replicator-network-reqs.html
    https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-properties-msk-replicator-kafkaclusterclientvpcconfig.html"""
    problems = []
    for flow in _replications(deployment):
        target_region = _cluster_region(deployment, flow.stack, flow.target, flow.target_value)
        source_region = _cluster_region(deployment, flow.stack, flow.source, flow.source_value)
        if target_region is None or flow.region is None:
            problems.append(f"{flow.where}: cannot tell its target cluster's region "
                            f"({render(flow.target_value)[:80]})")
        elif target_region != flow.region:
            problems.append(f"{flow.where}: is created in {flow.region}, but its target cluster is in {target_region}; "
                            "AWS creates a Replicator in its target cluster's region")
        named = {}
        for cluster in flow.replicator["Properties"].get("KafkaClusters", []):
            arn = cluster.get("AmazonMskCluster", {}).get("MskClusterArn")
            named[json.dumps(deployment.resolve(flow.stack, arn)[1], sort_keys=True)] = cluster.get("VpcConfig", {})
        for side, value in (("source", flow.source_value), ("target", flow.target_value)):
            vpc = named.get(json.dumps(deployment.resolve(flow.stack, value)[1], sort_keys=True))
            if vpc is None:
                problems.append(f"{flow.where}: its {side} cluster is not among its KafkaClusters")
                continue
            subnets = vpc.get("SubnetIds", [])
            if not isinstance(subnets, list) or not 2 <= len(subnets) <= 3:
                problems.append(f"{flow.where}: the {side} cluster's VpcConfig names {len(subnets)} subnets; 2-3")
            if side == "target" and source_region != target_region and not vpc.get("SecurityGroupIds"):
                problems.append(f"{flow.where}: no security groups for the target cluster")
    return problems


@rule
def rule_a_cross_region_replication_source_lets_msk_replicator_connect(deployment: Deployment) -> list[str]:
    """A cross-region Replicator's source cluster: "The source cluster must have multi-VPC private connectivity turned
    on for IAM access control", and a cluster policy lets kafka.amazonaws.com call CreateVpcConnection,
    GetBootstrapBrokers and DescribeClusterV2 on it. Multi-VPC connectivity needs the cluster's IAM authentication and
    refuses unauthenticated access ("the unauthenticated auth type is not supported when multi-VPC is turned on").
    https://docs.aws.amazon.com/msk/latest/developerguide/msk-replicator-network-reqs.html
    https://docs.aws.amazon.com/msk/latest/developerguide/msk-replicator-prepare-clusters.html
    https://docs.aws.amazon.com/msk/latest/developerguide/aws-access-mult-vpc.html#mvpc-requirements"""
    policies: dict[tuple[str, str], list[tuple[str, dict]]] = {}  # cluster -> (policy's stack, statement)
    for stack, _, policy in deployment.resources("AWS::MSK::ClusterPolicy"):
        address = deployment.target(stack, policy["Properties"].get("ClusterArn"))
        if address:
            statements = _as_list(policy["Properties"].get("Policy", {}).get("Statement", []))
            policies.setdefault(address, []).extend((stack, s) for s in statements)
    problems = []
    for flow in _replications(deployment):
        source_region = _cluster_region(deployment, flow.stack, flow.source, flow.source_value)
        if source_region == flow.region:
            continue  # same-region replication needs neither
        if flow.source is None:
            problems.append(f"{flow.where}: its source cluster ({render(flow.source_value)[:80]}) is not one these "
                            "stacks own: its multi-VPC connectivity and cluster policy cannot be checked")
            continue
        where = f"{flow.source[0]}/{flow.source[1]}"
        props = (deployment.resource(flow.source) or {}).get("Properties", {})
        connectivity = props.get("BrokerNodeGroupInfo", {}).get("ConnectivityInfo", {}).get("VpcConnectivity", {})
        if connectivity.get("ClientAuthentication", {}).get("Sasl", {}).get("Iam", {}).get("Enabled") is not True:
            problems.append(f"{where}: replicated to {flow.region} without multi-VPC private connectivity for IAM "
                            "(ConnectivityInfo.VpcConnectivity.ClientAuthentication.Sasl.Iam)")
        authentication = props.get("ClientAuthentication", {})
        if authentication.get("Sasl", {}).get("Iam", {}).get("Enabled") is not True:
            problems.append(f"{where}: replicated to {flow.region} without IAM client authentication")
        if authentication.get("Unauthenticated", {}).get("Enabled") is True:
            problems.append(f"{where}: allows unauthenticated access, which multi-VPC connectivity does not support")
        admitted = set()
        for policy_stack, statement in policies.get(flow.source, []):
            resources = _as_list(statement.get("Resource", []))
            on_cluster = any(r == "*" or deployment.target(policy_stack, r) == flow.source for r in resources)
            if statement.get("Effect") == "Allow" and _names_service(statement, "kafka.amazonaws.com") and on_cluster:
                admitted |= {a for a in REPLICATOR_SOURCE_ACTIONS if _action_matches(statement.get("Action"), a)}
        missing = [a for a in REPLICATOR_SOURCE_ACTIONS if a not in admitted]
        if missing:
            problems.append(f"{where}: replicated to {flow.region}, its cluster policy does not let "
                            f"kafka.amazonaws.com call {', '.join(missing)} on it")
    return problems


@rule
def rule_replicated_msk_clusters_meet_msk_replicator_requirements(deployment: Deployment) -> list[str]:
    """Both clusters of a Replicator: at least three brokers (four on two Availability Zones), m5.large or larger
    (no t3), Apache Kafka 2.7.0 or later (2.8.1 for identical topic names), IAM access control.
    https://docs.aws.amazon.com/msk/latest/developerguide/msk-replicator-supported-clusters-versions.html
    https://docs.aws.amazon.com/msk/latest/developerguide/msk-replicator-topic-naming.html"""
    problems = []
    for flow in _replications(deployment):
        naming = [i.get("TopicReplication", {}).get("TopicNameConfiguration", {}).get("Type")
                  for i in flow.replicator["Properties"].get("ReplicationInfoList", [])]
        least_version = IDENTICAL_TOPIC_NAMES_MIN_KAFKA if "IDENTICAL" in naming else REPLICATOR_MIN_KAFKA
        for side, address in (("source", flow.source), ("target", flow.target)):
            if address is None:
                continue  # a cluster made elsewhere (the next rules say what they cannot check)
            props = (deployment.resource(address) or {})["Properties"]
            where = f"{address[0]}/{address[1]} ({side} of {flow.where})"
            nodes = props["BrokerNodeGroupInfo"]
            brokers, subnets = props.get("NumberOfBrokerNodes", 0), nodes.get("ClientSubnets", [])
            least = 4 if isinstance(subnets, list) and len(subnets) == 2 else 3
            if brokers < least:
                problems.append(f"{where}: {brokers} brokers on {len(subnets)} zones; MSK Replicator needs {least}")
            if ".t3." in str(nodes.get("InstanceType")):
                problems.append(f"{where}: {nodes.get('InstanceType')} brokers, which MSK Replicator does not support")
            version = _kafka_version(props.get("KafkaVersion", ""))
            if version < least_version:
                problems.append(f"{where}: Kafka {props.get('KafkaVersion')}; this replication needs "
                                f"{'.'.join(map(str, least_version))} or later")
            if props.get("ClientAuthentication", {}).get("Sasl", {}).get("Iam", {}).get("Enabled") is not True:
                problems.append(f"{where}: no IAM access control, which MSK Replicator connects with")
    return problems


def _egress_admits(deployment: Deployment, group: tuple[str, str], to: set, port: int) -> bool:
    """A security group lets traffic out to one of ``to`` (or anywhere) on ``port``."""
    rules = [(None if "CidrIp" in r else deployment.target(group[0], r.get("DestinationSecurityGroupId")), r)
             for r in (deployment.resource(group) or {}).get("Properties", {}).get("SecurityGroupEgress", [])]
    for stack, _, egress in deployment.resources("AWS::EC2::SecurityGroupEgress"):
        props = egress["Properties"]
        if deployment.target(stack, props.get("GroupId")) == group:
            destination = props.get("DestinationSecurityGroupId")
            rules.append((deployment.target(stack, destination) if destination else None, props))
    for destination, rule_ in rules:
        open_to_all = destination is None and rule_.get("CidrIp") == "0.0.0.0/0"
        low, high = _ports(rule_)
        if (open_to_all or destination in to) and low <= port <= high:
            return True
    return False


@rule
def rule_msk_replicator_may_use_both_clusters_and_reach_the_target(deployment: Deployment) -> list[str]:
    """The service execution role is assumed by kafka.amazonaws.com and allows AWSMSKReplicatorExecutionRole's actions
    on each cluster and on its topics and groups, WriteDataIdempotently on both clusters; the target cluster's security
    groups admit the Replicator's on port 9098 and the Replicator's let it out ("security groups for the target cluster
    with appropriate inbound and outbound rules on port 9098").
    https://docs.aws.amazon.com/msk/latest/developerguide/msk-replicator-ser.html
    https://docs.aws.amazon.com/msk/latest/developerguide/security-iam-awsmanpol-AWSMSKReplicatorExecutionRole.html
    https://docs.aws.amazon.com/msk/latest/developerguide/msk-replicator-network-reqs.html"""
    network = _network(deployment)
    problems = []
    for flow in _replications(deployment):
        props = flow.replicator["Properties"]
        role_address = deployment.target(flow.stack, props.get("ServiceExecutionRoleArn"))
        role = deployment.resource(role_address) or {}
        trust = _as_list(role.get("Properties", {}).get("AssumeRolePolicyDocument", {}).get("Statement", []))
        if not any(s.get("Effect") == "Allow" and _names_service(s, "kafka.amazonaws.com") for s in trust):
            problems.append(f"{flow.where}: its service execution role is not assumed by kafka.amazonaws.com")
        statements = deployment.role_statements(flow.stack, props.get("ServiceExecutionRoleArn"))
        for side, address, value in (("source", flow.source, flow.source_value),
                                     ("target", flow.target, flow.target_value)):
            cluster_name = ((deployment.resource(address) or {}).get("Properties", {}).get("ClusterName")
                            if address else None)
            cluster_region = _cluster_region(deployment, flow.stack, address, value)
            for scope, actions in REPLICATOR_ROLE_ACTIONS.items():
                for action in actions:
                    if not _replicator_role_allows(deployment, role_address, statements, action, scope, address,
                                                   cluster_name, cluster_region):
                        problems.append(f"{flow.where}: its role lacks {action} on the {side} cluster"
                                        f"{'' if scope == 'cluster' else f's {scope}s'}")
        if flow.target is None:
            continue
        target_groups = {deployment.target(flow.target[0], g) for g in (deployment.resource(flow.target) or {})
                         ["Properties"]["BrokerNodeGroupInfo"].get("SecurityGroups", [])}
        for cluster in props.get("KafkaClusters", []):
            arn = cluster.get("AmazonMskCluster", {}).get("MskClusterArn")
            if _cluster_address(deployment, flow.stack, arn) != flow.target:
                continue
            for group_value in cluster.get("VpcConfig", {}).get("SecurityGroupIds", []):
                group = deployment.target(flow.stack, group_value)
                if not _admits(network, target_groups, {group}, MSK_IAM_PORT):
                    problems.append(f"{flow.where}: the target cluster's security groups do not admit the Replicator's "
                                    f"({group[1] if group else group_value}) on {MSK_IAM_PORT}")
                if group and not _egress_admits(deployment, group, target_groups, MSK_IAM_PORT):
                    problems.append(f"{flow.where}: its security group {group[1]} does not let it out to the target "
                                    f"brokers on {MSK_IAM_PORT}")
    return problems


def _replicator_role_allows(deployment: Deployment, role: tuple[str, str] | None, statements: list[dict], action: str,
                            scope: str, cluster: tuple[str, str] | None, cluster_name: str | None,
                            region: str | None) -> bool:
    """Some statement allows ``action`` on the cluster itself, or on its topics / groups (``<kind>/<name>/...*``)."""
    stack = role[0] if role else ""
    for statement in statements:
        if not _action_matches(statement.get("Action", []), action):
            continue
        for resource in _as_list(statement.get("Resource", [])):
            if resource == "*":
                return True
            if scope == "cluster":
                if cluster is not None and deployment.target(stack, resource) == cluster:
                    return True
                continue
            producer, value = deployment.resolve(stack, resource)
            text = render(value)
            if f":{scope}/" not in text or not text.endswith("/*"):
                continue
            of_cluster = cluster is not None and producer == cluster[0] and cluster[1] in _references(value)
            by_name = (cluster_name is not None and f":{scope}/{cluster_name}/" in text
                       and (region is None or f":kafka:{region}:" in text))
            if of_cluster or by_name:
                return True
    return False


CUSTOMER_KEY_STORE = re.compile(r".+-customer-keys$")


@rule
def rule_a_failover_region_can_open_what_the_environment_sealed(deployment: Deployment) -> list[str]:
    """Personal fields travel and rest sealed under keys the customer-data key wraps (docs/data-map.md): a region that
    takes over needs that key (a multi-Region replica under the same alias) and the store of wrapped keys (a global
    table replica), or everything sealed in the replicated events is unreadable there. A key is made single- or
    multi-Region once ("you can't change this property later"), so a retained environment's key is multi-Region from
    the start; CloudFormation turns no table into a global table in place, so the store is one from the start too.
    https://docs.aws.amazon.com/kms/latest/developerguide/mrk-how-it-works.html
    https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-kms-replicakey.html
    https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-dynamodb-globaltable.html"""
    primaries: dict[tuple[str, str], str] = {}  # key -> alias
    replicas: dict[tuple[str, str], str] = {}
    for stack, _, alias_resource in deployment.resources("AWS::KMS::Alias"):
        name = render(alias_resource["Properties"]["AliasName"])
        if not CUSTOMER_DATA_KEY_ALIAS.match(name):
            continue
        address = deployment.target(stack, alias_resource["Properties"]["TargetKeyId"])
        kind = (deployment.resource(address) or {}).get("Type")
        if kind == "AWS::KMS::Key" and address is not None:
            primaries[address] = name
        elif kind == "AWS::KMS::ReplicaKey" and address is not None:
            replicas[address] = name
    stores = [(stack, lid, table) for stack, lid, table in deployment.resources(
        "AWS::DynamoDB::Table", "AWS::DynamoDB::GlobalTable")
        if CUSTOMER_KEY_STORE.match(render(table["Properties"].get("TableName", "")))]
    targets = {flow.region for flow in _replications(deployment) if flow.region}
    problems = []
    for (stack, logical_id), alias in sorted(primaries.items()):
        key = deployment.resource((stack, logical_id)) or {}
        where = f"{stack}/{logical_id} ({alias})"
        if (key.get("DeletionPolicy") == "Retain" or targets) and key["Properties"].get("MultiRegion") is not True:
            problems.append(f"{where}: a retained or replicated environment's customer-data key is single-Region; KMS "
                            "cannot make it multi-Region later, so no region could ever open what it sealed")
        for region in sorted(targets):
            here = [r for r in replicas if deployment.regions.get(r[0]) == region and replicas[r] == alias
                    and deployment.target(r[0], present(deployment.resource(r))["Properties"].get("PrimaryKeyArn"))
                    == (stack, logical_id)]
            if not here:
                problems.append(f"{where}: no replica of it under {alias} in {region}, where the events are "
                                "replicated")
    for stack, logical_id, table in stores:
        where = f"{stack}/{logical_id}"
        retained = table.get("DeletionPolicy") == "Retain"
        if (retained or targets) and table["Type"] != "AWS::DynamoDB::GlobalTable":
            problems.append(f"{where}: the customer key store of a retained or replicated environment is not a global "
                            "table; CloudFormation turns no table into one in place")
            continue
        regions = {r.get("Region") for r in table["Properties"].get("Replicas", [])}
        for region in sorted(targets - regions):
            problems.append(f"{where}: no replica of the customer key store in {region}, where the events are "
                            "replicated")
    return problems


def check(deployment: Deployment, name: str) -> list[str]:
    return RULES[name](deployment)
