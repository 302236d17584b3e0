"""Translate template.yaml to plain CloudFormation with aws-sam-translator, offline.

Run with the tools interpreter (.venv-tools/bin/python), which has aws-sam-translator and
cfn-lint's YAML loader; prints the translated template as JSON on stdout. The managed-policy
map is given explicitly so that no IAM call is made.

    .venv-tools/bin/python tests/iac/translate.py template.yaml [Key=Value ...]
    .venv-tools/bin/python tests/iac/translate.py --raw template.yaml   # parsed, untranslated
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

# These live in .venv-tools (this script runs there), not in the app venv that type-checks it.
from cfnlint.decode import decode  # type: ignore[import-untyped, unused-ignore]
from samtranslator.parser.parser import Parser  # type: ignore[import-not-found, unused-ignore]
from samtranslator.translator.translator import (  # type: ignore[import-not-found, unused-ignore]
    Translator,
)

# Every AWS managed policy SAM may attach to a function role in this template.
MANAGED_POLICIES = {
    "AWSLambdaBasicExecutionRole": (
        "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
    ),
    "AWSXrayWriteOnlyAccess": "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
    "AWSXRayDaemonWriteAccess": "arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess",
}


PLACEHOLDER_BUCKET = "cirrus-translate-placeholder"
PLACEHOLDER_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/cirrus-model:translate"


def _as_packaged(template: dict[str, Any]) -> None:
    """Stand in for `sam package`: local code paths become S3 URIs, image functions get a URI."""
    for resource in template.get("Resources", {}).values():
        props = resource.setdefault("Properties", {})
        if resource.get("Type") == "AWS::Serverless::Function":
            if props.get("PackageType") == "Image":
                props.setdefault("ImageUri", PLACEHOLDER_IMAGE)
            elif isinstance(props.get("CodeUri"), str):
                props["CodeUri"] = f"s3://{PLACEHOLDER_BUCKET}/{props['CodeUri'].strip('/')}.zip"
        elif resource.get("Type") == "AWS::Serverless::LayerVersion" and isinstance(
            props.get("ContentUri"), str
        ):
            uri = props["ContentUri"].strip("/")
            props["ContentUri"] = f"s3://{PLACEHOLDER_BUCKET}/{uri}.zip"


def translate(path: str, parameters: dict[str, str]) -> dict[str, Any]:
    # The translator fills pseudo parameters from a boto3 session; no account is needed.
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    sam_template = load(path)
    _as_packaged(sam_template)
    translator = Translator(managed_policy_map=MANAGED_POLICIES, sam_parser=Parser())
    result: dict[str, Any] = translator.translate(
        sam_template=sam_template,
        parameter_values=parameters,
        get_managed_policy_map=lambda: MANAGED_POLICIES,
    )
    return result


def load(path: str) -> dict[str, Any]:
    template, matches = decode(path)
    if template is None:
        raise SystemExit(f"cannot parse {path}: {matches}")
    data: dict[str, Any] = json.loads(json.dumps(template, default=str))
    return data


def main(argv: list[str]) -> int:
    args = argv[1:]
    raw = "--raw" in args
    args = [a for a in args if a != "--raw"]
    path = args[0] if args else "template.yaml"
    params = dict(arg.split("=", 1) for arg in args[1:])
    out = load(path) if raw else translate(path, params)
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
