#!/usr/bin/env python3
"""`make bench`: how fast, how frugal and how big the operator is at scale.

    make testenv-up && . target/testenv/env.sh
    PY=$(hack/emulator/setup-venv.sh)
    "$PY" bench/run.py                      # N=1000 integrations across A=10 REST APIs
    "$PY" bench/run.py -n 10000             # the 10,000-object run (the change phase alone is >= 1000 s)
    "$PY" bench/run.py -n 100 --skip latency --skip drift --skip stages --neighbour-n 100 --shards-n 60
                                            # a quick look at the neighbour and shards phases

What it does, against the test environment's API server (KUBECONFIG) and a private API Gateway
emulator it starts on a free port (so that its call counts and quota are not shared with other
test runs):

 0. builds the operator (cargo build --release; --no-build skips) and creates N integrations
    across A REST APIs in the emulator with boto3 (one resource + POST method each);
 1. rollout, quota on: the emulator enforces AWS's 10 rps / burst 40 (and GetResources' own 5 per
    2 s inside it) and the operator runs with the whole account at a fixed rate (--aws-rps 10
    --aws-burst 40 --aws-adaptive-rate=false, not its defaults: so that the figures stay
    comparable with the runs before the defaults became 5 rps, adaptive). The N manifests are applied (server-side apply,
    16 threads), matching what AWS has; the operator starts; all Ready ("initial sync"). Then
    every manifest changes once (timeoutInMillis and a request template) and the harness waits
    until all are Ready at the new generation ("change"): time vs the floor N/10 s, AWS calls by
    operation, UpdateIntegration/N and calls/N, 429s;
 2. latency, quota off: a second operator (--aws-rps 0 = unlimited, emulator without quota)
    starts (its startup reads are counted: the cost of a restart), then every manifest changes
    again; per-object apply→Ready latency, timed by this harness (apply = when the API server
    answered the server-side apply; Ready = when a watch event showed Ready=True with
    observedGeneration == generation);
 3. drift cycle: a third operator with --resync-period P (quota off); the AWS calls of one cycle
    are counted in the window [start+0.5P, start+1.5P], which holds exactly one cycle of drift
    checks when the startup reads end before start+0.4P (checked and reported);
 4. stages: every REST API gets a stage "bench" (boto3 CreateDeployment with the emulator's
    deployment quota off, then back on at AWS's 1 per 5 s) and one ApiGatewayStage object
    (settleSeconds --settle, default 10); a fourth operator (--aws-rps 0, emulator without the
    10 rps quota, default --deployment-interval 5) adopts them, all Ready (Synced). Then every
    integration gets a new uri: CreateDeployment calls (target A, +1 per write gap longer than
    the settle time), 429s (target 0), and the time from the last apply to every stage serving
    every new uri (polled from /_emulator/served; target settle + 5.25·A + 5 s);
 5. neighbour (--skip neighbour): --neighbour-n objects (default N) in REST APIs and a namespace
    of their own, synced; the emulator's quota on (10 rps / 40) with its neighbour fault drawing
    5 rps of it (another tool on the account); every manifest changes once, and again for each
    operator setting of --neighbour-runs (a new operator each, which first syncs without the
    neighbour): "defaults" (the operator's: adaptive rate, 5 rps / 20; the targets), then for
    comparison "whole-account" (10 / 40, --aws-adaptive-rate=false) and "whole-account-adaptive"
    (10 / 40). Figures: last apply → all Ready at the new generation vs the floor N/5 s (the quota
    left; target ≤ 1.15×), the operator's 429s over its calls (/_emulator/responses and /calls
    during the rollout; ≤ 1%), the neighbour's throttled / (ok + throttled) (/_emulator/neighbour;
    ≤ 5%), lost updates (objects not Ready at the new generation by the deadline 3·floor + 60 s,
    or whose integration in AWS lacks the change, every one read with boto3; target 0), and the
    operator's apigw_quota_rate sampled every 5 s;
 6. shards (--skip shards): --shards-n objects (default 600) labelled shard=a|b|c, in a namespace
    of their own; three operators (--selector shard=X --aws-shards 3, otherwise defaults: each a
    third of 5 rps / 20), each with its own access key of the same account (so /_emulator/writes
    tells them apart); quota on (10 rps / 40); every object changes once. Figures: lost updates
    (target 0), 429s / all calls (≤ 1%), last apply → all Ready vs the floor N/5 s (printed);
 7. operator peak RSS (VmHWM) and CPU seconds (utime+stime) from /proc/PID/{status,stat}.

Prints a table with the targets and writes target/bench/<stamp>-n<N>.json (and latest.json).
Before anything else it checks that the operator binary accepts every flag the chosen phases
pass (`apigw-operator run FLAGS --help`) and fails naming the flag when it does not.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import secrets
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
import envkit  # noqa: E402
from envkit import KitError, REPO, percentile  # noqa: E402

OUT = REPO / "target" / "bench"

# Targets (the numbers).
T_CALLS_PER_CHANGE = 1.05
T_ROLLOUT_FACTOR = 1.10
T_RSS_MIB = 64.0
QUOTA = {"quota_rps": 10, "quota_burst": 40}
PAGE = 500
# The stage phase: AWS's CreateDeployment quota in the emulator (1 per 5 s per account and Region)
# and what the operator's default --deployment-interval 5 spends per deployment (5 s + 5%).
STAGE = "bench"
STAGE_FAULTS = {"deployment_interval": 5.0, "deployment_burst": 1}
OP_DEPLOY_SECONDS = 5.25
# The change phase measures rollouts at the account quota's floor: the whole account, a fixed rate.
WHOLE_ACCOUNT = ("--aws-rps", "10", "--aws-burst", "40")
FLOOR_FLAGS = (*WHOLE_ACCOUNT, "--aws-adaptive-rate=false")
# The neighbour phase: another tool on the account draws 5 of its 10 rps (the emulator's
# neighbour fault); what the operator may use is the rest, 5 rps.
NEIGHBOUR_RPS = 5
NEIGHBOUR_FAULTS = {**QUOTA, "neighbour_rps": NEIGHBOUR_RPS}
QUOTA_LEFT = QUOTA["quota_rps"] - NEIGHBOUR_RPS
T_NEIGHBOUR_429 = 0.05  # of the neighbour's requests
T_OPERATOR_429 = 0.01  # of the operator's calls
T_NEIGHBOUR_ROLLOUT = 1.15  # × N / QUOTA_LEFT
# Each run of the neighbour phase: (operator flags, what it is). The first is the one with
# targets; the others are for comparison.
NEIGHBOUR_RUNS = {
    "defaults": ((), "the operator's defaults (adaptive rate on, --aws-rps 5 --aws-burst 20)"),
    "whole-account": (FLOOR_FLAGS, "without adaptation, whole account "
                                   "(--aws-rps 10 --aws-burst 40 --aws-adaptive-rate=false)"),
    "whole-account-adaptive": (WHOLE_ACCOUNT, "adaptive on, whole account (--aws-rps 10 --aws-burst 40)"),
}
# The shards phase: three operators, one per label value, each with a third of the defaults.
SHARDS = ("a", "b", "c")
OPERATOR_DEFAULT_RPS = 5.0  # the operator's --aws-rps default: what the shards share in all


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def machine() -> dict:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kib = 0
    try:
        mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        pass
    rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
    return {"cpu": cpu, "cpus": os.cpu_count(), "mem_gib": round(mem_kib / 1048576, 1),
            "kernel": platform.release(), "python": platform.python_version(), "rustc": rustc}


def git_rev() -> str:
    p = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"], capture_output=True, text=True)
    return p.stdout.strip() or "?"


def total(calls: dict[str, int]) -> int:
    return sum(calls.values())


def wait_stages(kube: envkit.Kube, ns: str, names: list[str], timeout: float,
                deployments: dict[str, str] | None = None) -> tuple[float, dict[str, dict]]:
    """Polls the ApiGatewayStage objects until each is Ready=True with reason Synced for its
    generation (and, when given, status.deploymentId == deployments[name]); returns
    (time.monotonic() then, the objects by name). Raises KitError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        items = {o["metadata"]["name"]: o for o in kube.list(ns, envkit.STAGES)["items"]}
        waiting = {}
        for name in names:
            obj = items.get(name)
            cond = envkit.ready_condition(obj) if obj else None
            ok = bool(cond and cond.get("status") == "True" and cond.get("reason") == "Synced")
            if ok and deployments and (obj.get("status") or {}).get("deploymentId") != deployments.get(name):
                ok = False
            if not ok:
                waiting[name] = (cond or {}).get("reason"), (cond or {}).get("message", "")[:200]
        now = time.monotonic()
        if not waiting:
            return now, items
        if now > deadline:
            raise KitError(f"{len(waiting)} of {len(names)} ApiGatewayStages not Ready (Synced) after "
                           f"{timeout:.0f}s: {dict(list(waiting.items())[:3])}")
        time.sleep(0.25)


