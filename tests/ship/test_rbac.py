"""The chart's RBAC is exactly what the operator needs.

The chart is installed (cluster-wide mode, two replicas so that leader election and its Role are
on, the default access mode refuse with its admission policy); the operator binary then runs with
the Deployment's own arguments and a kubeconfig holding a TokenRequest token of the chart's
ServiceAccount, so every API call is authorized as it would be in the pod. An ApiGatewayAccess of
the test's own admits the release namespace. With every rule, the basic scenario passes (apply →
Ready, a spec change reaches AWS, deletionPolicy Delete deletes in AWS, the access's status and the
admission ConfigMap are written). With any single rule removed (patched out of the installed
ClusterRole, leader-election Role or admission Role, restored afterwards), a part of it fails,
each in its own way.

The release manages only objects labelled with its own selector, so it never touches the objects
of other tests running on the same API server; its objects name the test's access (spec.accessRef),
so that another test's access admitting every namespace does not make them ambiguous; and its
admission policy's binding is narrowed to the release namespace (a patch right after the install,
before any operator writes the ConfigMap), so that it never refuses other tests' objects.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from shiplib import (CHART, LOGS, Emulator, Kube, OperatorProcess, can_i, helm, kubectl, kubectl_json, manifest,
                     need_binary, need_env, random_name, token_kubeconfig, wait_for)

PUT_HTTP = {"type": "HTTP", "integrationHttpMethod": "POST", "uri": "https://backend.example.com/pets"}
IDENTITY = "ship-rbac-operator"
FORBIDDEN = r"forbidden"
ACCESSES = "apigatewayaccesses.apigw.dev"
ADMISSION_CONFIGMAP = "apigw-admission"
ADMIT_LABEL = "ship.apigw.dev/rbac-access"


@dataclass
class Install:
    namespace: str
    release: str
    full: str
    selector: tuple[str, str]
    args: list[str]
    kubeconfig: Path
    user: str
    emulator: Emulator
    kube: Kube

    def operator(self, name: str) -> OperatorProcess:
        return OperatorProcess(self.args, self.kubeconfig, f"{self.namespace}-{name}",
                               extra_env={"POD_NAME": IDENTITY, "HOSTNAME": IDENTITY, "POD_NAMESPACE": self.namespace})

    @property
    def access(self) -> str:
        """The test's ApiGatewayAccess, which admits the release namespace."""
        return self.release

    def manifest(self, name: str, ids: dict, **spec) -> dict:
        m = manifest(name, ids, accessRef=self.access, **spec)
        m["metadata"]["labels"] = {self.selector[0]: self.selector[1]}
        return m

    def admission_data(self) -> dict | None:
        """The admission ConfigMap's data ({} without data), None when it does not exist."""
        out = kubectl("get", "configmap", ADMISSION_CONFIGMAP, "-n", self.namespace, "--ignore-not-found", "-o", "json")
        return (json.loads(out.stdout).get("data") or {}) if out.stdout.strip() else None

    def delete_admission_configmap(self) -> None:
        kubectl("delete", "configmap", ADMISSION_CONFIGMAP, "-n", self.namespace, "--ignore-not-found")


def access_manifest(name: str, selector: dict, labels: dict) -> dict:
    """An ApiGatewayAccess with the operator's own identity that allows everything the basic
    scenario does."""
    return {"apiVersion": "apigw.dev/v1alpha1", "kind": "ApiGatewayAccess",
            "metadata": {"name": name, "labels": labels},
            "spec": {"namespaceSelector": selector, "allow": {"createOrUpdate": True, "deletionPolicyDelete": True}}}


