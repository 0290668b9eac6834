"""Several AWS accounts in one emulator: STS (AssumeRole, GetCallerIdentity) on the same port,
API Gateway state per account, the quota per (account, Region), the AccessDenied and
ExpiredToken faults, and the call counters per account.

Every test works in accounts of its own (random ids), so the REST APIs and keys other tests
left behind never show."""

from __future__ import annotations

import random

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from emulator_helpers import client_error

REGION = "us-east-1"
DEFAULT_ACCOUNT = "123456789012"
# moto's GetCallerIdentity for keys it did not issue (AWS_ACCESS_KEY_ID=testing, ...).
DEFAULT_CALLER = f"arn:aws:sts::{DEFAULT_ACCOUNT}:user/moto"
EXPIRED = (403, "ExpiredTokenException", "The security token included in the request is expired")
NO_RETRIES = Config(retries={"total_max_attempts": 1, "mode": "standard"})


def new_account() -> str:
    return str(random.randrange(10**11, 10**12))


def role(account: str, name: str = "e2e-admin") -> str:
    return f"arn:aws:iam::{account}:role/{name}"


def client(emulator, service: str, creds: dict | None = None, region: str = REGION):
    """A boto3 client of the emulator: the default test credentials, or AssumeRole's."""
    keys = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    if creds is not None:
        keys = {"aws_access_key_id": creds["AccessKeyId"],
                "aws_secret_access_key": creds["SecretAccessKey"],
                "aws_session_token": creds["SessionToken"]}
    return boto3.client(service, endpoint_url=emulator.url, region_name=region, config=NO_RETRIES,
                        **keys)


def assume(emulator, role_arn: str, as_creds: dict | None = None, session: str = "tests") -> dict:
    """AssumeRole's Credentials."""
    sts = client(emulator, "sts", as_creds)
    return sts.assume_role(RoleArn=role_arn, RoleSessionName=session)["Credentials"]


def in_account(emulator, account: str, region: str = REGION):
    """An apigateway client whose calls are served from `account`."""
    return client(emulator, "apigateway", assume(emulator, role(account)), region)


def api_names(apigw) -> set[str]:
    return {api["name"] for api in apigw.get_rest_apis(limit=500)["items"]}


# ----------------------------------------------------------------- STS


def test_get_caller_identity_of_the_default_credentials(emulator):
    me = client(emulator, "sts").get_caller_identity()
    assert (me["Account"], me["Arn"]) == (DEFAULT_ACCOUNT, DEFAULT_CALLER)


def test_assume_role_answers_credentials_of_the_role_account(emulator):
    account = new_account()
    sts = client(emulator, "sts")
    answer = sts.assume_role(RoleArn=role(account), RoleSessionName="operator-1",
                             ExternalId="tenant-a")
    creds = answer["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA")
    assert creds["SecretAccessKey"] and creds["SessionToken"] and creds["Expiration"]
    assumed = f"arn:aws:sts::{account}:assumed-role/e2e-admin/operator-1"
    assert answer["AssumedRoleUser"]["Arn"] == assumed

    me = client(emulator, "sts", creds).get_caller_identity()
    assert (me["Account"], me["Arn"]) == (account, assumed)


def test_sts_answers_an_sdk_pointed_with_aws_endpoint_url_sts(emulator, monkeypatch):
    """The operator's aws-config AssumeRoleProvider sends STS's query protocol: a SigV4-signed,
    form-encoded POST to "/" of the STS endpoint, which tests set with AWS_ENDPOINT_URL(_STS).
    boto3 reads the same variables and sends the same request."""
    account = new_account()
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", emulator.url)
    sts = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION,
    ).client("sts", config=NO_RETRIES)
    assert sts.meta.endpoint_url == emulator.url
    creds = sts.assume_role(RoleArn=role(account, "operator"),
                            RoleSessionName="aws-sdk-rust-1700000000")["Credentials"]
    assert client(emulator, "sts", creds).get_caller_identity()["Account"] == account


def test_unsigned_form_posts_reach_sts(emulator):
    account = new_account()
    r = requests.post(emulator.url, timeout=10, data={
        "Action": "AssumeRole", "Version": "2011-06-15", "RoleArn": role(account),
        "RoleSessionName": "curl"})
    assert r.status_code == 200, r.text
    assert f"<Arn>arn:aws:sts::{account}:assumed-role/e2e-admin/curl</Arn>" in r.text


@pytest.mark.parametrize("arn", ["arn:aws:iam::1234:role/short-account", "arn:aws:iam::role/no-account",
                                 "arn:aws:iam::123456789012:user/not-a-role"])
