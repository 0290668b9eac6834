"""Helpers of the shipping tests (chart, kustomize base, Argo CD health check, RBAC, image).

Nothing here skips: a missing tool or environment fails and names the command that provides it.
The end-to-end helpers of tests/e2e (the emulator client, `manifest`, the operator process) are
loaded from tests/e2e/conftest.py under another module name, so that both directories' conftest
files can be collected in one pytest session.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any, Iterable

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
CHART = REPO / "charts" / "apigw-operator"
DEPLOY = REPO / "deploy"
CRD = REPO / "crds" / "apigatewayintegrations.apigw.dev.yaml"
# Every CRD the operator serves, as `apigw-operator crd --out-dir` writes them.
CRDS = sorted((REPO / "crds").glob("*.yaml"))
BINARY = (REPO / os.environ.get("CARGO_TARGET_DIR", "target")) / "debug" / "apigw-operator"  # as tests/e2e
LOGS = REPO / "target" / "ship"
UPDATE_GOLDEN = os.environ.get("UPDATE_GOLDEN") == "1"
UP_HINT = "run `make testenv-up` and `. target/testenv/env.sh` first (make test does both)"


def _load_e2e():
    spec = importlib.util.spec_from_file_location("apigw_e2e_helpers", REPO / "tests" / "e2e" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


e2e = _load_e2e()
wait_for = e2e.wait_for
manifest = e2e.manifest
Emulator = e2e.Emulator
Kube = e2e.Kube
free_port = e2e.free_port


def need_env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: {UP_HINT}", pytrace=False)
    return value


def need_tool(name: str, how: str) -> str:
    path = shutil.which(name)
    if not path:
        pytest.fail(f"`{name}` is not on PATH: {how}", pytrace=False)
    return path


def need_helm() -> str:
    return need_tool("helm", f"the pinned helm comes with the test environment: {UP_HINT}")


def need_kubectl() -> str:
    return need_tool("kubectl", f"the pinned kubectl comes with the test environment: {UP_HINT}")


def need_binary() -> Path:
    if not BINARY.exists():
        pytest.fail(f"{BINARY} is missing: run `cargo build` (make test does)", pytrace=False)
    return BINARY


def run(cmd: list[str], *, input: str | None = None, check: bool = True, env: dict | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, input=input, env=env, timeout=timeout)
    if check and proc.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}", pytrace=False)
    return proc


def kubectl(*args: str, input: str | None = None, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    need_kubectl()
    return run(["kubectl", *args], input=input, check=check, env=env)


def kubectl_json(*args: str) -> dict:
    return json.loads(kubectl(*args, "-o", "json").stdout)


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    need_helm()
    return run(["helm", *args], check=check)


def helm_template(values: Iterable[Path] = (), sets: Iterable[str] = (), release: str = "apigw-operator",
                  namespace: str = "apigw-system", check: bool = True) -> subprocess.CompletedProcess:
    cmd = ["template", release, str(CHART), "--namespace", namespace]
    for v in values:
        cmd += ["-f", str(v)]
    for s in sets:
        cmd += ["--set", s]
    return helm(*cmd, check=check)


def docs(text: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(text) if d]


def find(objects: list[dict], kind: str, name: str | None = None) -> dict:
    for o in objects:
        if o["kind"] == kind and (name is None or o["metadata"]["name"] == name):
            return o
    raise AssertionError(f"no {kind} {name or ''} among {[(o['kind'], o['metadata']['name']) for o in objects]}")


def kinds(objects: list[dict]) -> list[tuple[str, str]]:
    return sorted((o["kind"], o["metadata"]["name"]) for o in objects)


def container(objects: list[dict]) -> dict:
    deployment = find(objects, "Deployment")
    (c,) = deployment["spec"]["template"]["spec"]["containers"]
    return c


def compare_golden(path: Path, actual: str) -> None:
    """Compares `actual` with a golden file; UPDATE_GOLDEN=1 rewrites the file instead."""
    if UPDATE_GOLDEN:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual)
        return
    if not path.exists():
        pytest.fail(f"{path} is missing: regenerate with UPDATE_GOLDEN=1 $PY -m pytest tests/ship", pytrace=False)
    expected = path.read_text()
    if expected != actual:
        import difflib
        diff = "".join(difflib.unified_diff(expected.splitlines(True), actual.splitlines(True), str(path), "rendered"))
        pytest.fail(f"{path} differs from the rendering (regenerate with UPDATE_GOLDEN=1 if intended):\n{diff}", pytrace=False)


def random_name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def admin_cluster() -> tuple[str, str]:
    """(server URL, CA bundle PEM) of the admin kubeconfig's current context."""
    need_env("KUBECONFIG")
    config = json.loads(kubectl("config", "view", "--raw", "--minify", "-o", "json").stdout)
    cluster = config["clusters"][0]["cluster"]
    if cluster.get("certificate-authority-data"):
        import base64
        ca = base64.b64decode(cluster["certificate-authority-data"]).decode()
    elif cluster.get("certificate-authority"):
        ca = Path(cluster["certificate-authority"]).read_text()
    else:
        pytest.fail("the admin kubeconfig has no CA for its cluster", pytrace=False)
    return cluster["server"], ca


