"""Adoption in bulk (issue 16): `apigw-operator import` prints one manifest per method
integration of an existing API; applied, every object becomes Ready with zero writes. The
binary, the real API server, the emulator and kubectl."""

from __future__ import annotations

import json
import os
import subprocess

from conftest import BINARY, delta, wait_for

WRITES = ("UpdateIntegration", "PutIntegration", "DeleteIntegration", "PutIntegrationResponse",
          "UpdateIntegrationResponse", "DeleteIntegrationResponse")
RESOURCES = 300


def integration_of(i: int) -> tuple[dict, bool]:
    """A mix of every integration type, with templates, parameters, cache keys and (for
    non-proxy types) responses; and whether it gets responses."""
    kind = i % 5
    if kind == 0:
        return {"type": "HTTP", "integrationHttpMethod": "POST", "uri": f"https://b{i}.example.com/x",
                "requestTemplates": {"application/json": "{\"id\": \"$input.params('id')\"}", "text/plain": ""},
                "requestParameters": {"integration.request.header.x-id": "method.request.header.x-id"},
                "cacheKeyParameters": ["method.request.header.x-id"], "timeoutInMillis": 1000 + i}, True
    if kind == 1:
        return {"type": "HTTP_PROXY", "integrationHttpMethod": "ANY", "uri": f"https://p{i}.example.com/{{proxy}}",
                "requestParameters": {"integration.request.header.x-key": "'static-value'"}}, False
    if kind == 2:
        return {"type": "AWS", "integrationHttpMethod": "POST",
                "uri": "arn:aws:apigateway:us-east-1:sqs:path/123456789012/queue",
                "credentials": "arn:aws:iam::123456789012:role/apigw-integration-sqs",
                "passthroughBehavior": "NEVER",
                "requestTemplates": {"application/json": "Action=SendMessage&MessageBody=$input.body"}}, True
    if kind == 3:
        return {"type": "MOCK", "requestTemplates": {"application/json": "{\"statusCode\": 200}"}}, True
    return {"type": "HTTP", "integrationHttpMethod": "GET", "uri": f"https://v{i}.internal/x",
            "connectionType": "VPC_LINK", "connectionId": "vpclink1", "contentHandling": "CONVERT_TO_TEXT"}, True


def build_api(aws) -> str:
    api = aws.create_rest_api(name="import-e2e-" + os.urandom(3).hex())["id"]
    root = next(r for r in aws.get_resources(restApiId=api)["items"] if r["path"] == "/")
    for i in range(RESOURCES):
        resource = aws.create_resource(restApiId=api, parentId=root["id"], pathPart=f"r{i:03d}")["id"]
        aws.put_method(restApiId=api, resourceId=resource, httpMethod="POST", authorizationType="NONE")
        if i % 50 == 7:
            continue  # a method without an integration: counted, skipped
        fields, responses = integration_of(i)
        aws.put_integration(restApiId=api, resourceId=resource, httpMethod="POST", **fields)
        if responses:
            for code in ("200", "500"):
                aws.put_method_response(restApiId=api, resourceId=resource, httpMethod="POST", statusCode=code)
            aws.put_integration_response(restApiId=api, resourceId=resource, httpMethod="POST", statusCode="200",
                                         selectionPattern="",
                                         responseTemplates={"application/json": "$input.body"})
            aws.put_integration_response(restApiId=api, resourceId=resource, httpMethod="POST", statusCode="500",
                                         selectionPattern="5\\d{2}",
                                         responseParameters={"method.response.header.x-err": "'yes'"})
    return api


def run_import(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BINARY), "import", *args], capture_output=True, text=True, timeout=300)


def test_an_imported_api_is_adopted_with_zero_writes(kube, emulator, operators):
    api = build_api(emulator.aws)
    first = run_import("--rest-api-id", api, "--namespace", kube.namespace)
    assert first.returncode == 0, first.stderr
    second = run_import("--rest-api-id", api, "--namespace", kube.namespace)
    assert first.stdout == second.stdout, "byte-identical across two runs"
    without = len(range(7, RESOURCES, 50))
    assert f"imported {RESOURCES - without} integrations" in first.stderr, first.stderr
    assert f"skipped {without} methods without an integration" in first.stderr, first.stderr
    assert "static requestParameters values" in first.stderr
    assert first.stdout.count("# WARNING: spec.requestParameters holds static values") == len(range(1, RESOURCES, 5)) - len(
        [i for i in range(1, RESOURCES, 5) if i % 50 == 7])

    operators("--aws-rps", "50", "--aws-burst", "100")
    before = emulator.calls()
    kube.run("apply", "--server-side", "-f", "-", input=first.stdout)

    def all_ready():
        items = json.loads(kube.run("get", "apigatewayintegrations.apigw.dev", "-o", "json").stdout)["items"]
        ready = [o for o in items if any(c["type"] == "Ready" and c["status"] == "True"
                                         for c in (o.get("status") or {}).get("conditions", []))]
        return len(items) == RESOURCES - without and len(ready) == len(items)
    wait_for("every imported object Ready", all_ready, timeout=300, every=2)
    after = emulator.calls()
    for op in WRITES:
        assert delta(before, after, op) == 0, (op, delta(before, after, op))


def test_import_refuses_an_ambiguous_name_and_reports_aws_errors(emulator):
    name = "import-dup-" + os.urandom(3).hex()
    emulator.aws.create_rest_api(name=name)
    emulator.aws.create_rest_api(name=name)
    dup = run_import("--rest-api-name", name)
    assert dup.returncode == 1 and "error:" in dup.stderr and name in dup.stderr, dup.stderr
    assert dup.stdout == ""
    missing = run_import("--rest-api-id", "nosuchapi0")
    assert missing.returncode == 1 and "nosuchapi0" in missing.stderr, missing.stderr
