"""GetResources' own quota (AWS: 5 requests every 2 seconds per account and Region) inside the
account quota. Verdicts that depend on time are one-sided bounds (a bucket cannot hand out more
tokens than its size plus its refill over the time that passed), or use a refill so slow that
no machine is slow enough to see a token come back; GET /_emulator/quota shows the buckets."""

from __future__ import annotations

import time

import pytest
import requests
from botocore.exceptions import ClientError

from emulator_helpers import client_error

ACCOUNT_SCOPE = "123456789012 us-east-1"


def status(call) -> int:
    try:
        return call()["ResponseMetadata"]["HTTPStatusCode"]
    except ClientError as e:
        return e.response["ResponseMetadata"]["HTTPStatusCode"]


def test_get_resources_refuses_the_sixth_quick_call_while_other_operations_pass(emulator, apigw, rest_api):
    api_id, _ = rest_api()
    # The account quota is on but so large that only GetResources' own bucket matters.
    emulator.set_faults(quota_rps=1000, quota_burst=1000)
    start = time.monotonic()
    codes = [status(lambda: apigw.get_resources(restApiId=api_id)) for _ in range(10)]
    elapsed = time.monotonic() - start
    ok = codes.count(200)
    assert set(codes) <= {200, 429}
    assert codes[:5] == [200] * 5
    # 5 at once, then 2.5 a second: at most one more per 0.4 s that passed.
    assert 5 <= ok <= 5 + int(elapsed * 2.5) + 1, (codes, elapsed)
    if elapsed < 0.4:  # the usual case: the sixth came before any token did
        assert codes[5] == 429
    # Other operations still pass.
    for _ in range(5):
        assert apigw.get_rest_apis()["ResponseMetadata"]["HTTPStatusCode"] == 200
        assert apigw.get_rest_api(restApiId=api_id)["id"] == api_id
    assert emulator.responses()["GetResources"] == {"200": ok, "429": 10 - ok}


def test_get_resources_sixth_call_is_refused_whatever_the_load(emulator, apigw, rest_api):
    """The same with a refill no run is slow enough to see: exactly 5 pass, then 429 with
    Retry-After, like the account quota's."""
    api_id, _ = rest_api()
    emulator.set_faults(quota_rps=1000, quota_burst=1000, get_resources_rps=0.0001, retry_after=2)
    codes = [status(lambda: apigw.get_resources(restApiId=api_id)) for _ in range(8)]
    assert codes == [200] * 5 + [429] * 3
    with pytest.raises(ClientError) as e:
        apigw.get_resources(restApiId=api_id)
    assert client_error(e) == (429, "TooManyRequestsException", "Too Many Requests")
    assert e.value.response["ResponseMetadata"]["HTTPHeaders"]["retry-after"] == "2"
    assert apigw.get_rest_apis()["ResponseMetadata"]["HTTPStatusCode"] == 200
    levels = emulator.admin("GET", "quota")
    assert levels["get_resources"][ACCOUNT_SCOPE] < 1
    assert levels["get_resources_rps"] == 0.0001 and levels["get_resources_burst"] == 5


def test_get_resources_burst_is_configurable_and_rps_zero_switches_it_off(emulator, apigw, rest_api):
    api_id, _ = rest_api()
    emulator.set_faults(quota_rps=1000, quota_burst=1000, get_resources_rps=0.0001, get_resources_burst=2)
    assert [status(lambda: apigw.get_resources(restApiId=api_id)) for _ in range(3)] == [200, 200, 429]
    emulator.set_faults(quota_rps=1000, quota_burst=1000, get_resources_rps=0)
    assert [status(lambda: apigw.get_resources(restApiId=api_id)) for _ in range(12)] == [200] * 12
    assert emulator.admin("GET", "quota")["get_resources"] is None


def test_no_get_resources_quota_without_the_account_quota(emulator, apigw, rest_api):
    api_id, _ = rest_api()
    emulator.set_faults()
    assert [status(lambda: apigw.get_resources(restApiId=api_id)) for _ in range(12)] == [200] * 12
    assert emulator.admin("GET", "quota") == {
        "account": None, "account_rps": None, "account_burst": None,
        "get_resources": None, "get_resources_rps": None, "get_resources_burst": None}


def test_a_call_the_account_refuses_takes_no_get_resources_token(emulator, apigw, rest_api):
    api_id, _ = rest_api()
    # The account allows one call (no refill to speak of); GetResources five.
    emulator.set_faults(quota_rps=0.0001, quota_burst=1, get_resources_rps=0.0001)
    codes = [status(lambda: apigw.get_resources(restApiId=api_id)) for _ in range(4)]
    assert codes == [200, 429, 429, 429]
    levels = emulator.admin("GET", "quota")
    assert levels["account"][ACCOUNT_SCOPE] < 1
    # Only the call the account let in took a GetResources token.
    assert 3.99 < levels["get_resources"][ACCOUNT_SCOPE] < 4.01, levels


def test_a_call_get_resources_refuses_has_spent_its_account_token(emulator, apigw, rest_api):
    api_id, _ = rest_api()
    emulator.set_faults(quota_rps=0.0001, quota_burst=10, get_resources_rps=0.0001, get_resources_burst=1)
    codes = [status(lambda: apigw.get_resources(restApiId=api_id)) for _ in range(3)]
    assert codes == [200, 429, 429]
    levels = emulator.admin("GET", "quota")
    assert 6.99 < levels["account"][ACCOUNT_SCOPE] < 7.01, levels
    assert levels["get_resources"][ACCOUNT_SCOPE] < 1


def test_get_resources_bucket_is_per_account_and_region(emulator, rest_api):
    api_id, _ = rest_api()
    emulator.set_faults(quota_rps=1000, quota_burst=1000, get_resources_rps=0.0001, get_resources_burst=1)
    east = emulator.client()
    assert [status(lambda: east.get_resources(restApiId=api_id)) for _ in range(2)] == [200, 429]
    # Another Region has a bucket of its own (the API does not exist there: moto's 404, not 429).
    west = emulator.client(region="us-west-2")
    assert status(lambda: west.get_rest_apis()) == 200
    assert status(lambda: west.get_resources(restApiId=api_id)) == 404
    assert set(emulator.admin("GET", "quota")["get_resources"]) == {ACCOUNT_SCOPE, "123456789012 us-west-2"}


def test_get_resources_quota_honours_operations(emulator, apigw, rest_api):
    """The account quota applies only to `operations`; so does GetResources' own, inside it."""
    api_id, _ = rest_api()
    emulator.set_faults(quota_rps=0.0001, quota_burst=1, get_resources_rps=0.0001, get_resources_burst=1,
                        operations=["GetRestApis"])
    assert [status(lambda: apigw.get_resources(restApiId=api_id)) for _ in range(4)] == [200] * 4


@pytest.mark.parametrize("cfg", [
    {"get_resources_rps": 1},  # without the account quota
    {"get_resources_burst": 5},
    {"quota_rps": 10, "get_resources_rps": -1},
    {"quota_rps": 10, "get_resources_rps": "fast"},
    {"quota_rps": 10, "get_resources_burst": 0.5},
])
def test_invalid_get_resources_keys_are_rejected(emulator, cfg):
    r = requests.post(f"{emulator.url}/_emulator/faults", json=cfg, timeout=10)
    assert r.status_code == 400, cfg
    assert "get_resources" in r.json()["message"]
    assert emulator.admin("GET", "faults") == {}
