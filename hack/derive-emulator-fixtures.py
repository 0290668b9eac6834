#!/usr/bin/env python3
"""Derive the emulator's conformance fixtures from the shared AWS reference material.

Reads (outside the repository, so only people with the shared folder can re-run it):
  ../shared/reference/aws-recorded-responses.json   real-AWS responses (LocalStack snapshots)
  ../shared/reference/seed-update-integration.txt   the AWS CLI page with 4 UpdateIntegration examples
Writes (committed; the tests read only these):
  tests/emulator/fixtures/aws-recorded.json
  tests/emulator/fixtures/patch-error-messages.json
  tests/emulator/fixtures/seed-examples.json

Usage: hack/derive-emulator-fixtures.py [--reference DIR] [--check]
  --check   fail if the committed fixtures differ from what would be written
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_REFERENCE = REPO.parent / "shared" / "reference"
OUT = REPO / "tests" / "emulator" / "fixtures"

# Recordings the conformance tests replay (test name -> snapshot keys; None = all keys).
USED = {
    "TestApigatewayIntegration::test_create_integration_with_vpc_link": None,
    "TestApigatewayIntegration::test_get_integration_non_existent": None,
    "TestApigatewayIntegration::test_put_integration_response_validation": None,
    "TestApigatewayIntegration::test_put_integration_wrong_type": None,
    "TestApigatewayIntegration::test_put_integration_response_templates": None,
    "TestApigatewayIntegrationResponse::test_lifecycle_integration_response": None,
    "TestApigatewayIntegrationResponse::test_integration_response_wrong_api": None,
    "TestApigatewayIntegrationResponse::test_integration_response_wrong_resource": None,
    "TestApigatewayIntegrationResponse::test_integration_response_wrong_method": None,
    "TestApigatewayIntegrationResponse::test_integration_response_invalid_integration": None,
    "TestApigatewayIntegrationResponse::test_integration_response_wrong_status_code": None,
    "TestApigatewayIntegrationResponse::test_delete_integration_response_errors": None,
    "TestApigatewayIntegration::test_put_integration_request_parameter_bool_type": [
        "put-integration-request-param-bool-value"
    ],
    "TestApigatewayIntegrationResponse::test_integration_response_invalid_responsetemplates": [
        "put-integration-response-invalid-responseTemplates-1",
        "put-integration-response-invalid-responseTemplates-2",
    ],
    "TestApigatewayIntegrationResponse::test_integration_response_invalid_statuscode": None,
    "TestApiGatewayApiMethod::test_put_method_validation": ["wrong-api", "wrong-resource", "wrong-method"],
}

# Patch-error message shapes. AWS's recordings show each shape on some resource; the
# emulator uses the same shapes for Integration and IntegrationResponse. Each entry names
# the recording, the values the recorded request used, and the template with those values
# as fields; the script checks template.format(values) == the recorded message.
MESSAGE_SHAPES = {
    "invalid_path": (
        "TestApiGatewayApiRestApi::test_update_rest_api_behaviour", "update-rest-api-add-base-path",
        {"path": "/binaryMediaTypes"}, "Invalid patch path {path}",
    ),
    "invalid_path_nested": (
        "TestApiGatewayApiMethod::test_update_method_validation", "wrong-path-request-models",
        {"path": "/requestModels/application/json"}, "Invalid patch path {path}",
    ),
    "null_path": (
        "TestApiGatewayGatewayResponse::test_update_gateway_response", "update-gateway-no-path",
        {}, "Invalid patch path null",
    ),
    "op_not_supported_for_path": (
        "TestApiGatewayApiResource::test_update_resource_behaviour", "add-unsupported",
        {"path": "/pathPart", "op": "add"},
        "Invalid patch path  '{path}' specified for op '{op}'. Please choose supported operations",
    ),
    "replace_only": (
        "TestApiGatewayApiMethod::test_update_method_validation", "unsupported-operation",
        {}, "Invalid patch operation specified. Must be one of: [replace]",
    ),
    "op_not_in_enum": (
        "TestApiGatewayGatewayResponse::test_update_gateway_response", "update-gateway-wrong-op",
        {"op": "wrong-op", "input": "updateGatewayResponseInput", "index": 1},
        "1 validation error detected: Value '{op}' at '{input}.patchOperations.{index}.member.op' "
        "failed to satisfy constraint: Member must satisfy enum value set: "
        "[add, remove, move, test, replace, copy]",
    ),
    "null_or_empty_value": (
        "TestApiGatewayGatewayResponse::test_update_gateway_response",
        "update-gateway-replace-invalid-parameter-1-none",
        {"map": "responseParameters"}, "Invalid null or empty value in {map}",
    ),
    "remove_missing_parameter": (
        "TestApigatewayMethodResponse::test_update_method_lack_response_parameters_and_models",
        "update-method-response-operation-without-response-parameters",
        {}, "Invalid parameter name specified",
    ),
    "remove_missing_content_type": (
        "TestApigatewayMethodResponse::test_update_method_lack_response_parameters_and_models",
        "update-method-response-operation-without-response-models",
        {}, "Content-Type specified was not found",
    ),
}


def normalise(entry: dict) -> dict:
    """A recorded boto response -> {"status", "body"} or {"status", "error": {code, message}}."""
    entry = dict(entry)
    status = entry.pop("ResponseMetadata", {}).get("HTTPStatusCode")
    if "Error" in entry:
        return {"status": status, "error": {"code": entry["Error"]["Code"], "message": entry["Error"]["Message"]}}
    return {"status": status, "body": entry}


def derive_recorded(recorded: dict) -> dict:
    out: dict = {
        "_about": (
            "Real-AWS responses (LocalStack's snapshot recordings, Apache-2.0) selected and "
            "normalised by hack/derive-emulator-fixtures.py. Placeholders such as <cache-namespace:1> "
            "and <region> stand for recorded identifiers; JSON-string templates appear parsed, "
            "as the snapshot library stored them."
        )
    }
    for test, keys in USED.items():
        content = recorded[test]["recorded-content"]
        for key in keys or sorted(content):
            out[f"{test}/{key}"] = normalise(content[key])
    return out


def derive_messages(recorded: dict) -> dict:
    out: dict = {"_about": "Patch-error message templates, each checked against a real-AWS recording."}
    for name, (test, key, values, template) in MESSAGE_SHAPES.items():
        message = recorded[test]["recorded-content"][key]["Error"]["Message"]
        if template.format(**values) != message:
            raise SystemExit(
                f"{name}: template {template!r} with {values} does not give the recorded {message!r}"
            )
        code = recorded[test]["recorded-content"][key]["Error"]["Code"]
        status = recorded[test]["recorded-content"][key]["ResponseMetadata"]["HTTPStatusCode"]
        out[name] = {"template": template, "code": code, "status": status, "recorded_in": f"{test}/{key}"}
    return out


def derive_seed(text: str) -> dict:
    examples = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = re.search(r"""--patch-operations "op='([^']*)',path='([^']*)'(?:,value='(.*)')?"$""", line.strip())
        if not m:
            continue
        title = next(
            (lines[j].strip() for j in range(i - 1, -1, -1) if lines[j].strip().startswith("To ")),
            "",
        )
        op = {"op": m.group(1), "path": m.group(2)}
        if m.group(3) is not None:
            op["value"] = m.group(3)
        examples.append({"title": title, "patchOperation": op})
    if len(examples) != 4:
        raise SystemExit(f"expected 4 update-integration examples in the seed page, found {len(examples)}")
    return {
        "_about": "The four examples of the AWS CLI update-integration page (seed-update-integration.txt).",
        "examples": examples,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reference", type=Path, default=DEFAULT_REFERENCE)
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()

    recorded_path = args.reference / "aws-recorded-responses.json"
    seed_path = args.reference / "seed-update-integration.txt"
    for p in (recorded_path, seed_path):
        if not p.is_file():
            print(f"derive-emulator-fixtures: {p} not found (pass --reference DIR)", file=sys.stderr)
            return 2
    recorded = json.loads(recorded_path.read_text())
    outputs = {
        "aws-recorded.json": derive_recorded(recorded),
        "patch-error-messages.json": derive_messages(recorded),
        "seed-examples.json": derive_seed(seed_path.read_text()),
    }
    OUT.mkdir(parents=True, exist_ok=True)
    stale = []
    for name, data in outputs.items():
        text = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        path = OUT / name
        if args.check:
            if not path.is_file() or path.read_text() != text:
                stale.append(str(path))
        else:
            path.write_text(text)
            print(f"wrote {path.relative_to(REPO)}", file=sys.stderr)
    if stale:
        print("derive-emulator-fixtures: out of date: " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
