"""Fault injection, observed from a client. Every loop here is bounded and talks only to
the emulator on 127.0.0.1 (or the one APIGW_EMULATOR_ADMIN names)."""

from __future__ import annotations

import concurrent.futures
import json
import time

import pytest
import requests
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from emulator_helpers import client_error


def wait_for(check, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s")


def wait_idle(emulator) -> None:
    """Waits until no API Gateway call is in progress (a timed-out client's call runs on)."""
    wait_for(lambda: emulator.admin("GET", "inflight")["now"] == 0)


def test_throttle_answers_429_with_retry_after(emulator, apigw):
    emulator.set_faults(throttle=1.0)
    with pytest.raises(ClientError) as e:
        apigw.get_rest_apis()
    assert client_error(e) == (429, "TooManyRequestsException", "Too Many Requests")
    assert e.value.response["ResponseMetadata"]["HTTPHeaders"]["retry-after"] == "1"

    emulator.set_faults(throttle=1.0, retry_after=3)
    r = requests.get(f"{emulator.url}/restapis", timeout=10)
    assert r.status_code == 429
    assert r.headers["Retry-After"] == "3"
    assert r.headers["x-amzn-ErrorType"] == "TooManyRequestsException"
    assert r.json() == {"message": "Too Many Requests"}


def test_throttle_fraction(emulator):
    emulator.set_faults(throttle=0.5, seed=7)
    codes = [requests.get(f"{emulator.url}/restapis", timeout=10).status_code for _ in range(200)]
    throttled = codes.count(429)
    assert set(codes) <= {200, 429}
    assert 60 <= throttled <= 140  # binomial(200, 0.5): far outside +-5 sigma otherwise


def test_quota_token_bucket(emulator):
    emulator.set_faults(quota_rps=10, quota_burst=40)
    session = requests.Session()
    start = time.monotonic()
    codes = [session.get(f"{emulator.url}/restapis", timeout=10).status_code for _ in range(60)]
    elapsed = time.monotonic() - start
    ok = codes.count(200)
    refill = int(elapsed * 10) + 1
    assert set(codes) <= {200, 429}
    assert 40 <= ok <= 40 + refill, (ok, elapsed)
    assert codes[:40] == [200] * 40
    assert emulator.responses()["GetRestApis"].get("429", 0) == 60 - ok

    # Tokens come back at 10 per second.
    time.sleep(0.5)
    codes = [session.get(f"{emulator.url}/restapis", timeout=10).status_code for _ in range(3)]
    assert codes.count(200) >= 3


def test_quota_429_carries_retry_after(emulator):
    emulator.set_faults(quota_rps=0.001, quota_burst=1)
    assert requests.get(f"{emulator.url}/restapis", timeout=10).status_code == 200
    r = requests.get(f"{emulator.url}/restapis", timeout=10)
    assert r.status_code == 429
    assert r.headers["Retry-After"] == "1"
    assert r.headers["x-amzn-ErrorType"] == "TooManyRequestsException"


def test_error_5xx(emulator, apigw):
    emulator.set_faults(error_5xx=1.0)
    statuses = set()
    for _ in range(20):
        with pytest.raises(ClientError) as e:
            apigw.get_rest_apis()
        statuses.add(e.value.response["ResponseMetadata"]["HTTPStatusCode"])
    assert statuses <= {500, 503} and statuses

    emulator.set_faults(error_5xx=1.0, error_5xx_status=503)
    r = requests.get(f"{emulator.url}/restapis", timeout=10)
    assert r.status_code == 503
    assert r.headers["x-amzn-ErrorType"] == "ServiceUnavailableException"
    assert r.headers["Retry-After"] == "1"

    emulator.set_faults(error_5xx=1.0, error_5xx_status=500)
    r = requests.get(f"{emulator.url}/restapis", timeout=10)
    assert r.status_code == 500
    assert "x-amzn-ErrorType" in r.headers


def test_latency(emulator, apigw):
    """Only lower bounds: a loaded machine makes calls slower, never faster than the fault."""
    emulator.set_faults(latency_ms=400)
    start = time.monotonic()
    apigw.get_rest_apis()
    assert time.monotonic() - start >= 0.4
    # Much more latency than a client's read timeout: the client times out, whatever the load.
    emulator.set_faults(latency_ms=3000)
    with pytest.raises(ReadTimeoutError):
        emulator.client(read_timeout=0.5).get_rest_apis()
    wait_idle(emulator)
    emulator.set_faults()
    assert emulator.admin("GET", "faults") == {}
    assert apigw.get_rest_apis()["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_drop_closes_the_connection(emulator, apigw):
    emulator.set_faults(drop=1.0)
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{emulator.url}/restapis", timeout=10)
    with pytest.raises((ConnectionClosedError, EndpointConnectionError)):
        apigw.get_rest_apis()
    assert emulator.admin("GET", "drops") == {"GetRestApis": 2}
    assert emulator.calls()["GetRestApis"] == 2


def test_empty_config_clears_every_fault(emulator, apigw):
    cfg = {"throttle": 1.0, "quota_rps": 1, "quota_burst": 1, "error_5xx": 1.0, "drop": 1.0,
           "latency_ms": 1}
    assert emulator.set_faults(**cfg) == cfg
    assert emulator.admin("GET", "faults") == cfg
    assert emulator.set_faults() == {}
    assert emulator.admin("GET", "faults") == {}
    for _ in range(5):
        assert apigw.get_rest_apis()["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_faults_never_touch_the_admin_api(emulator):
    emulator.set_faults(throttle=1.0, drop=1.0, error_5xx=1.0, quota_rps=0.001, quota_burst=1)
    for _ in range(3):
        assert requests.get(f"{emulator.url}/_emulator/calls", timeout=10).status_code == 200
        assert requests.get(f"{emulator.url}/_emulator/faults", timeout=10).status_code == 200
    assert emulator.set_faults() == {}


def test_faults_limited_to_operations(emulator, apigw, rest_api):
    api_id, root = rest_api()
    emulator.set_faults(throttle=1.0, operations=["GetResources"])
    assert apigw.get_rest_apis()["ResponseMetadata"]["HTTPStatusCode"] == 200
    with pytest.raises(ClientError) as e:
        apigw.get_resources(restApiId=api_id)
    assert client_error(e)[:2] == (429, "TooManyRequestsException")


@pytest.mark.parametrize(
    "cfg",
    [{"throttle": 2}, {"throttle": "half"}, {"latency_ms": -1}, {"nosuchfault": 1},
     {"error_5xx_status": 404}, {"operations": "GetIntegration"}],
)
def test_invalid_fault_config_is_rejected_and_keeps_the_old_one(emulator, cfg):
    emulator.set_faults(throttle=0.25)
    r = requests.post(f"{emulator.url}/_emulator/faults", json=cfg, timeout=10)
    assert r.status_code == 400
    assert "message" in r.json()
    assert emulator.admin("GET", "faults") == {"throttle": 0.25}


def test_concurrent_calls(emulator, apigw, rest_api):
    """The server is threaded: slow calls overlap instead of queueing. The emulator's own
    count of calls in progress shows it, however long each call takes on a loaded machine:
    a serial server would never have two at once."""
    api_id, root = rest_api()
    clients = [emulator.client() for _ in range(8)]  # made first: building a client is slow
    emulator.set_faults(latency_ms=1000)
    emulator.admin("POST", "calls/reset")
    assert emulator.admin("GET", "inflight") == {"now": 0, "peak": 0}
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(
            lambda i: clients[i % 8].create_resource(restApiId=api_id, parentId=root, pathPart=f"c{i}"),
            range(16),
        ))
    assert len({r["id"] for r in results}) == 16
    inflight = emulator.admin("GET", "inflight")
    assert inflight["now"] == 0
    assert inflight["peak"] >= 2, inflight
    emulator.set_faults()
    paths = {r["path"] for r in apigw.get_resources(restApiId=api_id, limit=500)["items"]}
    assert {f"/c{i}" for i in range(16)} <= paths


def test_inflight_counts_calls_in_progress(emulator, apigw):
    emulator.set_faults(latency_ms=3000, operations=["GetRestApis"])
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        slow = pool.submit(emulator.client().get_rest_apis)
        seen = wait_for(lambda: emulator.admin("GET", "inflight")["now"] == 1)
        assert seen
        assert slow.result(timeout=60)["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert emulator.admin("GET", "inflight") == {"now": 0, "peak": 1}
    emulator.admin("POST", "calls/reset")
    assert emulator.admin("GET", "inflight") == {"now": 0, "peak": 0}


# ----------------------------------------------------------------- faults on one operation


def test_5xx_on_delete_integration_alone(emulator, apigw, method):
    m = method("GET")
    ids = {k: m[k] for k in ("restApiId", "resourceId", "httpMethod")}
    apigw.put_integration(**ids, type="MOCK")
    emulator.set_faults(error_5xx=1.0, error_5xx_status=[500], operations=["DeleteIntegration"])
    for _ in range(3):
        with pytest.raises(ClientError) as e:
            apigw.delete_integration(**ids)
        assert client_error(e) == (500, "InternalFailure", "Internal server error")
    # Every other call goes through, the integration's included.
    assert apigw.get_integration(**ids)["type"] == "MOCK"
    apigw.update_integration(**ids, patchOperations=[{"op": "replace", "path": "/timeoutInMillis", "value": "1000"}])
    apigw.get_resources(restApiId=ids["restApiId"], embed=["methods"])
    assert emulator.responses()["DeleteIntegration"] == {"500": 3}
    assert set(emulator.responses()["GetIntegration"]) == {"200"}
    emulator.set_faults()
    assert apigw.delete_integration(**ids)["ResponseMetadata"]["HTTPStatusCode"] == 204


def test_latency_on_delete_integration_alone(emulator, apigw, method):
    m = method("GET")
    ids = {k: m[k] for k in ("restApiId", "resourceId", "httpMethod")}
    apigw.put_integration(**ids, type="MOCK")
    emulator.set_faults(latency_ms=3000, operations=["DeleteIntegration"])
    # Other operations answer (no verdict on their speed: that would depend on the load; that
    # `operations` limits a fault is shown deterministically by the 5xx test above).
    assert apigw.get_integration(**ids)["type"] == "MOCK"
    # Delayed: a client with a 0.5 s read timeout gives up, whatever the load.
    with pytest.raises(ReadTimeoutError):
        emulator.client(read_timeout=0.5).delete_integration(**ids)
    wait_idle(emulator)  # the delete still happens, 3 s later
    with pytest.raises(ClientError) as e:
        apigw.get_integration(**ids)
    assert client_error(e)[0] == 404
    assert emulator.responses()["DeleteIntegration"] == {"204": 1}


# ----------------------------------------------------------------- garbage_body


def test_garbage_body_spoils_the_answer_after_the_change(emulator, apigw, method):
    m = method("GET")
    ids = {k: m[k] for k in ("restApiId", "resourceId", "httpMethod")}
    apigw.put_integration(**ids, type="HTTP", integrationHttpMethod="GET", uri="https://a.example.com")
    emulator.set_faults(garbage_body=1.0, operations=["UpdateIntegration"])
    # botocore does not fail on a body it cannot parse: it answers no field at all (the Rust
    # SDK fails to deserialize it).
    out = apigw.update_integration(**ids, patchOperations=[{"op": "replace", "path": "/timeoutInMillis", "value": "1234"}])
    assert set(out) == {"ResponseMetadata"}
    # The update took effect; other operations answer normally.
    assert apigw.get_integration(**ids)["timeoutInMillis"] == 1234
    assert emulator.responses()["UpdateIntegration"] == {"200": 1}
    assert emulator.admin("GET", "garbled") == {"UpdateIntegration": 1}

    url = (f"{emulator.url}/restapis/{ids['restApiId']}/resources/{ids['resourceId']}"
           "/methods/GET/integration")
    r = requests.patch(url, json={"patchOperations": [{"op": "replace", "path": "/timeoutInMillis", "value": "2000"}]},
                       timeout=10)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    assert int(r.headers["Content-Length"]) == len(r.content)
    with pytest.raises(ValueError):
        json.loads(r.content)
    assert apigw.get_integration(**ids)["timeoutInMillis"] == 2000
    # Errors are not spoiled: only 2xx answers are.
    r = requests.patch(url, json={"patchOperations": [{"op": "replace", "path": "/nonsense", "value": "x"}]}, timeout=10)
    assert r.status_code == 400 and r.json()["message"] == "Invalid patch path /nonsense"
    assert emulator.admin("GET", "garbled") == {"UpdateIntegration": 2}


def test_garbage_body_leaves_204_alone(emulator, apigw, method):
    m = method("GET")
    ids = {k: m[k] for k in ("restApiId", "resourceId", "httpMethod")}
    apigw.put_integration(**ids, type="MOCK")
    emulator.set_faults(garbage_body=1.0)
    r = apigw.delete_integration(**ids)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert emulator.admin("GET", "garbled") == {}


def test_garbage_body_fraction(emulator):
    emulator.set_faults(garbage_body=0.5, seed=7, operations=["GetRestApis"])
    bodies = [requests.get(f"{emulator.url}/restapis", timeout=10) for _ in range(100)]
    spoiled = 0
    for r in bodies:
        assert r.status_code == 200
        try:
            r.json()
        except ValueError:
            spoiled += 1
    assert 20 <= spoiled <= 80  # binomial(100, 0.5): far outside +-5 sigma otherwise
    assert emulator.admin("GET", "garbled") == {"GetRestApis": spoiled}
    assert emulator.responses()["GetRestApis"] == {"200": 100}


# ----------------------------------------------------------------- ignore_paths / normalise


def http_integration(apigw, method, **extra):
    m = method("GET")
    ids = {k: m[k] for k in ("restApiId", "resourceId", "httpMethod")}
    apigw.put_integration(**ids, type="HTTP", integrationHttpMethod="GET", uri="https://a.example.com", **extra)
    return ids


def patch(apigw, ids, *ops):
    out = apigw.update_integration(**ids, patchOperations=list(ops))
    assert out["ResponseMetadata"]["HTTPStatusCode"] == 200
    return {k: v for k, v in out.items() if k != "ResponseMetadata"}


XID = "integration.request.header.x-id"


def test_ignore_paths_accepts_but_does_not_apply(emulator, apigw, method):
    ids = http_integration(apigw, method, timeoutInMillis=1000, requestParameters={XID: "method.request.header.x-id"},
                           requestTemplates={"application/json": "t1"})
    emulator.set_faults(ignore_paths=["/timeoutInMillis", f"/requestParameters/{XID}",
                                      "/requestTemplates/application~1json"])
    body = patch(
        apigw, ids,
        {"op": "replace", "path": "/timeoutInMillis", "value": "2000"},
        {"op": "replace", "path": f"/requestParameters/{XID}", "value": "'static'"},
        {"op": "add", "path": "/requestParameters/integration.request.header.other", "value": "'o'"},
        {"op": "remove", "path": "/requestTemplates/application~1json"},
        {"op": "replace", "path": "uri", "value": "https://b.example.com"},  # no leading slash
    )
    assert body["timeoutInMillis"] == 1000
    assert body["requestParameters"] == {XID: "method.request.header.x-id",
                                         "integration.request.header.other": "'o'"}
    assert body["requestTemplates"] == {"application/json": "t1"}
    assert body["uri"] == "https://b.example.com"
    got = apigw.get_integration(**ids)
    assert {k: v for k, v in got.items() if k != "ResponseMetadata"} == body
    # Ops that would be refused still are: the paths are validated, then ignored.
    with pytest.raises(ClientError) as e:
        apigw.update_integration(**ids, patchOperations=[{"op": "replace", "path": "/timeoutInMillis", "value": "abc"}])
    assert client_error(e)[:2] == (400, "BadRequestException")
    # Cleared: the same op applies.
    emulator.set_faults()
    assert patch(apigw, ids, {"op": "replace", "path": "/timeoutInMillis", "value": "2000"})["timeoutInMillis"] == 2000


def test_ignore_paths_keeps_absent_things_absent(emulator, apigw, method):
    ids = http_integration(apigw, method)
    emulator.set_faults(ignore_paths=[f"/requestParameters/{XID}", "/cacheKeyParameters/method.request.header.a",
                                      "/tlsConfig/insecureSkipVerification"])
    body = patch(
        apigw, ids,
        {"op": "add", "path": f"/requestParameters/{XID}", "value": "'x'"},
        {"op": "add", "path": "/cacheKeyParameters/method.request.header.a"},
        {"op": "add", "path": "/cacheKeyParameters/method.request.header.b"},
        {"op": "replace", "path": "/tlsConfig/insecureSkipVerification", "value": "true"},
    )
    assert "requestParameters" not in body
    assert "tlsConfig" not in body
    assert body["cacheKeyParameters"] == ["method.request.header.b"]


def test_ignore_paths_is_not_limited_by_operations(emulator, apigw, method):
    ids = http_integration(apigw, method, timeoutInMillis=1000)
    emulator.set_faults(ignore_paths=["/timeoutInMillis"], error_5xx=1.0, error_5xx_status=503,
                        operations=["DeleteIntegration"])
    assert patch(apigw, ids, {"op": "replace", "path": "/timeoutInMillis", "value": "2000"})["timeoutInMillis"] == 1000
    with pytest.raises(ClientError) as e:
        apigw.delete_integration(**ids)
    assert client_error(e)[0] == 503


def test_normalise_stores_another_value(emulator, apigw, method):
    ids = http_integration(apigw, method, requestParameters={XID: "'old'"})
    emulator.set_faults(normalise={"/uri": "https://normalised.example.com", "/timeoutInMillis": 29000,
                                   f"/requestParameters/{XID}": None})
    # Untouched paths stay as they are.
    body = patch(apigw, ids, {"op": "replace", "path": "/cacheNamespace", "value": "ns"})
    assert body["uri"] == "https://a.example.com" and body["requestParameters"] == {XID: "'old'"}
    body = patch(
        apigw, ids,
        {"op": "replace", "path": "/uri", "value": "https://b.example.com"},
        {"op": "replace", "path": "/timeoutInMillis", "value": "1000"},
        {"op": "replace", "path": f"/requestParameters/{XID}", "value": "'new'"},
    )
    assert body["uri"] == "https://normalised.example.com"
    assert body["timeoutInMillis"] == 29000
    assert "requestParameters" not in body  # null: removed
    assert apigw.get_integration(**ids)["uri"] == "https://normalised.example.com"


def test_ignore_paths_wins_over_normalise(emulator, apigw, method):
    ids = http_integration(apigw, method)
    emulator.set_faults(ignore_paths=["/uri"], normalise={"/uri": "https://normalised.example.com"})
    assert patch(apigw, ids, {"op": "replace", "path": "/uri", "value": "https://b.example.com"})["uri"] == \
        "https://a.example.com"


@pytest.mark.parametrize("cfg", [
    {"garbage_body": 1.5}, {"ignore_paths": "/uri"}, {"ignore_paths": [1]}, {"ignore_paths": ["/"]},
    {"normalise": ["/uri"]}, {"normalise": {"/uri": {"a": 1}}}, {"put_integration_keeps_responses": "yes"},
])
def test_invalid_new_fault_keys_are_rejected(emulator, cfg):
    r = requests.post(f"{emulator.url}/_emulator/faults", json=cfg, timeout=10)
    assert r.status_code == 400, cfg
    assert emulator.admin("GET", "faults") == {}
