"""Sharing the account's quota: the default share leaves room for a neighbour, a 429 the
operator did not cause lowers its rate, GetResources keeps to its own bucket, and the metrics a
dashboard is built on agree with what the emulator saw."""

import json
import re

import requests

from conftest import delta, manifest, wait_for

HTTP = {"type": "HTTP", "integrationHttpMethod": "POST", "uri": "https://quota.example.com/a"}
# AWS's account quota as the emulator enforces it (per account and Region).
ACCOUNT_QUOTA = {"quota_rps": 10, "quota_burst": 40}


def count_429(responses: dict[str, dict[str, int]]) -> int:
    return sum(by_status.get("429", 0) for by_status in responses.values())


def api_calls(calls: dict[str, int]) -> int:
    """API Gateway calls (STS's are not API Gateway's quota)."""
    return sum(n for op, n in calls.items() if op not in ("AssumeRole", "GetCallerIdentity"))


def neighbour(emulator) -> dict:
    r = requests.get(f"{emulator.admin}/_emulator/neighbour", timeout=10)
    r.raise_for_status()
    return r.json()


def metric(text: str, series: str) -> float | None:
    """The value of the first sample whose name and labels start with `series`."""
    for line in text.splitlines():
        if line.startswith(series):
            return float(line.rsplit(" ", 1)[1])
    return None


def all_ready(kube, names: list[str], generation: int) -> bool:
    listed = json.loads(kube.run("get", "apigatewayintegrations", "-o", "json").stdout)["items"]
    items = {o["metadata"]["name"]: o for o in listed}
    for name in names:
        obj = items.get(name)
        if obj is None or obj["metadata"]["generation"] != generation:
            return False
        ready = next((c for c in obj.get("status", {}).get("conditions", []) if c["type"] == "Ready"), None)
        if not ready or ready["status"] != "True" or ready.get("observedGeneration") != generation:
            return False
    return True


def rollout(emulator, n: int, prefix: str) -> tuple[list[dict], list[str]]:
    targets = [emulator.api_with_method(integration=HTTP) for _ in range(n)]
    names = [f"{prefix}{i:02d}" for i in range(n)]
    return targets, names


def apply_all(kube, targets: list[dict], names: list[str], timeout_ms: int) -> None:
    """One `kubectl apply` of all of them, as a sync applies a rollout: the operator sees the
    whole burst at once, however slow a kubectl start is on a busy machine."""
    items = [manifest(name, ids, type="HTTP", integrationHttpMethod="POST", uri=HTTP["uri"],
                      timeoutInMillis=timeout_ms) for ids, name in zip(targets, names)]
    kube.apply({"apiVersion": "v1", "kind": "List", "items": items})


def test_the_default_share_leaves_room_for_a_neighbour(kube, emulator, operators):
    targets, names = rollout(emulator, 40, "share")
    emulator.faults(**ACCOUNT_QUOTA, neighbour_rps=5)
    before_calls, before_responses = emulator.calls(), emulator.responses()
    operators()  # the defaults: half the account, adaptive
    apply_all(kube, targets, names, 1234)
    wait_for("all 40 Ready with the change", lambda: all_ready(kube, names, 1), timeout=180, every=1)
    seen = neighbour(emulator)
    emulator.faults()
    operator_calls = api_calls(emulator.calls()) - api_calls(before_calls)
    operator_429 = count_429(emulator.responses()) - count_429(before_responses)
    print(f"operator: {operator_calls} calls, {operator_429} answered 429; neighbour: {seen}")
    drawn = seen["ok"] + seen["throttled"]
    assert drawn > 0, seen
    # The neighbour takes 5 of the 10 rps; the operator's share is the other 5.
    assert seen["throttled"] <= 0.05 * drawn, seen
    assert operator_429 <= max(1, 0.01 * operator_calls), (operator_429, operator_calls)
    for ids in targets:
        assert emulator.integration(ids)["timeoutInMillis"] == 1234


