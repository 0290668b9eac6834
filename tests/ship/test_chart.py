"""The Helm chart, rendered: lint, golden output, schema, the pod's security, RBAC, flags."""

from __future__ import annotations

import re
import tomllib

import pytest
import yaml

from shiplib import (BINARY, CHART, CRD, CRDS, HERE, REPO, compare_golden, container, docs, find, helm, helm_template,
                     kinds, need_binary, run)

VALUES = sorted(p.stem for p in (HERE / "values").glob("*.yaml"))
IMAGE = "ghcr.io/apigw-operator/apigw-operator"

# The API calls the operator makes (src/controller.rs, kube-runtime's Controller and Recorder).
RULES = [
    {"apiGroups": ["apigw.dev"], "resources": ["apigatewayintegrations", "apigatewaystages"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["apigw.dev"], "resources": ["apigatewayintegrations", "apigatewaystages"], "verbs": ["patch"]},
    {"apiGroups": ["apigw.dev"], "resources": ["apigatewayintegrations/status", "apigatewaystages/status"], "verbs": ["patch"]},
    {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
]
# On cluster-scoped objects (issue #14): in the ClusterRole after RULES, or with watchNamespace in
# a ClusterRole of their own. Never a write of an access's spec.
ACCESS_RULES = [
    {"apiGroups": ["apigw.dev"], "resources": ["apigatewayaccesses"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["apigw.dev"], "resources": ["apigatewayaccesses/status"], "verbs": ["get", "patch", "update"]},
    {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list", "watch"]},
]
# The admission policy's ConfigMap, in the release namespace (access mode refuse).
ADMISSION_RULES = [
    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]},
    {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["apigw-admission"], "verbs": ["get", "patch", "update"]},
]


def render(name: str, *sets: str, namespace: str = "apigw-system", release: str = "apigw-operator") -> list[dict]:
    return docs(helm_template([HERE / "values" / f"{name}.yaml"], sets, release=release, namespace=namespace).stdout)


def cargo_version() -> str:
    return tomllib.loads((REPO / "Cargo.toml").read_text())["package"]["version"]


def args_of(objects: list[dict]) -> list[str]:
    return container(objects)["args"]


@pytest.mark.parametrize("values", VALUES)
def test_helm_lint_is_clean(values):
    out = helm("lint", "--strict", str(CHART), "-f", str(HERE / "values" / f"{values}.yaml"))
    assert "[WARNING]" not in out.stdout and "[ERROR]" not in out.stdout, out.stdout
    assert "0 chart(s) failed" in out.stdout


@pytest.mark.parametrize("values", VALUES)
def test_template_matches_the_golden_file(values):
    rendered = helm_template([HERE / "values" / f"{values}.yaml"]).stdout
    compare_golden(HERE / "golden" / f"{values}.yaml", rendered)


BAD_VALUES = [
    ("--set-string", "replicaCount=two"),
    ("--set", "logFormat=xml"),
    ("--set", "unknownKey=1"),
    ("--set", "aws.unknown=1"),
    ("--set", "aws.region=Mars"),
    ("--set", "aws.endpointUrl=apigateway.example.com"),
    ("--set", "serviceAccount.roleArn=apigw-operator"),
    ("--set", "concurrency=0"),
    ("--set", "aws.rps=0"),
    ("--set", "watchNamespace=Not_A_Namespace"),
    ("--set", "image.pullPolicy=Sometimes"),
    ("--set", "image.digest=latest"),
    ("--set", "serviceMonitor.interval=often"),
    ("--set", "accessMode=open"),
    ("--set", "admissionPolicy.enabled=maybe"),
    ("--set", "admissionPolicy.unknown=1"),
]


@pytest.mark.parametrize("flag,value", BAD_VALUES, ids=[v for _, v in BAD_VALUES])
def test_schema_rejects_bad_values(flag, value):
    out = helm("template", "x", str(CHART), flag, value, check=False)
    assert out.returncode != 0, out.stdout
    assert "schema" in out.stderr, out.stderr


def test_default_image_tag_is_the_cargo_version():
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    version = cargo_version()
    assert chart["appVersion"] == version, "Chart.yaml appVersion must be Cargo.toml's version"
    assert container(render("default"))["image"] == f"{IMAGE}:{version}"
    assert container(render("default", "image.tag=dev"))["image"] == f"{IMAGE}:dev"
    digest = "sha256:" + "0" * 64
    assert container(render("default", f"image.digest={digest}"))["image"] == f"{IMAGE}@{digest}"


def test_chart_crds_are_the_generated_ones():
    assert sorted(p.name for p in (CHART / "crds").iterdir()) == [c.name for c in CRDS]
    for crd in CRDS:
        assert (CHART / "crds" / crd.name).read_text() == crd.read_text(), "the chart's CRD differs from crds/: run `make crds`"


@pytest.mark.parametrize("values", VALUES)
def test_pod_is_restricted_probed_and_knows_itself(values):
    objects = render(values)
    pod = find(objects, "Deployment")["spec"]["template"]["spec"]
    c = container(objects)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = c["securityContext"]
    assert sc["runAsNonRoot"] is True
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert c["ports"] == [{"name": "metrics", "containerPort": 8080, "protocol": "TCP"}]
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert c["resources"]["requests"]["cpu"] and c["resources"]["limits"]["memory"]
    env = {e["name"]: e for e in c["env"]}
    assert env["POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["POD_NAMESPACE"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert c["args"][0] == "run"
    assert "--metrics-addr=0.0.0.0:8080" in c["args"]
    service = find(objects, "Service")
    assert service["spec"]["ports"] == [{"name": "metrics", "port": 8080, "targetPort": "metrics", "protocol": "TCP"}]
    assert service["spec"]["selector"] == find(objects, "Deployment")["spec"]["selector"]["matchLabels"]


def test_cluster_wide_rbac_is_exactly_the_operators_calls():
    objects = render("default")
    assert find(objects, "ClusterRole", "apigw-operator")["rules"] == RULES + ACCESS_RULES
    binding = find(objects, "ClusterRoleBinding", "apigw-operator")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "apigw-operator"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "apigw-operator", "namespace": "apigw-system"}]
    assert [(o["kind"], o["metadata"]["name"]) for o in objects if o["kind"] in ("ClusterRole", "ClusterRoleBinding")] \
        == [("ClusterRole", "apigw-operator"), ("ClusterRoleBinding", "apigw-operator")]
    # The only Role: the admission ConfigMap's, in the release namespace.
    assert kinds([o for o in objects if o["kind"] in ("Role", "RoleBinding")]) == [
        ("Role", "apigw-operator-admission"), ("RoleBinding", "apigw-operator-admission")]
    assert not [a for a in args_of(objects) if a.startswith("--namespace")]


def test_the_operator_never_writes_an_access_spec():
    for objects in (render("default"), render("default", "watchNamespace=shop"), render("namespaced")):
        for role in (o for o in objects if o["kind"] in ("ClusterRole", "Role")):
            for rule in role["rules"]:
                if "apigatewayaccesses" in rule["resources"]:
                    assert set(rule["verbs"]) <= {"get", "list", "watch"}, (role["metadata"]["name"], rule)
                if "namespaces" in rule["resources"]:
                    assert set(rule["verbs"]) <= {"get", "list", "watch"}, (role["metadata"]["name"], rule)


def test_admission_role_is_only_the_configmap_in_the_release_namespace():
    objects = render("default", namespace="platform")
    role = find(objects, "Role", "apigw-operator-admission")
    assert role["metadata"]["namespace"] == "platform"
    assert role["rules"] == ADMISSION_RULES
    binding = find(objects, "RoleBinding", "apigw-operator-admission")
    assert binding["metadata"]["namespace"] == "platform"
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "apigw-operator-admission"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "apigw-operator", "namespace": "platform"}]
    assert "--admission-configmap=platform/apigw-admission" in args_of(objects)


