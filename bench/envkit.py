"""Shared by the benchmark (bench/run.py) and the fault matrix (tests/faults/): a small
Kubernetes client over `requests` (server-side apply, list, watch), a private API Gateway
emulator process, operator processes with their resource usage, and a watcher that records
when each object becomes Ready for its current generation.

Everything runs on 127.0.0.1; every process started here is stopped by its PID.

Why a private emulator: the emulator of `make testenv-up` is shared (other test runs use it at
the same time), and its call counters and faults are global. A benchmark that counts calls, or a
test that turns on 50% throttling, needs one of its own. It is the same program
(hack/emulator/server.py), started with the venv's python on a free port.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import requests
import yaml

REPO = Path(__file__).resolve().parents[1]
GROUP, VERSION, PLURAL = "apigw.dev", "v1alpha1", "apigatewayintegrations"
STAGES = "apigatewaystages"
PLURALS = {"ApiGatewayIntegration": PLURAL, "ApiGatewayStage": STAGES}
UP_HINT = "run `make testenv-up` and `. target/testenv/env.sh` first"


class KitError(RuntimeError):
    """A missing part or a failed step, with the command that fixes it where there is one."""


def need_env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise KitError(f"{name} is not set: {UP_HINT}")
    return value


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(what: str, check: Callable[[], Any], timeout: float, every: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    raise KitError(f"timed out after {timeout:.0f}s waiting for {what}; last: {last!r}")


# --- Kubernetes ------------------------------------------------------------------------------


class Kube:
    """Just what the harness needs from the API server, from a kubeconfig (client certificates
    or a bearer token). One requests.Session per thread."""

    def __init__(self, kubeconfig: str | None = None):
        path = (kubeconfig or need_env("KUBECONFIG")).split(":")[0]
        config = yaml.safe_load(Path(path).read_text())
        context_name = config.get("current-context")
        context = next(c["context"] for c in config["contexts"] if c["name"] == context_name)
        cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"])
        user = next((u["user"] for u in config.get("users", []) if u["name"] == context.get("user")), {})
        self.kubeconfig = path
        self.server = cluster["server"].rstrip("/")
        self._dir = tempfile.mkdtemp(prefix="apigw-kit-")
        os.chmod(self._dir, 0o700)
        self.verify: str | bool = True
        if "certificate-authority-data" in cluster:
            self.verify = self._write("ca.crt", base64.b64decode(cluster["certificate-authority-data"]))
        elif "certificate-authority" in cluster:
            self.verify = cluster["certificate-authority"]
        elif cluster.get("insecure-skip-tls-verify"):
            self.verify = False
        self.cert: tuple[str, str] | None = None
        if "client-certificate-data" in user:
            self.cert = (
                self._write("client.crt", base64.b64decode(user["client-certificate-data"])),
                self._write("client.key", base64.b64decode(user["client-key-data"])),
            )
        elif "client-certificate" in user:
            self.cert = (user["client-certificate"], user["client-key"])
        self.token = user.get("token")
        self._local = threading.local()

    def _write(self, name: str, data: bytes) -> str:
        path = os.path.join(self._dir, name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return path

    def close(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)

    @property
    def session(self) -> requests.Session:
        s = getattr(self._local, "session", None)
        if s is None:
            s = requests.Session()
            # Not the environment's CA bundle or proxies (REQUESTS_CA_BUNDLE would override
            # the cluster's CA): everything here is 127.0.0.1 with the kubeconfig's CA.
            s.trust_env = False
            s.verify = self.verify
            if self.cert:
                s.cert = self.cert
            if self.token:
                s.headers["Authorization"] = f"Bearer {self.token}"
            self._local.session = s
        return s

    def collection(self, namespace: str, plural: str = PLURAL) -> str:
        return f"{self.server}/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{plural}"

    def request(self, method: str, url: str, ok: Iterable[int] = (200, 201), **kw: Any) -> requests.Response:
        kw.setdefault("timeout", 60)
        r = self.session.request(method, url, **kw)
        if r.status_code not in ok:
            raise KitError(f"{method} {url}: {r.status_code} {r.text[:500]}")
        return r

    def ensure_namespace(self, name: str) -> None:
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        self.request("POST", f"{self.server}/api/v1/namespaces", ok=(201, 409), json=body)

    def apply(self, obj: dict, manager: str = "apigw-bench") -> dict:
        """Server-side apply (force), as `kubectl apply --server-side --force-conflicts`; the
        collection follows the object's kind (integrations unless it says otherwise)."""
        ns, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        plural = PLURALS.get(obj.get("kind", ""), PLURAL)
        r = self.request(
            "PATCH", f"{self.collection(ns, plural)}/{name}",
            params={"fieldManager": manager, "force": "true"},
            headers={"Content-Type": "application/apply-patch+yaml"},
            data=json.dumps(obj),
        )
        return r.json()

    def get(self, namespace: str, name: str, plural: str = PLURAL) -> dict:
        return self.request("GET", f"{self.collection(namespace, plural)}/{name}").json()

    def list(self, namespace: str, plural: str = PLURAL) -> dict:
        items: list[dict] = []
        params: dict[str, Any] = {"limit": 500}
        while True:
            page = self.request("GET", self.collection(namespace, plural), params=params, timeout=120).json()
            items.extend(page["items"])
            cont = page["metadata"].get("continue")
            if not cont:
                page["items"] = items
                return page
            params["continue"] = cont

    def delete_all(self, namespace: str, plural: str = PLURAL) -> None:
        self.request("DELETE", self.collection(namespace, plural), ok=(200, 404), timeout=300)

    def delete_namespace(self, name: str) -> None:
        self.request("DELETE", f"{self.server}/api/v1/namespaces/{name}", ok=(200, 202, 404))

    def watch(self, namespace: str, resource_version: str, timeout_seconds: int = 600) -> Iterable[dict]:
        """Watch events from `resource_version` until the server ends the stream."""
        r = self.session.get(
            self.collection(namespace),
            params={"watch": "true", "resourceVersion": resource_version,
                    "allowWatchBookmarks": "true", "timeoutSeconds": timeout_seconds},
            stream=True, timeout=(10, timeout_seconds + 30),
        )
        if r.status_code != 200:
            raise KitError(f"watch: {r.status_code} {r.text[:300]}")
        with r:
            for line in r.iter_lines(chunk_size=None):
                if line:
                    yield json.loads(line)

    def healthy(self) -> bool:
        try:
            return self.session.get(f"{self.server}/readyz", timeout=3).status_code == 200
        except requests.RequestException:
            return False


