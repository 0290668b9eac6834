"""API Gateway (REST v1) fixes on top of moto 5.2.5.

Installed by `install()`, which patches moto's `APIGatewayResponse` (moto routes each
request through botocore's model to an operation name, then calls the snake_case method
of that name on the response class, so adding or replacing methods there is enough) and
a few model classes. What it changes, following reference/aws-apigateway-facts.md and
the real-AWS recordings the conformance tests are derived from:

- UpdateIntegration (missing in moto): the documented (op, path) table, applied in order,
  all or nothing, with AWS's 400 messages for anything else.
- UpdateIntegrationResponse (missing in moto); with the `strict_response_patch` switch only the
  (op, path) pairs the facts evidence (§1.3).
- Put/UpdateIntegrationResponse refuse a second "default" response (no selectionPattern) with
  the user-reported 409 ConflictException (facts §1.1).
- PutIntegration keeps every field and fills AWS's defaults (timeoutInMillis 29000,
  passthroughBehavior WHEN_NO_MATCH, cacheKeyParameters [], cacheNamespace = resource id);
  over an existing integration it drops the integration responses (unless the
  `put_integration_keeps_responses` switch is on).
- Integration-response status codes must match [1-5]\d\d (recorded ValidationException).
- The `ignore_paths` / `normalise` switches make UpdateIntegration store something other
  than what the patch asked for (see `Behaviour`).
- Get/Put/Update/DeleteIntegration(Response) answer 404 NotFoundException with AWS's
  messages for a missing API, resource, method, integration or status code.
- GetResources/GetResource honour `embed=methods` (methods with their integrations), and
  GetResources/GetRestApis page with `limit`/`position`.
- Responses leave out unset fields instead of sending nulls, like AWS.
- Deployments and stages (snapshots of the draft, canaries, UpdateStage): deploy_ext.py.

Errors are sent in AWS's REST-JSON shape: header `x-amzn-ErrorType: <Code>` and body
`{"message": "..."}`.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from moto.apigateway import exceptions as moto_exc
from moto.apigateway import models as moto_models
from moto.apigateway.responses import APIGatewayResponse
from moto.utilities.utils import get_partition

ACCOUNT_PLACEHOLDER = "123456789012"

INTEGRATION_TYPES = ["HTTP", "MOCK", "AWS_PROXY", "HTTP_PROXY", "AWS"]
CONNECTION_TYPES = ["INTERNET", "VPC_LINK"]
PASSTHROUGH_BEHAVIORS = ["WHEN_NO_MATCH", "WHEN_NO_TEMPLATES", "NEVER"]
CONTENT_HANDLINGS = ["CONVERT_TO_BINARY", "CONVERT_TO_TEXT"]
HTTP_METHODS = ["GET", "PUT", "POST", "DELETE", "PATCH", "OPTIONS", "HEAD", "ANY"]
PATCH_OPS = ["add", "remove", "move", "test", "replace", "copy"]
DEFAULT_TIMEOUT_MS = 29000
MIN_TIMEOUT_MS = 50
MAX_TIMEOUT_MS = 29000
PAGE_DEFAULT = 25
PAGE_MAX = 500

MSG_API = "Invalid API identifier specified"
MSG_RESOURCE = "Invalid Resource identifier specified"
MSG_METHOD = "Invalid Method identifier specified"
MSG_INTEGRATION = "Invalid Integration identifier specified"
MSG_STATUS = "Invalid Response status code specified"
MSG_DEFAULT_EXISTS = "Integration response with selection pattern default already exists"
STATUS_CODE_PATTERN = r"[1-5]\d\d"


# --------------------------------------------------------------------------- behaviour switches


class Behaviour:
    """Switches of the emulator's fault config that change what the model does (set by
    emulator_app.EmulatorApp through `configure`, while no API call runs):

    ignore_paths    UpdateIntegration patch paths accepted (200) but not applied: the answer,
                    and the stored integration, keep those paths as they were (AWS ignored an op)
    normalise       {path: value}: an add/replace on that UpdateIntegration path stores `value`
                    instead of the value sent (null removes the field or key)
    put_integration_keeps_responses
                    PutIntegration over an existing integration keeps its integration responses
                    (default: they are dropped, the behaviour inferred in the facts, §3)
    strict_response_patch
                    UpdateIntegrationResponse accepts only the (op, path) pairs the facts evidence
                    (§1.3): `replace /selectionPattern` and `replace /responseTemplates/{type}` of
                    a content type the response already has; any other pair is a 400. Default:
                    the permissive table (INTEGRATION_RESPONSE_PATCH). AWS's own table is unknown,
                    so tests can cover both answers.
    """

    def __init__(self, ignore_paths: list[str] | None = None, normalise: dict[str, Any] | None = None,
                 put_integration_keeps_responses: bool = False, strict_response_patch: bool = False):
        self.ignore_paths = [pointer(p) for p in ignore_paths or []]
        self.normalise = [(pointer(p), v) for p, v in (normalise or {}).items()]
        self.put_integration_keeps_responses = put_integration_keeps_responses
        self.strict_response_patch = strict_response_patch


BEHAVIOUR = Behaviour()


def configure(behaviour: Behaviour) -> None:
    global BEHAVIOUR
    BEHAVIOUR = behaviour


# --------------------------------------------------------------------------- errors


class ApiError(Exception):
    """An error answered in AWS's REST-JSON shape."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequestException", message)


