//! apigw-operator: manages AWS API Gateway (REST API) method integrations as Kubernetes
//! objects. See DESIGN in the README for the contract; the planner in [`plan`] is the heart.

pub mod access;
pub mod aws;
pub mod cache;
pub mod cli;
pub mod conditions;
pub mod controller;
pub mod crd;
pub mod import;
pub mod integration;
pub mod kit;
pub mod leader;
pub mod manifest;
pub mod metrics;
pub mod plan;
pub mod quota;
pub mod run;
pub mod shutdown;
pub mod snapshot;
pub mod stage;

pub use crd::{ApiGatewayIntegration, ApiGatewayIntegrationSpec, ApiGatewayIntegrationStatus};
pub use integration::Integration;
pub use plan::{plan, PatchOperation, Plan};

/// The field manager used for server-side apply of status.
pub const FIELD_MANAGER: &str = "apigw-operator";
/// The finalizer added to objects whose deletion must call AWS.
pub const FINALIZER: &str = "apigw.dev/cleanup";
/// The annotation that pauses all AWS calls for an object.
pub const PAUSE_ANNOTATION: &str = "apigw.dev/paused";

/// `apigw.dev/orphan: "true"` on an object being deleted with `deletionPolicy: Delete` drops
/// the finalizer without calling AWS (the way out for a paused object, or one whose
/// DeleteIntegration keeps failing).
pub const ORPHAN_ANNOTATION: &str = "apigw.dev/orphan";
