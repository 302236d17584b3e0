"""Smoke deploy: the translated template into moto's CloudFormation.

moto cannot create a REST API from an OpenAPI `Body` (nor its stage, deployment, usage plan or
the Lambda permissions that point at it), so every AWS::ApiGateway::* resource, and whatever
refers to one, is left out here; the API's shape is checked statically in test_template.py.
What remains - KMS, tables, bucket, topics, log groups, roles, layer, the three functions, the
alias and its scaling, alarms and dashboard - must deploy, and the deployed tables must work
with the same KeyStore code the authorizer runs. moto 5.2 accepts, without creating them,
AWS::CloudWatch::Alarm, AWS::S3::BucketPolicy and AWS::Lambda::Alias (it warns; we silence it).
"""

from __future__ import annotations

import copy
import io
import json
import re
import zipfile
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from cirrus_common.keys import KeyStore

PLACEHOLDER_BUCKET = "cirrus-translate-placeholder"  # as in translate.py


def references(node: Any) -> set[str]:
    """Logical ids a piece of template refers to (Ref, GetAtt, ${...} in Sub)."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                target = value[0] if isinstance(value, list) else str(value).split(".")[0]
                found.add(target)
            elif key == "Fn::Sub":
                text = value[0] if isinstance(value, list) else value
                found |= {m.split(".")[0] for m in re.findall(r"\$\{([^}!]+)\}", text)}
            found |= references(value)
    elif isinstance(node, list):
        for value in node:
            found |= references(value)
    return found


def without_rest_api(template: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    """The template less every API Gateway resource and, transitively, what depends on one."""
    out = copy.deepcopy(template)
    resources = out["Resources"]
    removed = {k for k, v in resources.items() if v["Type"].startswith("AWS::ApiGateway::")}
    while True:
        dependants = {
            k
            for k, v in resources.items()
            if k not in removed and (references(v) | set(v.get("DependsOn", []))) & removed
        }
        if not dependants:
            break
        removed |= dependants
    for rid in removed:
        del resources[rid]
    out["Outputs"] = {
        k: v for k, v in out.get("Outputs", {}).items() if not references(v) & removed
    }
    return out, removed


def placeholder_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("placeholder.py", "")
    return buffer.getvalue()


@pytest.fixture
def aws(fake_aws: None) -> Iterator[None]:
    with mock_aws():
        yield


def test_rest_api_is_all_that_is_left_out(translated: dict[str, Any]) -> None:
    _, removed = without_rest_api(translated)
    types = {translated["Resources"][r]["Type"] for r in removed}
    assert types == {
        "AWS::ApiGateway::RestApi",
        "AWS::ApiGateway::Stage",
        "AWS::ApiGateway::Deployment",
        "AWS::ApiGateway::UsagePlan",
        "AWS::Lambda::Permission",
    }


def deploy(template: dict[str, Any], parameters: dict[str, str]) -> dict[str, str]:
    """Create the stack in moto; returns logical id -> physical id."""
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=PLACEHOLDER_BUCKET)
    for node in template["Resources"].values():
        code = node["Properties"].get("Code") or node["Properties"].get("Content") or {}
        if "S3Key" in code:
            s3.put_object(Bucket=PLACEHOLDER_BUCKET, Key=code["S3Key"], Body=placeholder_zip())
    cfn = boto3.client("cloudformation")
    cfn.create_stack(
        StackName="cirrus-smoke",
        TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    stack = cfn.describe_stacks(StackName="cirrus-smoke")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
    summaries = cfn.list_stack_resources(StackName="cirrus-smoke")["StackResourceSummaries"]
    physical = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in summaries}
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    assert outputs["KeysTableName"] == physical["KeysTable"]
    assert outputs["JobsBucketName"] == physical["JobsBucket"]
    return physical


@pytest.mark.filterwarnings("ignore:Tried to parse AWS::")
def test_smoke_deploy_cpu_only(aws: None, translated: dict[str, Any]) -> None:
    template, _ = without_rest_api(translated)
    physical = deploy(template, {"Stage": "dev"})
    # SageMaker is off by default: a CPU-only deploy creates none of it.
    assert not [r for r in physical if r.startswith("SageMaker")]

    dynamodb = boto3.client("dynamodb")
    keys = dynamodb.describe_table(TableName=physical["KeysTable"])["Table"]
    assert keys["KeySchema"] == [{"AttributeName": "key_hash", "KeyType": "HASH"}]
    idem = dynamodb.describe_table(TableName=physical["IdempotencyTable"])["Table"]
    assert idem["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]

    store = KeyStore(physical["KeysTable"])
    plaintext, record = store.create("smoke")
    assert store.verify(plaintext) == record

    lam = boto3.client("lambda")
    api = lam.get_function(FunctionName=physical["ApiFunction"])["Configuration"]
    assert api["Runtime"] == "python3.12"  # (moto drops Architectures; test_template checks it)
    env = api["Environment"]["Variables"]
    assert env["CIRRUS_KEYS_TABLE"] == physical["KeysTable"]
    assert env["CIRRUS_JOBS_BUCKET"] == physical["JobsBucket"]
    assert env["CIRRUS_SAGEMAKER_ENDPOINT_NAME"] == ""
    authz = lam.get_function(FunctionName=physical["AuthorizerFunction"])["Configuration"]
    assert authz["Environment"]["Variables"]["CIRRUS_KEYS_TABLE"] == physical["KeysTable"]
    model = lam.get_function(FunctionName=physical["ModelFunction"])["Configuration"]
    # (moto records every function as Zip; PackageType is checked in test_template.)
    assert model["Environment"]["Variables"]["CIRRUS_MODEL_CACHE_DIR"] == "/tmp/cirrus-models"


@pytest.mark.filterwarnings("ignore:Tried to parse AWS::")
def test_smoke_deploy_with_both_gpu_endpoints(aws: None, translated: dict[str, Any]) -> None:
    template, _ = without_rest_api(translated)
    # moto's SageMaker knows an older instance list; g4dn.xlarge is in both.
    physical = deploy(
        template,
        {"SageMakerMode": "both", "SageMakerInstanceType": "ml.g4dn.xlarge"},
    )
    endpoints = {e["EndpointArn"] for e in boto3.client("sagemaker").list_endpoints()["Endpoints"]}
    assert {physical["SageMakerEndpoint"], physical["SageMakerAsyncEndpoint"]} == endpoints
    env = boto3.client("lambda").get_function(FunctionName=physical["ApiFunction"])[
        "Configuration"
    ]["Environment"]["Variables"]
    assert env["CIRRUS_SAGEMAKER_ENDPOINT_NAME"]
    assert env["CIRRUS_SAGEMAKER_ASYNC_ENDPOINT_NAME"]
