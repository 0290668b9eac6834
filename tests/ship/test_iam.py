"""deploy/iam/: the IAM policies allow every AWS operation the code can call, and little else.

The operations come from the Rust sources, found by pattern, so a call added later without a
policy entry fails here. botocore's service models (AWS's own, shipped in the emulator venv) turn
each API Gateway operation into the request IAM authorizes: action `apigateway:<HTTP method>` on
`arn:aws:apigateway:<Region>::<request path>`. A small IAM matcher (Allow and Deny, `*` and `?`
wildcards, StringEquals and StringLike conditions) evaluates the policies against those requests,
their templates filled in with sample ids. It refuses any policy element it does not understand
rather than guess.

Run: python=$(hack/emulator/setup-venv.sh); $python -m pytest -q tests/ship/test_iam.py
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import botocore
import botocore.session
import pytest
from botocore import xform_name

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src"
IAM = REPO / "deploy" / "iam"

# botocore's service names, and how messages name them.
SERVICES = {"apigateway": "API Gateway", "sts": "STS"}

# Operations the operator is about to call for ApiGatewayAccess (issue #14): AssumeRole through
# aws-config's AssumeRoleProvider, GetCallerIdentity to check credentials. Required already so the
# policies are ready before the code; once the code calls them the patterns find them too.
PLANNED = {"AssumeRole", "GetCallerIdentity"}

# STS operations no policy needs to allow: "No permissions are required to perform this
# operation" (GetCallerIdentity, STS API reference; an explicit Deny does not stop it either).
NO_PERMISSION = {"GetCallerIdentity"}

# Operations that can name an IAM role for API Gateway to assume, an integration's `credentials`
# (PutIntegration sets it, UpdateIntegration can patch `/credentials`): IAM checks iam:PassRole
# of that role to apigateway.amazonaws.com.
PASSES_A_ROLE = {"PutIntegration", "UpdateIntegration"}

# Methods of an SDK `Client` that take no argument and are not operations.
CLIENT_METHODS = {"clone", "config"}

# A fluent builder call, `.get_integration()`: the SDK's Client has one zero-argument method per
# operation, so a zero-argument call named like an operation of a service model is one.
ZERO_ARG_CALL = re.compile(r"\.\s*([a-z][a-z0-9_]*)\s*\(\s*\)")
# A zero-argument call on something named like a client (`r.client.get_stage()`): an operation,
# or a name this test must report rather than ignore (a typo, an operation botocore lacks).
CLIENT_CALL = re.compile(r"\b(\w*client)\s*\.\s*([a-z][a-z0-9_]*)\s*\(\s*\)")
# The operation name every API Gateway call reports to the observer: `.call(&r, "GetStage", ..`.
OBSERVED = re.compile(r"\.call\(\s*&?\w+\s*,\s*\"(\w+)\"")
# aws-config's AssumeRoleProvider calls STS AssumeRole itself, out of sight of the patterns above.
ASSUME_ROLE_PROVIDER = re.compile(r"\bAssumeRoleProvider\b")

# Sample values for the templates' parameters; two sets, so that no value is special.
SAMPLES = [
    {"region": "us-east-1", "restapi_id": "a1b2c3d4e5", "resource_id": "a1b2c3", "http_method": "GET",
     "status_code": "200", "stage_name": "prod", "deployment_id": "d4e5f6"},
    {"region": "eu-west-1", "restapi_id": "z9y8x7w6v5", "resource_id": "q0atvc", "http_method": "ANY",
     "status_code": "504", "stage_name": "v2_beta-1", "deployment_id": "abc123"},
]
DEFAULT_ID = "a1b2c3d4e5"  # parameters of operations the operator does not call (the negative test)
APIGATEWAY_SERVICE = "apigateway.amazonaws.com"


@dataclass(frozen=True)
class Identity:
    """Who a policy is for, with sample roles it must (and must not) be able to use."""

    policy: str
    # A role an integration's `credentials` may name: PassRole must be allowed for it.
    credential_role: str
    # A role an ApiGatewayAccess may name; None: this identity assumes no role (no role chaining).
    access_role: str | None


OPERATOR_ROLE = "arn:aws:iam::111122223333:role/apigw-operator"
OPERATOR = Identity("operator-policy.json", "arn:aws:iam::111122223333:role/apigw-integration-orders",
                    "arn:aws:iam::444455556666:role/apigw-access-team-a")
ASSUMED = Identity("assumed-role-policy.json", "arn:aws:iam::444455556666:role/apigw-integration-team-a-orders",
                   None)
IDENTITIES = [OPERATOR, ASSUMED]
IDS = [i.policy for i in IDENTITIES]


@dataclass(frozen=True)
class Operation:
    service: str  # botocore's service name
    name: str  # AWS's operation name


@dataclass(frozen=True)
class Request:
    """One authorization IAM makes: `action` on `resource`, with condition keys `context`."""

    action: str
    resource: str
    context: tuple[tuple[str, str], ...] = ()
    principal: str | None = None
    why: str = ""

    def __str__(self) -> str:
        extra = "".join(f" {k}={v}" for k, v in self.context)
        return f"{self.action} on {self.resource}{extra}" + (f" ({self.why})" if self.why else "")


# ---------------------------------------------------------------------------------------------
# The service models


@cache
def models() -> dict:
    session = botocore.session.get_session()
    return {service: session.get_service_model(service) for service in SERVICES}


def models_described() -> str:
    names = " or ".join(f"{SERVICES[s]} {m.api_version}" for s, m in models().items())
    return f"{names} in botocore {botocore.__version__}"


@cache
def operations_by_name(sdk: bool) -> dict[str, list[Operation]]:
    """Every operation of every model, under its AWS name (`GetStage`) or, with `sdk`, under the
    name of its method in the Rust SDK (`get_stage`)."""
    table: dict[str, list[Operation]] = {}
    for service, model in models().items():
        for name in model.operation_names:
            table.setdefault(xform_name(name) if sdk else name, []).append(Operation(service, name))
    return table


def template(op: str) -> tuple[str, str]:
    """An API Gateway operation's IAM action and resource template, from its HTTP binding."""
    http = models()["apigateway"].operation_model(op).http
    path = http["requestUri"].split("?")[0]  # a query (`?mode=import`) is no part of the resource
    return f"apigateway:{http['method']}", "arn:aws:apigateway:{region}::" + path