def not_found(message: str) -> ApiError:
    return ApiError(404, "NotFoundException", message)


def conflict(message: str) -> ApiError:
    return ApiError(409, "ConflictException", message)


def validation_error(errors: list[str]) -> ApiError:
    n = len(errors)
    head = f"{n} validation error{'s' if n > 1 else ''} detected: "
    return ApiError(400, "ValidationException", head + "; ".join(errors))


def error_triple(status: int, code: str, message: str) -> tuple[int, dict[str, str], str]:
    headers = {
        "status": str(status),
        "x-amzn-ErrorType": code,
        "Content-Type": "application/json",
    }
    return status, headers, json.dumps({"message": message})


def json_triple(status: int, body: Any) -> tuple[int, dict[str, str], str]:
    return status, {"status": str(status), "Content-Type": "application/json"}, json.dumps(body)


def empty_triple(status: int) -> tuple[int, dict[str, str], str]:
    return status, {"status": str(status)}, ""


def aws_operation(func):
    """Turn ApiError into AWS's error response; let moto handle its own exceptions."""

    def wrapper(self: APIGatewayResponse):
        try:
            return func(self)
        except ApiError as e:
            return error_triple(e.status, e.code, e.message)

    wrapper.__name__ = func.__name__
    wrapper.__doc__ = func.__doc__
    return wrapper


# --------------------------------------------------------------------------- models


class ExtIntegrationResponse(moto_models.IntegrationResponse):
    """An integration response stored as AWS's fields (None = not set)."""

    # moto's model metaclass files models by the second part of their module name.
    __module__ = "moto.apigateway.emulator_ext"

    def __init__(self, status_code: str, data: dict[str, Any]):
        self.data: dict[str, Any] = {"statusCode": str(status_code)}
        self.data.update({k: v for k, v in data.items() if v is not None})

    # moto's attribute names, for moto code that still reads them
    status_code = property(lambda self: self.data["statusCode"])
    selection_pattern = property(lambda self: self.data.get("selectionPattern"))
    response_templates = property(lambda self: self.data.get("responseTemplates") or {})
    response_parameters = property(lambda self: self.data.get("responseParameters"))
    content_handling = property(lambda self: self.data.get("contentHandling"))

    def to_json(self) -> dict[str, Any]:
        return copy.deepcopy(self.data)


class ExtIntegration(moto_models.Integration):
    """An integration stored as AWS's fields (a key is absent when unset)."""

    __module__ = "moto.apigateway.emulator_ext"

    def __init__(self, data: dict[str, Any]):
        self.data = {k: v for k, v in data.items() if v is not None}
        self.integration_responses: dict[str, ExtIntegrationResponse] | None = None

    # moto's attribute names, for moto code that still reads them (deployments, mocks)
    integration_type = property(lambda self: self.data.get("type"))
    uri = property(lambda self: self.data.get("uri"))
    http_method = property(lambda self: self.data.get("httpMethod"))
    passthrough_behaviour = property(lambda self: self.data.get("passthroughBehavior"))
    cache_key_parameters = property(lambda self: self.data.get("cacheKeyParameters", []))
    request_templates = property(lambda self: self.data.get("requestTemplates"))
    tls_config = property(lambda self: self.data.get("tlsConfig"))
    cache_namespace = property(lambda self: self.data.get("cacheNamespace"))
    timeout_in_millis = property(lambda self: self.data.get("timeoutInMillis"))
    request_parameters = property(lambda self: self.data.get("requestParameters"))
    content_handling = property(lambda self: self.data.get("contentHandling"))
    credentials = property(lambda self: self.data.get("credentials"))
    connection_type = property(lambda self: self.data.get("connectionType"))
    connection_id = property(lambda self: self.data.get("connectionId"))

    def to_json(self) -> dict[str, Any]:
        out = copy.deepcopy(self.data)
        if self.integration_responses:
            out["integrationResponses"] = {
                k: v.to_json() for k, v in self.integration_responses.items()
            }
        return out

    def create_integration_response(  # type: ignore[override]
        self,
        status_code: str,
        selection_pattern: str | None,
        response_templates: dict[str, Any] | None,
        response_parameters: dict[str, str] | None,
        content_handling: str | None = None,
    ) -> ExtIntegrationResponse:
        ir = ExtIntegrationResponse(
            status_code,
            {
                "selectionPattern": selection_pattern,
                "responseTemplates": _templates(response_templates),
                "responseParameters": response_parameters,
                "contentHandling": content_handling,
            },
        )
        if self.integration_responses is None:
            self.integration_responses = {}
        self.integration_responses[str(status_code)] = ir
        return ir

    def get_integration_response(self, status_code: str) -> ExtIntegrationResponse:
        ir = (self.integration_responses or {}).get(str(status_code))
        if ir is None:
            raise not_found(MSG_STATUS)
        return ir

    def delete_integration_response(self, status_code: str) -> ExtIntegrationResponse:
        ir = self.get_integration_response(status_code)
        del self.integration_responses[str(status_code)]  # type: ignore[index]
        return ir


