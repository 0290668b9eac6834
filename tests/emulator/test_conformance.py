"""The emulator against real-AWS behaviour: fixtures derived from recorded AWS responses
(fixtures/aws-recorded.json), AWS's patch-error message shapes (fixtures/patch-error-messages.json),
the AWS CLI's update-integration examples (fixtures/seed-examples.json), and the facts of
reference/aws-apigateway-facts.md (Integration patch table, defaults, 404s)."""

from __future__ import annotations

import json

import pytest
import requests
from botocore.exceptions import ClientError

from emulator_helpers import REGION, assert_body, assert_error, client_error, strip_meta

VPC = "TestApigatewayIntegration::test_create_integration_with_vpc_link/"
NON_EXISTENT = "TestApigatewayIntegration::test_get_integration_non_existent/"
PUT_VALIDATION = "TestApigatewayIntegration::test_put_integration_response_validation/"
IR = "TestApigatewayIntegrationResponse::"
VPC_URI = "http://my-vpclink-test-nlb-1234567890abcdef.<region>.amazonaws.com"


def put_http(apigw, m, **extra):
    args = dict(type="HTTP", integrationHttpMethod="POST", uri="https://backend.example.com/pets")
    args.update(extra)
    return apigw.put_integration(**m, **args)


def put_mock(apigw, m, **extra):
    return apigw.put_integration(
        **m, type="MOCK", requestTemplates={"application/json": '{"statusCode": 200}'}, **extra
    )


def update(apigw, m, *ops):
    return strip_meta(apigw.update_integration(**m, patchOperations=list(ops)))


def get(apigw, m):
    return strip_meta(apigw.get_integration(**m))


def ids(m):
    return {k: m[k] for k in ("restApiId", "resourceId", "httpMethod")}


# ----------------------------------------------------------------- PutIntegration defaults


def test_vpc_link_integration_matches_recording(apigw, method, recorded):
    m = ids(method("GET"))
    subs = {"<cache-namespace:1>": m["resourceId"], "<region>": REGION}
    uri = VPC_URI.replace("<region>", REGION)
    put = apigw.put_integration(
        **m, type="HTTP_PROXY", integrationHttpMethod="GET", uri=uri,
        connectionType="VPC_LINK", connectionId="${stageVariables.vpcLinkId}",
    )
    assert_body(put, recorded[VPC + "put-integration-vpc-link"], subs)
    assert_body(apigw.get_integration(**m), recorded[VPC + "get-integration-vpc-link"], subs)
    upd = apigw.update_integration(
        **m,
        patchOperations=[
            {"op": "replace", "path": "/connectionId", "value": "${stageVariables.vpcLinkIdBeta}"}
        ],
    )
    assert_body(upd, recorded[VPC + "update-integration-vpc-link"], subs)
    assert_body(apigw.get_integration(**m), recorded[VPC + "get-integration-update-vpc-link"], subs)


def test_put_integration_fills_aws_defaults(apigw, method, recorded):
    m = ids(method("GET"))
    body = strip_meta(put_http(apigw, m))
    rec = recorded[VPC + "put-integration-vpc-link"]["body"]
    for key in ("timeoutInMillis", "passthroughBehavior", "cacheKeyParameters"):
        assert body[key] == rec[key]
    assert body["timeoutInMillis"] == 29000
    assert body["passthroughBehavior"] == "WHEN_NO_MATCH"
    assert body["cacheKeyParameters"] == []
    assert body["cacheNamespace"] == m["resourceId"]
    # connectionType/connectionId only when given; no nulls for unset fields
    assert set(body) == set(rec) - {"connectionType", "connectionId"}
    assert get(apigw, m) == body


def test_mock_integration_in_get_method_matches_recording(apigw, rest_api, recorded):
    api_id, root = rest_api()
    m = {"restApiId": api_id, "resourceId": root, "httpMethod": "GET"}
    apigw.put_method(**m, authorizationType="NONE")
    put_mock(apigw, m)
    apigw.put_integration_response(
        **m, statusCode="200", responseTemplates={"application/json": "overwrite"},
        selectionPattern="overwrite-pattern",
    )
    assert_body(
        apigw.get_method(**m),
        recorded[IR + "test_lifecycle_integration_response/get-method"],
        {"<cache-namespace:1>": root},
    )


