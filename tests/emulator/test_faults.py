"""Fault injection, observed from a client. Every loop here is bounded and talks only to
the emulator on 127.0.0.1 (or the one APIGW_EMULATOR_ADMIN names)."""

from __future__ import annotations

import concurrent.futures
import time

import pytest
import requests
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError

from emulator_helpers import client_error


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
    emulator.set_faults(latency_ms=400)
    start = time.monotonic()
    apigw.get_rest_apis()
    assert time.monotonic() - start >= 0.4
    emulator.set_faults()
    start = time.monotonic()
    apigw.get_rest_apis()
    assert time.monotonic() - start < 0.4


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
    """The server is threaded: slow calls overlap instead of queueing."""
    api_id, root = rest_api()
    emulator.set_faults(latency_ms=300)
    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(
            lambda i: emulator.client().create_resource(restApiId=api_id, parentId=root, pathPart=f"c{i}"),
            range(16),
        ))
    elapsed = time.monotonic() - start
    assert len({r["id"] for r in results}) == 16
    assert elapsed < 16 * 0.3  # serial handling would take at least 4.8 s
    emulator.set_faults()
    paths = {r["path"] for r in apigw.get_resources(restApiId=api_id, limit=500)["items"]}
    assert {f"/c{i}" for i in range(16)} <= paths
