"""Create in moto the data resources template.yaml declares, and name them for the code.

Tables and buckets are created from the template's own KeySchema/AttributeDefinitions, and
each function variable that is a !Ref to one of them (CIRRUS_KEYS_TABLE: !Ref KeysTable) is
set to the local name, so the local stack cannot drift from what `sam deploy` creates.
"""

from __future__ import annotations

import contextlib
from typing import Any

import boto3

from cirrus_local.template import function_env_refs, resources


def physical_name(prefix: str, logical_id: str) -> str:
    return f"{prefix}-{logical_id}".lower()


def create_resources(prefix: str = "cirrus-local", region: str = "us-east-1") -> dict[str, str]:
    """Create tables and buckets; return the environment that names them."""
    names: dict[str, str] = {}
    dynamodb = boto3.client("dynamodb", region_name=region)
    for logical_id, props in resources("AWS::DynamoDB::Table").items():
        name = physical_name(prefix, logical_id)
        args: dict[str, Any] = {
            "TableName": name,
            "KeySchema": props["KeySchema"],
            "AttributeDefinitions": props["AttributeDefinitions"],
            "BillingMode": "PAY_PER_REQUEST",
        }
        if props.get("GlobalSecondaryIndexes"):
            args["GlobalSecondaryIndexes"] = [
                {k: v for k, v in index.items() if k != "ProvisionedThroughput"}
                for index in props["GlobalSecondaryIndexes"]
            ]
        # Already there when a restarted stack meets the same moto.
        with contextlib.suppress(dynamodb.exceptions.ResourceInUseException):
            dynamodb.create_table(**args)
        ttl = props.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled") is True:
            dynamodb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
            )
        names[logical_id] = name
    s3 = boto3.client("s3", region_name=region)
    for logical_id in resources("AWS::S3::Bucket"):
        name = physical_name(prefix, logical_id)
        with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
            s3.create_bucket(Bucket=name)
        names[logical_id] = name
    env: dict[str, str] = {}
    for function_id in ("ApiFunction", "ModelFunction", "AuthorizerFunction"):
        for var, logical_id in function_env_refs(function_id).items():
            if logical_id in names:
                env[var] = names[logical_id]
    return env