@pytest.fixture(scope="module")
def install() -> Install:
    need_env("KUBECONFIG")
    need_binary()
    emulator = Emulator(need_env("APIGW_EMULATOR_ADMIN"))
    namespace = random_name("ship-rbac")
    release = random_name("rbac")
    full = f"{release}-apigw-operator"
    kubectl("create", "namespace", namespace)
    selector = ("ship.apigw.dev/release", release)
    helm("install", release, str(CHART), "-n", namespace, "--wait=false", "--no-hooks",
         "--set", "aws.region=us-east-1", "--set", f"aws.endpointUrl={need_env('AWS_ENDPOINT_URL')}",
         "--set", "replicaCount=2", "--set", "leaderElection.leaseDuration=5",
         "--set", "backoff.base=0.5", "--set", "backoff.cap=5", "--set", "logFormat=text",
         "--set-string", f"selector={selector[0]}={selector[1]}")
    # Before any operator writes the ConfigMap (until then parameterNotFoundAction Allow admits
    # everything): the release's policy applies to its own namespace only.
    kubectl("patch", "validatingadmissionpolicybinding", f"{full}-access", "--type=merge", "-p", json.dumps(
        {"spec": {"matchResources": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}}}}))
    # The access selects the namespace by a label of its own, which only the namespace cache
    # knows (not by kubernetes.io/metadata.name, which the operator knows from the name alone).
    kubectl("label", "namespace", namespace, f"{ADMIT_LABEL}={release}")
    kubectl("create", "-f", "-", input=json.dumps(access_manifest(
        release, {"matchLabels": {ADMIT_LABEL: release}}, {selector[0]: selector[1]})))
    deployment = kubectl_json("get", "deployment", full, "-n", namespace)
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    LOGS.mkdir(parents=True, exist_ok=True)
    kubeconfig = token_kubeconfig(LOGS / f"{namespace}.kubeconfig", namespace, full)
    yield Install(namespace, release, full, selector, args, kubeconfig,
                  f"system:serviceaccount:{namespace}:{full}", emulator, Kube(namespace))
    # Objects whose finalizer a broken run left behind go away without the operator.
    for name in Kube(namespace).run("get", "apigatewayintegrations.apigw.dev", "-o", "name", check=False).stdout.split():
        kubectl("patch", name, "-n", namespace, "--type=merge", "-p", '{"metadata":{"finalizers":null}}', check=False)
        kubectl("delete", name, "-n", namespace, "--wait=false", check=False)
    kubectl("delete", ACCESSES, release, f"{release}-idle", "--ignore-not-found", check=False)
    helm("uninstall", release, "-n", namespace, "--no-hooks", "--wait=false", check=False)
    kubectl("delete", "configmap", ADMISSION_CONFIGMAP, "-n", namespace, "--ignore-not-found", check=False)
    # (No namespace controller runs in the test environment: it stays Terminating, empty.)
    kubectl("delete", "namespace", namespace, "--wait=false", "--ignore-not-found", check=False)


def holder(install: Install) -> str:
    return kubectl("get", "lease", install.full, "-n", install.namespace, "-o", "jsonpath={.spec.holderIdentity}",
                   check=False).stdout


def test_operator_runs_with_the_deployments_args_and_service_account(install):
    assert "--leader-elect" in install.args and f"--lease-name={install.full}" in install.args
    assert whoami(install) == install.user
    install.delete_admission_configmap()
    op = install.operator("basic")
    try:
        op.wait_ready()
        assert holder(install) == IDENTITY
        ids = install.emulator.api_with_method(integration=PUT_HTTP)
        install.kube.apply(install.manifest("basic", ids, timeoutInMillis=1000, deletionPolicy="Delete"))
        obj = install.kube.wait_ready("basic")
        assert install.emulator.integration(ids)["timeoutInMillis"] == 1000
        assert obj["metadata"]["finalizers"] == ["apigw.dev/cleanup"]
        assert [e["reason"] for e in install.kube.events("basic")] == ["Updated"]
        install.kube.apply(install.manifest("basic", ids, timeoutInMillis=2000, deletionPolicy="Delete"))
        wait_for("the spec change reaches AWS", lambda: install.emulator.integration(ids)["timeoutInMillis"] == 2000, 60)
        wait_for("status shows it", lambda: (install.kube.settled("basic") or {}).get("status", {}).get("integration", {}).get("timeoutInMillis") == 2000, 60)
        install.kube.run("delete", "apigatewayintegrations.apigw.dev", "basic", "--timeout=60s")
        with pytest.raises(install.emulator.aws.exceptions.NotFoundException):
            install.emulator.integration(ids)
        # An object outside the release's selector is not this release's.
        other = install.emulator.api_with_method(integration=PUT_HTTP)
        install.kube.apply(manifest("unlabelled", other, timeoutInMillis=3000))
        labelled = install.emulator.api_with_method(integration=PUT_HTTP)
        install.kube.apply(install.manifest("labelled", labelled, timeoutInMillis=3000))
        install.kube.wait_ready("labelled")
        # (Read from the operator's log: another cluster-wide operator may share the API server.)
        log = op.text()
        assert f"{install.namespace}/labelled" in log and f"{install.namespace}/unlabelled" not in log, log
        # The access's status and the admission ConfigMap (which the operator created: it was
        # deleted before it started).
        wait_for("the access's status", lambda: (kubectl_json("get", ACCESSES, install.access).get("status") or {})
                 .get("namespaces") == 1, 60)
        wait_for("the admission ConfigMap to admit the namespace with the access",
                 lambda: install.access in (install.admission_data() or {}).get(install.namespace, "").split(","), 60)
        assert forbidden_lines(op) == [], "the operator was refused an API call with the full RBAC"
    finally:
        op.stop()
        install.kube.run("delete", "apigatewayintegrations.apigw.dev", "unlabelled", "labelled", "--ignore-not-found", "--timeout=60s")


