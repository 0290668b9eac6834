"""Two replicas with leader election, as real pods on the two nodes (with hostNetwork, one per
node: each binds the metrics port on its node's IP, and the chart then rolls one pod at a time).

- `helm upgrade` from one replica to two: exactly one leader (the Lease's holder is one of the
  pods, and only its `apigw_leader` gauge is 1);
- a rolling update: writes continue, and the Lease is handed over well within its duration;
- the leader pod deleted while 50 objects roll out: every update reaches AWS.
"""

from __future__ import annotations

import re
import secrets
import subprocess
import time
from datetime import datetime

import pytest

from nodelib import (PUT_HTTP, Emulator, Release, get, kubectl, kubectl_json, new_release, node_env, pod_url,
                     uninstall, wait_for)

# Long enough that waiting for the Lease to expire is clearly told apart from a hand-over.
LEASE_SECONDS = 15


@pytest.fixture(scope="module")
def emulator() -> Emulator:
    return Emulator(node_env()["APIGW_EMULATOR_ADMIN"])


@pytest.fixture(scope="module")
def ha(tmp_path_factory) -> Release:
    rel = new_release(node_env(), tmp_path_factory.mktemp("values"), lease_duration=LEASE_SECONDS)
    try:
        rel.helm("install")
        # A slow AWS quota (5 calls/s, burst 5), so that a rollout of 50 changes takes some 10 s
        # and the leader can be deleted in the middle of it.
        rel.helm("upgrade", replicaCount=2,
                 aws={"region": "us-east-1", "endpointUrl": rel.env["AWS_ENDPOINT_URL"], "rps": 5, "burst": 5})
        yield rel
    finally:
        uninstall(rel)


def leader_gauge(release: Release, pod: dict) -> int | None:
    r = get(pod_url(pod, release.metrics_port, "/metrics"))
    if r is None or r.status_code != 200:
        return None
    m = re.search(r"^apigw_leader (\d+)", r.text, re.M)
    return int(m.group(1)) if m else None


def two_ready(release: Release) -> list[dict] | None:
    pods = release.ready_pods()
    return pods if len(pods) == 2 and len(release.live_pods()) == 2 else None


def one_leader(release: Release) -> str | None:
    pods = two_ready(release)
    if not pods:
        return None
    names = {p["metadata"]["name"] for p in pods}
    holder = release.holder()
    if holder not in names:
        return None
    gauges = {p["metadata"]["name"]: leader_gauge(release, p) for p in pods}
    return holder if sorted(gauges.values(), key=str) == [0, 1] and gauges[holder] == 1 else None


def test_two_replicas_have_exactly_one_leader(ha):
    pods = wait_for("two ready replicas", lambda: two_ready(ha), timeout=120)
    assert {p["spec"]["nodeName"] for p in pods} == set(ha.env["TESTENV_NODES"].split()), "one replica per node"
    args = pods[0]["spec"]["containers"][0]["args"]
    assert "--leader-elect" in args and f"--lease-duration={LEASE_SECONDS}" in args
    wait_for("exactly one leader (Lease holder, apigw_leader gauges 1 and 0)", lambda: one_leader(ha), timeout=60)
    deployment = kubectl_json("get", "deployment", ha.full, "-n", ha.namespace)
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 0, "maxUnavailable": 1}


def micro(ts: str) -> float:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


# What the rolling update measured, for test_rolling_update_hands_the_lease_over.
HANDOVER: dict = {}


def test_rolling_update_keeps_writing_and_moves_the_lease(ha, emulator):
    """helm upgrade rolls both pods; spec changes keep reaching AWS; the Lease ends with a pod of
    the new ReplicaSet and exactly one leader. Records how long the Lease took to move."""
    wait_for("exactly one leader", lambda: one_leader(ha), timeout=60)
    ids = emulator.api_with_method(integration=PUT_HTTP)
    ha.kube.apply(ha.manifest("rolling", ids, timeoutInMillis=1000))
    ha.kube.wait_ready("rolling", timeout=60)

    # Watches (not samples: a deleted pod is gone within a second) of the pods' deletion times
    # and of the Lease's holders, while the rollout runs.
    pods_watch = Watch(["get", "pods", "-n", ha.namespace, "-l", f"app.kubernetes.io/instance={ha.name}", "--watch",
                        "--output-watch-events", "-o",
                        "jsonpath={.object.metadata.name} {.object.metadata.deletionTimestamp} "
                        "{.object.metadata.deletionGracePeriodSeconds}{\"\\n\"}"])
    lease_watch = Watch(["get", "lease", ha.full, "-n", ha.namespace, "--watch", "-o",
                         "jsonpath={.spec.holderIdentity} {.spec.acquireTime}{\"\\n\"}"])
    try:
        helm_proc = ha.helm_async("upgrade", podAnnotations={"rollout": secrets.token_hex(4)})
        value = 1000
        deadline = time.monotonic() + 240

        def rolled_and_led() -> bool:
            """helm finished, and the Lease is held by a pod that is still there (the new ReplicaSet's)."""
            holder = ha.holder()
            return helm_proc.poll() is not None and holder in {p["metadata"]["name"] for p in ha.live_pods()}

        while time.monotonic() < deadline and not rolled_and_led():
            # Writes continue: a spec change at every turn; the last one is checked to reach AWS.
            value += 1
            ha.kube.apply(ha.manifest("rolling", ids, timeoutInMillis=value))
            time.sleep(0.5)  # paces the writes; every wait is on a condition
        assert rolled_and_led(), f"within 240 s, helm upgrade did not finish ({helm_proc.poll()}) or no new pod took the Lease"
        out, err = helm_proc.communicate()
        assert helm_proc.returncode == 0, err
    finally:
        pod_lines = pods_watch.stop()
        lease_lines = lease_watch.stop()
    wait_for("the last change to reach AWS", lambda: emulator.integration(ids)["timeoutInMillis"] == value, 90)
    ha.kube.wait_ready("rolling", timeout=60)
    wait_for("exactly one leader after the rollout", lambda: one_leader(ha), timeout=60)

    leaders: dict[str, float] = {}
    for line in lease_lines:
        holder, _, acquired = line.partition(" ")
        if holder and acquired:
            leaders.setdefault(holder, micro(acquired))
    # When each pod was deleted: its deletionTimestamp is that moment plus its grace period.
    deleted: dict[str, float] = {}
    for line in pod_lines:
        name, ts, grace = (line.split() + ["", ""])[:3]
        if ts and grace:
            deleted.setdefault(name, micro(ts) - int(grace))

    # The Lease went from the first leader to a replica of the new ReplicaSet.
    first, *later = sorted(leaders, key=leaders.get)
    assert later, f"the Lease never changed hands: {leaders}"
    assert first in deleted, (first, deleted)
    gap = leaders[later[0]] - deleted[first]
    print(f"lease hand-over: {first} deleted, {later[0]} acquired the Lease {gap:.2f} s later (leaders: {leaders})")
    assert 0 <= gap < 2 * LEASE_SECONDS, (first, later, gap)
    HANDOVER.update(first=first, next=later[0], gap=gap)


