//! The `ApiGatewayStage` custom resource (apigw.dev/v1alpha1): "this stage serves what these
//! integration objects say". Every doc comment here becomes the text of `kubectl explain`;
//! validation lives in the schema so that the API server names the field of a bad manifest.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, MicroTime};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::aws::stages::Stage;
use crate::crd::{DeletionPolicy, ManagementPolicy};

/// The quiet time before a deployment when the spec does not say.
pub const DEFAULT_SETTLE_SECONDS: u32 = 10;

/// Publishes the ApiGatewayIntegrations it selects to one stage of their REST API: after they
/// change, one CreateDeployment (per quiet period) makes the stage serve them.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "apigw.dev",
    version = "v1alpha1",
    kind = "ApiGatewayStage",
    plural = "apigatewaystages",
    shortname = "ags",
    category = "apigw",
    category = "aws",
    namespaced,
    status = "ApiGatewayStageStatus",
    printcolumn = r#"{"name":"REST API","type":"string","jsonPath":".status.target.restApiId"}"#,
    printcolumn = r#"{"name":"STAGE","type":"string","jsonPath":".spec.stageName"}"#,
    printcolumn = r#"{"name":"DEPLOYMENT","type":"string","jsonPath":".status.deploymentId"}"#,
    printcolumn = r#"{"name":"PENDING","type":"integer","jsonPath":".status.pending"}"#,
    printcolumn = r#"{"name":"READY","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"AGE","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"REASON","type":"string","priority":1,"jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("has(self.restApiId) != has(self.restApiName)").message("exactly one of spec.restApiId or spec.restApiName must be set"),
    validation = Rule::new("!has(oldSelf.restApiId) || (has(self.restApiId) && self.restApiId == oldSelf.restApiId)").message("spec.restApiId is immutable: create a new object to manage another stage"),
    validation = Rule::new("!has(oldSelf.restApiName) || (has(self.restApiName) && self.restApiName == oldSelf.restApiName)").message("spec.restApiName is immutable: create a new object to manage another stage"),
    validation = Rule::new("self.stageName == oldSelf.stageName").message("spec.stageName is immutable: create a new object to manage another stage"),
    validation = Rule::new("has(self.region) == has(oldSelf.region) && (!has(self.region) || self.region == oldSelf.region)").message("spec.region is immutable: create a new object to manage another stage"),
    validation = Rule::new("self.managementPolicy != 'Observe' || self.deletionPolicy != 'Delete'").message("spec.deletionPolicy Delete is not allowed with spec.managementPolicy Observe, which never writes to AWS")
)]
pub struct ApiGatewayStageSpec {
    /// The id of the REST API. Exactly one of restApiId and restApiName is set. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[A-Za-z0-9]+$"))]
    pub rest_api_id: Option<String>,

    /// The name of the REST API, looked up with GetRestApis; it must be unique in the account
    /// and Region. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub rest_api_name: Option<String>,

    /// The AWS Region; unset means the operator's default Region. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-z]{2}(-[a-z]+)+-[0-9]+$"))]
    pub region: Option<String>,

    /// The stage's name: letters, digits, - and _, at most 128. Immutable.
    #[schemars(length(min = 1, max = 128), regex(pattern = r"^[A-Za-z0-9_-]+$"))]
    pub stage_name: String,

    /// Which ApiGatewayIntegrations of this namespace (on this REST API, Region included) the
    /// stage publishes. Unset: every one of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration_selector: Option<LabelSelector>,

    /// Quiet time in seconds after the last write of a selected integration before deploying,
    /// so that a rollout becomes one deployment (default 10, at most 3600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 3600))]
    pub settle_seconds: Option<u32>,

    /// The description of the deployments the operator makes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub description: Option<String>,

    /// Stage variables. When set, authoritative: live variables missing here are removed; {}
    /// means none. Names are letters, digits and _; values match [A-Za-z0-9-._~:/?#&=,]+.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 64, "additionalProperties" = {"type": "string", "maxLength": 512}))]
    #[x_kube(validation = Rule::new(r"self.all(k, k.matches('^[A-Za-z0-9_]{1,64}$'))").message("spec.variables names must be letters, digits and _ (at most 64)"))]
    #[x_kube(validation = Rule::new(r"self.all(k, self[k].matches('^[A-Za-z0-9-._~:/?#&=,]+$'))").message("spec.variables values must match [A-Za-z0-9-._~:/?#&=,]+"))]
    pub variables: Option<BTreeMap<String, String>>,

    /// The ApiGatewayAccess this object uses when several admit its namespace (it must admit
    /// it). Unset: the one access whose namespaceSelector admits the namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub access_ref: Option<String>,

    /// Update (default): the stage must exist. CreateOrUpdate: a missing stage is created by
    /// the first deployment. Observe: never write; report what is pending.
    #[serde(default)]
    pub management_policy: ManagementPolicy,

    /// Retain (default): deleting this object leaves the stage. Delete: DeleteStage first.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

impl ApiGatewayStageSpec {
    pub fn settle(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.settle_seconds.unwrap_or(DEFAULT_SETTLE_SECONDS).into())
    }
}

/// What the operator observed and did, written with server-side apply by the operator only.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiGatewayStageStatus {
    /// The metadata.generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Ready (the stage serves the latest applied generation of every selected integration),
    /// Synced, Reconciling and Stalled.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,

    /// The deployment the operator last made for this stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<String>,

    /// When that deployment was made (when CreateDeployment left, after its turn in the
    /// deployment quota), to the
    /// microsecond: integrations written after it are not served yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployed_at: Option<MicroTime>,

    /// What went into that deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<Published>,

    /// How many selected integrations are not served yet (written since the deployment, or
    /// still being changed).
    #[serde(default)]
    pub pending: u32,

    /// The selected integrations not served yet (namespace/name), at most 50.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_integrations: Vec<String>,

    /// Selected integrations that cannot become Ready by themselves (a person must act) and
    /// that deployments go ahead without, with their Ready reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocked_integrations: Vec<String>,

    /// The Stage AWS returned last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<Stage>,

    /// The stage this object manages, with the REST API name resolved. Pinned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<StageTarget>,
}

/// What one deployment published.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Published {
    /// How many selected integrations it covered.
    pub integrations: u32,
    /// sha256 over the sorted (namespace/name, generation) pairs it covered.
    pub digest: String,
}

/// The ids of the managed stage.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StageTarget {
    pub rest_api_id: String,
    pub region: String,
    pub stage_name: String,
}

impl crate::kit::Observed for ApiGatewayStage {
    fn ready(&self) -> Option<(&str, &str)> {
        crate::kit::ready_of(&self.status.as_ref()?.conditions)
    }
}
