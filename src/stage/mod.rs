//! The `ApiGatewayStage` kind: types (the CRD), the planner (pure), the reconcile. It shares the
//! controller kit ([`crate::kit`]) and the AWS layer's quota with the integration controller.

pub mod plan;
pub mod reconcile;
pub mod types;

pub use types::{ApiGatewayStage, ApiGatewayStageSpec, ApiGatewayStageStatus};
