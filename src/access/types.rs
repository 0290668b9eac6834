//! The `ApiGatewayAccess` custom resource (apigw.dev/v1alpha1, cluster-scoped): which
//! namespaces may manage which REST APIs, in which account and Regions, with whose identity.
//! Written by the platform team; the operator only reads its spec and writes its status.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Admits the namespaces its selector matches to manage API Gateway objects, within its
/// allow-lists, with the identity it names (an assumed role, or the operator's own).
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "apigw.dev",
    version = "v1alpha1",
    kind = "ApiGatewayAccess",
    plural = "apigatewayaccesses",
    shortname = "agx",
    category = "apigw",
    category = "aws",
    status = "ApiGatewayAccessStatus",
    printcolumn = r#"{"name":"ROLE","type":"string","jsonPath":".spec.roleArn"}"#,
    printcolumn = r#"{"name":"ACCOUNT","type":"string","jsonPath":".status.accountId"}"#,
    printcolumn = r#"{"name":"READY","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"AGE","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"REASON","type":"string","priority":1,"jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!has(self.externalId) || has(self.roleArn)").message("spec.externalId needs spec.roleArn: it is sent with AssumeRole")
)]
pub struct ApiGatewayAccessSpec {
    /// The namespaces this access admits. An empty selector ({}) admits every namespace.
    pub namespace_selector: LabelSelector,

    /// The IAM role assumed (sts:AssumeRole) for every AWS call of an admitted object; the
    /// session is named after the object's namespace (apigw-NAMESPACE), so CloudTrail says
    /// which team acted. Unset: the operator's own identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]+$"))]
    pub role_arn: Option<String>,

    /// The external id the role's trust policy requires (sts:ExternalId). Shown to anyone who
    /// may read accesses; it is not a secret in AWS's model either.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 2, max = 1224), regex(pattern = r"^[\w+=,.@:/-]+$"))]
    pub external_id: Option<String>,

    /// The Regions admitted objects may use. Unset: any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64), extend("items" = {"type": "string", "maxLength": 32, "pattern": "^[a-z]{2}(-[a-z]+)+-[0-9]+$"}))]
    pub regions: Option<Vec<String>>,

    /// The REST APIs admitted objects may manage, by id or by name pattern (`*` any run of
    /// characters, `?` one). An object naming its API by name is checked against the patterns
    /// before the lookup and against the ids once resolved. Unset: any API of the account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub rest_apis: Option<Vec<RestApiRule>>,

    /// What admitted objects may do beyond patching existing integrations and stages.
    #[serde(default)]
    pub allow: Allow,

    /// This account's request budget for the operator (all of API Gateway's calls, per
    /// Region). Unset: the operator's flags (--aws-rps, --aws-burst). Accesses on one account
    /// share one bucket: the first one used sets its size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<QuotaSpec>,
}

/// One REST API an access admits: `id`, or `namePattern`, exactly one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("has(self.id) != has(self.namePattern)").message("spec.restApis items need exactly one of id or namePattern")
)]
pub struct RestApiRule {
    /// The REST API's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[A-Za-z0-9]+$"))]
    pub id: Option<String>,
    /// A pattern on the REST API's name: `*` any run of characters, `?` one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub name_pattern: Option<String>,
}

/// The permissions an access grants beyond patching what exists. Everything defaults to no.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Allow {
    /// managementPolicy CreateOrUpdate: create missing integrations and stages, and
    /// re-create integrations (PutIntegration).
    #[serde(default)]
    pub create_or_update: bool,
    /// deletionPolicy Delete: delete the integration or stage in AWS with the object.
    #[serde(default)]
    pub deletion_policy_delete: bool,
    /// The IAM roles an integration's `credentials` may name (patterns: `*` any run of
    /// characters, `?` one). API Gateway calls the backend as that role, so this is the
    /// iam:PassRole boundary. Unset or empty: an integration may not set credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64), extend("items" = {"type": "string", "minLength": 1, "maxLength": 2048}))]
    pub credentials: Option<Vec<String>>,
}

/// A token bucket: `rps` tokens a second, at most `burst` at once.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct QuotaSpec {
    /// Requests per second (AWS's account default for API Gateway's management API is 10).
    #[schemars(range(min = 0.1, max = 100.0))]
    pub rps: f64,
    /// The bucket's size (AWS's default: 40).
    #[schemars(range(min = 1, max = 1000))]
    pub burst: u32,
}

/// What the operator found out about the access.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiGatewayAccessStatus {
    /// The generation these conditions describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready: True when the identity answers (AssumeRole and GetCallerIdentity worked), False
    /// with reason AccessDenied (or AwsError) otherwise.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// The account the identity belongs to (GetCallerIdentity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// The identity's ARN as AWS reported it (an assumed-role session).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller_arn: Option<String>,
    /// How many namespaces the selector admits now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespaces: Option<u32>,
}

impl crate::kit::Observed for ApiGatewayAccess {
    fn ready(&self) -> Option<(&str, &str)> {
        crate::kit::ready_of(&self.status.as_ref()?.conditions)
    }
}
