"""Deployments, stages, canaries and CreateDeployment's quota in the emulator, against the
real-AWS recordings of fixtures/aws-recorded-deploy.json (derived by
hack/emulator/derive-deploy-fixtures.py from aws-recorded-deploy-responses.json) and
reference/aws-apigateway-deploy-facts.md §2 and §5. The admin endpoint
GET /_emulator/served/{restApiId}/{stageName} tells what a stage serves."""

from __future__ import annotations

import datetime
import json
import time

import pytest
import requests
from botocore.exceptions import ClientError

from emulator_helpers import client_error, strip_meta

DEPLOY = "TestDeployments::"
CREATE_DELETE = DEPLOY + "test_create_delete_deployments[False] (stageName passed to CreateDeployment)/"
CREATE_UPDATE = DEPLOY + "test_create_update_deployments/"
STAGES = "TestStages::test_create_update_stages/"
WILDCARD = "TestStages::test_update_stage_remove_wildcard/"
FILTER = "TestApiGatewayStage::test_get_stages_filters_by_deployment_id/"
CANARY = "TestStageCrudCanary::"
INVOKING = "TestCanaryDeployments::test_invoking_canary_deployment/"
TEMPLATE_1 = '{"statusCode": 200, "message": "default deployment"}'
TEMPLATE_2 = '{"statusCode": 200, "message": "second deployment"}'


@pytest.fixture(autouse=True)
def no_deployment_quota(clean_emulator, emulator):
    """Functional tests deploy several times in a row: CreateDeployment's quota (on by default,
    1 per 5 s) is switched off here; the quota tests switch it back on."""
    emulator.set_faults(deployment_interval=0)


# ----------------------------------------------------------------- helpers


def mock_api(apigw, rest_api, template: str = TEMPLATE_1, path_part: str | None = None) -> dict:
    """A REST API with GET on the root (or on /path_part): MOCK integration, method response
    200 and integration response 200 (selectionPattern "", a JSON template), as the recorded
    canary tests set up. Returns the method's ids."""
    api_id, root = rest_api()
    resource = root
    if path_part:
        resource = apigw.create_resource(restApiId=api_id, parentId=root, pathPart=path_part)["id"]
    m = {"restApiId": api_id, "resourceId": resource, "httpMethod": "GET"}
    apigw.put_method(**m, authorizationType="NONE")
    apigw.put_method_response(**m, statusCode="200")
    apigw.put_integration(**m, type="MOCK", requestTemplates={"application/json": '{"statusCode": 200}'})
    apigw.put_integration_response(
        **m, statusCode="200", selectionPattern="", responseTemplates={"application/json": template}
    )
    return m


def set_template(apigw, m: dict, template: str) -> None:
    apigw.update_integration_response(**m, statusCode="200", patchOperations=[
        {"op": "replace", "path": "/responseTemplates/application~1json", "value": template}])


def served_template(emulator, api_id: str, stage: str, path: str = "/", canary: bool = False) -> str:
    status, body = emulator.served(api_id, stage)
    assert status == 200, body
    integrations = body["canaryIntegrations" if canary else "integrations"]
    return integrations[f"{path} GET"]["integrationResponses"]["200"]["responseTemplates"]["application/json"]


def like(actual, expected, subs: dict[str, str], exact: bool = True, where: str = "") -> None:
    """`actual` (boto3's answer) against a recorded body: placeholders replaced by `subs`,
    "datetime" = any datetime; `exact` also compares the key sets (recordings trimmed with
    "..." or "note", or shown only in part, are compared on their keys only)."""
    if isinstance(expected, str) and expected == "datetime":
        assert isinstance(actual, datetime.datetime), (where, actual)
        return
    if isinstance(expected, str):
        for placeholder, value in subs.items():
            expected = expected.replace(placeholder, value)
        assert actual == expected, (where, actual, expected)
        return
    if isinstance(expected, dict):
        assert isinstance(actual, dict), (where, actual)
        keys = {k for k in expected if k not in ("...", "note")}
        if exact and "..." not in expected:
            assert set(actual) == keys, (where, sorted(actual), sorted(keys))
        for k in keys:
            assert k in actual, (where, k, actual)
            like(actual[k], expected[k], subs, exact, f"{where}.{k}")
        return
    if isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), (where, actual, expected)
        for i, (a, e) in enumerate(zip(actual, expected)):
            like(a, e, subs, exact, f"{where}[{i}]")
        return
    assert actual == expected, (where, actual, expected)


def assert_recorded(response: dict, fixture: dict, subs: dict[str, str] | None = None,
                    exact: bool = True) -> None:
    assert response["ResponseMetadata"]["HTTPStatusCode"] == fixture["status"]
    like(strip_meta(response), fixture["body"], subs or {}, exact)


def assert_recorded_error(excinfo, fixture: dict, message: str | None = None) -> None:
    """The error against a recording; `message` when the recording abbreviates its message."""
    want = (fixture["status"], fixture["error"]["code"], message or fixture["error"]["message"])
    assert client_error(excinfo) == want


def message(deploy_recorded: dict, name: str, **values: str) -> str:
    return deploy_recorded["messages"][name]["template"].format(**values)


def stage_of(apigw, api_id: str, name: str) -> dict:
    return strip_meta(apigw.get_stage(restApiId=api_id, stageName=name))


# ----------------------------------------------------------------- draft vs deployed


def test_a_stage_serves_its_deployment_not_the_draft(emulator, apigw, rest_api):
    m = mock_api(apigw, rest_api, TEMPLATE_1, path_part="pets")
    api_id = m["restApiId"]
    dep1 = apigw.create_deployment(restApiId=api_id, stageName="dev")["id"]
    deployed = strip_meta(apigw.get_integration(**m))
    status, body = emulator.served(api_id, "dev")
    assert status == 200
    assert body == {
        "deploymentId": dep1, "canaryDeploymentId": None, "canaryIntegrations": None,
        "integrations": {"/pets GET": deployed},
    }

    # The draft changes three ways; the stage keeps serving deployment 1 as it was.
    set_template(apigw, m, TEMPLATE_2)
    apigw.update_integration(**m, patchOperations=[
        {"op": "replace", "path": "/timeoutInMillis", "value": "1000"}])
    apigw.put_integration_response(**m, statusCode="500", selectionPattern="5\\d\\d")
    draft = strip_meta(apigw.get_integration(**m))
    assert draft["timeoutInMillis"] == 1000 and set(draft["integrationResponses"]) == {"200", "500"}
    assert emulator.served(api_id, "dev") == (200, body)

    # The next deployment publishes the draft as it is now.
    dep2 = apigw.create_deployment(restApiId=api_id, stageName="dev")["id"]
    status, after = emulator.served(api_id, "dev")
    assert after["deploymentId"] == dep2
    assert after["integrations"] == {"/pets GET": draft}
    assert served_template(emulator, api_id, "dev", "/pets") == TEMPLATE_2


