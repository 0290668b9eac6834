//! The `ApiGatewayAccess` kind: types (the CRD), the check (pure), the gate every reconcile
//! asks before any AWS call, and the access controller (it proves each access's identity).

pub mod check;
pub mod gate;
mod governed;
pub mod reconcile;
pub mod types;

pub use check::{AccessMode, Admission, Refusal};
pub use types::{ApiGatewayAccess, ApiGatewayAccessSpec, ApiGatewayAccessStatus};
