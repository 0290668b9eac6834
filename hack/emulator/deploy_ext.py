"""Deployments and stages (API Gateway REST v1) on top of moto 5.2.5.

Installed by `apigw_ext.install()`. Follows reference/aws-apigateway-deploy-facts.md §2 and the
real-AWS recordings in aws-recorded-deploy-responses.json (tests/emulator/fixtures/
aws-recorded-deploy.json is derived from them); where the sources are silent, the choice made is
said in a comment starting with "Not recorded".

- CreateDeployment snapshots the draft: every method's integration with its integration
  responses, deep-copied, as GetIntegration returns it at that moment. Later edits of the draft
  do not change what a stage serves until the next deployment (`served()`, which the admin
  endpoint GET /_emulator/served/{restApiId}/{stageName} answers).
- With stageName it creates the stage or repoints it; with stageName + canarySettings it sets
  the stage's canary (the stage must exist; recorded 400s otherwise).
- Get/GetDeployments (paged), DeleteDeployment (400 while a stage, or a stage's canary, points
  at it).
- Create/Get/Get(s)/Delete/UpdateStage with AWS's defaults, the recorded patch paths and
  messages, method settings, canary paths and the promotion copy ops.

Dates are epoch seconds (numbers), as botocore's REST-JSON timestamps and the Rust SDK expect.
"""

from __future__ import annotations

import copy
import time
from typing import Any

from moto.apigateway import models as moto_models
from moto.apigateway.responses import APIGatewayResponse
from moto.apigateway.utils import ApigwDeploymentIdentifier

from apigw_ext import (
    MSG_API,
    PATCH_OPS,
    ApiError,
    _body,
    _check_enum,
    _check_string_map,
    _integration,
    _page,
    _path_parts,
    _query,
    aws_operation,
    bad_request,
    conflict,
    empty_triple,
    json_triple,
    not_found,
    unescape_pointer,
    validation_error,
)

MSG_STAGE = "Invalid Stage identifier specified"  # Not recorded: LocalStack's parity provider's text
MSG_DEPLOYMENT = "Invalid Deployment identifier specified"  # Not recorded: moto's text
MSG_DEPLOYMENT_MISSING = "Deployment id does not exist"  # recorded (canary deploymentId)
MSG_ACTIVE_STAGES = "Active stages pointing to this deployment must be moved or deleted"  # recorded
MSG_NO_METHODS = "The REST API doesn't contain any methods"  # moto's text; AWS's (user reports)
MSG_NO_INTEGRATION = "No integration defined for method"  # moto's text; AWS's (user reports)
MSG_STAGE_EXISTS = "Stage already exists"  # moto's text
MSG_PROMOTION = "Promotion not available. Canary does not exist."  # recorded
CANARY_PREFIX = "Invalid deployment content specified."  # recorded
# Recorded verbatim (AWS runs three entries together: "burstLimit/{resourcePath}..." and
# "burstLimit /*/*...").
STAGE_PATHS = (
    "[/deploymentId, /description, /cacheClusterEnabled, /cacheClusterSize, /clientCertificateId, "
    "/accessLogSettings, /accessLogSettings/destinationArn, /accessLogSettings/format, "
    "/{resourcePath}/{httpMethod}/metrics/enabled, /{resourcePath}/{httpMethod}/logging/dataTrace, "
    "/{resourcePath}/{httpMethod}/logging/loglevel, "
    "/{resourcePath}/{httpMethod}/throttling/burstLimit/{resourcePath}/{httpMethod}/throttling/rateLimit"
    "/{resourcePath}/{httpMethod}/caching/ttlInSeconds, /{resourcePath}/{httpMethod}/caching/enabled, "
    "/{resourcePath}/{httpMethod}/caching/dataEncrypted, "
    "/{resourcePath}/{httpMethod}/caching/requireAuthorizationForCacheControl, "
    "/{resourcePath}/{httpMethod}/caching/unauthorizedCacheControlHeaderStrategy, "
    "/*/*/metrics/enabled, /*/*/logging/dataTrace, /*/*/logging/loglevel, "
    "/*/*/throttling/burstLimit /*/*/throttling/rateLimit /*/*/caching/ttlInSeconds, "
    "/*/*/caching/enabled, /*/*/caching/dataEncrypted, "
    "/*/*/caching/requireAuthorizationForCacheControl, "
    "/*/*/caching/unauthorizedCacheControlHeaderStrategy, /variables/{variable_name}, /tracingEnabled]"
)
COPY_PAIRS = {
    ("/canarySettings/deploymentId", "/deploymentId"),
    ("/canarySettings/stageVariableOverrides", "/variables"),
}