def test_put_integration_keeps_every_field(apigw, method):
    m = ids(method("POST"))
    given = dict(
        type="HTTP",
        integrationHttpMethod="PUT",
        uri="https://backend.example.com/${stageVariables.path}",
        connectionType="VPC_LINK",
        connectionId="vpclink1",
        credentials="arn:aws:iam::*:user/*",
        requestParameters={
            "integration.request.header.x-id": "method.request.header.x-id",
            "integration.request.querystring.q": "'static'",
        },
        requestTemplates={"application/json": '{"a": 1}', "text/plain": ""},
        passthroughBehavior="NEVER",
        cacheNamespace="shared-ns",
        cacheKeyParameters=["method.request.header.x-id"],
        timeoutInMillis=1234,
        contentHandling="CONVERT_TO_TEXT",
        tlsConfig={"insecureSkipVerification": True},
    )
    body = strip_meta(apigw.put_integration(**m, **given))
    expected = {
        "type": "HTTP",
        "httpMethod": "PUT",
        "uri": given["uri"],
        "connectionType": "VPC_LINK",
        "connectionId": "vpclink1",
        "credentials": "arn:aws:iam::*:user/*",
        "requestParameters": given["requestParameters"],
        "requestTemplates": {"application/json": '{"a": 1}', "text/plain": None},
        "passthroughBehavior": "NEVER",
        "cacheNamespace": "shared-ns",
        "cacheKeyParameters": ["method.request.header.x-id"],
        "timeoutInMillis": 1234,
        "contentHandling": "CONVERT_TO_TEXT",
        "tlsConfig": {"insecureSkipVerification": True},
    }
    assert body == expected
    assert get(apigw, m) == expected


def test_put_integration_replaces_the_whole_integration(apigw, method):
    m = ids(method("GET"))
    put_http(apigw, m, timeoutInMillis=1000, requestParameters={"integration.request.path.id": "'1'"})
    body = strip_meta(put_http(apigw, m))
    assert body["timeoutInMillis"] == 29000
    assert "requestParameters" not in body


def test_put_integration_wrong_type(emulator, method, recorded):
    m = ids(method("GET"))
    url = f"{emulator.url}/restapis/{m['restApiId']}/resources/{m['resourceId']}/methods/GET/integration"
    r = requests.put(url, json={"type": "HTTPS_PROXY"}, timeout=10)
    fx = recorded["TestApigatewayIntegration::test_put_integration_wrong_type/put-integration-wrong-type"]
    assert (r.status_code, r.headers["x-amzn-ErrorType"], r.json()["message"]) == (
        fx["status"], fx["error"]["code"], fx["error"]["message"]
    )


@pytest.mark.parametrize(
    "extra,message_part",
    [
        ({"timeoutInMillis": 10}, "Timeout should be between 50 ms and 29000 ms"),
        ({"timeoutInMillis": 29001}, "Timeout should be between 50 ms and 29000 ms"),
        ({"passthroughBehavior": "SOMETIMES"}, "Invalid passthroughBehavior specified"),
        ({"uri": "not a url"}, "Invalid HTTP endpoint specified for URI"),
        ({"integrationHttpMethod": "FETCH"}, "Invalid HttpMethod specified"),
    ],
)
def test_put_integration_rejects_bad_values(apigw, method, extra, message_part):
    m = ids(method("GET"))
    with pytest.raises(ClientError) as e:
        put_http(apigw, m, **extra)
    status, code, message = client_error(e)
    assert (status, code) == (400, "BadRequestException")
    assert message_part in message


# ----------------------------------------------------------------- 404s


def test_get_integration_not_found_matches_recording(apigw, method, recorded):
    m = ids(method("GET"))
    cases = {
        "get-integration-no-api": dict(m, restApiId="nonexistent1"),
        "get-integration-no-resource": dict(m, resourceId="nonexistent"),
        "get-integration-no-method": dict(m, httpMethod="POST"),
        "get-integration-no-integration": m,
    }
    for key, args in cases.items():
        with pytest.raises(ClientError) as e:
            apigw.get_integration(**args)
        assert_error(e, recorded[NON_EXISTENT + key])


@pytest.mark.parametrize("operation", ["update", "delete", "put"])
def test_integration_calls_on_missing_targets(apigw, method, recorded, operation):
    m = ids(method("GET"))
    msg = {k: recorded[NON_EXISTENT + k]["error"]["message"] for k in (
        "get-integration-no-resource", "get-integration-no-method", "get-integration-no-integration")}
    call = {
        "update": lambda **a: apigw.update_integration(
            **a, patchOperations=[{"op": "replace", "path": "/timeoutInMillis", "value": "1000"}]),
        "delete": lambda **a: apigw.delete_integration(**a),
        "put": lambda **a: put_http(apigw, a),
    }[operation]
    cases = [
        (dict(m, restApiId="nonexistent1"), msg["get-integration-no-resource"]),
        (dict(m, resourceId="nonexistent"), msg["get-integration-no-resource"]),
    ]
    if operation == "delete":
        # Recorded for DeleteIntegrationResponse: a missing method reads as a missing integration.
        cases.append((dict(m, httpMethod="POST"), msg["get-integration-no-integration"]))
    else:
        cases.append((dict(m, httpMethod="POST"), msg["get-integration-no-method"]))
    if operation != "put":
        cases.append((m, msg["get-integration-no-integration"]))
    for args, message in cases:
        with pytest.raises(ClientError) as e:
            call(**args)
        assert client_error(e) == (404, "NotFoundException", message), args


