"""deploy/: the kustomize base. Its operator objects are the chart's default rendering (release
apigw-operator in apigw-system) without Helm's own labels; UPDATE_GOLDEN=1 regenerates them.
Applied to the test environment's API server with server-side apply."""

from __future__ import annotations

import re

import yaml

from shiplib import CRD, CRDS, DEPLOY, compare_golden, docs, find, helm_template, kinds, kubectl, kubectl_json, need_env, wait_for

CLUSTER_SCOPED = ("Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding",
                  "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding")
HELM_ONLY_LABELS = re.compile(r"^\s+(helm\.sh/chart|app\.kubernetes\.io/managed-by): .*\n", re.M)
# deploy/ file ← chart templates it holds, in order.
GENERATED = {
    "rbac.yaml": ["serviceaccount.yaml", "rbac.yaml"],
    "deployment.yaml": ["deployment.yaml"],
    "service.yaml": ["service.yaml"],
    "admission-policy.yaml": ["admission-policy.yaml"],
}
HEADER = ("# Generated from charts/apigw-operator (helm template apigw-operator -n apigw-system, default values,\n"
          "# without Helm's labels). Edit the chart, then run: UPDATE_GOLDEN=1 $PY -m pytest tests/ship/test_deploy.py\n")


def rendered_files() -> dict[str, str]:
    text = helm_template().stdout
    by_template: dict[str, list[str]] = {}
    for chunk in text.split("---\n"):
        m = re.match(r"# Source: apigw-operator/templates/(\S+)\n", chunk)
        if not m:
            assert not chunk.strip(), chunk
            continue
        body = HELM_ONLY_LABELS.sub("", chunk[m.end():])
        by_template.setdefault(m.group(1), []).append(body)
    assert set(by_template) == {t for ts in GENERATED.values() for t in ts}, sorted(by_template)
    return {name: HEADER + "".join("---\n" + body for t in templates for body in by_template[t])
            for name, templates in GENERATED.items()}


def test_generated_files_are_the_charts_rendering():
    for name, text in rendered_files().items():
        compare_golden(DEPLOY / name, text)


def test_deploy_crds_are_the_generated_ones():
    for crd in CRDS:
        copy = DEPLOY / "crds" / crd.name
        assert copy.read_text() == crd.read_text(), "deploy/crds/ differs from crds/: run `make crds`"


def build() -> list[dict]:
    return docs(kubectl("kustomize", str(DEPLOY)).stdout)


def test_kustomize_builds_the_same_objects_as_the_chart():
    objects = build()
    chart = docs(helm_template().stdout)
    crds = [("CustomResourceDefinition", yaml.safe_load(crd.read_text())["metadata"]["name"]) for crd in CRDS]
    assert kinds(objects) == sorted(kinds(chart) + crds + [("Namespace", "apigw-system")])
    for obj in chart:
        mine = find(objects, obj["kind"], obj["metadata"]["name"])
        for key in set(obj) - {"metadata"}:
            assert mine[key] == obj[key], (obj["kind"], key)
        assert mine["metadata"].get("namespace") == obj["metadata"].get("namespace")
    for crd in CRDS:
        generated = yaml.safe_load(crd.read_text())
        assert find(objects, "CustomResourceDefinition", generated["metadata"]["name"]) == generated
    for obj in objects:
        if obj["kind"] not in CLUSTER_SCOPED:
            assert obj["metadata"]["namespace"] == "apigw-system", obj["metadata"]


def test_kustomization_lists_every_file():
    """Each generated file and CRD is a resource of the base (a file left out, such as the
    admission policy, would silently not be installed)."""
    resources = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())["resources"]
    for name in GENERATED:
        assert name in resources, f"deploy/kustomization.yaml does not list {name}"
    for crd in CRDS:
        assert f"crds/{crd.name}" in resources, f"deploy/kustomization.yaml does not list crds/{crd.name}"


def test_admission_policy_is_bound_to_the_configmap_in_apigw_system():
    objects = build()
    namespace = find(objects, "Namespace")["metadata"]["name"]
    assert namespace == "apigw-system"
    policy = find(objects, "ValidatingAdmissionPolicy", "apigw-operator-access")
    assert policy["spec"]["paramKind"] == {"apiVersion": "v1", "kind": "ConfigMap"}
    binding = find(objects, "ValidatingAdmissionPolicyBinding", "apigw-operator-access")
    assert binding["spec"]["policyName"] == "apigw-operator-access"
    assert binding["spec"]["validationActions"] == ["Deny"]
    assert binding["spec"]["paramRef"] == {"name": "apigw-admission", "namespace": namespace,
                                           "parameterNotFoundAction": "Allow"}
    # The operator keeps that ConfigMap: the Deployment names it, and the Role lets it.
    args = find(objects, "Deployment", "apigw-operator")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--access-mode=refuse" in args and f"--admission-configmap={namespace}/apigw-admission" in args
    role = find(objects, "Role", "apigw-operator-admission")
    assert role["metadata"]["namespace"] == namespace
    assert {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["apigw-admission"],
            "verbs": ["get", "patch", "update"]} in role["rules"]


def test_server_side_apply_succeeds_and_is_idempotent():
    need_env("KUBECONFIG")
    # A server-side dry run first: everything but the namespaced objects, whose namespace a dry
    # run does not create, must be accepted as is.
    kubectl("apply", "--server-side", "--dry-run=server", "-f", str(DEPLOY / "namespace.yaml"),
            "-f", str(DEPLOY / "crds"))
    # Then for real. apigw-system is kept (namespaces cannot be deleted here) and the CRD is the
    # one every test uses; the operator objects stay, pods never start without a kubelet. The
    # admission policy and its binding do not: cluster-wide, they would refuse every object of
    # other tests as soon as something wrote apigw-system/apigw-admission.
    try:
        applied_and_idempotent()
    finally:
        kubectl("delete", "validatingadmissionpolicybinding,validatingadmissionpolicy", "apigw-operator-access",
                "--ignore-not-found")


def applied_and_idempotent():
    applied = kubectl("apply", "--server-side", "-k", str(DEPLOY))
    out = applied.stdout
    # apigw-system enforces the restricted Pod Security Standard: the API server would warn
    # about a pod template that breaks it.
    assert "PodSecurity" not in applied.stderr, applied.stderr
    labels = kubectl_json("get", "namespace", "apigw-system")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    for kind, name in kinds(build()):
        assert name in out, (kind, name, out)
    deployment = kubectl_json("get", "deployment", "apigw-operator", "-n", "apigw-system")
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "apigw-operator"
    wait_for("the CRD is established",
             lambda: kubectl("wait", "--for=condition=Established", "--timeout=30s",
                             "crd/apigatewayintegrations.apigw.dev", check=False).returncode == 0, 60)
    # Applying again changes nothing, and the server's copy has no diff from the files.
    again = kubectl("apply", "--server-side", "-k", str(DEPLOY)).stdout
    assert "serverside-applied" in again
    before = kubectl_json("get", "deployment", "apigw-operator", "-n", "apigw-system")
    assert before["metadata"]["generation"] == deployment["metadata"]["generation"]
    diff = kubectl("diff", "--server-side", "-k", str(DEPLOY), check=False)
    assert diff.returncode == 0, diff.stdout + diff.stderr
