"""The fault matrix: a rollout of FAULT_OBJECTS (default 200) objects under each fault.

Every case: N integrations exist in AWS (the emulator); the operator runs; every manifest is
applied (generation 1); when a third of them are Ready, every manifest changes again
(generation 2: a new uri, integrationHttpMethod, timeout, templates, parameters and cache keys
for each object), so that updates in flight race newer generations; the fault or disruption
happens during that rollout. Then:

- every object is Ready at its latest generation;
- AWS holds exactly every generation-2 spec (every managed field compared with its manifest:
  no lost and no stale update), and still does a few seconds later;
- AWS calls per object are bounded: total calls / N (every call the emulator received, dropped
  connections included) against the case's bound, and the most calls one integration received
  (from the emulator's request log; dropped connections are not logged) against 4× that bound.

Run:  make test-faults                         (FAULT_OBJECTS=200, every case)
      FAULT_OBJECTS=50 make test-faults-ci     (the CI subset, about 3 minutes)
A summary line per case is printed (pytest -s) and appended to target/faults/summary.jsonl.
"""

from __future__ import annotations

import json
import math
import os
import re
import secrets
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Callable

import pytest

import envkit
from conftest import LOGS, fail

N = int(os.environ.get("FAULT_OBJECTS", "200"))
APIS = 2
# The rollout's own minimum: one GetIntegration per object at start and an UpdateIntegration
# per generation (2), when nothing fails.
BASE_CALLS = 3
# The whole account, as before the default share (the cases measure faults, not sharing).
OPERATOR_FLAGS = ("--backoff-base", "0.5", "--backoff-cap", "10", "--resync-period", "3600",
                  "--aws-rps", "10", "--aws-burst", "40")
READY_TIMEOUT = 240 + N * 2.0

INTEGRATION_PATH = re.compile(
    r'"(?:\x1b\[[0-9;]*m)*(?:GET|PUT|PATCH|DELETE) /restapis/([^/]+)/resources/([^/]+)/methods/[A-Z]+/integration[ ?"]')


def spec_for(k: int, gen: int) -> dict:
    if gen == 1:
        return {
            "type": "HTTP", "integrationHttpMethod": "POST", "uri": f"https://b.example.com/{k}/g1",
            "timeoutInMillis": 1000 + k,
            "requestTemplates": {"application/json": f'{{"gen": 1, "k": {k}}}'},
            "requestParameters": {"integration.request.header.x-gen": "'1'"},
            "cacheKeyParameters": ["method.request.header.x-a"],
        }
    return {
        "type": "HTTP", "integrationHttpMethod": "PUT", "uri": f"https://b.example.com/{k}/g2",
        "timeoutInMillis": 2000 + k,
        "requestTemplates": {"application/json": f'{{"gen": 2, "k": {k}}}', "text/plain": ""},
        "requestParameters": {"integration.request.header.x-gen": "'2'",
                              "integration.request.querystring.k": f"'{k}'"},
        "cacheKeyParameters": ["method.request.header.x-b"],
    }


def mismatches(live: dict, spec: dict) -> list[str]:
    """Managed fields where AWS differs from the spec."""
    out = []
    pairs = [("httpMethod", spec["integrationHttpMethod"]), ("uri", spec["uri"]),
             ("timeoutInMillis", spec["timeoutInMillis"]), ("type", spec["type"])]
    for field, want in pairs:
        if live.get(field) != want:
            out.append(f"{field}: {live.get(field)!r} != {want!r}")
    templates = {k: v or "" for k, v in (live.get("requestTemplates") or {}).items()}
    if templates != spec["requestTemplates"]:
        out.append(f"requestTemplates: {templates!r} != {spec['requestTemplates']!r}")
    if (live.get("requestParameters") or {}) != spec["requestParameters"]:
        out.append(f"requestParameters: {live.get('requestParameters')!r} != {spec['requestParameters']!r}")
    if set(live.get("cacheKeyParameters") or []) != set(spec["cacheKeyParameters"]):
        out.append(f"cacheKeyParameters: {live.get('cacheKeyParameters')!r} != {spec['cacheKeyParameters']!r}")
    return out