def test_put_integration_on_missing_method_or_resource_matches_recording(apigw, rest_api, recorded):
    api_id, root = rest_api()
    apigw.put_method(restApiId=api_id, resourceId=root, httpMethod="POST", authorizationType="NONE")
    args = dict(restApiId=api_id, integrationHttpMethod="GET", type="MOCK",
                requestTemplates={"application/json": '{"statusCode": 200}'})
    with pytest.raises(ClientError) as e:
        apigw.put_integration(resourceId=root, httpMethod="GET", **args)
    assert_error(e, recorded[PUT_VALIDATION + "put-integration-wrong-method"])
    with pytest.raises(ClientError) as e:
        apigw.put_integration(resourceId="badresource", httpMethod="GET", **args)
    assert_error(e, recorded[PUT_VALIDATION + "put-integration-wrong-resource"])


def test_second_delete_is_404(apigw, method, recorded):
    m = ids(method("GET"))
    put_http(apigw, m)
    resp = apigw.delete_integration(**m)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    missing = recorded[NON_EXISTENT + "get-integration-no-integration"]
    with pytest.raises(ClientError) as e:
        apigw.delete_integration(**m)
    assert_error(e, missing)
    with pytest.raises(ClientError) as e:
        apigw.get_integration(**m)
    assert_error(e, missing)


def test_put_method_validation_matches_recording(apigw, rest_api, recorded):
    api_id, root = rest_api()
    pre = "TestApiGatewayApiMethod::test_put_method_validation/"
    for key, args in {
        "wrong-api": dict(restApiId="nonexistent1", resourceId=root, httpMethod="GET"),
        "wrong-resource": dict(restApiId=api_id, resourceId="nonexistent", httpMethod="GET"),
        "wrong-method": dict(restApiId=api_id, resourceId=root, httpMethod="WRONG"),
    }.items():
        with pytest.raises(ClientError) as e:
            apigw.put_method(**args, authorizationType="NONE")
        assert_error(e, recorded[pre + key])


def test_errors_use_aws_rest_json_shape(emulator, method):
    m = ids(method("GET"))
    url = f"{emulator.url}/restapis/{m['restApiId']}/resources/{m['resourceId']}/methods/GET/integration"
    r = requests.get(url, timeout=10)
    assert r.status_code == 404
    assert r.headers["x-amzn-ErrorType"] == "NotFoundException"
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.json() == {"message": "Invalid Integration identifier specified"}
    r = requests.patch(url, json={"patchOperations": [{"op": "add", "path": "/x"}]}, timeout=10)
    assert r.status_code == 404  # the integration is missing: checked before the patch


# ----------------------------------------------------------------- UpdateIntegration table

REPLACE_CASES = [
    ("/uri", "https://other.example.com/v2", "uri", "https://other.example.com/v2"),
    ("/httpMethod", "PUT", "httpMethod", "PUT"),
    ("/connectionType", "VPC_LINK", "connectionType", "VPC_LINK"),
    ("/connectionId", "${stageVariables.vpcLinkId}", "connectionId", "${stageVariables.vpcLinkId}"),
    ("/passthroughBehavior", "WHEN_NO_TEMPLATES", "passthroughBehavior", "WHEN_NO_TEMPLATES"),
    ("/contentHandling", "CONVERT_TO_BINARY", "contentHandling", "CONVERT_TO_BINARY"),
    ("/timeoutInMillis", "1000", "timeoutInMillis", 1000),
    ("/cacheNamespace", "ns1", "cacheNamespace", "ns1"),
]


@pytest.mark.parametrize("path,value,field,expected", REPLACE_CASES)
def test_update_integration_replace_scalar(apigw, method, path, value, field, expected):
    m = ids(method("GET"))
    put_http(apigw, m)
    body = update(apigw, m, {"op": "replace", "path": path, "value": value})
    assert body[field] == expected
    assert get(apigw, m) == body