def test_admission_policy_follows_the_access_mode():
    objects = render("default", namespace="platform")
    assert "--access-mode=refuse" in args_of(objects)
    policy = find(objects, "ValidatingAdmissionPolicy", "apigw-operator-access")
    spec = policy["spec"]
    assert spec["paramKind"] == {"apiVersion": "v1", "kind": "ConfigMap"}
    assert spec["failurePolicy"] == "Fail"
    assert spec["matchConstraints"]["resourceRules"] == [{
        "apiGroups": ["apigw.dev"], "apiVersions": ["*"], "operations": ["CREATE", "UPDATE"],
        "resources": ["apigatewayintegrations", "apigatewaystages"], "scope": "Namespaced"}]
    assert spec["matchConditions"] == [{"name": "spec-written", "expression": "oldObject == null || object.spec != oldObject.spec"}]
    assert len(spec["validations"]) == 2 and all(v["reason"] == "Forbidden" for v in spec["validations"])
    binding = find(objects, "ValidatingAdmissionPolicyBinding", "apigw-operator-access")
    assert binding["spec"] == {
        "policyName": "apigw-operator-access", "validationActions": ["Deny"],
        "paramRef": {"name": "apigw-admission", "namespace": "platform", "parameterNotFoundAction": "Allow"}}
    # operator-identity refuses nothing: nothing to say early, no ConfigMap, no Role for it.
    for sets in (["accessMode=operator-identity"], ["admissionPolicy.enabled=false"]):
        objects = render("default", *sets)
        assert not [o for o in objects if o["kind"].startswith("ValidatingAdmissionPolicy")], sets
        assert not [o for o in objects if o["kind"] in ("Role", "RoleBinding")], sets
        assert not [a for a in args_of(objects) if a.startswith("--admission-configmap")], sets
        assert find(objects, "ClusterRole", "apigw-operator")["rules"] == RULES + ACCESS_RULES
    assert "--access-mode=operator-identity" in args_of(render("default", "accessMode=operator-identity"))
    assert "--access-mode=refuse" in args_of(render("default", "admissionPolicy.enabled=false"))