def apigateway_request(op: str, sample: dict[str, str]) -> Request:
    action, resource = template(op)
    resource = re.sub(r"\{(\w+)\+?\}", lambda m: sample.get(m[1], DEFAULT_ID), resource)
    return Request(action, resource, why=op)


def pass_role(role: str, service: str = APIGATEWAY_SERVICE, why: str = "") -> Request:
    return Request("iam:PassRole", role, (("iam:PassedToService", service),), why=why)


def requests_for(op: Operation, identity: Identity) -> list[Request]:
    """What IAM must allow `identity` for one operation (several samples of each)."""
    if op.service == "apigateway":
        requests = [apigateway_request(op.name, s) for s in SAMPLES]
        if op.name in PASSES_A_ROLE:
            requests.append(pass_role(identity.credential_role, why=f"{op.name} with credentials"))
        return requests
    if op.name in NO_PERMISSION:
        return []
    if op.name == "AssumeRole":
        # The operator assumes access roles with its own credentials, never an assumed role's.
        return [] if identity.access_role is None else [Request("sts:AssumeRole", identity.access_role, why=op.name)]
    raise AssertionError(f"{SERVICES[op.service]} {op.name}: no IAM mapping in tests/ship/test_iam.py; "
                         "add one (and a statement to deploy/iam/ if it needs a permission)")


# ---------------------------------------------------------------------------------------------
# The operations the Rust sources call


RAW_STRING = re.compile(r'b?r(#*)"')  # no escapes; ends at `"` and as many `#`
STRING = re.compile(r'"(?:\\.|[^"\\])*"', re.S)
CHAR = re.compile(r"'(?:\\.[^']*|[^\\'])'")  # '"' and '\'' included; a lifetime's `'` is not one