def _templates(templates: dict[str, Any] | None) -> dict[str, Any] | None:
    """AWS stores an empty template as null (a passthrough template)."""
    if templates is None:
        return None
    return {k: (v if v not in ("",) else None) for k, v in templates.items()}


def _clean_method_json(method: moto_models.Method) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in _orig_method_to_json(method).items():
        if value is None:
            continue
        if key == "methodResponses" and not value:
            continue
        out[key] = value
    return out


_orig_method_to_json = moto_models.Method.to_json


# --------------------------------------------------------------------------- lookups


def _path_parts(self: APIGatewayResponse) -> list[str]:
    return [unquote(p) for p in urlparse(self.uri).path.split("/")]


def _api(self: APIGatewayResponse, api_id: str, message: str = MSG_RESOURCE):
    api = self.backend.apis.get(api_id)
    if api is None:
        raise not_found(message)
    return api


def _locate(self: APIGatewayResponse, missing_method: str = MSG_METHOD):
    """(api, resource, method) from /restapis/{api}/resources/{res}/methods/{verb}/..."""
    parts = _path_parts(self)
    api_id, resource_id, verb = parts[2], parts[4], parts[6]
    api = _api(self, api_id)
    resource = api.resources.get(resource_id)
    if resource is None:
        raise not_found(MSG_RESOURCE)
    method = resource.resource_methods.get(verb)
    if method is None:
        raise not_found(missing_method)
    return api, resource, method


def _integration(method: moto_models.Method) -> ExtIntegration:
    integ = method.method_integration
    if integ is None:
        raise not_found(MSG_INTEGRATION)
    if not isinstance(integ, ExtIntegration):  # created by moto itself (e.g. CloudFormation)
        integ = _upgrade(integ)
        method.method_integration = integ
    return integ


def _upgrade(old: moto_models.Integration) -> ExtIntegration:
    j = old.to_json()
    j.pop("integrationResponses", None)
    new = ExtIntegration(j)
    for code, ir in (old.integration_responses or {}).items():
        new.create_integration_response(
            code, ir.selection_pattern, ir.response_templates, ir.response_parameters,
            ir.content_handling,
        )
    return new


def _body(self: APIGatewayResponse) -> dict[str, Any]:
    if not self.body:
        return {}
    try:
        body = json.loads(self.body)
    except ValueError:
        raise ApiError(400, "SerializationException", "Unable to parse the request body as JSON")
    if not isinstance(body, dict):
        raise ApiError(400, "SerializationException", "The request body must be a JSON object")
    return body


def _query(self: APIGatewayResponse) -> dict[str, list[str]]:
    return parse_qs(urlparse(self.uri).query, keep_blank_values=True)


# --------------------------------------------------------------------------- validation


def _check_enum(errors: list[str], value: Any, where: str, allowed: list[str]) -> None:
    if value is not None and value not in allowed:
        errors.append(
            f"Value '{value}' at '{where}' failed to satisfy constraint: "
            f"Member must satisfy enum value set: [{', '.join(allowed)}]"
        )


def _java_class(value: Any) -> str:
    if isinstance(value, bool):
        return "java.lang.Boolean"
    if isinstance(value, (int, float)):
        return "com.amazon.coral.value.json.numbers.TruncatingBigNumber"
    if isinstance(value, list):
        return "java.util.ArrayList"
    return "java.util.LinkedHashMap"


def _check_string_map(name: str, value: Any) -> None:
    """AWS's deserializer rejects non-string values of a string map (recorded messages)."""
    if value is None:
        return
    if not isinstance(value, dict):
        raise ApiError(
            400, "SerializationException",
            f"class {_java_class(value)} can not be converted to an Map",
        )
    for v in value.values():
        if v is not None and not isinstance(v, str):
            raise ApiError(
                400, "SerializationException",
                f"class {_java_class(v)} can not be converted to an String",
            )


def _check_timeout(value: Any) -> int:
    try:
        t = int(value)
        if isinstance(value, float) and value != t:
            raise ValueError
    except (TypeError, ValueError):
        raise bad_request(f"Invalid timeout specified: {value}")
    if not (MIN_TIMEOUT_MS <= t <= MAX_TIMEOUT_MS):
        raise bad_request(
            f"Timeout should be between {MIN_TIMEOUT_MS} ms and {MAX_TIMEOUT_MS} ms"
        )
    return t


def _check_integration_semantics(backend: Any, data: dict[str, Any]) -> None:
    """The checks moto does on PutIntegration, also run on the result of an update."""
    itype = data.get("type")
    uri = data.get("uri")
    credentials = data.get("credentials")
    if itype != "MOCK" and not data.get("httpMethod"):
        raise bad_request("Enumeration value for HttpMethod must be non-empty")
    if itype in ("HTTP", "HTTP_PROXY", "AWS", "AWS_PROXY") and not uri:
        raise bad_request("Invalid HTTP endpoint specified for URI" if itype.startswith("HTTP")
                          else "Invalid ARN specified in the request")
    arn = r"^arn:aws[a-zA-Z-]*"
    if credentials and credentials != "arn:aws:iam::*:user/*" and not re.match(
        f"^arn:{get_partition(backend.region_name)}:iam::{backend.account_id}", credentials
    ):
        raise ApiError(403, "AccessDeniedException", "Cross-account pass role is not allowed.")
    if itype == "AWS_PROXY" and re.match(arn + r":apigateway:[a-zA-Z0-9-]+:s3", uri):
        raise bad_request(
            "Integrations of type 'AWS_PROXY' currently only supports Lambda function and Firehose stream invocations."
        )
    if itype == "AWS" and re.match(arn + r":apigateway:[a-zA-Z0-9-]+:s3", uri) and not credentials:
        raise bad_request("Role ARN must be specified for AWS integrations")
    if itype in ("HTTP", "HTTP_PROXY") and not backend._uri_validator(uri):
        raise bad_request("Invalid HTTP endpoint specified for URI")
    if itype in ("AWS", "AWS_PROXY") and not re.match(arn + ":", uri):
        raise bad_request("Invalid ARN specified in the request")
    if itype in ("AWS", "AWS_PROXY") and not re.match(
        arn + r":apigateway:[a-zA-Z0-9-]+:[a-zA-Z0-9-.]+:(path|action)/", uri
    ):
        raise bad_request("AWS ARN for integration must contain path or action")


