"""The Kubernetes side of the test environment (`make testenv-up`).

Checks that the API server is ready and of the pinned version, that the
project's CRDs (crds/) apply and carry documentation, that ServiceAccount
tokens can be minted (TokenRequest API, used to run the operator under a
least-privilege identity) and that RBAC is enforced.
"""

import json
import os
import secrets
import subprocess
import time
from pathlib import Path

import pytest
import requests

REPO_ROOT = Path(__file__).resolve().parents[2]

USING_EXISTING_CLUSTER = os.environ.get("TESTENV_USE_EXISTING_CLUSTER") == "1"


def test_readyz_with_admin_client_cert(kube_api, kubectl):
    if kube_api["cert"] is None:
        # A user's own cluster may authenticate some other way.
        assert kubectl("get", "--raw", "/readyz").strip() == "ok"
        return
    resp = requests.get(
        kube_api["server"] + "/readyz",
        cert=kube_api["cert"],
        verify=kube_api["verify"],
        timeout=10,
    )
    assert resp.status_code == 200, resp.text
    assert resp.text.strip() == "ok"


def test_version_is_pinned(kubectl, pinned):
    info = json.loads(kubectl("get", "--raw", "/version"))
    if USING_EXISTING_CLUSTER:
        assert info["gitVersion"].startswith("v1."), info
        return
    assert info["gitVersion"] == pinned["KUBE_VERSION"], info
    assert info["major"] == "1"
    assert info["minor"] == pinned["KUBE_VERSION"].split(".")[1]


def test_pinned_client_tools(testenv, kubectl, pinned):
    """env.sh puts the pinned kubectl and helm first on PATH."""
    if USING_EXISTING_CLUSTER and not testenv.get("TESTENV_BIN"):
        return
    client = json.loads(kubectl("version", "--client", "-o", "json"))["clientVersion"]
    assert client["gitVersion"] == pinned["KUBE_VERSION"], client
    helm = os.path.join(testenv["TESTENV_BIN"], "helm")
    proc = subprocess.run([helm, "version", "--template", "{{.Version}}"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == pinned["HELM_VERSION"], proc.stdout


def crd_files():
    crds = REPO_ROOT / "crds"
    return sorted(p for p in crds.glob("*") if p.suffix in (".yaml", ".yml", ".json")) if crds.is_dir() else []


def test_crds_apply_and_explain(kubectl):
    files = crd_files()
    assert files, (
        f"{REPO_ROOT / 'crds'} holds no CRD manifests (*.yaml); "
        "they are generated from the operator's Rust types: generate or restore them (git checkout -- crds)"
    )
    crds_dir = str(REPO_ROOT / "crds")
    kubectl("apply", "--server-side", "--force-conflicts", "--field-manager=testenv-tests", "-f", crds_dir)
    kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", crds_dir)

    # The OpenAPI document that `kubectl explain` reads is republished a moment
    # after a CRD is established: retry for a bounded time.
    deadline = time.monotonic() + 60
    while True:
        proc = kubectl.run("explain", "apigatewayintegrations.spec", check=False)
        if proc.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert proc.returncode == 0, f"kubectl explain failed:\n{proc.stdout}\n{proc.stderr}"
    out = proc.stdout
    assert "DESCRIPTION:" in out, out
    description = out.split("DESCRIPTION:", 1)[1].split("FIELDS:", 1)[0].strip()
    assert description and description != "<empty>", (
        "apigatewayintegrations.spec has no description in the CRD schema:\n" + out
    )
    assert "FIELDS:" in out, out


@pytest.fixture
def service_account(kubectl):
    """A fresh ServiceAccount in "default" with no RBAC bindings at all."""
    name = "testenv-probe-" + secrets.token_hex(4)
    kubectl("create", "serviceaccount", name, "-n", "default")
    yield name
    kubectl.run("delete", "serviceaccount", name, "-n", "default", "--ignore-not-found", "--wait=false", check=False)


def test_create_token_and_rbac_is_enforced(kubectl, kube_api, service_account):
    token = kubectl("create", "token", service_account, "-n", "default", "--duration=10m").strip()
    assert token.count(".") == 2, f"not a JWT: {token!r}"

    base = kube_api["server"]
    headers = {"Authorization": "Bearer " + token}
    # Authenticated as the ServiceAccount (not anonymous, not rejected) ...
    review = requests.post(
        base + "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        json={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
        headers=headers,
        verify=kube_api["verify"],
        timeout=10,
    )
    assert review.status_code == 201, review.text
    username = review.json()["status"]["userInfo"]["username"]
    assert username == f"system:serviceaccount:default:{service_account}"

    # ... and, with no bindings, forbidden to list pods.
    pods = requests.get(
        base + "/api/v1/namespaces/default/pods",
        headers=headers,
        verify=kube_api["verify"],
        timeout=10,
    )
    assert pods.status_code == 403, pods.text
    assert pods.json()["reason"] == "Forbidden"

    # kubectl agrees.
    can_i = kubectl.run(
        "auth", "can-i", "list", "pods", "-n", "default",
        f"--as=system:serviceaccount:default:{service_account}", check=False,
    )
    assert can_i.stdout.strip() == "no", can_i.stdout + can_i.stderr