def wait_served(emulator: envkit.Emulator, want: dict[str, dict[str, str]], deadline: float,
                every: float = 0.25) -> tuple[dict[str, float], dict[str, dict]]:
    """Polls /_emulator/served/{api}/bench until every stage serves every uri of want[api]
    ({"<path> POST": uri}) or time.monotonic() passes `deadline`. Returns the moment each stage
    was first seen serving them all, and for the stages that never did, what they lacked."""
    done: dict[str, float] = {}
    lacking: dict[str, dict] = {}
    while True:
        for rid, uris in want.items():
            if rid in done:
                continue
            served = emulator.served(rid, STAGE) or {}
            have = served.get("integrations") or {}
            stale = [k for k, uri in uris.items() if (have.get(k) or {}).get("uri") != uri]
            if stale:
                lacking[rid] = {"deploymentId": served.get("deploymentId"), "stale": len(stale),
                                "e.g.": stale[:3]}
            else:
                done[rid] = time.monotonic()
                lacking.pop(rid, None)
        if len(done) == len(want) or time.monotonic() > deadline:
            return done, lacking
        time.sleep(every)


def micro_time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def preflight(binary: Path, skip: list[str], neighbour_runs: list[str]) -> None:
    """Fails at once, naming the flag, when the operator binary does not accept a flag a phase
    needs (a binary built before the flag existed), instead of minutes into the run."""
    needs: list[tuple[str, tuple[str, ...]]] = [("change (always run)", FLOOR_FLAGS)]
    if "neighbour" not in skip:
        needs += [(f"neighbour ({r})", NEIGHBOUR_RUNS[r][0]) for r in neighbour_runs]
    if "shards" not in skip:
        needs.append(("shards", ("--selector", "shard=a", "--aws-shards", str(len(SHARDS)))))
    problems = []
    for phase, flags in needs:
        error = envkit.flags_accepted(binary, *flags)
        if error:
            problems.append(f"  {phase}: `{binary.name} run {' '.join(flags)}`: {error}")
    if problems:
        raise KitError(
            f"the operator binary {binary} rejects flags the benchmark needs:\n" + "\n".join(problems)
            + "\nBuild one that has them (cargo build --release, or run without --no-build), pass "
              "another with --binary, or leave the phase out (--skip neighbour, --skip shards)."
        )


