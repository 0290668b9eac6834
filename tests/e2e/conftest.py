"""End-to-end fixtures: the operator binary runs as its own process against the real API
server and the API Gateway emulator of `make testenv-up`; manifests go in with kubectl.

Nothing here skips: a missing part fails and names the command that provides it.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

import boto3
import pytest
import requests
from botocore.config import Config

REPO = Path(__file__).resolve().parents[2]
# cargo's target directory: CARGO_TARGET_DIR when set (relative to the repository), else target/.
BINARY = (REPO / os.environ.get("CARGO_TARGET_DIR", "target")) / "debug" / "apigw-operator"
LOGS = REPO / "target" / "e2e"
UP_HINT = "run `make testenv-up` and `. target/testenv/env.sh` first (make test does both)"


def need_env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: {UP_HINT}", pytrace=False)
    return value


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60, every: float = 0.2) -> Any:
    """Polls `check` until it returns a truthy value; fails naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    pytest.fail(f"timed out after {timeout}s waiting for {what}; last: {last!r}", pytrace=False)


class Kube:
    def __init__(self, namespace: str):
        self.namespace = namespace

    def run(self, *args: str, input: str | None = None, check: bool = True, namespaced: bool = True) -> subprocess.CompletedProcess:
        cmd = ["kubectl", *args] + (["-n", self.namespace] if namespaced else [])
        proc = subprocess.run(cmd, capture_output=True, text=True, input=input, timeout=120)
        if check and proc.returncode != 0:
            pytest.fail(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr}", pytrace=False)
        return proc

    def apply(self, manifest: dict) -> None:
        self.run("apply", "-f", "-", input=json.dumps(manifest))

    def get(self, name: str) -> dict:
        return json.loads(self.run("get", "apigatewayintegrations.apigw.dev", name, "-o", "json").stdout)

    def condition(self, name: str, kind: str) -> dict | None:
        obj = self.get(name)
        for c in (obj.get("status") or {}).get("conditions", []):
            if c["type"] == kind:
                return c
        return None

    def settled(self, name: str) -> dict | None:
        """The object once its status describes its current generation."""
        obj = self.get(name)
        status = obj.get("status") or {}
        if status.get("observedGeneration") == obj["metadata"]["generation"] and status.get("conditions"):
            return obj
        return None

    def wait_reason(self, name: str, reason: str, timeout: float = 60) -> dict:
        def check():
            obj = self.settled(name)
            if not obj:
                return None
            ready = next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")
            return obj if ready["reason"] == reason else None
        return wait_for(f"{name} Ready reason {reason}", check, timeout)

    def wait_ready(self, name: str, timeout: int = 60) -> dict:
        self.run("wait", "--for=condition=Ready", f"apigatewayintegrations.apigw.dev/{name}", f"--timeout={timeout}s")
        return wait_for(f"{name} settled", lambda: self.settled(name), timeout)

    def events(self, name: str) -> list[dict]:
        out = self.run("get", "events.events.k8s.io", "-o", "json", "--field-selector", f"regarding.name={name}").stdout
        return json.loads(out)["items"]