def test_a_deployment_is_a_deep_copy_of_the_draft(emulator, apigw, rest_api):
    m = mock_api(apigw, rest_api, TEMPLATE_1)
    api_id = m["restApiId"]
    apigw.create_deployment(restApiId=api_id, stageName="dev")
    before = emulator.served(api_id, "dev")
    # PutIntegration replaces the integration (dropping its responses); DeleteMethod goes further.
    apigw.put_integration(**m, type="MOCK", requestTemplates={"text/plain": "x"})
    assert "integrationResponses" not in strip_meta(apigw.get_integration(**m))
    assert emulator.served(api_id, "dev") == before
    apigw.delete_method(**m)
    assert emulator.served(api_id, "dev") == before
    assert served_template(emulator, api_id, "dev") == TEMPLATE_1


def test_every_stage_serves_its_own_deployment(emulator, apigw, rest_api):
    m = mock_api(apigw, rest_api, TEMPLATE_1)
    api_id = m["restApiId"]
    apigw.create_deployment(restApiId=api_id, stageName="prod")
    set_template(apigw, m, TEMPLATE_2)
    apigw.create_deployment(restApiId=api_id, stageName="dev")
    assert served_template(emulator, api_id, "prod") == TEMPLATE_1
    assert served_template(emulator, api_id, "dev") == TEMPLATE_2


def test_create_deployment_needs_methods_with_integrations(apigw, rest_api):
    api_id, root = rest_api()
    with pytest.raises(ClientError) as e:
        apigw.create_deployment(restApiId=api_id, stageName="dev")
    assert client_error(e) == (400, "BadRequestException", "The REST API doesn't contain any methods")
    apigw.put_method(restApiId=api_id, resourceId=root, httpMethod="GET", authorizationType="NONE")
    apigw.put_integration(restApiId=api_id, resourceId=root, httpMethod="GET", type="MOCK")
    apigw.put_method(restApiId=api_id, resourceId=root, httpMethod="POST", authorizationType="NONE")
    with pytest.raises(ClientError) as e:
        apigw.create_deployment(restApiId=api_id, stageName="dev")
    assert client_error(e) == (400, "BadRequestException", "No integration defined for method")
    assert strip_meta(apigw.get_deployments(restApiId=api_id)) == {"items": []}
    with pytest.raises(ClientError) as e:
        apigw.get_stage(restApiId=api_id, stageName="dev")
    assert client_error(e)[0] == 404


# ----------------------------------------------------------------- deployments and stages (recorded)


def test_create_deployment_with_a_new_stage_name_creates_the_stage(apigw, rest_api, deploy_recorded):
    rec = deploy_recorded
    m = mock_api(apigw, rest_api)
    api_id = m["restApiId"]
    created = apigw.create_deployment(restApiId=api_id, stageName="s1")
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    subs = {"<deployment-id:1>": created["id"]}
    assert_recorded(apigw.get_deployment(restApiId=api_id, deploymentId=created["id"]),
                    rec[CREATE_DELETE + "get-deployment"], subs)
    assert_recorded(apigw.get_stages(restApiId=api_id), rec[CREATE_DELETE + "get-stages"], subs)
    with pytest.raises(ClientError) as e:
        apigw.delete_deployment(restApiId=api_id, deploymentId=created["id"])
    assert_recorded_error(e, rec[CREATE_DELETE + "delete-deployment-error-0"])

    # Delete the stage, then the deployment, and deploy to s1 again.
    assert apigw.delete_stage(restApiId=api_id, stageName="s1")["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert apigw.delete_deployment(restApiId=api_id, deploymentId=created["id"])[
        "ResponseMetadata"]["HTTPStatusCode"] == 202
    again = apigw.create_deployment(restApiId=api_id, stageName="s1")
    subs = {"<id:1>": again["id"]}
    assert_recorded(apigw.get_deployments(restApiId=api_id), rec[CREATE_DELETE + "get-deployments-0"], subs)
    assert_recorded(apigw.get_stages(restApiId=api_id), rec[CREATE_DELETE + "get-stages-0"], subs)


def test_create_deployment_response_is_id_and_created_date(apigw, rest_api, deploy_recorded):
    m = mock_api(apigw, rest_api)
    plain = apigw.create_deployment(restApiId=m["restApiId"])
    assert_recorded(plain, deploy_recorded[CANARY + "test_create_update_stages/create-deployment-1"],
                    {"<deployment-id:2>": plain["id"]})
    described = apigw.create_deployment(restApiId=m["restApiId"], description="second")
    assert set(strip_meta(described)) == {"id", "createdDate", "description"}
    assert described["description"] == "second"
    # No stageName: no stage is touched (facts §2.2).
    assert strip_meta(apigw.get_stages(restApiId=m["restApiId"])) == {"item": []}


def test_new_stage_takes_the_request_stage_fields(apigw, rest_api):
    m = mock_api(apigw, rest_api)
    dep = apigw.create_deployment(
        restApiId=m["restApiId"], stageName="dev", stageDescription="the dev stage",
        description="deployment one", variables={"backend": "dev.example.com", "v": "1"},
        tracingEnabled=True,
    )
    stage = stage_of(apigw, m["restApiId"], "dev")
    assert stage["deploymentId"] == dep["id"]
    assert stage["description"] == "the dev stage"
    assert stage["variables"] == {"backend": "dev.example.com", "v": "1"}
    assert stage["tracingEnabled"] is True
    assert stage["cacheClusterStatus"] == "NOT_AVAILABLE" and stage["methodSettings"] == {}