# Method setting patch suffix -> (MethodSetting field, converter name). Recorded defaults of a
# new setting (facts §2.7); no loggingLevel key appears until one is set.
METHOD_SETTING_FIELDS = {
    "metrics/enabled": ("metricsEnabled", "bool"),
    "logging/dataTrace": ("dataTraceEnabled", "bool"),
    "logging/loglevel": ("loggingLevel", "loglevel"),
    "throttling/burstLimit": ("throttlingBurstLimit", "int"),
    "throttling/rateLimit": ("throttlingRateLimit", "float"),
    "caching/ttlInSeconds": ("cacheTtlInSeconds", "int"),
    "caching/enabled": ("cachingEnabled", "bool"),
    "caching/dataEncrypted": ("cacheDataEncrypted", "bool"),
    "caching/requireAuthorizationForCacheControl": ("requireAuthorizationForCacheControl", "bool"),
    "caching/unauthorizedCacheControlHeaderStrategy": ("unauthorizedCacheControlHeaderStrategy", "strategy"),
}
METHOD_SETTING_DEFAULTS = {
    "cacheDataEncrypted": False,
    "cacheTtlInSeconds": 300,
    "cachingEnabled": False,
    "dataTraceEnabled": False,
    "metricsEnabled": False,
    "requireAuthorizationForCacheControl": True,
    "throttlingBurstLimit": 5000,
    "throttlingRateLimit": 10000.0,
    "unauthorizedCacheControlHeaderStrategy": "SUCCEED_WITH_RESPONSE_HEADER",
}
LOG_LEVELS = ["OFF", "ERROR", "INFO"]
CACHE_STRATEGIES = ["FAIL_WITH_403", "SUCCEED_WITH_RESPONSE_HEADER", "SUCCEED_WITHOUT_RESPONSE_HEADER"]


def _now() -> int:
    return int(time.time())


# --------------------------------------------------------------------------- models


class ExtDeployment(moto_models.Deployment):
    """A deployment: id, description, createdDate and the frozen snapshot of the draft."""

    __module__ = "moto.apigateway.emulator_ext"

    def __init__(self, deployment_id: str, description: str | None,
                 integrations: dict[str, dict[str, Any]], methods: dict[str, dict[str, Any]]):
        self.id = deployment_id
        self.description = description
        self.created_date = _now()
        self.stage_name = None  # moto's attribute; stages point at deployments, not the reverse
        # "<resourcePath> <VERB>" -> the integration JSON (GetIntegration's answer) at deploy time
        self.integrations = integrations
        # resourcePath -> verb -> {authorizationType, apiKeyRequired} (GetDeployment embed=apisummary)
        self.methods = methods

    def to_json(self, embed_summary: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "createdDate": self.created_date}
        if self.description is not None:
            out["description"] = self.description
        if embed_summary:
            out["apiSummary"] = copy.deepcopy(self.methods)
        return out


def _deployment(api: Any, deployment_id: str) -> ExtDeployment | None:
    dep = api.deployments.get(deployment_id)
    if dep is None:
        return None
    if not isinstance(dep, ExtDeployment):  # made by moto itself (CloudFormation): no snapshot
        new = ExtDeployment(dep.id, getattr(dep, "description", None) or None, {}, {})
        new.created_date = getattr(dep, "created_date", new.created_date)
        api.deployments[deployment_id] = dep = new
    return dep