class Emulator:
    def __init__(self, admin: str, credentials: dict[str, str] | None = None):
        """`credentials`: AssumeRole's (see for_account); None: the environment's."""
        self.admin = admin.rstrip("/")
        keys = {}
        if credentials is not None:
            keys = {"aws_access_key_id": credentials["AccessKeyId"],
                    "aws_secret_access_key": credentials["SecretAccessKey"],
                    "aws_session_token": credentials["SessionToken"]}
        self.aws = boto3.client(
            "apigateway",
            endpoint_url=need_env("AWS_ENDPOINT_URL"),
            region_name=os.environ.get("AWS_REGION", "us-east-1"),
            config=Config(retries={"total_max_attempts": 1}),
            **keys,
        )

    def for_account(self, account: str) -> "Emulator":
        """This emulator as seen from `account` (12 digits): its `aws` client (so api_with_method,
        integration, put_integration) runs there, with AssumeRole of
        arn:aws:iam::<account>:role/e2e-admin (session "e2e-tests"). That AssumeRole counts in
        calls(account=...); and the expire_tokens fault expires these credentials too: call
        for_account again after posting it."""
        sts = boto3.client(
            "sts",
            endpoint_url=need_env("AWS_ENDPOINT_URL"),
            region_name=os.environ.get("AWS_REGION", "us-east-1"),
            config=Config(retries={"total_max_attempts": 1}),
        )
        role = f"arn:aws:iam::{account}:role/e2e-admin"
        credentials = sts.assume_role(RoleArn=role, RoleSessionName="e2e-tests")["Credentials"]
        return Emulator(self.admin, credentials)

    def calls(self, account: str | None = None) -> dict[str, int]:
        """{operation: calls} of every account, or of `account` alone (STS calls included:
        AssumeRole counts under the role's account)."""
        params = {"account": account} if account is not None else None
        r = requests.get(f"{self.admin}/_emulator/calls", params=params, timeout=10)
        r.raise_for_status()
        return r.json()

    def responses(self, account: str | None = None) -> dict[str, dict[str, int]]:
        """{operation: {status: n}} of every account, or of `account` alone."""
        params = {"account": account} if account is not None else None
        r = requests.get(f"{self.admin}/_emulator/responses", params=params, timeout=10)
        r.raise_for_status()
        return r.json()

    def faults(self, **faults: Any) -> None:
        requests.post(f"{self.admin}/_emulator/faults", json=faults, timeout=10).raise_for_status()

    def api_with_method(self, name: str | None = None, path: str = "pets", integration: dict | None = None) -> dict:
        """A REST API with one resource and a POST method, and an integration when given."""
        api = self.aws.create_rest_api(name=name or "e2e-" + secrets.token_hex(4))
        root = next(r for r in self.aws.get_resources(restApiId=api["id"])["items"] if r["path"] == "/")
        resource = self.aws.create_resource(restApiId=api["id"], parentId=root["id"], pathPart=path)
        self.aws.put_method(restApiId=api["id"], resourceId=resource["id"], httpMethod="POST", authorizationType="NONE")
        ids = {"restApiId": api["id"], "resourceId": resource["id"], "httpMethod": "POST", "path": "/" + path, "name": api["name"]}
        if integration is not None:
            self.put_integration(ids, **integration)
        return ids

    def put_integration(self, ids: dict, **fields: Any) -> dict:
        return self.aws.put_integration(restApiId=ids["restApiId"], resourceId=ids["resourceId"], httpMethod="POST", **fields)

    def integration(self, ids: dict) -> dict:
        out = self.aws.get_integration(restApiId=ids["restApiId"], resourceId=ids["resourceId"], httpMethod="POST")
        out.pop("ResponseMetadata", None)
        return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Operator:
    """One `apigw-operator run` process, stopped by PID."""

    def __init__(self, namespace: str, *extra: str, name: str = "operator", wait: bool = True,
                 env: dict[str, str] | None = None, all_namespaces: bool = False):
        if not BINARY.exists():
            pytest.fail(f"{BINARY} is missing: run `cargo build` (make test does)", pytrace=False)
        LOGS.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.log_path = LOGS / f"{namespace}-{name}.log"
        self.log = open(self.log_path, "ab")
        # The tests before ApiGatewayAccess act as the operator's own identity (the mode for a
        # single-team cluster); tests/e2e/test_access.py passes --access-mode refuse.
        defaults = {"--backoff-base": "0.5", "--backoff-cap": "5", "--resync-period": "600",
                    "--access-mode": "operator-identity"}
        for flag in extra:
            defaults.pop(flag, None)
        args = [
            str(BINARY), "run", *([] if all_namespaces else ["--namespace", namespace]),
            "--metrics-addr", f"127.0.0.1:{self.port}",
            *[item for pair in defaults.items() for item in pair],
            *extra,
        ]
        env = dict(os.environ, HOSTNAME=f"{namespace}-{name}", **(env or {}))
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        if wait:
            wait_for(f"{name} /readyz", self.ready, timeout=60)

    def ready(self) -> bool:
        if self.proc.poll() is not None:
            pytest.fail(f"the operator exited {self.proc.returncode}; see {self.log_path}", pytrace=False)
        try:
            return requests.get(f"http://127.0.0.1:{self.port}/readyz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def metrics(self) -> str:
        return requests.get(f"http://127.0.0.1:{self.port}/metrics", timeout=5).text

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=20)
        self.log.close()


@pytest.fixture(scope="session")
def emulator() -> Emulator:
    need_env("KUBECONFIG")
    return Emulator(need_env("APIGW_EMULATOR_ADMIN"))


@pytest.fixture(scope="session")
def crd_installed() -> None:
    need_env("KUBECONFIG")
    subprocess.run(["kubectl", "apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds")], check=True, capture_output=True)
    subprocess.run(["kubectl", "wait", "--for=condition=Established", "--timeout=60s", "-f", str(REPO / "crds")], check=True, capture_output=True)


@pytest.fixture
def kube(crd_installed) -> Kube:
    namespace = "e2e-" + secrets.token_hex(4)
    subprocess.run(["kubectl", "create", "namespace", namespace], check=True, capture_output=True)
    return Kube(namespace)


@pytest.fixture
def operators(kube, emulator):
    """Starts operators for the test's namespace; stops them all at the end, and clears faults."""
    started: list[Operator] = []

    def start(*extra: str, name: str = "operator", wait: bool = True, env: dict[str, str] | None = None,
              all_namespaces: bool = False) -> Operator:
        op = Operator(kube.namespace, *extra, name=name, wait=wait, env=env, all_namespaces=all_namespaces)
        started.append(op)
        return op

    yield start
    emulator.faults()
    for op in started:
        op.stop()


def manifest(name: str, ids: dict, **spec: Any) -> dict:
    body = {"restApiId": ids["restApiId"], "resourceId": ids["resourceId"], "httpMethod": ids["httpMethod"]}
    body.update(spec)
    return {"apiVersion": "apigw.dev/v1alpha1", "kind": "ApiGatewayIntegration", "metadata": {"name": name}, "spec": body}


def delta(before: dict[str, int], after: dict[str, int], op: str) -> int:
    return after.get(op, 0) - before.get(op, 0)
