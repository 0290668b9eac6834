"""Tenancy and identity (issue 14): ApiGatewayAccess admits namespaces, limits what they may
touch, and gives them an identity in their own account. The binary in --access-mode refuse, the
real API server, the emulator (STS AssumeRole/GetCallerIdentity, API Gateway state and quota per
account, AccessDenied and expired tokens on demand) and kubectl."""

from __future__ import annotations

import json
import secrets
import subprocess

import pytest

from conftest import Kube, delta, manifest, wait_for

HTTP = {"type": "HTTP", "integrationHttpMethod": "POST", "uri": "https://backend.example.com/v1"}
ACCESSES = "apigatewayaccesses.apigw.dev"
STS_OPS = {"AssumeRole", "GetCallerIdentity"}
REFUSE = ("--access-mode", "refuse")


def account() -> str:
    """A fresh account per test: the emulator's state outlives tests."""
    return "9" + "".join(secrets.choice("0123456789") for _ in range(11))


def apigw_calls(calls: dict[str, int]) -> int:
    return sum(n for op, n in calls.items() if op not in STS_OPS)


def wait_reason(kube, name: str, reason: str, timeout: float = 60) -> dict:
    """kube.wait_reason, naming the last Ready condition seen when it times out."""
    seen: list[dict] = []

    def check():
        obj = kube.settled(name)
        if not obj:
            return None
        seen.append(ready(obj))
        return obj if seen[-1]["reason"] == reason else None
    try:
        return wait_for(f"{name} Ready reason {reason}", check, timeout)
    except BaseException:
        print(f"last Ready of {name}: {seen[-1:] }")
        raise


def ready(obj: dict) -> dict:
    return next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")


class Accesses:
    """ApiGatewayAccess objects (cluster-scoped) made by one test, deleted at its end."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def apply(self, name: str, team: str, **spec) -> str:
        name = f"{name}-{secrets.token_hex(3)}"
        body = {"apiVersion": "apigw.dev/v1alpha1", "kind": "ApiGatewayAccess", "metadata": {"name": name},
                "spec": {"namespaceSelector": {"matchLabels": {"apigw-e2e-team": team}}, **spec}}
        subprocess.run(["kubectl", "apply", "-f", "-"], input=json.dumps(body), text=True, check=True,
                       capture_output=True)
        self.names.append(name)
        return name

    def get(self, name: str) -> dict:
        out = subprocess.run(["kubectl", "get", ACCESSES, name, "-o", "json"], check=True, capture_output=True,
                             text=True).stdout
        return json.loads(out)

    def wait_reason(self, name: str, reason: str, timeout: float = 60) -> dict:
        def check():
            status = self.get(name).get("status") or {}
            c = next((c for c in status.get("conditions", []) if c["type"] == "Ready"), None)
            return self.get(name) if c and c["reason"] == reason else None
        return wait_for(f"access {name} Ready reason {reason}", check, timeout)

    def delete_all(self) -> None:
        for name in self.names:
            subprocess.run(["kubectl", "delete", ACCESSES, name, "--ignore-not-found", "--wait=false"],
                           capture_output=True)


@pytest.fixture
def accesses():
    made = Accesses()
    yield made
    made.delete_all()


@pytest.fixture
def team(kube):
    """Labels the test's namespace with a team of its own; returns the label value."""
    value = "t-" + secrets.token_hex(4)
    kube.run("label", "namespace", kube.namespace, f"apigw-e2e-team={value}", namespaced=False)
    return value


@pytest.fixture
def second_namespace():
    name = "e2e-" + secrets.token_hex(4)
    subprocess.run(["kubectl", "create", "namespace", name], check=True, capture_output=True)
    yield Kube(name)
    subprocess.run(["kubectl", "delete", "namespace", name, "--wait=false"], capture_output=True)


def role(acct: str, name: str) -> str:
    return f"arn:aws:iam::{acct}:role/apigw-access-{name}"


