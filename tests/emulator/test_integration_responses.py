"""Integration responses through boto3: Put (201, a full replace), Get, Update, Delete (204),
nested in GetIntegration, GetMethod and GetResources?embed=methods, their 404s and 400s with the
recorded messages (fixtures/aws-recorded.json; reference/aws-apigateway-deploy-facts.md §1),
and what PutIntegration over an existing integration does to them (§3: dropped, inferred from
Terraform reports; the `put_integration_keeps_responses` switch models the other answer)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from emulator_helpers import assert_error, client_error, strip_meta

IR = "TestApigatewayIntegrationResponse::"
MSG_STATUS = "Invalid Response status code specified"
MSG_INTEGRATION = "Invalid Integration identifier specified"
HDR = "method.response.header.Access-Control-Allow-Origin"


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
