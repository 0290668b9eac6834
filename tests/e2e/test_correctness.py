"""Correct under every interleaving (issue 11): one owner per integration, Ready only when AWS
holds the spec, unreadable answers retried, re-creates that lose nothing, pinned targets,
visible deletion failures. The binary, the real API server, the emulator and kubectl."""

from __future__ import annotations

import json
import time

import pytest

from conftest import delta, manifest, wait_for

HTTP = {"type": "HTTP", "integrationHttpMethod": "POST", "uri": "https://backend.example.com/pets"}


def ready(obj: dict) -> dict:
    return next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")


def warnings(kube, name: str, reason: str) -> list[dict]:
    return [e for e in kube.events(name) if e.get("type") == "Warning" and e.get("reason") == reason]


def test_two_objects_on_one_integration_have_one_owner_and_the_next_takes_over(kube, emulator, operators):
    ids = emulator.api_with_method(integration=HTTP)
    operators("--resync-period", "3")
    kube.apply(manifest("first", ids, uri="https://first.example.com"))
    kube.wait_ready("first")
    kube.apply(manifest("second", ids, uri="https://second.example.com"))
    obj = kube.wait_reason("second", "Conflict")
    assert f"{kube.namespace}/first" in ready(obj)["message"]
    assert obj["status"]["target"]["resourceId"] == ids["resourceId"]
    before = emulator.calls()
    # Several drift periods (3 s) pass: the owner's value stays, the claimant writes nothing.
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        assert emulator.integration(ids)["uri"] == "https://first.example.com"
        time.sleep(0.5)
    assert delta(before, emulator.calls(), "UpdateIntegration") == 0
    assert delta(before, emulator.calls(), "PutIntegration") == 0
    assert len(warnings(kube, "second", "Conflict")) == 1
    # The owner goes (Retain: AWS untouched); the next oldest takes over.
    kube.run("delete", "apigatewayintegrations.apigw.dev", "first", "--timeout=60s")
    kube.wait_reason("second", "Synced", timeout=60)
    assert emulator.integration(ids)["uri"] == "https://second.example.com"


def test_a_claimant_with_delete_policy_never_deletes_the_owners_integration(kube, emulator, operators):
    ids = emulator.api_with_method(integration=HTTP)
    operators()
    kube.apply(manifest("owner", ids, uri="https://owner.example.com"))
    kube.wait_ready("owner")
    # creationTimestamp has whole seconds: within the owner's second, namespace/name decides,
    # so the claimant's name sorts after the owner's.
    kube.apply(manifest("stranger", ids, uri="https://stranger.example.com", deletionPolicy="Delete"))
    kube.wait_reason("stranger", "Conflict")
    kube.run("delete", "apigatewayintegrations.apigw.dev", "stranger", "--timeout=60s")
    assert emulator.integration(ids)["uri"] == "https://owner.example.com"


def test_an_op_aws_ignores_is_not_converged_and_bounded(kube, emulator, operators):
    ids = emulator.api_with_method(integration=HTTP)
    operators()
    emulator.faults(ignore_paths=["/timeoutInMillis"])
    before = emulator.calls()
    kube.apply(manifest("ignored", ids, timeoutInMillis=1000, uri="https://new.example.com"))
    obj = kube.wait_reason("ignored", "NotConverged")
    message = ready(obj)["message"]
    assert "/timeoutInMillis" in message and "1000" not in message
    assert ready(obj)["status"] == "False"
    synced = next(c for c in obj["status"]["conditions"] if c["type"] == "Synced")
    assert synced["status"] == "False"
    # The uri went through; lastPatchOperations holds one call's operations.
    assert emulator.integration(ids)["uri"] == "https://new.example.com"
    assert {op["path"] for op in obj["status"]["lastPatchOperations"]} <= {"/timeoutInMillis", "/uri"}
    # Bounded: a few retries with backoff (base 0.5 s, cap 5 s), then once per resync (600 s).
    time.sleep(15)
    updates = delta(before, emulator.calls(), "UpdateIntegration")
    assert 2 <= updates <= 1 + 3 + 1, updates
    # AWS takes it once the fault is gone: Ready at the next retry (at most the resync period is
    # too long to wait here, so the spec changes to give a new generation).
    emulator.faults()
    kube.apply(manifest("ignored", ids, timeoutInMillis=1000, uri="https://newer.example.com"))
    kube.wait_reason("ignored", "Synced")
    assert emulator.integration(ids)["timeoutInMillis"] == 1000