class Rollout:
    """One case: its namespace, integrations, operators, and the checks."""

    def __init__(self, case: str, kube: envkit.Kube, emulator: envkit.Emulator, binary: Path,
                 kubeconfig: str | None = None):
        self.case, self.kube, self.emulator, self.binary = case, kube, emulator, binary
        self.kubeconfig = kubeconfig
        self.ns = f"faults-{case.replace('_', '-')}-{secrets.token_hex(3)}"
        self.started = time.monotonic()
        emulator.faults()
        per_api = [N // APIS + (1 if i < N % APIS else 0) for i in range(APIS)]
        self.targets = envkit.create_integrations(
            emulator, APIS, per_api,
            lambda a, i: {"type": "HTTP", "integrationHttpMethod": "POST", "uri": f"https://b.example.com/{a}/{i}/g0"},
            name_prefix=self.ns)
        self.names = [f"o{k:04d}" for k in range(N)]
        kube.ensure_namespace(self.ns)
        self.tracker = envkit.Tracker(kube, self.ns)
        self.operators: list[envkit.Operator] = []
        self.log_offset = emulator.log_path.stat().st_size
        self.calls_before = emulator.calls()
        self.drops_before = emulator.drops()
        self.generations: dict[str, int] = {}
        self.notes: dict = {}

    def operator(self, *flags: str, name: str = "operator", wait: bool = True) -> envkit.Operator:
        op = envkit.Operator(self.binary, self.ns, self.emulator.url,
                             LOGS / f"{self.ns}-{name}.log", *OPERATOR_FLAGS, *flags,
                             kubeconfig=self.kubeconfig, name=name, wait=wait)
        self.operators.append(op)
        return op

    def apply(self, gen: int) -> None:
        objs = [envkit.manifest(n, self.ns, t, **spec_for(k, gen)) for k, (n, t) in enumerate(zip(self.names, self.targets))]
        applied = envkit.apply_all(self.kube, objs, threads=8)
        self.generations = {k: g for k, (_, g) in applied.items()}

    def ready_count(self) -> int:
        return N - len(self.tracker.not_ready(self.names, self.generations))

    def wait_fraction(self, fraction: float, timeout: float = READY_TIMEOUT) -> None:
        envkit.wait_until(f"{fraction:.0%} of {N} Ready", lambda: self.ready_count() >= fraction * N, timeout, 0.1)

    def wait_all_ready(self) -> float:
        t = time.monotonic()
        try:
            self.tracker.wait_ready(self.names, self.generations, READY_TIMEOUT)
        except envkit.KitError as e:
            fail(f"[{self.case}] {e}")
        return time.monotonic() - t

    def verify_aws(self) -> None:
        aws = self.emulator.boto()
        bad = {}
        for k, t in enumerate(self.targets):
            live = aws.get_integration(restApiId=t["restApiId"], resourceId=t["resourceId"], httpMethod="POST")
            wrong = mismatches(live, spec_for(k, 2))
            if wrong:
                bad[self.names[k]] = wrong
        if bad:
            sample = dict(list(bad.items())[:5])
            fail(f"[{self.case}] AWS differs from the manifest for {len(bad)} of {N} objects, e.g. {sample}")

    def verify_status(self) -> None:
        items = {o["metadata"]["name"]: o for o in self.kube.list(self.ns)["items"]}
        for k, name in enumerate(self.names):
            status = items[name].get("status") or {}
            assert status.get("observedGeneration") == items[name]["metadata"]["generation"], (name, status)
            wrong = mismatches(status.get("integration") or {}, spec_for(k, 2))
            assert not wrong, (name, "status.integration", wrong)

    def per_object_calls(self, end: int) -> Counter:
        with open(self.emulator.log_path, "rb") as f:
            f.seek(self.log_offset)
            text = f.read(end - self.log_offset).decode("utf-8", "replace")
        return Counter(m.groups() for m in INTEGRATION_PATH.finditer(text))

    def finish(self, bound: float) -> dict:
        """Counts the operator's AWS calls (once none came for 2 s after all were Ready), clears
        the faults, then checks AWS and status twice (now and 5 s later, the operator still
        running)."""
        envkit.wait_quiet(self.emulator, 2.0, 60)
        calls = envkit.diff(self.emulator.calls(), self.calls_before)
        drops = envkit.diff(self.emulator.drops(), self.drops_before)
        log_end = self.emulator.log_path.stat().st_size
        self.emulator.faults()
        self.verify_aws()
        self.verify_status()
        time.sleep(5)
        self.verify_aws()
        late = envkit.diff(self.emulator.calls(), self.calls_before)
        per_object = self.per_object_calls(log_end)
        ids = {(t["restApiId"], t["resourceId"]) for t in self.targets}
        counts = [per_object.get(i, 0) for i in ids]
        total = sum(calls.values())
        summary = {
            "case": self.case, "objects": N, "seconds": round(time.monotonic() - self.started, 1),
            "calls": calls, "dropped": drops, "calls_per_object": round(total / N, 2),
            "bound_per_object": bound, "max_logged_calls_one_object": max(counts),
            "min_logged_calls_one_object": min(counts), **self.notes,
        }
        print(f"\n[faults] {json.dumps(summary)}")
        with open(LOGS / "summary.jsonl", "a") as f:
            f.write(json.dumps(summary) + "\n")
        # After Ready, the operator made no write (the checks above are the only reads).
        writes_late = {op: late.get(op, 0) - calls.get(op, 0) for op in ("UpdateIntegration", "PutIntegration")}
        assert not any(writes_late.values()), f"[{self.case}] AWS writes after all were Ready: {writes_late}"
        assert total / N <= bound, f"[{self.case}] {total / N:.2f} AWS calls per object > bound {bound}: {calls}"
        assert max(counts) <= 4 * bound, f"[{self.case}] one integration received {max(counts)} calls (> 4× {bound})"
        return summary

    def close(self) -> None:
        self.tracker.stop()
        for op in self.operators:
            if op.alive():
                op.stop()
        self.emulator.faults()
        try:
            self.kube.delete_all(self.ns)
            self.kube.delete_namespace(self.ns)
        except Exception:
            pass


def retries_bound(failure_rate: float) -> float:
    """BASE_CALLS calls, each repeated until it succeeds (1/(1-p) attempts on average), with a
    factor 2 for the draws and for generation 2 arriving while generation 1 retries."""
    return math.ceil(BASE_CALLS / (1 - failure_rate) * 2)


@pytest.fixture
def rollout(shared_kube, emulator, operator_binary, request):
    made: list[Rollout] = []

    def make(case: str, kube: envkit.Kube | None = None, kubeconfig: str | None = None) -> Rollout:
        r = Rollout(case, kube or shared_kube, emulator, operator_binary, kubeconfig)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


def faulted_rollout(r: Rollout, faults: dict) -> None:
    r.operator()
    r.emulator.faults(**faults)
    r.apply(1)
    r.wait_fraction(1 / 3)
    r.apply(2)
    r.notes["ready_seconds_after_change"] = round(r.wait_all_ready(), 1)


@pytest.mark.parametrize("name,faults,failure_rate", [
    ("throttle_50", {"throttle": 0.5, "retry_after": 1}, 0.5),
    ("error_5xx_20", {"error_5xx": 0.2, "retry_after": 1}, 0.2),
    ("latency_2s", {"latency_ms": 2000}, 0.0),
    ("drop_10", {"drop": 0.1}, 0.1),
])
def test_rollout_under_aws_faults(rollout, name, faults, failure_rate):
    r = rollout(name)
    faulted_rollout(r, faults)
    r.finish(retries_bound(failure_rate))


def test_rollout_with_operator_sigkilled_5_times(rollout):
    """SIGKILL when 1/6 and 2/6 of generation 1 are Ready; generation 2 is applied; SIGKILL
    again when 1/4, 2/4 and 3/4 of generation 2 are Ready. A new process starts after each."""
    r = rollout("operator_sigkill_x5")
    r.operator(name="run0")
    r.apply(1)
    ready_at_kills = []
    for kill, (gen, fraction) in enumerate([(1, 1 / 6), (1, 2 / 6), (2, 1 / 4), (2, 2 / 4), (2, 3 / 4)], start=1):
        r.wait_fraction(fraction)
        ready_at_kills.append(f"g{gen}:{r.ready_count()}/{N}")
        r.operators[-1].kill()
        if kill == 2:
            r.apply(2)
        r.operator(name=f"run{kill}")
    r.notes["ready_at_each_kill"] = ready_at_kills
    r.notes["ready_seconds_after_last_kill"] = round(r.wait_all_ready(), 1)
    # Each new process reads every object it does not remember: one GetIntegration each.
    r.finish(BASE_CALLS + 5 + 2)


def test_rollout_with_the_leader_killed(rollout):
    r = rollout("leader_killed")
    lease = "apigw-faults"
    flags = ("--leader-elect", "--lease-name", lease, "--lease-namespace", r.ns, "--lease-duration", "4")

    def holder() -> str:
        try:
            url = f"{r.kube.server}/apis/coordination.k8s.io/v1/namespaces/{r.ns}/leases/{lease}"
            return r.kube.request("GET", url).json()["spec"].get("holderIdentity", "")
        except envkit.KitError:
            return ""

    a = r.operator(*flags, name="a")
    envkit.wait_until("a holds the lease", lambda: holder() == f"{r.ns}-a", 30)
    b = r.operator(*flags, name="b", wait=False)
    r.apply(1)
    r.wait_fraction(1 / 3)
    # The standby waits: it has made no API Gateway call while the leader holds the lease (its
    # one STS GetCallerIdentity at start names its account for the quota).
    calls = re.findall(r'apigw_aws_calls_total{operation="(?!GetCallerIdentity")', b.metrics())
    assert not calls, "the standby replica calls AWS"
    a.kill()
    killed = time.monotonic()
    r.apply(2)
    envkit.wait_until("b takes the lease", lambda: holder() == f"{r.ns}-b", 30)
    r.notes["takeover_seconds"] = round(time.monotonic() - killed, 1)
    r.notes["ready_seconds_after_change"] = round(r.wait_all_ready(), 1)
    assert b.alive()
    r.finish(BASE_CALLS + 1 + 2)


def test_rollout_with_the_api_server_restarted(rollout, private_cluster):
    """The API server of a private cluster (the test environment's binaries and flags, its own
    etcd) is SIGKILLed right after generation 2 is applied, stays down 5 s, and is started again
    with the same command line; the operator keeps running throughout."""
    r = rollout("apiserver_restart", kube=private_cluster.kube, kubeconfig=private_cluster.kubeconfig)
    r.operator()
    r.apply(1)
    r.wait_fraction(1 / 3)
    r.apply(2)
    r.notes["ready_before_restart"] = r.ready_count()
    r.notes["apiserver_start_seconds"] = round(private_cluster.restart_apiserver(down_seconds=5), 1)
    r.notes["ready_seconds_after_restart"] = round(r.wait_all_ready(), 1)
    assert r.operators[0].alive(), "the operator exited when the API server went away"
    r.finish(BASE_CALLS + 2)