# --------------------------------------------------------------------------- JSON patch


def unescape_pointer(token: str) -> str:
    """RFC 6901: '~1' is '/', '~0' is '~' (in that order)."""
    return token.replace("~1", "/").replace("~0", "~")


def pointer(path: str) -> tuple[str, str | None]:
    """A patch path as (field, key or None): '/requestTemplates/application~1json' ->
    ('requestTemplates', 'application/json'); the leading '/' is optional, as in a patch."""
    p = path if path.startswith("/") else "/" + path
    head, sep, rest = p[1:].partition("/")
    return head, (unescape_pointer(rest) if sep else None)


def _read_path(data: dict[str, Any], where: tuple[str, str | None]) -> tuple[bool, Any]:
    head, key = where
    if key is None:
        return head in data, copy.deepcopy(data.get(head))
    container = data.get(head)
    if isinstance(container, list):
        return key in container, key
    if isinstance(container, dict):
        return key in container, copy.deepcopy(container.get(key))
    return False, None


def _write_path(data: dict[str, Any], where: tuple[str, str | None], present: bool, value: Any) -> None:
    """Sets (present) or removes (not present) one field, map key, nested field or set member."""
    head, key = where
    if key is None:
        if present:
            data[head] = value
        else:
            data.pop(head, None)
        return
    container = data.get(head)
    if isinstance(container, list):  # a set (cacheKeyParameters): membership
        items = list(container)
        if present and key not in items:
            items.append(key)
        if not present and key in items:
            items.remove(key)
        data[head] = items
        return
    child = dict(container or {})
    if present:
        child[key] = value
    else:
        child.pop(key, None)
    if child:
        data[head] = child
    else:
        data.pop(head, None)


def apply_behaviour(old: dict[str, Any], new: dict[str, Any], operations: list[dict[str, Any]],
                    behaviour: Behaviour) -> dict[str, Any]:
    """What AWS stores after an UpdateIntegration when it normalises or ignores some paths:
    `new` (the patch applied) with each normalised path that an add/replace touched set to its
    configured value, then each ignored path put back as it was in `old`."""
    out = copy.deepcopy(new)
    touched = {pointer(op["path"]) for op in operations
               if isinstance(op.get("path"), str) and op["path"] and op.get("op") in ("add", "replace")}
    for where, value in behaviour.normalise:
        if where in touched:
            _write_path(out, where, value is not None, copy.deepcopy(value))
    for where in behaviour.ignore_paths:
        present, value = _read_path(old, where)
        _write_path(out, where, present, value)
    return out


class PatchSpec:
    """The (op, path) table of one resource type."""

    def __init__(
        self,
        input_name: str,
        scalars: dict[str, Any],
        maps: dict[str, tuple[set[str], str]],
        sets: dict[str, set[str]],
        nested: dict[str, dict[str, Any]],
    ):
        self.input_name = input_name  # e.g. updateIntegrationInput
        self.scalars = scalars  # name -> converter(value, data) -> value to store (None removes)
        self.maps = maps  # name -> (allowed ops, message when removing a missing key)
        self.sets = sets  # name -> allowed ops
        self.nested = nested  # name -> {child: converter}


def apply_patch(spec: PatchSpec, data: dict[str, Any], operations: Any,
                allow: Any = None) -> dict[str, Any]:
    """Apply patch operations in order to a copy of `data`; raise ApiError on the first bad one.

    `allow(data, op)`, when given, runs before each op is applied (after the model check of
    every op) and raises ApiError for an op it does not accept.
    Nothing is changed unless every operation is valid (the caller swaps in the result)."""
    if operations is None:
        operations = []
    if not isinstance(operations, list):
        raise ApiError(400, "SerializationException", "patchOperations must be a list")
    # Model validation first, as AWS does: every bad `op` is reported at once.
    errors = []
    for i, op in enumerate(operations, start=1):
        if not isinstance(op, dict):
            raise ApiError(400, "SerializationException", "a patch operation must be an object")
        _check_enum(errors, op.get("op"), f"{spec.input_name}.patchOperations.{i}.member.op", PATCH_OPS)
    if errors:
        raise validation_error(errors)

    out = copy.deepcopy(data)
    for op in operations:
        if allow is not None:
            allow(out, op)
        _apply_one(spec, out, op)
    return out


