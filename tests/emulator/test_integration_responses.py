"""Integration responses through boto3: Put (201, a full replace), Get, Update, Delete (204),
nested in GetIntegration, GetMethod and GetResources?embed=methods, their 404s and 400s with the
recorded messages (fixtures/aws-recorded.json; reference/aws-apigateway-deploy-facts.md §1),
what PutIntegration over an existing integration does to them (§3: dropped, inferred from
Terraform reports; the `put_integration_keeps_responses` switch models the other answer), the
user-reported 409 for a second "default" response (§1.1), and the `strict_response_patch`
switch (UpdateIntegrationResponse limited to the (op, path) pairs §1.3 evidences)."""

from __future__ import annotations

import pytest
import requests
from botocore.exceptions import ClientError

from emulator_helpers import assert_error, client_error, strip_meta

IR = "TestApigatewayIntegrationResponse::"
MSG_STATUS = "Invalid Response status code specified"
MSG_INTEGRATION = "Invalid Integration identifier specified"
HDR = "method.response.header.Access-Control-Allow-Origin"
MSG_DEFAULT_EXISTS = "Integration response with selection pattern default already exists"
CONFLICT = (409, "ConflictException", MSG_DEFAULT_EXISTS)


def ids(m):
    return {k: m[k] for k in ("restApiId", "resourceId", "httpMethod")}


def put_http(apigw, m, uri="https://backend.example.com/pets", **extra):
    return strip_meta(apigw.put_integration(**m, type="HTTP", integrationHttpMethod="POST", uri=uri, **extra))


def two_responses(apigw, m):
    """A 200 (default, a passthrough template and a header) and a 4xx response."""
    ok = strip_meta(apigw.put_integration_response(
        **m, statusCode="200", selectionPattern="", responseTemplates={"application/json": ""},
        responseParameters={HDR: "'*'"}))
    bad = strip_meta(apigw.put_integration_response(
        **m, statusCode="400", selectionPattern="4\\d{2}", responseTemplates={"application/json": '{"e": 1}'}))
    return {"200": ok, "400": bad}


def nested(apigw, m) -> dict:
    """The integration responses as GetIntegration, GetMethod and GetResources (embed) show them;
    asserts the three agree."""
    from_integration = strip_meta(apigw.get_integration(**m)).get("integrationResponses")
    from_method = strip_meta(apigw.get_method(**m))["methodIntegration"].get("integrationResponses")
    items = apigw.get_resources(restApiId=m["restApiId"], embed=["methods"], limit=500)["items"]
    resource = next(r for r in items if r["id"] == m["resourceId"])
    from_resources = resource["resourceMethods"][m["httpMethod"]]["methodIntegration"].get("integrationResponses")
    assert from_integration == from_method == from_resources
    return from_integration