def test_create_deployment_repoints_an_existing_stage(emulator, apigw, rest_api, deploy_recorded):
    rec = deploy_recorded
    m = mock_api(apigw, rest_api)
    api_id = m["restApiId"]
    dep1 = apigw.create_deployment(restApiId=api_id)["id"]
    apigw.create_stage(restApiId=api_id, stageName="s1", deploymentId=dep1)
    subs = {"<deployment-id:1>": dep1}
    assert_recorded(apigw.get_deployment(restApiId=api_id, deploymentId=dep1),
                    rec[CREATE_UPDATE + "get-deployment-1"], subs)
    assert_recorded(apigw.get_stages(restApiId=api_id), rec[CREATE_UPDATE + "get-stages"], subs)
    with pytest.raises(ClientError) as e:
        apigw.delete_deployment(restApiId=api_id, deploymentId=dep1)
    assert_recorded_error(e, rec[CREATE_UPDATE + "delete-deployment-error"])

    dep2 = apigw.create_deployment(restApiId=api_id, stageName="s1")["id"]
    subs["<deployment-id:2>"] = dep2
    assert_recorded(apigw.get_deployment(restApiId=api_id, deploymentId=dep1),
                    rec[CREATE_UPDATE + "get-deployment-1-after-update"], subs)
    assert_recorded(apigw.get_deployment(restApiId=api_id, deploymentId=dep2),
                    rec[CREATE_UPDATE + "get-deployment-2"], subs)
    assert_recorded(apigw.get_stages(restApiId=api_id), rec[CREATE_UPDATE + "get-stages-after-update"], subs)
    assert emulator.served(api_id, "s1")[1]["deploymentId"] == dep2
    assert_recorded(apigw.delete_deployment(restApiId=api_id, deploymentId=dep1),
                    rec[CREATE_UPDATE + "delete-deployment-1"])
    with pytest.raises(ClientError) as e:
        apigw.delete_deployment(restApiId=api_id, deploymentId=dep2)
    assert_recorded_error(e, rec[CREATE_UPDATE + "delete-deployment-2-error"])


def test_repointing_leaves_the_other_stage_fields_alone(apigw, rest_api):
    """Not recorded whether CreateDeployment's stage fields overwrite an existing stage's: the
    emulator only moves deploymentId (an operator must use UpdateStage for the rest)."""
    m = mock_api(apigw, rest_api)
    api_id = m["restApiId"]
    apigw.create_deployment(restApiId=api_id, stageName="dev", stageDescription="one",
                            variables={"v": "1"})
    before = stage_of(apigw, api_id, "dev")
    dep2 = apigw.create_deployment(restApiId=api_id, stageName="dev", stageDescription="two",
                                   variables={"v": "2"}, tracingEnabled=True)["id"]
    after = stage_of(apigw, api_id, "dev")
    assert after["deploymentId"] == dep2
    for key in ("description", "variables", "tracingEnabled", "createdDate", "methodSettings"):
        assert after[key] == before[key], key


def test_create_stage_and_update_stage_match_the_recording(apigw, rest_api, deploy_recorded):
    rec = deploy_recorded
    m = mock_api(apigw, rest_api)
    api_id = m["restApiId"]
    dep = apigw.create_deployment(restApiId=api_id)["id"]
    subs = {"<deployment-id:1>": dep}
    created = apigw.create_stage(restApiId=api_id, stageName="s1", deploymentId=dep,
                                 description="my stage", documentationVersion="v123")
    assert_recorded(created, rec[STAGES + "create-stage"], subs)
    for key, path in (("error-update-doc-version", "/documentation_version"),
                      ("error-update-tags", "/tags/tag1")):
        fixture = rec[STAGES + key]
        with pytest.raises(ClientError) as e:
            apigw.update_stage(restApiId=api_id, stageName="s1",
                               patchOperations=[{"op": "replace", "path": path, "value": "123"}])
        assert_recorded_error(e, fixture, message(rec, "invalid_stage_path", path=path))
    assert message(rec, "invalid_stage_path", path="/documentation_version") == \
        rec[STAGES + "error-update-doc-version"]["error"]["message"]

    updated = apigw.update_stage(restApiId=api_id, stageName="s1",
                                 patchOperations=rec[STAGES + "update-stage"]["request"]["patchOperations"])
    assert_recorded(updated, rec[STAGES + "update-stage"], subs)
    override = apigw.update_stage(restApiId=api_id, stageName="s1",
                                  patchOperations=rec[STAGES + "update-stage-override"]["request"]["patchOperations"])
    assert_recorded(override, rec[STAGES + "update-stage-override"], subs, exact=False)
    assert override["methodSettings"]["*/*"] == dict(updated["methodSettings"]["*/*"], throttlingBurstLimit=100)
    assert override["methodSettings"]["test/GET"] == updated["methodSettings"]["test/GET"]
    assert override["lastUpdatedDate"] >= created["lastUpdatedDate"]
    assert override["createdDate"] == created["createdDate"]


def test_remove_wildcard_method_setting_matches_the_recording(apigw, rest_api, deploy_recorded):
    rec = deploy_recorded
    m = mock_api(apigw, rest_api)
    api_id = m["restApiId"]
    apigw.create_deployment(restApiId=api_id, stageName="dev")
    remove = [{"op": "remove", "path": "/*/*"}]
    with pytest.raises(ClientError) as e:
        apigw.update_stage(restApiId=api_id, stageName="dev", patchOperations=remove)
    assert_recorded_error(e, rec[WILDCARD + "delete-error"])
    updated = apigw.update_stage(restApiId=api_id, stageName="dev", patchOperations=[
        {"op": "replace", "path": "/*/*/caching/enabled", "value": "true"}])
    assert_recorded(updated, rec[WILDCARD + "update-stage"], exact=False)
    assert_recorded(apigw.update_stage(restApiId=api_id, stageName="dev", patchOperations=remove),
                    rec[WILDCARD + "update-stage-reset"], exact=False)


def test_get_stages_filters_by_deployment_id(apigw, rest_api, deploy_recorded):
    rec = deploy_recorded
    m = mock_api(apigw, rest_api)
    api_id = m["restApiId"]
    dep1 = apigw.create_deployment(restApiId=api_id, stageName="stage1")["id"]
    dep2 = apigw.create_deployment(restApiId=api_id, stageName="stage2")["id"]
    subs = {"<deployment-id:1>": dep1, "<deployment-id:2>": dep2}
    assert_recorded(apigw.get_stages(restApiId=api_id), rec[FILTER + "all-stages"], subs, exact=False)
    assert_recorded(apigw.get_stages(restApiId=api_id, deploymentId=dep1),
                    rec[FILTER + "stages-deploy1"], subs, exact=False)
    # Not recorded: a canary's deploymentId does not match the filter.
    apigw.create_deployment(restApiId=api_id, stageName="stage2", canarySettings={"percentTraffic": 5})
    canary = stage_of(apigw, api_id, "stage2")["canarySettings"]["deploymentId"]
    assert apigw.get_stages(restApiId=api_id, deploymentId=canary)["item"] == []


