"""WSGI layer in front of moto: the /_emulator/ admin API, fault injection and call counting.

STS (AssumeRole, GetCallerIdentity: moto's) is served on the same port, so one emulator holds
several accounts, as AWS does: AssumeRole of arn:aws:iam::<account>:role/<name> hands out keys
whose API Gateway calls moto serves from that account's own state.

Admin API (never faulted, never counted):
  GET  /_emulator/calls        {"UpdateIntegration": 3, ...}   every API Gateway request received,
                                                              faulted ones included, and every
                                                              STS call (AssumeRole, ...);
                                                              ?account=<12 digits>: that account's
  GET  /_emulator/responses    {"UpdateIntegration": {"200": 2, "429": 1}, ...}  (?account= too)
  GET  /_emulator/drops        {"UpdateIntegration": 1}        connections closed by the drop fault
  GET  /_emulator/garbled      {"UpdateIntegration": 1}        2xx answers the garbage_body fault
                                                              replaced (also in /responses)
  GET  /_emulator/inflight     {"now": 0, "peak": 8}          API Gateway calls being handled
                                                              now, and the most at once since reset
  GET  /_emulator/writes       [{"t": 1764329000.1, "op": "UpdateIntegration", "key": "AKID"}, ...]
                              every write received (Create*/Update*/Put*/Delete*), with its wall
                              time and the access key id that signed it (the last 10,000), so a
                              test can tell which of several operators wrote when
  POST /_emulator/calls/reset  zero the counters above (calls, responses, drops, garbled, peak,
                              writes) and the neighbour's ok/throttled/skipped (it keeps running)
  GET  /_emulator/neighbour    the neighbour fault (below): {"rps": 5.0, "account": "123456789012",
                              "region": "us-east-1", "ok": 210, "throttled": 3, "skipped": 0,
                              "running": true, "previous": {... the same for the neighbour the
                              last config replaced, "running": false: its counts are final ...}
                              or null, "threads": 1 (neighbour threads alive in the process)};
                              without one {"rps": 0, "ok": 0, "throttled": 0, "running": false,
                              ...}
  GET  /_emulator/quota        the tokens in the quota buckets made so far, refilled to now:
                              {"account": {"123456789012 us-east-1": 37.5}, "account_rps": 10.0,
                              "account_burst": 40.0, "get_resources": {...}, "get_resources_rps":
                              2.5, "get_resources_burst": 5.0} (null where that quota is off)
  GET  /_emulator/faults       the fault config in force
  POST /_emulator/faults       replace the fault config; {} clears every fault
  GET  /_emulator/health       {"status": "ok", ...}
  GET  /_emulator/served/{restApiId}/{stageName}
                              what the stage serves: {"deploymentId": "abc", "canaryDeploymentId":
                              null, "integrations": {"/pets GET": {<GetIntegration's answer when
                              deployed, integrationResponses included>}}, "canaryIntegrations":
                              null}; 404 {"message": ...} when there is no such API or stage

Fault config keys (each optional):
  throttle        fraction 0..1 of calls answered 429 TooManyRequestsException + Retry-After
  quota_rps       token bucket refill rate (calls/s), one bucket per (account, Region) as AWS's
                  account-level quota; 429 when empty
  quota_burst     token bucket size (default 40 when quota_rps is set; quota_rps defaults to 10)
  error_5xx       fraction 0..1 of calls answered with a 5xx
  error_5xx_status  an int or a list of ints (500..599) to pick from; default [500, 503]
  latency_ms      delay added before every call is handled
  drop            fraction 0..1 of calls whose connection is closed without a response
  retry_after     seconds sent in Retry-After on 429 and 503 (default 1)
  garbage_body    fraction 0..1 of 2xx answers (204 excepted: it has no body) whose body is
                  replaced by invalid JSON after the operation took effect, like a proxy
                  corrupting the answer; counted under its status in /responses and in /garbled
  operations      list of operation names the faults above apply to (default: every operation)
  seed            seed of the random draws, for repeatable runs
  deny_accounts   list of account ids whose API Gateway calls answer 403 AccessDeniedException
                  (honours `operations`)
  expire_tokens   list of account ids whose AssumeRole keys issued before this config answer
                  403 ExpiredTokenException on API Gateway calls, and keep doing so once they
                  have (a fresh AssumeRole works); not limited by `operations`
  deny_assume_role  list of role ARN globs ("arn:aws:iam::111111111111:role/*"): AssumeRole of
                  a matching role answers 403 AccessDenied (STS's XML)
  get_resources_rps    GetResources' own quota inside the account's (AWS: 5 requests every 2 s
  get_resources_burst  per account and Region): token bucket refill rate (default 2.5/s) and size
                  (default 5), one per (account, Region); ON whenever the account quota is
                  (quota_rps/quota_burst set), and only then (either key without the quota is
                  an error); get_resources_rps 0 switches it off. Checked after the account's
                  bucket: a GetResources the account bucket refuses takes no GetResources token,
                  one this bucket refuses has spent its account token (AWS admits the call
                  against the account's rate before it looks at the operation's own limit; so
                  over-reading costs account quota too). An empty bucket answers as the account
                  quota: 429 TooManyRequestsException with Retry-After (retry_after).
  neighbour_rps   another tool on the same account: a background thread draws this many tokens a
                  second (at most 1000; 0: none) from the account quota bucket of
                  (neighbour_account, neighbour_region), evenly spaced on an absolute schedule
                  (after a CPU stall it makes up at most 1 s of draws, the rest count as
                  "skipped"). A draw that finds a token counts "ok", one that finds the bucket
                  empty "throttled" (the neighbour never retries). Needs the account quota on
                  (an error otherwise). Its draws are not requests: never in /calls, /responses,
                  /writes; see GET /_emulator/neighbour. A new config stops the thread (POST
                  /faults answers once it has ended) and starts the new config's, if any; the
                  server stops it when it stops.
  neighbour_account  12 digits; default the account dummy credentials map to (MOTO_ACCOUNT_ID,
                  else 123456789012: the tests', the benchmark's and the operator's)
  neighbour_region   default us-east-1 (the Region the tests, the benchmark and unsigned calls use)
Order: latency, then drop, then expire_tokens, then deny_accounts, then quota (the account's,
then GetResources' own), then throttle, then 5xx; the operation; garbage_body.

CreateDeployment's own quota (AWS: 1 request every 5 s per account and Region, on top of the
account's rate; ON by default, not limited by `operations`, applied after the faults above, so a
call they answered takes no token; every CreateDeployment that reaches it takes one, whatever the
operation then answers):
  deployment_interval     seconds per token (default 5.0; 0 switches the quota off)
  deployment_burst        bucket size (default 1)
  deployment_quota_scope  "account" (default: the account moto maps the access key to, plus the
                          Region of the SigV4 scope) or "access_key" (access key id + Region, so
                          several keys act as several accounts)
  An empty bucket answers 429 TooManyRequestsException "Too Many Requests" with Retry-After: the
  whole seconds until the next token (at least 1). Every POST /_emulator/faults starts with full
  buckets.

Model switches (UpdateIntegration / PutIntegration / UpdateIntegrationResponse only; not limited
by `operations`):
  ignore_paths    list of UpdateIntegration patch paths ("/timeoutInMillis",
                  "/requestParameters/integration.request.header.x-id", ...) accepted with a 200
                  but not applied: the answer and the stored integration keep those paths as
                  they were (AWS ignored an op)
  normalise       {"/uri": "https://other"}: an add/replace on that path stores this value
                  instead of the one sent (null: the field or key is removed); ignore_paths wins
  put_integration_keeps_responses
                  true: PutIntegration over an existing integration keeps its integration
                  responses (default false: they are dropped, as AWS is believed to do)
  strict_response_patch
                  true: UpdateIntegrationResponse accepts only `replace /selectionPattern` and
                  `replace /responseTemplates/{type}` of an existing content type (the pairs
                  the facts evidence); anything else is a 400 "Invalid patch path  '/x'
                  specified for op 'add'. Please choose supported operations" (default false:
                  the permissive table)
"""

