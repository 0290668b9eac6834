"""The RBAC proof of tests/ship/test_rbac.py, with the pod's real ServiceAccount: the chart is
installed (cluster-wide, leader election on) and the operator runs as its pod, authenticated by
its projected token. With every rule the scenario works; with any single rule removed from the
installed ClusterRole or leader-election Role (and a new pod started under it), a named part
breaks, each in its own way; the rule is restored afterwards.

The release runs in --access-mode operator-identity (nodelib's values), so the chart renders no
admission Role: its two rules (the admission ConfigMap) are proven by tests/ship/test_rbac.py,
whose release runs in refuse mode under the same rules. Here, without the access or namespace
rules the pod logs the refused list and keeps working as the operator's identity."""

from __future__ import annotations

import json
import re

import pytest

from nodelib import (PUT_HTTP, Emulator, Release, kubectl, kubectl_json, new_release, node_env, uninstall,
                     wait_for)
from test_rbac import ACCESSES, CASES, FORBIDDEN  # tests/ship/test_rbac.py: the same cases, one per rule

# The roles this release has (no admission Role in operator-identity mode; see above).
POD_CASES = [c for c in CASES if c[0] in ("clusterrole", "leader-election")]


@pytest.fixture(scope="module")
def emulator() -> Emulator:
    return Emulator(node_env()["APIGW_EMULATOR_ADMIN"])


@pytest.fixture(scope="module")
def rel(tmp_path_factory) -> Release:
    r = new_release(node_env(), tmp_path_factory.mktemp("values"), lease_duration=5)
    try:
        r.helm("install", leaderElection={"enabled": True, "leaseDuration": 5}, logFormat="text")
        yield r
    finally:
        uninstall(r)


def role_ref(r: Release, role: str) -> list[str]:
    return ["clusterrole", r.full] if role == "clusterrole" else ["role", f"{r.full}-leader-election", "-n", r.namespace]


def permission(r: Release, case: str) -> tuple[str, ...]:
    ns = r.namespace
    return {
        "watch": ("watch", "apigatewayintegrations.apigw.dev", "--all-namespaces"),
        "finalizer": ("patch", "apigatewayintegrations.apigw.dev", "-n", ns),
        "status": ("patch", "apigatewayintegrations.apigw.dev", "--subresource=status", "-n", ns),
        "events": ("create", "events.events.k8s.io", "-n", ns),
        "lease-create": ("create", "leases.coordination.k8s.io", "-n", ns),
        "lease-get-patch": ("get", f"leases.coordination.k8s.io/{r.full}", "-n", ns),
        "access-read": ("list", ACCESSES, "--all-namespaces"),
        "access-status": ("patch", ACCESSES, "--subresource=status", "--all-namespaces"),
        "namespaces": ("watch", "namespaces", "--all-namespaces"),
    }[case]


def allowed(r: Release, case: str) -> bool:
    return kubectl("auth", "can-i", *permission(r, case), f"--as={r.service_account}", check=False).stdout.strip() == "yes"


def fresh_pod(r: Release) -> str:
    """Deletes the release's pod(s) and returns the name of the one the ReplicaSet starts next."""
    old = {p["metadata"]["name"] for p in r.pods()}
    if old:
        kubectl("delete", "pod", *old, "-n", r.namespace, "--wait=true", "--timeout=60s")

    def started():
        pods = [p for p in r.live_pods() if p["metadata"]["name"] not in old
                and p.get("status", {}).get("containerStatuses")
                and (p["status"]["containerStatuses"][0]["state"].get("running")
                     or p["status"]["containerStatuses"][0].get("lastState", {}).get("terminated"))]
        return pods[0]["metadata"]["name"] if pods else None
    return wait_for("a new pod to start", started, timeout=90)


def logs(r: Release, pod: str, previous: bool = False) -> str:
    return kubectl("logs", pod, "-n", r.namespace, *(["--previous"] if previous else []), check=False).stdout


def test_every_rule_has_a_case(rel):
    for role in ("clusterrole", "leader-election"):
        rules = kubectl_json("get", *role_ref(rel, role))["rules"]
        assert sorted(i for r, i, _ in POD_CASES if r == role) == list(range(len(rules))), (role, rules)


def test_with_every_rule_the_pod_works(rel, emulator):
    pod = fresh_pod(rel)
    ids = emulator.api_with_method(integration=PUT_HTTP)
    rel.kube.apply(rel.manifest("full", ids, timeoutInMillis=1000, deletionPolicy="Delete"))
    obj = rel.kube.wait_ready("full", timeout=90)
    assert obj["metadata"]["finalizers"] == ["apigw.dev/cleanup"]
    assert [e["reason"] for e in rel.kube.events("full")] == ["Updated"]
    assert rel.holder() == pod
    rel.kube.run("delete", "apigatewayintegrations.apigw.dev", "full", "--timeout=60s")
    with pytest.raises(emulator.aws.exceptions.NotFoundException):
        emulator.integration(ids)
    assert not re.search(FORBIDDEN, logs(rel, pod)), logs(rel, pod)


