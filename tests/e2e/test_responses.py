"""Integration responses in the same object (issue 12): spec.integrationResponses planned, sent
one call per changed response, reported in status, kept across a re-create, drift corrected or
reported. The binary, the real API server, the emulator and kubectl; every test asserts the
emulator's call counts."""

from __future__ import annotations

import pytest

from conftest import delta, manifest, wait_for

HTTP = {"type": "HTTP", "integrationHttpMethod": "POST", "uri": "https://backend.example.com/pets"}
RESPONSE_CALLS = ("PutIntegrationResponse", "UpdateIntegrationResponse", "DeleteIntegrationResponse")
WRITES = ("UpdateIntegration", "PutIntegration") + RESPONSE_CALLS

TWO = {
    "200": {"responseTemplates": {"application/json": '{"ok": true}'}},
    "404": {"selectionPattern": ".*Not Found.*", "responseParameters": {"method.response.header.x-err": "'nf'"}},
}


def ready(obj: dict) -> dict:
    return next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")


def common(ids: dict) -> dict:
    return {"restApiId": ids["restApiId"], "resourceId": ids["resourceId"], "httpMethod": "POST"}


def live_responses(emulator, ids: dict) -> dict:
    return emulator.integration(ids).get("integrationResponses", {})


def writes(before: dict, after: dict) -> dict[str, int]:
    return {op: delta(before, after, op) for op in WRITES if delta(before, after, op)}


def apply_and_settle(kube, body: dict) -> dict:
    """Applies `body` and waits until the operator has judged this generation Synced."""
    kube.apply(body)
    name = body["metadata"]["name"]

    def synced():
        obj = kube.settled(name)
        if obj and obj["status"].get("syncedGeneration") == obj["metadata"]["generation"] and ready(obj)["reason"] == "Synced":
            return obj
        return None

    return wait_for(f"{name} synced at its generation", synced, timeout=60)


@pytest.fixture
def managed(kube, emulator, operators):
    """An HTTP integration whose two responses an object manages, created through the operator."""
    ids = emulator.api_with_method(integration=HTTP)
    operators()
    before = emulator.calls()
    obj = apply_and_settle(kube, manifest("responses", ids, integrationResponses=TWO))
    after = emulator.calls()
    assert writes(before, after) == {"PutIntegrationResponse": 2}, "one call per new response, no UpdateIntegration"
    return ids, obj


def test_create_puts_each_response_and_status_shows_them(emulator, managed):
    ids, obj = managed
    live = live_responses(emulator, ids)
    assert set(live) == {"200", "404"}
    assert live["200"]["responseTemplates"] == TWO["200"]["responseTemplates"]
    assert live["404"]["selectionPattern"] == ".*Not Found.*"
    assert obj["status"]["integration"]["integrationResponses"] == live
    calls = obj["status"]["lastResponseCalls"]
    assert [(c["call"], c["statusCode"]) for c in calls] == [("PutIntegrationResponse", "404"), ("PutIntegrationResponse", "200")]


def test_one_changed_field_of_one_response_is_one_call(kube, emulator, managed):
    ids, _ = managed
    before = emulator.calls()
    changed = {**TWO, "404": {**TWO["404"], "selectionPattern": ".*Missing.*"}}
    obj = apply_and_settle(kube, manifest("responses", ids, integrationResponses=changed))
    assert writes(before, emulator.calls()) == {"UpdateIntegrationResponse": 1}
    assert live_responses(emulator, ids)["404"]["selectionPattern"] == ".*Missing.*"
    assert live_responses(emulator, ids)["404"]["responseParameters"] == TWO["404"]["responseParameters"]
    assert obj["status"]["lastResponseCalls"] == [{
        "call": "UpdateIntegrationResponse", "statusCode": "404",
        "patchOperations": [{"op": "replace", "path": "/selectionPattern", "value": ".*Missing.*"}],
    }]


def test_adding_one_response_is_one_put(kube, emulator, managed):
    ids, _ = managed
    before = emulator.calls()
    more = {**TWO, "500": {"selectionPattern": "5\\d\\d"}}
    apply_and_settle(kube, manifest("responses", ids, integrationResponses=more))
    assert writes(before, emulator.calls()) == {"PutIntegrationResponse": 1}
    assert set(live_responses(emulator, ids)) == {"200", "404", "500"}