from __future__ import annotations

import fnmatch
import io
import json
import math
import os
import random
import re
import socket
import threading
import time
import uuid
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from moto.core.request import Request as MotoRequest
from moto.core.routing import get_service_router

ADMIN_PREFIX = "/_emulator/"
FAKE_AUTH = (
    "AWS4-HMAC-SHA256 Credential=AKIAEMULATOR000000000/20200101/us-east-1/apigateway/aws4_request, "
    "SignedHeaders=host, Signature=0000"
)
# Unsigned STS calls (curl) go to moto's STS as the default account's.
FAKE_STS_AUTH = FAKE_AUTH.replace("/apigateway/", "/sts/")

FAULT_KEYS = {
    "throttle",
    "quota_rps",
    "quota_burst",
    "error_5xx",
    "error_5xx_status",
    "latency_ms",
    "drop",
    "retry_after",
    "operations",
    "seed",
    "garbage_body",
    "ignore_paths",
    "normalise",
    "put_integration_keeps_responses",
    "strict_response_patch",
    "deployment_interval",
    "deployment_burst",
    "deployment_quota_scope",
    "deny_accounts",
    "expire_tokens",
    "deny_assume_role",
    "get_resources_rps",
    "get_resources_burst",
    "neighbour_rps",
    "neighbour_account",
    "neighbour_region",
}
DEPLOYMENT_OPERATION = "CreateDeployment"
DEFAULT_DEPLOYMENT_INTERVAL_S = 5.0
DEFAULT_ACCOUNT = "123456789012"
# GetResources' own quota inside the account's (AWS: 5 requests every 2 seconds per account and
# Region): the defaults of get_resources_rps and get_resources_burst.
GET_RESOURCES_OPERATION = "GetResources"
DEFAULT_GET_RESOURCES_RPS = 2.5
DEFAULT_GET_RESOURCES_BURST = 5.0
# The neighbour fault: its Region when none is given (the tests' and the benchmark's), the most
# draws a second it may make, and the most overdue draws it makes up after being starved of CPU
# (one second's worth; the rest are counted as skipped).
DEFAULT_NEIGHBOUR_REGION = "us-east-1"
MAX_NEIGHBOUR_RPS = 1000.0
REGION_NAME = re.compile(r"[a-z]{2}(-[a-z]+)+-\d+")
ACCOUNT_ID = re.compile(r"\d{12}")
# The roles AssumeRole accepts: moto would take anything and serve a malformed ARN from the
# default account, which would hide a test's typo.
ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::(\d{12}):role/[\w+=,.@/-]+")
STS_NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"
EXPIRED_TOKEN_MESSAGE = "The security token included in the request is expired"

# What a garbled 2xx answer carries: truncated JSON with a wrongly typed field.
GARBAGE_BODY = b'{"type": "HTTP", "timeoutInMillis": "not-a-number"'

REASONS = {
    200: "OK", 201: "Created", 202: "Accepted", 204: "No Content", 400: "Bad Request",
    403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 429: "Too Many Requests",
    500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
    504: "Gateway Timeout",
}


class FaultConfigError(ValueError):
    pass


def _fraction(cfg: dict[str, Any], key: str) -> float:
    v = cfg.get(key, 0)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1:
        raise FaultConfigError(f"{key} must be a number between 0 and 1, got {v!r}")
    return float(v)


def _non_negative(cfg: dict[str, Any], key: str, default: float) -> float:
    v = cfg.get(key, default)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0 or math.isinf(v):
        raise FaultConfigError(f"{key} must be a non-negative number, got {v!r}")
    return float(v)


