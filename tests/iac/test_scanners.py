"""The template passes `sam validate --lint`, cfn-lint and checkov with nothing left over.

checkov runs twice: on template.yaml (its SAM checks) and on the translated CloudFormation,
where its IAM, Lambda and API Gateway checks see the roles and stage SAM generates. Every
skip must carry its reason inline (Metadata.checkov.skip[].comment in template.yaml).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from tests.iac.conftest import REGION, TEMPLATE, run_tool, tool


def test_sam_validate_lint() -> None:
    result = run_tool(
        [tool("sam"), "validate", "--lint", "--template-file", TEMPLATE, "--region", REGION]
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout + result.stderr


def test_cfn_lint_template_clean() -> None:
    result = run_tool([tool("cfn-lint"), "--format", "parseable", TEMPLATE])
    assert (result.returncode, result.stdout.strip()) == (0, ""), result.stdout + result.stderr


def test_cfn_lint_translated_clean(translated_path: Path) -> None:
    result = run_tool([tool("cfn-lint"), "--format", "parseable", translated_path])
    assert (result.returncode, result.stdout.strip()) == (0, ""), result.stdout + result.stderr


def carry_skips_to_generated(template: dict[str, Any]) -> dict[str, Any]:
    """SAM copies a function's Metadata to the Lambda it generates, but not an API's to the
    Stage and Deployment it generates; carry those skips (and their reasons) across."""
    out = copy.deepcopy(template)
    resources = out["Resources"]
    for resource in resources.values():
        if resource["Type"] not in ("AWS::ApiGateway::Stage", "AWS::ApiGateway::Deployment"):
            continue
        api_ref = resource["Properties"].get("RestApiId", {}).get("Ref")
        api_meta = resources.get(api_ref, {}).get("Metadata", {}).get("checkov")
        if api_meta:
            resource.setdefault("Metadata", {})["checkov"] = copy.deepcopy(api_meta)
    return out


def run_checkov(path: Path) -> dict[str, Any]:
    result = run_tool(
        [
            tool("checkov"),
            "--file",
            path,
            "--framework",
            "cloudformation",
            "--skip-download",
            "--output",
            "json",
        ]
    )
    assert result.stdout.strip(), result.stderr
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    assert len(reports) == 1, [r.get("check_type") for r in reports]
    data: dict[str, Any] = reports[0]
    return data


def assert_clean(report: dict[str, Any]) -> None:
    results = report["results"]
    failed = [
        f"{c['check_id']} {c['resource']}: {c['check_name']}" for c in results["failed_checks"]
    ]
    assert failed == [], "\n".join(failed)
    unexplained = [
        f"{c['check_id']} {c['resource']}"
        for c in results["skipped_checks"]
        if len((c["check_result"].get("suppress_comment") or "").strip()) < 20
    ]
    assert unexplained == [], f"skips without an inline reason: {unexplained}"
    assert report["summary"]["passed"] > 30  # it really ran its checks


def test_checkov_sam_template() -> None:
    assert_clean(run_checkov(TEMPLATE))


def test_checkov_translated_template(translated: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "translated-with-skips.json"
    path.write_text(json.dumps(carry_skips_to_generated(translated)))
    report = run_checkov(path)
    assert_clean(report)
    # The IAM checks only exist on the translated form; make sure they were among those run.
    ran = {c["check_id"] for c in report["results"]["passed_checks"]}
    assert {"CKV_AWS_107", "CKV_AWS_108", "CKV_AWS_109", "CKV_AWS_110", "CKV_AWS_111"} <= ran
