"""No OutOfSync because of the operator: after it reconciled a manifest, `kubectl diff` of that
manifest is empty (what Argo CD and Flux compute), and the object's managedFields show that the
operator (field manager apigw-operator) owns status only, through the status subresource, plus
metadata.finalizers when deletionPolicy is Delete (the apigw.dev/cleanup finalizer, added with a
merge patch so that deletion waits for DeleteIntegration)."""

from __future__ import annotations

import pytest
import yaml

from shiplib import LOGS, Emulator, Kube, e2e, kubectl, kubectl_json, manifest, need_env, random_name

PUT_HTTP = {"type": "HTTP", "integrationHttpMethod": "POST", "uri": "https://backend.example.com/pets"}
FINALIZER_FIELDS = {"f:metadata": {"f:finalizers": {".": {}, 'v:"apigw.dev/cleanup"': {}}}}
APPLIERS = {"kubectl", "kubectl-client-side-apply"}


@pytest.fixture
def env():
    need_env("KUBECONFIG")
    emulator = Emulator(need_env("APIGW_EMULATOR_ADMIN"))
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(e2e.REPO / "crds"))
    ns = random_name("ship-gitops")
    kubectl("create", "namespace", ns)
    operator = e2e.Operator(ns, name="gitops")
    yield emulator, Kube(ns)
    operator.stop()


def manifests(emulator: Emulator) -> list[dict]:
    retain = emulator.api_with_method(integration=PUT_HTTP)
    delete = emulator.api_with_method(integration=PUT_HTTP)
    return [
        manifest("retain", retain, timeoutInMillis=1200, requestTemplates={"application/json": ""},
                 requestParameters={"integration.request.header.x-id": "method.request.header.x-id"}),
        manifest("delete", delete, timeoutInMillis=1300, cacheKeyParameters=["method.request.header.x-id"],
                 deletionPolicy="Delete"),
    ]


def operator_entries(obj: dict) -> list[dict]:
    return [m for m in obj["metadata"]["managedFields"] if m["manager"] == "apigw-operator"]


def check_ownership(obj: dict, deletion_policy: str) -> None:
    managers = {m["manager"] for m in obj["metadata"]["managedFields"]}
    assert managers <= APPLIERS | {"apigw-operator"}, f"unexpected field managers {managers}: the operator must use field manager apigw-operator for every write"
    status_entries = [m for m in operator_entries(obj) if m.get("subresource") == "status"]
    other_entries = [m for m in operator_entries(obj) if m.get("subresource") != "status"]
    assert len(status_entries) == 1 and set(status_entries[0]["fieldsV1"]) == {"f:status"}, status_entries
    assert status_entries[0]["operation"] == "Apply"
    if deletion_policy == "Delete":
        assert [m["fieldsV1"] for m in other_entries] == [FINALIZER_FIELDS], other_entries
        assert obj["metadata"]["finalizers"] == ["apigw.dev/cleanup"]
    else:
        assert other_entries == []
        assert "finalizers" not in obj["metadata"]
    # Nobody but the applier owns spec.
    for entry in obj["metadata"]["managedFields"]:
        if "f:spec" in entry["fieldsV1"]:
            assert entry["manager"] in APPLIERS, entry


@pytest.mark.parametrize("mode", ["server-side", "client-side"])
def test_diff_is_empty_after_the_operator_reconciled(env, mode):
    emulator, kube = env
    docs = manifests(emulator)
    LOGS.mkdir(parents=True, exist_ok=True)
    path = LOGS / f"{kube.namespace}-{mode}.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    apply_args = ["apply", "-n", kube.namespace, "-f", str(path)] + (["--server-side"] if mode == "server-side" else [])
    kubectl(*apply_args)
    for doc in docs:
        obj = kube.wait_ready(doc["metadata"]["name"])
        assert obj["status"]["lastPatchOperations"], obj["status"]  # the operator wrote to AWS and to status
    diff_args = ["diff", "-n", kube.namespace, "-f", str(path)] + (["--server-side"] if mode == "server-side" else [])
    diff = kubectl(*diff_args, check=False)
    assert diff.returncode == 0, f"kubectl {' '.join(diff_args)} found differences:\n{diff.stdout}{diff.stderr}"
    assert diff.stdout == ""
    for doc in docs:
        name = doc["metadata"]["name"]
        obj = kubectl_json("get", "apigatewayintegrations.apigw.dev", name, "-n", kube.namespace, "--show-managed-fields")
        assert {k: obj["spec"][k] for k in doc["spec"]} == doc["spec"], "the operator never writes spec"
        check_ownership(obj, doc["spec"].get("deletionPolicy", "Retain"))
    # Re-applying the same files is a no-op for the API server: no new generation.
    generations = {d["metadata"]["name"]: kube.get(d["metadata"]["name"])["metadata"]["generation"] for d in docs}
    kubectl(*apply_args)
    assert {n: kube.get(n)["metadata"]["generation"] for n in generations} == generations
    kube.run("delete", "apigatewayintegrations.apigw.dev", "retain", "delete", "--timeout=60s")
    with pytest.raises(emulator.aws.exceptions.NotFoundException):
        emulator.integration({"restApiId": docs[1]["spec"]["restApiId"], "resourceId": docs[1]["spec"]["resourceId"]})