def test_assume_role_of_a_malformed_role_arn_is_a_validation_error(emulator, arn):
    with pytest.raises(ClientError) as e:
        assume(emulator, arn)
    status, code, message = client_error(e)
    assert (status, code) == (400, "ValidationError")
    assert arn in message


# ----------------------------------------------------------------- API Gateway per account


def test_api_gateway_state_is_kept_per_account(emulator):
    a, b = new_account(), new_account()
    in_a, in_b, default = in_account(emulator, a), in_account(emulator, b), client(emulator, "apigateway")
    api = in_a.create_rest_api(name=f"only-in-{a}")

    assert f"only-in-{a}" in api_names(in_a)
    assert f"only-in-{a}" not in api_names(in_b)
    assert f"only-in-{a}" not in api_names(default)
    for other in (in_b, default):
        with pytest.raises(ClientError) as e:
            other.get_rest_api(restApiId=api["id"])
        assert client_error(e) == (404, "NotFoundException", "Invalid API identifier specified")

    # The integration calls the operator makes work in the account too.
    root = in_a.get_resources(restApiId=api["id"])["items"][0]["id"]
    res = in_a.create_resource(restApiId=api["id"], parentId=root, pathPart="pets")
    ids = {"restApiId": api["id"], "resourceId": res["id"], "httpMethod": "POST"}
    in_a.put_method(**ids, authorizationType="NONE")
    in_a.put_integration(**ids, type="MOCK")
    assert in_a.get_integration(**ids)["type"] == "MOCK"
    with pytest.raises(ClientError) as e:
        in_b.get_integration(**ids)
    assert client_error(e)[0] == 404


def test_a_new_assume_role_reaches_the_same_account_state(emulator):
    account = new_account()
    api = in_account(emulator, account).create_rest_api(name="kept")
    assert in_account(emulator, account).get_rest_api(restApiId=api["id"])["name"] == "kept"


# ----------------------------------------------------------------- quota per account


def test_quota_is_one_bucket_per_account_and_region(emulator):
    account = new_account()
    default, west = client(emulator, "apigateway"), client(emulator, "apigateway", region="us-west-2")
    other = in_account(emulator, account)
    emulator.set_faults(quota_rps=0.001, quota_burst=2)

    def codes(apigw, n):
        out = []
        for _ in range(n):
            try:
                out.append(apigw.get_rest_apis()["ResponseMetadata"]["HTTPStatusCode"])
            except ClientError as e:
                out.append(e.response["ResponseMetadata"]["HTTPStatusCode"])
        return out

    assert codes(default, 3) == [200, 200, 429]
    # The default account's bucket is empty; another account's, and another Region's, are not.
    assert codes(other, 3) == [200, 200, 429]
    assert codes(west, 3) == [200, 200, 429]
    assert emulator.responses()["GetRestApis"] == {"200": 6, "429": 3}
    assert emulator.admin("GET", f"responses?account={account}") == {
        "AssumeRole": {"200": 1}, "GetRestApis": {"200": 2, "429": 1}}


# ----------------------------------------------------------------- deny_assume_role


def test_deny_assume_role_answers_access_denied(emulator):
    denied, allowed = new_account(), new_account()
    emulator.set_faults(deny_assume_role=[f"arn:aws:iam::{denied}:role/*"])
    with pytest.raises(ClientError) as e:
        assume(emulator, role(denied))
    assert client_error(e) == (
        403, "AccessDenied",
        f"User: {DEFAULT_CALLER} is not authorized to perform: sts:AssumeRole on resource: "
        f"{role(denied)}",
    )
    assert e.value.response["Error"]["Type"] == "Sender"
    assert assume(emulator, role(allowed))["AccessKeyId"]
    # Counted under the role's account.
    assert emulator.admin("GET", f"responses?account={denied}") == {"AssumeRole": {"403": 1}}
    assert emulator.admin("GET", f"responses?account={allowed}") == {"AssumeRole": {"200": 1}}


def test_deny_assume_role_matches_globs_and_names_an_assumed_role_caller(emulator):
    hub, spoke = new_account(), new_account()
    hub_creds = assume(emulator, role(hub, "hub"), session="hub-session")
    emulator.set_faults(deny_assume_role=["arn:aws:iam::*:role/tenant-?"])
    with pytest.raises(ClientError) as e:
        assume(emulator, role(spoke, "tenant-1"), as_creds=hub_creds)
    assert client_error(e)[2] == (
        f"User: arn:aws:sts::{hub}:assumed-role/hub/hub-session is not authorized to perform: "
        f"sts:AssumeRole on resource: {role(spoke, 'tenant-1')}"
    )
    # The glob is anchored and case-sensitive: tenant-10 and Tenant-1 do not match tenant-?.
    assert assume(emulator, role(spoke, "tenant-10"), as_creds=hub_creds)["AccessKeyId"]
    assert assume(emulator, role(spoke, "Tenant-1"))["AccessKeyId"]


