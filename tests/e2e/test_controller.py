"""The operator end to end: the binary, the real API server, the emulator, kubectl."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time

import pytest

from conftest import BINARY, delta, manifest, wait_for

HTTP = {"type": "HTTP", "integrationHttpMethod": "POST", "uri": "https://backend.example.com/pets"}
PUT_HTTP = HTTP


def test_apply_goes_ready_and_status_holds_what_aws_returns(kube, emulator, operators):
    ids = emulator.api_with_method(integration=PUT_HTTP)
    operators()
    kube.apply(manifest("pets", ids, timeoutInMillis=1000))
    obj = kube.wait_ready("pets")
    live = emulator.integration(ids)
    assert live["timeoutInMillis"] == 1000
    assert obj["status"]["integration"] == live
    assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"]
    assert obj["status"]["target"] == {"restApiId": ids["restApiId"], "resourceId": ids["resourceId"], "httpMethod": "POST", "region": "us-east-1"}
    assert obj["status"]["lastPatchOperations"] == [{"op": "replace", "path": "/timeoutInMillis", "value": "1000"}]


FIELD_CHANGES = [
    ("integrationHttpMethod", {"integrationHttpMethod": "PUT"}, [{"op": "replace", "path": "/httpMethod", "value": "PUT"}], ("httpMethod", "PUT")),
    ("uri", {"uri": "https://other.example.com/v2"}, [{"op": "replace", "path": "/uri", "value": "https://other.example.com/v2"}], ("uri", "https://other.example.com/v2")),
    ("passthroughBehavior", {"passthroughBehavior": "NEVER"}, [{"op": "replace", "path": "/passthroughBehavior", "value": "NEVER"}], ("passthroughBehavior", "NEVER")),
    ("contentHandling", {"contentHandling": "CONVERT_TO_TEXT"}, [{"op": "replace", "path": "/contentHandling", "value": "CONVERT_TO_TEXT"}], ("contentHandling", "CONVERT_TO_TEXT")),
    ("timeoutInMillis", {"timeoutInMillis": 5000}, [{"op": "replace", "path": "/timeoutInMillis", "value": "5000"}], ("timeoutInMillis", 5000)),
    ("cacheNamespace", {"cacheNamespace": "shared"}, [{"op": "replace", "path": "/cacheNamespace", "value": "shared"}], ("cacheNamespace", "shared")),
    ("cacheKeyParameters", {"cacheKeyParameters": ["method.request.path.petId"]}, [{"op": "add", "path": "/cacheKeyParameters/method.request.path.petId"}], ("cacheKeyParameters", ["method.request.path.petId"])),
    ("requestParameters", {"requestParameters": {"integration.request.header.x-id": "method.request.header.x-id"}},
     [{"op": "add", "path": "/requestParameters/integration.request.header.x-id", "value": "method.request.header.x-id"}],
     ("requestParameters", {"integration.request.header.x-id": "method.request.header.x-id"})),
    ("requestTemplates", {"requestTemplates": {"application/json": '{"a": 1}'}},
     [{"op": "add", "path": "/requestTemplates/application~1json", "value": '{"a": 1}'}], ("requestTemplates", {"application/json": '{"a": 1}'})),
    ("tlsConfig", {"type": "HTTP", "tlsConfig": {"insecureSkipVerification": True}},
     [{"op": "replace", "path": "/tlsConfig/insecureSkipVerification", "value": "true"}], ("tlsConfig", {"insecureSkipVerification": True})),
    ("connection", {"type": "HTTP", "connectionType": "VPC_LINK", "connectionId": "link123"},
     [{"op": "replace", "path": "/connectionId", "value": "link123"}, {"op": "replace", "path": "/connectionType", "value": "VPC_LINK"}],
     ("connectionType", "VPC_LINK")),
]


def test_each_field_change_is_exactly_one_update_integration(kube, emulator, operators):
    ids = emulator.api_with_method(integration=PUT_HTTP)
    operators()
    spec: dict = {}
    kube.apply(manifest("fields", ids, **spec))
    kube.wait_ready("fields")
    for name, change, expected_ops, (field, value) in FIELD_CHANGES:
        spec.update(change)
        before = emulator.calls()
        kube.apply(manifest("fields", ids, **spec))
        obj = wait_for(f"{name} applied", lambda: kube.settled("fields") if kube.get("fields")["status"].get("lastPatchOperations") == expected_ops else None, 60)
        assert obj["status"]["conditions"][0]["status"] == "True", (name, obj["status"]["conditions"])
        after = emulator.calls()
        assert delta(before, after, "UpdateIntegration") == 1, (name, before, after)
        assert delta(before, after, "GetIntegration") == 0, (name, before, after)
        assert delta(before, after, "PutIntegration") == 0, (name, before, after)
        assert emulator.integration(ids)[field] == value, name


def test_restart_causes_no_writes_and_resync_reads_only(kube, emulator, operators):
    ids = emulator.api_with_method(integration=PUT_HTTP)
    first = operators(name="first")
    kube.apply(manifest("restart", ids, timeoutInMillis=2000, requestTemplates={"application/json": ""}))
    kube.wait_ready("restart")
    first.stop()
    before = emulator.calls()
    operators("--resync-period", "2", name="second")
    # Two resync periods pass: the object is read again, never written.
    wait_for("two drift reads", lambda: delta(before, emulator.calls(), "GetIntegration") >= 2, 30)
    after = emulator.calls()
    assert delta(before, after, "UpdateIntegration") == 0
    assert delta(before, after, "PutIntegration") == 0


def test_drift_is_reverted_and_recorded(kube, emulator, operators):
    ids = emulator.api_with_method(integration=PUT_HTTP)
    operators("--resync-period", "2")
    kube.apply(manifest("drift", ids, timeoutInMillis=3000))
    kube.wait_ready("drift")
    emulator.aws.update_integration(restApiId=ids["restApiId"], resourceId=ids["resourceId"], httpMethod="POST",
                                    patchOperations=[{"op": "replace", "path": "/timeoutInMillis", "value": "9999"}])
    wait_for("drift reverted", lambda: emulator.integration(ids)["timeoutInMillis"] == 3000, 30)
    wait_for("a DriftCorrected event", lambda: any(e["reason"] == "DriftCorrected" for e in kube.events("drift")), 30)


def test_target_that_appears_later_goes_ready_untouched(kube, emulator, operators):
    ids = emulator.api_with_method()  # the method exists, the integration not yet
    operators()
    kube.apply(manifest("later", ids, timeoutInMillis=1500))
    obj = kube.wait_reason("later", "TargetNotFound")
    ready = next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")
    assert "Invalid Integration identifier specified" in ready["message"]
    emulator.put_integration(ids, **PUT_HTTP)
    kube.wait_ready("later", timeout=60)
    assert emulator.integration(ids)["timeoutInMillis"] == 1500


def test_type_change_under_update_requires_replacement_with_zero_writes(kube, emulator, operators):
    ids = emulator.api_with_method(integration=PUT_HTTP)
    operators()
    before = emulator.calls()
    kube.apply(manifest("replace", ids, type="HTTP_PROXY"))
    obj = kube.wait_reason("replace", "RequiresReplacement")
    ready = next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")
    assert "spec.type" in ready["message"] and "CreateOrUpdate" in ready["message"]
    stalled = next(c for c in obj["status"]["conditions"] if c["type"] == "Stalled")
    assert stalled["status"] == "True"
    after = emulator.calls()
    assert delta(before, after, "UpdateIntegration") == 0 and delta(before, after, "PutIntegration") == 0


def test_type_change_under_create_or_update_puts_the_integration(kube, emulator, operators):
    ids = emulator.api_with_method(integration=PUT_HTTP)
    operators()
    before = emulator.calls()
    kube.apply(manifest("put", ids, type="HTTP_PROXY", integrationHttpMethod="GET", uri="https://proxy.example.com", managementPolicy="CreateOrUpdate"))
    kube.wait_ready("put")
    assert delta(before, emulator.calls(), "PutIntegration") == 1
    assert emulator.integration(ids)["type"] == "HTTP_PROXY"


def test_missing_integration_is_created_under_create_or_update(kube, emulator, operators):
    ids = emulator.api_with_method()
    operators()
    kube.apply(manifest("create", ids, type="MOCK", managementPolicy="CreateOrUpdate", requestTemplates={"application/json": '{"statusCode": 200}'}))
    kube.wait_ready("create")
    assert emulator.integration(ids)["type"] == "MOCK"


def test_observe_never_writes_and_reports_drift(kube, emulator, operators):
    ids = emulator.api_with_method(integration=PUT_HTTP)
    operators()
    before = emulator.calls()
    kube.apply(manifest("observe", ids, managementPolicy="Observe", timeoutInMillis=777))
    obj = kube.wait_reason("observe", "Drifted")
    ready = next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")
    assert "/timeoutInMillis" in ready["message"]
    after = emulator.calls()
    assert delta(before, after, "UpdateIntegration") == 0 and delta(before, after, "PutIntegration") == 0


def test_deletion_policies(kube, emulator, operators):
    keep = emulator.api_with_method(integration=PUT_HTTP)
    drop = emulator.api_with_method(integration=PUT_HTTP)
    operators()
    kube.apply(manifest("keep", keep, timeoutInMillis=100))
    kube.apply(manifest("drop", drop, timeoutInMillis=100, deletionPolicy="Delete"))
    kube.wait_ready("keep")
    kube.wait_ready("drop")
    assert "apigw.dev/cleanup" not in kube.get("keep")["metadata"].get("finalizers", [])
    assert "apigw.dev/cleanup" in kube.get("drop")["metadata"]["finalizers"]
    kube.run("delete", "apigatewayintegrations.apigw.dev", "keep", "drop", "--timeout=60s")
    assert emulator.integration(keep)["timeoutInMillis"] == 100
    with pytest.raises(emulator.aws.exceptions.NotFoundException):
        emulator.integration(drop)


def test_pause_stops_aws_calls(kube, emulator, operators):
    ids = emulator.api_with_method(integration=PUT_HTTP)
    operators()
    body = manifest("paused", ids, timeoutInMillis=1234)
    body["metadata"]["annotations"] = {"apigw.dev/paused": "true"}
    before = emulator.calls()
    kube.apply(body)
    kube.wait_reason("paused", "Paused")
    assert sum(emulator.calls().values()) - sum(before.values()) == 0
    body["metadata"]["annotations"] = {"apigw.dev/paused": "false"}
    kube.apply(body)
    kube.wait_ready("paused")
    assert emulator.integration(ids)["timeoutInMillis"] == 1234


def test_aws_400_is_invalid_spec_and_not_retried(kube, emulator, operators):
    ids = emulator.api_with_method(integration=PUT_HTTP)
    operators()
    before = emulator.calls()
    # Admission allows up to 300000 (raised quotas); the emulator, like a default account, says 400.
    kube.apply(manifest("invalid", ids, timeoutInMillis=60000))
    obj = kube.wait_reason("invalid", "InvalidSpec")
    synced = next(c for c in obj["status"]["conditions"] if c["type"] == "Synced")
    assert synced["status"] == "False" and synced["message"]
    settled = emulator.calls()
    # Several backoff periods (base 0.5 s, cap 5 s) pass with no further call.
    time.sleep(8)
    assert delta(settled, emulator.calls(), "UpdateIntegration") == 0
    assert delta(settled, emulator.calls(), "GetIntegration") == 0
    assert delta(before, settled, "UpdateIntegration") == 1


def test_names_resolve_to_ids(kube, emulator, operators):
    ids = emulator.api_with_method(integration=PUT_HTTP, path="named")
    operators()
    body = manifest("named", ids, timeoutInMillis=4321)
    del body["spec"]["restApiId"], body["spec"]["resourceId"]
    body["spec"]["restApiName"] = ids["name"]
    body["spec"]["resourcePath"] = ids["path"]
    kube.apply(body)
    obj = kube.wait_ready("named")
    assert obj["status"]["target"]["restApiId"] == ids["restApiId"]
    assert obj["status"]["target"]["resourceId"] == ids["resourceId"]


def test_ordering_vpc_link_switch_empty_map_and_escaped_keys(kube, emulator, operators):
    ids = emulator.api_with_method(integration={**PUT_HTTP, "requestTemplates": {"text/plain": "x"}})
    operators()
    kube.apply(manifest("order", ids, type="HTTP", connectionType="VPC_LINK", connectionId="vl-1",
                        requestTemplates={"application/x~y": "t"}))
    kube.wait_ready("order")
    live = emulator.integration(ids)
    assert live["connectionType"] == "VPC_LINK" and live["connectionId"] == "vl-1"
    assert live["requestTemplates"] == {"application/x~y": "t"}
    kube.apply(manifest("order", ids, type="HTTP", connectionType="INTERNET", requestTemplates={}))
    wait_for("INTERNET and no templates", lambda: emulator.integration(ids).get("connectionType") == "INTERNET"
             and not emulator.integration(ids).get("requestTemplates"), 30)
    kube.wait_ready("order")


def test_throttling_is_bounded_and_converges(kube, emulator, operators):
    ids = emulator.api_with_method(integration=PUT_HTTP)
    operators("--aws-max-attempts", "1")
    emulator.faults(throttle=1.0, retry_after=2)
    before, start = emulator.calls(), time.monotonic()
    kube.apply(manifest("throttled", ids, timeoutInMillis=2500))
    kube.wait_reason("throttled", "Throttled", timeout=30)
    time.sleep(30)  # the fault window the issue asks for: 30 s of 100% throttling
    during, window = emulator.calls(), time.monotonic() - start
    attempts = sum(during.values()) - sum(before.values())
    print(f"AWS calls during {window:.1f} s of 100% throttling (Retry-After 2 s): {attempts}")
    # Retry-After 2 s bounds it at one attempt per 2 s of the window, plus the first; backoff
    # makes it fewer. The window is measured: reaching Throttled takes longer on a busy machine.
    assert attempts <= int(window / 2) + 1, (attempts, window)
    # One Warning for the new failure reason, not one per retry.
    throttled_events = [e for e in kube.events("throttled") if e["reason"] == "Throttled"]
    assert len(throttled_events) == 1, throttled_events
    assert (throttled_events[0].get("series") or {}).get("count", 1) <= 2, throttled_events
    emulator.faults()
    kube.wait_ready("throttled", timeout=60)
    assert emulator.integration(ids)["timeoutInMillis"] == 2500


def test_metrics_agree_with_the_emulator(kube, emulator, operators):
    ids = emulator.api_with_method(integration=PUT_HTTP)
    before = emulator.calls()
    op = operators()
    kube.apply(manifest("metrics", ids, timeoutInMillis=2222))
    kube.wait_ready("metrics")
    after = emulator.calls()
    text = op.metrics()
    for operation in ("GetIntegration", "UpdateIntegration"):
        counted = sum(int(float(v)) for v in re.findall(rf'apigw_aws_calls_total{{operation="{operation}",outcome="[a-z_]+"}} (\S+)', text))
        assert counted == delta(before, after, operation), (operation, text)


def test_leader_election_one_writer_and_takeover(kube, emulator, operators):
    ids = emulator.api_with_method(integration=PUT_HTTP)
    lease = "apigw-e2e"
    args = ("--leader-elect", "--lease-name", lease, "--lease-namespace", kube.namespace, "--lease-duration", "4")

    def holder() -> str:
        return kube.run("get", "lease", lease, "-o", "jsonpath={.spec.holderIdentity}", check=False).stdout

    a = operators(*args, name="a")
    wait_for("a holds the lease", lambda: holder() == f"{kube.namespace}-a", 30)
    b = operators(*args, name="b", wait=False)
    kube.apply(manifest("leader", ids, timeoutInMillis=1111))
    kube.wait_ready("leader")
    # Only the leader writes: b is up (ready, so a Deployment can roll) but waits, with no AWS call.
    wait_for("b ready as a standby", b.ready, 30)
    assert "apigw_leader 0" in b.metrics()
    # (GetCallerIdentity at start, an STS call, names the operator's own account for its quota.)
    assert not re.findall(r'apigw_aws_calls_total{operation="(?!GetCallerIdentity")', b.metrics()), b.metrics()
    a.stop(signal.SIGKILL)
    wait_for("b takes the lease within the lease duration", lambda: holder() == f"{kube.namespace}-b", 15)
    kube.apply(manifest("leader", ids, timeoutInMillis=2222))
    wait_for("b applies the change", lambda: emulator.integration(ids)["timeoutInMillis"] == 2222, 30)


def test_drift_checks_read_a_shared_api_whole(kube, emulator, operators):
    ids = emulator.api_with_method(integration=PUT_HTTP)
    others = []
    for path in ("cats", "dogs"):
        resource = emulator.aws.create_resource(restApiId=ids["restApiId"], parentId=_root(emulator, ids), pathPart=path)
        emulator.aws.put_method(restApiId=ids["restApiId"], resourceId=resource["id"], httpMethod="POST", authorizationType="NONE")
        other = dict(ids, resourceId=resource["id"])
        emulator.put_integration(other, **PUT_HTTP)
        others.append(other)
    operators("--resync-period", "3")
    for i, target in enumerate([ids, *others]):
        kube.apply(manifest(f"shared-{i}", target, timeoutInMillis=1000 + i))
    for i in range(3):
        kube.wait_ready(f"shared-{i}")
    before = emulator.calls()
    wait_for("two drift cycles", lambda: delta(before, emulator.calls(), "GetResources") >= 2, 30)
    after = emulator.calls()
    # Three objects, one API: each cycle is one GetResources, not three GetIntegration.
    assert delta(before, after, "GetIntegration") == 0, (before, after)
    assert delta(before, after, "UpdateIntegration") == 0


def _root(emulator, ids):
    return next(r["id"] for r in emulator.aws.get_resources(restApiId=ids["restApiId"])["items"] if r["path"] == "/")


def _more_targets_in_the_api(emulator, ids, count):
    """`count` more resources with a POST method and an HTTP integration in the API of `ids`."""
    targets = []
    for i in range(count):
        resource = emulator.aws.create_resource(restApiId=ids["restApiId"], parentId=_root(emulator, ids), pathPart=f"r{i}")
        emulator.aws.put_method(restApiId=ids["restApiId"], resourceId=resource["id"], httpMethod="POST", authorizationType="NONE")
        target = dict(ids, resourceId=resource["id"])
        emulator.put_integration(target, **PUT_HTTP)
        targets.append(target)
    return targets


def test_the_operator_causes_no_429_under_the_account_quota(kube, emulator, operators):
    ids = emulator.api_with_method(integration=PUT_HTTP)
    targets = [ids, *_more_targets_in_the_api(emulator, ids, 59)]
    emulator.faults(quota_rps=10, quota_burst=40)
    before = emulator.responses()
    operators("--concurrency", "16")
    docs = [manifest(f"q-{i}", t, timeoutInMillis=3000) for i, t in enumerate(targets)]
    kube.run("apply", "-f", "-", input="\n".join(json.dumps(d) for d in docs))
    for i in range(len(targets)):
        kube.wait_ready(f"q-{i}", timeout=120)
    after = emulator.responses()
    throttled = sum(codes.get("429", 0) for codes in after.values()) - sum(codes.get("429", 0) for codes in before.values())
    assert throttled == 0, after


def test_plan_aws_reads_the_live_state_through_the_aws_layer(tmp_path, emulator):
    ids = emulator.api_with_method(integration={**PUT_HTTP, "requestTemplates": {"application/json": ""}}, path="planned")
    body = manifest("planned", ids, timeoutInMillis=1000, requestTemplates={})
    del body["spec"]["resourceId"]
    body["spec"]["resourcePath"] = ids["path"]
    path = tmp_path / "m.json"
    path.write_text(json.dumps(body))
    out = subprocess.run([str(BINARY), "plan", "-f", str(path), "--aws"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [{"call": "UpdateIntegration", "patchOperations": [
        {"op": "replace", "path": "/timeoutInMillis", "value": "1000"},
        {"op": "remove", "path": "/requestTemplates/application~1json"},
    ]}]


def test_a_change_planned_from_memory_survives_an_out_of_band_edit(kube, emulator, operators):
    ids = emulator.api_with_method(integration=PUT_HTTP)
    operators()
    kube.apply(manifest("oob", ids, requestTemplates={"application/json": "a", "text/plain": "b"}))
    kube.wait_ready("oob")
    # Someone removes text/plain behind the operator's back; the operator still remembers it.
    emulator.aws.update_integration(restApiId=ids["restApiId"], resourceId=ids["resourceId"], httpMethod="POST",
                                    patchOperations=[{"op": "remove", "path": "/requestTemplates/text~1plain"}])
    before = emulator.calls()
    kube.apply(manifest("oob", ids, requestTemplates={"application/json": "a2"}))
    expected = [{"op": "replace", "path": "/requestTemplates/application~1json", "value": "a2"}]
    wait_for("the change applied", lambda: (kube.settled("oob") or {}).get("status", {}).get("lastPatchOperations") == expected, 30)
    kube.wait_ready("oob")
    after = emulator.calls()
    # The remembered plan (replace + remove) is refused, AWS is read, and the new plan applies.
    assert delta(before, after, "UpdateIntegration") == 2
    assert delta(before, after, "GetIntegration") == 1
    assert emulator.integration(ids)["requestTemplates"] == {"application/json": "a2"}


def test_a_change_made_while_the_operator_was_down_costs_one_update(kube, emulator, operators):
    ids = emulator.api_with_method(integration=PUT_HTTP)
    first = operators(name="first")
    kube.apply(manifest("stale", ids, timeoutInMillis=1001))
    kube.wait_ready("stale")
    first.stop()
    kube.apply(manifest("stale", ids, timeoutInMillis=1002))
    before = emulator.calls()
    operators(name="second")
    wait_for("the change applied", lambda: (kube.settled("stale") or {}).get("status", {}).get("integration", {}).get("timeoutInMillis") == 1002, 30)
    after = emulator.calls()
    # The new process knows AWS only from the status copy of its last answer, of unknown age:
    # enough to plan the patch, so no read comes first.
    assert delta(before, after, "UpdateIntegration") == 1, (before, after)
    assert delta(before, after, "GetIntegration") == 0, (before, after)
    assert emulator.integration(ids)["timeoutInMillis"] == 1002


def test_a_field_changed_out_of_band_is_corrected_with_the_spec_change(kube, emulator, operators):
    ids = emulator.api_with_method(integration=PUT_HTTP)
    operators()
    kube.apply(manifest("stray", ids, timeoutInMillis=1001, uri="https://a.example.com/"))
    kube.wait_ready("stray")
    # Someone edits a field the next spec change does not touch; the plan, made from the last
    # answer, only replaces the timeout and AWS accepts it.
    emulator.aws.update_integration(restApiId=ids["restApiId"], resourceId=ids["resourceId"], httpMethod="POST",
                                    patchOperations=[{"op": "replace", "path": "/uri", "value": "https://stray.example.com/"}])
    before = emulator.calls()
    kube.apply(manifest("stray", ids, timeoutInMillis=1002, uri="https://a.example.com/"))
    wait_for("the change applied", lambda: (kube.settled("stray") or {}).get("status", {}).get("integration", {}).get("timeoutInMillis") == 1002, 30)
    after = emulator.calls()
    # AWS's answer shows the stray uri: one more patch, planned from that answer, no read.
    live = emulator.integration(ids)
    assert (live["uri"], live["timeoutInMillis"]) == ("https://a.example.com/", 1002)
    assert delta(before, after, "UpdateIntegration") == 2, (before, after)
    assert delta(before, after, "GetIntegration") == 0, (before, after)
    status = kube.get("stray")["status"]
    assert status["integration"] == live
    # The operations of the last call only (the second, correcting the stray uri).
    assert status["lastPatchOperations"] == [{"op": "replace", "path": "/uri", "value": "https://a.example.com/"}]


def test_new_objects_of_a_shared_api_are_read_from_its_snapshot(kube, emulator, operators):
    ids = emulator.api_with_method(integration=PUT_HTTP)
    targets = [ids, *_more_targets_in_the_api(emulator, ids, 5)]
    # In sync already: the first sync only needs to read.
    for i, target in enumerate(targets):
        kube.apply(manifest(f"new-{i}", target, **PUT_HTTP, timeoutInMillis=29000))
    before = emulator.calls()
    operators()
    for i in range(len(targets)):
        kube.wait_ready(f"new-{i}")
    after = emulator.calls()
    reads = delta(before, after, "GetIntegration") + delta(before, after, "GetResources")
    # Six objects of one API: the object reconciled before any other had joined its API may
    # read alone; every other one takes its share of one snapshot (one page, 7 resources).
    assert delta(before, after, "GetResources") >= 1, (before, after)
    assert reads <= 3, (before, after)
    assert delta(before, after, "UpdateIntegration") == 0


def test_selector_shards_objects_between_operators(kube, emulator, operators):
    a_ids = emulator.api_with_method(integration=PUT_HTTP)
    b_ids = emulator.api_with_method(integration=PUT_HTTP)
    operators("--selector", "shard=a", name="shard-a")
    a = manifest("in-shard", a_ids, timeoutInMillis=1001)
    a["metadata"]["labels"] = {"shard": "a"}
    b = manifest("other-shard", b_ids, timeoutInMillis=1002)
    b["metadata"]["labels"] = {"shard": "b"}
    kube.apply(a)
    kube.apply(b)
    kube.wait_ready("in-shard")
    assert "status" not in kube.get("other-shard")
    operators("--selector", "shard=b", name="shard-b")
    kube.wait_ready("other-shard")
    assert emulator.integration(b_ids)["timeoutInMillis"] == 1002


def test_sigterm_stops_the_operator_cleanly(kube, emulator, operators):
    op = operators()
    op.proc.send_signal(signal.SIGTERM)
    assert op.proc.wait(timeout=20) == 0