def _apply_one(spec: PatchSpec, data: dict[str, Any], op: dict[str, Any]) -> None:
    verb = op.get("op")
    raw_path = op.get("path")
    if raw_path is None or raw_path == "":
        raise bad_request("Invalid patch path null" if raw_path is None else "Invalid patch path ")
    path = raw_path if raw_path.startswith("/") else "/" + raw_path
    head, _, rest = path[1:].partition("/")
    value = op.get("value")

    def unsupported_op() -> ApiError:
        return bad_request(
            f"Invalid patch path  '{path}' specified for op '{verb}'. Please choose supported operations"
        )

    if head in spec.scalars and not rest:
        if verb != "replace":
            raise bad_request("Invalid patch operation specified. Must be one of: [replace]")
        stored = spec.scalars[head](value, data)
        if stored is None:
            data.pop(head, None)
        else:
            data[head] = stored
        return

    if head in spec.nested and rest in spec.nested[head]:
        if verb != "replace":
            raise bad_request("Invalid patch operation specified. Must be one of: [replace]")
        stored = spec.nested[head][rest](value, data)
        child = dict(data.get(head) or {})
        if stored is None:
            child.pop(rest, None)
        else:
            child[rest] = stored
        if child:
            data[head] = child
        else:
            data.pop(head, None)
        return

    if head in spec.maps and rest and "/" not in rest:
        allowed, missing_message = spec.maps[head]
        if verb not in allowed:
            raise unsupported_op()
        key = unescape_pointer(rest)
        current = dict(data.get(head) or {})
        if verb == "remove":
            if key not in current:
                raise not_found(missing_message)
            del current[key]
        else:
            if value is not None and not isinstance(value, str):
                raise ApiError(400, "SerializationException", "value must be a string")
            current[key] = _map_value(head, value)
        if current:
            data[head] = current
        else:
            data.pop(head, None)
        return

    if head in spec.sets and rest and "/" not in rest:
        if verb not in spec.sets[head]:
            raise unsupported_op()
        item = unescape_pointer(rest)
        current = list(data.get(head) or [])
        if verb == "add" and item not in current:
            current.append(item)
        elif verb == "remove" and item in current:
            current.remove(item)
        data[head] = current
        return

    raise bad_request(f"Invalid patch path {path}")


def _map_value(map_name: str, value: Any) -> Any:
    if map_name in ("requestTemplates", "responseTemplates"):
        # `add` with no value makes a passthrough template; AWS stores it as null.
        return value if value not in (None, "") else None
    if value in (None, ""):
        raise bad_request(f"Invalid null or empty value in {map_name}")
    return value


def _enum_converter(name: str, allowed: list[str], removable: bool = False):
    def convert(value: Any, data: dict[str, Any]) -> Any:
        if value in (None, "") and removable:
            return None
        if value not in allowed:
            raise bad_request(
                f"Invalid {name} specified. Valid options are {','.join(allowed)}"
            )
        return value

    return convert


def _not_mock(name: str):
    def convert(value: Any, data: dict[str, Any]) -> Any:
        if data.get("type") == "MOCK":
            raise bad_request(
                f"Invalid patch path /{name}: integrations of type MOCK have no {name}"
            )
        if value in (None, ""):
            raise bad_request(f"Invalid null or empty value in {name}")
        if name == "httpMethod":
            if value.upper() not in HTTP_METHODS:
                raise bad_request(
                    "Invalid HttpMethod specified. Valid options are " + ",".join(HTTP_METHODS)
                )
            return value.upper()
        return value

    return convert


def _string(removable_default: Any = None):
    def convert(value: Any, data: dict[str, Any]) -> Any:
        if value is not None and not isinstance(value, str):
            raise ApiError(400, "SerializationException", "value must be a string")
        if value in (None, ""):
            return removable_default(data) if callable(removable_default) else removable_default
        return value

    return convert


def _timeout(value: Any, data: dict[str, Any]) -> Any:
    return _check_timeout(value)


def _bool(value: Any, data: dict[str, Any]) -> Any:
    if data.get("type") not in ("HTTP", "HTTP_PROXY"):
        raise bad_request("tlsConfig is only supported for HTTP and HTTP_PROXY integrations")
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise bad_request(f"Invalid boolean value specified: {value}")


INTEGRATION_PATCH = PatchSpec(
    input_name="updateIntegrationInput",
    scalars={
        "uri": _not_mock("uri"),
        "httpMethod": _not_mock("httpMethod"),
        "connectionType": _enum_converter("connectionType", CONNECTION_TYPES),
        "connectionId": _string(None),
        "passthroughBehavior": _enum_converter("passthroughBehavior", PASSTHROUGH_BEHAVIORS),
        "contentHandling": _enum_converter("contentHandling", CONTENT_HANDLINGS, removable=True),
        "timeoutInMillis": _timeout,
        "cacheNamespace": _string(lambda data: data.get("_resourceId")),
    },
    maps={
        "requestParameters": ({"add", "replace", "remove"}, "Invalid parameter name specified"),
        "requestTemplates": ({"add", "replace", "remove"}, "Content-Type specified was not found"),
    },
    sets={"cacheKeyParameters": {"add", "remove"}},
    nested={"tlsConfig": {"insecureSkipVerification": _bool}},
)

