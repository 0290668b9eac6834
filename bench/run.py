#!/usr/bin/env python3
"""`make bench`: how fast, how frugal and how big the operator is at scale.

    make testenv-up && . target/testenv/env.sh
    PY=$(hack/emulator/setup-venv.sh)
    "$PY" bench/run.py                      # N=1000 integrations across A=10 REST APIs
    "$PY" bench/run.py -n 10000             # the 10,000-object run (the change phase alone is >= 1000 s)

What it does, against the test environment's API server (KUBECONFIG) and a private API Gateway
emulator it starts on a free port (so that its call counts and quota are not shared with other
test runs):

 0. builds the operator (cargo build --release; --no-build skips) and creates N integrations
    across A REST APIs in the emulator with boto3 (one resource + POST method each);
 1. rollout, quota on: the emulator enforces AWS's 10 rps / burst 40 and the operator runs with
    its defaults (--aws-rps 10 --aws-burst 40). The N manifests are applied (server-side apply,
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
 5. operator peak RSS (VmHWM) and CPU seconds (utime+stime) from /proc/PID/{status,stat}.

Prints a table with the targets and writes target/bench/<stamp>-n<N>.json (and latest.json).
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", "--objects", type=int, default=int(os.environ.get("BENCH_OBJECTS", 1000)))
    ap.add_argument("-a", "--apis", type=int, default=int(os.environ.get("BENCH_APIS", 10)))
    ap.add_argument("--resync-period", type=float, default=None,
                    help="drift phase period in seconds (default max(60, N/100))")
    ap.add_argument("--concurrency", type=int, default=None, help="operator --concurrency (default: the operator's)")
    ap.add_argument("--binary", type=Path, default=REPO / "target" / "release" / "apigw-operator")
    ap.add_argument("--no-build", action="store_true", help="do not run cargo build --release")
    ap.add_argument("--skip", action="append", default=[], choices=["latency", "drift", "stages"],
                    help="skip a phase")
    ap.add_argument("--settle", type=int, default=10,
                    help="stage phase: the ApiGatewayStages' settleSeconds (default 10)")
    ap.add_argument("--keep", action="store_true", help="keep the namespace and its objects")
    ap.add_argument("--apply-threads", type=int, default=16)
    ap.add_argument("--trickle", type=int, default=50, help="single changes timed one by one (latency phase)")
    args = ap.parse_args()
    n, a = args.objects, args.apis
    if n < a or a < 1:
        ap.error("need at least one object per API")
    period = args.resync_period or max(60.0, n / 100.0)
    timeout_scale = max(1.0, n / 1000)

    envkit.need_env("KUBECONFIG")
    if not args.no_build:
        log("cargo build --release")
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=REPO, check=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    run_dir = OUT / f"{stamp}-n{n}"
    run_dir.mkdir(parents=True, exist_ok=True)
    kube = envkit.Kube()
    envkit.install_crd()
    ns = f"bench-{secrets.token_hex(3)}"
    kube.ensure_namespace(ns)
    log(f"namespace {ns}; logs in {run_dir}")

    emulator = envkit.Emulator(run_dir / "emulator.log")
    operators: list[envkit.Operator] = []
    tracker: envkit.Tracker | None = None
    result: dict = {
        "command": " ".join(["bench/run.py", *sys.argv[1:]]),
        "objects": n, "apis": a, "resync_period": period, "machine": machine(), "git": git_rev(),
        "started": stamp, "binary": str(args.binary), "phases": {},
    }
    extra_flags = ["--concurrency", str(args.concurrency)] if args.concurrency else []

    def start_operator(name: str, *flags: str) -> envkit.Operator:
        op = envkit.Operator(args.binary, ns, emulator.url, run_dir / f"{name}.log",
                             "--log-format", "json", *extra_flags, *flags, name=name)
        operators.append(op)
        return op

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

        # 1. Rollout with AWS's quota on.
        emulator.faults(**QUOTA)
        emulator.reset_calls()
        t = time.monotonic()
        applied = envkit.apply_all(kube, manifests(1), args.apply_threads)
        log(f"applied {n} manifests (generation 1) in {time.monotonic() - t:.1f}s")
        op1 = start_operator("op1-quota")
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
            "what": "every manifest changed once (2 patch ops each) → all Ready; quota on (10 rps, burst 40)",
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
    finally:
        if tracker:
            tracker.stop()
        for op in operators:
            op.stop()
        emulator.stop()
        if not args.keep:
            try:
                kube.delete_all(ns, envkit.STAGES)
                kube.delete_all(ns)
                kube.delete_namespace(ns)
            except Exception as e:  # leave it; say so
                log(f"could not delete namespace {ns}: {e}")
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
    rows.append((f"change: all Ready (quota 10 rps/40)", f"{ch['seconds']:.1f} s = {ch['ratio_to_floor']:.2f}× floor {floor:.0f} s "
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
    usages = [(k, v["operator"]) for k, v in p.items() if isinstance(v, dict) and v.get("operator")]
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
