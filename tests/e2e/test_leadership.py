"""Leadership fences writes (issue 11): a leader cut off from the API server stops writing at
its renew deadline and exits while a standby takes over; a graceful stop hands the lease over
at once. A TCP proxy (hack/tcp_proxy.py) sits between the leader and kube-apiserver; the
emulator logs every write with the access key that signed it, one key per operator."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from conftest import REPO, manifest, wait_for

sys.path.insert(0, str(REPO / "hack"))
from tcp_proxy import TcpProxy  # noqa: E402

HTTP = {"type": "HTTP", "integrationHttpMethod": "POST", "uri": "https://backend.example.com/pets"}
RENEW_DEADLINE = 3.0


def lease_flags(kube, lease: str) -> tuple[str, ...]:
    return ("--leader-elect", "--lease-name", lease, "--lease-namespace", kube.namespace,
            "--lease-duration", "6", "--lease-renew-deadline", str(RENEW_DEADLINE),
            "--lease-retry-period", "0.5")


def holder(kube, lease: str) -> str:
    return kube.run("get", "lease", lease, "-o", "jsonpath={.spec.holderIdentity}", check=False).stdout


def proxied_kubeconfig(path: Path, port: int) -> Path:
    raw = subprocess.run(["kubectl", "config", "view", "--raw", "--flatten", "--minify"],
                         check=True, capture_output=True, text=True).stdout
    server = subprocess.run(["kubectl", "config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}"],
                            check=True, capture_output=True, text=True).stdout
    assert server.startswith("https://127.0.0.1:"), server
    path.write_text(raw.replace(server, f"https://127.0.0.1:{port}"))
    return path


def api_server_port() -> int:
    server = subprocess.run(["kubectl", "config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}"],
                            check=True, capture_output=True, text=True).stdout
    return int(server.rsplit(":", 1)[1].strip("/"))


def writes(emulator) -> list[dict]:
    return requests.get(f"{emulator.admin}/_emulator/writes", timeout=10).json()


def test_a_leader_cut_off_from_the_api_server_never_writes_after_its_renew_deadline(kube, emulator, operators, tmp_path):
    lease = "fence"
    apis = [emulator.api_with_method(integration=HTTP) for _ in range(3)]
    with TcpProxy("127.0.0.1", api_server_port()) as proxy:
        config = proxied_kubeconfig(tmp_path / "kubeconfig", proxy.port)
        # Short drift checks: a leader that still reaches AWS has something to write at once.
        flags = (*lease_flags(kube, lease), "--resync-period", "1")
        a = operators(*flags, name="a", env={"KUBECONFIG": str(config), "AWS_ACCESS_KEY_ID": "AKIDLEADERA"})
        wait_for("a holds the lease", lambda: holder(kube, lease) == f"{kube.namespace}-a", 30)
        b = operators(*flags, name="b", wait=False, env={"AWS_ACCESS_KEY_ID": "AKIDSTANDBYB"})
        for i, ids in enumerate(apis):
            kube.apply(manifest(f"fenced-{i}", ids, timeoutInMillis=1111))
        for i in range(len(apis)):
            kube.wait_ready(f"fenced-{i}")
        # a corrects drift while it leads.
        emulator.aws.update_integration(restApiId=apis[0]["restApiId"], resourceId=apis[0]["resourceId"], httpMethod="POST",
                                        patchOperations=[{"op": "replace", "path": "/timeoutInMillis", "value": "5000"}])
        wait_for("a corrects the drift", lambda: emulator.integration(apis[0])["timeoutInMillis"] == 1111, 30)
        assert any(w["key"] == "AKIDLEADERA" and w["op"] == "UpdateIntegration" for w in writes(emulator))

        cut = time.time()
        proxy.cut("blackhole")
        # Past a's renew deadline (an intended step of the scenario, not a wait for a
        # condition), AWS drifts: a still reaches AWS and checks drift every second, but may
        # no longer write.
        time.sleep(max(0.0, cut + RENEW_DEADLINE + 0.5 - time.time()))
        for ids in apis[1:]:
            emulator.aws.update_integration(restApiId=ids["restApiId"], resourceId=ids["resourceId"], httpMethod="POST",
                                            patchOperations=[{"op": "replace", "path": "/timeoutInMillis", "value": "7777"}])
        wait_for("a exits", lambda: a.proc.poll() is not None, 30)
        assert a.proc.returncode != 0
        assert "renew" in a.log_path.read_text()
        wait_for("b takes over", lambda: holder(kube, lease) == f"{kube.namespace}-b", 30)
        # A spec change made while a is cut off lands, through b.
        kube.apply(manifest("fenced-0", apis[0], timeoutInMillis=2222))
        wait_for("b applies the change", lambda: emulator.integration(apis[0])["timeoutInMillis"] == 2222, 30)
        for ids in apis[1:]:
            wait_for("b corrects the drift", lambda: emulator.integration(ids)["timeoutInMillis"] == 1111, 30)
        late = [w for w in writes(emulator) if w["key"] == "AKIDLEADERA" and w["t"] > cut + RENEW_DEADLINE + 0.2]
        assert late == [], f"the old leader wrote after its renew deadline: {late}"
        assert any(w["key"] == "AKIDSTANDBYB" for w in writes(emulator))
        b.stop()


def test_a_graceful_stop_releases_the_lease(kube, emulator, operators):
    lease = "handover"
    ids = emulator.api_with_method(integration=HTTP)
    # A long lease: a standby that had to wait for it to expire would take 30 s and more.
    flags = ("--leader-elect", "--lease-name", lease, "--lease-namespace", kube.namespace,
             "--lease-duration", "30", "--lease-retry-period", "0.5")
    a = operators(*flags, name="a")
    wait_for("a holds the lease", lambda: holder(kube, lease) == f"{kube.namespace}-a", 30)
    operators(*flags, name="b", wait=False)
    kube.apply(manifest("handover", ids, timeoutInMillis=1234))
    kube.wait_ready("handover")
    stopped = time.monotonic()
    a.stop(signal.SIGTERM)
    assert a.proc.returncode == 0
    wait_for("b takes the released lease", lambda: holder(kube, lease) == f"{kube.namespace}-b", 30)
    assert time.monotonic() - stopped < 10, "handed over without waiting the 30 s lease"
    kube.apply(manifest("handover", ids, timeoutInMillis=4321))
    wait_for("b applies the change", lambda: emulator.integration(ids)["timeoutInMillis"] == 4321, 30)