def test_update_integration_tls_config(apigw, method):
    m = ids(method("GET"))
    put_http(apigw, m)
    body = update(apigw, m, {"op": "replace", "path": "/tlsConfig/insecureSkipVerification", "value": "true"})
    assert body["tlsConfig"] == {"insecureSkipVerification": True}
    body = update(apigw, m, {"op": "replace", "path": "/tlsConfig/insecureSkipVerification", "value": "false"})
    assert body["tlsConfig"] == {"insecureSkipVerification": False}


def test_update_integration_cache_key_parameters(apigw, method):
    m = ids(method("GET"))
    put_http(apigw, m)
    body = update(
        apigw, m,
        {"op": "add", "path": "/cacheKeyParameters/method.request.header.a"},
        {"op": "add", "path": "/cacheKeyParameters/method.request.querystring.b"},
    )
    assert body["cacheKeyParameters"] == ["method.request.header.a", "method.request.querystring.b"]
    body = update(apigw, m, {"op": "remove", "path": "/cacheKeyParameters/method.request.header.a"})
    assert body["cacheKeyParameters"] == ["method.request.querystring.b"]


def test_update_integration_request_parameters(apigw, method):
    m = ids(method("GET"))
    put_http(apigw, m)
    key = "integration.request.header.x-trace"
    body = update(apigw, m, {"op": "add", "path": f"/requestParameters/{key}", "value": "method.request.header.x-trace"})
    assert body["requestParameters"] == {key: "method.request.header.x-trace"}
    body = update(apigw, m, {"op": "replace", "path": f"/requestParameters/{key}", "value": "'static'"})
    assert body["requestParameters"] == {key: "'static'"}
    body = update(apigw, m, {"op": "remove", "path": f"/requestParameters/{key}"})
    assert "requestParameters" not in body


def test_update_integration_request_templates_and_pointer_escapes(apigw, method):
    m = ids(method("GET"))
    put_http(apigw, m)
    body = update(
        apigw, m,
        {"op": "add", "path": "/requestTemplates/application~1json", "value": "{\"a\": \"$input.body\"}"},
        {"op": "add", "path": "/requestTemplates/application~1vnd.x~0y+json", "value": "t2"},
        {"op": "add", "path": "/requestTemplates/a~01b", "value": "t3"},
    )
    assert body["requestTemplates"] == {
        "application/json": "{\"a\": \"$input.body\"}",
        "application/vnd.x~y+json": "t2",
        "a~1b": "t3",  # RFC 6901: ~01 is "~1", not "/"
    }


def test_update_integration_applies_ops_in_order(apigw, method):
    m = ids(method("GET"))
    put_http(apigw, m)
    body = update(
        apigw, m,
        {"op": "replace", "path": "/timeoutInMillis", "value": "1000"},
        {"op": "replace", "path": "/timeoutInMillis", "value": "2000"},
        {"op": "add", "path": "/requestTemplates/text~1plain", "value": "x"},
        {"op": "remove", "path": "/requestTemplates/text~1plain"},
    )
    assert body["timeoutInMillis"] == 2000
    assert "requestTemplates" not in body


def test_update_integration_is_all_or_nothing(apigw, method):
    m = ids(method("GET"))
    put_http(apigw, m)
    before = get(apigw, m)
    with pytest.raises(ClientError) as e:
        update(
            apigw, m,
            {"op": "replace", "path": "/timeoutInMillis", "value": "1000"},
            {"op": "add", "path": "/requestTemplates/application~1json", "value": "x"},
            {"op": "replace", "path": "/type", "value": "MOCK"},
        )
    assert client_error(e)[:2] == (400, "BadRequestException")
    assert get(apigw, m) == before


def test_update_integration_accepts_path_without_leading_slash(apigw, method):
    m = ids(method("GET"))
    put_http(apigw, m)
    body = update(apigw, m, {"op": "replace", "path": "timeoutInMillis", "value": "3000"})
    assert body["timeoutInMillis"] == 3000


def test_update_integration_with_no_operations_returns_integration(apigw, method):
    m = ids(method("GET"))
    before = strip_meta(put_http(apigw, m))
    assert update(apigw, m) == before


# ----------------------------------------------------------------- UpdateIntegration errors


def shape(messages, name, **values):
    fx = messages[name]
    return fx["status"], fx["code"], fx["template"].format(**values)