def test_a_429_the_operator_did_not_cause_lowers_its_rate(kube, emulator, operators):
    targets, names = rollout(emulator, 40, "adapt")
    emulator.faults(**ACCOUNT_QUOTA, neighbour_rps=5)
    before_responses = emulator.responses()
    # Configured for the whole account, as an operator alone on it would be.
    op = operators("--aws-rps", "10", "--aws-burst", "40")
    apply_all(kube, targets, names, 4321)

    def lowered() -> bool:
        rate = metric(op.metrics(), 'apigw_quota_rate{bucket="account"')
        return rate is not None and rate < 10

    wait_for("the operator lowers its account rate after 429s", lowered, timeout=120, every=0.1)
    wait_for("all 40 Ready with the change", lambda: all_ready(kube, names, 1), timeout=240, every=1)
    emulator.faults()
    assert count_429(emulator.responses()) > count_429(before_responses), "the neighbour caused 429s"
    text = op.metrics()
    assert metric(text, "apigw_aws_throttles_total") >= 1, text
    # No update lost: AWS holds every change.
    for ids in targets:
        assert emulator.integration(ids)["timeoutInMillis"] == 4321


def test_resource_path_lookups_keep_to_the_get_resources_quota(kube, emulator, operators):
    # Twelve objects naming their resource by path, each in its own REST API: twelve
    # GetResources at start-up, more than AWS's 5 per 2 s allows at once.
    targets = [emulator.api_with_method(integration=HTTP) for _ in range(12)]
    emulator.faults(quota_rps=100, quota_burst=100, get_resources_rps=2.5, get_resources_burst=5)
    before_responses = emulator.responses()
    op = operators()
    names = []
    for i, ids in enumerate(targets):
        name = f"path{i:02d}"
        names.append(name)
        kube.apply({"apiVersion": "apigw.dev/v1alpha1", "kind": "ApiGatewayIntegration",
                    "metadata": {"name": name},
                    "spec": {"restApiId": ids["restApiId"], "resourcePath": ids["path"], "httpMethod": "POST",
                             "type": "HTTP", "integrationHttpMethod": "POST", "uri": HTTP["uri"],
                             "timeoutInMillis": 2345}})
    wait_for("all 12 Ready", lambda: all_ready(kube, names, 1), timeout=120, every=0.5)
    emulator.faults()
    get_resources = emulator.responses().get("GetResources", {})
    before = before_responses.get("GetResources", {})
    assert get_resources.get("200", 0) - before.get("200", 0) >= 12
    assert get_resources.get("429", 0) - before.get("429", 0) == 0, get_resources
    waited = metric(op.metrics(), 'apigw_quota_wait_seconds_count{bucket="get_resources"')
    assert waited is not None and waited >= 12, op.metrics()


def test_metrics_name_every_attempt_and_object(kube, emulator, operators):
    ids = emulator.api_with_method(integration=HTTP)
    op = operators("--aws-max-attempts", "3")
    kube.apply(manifest("metered", ids, timeoutInMillis=1111))
    kube.wait_ready("metered")
    before_calls, before_responses = emulator.calls(), emulator.responses()
    before_text = op.metrics()
    # Every UpdateIntegration attempt answered 429 (the SDK retries each call twice itself).
    emulator.faults(throttle=1.0, retry_after=0, operations=["UpdateIntegration"])
    kube.apply(manifest("metered", ids, timeoutInMillis=2222))
    wait_for("three throttled UpdateIntegration attempts",
             lambda: delta(before_calls, emulator.calls(), "UpdateIntegration") >= 3, timeout=60)
    emulator.faults()
    kube.wait_ready("metered")
    wait_for("the status is in the cache",
             lambda: metric(op.metrics(), 'apigw_objects{kind="integration",ready="True",reason="Synced"}') == 1,
             timeout=30)
    text = op.metrics()
    responses = emulator.responses()["UpdateIntegration"]
    before = before_responses.get("UpdateIntegration", {})

    def counted(series: str) -> float:
        return (metric(text, series) or 0) - (metric(before_text, series) or 0)

    throttled = responses.get("429", 0) - before.get("429", 0)
    ok = responses.get("200", 0) - before.get("200", 0)
    assert throttled >= 3 and ok >= 1, responses
    assert counted('apigw_aws_calls_total{operation="UpdateIntegration",outcome="throttled"}') == throttled, text
    assert counted('apigw_aws_calls_total{operation="UpdateIntegration",outcome="ok"}') == ok, text
    assert counted("apigw_aws_throttles_total") == throttled, text
    assert counted('apigw_reconcile_errors_total{kind="integration",reason="throttled"}') >= 1, text
    assert metric(text, 'apigw_workqueue_depth{kind="integration"}') == 0, text
    assert metric(text, 'apigw_quota_tokens{bucket="account"') is not None, text
    assert counted('apigw_quota_wait_seconds_count{bucket="account",priority="change"}') >= throttled / 3, text
    observed_age = metric(text, 'apigw_drift_oldest_observation_seconds{kind="integration"}')
    assert observed_age is not None and observed_age < 60, text
    assert re.search(r"apigw_leader 1", text), text
    assert kube.get("metered")["status"].get("lastObservedTime"), kube.get("metered")["status"]