def strip_comments(text: str) -> str:
    """`text` with its comments blanked, newlines kept (line numbers hold): a call named in a doc
    comment is not a call. String literals stay: the observer's operation names are in them."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            out.append(" " * (end - i))
            i = end
        elif text.startswith("/*", i):  # nested, as in Rust
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif (m := RAW_STRING.match(text, i)) and (i == 0 or not re.match(r"\w", text[i - 1])):
            end = text.find('"' + m[1], m.end())
            end = n if end < 0 else end + 1 + len(m[1])
            out.append(text[i:end])
            i = end
        elif text[i] == '"':
            m = STRING.match(text, i)
            end = m.end() if m else n
            out.append(text[i:end])
            i = end
        elif m := CHAR.match(text, i):
            out.append(m[0])
            i = m.end()
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


@dataclass(frozen=True)
class Site:
    where: str  # file:line
    how: str  # which pattern found it


def operations_in(sources: dict[str, str]) -> tuple[dict[Operation, list[Site]], list[str]]:
    """The operations `sources` (name → Rust text) call, where, and the calls no model knows."""
    by_sdk_name, by_aws_name = operations_by_name(sdk=True), operations_by_name(sdk=False)
    found: dict[Operation, list[Site]] = {}
    problems: list[str] = []
    for path, raw in sources.items():
        text = strip_comments(raw)

        def at(pos: int) -> str:
            return f"{path}:{text.count(chr(10), 0, pos) + 1}"

        def add(ops: list[Operation], pos: int, how: str, what: str) -> None:
            if len(ops) > 1:
                problems.append(f"{at(pos)}: {what} is an operation of several services: "
                                f"{sorted(SERVICES[o.service] for o in ops)}; tell this test which")
            for op in ops:
                found.setdefault(op, []).append(Site(at(pos), how))

        for m in ZERO_ARG_CALL.finditer(text):
            if m[1] in by_sdk_name:
                add(by_sdk_name[m[1]], m.start(1), "fluent call", f".{m[1]}()")
        for m in CLIENT_CALL.finditer(text):
            if m[2] not in by_sdk_name and m[2] not in CLIENT_METHODS:
                problems.append(f"{at(m.start(2))}: {m[1]}.{m[2]}() is not an operation of {models_described()}: "
                                "a typo, or an operation newer than this botocore (update "
                                "hack/emulator/requirements.txt), or a Client method to add to CLIENT_METHODS")
        for m in OBSERVED.finditer(text):
            if m[1] in by_aws_name:
                add(by_aws_name[m[1]], m.start(1), "observer name", f'"{m[1]}"')
            else:
                problems.append(f'{at(m.start(1))}: the call reported as "{m[1]}" names no operation of '
                                f"{models_described()}")
        for m in ASSUME_ROLE_PROVIDER.finditer(text):
            add([Operation("sts", "AssumeRole")], m.start(), "AssumeRoleProvider", "AssumeRoleProvider")
    return found, problems


@cache
def source_operations() -> tuple[dict[Operation, list[Site]], tuple[str, ...]]:
    sources = {str(p.relative_to(REPO)): p.read_text() for p in sorted(SRC.rglob("*.rs"))}
    found, problems = operations_in(sources)
    return found, tuple(problems)


def required_operations() -> set[Operation]:
    found, _ = source_operations()
    return set(found) | {Operation("sts", name) for name in PLANNED}


# ---------------------------------------------------------------------------------------------
# The IAM matcher


def glob(pattern: str, flags: int = 0) -> re.Pattern:
    """IAM's wildcards: `*` any run of characters, `/` and `:` included; `?` any one character."""
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.S | flags)


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


STATEMENT_KEYS = {"Sid", "Effect", "Action", "Resource", "Principal", "Condition"}
CONDITION_OPERATORS = {
    "StringEquals": lambda value, wanted: value == wanted,
    "StringLike": lambda value, wanted: glob(wanted).fullmatch(value) is not None,
}


def conditions_hold(conditions: dict, context: dict[str, str]) -> bool:
    """Every operator and key must hold (AND), any of a key's values may (OR). A key missing from
    the request fails its condition, as in IAM for these operators without `IfExists`."""
    for operator, keys in conditions.items():
        if operator not in CONDITION_OPERATORS:
            raise ValueError(f"the matcher does not understand the condition operator {operator}")
        for key, wanted in keys.items():
            value = context.get(key.lower())  # condition key names are case-insensitive
            if value is None or not any(CONDITION_OPERATORS[operator](value, w) for w in as_list(wanted)):
                return False
    return True