class ExtStage(moto_models.Stage):
    """A stage stored as AWS's fields (`data`; a key is absent when unset)."""

    __module__ = "moto.apigateway.emulator_ext"

    def __init__(self, data: dict[str, Any]):
        now = _now()
        self.data = {k: v for k, v in data.items() if v is not None}
        self.data.setdefault("cacheClusterEnabled", False)
        self.data.setdefault("cacheClusterStatus",
                             "AVAILABLE" if self.data["cacheClusterEnabled"] else "NOT_AVAILABLE")
        self.data.setdefault("methodSettings", {})
        self.data.setdefault("tracingEnabled", False)
        if not self.data.get("variables"):
            self.data.pop("variables", None)
        if not self.data.get("tags"):
            self.data.pop("tags", None)
        self.data["createdDate"] = now
        self.data["lastUpdatedDate"] = now

    # moto's attribute names, for moto code that reads them (base path mappings, tagging)
    name = property(lambda self: self.data["stageName"])
    deployment_id = property(lambda self: self.data.get("deploymentId"))
    variables = property(lambda self: self.data.get("variables") or {})
    description = property(lambda self: self.data.get("description", ""))
    method_settings = property(lambda self: self.data.get("methodSettings", {}))

    @property
    def tags(self) -> dict[str, str] | None:
        return self.data.get("tags")

    @tags.setter
    def tags(self, value: dict[str, str] | None) -> None:
        if value:
            self.data["tags"] = value
        else:
            self.data.pop("tags", None)

    def canary_deployment_id(self) -> str | None:
        return (self.data.get("canarySettings") or {}).get("deploymentId")

    def touch(self) -> None:
        self.data["lastUpdatedDate"] = _now()

    def to_json(self) -> dict[str, Any]:
        return copy.deepcopy(self.data)


def _stage(api: Any, name: str) -> ExtStage | None:
    st = api.stages.get(name)
    if st is None:
        return None
    if not isinstance(st, ExtStage):  # made by moto itself (CloudFormation)
        j = {k: v for k, v in st.to_json().items() if v not in (None, "", {})}
        api.stages[name] = st = ExtStage(j)
    return st


def _canary(settings: dict[str, Any], deployment_id: str) -> dict[str, Any]:
    """canarySettings as AWS answers it: percentTraffic a double (default 0.0), useStageCache
    false unless set, stageVariableOverrides only when given."""
    out: dict[str, Any] = {
        "deploymentId": deployment_id,
        "percentTraffic": _percent(settings.get("percentTraffic", 0.0)),
        "useStageCache": bool(settings.get("useStageCache", False)),
    }
    overrides = settings.get("stageVariableOverrides")
    if overrides:
        out["stageVariableOverrides"] = dict(overrides)
    return out


def _percent(value: Any) -> float:
    # Not recorded: the message for a bad percentTraffic (BadRequest, as AWS's other checks).
    try:
        p = float(value)
    except (TypeError, ValueError):
        raise bad_request(f"Invalid percentTraffic specified: {value}")
    if not 0.0 <= p <= 100.0:
        raise bad_request(f"Invalid percentTraffic specified: {value}. Must be between 0.0 and 100.0")
    return p