@pytest.mark.parametrize(
    "op,expected",
    [
        ({"op": "replace", "path": "/type", "value": "MOCK"}, ("invalid_path", {"path": "/type"})),
        ({"op": "replace", "path": "/credentials", "value": "arn:aws:iam::*:user/*"},
         ("invalid_path", {"path": "/credentials"})),
        ({"op": "replace", "path": "/nosuchfield", "value": "x"}, ("invalid_path", {"path": "/nosuchfield"})),
        ({"op": "add", "path": "/requestParameters", "value": "x"}, ("invalid_path", {"path": "/requestParameters"})),
        ({"op": "add", "path": "/requestTemplates/application/json", "value": "x"},
         ("invalid_path_nested", {"path": "/requestTemplates/application/json"})),
        ({"op": "replace", "path": "/tlsConfig/other", "value": "true"}, ("invalid_path", {"path": "/tlsConfig/other"})),
        ({"op": "add", "path": "/uri", "value": "https://x.example.com"}, ("replace_only", {})),
        ({"op": "remove", "path": "/timeoutInMillis"}, ("replace_only", {})),
        ({"op": "add", "path": "/tlsConfig/insecureSkipVerification", "value": "true"}, ("replace_only", {})),
        ({"op": "replace", "path": "/cacheKeyParameters/method.request.header.a", "value": "x"},
         ("op_not_supported_for_path", {"path": "/cacheKeyParameters/method.request.header.a", "op": "replace"})),
        ({"op": "copy", "path": "/requestTemplates/application~1json", "from": "/requestTemplates/text~1plain"},
         ("op_not_supported_for_path", {"path": "/requestTemplates/application~1json", "op": "copy"})),
        ({"op": "move", "path": "/requestParameters/integration.request.header.a", "from": "/x"},
         ("op_not_supported_for_path", {"path": "/requestParameters/integration.request.header.a", "op": "move"})),
        ({"op": "test", "path": "/requestParameters/integration.request.header.a", "value": "x"},
         ("op_not_supported_for_path", {"path": "/requestParameters/integration.request.header.a", "op": "test"})),
        ({"op": "add", "path": "/requestParameters/integration.request.header.a"},
         ("null_or_empty_value", {"map": "requestParameters"})),
        ({"op": "remove", "path": "/requestParameters/integration.request.header.none"},
         ("remove_missing_parameter", {})),
        ({"op": "remove", "path": "/requestTemplates/application~1xml"}, ("remove_missing_content_type", {})),
    ],
)
def test_update_integration_bad_patch(apigw, method, messages, op, expected):
    m = ids(method("GET"))
    put_http(apigw, m)
    before = get(apigw, m)
    name, values = expected
    with pytest.raises(ClientError) as e:
        update(apigw, m, op)
    assert client_error(e) == shape(messages, name, **values)
    assert get(apigw, m) == before


def test_update_integration_null_path(emulator, method, messages):
    m = ids(method("GET"))
    put_http(emulator.client(), m)
    url = f"{emulator.url}/restapis/{m['restApiId']}/resources/{m['resourceId']}/methods/GET/integration"
    r = requests.patch(url, json={"patchOperations": [{"op": "replace", "value": "x"}]}, timeout=10)
    assert (r.status_code, r.headers["x-amzn-ErrorType"], r.json()["message"]) == shape(messages, "null_path")


def test_update_integration_op_outside_the_enum(emulator, method, messages):
    m = ids(method("GET"))
    put_http(emulator.client(), m)
    url = f"{emulator.url}/restapis/{m['restApiId']}/resources/{m['resourceId']}/methods/GET/integration"
    ops = [
        {"op": "replace", "path": "/timeoutInMillis", "value": "1000"},
        {"op": "wrong-op", "path": "/timeoutInMillis", "value": "1000"},
    ]
    r = requests.patch(url, json={"patchOperations": ops}, timeout=10)
    expected = shape(messages, "op_not_in_enum", op="wrong-op", input="updateIntegrationInput", index=2)
    assert (r.status_code, r.headers["x-amzn-ErrorType"], r.json()["message"]) == expected


@pytest.mark.parametrize("path,value", [("/uri", "https://x.example.com"), ("/httpMethod", "POST")])
def test_update_integration_uri_and_http_method_not_for_mock(apigw, method, path, value):
    m = ids(method("GET"))
    put_mock(apigw, m)
    with pytest.raises(ClientError) as e:
        update(apigw, m, {"op": "replace", "path": path, "value": value})
    assert client_error(e)[:2] == (400, "BadRequestException")


@pytest.mark.parametrize(
    "path,value",
    [
        ("/timeoutInMillis", "abc"),
        ("/timeoutInMillis", "49"),
        ("/connectionType", "PRIVATE"),
        ("/passthroughBehavior", "ALWAYS"),
        ("/contentHandling", "CONVERT_TO_JSON"),
        ("/tlsConfig/insecureSkipVerification", "maybe"),
        ("/uri", "not a url"),
    ],
)
def test_update_integration_bad_values(apigw, method, path, value):
    m = ids(method("GET"))
    put_http(apigw, m)
    with pytest.raises(ClientError) as e:
        update(apigw, m, {"op": "replace", "path": path, "value": value})
    assert client_error(e)[:2] == (400, "BadRequestException")


