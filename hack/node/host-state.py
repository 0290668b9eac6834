#!/usr/bin/env python3
"""What the test environment's node mode changes on the host, and putting it back.

    host-state.py snapshot STATE_DIR   before the node starts: sysctls, iptables rules, network
                                       links and namespaces, into STATE_DIR/host-before.json
    host-state.py restore STATE_DIR    after the node stopped: sysctls the kubelet set, iptables
                                       rules and chains, links and network namespaces that were
                                       not there before, back as they were
    host-state.py check STATE_DIR      exits 1 and lists what is left behind: processes, mounts
                                       and cgroups of the node, and any difference from the
                                       snapshot (hack/testenv-leftovers.sh runs it)

Standard library only (it runs with the system's python3).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

# Sysctls whose values change by themselves (counters, random state): never compared.
VOLATILE = re.compile(
    r"^(fs\.(dentry-state|file-nr|inode-nr|inode-state|aio-nr|quota\..*)|kernel\.(random\..*|ns_last_pid|pty\.nr|"
    r"sched_domain\..*|perf_event_max_sample_rate)|net\.netfilter\.nf_conntrack_count|"
    r"net\.ipv4\.tcp_mem|net\.ipv4\.udp_mem|vm\.stat_refresh|kernel\.hung_task_.*|"
    r"fs\.binfmt_misc\..*|dev\.cdrom\..*)$")
# The kubelet's kernel tunables (protectKernelDefaults: false makes it set them).
KUBELET_SYSCTLS = ["vm.overcommit_memory", "vm.panic_on_oom", "kernel.panic", "kernel.panic_on_oops",
                   "kernel.keys.root_maxkeys", "kernel.keys.root_maxbytes"]
TABLES = ["filter", "nat", "mangle", "raw", "security"]
CGROUP_ROOT = "/sys/fs/cgroup"
CGROUP_PREFIX = "apigw-testenv-node"
# Directories the kubelet or containerd may make outside target/testenv/ (the kubelet links each
# container's log into /var/log/containers whatever its podLogsDir).
HOST_DIRS = ["/run/containerd", "/var/log/containers", "/var/log/pods", "/var/lib/kubelet", "/etc/kubernetes",
             "/var/lib/cni", "/opt/cni"]


def sh(*cmd: str, check: bool = False) -> str:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        return ""
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {proc.stderr}")
    return proc.stdout if proc.returncode == 0 else ""


def sysctls() -> dict[str, str]:
    out = {}
    for line in sh("sysctl", "-a").splitlines():
        key, sep, value = line.partition(" = ")
        if sep and not VOLATILE.match(key):
            out[key] = value
    return out


def iptables(family: str) -> dict[str, dict[str, list[str]]]:
    """{table: {chain: [rule, ...]}} of `iptables -S` (or ip6tables)."""
    tool = "iptables" if family == "v4" else "ip6tables"
    out: dict[str, dict[str, list[str]]] = {}
    for table in TABLES:
        text = sh(tool, "-w", "5", "-t", table, "-S")
        if not text:
            continue
        chains: dict[str, list[str]] = {}
        for line in text.splitlines():
            parts = line.split()
            if parts[:1] in (["-P"], ["-N"]):
                chains.setdefault(parts[1], [])
                if parts[0] == "-P":
                    chains[parts[1]].append(line)
            elif parts[:1] == ["-A"]:
                chains.setdefault(parts[1], []).append(line)
        out[table] = chains
    return out


def links() -> list[str]:
    return sorted(l.split("@")[0] for l in re.findall(r"^\d+: ([^:]+):", sh("ip", "-o", "link", "show"), re.M))


def netns() -> list[str]:
    d = Path("/var/run/netns")
    return sorted(p.name for p in d.iterdir()) if d.is_dir() else []


def snapshot_now() -> dict:
    return {"sysctl": sysctls(), "iptables": {f: iptables(f) for f in ("v4", "v6")}, "links": links(),
            "netns": netns(), "run_containerd": os.path.exists("/run/containerd"),
            "dirs": {d: os.path.exists(d) for d in HOST_DIRS}}


def before_path(state: Path) -> Path:
    return state / "host-before.json"


def snapshot(state: Path) -> None:
    state.mkdir(parents=True, exist_ok=True)
    path = before_path(state)
    if path.exists():
        # A snapshot of a node that was never brought down: keep the older (truer) one.
        return
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(snapshot_now(), indent=1, sort_keys=True))
    tmp.replace(path)


def restore(state: Path) -> None:
    path = before_path(state)
    if not path.exists():
        return
    before = json.loads(path.read_text())
    for key in KUBELET_SYSCTLS:
        was = before["sysctl"].get(key)
        if was is not None and sysctls().get(key) != was:
            Path("/proc/sys/" + key.replace(".", "/")).write_text(was + "\n")
    for family in ("v4", "v6"):
        tool = "iptables" if family == "v4" else "ip6tables"
        then = before["iptables"].get(family, {})
        now = iptables(family)
        for table, chains in now.items():
            old = then.get(table, {})
            # Rules that were added to chains that were there before.
            for chain, rules in chains.items():
                if chain in old:
                    for rule in rules:
                        if rule.startswith("-A ") and rule not in old[chain]:
                            sh(tool, "-w", "5", "-t", table, *rule_args("-D", rule))
            # Chains that were not there: flush all, then delete all.
            new = [c for c in chains if c not in old]
            for chain in new:
                sh(tool, "-w", "5", "-t", table, "-F", chain)
            for chain in new:
                sh(tool, "-w", "5", "-t", table, "-X", chain)
    for name in set(netns()) - set(before["netns"]):
        if name.startswith("cni-"):
            p = f"/var/run/netns/{name}"
            sh("umount", p)
            try:
                os.unlink(p)
            except OSError:
                pass
    for name in set(links()) - set(before["links"]):
        sh("ip", "link", "delete", name)
    # Links into target/testenv/ (the kubelet's /var/log/containers/*.log).
    logs = Path("/var/log/containers")
    if logs.is_dir():
        for link in logs.iterdir():
            if link.is_symlink() and os.readlink(link).startswith(str(state)):
                link.unlink()
    # Directories that were not there: the kubelet's hard-wired ones (its device-plugin socket
    # in /var/lib/kubelet/device-plugins, whatever its root dir), containerd's /run/containerd.
    import shutil
    for d, existed in before.get("dirs", {}).items():
        if not existed and os.path.isdir(d) and not mounts_under(d):
            shutil.rmtree(d, ignore_errors=True)
    if not before.get("run_containerd"):
        remove_empty_tree(Path("/run/containerd"))
    path.unlink()


def rule_args(op: str, rule: str) -> list[str]:
    import shlex
    args = shlex.split(rule)
    return [op, *args[1:]]


def remove_empty_tree(path: Path) -> None:
    if not path.is_dir():
        return
    for child in sorted(path.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if child.is_dir() and not child.is_symlink():
            try:
                child.rmdir()
            except OSError:
                pass
    try:
        path.rmdir()
    except OSError:
        pass


def mounts_under(prefix: str) -> list[str]:
    out = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].encode().decode("unicode_escape")
        if point == prefix or point.startswith(prefix.rstrip("/") + "/"):
            out.append(point)
    return out


def node_cgroups() -> list[str]:
    found = []
    root = Path(CGROUP_ROOT)
    if not root.is_dir():
        return found
    for hierarchy in root.iterdir():
        if hierarchy.is_dir():
            for d in hierarchy.glob(CGROUP_PREFIX + "*"):
                found.append(str(d))
    return found


def node_processes(state: Path) -> list[str]:
    out = []
    me = os.getpid()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == me:
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            cgroup = (proc / "cgroup").read_text()
        except OSError:
            continue
        if not cmdline:
            continue
        if str(state) in cmdline or CGROUP_PREFIX in cgroup:
            out.append(f"{proc.name}: {cmdline}")
    return out


def check(state: Path) -> int:
    problems: list[str] = []
    problems += [f"process: {p}" for p in node_processes(state)]
    problems += [f"mount: {m}" for m in mounts_under(str(state))]
    problems += [f"cgroup: {c}" for c in node_cgroups()]
    path = before_path(state)
    baseline = state / "host-baseline.json"
    if path.exists():
        problems.append(f"{path} is still there: the node was not brought down (make testenv-down)")
    elif baseline.exists():
        before = json.loads(baseline.read_text())
        now = snapshot_now()
        for key, value in before["sysctl"].items():
            if key in now["sysctl"] and now["sysctl"][key] != value:
                problems.append(f"sysctl {key} = {now['sysctl'][key]} (was {value})")
        for family in ("v4", "v6"):
            for table, chains in now["iptables"][family].items():
                old = before["iptables"][family].get(table, {})
                for chain, rules in chains.items():
                    if chain not in old:
                        problems.append(f"ip{'6' if family == 'v6' else ''}tables -t {table}: chain {chain}")
                    else:
                        problems += [f"ip{'6' if family == 'v6' else ''}tables -t {table}: {r}" for r in rules if r not in old[chain]]
        problems += [f"network link {l}" for l in set(now["links"]) - set(before["links"])]
        problems += [f"network namespace {n}" for n in set(now["netns"]) - set(before["netns"])]
        if now["run_containerd"] and not before["run_containerd"]:
            problems.append("/run/containerd")
        for d, existed in before.get("dirs", {}).items():
            if os.path.exists(d) and not existed:
                problems.append(f"directory {d}")
        logs = Path("/var/log/containers")
        if logs.is_dir():
            problems += [f"log link {l}" for l in logs.iterdir() if l.is_symlink() and os.readlink(l).startswith(str(state))]
    else:
        problems.append(f"no baseline {baseline}: hack/testenv-up.sh with TESTENV_NODE=1 writes it")
    for p in problems:
        print(p)
    return 1 if problems else 0


def main() -> None:
    if len(sys.argv) != 3 or sys.argv[1] not in ("snapshot", "restore", "check"):
        sys.exit(__doc__)
    state = Path(sys.argv[2]).resolve()
    if sys.argv[1] == "snapshot":
        snapshot(state)
        # The baseline stays after down, for `check`.
        (state / "host-baseline.json").write_text(before_path(state).read_text())
    elif sys.argv[1] == "restore":
        restore(state)
    else:
        sys.exit(check(state))


if __name__ == "__main__":
    main()