def test_lifecycle_put_get_update_delete(apigw, method):
    m = ids(method("GET"))
    put_http(apigw, m)
    put = apigw.put_integration_response(
        **m, statusCode="200", selectionPattern="", responseTemplates={"application/json": ""},
        responseParameters={HDR: "'*'"}, contentHandling="CONVERT_TO_TEXT")
    assert put["ResponseMetadata"]["HTTPStatusCode"] == 201
    expected = {
        "statusCode": "200", "selectionPattern": "", "responseParameters": {HDR: "'*'"},
        "responseTemplates": {"application/json": None},  # passthrough: stored as null
        "contentHandling": "CONVERT_TO_TEXT",
    }
    assert strip_meta(put) == expected
    got = apigw.get_integration_response(**m, statusCode="200")
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert strip_meta(got) == expected
    assert nested(apigw, m) == {"200": expected}

    upd = apigw.update_integration_response(**m, statusCode="200", patchOperations=[
        {"op": "replace", "path": "/selectionPattern", "value": "2\\d{2}"},
        {"op": "add", "path": "/responseTemplates/text~1plain"},
        {"op": "remove", "path": f"/responseParameters/{HDR}"},
    ])
    assert upd["ResponseMetadata"]["HTTPStatusCode"] == 200
    updated = {
        "statusCode": "200", "selectionPattern": "2\\d{2}",
        "responseTemplates": {"application/json": None, "text/plain": None},
        "contentHandling": "CONVERT_TO_TEXT",
    }
    assert strip_meta(upd) == updated
    assert nested(apigw, m) == {"200": updated}

    # A second PUT on the status code is a full replace, answered 201 again.
    again = apigw.put_integration_response(**m, statusCode="200", selectionPattern="overwrite")
    assert again["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert strip_meta(again) == {"statusCode": "200", "selectionPattern": "overwrite"}
    assert nested(apigw, m) == {"200": {"statusCode": "200", "selectionPattern": "overwrite"}}

    deleted = apigw.delete_integration_response(**m, statusCode="200")
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert nested(apigw, m) is None  # no integrationResponses key once the last one is gone
    for call in (apigw.get_integration_response, apigw.delete_integration_response):
        with pytest.raises(ClientError) as e:
            call(**m, statusCode="200")
        assert client_error(e) == (404, "NotFoundException", MSG_STATUS)


def test_several_status_codes_nest_by_code(apigw, method):
    m = ids(method("POST"))
    put_http(apigw, m)
    made = two_responses(apigw, m)
    assert nested(apigw, m) == made
    apigw.delete_integration_response(**m, statusCode="400")
    assert nested(apigw, m) == {"200": made["200"]}


def test_put_integration_over_an_existing_one_drops_its_responses(apigw, method):
    m = ids(method("GET"))
    put_http(apigw, m)
    two_responses(apigw, m)
    body = put_http(apigw, m, uri="https://backend.example.com/v2")
    assert "integrationResponses" not in body
    assert nested(apigw, m) is None
    for code in ("200", "400"):
        with pytest.raises(ClientError) as e:
            apigw.get_integration_response(**m, statusCode=code)
        assert client_error(e) == (404, "NotFoundException", MSG_STATUS)


def test_put_integration_keeps_responses_when_switched_on(emulator, apigw, method):
    m = ids(method("GET"))
    put_http(apigw, m)
    made = two_responses(apigw, m)
    emulator.set_faults(put_integration_keeps_responses=True)
    body = put_http(apigw, m, uri="https://backend.example.com/v2", timeoutInMillis=1000)
    assert body["uri"] == "https://backend.example.com/v2" and body["timeoutInMillis"] == 1000
    assert body["integrationResponses"] == made
    assert nested(apigw, m) == made
    assert strip_meta(apigw.get_integration_response(**m, statusCode="400")) == made["400"]
    # The switch is off again by default.
    emulator.set_faults()
    put_http(apigw, m)
    assert nested(apigw, m) is None


@pytest.mark.parametrize("keeps", [False, True])
def test_delete_integration_takes_its_responses_along(emulator, apigw, method, recorded, keeps):
    m = ids(method("GET"))
    put_http(apigw, m)
    two_responses(apigw, m)
    emulator.set_faults(put_integration_keeps_responses=keeps)
    assert apigw.delete_integration(**m)["ResponseMetadata"]["HTTPStatusCode"] == 204
    missing = recorded[IR + "test_integration_response_invalid_integration/get-integration-response-without-integration"]
    for call in (apigw.get_integration_response, apigw.delete_integration_response):
        with pytest.raises(ClientError) as e:
            call(**m, statusCode="200")
        assert_error(e, missing)
    with pytest.raises(ClientError) as e:
        apigw.update_integration_response(**m, statusCode="200", patchOperations=[])
    assert client_error(e) == (404, "NotFoundException", MSG_INTEGRATION)
    # A new integration does not bring the old responses back, whatever the switch.
    put_http(apigw, m)
    assert nested(apigw, m) is None


def test_update_integration_response_404s(apigw, method):
    m = ids(method("GET"))
    with pytest.raises(ClientError) as e:  # a method without integration
        apigw.update_integration_response(**m, statusCode="200", patchOperations=[])
    assert client_error(e) == (404, "NotFoundException", MSG_INTEGRATION)
    put_http(apigw, m)
    with pytest.raises(ClientError) as e:  # no response for the code
        apigw.update_integration_response(**m, statusCode="200", patchOperations=[])
    assert client_error(e) == (404, "NotFoundException", MSG_STATUS)
    for args, message in [
        (dict(m, restApiId="nonexistent1"), "Invalid Resource identifier specified"),
        (dict(m, resourceId="nonexistent"), "Invalid Resource identifier specified"),
        (dict(m, httpMethod="POST"), "Invalid Method identifier specified"),
    ]:
        with pytest.raises(ClientError) as e:
            apigw.update_integration_response(**args, statusCode="200", patchOperations=[])
        assert client_error(e) == (404, "NotFoundException", message), args


def test_status_code_pattern_matches_recording(apigw, method, recorded):
    pre = IR + "test_integration_response_invalid_statuscode/"
    m = ids(method("GET"))
    put_http(apigw, m)
    with pytest.raises(ClientError) as e:
        apigw.put_integration_response(**m, statusCode="wrong", selectionPattern="")
    assert_error(e, recorded[pre + "put-integration-response-invalid-statusCode"])
    with pytest.raises(ClientError) as e:
        apigw.get_integration_response(**m, statusCode="wrong")
    assert_error(e, recorded[pre + "get-integration-response-invalid-statusCode"])
    # The model check comes before any lookup: a missing API says the same.
    with pytest.raises(ClientError) as e:
        apigw.get_integration_response(**dict(m, restApiId="nonexistent1"), statusCode="wrong")
    assert_error(e, recorded[pre + "get-integration-response-invalid-statusCode"])
    for call in (apigw.delete_integration_response,
                 lambda **a: apigw.update_integration_response(**a, patchOperations=[])):
        with pytest.raises(ClientError) as e:
            call(**m, statusCode="600")
        assert client_error(e)[:2] == (400, "ValidationException")


def test_template_key_must_be_a_content_type_matches_recording(apigw, method, recorded):
    m = ids(method("GET"))
    put_http(apigw, m)
    with pytest.raises(ClientError) as e:
        apigw.put_integration_response(**m, statusCode="200", selectionPattern="",
                                       responseTemplates={"123": "x"})
    assert_error(e, recorded[IR + "test_integration_response_invalid_responsetemplates/"
                             "put-integration-response-invalid-responseTemplates-2"])
    with pytest.raises(ClientError) as e:
        apigw.get_integration_response(**m, statusCode="200")
    assert client_error(e) == (404, "NotFoundException", MSG_STATUS)  # nothing was stored


# ----------------------------------------------------------------- a second default response (§1.1)

# No selectionPattern: the key absent from the request, or "" (both count as default).
DEFAULTS = [{}, {"selectionPattern": ""}]


@pytest.mark.parametrize("second", DEFAULTS, ids=["absent", "empty"])
@pytest.mark.parametrize("first", DEFAULTS, ids=["absent", "empty"])
def test_put_a_second_default_response_is_a_409(apigw, method, first, second):
    m = ids(method("GET"))
    put_http(apigw, m)
    made = strip_meta(apigw.put_integration_response(
        **m, statusCode="200", responseTemplates={"application/json": "{}"}, **first))
    with pytest.raises(ClientError) as e:
        apigw.put_integration_response(**m, statusCode="500", responseTemplates={"text/plain": "x"}, **second)
    assert client_error(e) == CONFLICT
    # Nothing was stored for 500, and 200 is untouched.
    with pytest.raises(ClientError) as e:
        apigw.get_integration_response(**m, statusCode="500")
    assert client_error(e) == (404, "NotFoundException", MSG_STATUS)
    assert nested(apigw, m) == {"200": made}


def test_re_putting_the_default_code_as_default_is_a_full_replace(apigw, method):
    m = ids(method("GET"))
    put_http(apigw, m)
    apigw.put_integration_response(**m, statusCode="200", responseTemplates={"application/json": "{}"},
                                   responseParameters={HDR: "'*'"})
    apigw.put_integration_response(**m, statusCode="400", selectionPattern="4\\d{2}")
    again = apigw.put_integration_response(**m, statusCode="200", selectionPattern="")
    assert again["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert strip_meta(again) == {"statusCode": "200", "selectionPattern": ""}
    again = apigw.put_integration_response(**m, statusCode="200", responseTemplates={"text/plain": "t"})
    assert strip_meta(again) == {"statusCode": "200", "responseTemplates": {"text/plain": "t"}}
    assert nested(apigw, m) == {
        "200": {"statusCode": "200", "responseTemplates": {"text/plain": "t"}},
        "400": {"statusCode": "400", "selectionPattern": "4\\d{2}"},
    }


def test_the_default_can_move_once_the_old_one_is_not_default(apigw, method):
    m = ids(method("GET"))
    put_http(apigw, m)
    apigw.put_integration_response(**m, statusCode="200")
    # Turning 200 into a patterned response frees the default for 500 ...
    apigw.put_integration_response(**m, statusCode="200", selectionPattern="2\\d{2}")
    assert strip_meta(apigw.put_integration_response(**m, statusCode="500")) == {"statusCode": "500"}
    # ... and deleting the default frees it too.
    with pytest.raises(ClientError) as e:
        apigw.put_integration_response(**m, statusCode="404", selectionPattern="")
    assert client_error(e) == CONFLICT
    apigw.delete_integration_response(**m, statusCode="500")
    made = apigw.put_integration_response(**m, statusCode="404", selectionPattern="")
    assert made["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert set(nested(apigw, m)) == {"200", "404"}


def test_default_responses_of_other_methods_do_not_conflict(apigw, method):
    m = ids(method("GET"))
    put_http(apigw, m)
    other = dict(m, httpMethod="POST")
    apigw.put_method(**other, authorizationType="NONE")
    put_http(apigw, other)
    apigw.put_integration_response(**m, statusCode="200")
    made = apigw.put_integration_response(**other, statusCode="500")
    assert made["ResponseMetadata"]["HTTPStatusCode"] == 201


@pytest.mark.parametrize("strict", [False, True], ids=["permissive", "strict"])
@pytest.mark.parametrize("op", [
    {"op": "replace", "path": "/selectionPattern", "value": ""},
    {"op": "replace", "path": "/selectionPattern"},  # no value: the pattern is emptied
], ids=["empty", "no-value"])
def test_update_making_a_second_default_is_a_409(emulator, apigw, method, op, strict):
    m = ids(method("GET"))
    put_http(apigw, m)
    made = two_responses(apigw, m)  # 200 is the default, 400 has a pattern
    emulator.set_faults(strict_response_patch=strict)
    with pytest.raises(ClientError) as e:
        apigw.update_integration_response(**m, statusCode="400", patchOperations=[op])
    assert client_error(e) == CONFLICT
    assert nested(apigw, m) == made  # unchanged
    # Patching the default response itself keeps it default without a conflict.
    upd = apigw.update_integration_response(**m, statusCode="200", patchOperations=[op])
    assert upd["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert strip_meta(upd)["selectionPattern"] == ""
    # Once 200 has a pattern, 400 may become the default.
    apigw.update_integration_response(**m, statusCode="200", patchOperations=[
        {"op": "replace", "path": "/selectionPattern", "value": "2\\d{2}"}])
    upd = apigw.update_integration_response(**m, statusCode="400", patchOperations=[op])
    assert strip_meta(upd)["selectionPattern"] == ""


def test_conflict_uses_aws_rest_json_shape(emulator, apigw, method):
    m = ids(method("GET"))
    put_http(apigw, m)
    apigw.put_integration_response(**m, statusCode="200")
    url = (f"{emulator.url}/restapis/{m['restApiId']}/resources/{m['resourceId']}"
           "/methods/GET/integration/responses/500")
    r = requests.put(url, json={"selectionPattern": ""}, timeout=10)
    assert r.status_code == 409
    assert r.headers["x-amzn-ErrorType"] == "ConflictException"
    assert r.json() == {"message": MSG_DEFAULT_EXISTS}


# ----------------------------------------------------------------- strict_response_patch (§1.3)


def unsupported(path: str, op: str) -> tuple[int, str, str]:
    return (400, "BadRequestException",
            f"Invalid patch path  '{path}' specified for op '{op}'. Please choose supported operations")


def strict_setup(emulator, apigw, method):
    m = ids(method("GET"))
    put_http(apigw, m)
    made = strip_meta(apigw.put_integration_response(
        **m, statusCode="200", selectionPattern="2\\d{2}", responseTemplates={"application/json": "{}"},
        responseParameters={HDR: "'*'"}, contentHandling="CONVERT_TO_TEXT"))
    assert emulator.set_faults(strict_response_patch=True) == {"strict_response_patch": True}
    return m, made


def test_strict_response_patch_accepts_the_evidenced_pairs(emulator, apigw, method):
    m, made = strict_setup(emulator, apigw, method)
    upd = apigw.update_integration_response(**m, statusCode="200", patchOperations=[
        {"op": "replace", "path": "/selectionPattern", "value": "20\\d"},
        {"op": "replace", "path": "/responseTemplates/application~1json", "value": '{"v": 2}'},
    ])
    assert upd["ResponseMetadata"]["HTTPStatusCode"] == 200
    want = dict(made, selectionPattern="20\\d", responseTemplates={"application/json": '{"v": 2}'})
    assert strip_meta(upd) == want
    assert nested(apigw, m) == {"200": want}


@pytest.mark.parametrize("op", [
    {"op": "add", "path": "/responseTemplates/text~1plain", "value": "t"},
    {"op": "replace", "path": "/responseTemplates/text~1plain", "value": "t"},  # not there yet
    {"op": "remove", "path": "/responseTemplates/application~1json"},
    {"op": "add", "path": "/responseTemplates/application~1json", "value": "t"},
    {"op": "add", "path": "/selectionPattern", "value": "x"},
    {"op": "remove", "path": "/selectionPattern"},
    {"op": "replace", "path": "/contentHandling", "value": "CONVERT_TO_BINARY"},
    {"op": "add", "path": f"/responseParameters/{HDR}", "value": "'x'"},
    {"op": "replace", "path": f"/responseParameters/{HDR}", "value": "'x'"},
    {"op": "remove", "path": f"/responseParameters/{HDR}"},
    {"op": "replace", "path": "/statusCode", "value": "201"},
    {"op": "replace", "path": "/responseTemplates", "value": "{}"},
    {"op": "copy", "path": "/selectionPattern", "from": "/selectionPattern"},
], ids=lambda op: f"{op['op']} {op['path']}")
def test_strict_response_patch_refuses_every_other_pair(emulator, apigw, method, op):
    m, made = strict_setup(emulator, apigw, method)
    with pytest.raises(ClientError) as e:
        apigw.update_integration_response(**m, statusCode="200", patchOperations=[op])
    assert client_error(e) == unsupported(op["path"], op["op"])
    # All or nothing: an accepted op before the refused one is not applied either.
    with pytest.raises(ClientError) as e:
        apigw.update_integration_response(**m, statusCode="200", patchOperations=[
            {"op": "replace", "path": "/selectionPattern", "value": "changed"}, op])
    assert client_error(e) == unsupported(op["path"], op["op"])
    assert nested(apigw, m) == {"200": made}


def test_strict_response_patch_keeps_the_model_check_first(emulator, apigw, method):
    m, _ = strict_setup(emulator, apigw, method)
    with pytest.raises(ClientError) as e:  # an op outside the enum: ValidationException, as before
        apigw.update_integration_response(**m, statusCode="200", patchOperations=[
            {"op": "add", "path": f"/responseParameters/{HDR}", "value": "'x'"},
            {"op": "bogus", "path": "/selectionPattern"}])
    assert client_error(e)[:2] == (400, "ValidationException")
    with pytest.raises(ClientError) as e:  # 404s come before the patch
        apigw.update_integration_response(**m, statusCode="500", patchOperations=[
            {"op": "add", "path": "/responseTemplates/text~1plain"}])
    assert client_error(e) == (404, "NotFoundException", MSG_STATUS)


def test_strict_response_patch_is_off_by_default_and_switches_off(emulator, apigw, method):
    assert "strict_response_patch" not in emulator.admin("GET", "faults")
    m, made = strict_setup(emulator, apigw, method)
    add = {"op": "add", "path": "/responseTemplates/text~1plain", "value": "t"}
    with pytest.raises(ClientError) as e:
        apigw.update_integration_response(**m, statusCode="200", patchOperations=[add])
    assert client_error(e) == unsupported(add["path"], "add")
    emulator.set_faults(strict_response_patch=False)
    upd = apigw.update_integration_response(**m, statusCode="200", patchOperations=[add])
    assert strip_meta(upd)["responseTemplates"] == {"application/json": "{}", "text/plain": "t"}
    emulator.set_faults(strict_response_patch=True)
    emulator.set_faults()  # {} clears every switch: permissive again
    upd = apigw.update_integration_response(**m, statusCode="200", patchOperations=[
        {"op": "remove", "path": "/responseTemplates/text~1plain"}])
    assert strip_meta(upd) == made


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_strict_response_patch_must_be_a_boolean(emulator, value):
    emulator.set_faults(strict_response_patch=True)
    r = requests.post(f"{emulator.url}/_emulator/faults", json={"strict_response_patch": value}, timeout=10)
    assert r.status_code == 400
    assert "strict_response_patch" in r.json()["message"]
    assert emulator.admin("GET", "faults") == {"strict_response_patch": True}  # the old config stays


# ----------------------------------------------------------------- 404s of Update/Delete (§1.5)


def test_delete_integration_response_404s(apigw, method):
    m = ids(method("GET"))
    with pytest.raises(ClientError) as e:  # a method that never had an integration
        apigw.delete_integration_response(**m, statusCode="200")
    assert client_error(e) == (404, "NotFoundException", MSG_INTEGRATION)
    put_http(apigw, m)
    apigw.put_integration_response(**m, statusCode="200")
    with pytest.raises(ClientError) as e:  # no response for that code
        apigw.delete_integration_response(**m, statusCode="404")
    assert client_error(e) == (404, "NotFoundException", MSG_STATUS)
    assert set(nested(apigw, m)) == {"200"}  # the other code is untouched
