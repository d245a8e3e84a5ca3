"""The delivery stacks (stacks/delivery.py, delivery.py): GitHub's OIDC provider and the roles the workflow assumes.

Each role's trust policy is evaluated here against the tokens GitHub issues (their ``aud`` and ``sub`` claims) as
IAM evaluates StringEquals: a deploy role admits a job of this repository's workflow in its own GitHub environment
and nothing else (another environment's job, a pull request, a branch, another repository, another audience).
The delivery stacks synthesize in seconds; the last test reads the application's synthesis (the shared fixture).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from stacks import delivery
from stacks.config import ConfigError, load, load_delivery
from tests.infra.conftest import ENVIRONMENTS, REPLICATION, ROOT, cdk_context

REPOSITORY = cdk_context()["delivery"]["githubRepository"]
PROVIDER_SUFFIX = ":oidc-provider/token.actions.githubusercontent.com"
AUD, SUB = "token.actions.githubusercontent.com:aud", "token.actions.githubusercontent.com:sub"


@pytest.fixture(scope="module")
def synthesized_delivery(tmp_path_factory) -> dict[str, Path]:
    """environment -> the cloud assembly of its delivery stacks, synthesized with cdk-nag (a finding fails it)."""
    import aws_cdk as cdk
    from cdk_nag import AwsSolutionsChecks

    context = cdk_context()
    made = {}
    for name in ENVIRONMENTS:
        outdir = tmp_path_factory.mktemp(f"delivery-{name}")
        app = cdk.App(outdir=str(outdir), context=context)
        delivery.build(app, load(context["environments"], name), load_delivery(context))
        cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
        app.synth()
        made[name] = outdir
    return made


@pytest.fixture(scope="module")
def templates(synthesized_delivery) -> dict[str, dict[str, dict]]:
    """environment -> stack name -> template."""
    return {env: {p.name.removesuffix(".template.json"): json.loads(p.read_text())
                  for p in outdir.glob("*.template.json")} for env, outdir in synthesized_delivery.items()}


def _resources(template: dict, resource_type: str) -> dict[str, dict]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == resource_type}


def _role(templates, env: str, role_name: str) -> tuple[dict, list[dict]]:
    """The role named ``role_name`` in env's delivery stack, and the statements of the policies attached to it."""
    template = templates[env][delivery.delivery_stack_name(env)]
    [(logical_id, role)] = [(k, r) for k, r in _resources(template, "AWS::IAM::Role").items()
                            if r["Properties"]["RoleName"] == role_name]
    statements = [s for policy in _resources(template, "AWS::IAM::Policy").values()
                  if {"Ref": logical_id} in policy["Properties"]["Roles"]
                  for s in policy["Properties"]["PolicyDocument"]["Statement"]]
    return role["Properties"], statements


def _roles(templates, env: str) -> dict[str, dict]:
    template = templates[env][delivery.delivery_stack_name(env)]
    return {r["Properties"]["RoleName"]: r["Properties"] for r in _resources(template, "AWS::IAM::Role").values()}


def _admits(role: dict, claims: dict[str, str]) -> bool:
    """Whether IAM lets a web-identity token with these claims assume the role: an Allow statement for
    sts:AssumeRoleWithWebIdentity from GitHub's provider whose every condition the claims meet. Only the operators
    this evaluator knows are accepted (anything else fails the test rather than being guessed at)."""
    admitted = False
    for statement in role["AssumeRolePolicyDocument"]["Statement"]:
        assert statement["Effect"] == "Allow", statement  # no Deny to evaluate in these policies
        assert statement["Action"] == "sts:AssumeRoleWithWebIdentity", statement
        federated = statement["Principal"]["Federated"]
        assert federated["Fn::Join"][1][-1] == PROVIDER_SUFFIX, federated
        assert set(statement["Condition"]) == {"StringEquals"}, statement  # exact matches only: no StringLike
        wanted = statement["Condition"]["StringEquals"]
        if all(claims.get(key) in (values if isinstance(values, list) else [values])
               for key, values in wanted.items()):
            admitted = True
    return admitted


def _token(sub: str, aud: str = delivery.STS_AUDIENCE) -> dict[str, str]:
    return {AUD: aud, SUB: sub}


# --- trust -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_a_deploy_role_admits_only_its_environments_jobs_of_this_repository(templates, env):
    role, _ = _role(templates, env, delivery.deploy_role_name(env))
    assert _admits(role, _token(f"repo:{REPOSITORY}:environment:{env}"))
    owner, name = REPOSITORY.split("/")
    refused = [
        *(f"repo:{REPOSITORY}:environment:{other}" for other in ENVIRONMENTS if other != env),
        f"repo:{REPOSITORY}:pull_request",  # a pull request's run: its own code, no environment
        f"repo:{REPOSITORY}:ref:refs/heads/main",  # a job on main outside the environment (no approval, no rules)
        f"repo:{REPOSITORY}:ref:refs/heads/{env}",
        f"repo:{REPOSITORY}:environment:{env.upper()}",  # StringEquals is case-sensitive
        f"repo:{owner}/{name}-fork:environment:{env}",
        f"repo:someone-else/{name}:environment:{env}",
        f"repo:{REPOSITORY}:environment:{env}-other",
        f"repo:{REPOSITORY}:environment:{env}:extra",
    ]
    for sub in refused:
        assert not _admits(role, _token(sub)), sub
    # The right subject with another audience (a token minted for another cloud or service).
    assert not _admits(role, _token(f"repo:{REPOSITORY}:environment:{env}", aud=f"https://github.com/{owner}"))
    assert not _admits(role, {SUB: f"repo:{REPOSITORY}:environment:{env}"})  # no audience at all


