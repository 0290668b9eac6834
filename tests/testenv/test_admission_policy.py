"""The ValidatingAdmissionPolicy of deploy/admission-policy.yaml (the chart's default rendering)
against the real API server: a ConfigMap written as the operator writes it (one key per admitted
namespace, the accesses admitting it as a sorted comma-separated list) decides what
`kubectl apply` accepts. The ApiGatewayAccess CRD is not needed: only the policy, its binding,
the ConfigMap and the two namespaced kinds take part.

The module creates one policy and binding (names unique to the run, deleted at the end); each
test gets its own namespaces and rewrites the ConfigMap. The binding is the file's with two
changes: its paramRef names this run's ConfigMap namespace instead of apigw-system, and it
matches only namespaces carrying this run's label, so that the policy never refuses the objects
of other tests sharing the API server.

The API server acts on a new policy, binding or ConfigMap asynchronously (its informers): after
each change a test waits, bounded, until an apply is refused or accepted as the change implies
(never a fixed sleep), and only then asserts.

One policy for the whole module, not one per test: kube-apiserver 1.35 (kubernetes/kubernetes
#130887, #133827) stops its ConfigMap param informer for good, until it restarts, as soon as no
binding with a ConfigMap paramKind is left; every policy created afterwards sees no ConfigMap and,
with parameterNotFoundAction Allow, admits everything. Deleting a per-test binding would do that
between two tests. So does this module's own clean-up for the API server's later life, and the
uninstalls of tests/ship for this module: it passes on an API server on which no such binding was
deleted yet (make test runs tests/testenv first, on a fresh test environment). The waits say so
when they time out.
"""

import copy
import json
import secrets
import subprocess
import time
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
POLICY_FILE = REPO_ROOT / "deploy" / "admission-policy.yaml"
CRD_FILES = [REPO_ROOT / "crds" / "apigatewayintegrations.apigw.dev.yaml",
             REPO_ROOT / "crds" / "apigatewaystages.apigw.dev.yaml"]
BASE = yaml.safe_load((REPO_ROOT / "tests" / "data" / "invalid-manifests.yaml").read_text())["base"]
SCOPE_LABEL = "test.apigw.dev/admission-policy"
CONFIGMAP = "apigw-admission"
# Seconds for the API server to act on a new policy, binding or ConfigMap (about one, usually).
ENFORCED_WITHIN = 60
STALE_INFORMER = ("if the ConfigMap is there, the API server may no longer see ConfigMap params at all: kube-apiserver "
                  "1.35 stops that informer for good once no binding with a ConfigMap paramKind is left "
                  "(kubernetes/kubernetes#130887), as after an earlier run of this module, or tests/ship's helm "
                  "uninstalls, deleted the last one; restart the test environment (make testenv-down testenv-up) and "
                  "run this module before those")


def integration(name, namespace, **spec):
    return {"apiVersion": "apigw.dev/v1alpha1", "kind": "ApiGatewayIntegration",
            "metadata": {"name": name, "namespace": namespace}, "spec": {**BASE, **spec}}


def stage(name, namespace, **spec):
    return {"apiVersion": "apigw.dev/v1alpha1", "kind": "ApiGatewayStage",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"restApiId": BASE["restApiId"], "stageName": "prod", **spec}}


def until(what, attempt, timeout=ENFORCED_WITHIN, hint=""):
    """Calls attempt() until it returns something true, and returns that; fails after timeout s."""
    deadline = time.monotonic() + timeout
    while True:
        result = attempt()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"within {timeout} s: {what}" + (f" ({hint})" if hint else ""), pytrace=False)
        time.sleep(0.2)