def test_each_namespace_manages_only_its_own_accounts_apis(kube, second_namespace, emulator, operators, accesses):
    a_acct, b_acct = account(), account()
    a_team, b_team = "a-" + secrets.token_hex(3), "b-" + secrets.token_hex(3)
    kube.run("label", "namespace", kube.namespace, f"apigw-e2e-team={a_team}", namespaced=False)
    b = second_namespace
    b.run("label", "namespace", b.namespace, f"apigw-e2e-team={b_team}", namespaced=False)
    a_access = accesses.apply("team-a", a_team, roleArn=role(a_acct, "a"), externalId="ext-a")
    b_access = accesses.apply("team-b", b_team, roleArn=role(b_acct, "b"))
    a_ids = emulator.for_account(a_acct).api_with_method(integration=HTTP)
    b_ids = emulator.for_account(b_acct).api_with_method(integration=HTTP)
    label = "apigw-e2e-run=" + secrets.token_hex(4)
    operators(*REFUSE, "--selector", label, all_namespaces=True)

    found = accesses.wait_reason(a_access, "Synced")
    assert found["status"]["accountId"] == a_acct, found["status"]
    assert f"assumed-role/apigw-access-a/" in found["status"]["callerArn"], found["status"]
    assert accesses.wait_reason(b_access, "Synced")["status"]["accountId"] == b_acct

    def labelled(body: dict) -> dict:
        body["metadata"]["labels"] = dict([label.split("=")])
        return body

    secret = "'do-not-print-me'"
    kube.apply(labelled(manifest("mine", a_ids, timeoutInMillis=2500,
                                 requestParameters={"integration.request.header.X-Key": secret})))
    b.apply(labelled(manifest("mine", b_ids, timeoutInMillis=3500)))
    # Namespace b names team a's API (account a): in its own account that id does not exist.
    b.apply(labelled(manifest("theirs", a_ids, timeoutInMillis=4500)))
    wait_reason(kube, "mine", "Synced")
    wait_reason(b, "mine", "Synced")
    wait_reason(b, "theirs", "TargetNotFound")
    a_api = emulator.for_account(a_acct)
    assert a_api.integration(a_ids)["timeoutInMillis"] == 2500, "team a wrote in account a"
    assert emulator.for_account(b_acct).integration(b_ids)["timeoutInMillis"] == 3500
    assert a_api.integration(a_ids)["timeoutInMillis"] != 4500, "team b never reached account a"
    # The sessions name the namespace (CloudTrail shows which team acted); the emulator counts
    # each account's calls apart.
    assert emulator.calls(account=a_acct).get("UpdateIntegration", 0) == 1
    assert emulator.calls(account=b_acct).get("UpdateIntegration", 0) == 1
    # No Event carries the value of a request parameter.
    notes = [e.get("note", "") for e in kube.events("mine")]
    assert notes and not any("do-not-print-me" in n for n in notes), notes


def test_a_namespace_no_access_admits_is_forbidden_with_zero_aws_calls(kube, emulator, operators, accesses, team):
    ids = emulator.api_with_method(integration=HTTP)
    accesses.apply("elsewhere", "nobody-" + secrets.token_hex(3))
    operators(*REFUSE)
    before = emulator.calls()
    kube.apply(manifest("refused", ids, timeoutInMillis=2000))
    obj = wait_reason(kube, "refused", "Forbidden")
    message = ready(obj)["message"]
    assert f"no ApiGatewayAccess admits namespace {kube.namespace}" in message, message
    assert "--access-mode=refuse" in message
    assert apigw_calls(emulator.calls()) - apigw_calls(before) == 0, "zero AWS calls"
    warnings = [e for e in kube.events("refused") if e.get("type") == "Warning" and e["reason"] == "Forbidden"]
    assert len(warnings) == 1, warnings
    # The platform team admits the namespace: the object goes ahead without being touched.
    accesses.apply("now", team)
    wait_reason(kube, "refused", "Synced", timeout=60)
    assert emulator.integration(ids)["timeoutInMillis"] == 2000


def test_the_operator_identity_mode_acts_for_unadmitted_namespaces(kube, emulator, operators):
    ids = emulator.api_with_method(integration=HTTP)
    operators("--access-mode", "operator-identity")
    kube.apply(manifest("own", ids, timeoutInMillis=2100))
    wait_reason(kube, "own", "Synced")
    assert emulator.integration(ids)["timeoutInMillis"] == 2100


