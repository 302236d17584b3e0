"""What template.yaml promises, checked on the template and on its translated form."""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from cirrus_common import settings
from tests.iac.conftest import ROOT

HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}
EXPECTED_ROUTES = {
    ("post", "/v1/chat/completions"),
    ("post", "/v1/completions"),
    ("post", "/v1/embeddings"),
    ("get", "/v1/models"),
    ("get", "/v1/models/{id+}"),
    ("get", "/v1/jobs/{id}"),
    ("post", "/chat/completions"),
    ("post", "/completions"),
    ("post", "/embeddings"),
    ("get", "/models"),
    ("get", "/models/{id+}"),
    ("get", "/jobs/{id}"),
    ("get", "/health"),
}
PUBLIC_ROUTES = {("get", "/health")}
# Names the CLI reads on an operator's machine, never set on a function.
CLI_ONLY_ENV = {settings.ENV_USAGE_PLAN_ID}


def resources_of(template: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == type_}


def functions(translated: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return resources_of(translated, "AWS::Lambda::Function")


def walk(node: Any) -> Iterator[Any]:
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def identity_statements(translated: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every statement of every IAM identity policy (roles' inline policies, IAM policies)."""
    for rid, res in translated["Resources"].items():
        props = res.get("Properties", {})
        docs: list[Any] = []
        if res["Type"] == "AWS::IAM::Role":
            docs = [p["PolicyDocument"] for p in props.get("Policies", [])]
        elif res["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            docs = [props["PolicyDocument"]]
        for doc in docs:
            for statement in walk(doc.get("Statement", [])):
                if isinstance(statement, dict) and "Effect" in statement:
                    yield rid, statement


# ------------------------------------------------------------------ functions and roles


def test_the_three_functions_exist(translated: dict[str, Any]) -> None:
    assert {"ApiFunction", "ModelFunction", "AuthorizerFunction"} <= set(functions(translated))


def test_each_function_has_its_own_role(translated: dict[str, Any]) -> None:
    roles = {}
    for fid, fn in functions(translated).items():
        role = fn["Properties"]["Role"]
        assert set(role) == {"Fn::GetAtt"}, f"{fid} must use a role from this stack"
        roles[fid] = role["Fn::GetAtt"][0]
    assert len(set(roles.values())) == len(roles), roles
    for fid, role in roles.items():
        assert translated["Resources"][role]["Type"] == "AWS::IAM::Role"
        trust = translated["Resources"][role]["Properties"]["AssumeRolePolicyDocument"]
        principals = [s["Principal"]["Service"] for s in trust["Statement"]]
        assert principals == [["lambda.amazonaws.com"]], (fid, principals)


def test_no_wildcard_action_on_wildcard_resource(translated: dict[str, Any]) -> None:
    offenders = []
    for rid, statement in identity_statements(translated):
        if statement["Effect"] != "Allow":
            continue
        actions = as_list(statement.get("Action", []))
        resources = as_list(statement.get("Resource", []))
        assert "NotAction" not in statement and "NotResource" not in statement, rid
        wild_action = any(isinstance(a, str) and (a == "*" or a.endswith(":*")) for a in actions)
        wild_resource = "*" in resources
        if "*" in actions or (wild_action and wild_resource):
            offenders.append((rid, statement.get("Sid"), actions, resources))
    assert offenders == []


def test_star_resources_are_only_for_actions_without_resource_scoping(
    translated: dict[str, Any],
) -> None:
    # These actions have no resource-level permissions in IAM; anything else must be scoped.
    allowed = {"ecr:GetAuthorizationToken", "cloudwatch:PutMetricData"}
    for rid, statement in identity_statements(translated):
        if "*" in as_list(statement.get("Resource", [])):
            assert set(as_list(statement["Action"])) <= allowed, (rid, statement)


def test_managed_policies_are_only_sams_xray_and_logging(translated: dict[str, Any]) -> None:
    for rid, role in resources_of(translated, "AWS::IAM::Role").items():
        for arn in role["Properties"].get("ManagedPolicyArns", []):
            text = str(arn)
            assert text.endswith(("AWSLambdaBasicExecutionRole", "AWSXrayWriteOnlyAccess")), (
                rid,
                arn,
            )


def test_api_function_permissions_are_scoped(translated: dict[str, Any]) -> None:
    role = translated["Resources"]["ApiFunctionRole"]["Properties"]
    statements = [s for p in role["Policies"] for s in walk(p["PolicyDocument"]["Statement"])]
    by_sid = {s["Sid"]: s for s in statements if isinstance(s, dict) and "Sid" in s}
    assert by_sid["InvokeModelFunction"]["Action"] == "lambda:InvokeFunction"
    assert by_sid["JobObjects"]["Resource"] == {"Fn::Sub": "${JobsBucket.Arn}/jobs/*"}
    assert by_sid["InvokeRealtimeEndpoint"]["Resource"] == {"Ref": "SageMakerEndpoint"}
    assert by_sid["InvokeAsyncEndpoint"]["Action"] == "sagemaker:InvokeEndpointAsync"


def test_tracing_is_on(translated: dict[str, Any]) -> None:
    for fid, fn in functions(translated).items():
        assert fn["Properties"]["TracingConfig"] == {"Mode": "Active"}, fid
    for sid, stage in resources_of(translated, "AWS::ApiGateway::Stage").items():
        assert stage["Properties"]["TracingEnabled"] is True, sid


def test_reserved_concurrency_is_set(translated: dict[str, Any]) -> None:
    for fid, fn in functions(translated).items():
        assert "ReservedConcurrentExecutions" in fn["Properties"], fid


def test_every_log_group_has_retention_and_every_function_uses_one(
    translated: dict[str, Any],
) -> None:
    groups = resources_of(translated, "AWS::Logs::LogGroup")
    assert groups
    for gid, group in groups.items():
        assert "RetentionInDays" in group["Properties"], gid
        assert "KmsKeyId" in group["Properties"], gid
    for fid, fn in functions(translated).items():
        # Without LoggingConfig, Lambda would create /aws/lambda/<name> that never expires.
        ref = fn["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        assert ref in groups, fid
    stage = translated["Resources"]["ApiStage"]["Properties"]
    assert stage["AccessLogSetting"]["DestinationArn"]["Fn::GetAtt"][0] in groups


# ------------------------------------------------------------------ API


def operations(translated: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    body = translated["Resources"]["Api"]["Properties"]["Body"]
    return {
        (method, path): op
        for path, item in body["paths"].items()
        for method, op in item.items()
        if method in HTTP_METHODS or method == "x-amazon-apigateway-any-method"
    }


def test_routes_are_exactly_the_openai_surface(translated: dict[str, Any]) -> None:
    assert set(operations(translated)) == EXPECTED_ROUTES


def test_every_operation_but_health_requires_the_authorizer(translated: dict[str, Any]) -> None:
    body = translated["Resources"]["Api"]["Properties"]["Body"]
    scheme = body["components"]["securitySchemes"]["KeyAuthorizer"]
    authorizer = scheme["x-amazon-apigateway-authorizer"]
    assert authorizer["type"] == "request"
    assert authorizer["identitySource"] == "method.request.header.Authorization"
    assert authorizer["authorizerResultTtlInSeconds"] > 0
    assert "AuthorizerFunction" in str(authorizer["authorizerUri"])
    for route, op in operations(translated).items():
        names = {name for requirement in op.get("security", []) for name in requirement}
        if route in PUBLIC_ROUTES:
            assert names == set(), route
        else:
            # The authorizer, and the usage plan's key (taken from the authorizer's answer).
            assert names == {"KeyAuthorizer", "api_key"}, route


def test_usage_plans_take_the_key_from_the_authorizer(translated: dict[str, Any]) -> None:
    api = translated["Resources"]["Api"]["Properties"]
    assert api["ApiKeySourceType"] == "AUTHORIZER"
    plan = translated["Resources"]["UsagePlan"]["Properties"]
    assert plan["ApiStages"] == [{"ApiId": {"Ref": "Api"}, "Stage": {"Ref": "ApiStage"}}]
    assert {"Throttle", "Quota"} <= set(plan)


def test_stage_throttling_and_regional_endpoint(translated: dict[str, Any]) -> None:
    api = translated["Resources"]["Api"]["Properties"]
    assert api["EndpointConfiguration"] == {"Types": ["REGIONAL"]}
    (setting,) = translated["Resources"]["ApiStage"]["Properties"]["MethodSettings"]
    assert {"ThrottlingRateLimit", "ThrottlingBurstLimit"} <= set(setting)


def test_gateway_responses_speak_openai_errors(translated: dict[str, Any]) -> None:
    body = translated["Resources"]["Api"]["Properties"]["Body"]
    responses = body["x-amazon-apigateway-gateway-responses"]
    required = {
        "UNAUTHORIZED": "401",
        "ACCESS_DENIED": "403",
        "THROTTLED": "429",
        "QUOTA_EXCEEDED": "429",
        "REQUEST_TOO_LARGE": "413",
        "INTEGRATION_TIMEOUT": "504",
        "DEFAULT_5XX": None,
        "DEFAULT_4XX": None,
    }
    for name, status in required.items():
        assert name in responses, name
        if status:
            assert str(responses[name]["statusCode"]) == status, name
    for name, response in responses.items():
        template = response["responseTemplates"]["application/json"]
        # Valid JSON once API Gateway substitutes its $context variables.
        filled = re.sub(r"\$context\.[A-Za-z.]+", "x", template)
        error = json.loads(filled)["error"]
        assert set(error) == {"message", "type", "param", "code"}, name


# ------------------------------------------------------------------ environment


def env_of(translated: dict[str, Any]) -> dict[str, set[str]]:
    return {
        fid: set(fn["Properties"].get("Environment", {}).get("Variables", {}))
        for fid, fn in functions(translated).items()
    }


def test_env_names_come_from_settings(translated: dict[str, Any]) -> None:
    known = set(settings.ALL_ENV_NAMES)
    for fid, names in env_of(translated).items():
        assert names <= known, (fid, sorted(names - known))


def test_every_name_the_code_reads_is_set_somewhere(translated: dict[str, Any]) -> None:
    needed = set(settings.ALL_ENV_NAMES) - set(settings.POWERTOOLS_ENV) - CLI_ONLY_ENV
    set_somewhere = set().union(*env_of(translated).values())
    assert needed - set_somewhere == set()


def test_functions_get_the_names_they_need(translated: dict[str, Any]) -> None:
    env = env_of(translated)
    assert {
        settings.ENV_STAGE,
        settings.ENV_MODEL_FUNCTION,
        settings.ENV_SAGEMAKER_ENDPOINT,
        settings.ENV_SAGEMAKER_ASYNC_ENDPOINT,
        settings.ENV_JOBS_BUCKET,
        settings.ENV_KEYS_TABLE,
        settings.ENV_IDEMPOTENCY_TABLE,
        settings.ENV_MAX_BODY_BYTES,
        "POWERTOOLS_SERVICE_NAME",
    } <= env["ApiFunction"]
    assert {settings.ENV_KEYS_TABLE, "POWERTOOLS_SERVICE_NAME"} <= env["AuthorizerFunction"]
    assert {settings.ENV_MODELS, settings.ENV_MODEL_CACHE_DIR} <= env["ModelFunction"]


# ------------------------------------------------------------------ names others rely on


def test_fixed_logical_ids(sam_template: dict[str, Any]) -> None:
    types = {k: v["Type"] for k, v in sam_template["Resources"].items()}
    assert types["Api"] == "AWS::Serverless::Api"
    assert types["CommonLayer"] == "AWS::Serverless::LayerVersion"
    for name in ("KeysTable", "IdempotencyTable"):
        assert types[name] == "AWS::DynamoDB::Table"
    assert types["JobsBucket"] == "AWS::S3::Bucket"
    assert types["SageMakerModel"] == "AWS::SageMaker::Model"
    assert types["SageMakerEndpointConfig"] == "AWS::SageMaker::EndpointConfig"
    assert types["SageMakerEndpoint"] == "AWS::SageMaker::Endpoint"
    assert types["AsyncSuccessTopic"] == types["AsyncErrorTopic"] == "AWS::SNS::Topic"
    assert "AWS::KMS::Key" in types.values()


def test_function_packaging(sam_template: dict[str, Any]) -> None:
    res = sam_template["Resources"]
    api, model, authz = (
        res[k]["Properties"] for k in ("ApiFunction", "ModelFunction", "AuthorizerFunction")
    )
    assert (api["CodeUri"], api["Handler"], api["Runtime"]) == (
        "functions/api/",
        "cirrus_api.app.handler",
        "python3.12",
    )
    assert (authz["CodeUri"], authz["Handler"]) == (
        "functions/authorizer/",
        "cirrus_authorizer.app.handler",
    )
    for props in (api, authz):
        assert props["Layers"] == [{"Ref": "CommonLayer"}]
    assert sam_template["Globals"]["Function"]["Architectures"] == ["arm64"]
    assert model["PackageType"] == "Image"
    meta = res["ModelFunction"]["Metadata"]
    assert (meta["Dockerfile"], meta["DockerContext"]) == ("functions/model/Dockerfile", ".")
    assert "DockerTag" in meta
    layer = res["CommonLayer"]
    assert layer["Properties"]["ContentUri"] == "layers/common/"
    assert layer["Metadata"]["BuildMethod"] == "python3.12"


def test_tables_are_literal_for_the_local_stack(sam_template: dict[str, Any]) -> None:
    res = sam_template["Resources"]
    expected = {"KeysTable": ("key_hash", "expires_at"), "IdempotencyTable": ("id", "expiration")}
    for tid, (key, ttl) in expected.items():
        props = res[tid]["Properties"]
        assert props["KeySchema"] == [{"AttributeName": key, "KeyType": "HASH"}]
        assert props["AttributeDefinitions"] == [{"AttributeName": key, "AttributeType": "S"}]
        assert props["TimeToLiveSpecification"] == {"AttributeName": ttl, "Enabled": True}
        assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
        assert props["SSESpecification"]["SSEEnabled"] is True


def test_bucket_is_private_encrypted_tls_only_and_expires_jobs(
    sam_template: dict[str, Any],
) -> None:
    res = sam_template["Resources"]
    bucket = res["JobsBucket"]["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    rule = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert any(r.get("Prefix") == "jobs/" for r in bucket["LifecycleConfiguration"]["Rules"])
    (deny,) = res["JobsBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_key_rotates(sam_template: dict[str, Any]) -> None:
    for key in resources_of(sam_template, "AWS::KMS::Key").values():
        assert key["Properties"]["EnableKeyRotation"] is True


def test_sagemaker_is_one_parameter_away(sam_template: dict[str, Any]) -> None:
    assert sam_template["Parameters"]["SageMakerMode"]["Default"] == "off"
    gpu_types = (
        "AWS::SageMaker::Model",
        "AWS::SageMaker::EndpointConfig",
        "AWS::SageMaker::Endpoint",
    )
    for rid, res in sam_template["Resources"].items():
        if res["Type"] in gpu_types or rid.startswith("SageMaker"):
            assert res.get("Condition") in {
                "HasSageMaker",
                "HasRealtimeEndpoint",
                "HasAsyncEndpoint",
            }, rid
    async_config = sam_template["Resources"]["SageMakerAsyncEndpointConfig"]["Properties"]
    output = async_config["AsyncInferenceConfig"]["OutputConfig"]
    assert set(output["NotificationConfig"]) == {"SuccessTopic", "ErrorTopic"}
    assert "KmsKeyId" in output
    assert (
        sam_template["Resources"]["SageMakerAsyncScalableTarget"]["Properties"]["MinCapacity"] == 0
    )


def test_image_registry_matches_infra_module(sam_template: dict[str, Any]) -> None:
    spec = importlib.util.spec_from_file_location(
        "cirrus_sagemaker_images", ROOT / "infra" / "sagemaker" / "images.py"
    )
    assert spec and spec.loader
    images = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(images)
    mapping = {r: v["Account"] for r, v in sam_template["Mappings"]["DlcRegistry"].items()}
    assert mapping == images.DLC_ACCOUNTS
    tag = sam_template["Parameters"]["SageMakerTgiImageTag"]["Default"]
    assert tag == images.TGI_DEFAULT_TAG
    env = sam_template["Resources"]["SageMakerModel"]["Properties"]["PrimaryContainer"][
        "Environment"
    ]
    assert set(env) == set(images.TGI_ENV_NAMES)


@pytest.mark.parametrize(
    "output",
    [
        "ApiUrl",
        "ApiFunctionName",
        "ModelFunctionName",
        "AuthorizerFunctionName",
        "SageMakerEndpointName",
        "KeysTableName",
        "IdempotencyTableName",
        "JobsBucketName",
        "UsagePlanId",
    ],
)
def test_outputs(sam_template: dict[str, Any], output: str) -> None:
    assert output in sam_template["Outputs"]


def test_alarms_and_dashboard(sam_template: dict[str, Any]) -> None:
    alarms = set(resources_of(sam_template, "AWS::CloudWatch::Alarm"))
    assert {
        "Api5xxRateAlarm",
        "ApiLatencyP99Alarm",
        "ApiFunctionThrottlesAlarm",
        "ModelFunctionThrottlesAlarm",
        "SageMakerInvocationErrorsAlarm",
        "SageMakerAsyncBacklogAlarm",
    } <= alarms
    assert resources_of(sam_template, "AWS::CloudWatch::Dashboard")
