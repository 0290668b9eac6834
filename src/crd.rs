//! The `ApiGatewayIntegration` custom resource (apigw.dev/v1alpha1).
//!
//! Every doc comment here becomes the text of `kubectl explain`. Validation lives in the schema
//! (OpenAPI plus CEL `x-kubernetes-validations`) so that the API server rejects a bad manifest at
//! admission with a message that names the field; `tests/data/invalid-manifests.yaml` lists the
//! cases and the messages.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, MicroTime, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::integration::Integration;
use crate::plan::responses::ResponseCall;
use crate::plan::PatchOperation;

/// The largest `timeoutInMillis` accepted at admission. AWS's default quota is 29,000 ms, but
/// Regional and private REST APIs can have it raised, so a lower cap here would lock those users
/// out. 300,000 (five minutes) still catches a timeout typed in microseconds or with extra
/// zeros; a value above the account's quota comes back from AWS as `InvalidSpec`.
pub const MAX_TIMEOUT_IN_MILLIS: i64 = 300_000;

/// Manages one AWS API Gateway (REST API) method integration: the operator makes the
/// integration in AWS match this spec with UpdateIntegration patch operations, and reports what
/// AWS returned in status. Fields left unset are not managed.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "apigw.dev",
    version = "v1alpha1",
    kind = "ApiGatewayIntegration",
    plural = "apigatewayintegrations",
    shortname = "agi",
    category = "apigw",
    category = "aws",
    namespaced,
    status = "ApiGatewayIntegrationStatus",
    printcolumn = r#"{"name":"REST API","type":"string","jsonPath":".status.target.restApiId"}"#,
    printcolumn = r#"{"name":"RESOURCE","type":"string","jsonPath":".status.target.resourceId"}"#,
    printcolumn = r#"{"name":"METHOD","type":"string","jsonPath":".spec.httpMethod"}"#,
    printcolumn = r#"{"name":"TYPE","type":"string","jsonPath":".status.integration.type"}"#,
    printcolumn = r#"{"name":"READY","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"SYNCED","type":"string","jsonPath":".status.conditions[?(@.type==\"Synced\")].status"}"#,
    printcolumn = r#"{"name":"AGE","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"REASON","type":"string","priority":1,"jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("has(self.restApiId) != has(self.restApiName)").message("exactly one of spec.restApiId or spec.restApiName must be set"),
    validation = Rule::new("has(self.resourceId) != has(self.resourcePath)").message("exactly one of spec.resourceId or spec.resourcePath must be set"),
    validation = Rule::new("!has(oldSelf.restApiId) || (has(self.restApiId) && self.restApiId == oldSelf.restApiId)").message("spec.restApiId is immutable: create a new object to manage another integration"),
    validation = Rule::new("!has(oldSelf.restApiName) || (has(self.restApiName) && self.restApiName == oldSelf.restApiName)").message("spec.restApiName is immutable: create a new object to manage another integration"),
    validation = Rule::new("!has(oldSelf.resourceId) || (has(self.resourceId) && self.resourceId == oldSelf.resourceId)").message("spec.resourceId is immutable: create a new object to manage another integration"),
    validation = Rule::new("!has(oldSelf.resourcePath) || (has(self.resourcePath) && self.resourcePath == oldSelf.resourcePath)").message("spec.resourcePath is immutable: create a new object to manage another integration"),
    validation = Rule::new("self.httpMethod == oldSelf.httpMethod").message("spec.httpMethod is immutable: create a new object to manage another integration"),
    validation = Rule::new("has(self.region) == has(oldSelf.region) && (!has(self.region) || self.region == oldSelf.region)").message("spec.region is immutable: create a new object to manage another integration"),
    validation = Rule::new("!has(self.connectionType) || self.connectionType != 'VPC_LINK' || has(self.connectionId)").message("spec.connectionId is required when spec.connectionType is VPC_LINK"),
    validation = Rule::new("!has(self.connectionId) || (has(self.connectionType) && self.connectionType == 'VPC_LINK')").message("spec.connectionId may be set only with spec.connectionType VPC_LINK"),
    validation = Rule::new("!has(self.tlsConfig) || (has(self.type) && self.type in ['HTTP', 'HTTP_PROXY'])").message("spec.tlsConfig is allowed only when spec.type is HTTP or HTTP_PROXY"),
    validation = Rule::new("!has(self.type) || self.type != 'MOCK' || !has(self.uri)").message("spec.uri must not be set when spec.type is MOCK: a MOCK integration has no backend"),
    validation = Rule::new("!has(self.type) || self.type != 'MOCK' || !has(self.connectionType) || self.connectionType == 'INTERNET'").message("spec.connectionType VPC_LINK needs spec.type HTTP, HTTP_PROXY, AWS or AWS_PROXY, not MOCK"),
    validation = Rule::new("!has(self.uri) || !has(self.type) || !(self.type in ['HTTP', 'HTTP_PROXY']) || self.uri.matches('^https?://')").message("spec.uri must be an http:// or https:// URL when spec.type is HTTP or HTTP_PROXY"),
    validation = Rule::new("!has(self.uri) || !has(self.type) || !(self.type in ['AWS', 'AWS_PROXY']) || self.uri.startsWith('arn:')").message("spec.uri must be an arn:aws:apigateway:{region}:{service}:... URI when spec.type is AWS or AWS_PROXY"),
    validation = Rule::new("self.managementPolicy != 'CreateOrUpdate' || has(self.type)").message("spec.type is required when spec.managementPolicy is CreateOrUpdate: PutIntegration needs it"),
    validation = Rule::new("self.managementPolicy != 'CreateOrUpdate' || !has(self.type) || self.type == 'MOCK' || (has(self.uri) && has(self.integrationHttpMethod))").message("spec.uri and spec.integrationHttpMethod are required when spec.managementPolicy is CreateOrUpdate and spec.type is not MOCK"),
    validation = Rule::new("!has(self.integrationResponses) || !has(self.type) || !(self.type in ['HTTP_PROXY', 'AWS_PROXY'])").message("spec.integrationResponses is not allowed when spec.type is HTTP_PROXY or AWS_PROXY: a proxy integration passes the backend's answer through and API Gateway ignores integration responses"),
    validation = Rule::new("self.managementPolicy != 'Observe' || self.deletionPolicy != 'Delete'").message("spec.deletionPolicy Delete is not allowed with spec.managementPolicy Observe, which never writes to AWS") 
)]
pub struct ApiGatewayIntegrationSpec {
    /// The id of the REST API that holds the method, for example a1b2c3d4e5. Exactly one of
    /// restApiId and restApiName is set. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[A-Za-z0-9]+$"))]
    pub rest_api_id: Option<String>,

