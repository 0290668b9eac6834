"""WSGI layer in front of moto: the /_emulator/ admin API, fault injection and call counting.

Admin API (never faulted, never counted):
  GET  /_emulator/calls        {"UpdateIntegration": 3, ...}   every API Gateway request received,
                                                              faulted ones included
  GET  /_emulator/responses    {"UpdateIntegration": {"200": 2, "429": 1}, ...}
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
                              writes)
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
  quota_rps       token bucket refill rate (calls/s) over all API Gateway calls; 429 when empty
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
Order: latency, then drop, then quota, then throttle, then 5xx; the operation; garbage_body.

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

import json
import math
import os
import random
import socket
import threading
import time
import uuid
from collections import defaultdict, deque
from typing import Any, Callable, Iterable

from moto.core.request import Request as MotoRequest
from moto.core.routing import get_service_router

ADMIN_PREFIX = "/_emulator/"
FAKE_AUTH = (
    "AWS4-HMAC-SHA256 Credential=AKIAEMULATOR000000000/20200101/us-east-1/apigateway/aws4_request, "
    "SignedHeaders=host, Signature=0000"
)

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
}
DEPLOYMENT_OPERATION = "CreateDeployment"
DEFAULT_DEPLOYMENT_INTERVAL_S = 5.0
DEFAULT_ACCOUNT = "123456789012"

# What a garbled 2xx answer carries: truncated JSON with a wrongly typed field.
GARBAGE_BODY = b'{"type": "HTTP", "timeoutInMillis": "not-a-number"'

REASONS = {
    200: "OK", 201: "Created", 202: "Accepted", 204: "No Content", 400: "Bad Request",
    404: "Not Found", 405: "Method Not Allowed", 429: "Too Many Requests",
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


class Faults:
    """A validated fault config with its token bucket and random source."""

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
        self.tokens = self.burst
        self.last = time.monotonic()
        self.bucket_lock = threading.Lock()

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
        rate = 1.0 / self.deployment_interval
        with self.bucket_lock:
            now = time.monotonic()
            bucket = self.deployment_buckets.setdefault(key, [self.deployment_burst, now])
            bucket[0] = min(self.deployment_burst, bucket[0] + (now - bucket[1]) * rate)
            bucket[1] = now
            if bucket[0] >= 1:
                bucket[0] -= 1
                return 0.0
            return (1 - bucket[0]) / rate

    def take_token(self) -> bool:
        with self.bucket_lock:
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rps)
            self.last = now
            if self.tokens >= 1:
                self.tokens -= 1
                return True
            return False


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.inflight = 0  # API Gateway calls being handled; not reset (they are still running)
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.calls: dict[str, int] = defaultdict(int)
            self.responses: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
            self.drops: dict[str, int] = defaultdict(int)
            self.garbled: dict[str, int] = defaultdict(int)
            self.writes: deque[dict[str, Any]] = deque(maxlen=10_000)
            self.peak = self.inflight

    def call(self, op: str, key: str = "") -> None:
        with self.lock:
            self.calls[op] += 1
            if op.startswith(("Create", "Update", "Put", "Delete")):
                self.writes.append({"t": time.time(), "op": op, "key": key})

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

    def response(self, op: str, status: int) -> None:
        with self.lock:
            self.responses[op][str(status)] += 1

    def drop(self, op: str) -> None:
        with self.lock:
            self.drops[op] += 1

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "calls": dict(self.calls),
                "responses": {op: dict(c) for op, c in self.responses.items()},
                "drops": dict(self.drops),
                "garbled": dict(self.garbled),
                "writes": list(self.writes),
                "inflight": {"now": self.inflight, "peak": self.peak},
            }


def access_key(environ: dict[str, Any]) -> str:
    """The access key id of a SigV4 Authorization header ("Credential=AKID/date/...")."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    marker = "Credential="
    if marker not in auth:
        return ""
    return auth.split(marker, 1)[1].split("/", 1)[0]