def test_allow_lists_refuse_what_they_do_not_name(kube, emulator, operators, accesses, team):
    acct = account()
    aws = emulator.for_account(acct)
    allowed = aws.api_with_method(name="shop-" + secrets.token_hex(3), integration=HTTP)
    other = aws.api_with_method(name="pay-" + secrets.token_hex(3), integration=HTTP)
    accesses.apply("shop", team, roleArn=role(acct, "shop"), regions=["us-east-1"],
                   restApis=[{"namePattern": "shop-*"}, {"id": allowed["restApiId"]}],
                   allow={"credentials": [f"arn:aws:iam::{acct}:role/backend-*"]})
    operators(*REFUSE)
    before = emulator.calls(account=acct)
    kube.apply(manifest("other-api", other, timeoutInMillis=2000))
    by_name = manifest("by-name", other, timeoutInMillis=2000)
    del by_name["spec"]["restApiId"]
    by_name["spec"]["restApiName"] = other["name"]
    kube.apply(by_name)
    kube.apply(manifest("delete", allowed, deletionPolicy="Delete"))
    kube.apply(manifest("create", allowed, managementPolicy="CreateOrUpdate", **HTTP))
    kube.apply(manifest("creds", allowed, credentials=f"arn:aws:iam::{acct}:role/admin"))
    kube.apply(manifest("region", allowed, region="eu-west-1"))
    expected = {
        "other-api": f"REST API {other['restApiId']} is not in spec.restApis",
        # The name matches no pattern, but an id rule could admit what it resolves to: looked
        # up (one GetRestApis), then refused by its id.
        "by-name": f"REST API {other['name']} ({other['restApiId']}) is not in spec.restApis",
        "delete": "deletionPolicy Delete is not allowed",
        "create": "managementPolicy CreateOrUpdate is not allowed",
        "creds": f"spec.credentials arn:aws:iam::{acct}:role/admin is not in spec.allow.credentials",
        "region": "Region eu-west-1 is not in spec.regions",
    }
    for name, text in expected.items():
        message = ready(kube.wait_reason(name, "Forbidden"))["message"]
        assert text in message and "ApiGatewayAccess shop-" in message, (name, message)
    after = emulator.calls(account=acct)
    for op in ("GetIntegration", "UpdateIntegration", "PutIntegration", "DeleteIntegration", "GetResources"):
        assert delta(before, after, op) == 0, (op, before, after)
    # Inside the lists: admitted, and written as the access's role. (Another integration: the
    # refused objects above are older claimants of the first one.)
    backend = f"arn:aws:iam::{acct}:role/backend-orders"
    fine = aws.api_with_method(name="shop-" + secrets.token_hex(3), integration={**HTTP, "credentials": backend})
    # By name (the pattern shop-*); an id would need an id rule.
    by_pattern = manifest("fine", fine, timeoutInMillis=2700, credentials=backend)
    del by_pattern["spec"]["restApiId"]
    by_pattern["spec"]["restApiName"] = fine["name"]
    kube.apply(by_pattern)
    wait_reason(kube, "fine", "Synced")
    assert aws.integration(fine)["timeoutInMillis"] == 2700


def test_a_failed_assume_role_is_access_denied_on_the_access_and_the_objects(kube, emulator, operators, accesses, team):
    acct = account()
    ids = emulator.for_account(acct).api_with_method(integration=HTTP)
    denied = role(acct, "denied")
    emulator.faults(deny_assume_role=[denied])
    name = accesses.apply("denied", team, roleArn=denied)
    before = emulator.calls(account=acct)
    operators(*REFUSE)
    access = accesses.wait_reason(name, "AccessDenied")
    assert denied in ready(access)["message"], ready(access)
    kube.apply(manifest("obj", ids, timeoutInMillis=2000))
    obj = wait_reason(kube, "obj", "AccessDenied")
    message = ready(obj)["message"]
    assert denied in message and name in message, message
    assert apigw_calls(emulator.calls(account=acct)) == apigw_calls(before), "no API Gateway call got through"
    # The trust policy is fixed: both recover by themselves (backoff, no restart).
    emulator.faults()
    wait_reason(kube, "obj", "Synced", timeout=60)
    accesses.wait_reason(name, "Synced", timeout=60)


def test_expired_credentials_are_assumed_again(kube, emulator, operators, accesses, team):
    acct = account()
    ids = emulator.for_account(acct).api_with_method(integration=HTTP)
    accesses.apply("expiring", team, roleArn=role(acct, "expiring"))
    operators(*REFUSE)
    kube.apply(manifest("obj", ids, timeoutInMillis=2000))
    wait_reason(kube, "obj", "Synced")
    assumed = emulator.calls(account=acct).get("AssumeRole", 0)
    emulator.faults(expire_tokens=[acct])
    kube.apply(manifest("obj", ids, timeoutInMillis=3000))
    wait_for("the change written", lambda: emulator.for_account(acct).integration(ids)["timeoutInMillis"] == 3000)
    wait_reason(kube, "obj", "Synced")
    assert emulator.calls(account=acct).get("AssumeRole", 0) > assumed + 1, "assumed again"