def test_creating_costs_one_call_per_integration(kube, emulator, operators):
    # One REST API with 40 methods and no integration yet: the listing that finds them bare is
    # the read, so each integration costs its PutIntegration and little more.
    api = emulator.aws.create_rest_api(name="create-" + kube.namespace)
    root = next(r for r in emulator.aws.get_resources(restApiId=api["id"])["items"] if r["path"] == "/")
    names, resources = [], []
    for i in range(40):
        resource = emulator.aws.create_resource(restApiId=api["id"], parentId=root["id"], pathPart=f"r{i:02d}")
        emulator.aws.put_method(restApiId=api["id"], resourceId=resource["id"], httpMethod="POST",
                                authorizationType="NONE")
        resources.append(resource["id"])
        names.append(f"new{i:02d}")
    before = emulator.calls()
    operators("--aws-rps", "0")
    for name, resource in zip(names, resources):
        kube.apply(manifest(name, {"restApiId": api["id"], "resourceId": resource, "httpMethod": "POST"},
                            managementPolicy="CreateOrUpdate", **HTTP))
    wait_for("all 40 created and Ready", lambda: all_ready(kube, names, 1), timeout=120, every=0.5)
    after = emulator.calls()
    spent = {op: delta(before, after, op) for op in after if delta(before, after, op)}
    print(f"calls for 40 new integrations: {spent}")
    assert spent.get("PutIntegration") == 40, spent
    # ≤ 1.05 calls per created integration, plus one listing of the API (one page).
    assert api_calls(after) - api_calls(before) <= 1.05 * 40 + 1, spent
    for resource in resources:
        got = emulator.aws.get_integration(restApiId=api["id"], resourceId=resource, httpMethod="POST")
        assert got["uri"] == HTTP["uri"]


def test_a_failed_drift_check_does_not_flip_ready_at_once(kube, emulator, operators):
    ids = emulator.api_with_method(integration=HTTP)
    operators("--resync-period", "2", "--aws-max-attempts", "1")
    kube.apply(manifest("steady", ids, **HTTP))
    kube.wait_ready("steady")
    before = emulator.responses().get("GetIntegration", {}).get("429", 0)
    # Every drift read answered 429 with Retry-After 3 s: each retry waits at least 3 s.
    emulator.faults(throttle=1.0, retry_after=3, operations=["GetIntegration", "GetResources"])

    def throttled_reads() -> int:
        return emulator.responses().get("GetIntegration", {}).get("429", 0) - before

    wait_for("two drift reads throttled", lambda: throttled_reads() >= 2, timeout=60)
    ready = kube.condition("steady", "Ready")
    assert ready["status"] == "True" and ready["reason"] == "Synced", ready
    # Not forever: the third failure in a row is reported.
    kube.wait_reason("steady", "Throttled", timeout=60)
    emulator.faults()
    kube.wait_ready("steady", timeout=60)