def test_admission_policy_needs_kubernetes_1_30():
    """admissionregistration.k8s.io/v1 ValidatingAdmissionPolicy is GA in 1.30; the chart
    supports 1.27. Before, the reconcile's check alone refuses."""
    old = docs(helm("template", "apigw-operator", str(CHART), "-n", "apigw-system", "--kube-version", "1.29.4").stdout)
    assert not [o for o in old if o["kind"].startswith("ValidatingAdmissionPolicy")]
    assert not [o for o in old if o["kind"] == "Role"]
    assert "--access-mode=refuse" in args_of(old)
    assert not [a for a in args_of(old) if a.startswith("--admission-configmap")]
    new = docs(helm("template", "apigw-operator", str(CHART), "-n", "apigw-system", "--kube-version", "1.30.0-eks-1").stdout)
    find(new, "ValidatingAdmissionPolicy", "apigw-operator-access")


def test_two_releases_do_not_share_a_policy():
    """The policy and its binding are cluster-scoped: named after the release's full name, each
    bound to the ConfigMap of its own namespace."""
    names = set()
    for release, namespace in (("team-a", "ops-a"), ("team-b", "ops-b")):
        objects = render("default", release=release, namespace=namespace)
        policy = find(objects, "ValidatingAdmissionPolicy")
        binding = find(objects, "ValidatingAdmissionPolicyBinding")
        assert policy["metadata"]["name"] == binding["metadata"]["name"] == f"{release}-apigw-operator-access"
        assert binding["spec"]["policyName"] == policy["metadata"]["name"]
        assert binding["spec"]["paramRef"]["namespace"] == namespace
        names.add(policy["metadata"]["name"])
    assert len(names) == 2
    policy = find(render("default", "fullnameOverride=apigw"), "ValidatingAdmissionPolicy")
    assert policy["metadata"]["name"] == "apigw-access"


def test_watch_namespace_gives_a_role_and_passes_namespace():
    objects = render("default", "watchNamespace=shop")
    # Cluster-wide, only what is cluster-scoped: accesses and namespaces.
    assert kinds([o for o in objects if o["kind"] in ("ClusterRole", "ClusterRoleBinding")]) == [
        ("ClusterRole", "apigw-operator-cluster"), ("ClusterRoleBinding", "apigw-operator-cluster")]
    assert find(objects, "ClusterRole", "apigw-operator-cluster")["rules"] == ACCESS_RULES
    cluster_binding = find(objects, "ClusterRoleBinding", "apigw-operator-cluster")
    assert cluster_binding["roleRef"]["name"] == "apigw-operator-cluster"
    assert cluster_binding["subjects"] == [{"kind": "ServiceAccount", "name": "apigw-operator", "namespace": "apigw-system"}]
    # The admission policy applies to the watched namespace only.
    vap_binding = find(objects, "ValidatingAdmissionPolicyBinding", "apigw-operator-access")
    assert vap_binding["spec"]["matchResources"] == {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "shop"}}}
    assert "matchResources" not in find(render("default"), "ValidatingAdmissionPolicyBinding")["spec"]
    role = find(objects, "Role", "apigw-operator")
    assert role["metadata"]["namespace"] == "shop"
    assert role["rules"] == RULES
    binding = find(objects, "RoleBinding", "apigw-operator")
    assert binding["metadata"]["namespace"] == "shop"
    assert binding["roleRef"]["kind"] == "Role"
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "apigw-operator", "namespace": "apigw-system"}]
    assert "--namespace=shop" in args_of(objects)


