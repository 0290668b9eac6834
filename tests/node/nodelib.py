"""Helpers of the node tests: the chart installed with the locally built image on the test
environment's nodes (`make test-node`, or `make node-up`, `make image` and `. target/testenv/env.sh`).

The nodes' API server listens on 127.0.0.1 only and no kube-proxy runs, so the pods use
hostNetwork with KUBERNETES_SERVICE_HOST/PORT set to the API server's address, and the
emulator's 127.0.0.1 address as the API Gateway endpoint. A hostNetwork pod's IP is its node's
(127.0.0.1 or 127.0.0.2), and the chart then binds the metrics server to that IP: each node has
room for one replica. The nodes carry the taint apigw.dev/testenv=node:NoSchedule, which the
release tolerates. Nothing here skips: a missing part fails and names the command that provides it.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ship"))

from shiplib import (CHART, REPO, Emulator, Kube, free_port, helm, kubectl, kubectl_json, manifest,  # noqa: E402
                     need_env, random_name, run, wait_for)

__all__ = ["CHART", "REPO", "Emulator", "Kube", "free_port", "helm", "kubectl", "kubectl_json", "manifest",
           "need_env", "random_name", "run", "wait_for", "Release", "IMAGE", "VERSION", "node_env", "image_tar"]

VERSION = tomllib.loads((REPO / "Cargo.toml").read_text())["package"]["version"]
IMAGE = f"ghcr.io/apigw-operator/apigw-operator:{VERSION}"
HINT = "run `make test-node` (or `make node-up`, `make image` and `. target/testenv/env.sh`)"
PUT_HTTP = {"type": "HTTP", "integrationHttpMethod": "POST", "uri": "https://backend.example.com/pets"}


def node_env() -> dict[str, str]:
    if os.environ.get("TESTENV_NODE") != "1":
        pytest.fail(f"the test environment runs no node (TESTENV_NODE is not 1): {HINT}", pytrace=False)
    return {k: need_env(k) for k in ("KUBECONFIG", "AWS_ENDPOINT_URL", "APIGW_EMULATOR_ADMIN", "TESTENV_NODES",
                                      "TESTENV_APISERVER_HOST", "TESTENV_APISERVER_PORT", "TESTENV_CONTAINERD_SOCKETS",
                                      "TESTENV_NODE_TAINT")}


def image_tar() -> Path:
    path = REPO / "target" / "image" / f"apigw-operator-{VERSION}.oci.tar"
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make image` ({HINT})", pytrace=False)
    return path


def containerd_socket(node: str) -> str:
    """The containerd socket of node 127.0.0.<i+1> (the i-th of TESTENV_CONTAINERD_SOCKETS)."""
    sockets = need_env("TESTENV_CONTAINERD_SOCKETS").split()
    return sockets[int(node.rsplit(".", 1)[1]) - 1]


def ctr(node: str, *args: str) -> str:
    return run(["ctr", "--address", containerd_socket(node), "-n", "k8s.io", *args]).stdout


@dataclass
class Release:
    """The chart installed in its own namespace with the node values, and what it made."""

    namespace: str
    name: str
    metrics_port: int
    lease_duration: int
    selector: tuple[str, str]
    env: dict[str, str]
    values_file: Path
    kube: Kube = field(init=False)
    # The values given so far (each helm call adds to them, as --reuse-values would).
    overrides: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.kube = Kube(self.namespace)

    @property
    def full(self) -> str:
        return f"{self.name}-apigw-operator"

    @property
    def service_account(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.full}"

    def values(self, **overrides) -> dict:
        host, port = self.env["TESTENV_APISERVER_HOST"], self.env["TESTENV_APISERVER_PORT"]
        key, _, rest = self.env["TESTENV_NODE_TAINT"].partition("=")
        effect = rest.split(":")[1]
        values = {
            "aws": {"region": "us-east-1", "endpointUrl": self.env["AWS_ENDPOINT_URL"]},
            "hostNetwork": True,
            "metrics": {"port": self.metrics_port},
            "backoff": {"base": 0.5, "cap": 5},
            "leaderElection": {"leaseDuration": self.lease_duration},
            "selector": f"{self.selector[0]}={self.selector[1]}",
            "extraEnv": [
                {"name": "KUBERNETES_SERVICE_HOST", "value": host},
                {"name": "KUBERNETES_SERVICE_PORT", "value": port},
                {"name": "AWS_ACCESS_KEY_ID", "value": "testing"},
                {"name": "AWS_SECRET_ACCESS_KEY", "value": "testing"},
                # STS (GetCallerIdentity at start) answers from the emulator too.
                {"name": "AWS_ENDPOINT_URL_STS", "value": self.env["AWS_ENDPOINT_URL"]},
            ],
            # The node tests are about pods; tenancy is tested end to end (tests/e2e/test_access.py).
            "accessMode": "operator-identity",
            "tolerations": [{"key": key, "operator": "Exists", "effect": effect}],
        }
        self.overrides.update(overrides)
        values.update(self.overrides)
        return values

    def helm(self, verb: str, timeout: str = "180s", **overrides) -> None:
        self.values_file.write_text(yaml.safe_dump(self.values(**overrides)))
        helm(verb, self.name, str(CHART), "-n", self.namespace, "-f", str(self.values_file),
             "--wait", f"--timeout={timeout}")

    def helm_async(self, verb: str, timeout: str = "240s", **overrides) -> subprocess.Popen:
        """`helm VERB --wait` in the background; the caller waits for it (bounded)."""
        self.values_file.write_text(yaml.safe_dump(self.values(**overrides)))
        return subprocess.Popen(["helm", verb, self.name, str(CHART), "-n", self.namespace, "-f", str(self.values_file),
                                 "--wait", f"--timeout={timeout}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def pods(self) -> list[dict]:
        out = kubectl_json("get", "pods", "-n", self.namespace, "-l", f"app.kubernetes.io/instance={self.name}")
        return out["items"]

    def live_pods(self) -> list[dict]:
        return [p for p in self.pods() if not p["metadata"].get("deletionTimestamp")]

    def ready_pods(self) -> list[dict]:
        return [p for p in self.live_pods() if is_ready(p)]

    def holder(self) -> str:
        return kubectl("get", "lease", self.full, "-n", self.namespace, "-o", "jsonpath={.spec.holderIdentity}",
                       check=False).stdout

    def manifest(self, name: str, ids: dict, **spec) -> dict:
        m = manifest(name, ids, **spec)
        m["metadata"]["labels"] = {self.selector[0]: self.selector[1]}
        return m


def is_ready(pod: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions", []))


def container_pid(pod: dict) -> int:
    """The host PID of the pod's operator container, from its node's containerd."""
    status = pod["status"]["containerStatuses"][0]
    container_id = status["containerID"].split("://", 1)[1]
    node = pod["spec"]["nodeName"]
    for line in ctr(node, "tasks", "ls").splitlines()[1:]:
        parts = line.split()
        if parts and parts[0] == container_id:
            return int(parts[1])
    pytest.fail(f"no task {container_id} in {node}'s containerd:\n{ctr(node, 'tasks', 'ls')}", pytrace=False)


def proc_status(pid: int) -> dict[str, str]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        out[key] = value.strip()
    return out


def jwt_claims(token: str) -> dict:
    payload = token.split(".")[1]
    payload += "=" * (-len(payload) % 4)
    return json.loads(base64.urlsafe_b64decode(payload))


def get(url: str) -> requests.Response | None:
    try:
        return requests.get(url, timeout=3)
    except requests.RequestException:
        return None


def pod_url(pod: dict, port: int, path: str) -> str:
    return f"http://{pod['status']['podIP']}:{port}{path}"


def new_release(env: dict[str, str], tmp: Path, lease_duration: int = 6) -> Release:
    namespace = random_name("node")
    kubectl("create", "namespace", namespace)
    name = random_name("op")
    return Release(namespace, name, free_port(), lease_duration, ("node.apigw.dev/release", name), env,
                   tmp / f"{namespace}-values.yaml")


def uninstall(release: Release) -> None:
    for obj in release.kube.run("get", "apigatewayintegrations.apigw.dev", "-o", "name", check=False).stdout.split():
        kubectl("patch", obj, "-n", release.namespace, "--type=merge", "-p", '{"metadata":{"finalizers":null}}', check=False)
    helm("uninstall", release.name, "-n", release.namespace, "--wait", "--timeout=120s", check=False)
    kubectl("delete", "namespace", release.namespace, "--wait=false", check=False)


def subprocess_ok(cmd: list[str]) -> bool:
    return subprocess.run(cmd, capture_output=True, timeout=60).returncode == 0