# ----------------------------------------------------------------- seed examples


def test_seed_examples_in_sequence(apigw, method, seed):
    """The four AWS CLI examples: add passthrough, replace with a template, replace with
    passthrough (path without its leading slash), remove."""
    m = ids(method("POST"))
    put_http(apigw, m)
    ex = [e["patchOperation"] for e in seed["examples"]]
    assert [e["op"] for e in ex] == ["add", "replace", "replace", "remove"]

    body = update(apigw, m, ex[0])
    assert body["requestTemplates"] == {"application/json": None}  # passthrough: stored as null

    body = update(apigw, m, ex[1])
    assert body["requestTemplates"] == {"application/json": ex[1]["value"]}

    assert not ex[2]["path"].startswith("/")
    body = update(apigw, m, ex[2])
    assert body["requestTemplates"] == {"application/json": None}

    body = update(apigw, m, ex[3])
    assert "requestTemplates" not in body
    assert get(apigw, m) == body


# ----------------------------------------------------------------- integration responses


def test_integration_response_lifecycle_matches_recording(apigw, rest_api, recorded):
    pre = IR + "test_lifecycle_integration_response/"
    api_id, root = rest_api()
    m = {"restApiId": api_id, "resourceId": root, "httpMethod": "GET"}
    apigw.put_method(**m, authorizationType="NONE")
    put_mock(apigw, m)
    r = apigw.put_integration_response(
        **m, statusCode="200", responseTemplates={"application/json": '"created"'}, selectionPattern=""
    )
    assert_body(r, recorded[pre + "put-integration-response"])
    assert_body(apigw.get_integration_response(**m, statusCode="200"), recorded[pre + "get-integration-response"])
    r = apigw.update_integration_response(
        **m, statusCode="200",
        patchOperations=[{"op": "replace", "path": "/selectionPattern", "value": "updated-pattern"}],
    )
    assert_body(r, recorded[pre + "update-integration-response"])
    r = apigw.put_integration_response(
        **m, statusCode="200", responseTemplates={"application/json": "overwrite"},
        selectionPattern="overwrite-pattern",
    )
    assert_body(r, recorded[pre + "overwrite-integration-response"])
    assert_body(apigw.get_method(**m), recorded[pre + "get-method"], {"<cache-namespace:1>": root})
    r = apigw.delete_integration_response(**m, statusCode="200")
    assert_body(r, recorded[pre + "delete-integration-response"])


def test_put_integration_response_templates_match_recording(emulator, apigw, method, recorded):
    pre = "TestApigatewayIntegration::test_put_integration_response_templates/"
    m = ids(method("GET"))
    put_mock(apigw, m)
    url = (f"{emulator.url}/restapis/{m['restApiId']}/resources/{m['resourceId']}"
           "/methods/GET/integration/responses/200")
    for key, body in {
        "put-integration-response-template-none": {"selectionPattern": "", "responseTemplates": {"application/json": None}},
        "put-integration-response-template-empty": {"selectionPattern": "", "responseTemplates": {"application/json": ""}},
        "put-integration-no-response-template": {"selectionPattern": ""},
    }.items():
        r = requests.put(url, json=body, timeout=10)
        fx = recorded[pre + key]
        assert (r.status_code, r.json()) == (fx["status"], fx["body"]), key


def test_integration_response_not_found_matches_recording(apigw, rest_api, recorded):
    api_id, root = rest_api()
    cases = [
        ("test_integration_response_wrong_api/put-integration-response-wrong-api",
         "put", dict(restApiId="wrong-api", resourceId="dummy-value", httpMethod="GET")),
        ("test_integration_response_wrong_api/get-integration-response-wrong-api",
         "get", dict(restApiId="wrong-api", resourceId="dummy-value", httpMethod="GET")),
        ("test_integration_response_wrong_resource/put-integration-response-wrong-resource",
         "put", dict(restApiId=api_id, resourceId="wrong-resource", httpMethod="GET")),
        ("test_integration_response_wrong_resource/get-integration-response-wrong-resource",
         "get", dict(restApiId=api_id, resourceId="wrong-resource", httpMethod="GET")),
        ("test_integration_response_wrong_method/put-integration-response-wrong-method",
         "put", dict(restApiId=api_id, resourceId=root, httpMethod="GET")),
        ("test_integration_response_wrong_method/get-integration-response-wrong-method",
         "get", dict(restApiId=api_id, resourceId=root, httpMethod="GET")),
    ]
    for key, op, args in cases:
        with pytest.raises(ClientError) as e:
            if op == "put":
                apigw.put_integration_response(**args, statusCode="200")
            else:
                apigw.get_integration_response(**args, statusCode="200")
        assert_error(e, recorded[IR + key])

    m = {"restApiId": api_id, "resourceId": root, "httpMethod": "GET"}
    apigw.put_method(**m, authorizationType="NONE")
    with pytest.raises(ClientError) as e:
        apigw.get_integration_response(**m, statusCode="200")
    assert_error(e, recorded[IR + "test_integration_response_invalid_integration/get-integration-response-without-integration"])
    put_mock(apigw, m)
    with pytest.raises(ClientError) as e:
        apigw.get_integration_response(**m, statusCode="201")
    assert_error(e, recorded[IR + "test_integration_response_wrong_status_code/get-integration-response-wrong-status-code"])