def test_rolling_update_hands_the_lease_over(ha):
    """The hand-over within a third of the Lease's duration needs the leader to release its Lease
    when it is stopped (SIGTERM; src/leader.rs, Elector::release): without that, the next replica
    waits for the Lease to expire (measured before that change: about 15 s, the Lease's duration)."""
    assert HANDOVER, "test_rolling_update_keeps_writing_and_moves_the_lease did not record the hand-over"
    first, gap = HANDOVER["first"], HANDOVER["gap"]
    assert gap < LEASE_SECONDS / 3, (
        f"the next replica took the Lease {gap:.1f} s after the leader pod {first} was deleted (Lease duration "
        f"{LEASE_SECONDS} s): it waited for the Lease to expire instead of being handed it. The operator must release "
        "its Lease when it receives SIGTERM")


class Watch:
    """`kubectl <args>` (a watch) in the background, its lines collected; stopped by its PID."""

    def __init__(self, args: list[str]):
        self.proc = subprocess.Popen(["kubectl", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def stop(self) -> list[str]:
        self.proc.terminate()
        try:
            out, _ = self.proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate(timeout=20)
        return [line for line in out.splitlines() if line.strip()]


def test_leader_deleted_during_a_rollout_of_50_objects_loses_no_update(ha, emulator):
    wait_for("exactly one leader", lambda: one_leader(ha), timeout=90)
    targets = [emulator.api_with_method(integration=PUT_HTTP) for _ in range(50)]
    names = [f"roll-{i:02d}" for i in range(50)]

    def apply_all(base: int) -> None:
        items = [ha.manifest(n, ids, timeoutInMillis=base + i) for i, (n, ids) in enumerate(zip(names, targets))]
        kubectl("apply", "-n", ha.namespace, "-f", "-", input=_list(items))

    def in_aws(base: int) -> int:
        return sum(emulator.integration(ids)["timeoutInMillis"] == base + i for i, ids in enumerate(targets))

    apply_all(3000)
    wait_for("the 50 objects in AWS", lambda: in_aws(3000) == 50, timeout=120)
    leader = one_leader(ha)
    assert leader
    # The rollout: every object changes; the leader pod goes once the first changes reached AWS.
    apply_all(5000)
    wait_for("the first changes to reach AWS", lambda: in_aws(5000) >= 1, timeout=60)
    kubectl("delete", "pod", leader, "-n", ha.namespace, "--wait=false")
    landed = in_aws(5000)
    assert landed < 50, "every change reached AWS before the leader was deleted: the test proves nothing"
    print(f"leader {leader} deleted with {landed} of 50 changes in AWS")
    wait_for("a new leader", lambda: (h := ha.holder()) and h != leader and h, timeout=4 * LEASE_SECONDS)
    wait_for("all 50 changes in AWS", lambda: in_aws(5000) == 50, timeout=180)

    def all_ready() -> bool:
        objs = kubectl_json("get", "apigatewayintegrations.apigw.dev", "-n", ha.namespace)["items"]
        done = [o for o in objs if o["metadata"]["name"] in names
                and (o.get("status") or {}).get("observedGeneration") == o["metadata"]["generation"]
                and any(c["type"] == "Ready" and c["status"] == "True" for c in o["status"].get("conditions", []))
                and o["status"].get("integration", {}).get("timeoutInMillis") == 5000 + names.index(o["metadata"]["name"])]
        return len(done) == 50
    wait_for("all 50 objects Ready with their new status", all_ready, timeout=120)


def _list(items: list[dict]) -> str:
    import json
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