def test_only_the_diff_environment_has_a_pull_request_role_and_it_admits_pull_requests_only(templates):
    settings = load_delivery(cdk_context())
    diffed = settings.pull_request_diff_environment
    assert diffed == "dev"
    for env in ENVIRONMENTS:
        names = set(_roles(templates, env))
        expected = {delivery.deploy_role_name(env)} | ({delivery.diff_role_name(env)} if env == diffed else set())
        assert names == expected, env
    role, _ = _role(templates, diffed, delivery.diff_role_name(diffed))
    assert _admits(role, _token(f"repo:{REPOSITORY}:pull_request"))
    for sub in (*(f"repo:{REPOSITORY}:environment:{e}" for e in ENVIRONMENTS), f"repo:{REPOSITORY}:ref:refs/heads/main",
                f"repo:someone-else/{REPOSITORY.split('/')[1]}:pull_request"):
        assert not _admits(role, _token(sub)), sub


# --- permissions -------------------------------------------------------------------------------------------------
def _text(value) -> str:
    """An ARN as text, with ``${Partition}`` and ``${AccountId}`` for the pseudo parameters."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Ref" in value:
        return "${" + value["Ref"].removeprefix("AWS::") + "}"
    if isinstance(value, dict) and "Fn::Join" in value:
        return value["Fn::Join"][0].join(_text(part) for part in value["Fn::Join"][1])
    raise AssertionError(f"unexpected {value!r}")


def _grants(statements: list[dict]) -> dict[str, tuple[set[str], set[str], dict]]:
    grants = {}
    for statement in statements:
        assert statement["Effect"] == "Allow"
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        grants[statement["Sid"]] = ({*actions}, {_text(r) for r in resources}, statement.get("Condition", {}))
    return grants


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_a_deploy_role_only_assumes_the_cdk_bootstrap_roles_and_reads_its_own_stacks(templates, env):
    config = load(cdk_context()["environments"], env)
    settings = load_delivery(cdk_context())
    role, statements = _role(templates, env, delivery.deploy_role_name(env))
    assert "ManagedPolicyArns" not in role and "Policies" not in role
    assert role["MaxSessionDuration"] == 2 * 3600
    grants = _grants(statements)
    region = config.region
    bootstrap = {f"arn:${{Partition}}:iam::${{AccountId}}:role/cdk-hnb659fds-{kind}-role-${{AccountId}}-{region}"
                 for kind in ("deploy", "file-publishing", "image-publishing", "lookup")}
    own_stacks = {f"arn:${{Partition}}:cloudformation:{region}:${{AccountId}}:stack/shopstream-{env}-*/*"}
    expected: dict[str, tuple[set[str], set[str], dict]] = {  # (actions, resources, condition) by statement
        "UseTheCdkBootstrapRoles": ({"sts:AssumeRole", "sts:TagSession"}, bootstrap, {}),
        "ReadStackOutputs": ({"cloudformation:DescribeStacks"}, own_stacks, {})}
    if env in settings.black_box_environments:
        expected["BlackBoxTestUsers"] = (
            set(delivery.TEST_USER_ACTIONS), {f"arn:${{Partition}}:cognito-idp:{region}:${{AccountId}}:userpool/*"},
            {"StringEquals": {"aws:ResourceTag/project": "shopstream", "aws:ResourceTag/environment": env}})
    assert grants == expected
    # Never CloudFormation's execution role (the CLI passes it through the deploy role), never anything else.
    assert not any("cfn-exec" in r for _, resources, _ in grants.values() for r in resources)


def test_with_replication_a_deploy_role_also_reaches_the_target_regions_bootstrap_roles_and_stacks(tmp_path):
    """With replication on, `cdk deploy --all` also deploys the target region's stacks (stacks/recovery.py)."""
    import aws_cdk as cdk
    from cdk_nag import AwsSolutionsChecks

    context = cdk_context()
    environments = {**context["environments"], "prod": {**context["environments"]["prod"], "replication": REPLICATION}}
    app = cdk.App(outdir=str(tmp_path), context={**context, "environments": environments})
    stacks = delivery.build(app, load(environments, "prod"), load_delivery(context))
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    app.synth()
    name = stacks["delivery"].stack_name
    template = json.loads((tmp_path / f"{name}.template.json").read_text())
    _, statements = _role({"prod": {name: template}}, "prod", delivery.deploy_role_name("prod"))
    grants = _grants(statements)
    for region in ("eu-west-1", REPLICATION["targetRegion"]):
        assert f"arn:${{Partition}}:iam::${{AccountId}}:role/cdk-hnb659fds-deploy-role-${{AccountId}}-{region}" \
            in grants["UseTheCdkBootstrapRoles"][1]
        assert f"arn:${{Partition}}:cloudformation:{region}:${{AccountId}}:stack/shopstream-prod-*/*" \
            in grants["ReadStackOutputs"][1]
    assert len(grants["UseTheCdkBootstrapRoles"][1]) == 8