class Policy:
    """The policy and binding of deploy/admission-policy.yaml, bound to the ConfigMap in namespace
    `params`, for the namespaces labelled with this run's label."""

    def __init__(self, kubectl):
        self.kubectl = kubectl
        self.run = secrets.token_hex(4)
        self.name = f"apigw-vap-test-{self.run}"
        self.params = f"vap-{self.run}-params"
        # A wait that timed out: the later tests fail at once instead of waiting in vain too.
        self.timed_out = None

    def objects(self):
        docs = [d for d in yaml.safe_load_all(POLICY_FILE.read_text()) if d]
        policy = copy.deepcopy(next(d for d in docs if d["kind"] == "ValidatingAdmissionPolicy"))
        binding = copy.deepcopy(next(d for d in docs if d["kind"] == "ValidatingAdmissionPolicyBinding"))
        assert binding["spec"]["paramRef"] == {"name": CONFIGMAP, "namespace": "apigw-system",
                                               "parameterNotFoundAction": "Allow"}
        assert binding["spec"]["policyName"] == policy["metadata"]["name"]
        assert "matchResources" not in binding["spec"]
        policy["metadata"] = {"name": self.name}
        binding["metadata"] = {"name": self.name}
        binding["spec"]["policyName"] = self.name
        binding["spec"]["paramRef"]["namespace"] = self.params
        binding["spec"]["matchResources"] = {"namespaceSelector": {"matchLabels": {SCOPE_LABEL: self.run}}}
        return policy, binding

    def install(self):
        self.kubectl("create", "namespace", self.params)
        for obj in self.objects():
            self.kubectl("create", "-f", "-", input=json.dumps(obj))

    def namespace(self, suffix):
        """A new namespace the binding matches."""
        ns = f"vap-{self.run}-{suffix}-{secrets.token_hex(2)}"
        self.kubectl("create", "namespace", ns)
        self.kubectl("label", "namespace", ns, f"{SCOPE_LABEL}={self.run}")
        return ns

    def set_configmap(self, data):
        """The ConfigMap with this data; None: a ConfigMap without `data`."""
        cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": CONFIGMAP, "namespace": self.params}}
        if data is not None:
            cm["data"] = data
        self.kubectl("delete", "configmap", CONFIGMAP, "-n", self.params, "--ignore-not-found")
        self.kubectl("create", "-f", "-", input=json.dumps(cm))
        stored = json.loads(self.kubectl("get", "configmap", CONFIGMAP, "-n", self.params, "-o", "json"))
        assert stored.get("data") == data, stored

    def delete_configmap(self):
        self.kubectl("delete", "configmap", CONFIGMAP, "-n", self.params)

    def create(self, obj, dry_run=True) -> subprocess.CompletedProcess:
        args = ["create", "-f", "-"] + (["--dry-run=server"] if dry_run else [])
        return self.kubectl.run(*args, input=json.dumps(obj), check=False)

    def eventually(self, what, attempt):
        if self.timed_out:
            pytest.fail(f"not waiting for {what}: an earlier wait of this module timed out ({self.timed_out})",
                        pytrace=False)
        try:
            return until(what, attempt, hint=STALE_INFORMER)
        except pytest.fail.Exception:
            self.timed_out = what
            raise

    def refused_eventually(self, obj, what) -> subprocess.CompletedProcess:
        """Retries a dry-run create until it is refused; the refusal."""
        def attempt():
            answer = self.create(obj)
            return answer if answer.returncode != 0 else None
        return self.eventually(f"{what} is refused", attempt)

    def accepted_eventually(self, obj, what):
        self.eventually(f"{what} is accepted", lambda: self.create(obj).returncode == 0)

    def accepted(self, obj):
        answer = self.create(obj)
        assert answer.returncode == 0, answer.stderr

    def admit(self, data, outside):
        """Writes the ConfigMap and waits until the API server enforces it: an integration in
        `outside` (admitted by none) is refused and one in each admitted namespace accepted."""
        self.set_configmap(data)
        self.refused_eventually(integration("probe", outside), f"an integration in {outside}, which no access admits,")
        for ns in data:
            self.accepted_eventually(integration("probe", ns), f"an integration in {ns}, which {data[ns]} admits,")

    def clean_namespace(self, ns):
        run = self.kubectl.run
        for resource in ("apigatewayintegrations.apigw.dev", "apigatewaystages.apigw.dev"):
            for name in run("get", resource, "-n", ns, "-o", "name", check=False).stdout.split():
                run("patch", name, "-n", ns, "--type=merge", "-p", '{"metadata":{"finalizers":null}}', check=False)
                run("delete", name, "-n", ns, "--wait=false", "--ignore-not-found", check=False)
        # No namespace controller runs in the test environment: the namespace stays Terminating,
        # empty.
        run("delete", "namespace", ns, "--wait=false", "--ignore-not-found", check=False)

    def uninstall(self):
        run = self.kubectl.run
        run("delete", "validatingadmissionpolicybinding", self.name, "--ignore-not-found", check=False)
        run("delete", "validatingadmissionpolicy", self.name, "--ignore-not-found", check=False)
        run("delete", "configmap", CONFIGMAP, "-n", self.params, "--ignore-not-found", check=False)
        run("delete", "namespace", self.params, "--wait=false", "--ignore-not-found", check=False)


@pytest.fixture(scope="module")
def policy(kubectl):
    files = [arg for crd in CRD_FILES for arg in ("-f", str(crd))]
    kubectl("apply", "--server-side", "--force-conflicts", "--field-manager=testenv-tests", *files)
    kubectl("wait", "--for=condition=Established", "--timeout=60s", *files)
    p = Policy(kubectl)
    try:
        p.install()
        yield p
    finally:
        p.uninstall()


@pytest.fixture
def spaces(policy):
    """Two new namespaces the policy applies to: (a, b)."""
    made = []
    try:
        made.append(policy.namespace("a"))
        made.append(policy.namespace("b"))
        yield tuple(made)
    finally:
        for ns in made:
            policy.clean_namespace(ns)