INTEGRATION_RESPONSE_PATCH = PatchSpec(
    input_name="updateIntegrationResponseInput",
    scalars={
        "selectionPattern": lambda value, data: "" if value is None else str(value),
        "contentHandling": _enum_converter("contentHandling", CONTENT_HANDLINGS, removable=True),
    },
    maps={
        "responseParameters": ({"add", "replace", "remove"}, "Invalid parameter name specified"),
        "responseTemplates": ({"add", "replace", "remove"}, "Content-Type specified was not found"),
    },
    sets={},
    nested={},
)


def strict_integration_response_op(data: dict[str, Any], op: dict[str, Any]) -> None:
    """The `strict_response_patch` table: only the (op, path) pairs the facts evidence (§1.3),
    `replace /selectionPattern` (recorded result) and `replace /responseTemplates/{type}` of a
    content type the response already has (used against AWS by AWS-validated tests). Anything
    else gets the message AWS uses for an unsupported op in other Update* calls (double space
    recorded). A missing or empty path keeps its own message (see _apply_one)."""
    verb = op.get("op")
    raw_path = op.get("path")
    if raw_path is None or raw_path == "":
        return
    path = raw_path if raw_path.startswith("/") else "/" + raw_path
    head, sep, rest = path[1:].partition("/")
    if verb == "replace":
        if head == "selectionPattern" and not sep:
            return
        if (head == "responseTemplates" and rest and "/" not in rest
                and unescape_pointer(rest) in (data.get("responseTemplates") or {})):
            return
    raise bad_request(
        f"Invalid patch path  '{path}' specified for op '{verb}'. Please choose supported operations"
    )


def _is_default(data: dict[str, Any]) -> bool:
    """A "default" integration response: no selectionPattern. The report (facts §1.1, TF5893)
    is about a response created WITHOUT selectionPattern; the empty string "" is treated as
    default too. That is stricter than the evidence (AWS might accept "" next to an absent
    pattern, or the other way round), chosen so the operator never relies on it."""
    return not data.get("selectionPattern")


def _refuse_second_default(integ: ExtIntegration, status_code: str, data: dict[str, Any]) -> None:
    """409 when `data` (the new state of `status_code`'s response) is a default response while
    another status code of the same integration already is one (re-putting or patching the
    default response itself is fine)."""
    if not _is_default(data):
        return
    for code, other in (integ.integration_responses or {}).items():
        if code != str(status_code) and _is_default(other.data):
            raise conflict(MSG_DEFAULT_EXISTS)


# --------------------------------------------------------------------------- operations


@aws_operation
def put_integration(self: APIGatewayResponse):
    body = _body(self)
    errors: list[str] = []
    itype = body.get("type")
    if itype is None:
        errors.append(
            "Value null at 'putIntegrationInput.type' failed to satisfy constraint: "
            "Member must not be null"
        )
    _check_enum(errors, itype, "putIntegrationInput.type", INTEGRATION_TYPES)
    _check_enum(errors, body.get("connectionType"), "putIntegrationInput.connectionType", CONNECTION_TYPES)
    _check_enum(errors, body.get("contentHandling"), "putIntegrationInput.contentHandling", CONTENT_HANDLINGS)
    if errors:
        raise validation_error(errors)
    for name in ("requestParameters", "requestTemplates"):
        _check_string_map(name, body.get(name))

    _, resource, method = _locate(self)

    pb = body.get("passthroughBehavior")
    if pb is not None and pb not in PASSTHROUGH_BEHAVIORS:
        raise bad_request(
            "Invalid passthroughBehavior specified. Valid options are "
            + ",".join(PASSTHROUGH_BEHAVIORS)
        )
    http_method = body.get("httpMethod")
    if http_method is not None and http_method.upper() not in HTTP_METHODS:
        raise bad_request(
            "Invalid HttpMethod specified. Valid options are " + ",".join(HTTP_METHODS)
        )
    tls = body.get("tlsConfig")
    if tls is not None and not isinstance(tls, dict):
        raise ApiError(400, "SerializationException", "tlsConfig must be an object")

    data = {
        "type": itype,
        "httpMethod": http_method.upper() if http_method else None,
        "uri": body.get("uri") or None,
        "connectionType": body.get("connectionType"),
        "connectionId": body.get("connectionId"),
        "credentials": body.get("credentials"),
        "requestParameters": body.get("requestParameters"),
        "requestTemplates": _templates(body.get("requestTemplates")),
        "passthroughBehavior": pb or "WHEN_NO_MATCH",
        "contentHandling": body.get("contentHandling"),
        "timeoutInMillis": _check_timeout(body["timeoutInMillis"])
        if body.get("timeoutInMillis") is not None
        else DEFAULT_TIMEOUT_MS,
        "cacheNamespace": body.get("cacheNamespace") or resource.id,
        "cacheKeyParameters": list(body.get("cacheKeyParameters") or []),
        "tlsConfig": tls,
    }
    data = {k: v for k, v in data.items() if v is not None}
    _check_integration_semantics(self.backend, data)
    integ = ExtIntegration(data)
    # A PUT replaces the integration, and (by default) its integration responses with it.
    old = method.method_integration
    if old is not None and BEHAVIOUR.put_integration_keeps_responses:
        integ.integration_responses = _integration(method).integration_responses
    method.method_integration = integ
    return json_triple(201, integ.to_json())