def test_an_unreadable_answer_is_retried_and_names_the_call(kube, emulator, operators):
    ids = emulator.api_with_method(integration=HTTP)
    operators()
    emulator.faults(garbage_body=1.0, operations=["UpdateIntegration"])
    kube.apply(manifest("garbled", ids, timeoutInMillis=2000))
    # The garbled UpdateIntegration took effect, so the retry (after ~0.5 s) may find AWS
    # converged and turn Ready to Synced before a poll sees AwsError: the Warning Event stays.
    seen = wait_for("a Warning AwsError Event", lambda: warnings(kube, "garbled", "AwsError"), timeout=60)
    assert "UpdateIntegration" in seen[0]["note"], seen[0]
    emulator.faults()
    kube.wait_reason("garbled", "Synced", timeout=60)
    assert emulator.integration(ids)["timeoutInMillis"] == 2000


def test_invalid_spec_is_retried_at_the_resync_period(kube, emulator, operators):
    ids = emulator.api_with_method(integration=HTTP)
    op = operators("--resync-period", "4")
    before = emulator.calls()
    kube.apply(manifest("invalid", ids, timeoutInMillis=60000))
    kube.wait_reason("invalid", "InvalidSpec")
    time.sleep(10)
    updates = delta(before, emulator.calls(), "UpdateIntegration")
    # The first try, then one per resync period (4 s ±10%): 2 or 3 more in 10 s, never a stream.
    assert 2 <= updates <= 5, updates
    # After a restart the object still counts as not ready in the metrics.
    op.stop()
    op2 = operators("--resync-period", "600", name="restarted")
    wait_for("metrics count the InvalidSpec object", lambda: 'apigw_objects{kind="integration",ready="False",reason="InvalidSpec"} 1' in op2.metrics(), timeout=30)


def test_a_failed_change_is_retried_as_a_change(kube, emulator, operators):
    ids = emulator.api_with_method(integration=HTTP)
    operators()
    kube.apply(manifest("retried", ids, timeoutInMillis=1000))
    kube.wait_ready("retried")
    emulator.faults(error_5xx=1.0, error_5xx_status=500, operations=["UpdateIntegration"])
    before = emulator.calls()
    kube.apply(manifest("retried", ids, timeoutInMillis=2000))
    kube.wait_reason("retried", "AwsError")
    emulator.faults()
    kube.wait_reason("retried", "Synced", timeout=60)
    after = emulator.calls()
    assert emulator.integration(ids)["timeoutInMillis"] == 2000
    assert delta(before, after, "GetIntegration") == 0, "no extra read"
    reasons = [e["reason"] for e in kube.events("retried") if e.get("type") == "Normal"]
    assert "Updated" in reasons and "DriftCorrected" not in reasons, reasons


def put_responses(emulator, ids: dict) -> None:
    aws = emulator.aws
    common = {"restApiId": ids["restApiId"], "resourceId": ids["resourceId"], "httpMethod": "POST"}
    for code in ("200", "404"):
        aws.put_method_response(statusCode=code, **common)
    aws.put_integration_response(statusCode="200", selectionPattern="", responseTemplates={"application/json": '{"ok": true}'}, **common)
    aws.put_integration_response(statusCode="404", selectionPattern=".*Not Found.*",
                                 responseParameters={}, **common)


@pytest.mark.parametrize("keeps", [False, True], ids=["put-drops-responses", "put-keeps-responses"])
def test_a_re_create_keeps_every_integration_response(kube, emulator, operators, keeps):
    ids = emulator.api_with_method(integration=HTTP)
    put_responses(emulator, ids)
    before_responses = emulator.integration(ids)["integrationResponses"]
    assert set(before_responses) == {"200", "404"}
    emulator.faults(put_integration_keeps_responses=keeps)
    operators()
    before = emulator.calls()
    kube.apply(manifest("retyped", ids, type="HTTP_PROXY", integrationHttpMethod="POST",
                        uri="https://backend.example.com/pets", managementPolicy="CreateOrUpdate"))
    obj = kube.wait_ready("retyped")
    after = emulator.calls()
    live = emulator.integration(ids)
    assert live["type"] == "HTTP_PROXY"
    assert live["integrationResponses"] == before_responses
    assert obj["status"]["integration"]["integrationResponses"] == before_responses
    assert delta(before, after, "PutIntegration") == 1
    assert delta(before, after, "PutIntegrationResponse") == (0 if keeps else 2)
    assert delta(before, after, "GetIntegration") == 1, "decided from a read in the same reconcile"