def test_delete_integration_response_errors_match_recording(apigw, rest_api, recorded):
    pre = IR + "test_delete_integration_response_errors/"
    api_id, root = rest_api()
    m = {"restApiId": api_id, "resourceId": root, "httpMethod": "GET"}
    apigw.put_method(**m, authorizationType="NONE")
    put_mock(apigw, m)
    r = apigw.put_integration_response(
        **m, statusCode="200", responseTemplates={"application/json": '"created"'}, selectionPattern=""
    )
    assert_body(r, recorded[pre + "put-integration-response"])
    for key, args in {
        "non-existent-resource": dict(m, resourceId="wrong-resource"),
        "non-existent-api-id": dict(m, restApiId="wrong-api"),
        "non-existent-method": dict(m, httpMethod="POST"),
        "non-existent-status-code": dict(m, statusCode="201"),
        "bad-method": dict(m, httpMethod="PATCH"),
    }.items():
        args.setdefault("statusCode", "200")
        with pytest.raises(ClientError) as e:
            apigw.delete_integration_response(**args)
        assert_error(e, recorded[pre + key])


def test_update_integration_response_table(apigw, method, messages):
    m = ids(method("GET"))
    put_mock(apigw, m)
    apigw.put_integration_response(**m, statusCode="200", selectionPattern="")
    hdr = "method.response.header.Access-Control-Allow-Origin"

    def upd(*ops):
        return strip_meta(apigw.update_integration_response(**m, statusCode="200", patchOperations=list(ops)))

    body = upd(
        {"op": "replace", "path": "/selectionPattern", "value": "4\\d{2}"},
        {"op": "replace", "path": "/contentHandling", "value": "CONVERT_TO_TEXT"},
        {"op": "add", "path": f"/responseParameters/{hdr}", "value": "'*'"},
        {"op": "add", "path": "/responseTemplates/application~1json", "value": "{}"},
        {"op": "add", "path": "/responseTemplates/text~1plain"},
    )
    assert body == {
        "statusCode": "200",
        "selectionPattern": "4\\d{2}",
        "contentHandling": "CONVERT_TO_TEXT",
        "responseParameters": {hdr: "'*'"},
        "responseTemplates": {"application/json": "{}", "text/plain": None},
    }
    body = upd(
        {"op": "replace", "path": f"/responseParameters/{hdr}", "value": "'example.com'"},
        {"op": "remove", "path": "/responseTemplates/text~1plain"},
    )
    assert body["responseParameters"] == {hdr: "'example.com'"}
    assert body["responseTemplates"] == {"application/json": "{}"}
    assert strip_meta(apigw.get_integration_response(**m, statusCode="200")) == body

    with pytest.raises(ClientError) as e:
        upd({"op": "replace", "path": "/statusCode", "value": "201"})
    assert client_error(e) == shape(messages, "invalid_path", path="/statusCode")
    with pytest.raises(ClientError) as e:
        upd({"op": "add", "path": "/selectionPattern", "value": "x"})
    assert client_error(e) == shape(messages, "replace_only")
    with pytest.raises(ClientError) as e:
        upd({"op": "remove", "path": "/responseParameters/method.response.header.none"})
    assert client_error(e) == shape(messages, "remove_missing_parameter")
    with pytest.raises(ClientError) as e:
        apigw.update_integration_response(**m, statusCode="500", patchOperations=[])
    assert client_error(e) == (404, "NotFoundException", "Invalid Response status code specified")


# ----------------------------------------------------------------- GetResources / GetRestApis