def whoami(install: Install) -> str:
    env = dict(os.environ, KUBECONFIG=str(install.kubeconfig))
    review = json.loads(kubectl("auth", "whoami", "-o", "json", env=env).stdout)
    return review["status"]["userInfo"]["username"]


def forbidden_lines(op: OperatorProcess) -> list[str]:
    return [line for line in op.text().splitlines() if re.search(FORBIDDEN, line)]


# (role, rule index, what breaks). A test below checks that every rule of the installed roles has
# a case, so a rule added to the chart needs a proof that the operator needs it.
CASES = [
    ("clusterrole", 0, "watch"),
    ("clusterrole", 1, "finalizer"),
    ("clusterrole", 2, "status"),
    ("clusterrole", 3, "events"),
    ("clusterrole", 4, "access-read"),
    ("clusterrole", 5, "access-status"),
    ("clusterrole", 6, "namespaces"),
    ("leader-election", 0, "lease-create"),
    ("leader-election", 1, "lease-get-patch"),
    ("admission", 0, "configmap-create"),
    ("admission", 1, "configmap-get-patch"),
]


def role_ref(install: Install, role: str) -> list[str]:
    if role == "clusterrole":
        return ["clusterrole", install.full]
    return ["role", f"{install.full}-{role}", "-n", install.namespace]


def test_every_rule_has_a_removal_case(install):
    for role in ("clusterrole", "leader-election", "admission"):
        rules = kubectl_json("get", *role_ref(install, role))["rules"]
        assert sorted(i for r, i, _ in CASES if r == role) == list(range(len(rules))), (role, rules)


def permission(install: Install, case: str) -> tuple[str, ...]:
    """A `kubectl auth can-i` question that the rule of `case` answers."""
    ns = install.namespace
    return {
        "watch": ("watch", "apigatewayintegrations.apigw.dev", "--all-namespaces"),
        "finalizer": ("patch", "apigatewayintegrations.apigw.dev", "-n", ns),
        "status": ("patch", "apigatewayintegrations.apigw.dev", "--subresource=status", "-n", ns),
        "events": ("create", "events.events.k8s.io", "-n", ns),
        "lease-create": ("create", "leases.coordination.k8s.io", "-n", ns),
        "lease-get-patch": ("get", f"leases.coordination.k8s.io/{install.full}", "-n", ns),
        "access-read": ("list", ACCESSES, "--all-namespaces"),
        "access-status": ("patch", ACCESSES, "--subresource=status", "--all-namespaces"),
        "namespaces": ("watch", "namespaces", "--all-namespaces"),
        "configmap-create": ("create", "configmaps", "-n", ns),
        "configmap-get-patch": ("patch", f"configmaps/{ADMISSION_CONFIGMAP}", "-n", ns),
    }[case]


def test_the_operator_reads_accesses_and_writes_only_their_status(install):
    """Accesses are the platform team's: the operator reads them and writes their status, never
    their spec; namespaces it only reads; ConfigMaps only its own, in its own namespace."""
    user = install.user
    for verb in ("get", "list", "watch"):
        assert can_i(verb, ACCESSES, user), verb
    for verb in ("get", "patch", "update"):
        out = kubectl("auth", "can-i", verb, ACCESSES, "--subresource=status", f"--as={user}", check=False)
        assert out.stdout.strip() == "yes", verb
    for verb in ("create", "update", "patch", "delete", "deletecollection"):
        assert not can_i(verb, ACCESSES, user), f"the operator may {verb} ApiGatewayAccesses"
    for verb in ("list", "watch"):
        assert can_i(verb, "namespaces", user), verb
    for verb in ("get", "create", "update", "patch", "delete"):
        assert not can_i(verb, "namespaces", user), f"the operator may {verb} namespaces"
    ns = install.namespace
    assert can_i("create", "configmaps", user, ns)
    for verb in ("get", "patch", "update"):
        assert can_i(verb, f"configmaps/{ADMISSION_CONFIGMAP}", user, ns), verb
        assert not can_i(verb, "configmaps/other", user, ns), f"the operator may {verb} other ConfigMaps"
    for verb in ("list", "watch", "delete"):
        assert not can_i(verb, "configmaps", user, ns), f"the operator may {verb} ConfigMaps"
    assert not can_i("create", "configmaps", user, "default"), "the operator may create ConfigMaps elsewhere"