def _account_ids(cfg: dict[str, Any], key: str) -> frozenset[str]:
    v = cfg.get(key, [])
    if not isinstance(v, list) or not all(isinstance(a, str) and ACCOUNT_ID.fullmatch(a) for a in v):
        raise FaultConfigError(
            f'{key} must be a list of 12-digit account ids such as ["111111111111"], got {v!r}'
        )
    return frozenset(v)


def _role_globs(cfg: dict[str, Any], key: str) -> list[str]:
    v = cfg.get(key, [])
    if not isinstance(v, list) or not all(isinstance(g, str) and g for g in v):
        raise FaultConfigError(
            f'{key} must be a list of role ARN patterns such as ["arn:aws:iam::111111111111:role/*"], '
            f"got {v!r}"
        )
    return list(v)


def _take(buckets: dict[Any, list[float]], key: Any, size: float, rate: float) -> float:
    """Takes a token from the bucket `key` (created full: `size` tokens, `rate` per second).
    Returns 0 when one was taken, else the seconds until the next one (inf: never)."""
    now = time.monotonic()
    bucket = buckets.setdefault(key, [size, now])
    bucket[0] = min(size, bucket[0] + (now - bucket[1]) * rate)
    bucket[1] = now
    if bucket[0] >= 1:
        bucket[0] -= 1
        return 0.0
    return (1 - bucket[0]) / rate if rate > 0 else math.inf