def test_two_accesses_on_one_account_share_one_bucket(kube, second_namespace, emulator, operators, accesses):
    acct = account()
    aws = emulator.for_account(acct)
    a_team, b_team = "qa-" + secrets.token_hex(3), "qb-" + secrets.token_hex(3)
    b = second_namespace
    kube.run("label", "namespace", kube.namespace, f"apigw-e2e-team={a_team}", namespaced=False)
    b.run("label", "namespace", b.namespace, f"apigw-e2e-team={b_team}", namespaced=False)
    # The account allows 2 calls a second, 4 at once; so does each access's quota. Buckets kept
    # per access would spend twice the account's budget and meet 429s.
    quota = {"rps": 2, "burst": 4}
    accesses.apply("qa", a_team, roleArn=role(acct, "qa"), quota=quota)
    accesses.apply("qb", b_team, roleArn=role(acct, "qb"), quota=quota)
    apis = [aws.api_with_method(integration=HTTP) for _ in range(6)]
    label = "apigw-e2e-run=" + secrets.token_hex(4)
    emulator.faults(quota_rps=2, quota_burst=4)
    operators(*REFUSE, "--selector", label, "--aws-max-attempts", "1", all_namespaces=True)
    before = emulator.responses(account=acct)
    for i, ids in enumerate(apis):
        body = manifest(f"q{i}", ids, timeoutInMillis=2000 + i)
        body["metadata"]["labels"] = dict([label.split("=")])
        (kube if i % 2 == 0 else b).apply(body)
    for i in range(len(apis)):
        (kube if i % 2 == 0 else b).wait_reason(f"q{i}", "Synced", timeout=90)
    after = emulator.responses(account=acct)
    throttled = sum(codes.get("429", 0) for codes in after.values()) - sum(codes.get("429", 0) for codes in before.values())
    assert throttled == 0, (before, after)
    emulator.faults()
    for i, ids in enumerate(apis):
        assert aws.integration(ids)["timeoutInMillis"] == 2000 + i


def test_the_admission_configmap_lists_the_admitted_namespaces(kube, emulator, operators, accesses, team):
    operators(*REFUSE, "--admission-configmap", f"{kube.namespace}/apigw-admission")

    def data():
        proc = kube.run("get", "configmap", "apigw-admission", "-o", "json", check=False)
        return json.loads(proc.stdout).get("data") or {} if proc.returncode == 0 else None

    wait_for("the ConfigMap, without this namespace", lambda: data() is not None and kube.namespace not in data())
    first = accesses.apply("first", team)
    second = accesses.apply("second", team)
    expected = ",".join(sorted([first, second]))
    wait_for("the namespace listed with both accesses", lambda: (data() or {}).get(kube.namespace) == expected)
    subprocess.run(["kubectl", "delete", ACCESSES, first, second], check=True, capture_output=True)
    wait_for("the namespace gone from the ConfigMap", lambda: (now := data()) is not None and kube.namespace not in now)


def test_a_stage_is_checked_too(kube, emulator, operators, accesses, team):
    """ApiGatewayStage goes through the same check: refused without an access (zero calls),
    CreateOrUpdate (it would create the stage) refused by an access that does not allow it."""
    ids = emulator.api_with_method(integration=HTTP)
    operators(*REFUSE)
    stage = {"apiVersion": "apigw.dev/v1alpha1", "kind": "ApiGatewayStage", "metadata": {"name": "prod"},
             "spec": {"restApiId": ids["restApiId"], "stageName": "prod", "managementPolicy": "CreateOrUpdate"}}
    before = emulator.calls()

    def stage_ready() -> dict | None:
        out = kube.run("get", "apigatewaystages.apigw.dev", "prod", "-o", "json").stdout
        status = json.loads(out).get("status") or {}
        return next((c for c in status.get("conditions", []) if c["type"] == "Ready"), None)

    kube.apply(stage)
    refused = wait_for("the stage Forbidden", lambda: (c := stage_ready()) and c["reason"] == "Forbidden" and c)
    assert f"no ApiGatewayAccess admits namespace {kube.namespace}" in refused["message"], refused
    accesses.apply("no-create", team)
    wait_for("the stage Forbidden by the access", lambda: (c := stage_ready()) and "spec.allow.createOrUpdate" in c["message"])
    assert apigw_calls(emulator.calls()) - apigw_calls(before) == 0, "zero AWS calls"