@aws_operation
def get_integration(self: APIGatewayResponse):
    _, _, method = _locate(self)
    return json_triple(200, _integration(method).to_json())


@aws_operation
def delete_integration(self: APIGatewayResponse):
    # Recorded: DeleteIntegrationResponse on a missing method says "Invalid Integration
    # identifier specified"; the delete calls are treated alike.
    _, _, method = _locate(self, missing_method=MSG_INTEGRATION)
    _integration(method)
    method.method_integration = None
    return empty_triple(204)


@aws_operation
def update_integration(self: APIGatewayResponse):
    body = _body(self)
    _, resource, method = _locate(self)
    integ = _integration(method)
    data = dict(integ.data, _resourceId=resource.id)
    operations = body.get("patchOperations")
    new = apply_patch(INTEGRATION_PATCH, data, operations)
    new.pop("_resourceId", None)
    _check_integration_semantics(self.backend, new)
    behaviour = BEHAVIOUR
    if behaviour.ignore_paths or behaviour.normalise:
        new = apply_behaviour(integ.data, new, operations or [], behaviour)
    integ.data = new
    return json_triple(200, integ.to_json())


def _status_code(self: APIGatewayResponse) -> str:
    """The path's status code; AWS's model-level check runs before any lookup (recorded)."""
    status_code = _path_parts(self)[9]
    if not re.fullmatch(STATUS_CODE_PATTERN, status_code):
        raise validation_error([
            f"Value '{status_code}' at 'statusCode' failed to satisfy constraint: "
            f"Member must satisfy regular expression pattern: {STATUS_CODE_PATTERN}"
        ])
    return status_code


def _locate_integration_response(self: APIGatewayResponse, missing_method: str = MSG_METHOD):
    status_code = _status_code(self)
    _, _, method = _locate(self, missing_method=missing_method)
    integ = _integration(method)
    return integ, status_code


@aws_operation
def put_integration_response(self: APIGatewayResponse):
    body = _body(self)
    for name in ("responseParameters", "responseTemplates"):
        _check_string_map(name, body.get(name))
    _check_enum_or_raise(body.get("contentHandling"), "putIntegrationResponseInput.contentHandling", CONTENT_HANDLINGS)
    integ, status_code = _locate_integration_response(self)
    for content_type in body.get("responseTemplates") or {}:
        if "/" not in content_type:  # recorded for the key "123"
            raise bad_request(
                f"Validation Result: warnings : [], errors : [Invalid content type specified: {content_type}]"
            )
    _refuse_second_default(integ, status_code, {"selectionPattern": body.get("selectionPattern")})
    ir = integ.create_integration_response(
        status_code,
        body.get("selectionPattern"),
        body.get("responseTemplates"),
        body.get("responseParameters"),
        body.get("contentHandling"),
    )
    return json_triple(201, ir.to_json())


def _check_enum_or_raise(value: Any, where: str, allowed: list[str]) -> None:
    errors: list[str] = []
    _check_enum(errors, value, where, allowed)
    if errors:
        raise validation_error(errors)


@aws_operation
def get_integration_response(self: APIGatewayResponse):
    integ, status_code = _locate_integration_response(self)
    return json_triple(200, integ.get_integration_response(status_code).to_json())


@aws_operation
def delete_integration_response(self: APIGatewayResponse):
    integ, status_code = _locate_integration_response(self, missing_method=MSG_INTEGRATION)
    integ.delete_integration_response(status_code)
    return empty_triple(204)


@aws_operation
def update_integration_response(self: APIGatewayResponse):
    body = _body(self)
    integ, status_code = _locate_integration_response(self)
    ir = integ.get_integration_response(status_code)
    allow = strict_integration_response_op if BEHAVIOUR.strict_response_patch else None
    new = apply_patch(INTEGRATION_RESPONSE_PATCH, ir.data, body.get("patchOperations"), allow)
    _refuse_second_default(integ, status_code, new)
    ir.data = new
    return json_triple(200, ir.to_json())


@aws_operation
def get_method(self: APIGatewayResponse):
    _, _, method = _locate(self)
    return json_triple(200, _clean_method_json(method))


_orig_put_method = APIGatewayResponse.put_method


@aws_operation
def put_method(self: APIGatewayResponse):
    verb = _path_parts(self)[6]
    if verb not in HTTP_METHODS:
        raise bad_request(
            "Invalid HttpMethod specified. Valid options are " + ",".join(HTTP_METHODS)
        )
    _locate_resource(self)
    status, headers, _ = _orig_put_method(self)
    _, _, method = _locate(self)
    return json_triple(int(status), _clean_method_json(method))


@aws_operation
def delete_method(self: APIGatewayResponse):
    _, resource, _ = _locate(self)
    resource.delete_method(_path_parts(self)[6])
    return empty_triple(204)


def _locate_resource(self: APIGatewayResponse):
    parts = _path_parts(self)
    api = _api(self, parts[2])
    resource = api.resources.get(parts[4])
    if resource is None:
        raise not_found(MSG_RESOURCE)
    return api, resource


def _embed_methods(self: APIGatewayResponse) -> bool:
    values = _query(self).get("embed", [])
    return any("methods" in v.split(",") for v in values)