class Faults:
    """A validated fault config with its token buckets and random source."""

    def __init__(self, cfg: dict[str, Any]):
        if not isinstance(cfg, dict):
            raise FaultConfigError("the fault config must be a JSON object")
        unknown = sorted(set(cfg) - FAULT_KEYS)
        if unknown:
            raise FaultConfigError(
                f"unknown fault key(s) {unknown}; known keys: {sorted(FAULT_KEYS)}"
            )
        self.config = dict(cfg)
        self.throttle = _fraction(cfg, "throttle")
        self.error_5xx = _fraction(cfg, "error_5xx")
        self.drop = _fraction(cfg, "drop")
        self.latency_s = _non_negative(cfg, "latency_ms", 0) / 1000.0
        if self.latency_s > 600:
            raise FaultConfigError("latency_ms must be at most 600000")
        self.retry_after = _non_negative(cfg, "retry_after", 1)
        statuses = cfg.get("error_5xx_status", [500, 503])
        if isinstance(statuses, int) and not isinstance(statuses, bool):
            statuses = [statuses]
        if (
            not isinstance(statuses, list)
            or not statuses
            or not all(isinstance(s, int) and 500 <= s <= 599 for s in statuses)
        ):
            raise FaultConfigError("error_5xx_status must be an int or a list of ints in 500..599")
        self.statuses = statuses
        ops = cfg.get("operations")
        if ops is not None and (
            not isinstance(ops, list) or not all(isinstance(o, str) for o in ops)
        ):
            raise FaultConfigError("operations must be a list of operation names")
        self.operations = set(ops) if ops is not None else None
        self.garbage_body = _fraction(cfg, "garbage_body")
        ignore = cfg.get("ignore_paths", [])
        if not isinstance(ignore, list) or not all(isinstance(p, str) and p.strip("/") for p in ignore):
            raise FaultConfigError("ignore_paths must be a list of patch paths such as \"/timeoutInMillis\"")
        normalise = cfg.get("normalise", {})
        if not isinstance(normalise, dict) or not all(k.strip("/") for k in normalise):
            raise FaultConfigError("normalise must be an object {patch path: value stored instead}")
        if any(isinstance(v, (dict, list)) for v in normalise.values()):
            raise FaultConfigError("normalise values must be strings, numbers, booleans or null")
        keeps = cfg.get("put_integration_keeps_responses", False)
        if not isinstance(keeps, bool):
            raise FaultConfigError("put_integration_keeps_responses must be true or false")
        self.ignore_paths: list[str] = list(ignore)
        self.normalise: dict[str, Any] = dict(normalise)
        self.put_integration_keeps_responses = keeps
        strict = cfg.get("strict_response_patch", False)
        if not isinstance(strict, bool):
            raise FaultConfigError("strict_response_patch must be true or false")
        self.strict_response_patch = strict
        seed = cfg.get("seed")
        self.rng = random.Random(seed)
        self.rng_lock = threading.Lock()

        self.quota = "quota_rps" in cfg or "quota_burst" in cfg
        self.rps = _non_negative(cfg, "quota_rps", 10)
        self.burst = _non_negative(cfg, "quota_burst", 40)
        if self.quota and (self.rps <= 0 and self.burst < 1):
            raise FaultConfigError("a quota needs quota_rps > 0 or quota_burst >= 1")
        # (account, region) -> [tokens, last refill]: AWS's quota is the account's, per Region.
        self.quota_buckets: dict[tuple[str, str], list[float]] = {}
        self.bucket_lock = threading.Lock()

        # GetResources' own quota, inside the account's: only with the account quota on.
        for key in ("get_resources_rps", "get_resources_burst"):
            if key in cfg and not self.quota:
                raise FaultConfigError(
                    f"{key} shapes GetResources' quota inside the account quota: set quota_rps "
                    "and/or quota_burst too"
                )
        self.get_resources_rps = _non_negative(cfg, "get_resources_rps", DEFAULT_GET_RESOURCES_RPS)
        self.get_resources_burst = _non_negative(cfg, "get_resources_burst", DEFAULT_GET_RESOURCES_BURST)
        if self.get_resources_rps > 0 and self.get_resources_burst < 1:
            raise FaultConfigError("get_resources_burst must be at least 1")
        self.get_resources_quota = self.quota and self.get_resources_rps > 0
        # (account, region) -> [tokens, last refill]
        self.get_resources_buckets: dict[tuple[str, str], list[float]] = {}

        # Another tool on the same account, drawing on its quota (started when installed).
        for key in ("neighbour_account", "neighbour_region"):
            if key in cfg and "neighbour_rps" not in cfg:
                raise FaultConfigError(f"{key} needs neighbour_rps")
        neighbour_rps = _non_negative(cfg, "neighbour_rps", 0)
        if neighbour_rps > MAX_NEIGHBOUR_RPS:
            raise FaultConfigError(f"neighbour_rps must be at most {MAX_NEIGHBOUR_RPS:g}")
        if neighbour_rps > 0 and not self.quota:
            raise FaultConfigError(
                "neighbour_rps draws on the account quota: set quota_rps and/or quota_burst too"
            )
        n_account = cfg.get("neighbour_account", os.environ.get("MOTO_ACCOUNT_ID") or DEFAULT_ACCOUNT)
        if not isinstance(n_account, str) or not ACCOUNT_ID.fullmatch(n_account):
            raise FaultConfigError(f"neighbour_account must be a 12-digit account id, got {n_account!r}")
        n_region = cfg.get("neighbour_region", DEFAULT_NEIGHBOUR_REGION)
        if not isinstance(n_region, str) or not REGION_NAME.fullmatch(n_region):
            raise FaultConfigError(f'neighbour_region must be a Region such as "us-east-1", got {n_region!r}')
        self.neighbour = (Neighbour(self, neighbour_rps, n_account, n_region)
                          if neighbour_rps > 0 else None)

        self.deny_accounts = _account_ids(cfg, "deny_accounts")
        self.expire_tokens = _account_ids(cfg, "expire_tokens")
        self.deny_assume_role = _role_globs(cfg, "deny_assume_role")
        # Set when the config is installed: AssumeRole keys numbered below it were issued
        # before it (see IssuedKeys).
        self.issued_before = 0

        self.deployment_interval = _non_negative(cfg, "deployment_interval", DEFAULT_DEPLOYMENT_INTERVAL_S)
        self.deployment_burst = _non_negative(cfg, "deployment_burst", 1)
        if self.deployment_burst < 1:
            raise FaultConfigError("deployment_burst must be at least 1")
        scope = cfg.get("deployment_quota_scope", "account")
        if scope not in ("account", "access_key"):
            raise FaultConfigError('deployment_quota_scope must be "account" or "access_key"')
        self.deployment_quota_scope = scope
        # (account or access key, region) -> [tokens, last refill]
        self.deployment_buckets: dict[tuple[str, str], list[float]] = {}

    def applies_to(self, op: str) -> bool:
        return self.operations is None or op in self.operations

    def draw(self, p: float) -> bool:
        if p <= 0:
            return False
        if p >= 1:
            return True
        with self.rng_lock:
            return self.rng.random() < p

    def pick_status(self) -> int:
        with self.rng_lock:
            return self.rng.choice(self.statuses)

    def take_deployment_token(self, key: tuple[str, str]) -> float:
        """0 when CreateDeployment may run (a token was taken), else the seconds until the
        next token."""
        if self.deployment_interval <= 0:
            return 0.0
        with self.bucket_lock:
            return _take(self.deployment_buckets, key, self.deployment_burst,
                         1.0 / self.deployment_interval)

    def take_token(self, scope: tuple[str, str]) -> bool:
        """A token of the (account, region) quota bucket `scope`; False when it is empty."""
        with self.bucket_lock:
            return _take(self.quota_buckets, scope, self.burst, self.rps) == 0

    def take_get_resources_token(self, scope: tuple[str, str]) -> bool:
        """A token of GetResources' own (account, region) bucket; False when it is empty."""
        with self.bucket_lock:
            return _take(self.get_resources_buckets, scope, self.get_resources_burst,
                         self.get_resources_rps) == 0

    def bucket_levels(self) -> dict[str, Any]:
        """The tokens in every bucket made so far, refilled to now (nothing taken), by
        "<account> <region>": what GET /_emulator/quota answers."""
        now = time.monotonic()

        def levels(buckets: dict[tuple[str, str], list[float]], size: float, rate: float) -> dict[str, float]:
            return {f"{k[0]} {k[1]}": round(min(size, tokens + (now - last) * rate), 4)
                    for k, (tokens, last) in sorted(buckets.items())}

        with self.bucket_lock:
            return {
                "account": levels(self.quota_buckets, self.burst, self.rps) if self.quota else None,
                "account_rps": self.rps if self.quota else None,
                "account_burst": self.burst if self.quota else None,
                "get_resources": (levels(self.get_resources_buckets, self.get_resources_burst,
                                         self.get_resources_rps)
                                  if self.get_resources_quota else None),
                "get_resources_rps": self.get_resources_rps if self.get_resources_quota else None,
                "get_resources_burst": self.get_resources_burst if self.get_resources_quota else None,
            }

    def denies_role(self, role_arn: str) -> bool:
        return any(fnmatch.fnmatchcase(role_arn, glob) for glob in self.deny_assume_role)