def install_crd(kubeconfig: str | None = None) -> None:
    """Applies every CRD in crds/ (ApiGatewayIntegration and ApiGatewayStage: `kubectl apply -f`
    on the directory takes every file in it) and waits until each is Established."""
    env = dict(os.environ)
    if kubeconfig:
        env["KUBECONFIG"] = kubeconfig
    kubectl = shutil.which("kubectl", path=env.get("PATH"))
    if not kubectl:
        raise KitError(f"kubectl is not on PATH: {UP_HINT} (env.sh puts the pinned kubectl first)")
    args = ["apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds")]
    p = subprocess.run([kubectl, *args], env=env, capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        raise KitError(f"kubectl {' '.join(args)}: {p.stderr}")
    # A CRD just created may have no status yet, and `kubectl wait` then fails at once instead
    # of waiting (seen on a loaded machine): ask again until a deadline.
    args = ["wait", "--for=condition=Established", "--timeout=10s", "-f", str(REPO / "crds")]
    deadline = time.monotonic() + 120
    while True:
        p = subprocess.run([kubectl, *args], env=env, capture_output=True, text=True, timeout=60)
        if p.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise KitError(f"kubectl {' '.join(args)}: {p.stderr}")
        time.sleep(0.5)


# --- readiness tracking ----------------------------------------------------------------------


@dataclass
class ObjState:
    generation: int = 0
    observed: int | None = None
    ready: bool = False
    reason: str | None = None
    ready_at: dict[int, float] = field(default_factory=dict)  # generation -> first time seen Ready


class Tracker:
    """Watches one namespace in a thread; records, for every object and generation, the first
    time (time.monotonic()) the object was seen Ready with observedGeneration == generation."""

    def __init__(self, kube: Kube, namespace: str):
        self.kube, self.namespace = kube, namespace
        self.objects: dict[str, ObjState] = {}
        self.lock = threading.Lock()
        self.stop_flag = threading.Event()
        self.errors = 0
        self.events = 0
        self.thread = threading.Thread(target=self._run, name="tracker", daemon=True)
        self.thread.start()

    def _see(self, obj: dict, now: float) -> None:
        meta, status = obj["metadata"], obj.get("status") or {}
        ready = next((c for c in status.get("conditions", []) if c.get("type") == "Ready"), None)
        with self.lock:
            st = self.objects.setdefault(meta["name"], ObjState())
            st.generation = meta.get("generation", 0)
            st.observed = status.get("observedGeneration")
            st.ready = bool(ready and ready.get("status") == "True" and st.observed == st.generation)
            st.reason = ready.get("reason") if ready else None
            if st.ready:
                st.ready_at.setdefault(st.generation, now)

    def _run(self) -> None:
        while not self.stop_flag.is_set():
            try:
                listing = self.kube.list(self.namespace)
                now = time.monotonic()
                for item in listing["items"]:
                    self._see(item, now)
                rv = listing["metadata"]["resourceVersion"]
                while not self.stop_flag.is_set():
                    for event in self.kube.watch(self.namespace, rv, timeout_seconds=300):
                        kind, obj = event.get("type"), event.get("object", {})
                        if kind == "ERROR":
                            raise KitError(f"watch error: {obj}")
                        rv = obj.get("metadata", {}).get("resourceVersion", rv)
                        if kind in ("ADDED", "MODIFIED"):
                            self.events += 1
                            self._see(obj, time.monotonic())
                        elif kind == "DELETED":
                            with self.lock:
                                self.objects.pop(obj["metadata"]["name"], None)
                        if self.stop_flag.is_set():
                            return
            except Exception:  # the API server went away, the watch expired: list again
                self.errors += 1
                self.stop_flag.wait(0.5)

    def stop(self) -> None:
        self.stop_flag.set()

    def snapshot(self) -> dict[str, ObjState]:
        with self.lock:
            return {k: ObjState(v.generation, v.observed, v.ready, v.reason, dict(v.ready_at))
                    for k, v in self.objects.items()}

    def not_ready(self, names: Iterable[str], generations: dict[str, int] | None = None) -> list[str]:
        """Names not yet Ready at their current generation (or at least `generations[name]`)."""
        with self.lock:
            out = []
            for n in names:
                st = self.objects.get(n)
                want = (generations or {}).get(n, 0)
                if st is None or not st.ready or st.generation < want:
                    out.append(n)
            return out

    def wait_ready(self, names: list[str], generations: dict[str, int] | None, timeout: float,
                   progress: Callable[[int, int], None] | None = None, every: float = 0.05) -> float:
        """Waits until every name is Ready at (at least) its generation; returns time.monotonic()
        at that moment. Raises KitError after `timeout` seconds, naming a few laggards."""
        deadline = time.monotonic() + timeout
        last_report = 0.0
        while True:
            missing = self.not_ready(names, generations)
            now = time.monotonic()
            if not missing:
                return now
            if progress and now - last_report > 10:
                progress(len(names) - len(missing), len(names))
                last_report = now
            if now > deadline:
                snap = self.snapshot()
                sample = {n: vars(snap[n]) if n in snap else None for n in missing[:5]}
                raise KitError(f"{len(missing)} of {len(names)} objects not Ready after {timeout:.0f}s; e.g. {sample}")
            time.sleep(every)


# --- the API Gateway emulator ----------------------------------------------------------------


class Emulator:
    """A private emulator process (hack/emulator/server.py) on a free port, stopped by PID."""

    def __init__(self, log_path: Path, log_requests: bool = False, python: str | None = None):
        server = REPO / "hack" / "emulator" / "server.py"
        if not server.exists():
            raise KitError(f"missing {server}: restore it with git checkout -- hack/emulator")
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path = log_path
        port_file = log_path.with_suffix(".port")
        port_file.unlink(missing_ok=True)
        self.log = open(log_path, "ab")
        args = [python or sys.executable, str(server), "--host", "127.0.0.1", "--port", "0",
                "--port-file", str(port_file)]
        if log_requests:
            args.append("--log-requests")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        def port() -> int | None:
            if self.proc.poll() is not None:
                raise KitError(f"the emulator exited {self.proc.returncode}; see {log_path} "
                               "(run with the venv's python: PY=$(hack/emulator/setup-venv.sh))")
            return int(port_file.read_text()) if port_file.exists() else None
        self.port = wait_until("the emulator's port file", port, 60)
        self.url = f"http://127.0.0.1:{self.port}"
        self.http = local_session()
        wait_until("the emulator's admin API", self._health, 30)

    def _health(self) -> bool:
        try:
            return self.http.get(f"{self.url}/_emulator/health", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def boto(self, max_pool: int = 32):
        import boto3
        from botocore.config import Config
        return boto3.client(
            "apigateway", endpoint_url=self.url, region_name="us-east-1",
            aws_access_key_id="testing", aws_secret_access_key="testing",
            config=Config(retries={"total_max_attempts": 1}, max_pool_connections=max_pool),
        )

    def calls(self) -> dict[str, int]:
        return self.http.get(f"{self.url}/_emulator/calls", timeout=10).json()

    def responses(self) -> dict[str, dict[str, int]]:
        return self.http.get(f"{self.url}/_emulator/responses", timeout=10).json()

    def drops(self) -> dict[str, int]:
        return self.http.get(f"{self.url}/_emulator/drops", timeout=10).json()

    def reset_calls(self) -> None:
        self.http.post(f"{self.url}/_emulator/calls/reset", timeout=10).raise_for_status()

    def served(self, rest_api_id: str, stage_name: str) -> dict | None:
        """What a stage serves (`/_emulator/served/{api}/{stage}`), None when there is no such
        stage: {"deploymentId", "integrations": {"<path> <VERB>": integration}, ...}."""
        r = self.http.get(f"{self.url}/_emulator/served/{rest_api_id}/{stage_name}", timeout=10)
        if r.status_code == 404:
            return None
        if r.status_code != 200:
            raise KitError(f"served {rest_api_id}/{stage_name}: {r.status_code} {r.text[:300]}")
        return r.json()

    def faults(self, **cfg: Any) -> None:
        # A config with a neighbour: the POST answers once the old neighbour thread has ended.
        r = self.http.post(f"{self.url}/_emulator/faults", json=cfg, timeout=30)
        if r.status_code != 200:
            raise KitError(f"faults {cfg}: {r.status_code} {r.text}")

    def neighbour(self) -> dict[str, Any]:
        """GET /_emulator/neighbour: {"rps", "ok", "throttled", "skipped", "running", ...}."""
        return self.http.get(f"{self.url}/_emulator/neighbour", timeout=10).json()

    def quota(self) -> dict[str, Any]:
        """GET /_emulator/quota: the tokens in the quota buckets now."""
        return self.http.get(f"{self.url}/_emulator/quota", timeout=10).json()

    def writes(self) -> list[dict[str, Any]]:
        """GET /_emulator/writes: [{"t", "op", "key"}] of the last 10,000 writes."""
        return self.http.get(f"{self.url}/_emulator/writes", timeout=30).json()

    def stop(self) -> None:
        stop_process(self.proc)
        self.log.close()


def diff(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    keys = set(after) | set(before)
    return {k: after.get(k, 0) - before.get(k, 0) for k in sorted(keys) if after.get(k, 0) - before.get(k, 0)}


def count_status(responses: dict[str, dict[str, int]], status: str) -> int:
    return sum(v.get(status, 0) for v in responses.values())


def wait_quiet(emulator: Emulator, quiet: float, timeout: float) -> tuple[float, dict[str, int]]:
    """Waits until the emulator has seen no call for `quiet` seconds; returns the time of the
    last call seen and the counts then."""
    deadline = time.monotonic() + timeout
    last_calls = emulator.calls()
    last_change = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now_calls = emulator.calls()
        if now_calls != last_calls:
            last_calls, last_change = now_calls, time.monotonic()
        elif time.monotonic() - last_change >= quiet:
            return last_change, last_calls
    raise KitError(f"AWS calls did not stop within {timeout:.0f}s")


def local_session() -> requests.Session:
    """A session for 127.0.0.1 that ignores proxy settings from the environment."""
    s = requests.Session()
    s.trust_env = False
    return s


def stop_process(proc: subprocess.Popen, sig: int = signal.SIGTERM, grace: float = 20) -> None:
    """Stops one process we started, by its PID: `sig`, then SIGKILL after `grace` seconds."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)


def create_integrations(emulator: Emulator, apis: int, per_api: list[int], integration: Callable[[int, int], dict],
                        threads: int = 8, name_prefix: str = "bench") -> list[dict]:
    """Creates `apis` REST APIs, per_api[a] resources each with a POST method and an integration
    (integration(a, i) gives PutIntegration's fields; None: the method is left without one).
    Returns [{api, index, restApiId, resourceId, path}] in order."""
    from concurrent.futures import ThreadPoolExecutor

    aws = emulator.boto(max_pool=threads * 2)
    targets: list[dict] = []
    for a in range(apis):
        api = aws.create_rest_api(name=f"{name_prefix}-{a}")
        root = next(r for r in aws.get_resources(restApiId=api["id"])["items"] if r["path"] == "/")
        for i in range(per_api[a]):
            targets.append({"api": a, "index": i, "restApiId": api["id"], "rootId": root["id"], "path": f"/r{i}"})

    def make(t: dict) -> None:
        res = aws.create_resource(restApiId=t["restApiId"], parentId=t["rootId"], pathPart=t["path"][1:])
        t["resourceId"] = res["id"]
        aws.put_method(restApiId=t["restApiId"], resourceId=res["id"], httpMethod="POST", authorizationType="NONE")
        fields = integration(t["api"], t["index"])
        if fields is not None:
            aws.put_integration(restApiId=t["restApiId"], resourceId=res["id"], httpMethod="POST", **fields)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(make, targets))
    return targets


# --- the operator ----------------------------------------------------------------------------


def clock_ticks() -> int:
    return os.sysconf(os.sysconf_names["SC_CLK_TCK"])


def proc_usage(pid: int) -> dict[str, float]:
    """VmHWM / VmRSS (MiB) from /proc/PID/status and CPU seconds (utime+stime) from /proc/PID/stat."""
    out: dict[str, float] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                out[key] = int(rest.split()[0]) / 1024.0
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2:].split()
        out["cpu_seconds"] = (int(fields[11]) + int(fields[12])) / clock_ticks()
    except (FileNotFoundError, ProcessLookupError, ValueError):
        pass
    return out


class Operator:
    """One `apigw-operator run` process, stopped by PID. Its usage is sampled on stop."""

    def __init__(self, binary: Path, namespace: str, aws_endpoint: str, log_path: Path, *extra: str,
                 kubeconfig: str | None = None, name: str = "operator", wait: bool = True,
                 env: dict[str, str] | None = None):
        if not binary.exists():
            raise KitError(f"{binary} is missing: build it (cargo build, or cargo build --release)")
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.binary, self.name, self.log_path = binary, name, log_path
        self.port = free_port()
        self.args = [str(binary), "run", "--namespace", namespace, "--metrics-addr", f"127.0.0.1:{self.port}", *extra]
        self.env = dict(os.environ, AWS_ENDPOINT_URL=aws_endpoint, AWS_REGION="us-east-1",
                        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                        HOSTNAME=f"{namespace}-{name}",
                        # Benchmarks and fault runs act as the operator's own identity (no
                        # ApiGatewayAccess): the mode of a single-team cluster.
                        APIGW_ACCESS_MODE="operator-identity")
        self.env.pop("AWS_PROFILE", None)
        if kubeconfig:
            self.env["KUBECONFIG"] = kubeconfig
        self.env.update(env or {})
        self.log = open(log_path, "ab")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=self.env)
        self.usage: dict[str, float] = {}
        self.http = local_session()
        if wait:
            wait_until(f"{name} /readyz", self.ready, 60)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def ready(self) -> bool:
        if self.proc.poll() is not None:
            raise KitError(f"operator {self.name} exited {self.proc.returncode} "
                           f"({' '.join(self.args[1:])}); see {self.log_path}; its last lines:\n"
                           + log_tail(self.log_path))
        try:
            return self.http.get(f"http://127.0.0.1:{self.port}/readyz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def metrics(self) -> str:
        return self.http.get(f"http://127.0.0.1:{self.port}/metrics", timeout=5).text

    def sample(self) -> dict[str, float]:
        if self.alive():
            self.usage = proc_usage(self.pid) or self.usage
        return self.usage

    def stop(self, sig: int = signal.SIGTERM) -> dict[str, float]:
        self.sample()
        stop_process(self.proc, sig)
        self.log.close()
        return self.usage

    def kill(self) -> None:
        """SIGKILL, as the OOM killer or a node failure would."""
        self.sample()
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=20)
        self.log.close()


def log_tail(path: Path, lines: int = 8) -> str:
    """The last lines of a log (a rejected command-line flag shows there: clap's error)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join("    " + line for line in text.rstrip().splitlines()[-lines:])


def flags_accepted(binary: Path, *flags: str) -> str | None:
    """None when `binary run FLAGS` parses (asked with --help after them: clap reads the
    command line left to right, so a flag it does not know, or a bad value, fails first), else
    clap's error line."""
    if not binary.exists():
        return f"{binary} is missing"
    p = subprocess.run([str(binary), "run", *flags, "--help"], capture_output=True, text=True,
                       timeout=60, stdin=subprocess.DEVNULL)
    if p.returncode == 0:
        return None
    err = [line for line in p.stderr.splitlines() if line.strip()]
    return err[0] if err else f"exit {p.returncode}"


METRIC_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")
METRIC_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text: str) -> list[tuple[str, dict[str, str], float]]:
    """Prometheus text exposition → [(name, labels, value)] (comments skipped)."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = METRIC_LINE.match(line)
        if not m:
            continue
        try:
            value = float(m.group(3))
        except ValueError:
            continue
        out.append((m.group(1), dict(METRIC_LABEL.findall(m.group(2) or "")), value))
    return out


def metric_series(parsed: list[tuple[str, dict[str, str], float]], name: str) -> dict[str, float]:
    """{"k=v,k=v": value} of one metric's series (labels sorted; "" for none)."""
    return {",".join(f"{k}={v}" for k, v in sorted(labels.items())): value
            for n, labels, value in parsed if n == name}


def metric_sum(parsed: list[tuple[str, dict[str, str], float]], name: str, **match: str) -> float:
    """The sum of a metric's series whose labels include `match`."""
    return sum(value for n, labels, value in parsed
               if n == name and all(labels.get(k) == v for k, v in match.items()))


def manifest(name: str, namespace: str, target: dict, **spec: Any) -> dict:
    body = {"restApiId": target["restApiId"], "resourceId": target["resourceId"], "httpMethod": "POST", **spec}
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ApiGatewayIntegration",
            "metadata": {"name": name, "namespace": namespace}, "spec": body}


def stage_manifest(name: str, namespace: str, rest_api_id: str, stage_name: str, **spec: Any) -> dict:
    body = {"restApiId": rest_api_id, "stageName": stage_name, **spec}
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ApiGatewayStage",
            "metadata": {"name": name, "namespace": namespace}, "spec": body}


def ready_condition(obj: dict) -> dict | None:
    """The Ready condition of an object (either kind), if it describes the current generation."""
    status = obj.get("status") or {}
    if status.get("observedGeneration") != obj["metadata"].get("generation"):
        return None
    return next((c for c in status.get("conditions", []) if c.get("type") == "Ready"), None)


def apply_all(kube: Kube, objects: list[dict], threads: int = 16) -> dict[str, tuple[float, int]]:
    """Server-side applies every object from a thread pool; returns name -> (time.monotonic()
    when the API server answered, the generation it answered with)."""
    from concurrent.futures import ThreadPoolExecutor

    def one(obj: dict) -> tuple[str, float, int]:
        for attempt in range(5):
            try:
                out = kube.apply(obj)
                return obj["metadata"]["name"], time.monotonic(), out["metadata"]["generation"]
            except (KitError, requests.RequestException):
                if attempt == 4:
                    raise
                time.sleep(0.5 * (attempt + 1))
        raise AssertionError("unreachable")

    with ThreadPoolExecutor(threads) as pool:
        return {name: (t, gen) for name, t, gen in pool.map(one, objects)}


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    k = (len(s) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)