    /// The name of the REST API that holds the method, looked up with GetRestApis. It must be
    /// unique in the account and Region. Exactly one of restApiId and restApiName is set.
    /// Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub rest_api_name: Option<String>,

    /// The id of the API resource that holds the method, for example a1b2c3. Exactly one of
    /// resourceId and resourcePath is set. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[A-Za-z0-9]+$"))]
    pub resource_id: Option<String>,

    /// The path of the API resource that holds the method, for example /pets/{petId}, looked
    /// up with GetResources. Exactly one of resourceId and resourcePath is set. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024), regex(pattern = r"^/\S*$"))]
    pub resource_path: Option<String>,

    /// The method's verb (the method request, not the backend call). Immutable.
    pub http_method: HttpMethod,

    /// The AWS Region of the REST API, for example us-east-1. Unset means the operator's
    /// default Region (--region, AWS_REGION or the AWS profile). Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-z]{2}(-[a-z]+)+-[0-9]+$"))]
    pub region: Option<String>,

    /// The integration type. It cannot be patched: changing it needs
    /// managementPolicy CreateOrUpdate, which re-creates the integration with PutIntegration.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub integration_type: Option<IntegrationType>,

    /// The verb API Gateway uses to call the backend (AWS calls it httpMethod inside the
    /// Integration). Lambda integrations use POST.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration_http_method: Option<HttpMethod>,

