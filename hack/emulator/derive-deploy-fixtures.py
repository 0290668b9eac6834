#!/usr/bin/env python3
"""Derive the deployment/stage conformance fixture from the shared AWS reference material.

Reads (outside the repository, so only people with the shared folder can re-run it):
  ../shared/reference/aws-recorded-deploy-responses.json   real-AWS request/response pairs
                                                           (LocalStack snapshots)
Writes (committed; tests/emulator/test_deployments.py reads only this):
  tests/emulator/fixtures/aws-recorded-deploy.json

Usage: hack/emulator/derive-deploy-fixtures.py [--reference DIR] [--check]
  --check   fail if the committed fixture differs from what would be written

Each recorded call with an HTTP status becomes "<test>/<key>" -> {"status", "body"} or
{"status", "error": {"code", "message"}}, plus "request" (or "request_inferred") as recorded.
"messages" holds the message templates the emulator uses, each checked here against the
recording it comes from.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFAULT_REFERENCE = REPO.parent / "shared" / "reference"
OUT = REPO / "tests" / "emulator" / "fixtures" / "aws-recorded-deploy.json"

# Recordings about deployments and stages (the integration-response ones are in aws-recorded.json).
PREFIXES = ("TestDeployments::", "TestStages::", "TestApiGatewayStage::", "TestStageCrudCanary::",
            "TestCanaryDeployments::")

# name -> (test, key, values, template): template.format(**values) must be the recorded message.
MESSAGES = {
    "invalid_stage_path": (
        "TestStages::test_create_update_stages", "error-update-doc-version",
        {"path": "/documentation_version"},
        "Invalid method setting path: {path}. Must be one of: [/deploymentId, /description, "
        "/cacheClusterEnabled, /cacheClusterSize, /clientCertificateId, /accessLogSettings, "
        "/accessLogSettings/destinationArn, /accessLogSettings/format, "
        "/{{resourcePath}}/{{httpMethod}}/metrics/enabled, /{{resourcePath}}/{{httpMethod}}/logging/dataTrace, "
        "/{{resourcePath}}/{{httpMethod}}/logging/loglevel, "
        "/{{resourcePath}}/{{httpMethod}}/throttling/burstLimit/{{resourcePath}}/{{httpMethod}}/throttling/rateLimit"
        "/{{resourcePath}}/{{httpMethod}}/caching/ttlInSeconds, /{{resourcePath}}/{{httpMethod}}/caching/enabled, "
        "/{{resourcePath}}/{{httpMethod}}/caching/dataEncrypted, "
        "/{{resourcePath}}/{{httpMethod}}/caching/requireAuthorizationForCacheControl, "
        "/{{resourcePath}}/{{httpMethod}}/caching/unauthorizedCacheControlHeaderStrategy, "
        "/*/*/metrics/enabled, /*/*/logging/dataTrace, /*/*/logging/loglevel, "
        "/*/*/throttling/burstLimit /*/*/throttling/rateLimit /*/*/caching/ttlInSeconds, "
        "/*/*/caching/enabled, /*/*/caching/dataEncrypted, "
        "/*/*/caching/requireAuthorizationForCacheControl, "
        "/*/*/caching/unauthorizedCacheControlHeaderStrategy, /variables/{{variable_name}}, /tracingEnabled]",
    ),
    "cannot_remove": (
        "TestStageCrudCanary::test_update_stage_canary_deployment_validation",
        "update-stage-canary-settings-bad-path", {"setting": "canarySettings/badPath"},
        "Cannot remove method setting {setting} because there is no method setting for this method ",
    ),
    "canary_stage_must_exist": (
        "TestStageCrudCanary::test_create_canary_deployment_validation",
        "create-canary-deployment-non-existing-stage", {"stage": "non-existing"},
        "Invalid deployment content specified.Stage {stage} must already be created before making "
        "a canary release deployment",
    ),
    "invalid_copy": (
        "TestStageCrudCanary::test_update_stage_with_copy_ops", "copy-with-bad-statement",
        {"path": "/canarySettings/stageVariableOverrides", "from": "/variables"},
        "Invalid copy operation with path: {path} and from {from}. Valid copy:path are "
        "[/deploymentId, /variables] and valid copy:from are "
        "[/canarySettings/deploymentId, /canarySettings/stageVariableOverrides]",
    ),
    "invalid_add": (
        "TestStageCrudCanary::test_update_stage_canary_deployment_validation",
        "update-stage-add-deployment", {"path": "/canarySettings/deploymentId"},
        "Invalid add operation with path: {path}",
    ),
}


def normalise(call: dict) -> dict | None:
    response = call.get("response")
    if not isinstance(response, dict) or "ResponseMetadata" not in response:
        return None
    response = dict(response)
    status = response.pop("ResponseMetadata")["HTTPStatusCode"]
    out: dict = {}
    if call.get("request") is not None:
        out["request"] = call["request"]
    if call.get("request_inferred"):
        out["request_inferred"] = call["request_inferred"]
    out["status"] = status
    if "Error" in response:
        out["error"] = {"code": response["Error"]["Code"], "message": response["Error"]["Message"]}
    else:
        out["body"] = response
    return out


def derive(recorded: dict) -> dict:
    out: dict = {
        "_about": (
            "Real-AWS deployment/stage responses (LocalStack's snapshot recordings, Apache-2.0) "
            "from aws-recorded-deploy-responses.json, normalised by "
            "hack/emulator/derive-deploy-fixtures.py. Placeholders such as <deployment-id:1> stand "
            "for recorded identifiers; timestamps are the string 'datetime'. 'request' is the "
            "recorded request where the test source shows it; 'request_inferred' otherwise."
        ),
        "messages": {},
    }
    for test, entry in recorded.items():
        if not test.startswith(PREFIXES):
            continue
        for call in entry["calls"]:
            norm = normalise(call)
            if norm is not None:
                out[f"{test}/{call['key']}"] = norm
    for name, (test, key, values, template) in MESSAGES.items():
        call = next(c for c in recorded[test]["calls"] if c["key"] == key)
        message = call["response"]["Error"]["Message"]
        if template.format(**values) != message:
            raise SystemExit(f"{name}: template with {values} does not give the recorded {message!r}")
        out["messages"][name] = {"template": template, "recorded_in": f"{test}/{key}"}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reference", type=Path, default=DEFAULT_REFERENCE)
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    src = args.reference / "aws-recorded-deploy-responses.json"
    if not src.is_file():
        print(f"derive-deploy-fixtures: {src} not found (pass --reference DIR)", file=sys.stderr)
        return 2
    text = json.dumps(derive(json.loads(src.read_text())), indent=2, sort_keys=True,
                      ensure_ascii=False) + "\n"
    if args.check:
        if not OUT.is_file() or OUT.read_text() != text:
            print(f"derive-deploy-fixtures: out of date: {OUT}", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT.relative_to(REPO)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
