"""deploy/argocd/health.lua, Argo CD's health check for ApiGatewayIntegration, run by Debian's
lua5.1 through tests/ship/argocd/harness.lua: against the status fixtures in tests/ship/argocd/,
and against objects the operator really reconciled."""

from __future__ import annotations

import json

import pytest
import yaml

from shiplib import DEPLOY, HERE, Emulator, Kube, e2e, kubectl, lua_health, manifest, need_env, random_name

FIXTURES = sorted(p.stem for p in (HERE / "argocd").glob("*.yaml"))
KEY = "resource.customizations.health.apigw.dev_ApiGatewayIntegration"
STAGE_KEY = "resource.customizations.health.apigw.dev_ApiGatewayStage"
PUT_HTTP = {"type": "HTTP", "integrationHttpMethod": "POST", "uri": "https://backend.example.com/pets"}


def test_there_are_fixtures_for_every_health_status():
    statuses = {yaml.safe_load((HERE / "argocd" / f"{f}.yaml").read_text())["expected"]["status"] for f in FIXTURES}
    assert statuses == {"Healthy", "Progressing", "Degraded", "Suspended"}


@pytest.mark.parametrize("fixture", FIXTURES)
def test_health_of_fixture(fixture):
    case = yaml.safe_load((HERE / "argocd" / f"{fixture}.yaml").read_text())
    status, message = lua_health(case["object"])
    assert (status, message) == (case["expected"]["status"], case["expected"]["message"])


def test_missing_lua_fails_naming_the_install_command(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(pytest.fail.Exception, match=r"apt-get update && apt-get install -y lua5\.1"):
        lua_health({})


def test_argocd_cm_patch_installs_exactly_health_lua(tmp_path):
    patch_file = DEPLOY / "argocd" / "argocd-cm-patch.yaml"
    patch = yaml.safe_load(patch_file.read_text())
    assert (patch["kind"], patch["metadata"]["name"], patch["metadata"]["namespace"]) == ("ConfigMap", "argocd-cm", "argocd")
    lua = (DEPLOY / "argocd" / "health.lua").read_text()
    assert patch["data"] == {KEY: lua, STAGE_KEY: lua}
    # The documented command merges it into an existing argocd-cm (client side, no Argo CD here).
    existing = tmp_path / "argocd-cm.yaml"
    existing.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap",
                                        "metadata": {"name": "argocd-cm", "namespace": "argocd"},
                                        "data": {"url": "https://argocd.example.com"}}))
    out = kubectl("patch", "--local", "-f", str(existing), "--type", "merge", "--patch-file", str(patch_file), "-o", "json")
    merged = json.loads(out.stdout)["data"]
    assert merged == {"url": "https://argocd.example.com", KEY: lua, STAGE_KEY: lua}
    # The embedded script runs as it is stored.
    stored = tmp_path / "health.lua"
    stored.write_text(merged[KEY])
    assert lua_health({"metadata": {"generation": 1}}, stored)[0] == "Progressing"


def test_health_of_objects_the_operator_reconciled():
    need_env("KUBECONFIG")
    emulator = Emulator(need_env("APIGW_EMULATOR_ADMIN"))
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(e2e.REPO / "crds"))
    ns = random_name("ship-argocd")
    kubectl("create", "namespace", ns)
    kube = Kube(ns)
    operator = e2e.Operator(ns, name="argocd")
    try:
        # One integration each: objects on one integration would be in Conflict but the oldest.
        ids = emulator.api_with_method(integration=PUT_HTTP)
        missing = dict(ids, resourceId="nosuch")
        kube.apply(manifest("ready", ids, timeoutInMillis=1500))
        kube.apply(manifest("replace", emulator.api_with_method(integration=PUT_HTTP), type="MOCK"))
        kube.apply(manifest("missing", missing, timeoutInMillis=1500))
        paused = manifest("paused", emulator.api_with_method(integration=PUT_HTTP), timeoutInMillis=1500)
        paused["metadata"]["annotations"] = {"apigw.dev/paused": "true"}
        kube.apply(paused)
        expected = {"ready": ("Synced", "Healthy"), "replace": ("RequiresReplacement", "Degraded"),
                    "missing": ("TargetNotFound", "Progressing"), "paused": ("Paused", "Suspended")}
        for name, (reason, health) in expected.items():
            obj = kube.wait_reason(name, reason)
            status, message = lua_health(obj)
            conditions = {c["type"]: c for c in obj["status"]["conditions"]}
            assert status == health, (name, status, message, conditions)
            shown = {"Healthy": "Ready", "Degraded": "Stalled", "Suspended": "Ready", "Progressing": "Reconciling"}[health]
            assert message == conditions[shown]["message"], (name, message, conditions)
        # A new generation the operator has not answered yet is Progressing, whatever Ready says.
        operator.stop()
        kube.apply(manifest("ready", ids, timeoutInMillis=1600))
        obj = kube.get("ready")
        assert obj["status"]["observedGeneration"] < obj["metadata"]["generation"]
        assert lua_health(obj) == ("Progressing", f"Waiting for the operator to observe generation {obj['metadata']['generation']}")
    finally:
        operator.stop()
        kube.run("delete", "apigatewayintegrations.apigw.dev", "--all", "--wait=false", check=False)
