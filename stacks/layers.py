"""Lambda layers: the shared shopstream library, and third-party dependencies built without Docker.

The dependencies layer is built by pip for the Lambda platform (manylinux aarch64, CPython
3.14, wheels only), cached under .cache/ by the hash of the requirements file, so a synth
downloads the wheels once.

The platform stack publishes the layers and writes their version ARNs to SSM parameters;
service stacks read those at deploy time. A new layer version is a new ARN: as a CloudFormation
export it could never change while nine stacks import it ("Export ... cannot be updated as it
is in use"), so it is never exported (docs/decisions.md, 2026-11-29).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import aws_cdk as cdk
import jsii
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_ssm as ssm
from constructs import Construct

ROOT = Path(__file__).resolve().parents[1]
SHARED_LAYER_DIR = ROOT / "layers" / "shopstream"
DEPENDENCIES_DIR = ROOT / "layers" / "dependencies"
CACHE_DIR = ROOT / ".cache" / "layers"
RUNTIME = lambda_.Runtime.PYTHON_3_14
ARCHITECTURE = lambda_.Architecture.ARM_64
# Lambda's Python 3.14 runtime is Amazon Linux 2023 (glibc 2.34): any of these wheels runs there.
PIP_PLATFORMS = ("manylinux2014_aarch64", "manylinux_2_28_aarch64", "manylinux_2_34_aarch64")
PIP_PYTHON_VERSION = "3.14"
# The Lambda Python runtime ships these; leaving them out keeps the layer small.
PROVIDED_BY_RUNTIME = ("boto3", "botocore", "s3transfer")


SHARED_EXCLUDE = ["**/__pycache__", "**/*.pyc"]
LAYER_KINDS = ("dependencies", "shared")  # the order functions list them in


def _dependencies_digest(requirements: Path) -> str:
    return hashlib.sha256(
        requirements.read_bytes() + f"{PIP_PLATFORMS}-{PIP_PYTHON_VERSION}".encode()).hexdigest()[:16]


def layer_parameter_name(ssm_prefix: str, kind: str) -> str:
    return f"{ssm_prefix}/layers/{kind}"


def layers_fingerprint() -> str:
    """Changes exactly when a layer's content changes: published function versions depend on it."""
    shared = cdk.FileSystem.fingerprint(str(SHARED_LAYER_DIR), exclude=SHARED_EXCLUDE)
    return f"{_dependencies_digest(DEPENDENCIES_DIR / 'requirements.txt')}-{shared[:16]}"


def build_dependencies(requirements: Path, cache_dir: Path = CACHE_DIR) -> Path:
    """Install the requirements for the Lambda platform into a cached ``python/`` folder."""
    digest = _dependencies_digest(requirements)
    target = cache_dir / f"dependencies-{digest}"
    if (target / "python").is_dir():
        return target
    staging = cache_dir / f".staging-{digest}"
    shutil.rmtree(staging, ignore_errors=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-warn-conflicts", "--disable-pip-version-check",
         *(arg for platform in PIP_PLATFORMS for arg in ("--platform", platform)),
         "--implementation", "cp", "--python-version", PIP_PYTHON_VERSION,
         "--only-binary=:all:", "--target", str(staging / "python"), "-r", str(requirements)],
        check=True,
    )
    for pattern in PROVIDED_BY_RUNTIME:
        for path in (staging / "python").glob(f"{pattern}*"):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    staging.rename(target)
    return target


@jsii.implements(cdk.ILocalBundling)
class PipForLambdaPlatform:
    def __init__(self, requirements: Path):
        self.requirements = requirements

    def try_bundle(self, output_dir: str, *_options: object, **_keywords: object) -> bool:
        built = build_dependencies(self.requirements)
        shutil.copytree(built / "python", Path(output_dir) / "python", dirs_exist_ok=True)
        return True


class Layers(Construct):
    """Published by the platform stack. Old versions are retained: a service stack that rolls back
    goes back to the version it used before, which must still exist."""

    def __init__(self, scope: Construct, construct_id: str, *, ssm_prefix: str) -> None:
        super().__init__(scope, construct_id)
        self.shared = lambda_.LayerVersion(
            self,
            "Shared",
            code=lambda_.Code.from_asset(str(SHARED_LAYER_DIR), exclude=SHARED_EXCLUDE),
            removal_policy=cdk.RemovalPolicy.RETAIN,
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            description="shopstream shared library: events, catalog, consumer runtime, outbox",
        )
        requirements = DEPENDENCIES_DIR / "requirements.txt"
        self.dependencies = lambda_.LayerVersion(
            self,
            "Dependencies",
            code=lambda_.Code.from_asset(
                str(DEPENDENCIES_DIR),
                asset_hash_type=cdk.AssetHashType.SOURCE,
                bundling=cdk.BundlingOptions(
                    # Never pulled: local bundling always succeeds, so no Docker is needed.
                    image=cdk.DockerImage.from_registry("public.ecr.aws/sam/build-python3.14"),
                    local=PipForLambdaPlatform(requirements),
                ),
            ),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            description="shopstream third-party dependencies (Powertools, pydantic, confluent-kafka, MSK IAM signer, "
                        "cryptography)",
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        for kind, layer in (("dependencies", self.dependencies), ("shared", self.shared)):
            ssm.StringParameter(
                self, f"{kind.title()}Arn", parameter_name=layer_parameter_name(ssm_prefix, kind),
                string_value=layer.layer_version_arn,
                description=f"current version of the shopstream {kind} layer (read by the service stacks)")


def deployed_layers(scope: Construct, ssm_prefix: str) -> list[lambda_.ILayerVersion]:
    """The layer versions current when the stack deploys (resolved by CloudFormation from SSM)."""
    return [lambda_.LayerVersion.from_layer_version_arn(
        scope, f"{kind.title()}Layer",
        ssm.StringParameter.value_for_string_parameter(scope, layer_parameter_name(ssm_prefix, kind)))
        for kind in LAYER_KINDS]
