"""What GitHub Actions may do in AWS: the account's GitHub OIDC provider, and per environment the role its
deployment jobs assume (``shopstream-<env>-deploy``) and, for the environment a pull request diffs against,
the read-only role of that diff (``shopstream-<env>-diff``). No stored keys: a job exchanges its OIDC token
for a session of at most two hours (.github/workflows/delivery.yml, docs/deploy.md "The delivery train").

A deploy role trusts one subject only, ``repo:<owner>/<name>:environment:<env>``: a job of this repository's
workflow running in that GitHub environment (whose deployment branches are main only, and prod's approval a
reviewer's). A pull request's token (``repo:<owner>/<name>:pull_request``), another environment's, another
repository's or a branch's never matches. The role does nothing by itself but assume the CDK bootstrap roles
of its account and region (deploy, file-publishing, image-publishing, lookup: what ``cdk deploy`` uses; and the
replication target region's where replication is on), read its environment's stack outputs and, where the
black-box suite runs, make and delete test users in its environment's user pool. These stacks are deployed by
hand (``delivery.py``; the train never deploys them), so that a change to who may deploy is a reviewed change
applied by an administrator.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from constructs import Construct

from shopstream import names
from stacks.config import Delivery, EnvironmentConfig
from stacks.nag import acknowledge_wildcard_resources

GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
GITHUB_OIDC_URL = f"https://{GITHUB_OIDC_HOST}"
# The audience aws-actions/configure-aws-credentials asks GitHub for (its ``audience`` input's default).
STS_AUDIENCE = "sts.amazonaws.com"
# The roles `cdk bootstrap` makes that the CDK CLI assumes: cdk-<qualifier>-<kind>-role-<account>-<region>.
# The fifth, cfn-exec, is CloudFormation's own: passed by the deploy role, never assumed by the pipeline.
BOOTSTRAP_ROLE_KINDS = ("deploy", "file-publishing", "image-publishing", "lookup")
# Long enough for a first deploy (30-60 minutes, most of it MSK) and the black-box suite after it. The CLI
# re-assumes the bootstrap roles (chained sessions last an hour at most) with this session while it lasts.
SESSION_HOURS = 2
# What the black-box suite does in a deployed environment's user pool (tests/blackbox/deployments.py).
TEST_USER_ACTIONS = ("cognito-idp:AdminCreateUser", "cognito-idp:AdminSetUserPassword",
                     "cognito-idp:AdminAddUserToGroup", "cognito-idp:AdminInitiateAuth",
                     "cognito-idp:AdminDeleteUser")


def oidc_stack_name() -> str:
    return f"{names.PROJECT}-github-oidc"


def delivery_stack_name(environment: str) -> str:
    return f"{names.prefix(environment)}-delivery"


def deploy_role_name(environment: str) -> str:
    return f"{names.prefix(environment)}-deploy"


def diff_role_name(environment: str) -> str:
    return f"{names.prefix(environment)}-diff"


def environment_subject(repository: str, environment: str) -> str:
    """The ``sub`` of a job's token that runs in a GitHub environment."""
    return f"repo:{repository}:environment:{environment}"


def pull_request_subject(repository: str) -> str:
    """The ``sub`` of a token of a pull_request run (outside any environment)."""
    return f"repo:{repository}:pull_request"


def deploy_regions(config: EnvironmentConfig) -> list[str]:
    """Where a deploy of the environment puts stacks: its region and, with replication on, the target region
    (stacks/recovery.py), each bootstrapped with `cdk bootstrap`."""
    return [config.region, *([config.replication.target_region] if config.replication else [])]


def bootstrap_qualifier(scope: Construct) -> str:
    """The qualifier the app's stacks are synthesized with (cdk.json may set it; `cdk bootstrap` uses the same)."""
    return str(scope.node.try_get_context("@aws-cdk/core:bootstrapQualifier")
               or cdk.DefaultStackSynthesizer.DEFAULT_QUALIFIER)