def test_get_resources_embed_methods_includes_integrations(apigw, method):
    m = ids(method("GET"))
    put_http(apigw, m, requestTemplates={"application/json": "{}"})
    apigw.put_method(restApiId=m["restApiId"], resourceId=m["resourceId"], httpMethod="POST",
                     authorizationType="NONE")
    integration = get(apigw, m)

    plain = {r["id"]: r for r in apigw.get_resources(restApiId=m["restApiId"])["items"]}
    assert plain[m["resourceId"]]["resourceMethods"] == {"GET": {}, "POST": {}}

    embedded = {r["id"]: r for r in apigw.get_resources(restApiId=m["restApiId"], embed=["methods"])["items"]}
    methods = embedded[m["resourceId"]]["resourceMethods"]
    assert methods["GET"]["methodIntegration"] == integration
    assert methods["GET"]["httpMethod"] == "GET"
    assert "methodIntegration" not in methods["POST"]
    assert embedded[m["resourceId"]]["path"] == "/pets"

    one = apigw.get_resource(restApiId=m["restApiId"], resourceId=m["resourceId"], embed=["methods"])
    assert one["resourceMethods"]["GET"]["methodIntegration"] == integration


def test_get_resources_paging(apigw, rest_api):
    api_id, root = rest_api()
    for i in range(30):
        apigw.create_resource(restApiId=api_id, parentId=root, pathPart=f"r{i}")
    first = apigw.get_resources(restApiId=api_id)
    assert len(first["items"]) == 25 and "position" in first
    second = apigw.get_resources(restApiId=api_id, position=first["position"])
    assert len(second["items"]) == 6 and "position" not in second
    all_ids = {r["id"] for r in first["items"] + second["items"]}
    assert len(all_ids) == 31

    pages = list(apigw.get_paginator("get_resources").paginate(restApiId=api_id, PaginationConfig={"PageSize": 7}))
    assert [len(p["items"]) for p in pages] == [7, 7, 7, 7, 3]
    assert len(apigw.get_resources(restApiId=api_id, limit=500)["items"]) == 31
    with pytest.raises(ClientError) as e:
        apigw.get_resources(restApiId=api_id, limit=501)
    assert client_error(e)[:2] == (400, "BadRequestException")


def test_get_resources_missing_api(apigw):
    with pytest.raises(ClientError) as e:
        apigw.get_resources(restApiId="nonexistent1")
    assert client_error(e)[:2] == (404, "NotFoundException")


def test_get_rest_apis_paging(apigw, rest_api):
    before = {a["id"] for a in apigw.get_paginator("get_rest_apis").paginate().build_full_result()["items"]}
    made = {rest_api()[0] for _ in range(4)}
    pages = list(apigw.get_paginator("get_rest_apis").paginate(PaginationConfig={"PageSize": 2}))
    got = [a["id"] for p in pages for a in p["items"]]
    assert len(got) == len(set(got)) == len(before) + 4
    assert made <= set(got)
    assert all(len(p["items"]) <= 2 for p in pages)
    one = apigw.get_rest_apis(limit=1)
    assert len(one["items"]) == 1 and "position" in one


def test_create_rest_api_answers_201(apigw, rest_api):
    r = apigw.create_rest_api(name="emulator-201")
    try:
        assert r["ResponseMetadata"]["HTTPStatusCode"] == 201
        assert "rootResourceId" in r
    finally:
        apigw.delete_rest_api(restApiId=r["id"])


def test_unsigned_requests_reach_api_gateway(emulator):
    r = requests.get(f"{emulator.url}/restapis", timeout=10)
    assert r.status_code == 200
    assert "item" in r.json()


def test_non_string_map_values_match_recording(emulator, apigw, method, recorded):
    m = ids(method("GET"))
    base = f"{emulator.url}/restapis/{m['restApiId']}/resources/{m['resourceId']}/methods/GET/integration"
    r = requests.put(base, json={"type": "HTTP_PROXY", "httpMethod": "GET", "uri": "http://example.com",
                                 "requestParameters": {"integration.request.path.testPath": True}}, timeout=10)
    fx = recorded["TestApigatewayIntegration::test_put_integration_request_parameter_bool_type/"
                  "put-integration-request-param-bool-value"]
    assert (r.status_code, r.headers["x-amzn-ErrorType"], r.json()["message"]) == (
        fx["status"], fx["error"]["code"], fx["error"]["message"])

    put_mock(apigw, m)
    r = requests.put(base + "/responses/200", json={"selectionPattern": "", "responseTemplates": {"application/json": 123}},
                     timeout=10)
    fx = recorded[IR + "test_integration_response_invalid_responsetemplates/"
                  "put-integration-response-invalid-responseTemplates-1"]
    assert (r.status_code, r.headers["x-amzn-ErrorType"], r.json()["message"]) == (
        fx["status"], fx["error"]["code"], fx["error"]["message"])