@pytest.mark.parametrize("role,index,case", POD_CASES, ids=[c for _, _, c in POD_CASES])
def test_removing_a_rule_breaks_the_pod(rel, emulator, role, index, case):
    ref = role_ref(rel, role)
    original = kubectl_json("get", *ref)["rules"]
    assert allowed(rel, case)
    kubectl("patch", *ref, "--type=json", "-p", json.dumps([{"op": "remove", "path": f"/rules/{index}"}]))
    name = f"no-{case}"
    try:
        wait_for(f"RBAC to refuse {case}", lambda: not allowed(rel, case), 30)
        if case.startswith("lease"):
            kubectl("delete", "lease", rel.full, "-n", rel.namespace, "--ignore-not-found")
        pod = fresh_pod(rel)
        ids = emulator.api_with_method(integration=PUT_HTTP)
        if case in ("watch", "lease-create", "lease-get-patch"):
            # The operator exits non-zero; the kubelet restarts the container.
            def crashed():
                p = kubectl_json("get", "pod", pod, "-n", rel.namespace)
                term = p["status"]["containerStatuses"][0].get("lastState", {}).get("terminated")
                return term if term and term["exitCode"] != 0 else None
            wait_for("the container to exit non-zero and restart", crashed, timeout=90)

            def refused() -> str | None:
                # The last run's log, or the current run's (it fails the same way).
                for text in (logs(rel, pod, previous=True), logs(rel, pod)):
                    if re.search(FORBIDDEN, text):
                        return text
                return None
            log = wait_for("a log of the refused call", refused, timeout=60)
            assert ("leader election" in log) if case.startswith("lease") else ("cannot list ApiGatewayIntegrations" in log), log
            return
        wait_for("the pod to be Ready", lambda: any(p["metadata"]["name"] == pod for p in rel.ready_pods()), 90)
        if case == "finalizer":
            rel.kube.apply(rel.manifest(name, ids, timeoutInMillis=1000, deletionPolicy="Delete"))
            wait_for("the pod to log the refused patch",
                     lambda: re.search(r'cannot patch resource \\?"apigatewayintegrations\\?"', logs(rel, pod)), 60)
            obj = rel.kube.get(name)
            assert "finalizers" not in obj["metadata"] and "status" not in obj, obj
        elif case == "status":
            rel.kube.apply(rel.manifest(name, ids, timeoutInMillis=1000))
            wait_for("the pod to log the refused status patch",
                     lambda: re.search(r'cannot patch resource \\?"apigatewayintegrations/status\\?"', logs(rel, pod)), 60)
            assert "status" not in rel.kube.get(name)
        elif case in ("access-read", "namespaces"):
            # The access check's caches cannot fill: logged; objects act as the operator's
            # identity (this release's mode), so the scenario still works.
            resource = "apigatewayaccesses" if case == "access-read" else "namespaces"
            wait_for(f"the pod to log the refused list of {resource}",
                     lambda: re.search(rf'cannot (list|watch) resource \\?"{resource}\\?"', logs(rel, pod)), 90)
            rel.kube.apply(rel.manifest(name, ids, timeoutInMillis=1000))
            rel.kube.wait_ready(name, timeout=90)
        elif case == "access-status":
            idle = f"{rel.full}-idle"
            kubectl("apply", "-f", "-", input=json.dumps({
                "apiVersion": "apigw.dev/v1alpha1", "kind": "ApiGatewayAccess", "metadata": {"name": idle},
                "spec": {"namespaceSelector": {"matchLabels": {"node.apigw.dev/none": idle}}}}))
            try:
                wait_for("the pod to log the refused access status patch",
                         lambda: re.search(r'cannot patch resource \\?"apigatewayaccesses/status\\?"', logs(rel, pod)), 90)
            finally:
                kubectl("delete", ACCESSES, idle, "--ignore-not-found")
        elif case == "events":
            rel.kube.apply(rel.manifest(name, ids, timeoutInMillis=1000))
            rel.kube.wait_ready(name, timeout=90)
            wait_for("the pod to log the refused event",
                     lambda: re.search(r'cannot create resource \\?"events\\?"', logs(rel, pod)), 60)
            assert emulator.integration(ids)["timeoutInMillis"] == 1000
            assert rel.kube.events(name) == []
        else:
            raise AssertionError(case)
    finally:
        kubectl("patch", *ref, "--type=json", "-p", json.dumps([{"op": "replace", "path": "/rules", "value": original}]))
        wait_for(f"RBAC to allow {case} again", lambda: allowed(rel, case), 30)
        rel.kube.run("patch", "apigatewayintegrations.apigw.dev", name, "--type=merge",
                     "-p", '{"metadata":{"finalizers":null}}', check=False)
        rel.kube.run("delete", "apigatewayintegrations.apigw.dev", name, "--ignore-not-found", "--timeout=60s")