def _bool_value(value: Any, path: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    # Not recorded: the message for a value that is not a boolean.
    raise bad_request(f"Invalid boolean value specified for {path}: {value}")


# --------------------------------------------------------------------------- lookups


def _api_of(self: APIGatewayResponse) -> Any:
    # Not recorded for these calls: the message GetRestApi uses for a missing API.
    api = self.backend.apis.get(_path_parts(self)[2])
    if api is None:
        raise not_found(MSG_API)
    return api


def _snapshot(api: Any) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """The draft as a deployment freezes it (deep copies)."""
    integrations: dict[str, dict[str, Any]] = {}
    methods: dict[str, dict[str, Any]] = {}
    any_method = False
    for resource in api.resources.values():
        path = resource.get_path()
        for verb, method in resource.resource_methods.items():
            any_method = True
            if method.method_integration is None:
                # moto checks only that SOME method has one; AWS refuses while any lacks one.
                raise bad_request(MSG_NO_INTEGRATION)
            integrations[f"{path} {verb}"] = _integration(method).to_json()
            summary: dict[str, Any] = {
                "authorizationType": getattr(method, "authorization_type", None) or "NONE",
                "apiKeyRequired": bool(getattr(method, "api_key_required", False)),
            }
            methods.setdefault(path, {})[verb] = summary
    if not any_method:
        raise bad_request(MSG_NO_METHODS)
    return integrations, methods


def served(api_id: str, stage_name: str) -> dict[str, Any] | None:
    """What a stage serves: its deployment's (and canary's) frozen integrations. None when there
    is no such API or stage (in any account or region)."""
    for account_backends in list(dict.values(moto_models.apigateway_backends)):
        for backend in list(dict.values(account_backends)):
            api = backend.apis.get(api_id)
            if api is None:
                continue
            stage = _stage(api, stage_name)
            if stage is None:
                return None
            dep = _deployment(api, stage.deployment_id or "")
            canary_id = stage.canary_deployment_id()
            canary = _deployment(api, canary_id) if canary_id else None
            return {
                "deploymentId": stage.deployment_id,
                "canaryDeploymentId": canary_id,
                "integrations": copy.deepcopy(dep.integrations) if dep else {},
                "canaryIntegrations": copy.deepcopy(canary.integrations) if canary else None,
            }
    return None


# --------------------------------------------------------------------------- deployments


@aws_operation
def create_deployment(self: APIGatewayResponse):
    body = _body(self)
    api = _api_of(self)
    for name in ("variables",):
        _check_string_map(name, body.get(name))
    stage_name = body.get("stageName")
    canary_settings = body.get("canarySettings")
    if canary_settings is not None:
        if not isinstance(canary_settings, dict):
            raise ApiError(400, "SerializationException", "canarySettings must be an object")
        _check_string_map("stageVariableOverrides", canary_settings.get("stageVariableOverrides"))
        if not stage_name:
            # Recorded: "... Provided value is null" / "... Provided value is " (empty).
            raise bad_request(
                CANARY_PREFIX + "Non null and non empty stageName must be provided for canary "
                f"deployment. Provided value is {'null' if stage_name is None else stage_name}"
            )
        if _stage(api, stage_name) is None:
            raise bad_request(
                CANARY_PREFIX + f"Stage {stage_name} must already be created before making a "
                "canary release deployment"
            )
        _percent(canary_settings.get("percentTraffic", 0.0))
    integrations, methods = _snapshot(api)
    dep_id = ApigwDeploymentIdentifier(api.account_id, api.region_name, stage_name or "").generate(
        list(api.deployments.keys())
    )
    dep = ExtDeployment(dep_id, body.get("description"), integrations, methods)
    api.deployments[dep_id] = dep
    if stage_name:
        stage = _stage(api, stage_name)
        if canary_settings is not None:
            # Recorded: the main deploymentId stays; the whole canary block is replaced.
            stage.data["canarySettings"] = _canary(canary_settings, dep_id)
            stage.touch()
        elif stage is not None:
            # Recorded: an existing stage is repointed. Not recorded: whether the request's
            # variables / stageDescription / cache / tracing overwrite the stage's values; they
            # are NOT applied here (use UpdateStage), so code relying on them fails in tests
            # rather than in AWS. An existing canary is kept.
            stage.data["deploymentId"] = dep_id
            stage.touch()
        else:
            api.stages[stage_name] = ExtStage({
                "stageName": stage_name,
                "deploymentId": dep_id,
                "description": body.get("stageDescription"),
                "cacheClusterEnabled": bool(body.get("cacheClusterEnabled", False)),
                "cacheClusterSize": (body.get("cacheClusterSize") or "0.5") if body.get("cacheClusterEnabled") else None,
                "variables": body.get("variables"),
                "tracingEnabled": bool(body.get("tracingEnabled", False)),
            })
    return json_triple(201, dep.to_json())


def _embed_summary(self: APIGatewayResponse) -> bool:
    return any("apisummary" in v.lower().split(",") for v in _query(self).get("embed", []))


@aws_operation
def get_deployment(self: APIGatewayResponse):
    api = _api_of(self)
    dep = _deployment(api, _path_parts(self)[4])
    if dep is None:
        raise not_found(MSG_DEPLOYMENT)
    return json_triple(200, dep.to_json(_embed_summary(self)))


@aws_operation
def get_deployments(self: APIGatewayResponse):
    api = _api_of(self)
    deps = [_deployment(api, d) for d in list(api.deployments)]
    page, position = _page(self, deps)
    # botocore's Deployments.items is serialised under "item" (as GetRestApis' and GetStages').
    body: dict[str, Any] = {"item": [d.to_json() for d in page]}
    if position is not None:
        body["position"] = position
    return json_triple(200, body)


@aws_operation
def delete_deployment(self: APIGatewayResponse):
    api = _api_of(self)
    dep_id = _path_parts(self)[4]
    if _deployment(api, dep_id) is None:
        raise not_found(MSG_DEPLOYMENT)
    for name in list(api.stages):
        stage = _stage(api, name)
        # Recorded for a stage's deploymentId. Not recorded for a canary's deploymentId: refused
        # too (the stage serves it to part of the traffic), so an operator that deletes a
        # canary's deployment without first removing the canary fails here, not in AWS.
        if dep_id in (stage.deployment_id, stage.canary_deployment_id()):
            raise bad_request(MSG_ACTIVE_STAGES)
    del api.deployments[dep_id]
    return empty_triple(202)


# --------------------------------------------------------------------------- stages


def _required(errors: list[str], body: dict[str, Any], field: str, input_name: str) -> None:
    if body.get(field) is None:
        errors.append(f"Value null at '{input_name}.{field}' failed to satisfy constraint: "
                      "Member must not be null")


@aws_operation
def create_stage(self: APIGatewayResponse):
    body = _body(self)
    errors: list[str] = []
    _required(errors, body, "stageName", "createStageInput")
    _required(errors, body, "deploymentId", "createStageInput")
    if errors:
        raise validation_error(errors)
    for name in ("variables", "tags"):
        _check_string_map(name, body.get(name))
    api = _api_of(self)
    name = body["stageName"]
    if _stage(api, name) is not None:
        raise conflict(MSG_STAGE_EXISTS)
    dep_id = body["deploymentId"]
    # Not recorded for the main deploymentId: the recorded canary message is used.
    if _deployment(api, dep_id) is None:
        raise bad_request(MSG_DEPLOYMENT_MISSING)
    canary = body.get("canarySettings")
    canary_json = None
    if canary is not None:
        if not isinstance(canary, dict):
            raise ApiError(400, "SerializationException", "canarySettings must be an object")
        _check_string_map("stageVariableOverrides", canary.get("stageVariableOverrides"))
        canary_dep = canary.get("deploymentId") or dep_id  # Not recorded: defaults to the stage's
        if _deployment(api, canary_dep) is None:
            raise bad_request(MSG_DEPLOYMENT_MISSING)  # recorded
        canary_json = _canary(canary, canary_dep)
    enabled = bool(body.get("cacheClusterEnabled", False))
    stage = ExtStage({
        "stageName": name,
        "deploymentId": dep_id,
        "description": body.get("description"),
        "cacheClusterEnabled": enabled,
        "cacheClusterSize": (body.get("cacheClusterSize") or "0.5") if enabled else None,
        "variables": body.get("variables"),
        "documentationVersion": body.get("documentationVersion"),
        "canarySettings": canary_json,
        "tracingEnabled": bool(body.get("tracingEnabled", False)),
        "tags": body.get("tags"),
    })
    api.stages[name] = stage
    return json_triple(201, stage.to_json())


def _stage_of(self: APIGatewayResponse) -> tuple[Any, ExtStage]:
    api = _api_of(self)
    stage = _stage(api, _path_parts(self)[4])
    if stage is None:
        raise not_found(MSG_STAGE)
    return api, stage


@aws_operation
def get_stage(self: APIGatewayResponse):
    _, stage = _stage_of(self)
    return json_triple(200, stage.to_json())


@aws_operation
def get_stages(self: APIGatewayResponse):
    api = _api_of(self)
    wanted = (_query(self).get("deploymentId") or [None])[0]
    stages = [_stage(api, n) for n in list(api.stages)]
    # Recorded: the filter keeps the stages whose deploymentId it is. Not recorded whether a
    # canary's deploymentId matches too: it does not here.
    if wanted:
        stages = [s for s in stages if s.deployment_id == wanted]
    return json_triple(200, {"item": [s.to_json() for s in stages]})


@aws_operation
def delete_stage(self: APIGatewayResponse):
    api, stage = _stage_of(self)
    del api.stages[stage.name]  # its deployments stay (facts §2.8)
    return empty_triple(202)


@aws_operation
def update_stage(self: APIGatewayResponse):
    body = _body(self)
    operations = body.get("patchOperations") or []
    if not isinstance(operations, list) or not all(isinstance(o, dict) for o in operations):
        raise ApiError(400, "SerializationException", "patchOperations must be a list of objects")
    errors: list[str] = []
    for i, op in enumerate(operations, start=1):
        _check_enum(errors, op.get("op"), f"updateStageInput.patchOperations.{i}.member.op", PATCH_OPS)
    if errors:
        raise validation_error(errors)
    api, stage = _stage_of(self)
    data = copy.deepcopy(stage.data)
    for op in operations:
        _apply_stage_op(api, data, op)
    stage.data = data
    stage.touch()
    return json_triple(200, stage.to_json())


def _invalid_path(path: str) -> ApiError:
    return bad_request(f"Invalid method setting path: {path}. Must be one of: {STAGE_PATHS}")


def _cannot_remove(path: str) -> ApiError:
    # Recorded for "*/*" (absent), "canarySettings/stageVariableOverrides" and
    # "canarySettings/badPath" (trailing space included).
    return bad_request(
        f"Cannot remove method setting {path.lstrip('/')} because there is no method setting "
        "for this method "
    )


def _ensure_canary(data: dict[str, Any]) -> dict[str, Any]:
    """The canary a /canarySettings/... replace edits; recorded: created on demand with the
    stage's deploymentId, percentTraffic 0.0 and useStageCache false."""
    if "canarySettings" not in data:
        data["canarySettings"] = _canary({}, data["deploymentId"])
    return data["canarySettings"]


def _method_setting_key(path: str) -> tuple[str, str] | None:
    """'/{resourcePath}/{httpMethod}/{group}/{name}' -> ('resourcePath/httpMethod', suffix),
    read from the right, so a nested resource path written with raw '/' ('pets/toys', the way
    Terraform's method_path does it) works too. The key is stored as written ('*/*', 'test/GET'
    as recorded; a '~1'-escaped path stays escaped: not recorded)."""
    parts = path.lstrip("/").split("/")
    if len(parts) < 4:
        return None
    suffix = "/".join(parts[-2:])
    if suffix not in METHOD_SETTING_FIELDS:
        return None
    resource_path = "/".join(parts[:-3])
    verb = parts[-3]
    if not resource_path or not verb:
        return None
    return f"{resource_path}/{verb}", suffix


def _method_setting_value(kind: str, value: Any, path: str) -> Any:
    # Not recorded: the messages for a wrongly typed method-setting value.
    try:
        if kind == "bool":
            return _bool_value(value, path)
        if kind == "int":
            return int(str(value))
        if kind == "float":
            return float(str(value))
    except ValueError:
        raise bad_request(f"Invalid value specified for {path}: {value}")
    if kind == "loglevel":
        if str(value).upper() not in LOG_LEVELS:
            raise bad_request(f"Invalid logging level specified: {value}. Valid options are {','.join(LOG_LEVELS)}")
        return str(value).upper()
    if value not in CACHE_STRATEGIES:
        raise bad_request(
            f"Invalid unauthorizedCacheControlHeaderStrategy specified: {value}. Valid options are "
            + ",".join(CACHE_STRATEGIES)
        )
    return value


def _apply_stage_op(api: Any, data: dict[str, Any], op: dict[str, Any]) -> None:
    verb = op.get("op")
    raw = op.get("path")
    if raw is None or raw == "":
        raise bad_request("Invalid patch path null" if raw is None else "Invalid patch path ")
    path = raw if raw.startswith("/") else "/" + raw
    value = op.get("value")

    if verb == "copy":
        source = op.get("from")
        if (source, path) not in COPY_PAIRS:  # recorded message; checked before the canary
            raise bad_request(
                f"Invalid copy operation with path: {path} and from {source}. Valid copy:path are "
                "[/deploymentId, /variables] and valid copy:from are "
                "[/canarySettings/deploymentId, /canarySettings/stageVariableOverrides]"
            )
        canary = data.get("canarySettings")
        if canary is None:
            raise bad_request(MSG_PROMOTION)  # recorded
        if path == "/deploymentId":
            data["deploymentId"] = canary["deploymentId"]
        else:  # recorded: the overrides are merged key by key into the variables
            merged = dict(data.get("variables") or {})
            merged.update(canary.get("stageVariableOverrides") or {})
            if merged:
                data["variables"] = merged
        return  # recorded: the canary block stays

    if verb in ("add", "move", "test"):
        # Recorded for add /canarySettings/deploymentId. Not recorded: that every add, move and
        # test is refused the same way (no UpdateStage path is known to take them).
        raise bad_request(f"Invalid {verb} operation with path: {path}")

    if verb == "remove":
        _remove_stage_path(data, path)
        return

    # replace
    if path == "/deploymentId":
        # Not recorded for /deploymentId: the recorded message of /canarySettings/deploymentId.
        if value is None or _deployment(api, value) is None:
            raise bad_request(MSG_DEPLOYMENT_MISSING)
        data["deploymentId"] = value
    elif path == "/description":
        if value is None:
            data.pop("description", None)
        else:
            data["description"] = value
    elif path == "/tracingEnabled":
        data["tracingEnabled"] = _bool_value(value, path)
    elif path == "/cacheClusterEnabled":
        enabled = _bool_value(value, path)
        data["cacheClusterEnabled"] = enabled
        data["cacheClusterStatus"] = "AVAILABLE" if enabled else "NOT_AVAILABLE"
        if enabled:
            data.setdefault("cacheClusterSize", "0.5")
        else:
            data.pop("cacheClusterSize", None)
    elif path == "/cacheClusterSize":
        data["cacheClusterSize"] = str(value)
    elif path == "/clientCertificateId":
        if value:
            data["clientCertificateId"] = value
        else:
            data.pop("clientCertificateId", None)
    elif path in ("/accessLogSettings/destinationArn", "/accessLogSettings/format"):
        settings = dict(data.get("accessLogSettings") or {})
        if value:
            settings[path.rsplit("/", 1)[1]] = value
        else:
            settings.pop(path.rsplit("/", 1)[1], None)
        if settings:
            data["accessLogSettings"] = settings
        else:
            data.pop("accessLogSettings", None)
    elif path.startswith("/variables/") and len(path) > len("/variables/") and "/" not in path[len("/variables/"):]:
        if value is None:
            raise bad_request("Invalid null or empty value in variables")  # Not recorded
        data["variables"] = dict(data.get("variables") or {}, **{unescape_pointer(path[11:]): value})
    elif path == "/canarySettings/percentTraffic":
        _ensure_canary(data)["percentTraffic"] = _percent(value)
    elif path == "/canarySettings/deploymentId":
        if value is None or _deployment(api, value) is None:
            raise bad_request(MSG_DEPLOYMENT_MISSING)  # recorded
        if "canarySettings" not in data:
            data["canarySettings"] = _canary({}, value)
        else:
            data["canarySettings"]["deploymentId"] = value
    elif path == "/canarySettings/useStageCache":
        # The canary guide says useStageCache is updatable; this exact path is not recorded.
        _ensure_canary(data)["useStageCache"] = _bool_value(value, path)
    elif (path.startswith("/canarySettings/stageVariableOverrides/")
          and "/" not in path[len("/canarySettings/stageVariableOverrides/"):]
          and len(path) > len("/canarySettings/stageVariableOverrides/")):
        if value is None:
            raise bad_request("Invalid null or empty value in stageVariableOverrides")  # Not recorded
        canary = _ensure_canary(data)
        name = unescape_pointer(path[len("/canarySettings/stageVariableOverrides/"):])
        canary["stageVariableOverrides"] = dict(canary.get("stageVariableOverrides") or {}, **{name: value})
    else:
        found = _method_setting_key(path)
        if found is None:
            raise _invalid_path(path)  # recorded (incl. /canarySettings and /canarySettings/badPath)
        key, suffix = found
        field, kind = METHOD_SETTING_FIELDS[suffix]
        settings = data.setdefault("methodSettings", {})
        if key not in settings:
            # Recorded: a new per-method setting starts from the current */* setting (test/GET
            # inherited cachingEnabled true), else from AWS's defaults; later */* changes do
            # not touch per-method settings.
            settings[key] = copy.deepcopy(settings.get("*/*") or METHOD_SETTING_DEFAULTS)
        settings[key][field] = _method_setting_value(kind, value, path)


def _remove_stage_path(data: dict[str, Any], path: str) -> None:
    if path == "/canarySettings":
        if "canarySettings" not in data:
            # Not recorded: removing an absent canary. Refused like an absent method setting.
            raise _cannot_remove(path)
        del data["canarySettings"]  # recorded: the key disappears
        return
    if path.startswith("/variables/") and "/" not in path[len("/variables/"):] and len(path) > 11:
        name = unescape_pointer(path[len("/variables/"):])
        variables = dict(data.get("variables") or {})
        if name not in variables:
            # Not recorded: removing a missing variable. Refused with the message AWS gives for
            # every other recorded remove of something absent in UpdateStage, so an operator
            # that removes only what GetStage showed works either way.
            raise _cannot_remove(path)
        del variables[name]
        if variables:
            data["variables"] = variables
        else:
            data.pop("variables", None)
        return
    if path == "/accessLogSettings":
        data.pop("accessLogSettings", None)  # Not recorded when absent: a no-op (moto's choice)
        return
    # A method setting "/{resourcePath}/{httpMethod}" (recorded for */*). Everything else,
    # e.g. /canarySettings/stageVariableOverrides (recorded) or one override
    # /canarySettings/stageVariableOverrides/{name} (not recorded), is "no method setting".
    parts = path.lstrip("/").split("/")
    if len(parts) >= 2:
        key = "/".join(parts)
        settings = data.get("methodSettings") or {}
        if key in settings and not path.startswith("/canarySettings/"):
            del settings[key]
            data["methodSettings"] = settings
            return
    raise _cannot_remove(path)


# --------------------------------------------------------------------------- install


OPERATIONS = (
    create_deployment,
    get_deployment,
    get_deployments,
    delete_deployment,
    create_stage,
    get_stage,
    get_stages,
    delete_stage,
    update_stage,
)


def install() -> None:
    for func in OPERATIONS:
        setattr(APIGatewayResponse, func.__name__, func)