def test_leader_election_follows_replicas():
    single = render("default")
    assert "--leader-elect" not in args_of(single)
    assert find(single, "Deployment")["spec"]["strategy"] == {"type": "Recreate"}
    assert not [o for o in single if o["kind"] == "Role" and o["metadata"]["name"].endswith("-leader-election")]
    for objects in (render("default", "replicaCount=2"), render("default", "leaderElection.enabled=true")):
        args = args_of(objects)
        assert "--leader-elect" in args
        assert "--lease-name=apigw-operator" in args and "--lease-namespace=apigw-system" in args
        assert "strategy" not in find(objects, "Deployment")["spec"]
        role = find(objects, "Role", "apigw-operator-leader-election")
        assert role["metadata"]["namespace"] == "apigw-system"
        assert role["rules"] == [
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "resourceNames": ["apigw-operator"], "verbs": ["get", "patch"]},
        ]
        find(objects, "RoleBinding", "apigw-operator-leader-election")


def test_irsa_annotation_and_values_become_flags():
    objects = render("ha")
    sa = find(objects, "ServiceAccount")
    assert sa["metadata"]["annotations"] == {
        "eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/apigw-operator",
        "example.com/owner": "platform",
    }
    args = args_of(objects)
    for flag in ["--region=eu-west-1", "--aws-rps=5", "--aws-burst=20", "--concurrency=16", "--resync-period=300",
                 "--log-format=text", "--selector=shard=a", "--leader-elect"]:
        assert flag in args, (flag, args)
    assert "annotations" not in find(render("default"), "ServiceAccount")["metadata"]
    endpoint = args_of(render("default", "aws.endpointUrl=http://127.0.0.1:4566"))
    assert "--endpoint-url=http://127.0.0.1:4566" in endpoint


def test_optional_objects():
    assert kinds(render("default")) == [
        ("ClusterRole", "apigw-operator"), ("ClusterRoleBinding", "apigw-operator"), ("Deployment", "apigw-operator"),
        ("Role", "apigw-operator-admission"), ("RoleBinding", "apigw-operator-admission"),
        ("Service", "apigw-operator-metrics"), ("ServiceAccount", "apigw-operator"),
        ("ValidatingAdmissionPolicy", "apigw-operator-access"), ("ValidatingAdmissionPolicyBinding", "apigw-operator-access"),
    ]
    ha = render("ha")
    monitor = find(ha, "ServiceMonitor")
    assert monitor["spec"]["endpoints"] == [{"port": "metrics", "path": "/metrics", "interval": "15s"}]
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    pdb = find(ha, "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1 and "minAvailable" not in pdb["spec"]
    assert pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
    pdb = find(render("ha", "podDisruptionBudget.minAvailable=1"), "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1 and "maxUnavailable" not in pdb["spec"]
    assert not [o for o in render("default", "rbac.create=false") if "Role" in o["kind"]]
    no_sa = render("default", "serviceAccount.create=false", "serviceAccount.name=existing")
    assert not [o for o in no_sa if o["kind"] == "ServiceAccount"]
    assert find(no_sa, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == "existing"


@pytest.mark.parametrize("values", VALUES)
def test_every_rendered_flag_is_one_the_operator_accepts(values):
    need_binary()
    help_text = run([str(BINARY), "run", "--help"]).stdout
    accepted = set(re.findall(r"(--[a-z][a-z0-9-]*)", help_text))
    for arg in args_of(render(values))[1:]:
        flag = arg.split("=", 1)[0]
        assert flag in accepted, f"the chart passes {flag}, which `apigw-operator run` does not accept"


def test_decimals_given_with_set_are_accepted():
    """`helm --set` passes 0.5 as a string: the schema takes numeric strings for decimal values."""
    args = args_of(render("default", "backoff.base=0.5", "aws.rps=2.5", "resyncPeriod=90.5"))
    assert {"--backoff-base=0.5", "--aws-rps=2.5", "--resync-period=90.5"} <= set(args)


def test_package_holds_the_crd_schema_and_templates(tmp_path):
    import tarfile
    helm("package", str(CHART), "-d", str(tmp_path))
    (archive,) = tmp_path.glob("apigw-operator-*.tgz")
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
    for path in ["Chart.yaml", "values.yaml", "values.schema.json", "README.md", *(f"crds/{c.name}" for c in CRDS),
                 "templates/deployment.yaml", "templates/rbac.yaml", "templates/admission-policy.yaml",
                 "templates/NOTES.txt"]:
        assert f"apigw-operator/{path}" in names, path