def test_removing_one_response_is_one_delete(kube, emulator, managed):
    ids, _ = managed
    before = emulator.calls()
    apply_and_settle(kube, manifest("responses", ids, integrationResponses={"200": TWO["200"]}))
    assert writes(before, emulator.calls()) == {"DeleteIntegrationResponse": 1}
    assert set(live_responses(emulator, ids)) == {"200"}


def test_an_empty_map_clears_every_response(kube, emulator, managed):
    ids, _ = managed
    before = emulator.calls()
    apply_and_settle(kube, manifest("responses", ids, integrationResponses={}))
    assert writes(before, emulator.calls()) == {"DeleteIntegrationResponse": 2}
    assert live_responses(emulator, ids) == {}


def test_an_integration_change_leaves_unchanged_responses_alone(kube, emulator, managed):
    ids, _ = managed
    before = emulator.calls()
    apply_and_settle(kube, manifest("responses", ids, integrationResponses=TWO, timeoutInMillis=1000))
    assert writes(before, emulator.calls()) == {"UpdateIntegration": 1}, "an unchanged response costs nothing"


def test_a_drifted_response_is_corrected_with_one_call(kube, emulator, operators):
    ids = emulator.api_with_method(integration=HTTP)
    operators("--resync-period", "2")
    apply_and_settle(kube, manifest("drifty", ids, integrationResponses=TWO))
    # Someone edits a managed template and an unmanaged field of the same response.
    emulator.aws.put_integration_response(statusCode="200", responseTemplates={"application/json": "tampered"},
                                          responseParameters={"method.response.header.x-extra": "'kept'"}, **common(ids))
    before = emulator.calls()
    wait_for("the template corrected", lambda: live_responses(emulator, ids)["200"]["responseTemplates"] == TWO["200"]["responseTemplates"], timeout=30)
    wait_for("the correction recorded in status", lambda: (kube.settled("drifty") or {}).get("status", {}).get("integration", {}).get("integrationResponses", {}).get("200", {}).get("responseTemplates") == TWO["200"]["responseTemplates"], timeout=30)
    after = emulator.calls()
    assert writes(before, after) == {"UpdateIntegrationResponse": 1}
    assert live_responses(emulator, ids)["200"]["responseParameters"] == {"method.response.header.x-extra": "'kept'"}, "unmanaged field kept"
    kinds = {e["reason"] for e in kube.events("drifty")}
    assert "DriftCorrected" in kinds


def test_observe_reports_a_response_drift_and_writes_nothing(kube, emulator, operators):
    ids = emulator.api_with_method(integration=HTTP)
    emulator.aws.put_integration_response(statusCode="200", responseTemplates={"application/json": "secret-template"}, **common(ids))
    operators()
    before = emulator.calls()
    kube.apply(manifest("watcher", ids, managementPolicy="Observe", integrationResponses=TWO))
    obj = kube.wait_reason("watcher", "Drifted")
    message = ready(obj)["message"]
    assert "PutIntegrationResponse 404" in message and "UpdateIntegrationResponse 200" in message, message
    assert "secret-template" not in message and '{"ok": true}' not in message
    assert writes(before, emulator.calls()) == {}


@pytest.mark.parametrize("keeps", [False, True], ids=["put-drops-responses", "put-keeps-responses"])
def test_a_type_change_keeps_every_response_managed_and_unmanaged(kube, emulator, operators, keeps):
    ids = emulator.api_with_method(integration=HTTP)
    # 200 has a field the spec does not manage (its parameters); 404 is managed whole.
    emulator.aws.put_integration_response(statusCode="200", responseTemplates={"application/json": "old"},
                                          responseParameters={"method.response.header.x-id": "integration.response.header.x-id"},
                                          **common(ids))
    emulator.aws.put_integration_response(statusCode="404", selectionPattern="404", **common(ids))
    emulator.faults(put_integration_keeps_responses=keeps)
    operators()
    before = emulator.calls()
    spec = {"200": {"responseTemplates": {"application/json": "new"}}, "404": {"selectionPattern": "404"}}
    obj = apply_and_settle(kube, manifest("retyped", ids, type="MOCK", managementPolicy="CreateOrUpdate", integrationResponses=spec))
    after = emulator.calls()
    live = emulator.integration(ids)
    assert live["type"] == "MOCK"
    responses = live["integrationResponses"]
    assert set(responses) == {"200", "404"}
    assert responses["200"]["responseTemplates"] == {"application/json": "new"}
    assert responses["200"]["responseParameters"] == {"method.response.header.x-id": "integration.response.header.x-id"}
    assert responses["404"]["selectionPattern"] == "404"
    assert obj["status"]["integration"]["integrationResponses"] == responses
    assert delta(before, after, "PutIntegration") == 1
    # Dropped: both put back. Kept: only the changed 200 costs a call.
    assert sum(delta(before, after, op) for op in RESPONSE_CALLS) == (1 if keeps else 2)


