"""helm install, upgrade and uninstall against the test environment's API server. No kubelet runs,
so pods never start: the tests check the API objects (installed with --wait=false)."""

from __future__ import annotations

import json

import pytest

from shiplib import CHART, HERE, docs, helm, helm_template, kubectl, kubectl_json, need_env, random_name, wait_for

VALUES = sorted(p.stem for p in (HERE / "values").glob("*.yaml"))


@pytest.fixture
def namespace() -> str:
    need_env("KUBECONFIG")
    ns = random_name("ship-helm")
    kubectl("create", "namespace", ns)
    kubectl("label", "namespace", ns, "pod-security.kubernetes.io/enforce=restricted")
    return ns


def exists(kind: str, name: str, namespace: str | None = None) -> bool:
    args = ["get", kind, name, "--ignore-not-found", "-o", "name"]
    if namespace:
        args += ["-n", namespace]
    return bool(kubectl(*args).stdout.strip())


def args_in_cluster(name: str, namespace: str) -> list[str]:
    deployment = kubectl_json("get", "deployment", name, "-n", namespace)
    return deployment["spec"]["template"]["spec"]["containers"][0]["args"]


@pytest.mark.parametrize("values", VALUES)
def test_pod_template_meets_the_restricted_standard(namespace, values):
    """The API server's PodSecurity admission checks the Deployment's pod template."""
    rendered = docs(helm_template([HERE / "values" / f"{values}.yaml"], namespace=namespace).stdout)
    deployment = next(o for o in rendered if o["kind"] == "Deployment")
    out = kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(deployment))
    assert "PodSecurity" not in out.stderr, out.stderr


def test_install_upgrade_uninstall(namespace):
    release = random_name("ship")
    full = f"{release}-apigw-operator"
    role_a = "arn:aws:iam::123456789012:role/apigw-a"
    role_b = "arn:aws:iam::123456789012:role/apigw-b"
    try:
        out = helm("install", release, str(CHART), "-n", namespace, "--wait=false", "--no-hooks",
                   "--set", "aws.region=us-east-1", "--set", f"serviceAccount.roleArn={role_a}")
        assert "PodSecurity" not in out.stderr, out.stderr
        assert exists("crd", "apigatewayintegrations.apigw.dev")
        for kind, name in [("deployment", full), ("serviceaccount", full), ("service", f"{full}-metrics")]:
            assert exists(kind, name, namespace), (kind, name)
        for kind in ("clusterrole", "clusterrolebinding"):
            assert exists(kind, full), kind
        assert not exists("role", f"{full}-leader-election", namespace)
        sa = kubectl_json("get", "serviceaccount", full, "-n", namespace)
        assert sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] == role_a
        args = args_in_cluster(full, namespace)
        assert "--region=us-east-1" in args and "--concurrency=8" in args and "--leader-elect" not in args
        status = json.loads(helm("status", release, "-n", namespace, "-o", "json").stdout)
        assert status["info"]["status"] == "deployed" and status["version"] == 1

        # Upgrade: new values reach the objects; two replicas turn on leader election.
        helm("upgrade", release, str(CHART), "-n", namespace, "--wait=false", "--no-hooks", "--reuse-values",
             "--set", "concurrency=3", "--set", f"serviceAccount.roleArn={role_b}", "--set", "replicaCount=2")
        args = args_in_cluster(full, namespace)
        assert "--concurrency=3" in args and "--leader-elect" in args, args
        deployment = kubectl_json("get", "deployment", full, "-n", namespace)
        assert deployment["spec"]["replicas"] == 2
        assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
        sa = kubectl_json("get", "serviceaccount", full, "-n", namespace)
        assert sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] == role_b
        assert exists("role", f"{full}-leader-election", namespace)
        assert exists("rolebinding", f"{full}-leader-election", namespace)

        # Upgrade to one namespace: the ClusterRole gives way to a Role in that namespace.
        helm("upgrade", release, str(CHART), "-n", namespace, "--wait=false", "--no-hooks", "--reuse-values",
             "--set", f"watchNamespace={namespace}")
        assert not exists("clusterrole", full) and not exists("clusterrolebinding", full)
        assert exists("role", full, namespace) and exists("rolebinding", full, namespace)
        assert f"--namespace={namespace}" in args_in_cluster(full, namespace)
        status = json.loads(helm("status", release, "-n", namespace, "-o", "json").stdout)
        assert status["version"] == 3
    finally:
        helm("uninstall", release, "-n", namespace, "--no-hooks", "--wait=false", check=False)

    def gone() -> bool:
        return not any([exists("deployment", full, namespace), exists("serviceaccount", full, namespace),
                        exists("service", f"{full}-metrics", namespace), exists("role", full, namespace),
                        exists("rolebinding", full, namespace), exists("role", f"{full}-leader-election", namespace),
                        exists("clusterrole", full), exists("clusterrolebinding", full)])
    wait_for("the release's objects to be deleted", gone, 60)
    assert helm("status", release, "-n", namespace, check=False).returncode != 0
    # Helm never deletes a CRD from crds/: the ApiGatewayIntegrations of every namespace survive.
    assert exists("crd", "apigatewayintegrations.apigw.dev")

