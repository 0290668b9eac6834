#!/usr/bin/env python3
"""Operator memory at N objects, and what the allocator does to it.

    PY=$(hack/emulator/setup-venv.sh); . target/testenv/env.sh
    "$PY" bench/memory.py -n 10000

Creates N integrations (A REST APIs) in a private emulator and N matching manifests, runs the
operator once (quota off) until every object is Ready (so each has its status), then starts one
operator process per variant over those N synced objects and samples its VmRSS / VmHWM once its
startup reads are over and again after `--settle` seconds. Variants differ only in environment
(`_RJEM_MALLOC_CONF`, which overrides the jemalloc settings compiled into the binary, see
src/main.rs); the default variant is the operator as shipped.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import envkit  # noqa: E402
from envkit import REPO, KitError  # noqa: E402

VARIANTS = {
    "default": {},
    "tcache:false": {"_RJEM_MALLOC_CONF": "tcache:false"},
    "narenas:4,dirty_decay_ms:10000": {"_RJEM_MALLOC_CONF": "narenas:4,dirty_decay_ms:10000"},
}

def log(msg: str) -> None:
    print(f"[memory {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", "--objects", type=int, default=10000)
    ap.add_argument("-a", "--apis", type=int, default=10)
    ap.add_argument("--settle", type=float, default=30.0)
    ap.add_argument("--binary", type=Path, default=REPO / "target" / "release" / "apigw-operator")
    args = ap.parse_args()
    n, a = args.objects, args.apis
    envkit.need_env("KUBECONFIG")
    out_dir = REPO / "target" / "bench" / f"memory-{time.strftime('%Y%m%dT%H%M%S')}-n{n}"
    out_dir.mkdir(parents=True, exist_ok=True)
    kube = envkit.Kube()
    envkit.install_crd()
    ns = f"benchmem-{secrets.token_hex(3)}"
    kube.ensure_namespace(ns)
    emulator = envkit.Emulator(out_dir / "emulator.log")
    tracker = envkit.Tracker(kube, ns)
    results: dict = {"objects": n, "apis": a, "variants": {}}
    try:
        per_api = [n // a + (1 if i < n % a else 0) for i in range(a)]
        targets = envkit.create_integrations(
            emulator, a, per_api,
            lambda api, i: {"type": "HTTP", "integrationHttpMethod": "POST", "uri": f"https://b{api}.example.com/r{i}"})
        names = [f"i{k:05d}" for k in range(n)]
        objs = [envkit.manifest(nm, ns, t, type="HTTP", integrationHttpMethod="POST", timeoutInMillis=29000,
                                uri=f"https://b{t['api']}.example.com/r{t['index']}")
                for nm, t in zip(names, targets)]
        applied = envkit.apply_all(kube, objs)
        log(f"{n} objects applied; first sync (quota off)")
        op = envkit.Operator(args.binary, ns, emulator.url, out_dir / "sync.log", "--aws-rps", "0", name="sync")
        tracker.wait_ready(names, {k: g for k, (_, g) in applied.items()}, 600 + n * 0.2)
        results["first_sync"] = op.stop()
        log(f"first sync: {results['first_sync']}")
        for label, env in VARIANTS.items():
            op = envkit.Operator(args.binary, ns, emulator.url, out_dir / f"{label}.log", "--aws-rps", "0",
                                 name=label.replace("=", "-"), env=env)
            envkit.wait_quiet(emulator, 2.0, 120)  # its startup reads are over
            first = op.sample().copy()
            time.sleep(args.settle)
            later = op.sample().copy()
            results["variants"][label] = {"after_startup": first, f"after_{args.settle:g}s_more": later}
            op.stop()
            log(f"{label}: {results['variants'][label]}")
    finally:
        tracker.stop()
        emulator.stop()
        try:
            kube.delete_all(ns)
            kube.delete_namespace(ns)
        except Exception as e:
            log(f"could not delete {ns}: {e}")
        kube.close()
    (out_dir.with_suffix(".json")).write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KitError as e:
        print(f"memory: {e}", file=sys.stderr)
        sys.exit(1)