def principal_matches(principal, arn: str | None) -> bool:
    if principal == "*":
        return True
    unknown = set(principal) - {"AWS"}
    if unknown:
        raise ValueError(f"the matcher does not understand principals of type {sorted(unknown)}")
    return arn is not None and any(p in ("*", arn) for p in as_list(principal["AWS"]))


def statement_matches(statement: dict, request: Request) -> bool:
    unknown = set(statement) - STATEMENT_KEYS
    if unknown:  # NotAction, NotResource, NotPrincipal...: refuse rather than misjudge
        raise ValueError(f"the matcher does not understand {sorted(unknown)} (statement {statement.get('Sid')})")
    if statement["Effect"] not in ("Allow", "Deny"):
        raise ValueError(f"Effect {statement['Effect']!r}")
    # Action names are case-insensitive, resource ARNs are not.
    if not any(glob(a, re.I).fullmatch(request.action) for a in as_list(statement["Action"])):
        return False
    if "Resource" in statement and not any(glob(r).fullmatch(request.resource) for r in as_list(statement["Resource"])):
        return False
    if "Principal" in statement and not principal_matches(statement["Principal"], request.principal):
        return False
    return conditions_hold(statement.get("Condition", {}), {k.lower(): v for k, v in request.context})


def decide(policy: dict, request: Request) -> str:
    """IAM's order within one policy: an explicit Deny wins, then an Allow, else implicit deny."""
    effects = {s["Effect"] for s in as_list(policy["Statement"]) if statement_matches(s, request)}
    return "Deny" if "Deny" in effects else "Allow" if "Allow" in effects else "implicit deny"


def allowed(policy: dict, request: Request) -> bool:
    return decide(policy, request) == "Allow"


def missing(policy: dict, identity: Identity, operations: set[Operation]) -> list[str]:
    """The requests of `operations` that `policy` does not allow, as messages."""
    return [f"{SERVICES[op.service]} {op.name}: {decide(policy, r)} for {r}"
            for op in sorted(operations, key=lambda o: (o.service, o.name))
            for r in requests_for(op, identity) if not allowed(policy, r)]


def load(name: str) -> dict:
    return json.loads((IAM / name).read_text())


def statements(policy: dict) -> list[dict]:
    return as_list(policy["Statement"])


def grants(statement: dict, prefix: str) -> bool:
    return any(a.lower().startswith(prefix) for a in as_list(statement["Action"]))


# ---------------------------------------------------------------------------------------------
# (a) The operations in the sources


def test_every_call_in_the_sources_is_an_operation_of_a_service_model():
    _, problems = source_operations()
    assert not problems, "\n".join(problems)


def test_the_patterns_see_every_call_the_observer_reports():
    # Every API Gateway call goes through SdkAws::call with its operation's name; a name the
    # fluent-call pattern did not find means a call written in a form the pattern misses.
    found, _ = source_operations()
    fluent = {op for op, sites in found.items() if any(s.how == "fluent call" for s in sites)}
    observed = {op for op, sites in found.items() if any(s.how == "observer name" for s in sites)}
    assert fluent, "no SDK call found in src/: the fluent-call pattern is broken"
    unseen = observed - fluent
    assert not unseen, "reported to the observer but not found as `.op()` calls: " + ", ".join(
        f"{op.name} ({found[op][0].where})" for op in sorted(unseen, key=lambda o: o.name))


def test_the_patterns_on_a_sample_source():
    source = '''
        // r.client.delete_rest_api() in a comment is no call
        let s = "// not a comment"; let c = '"';
        let out = self.call(&r, "GetExport", Priority::Change, || {
            r.client
                .get_export()
                .send()
        });
        let sts = aws_sdk_sts::Client::new(&conf);
        sts.get_caller_identity().send().await?;
        let provider = AssumeRoleProvider::builder(arn).session_name(name).build().await;
        r.client.get_widget().send();
        let other = r.client.clone();
    '''
    found, problems = operations_in({"sample.rs": source})
    assert {(op.service, op.name) for op in found} == {
        ("apigateway", "GetExport"), ("sts", "GetCallerIdentity"), ("sts", "AssumeRole")}
    assert sorted((s.where, s.how) for s in found[Operation("apigateway", "GetExport")]) == [
        ("sample.rs:4", "observer name"), ("sample.rs:6", "fluent call")]
    assert len(problems) == 1 and "sample.rs:12: client.get_widget() is not an operation" in problems[0], problems


