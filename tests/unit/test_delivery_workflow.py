"""The delivery workflow (.github/workflows/delivery.yml): it passes actionlint and zizmor as `make lint` runs them
(so `make test` catches a broken workflow even where lint was skipped), and it runs the train's stages in order
behind the right gates: a pull request is tested, synthesized for every environment and diffed against dev; main
deploys dev, runs the black-box suite there, promotes to staging and runs it again, then deploys prod once the
prod environment's reviewers approve. Only deploying jobs get an OIDC token; nothing else writes anything.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
WORKFLOW = WORKFLOWS / "delivery.yml"
BIN = Path(sys.executable).parent  # the venv's bin: actionlint, shellcheck, zizmor (requirements-dev.txt)
PINNED = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")
CONTEXT = json.loads((ROOT / "cdk.json").read_text())["context"]
ENVIRONMENTS = list(CONTEXT["environments"])
DELIVERY = CONTEXT["delivery"]
TRAIN = ["dev", "staging", "prod"]  # the order of promotion
OIDC_ACTION = "aws-actions/configure-aws-credentials"


@pytest.fixture(scope="module")
def workflow() -> dict:
    loaded = yaml.safe_load(WORKFLOW.read_text())
    loaded["on"] = loaded.pop(True)  # YAML 1.1 reads the key `on` as true
    return loaded


def _tool(name: str) -> str:
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{name} is missing from {BIN}: `make venv` installs requirements-dev.txt")
    return str(path)


def _steps(job: dict) -> list[dict]:
    return job.get("steps", [])


def _runs(job: dict) -> list[str]:
    return [step["run"] for step in _steps(job) if "run" in step]


def _uses(job: dict, action: str) -> list[dict]:
    return [step for step in _steps(job) if step.get("uses", "").split("@")[0] == action]


def _step_index(job: dict, command: str) -> int:
    [index] = [i for i, step in enumerate(_steps(job)) if command in step.get("run", "")]
    return index


# --- the linters -------------------------------------------------------------------------------------------------
def test_the_workflows_pass_actionlint_with_shellcheck():
    result = subprocess.run([_tool("actionlint"), "-shellcheck", _tool("shellcheck"), "-pyflakes=",
                             *sorted(str(p) for p in WORKFLOWS.glob("*.y*ml"))],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_workflows_pass_zizmor_offline():
    result = subprocess.run([_tool("zizmor"), "--offline", "--no-progress", "--format", "json", str(WORKFLOWS)],
                            capture_output=True, text=True, cwd=ROOT)
    findings = json.loads(result.stdout or "[]")
    assert findings == [] and result.returncode == 0, json.dumps(findings, indent=1)[:4000] + result.stderr


def test_actionlint_knows_the_configuration_variables_the_workflow_reads(workflow):
    declared = set(yaml.safe_load((ROOT / ".github" / "actionlint.yaml").read_text())["config-variables"])
    assert declared == set(re.findall(r"vars\.([A-Z_]+)", WORKFLOW.read_text())) == {"AWS_ROLE_ARN",
                                                                                     "AWS_DIFF_ROLE_ARN"}


# --- supply chain and permissions --------------------------------------------------------------------------------
def test_every_action_is_pinned_to_a_full_commit_with_its_release_named():
    for line in WORKFLOW.read_text().splitlines():
        if "uses:" in line:
            reference = line.split("uses:", 1)[1].split("#")[0].strip()
            assert PINNED.match(reference), line
            assert re.search(r"#\s*v\d+\.\d+\.\d+\s*$", line), f"name the release the commit is: {line}"


def test_the_same_action_is_the_same_commit_everywhere(workflow):
    pins: dict[str, set[str]] = {}
    for job in workflow["jobs"].values():
        for step in _steps(job):
            if "uses" in step:
                action, commit = step["uses"].split("@")
                pins.setdefault(action, set()).add(commit)
    assert all(len(commits) == 1 for commits in pins.values()), pins


def test_checkout_never_leaves_the_token_behind(workflow):
    checkouts = [step for job in workflow["jobs"].values() for step in _uses(job, "actions/checkout")]
    assert checkouts and all(step["with"]["persist-credentials"] is False for step in checkouts)


def test_permissions_are_none_by_default_and_minimal_per_job(workflow):
    assert workflow["permissions"] == {}
    oidc_jobs = set()
    for name, job in workflow["jobs"].items():
        permissions = job["permissions"]  # every job says what it needs
        assert set(permissions) <= {"contents", "id-token"}, name
        assert permissions.get("contents", "read") == "read", name
        if permissions.get("id-token") == "write":
            oidc_jobs.add(name)
            assert _uses(job, OIDC_ACTION), f"{name} asks for an OIDC token it never uses"
        else:
            assert "id-token" not in permissions and not _uses(job, OIDC_ACTION), name
    assert oidc_jobs == {"diff", *TRAIN}


def test_no_expression_is_expanded_inside_a_script(workflow):
    """Template injection: values reach scripts through the environment, never pasted into the script."""
    for name, job in workflow["jobs"].items():
        for script in _runs(job):
            assert "${{" not in script, (name, script)


def test_no_stored_aws_keys(workflow):
    text = WORKFLOW.read_text()
    assert "secrets." not in text and "aws-access-key-id" not in text and "aws-secret-access-key" not in text
    for job in workflow["jobs"].values():
        for step in _uses(job, OIDC_ACTION):
            assert step["with"]["role-to-assume"].startswith("${{ vars.AWS_"), step


# --- the train ---------------------------------------------------------------------------------------------------
def test_it_runs_on_pull_requests_and_on_main(workflow):
    assert workflow["on"] == {"pull_request": {"branches": ["main"]}, "push": {"branches": ["main"]}}
    assert workflow["defaults"]["run"]["shell"] == "bash"  # bash -eo pipefail: a failing command fails its step


def test_a_pull_request_is_tested_synthesized_everywhere_and_diffed_against_dev(workflow):
    jobs = workflow["jobs"]
    assert "make test" in _runs(jobs["test"])
    synth = jobs["synth"]
    assert synth["strategy"]["matrix"]["environment"] == ENVIRONMENTS and synth["strategy"]["fail-fast"] is False
    assert synth["env"]["ENVIRONMENT"] == "${{ matrix.environment }}"
    assert 'make synth ENV="$ENVIRONMENT"' in _runs(synth)
    assert any("delivery.py" in script and "synth" in script for script in _runs(synth))
    for name in ("test", "synth"):
        assert "if" not in jobs[name] and "needs" not in jobs[name]  # on both events, first
    diff = jobs["diff"]
    assert diff["if"].startswith("github.event_name == 'pull_request'")
    assert "github.event.pull_request.head.repo.full_name == github.repository" in diff["if"]
    assert diff["env"]["ENVIRONMENT"] == DELIVERY["pullRequestDiffEnvironment"] == "dev"
    assert "environment" not in diff  # a pull request's token is repo:...:pull_request: the diff role's only
    [oidc] = _uses(diff, OIDC_ACTION)
    assert oidc["with"]["role-to-assume"] == "${{ vars.AWS_DIFF_ROLE_ARN }}"
    script = next(s for s in _runs(diff) if "make diff" in s)
    assert 'make diff ENV="$ENVIRONMENT"' in script and "GITHUB_STEP_SUMMARY" in script and 'exit "$status"' in script


def test_main_deploys_dev_then_staging_then_prod_each_after_the_one_before(workflow):
    jobs = workflow["jobs"]
    assert jobs["dev"]["needs"] == ["test", "synth"]
    for before, after in zip(TRAIN, TRAIN[1:], strict=False):
        assert jobs[after]["needs"] == [before], after
    for env in TRAIN:
        job = jobs[env]
        assert job["if"] == "github.event_name == 'push' && github.ref == 'refs/heads/main'", env
        assert job["environment"] == {"name": env}, env  # its token's subject: repo:...:environment:<env>
        assert job["env"]["ENVIRONMENT"] == env
        assert job["concurrency"] == {"group": f"shopstream-deploy-{env}", "cancel-in-progress": False}
        [oidc] = _uses(job, OIDC_ACTION)
        assert oidc["with"]["role-to-assume"] == "${{ vars.AWS_ROLE_ARN }}"  # the environment's variable
        assert f"shopstream-{env}-" in oidc["with"]["role-session-name"]
        deploy = _step_index(job, "npx cdk deploy --all")
        assert _steps(job)[deploy]["run"] == 'npx cdk deploy --all -c env="$ENVIRONMENT" --require-approval never --ci'
        assert _steps(job).index(oidc) < deploy


def test_the_black_box_suite_runs_after_each_deploy_where_cdk_json_says(workflow):
    jobs = workflow["jobs"]
    tested = [env for env in TRAIN if any("make e2e" in s for s in _runs(jobs[env]))]
    assert tested == DELIVERY["blackBoxEnvironments"] == ["dev", "staging"]
    for env in tested:
        job = jobs[env]
        assert _step_index(job, 'make e2e ENV="$ENVIRONMENT"') == len(_steps(job)) - 1  # after the deploy, last
        assert _step_index(job, "npx cdk deploy") < _step_index(job, "make e2e")


def test_prod_waits_for_its_environments_approval_after_staging_passed(workflow):
    """The approval is the prod environment's required reviewers (a GitHub setting, docs/deploy.md): the job
    names the environment, so it waits for them before it starts or gets a token."""
    prod = workflow["jobs"]["prod"]
    assert prod["environment"]["name"] == "prod" and prod["needs"] == ["staging"]
    assert not any("make e2e" in s for s in _runs(prod))


def test_one_train_at_a_time_and_a_newer_pull_request_push_cancels_the_older(workflow):
    concurrency = workflow["concurrency"]
    assert concurrency["group"] == ("${{ github.workflow }}-${{ github.event_name == 'push' && 'train' "
                                    "|| github.ref }}")
    assert concurrency["cancel-in-progress"] == "${{ github.event_name == 'pull_request' }}"


def test_the_train_job_always_reports_where_it_stopped(workflow):
    jobs = workflow["jobs"]
    train = jobs["train"]
    assert train["if"] == "always()" and train["permissions"] == {}
    assert set(train["needs"]) == set(jobs) - {"train"}
    [step] = _steps(train)
    for name in jobs:
        if name != "train":
            assert step["env"][name.upper()] == f"${{{{ needs.{name}.result }}}}"
    assert "the train stopped at" in step["run"] and "exit 1" in step["run"]


@pytest.mark.parametrize(("results", "stopped"), [
    ({}, None),
    ({"TEST": "failure"}, "make test (failure)"),
    ({"DEV": "failure", "STAGING": "skipped", "PROD": "skipped"}, "dev (deploy, black-box suite) (failure)"),
    ({"STAGING": "failure", "PROD": "skipped"}, "staging (deploy, black-box suite) (failure)"),
    ({"PROD": "cancelled"}, "prod (approval, deploy) (cancelled)"),  # a rejected approval
])
def test_the_train_job_names_the_stage_that_failed(workflow, tmp_path, results, stopped):
    step = _steps(workflow["jobs"]["train"])[0]
    summary = tmp_path / "summary.md"
    env = {"EVENT": "push", "GITHUB_STEP_SUMMARY": str(summary), "PATH": "/usr/bin:/bin",
           **dict.fromkeys(("TEST", "SYNTH", "DEV", "STAGING", "PROD"), "success"), "DIFF": "skipped", **results}
    result = subprocess.run(["bash", "-eo", "pipefail", "-c", step["run"]], env=env, capture_output=True, text=True)
    if stopped is None:
        assert result.returncode == 0, result.stdout + result.stderr
    else:
        assert result.returncode == 1 and f"::error::the train stopped at {stopped}" in result.stdout, result.stdout
        assert f"The train stopped at {stopped}." in summary.read_text()


def test_a_fork_pull_request_without_a_diff_passes_the_train_job(workflow, tmp_path):
    step = _steps(workflow["jobs"]["train"])[0]
    env = {"EVENT": "pull_request", "GITHUB_STEP_SUMMARY": str(tmp_path / "s.md"), "PATH": "/usr/bin:/bin",
           "TEST": "success", "SYNTH": "success", "DIFF": "skipped", "DEV": "skipped", "STAGING": "skipped",
           "PROD": "skipped"}
    assert subprocess.run(["bash", "-eo", "pipefail", "-c", step["run"]], env=env, capture_output=True).returncode == 0
    env["DIFF"] = "failure"
    assert subprocess.run(["bash", "-eo", "pipefail", "-c", step["run"]], env=env, capture_output=True).returncode == 1


def test_the_make_targets_the_workflow_runs_exist():
    makefile = (ROOT / "Makefile").read_text()
    for target in ("test", "synth", "diff", "e2e", "venv", "node"):
        assert re.search(rf"^{target}:", makefile, re.MULTILINE), target