def test_a_missing_integration_is_created_with_its_responses(kube, emulator, operators):
    ids = emulator.api_with_method()
    operators()
    before = emulator.calls()
    apply_and_settle(kube, manifest("fresh", ids, type="MOCK", managementPolicy="CreateOrUpdate", integrationResponses=TWO))
    assert writes(before, emulator.calls()) == {"PutIntegration": 1, "PutIntegrationResponse": 2}
    assert set(live_responses(emulator, ids)) == {"200", "404"}


def test_works_when_aws_accepts_only_the_evidenced_patch_ops(kube, emulator, managed):
    """The UpdateIntegrationResponse patch table is only partly known: with the emulator taking
    only the recorded ops, every change still lands, one call each."""
    ids, _ = managed
    emulator.faults(strict_response_patch=True)
    before = emulator.calls()
    changed = {
        # A template added: no evidenced op, so PutIntegrationResponse of the merged response.
        "200": {"responseTemplates": {"application/json": '{"ok": false}', "text/plain": "ok"}},
        # Only the pattern: the recorded replace /selectionPattern.
        "404": {**TWO["404"], "selectionPattern": ".*Gone.*"},
    }
    obj = apply_and_settle(kube, manifest("responses", ids, integrationResponses=changed))
    assert writes(before, emulator.calls()) == {"PutIntegrationResponse": 1, "UpdateIntegrationResponse": 1}
    live = live_responses(emulator, ids)
    assert live["200"]["responseTemplates"] == changed["200"]["responseTemplates"]
    assert live["404"]["selectionPattern"] == ".*Gone.*"
    assert live["404"]["responseParameters"] == TWO["404"]["responseParameters"]
    assert ready(obj)["status"] == "True"


def test_events_and_conditions_name_paths_never_values(kube, emulator, operators):
    """Static header values, templates and URIs often carry credentials; Events are readable by
    many more principals than the objects. Every Event note and condition message of an object
    whose writes carry such values names paths and status codes only."""
    ids = emulator.api_with_method(integration=HTTP)
    operators("--resync-period", "2")
    secrets = ["hdr-secret-1", "tmpl-secret-2", "resp-secret-3"]
    body = manifest("quiet", ids, requestParameters={"integration.request.header.x-key": f"'{secrets[0]}'"},
                    requestTemplates={"application/json": secrets[1]},
                    integrationResponses={"200": {"responseTemplates": {"application/json": secrets[2]}}})
    apply_and_settle(kube, body)
    assert emulator.integration(ids)["requestTemplates"] == {"application/json": secrets[1]}
    # Drift, corrected by writing the same values again.
    emulator.aws.update_integration(**common(ids), patchOperations=[
        {"op": "replace", "path": "/requestTemplates/application~1json", "value": "drifted"}])
    wait_for("the drift corrected", lambda: emulator.integration(ids)["requestTemplates"] == {"application/json": secrets[1]}, timeout=30)

    def notes():
        found = {(e.get("reason"), e.get("action")): e.get("note", "") for e in kube.events("quiet")}
        wanted = {("Updated", "UpdateIntegration"), ("Updated", "IntegrationResponses"), ("DriftCorrected", "UpdateIntegration")}
        return found if wanted <= set(found) else None
    found = wait_for("the Events of the writes", notes, timeout=30)
    assert "/requestTemplates/application~1json" in found[("DriftCorrected", "UpdateIntegration")], found
    assert "PutIntegrationResponse 200" in found[("Updated", "IntegrationResponses")], found
    obj = kube.get("quiet")
    texts = list(found.values()) + [c["message"] for c in obj["status"]["conditions"]]
    for text in texts:
        for secret in secrets:
            assert secret not in text, text