class Neighbour:
    """The `neighbour_rps` fault: a thread that, like another tool on the same account, draws
    `rps` tokens a second from the (account, region) quota bucket of the config it belongs to,
    on an absolute schedule (the k-th draw is due at start + k/rps, so it does not drift; after
    being starved of CPU it makes up at most one second of overdue draws and counts the rest as
    skipped). A draw that finds a token is `ok`, one that finds the bucket empty `throttled`
    (no retry). Its draws are not API calls: never in /calls, /responses or /writes."""

    def __init__(self, faults: Faults, rps: float, account: str, region: str) -> None:
        self.faults, self.rps, self.account, self.region = faults, rps, account, region
        self.lock = threading.Lock()
        self.ok = self.throttled = self.skipped = 0
        self.running = False
        self.stop_event = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        if self.thread is not None:
            return
        self.running = True
        self.thread = threading.Thread(target=self._run, name=f"emulator-neighbour-{self.rps:g}rps",
                                       daemon=True)
        self.thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stops the thread and waits (at most `timeout` s) until it has ended."""
        self.stop_event.set()
        if self.thread is not None and self.thread is not threading.current_thread():
            self.thread.join(timeout)

    def reset(self) -> None:
        with self.lock:
            self.ok = self.throttled = self.skipped = 0

    def status(self) -> dict[str, Any]:
        with self.lock:
            return {"rps": self.rps, "account": self.account, "region": self.region,
                    "ok": self.ok, "throttled": self.throttled, "skipped": self.skipped,
                    "running": self.running}

    def _draw(self) -> None:
        ok = self.faults.take_token((self.account, self.region))
        with self.lock:
            if ok:
                self.ok += 1
            else:
                self.throttled += 1

    def _run(self) -> None:
        period = 1.0 / self.rps
        due = time.monotonic()  # the first draw at once
        try:
            while not self.stop_event.is_set():
                now = time.monotonic()
                if now < due:
                    self.stop_event.wait(due - now)  # sleeps; wakes at once on stop()
                    continue
                late = now - due
                if late > 1.0:
                    missed = int((late - 1.0) / period)
                    if missed:
                        due += missed * period
                        with self.lock:
                            self.skipped += missed
                self._draw()
                due += period
        finally:
            with self.lock:
                self.running = False


def idle_neighbour() -> dict[str, Any]:
    return {"rps": 0, "account": None, "region": None, "ok": 0, "throttled": 0, "skipped": 0,
            "running": False}


@dataclass(frozen=True)
class Call:
    """Who made a call and what it is: the counters and the faults need all four."""

    op: str
    key: str  # the access key id that signed it ("" when unsigned)
    account: str  # the account it is served from (AssumeRole: the role's account)
    region: str  # of the SigV4 scope


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.inflight = 0  # API Gateway calls being handled; not reset (they are still running)
        self.reset()

    def reset(self) -> None:
        with self.lock:
            # Kept per account so /calls?account= can answer; the totals add them up.
            self.calls: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
            self.responses: dict[str, dict[str, dict[str, int]]] = defaultdict(
                lambda: defaultdict(lambda: defaultdict(int)))
            self.drops: dict[str, int] = defaultdict(int)
            self.garbled: dict[str, int] = defaultdict(int)
            self.writes: deque[dict[str, Any]] = deque(maxlen=10_000)
            self.peak = self.inflight

    def call(self, call: Call) -> None:
        with self.lock:
            self.calls[call.account][call.op] += 1
            if call.op.startswith(("Create", "Update", "Put", "Delete")):
                self.writes.append({"t": time.time(), "op": call.op, "key": call.key})

    def enter(self) -> None:
        with self.lock:
            self.inflight += 1
            self.peak = max(self.peak, self.inflight)

    def leave(self) -> None:
        with self.lock:
            self.inflight -= 1

    def garble(self, op: str) -> None:
        with self.lock:
            self.garbled[op] += 1

    def response(self, call: Call, status: int) -> None:
        with self.lock:
            self.responses[call.account][call.op][str(status)] += 1

    def drop(self, op: str) -> None:
        with self.lock:
            self.drops[op] += 1

    def calls_of(self, account: str | None = None) -> dict[str, int]:
        """{op: n} of one account, or of all when `account` is None."""
        out: dict[str, int] = defaultdict(int)
        with self.lock:
            for acct, ops in self.calls.items():
                if account in (None, acct):
                    for op, n in ops.items():
                        out[op] += n
        return dict(out)

    def responses_of(self, account: str | None = None) -> dict[str, dict[str, int]]:
        """{op: {status: n}} of one account, or of all when `account` is None."""
        out: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        with self.lock:
            for acct, ops in self.responses.items():
                if account in (None, acct):
                    for op, codes in ops.items():
                        for code, n in codes.items():
                            out[op][code] += n
        return {op: dict(codes) for op, codes in out.items()}

    def snapshot(self) -> dict[str, Any]:
        calls, responses = self.calls_of(), self.responses_of()
        with self.lock:
            return {
                "calls": calls,
                "responses": responses,
                "drops": dict(self.drops),
                "garbled": dict(self.garbled),
                "writes": list(self.writes),
                "inflight": {"now": self.inflight, "peak": self.peak},
            }


class IssuedKeys:
    """The access keys this emulator's AssumeRole handed out, numbered in order, for the
    `expire_tokens` fault: a config listing an account expires that account's keys issued
    before the config was posted, so a fresh AssumeRole afterwards works, as after a real
    expiry; and a key once answered ExpiredToken stays expired for good, as a real expired
    credential does (even after the fault is cleared)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.serial: dict[str, int] = {}
        self.count = 0
        self.dead: set[str] = set()

    def issue(self, key: str) -> None:
        with self.lock:
            self.serial[key] = self.count
            self.count += 1

    def watermark(self) -> int:
        """Keys numbered below this were issued before now."""
        with self.lock:
            return self.count

    def expired(self, call: Call, faults: Faults) -> bool:
        with self.lock:
            if call.key in self.dead:
                return True
            serial = self.serial.get(call.key)  # None: not an AssumeRole key, never expires
            if (call.account in faults.expire_tokens and serial is not None
                    and serial < faults.issued_before):
                self.dead.add(call.key)
                return True
            return False