def allowed(install: Install, case: str) -> bool:
    out = kubectl("auth", "can-i", *permission(install, case), f"--as={install.user}", check=False)
    return out.stdout.strip() == "yes"


@pytest.mark.parametrize("role,index,case", CASES, ids=[c for _, _, c in CASES])
def test_removing_a_rule_breaks_the_operator(install, role, index, case):
    ref = role_ref(install, role)
    original = kubectl_json("get", *ref)["rules"]
    assert allowed(install, case)
    kubectl("patch", *ref, "--type=json", "-p", json.dumps([{"op": "remove", "path": f"/rules/{index}"}]))
    op = None
    name = f"no-{case}"
    idle = f"{install.access}-idle"
    try:
        wait_for(f"RBAC to refuse {case}", lambda: not allowed(install, case), 30)
        if case.startswith("lease"):
            # Without a Lease the operator must create one; with one it must read and patch it.
            kubectl("delete", "lease", install.full, "-n", install.namespace, "--ignore-not-found")
        # Every case starts without the admission ConfigMap (so that the policy admits every
        # apply until an operator writes it); configmap-get-patch needs one to exist.
        install.delete_admission_configmap()
        if case == "configmap-get-patch":
            kubectl("create", "configmap", ADMISSION_CONFIGMAP, "-n", install.namespace, "--from-literal=stale=x")
        ids = install.emulator.api_with_method(integration=PUT_HTTP)
        if case in ("access-read", "namespaces"):
            # Before the operator starts: it writes a ConfigMap admitting no namespace, which the
            # policy would then apply to this apply.
            install.kube.apply(install.manifest(name, ids, timeoutInMillis=1000))
        op = install.operator(name)
        if case in ("watch", "lease-create", "lease-get-patch"):
            wait_for("the operator to exit", lambda: op.exited() is not None, 60)
            assert op.exited() != 0
            log = op.text()
            assert re.search(FORBIDDEN, log), log
            if case.startswith("lease"):
                assert "leader election" in log, log
            else:
                assert "cannot list ApiGatewayIntegrations" in log, log
            return
        if case in ("access-read", "namespaces"):
            # Without the accesses (or the namespaces' labels) no access admits the namespace:
            # refused, before any AWS call. (The namespace cache waits 30 s before giving up.)
            resource = "apigatewayaccesses" if case == "access-read" else "namespaces"
            op.wait_log(rf'cannot list resource \\?"{resource}\\?"', timeout=60)
            obj = install.kube.wait_reason(name, "Forbidden", timeout=90)
            assert install.emulator.integration(ids).get("timeoutInMillis") != 1000, obj
            return
        op.wait_ready()
        if case == "finalizer":
            install.kube.apply(install.manifest(name, ids, timeoutInMillis=1000, deletionPolicy="Delete"))
            op.wait_log(r'cannot patch resource \\?"apigatewayintegrations\\?"')
            obj = install.kube.get(name)
            assert "finalizers" not in obj["metadata"] and "status" not in obj, obj
        elif case == "status":
            install.kube.apply(install.manifest(name, ids, timeoutInMillis=1000))
            op.wait_log(r'cannot patch resource \\?"apigatewayintegrations/status\\?"')
            assert "status" not in install.kube.get(name), "status was written without the status rule"
        elif case == "events":
            install.kube.apply(install.manifest(name, ids, timeoutInMillis=1000))
            install.kube.wait_ready(name)
            op.wait_log(r'could not publish an event.*cannot create resource \\?"events\\?"'
                        r'|cannot create resource \\?"events\\?".*could not publish an event')
            assert install.emulator.integration(ids)["timeoutInMillis"] == 1000
            assert install.kube.events(name) == []
        elif case == "access-status":
            # A new access (admitting no namespace) needs its first status.
            kubectl("create", "-f", "-", input=json.dumps(access_manifest(
                idle, {"matchLabels": {ADMIT_LABEL: f"{install.release}-none"}}, {})))
            op.wait_log(r'cannot patch resource \\?"apigatewayaccesses/status\\?"')
            # (Only the log: every cluster-wide operator sharing the API server writes the status of
            # every access.)
        elif case in ("configmap-create", "configmap-get-patch"):
            op.wait_log(r'cannot write the admission ConfigMap.*' + FORBIDDEN)
            stale = {"stale": "x"} if case == "configmap-get-patch" else None
            assert install.admission_data() == stale, "the admission ConfigMap was written without its rule"
        else:
            raise AssertionError(case)
    finally:
        if op is not None:
            op.stop()
        kubectl("patch", *ref, "--type=json", "-p", json.dumps([{"op": "replace", "path": "/rules", "value": original}]))
        wait_for(f"RBAC to allow {case} again", lambda: allowed(install, case), 30)
        install.delete_admission_configmap()
        kubectl("delete", ACCESSES, idle, "--ignore-not-found")
        install.kube.run("patch", "apigatewayintegrations.apigw.dev", name, "--type=merge",
                         "-p", '{"metadata":{"finalizers":null}}', check=False)
        install.kube.run("delete", "apigatewayintegrations.apigw.dev", name, "--ignore-not-found", "--timeout=60s")