# ---------------------------------------------------------------------------------------------
# (b) Operation → IAM request, documented in the README


def readme_rows() -> dict[str, list[str]]:
    """The README's table of operations: `Operation` → its cells, backticks removed."""
    rows = {}
    for line in (IAM / "README.md").read_text().splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if line.startswith("| `") and len(cells) >= 5:
            rows[cells[0]] = cells
    return rows


def test_the_readme_documents_every_operation_as_the_model_maps_it():
    rows = readme_rows()
    policy = {s.get("Sid"): s for s in statements(load(OPERATOR.policy))}
    problems = []
    for op in sorted(required_operations(), key=lambda o: (o.service, o.name)):
        row = rows.get(op.name)
        if row is None:
            problems.append(f"{op.name}: no row in deploy/iam/README.md")
            continue
        _, _, action, resource, sid = row[:5]
        if op.service == "apigateway":
            if (action, resource) != template(op.name):
                problems.append(f"{op.name}: README says {action} {resource}, the model {template(op.name)}")
            request = apigateway_request(op.name, SAMPLES[0])
        elif op.name in NO_PERMISSION:
            if action != "none":
                problems.append(f"{op.name}: needs no permission, README says {action}")
            continue
        else:
            request = requests_for(op, OPERATOR)[0]
            if action != request.action:
                problems.append(f"{op.name}: README says {action}, expected {request.action}")
        if sid not in policy or not statement_matches(policy[sid], request):
            problems.append(f"{op.name}: README names statement {sid!r}, which does not allow {request}")
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------------------------------------
# (c) The policies allow every operation


@pytest.mark.parametrize("identity", IDENTITIES, ids=IDS)
def test_the_policy_allows_every_operation_the_code_calls(identity):
    gaps = missing(load(identity.policy), identity, required_operations())
    assert not gaps, f"deploy/iam/{identity.policy} does not allow:\n" + "\n".join(gaps)


def test_a_policy_without_a_statement_fails_the_check():
    # The check itself, on a policy lacking the stages statement: it must name what is missing.
    policy = load(OPERATOR.policy)
    policy["Statement"] = [s for s in statements(policy) if s.get("Sid") != "Stages"]
    ops = {Operation("apigateway", name) for name in ("GetStage", "UpdateStage", "GetIntegration")}
    gaps = missing(policy, OPERATOR, ops)
    assert len(gaps) == 2 * len(SAMPLES), gaps
    assert all(g.startswith(("API Gateway GetStage", "API Gateway UpdateStage")) for g in gaps), gaps
    assert "apigateway:PATCH on arn:aws:apigateway:us-east-1::/restapis/a1b2c3d4e5/stages/prod" in "\n".join(gaps)


def test_a_policy_without_passrole_fails_the_check():
    policy = load(OPERATOR.policy)
    policy["Statement"] = [s for s in statements(policy) if not grants(s, "iam:")]
    gaps = missing(policy, OPERATOR, {Operation("apigateway", "PutIntegration")})
    assert gaps == [f"API Gateway PutIntegration: implicit deny for iam:PassRole on {OPERATOR.credential_role} "
                    f"iam:PassedToService={APIGATEWAY_SERVICE} (PutIntegration with credentials)"]