def test_the_black_box_suite_runs_where_its_roles_may_make_test_users():
    settings = load_delivery(cdk_context())
    assert settings.black_box_environments == ["dev", "staging"]  # not prod: the train deploys it, tests before


def test_the_diff_role_only_reads_the_deployed_templates(templates):
    role, statements = _role(templates, "dev", delivery.diff_role_name("dev"))
    assert "ManagedPolicyArns" not in role and role["MaxSessionDuration"] == 3600
    assert _grants(statements) == {"ReadDeployedTemplates": (
        {"cloudformation:DescribeStacks", "cloudformation:GetTemplate"},
        {"arn:${Partition}:cloudformation:eu-west-1:${AccountId}:stack/shopstream-dev-*/*"}, {})}


# --- the provider, outputs, lint --------------------------------------------------------------------------------
def test_the_oidc_provider_is_githubs_for_sts(templates):
    for env in ENVIRONMENTS:
        template = templates[env][delivery.oidc_stack_name()]
        [provider] = _resources(template, "AWS::IAM::OIDCProvider").values()
        assert provider["Properties"]["Url"] == "https://token.actions.githubusercontent.com"
        assert provider["Properties"]["ClientIdList"] == ["sts.amazonaws.com"]
        assert set(template["Resources"]) - {"CDKMetadata"} == set(_resources(template, "AWS::IAM::OIDCProvider"))


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_role_arns_are_outputs_for_the_github_variables(templates, env):
    outputs = templates[env][delivery.delivery_stack_name(env)]["Outputs"]
    assert "DeployRoleArn" in outputs and ("DiffRoleArn" in outputs) == (env == "dev")


def test_cfn_lint_is_clean_on_the_delivery_templates(synthesized_delivery):
    paths = sorted(str(p) for outdir in synthesized_delivery.values() for p in outdir.glob("*.template.json"))
    assert len(paths) == 2 * len(ENVIRONMENTS)
    result = subprocess.run([str(Path(sys.executable).with_name("cfn-lint")), "--", *paths],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


# --- configuration -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("delivery_settings", "named"), [
    ({"githubRepository": "no-slash"}, "githubRepository"),
    ({"githubRepository": "owner/name:environment:prod"}, "githubRepository"),  # would widen the subject
    ({"githubRepository": "-owner/name"}, "githubRepository"),
    ({"githubRepository": "owner/name", "pullRequestDiffEnvironment": "qa"}, "pullRequestDiffEnvironment: 'qa'"),
    ({"githubRepository": "owner/name", "blackBoxEnvironments": ["dev", "qa"]}, "blackBoxEnvironments: 'qa'"),
    ({"githubRepository": "owner/name", "deployRoleName": "x"}, "deployRoleName"),
])
def test_a_delivery_setting_that_cannot_work_is_refused_by_name(delivery_settings, named):
    with pytest.raises(ConfigError, match="cdk.json delivery cannot deploy") as refused:
        load_delivery({**cdk_context(), "delivery": delivery_settings})
    assert named in str(refused.value)


def test_the_delivery_settings_are_required():
    context = {k: v for k, v in cdk_context().items() if k != "delivery"}
    with pytest.raises(ConfigError, match="context.delivery"):
        load_delivery(context)


def test_the_delivery_app_refuses_a_bad_setting_by_name(tmp_path):
    """What `npx cdk --app '.venv/bin/python delivery.py' ...` runs, with cdk.json's context as the CLI passes it."""
    context = {**cdk_context(), "env": "dev", "delivery": {"githubRepository": "bad"}}
    result = subprocess.run([sys.executable, str(ROOT / "delivery.py")], capture_output=True, text=True, cwd=tmp_path,
                            env={**os.environ, "CDK_CONTEXT_JSON": json.dumps(context), "CDK_OUTDIR": str(tmp_path)})
    assert result.returncode != 0 and "delivery cannot deploy" in result.stderr and "githubRepository" in result.stderr


# --- with the application ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_user_pool_carries_the_tags_the_deploy_roles_condition_names(synthesized, env):
    """The black-box statement picks the user pool out by its project and environment tags (its id is the
    platform stack's, made after the delivery stack): the pool must carry them."""
    [(_, _, pool)] = synthesized[env].resources("AWS::Cognito::UserPool", "platform")
    assert {"project": "shopstream", "environment": env}.items() <= pool["Properties"]["UserPoolTags"].items()