def test_stage_errors(apigw, rest_api):
    m = mock_api(apigw, rest_api)
    api_id = m["restApiId"]
    dep = apigw.create_deployment(restApiId=api_id, stageName="dev")["id"]
    missing = (404, "NotFoundException", "Invalid Stage identifier specified")
    for call in (
        lambda: apigw.get_stage(restApiId=api_id, stageName="nope"),
        lambda: apigw.delete_stage(restApiId=api_id, stageName="nope"),
        lambda: apigw.update_stage(restApiId=api_id, stageName="nope", patchOperations=[
            {"op": "replace", "path": "/description", "value": "x"}]),
    ):
        with pytest.raises(ClientError) as e:
            call()
        assert client_error(e) == missing
    with pytest.raises(ClientError) as e:
        apigw.create_stage(restApiId=api_id, stageName="dev", deploymentId=dep)
    assert client_error(e) == (409, "ConflictException", "Stage already exists")
    with pytest.raises(ClientError) as e:
        apigw.create_stage(restApiId=api_id, stageName="qa", deploymentId="nope")
    assert client_error(e) == (400, "BadRequestException", "Deployment id does not exist")
    with pytest.raises(ClientError) as e:
        apigw.update_stage(restApiId=api_id, stageName="dev", patchOperations=[
            {"op": "wrong", "path": "/description", "value": "x"}])
    assert client_error(e)[:2] == (400, "ValidationException")
    assert "updateStageInput.patchOperations.1.member.op" in client_error(e)[2]
    with pytest.raises(ClientError) as e:
        apigw.get_deployment(restApiId=api_id, deploymentId="nope")
    assert client_error(e) == (404, "NotFoundException", "Invalid Deployment identifier specified")
    with pytest.raises(ClientError) as e:
        apigw.delete_deployment(restApiId=api_id, deploymentId="nope")
    assert client_error(e) == (404, "NotFoundException", "Invalid Deployment identifier specified")
    with pytest.raises(ClientError) as e:
        apigw.get_stages(restApiId="nope")
    assert client_error(e) == (404, "NotFoundException", "Invalid API identifier specified")