def signing_region(environ: dict[str, Any]) -> str:
    """The Region of a SigV4 credential scope ("Credential=AKID/date/REGION/service/...")."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    marker = "Credential="
    if marker not in auth:
        return "us-east-1"
    parts = auth.split(marker, 1)[1].split(",", 1)[0].split("/")
    return parts[2] if len(parts) > 2 and parts[2] else "us-east-1"


def account_of(environ: dict[str, Any], key: str) -> str:
    """The account moto serves the call from (its own order: MOTO_ACCOUNT_ID, the
    x-moto-account-id header, the account of an access key moto's IAM/STS made, the default)."""
    if os.environ.get("MOTO_ACCOUNT_ID"):
        return os.environ["MOTO_ACCOUNT_ID"]
    if environ.get("HTTP_X_MOTO_ACCOUNT_ID"):
        return environ["HTTP_X_MOTO_ACCOUNT_ID"]
    try:
        from moto.iam.models import get_account_id_from

        return get_account_id_from(key)
    except Exception:
        return DEFAULT_ACCOUNT


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
        self.faults = Faults({})
        self.faults_lock = threading.Lock()
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
        return self.api_call(environ, start_response)

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
        op = self.operation_name(environ)
        key = access_key(environ)
        self.stats.call(op, key)
        with self.faults_lock:
            faults = self.faults

        if faults.applies_to(op):
            if faults.latency_s > 0:
                time.sleep(faults.latency_s)
            if faults.draw(faults.drop):
                self.stats.drop(op)
                self.close_connection(environ)
                raise DropConnection(f"emulator fault: dropped a {op} call")
            if faults.quota and not faults.take_token():
                return self.error(
                    op, start_response, 429, "TooManyRequestsException", "Too Many Requests",
                    retry_after=faults.retry_after,
                )
            if faults.draw(faults.throttle):
                return self.error(
                    op, start_response, 429, "TooManyRequestsException", "Too Many Requests",
                    retry_after=faults.retry_after,
                )
            if faults.draw(faults.error_5xx):
                status = faults.pick_status()
                if status == 503:
                    return self.error(
                        op, start_response, 503, "ServiceUnavailableException",
                        "Service Unavailable", retry_after=faults.retry_after,
                    )
                return self.error(op, start_response, status, "InternalFailure",
                                  "Internal server error")

        if op == DEPLOYMENT_OPERATION and faults.deployment_interval > 0:
            who = key if faults.deployment_quota_scope == "access_key" else account_of(environ, key)
            wait = faults.take_deployment_token((who, signing_region(environ)))
            if wait > 0:
                return self.error(
                    op, start_response, 429, "TooManyRequestsException", "Too Many Requests",
                    retry_after=max(1, math.ceil(wait)),
                )

        answer: dict[str, Any] = {}
        written: list[bytes] = []

        def capturing_start_response(status: str, headers: list, exc_info: Any = None):
            answer.update(status=status, headers=list(headers))
            return written.append

        with self.state_lock:
            # Materialise the body while holding the lock: moto may build it lazily.
            body = written + list(self.inner(environ, capturing_start_response))
        status, headers = answer["status"], answer["headers"]
        try:
            code = int(status.split(" ", 1)[0])
        except ValueError:
            code = 0
        self.stats.response(op, code)
        if (200 <= code < 300 and code != 204 and faults.garbage_body > 0
                and faults.applies_to(op) and faults.draw(faults.garbage_body)):
            # The operation took effect; only its answer is spoiled on the way back.
            self.stats.garble(op)
            body = [GARBAGE_BODY]
            headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
            headers.append(("Content-Length", str(len(GARBAGE_BODY))))
        start_response(status, headers)
        return body

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
        op: str,
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
        self.stats.response(op, status)
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
        if route == "/calls" and method == "GET":
            return reply(200, snap()["calls"])
        if route == "/responses" and method == "GET":
            return reply(200, snap()["responses"])
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
            return reply(200, {})
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
            # Under the state lock: no API call sees half of the new config.
            with self.state_lock, self.faults_lock:
                if self.configure is not None:
                    self.configure(faults)
                self.faults = faults
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
