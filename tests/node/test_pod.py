"""The chart's Deployment runs the operator as a real pod from the locally built image.

One release (module scope) is installed with `helm install --wait` and the node values (see
nodelib): the pod is Ready, runs as 65532 under the chart's restricted security context, uses its
ServiceAccount token, reconciles an ApiGatewayIntegration against the emulator, answers its
probes, logs JSON, and its metrics Service selects it. Then (test_ha.py's scenarios, here so
that they reuse the release) it is upgraded to two replicas with leader election.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from nodelib import (IMAGE, PUT_HTTP, Emulator, Release, container_pid, get, is_ready, jwt_claims, kubectl,
                     kubectl_json, new_release, node_env, pod_url, proc_status, uninstall, wait_for)


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Release:
    env = node_env()
    rel = new_release(env, tmp_path_factory.mktemp("values"))
    try:
        rel.helm("install")
        yield rel
    finally:
        uninstall(rel)


@pytest.fixture(scope="module")
def emulator() -> Emulator:
    return Emulator(node_env()["APIGW_EMULATOR_ADMIN"])


def the_pod(release: Release) -> dict:
    pods = release.live_pods()
    assert len(pods) == 1, [p["metadata"]["name"] for p in pods]
    return pods[0]


def test_pod_is_ready_from_the_local_image_as_nonroot_with_the_restricted_context(release):
    pod = the_pod(release)
    assert is_ready(pod)
    status = pod["status"]["containerStatuses"][0]
    assert status["image"] == IMAGE and status["restartCount"] == 0, status
    assert pod["spec"]["nodeName"] in release.env["TESTENV_NODES"].split()
    # The chart's restricted context, as the API server stored it...
    spec = pod["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] == 65532
    c = spec["containers"][0]["securityContext"]
    assert c == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "runAsNonRoot": True,
                 "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}
    # ...and as the kernel enforces it on the container's process.
    ps = proc_status(container_pid(pod))
    assert ps["Uid"].split() == ["65532"] * 4 and ps["Gid"].split() == ["65532"] * 4, ps
    assert ps["NoNewPrivs"] == "1", ps
    assert int(ps["CapEff"], 16) == 0 and int(ps["CapPrm"], 16) == 0 and int(ps["CapBnd"], 16) == 0, ps
    assert ps["Seccomp"] == "2", "RuntimeDefault: a seccomp filter"
    root_mount = next(line.split() for line in Path(f"/proc/{container_pid(pod)}/mountinfo").read_text().splitlines()
                      if line.split()[4] == "/")
    assert "ro" in root_mount[5].split(","), root_mount


def test_pod_uses_its_service_account_token(release):
    pod = the_pod(release)
    assert pod["spec"]["serviceAccountName"] == release.full
    token_path = Path(f"/proc/{container_pid(pod)}/root/var/run/secrets/kubernetes.io/serviceaccount/token")
    claims = jwt_claims(token_path.read_text())
    assert claims["sub"] == release.service_account, claims
    assert claims["kubernetes.io"]["pod"]["name"] == pod["metadata"]["name"], claims
    ca = Path(f"/proc/{container_pid(pod)}/root/var/run/secrets/kubernetes.io/serviceaccount/ca.crt").read_text()
    assert "BEGIN CERTIFICATE" in ca
    # No other credentials: the only kube identity the process has is that token (in-cluster config).
    environ = Path(f"/proc/{container_pid(pod)}/environ").read_bytes().split(b"\0")
    assert not any(e.startswith(b"KUBECONFIG=") for e in environ)


def test_integration_becomes_ready_through_the_pod(release, emulator):
    ids = emulator.api_with_method(integration=PUT_HTTP)
    release.kube.apply(release.manifest("pets", ids, timeoutInMillis=1234))
    obj = release.kube.wait_ready("pets", timeout=90)
    assert emulator.integration(ids)["timeoutInMillis"] == 1234
    assert obj["status"]["integration"]["timeoutInMillis"] == 1234
    events = release.kube.events("pets")
    assert [e["reason"] for e in events] == ["Updated"], events
    assert {e["reportingInstance"] for e in events} == {the_pod(release)["metadata"]["name"]}


def test_probes_answer(release):
    pod = the_pod(release)
    probes = pod["spec"]["containers"][0]
    assert probes["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert probes["readinessProbe"]["httpGet"]["path"] == "/readyz"
    # What the kubelet asks (the pod's IP, the node's with hostNetwork, and the metrics port):
    for path in ("/healthz", "/readyz"):
        r = get(pod_url(pod, release.metrics_port, path))
        assert r is not None and r.status_code == 200 and r.text == "ok", (path, r)
    # and the kubelet's own verdict: Ready, and the liveness probe never failed.
    events = kubectl_json("get", "events", "-n", release.namespace, "--field-selector",
                          f"involvedObject.name={pod['metadata']['name']}")["items"]
    assert not [e for e in events if e["reason"] == "Unhealthy"], events
    assert is_ready(kubectl_json("get", "pod", pod["metadata"]["name"], "-n", release.namespace))


def test_kubectl_logs_shows_json(release):
    pod = the_pod(release)
    out = kubectl("logs", pod["metadata"]["name"], "-n", release.namespace).stdout
    lines = [line for line in out.splitlines() if line.strip()]
    assert lines, "no log lines"
    records = [json.loads(line) for line in lines]
    for r in records:
        assert {"timestamp", "level", "fields"} <= r.keys(), r
    messages = [r["fields"].get("message", "") for r in records]
    assert any("serving /metrics" in m for m in messages), messages


def test_metrics_service_serves_metrics(release):
    """No kube-proxy runs, so the Service's ClusterIP routes nowhere; and the API server refuses
    loopback addresses in EndpointSlices (the pods' IPs here are their nodes', 127.0.0.x), so
    the Service's EndpointSlice stays empty. The test resolves the Service as the EndpointSlice
    controller and kube-proxy would: its selector to the ready pods, its named targetPort to
    their container port, and asks each for /metrics."""
    service = kubectl_json("get", "service", f"{release.full}-metrics", "-n", release.namespace)
    (port,) = service["spec"]["ports"]
    assert port["port"] == release.metrics_port and port["targetPort"] == "metrics"
    selector = ",".join(f"{k}={v}" for k, v in service["spec"]["selector"].items())
    pods = [p for p in kubectl_json("get", "pods", "-n", release.namespace, "-l", selector)["items"] if is_ready(p)]
    assert [p["metadata"]["name"] for p in pods] == [the_pod(release)["metadata"]["name"]]
    (pod,) = pods
    (container_port,) = [p["containerPort"] for p in pod["spec"]["containers"][0]["ports"] if p["name"] == port["targetPort"]]
    assert container_port == release.metrics_port
    r = get(f"http://{pod['status']['podIP']}:{container_port}/metrics")
    assert r is not None and r.status_code == 200, r
    assert re.search(r"^apigw_\w+", r.text, re.M), r.text[:500]
    assert re.search(r"^apigw_leader 1", r.text, re.M), "a single replica without leader election leads"
    assert "apigw_reconciles" in r.text