class ObjectSet:
    """n integrations in `apis` REST APIs of their own, in a namespace of their own with a
    readiness tracker, and their manifests by generation: generation 1 matches what AWS was given;
    generation g >= 2 changes timeoutInMillis (29000 - 100·g) and a request template ({"v": g}),
    two patch operations."""

    def __init__(self, kube: envkit.Kube, emulator: envkit.Emulator, namespace: str, n: int, apis: int,
                 prefix: str, labels: Callable[[int], dict[str, str]] | None = None):
        self.kube, self.emulator, self.ns, self.n, self.prefix = kube, emulator, namespace, n, prefix
        kube.ensure_namespace(namespace)
        per_api = [n // apis + (1 if i < n % apis else 0) for i in range(apis)]
        self.targets = envkit.create_integrations(
            emulator, apis, per_api, lambda api, i: {"type": "HTTP", "integrationHttpMethod": "POST",
                                                     "uri": self.uri(api, i)},
            name_prefix=f"bench-{prefix}")
        self.names = [f"{prefix}-{k:05d}" for k in range(n)]
        self.labels = [labels(k) if labels else {} for k in range(n)]
        self.tracker = envkit.Tracker(kube, namespace)

    def uri(self, api: int, i: int) -> str:
        return f"https://{self.prefix}{api}.example.com/r{i}"

    @staticmethod
    def changed(gen: int) -> dict:
        """The fields generation `gen` sets besides generation 1's."""
        if gen < 2:
            return {}
        return {"timeoutInMillis": 29000 - 100 * gen, "requestTemplates": {"application/json": json.dumps({"v": gen})}}

    def manifests(self, gen: int) -> list[dict]:
        out = []
        for name, tg, labels in zip(self.names, self.targets, self.labels):
            spec = {"type": "HTTP", "integrationHttpMethod": "POST", "timeoutInMillis": 29000,
                    "uri": self.uri(tg["api"], tg["index"]), **self.changed(gen)}
            obj = envkit.manifest(name, self.ns, tg, **spec)
            if labels:
                obj["metadata"]["labels"] = dict(labels)
            out.append(obj)
        return out

    def lacking(self, gen: int, threads: int = 8) -> dict[str, str]:
        """Every integration whose AWS state lacks generation `gen`'s change (read with boto3;
        call it with the emulator's quota off): name -> what is wrong."""
        from concurrent.futures import ThreadPoolExecutor

        want = self.changed(gen)
        aws = self.emulator.boto(max_pool=threads * 2)

        def check(item: tuple[str, dict]) -> tuple[str, str | None]:
            name, tg = item
            try:
                got = aws.get_integration(restApiId=tg["restApiId"], resourceId=tg["resourceId"], httpMethod="POST")
            except Exception as e:  # noqa: BLE001 - reported as lacking, with the error
                return name, f"GetIntegration failed: {e}"
            for key, value in want.items():
                if got.get(key) != value:
                    return name, f"{key}: {got.get(key)!r}, want {value!r}"
            return name, None

        with ThreadPoolExecutor(threads) as pool:
            return {name: why for name, why in pool.map(check, zip(self.names, self.targets)) if why}


def quota_rates(ops: list[envkit.Operator]) -> dict[str, dict[str, float]]:
    """Each operator's apigw_quota_rate series now ({} for one that did not answer)."""
    out = {}
    for op in ops:
        try:
            out[op.name] = envkit.metric_series(envkit.parse_metrics(op.metrics()), "apigw_quota_rate")
        except Exception:  # noqa: BLE001 - a busy or stopped operator: no sample
            out[op.name] = {}
    return out


def operator_metrics(op: envkit.Operator) -> dict:
    """The figures of an operator's own metrics the phases record."""
    try:
        parsed = envkit.parse_metrics(op.metrics())
    except Exception as e:  # noqa: BLE001
        return {"error": str(e)}
    return {"aws_throttles_total": envkit.metric_sum(parsed, "apigw_aws_throttles_total"),
            "aws_calls_total": envkit.metric_sum(parsed, "apigw_aws_calls_total"),
            "quota_rate": envkit.metric_series(parsed, "apigw_quota_rate"),
            "quota_tokens": envkit.metric_series(parsed, "apigw_quota_tokens")}


def wait_all_ready(tracker: envkit.Tracker, names: list[str], generations: dict[str, int], deadline: float,
                   ops: list[envkit.Operator], t0: float, every: float = 5.0) -> tuple[float | None, list[str], list]:
    """Polls until every name is Ready at its generation or time.monotonic() passes `deadline`,
    sampling the operators' apigw_quota_rate every `every` seconds. Returns (the moment all were
    Ready or None, the names not Ready then, [[seconds since t0, {operator: {series: rate}}]])."""
    samples: list = []
    last_sample = last_report = 0.0
    while True:
        missing = tracker.not_ready(names, generations)
        now = time.monotonic()
        if not missing:
            return now, [], samples
        if now > deadline:
            return None, missing, samples
        if ops and now - last_sample >= every:
            samples.append([round(now - t0, 1), quota_rates(ops)])
            last_sample = now
        if now - last_report > 10:
            log(f"  {len(names) - len(missing)}/{len(names)} Ready")
            last_report = now
        time.sleep(0.1)


def rate_range(samples: list) -> dict[str, list[float]]:
    """{operator/series: [min, max]} over the samples of wait_all_ready."""
    out: dict[str, list[float]] = {}
    for _, by_op in samples:
        for op, series in by_op.items():
            for key, value in series.items():
                lo_hi = out.setdefault(f"{op}/{key}" if key else op, [value, value])
                lo_hi[0], lo_hi[1] = min(lo_hi[0], value), max(lo_hi[1], value)
    return out


def fraction(part: float, whole: float) -> float:
    return part / whole if whole else 0.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", "--objects", type=int, default=int(os.environ.get("BENCH_OBJECTS", 1000)))
    ap.add_argument("-a", "--apis", type=int, default=int(os.environ.get("BENCH_APIS", 10)))
    ap.add_argument("--resync-period", type=float, default=None,
                    help="drift phase period in seconds (default max(60, N/100))")
    ap.add_argument("--concurrency", type=int, default=None, help="operator --concurrency (default: the operator's)")
    ap.add_argument("--binary", type=Path, default=REPO / "target" / "release" / "apigw-operator")
    ap.add_argument("--no-build", action="store_true", help="do not run cargo build --release")
    ap.add_argument("--skip", action="append", default=[],
                    choices=["latency", "drift", "stages", "neighbour", "shards", "create"], help="skip a phase")
    ap.add_argument("--neighbour-n", type=int, default=None,
                    help="neighbour phase: objects (default: -n, i.e. 1000 unless -n says otherwise)")
    ap.add_argument("--neighbour-runs", default=",".join(NEIGHBOUR_RUNS),
                    help=f"neighbour phase: the operator settings to run, comma-separated, of "
                         f"{', '.join(NEIGHBOUR_RUNS)} (default all; the first listed has the targets)")
    ap.add_argument("--shards-n", type=int, default=600, help="shards phase: objects (default 600)")
    ap.add_argument("--create-n", type=int, default=None,
                    help="create phase: objects (default: -n, i.e. 1000 unless -n says otherwise)")
    ap.add_argument("--settle", type=int, default=10,
                    help="stage phase: the ApiGatewayStages' settleSeconds (default 10)")
    ap.add_argument("--keep", action="store_true", help="keep the namespace and its objects")
    ap.add_argument("--apply-threads", type=int, default=16)
    ap.add_argument("--trickle", type=int, default=50, help="single changes timed one by one (latency phase)")
    args = ap.parse_args()
    n, a = args.objects, args.apis
    if n < a or a < 1:
        ap.error("need at least one object per API")
    nb_n = args.neighbour_n if args.neighbour_n is not None else n
    nb_runs = [r.strip() for r in args.neighbour_runs.split(",") if r.strip()]
    if "neighbour" not in args.skip:
        if nb_n < a:
            ap.error("--neighbour-n: need at least one object per API")
        unknown = [r for r in nb_runs if r not in NEIGHBOUR_RUNS]
        if unknown or not nb_runs:
            ap.error(f"--neighbour-runs: unknown {unknown}; choose from {', '.join(NEIGHBOUR_RUNS)}")
    if "shards" not in args.skip and args.shards_n < max(a, len(SHARDS)):
        ap.error("--shards-n: need at least one object per API and per shard")
    period = args.resync_period or max(60.0, n / 100.0)
    timeout_scale = max(1.0, n / 1000)

    envkit.need_env("KUBECONFIG")
    if not args.no_build:
        log("cargo build --release")
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=REPO, check=True)
    preflight(args.binary, args.skip, nb_runs)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    run_dir = OUT / f"{stamp}-n{n}"
    run_dir.mkdir(parents=True, exist_ok=True)
    kube = envkit.Kube()
    envkit.install_crd()
    ns = f"bench-{secrets.token_hex(3)}"
    kube.ensure_namespace(ns)
    namespaces = [ns]  # the phases with object sets of their own add theirs
    log(f"namespace {ns}; logs in {run_dir}")

    emulator = envkit.Emulator(run_dir / "emulator.log")
    operators: list[envkit.Operator] = []
    tracker: envkit.Tracker | None = None
    trackers: list[envkit.Tracker] = []
    result: dict = {
        "command": " ".join(["bench/run.py", *sys.argv[1:]]),
        "objects": n, "apis": a, "resync_period": period, "machine": machine(), "git": git_rev(),
        "started": stamp, "binary": str(args.binary), "phases": {},
    }
    extra_flags = ["--concurrency", str(args.concurrency)] if args.concurrency else []

    def start_operator(name: str, *flags: str, namespace: str | None = None,
                       env: dict[str, str] | None = None) -> envkit.Operator:
        op = envkit.Operator(args.binary, namespace or ns, emulator.url, run_dir / f"{name}.log",
                             "--log-format", "json", *extra_flags, *flags, name=name, env=env)
        operators.append(op)
        return op

    def stop_operator(op: envkit.Operator) -> dict:
        usage = op.stop()
        operators.remove(op)
        return usage

    try:
        # 0. The integrations, in AWS (the emulator).
        per_api = [n // a + (1 if i < n % a else 0) for i in range(a)]
        t = time.monotonic()
        base = {"type": "HTTP", "integrationHttpMethod": "POST", "timeoutInMillis": 29000}
        targets = envkit.create_integrations(
            emulator, a, per_api,
            lambda api, i: {"type": "HTTP", "integrationHttpMethod": "POST",
                            "uri": f"https://backend{api}.example.com/r{i}"})
        log(f"created {n} integrations in {a} REST APIs in {time.monotonic() - t:.1f}s")
        names = [f"i{k:05d}" for k in range(n)]

        def manifests(gen: int, uri_tag: str | None = None) -> list[dict]:
            out = []
            for name, tg in zip(names, targets):
                uri = f"https://backend{tg['api']}.example.com/r{tg['index']}"
                spec = dict(base, uri=f"{uri}/{uri_tag}" if uri_tag else uri)
                if gen >= 2:
                    spec["timeoutInMillis"] = 20000 if gen == 2 else 15000
                    spec["requestTemplates"] = {"application/json": json.dumps({"v": gen})}
                out.append(envkit.manifest(name, ns, tg, **spec))
            return out

        tracker = envkit.Tracker(kube, ns)
        progress = lambda done, all_: log(f"  {done}/{all_} Ready")  # noqa: E731

        def stage_phase() -> dict:
            settle = args.settle
            api_ids = list(dict.fromkeys(tg["restApiId"] for tg in targets))
            # Set-up. A stage on every REST API, made by the harness with boto3 while the
            # emulator's deployment quota is off. Deployments carry whole-second createdDates and
            # the operator adopts the stage's deployment as "the last one": wait past the last
            # integration write first, so that the adoption deploys nothing.
            time.sleep(1.5)
            emulator.faults(deployment_interval=0)
            aws = emulator.boto()
            for rid in api_ids:
                aws.create_deployment(restApiId=rid, stageName=STAGE, description="bench set-up")
            emulator.faults(**STAGE_FAULTS)  # AWS's 1 per 5 s again (a full bucket); no 10 rps quota
            emulator.reset_calls()
            op4 = start_operator("op4-stages", "--aws-rps", "0")
            tracker.wait_ready(names, None, 300 * timeout_scale, progress)
            stage_names = [f"s{k:02d}" for k in range(len(api_ids))]
            t0 = time.monotonic()
            for sname, rid in zip(stage_names, api_ids):
                kube.apply(envkit.stage_manifest(sname, ns, rid, STAGE, settleSeconds=settle))
            t_synced, _ = wait_stages(kube, ns, stage_names, 120 + settle + 2 * OP_DEPLOY_SECONDS * a)
            envkit.wait_quiet(emulator, 2.0, 120)
            setup_calls = emulator.calls()
            setup = {"seconds": round(t_synced - t0, 2), "calls": setup_calls,
                     "create_deployment": setup_calls.get("CreateDeployment", 0)}
            log(f"stages: {a} ApiGatewayStages Synced in {t_synced - t0:.1f}s; operator start-up and "
                f"adoption calls {setup_calls}")

            # Measure: a new uri for every integration, so that every stage must deploy.
            before, before_resp = emulator.calls(), emulator.responses()
            objs = manifests(last_gen, uri_tag="s1")
            want: dict[str, dict[str, str]] = {rid: {} for rid in api_ids}
            for obj, tg in zip(objs, targets):
                want[tg["restApiId"]][f"{tg['path']} POST"] = obj["spec"]["uri"]
            wall_start = datetime.now(timezone.utc)
            t_start = time.monotonic()
            applied = envkit.apply_all(kube, objs, args.apply_threads)
            t_last_apply = max(ta for ta, _ in applied.values())
            target_s = settle + OP_DEPLOY_SECONDS * a + 5
            log(f"stages: applied {n} new uris in {t_last_apply - t_start:.1f}s; polling what the stages serve")
            served_at, lacking = wait_served(emulator, want, t_last_apply + max(300.0, 4 * target_s + n * 0.05))
            t_served = max(served_at.values()) if len(served_at) == len(want) else None
            # When the writes were done: every integration Ready at its new generation.
            t_int = tracker.wait_ready(names, {k: g for k, (_, g) in applied.items()}, 120 * timeout_scale,
                                       progress)
            snap = tracker.snapshot()
            writes_done = max(snap[k].ready_at.get(g, t_int) for k, (_, g) in applied.items())
            # Later deployments would show now: wait for the stages' status and for AWS quiet for
            # longer than the settle time plus two deployment intervals.
            stage_error = None
            items: dict[str, dict] = {}
            try:
                served_ids = {sname: (emulator.served(rid, STAGE) or {}).get("deploymentId")
                              for sname, rid in zip(stage_names, api_ids)}
                _, items = wait_stages(kube, ns, stage_names, 120 + settle + 2 * OP_DEPLOY_SECONDS * a,
                                       served_ids if t_served is not None else None)
            except KitError as e:
                stage_error = str(e)
                items = {o["metadata"]["name"]: o for o in kube.list(ns, envkit.STAGES)["items"]}
            envkit.wait_quiet(emulator, settle + 2 * OP_DEPLOY_SECONDS, 300 + settle)
            calls = envkit.diff(emulator.calls(), before)
            after_resp = emulator.responses()
            dep_before, dep_after = before_resp.get("CreateDeployment", {}), after_resp.get("CreateDeployment", {})
            dep_status = {k: dep_after.get(k, 0) - dep_before.get(k, 0) for k in sorted(set(dep_after) | set(dep_before))
                          if dep_after.get(k, 0) - dep_before.get(k, 0)}
            deployments = calls.get("CreateDeployment", 0)
            http429 = envkit.count_status(after_resp, "429") - envkit.count_status(before_resp, "429")
            # Gaps longer than the settle time between consecutive writes to one REST API (each
            # allows one more deployment), from the integrations' status.lastWriteTime.
            writes: dict[str, list[datetime]] = {rid: [] for rid in api_ids}
            for obj in kube.list(ns)["items"]:
                w = micro_time((obj.get("status") or {}).get("lastWriteTime"))
                rid = obj["spec"].get("restApiId")
                if w and rid in writes and w >= wall_start.replace(microsecond=0):
                    writes[rid].append(w)
            gaps = 0
            spans = []
            for ws in writes.values():
                ws.sort()
                gaps += sum(1 for x, y in zip(ws, ws[1:]) if (y - x).total_seconds() > settle)
                if ws:
                    spans.append((ws[-1] - ws[0]).total_seconds())
            allowed = a + gaps
            deployed_at = sorted(d for d in (micro_time((o.get("status") or {}).get("deployedAt"))
                                             for o in items.values()) if d)
            # status.deployedAt is stamped before the deployment waits for its quota token, so the
            # spacing of the deployments themselves shows in when each stage was seen serving.
            spacing = [round((y - x).total_seconds(), 2) for x, y in zip(deployed_at, deployed_at[1:])]
            seen = sorted(served_at.values())
            served_spacing = [round(y - x, 2) for x, y in zip(seen, seen[1:])]
            published = {k: (o.get("status") or {}).get("published") for k, o in sorted(items.items())}
            out = {
                "what": (f"every integration gets a new uri; {a} ApiGatewayStages (settleSeconds {settle}) "
                         "must each serve every change; emulator: CreateDeployment 1 per 5 s, no 10 rps quota; "
                         "operator --aws-rps 0, default --deployment-interval"),
                "settle_seconds": settle, "stage_name": STAGE, "emulator_faults": STAGE_FAULTS,
                "operator_flags": op4.args[1:], "setup": setup,
                "apply_seconds": round(t_last_apply - t_start, 2),
                "seconds": round(t_served - t_last_apply, 2) if t_served is not None else None,
                "target_seconds": round(target_s, 2),
                "integrations_ready_seconds": round(writes_done - t_last_apply, 2),
                "served_after_apply": {rid: round(t - t_last_apply, 2) for rid, t in sorted(served_at.items(), key=lambda kv: kv[1])},
                "not_served": lacking,
                "create_deployment": deployments, "create_deployment_responses": dep_status,
                "target_deployments": allowed, "exactly_a": deployments == a,
                "write_gaps_over_settle": gaps, "write_span_max_seconds": round(max(spans), 2) if spans else None,
                "served_spacing_seconds": served_spacing, "status_deployed_at_spacing_seconds": spacing,
                "http_429": http429, "calls": calls, "published": published,
                "stage_status_error": stage_error,
                "operator": op4.stop(),
            }
            operators.remove(op4)
            log(f"stages: {deployments} CreateDeployment (target {allowed}), 429s {http429}, last apply → all served "
                f"{out['seconds']}s (target {target_s:.1f}s), integrations Ready after {out['integrations_ready_seconds']}s")
            return out

        def neighbour_phase() -> dict:
            """nb_n objects of their own, synced; the emulator's quota on with a neighbour drawing
            5 of the 10 rps; every manifest changes once, for each operator setting of nb_runs."""
            nns = f"{ns}-nb"
            namespaces.append(nns)
            emulator.faults()  # set-up with boto3: no quota
            t = time.monotonic()
            objs = ObjectSet(kube, emulator, nns, nb_n, a, "nb")
            trackers.append(objs.tracker)
            log(f"neighbour: created {nb_n} integrations in {a} REST APIs in {time.monotonic() - t:.1f}s "
                f"(namespace {nns})")
            emulator.faults(**QUOTA)
            applied = envkit.apply_all(kube, objs.manifests(1), args.apply_threads)
            gens = {k: g for k, (_, g) in applied.items()}
            floor = nb_n / QUOTA_LEFT
            out: dict = {
                "what": (f"{nb_n} synced objects; emulator quota {QUOTA['quota_rps']} rps / burst "
                         f"{QUOTA['quota_burst']} with a neighbour drawing {NEIGHBOUR_RPS} rps of it; every "
                         f"manifest changed once; rollout = last apply → all Ready at the new generation, "
                         f"floor N/{QUOTA_LEFT} s (the quota left)"),
                "objects": nb_n, "namespace": nns, "emulator_faults": NEIGHBOUR_FAULTS,
                "floor_seconds": floor, "runs": {},
            }
            gen = 1
            for key in nb_runs:
                gen += 1
                try:
                    out["runs"][key], gens = neighbour_run(objs, key, gen, gens, floor)
                except KitError as e:  # the other runs still run; the table says what failed
                    log(f"neighbour [{key}] FAILED: {e}")
                    out["runs"][key] = {"error": str(e), "what": NEIGHBOUR_RUNS[key][1]}
                    for op in [o for o in operators if o.name == f"op-nb-{key}"]:
                        stop_operator(op)
                    # Whatever was applied: wait for it at the next run's sync.
                    gens = {o["metadata"]["name"]: o["metadata"].get("generation", 0)
                            for o in kube.list(nns)["items"]}
            return out

        def neighbour_run(objs: ObjectSet, key: str, gen: int, gens: dict[str, int],
                          floor: float) -> tuple[dict, dict[str, int]]:
            """One operator setting of the neighbour phase; returns its figures and the
            generations applied."""
            flags, what = NEIGHBOUR_RUNS[key]
            nb_n = objs.n
            # Start and sync without the neighbour (the objects are Ready: startup reads only).
            emulator.faults(**QUOTA)
            emulator.reset_calls()
            op = start_operator(f"op-nb-{key}", *flags, namespace=objs.ns)
            t_sync0 = op.started
            t_synced = objs.tracker.wait_ready(objs.names, gens, 600 + nb_n * 0.5)
            envkit.wait_quiet(emulator, 2.0, 300)
            sync = {"seconds": round(t_synced - t_sync0, 2), "calls": emulator.calls(),
                    "http_429": envkit.count_status(emulator.responses(), "429")}
            # Measure: a fresh bucket, the neighbour drawing, every manifest changed.
            emulator.faults(**NEIGHBOUR_FAULTS)
            emulator.reset_calls()
            t_start = time.monotonic()
            applied = envkit.apply_all(kube, objs.manifests(gen), args.apply_threads)
            gens = {k: g for k, (_, g) in applied.items()}
            t_last_apply = max(ta for ta, _ in applied.values())
            log(f"neighbour [{key}]: applied {nb_n} changes in {t_last_apply - t_start:.1f}s; waiting for Ready")
            t_all, missing, samples = wait_all_ready(
                objs.tracker, objs.names, gens, t_last_apply + 3 * floor + 60, [op], t_last_apply)
            nb = emulator.neighbour()  # the neighbour's counts over the rollout
            nb = {k: v for k, v in nb.items() if k not in ("previous", "threads")}
            snap = objs.tracker.snapshot()
            done = [snap[k].ready_at[g] for k, g in gens.items() if k in snap and g in snap[k].ready_at]
            t_end = max(done) if t_all is not None and done else None
            try:
                envkit.wait_quiet(emulator, 1.0, 60)  # the last answers are in
            except KitError:
                pass
            calls, resp = emulator.calls(), emulator.responses()
            metrics = operator_metrics(op)
            usage = stop_operator(op)
            emulator.faults()  # the neighbour stops; the check below is not throttled
            lacking = objs.lacking(gen)
            lost = sorted(set(missing) | set(lacking))
            op_calls, op_429 = total(calls), envkit.count_status(resp, "429")
            nb_draws = nb["ok"] + nb["throttled"]
            seconds = round(t_end - t_last_apply, 2) if t_end is not None else None
            run = {
                "what": what, "operator_flags": list(flags), "generation": gen,
                "sync": sync, "apply_seconds": round(t_last_apply - t_start, 2),
                "seconds": seconds,
                "seconds_from_first_apply": round(t_end - t_start, 2) if t_end is not None else None,
                "ratio_to_floor": round((t_end - t_last_apply) / floor, 3) if t_end is not None else None,
                "deadline_seconds": round(3 * floor + 60, 1),
                "calls": calls, "calls_total": op_calls, "responses": resp,
                "operator_429": op_429, "operator_429_fraction": round(fraction(op_429, op_calls), 4),
                "neighbour": nb, "neighbour_429_fraction": round(fraction(nb["throttled"], nb_draws), 4),
                "not_ready": len(missing), "aws_lacking": len(lacking), "lost_updates": len(lost),
                "lost_examples": {k: lacking.get(k, "not Ready at the new generation") for k in lost[:5]},
                "operator_metrics": metrics, "quota_rate_range": rate_range(samples),
                "quota_rate_samples": samples, "operator": usage,
            }
            log(f"neighbour [{key}]: last apply → all Ready {seconds}s (floor {floor:.0f}s), operator 429s "
                f"{op_429}/{op_calls}, neighbour throttled {nb['throttled']}/{nb_draws}, lost {len(lost)}")
            return run, gens

        def shards_phase() -> dict:
            """args.shards_n objects of their own labelled shard=a|b|c, three operators (one per
            shard, --aws-shards 3: a third of the defaults each), quota on; every object changes once."""
            n_sh = args.shards_n
            sns = f"{ns}-sh"
            namespaces.append(sns)
            emulator.faults()  # set-up with boto3: no quota
            t = time.monotonic()
            objs = ObjectSet(kube, emulator, sns, n_sh, a, "sh", labels=lambda k: {"shard": SHARDS[k % len(SHARDS)]})
            trackers.append(objs.tracker)
            log(f"shards: created {n_sh} integrations in {a} REST APIs in {time.monotonic() - t:.1f}s (namespace {sns})")
            shard_of = {name: labels["shard"] for name, labels in zip(objs.names, objs.labels)}
            emulator.faults(**QUOTA)
            emulator.reset_calls()
            applied = envkit.apply_all(kube, objs.manifests(1), args.apply_threads)
            gens = {k: g for k, (_, g) in applied.items()}
            # One access key per shard (all map to the emulator's default account: one quota), so
            # that /_emulator/writes tells the shards apart.
            keys = {sh: f"AKIABENCHSHARD{sh.upper()}00000"[:20] for sh in SHARDS}
            ops = [start_operator(f"op-shard-{sh}", "--selector", f"shard={sh}", "--aws-shards", str(len(SHARDS)),
                                  namespace=sns, env={"AWS_ACCESS_KEY_ID": keys[sh]})
                   for sh in SHARDS]
            t_sync0 = min(op.started for op in ops)
            t_synced = objs.tracker.wait_ready(objs.names, gens, 600 + n_sh * 0.5)
            envkit.wait_quiet(emulator, 2.0, 300)
            sync_calls, sync_resp = emulator.calls(), emulator.responses()
            sync = {"seconds": round(t_synced - t_sync0, 2), "calls": sync_calls,
                    "http_429": envkit.count_status(sync_resp, "429")}
            floor = n_sh / OPERATOR_DEFAULT_RPS
            emulator.faults(**QUOTA)  # a full bucket
            emulator.reset_calls()
            t_start = time.monotonic()
            applied = envkit.apply_all(kube, objs.manifests(2), args.apply_threads)
            gens = {k: g for k, (_, g) in applied.items()}
            t_last_apply = max(ta for ta, _ in applied.values())
            log(f"shards: applied {n_sh} changes in {t_last_apply - t_start:.1f}s; waiting for Ready")
            t_all, missing, samples = wait_all_ready(objs.tracker, objs.names, gens,
                                                     t_last_apply + 3 * floor + 60, ops, t_last_apply)
            snap = objs.tracker.snapshot()
            by_shard: dict[str, list[float]] = {sh: [] for sh in SHARDS}
            for k, g in gens.items():
                if k in snap and g in snap[k].ready_at:
                    by_shard[shard_of[k]].append(snap[k].ready_at[g])
            t_end = max(max(v) for v in by_shard.values() if v) if t_all is not None else None
            try:
                envkit.wait_quiet(emulator, 1.0, 60)
            except KitError:
                pass
            calls, resp = emulator.calls(), emulator.responses()
            writes = [w for w in emulator.writes() if w["op"] == "UpdateIntegration"]
            metrics = {op.name: operator_metrics(op) for op in ops}
            usage = {op.name: stop_operator(op) for op in ops}
            emulator.faults()
            lacking = objs.lacking(2)
            lost = sorted(set(missing) | set(lacking))
            all_calls, http429 = total(calls), envkit.count_status(resp, "429")
            per_shard = {}
            for sh in SHARDS:
                ts = sorted(w["t"] for w in writes if w["key"] == keys[sh])
                per_shard[sh] = {
                    "objects": sum(1 for v in shard_of.values() if v == sh),
                    "seconds": round(max(by_shard[sh]) - t_last_apply, 2) if by_shard[sh] else None,
                    "update_integration": len(ts),
                    "write_span_seconds": round(ts[-1] - ts[0], 2) if len(ts) > 1 else None,
                }
            seconds = round(t_end - t_last_apply, 2) if t_end is not None else None
            out = {
                "what": (f"{n_sh} objects labelled shard=a|b|c, three operators (--selector shard=X "
                         f"--aws-shards {len(SHARDS)}, otherwise defaults), emulator quota {QUOTA['quota_rps']} rps / "
                         f"burst {QUOTA['quota_burst']}; every object changed once; floor N/{OPERATOR_DEFAULT_RPS:g} s "
                         f"(the shards share the default --aws-rps)"),
                "objects": n_sh, "namespace": sns, "sync": sync,
                "apply_seconds": round(t_last_apply - t_start, 2), "seconds": seconds,
                "floor_seconds": floor, "ratio_to_floor": round((t_end - t_last_apply) / floor, 3) if t_end else None,
                "deadline_seconds": round(3 * floor + 60, 1),
                "calls": calls, "calls_total": all_calls, "responses": resp,
                "http_429": http429, "http_429_fraction": round(fraction(http429, all_calls), 4),
                "not_ready": len(missing), "aws_lacking": len(lacking), "lost_updates": len(lost),
                "lost_examples": {k: lacking.get(k, "not Ready at the new generation") for k in lost[:5]},
                "per_shard": per_shard, "operator_metrics": metrics,
                "quota_rate_range": rate_range(samples), "operator": usage,
            }
            log(f"shards: last apply → all Ready {seconds}s (floor {floor:.0f}s), 429s {http429}/{all_calls}, "
                f"lost {len(lost)}")
            return out

        # 1. Rollout with AWS's quota on.
        emulator.faults(**QUOTA)
        emulator.reset_calls()
        t = time.monotonic()
        applied = envkit.apply_all(kube, manifests(1), args.apply_threads)
        log(f"applied {n} manifests (generation 1) in {time.monotonic() - t:.1f}s")
        op1 = start_operator("op1-quota", *FLOOR_FLAGS)
        t0 = op1.started
        t_ready = tracker.wait_ready(names, {k: g for k, (_, g) in applied.items()}, 600 + n * 0.5,
                                     progress)
        calls = emulator.calls()
        responses = emulator.responses()
        result["phases"]["initial_sync"] = {
            "what": "operator start → all N Ready; manifests already match AWS; quota on",
            "seconds": round(t_ready - t0, 2), "floor_seconds": n / 10,
            "calls": calls, "calls_total": total(calls), "calls_per_object": round(total(calls) / n, 3),
            "http_429": envkit.count_status(responses, "429"),
        }
        log(f"initial sync: {t_ready - t0:.1f}s, calls {calls}")
        time.sleep(5)  # both token buckets refill (40 tokens at 10/s)
        emulator.faults(**QUOTA)  # a full emulator bucket, as after any idle period
        before, before_resp = emulator.calls(), emulator.responses()
        t_start = time.monotonic()
        applied = envkit.apply_all(kube, manifests(2), args.apply_threads)
        last_gen = 2
        t_applied = time.monotonic()
        log(f"applied {n} changes in {t_applied - t_start:.1f}s; waiting for Ready")
        t_end = tracker.wait_ready(names, {k: g for k, (_, g) in applied.items()}, 600 + n * 0.5, progress)
        envkit.wait_quiet(emulator, 1.0, 60)  # the last answers are in
        calls = envkit.diff(emulator.calls(), before)
        resp = emulator.responses()
        http429 = envkit.count_status(resp, "429") - envkit.count_status(before_resp, "429")
        snap = tracker.snapshot()
        lat = [snap[k].ready_at[g] - ta for k, (ta, g) in applied.items() if g in snap[k].ready_at]
        rollout = t_end - t_start
        result["phases"]["change"] = {
            "what": ("every manifest changed once (2 patch ops each) → all Ready; quota on (10 rps, burst 40); "
                     "operator " + " ".join(FLOOR_FLAGS)),
            "operator_flags": op1.args[1:],
            "seconds": round(rollout, 2), "apply_seconds": round(t_applied - t_start, 2),
            "floor_seconds": n / 10, "ratio_to_floor": round(rollout / (n / 10), 3),
            "calls": calls, "calls_total": total(calls),
            "update_per_change": round(calls.get("UpdateIntegration", 0) / n, 4),
            "calls_per_change": round(total(calls) / n, 4),
            "http_429": http429,
            "latency_p50": round(percentile(lat, 50), 2), "latency_p99": round(percentile(lat, 99), 2),
            "latency_samples": len(lat),
        }
        log(f"change: {rollout:.1f}s (floor {n / 10:.0f}s), calls {calls}, 429s {http429}")
        result["phases"]["change"]["operator"] = op1.stop()
        operators.remove(op1)

        # 2. Latency without quota.
        if "latency" not in args.skip:
            emulator.faults()
            emulator.reset_calls()
            op2 = start_operator("op2-noquota", "--aws-rps", "0")
            last, startup_calls = envkit.wait_quiet(emulator, 3.0, 300 * timeout_scale)
            startup_seconds = last - op2.started
            log(f"restart: startup reads {startup_calls} in {startup_seconds:.1f}s")
            before = emulator.calls()
            t_start = time.monotonic()
            applied = envkit.apply_all(kube, manifests(3), args.apply_threads)
            last_gen = 3
            t_applied = time.monotonic()
            t_end = tracker.wait_ready(names, {k: g for k, (_, g) in applied.items()}, 300 * timeout_scale, progress)
            envkit.wait_quiet(emulator, 1.0, 60)
            calls = envkit.diff(emulator.calls(), before)
            snap = tracker.snapshot()
            lat = [snap[k].ready_at[g] - ta for k, (ta, g) in applied.items() if g in snap[k].ready_at]
            result["phases"]["restart"] = {
                "what": "a new operator process (quota off) over N Ready objects: its startup AWS calls",
                "seconds": round(startup_seconds, 2), "calls": startup_calls,
                "calls_total": total(startup_calls),
            }
            result["phases"]["latency"] = {
                "what": "every manifest changed once; quota off (--aws-rps 0, emulator without quota)",
                "seconds": round(t_end - t_start, 2), "apply_seconds": round(t_applied - t_start, 2),
                "calls": calls, "calls_per_change": round(total(calls) / n, 4),
                "latency_p50": round(percentile(lat, 50), 3), "latency_p90": round(percentile(lat, 90), 3),
                "latency_p99": round(percentile(lat, 99), 3), "latency_max": round(max(lat), 3),
                "latency_samples": len(lat),
            }
            log(f"latency: p50 {percentile(lat, 50):.2f}s p99 {percentile(lat, 99):.2f}s")
            # One change at a time (an idle operator, quota off): what a single kubectl apply sees.
            trickle: list[float] = []
            gen4 = manifests(3)
            for k in range(min(args.trickle, n)):
                obj = gen4[k * n // min(args.trickle, n)]
                obj["spec"]["timeoutInMillis"] = 100 + k
                name = obj["metadata"]["name"]
                done = envkit.apply_all(kube, [obj], 1)
                ta, g = done[name]
                t_ready = tracker.wait_ready([name], {name: g}, 60, every=0.005)
                trickle.append(t_ready - ta)
                time.sleep(0.2)
            result["phases"]["latency"]["single_change"] = {
                "what": "one object changed at a time, 0.2 s apart; quota off",
                "samples": len(trickle), "latency_p50": round(percentile(trickle, 50), 4),
                "latency_p99": round(percentile(trickle, 99), 4), "latency_max": round(max(trickle), 4),
            }
            log(f"single changes: p50 {percentile(trickle, 50) * 1000:.0f} ms p99 {percentile(trickle, 99) * 1000:.0f} ms")
            result["phases"]["latency"]["operator"] = op2.stop()
            operators.remove(op2)

        # 3. One drift cycle.
        if "drift" not in args.skip:
            emulator.faults()
            emulator.reset_calls()
            op3 = start_operator("op3-drift", "--aws-rps", "0", "--resync-period", str(period))
            t0 = op3.started
            last, startup_calls = envkit.wait_quiet(emulator, 2.0, 0.5 * period)
            startup_span = last - t0
            time.sleep(max(0.0, t0 + 0.5 * period - time.monotonic()))
            c0 = emulator.calls()
            time.sleep(max(0.0, t0 + 1.5 * period - time.monotonic()))
            c1 = emulator.calls()
            cycle = envkit.diff(c1, c0)
            # Each REST API also has its root resource "/".
            reads_target = sum(math.ceil((k + 1) / PAGE) for k in per_api)
            result["phases"]["drift"] = {
                "what": f"AWS calls in [start+0.5P, start+1.5P] with --resync-period P={period:g}s, quota off",
                "period": period, "startup_seconds": round(startup_span, 2),
                "startup_calls": startup_calls,
                "window_valid": startup_span < 0.4 * period,
                "calls": cycle, "calls_total": total(cycle), "target": reads_target,
                "operator": op3.stop(),
            }
            operators.remove(op3)
            log(f"drift cycle: {cycle} (target {reads_target})")

        # 4. Stages: one CreateDeployment per stage and rollout, under CreateDeployment's quota.
        if "stages" not in args.skip:
            try:
                result["phases"]["stages"] = stage_phase()
            except KitError as e:  # keep the other phases' figures; the table says what failed
                log(f"stage phase FAILED: {e}")
                result["phases"]["stages"] = {"error": str(e), "settle_seconds": args.settle}

        def create_phase() -> dict:
            """create_n methods without integrations in A REST APIs of their own; as many
            CreateOrUpdate manifests; one operator with its defaults, quota on: every
            integration is created. Calls per created integration."""
            n_cr = args.create_n if args.create_n is not None else n
            cns = f"{ns}-cr"
            namespaces.append(cns)
            emulator.faults()  # set-up with boto3: no quota
            kube.ensure_namespace(cns)
            per_api = [n_cr // a + (1 if i < n_cr % a else 0) for i in range(a)]
            targets = envkit.create_integrations(emulator, a, per_api, lambda api, i: None, name_prefix="bench-cr")
            names = [f"cr-{k:05d}" for k in range(n_cr)]
            uri = {name: f"https://cr{tg['api']}.example.com/r{tg['index']}" for name, tg in zip(names, targets)}
            cr_tracker = envkit.Tracker(kube, cns)
            trackers.append(cr_tracker)
            emulator.faults(**QUOTA)
            emulator.reset_calls()
            objs = [envkit.manifest(name, cns, tg, type="HTTP", integrationHttpMethod="POST", uri=uri[name],
                                    managementPolicy="CreateOrUpdate")
                    for name, tg in zip(names, targets)]
            applied = envkit.apply_all(kube, objs, args.apply_threads)
            gens = {k: g for k, (_, g) in applied.items()}
            t0 = time.monotonic()
            op = start_operator("op-create", namespace=cns)
            floor = n_cr / OPERATOR_DEFAULT_RPS
            done, not_ready, _ = wait_all_ready(cr_tracker, names, gens, t0 + 3 * floor + 60, [], t0)
            seconds = None if done is None else done - t0
            calls = emulator.calls()
            responses = emulator.responses()
            out = {
                "what": (f"{n_cr} POST methods without an integration in {a} REST APIs; {n_cr} manifests with "
                         f"managementPolicy CreateOrUpdate; one operator with its defaults; emulator quota "
                         f"{QUOTA['quota_rps']} rps / burst {QUOTA['quota_burst']}"),
                "objects": n_cr, "apis": a, "seconds": seconds, "floor_seconds": floor,
                "not_ready": len(not_ready),
                "calls": calls, "api_calls": total(calls) - calls.get("GetCallerIdentity", 0),
                "http_429": sum(v.get("429", 0) for v in responses.values()),
                "operator": stop_operator(op),
            }
            out["calls_per_created"] = out["api_calls"] / n_cr
            out["listing_allowance"] = a  # A·pages: one page per API at these sizes
            emulator.faults()
            aws = emulator.boto()
            missing = 0
            for name, tg in zip(names, targets):
                try:
                    got = aws.get_integration(restApiId=tg["restApiId"], resourceId=tg["resourceId"], httpMethod="POST")
                    missing += got.get("uri") != uri[name]
                except Exception:  # noqa: BLE001 - not created
                    missing += 1
            out["not_created"] = missing
            return out

        # 5. A neighbour on the account. 6. Shards. 7. Creating. Each with objects, REST APIs and
        # a namespace of its own, so the operators of the phases above never saw them.
        for phase, run_phase in (("neighbour", neighbour_phase), ("shards", shards_phase),
                                 ("create", create_phase)):
            if phase in args.skip:
                continue
            try:
                result["phases"][phase] = run_phase()
            except KitError as e:
                log(f"{phase} phase FAILED: {e}")
                result["phases"][phase] = {"error": str(e)}
            finally:
                for op in [o for o in operators if o.name.startswith(("op-nb-", "op-shard-", "op-create"))]:
                    stop_operator(op)
    finally:
        if tracker:
            tracker.stop()
        for tr in trackers:
            tr.stop()
        for op in list(operators):
            op.stop()
        emulator.stop()
        if not args.keep:
            for name in namespaces:
                try:
                    kube.delete_all(name, envkit.STAGES)
                    kube.delete_all(name)
                    kube.delete_namespace(name)
                except Exception as e:  # leave it; say so
                    log(f"could not delete namespace {name}: {e}")
        kube.close()

    report(result)
    path = run_dir.with_suffix(".json")
    path.write_text(json.dumps(result, indent=2) + "\n")
    (OUT / "latest.json").write_text(json.dumps(result, indent=2) + "\n")
    log(f"wrote {path}")
    return 0


def verdict(value: float, target: float, lower_is_better: bool = True, unit: str = "") -> str:
    ok = value <= target if lower_is_better else value >= target
    if ok:
        return "ok"
    over = value - target
    rel = f" ({over / target * 100:+.0f}%)" if target else ""
    return f"MISSED by {over:.3g}{unit}{rel}"


def percent(x: float) -> str:
    return f"{x * 100:.1f}%"


def neighbour_rows(nb: dict) -> list[tuple[str, str, str, str]]:
    """The neighbour phase's rows: targets for the first run (the operator's defaults), the
    same figures for the comparison runs, their verdicts marked "comparison"."""
    if "error" in nb:
        return [("neighbour: phase", f"FAILED: {nb['error'][:160]}", "-", "FAILED")]
    rows = []
    floor = nb["floor_seconds"]
    for i, (key, run) in enumerate(nb["runs"].items()):
        tag = f"neighbour [{key}]"
        mark = (lambda v: v) if i == 0 else (lambda v: f"comparison: {v}")
        if "error" in run:
            rows.append((f"{tag}: run", f"FAILED: {run['error'][:160]}", "-", mark("FAILED")))
            continue
        if run["seconds"] is None:
            value, ok = (f"not all Ready within {run['deadline_seconds']:.0f} s ({run['not_ready']} not)",
                         "MISSED: not all Ready")
        else:
            value = f"{run['seconds']:.1f} s = {run['ratio_to_floor']:.2f}× floor {floor:.0f} s"
            ok = verdict(run["seconds"], floor * T_NEIGHBOUR_ROLLOUT, unit=" s")
        rows.append((f"{tag}: last apply → all Ready (5 of 10 rps left)", value,
                     f"≤ {T_NEIGHBOUR_ROLLOUT}× N/{QUOTA_LEFT} = {floor * T_NEIGHBOUR_ROLLOUT:.0f} s", mark(ok)))
        rows.append((f"{tag}: operator 429s / its calls",
                     f"{run['operator_429']} / {run['calls_total']} = {percent(run['operator_429_fraction'])}",
                     f"≤ {percent(T_OPERATOR_429)}", mark(verdict(run["operator_429_fraction"], T_OPERATOR_429))))
        nbc = run["neighbour"]
        rows.append((f"{tag}: neighbour's 429s ({NEIGHBOUR_RPS} rps)",
                     f"{nbc['throttled']} / {nbc['ok'] + nbc['throttled']} = {percent(run['neighbour_429_fraction'])}",
                     f"≤ {percent(T_NEIGHBOUR_429)}", mark(verdict(run["neighbour_429_fraction"], T_NEIGHBOUR_429))))
        rows.append((f"{tag}: lost updates",
                     f"{run['lost_updates']} (not Ready {run['not_ready']}, AWS lacks the change {run['aws_lacking']})",
                     "0", mark(verdict(run["lost_updates"], 0))))
    return rows


def shards_rows(sh: dict) -> list[tuple[str, str, str, str]]:
    if "error" in sh:
        return [("shards: phase", f"FAILED: {sh['error'][:160]}", "-", "FAILED")]
    rows = [("shards: lost updates (3 operators, --aws-shards 3)",
             f"{sh['lost_updates']} (not Ready {sh['not_ready']}, AWS lacks the change {sh['aws_lacking']})",
             "0", verdict(sh["lost_updates"], 0)),
            ("shards: 429s / all calls", f"{sh['http_429']} / {sh['calls_total']} = {percent(sh['http_429_fraction'])}",
             f"≤ {percent(T_OPERATOR_429)}", verdict(sh["http_429_fraction"], T_OPERATOR_429))]
    if sh["seconds"] is None:
        value = f"not all Ready within {sh['deadline_seconds']:.0f} s ({sh['not_ready']} not)"
    else:
        per = ", ".join(f"{k} {v['seconds']:.0f} s" for k, v in sh["per_shard"].items() if v["seconds"] is not None)
        value = f"{sh['seconds']:.1f} s = {sh['ratio_to_floor']:.2f}× floor {sh['floor_seconds']:.0f} s ({per})"
    rows.append((f"shards: last apply → all Ready ({sh['objects']} objects)", value,
                 f"- (floor N/{OPERATOR_DEFAULT_RPS:g})", "-"))
    sy = sh["sync"]
    rows.append(("shards: 3 operators start → all Ready", f"{sy['seconds']:.1f} s, {total(sy['calls'])} calls, "
                 f"{sy['http_429']} 429s", "-", "-"))
    return rows


def create_rows(cr: dict) -> list[tuple[str, str, str, str]]:
    if "error" in cr:
        return [("create: phase", f"FAILED: {cr['error'][:160]}", "-", "FAILED")]
    target = 1.05 + cr["listing_allowance"] / cr["objects"]
    calls = {k: v for k, v in cr["calls"].items() if k != "GetCallerIdentity"}
    when = "not all Ready" if cr["seconds"] is None else f"{cr['seconds']:.1f} s (floor {cr['floor_seconds']:.0f} s)"
    return [
        (f"create: AWS calls / created integration ({cr['objects']})",
         f"{cr['calls_per_created']:.3f} {calls}", f"≤ 1.05 + A/N = {target:.3f}",
         verdict(cr["calls_per_created"], target)),
        ("create: not created / 429s", f"{cr['not_created']} / {cr['http_429']}", "0 / 0",
         verdict(cr["not_created"] + cr["http_429"], 0)),
        ("create: start → all Ready (defaults, quota on)", when, "-", "-"),
    ]


def report(r: dict) -> None:
    n, a = r["objects"], r["apis"]
    p = r["phases"]
    rows: list[tuple[str, str, str, str]] = []
    ch = p["change"]
    rows.append(("change: UpdateIntegration / change", f"{ch['update_per_change']:.3f}", f"≤ {T_CALLS_PER_CHANGE}",
                 verdict(ch["update_per_change"], T_CALLS_PER_CHANGE)))
    rows.append(("change: all AWS calls / change", f"{ch['calls_per_change']:.3f}", f"≤ {T_CALLS_PER_CHANGE}",
                 verdict(ch["calls_per_change"], T_CALLS_PER_CHANGE)))
    floor = ch["floor_seconds"]
    burst_floor = max(0.0, (n - QUOTA["quota_burst"]) / QUOTA["quota_rps"])
    rows.append(("change: all Ready (quota 10 rps/40; operator 10/40, fixed rate)", f"{ch['seconds']:.1f} s = {ch['ratio_to_floor']:.2f}× floor {floor:.0f} s "
                 f"(with the burst: {ch['seconds'] / burst_floor if burst_floor else 0:.2f}× {burst_floor:.0f} s)",
                 f"≤ {T_ROLLOUT_FACTOR}× floor = {floor * T_ROLLOUT_FACTOR:.0f} s",
                 verdict(ch["seconds"], floor * T_ROLLOUT_FACTOR, unit=" s")))
    rows.append(("change: 429 answers (self-inflicted)", str(ch["http_429"]), "0", verdict(ch["http_429"], 0)))
    init = p["initial_sync"]
    rows.append(("initial sync: start → all Ready", f"{init['seconds']:.1f} s, {init['calls_total']} calls "
                 f"({init['calls_per_object']:.2f}/object)", "-", "-"))
    rows.append(("initial sync: 429 answers", str(init["http_429"]), "0", verdict(init["http_429"], 0)))
    rows.append(("change: apply→Ready p50 / p99 (quota on)", f"{ch['latency_p50']:.1f} s / {ch['latency_p99']:.1f} s", "-", "-"))
    if "latency" in p:
        la = p["latency"]
        rows.append(("apply→Ready p50 / p99, N changes at once (quota off)", f"{la['latency_p50'] * 1000:.0f} ms / {la['latency_p99'] * 1000:.0f} ms",
                     "-", "-"))
        if "single_change" in la:
            sc = la["single_change"]
            rows.append(("apply→Ready p50 / p99, one change at a time", f"{sc['latency_p50'] * 1000:.0f} ms / "
                         f"{sc['latency_p99'] * 1000:.0f} ms ({sc['samples']} changes)", "-", "-"))
        rows.append(("quota off: N changes → all Ready", f"{la['seconds']:.1f} s ({n / la['seconds']:.0f}/s), "
                     f"{la['calls_per_change']:.3f} calls/change", "-", "-"))
        rs = p["restart"]
        rows.append(("restart: startup AWS calls", f"{rs['calls_total']} {dict(rs['calls'])}", "-", "-"))
    if "drift" in p:
        d = p["drift"]
        by = ", ".join(f"{k} {v}" for k, v in d["calls"].items()) or "none"
        per_api = [n // a + (1 if i < n % a else 0) for i in range(a)]
        rows.append(("drift: AWS calls per cycle", f"{d['calls_total']} ({by})",
                     f"A·⌈resources/500⌉ = {d['target']}", verdict(d["calls_total"], d["target"])
                     + ("" if d["window_valid"] else " (window invalid: startup too long)")))
    if "stages" in p:
        st = p["stages"]
        settle = st["settle_seconds"]
        if "error" in st:
            rows.append(("stages: phase", f"FAILED: {st['error'][:160]}", "-", "FAILED"))
        else:
            rows.append(("stages: set-up, ApiGatewayStages applied → all Synced",
                         f"{st['setup']['seconds']:.1f} s, {st['setup']['create_deployment']} CreateDeployment", "-", "-"))
            dep, allowed = st["create_deployment"], st["target_deployments"]
            gaps = st["write_gaps_over_settle"]
            rows.append((f"stages: CreateDeployment, N new uris (A={a} stages)",
                         f"{dep} ({'exactly A' if st['exactly_a'] else 'not A'}; {dict(st['create_deployment_responses'])})",
                         f"A = {a}" + (f" (+{gaps} write gaps > {settle} s: ≤ {allowed})" if gaps else ""),
                         verdict(dep, allowed)))
            target = st["target_seconds"]
            if st["seconds"] is None:
                value, ok = f"never ({len(st['not_served'])} stages not serving every change)", "MISSED: not served"
            else:
                value, ok = f"{st['seconds']:.1f} s", verdict(st["seconds"], target, unit=" s")
            ir = st["integrations_ready_seconds"]
            after = f"; {st['seconds'] - ir:.1f} s after that" if st["seconds"] is not None else ""
            rows.append(("stages: last apply → every stage serves every change",
                         f"{value} (integrations all Ready after {ir:.1f} s{after})",
                         f"≤ settle + 5.25·A + 5 = {target:.1f} s", ok))
            rows.append(("stages: CreateDeployment 429 answers", str(st["create_deployment_responses"].get("429", 0)),
                         "0", verdict(st["create_deployment_responses"].get("429", 0), 0)))
            if st["http_429"] != st["create_deployment_responses"].get("429", 0):
                rows.append(("stages: other 429 answers", str(st["http_429"] - st["create_deployment_responses"].get("429", 0)),
                             "0", "MISSED"))
    if "neighbour" in p:
        rows += neighbour_rows(p["neighbour"])
    if "shards" in p:
        rows += shards_rows(p["shards"])
    if "create" in p:
        rows += create_rows(p["create"])
    usages = []
    for k, v in p.items():
        if not isinstance(v, dict):
            continue
        if k == "shards" and isinstance(v.get("operator"), dict):
            usages += [(f"shards:{name[len('op-shard-'):]}", u) for name, u in v["operator"].items() if u]
        elif k == "neighbour":
            usages += [(f"neighbour:{rk}", run["operator"]) for rk, run in v.get("runs", {}).items()
                       if run.get("operator")]
        elif v.get("operator"):
            usages.append((k, v["operator"]))
    if usages:
        peak = max(u.get("VmHWM", 0) for _, u in usages)
        rows.append(("operator peak RSS (VmHWM)", f"{peak:.1f} MiB at {n} objects",
                     f"≤ {T_RSS_MIB:.0f} MiB at 10,000", verdict(peak, T_RSS_MIB, unit=" MiB")))
        cpu = ", ".join(f"{k} {u.get('cpu_seconds', 0):.1f}" for k, u in usages)
        rows.append(("operator CPU seconds (utime+stime)", cpu, "-", "-"))
    w = [max(len(r[i]) for r in rows + [("metric", "value", "target", "verdict")]) for i in range(4)]
    m = r["machine"]
    print(f"\napigw-operator benchmark: N={n} integrations, A={a} REST APIs, git {r['git']}")
    print(f"machine: {m['cpu']}, {m['cpus']} CPUs, {m['mem_gib']} GiB, Linux {m['kernel']}, {m['rustc']}")
    line = "| " + " | ".join(h.ljust(w[i]) for i, h in enumerate(("metric", "value", "target", "verdict"))) + " |"
    print(line)
    print("|" + "|".join("-" * (x + 2) for x in w) + "|")
    for row in rows:
        print("| " + " | ".join(c.ljust(w[i]) for i, c in enumerate(row)) + " |")
    print()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KitError as e:
        print(f"bench: {e}", file=sys.stderr)
        sys.exit(1)
