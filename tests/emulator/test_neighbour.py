"""The neighbour fault: another tool on the same account drawing on its quota from a thread in
the emulator. Every wait is a condition with a deadline, never a fixed sleep taken as proof; the
verdicts hold however loaded the machine is: counts are compared with what the bucket can give
(its size plus its refill over the time that passed), or the refill is too slow to matter, and
"stopped" is the thread's own word (`running: false` is set by the thread as it ends, so counts
read after it are final)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from botocore.exceptions import ClientError

# Not imported from conftest: when pytest collects tests/e2e too, "conftest" is that one.
REPO = Path(__file__).resolve().parents[2]
SERVER = REPO / "hack" / "emulator" / "server.py"

ACCOUNT, REGION = "123456789012", "us-east-1"


def wait_for(what: str, check, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


def neighbour(emulator) -> dict:
    return emulator.admin("GET", "neighbour")


def status(call) -> int:
    try:
        return call()["ResponseMetadata"]["HTTPStatusCode"]
    except ClientError as e:
        return e.response["ResponseMetadata"]["HTTPStatusCode"]


def test_no_neighbour_by_default(emulator):
    got = neighbour(emulator)
    assert (got["rps"], got["ok"], got["throttled"], got["running"]) == (0, 0, 0, False)
    assert got["threads"] == 0


def test_the_neighbour_draws_from_the_account_bucket(emulator):
    t0 = time.monotonic()  # before: the thread starts before POST /faults answers
    emulator.set_faults(quota_rps=100, quota_burst=100, neighbour_rps=20)
    got = wait_for("10 draws", lambda: (n := neighbour(emulator))["ok"] >= 10 and n)
    assert got["running"] and got["threads"] == 1
    assert (got["rps"], got["account"], got["region"]) == (20, ACCOUNT, REGION)
    # 20 draws a second (at most one second's worth at once) from a bucket of 100 refilled at
    # 100 a second: never empty.
    assert got["throttled"] == 0
    more = wait_for("more draws", lambda: (n := neighbour(emulator))["ok"] > got["ok"] and n)
    # An absolute schedule: no more draws than were due (one at start, then 20 a second).
    assert more["ok"] + more["skipped"] <= 1 + 20 * (time.monotonic() - t0) + 1
    # The bucket shows them: they took tokens from the default account's, us-east-1.
    assert emulator.admin("GET", "quota")["account"].get(f"{ACCOUNT} {REGION}") is not None
    # Not requests: nothing counted.
    assert emulator.calls() == {} and emulator.responses() == {}
    assert emulator.admin("GET", "writes") == []


def test_a_draining_neighbour_is_throttled_and_so_are_the_operators_calls(emulator, apigw):
    # Two tokens and a refill too slow to matter: the neighbour takes both, then finds the bucket
    # empty; so does everyone else on the account.
    emulator.set_faults(quota_rps=0.0001, quota_burst=2, neighbour_rps=50)
    got = wait_for("a throttled draw", lambda: (n := neighbour(emulator))["throttled"] > 0 and n)
    assert got["ok"] == 2
    codes = [status(apigw.get_rest_apis) for _ in range(3)]
    assert codes == [429, 429, 429]
    assert emulator.responses() == {"GetRestApis": {"429": 3}}
    assert emulator.calls() == {"GetRestApis": 3}


def test_the_neighbours_share_is_bounded_by_the_bucket(emulator):
    """A neighbour asking more than the refill: what it gets is at most the burst plus the
    refill over the time that passed; the rest is throttled."""
    t0 = time.monotonic()  # before: the bucket is made (full) by the first draw
    emulator.set_faults(quota_rps=5, quota_burst=5, neighbour_rps=25)
    got = wait_for("40 throttled draws", lambda: (n := neighbour(emulator))["throttled"] >= 40 and n)
    elapsed = time.monotonic() - t0
    assert got["ok"] >= 5
    assert got["ok"] <= 5 + 5 * elapsed + 1, (got, elapsed)


def test_the_neighbour_uses_its_own_account_and_region(emulator, apigw):
    emulator.set_faults(quota_rps=0.0001, quota_burst=2, neighbour_rps=50, neighbour_region="us-west-2")
    got = wait_for("a throttled draw", lambda: (n := neighbour(emulator))["throttled"] > 0 and n)
    assert got["region"] == "us-west-2" and got["ok"] == 2
    # us-east-1's bucket is untouched.
    assert [status(apigw.get_rest_apis) for _ in range(3)] == [200, 200, 429]

    emulator.set_faults(quota_rps=0.0001, quota_burst=2, neighbour_rps=50, neighbour_account="111111111111")
    wait_for("a throttled draw", lambda: neighbour(emulator)["throttled"] > 0)
    assert neighbour(emulator)["account"] == "111111111111"
    assert [status(apigw.get_rest_apis) for _ in range(3)] == [200, 200, 429]


def test_calls_reset_zeroes_the_counts_and_the_neighbour_keeps_drawing(emulator):
    emulator.set_faults(quota_rps=0.0001, quota_burst=3, neighbour_rps=50)
    wait_for("a throttled draw", lambda: neighbour(emulator)["throttled"] > 0)
    assert neighbour(emulator)["ok"] == 3
    emulator.admin("POST", "calls/reset")
    # The bucket stays empty: every later draw is throttled; none is ok.
    got = wait_for("throttled draws after the reset", lambda: (n := neighbour(emulator))["throttled"] >= 5 and n)
    assert got["ok"] == 0 and got["running"]


def test_a_new_config_stops_the_neighbour(emulator):
    emulator.set_faults(quota_rps=100, quota_burst=100, neighbour_rps=20)
    wait_for("draws", lambda: neighbour(emulator)["ok"] >= 3)
    # POST /faults answers once the old thread has ended.
    emulator.set_faults(quota_rps=100, quota_burst=100)
    got = neighbour(emulator)
    assert (got["rps"], got["ok"], got["throttled"], got["running"]) == (0, 0, 0, False)
    assert got["threads"] == 0
    previous = got["previous"]
    assert previous["running"] is False and previous["rps"] == 20 and previous["ok"] >= 3
    # Stopped by its own word, so its counts are final: read again, unchanged.
    wait_for("another admin round trip", lambda: emulator.admin("GET", "health"))
    assert neighbour(emulator)["previous"] == previous

    # A config with another neighbour: the old one stops, one thread runs, counts start at 0.
    emulator.set_faults(quota_rps=100, quota_burst=100, neighbour_rps=10)
    first = neighbour(emulator)
    assert first["rps"] == 10 and first["running"] and first["threads"] == 1
    emulator.set_faults(quota_rps=100, quota_burst=100, neighbour_rps=30)
    got = wait_for("draws of the new neighbour", lambda: (n := neighbour(emulator))["ok"] >= 1 and n)
    assert got["rps"] == 30 and got["threads"] == 1
    assert got["previous"]["rps"] == 10 and got["previous"]["running"] is False
    emulator.set_faults()
    assert neighbour(emulator)["threads"] == 0


def test_an_invalid_config_keeps_the_neighbour_running(emulator):
    emulator.set_faults(quota_rps=100, quota_burst=100, neighbour_rps=20)
    r = requests.post(f"{emulator.url}/_emulator/faults", json={"neighbour_rps": 5}, timeout=10)
    assert r.status_code == 400
    before = wait_for("draws", lambda: (n := neighbour(emulator))["ok"] >= 1 and n)
    wait_for("more draws", lambda: neighbour(emulator)["ok"] > before["ok"])
    assert neighbour(emulator)["threads"] == 1


@pytest.mark.parametrize("cfg", [
    {"neighbour_rps": 5},  # without the account quota
    {"quota_rps": 10, "neighbour_rps": -1},
    {"quota_rps": 10, "neighbour_rps": "5"},
    {"quota_rps": 10, "neighbour_rps": 5000},
    {"quota_rps": 10, "neighbour_rps": 5, "neighbour_account": "42"},
    {"quota_rps": 10, "neighbour_rps": 5, "neighbour_region": "mars"},
    {"quota_rps": 10, "neighbour_account": "111111111111"},  # without neighbour_rps
])
def test_invalid_neighbour_keys_are_rejected(emulator, cfg):
    r = requests.post(f"{emulator.url}/_emulator/faults", json=cfg, timeout=10)
    assert r.status_code == 400, cfg
    assert "neighbour" in r.json()["message"]
    assert emulator.admin("GET", "faults") == {}
    assert neighbour(emulator)["threads"] == 0


def test_the_neighbour_stops_with_the_emulator(tmp_path):
    """A private emulator (SIGTERM is for this one alone): with a neighbour running it stops,
    by its PID, as promptly as without."""
    port_file = tmp_path / "port"
    log = open(tmp_path / "server.log", "w")
    proc = subprocess.Popen([sys.executable, str(SERVER), "--host", "127.0.0.1", "--port", "0",
                             "--port-file", str(port_file)],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=str(REPO))
    try:
        url = wait_for("the private emulator", lambda: port_file.is_file() and port_file.read_text().strip()
                       and f"http://127.0.0.1:{int(port_file.read_text())}", timeout=60)
        wait_for("its health", lambda: requests.get(f"{url}/_emulator/health", timeout=2).ok, timeout=30)
        r = requests.post(f"{url}/_emulator/faults", json={"quota_rps": 10, "neighbour_rps": 50}, timeout=10)
        assert r.status_code == 200
        wait_for("draws", lambda: requests.get(f"{url}/_emulator/neighbour", timeout=10).json()["ok"] > 0)
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        log.close()