def _resource_json(resource: moto_models.Resource, embed: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"id": resource.id}
    if resource.parent_id:
        out["parentId"] = resource.parent_id
        out["pathPart"] = resource.path_part
    out["path"] = resource.get_path()
    if resource.resource_methods:
        if embed:
            for m in resource.resource_methods.values():
                if m.method_integration is not None and not isinstance(
                    m.method_integration, ExtIntegration
                ):
                    m.method_integration = _upgrade(m.method_integration)
        # Without embed=methods AWS lists each method as an empty object.
        out["resourceMethods"] = {
            verb: (_clean_method_json(m) if embed else {})
            for verb, m in resource.resource_methods.items()
        }
    return out


def _page(self: APIGatewayResponse, items: list[Any]) -> tuple[list[Any], str | None]:
    q = _query(self)
    limit_raw = (q.get("limit") or [None])[0]
    position = (q.get("position") or [None])[0]
    limit = PAGE_DEFAULT
    if limit_raw not in (None, ""):
        try:
            limit = int(limit_raw)
        except ValueError:
            raise bad_request(f"Invalid limit specified: {limit_raw}")
        if not (1 <= limit <= PAGE_MAX):
            raise bad_request(f"Invalid limit specified. Must be between 1 and {PAGE_MAX}")
    start = 0
    if position not in (None, ""):
        if not position.isdigit():
            raise bad_request("Invalid position specified")
        start = int(position)
    page = items[start : start + limit]
    nxt = start + limit
    return page, (str(nxt) if nxt < len(items) else None)


@aws_operation
def get_resources(self: APIGatewayResponse):
    api = _api(self, _path_parts(self)[2], MSG_API)
    embed = _embed_methods(self)
    page, position = _page(self, list(api.resources.values()))
    body: dict[str, Any] = {"item": [_resource_json(r, embed) for r in page]}
    if position is not None:
        body["position"] = position
    return json_triple(200, body)


@aws_operation
def get_resource(self: APIGatewayResponse):
    _, resource = _locate_resource(self)
    return json_triple(200, _resource_json(resource, _embed_methods(self)))


@aws_operation
def get_rest_apis(self: APIGatewayResponse):
    page, position = _page(self, self.backend.list_apis())
    body: dict[str, Any] = {
        "item": [{k: v for k, v in api.to_dict().items() if v is not None} for api in page]
    }
    if position is not None:
        body["position"] = position
    return json_triple(200, body)


@aws_operation
def get_rest_api(self: APIGatewayResponse):
    api = _api(self, _path_parts(self)[2], MSG_API)
    return json_triple(200, {k: v for k, v in api.to_dict().items() if v is not None})


_orig_create_rest_api = APIGatewayResponse.create_rest_api


@aws_operation
def create_rest_api(self: APIGatewayResponse):
    """AWS answers CreateRestApi (and ImportRestApi) with 201; moto says 200."""
    result = _orig_create_rest_api(self)
    status, _, body = result
    if int(status) != 200:
        return result
    data = json.loads(body)
    return json_triple(201, {k: v for k, v in data.items() if v is not None})


# --------------------------------------------------------------------------- install

_installed = False


def install() -> None:
    """Patch moto (idempotent)."""
    global _installed
    if _installed:
        return
    _installed = True

    for func in (
        put_integration,
        get_integration,
        delete_integration,
        update_integration,
        put_integration_response,
        get_integration_response,
        delete_integration_response,
        update_integration_response,
        get_method,
        put_method,
        delete_method,
        get_resources,
        get_resource,
        get_rest_apis,
        get_rest_api,
        create_rest_api,
    ):
        setattr(APIGatewayResponse, func.__name__, func)

    # Deployments and stages (deploy_ext imports this module's helpers, hence the late import).
    import deploy_ext

    deploy_ext.install()

    # moto routes integration-response URLs only for numeric status codes (others are a
    # werkzeug 404 page); route any code so that _status_code answers AWS's 400. Done before
    # moto's server builds its URL map (on the first request).
    from moto.apigateway import urls as moto_urls

    moto_urls.url_paths = {
        (k.replace(r"(?P<status_code>\d+)", r"(?P<status_code>[^/]+)") if "/integration/responses/" in k else k): v
        for k, v in moto_urls.url_paths.items()
    }

    # Messages AWS uses (moto says "Invalid resource identifier specified" and
    # "Invalid Rest API Id specified").
    def resource_not_found_init(self: Any) -> None:
        moto_exc.NotFoundException.__init__(self, MSG_RESOURCE)

    moto_exc.ResourceIdNotFoundException.__init__ = resource_not_found_init  # type: ignore[method-assign]

    def rest_api_not_found_init(self: Any) -> None:
        moto_exc.NotFoundException.__init__(self, MSG_API)

    moto_exc.RestAPINotFound.__init__ = rest_api_not_found_init  # type: ignore[method-assign]

    # Method-level calls on a missing API say "Invalid Resource identifier specified" on AWS.
    orig_get_resource = moto_models.APIGatewayBackend.get_resource

    def get_resource_model(self: Any, function_id: str, resource_id: str):
        if function_id not in self.apis:
            raise moto_exc.ResourceIdNotFoundException()
        return orig_get_resource(self, function_id, resource_id)

    moto_models.APIGatewayBackend.get_resource = get_resource_model  # type: ignore[method-assign]