def test_watch_namespace_release_works_with_its_role():
    """watchNamespace: a Role and RoleBinding in that namespace are all the operator gets for
    the objects, and a ClusterRole only for what is cluster-scoped (accesses, namespaces). In
    access mode operator-identity (the behaviour before ApiGatewayAccess): no admission policy,
    no ConfigMap."""
    need_env("KUBECONFIG")
    emulator = Emulator(need_env("APIGW_EMULATOR_ADMIN"))
    home = random_name("ship-rbac-home")
    watched = random_name("ship-rbac-watched")
    release = random_name("ns")
    full = f"{release}-apigw-operator"
    for ns in (home, watched):
        kubectl("create", "namespace", ns)
    helm("install", release, str(CHART), "-n", home, "--wait=false", "--no-hooks",
         "--set", "aws.region=us-east-1", "--set", f"aws.endpointUrl={need_env('AWS_ENDPOINT_URL')}",
         "--set", f"watchNamespace={watched}", "--set", "logFormat=text", "--set", "accessMode=operator-identity")
    op = None
    kube = Kube(watched)
    try:
        args = kubectl_json("get", "deployment", full, "-n", home)["spec"]["template"]["spec"]["containers"][0]["args"]
        assert f"--namespace={watched}" in args and "--leader-elect" not in args
        assert "--access-mode=operator-identity" in args
        assert not [a for a in args if a.startswith("--admission-configmap")], args
        user = f"system:serviceaccount:{home}:{full}"
        assert not can_i("list", "apigatewayintegrations.apigw.dev", user)  # not cluster-wide
        assert can_i("list", "apigatewayintegrations.apigw.dev", user, watched)
        assert can_i("watch", ACCESSES, user) and can_i("watch", "namespaces", user)
        assert not can_i("patch", ACCESSES, user) and not can_i("create", "configmaps", user, home)
        assert not kubectl("get", "validatingadmissionpolicy", f"{full}-access", "--ignore-not-found",
                           "-o", "name").stdout.strip()
        op = OperatorProcess(args, token_kubeconfig(LOGS / f"{home}.kubeconfig", home, full), f"{home}-operator",
                             extra_env={"POD_NAMESPACE": home})
        op.wait_ready()
        ids = emulator.api_with_method(integration=PUT_HTTP)
        kube.apply(manifest("scoped", ids, timeoutInMillis=1400, deletionPolicy="Delete"))
        kube.wait_ready("scoped")
        assert emulator.integration(ids)["timeoutInMillis"] == 1400
        assert [e["reason"] for e in kube.events("scoped")] == ["Updated"]
        kube.run("delete", "apigatewayintegrations.apigw.dev", "scoped", "--timeout=60s")
        with pytest.raises(emulator.aws.exceptions.NotFoundException):
            emulator.integration(ids)
        assert forbidden_lines(op) == []
    finally:
        if op is not None:
            op.stop()
        helm("uninstall", release, "-n", home, "--no-hooks", "--wait=false", check=False)
        kubectl("delete", "namespace", home, watched, "--wait=false", "--ignore-not-found", check=False)