def test_the_matcher():
    policy = {"Statement": [
        {"Effect": "Allow", "Action": "apigateway:GET", "Resource": "arn:aws:apigateway:*::/restapis/*/stages/*"},
        {"Effect": "Deny", "Action": "apigateway:get", "Resource": "arn:aws:apigateway:*::/restapis/*/stages/*/*"},
        {"Effect": "Allow", "Action": "iam:PassRole", "Resource": "arn:aws:iam::*:role/x-?",
         "Condition": {"StringEquals": {"iam:PassedToService": APIGATEWAY_SERVICE}}},
    ]}
    stage = "arn:aws:apigateway:us-east-1::/restapis/a/stages/prod"
    assert allowed(policy, Request("APIGateway:Get", stage))  # actions are case-insensitive
    assert not allowed(policy, Request("apigateway:PATCH", stage))
    assert not allowed(policy, Request("apigateway:GET", stage.replace("restapis", "RestApis")))  # ARNs are not
    assert decide(policy, Request("apigateway:GET", stage + "/exports/swagger")) == "Deny"  # `*` crosses `/`
    assert allowed(policy, pass_role("arn:aws:iam::1:role/x-1"))
    assert not allowed(policy, pass_role("arn:aws:iam::1:role/x-12"))  # `?` is one character
    assert not allowed(policy, pass_role("arn:aws:iam::1:role/x-1", service="ec2.amazonaws.com"))
    assert not allowed(policy, Request("iam:PassRole", "arn:aws:iam::1:role/x-1"))  # no key: no match
    with pytest.raises(ValueError, match="NotResource"):
        allowed({"Statement": [{"Effect": "Allow", "Action": "*", "NotResource": "x"}]}, Request("a", "b"))
    with pytest.raises(ValueError, match="ForAnyValue:StringLike"):
        allowed({"Statement": [{"Effect": "Allow", "Action": "a", "Resource": "b",
                                "Condition": {"ForAnyValue:StringLike": {"k": "v"}}}]}, Request("a", "b"))


# ---------------------------------------------------------------------------------------------
# (d) ... and nothing broad


@pytest.mark.parametrize("identity", IDENTITIES, ids=IDS)
def test_the_policy_allows_no_api_gateway_operation_the_code_does_not_call(identity):
    policy = load(identity.policy)
    used = {op.name for op in required_operations() if op.service == "apigateway"}
    same_request = {template(name) for name in used}
    extra = sorted(
        f"{name}: {r}"
        for name in models()["apigateway"].operation_names
        # An unused operation sharing a used one's method and path cannot be told apart by IAM.
        if name not in used and template(name) not in same_request
        for r in (apigateway_request(name, s) for s in SAMPLES)
        if allowed(policy, r))
    assert not extra, f"deploy/iam/{identity.policy} allows operations the operator never calls:\n" + "\n".join(extra)


@pytest.mark.parametrize("identity", IDENTITIES, ids=IDS)
def test_the_policy_is_narrow(identity):
    problems = []
    for s in statements(load(identity.policy)):
        sid = s.get("Sid")
        if not re.fullmatch(r"[A-Za-z0-9]+", sid or ""):
            problems.append(f"statement {sid!r}: every statement needs a Sid of letters and digits")
        if "Principal" in s or "Resource" not in s:
            problems.append(f"{sid}: an identity policy statement has a Resource and no Principal")
            continue
        if s["Effect"] != "Allow":
            continue
        actions, resources = as_list(s["Action"]), as_list(s["Resource"])
        # Every action spelled out: no `apigateway:*`, `iam:Pass*`, `*`.
        problems += [f"{sid}: wildcard action {a}" for a in actions if "*" in a or "?" in a]
        if "*" in resources:
            problems.append(f"{sid}: Resource \"*\"")
        if grants(s, "apigateway:"):
            problems += [f"{sid}: {r} is not an API Gateway /restapis path"
                         for r in resources if not re.fullmatch(r"arn:aws:apigateway:[^:]*::/restapis(/.*)?", r)]
        if grants(s, "iam:"):
            if actions != ["iam:PassRole"]:
                problems.append(f"{sid}: PassRole gets a statement of its own, not {actions}")
            if s.get("Condition") != {"StringEquals": {"iam:PassedToService": APIGATEWAY_SERVICE}}:
                problems.append(f"{sid}: PassRole must carry exactly iam:PassedToService = {APIGATEWAY_SERVICE}")
            problems += [f"{sid}: PassRole of every role ({r})" for r in resources if r.endswith(":role/*")]
        if grants(s, "sts:"):
            problems += [f"{sid}: AssumeRole of every role ({r})" for r in resources if r.endswith(":role/*")]
        if not any(statement_matches(s, r) for op in required_operations() for r in requests_for(op, identity)):
            problems.append(f"{sid}: allows nothing the operator needs; remove it")
    assert not problems, f"deploy/iam/{identity.policy}:\n" + "\n".join(problems)