class GitHubOidcStack(cdk.Stack):
    """GitHub's OIDC identity provider: one per AWS account (IAM refuses a second for the same URL), so this stack
    is deployed once per account, or not at all where the account has the provider already."""

    def __init__(self, scope: Construct, construct_id: str, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        # No thumbprints: IAM trusts GitHub's certificate through its own root CAs for this provider.
        provider = iam.OidcProviderNative(self, "GitHub", url=GITHUB_OIDC_URL, client_ids=[STS_AUDIENCE])
        cdk.CfnOutput(self, "ProviderArn", value=provider.oidc_provider_arn)


class DeliveryStack(cdk.Stack):
    """The roles GitHub Actions assumes for one environment, in that environment's account and region."""

    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, delivery: Delivery,
                 **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        env = config.name
        # The provider's ARN is fixed by its URL: it may come from GitHubOidcStack or exist already.
        provider_arn = f"arn:{self.partition}:iam::{self.account}:oidc-provider/{GITHUB_OIDC_HOST}"
        stacks_arns = [f"arn:{self.partition}:cloudformation:{region}:{self.account}:stack/{config.prefix}-*/*"
                       for region in deploy_regions(config)]

        self.deploy_role = iam.Role(
            self, "DeployRole", role_name=deploy_role_name(env),
            description=f"GitHub Actions: {delivery.github_repository}, environment {env} (deploy, black-box suite)",
            assumed_by=self._github(provider_arn, environment_subject(delivery.github_repository, env)),
            max_session_duration=cdk.Duration.hours(SESSION_HOURS))
        qualifier = bootstrap_qualifier(self)
        bootstrap_roles = [f"arn:{self.partition}:iam::{self.account}:role/cdk-{qualifier}-{kind}-role-"
                           f"{self.account}-{region}"
                           for region in deploy_regions(config) for kind in BOOTSTRAP_ROLE_KINDS]
        self.deploy_role.add_to_policy(iam.PolicyStatement(
            sid="UseTheCdkBootstrapRoles", actions=["sts:AssumeRole", "sts:TagSession"], resources=bootstrap_roles))
        self.deploy_role.add_to_policy(iam.PolicyStatement(
            sid="ReadStackOutputs", actions=["cloudformation:DescribeStacks"], resources=stacks_arns))
        acknowledge_wildcard_resources(
            self.deploy_role, stacks_arns,
            "the environment's stacks by their name prefix (the stack id after the name is CloudFormation's): "
            "the black-box suite and the train read their outputs")
        if env in delivery.black_box_environments:
            user_pools = f"arn:{self.partition}:cognito-idp:{self.region}:{self.account}:userpool/*"
            self.deploy_role.add_to_policy(iam.PolicyStatement(
                sid="BlackBoxTestUsers", actions=list(TEST_USER_ACTIONS), resources=[user_pools],
                # The user pool's id is the platform stack's (made after this stack): its tags pick it out.
                conditions={"StringEquals": {"aws:ResourceTag/project": names.PROJECT,
                                             "aws:ResourceTag/environment": env}}))
            acknowledge_wildcard_resources(
                self.deploy_role, [user_pools],
                "only the user pool tagged project=shopstream and this environment (a condition): the black-box "
                "suite makes its test users there and deletes them after the run")
        cdk.CfnOutput(self, "DeployRoleArn", value=self.deploy_role.role_arn,
                      description=f"the GitHub environment {env}'s variable AWS_ROLE_ARN")

        self.diff_role: iam.Role | None = None
        if env == delivery.pull_request_diff_environment:
            # A pull request's run executes the pull request's code (the synth): it reads the deployed templates,
            # nothing else. Not the lookup role (ReadOnlyAccess to the whole account), not the deploy role: the
            # CDK CLI then reads with these credentials and diffs against the templates (no change set).
            self.diff_role = iam.Role(
                self, "DiffRole", role_name=diff_role_name(env),
                description=f"GitHub Actions: {delivery.github_repository}, pull requests (cdk diff against {env})",
                assumed_by=self._github(provider_arn, pull_request_subject(delivery.github_repository)),
                max_session_duration=cdk.Duration.hours(1))
            self.diff_role.add_to_policy(iam.PolicyStatement(
                sid="ReadDeployedTemplates", actions=["cloudformation:DescribeStacks", "cloudformation:GetTemplate"],
                resources=stacks_arns))
            acknowledge_wildcard_resources(
                self.diff_role, stacks_arns,
                "the environment's stacks by their name prefix (the stack id after the name is CloudFormation's): "
                "cdk diff reads their deployed templates")
            cdk.CfnOutput(self, "DiffRoleArn", value=self.diff_role.role_arn,
                          description="the repository variable AWS_DIFF_ROLE_ARN")

    @staticmethod
    def _github(provider_arn: str, subject: str) -> iam.FederatedPrincipal:
        """Tokens of GitHub's provider whose audience is STS and whose subject is exactly ``subject``."""
        return iam.FederatedPrincipal(
            provider_arn,
            conditions={"StringEquals": {f"{GITHUB_OIDC_HOST}:aud": STS_AUDIENCE, f"{GITHUB_OIDC_HOST}:sub": subject}},
            assume_role_action="sts:AssumeRoleWithWebIdentity")


def build(app: cdk.App, config: EnvironmentConfig, delivery: Delivery) -> dict[str, cdk.Stack]:
    """The account's OIDC provider and the environment's roles, in the environment's account and region."""
    env = cdk.Environment(account=config.account, region=config.region)
    stacks: dict[str, cdk.Stack] = {
        "oidc": GitHubOidcStack(app, oidc_stack_name(), env=env,
                                description="shopstream delivery: GitHub's OIDC identity provider (one per account)"),
        "delivery": DeliveryStack(
            app, delivery_stack_name(config.name), config=config, delivery=delivery, env=env,
            description=f"shopstream delivery: the roles GitHub Actions assumes for {config.name}"),
    }
    for stack in stacks.values():
        cdk.Tags.of(stack).add("project", names.PROJECT)
    cdk.Tags.of(stacks["delivery"]).add("environment", config.name)
    return stacks