def test_raw_access_denied_is_sts_error_xml(emulator):
    account = new_account()
    emulator.set_faults(deny_assume_role=[role(account)])
    r = requests.post(emulator.url, timeout=10, data={
        "Action": "AssumeRole", "Version": "2011-06-15", "RoleArn": role(account),
        "RoleSessionName": "curl"})
    assert r.status_code == 403
    assert r.headers["Content-Type"].startswith("text/xml")
    assert r.text.startswith('<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
                             "<Error><Type>Sender</Type><Code>AccessDenied</Code><Message>User: ")


# ----------------------------------------------------------------- deny_accounts


def test_deny_accounts_answers_access_denied_exception(emulator):
    denied, allowed = new_account(), new_account()
    in_denied, in_allowed = in_account(emulator, denied), in_account(emulator, allowed)
    api = in_denied.create_rest_api(name="locked-out")
    emulator.set_faults(deny_accounts=[denied])

    with pytest.raises(ClientError) as e:
        in_denied.get_resources(restApiId=api["id"])
    assert client_error(e) == (
        403, "AccessDeniedException",
        f"User: arn:aws:sts::{denied}:assumed-role/e2e-admin/tests is not authorized to perform: "
        f"apigateway:GET on resource: arn:aws:apigateway:{REGION}::/restapis/{api['id']}/resources",
    )
    assert e.value.response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"] == "AccessDeniedException"
    with pytest.raises(ClientError) as e:
        in_denied.delete_rest_api(restApiId=api["id"])
    assert "apigateway:DELETE on resource: arn:aws:apigateway:us-east-1::/restapis/" in client_error(e)[2]

    # Other accounts and the default credentials go on; nothing was deleted.
    assert in_allowed.get_rest_apis()["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert client(emulator, "apigateway").get_rest_apis()["ResponseMetadata"]["HTTPStatusCode"] == 200
    emulator.set_faults()
    assert in_denied.get_rest_api(restApiId=api["id"])["name"] == "locked-out"


def test_deny_accounts_of_the_default_account_names_moto_s_caller(emulator):
    emulator.set_faults(deny_accounts=[DEFAULT_ACCOUNT])
    with pytest.raises(ClientError) as e:
        client(emulator, "apigateway", region="eu-west-1").get_rest_apis()
    assert client_error(e)[2] == (
        f"User: {DEFAULT_CALLER} is not authorized to perform: apigateway:GET on resource: "
        "arn:aws:apigateway:eu-west-1::/restapis"
    )


def test_deny_accounts_honours_operations(emulator):
    account = new_account()
    apigw = in_account(emulator, account)
    api = apigw.create_rest_api(name="half-denied")
    emulator.set_faults(deny_accounts=[account], operations=["GetResources"])
    assert apigw.get_rest_api(restApiId=api["id"])["name"] == "half-denied"
    with pytest.raises(ClientError) as e:
        apigw.get_resources(restApiId=api["id"])
    assert client_error(e)[:2] == (403, "AccessDeniedException")
    # STS is not API Gateway: AssumeRole into a denied account still works.
    assert assume(emulator, role(account))["AccessKeyId"]


# ----------------------------------------------------------------- expire_tokens


def test_expire_tokens_expires_the_keys_issued_before_and_a_new_assume_role_works(emulator):
    account, other = new_account(), new_account()
    old = client(emulator, "apigateway", assume(emulator, role(account)))
    untouched = in_account(emulator, other)
    old.get_rest_apis()
    emulator.set_faults(expire_tokens=[account])

    for _ in range(2):  # the expired key keeps failing
        with pytest.raises(ClientError) as e:
            old.get_rest_apis()
        assert client_error(e) == EXPIRED
        assert e.value.response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"] == "ExpiredTokenException"
    fresh = in_account(emulator, account)
    assert fresh.get_rest_apis()["ResponseMetadata"]["HTTPStatusCode"] == 200
    # Other accounts' keys and keys STS did not issue are not touched.
    assert untouched.get_rest_apis()["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert client(emulator, "apigateway").get_rest_apis()["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert emulator.admin("GET", f"responses?account={account}")["GetRestApis"] == {"200": 2, "403": 2}

    # An expired key stays expired once the fault is gone; the fresh one works on.
    emulator.set_faults()
    with pytest.raises(ClientError) as e:
        old.get_rest_apis()
    assert client_error(e) == EXPIRED
    assert fresh.get_rest_apis()["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_expire_tokens_is_not_limited_by_operations_and_a_new_post_expires_again(emulator):
    account = new_account()
    first = in_account(emulator, account)
    emulator.set_faults(expire_tokens=[account], operations=["GetResources"])
    with pytest.raises(ClientError) as e:
        first.get_rest_apis()
    assert client_error(e) == EXPIRED
    second = in_account(emulator, account)
    assert second.get_rest_apis()["ResponseMetadata"]["HTTPStatusCode"] == 200
    # Every POST replaces the config: posting it again expires the keys issued until then.
    emulator.set_faults(expire_tokens=[account])
    with pytest.raises(ClientError) as e:
        second.get_rest_apis()
    assert client_error(e) == EXPIRED


def test_a_key_unused_while_the_fault_was_on_still_works(emulator):
    """Only an ExpiredToken answer makes a key expire for good."""
    account = new_account()
    apigw = in_account(emulator, account)
    emulator.set_faults(expire_tokens=[account])
    emulator.set_faults()
    assert apigw.get_rest_apis()["ResponseMetadata"]["HTTPStatusCode"] == 200


# ----------------------------------------------------------------- counters per account


def test_calls_and_responses_per_account(emulator):
    a, b = new_account(), new_account()
    in_a = in_account(emulator, a)
    in_b = in_account(emulator, b)
    client(emulator, "sts").get_caller_identity()
    in_a.create_rest_api(name="counted")
    in_a.get_rest_apis()
    in_b.get_rest_apis()
    with pytest.raises(ClientError):
        in_b.get_rest_api(restApiId="missing")
    client(emulator, "apigateway").get_rest_apis()

    assert emulator.admin("GET", f"calls?account={a}") == {
        "AssumeRole": 1, "CreateRestApi": 1, "GetRestApis": 1}
    assert emulator.admin("GET", f"responses?account={b}") == {
        "AssumeRole": {"200": 1}, "GetRestApis": {"200": 1}, "GetRestApi": {"404": 1}}
    assert emulator.admin("GET", f"calls?account={DEFAULT_ACCOUNT}") == {
        "GetCallerIdentity": 1, "GetRestApis": 1}
    # Without the parameter: every account, the shape as before.
    assert emulator.calls() == {"AssumeRole": 2, "GetCallerIdentity": 1, "CreateRestApi": 1,
                                "GetRestApis": 3, "GetRestApi": 1}
    assert emulator.responses()["GetRestApis"] == {"200": 3}
    assert emulator.admin("GET", f"calls?account={new_account()}") == {}
    # GetCallerIdentity counts under the caller's account.
    client(emulator, "sts", assume(emulator, role(a))).get_caller_identity()
    assert emulator.admin("GET", f"calls?account={a}")["GetCallerIdentity"] == 1
    emulator.admin("POST", "calls/reset")
    assert emulator.admin("GET", f"calls?account={a}") == {}


@pytest.mark.parametrize("route", ["calls", "responses"])
def test_a_malformed_account_parameter_is_a_400(emulator, route):
    r = requests.get(f"{emulator.url}/_emulator/{route}", params={"account": "12345"}, timeout=10)
    assert r.status_code == 400
    assert "12-digit" in r.json()["message"]


# ----------------------------------------------------------------- config validation


@pytest.mark.parametrize("cfg", [
    {"deny_accounts": "111111111111"},
    {"deny_accounts": [111111111111]},
    {"deny_accounts": ["1111"]},
    {"expire_tokens": ["11111111111a"]},
    {"expire_tokens": {"111111111111": True}},
    {"deny_assume_role": "arn:aws:iam::*:role/*"},
    {"deny_assume_role": [""]},
    {"deny_assume_role": [None]},
])
def test_invalid_account_faults_are_rejected_and_keep_the_old_config(emulator, cfg):
    emulator.set_faults(deny_accounts=["111111111111"])
    r = requests.post(f"{emulator.url}/_emulator/faults", json=cfg, timeout=10)
    assert r.status_code == 400
    key = next(iter(cfg))
    assert r.json()["message"].startswith(f"invalid fault config: {key} must be a list of ")
    assert emulator.admin("GET", "faults") == {"deny_accounts": ["111111111111"]}


def test_account_faults_round_trip_and_clear(emulator):
    cfg = {"deny_accounts": ["111111111111"], "expire_tokens": ["222222222222"],
           "deny_assume_role": ["arn:aws:iam::333333333333:role/*"]}
    assert emulator.set_faults(**cfg) == cfg
    assert emulator.admin("GET", "faults") == cfg
    assert emulator.set_faults() == {}
    assert assume(emulator, role("333333333333"))["AccessKeyId"]