@pytest.mark.parametrize("identity", IDENTITIES, ids=IDS)
def test_the_policy_refuses_other_roles_and_services(identity):
    policy = load(identity.policy)
    refused = [
        pass_role(identity.credential_role, service="ec2.amazonaws.com"),  # to another service
        pass_role("arn:aws:iam::111122223333:role/admin"),
        pass_role(OPERATOR_ROLE),  # its own role
        Request("sts:AssumeRole", "arn:aws:iam::444455556666:role/admin"),
        Request("sts:AssumeRole", OPERATOR_ROLE),
        Request("sts:AssumeRole", identity.credential_role),  # API Gateway's roles are not access roles
    ]
    if identity.access_role:  # an access role is not a credential role either
        refused.append(pass_role(identity.access_role))
    else:  # an assumed role does not assume further: the operator never chains roles
        refused.append(Request("sts:AssumeRole", OPERATOR.access_role))
    wrongly = [str(r) for r in refused if allowed(policy, r)]
    assert not wrongly, f"deploy/iam/{identity.policy} allows:\n" + "\n".join(wrongly)


def test_both_policies_grant_the_same_api_gateway_statements():
    def apigateway(name):
        return [s for s in statements(load(name)) if grants(s, "apigateway:")]

    assert apigateway(OPERATOR.policy) == apigateway(ASSUMED.policy)


# ---------------------------------------------------------------------------------------------
# The trust policy of an access role


def assume(external_id: str | None, session: str, principal: str = OPERATOR_ROLE) -> Request:
    context = (("sts:RoleSessionName", session),) + ((("sts:ExternalId", external_id),) if external_id else ())
    return Request("sts:AssumeRole", OPERATOR.access_role, context, principal=principal)


def test_the_trust_policy_lets_only_the_operator_in_for_its_namespace():
    trust = load("assumed-role-trust-policy.json")
    for s in statements(trust):
        assert "Principal" in s and "Resource" not in s, f"{s.get('Sid')}: a trust policy names a Principal"
        assert s["Principal"] != "*" and "*" not in as_list(s["Principal"].get("AWS")), "no Principal \"*\""
        conditions = s.get("Condition", {})
        assert "sts:ExternalId" in conditions.get("StringEquals", {}), "an Allow needs sts:ExternalId"
        assert "sts:RoleSessionName" in conditions.get("StringLike", {}), "an Allow needs sts:RoleSessionName"
    external_id = statements(trust)[0]["Condition"]["StringEquals"]["sts:ExternalId"]
    assert allowed(trust, assume(external_id, "apigw-team-a"))
    refused = {
        "no external id": assume(None, "apigw-team-a"),
        "another external id": assume("guess", "apigw-team-a"),
        "another namespace": assume(external_id, "apigw-team-b"),
        "a namespace with the same prefix": assume(external_id, "apigw-team-ab"),
        "another session name": assume(external_id, "team-a"),
        "another principal": assume(external_id, "apigw-team-a", principal="arn:aws:iam::111122223333:role/other"),
    }
    wrongly = [case for case, request in refused.items() if allowed(trust, request)]
    assert not wrongly, f"the trust policy allows {wrongly}"
    # The role it belongs to is one the operator policy may assume.
    assert allowed(load(OPERATOR.policy), Request("sts:AssumeRole", OPERATOR.access_role))


def test_policy_files_fit_iam_quotas():
    # IAM counts a policy's size without white space: 6144 characters for a managed policy,
    # 2048 by default for a role's trust policy.
    for name, limit in ((OPERATOR.policy, 6144), (ASSUMED.policy, 6144), ("assumed-role-trust-policy.json", 2048)):
        policy = load(name)
        assert policy["Version"] == "2012-10-17", name
        size = len(re.sub(r"\s", "", json.dumps(policy)))
        assert size <= limit, f"{name}: {size} characters, over IAM's {limit}"


if __name__ == "__main__":
    # The operations the policies must cover, where the code calls them, and their IAM requests:
    # `$python tests/ship/test_iam.py`, for the README's table.
    found, problems = source_operations()
    for op in sorted(required_operations(), key=lambda o: (o.service, o.name)):
        where = ", ".join(sorted({s.where for s in found.get(op, [])})) or "planned (issue #14)"
        if op.service == "apigateway":
            print(op.name, *template(op.name), where, sep="  ")
        else:
            print(op.name, ", ".join(str(r) for r in requests_for(op, OPERATOR)) or "no permission", where, sep="  ")
    print(*problems, sep="\n")
