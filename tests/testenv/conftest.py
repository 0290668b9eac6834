"""Fixtures for tests that run against the test environment.

The environment comes from `target/testenv/env.sh`, which `make testenv-up`
writes and which the caller sources before pytest (the Makefile does). Nothing
here starts or sources anything: a missing part is a test failure that names
the command that provides it, never a skip.
"""

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
UP_HINT = "run `make testenv-up` first, then `. target/testenv/env.sh` (the Makefile's test targets do both)"


def read_versions():
    """hack/versions.env as a dict (KEY=value lines)."""
    versions = {}
    path = REPO_ROOT / "hack" / "versions.env"
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            versions[key.strip()] = value.strip()
    return versions


@pytest.fixture(scope="session")
def pinned():
    return read_versions()


@pytest.fixture(scope="session")
def testenv():
    """The variables env.sh exports; fails (never skips) when they are missing."""
    names = [
        "KUBECONFIG",
        "AWS_ENDPOINT_URL",
        "AWS_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "APIGW_EMULATOR_ADMIN",
    ]
    if not os.environ.get("KUBECONFIG"):
        pytest.fail(f"KUBECONFIG is not set: {UP_HINT}", pytrace=False)
    missing = [n for n in names if not os.environ.get(n)]
    if missing:
        pytest.fail(f"{', '.join(missing)} not set: {UP_HINT}", pytrace=False)
    return {n: os.environ[n] for n in names + ["TESTENV_BIN"] if n in os.environ}


class Kubectl:
    """Runs the kubectl found on PATH (env.sh puts the pinned one first)."""

    def __init__(self, path):
        self.path = path

    def run(self, *args, check=True, timeout=120, input=None):
        proc = subprocess.run(
            [self.path, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
        )
        if check and proc.returncode != 0:
            pytest.fail(
                f"kubectl {' '.join(args)} exited {proc.returncode}\n"
                f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}",
                pytrace=False,
            )
        return proc

    def __call__(self, *args, **kwargs):
        return self.run(*args, **kwargs).stdout


@pytest.fixture(scope="session")
def kubectl(testenv):
    path = shutil.which("kubectl")
    if not path:
        pytest.fail(f"kubectl is not on PATH: {UP_HINT}", pytrace=False)
    return Kubectl(path)


@pytest.fixture(scope="session")
def kube_api(kubectl, tmp_path_factory):
    """Server URL, CA bundle (or verify=False) and client cert of the current
    context, from `kubectl config view --raw --minify`.

    Returns a dict with "server", "verify" (a path or a bool) and "cert" (a
    (crt, key) tuple, or None when the kubeconfig has no client certificate).
    """
    cfg = json.loads(kubectl("config", "view", "--raw", "--minify", "-o", "json"))
    cluster = cfg["clusters"][0]["cluster"]
    user = (cfg.get("users") or [{}])[0].get("user", {})
    tmp = tmp_path_factory.mktemp("kubeapi")

    def material(data_key, file_key, name):
        if cluster.get(data_key) or user.get(data_key):
            out = tmp / name
            out.write_bytes(base64.b64decode(cluster.get(data_key) or user.get(data_key)))
            return str(out)
        return cluster.get(file_key) or user.get(file_key)

    if cluster.get("insecure-skip-tls-verify"):
        verify = False
    else:
        verify = material("certificate-authority-data", "certificate-authority", "ca.crt") or True
    crt = material("client-certificate-data", "client-certificate", "client.crt")
    key = material("client-key-data", "client-key", "client.key")
    return {
        "server": cluster["server"].rstrip("/"),
        "verify": verify,
        "cert": (crt, key) if crt and key else None,
    }
