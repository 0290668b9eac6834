"""Replays tests/data/invalid-manifests.yaml against the real API server: every row must be
rejected at admission with its message (the unit test tests/crd.rs evaluates the same table
with the CRD's rules locally)."""

import copy
import json
import secrets
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
TABLE = yaml.safe_load((REPO_ROOT / "tests" / "data" / "invalid-manifests.yaml").read_text())
NAMESPACE = "default"


def merged(base, patch):
    out = copy.deepcopy(base)
    for key, value in (patch or {}).items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def manifest(name, spec):
    return {
        "apiVersion": "apigw.dev/v1alpha1",
        "kind": "ApiGatewayIntegration",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": spec,
    }


@pytest.fixture(scope="module")
def crd_installed(kubectl):
    crds = str(REPO_ROOT / "crds")
    kubectl("apply", "--server-side", "--force-conflicts", "--field-manager=testenv-tests", "-f", crds)
    kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", crds)


def test_table_has_at_least_30_rows():
    assert len(TABLE["rows"]) >= 30


def test_base_manifest_is_accepted(kubectl, crd_installed):
    body = json.dumps(manifest("base-" + secrets.token_hex(3), TABLE["base"]))
    kubectl("apply", "--dry-run=server", "-f", "-", input=body)


@pytest.mark.parametrize("row", TABLE["rows"], ids=[r["name"] for r in TABLE["rows"]])
def test_row_is_rejected_with_its_message(kubectl, crd_installed, row):
    name = "row-" + secrets.token_hex(4)
    if "old" in row:
        old = manifest(name, merged(TABLE["base"], row["old"]))
        kubectl("create", "-f", "-", input=json.dumps(old))
    try:
        new = manifest(name, merged(TABLE["base"], row["spec"]))
        verb = ["replace"] if "old" in row else ["create", "--dry-run=server"]
        proc = kubectl.run(*verb, "-f", "-", input=json.dumps(new), check=False)
        assert proc.returncode != 0, f"{row['name']}: accepted by the API server"
        assert row["message"] in proc.stderr, f"{row['name']}: {proc.stderr}"
    finally:
        if "old" in row:
            kubectl.run("delete", "apigatewayintegrations.apigw.dev", name, "-n", NAMESPACE, "--wait=false", check=False)
