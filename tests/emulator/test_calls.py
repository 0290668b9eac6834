"""The call counters of the admin API."""

from __future__ import annotations

import pytest
import requests
from botocore.exceptions import ClientError


def test_counts_per_operation_and_status(emulator, apigw, method):
    m = method("GET")  # CreateRestApi, CreateResource, PutMethod
    ids = {k: m[k] for k in ("restApiId", "resourceId", "httpMethod")}
    apigw.put_integration(**ids, type="MOCK")
    for _ in range(3):
        apigw.update_integration(**ids, patchOperations=[
            {"op": "replace", "path": "/timeoutInMillis", "value": "1000"}])
    with pytest.raises(ClientError):
        apigw.get_integration(**dict(ids, httpMethod="POST"))
    apigw.get_integration(**ids)

    calls = emulator.calls()
    assert calls == {
        "CreateRestApi": 1, "CreateResource": 1, "PutMethod": 1, "PutIntegration": 1,
        "UpdateIntegration": 3, "GetIntegration": 2,
    }
    responses = emulator.responses()
    assert responses["UpdateIntegration"] == {"200": 3}
    assert responses["GetIntegration"] == {"200": 1, "404": 1}
    assert responses["PutIntegration"] == {"201": 1}
    assert responses["CreateRestApi"] == {"201": 1}


def test_faulted_calls_are_counted(emulator, apigw):
    emulator.set_faults(throttle=1.0)
    for _ in range(4):
        with pytest.raises(ClientError):
            apigw.get_rest_apis()
    assert emulator.calls() == {"GetRestApis": 4}
    assert emulator.responses() == {"GetRestApis": {"429": 4}}


def test_admin_calls_are_not_counted(emulator):
    for _ in range(3):
        emulator.calls()
        emulator.admin("GET", "faults")
    assert emulator.calls() == {}


def test_reset_zeroes_both_counters(emulator, apigw):
    apigw.get_rest_apis()
    assert emulator.calls() == {"GetRestApis": 1}
    r = requests.post(f"{emulator.url}/_emulator/calls/reset", timeout=10)
    assert r.status_code == 200
    assert emulator.calls() == {}
    assert emulator.responses() == {}
    apigw.get_rest_apis()
    assert emulator.calls() == {"GetRestApis": 1}


def test_unknown_admin_route_is_404(emulator):
    r = requests.get(f"{emulator.url}/_emulator/nope", timeout=10)
    assert r.status_code == 404


def test_writes_are_logged_with_the_access_key_that_signed_them(emulator, apigw, method):
    m = method("GET")
    ids = {k: m[k] for k in ("restApiId", "resourceId", "httpMethod")}
    apigw.put_integration(**ids, type="MOCK")
    apigw.get_integration(**ids)
    writes = emulator.admin("GET", "writes")
    ops = [w["op"] for w in writes]
    assert ops == ["CreateRestApi", "CreateResource", "PutMethod", "PutIntegration"], ops
    key = apigw._request_signer._credentials.access_key
    assert all(w["key"] == key for w in writes), writes
    assert all(isinstance(w["t"], float) for w in writes)
    requests.post(f"{emulator.url}/_emulator/calls/reset", timeout=10)
    assert emulator.admin("GET", "writes") == []