def token_kubeconfig(path: Path, namespace: str, service_account: str, duration: str = "1h") -> Path:
    """A kubeconfig that authenticates as the ServiceAccount with a TokenRequest token."""
    token = kubectl("create", "token", service_account, "-n", namespace, f"--duration={duration}").stdout.strip()
    server, ca = admin_cluster()
    import base64
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "testenv", "cluster": {"server": server, "certificate-authority-data": base64.b64encode(ca.encode()).decode()}}],
        "users": [{"name": service_account, "user": {"token": token}}],
        "contexts": [{"name": "sa", "context": {"cluster": "testenv", "user": service_account, "namespace": namespace}}],
        "current-context": "sa",
    }
    path.write_text(json.dumps(config))
    path.chmod(0o600)
    return path


def can_i(verb: str, resource: str, as_user: str, namespace: str | None = None) -> bool:
    args = ["auth", "can-i", verb, resource, f"--as={as_user}"]
    args += ["-n", namespace] if namespace else ["--all-namespaces"]
    return kubectl(*args, check=False).stdout.strip() == "yes"


class OperatorProcess:
    """`apigw-operator <args>` as its own process with a given kubeconfig; stopped by PID."""

    def __init__(self, args: list[str], kubeconfig: Path, name: str, extra_env: dict | None = None):
        need_binary()
        LOGS.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.log_path = LOGS / f"{name}.log"
        self.log = open(self.log_path, "wb")
        args = [a for a in args if not a.startswith("--metrics-addr")]
        self.args = [str(BINARY), *args, f"--metrics-addr=127.0.0.1:{self.port}"]
        env = dict(os.environ, KUBECONFIG=str(kubeconfig), HOSTNAME=name, POD_NAME=name, RUST_LOG="info")
        env.update(extra_env or {})
        self.proc = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT, env=env)

    def text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def exited(self) -> int | None:
        return self.proc.poll()

    def ready(self) -> bool:
        import requests
        if self.proc.poll() is not None:
            pytest.fail(f"the operator exited {self.proc.returncode}:\n{self.text()[-3000:]}", pytrace=False)
        try:
            return requests.get(f"http://127.0.0.1:{self.port}/readyz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def wait_ready(self, timeout: float = 60) -> None:
        wait_for(f"{self.log_path.name}: /readyz", self.ready, timeout=timeout)

    def wait_log(self, pattern: str, timeout: float = 60) -> re.Match:
        return wait_for(f"{self.log_path.name} to log /{pattern}/", lambda: re.search(pattern, self.text()), timeout=timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=20)
        self.log.close()


def lua_health(obj: dict, health: Path | None = None) -> tuple[str, str]:
    """Runs deploy/argocd/health.lua with `obj` under Debian's lua5.1; returns (status, message)."""
    lua = shutil.which("lua5.1")
    if not lua:
        pytest.fail("lua5.1 is not installed: run `apt-get update && apt-get install -y lua5.1`", pytrace=False)
    health = health or DEPLOY / "argocd" / "health.lua"
    LOGS.mkdir(parents=True, exist_ok=True)
    obj_file = LOGS / f"obj-{secrets.token_hex(4)}.lua"
    obj_file.write_text("return " + to_lua(obj) + "\n")
    try:
        proc = run([lua, str(HERE / "argocd" / "harness.lua"), str(health), str(obj_file)], check=False, timeout=30)
    finally:
        obj_file.unlink()
    if proc.returncode != 0:
        pytest.fail(f"lua5.1 harness failed ({proc.returncode}): {proc.stderr}", pytrace=False)
    status, _, message = proc.stdout.partition("\n")
    return status, message


def to_lua(value: Any) -> str:
    """A Lua table constructor for a JSON value, as Argo CD hands objects to health checks."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        out = []
        for ch in value:
            code = ord(ch)
            if ch in "\\\"":
                out.append("\\" + ch)
            elif code < 32 or code == 127:
                out.append(f"\\{code:03d}")
            else:
                out.append(ch)
        return '"' + "".join(out) + '"'
    if isinstance(value, list):
        return "{" + ", ".join(to_lua(v) for v in value) + "}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"[{to_lua(str(k))}] = {to_lua(v)}" for k, v in value.items()) + "}"
    raise TypeError(type(value))