    /// The backend endpoint: an http(s) URL for HTTP and HTTP_PROXY (the NLB DNS name for
    /// VPC_LINK), or arn:aws:apigateway:{region}:{service}:{path|action}/... for AWS and
    /// AWS_PROXY.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048))]
    pub uri: Option<String>,

    /// INTERNET, or VPC_LINK for a private integration through connectionId.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_type: Option<ConnectionType>,

    /// The VpcLink id, or a stage variable such as ${stageVariables.vpcLinkId}. Required with,
    /// and allowed only with, connectionType VPC_LINK.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub connection_id: Option<String>,

    /// The ARN of the IAM role API Gateway assumes to call the backend, or
    /// arn:aws:iam::*:user/* to pass the caller's identity. It cannot be patched: a change
    /// needs managementPolicy CreateOrUpdate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^arn:aws[a-zA-Z-]*:iam::(\d{12}|\*):(role|user)/\S+$"))]
    pub credentials: Option<String>,

    /// Integration request parameters: keys integration.request.{header|querystring|path|
    /// multivalueheader|multivaluequerystring}.NAME, values method.request.*, context.*,
    /// stageVariables.* or a static value in single quotes. When set, the map is authoritative:
    /// live keys missing here are removed; {} means none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 64, "additionalProperties" = {"type": "string", "maxLength": 512}))]
    #[x_kube(validation = Rule::new(r"self.all(k, k.matches('^integration\\.request\\.(header|querystring|path|multivalueheader|multivaluequerystring)\\.[^\\s]+$'))").message("spec.requestParameters keys must be integration.request.{header|querystring|path|multivalueheader|multivaluequerystring}.NAME"))]
    #[x_kube(validation = Rule::new(r"self.all(k, self[k].matches('^(method\\.request\\.(header|querystring|path|multivalueheader|multivaluequerystring)\\.[^\\s]+|method\\.request\\.body(\\..+)?|context\\.[^\\s]+|stageVariables\\.[^\\s]+|\\x27[^\\x27]*\\x27)$'))").message("spec.requestParameters values must be method.request.{location}.NAME, method.request.body, context.*, stageVariables.* or a static value in single quotes"))]
    pub request_parameters: Option<BTreeMap<String, String>>,

    /// Velocity mapping templates by content type (the Content-Type of the method request).
    /// An empty string is an input-passthrough template. When set, the map is authoritative:
    /// live content types missing here are removed; {} means none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 32))]
    #[x_kube(validation = Rule::new(r"self.all(k, k.matches('^[A-Za-z0-9!#$%&\\x27*+.^_`|~-]+/[A-Za-z0-9!#$%&\\x27*+.^_`|~-]+$'))").message("spec.requestTemplates keys must be content types such as application/json"))]
    pub request_templates: Option<BTreeMap<String, String>>,

    /// How a request body whose content type has no mapping template is passed to the backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passthrough_behavior: Option<PassthroughBehavior>,

    /// How the request payload is converted. Once set it can be changed but not unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_handling: Option<ContentHandling>,

    /// The backend timeout in milliseconds, 50 to 300000. AWS's default quota allows up to
    /// 29000; more needs a raised quota on a Regional or private API, else AWS rejects the
    /// value and the object reports InvalidSpec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 50, max = MAX_TIMEOUT_IN_MILLIS))]
    pub timeout_in_millis: Option<i32>,

    /// The cache namespace shared by related cached parameters. AWS uses the resource id when
    /// it is not managed here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub cache_namespace: Option<String>,