def test_a_target_that_resolves_elsewhere_is_target_changed(kube, emulator, operators):
    ids = emulator.api_with_method(integration=HTTP)
    op = operators()
    kube.apply(manifest("pinned", ids, timeoutInMillis=1500))
    kube.wait_ready("pinned")
    op.stop()
    before = emulator.calls()
    # The operator's default Region changes: the object (no spec.region) now resolves elsewhere.
    operators("--region", "eu-west-1", name="other-region")
    kube.apply(manifest("pinned", ids, timeoutInMillis=2500))
    obj = kube.wait_reason("pinned", "TargetChanged")
    assert "eu-west-1" in ready(obj)["message"]
    assert obj["status"]["target"]["region"] == "us-east-1"
    after = emulator.calls()
    for write in ("UpdateIntegration", "PutIntegration", "DeleteIntegration"):
        assert delta(before, after, write) == 0
    assert emulator.integration(ids)["timeoutInMillis"] == 1500


def test_a_failed_deletion_is_visible_and_retried(kube, emulator, operators):
    ids = emulator.api_with_method(integration=HTTP)
    operators()
    kube.apply(manifest("undeletable", ids, deletionPolicy="Delete"))
    kube.wait_ready("undeletable")
    emulator.faults(error_5xx=1.0, error_5xx_status=500, operations=["DeleteIntegration"])
    kube.run("delete", "apigatewayintegrations.apigw.dev", "undeletable", "--wait=false")
    obj = kube.wait_reason("undeletable", "DeleteFailed")
    assert "DeleteIntegration" in ready(obj)["message"]
    wait_for("a DeleteFailed warning", lambda: warnings(kube, "undeletable", "DeleteFailed"), timeout=30)
    emulator.faults()
    wait_for("the object is gone", lambda: kube.run("get", "apigatewayintegrations.apigw.dev", "undeletable", check=False).returncode != 0, timeout=60)
    with pytest.raises(emulator.aws.exceptions.NotFoundException):
        emulator.integration(ids)


def test_a_paused_object_keeps_its_finalizer_until_orphaned(kube, emulator, operators):
    ids = emulator.api_with_method(integration=HTTP)
    operators()
    body = manifest("paused-delete", ids, deletionPolicy="Delete")
    kube.apply(body)
    kube.wait_ready("paused-delete")
    kube.run("annotate", "apigatewayintegrations.apigw.dev", "paused-delete", "apigw.dev/paused=true")
    kube.wait_reason("paused-delete", "Paused")
    before = emulator.calls()
    kube.run("delete", "apigatewayintegrations.apigw.dev", "paused-delete", "--wait=false")
    wait_for("the deletion is seen", lambda: kube.get("paused-delete")["metadata"].get("deletionTimestamp"))
    time.sleep(3)  # an observation window: nothing may happen in it
    assert "apigw.dev/cleanup" in kube.get("paused-delete")["metadata"]["finalizers"]
    assert delta(before, emulator.calls(), "DeleteIntegration") == 0
    kube.run("annotate", "apigatewayintegrations.apigw.dev", "paused-delete", "apigw.dev/orphan=true")
    wait_for("the object is gone", lambda: kube.run("get", "apigatewayintegrations.apigw.dev", "paused-delete", check=False).returncode != 0, timeout=60)
    assert emulator.integration(ids)["type"] == "HTTP", "orphaned: AWS untouched"


def test_status_is_never_applied_to_a_re_created_object_of_the_same_name(kube, emulator, operators):
    old = emulator.api_with_method(integration=HTTP)
    new = emulator.api_with_method(integration=HTTP)
    operators()
    kube.apply(manifest("reborn", old, timeoutInMillis=1100))
    kube.wait_ready("reborn")
    kube.run("delete", "apigatewayintegrations.apigw.dev", "reborn", "--timeout=60s")
    kube.apply(manifest("reborn", new, timeoutInMillis=1200))
    obj = kube.wait_ready("reborn")
    assert obj["status"]["target"]["restApiId"] == new["restApiId"]
    assert emulator.integration(new)["timeoutInMillis"] == 1200
    assert emulator.integration(old)["timeoutInMillis"] == 1100