def assert_refused_for_namespace(answer, namespace, kind):
    assert answer.returncode != 0, f"a {kind} in {namespace} was accepted"
    assert (f"no ApiGatewayAccess admits namespace {namespace}, and the operator's access mode (refuse) "
            f"refuses {kind} objects in a namespace that no access admits") in answer.stderr, answer.stderr


def test_an_object_is_accepted_only_in_an_admitted_namespace(policy, spaces):
    a, b = spaces
    policy.admit({a: "shop"}, outside=b)
    assert_refused_for_namespace(policy.create(integration("outside", b)), b, "ApiGatewayIntegration")
    assert_refused_for_namespace(policy.create(stage("outside", b)), b, "ApiGatewayStage")
    policy.accepted(integration("inside", a))
    policy.accepted(stage("inside", a))


def test_a_configmap_without_data_admits_no_namespace(policy, spaces):
    a, b = spaces
    policy.admit({a: "shop"}, outside=b)
    policy.set_configmap(None)
    answer = policy.refused_eventually(integration("none", a), f"an integration in {a} once no namespace is admitted")
    assert_refused_for_namespace(answer, a, "ApiGatewayIntegration")


def test_access_ref_must_name_an_access_admitting_the_namespace(policy, spaces):
    for crd in CRD_FILES:
        schema = yaml.safe_load(crd.read_text())["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        if "accessRef" not in schema["properties"]["spec"]["properties"]:
            pytest.fail(f"{crd.relative_to(REPO_ROOT)} has no spec.accessRef yet: this test needs the CRDs of the "
                        "tenancy change (issue #14; `make crds`)", pytrace=False)
    a, b = spaces
    policy.admit({a: "pay,shop"}, outside=b)
    for obj in (integration("other-ref", a, accessRef="other"), stage("other-ref", a, accessRef="other")):
        answer = policy.create(obj)
        assert answer.returncode != 0, f"{obj['kind']} with spec.accessRef other was accepted"
        assert (f"spec.accessRef other names no ApiGatewayAccess that admits namespace {a} "
                "(the accesses admitting it: pay, shop)") in answer.stderr, answer.stderr
    for ref in ("shop", "pay"):
        policy.accepted(integration(f"ref-{ref}", a, accessRef=ref))
        policy.accepted(stage(f"ref-{ref}", a, accessRef=ref))
    # A part of an admitted name is not that name.
    assert policy.create(integration("ref-sho", a, accessRef="sho")).returncode != 0
    # Where no access admits the namespace, the answer is about the namespace.
    assert_refused_for_namespace(policy.create(integration("outside-ref", b, accessRef="shop")), b,
                                 "ApiGatewayIntegration")


def test_without_the_configmap_everything_is_accepted(policy, spaces):
    """parameterNotFoundAction Allow: before the operator writes the ConfigMap, or once it is
    deleted, nothing is refused at apply (the reconcile still refuses)."""
    a, b = spaces
    policy.admit({a: "shop"}, outside=b)
    policy.delete_configmap()
    policy.accepted_eventually(integration("outside", b), f"an integration in {b} once the ConfigMap is gone")
    policy.accepted(stage("outside", b))
    policy.accepted(integration("inside", a))


def test_finalizer_removal_in_a_namespace_no_longer_admitted_is_accepted(policy, spaces):
    """An object created while its namespace was admitted: once it is no longer, a spec change is
    refused, but its labels may change and its finalizer may be removed (no spec change)."""
    a, b = spaces
    policy.admit({a: "shop"}, outside=b)
    kept = integration("kept", a)
    kept["metadata"]["finalizers"] = ["test.apigw.dev/kept"]
    created = policy.create(kept, dry_run=False)
    assert created.returncode == 0, created.stderr
    # No access admits the namespace any more.
    policy.set_configmap({b: "shop"})
    policy.refused_eventually(integration("later", a), f"an integration in {a} once it is not admitted")
    ns = ["-n", a]
    spec_change = policy.kubectl.run("patch", "apigatewayintegrations.apigw.dev", "kept", *ns, "--type=merge",
                                     "-p", '{"spec":{"timeoutInMillis":1000}}', check=False)
    assert_refused_for_namespace(spec_change, a, "ApiGatewayIntegration")
    policy.kubectl("label", "apigatewayintegrations.apigw.dev", "kept", *ns, "example.com/team=shop")
    policy.kubectl("delete", "apigatewayintegrations.apigw.dev", "kept", *ns, "--wait=false")
    policy.kubectl("patch", "apigatewayintegrations.apigw.dev", "kept", *ns, "--type=json",
                   "-p", '[{"op":"remove","path":"/metadata/finalizers"}]')
    until("the deleted integration to go once its finalizer is removed",
          lambda: policy.kubectl("get", "apigatewayintegrations.apigw.dev", *ns, "--ignore-not-found", "-o", "name") == "",
          timeout=30)