    /// Method request parameters whose values API Gateway caches, for example
    /// method.request.path.petId. A set; when given it is authoritative, [] means none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        extend("maxItems" = 64, "x-kubernetes-list-type" = "set"),
        inner(length(min = 1, max = 256), regex(pattern = r"^method\.request\.(header|querystring|path|multivalueheader|multivaluequerystring)\.\S+$"))
    )]
    pub cache_key_parameters: Option<Vec<String>>,

    /// TLS settings for the backend call; HTTP and HTTP_PROXY only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_config: Option<TlsConfigSpec>,

    /// How the backend's answer becomes the method's response, by method response status code
    /// (100-599). Unset: not managed. Set: authoritative, live status codes missing here are
    /// deleted; {} means none. Within one response an unset field is not managed. Each changed
    /// response costs one call (PutIntegrationResponse, UpdateIntegrationResponse or
    /// DeleteIntegrationResponse); an unchanged one costs nothing. The method response of each
    /// status code is not managed here. Not allowed on HTTP_PROXY and AWS_PROXY integrations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 32))]
    #[x_kube(validation = Rule::new(r"self.all(k, k.matches('^[1-5][0-9][0-9]$'))").message("spec.integrationResponses keys must be status codes matching [1-5]\\d\\d, such as \"200\""))]
    #[x_kube(validation = Rule::new(r"self.filter(k, !has(self[k].selectionPattern) || self[k].selectionPattern == '').size() <= 1").message("spec.integrationResponses may hold at most one default response (no or empty selectionPattern): AWS refuses a second one"))]
    pub integration_responses: Option<BTreeMap<String, IntegrationResponseSpec>>,

    /// The ApiGatewayAccess this object uses when several admit its namespace (it must admit
    /// it). Unset: the one access whose namespaceSelector admits the namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub access_ref: Option<String>,

    /// What the operator may do in AWS. Update (default): patch an existing integration, never
    /// create one. CreateOrUpdate: also create a missing integration, and re-create it with
    /// PutIntegration when a field that cannot be patched (type, credentials) changes.
    /// Observe: never write; report drift.
    #[serde(default)]
    pub management_policy: ManagementPolicy,

    /// What happens in AWS when this object is deleted. Retain (default): nothing. Delete:
    /// DeleteIntegration runs first (a finalizer holds the object until it has).
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

/// One integration response: how a backend answer selected by selectionPattern becomes the
/// method response of this status code. An unset field is not managed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct IntegrationResponseSpec {
    /// The regular expression matched against the backend's HTTP status code (HTTP and AWS
    /// integrations) or a Lambda function's error message. The response without one (or with
    /// "") is the default; at most one response may be the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub selection_pattern: Option<String>,

    /// Method response headers from the backend's answer: keys method.response.header.NAME,
    /// values integration.response.header.NAME, integration.response.body.JSONPATH (without
    /// the $) or a static value in single quotes. When set, authoritative; {} means none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 32, "additionalProperties" = {"type": "string", "maxLength": 512}))]
    #[x_kube(validation = Rule::new(r"self.all(k, k.matches('^method\\.response\\.header\\.[^\\s]+$'))").message("spec.integrationResponses[*].responseParameters keys must be method.response.header.NAME"))]
    #[x_kube(validation = Rule::new(r"self.all(k, self[k].matches('^(integration\\.response\\.header\\.[^\\s]+|integration\\.response\\.body(\\..+)?|\\x27[^\\x27]*\\x27)$'))").message("spec.integrationResponses[*].responseParameters values must be integration.response.header.NAME, integration.response.body.JSONPATH or a static value in single quotes"))]
    pub response_parameters: Option<BTreeMap<String, String>>,

    /// Velocity templates for the response body, by content type. An empty string passes the
    /// body through. When set, authoritative; {} means none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 32))]
    #[x_kube(validation = Rule::new(r"self.all(k, k.matches('^[A-Za-z0-9!#$%&\\x27*+.^_`|~-]+/[A-Za-z0-9!#$%&\\x27*+.^_`|~-]+$'))").message("spec.integrationResponses[*].responseTemplates keys must be content types such as application/json"))]
    pub response_templates: Option<BTreeMap<String, String>>,

    /// How the response payload is converted. Once set it can be changed but not unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_handling: Option<ContentHandling>,
}

/// TLS settings for an HTTP or HTTP_PROXY integration.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TlsConfigSpec {
    /// Skip verifying that the backend's certificate comes from a supported authority (still
    /// checks expiry, hostname and root). Not recommended for public endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure_skip_verification: Option<bool>,
}

macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $wire:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $wire)] $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The value as AWS and the manifest spell it.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire),+ }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum! {
    /// An HTTP verb as API Gateway accepts it for a method or an integration.
    HttpMethod {
        Get = "GET", Post = "POST", Put = "PUT", Patch = "PATCH", Delete = "DELETE",
        Head = "HEAD", Options = "OPTIONS", Any = "ANY",
    }
}

wire_enum! {
    /// The integration type.
    IntegrationType {
        Http = "HTTP", HttpProxy = "HTTP_PROXY", Aws = "AWS", AwsProxy = "AWS_PROXY", Mock = "MOCK",
    }
}

wire_enum! {
    /// How API Gateway reaches the backend.
    ConnectionType { Internet = "INTERNET", VpcLink = "VPC_LINK" }
}

wire_enum! {
    /// How an unmapped request body is passed to the backend.
    PassthroughBehavior {
        WhenNoMatch = "WHEN_NO_MATCH", WhenNoTemplates = "WHEN_NO_TEMPLATES", Never = "NEVER",
    }
}

wire_enum! {
    /// How the request payload is converted.
    ContentHandling { ConvertToBinary = "CONVERT_TO_BINARY", ConvertToText = "CONVERT_TO_TEXT" }
}

wire_enum! {
    /// What the operator may do in AWS for this object.
    ManagementPolicy { Update = "Update", CreateOrUpdate = "CreateOrUpdate", Observe = "Observe" }
}

wire_enum! {
    /// What happens in AWS when the object is deleted.
    DeletionPolicy { Retain = "Retain", Delete = "Delete" }
}

// The macro's enums carry no `#[default]`; these two are spelled out.
#[allow(clippy::derivable_impls)]
impl Default for ManagementPolicy {
    fn default() -> Self {
        ManagementPolicy::Update
    }
}

#[allow(clippy::derivable_impls)]
impl Default for DeletionPolicy {
    fn default() -> Self {
        DeletionPolicy::Retain
    }
}

/// What the operator observed and did, written with server-side apply by the operator only.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiGatewayIntegrationStatus {
    /// The metadata.generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Ready (AWS matches the spec), Synced (the last call to AWS succeeded), Reconciling and
    /// Stalled (as kstatus reads them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,

    /// The Integration AWS returned last, every field, under AWS's names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration: Option<Integration>,

    /// The patch operations the last UpdateIntegration sent, for humans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_patch_operations: Option<Vec<PatchOperation>>,

    /// The integration-response calls (PutIntegrationResponse, UpdateIntegrationResponse,
    /// DeleteIntegrationResponse) the last write sent, in order, for humans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_response_calls: Option<Vec<ResponseCall>>,

    /// When the operator last wrote this integration (or its responses) in AWS, to the
    /// microsecond. An ApiGatewayStage deploys what was written after its last deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_write_time: Option<MicroTime>,

    /// When the operator last compared AWS with the spec successfully.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_time: Option<Time>,

    /// When the operator last read this integration from AWS successfully (a drift check, a
    /// write's answer), to within half a resync period: written when it is older than that, so
    /// a Ready object's drift checks cost one status write per resync period. Older than about
    /// 1.6 resync periods means its drift checks are not getting through (starved by a long
    /// rollout, or failing): `apigw_drift_oldest_observation_seconds` shows the oldest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_observed_time: Option<Time>,

    /// The integration this object manages, with names and paths resolved to ids. Pinned: written
    /// by the first resolution and never changed; a later resolution to other ids is
    /// TargetChanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<ResolvedTarget>,

    /// The generation AWS was last found to hold (Synced), or last judged against AWS (Drifted,
    /// RequiresReplacement). A generation above it is a spec change still to apply, whatever
    /// failed on the way: its retries keep the priority of a change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synced_generation: Option<i64>,
}

/// The ids of the managed integration.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedTarget {
    /// The REST API id.
    pub rest_api_id: String,
    /// The resource id.
    pub resource_id: String,
    /// The method's verb.
    pub http_method: String,
    /// The AWS Region.
    pub region: String,
}