def test_delete_stage_keeps_its_deployment(emulator, apigw, rest_api):
    m = mock_api(apigw, rest_api)
    api_id = m["restApiId"]
    dep = apigw.create_deployment(restApiId=api_id, stageName="dev")["id"]
    assert apigw.delete_stage(restApiId=api_id, stageName="dev")["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert [d["id"] for d in apigw.get_deployments(restApiId=api_id)["items"]] == [dep]
    status, body = emulator.served(api_id, "dev")
    assert status == 404 and "dev" in body["message"]


# ----------------------------------------------------------------- DeleteDeployment


def test_delete_deployment_is_refused_while_a_stage_points_at_it(apigw, rest_api, deploy_recorded):
    fixture = deploy_recorded[CREATE_UPDATE + "delete-deployment-error"]
    m = mock_api(apigw, rest_api)
    api_id = m["restApiId"]
    dep1 = apigw.create_deployment(restApiId=api_id, stageName="dev")["id"]
    with pytest.raises(ClientError) as e:
        apigw.delete_deployment(restApiId=api_id, deploymentId=dep1)
    assert_recorded_error(e, fixture)
    dep2 = apigw.create_deployment(restApiId=api_id)["id"]
    apigw.update_stage(restApiId=api_id, stageName="dev", patchOperations=[
        {"op": "replace", "path": "/deploymentId", "value": dep2}])
    apigw.delete_deployment(restApiId=api_id, deploymentId=dep1)
    assert [d["id"] for d in apigw.get_deployments(restApiId=api_id)["items"]] == [dep2]


def test_delete_deployment_is_refused_while_a_canary_points_at_it(apigw, rest_api, deploy_recorded):
    """Not recorded: the emulator treats a canary's deploymentId like the stage's own."""
    fixture = deploy_recorded[CREATE_UPDATE + "delete-deployment-error"]
    m = mock_api(apigw, rest_api)
    api_id = m["restApiId"]
    apigw.create_deployment(restApiId=api_id, stageName="dev")
    canary = apigw.create_deployment(restApiId=api_id, stageName="dev",
                                     canarySettings={"percentTraffic": 10})["id"]
    with pytest.raises(ClientError) as e:
        apigw.delete_deployment(restApiId=api_id, deploymentId=canary)
    assert_recorded_error(e, fixture)
    apigw.update_stage(restApiId=api_id, stageName="dev",
                       patchOperations=[{"op": "remove", "path": "/canarySettings"}])
    assert apigw.delete_deployment(restApiId=api_id, deploymentId=canary)[
        "ResponseMetadata"]["HTTPStatusCode"] == 202


def test_get_deployments_pages_and_embeds_the_api_summary(apigw, rest_api):
    m = mock_api(apigw, rest_api, path_part="pets")
    api_id = m["restApiId"]
    ids = [apigw.create_deployment(restApiId=api_id)["id"] for _ in range(3)]
    first = apigw.get_deployments(restApiId=api_id, limit=2)
    assert [d["id"] for d in first["items"]] == ids[:2] and first["position"]
    rest = apigw.get_deployments(restApiId=api_id, limit=2, position=first["position"])
    assert [d["id"] for d in rest["items"]] == ids[2:] and "position" not in rest
    plain = strip_meta(apigw.get_deployment(restApiId=api_id, deploymentId=ids[0]))
    assert set(plain) == {"id", "createdDate"}
    summary = apigw.get_deployment(restApiId=api_id, deploymentId=ids[0], embed=["apisummary"])
    assert summary["apiSummary"] == {"/pets": {"GET": {"authorizationType": "NONE", "apiKeyRequired": False}}}


# ----------------------------------------------------------------- UpdateStage


def test_update_stage_variables(apigw, rest_api, deploy_recorded):
    m = mock_api(apigw, rest_api)
    api_id = m["restApiId"]
    apigw.create_deployment(restApiId=api_id, stageName="dev", variables={"a": "1"})

    def patch(*ops):
        return strip_meta(apigw.update_stage(restApiId=api_id, stageName="dev", patchOperations=list(ops)))

    assert patch({"op": "replace", "path": "/variables/b", "value": "2"},
                 {"op": "replace", "path": "/variables/a", "value": "10"})["variables"] == {"a": "10", "b": "2"}
    assert patch({"op": "remove", "path": "/variables/a"})["variables"] == {"b": "2"}
    assert "variables" not in patch({"op": "remove", "path": "/variables/b"})
    # Not recorded: removing a variable that is not there is refused, in the shape of AWS's
    # other UpdateStage removes of something absent; nothing of the patch is applied.
    patch({"op": "replace", "path": "/variables/c", "value": "3"})
    before = stage_of(apigw, api_id, "dev")
    with pytest.raises(ClientError) as e:
        patch({"op": "replace", "path": "/variables/d", "value": "4"},
              {"op": "remove", "path": "/variables/missing"})
    assert client_error(e) == (400, "BadRequestException",
                               message(deploy_recorded, "cannot_remove", setting="variables/missing"))
    assert stage_of(apigw, api_id, "dev")["variables"] == before["variables"] == {"c": "3"}


def test_update_stage_scalars_and_deployment_id(emulator, apigw, rest_api):
    m = mock_api(apigw, rest_api)
    api_id = m["restApiId"]
    dep1 = apigw.create_deployment(restApiId=api_id, stageName="dev")["id"]
    set_template(apigw, m, TEMPLATE_2)
    dep2 = apigw.create_deployment(restApiId=api_id)["id"]
    out = strip_meta(apigw.update_stage(restApiId=api_id, stageName="dev", patchOperations=[
        {"op": "replace", "path": "/description", "value": "new"},
        {"op": "replace", "path": "/tracingEnabled", "value": "true"},
        {"op": "replace", "path": "/deploymentId", "value": dep2},
    ]))
    assert (out["description"], out["tracingEnabled"], out["deploymentId"]) == ("new", True, dep2)
    assert served_template(emulator, api_id, "dev") == TEMPLATE_2
    with pytest.raises(ClientError) as e:
        apigw.update_stage(restApiId=api_id, stageName="dev", patchOperations=[
            {"op": "replace", "path": "/deploymentId", "value": "nope"}])
    assert client_error(e) == (400, "BadRequestException", "Deployment id does not exist")
    apigw.update_stage(restApiId=api_id, stageName="dev", patchOperations=[
        {"op": "replace", "path": "/deploymentId", "value": dep1}])
    assert served_template(emulator, api_id, "dev") == TEMPLATE_1


def test_update_stage_rejects_unsupported_paths(apigw, rest_api, deploy_recorded):
    m = mock_api(apigw, rest_api)
    api_id = m["restApiId"]
    apigw.create_deployment(restApiId=api_id, stageName="dev")
    for path in ("/stageName", "/variables", "/methodSettings", "/canarySettings", "/*/*/bogus/x"):
        with pytest.raises(ClientError) as e:
            apigw.update_stage(restApiId=api_id, stageName="dev",
                               patchOperations=[{"op": "replace", "path": path, "value": "x"}])
        assert client_error(e) == (400, "BadRequestException",
                                   message(deploy_recorded, "invalid_stage_path", path=path))


# ----------------------------------------------------------------- canaries (recorded)


def test_canary_stage_crud_matches_the_recording(emulator, apigw, rest_api, deploy_recorded):
    rec = deploy_recorded
    t = CANARY + "test_create_update_stages/"
    m = mock_api(apigw, rest_api, TEMPLATE_1)
    api_id = m["restApiId"]
    first = apigw.create_deployment(restApiId=api_id)
    set_template(apigw, m, TEMPLATE_2)
    second = apigw.create_deployment(restApiId=api_id)
    subs = {"<deployment-id:2>": first["id"], "<deployment-id:1>": second["id"]}
    assert_recorded(first, rec[t + "create-deployment-1"], subs)
    assert_recorded(second, rec[t + "create-deployment-2"], subs)
    created = apigw.create_stage(
        restApiId=api_id, stageName="dev", deploymentId=first["id"], description="dev stage",
        variables={"testVar": "default"},
        canarySettings={"deploymentId": second["id"], "percentTraffic": 50,
                        "stageVariableOverrides": {"testVar": "canary"}},
    )
    assert_recorded(created, rec[t + "create-stage"], subs)
    status, body = emulator.served(api_id, "dev")
    assert (body["deploymentId"], body["canaryDeploymentId"]) == (first["id"], second["id"])
    assert served_template(emulator, api_id, "dev") == TEMPLATE_1
    assert served_template(emulator, api_id, "dev", canary=True) == TEMPLATE_2

    overrides = apigw.update_stage(restApiId=api_id, stageName="dev",
                                   patchOperations=rec[t + "update-stage-canary-settings-overrides"]["request"]["patchOperations"])
    assert_recorded(overrides, rec[t + "update-stage-canary-settings-overrides"], subs, exact=False)
    removed = apigw.update_stage(restApiId=api_id, stageName="dev",
                                 patchOperations=[{"op": "remove", "path": "/canarySettings"}])
    fixture = rec[t + "update-stage-remove-canary-settings"]
    # The recording's answer lacks the dates (trimmed); the rest is compared key for key.
    assert {k: v for k, v in strip_meta(removed).items() if not k.endswith("Date")} == \
        {k: v.replace("<deployment-id:2>", first["id"]) if isinstance(v, str) else v
         for k, v in fixture["body"].items()}
    assert emulator.served(api_id, "dev")[1]["canaryDeploymentId"] is None


def test_canary_deployment_keeps_the_stage_deployment(emulator, apigw, rest_api, deploy_recorded):
    rec = deploy_recorded
    t = CANARY + "test_create_canary_deployment_with_stage/"
    m = mock_api(apigw, rest_api, TEMPLATE_1)
    api_id = m["restApiId"]
    first = apigw.create_deployment(restApiId=api_id)
    subs = {"<deployment-id:1>": first["id"]}
    assert_recorded(first, rec[t + "create-deployment"], subs)
    assert_recorded(apigw.create_stage(restApiId=api_id, stageName="dev", deploymentId=first["id"],
                                       description="dev stage", variables={"testVar": "default"}),
                    rec[t + "create-stage"], subs, exact=False)
    set_template(apigw, m, TEMPLATE_2)
    canary = apigw.create_deployment(restApiId=api_id, stageName="dev", canarySettings={
        "percentTraffic": 50, "stageVariableOverrides": {"testVar": "canary"}})
    subs["<deployment-id:2>"] = canary["id"]
    assert_recorded(canary, rec[t + "create-canary-deployment"], subs)
    assert_recorded(apigw.get_stage(restApiId=api_id, stageName="dev"), rec[t + "get-stage"], subs, exact=False)
    assert served_template(emulator, api_id, "dev") == TEMPLATE_1
    assert served_template(emulator, api_id, "dev", canary=True) == TEMPLATE_2


def test_second_canary_deployment_replaces_the_whole_canary(apigw, rest_api, deploy_recorded):
    rec = deploy_recorded
    t = CANARY + "test_create_canary_deployment/"
    m = mock_api(apigw, rest_api)
    api_id = m["restApiId"]
    dep1 = apigw.create_deployment(restApiId=api_id)["id"]
    subs = {"<deployment-id:1>": dep1}
    assert_recorded(apigw.create_stage(
        restApiId=api_id, stageName="dev1", deploymentId=dep1, variables={"testVar": "default"},
        canarySettings={"deploymentId": dep1, "percentTraffic": 40,
                        "stageVariableOverrides": {"testVar": "canary1"}}),
        rec[t + "create-stage"], subs, exact=False)
    dep2 = apigw.create_deployment(restApiId=api_id, stageName="dev1", canarySettings={
        "percentTraffic": 50, "stageVariableOverrides": {"testVar": "canary2"}})
    subs["<deployment-id:2>"] = dep2["id"]
    assert_recorded(dep2, rec[t + "create-canary-deployment"], subs)
    assert_recorded(apigw.get_stage(restApiId=api_id, stageName="dev1"), rec[t + "get-stage-1"], subs, exact=False)
    assert stage_of(apigw, api_id, "dev1")["canarySettings"] == {
        "deploymentId": dep2["id"], "percentTraffic": 50.0,
        "stageVariableOverrides": {"testVar": "canary2"}, "useStageCache": False}
    # bad-canary-deployment-id: a canary naming a deployment that does not exist.
    for call in (
        lambda: apigw.create_stage(restApiId=api_id, stageName="dev2", deploymentId=dep1,
                                   canarySettings={"deploymentId": "nope", "percentTraffic": 1}),
        lambda: apigw.update_stage(restApiId=api_id, stageName="dev1", patchOperations=[
            {"op": "replace", "path": "/canarySettings/deploymentId", "value": "nope"}]),
    ):
        with pytest.raises(ClientError) as e:
            call()
        assert_recorded_error(e, rec[t + "bad-canary-deployment-id"])


def test_canary_created_by_update_stage(apigw, rest_api, deploy_recorded):
    rec = deploy_recorded
    t = CANARY + "test_create_canary_deployment_by_stage_update/"
    m = mock_api(apigw, rest_api)
    api_id = m["restApiId"]
    dep1 = apigw.create_deployment(restApiId=api_id, stageName="dev")["id"]
    dep2 = apigw.create_deployment(restApiId=api_id)["id"]
    subs = {"<deployment-id:1>": dep1, "<deployment-id:2>": dep2}
    with_dep = apigw.update_stage(restApiId=api_id, stageName="dev", patchOperations=[
        {"op": "replace", "path": "/canarySettings/deploymentId", "value": dep2}])
    assert_recorded(with_dep, rec[t + "update-stage-with-deployment"], subs, exact=False)
    assert with_dep["canarySettings"] == {"deploymentId": dep2, "percentTraffic": 0.0, "useStageCache": False}
    removed = apigw.update_stage(restApiId=api_id, stageName="dev",
                                 patchOperations=[{"op": "remove", "path": "/canarySettings"}])
    assert_recorded(removed, rec[t + "remove-stage-canary"], subs, exact=False)
    assert "canarySettings" not in removed
    with_percent = apigw.update_stage(restApiId=api_id, stageName="dev", patchOperations=[
        {"op": "replace", "path": "/canarySettings/percentTraffic", "value": "50"}])
    assert_recorded(with_percent, rec[t + "update-stage-with-percent"], subs, exact=False)
    assert with_percent["canarySettings"] == {"deploymentId": dep1, "percentTraffic": 50.0, "useStageCache": False}


def test_canary_deployment_validation_messages(apigw, rest_api, deploy_recorded):
    rec = deploy_recorded
    t = CANARY + "test_create_canary_deployment_validation/"
    m = mock_api(apigw, rest_api)
    api_id = m["restApiId"]
    before = apigw.get_deployments(restApiId=api_id)["items"]
    for key in ("create-canary-deployment-no-stage", "create-canary-deployment-empty-stage",
                "create-canary-deployment-non-existing-stage"):
        request = {k: v for k, v in rec[t + key]["request"].items() if k != "op"}
        with pytest.raises(ClientError) as e:
            apigw.create_deployment(restApiId=api_id, **request)
        assert_recorded_error(e, rec[t + key])
    assert apigw.get_deployments(restApiId=api_id)["items"] == before  # nothing was created
    with pytest.raises(ClientError) as e:
        apigw.create_deployment(restApiId=api_id, stageName="qa", canarySettings={"percentTraffic": 1})
    assert client_error(e)[2] == message(rec, "canary_stage_must_exist", stage="qa")


def test_update_stage_canary_validation_messages(apigw, rest_api, deploy_recorded):
    rec = deploy_recorded
    t = CANARY + "test_update_stage_canary_deployment_validation/"
    m = mock_api(apigw, rest_api)
    api_id = m["restApiId"]
    apigw.create_deployment(restApiId=api_id, stageName="dev")
    dep2 = apigw.create_deployment(restApiId=api_id, stageName="dev", canarySettings={
        "percentTraffic": 50, "stageVariableOverrides": {"testVar": "canary"}})["id"]
    apigw.create_deployment(restApiId=api_id, stageName="dev2")
    before = {s: stage_of(apigw, api_id, s) for s in ("dev", "dev2")}
    for key in ("update-stage-canary-settings-remove-overrides", "update-stage-canary-settings-bad-path",
                "update-stage-canary-settings-replace-bad-path", "update-stage-add-deployment",
                "update-stage-no-deployment"):
        fixture = rec[t + key]
        request = fixture["request"]
        ops = json.loads(json.dumps(request["patchOperations"]).replace("<deployment-2-id>", dep2))
        with pytest.raises(ClientError) as e:
            apigw.update_stage(restApiId=api_id, stageName=request["stageName"], patchOperations=ops)
        expected = None
        if key == "update-stage-canary-settings-replace-bad-path":  # the recording abbreviates the list
            expected = message(rec, "invalid_stage_path", path=ops[0]["path"])
        assert_recorded_error(e, fixture, expected)
    assert {s: stage_of(apigw, api_id, s) for s in ("dev", "dev2")} == before


# ----------------------------------------------------------------- promotion (copy ops)


def test_promotion_copy_ops_match_the_recording(emulator, apigw, rest_api, deploy_recorded):
    rec = deploy_recorded
    t = CANARY + "test_update_stage_with_copy_ops/"
    m = mock_api(apigw, rest_api, TEMPLATE_1)
    api_id = m["restApiId"]
    dep1 = apigw.create_deployment(restApiId=api_id, stageName="dev",
                                   variables={"testVar": "test", "testVar2": "test2"})["id"]
    subs = {"<deployment-id:1>": dep1}

    with pytest.raises(ClientError) as e:
        apigw.update_stage(restApiId=api_id, stageName="dev", patchOperations=[
            {"op": "copy", "from": "/variables", "path": "/canarySettings/stageVariableOverrides"}])
    assert_recorded_error(e, rec[t + "copy-with-bad-statement"])
    assert client_error(e)[2] == message(rec, "invalid_copy", path="/canarySettings/stageVariableOverrides",
                                         **{"from": "/variables"})
    with pytest.raises(ClientError) as e:
        apigw.update_stage(restApiId=api_id, stageName="dev",
                           patchOperations=rec[t + "copy-with-no-replace"]["request"]["patchOperations"])
    assert_recorded_error(e, rec[t + "copy-with-no-replace"])

    promoted = apigw.update_stage(restApiId=api_id, stageName="dev",
                                  patchOperations=rec[t + "update-stage-with-copy"]["request"]["patchOperations"])
    assert_recorded(promoted, rec[t + "update-stage-with-copy"], subs, exact=False)

    set_template(apigw, m, TEMPLATE_2)
    dep2 = apigw.create_deployment(restApiId=api_id, stageName="dev", canarySettings={
        "percentTraffic": 50, "stageVariableOverrides": {"testVar": "override"}})["id"]
    subs["<deployment-id:2>"] = dep2
    get_key = next(k for k in rec if k.startswith(t + "get-stage"))
    assert_recorded(apigw.get_stage(restApiId=api_id, stageName="dev"), rec[get_key], subs, exact=False)
    assert served_template(emulator, api_id, "dev") == TEMPLATE_1

    promoted = apigw.update_stage(restApiId=api_id, stageName="dev",
                                  patchOperations=rec[t + "update-stage-with-copy"]["request"]["patchOperations"])
    assert_recorded(promoted, rec[t + "update-stage-with-copy-2"], subs, exact=False)
    assert promoted["variables"] == {"testVar": "override", "testVar2": "test2"}
    status, body = emulator.served(api_id, "dev")
    assert (body["deploymentId"], body["canaryDeploymentId"]) == (dep2, dep2)
    assert served_template(emulator, api_id, "dev") == TEMPLATE_2


def test_invoking_canary_recording_stage_state(emulator, apigw, rest_api, deploy_recorded):
    """The stage states of the recorded canary invocation; the draft change reaches only the
    canary deployment, as the recorded invocations showed."""
    rec = deploy_recorded
    m = mock_api(apigw, rest_api, TEMPLATE_1)
    api_id = m["restApiId"]
    d1 = apigw.create_deployment(restApiId=api_id, stageName="dev",
                                 variables={"testVar": "default", "defaultVar": "default"})
    subs = {"<deployment-id:2>": d1["id"]}
    assert_recorded(d1, rec[INVOKING + "create-deployment-1"], subs)
    set_template(apigw, m, TEMPLATE_2)
    d2 = apigw.create_deployment(restApiId=api_id, stageName="dev", canarySettings={
        "percentTraffic": 0, "stageVariableOverrides": {"testVar": "canary", "noStageVar": "canary"}})
    subs["<deployment-id:1>"] = d2["id"]
    assert_recorded(d2, rec[INVOKING + "create-deployment-2"], subs)
    assert served_template(emulator, api_id, "dev") == TEMPLATE_1
    updated = apigw.update_stage(restApiId=api_id, stageName="dev",
                                 patchOperations=rec[INVOKING + "update-stage"]["request"]["patchOperations"])
    assert_recorded(updated, rec[INVOKING + "update-stage"], subs, exact=False)
    assert served_template(emulator, api_id, "dev", canary=True) == TEMPLATE_2


# ----------------------------------------------------------------- the served endpoint and counters


def test_served_endpoint_404s(emulator, apigw, rest_api):
    m = mock_api(apigw, rest_api)
    apigw.create_deployment(restApiId=m["restApiId"], stageName="dev")
    for api_id, stage in ((m["restApiId"], "prod"), ("nope", "dev")):
        status, body = emulator.served(api_id, stage)
        assert status == 404 and stage in body["message"] and api_id in body["message"]
    r = requests.get(f"{emulator.url}/_emulator/served/{m['restApiId']}", timeout=10)
    assert r.status_code == 404 and "message" in r.json()
    # Admin calls are not API Gateway calls.
    assert "Unknown" not in emulator.calls()


def test_calls_count_the_deployment_and_stage_operations(emulator, apigw, rest_api):
    m = mock_api(apigw, rest_api)
    api_id = m["restApiId"]
    emulator.admin("POST", "calls/reset")
    dep1 = apigw.create_deployment(restApiId=api_id)["id"]
    apigw.create_stage(restApiId=api_id, stageName="dev", deploymentId=dep1)
    apigw.get_stage(restApiId=api_id, stageName="dev")
    apigw.get_stages(restApiId=api_id)
    apigw.update_stage(restApiId=api_id, stageName="dev", patchOperations=[
        {"op": "replace", "path": "/description", "value": "x"}])
    apigw.get_deployment(restApiId=api_id, deploymentId=dep1)
    apigw.get_deployments(restApiId=api_id)
    with pytest.raises(ClientError):
        apigw.delete_deployment(restApiId=api_id, deploymentId=dep1)
    apigw.delete_stage(restApiId=api_id, stageName="dev")
    apigw.delete_deployment(restApiId=api_id, deploymentId=dep1)
    emulator.served(api_id, "dev")
    assert emulator.calls() == {
        "CreateDeployment": 1, "CreateStage": 1, "GetStage": 1, "GetStages": 1, "UpdateStage": 1,
        "GetDeployment": 1, "GetDeployments": 1, "DeleteDeployment": 2, "DeleteStage": 1,
    }
    assert emulator.responses() == {
        "CreateDeployment": {"201": 1}, "CreateStage": {"201": 1}, "GetStage": {"200": 1},
        "GetStages": {"200": 1}, "UpdateStage": {"200": 1}, "GetDeployment": {"200": 1},
        "GetDeployments": {"200": 1}, "DeleteDeployment": {"400": 1, "202": 1},
        "DeleteStage": {"202": 1},
    }


def test_wire_shapes_follow_botocore(emulator, apigw, rest_api):
    """What the Rust SDK reads: the list key is "item" (botocore serialises Deployments.items
    and Stages.item under "item"); dates are epoch-second numbers; percentTraffic a number."""
    m = mock_api(apigw, rest_api)
    api_id = m["restApiId"]
    apigw.create_deployment(restApiId=api_id, stageName="dev")
    apigw.create_deployment(restApiId=api_id, stageName="dev", canarySettings={"percentTraffic": 5})
    deployments = requests.get(f"{emulator.url}/restapis/{api_id}/deployments", timeout=10).json()
    assert set(deployments) == {"item"}
    assert all(isinstance(d["createdDate"], (int, float)) for d in deployments["item"])
    stages = requests.get(f"{emulator.url}/restapis/{api_id}/stages", timeout=10).json()
    assert set(stages) == {"item"}
    stage = stages["item"][0]
    assert isinstance(stage["createdDate"], (int, float)) and isinstance(stage["lastUpdatedDate"], (int, float))
    assert stage["canarySettings"]["percentTraffic"] == 5.0
    assert None not in stage.values()


# ----------------------------------------------------------------- CreateDeployment's quota


def deployment_429(excinfo) -> str:
    assert client_error(excinfo) == (429, "TooManyRequestsException", "Too Many Requests")
    return excinfo.value.response["ResponseMetadata"]["HTTPHeaders"]["retry-after"]


def test_deployment_quota_is_on_by_default(emulator, apigw, rest_api):
    m = mock_api(apigw, rest_api)
    api_id = m["restApiId"]
    emulator.set_faults()  # the defaults: 1 CreateDeployment every 5 s
    emulator.admin("POST", "calls/reset")
    apigw.create_deployment(restApiId=api_id)
    with pytest.raises(ClientError) as e:
        apigw.create_deployment(restApiId=api_id, stageName="dev")
    assert deployment_429(e) in ("5", "4")  # whole seconds until the next token
    assert emulator.responses()["CreateDeployment"] == {"201": 1, "429": 1}
    # The refused call did nothing.
    assert len(apigw.get_deployments(restApiId=api_id)["items"]) == 1
    assert apigw.get_stages(restApiId=api_id)["item"] == []
    # Other operations are not limited by it.
    for _ in range(5):
        apigw.get_deployments(restApiId=api_id)


def test_deployment_quota_refills_after_the_interval(emulator, apigw, rest_api):
    m = mock_api(apigw, rest_api)
    api_id = m["restApiId"]
    emulator.set_faults(deployment_interval=0.5)
    emulator.admin("POST", "calls/reset")
    t0 = time.monotonic()
    apigw.create_deployment(restApiId=api_id)
    with pytest.raises(ClientError) as e:
        apigw.create_deployment(restApiId=api_id)
    assert deployment_429(e) == "1"  # rounded up to whole seconds
    refused = 1
    while True:  # retry until the bucket has a token again
        try:
            apigw.create_deployment(restApiId=api_id)
            break
        except ClientError as err:
            assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 429
            refused += 1
            time.sleep(0.05)
    elapsed = time.monotonic() - t0
    assert 0.45 <= elapsed < 3, elapsed
    assert emulator.responses()["CreateDeployment"] == {"201": 2, "429": refused}


def test_deployment_quota_burst_and_off(emulator, apigw, rest_api):
    m = mock_api(apigw, rest_api)
    api_id = m["restApiId"]
    emulator.set_faults(deployment_interval=60, deployment_burst=3)
    for _ in range(3):
        apigw.create_deployment(restApiId=api_id)
    with pytest.raises(ClientError) as e:
        apigw.create_deployment(restApiId=api_id)
    assert deployment_429(e) == "60"
    emulator.set_faults(deployment_interval=0)
    emulator.admin("POST", "calls/reset")
    for _ in range(10):
        apigw.create_deployment(restApiId=api_id)
    assert emulator.responses() == {"CreateDeployment": {"201": 10}}  # zero 429s


def test_deployment_quota_is_per_account_and_region(emulator):
    emulator.set_faults(deployment_interval=60)
    east_a = emulator.client()
    east_b = emulator.client(access_key="AKIAEMULATOROTHER000")
    west = emulator.client(region="eu-west-1")
    apis = {}
    for name, client in (("east", east_a), ("west", west)):
        api = client.create_rest_api(name=f"quota-{name}")
        apis[name] = api["id"]
        m = {"restApiId": api["id"], "resourceId": api["rootResourceId"], "httpMethod": "GET"}
        client.put_method(**m, authorizationType="NONE")
        client.put_integration(**m, type="MOCK")
    try:
        east_a.create_deployment(restApiId=apis["east"])
        west.create_deployment(restApiId=apis["west"])  # another Region: its own bucket
        with pytest.raises(ClientError) as e:  # another key of the same (moto default) account
            east_b.create_deployment(restApiId=apis["east"])
        deployment_429(e)
        emulator.set_faults(deployment_interval=60, deployment_quota_scope="access_key")
        east_a.create_deployment(restApiId=apis["east"])
        east_b.create_deployment(restApiId=apis["east"])  # its own bucket now
        with pytest.raises(ClientError) as e:
            east_a.create_deployment(restApiId=apis["east"])
        deployment_429(e)
    finally:
        east_a.delete_rest_api(restApiId=apis["east"])
        west.delete_rest_api(restApiId=apis["west"])


def test_deployment_quota_ignores_operations_and_follows_faults(emulator, apigw, rest_api):
    m = mock_api(apigw, rest_api)
    api_id = m["restApiId"]
    # `operations` limits the faults, not the quota.
    emulator.set_faults(deployment_interval=60, operations=["GetStage"], throttle=1.0)
    apigw.create_deployment(restApiId=api_id)
    with pytest.raises(ClientError) as e:
        apigw.create_deployment(restApiId=api_id)
    deployment_429(e)
    # The faults come first: calls they answer never reach the quota (no 429 among them).
    emulator.set_faults(deployment_interval=60, error_5xx=1.0, error_5xx_status=500,
                        operations=["CreateDeployment"])
    emulator.admin("POST", "calls/reset")
    for _ in range(3):
        with pytest.raises(ClientError) as e:
            apigw.create_deployment(restApiId=api_id)
        assert client_error(e)[0] == 500
    assert emulator.responses() == {"CreateDeployment": {"500": 3}}


@pytest.mark.parametrize("cfg", [
    {"deployment_interval": -1},
    {"deployment_interval": "5"},
    {"deployment_burst": 0},
    {"deployment_quota_scope": "region"},
])
def test_invalid_deployment_quota_config_is_rejected(emulator, cfg):
    emulator.set_faults(deployment_interval=2)
    r = requests.post(f"{emulator.url}/_emulator/faults", json=cfg, timeout=10)
    assert r.status_code == 400 and "deployment_" in r.json()["message"]
    assert emulator.admin("GET", "faults") == {"deployment_interval": 2}