def credential_scope(environ: dict[str, Any]) -> list[str]:
    """[AKID, date, region, service, "aws4_request"] of a SigV4 Authorization header
    ("... Credential=AKID/date/REGION/SERVICE/aws4_request, ..."); [] when unsigned."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    marker = "Credential="
    if marker not in auth:
        return []
    return auth.split(marker, 1)[1].split(",", 1)[0].strip().split("/")


def access_key(environ: dict[str, Any]) -> str:
    """The access key id of a SigV4 Authorization header."""
    scope = credential_scope(environ)
    return scope[0] if scope else ""


def signing_region(environ: dict[str, Any]) -> str:
    """The Region of a SigV4 credential scope (us-east-1 when there is none)."""
    scope = credential_scope(environ)
    return scope[2] if len(scope) > 2 and scope[2] else "us-east-1"


def is_sts(environ: dict[str, Any]) -> bool:
    """A call for STS: signed for "sts", or an unsigned form POST to "/" (STS's query protocol;
    API Gateway has no route there). Everything else stays API Gateway's, as before."""
    scope = credential_scope(environ)
    if scope:
        return len(scope) > 3 and scope[3].lower() == "sts"
    return (environ.get("REQUEST_METHOD") == "POST" and environ.get("PATH_INFO", "") in ("", "/")
            and environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"))


def read_form(environ: dict[str, Any]) -> dict[str, str]:
    """The parameters of a form-encoded body (first value of each), leaving the body readable
    for moto."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    raw = environ["wsgi.input"].read(length) if length > 0 else b""
    environ["wsgi.input"] = io.BytesIO(raw)
    return {k: v[0] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}


def account_of(environ: dict[str, Any], key: str) -> str:
    """The account moto serves the call from (its own order: MOTO_ACCOUNT_ID, the
    x-moto-account-id header, the account of an access key moto's IAM/STS made, the default).
    Call it under the state lock: moto creates backends lazily while it looks."""
    if os.environ.get("MOTO_ACCOUNT_ID"):
        return os.environ["MOTO_ACCOUNT_ID"]
    if environ.get("HTTP_X_MOTO_ACCOUNT_ID"):
        return environ["HTTP_X_MOTO_ACCOUNT_ID"]
    try:
        from moto.iam.models import get_account_id_from

        return get_account_id_from(key)
    except Exception:
        return DEFAULT_ACCOUNT


def caller_arn(account: str, key: str, region: str) -> str:
    """The caller's ARN as moto's GetCallerIdentity tells it (an assumed role's
    arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION, an IAM user's, else moto's stand-in
    arn:aws:sts::ACCOUNT:user/moto), so AccessDenied messages name the same caller. Call it
    under the state lock."""
    try:
        from moto.sts.models import sts_backends
        from moto.utilities.utils import get_partition

        return sts_backends[account][get_partition(region)].get_caller_identity(key, region)[1]
    except Exception:
        return f"arn:aws:sts::{account}:user/moto"


def issued_access_key(body: bytes) -> str | None:
    """The AccessKeyId of moto's AssumeRole answer (STS's XML)."""
    match = re.search(rb"<AccessKeyId>([^<]+)</AccessKeyId>", body)
    return match.group(1).decode() if match else None


class DropConnection(ConnectionAbortedError):
    """Raised after closing the socket; werkzeug treats it as a dropped connection."""


class EmulatorApp:
    def __init__(self, inner: Callable, moto_version: str = "?",
                 configure: Callable[[Faults], None] | None = None,
                 served: Callable[[str, str], Any] | None = None) -> None:
        """`configure` receives every new fault config, while no API call runs (server.py
        passes one that hands the model switches to apigw_ext). `served(rest_api_id,
        stage_name)` answers GET /_emulator/served/... (None: no such stage)."""
        self.inner = inner
        self.configure = configure
        self.served = served
        self.moto_version = moto_version
        self.stats = Stats()
        self.keys = IssuedKeys()
        self.faults = Faults({})
        self.faults_lock = threading.Lock()
        # Serialises POST /_emulator/faults (and close()): at most one neighbour thread runs.
        self.install_lock = threading.Lock()
        self.previous_neighbour: Neighbour | None = None
        self.closed = False
        # moto's backends are plain dicts and objects: one API call at a time.
        self.state_lock = threading.RLock()
        self.router = get_service_router("apigateway")

    # ------------------------------------------------------------------ WSGI entry

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith(ADMIN_PREFIX) or path == ADMIN_PREFIX.rstrip("/"):
            return self.admin(environ, start_response)
        if path.startswith("/moto-api") or path == "/favicon.ico":
            with self.state_lock:
                return list(self.inner(environ, start_response))
        if is_sts(environ):
            return self.sts_call(environ, start_response)
        return self.api_call(environ, start_response)

    def current_faults(self) -> Faults:
        with self.faults_lock:
            return self.faults

    def install(self, faults: Faults) -> None:
        """Puts a validated config in force: the old config's neighbour thread is stopped (and
        waited for) before the new one's starts."""
        with self.install_lock:
            # Under the state lock: no API call sees half of the new config, and no AssumeRole
            # hands out a key between the watermark and the switch.
            with self.state_lock, self.faults_lock:
                if self.configure is not None:
                    self.configure(faults)
                faults.issued_before = self.keys.watermark()
                old, self.faults = self.faults, faults
            if old.neighbour is not None:
                old.neighbour.stop()
                self.previous_neighbour = old.neighbour
            if faults.neighbour is not None and not self.closed:
                faults.neighbour.start()

    def close(self) -> None:
        """Stops the neighbour thread (the server calls it when it stops)."""
        with self.install_lock:
            self.closed = True
            neighbour = self.current_faults().neighbour
            if neighbour is not None:
                neighbour.stop()

    def neighbour_status(self) -> dict[str, Any]:
        neighbour = self.current_faults().neighbour
        out = neighbour.status() if neighbour is not None else idle_neighbour()
        previous = self.previous_neighbour
        out["previous"] = previous.status() if previous is not None else None
        out["threads"] = sum(1 for t in threading.enumerate()
                             if t.name.startswith("emulator-neighbour-") and t.is_alive())
        return out

    def call_moto(self, environ: dict[str, Any]) -> tuple[str, list, list[bytes], int]:
        """moto's answer: (status line, headers, body, status code)."""
        answer: dict[str, Any] = {}
        written: list[bytes] = []

        def capturing_start_response(status: str, headers: list, exc_info: Any = None):
            answer.update(status=status, headers=list(headers))
            return written.append

        with self.state_lock:
            # Materialise the body while holding the lock: moto may build it lazily.
            body = written + list(self.inner(environ, capturing_start_response))
        status = answer["status"]
        try:
            code = int(status.split(" ", 1)[0])
        except ValueError:
            code = 0
        return status, answer["headers"], body, code

    # ------------------------------------------------------------------ STS calls

    def sts_call(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        """moto's STS, counted (AssumeRole under the role's account, other actions under the
        caller's), with the deny_assume_role fault. Never faulted otherwise."""
        if not environ.get("HTTP_AUTHORIZATION"):
            environ["HTTP_AUTHORIZATION"] = FAKE_STS_AUTH
        params = read_form(environ)
        action = params.get("Action", "Unknown")
        key, region = access_key(environ), signing_region(environ)
        with self.state_lock:
            caller = account_of(environ, key)
        role = params.get("RoleArn", "")
        role_match = ROLE_ARN.fullmatch(role)
        account = role_match.group(1) if action == "AssumeRole" and role_match else caller
        call = Call(action, key, account, region)
        self.stats.call(call)

        if action == "AssumeRole":
            if not role_match:
                return self.sts_error(
                    call, start_response, 400, "ValidationError",
                    f"RoleArn {role!r} is not arn:aws:iam::<12-digit account>:role/<name>",
                )
            if self.current_faults().denies_role(role):
                with self.state_lock:
                    who = caller_arn(caller, key, region)
                return self.sts_error(
                    call, start_response, 403, "AccessDenied",
                    f"User: {who} is not authorized to perform: sts:AssumeRole on resource: {role}",
                )

        with self.state_lock:  # re-entrant: the key is numbered before a new config can land
            status, headers, body, code = self.call_moto(environ)
            if action == "AssumeRole" and code == 200:
                issued = issued_access_key(b"".join(body))
                if issued:
                    self.keys.issue(issued)
        self.stats.response(call, code)
        start_response(status, headers)
        return body

    def sts_error(self, call: Call, start_response: Callable, status: int, code: str,
                  message: str) -> Iterable[bytes]:
        """STS's query-protocol error: <ErrorResponse><Error><Code>... in XML."""
        request_id = str(uuid.uuid4())
        body = (
            f'<ErrorResponse xmlns="{STS_NAMESPACE}"><Error><Type>Sender</Type>'
            f"<Code>{escape(code)}</Code><Message>{escape(message)}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        headers = [
            ("Content-Type", "text/xml"),
            ("Content-Length", str(len(body))),
            ("x-amzn-RequestId", request_id),
        ]
        self.stats.response(call, status)
        start_response(f"{status} {REASONS.get(status, 'Error')}", headers)
        return [body]

    # ------------------------------------------------------------------ API Gateway calls

    def operation_name(self, environ: dict[str, Any]) -> str:
        try:
            op, _ = self.router.match(MotoRequest(environ, shallow=True))
            return op.name
        except Exception:
            return "Unknown"

    def api_call(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        self.stats.enter()
        try:
            return self._api_call(environ, start_response)
        finally:
            self.stats.leave()

    def _api_call(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        if not environ.get("HTTP_AUTHORIZATION"):
            # Let unsigned calls (curl, tests) reach moto's API Gateway backend.
            environ["HTTP_AUTHORIZATION"] = FAKE_AUTH
        ctype = environ.get("CONTENT_TYPE", "")
        if not ctype or ctype.startswith("application/x-www-form-urlencoded"):
            # API Gateway is REST-JSON; curl's default form type would send moto astray.
            environ["CONTENT_TYPE"] = "application/json"
        key = access_key(environ)
        with self.state_lock:
            account = account_of(environ, key)
        call = Call(self.operation_name(environ), key, account, signing_region(environ))
        self.stats.call(call)
        faults = self.current_faults()

        refused = self.injected_fault(call, faults, environ, start_response)
        if refused is not None:
            return refused

        status, headers, body, code = self.call_moto(environ)
        self.stats.response(call, code)
        if (200 <= code < 300 and code != 204 and faults.garbage_body > 0
                and faults.applies_to(call.op) and faults.draw(faults.garbage_body)):
            # The operation took effect; only its answer is spoiled on the way back.
            self.stats.garble(call.op)
            body = [GARBAGE_BODY]
            headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
            headers.append(("Content-Length", str(len(GARBAGE_BODY))))
        start_response(status, headers)
        return body

    def injected_fault(self, call: Call, faults: Faults, environ: dict[str, Any],
                       start_response: Callable) -> Iterable[bytes] | None:
        """The answer of the first fault that hits the call (a dropped connection raises), or
        None when the operation should run. The order: latency, drop, expired token, access
        denied (AWS checks credentials before it throttles), quota (the account's, then
        GetResources' own), throttle, 5xx, CreateDeployment's quota."""
        op = call.op
        if faults.applies_to(op):
            if faults.latency_s > 0:
                time.sleep(faults.latency_s)
            if faults.draw(faults.drop):
                self.stats.drop(op)
                self.close_connection(environ)
                raise DropConnection(f"emulator fault: dropped a {op} call")
        if self.keys.expired(call, faults):
            return self.error(call, start_response, 403, "ExpiredTokenException",
                              EXPIRED_TOKEN_MESSAGE)
        if call.account in faults.deny_accounts and faults.applies_to(op):
            return self.access_denied(call, environ, start_response)
        if faults.applies_to(op):
            scope = (call.account, call.region)
            if faults.quota and not faults.take_token(scope):
                return self.too_many_requests(call, start_response, faults.retry_after)
            # GetResources' own quota, checked once the account's let the call in: a call the
            # account refused takes no GetResources token; one GetResources refuses has spent
            # its account token.
            if (op == GET_RESOURCES_OPERATION and faults.get_resources_quota
                    and not faults.take_get_resources_token(scope)):
                return self.too_many_requests(call, start_response, faults.retry_after)
            if faults.draw(faults.throttle):
                return self.too_many_requests(call, start_response, faults.retry_after)
            if faults.draw(faults.error_5xx):
                status = faults.pick_status()
                if status == 503:
                    return self.error(
                        call, start_response, 503, "ServiceUnavailableException",
                        "Service Unavailable", retry_after=faults.retry_after,
                    )
                return self.error(call, start_response, status, "InternalFailure",
                                  "Internal server error")

        if op == DEPLOYMENT_OPERATION and faults.deployment_interval > 0:
            who = call.key if faults.deployment_quota_scope == "access_key" else call.account
            wait = faults.take_deployment_token((who, call.region))
            if wait > 0:
                return self.too_many_requests(call, start_response, max(1, math.ceil(wait)))
        return None

    def access_denied(self, call: Call, environ: dict[str, Any],
                      start_response: Callable) -> Iterable[bytes]:
        """AWS's answer to a caller whose policies do not allow the call."""
        with self.state_lock:
            who = caller_arn(call.account, call.key, call.region)
        method = environ.get("REQUEST_METHOD", "GET")
        resource = f"arn:aws:apigateway:{call.region}::{environ.get('PATH_INFO', '/')}"
        return self.error(
            call, start_response, 403, "AccessDeniedException",
            f"User: {who} is not authorized to perform: apigateway:{method} on resource: {resource}",
        )

    def too_many_requests(self, call: Call, start_response: Callable,
                          retry_after: float) -> Iterable[bytes]:
        return self.error(call, start_response, 429, "TooManyRequestsException",
                          "Too Many Requests", retry_after=retry_after)

    @staticmethod
    def close_connection(environ: dict[str, Any]) -> None:
        sock = environ.get("werkzeug.socket")
        if sock is None:
            return
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def error(
        self,
        call: Call,
        start_response: Callable,
        status: int,
        code: str,
        message: str,
        retry_after: float | None = None,
    ) -> Iterable[bytes]:
        body = json.dumps({"message": message}).encode()
        headers = [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("x-amzn-ErrorType", code),
            ("x-amzn-RequestId", str(uuid.uuid4())),
        ]
        if retry_after is not None:
            ra = retry_after
            headers.append(("Retry-After", str(int(ra)) if float(ra).is_integer() else str(ra)))
        self.stats.response(call, status)
        start_response(f"{status} {REASONS.get(status, 'Error')}", headers)
        return [body]

    # ------------------------------------------------------------------ admin API

    def admin(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "").rstrip("/")
        route = path[len(ADMIN_PREFIX.rstrip("/")) :]

        def reply(status: int, body: Any) -> Iterable[bytes]:
            data = json.dumps(body, sort_keys=True).encode()
            start_response(
                f"{status} {REASONS.get(status, 'Error')}",
                [("Content-Type", "application/json"), ("Content-Length", str(len(data)))],
            )
            return [data]

        snap = self.stats.snapshot
        if route in ("/calls", "/responses") and method == "GET":
            account = parse_qs(environ.get("QUERY_STRING", "")).get("account", [None])[0]
            if account is not None and not ACCOUNT_ID.fullmatch(account):
                return reply(400, {"message": f"account must be a 12-digit account id, got {account!r}"})
            if route == "/calls":
                return reply(200, self.stats.calls_of(account))
            return reply(200, self.stats.responses_of(account))
        if route == "/drops" and method == "GET":
            return reply(200, snap()["drops"])
        if route == "/garbled" and method == "GET":
            return reply(200, snap()["garbled"])
        if route == "/writes" and method == "GET":
            return reply(200, snap()["writes"])
        if route == "/inflight" and method == "GET":
            return reply(200, snap()["inflight"])
        if route == "/calls/reset" and method == "POST":
            self.stats.reset()
            neighbour = self.current_faults().neighbour
            if neighbour is not None:
                neighbour.reset()
            return reply(200, {})
        if route == "/neighbour" and method == "GET":
            return reply(200, self.neighbour_status())
        if route == "/quota" and method == "GET":
            return reply(200, self.current_faults().bucket_levels())
        if route == "/faults" and method == "GET":
            with self.faults_lock:
                return reply(200, self.faults.config)
        if route == "/faults" and method in ("POST", "PUT"):
            try:
                length = int(environ.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            raw = environ["wsgi.input"].read(length) if length > 0 else b""
            try:
                cfg = json.loads(raw or b"{}")
                faults = Faults(cfg)
            except (ValueError, FaultConfigError) as e:
                return reply(400, {"message": f"invalid fault config: {e}"})
            self.install(faults)
            return reply(200, faults.config)
        if route.startswith("/served/") and method == "GET":
            parts = route[len("/served/"):].split("/")
            if len(parts) != 2 or not all(parts) or self.served is None:
                return reply(404, {"message": f"no admin route {method} {path}; "
                                   "use /_emulator/served/{restApiId}/{stageName}"})
            with self.state_lock:
                answer = self.served(parts[0], parts[1])
            if answer is None:
                return reply(404, {"message": f"no stage {parts[1]!r} on REST API {parts[0]!r}"})
            return reply(200, answer)
        if route == "/health" and method == "GET":
            return reply(200, {"status": "ok", "moto": self.moto_version})
        return reply(404, {"message": f"no admin route {method} {path}"})
