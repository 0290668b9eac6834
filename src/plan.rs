//! The planner: a pure function from (spec, live Integration) to the patch operations of one
//! UpdateIntegration call, or to a verdict that the integration must be re-created.
//!
//! Semantics (DESIGN.md "The resource"):
//! - a field absent from the spec is not managed: no operation touches it;
//! - a map or set that is set is authoritative: live keys absent from the spec are removed;
//! - AWS's defaults are not drift: an absent live value counts as AWS's default;
//! - values go on the wire as AWS wants them: strings, `"1000"`, `"true"`;
//! - one deterministic order: scalars in a fixed order, then each map with removes before
//!   adds/replaces, keys sorted. `connectionId` goes before `connectionType` when switching to
//!   VPC_LINK (AWS checks the pair on each op), `connectionType` goes first when switching to
//!   INTERNET;
//! - only (op, path) pairs in [`SUPPORTED`] are emitted; `type`, `credentials`, and `uri` or
//!   `httpMethod` on a MOCK integration cannot be patched and give [`Plan::Replace`].

use std::collections::{BTreeMap, BTreeSet};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::crd::{ApiGatewayIntegrationSpec, ConnectionType, IntegrationType};
use crate::integration::{defaults, Integration};

/// A JSON Patch operation kind that API Gateway accepts on some Integration path.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// Adds a map key or set item.
    Add,
    /// Removes a map key or set item.
    Remove,
    /// Replaces a value.
    Replace,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Add => "add",
            Op::Remove => "remove",
            Op::Replace => "replace",
        }
    }
}

/// One patch operation of an UpdateIntegration request, in the AWS CLI's JSON syntax.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PatchOperation {
    /// add, remove or replace.
    pub op: Op,
    /// The JSON Pointer of the field, with / in keys written ~1 and ~ written ~0.
    pub path: String,
    /// The new value, always a string on the wire; absent for remove, and for add/replace of
    /// an input-passthrough template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

impl PatchOperation {
    fn new(op: Op, path: String, value: Option<String>) -> Self {
        PatchOperation { op, path, value }
    }
}

/// The shape of a path AWS supports on an Integration, with the ops it accepts there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathShape {
    /// A fixed path such as `/uri`.
    Exact(&'static str),
    /// A map key or set item below a prefix, such as `/requestTemplates/{contentType}`.
    Keyed(&'static str),
}

/// Every (path, ops) pair API Gateway documents for UpdateIntegration
/// (reference: aws-apigateway-facts.md). Nothing outside this table is ever emitted.
pub const SUPPORTED: &[(PathShape, &[Op])] = &[
    (PathShape::Exact("/uri"), &[Op::Replace]),
    (PathShape::Exact("/httpMethod"), &[Op::Replace]),
    (PathShape::Exact("/connectionType"), &[Op::Replace]),
    (PathShape::Exact("/connectionId"), &[Op::Replace]),
    (PathShape::Exact("/passthroughBehavior"), &[Op::Replace]),
    (PathShape::Exact("/contentHandling"), &[Op::Replace]),
    (PathShape::Exact("/timeoutInMillis"), &[Op::Replace]),
    (PathShape::Exact("/cacheNamespace"), &[Op::Replace]),
    (
        PathShape::Exact("/tlsConfig/insecureSkipVerification"),
        &[Op::Replace],
    ),
    (
        PathShape::Keyed("/cacheKeyParameters/"),
        &[Op::Add, Op::Remove],
    ),
    (
        PathShape::Keyed("/requestParameters/"),
        &[Op::Add, Op::Replace, Op::Remove],
    ),
    (
        PathShape::Keyed("/requestTemplates/"),
        &[Op::Add, Op::Replace, Op::Remove],
    ),
];

/// Whether AWS supports `op` on `path` for an Integration.
pub fn is_supported(op: Op, path: &str) -> bool {
    SUPPORTED.iter().any(|(shape, ops)| {
        ops.contains(&op)
            && match shape {
                PathShape::Exact(exact) => path == *exact,
                PathShape::Keyed(prefix) => path
                    .strip_prefix(prefix)
                    .is_some_and(|key| !key.is_empty() && !key.contains('/')),
            }
    })
}

/// Escapes a map key for a JSON Pointer (RFC 6901): `~` → `~0`, then `/` → `~1`.
pub fn escape_key(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Reverses [`escape_key`]: `~1` → `/`, then `~0` → `~`.
pub fn unescape_key(segment: &str) -> String {
    segment.replace("~1", "/").replace("~0", "~")
}

/// A field whose change UpdateIntegration cannot make.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replacement {
    /// The spec field, for example `type`.
    pub field: &'static str,
    /// The value AWS has, if any.
    pub live: Option<String>,
    /// The value the spec asks for.
    pub desired: String,
    /// Why a patch cannot do it.
    pub why: &'static str,
}

impl std::fmt::Display for Replacement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "spec.{} is {:?} but AWS has {}; {}",
            self.field,
            self.desired,
            self.live
                .as_deref()
                .map_or_else(|| "none".to_string(), |v| format!("{v:?}")),
            self.why
        )
    }
}

/// What it takes to make the live integration match the spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// One UpdateIntegration with these operations; empty when AWS already matches.
    Patch(Vec<PatchOperation>),
    /// UpdateIntegration cannot do it: the integration must be re-created with PutIntegration.
    Replace(Vec<Replacement>),
}

impl Plan {
    /// True when AWS already matches the spec.
    pub fn is_in_sync(&self) -> bool {
        matches!(self, Plan::Patch(ops) if ops.is_empty())
    }
}

/// Plans the operations that make `live` match `spec` on every managed field.
pub fn plan(spec: &ApiGatewayIntegrationSpec, live: &Integration) -> Plan {
    let replacements = replacements(spec, live);
    if !replacements.is_empty() {
        return Plan::Replace(replacements);
    }
    let mut ops = Vec::new();
    plan_scalars(spec, live, &mut ops);
    plan_set(
        "/cacheKeyParameters/",
        spec.cache_key_parameters.as_deref(),
        live.cache_key_parameters.as_deref(),
        &mut ops,
    );
    plan_map(
        "/requestParameters/",
        spec.request_parameters.as_ref(),
        live.request_parameters.as_ref(),
        &mut ops,
    );
    plan_map(
        "/requestTemplates/",
        spec.request_templates.as_ref(),
        live.request_templates.as_ref(),
        &mut ops,
    );
    Plan::Patch(ops)
}

fn replacements(spec: &ApiGatewayIntegrationSpec, live: &Integration) -> Vec<Replacement> {
    let mut out = Vec::new();
    if let Some(desired) = spec.integration_type {
        if live.integration_type.as_deref() != Some(desired.as_str()) {
            out.push(Replacement {
                field: "type",
                live: live.integration_type.clone(),
                desired: desired.to_string(),
                why: "UpdateIntegration cannot change the type",
            });
        }
    }
    if let Some(desired) = &spec.credentials {
        if live.credentials.as_ref() != Some(desired) {
            out.push(Replacement {
                field: "credentials",
                live: live.credentials.clone(),
                desired: desired.clone(),
                why: "UpdateIntegration cannot change credentials",
            });
        }
    }
    // On a MOCK integration AWS refuses patches of the backend fields. When the type changes
    // too, the type replacement above already covers them.
    let live_is_mock = live.integration_type.as_deref() == Some(IntegrationType::Mock.as_str());
    if live_is_mock && out.is_empty() {
        if let Some(desired) = &spec.uri {
            if live.uri.as_ref() != Some(desired) {
                out.push(Replacement {
                    field: "uri",
                    live: live.uri.clone(),
                    desired: desired.clone(),
                    why: "UpdateIntegration cannot change the uri of a MOCK integration",
                });
            }
        }
        if let Some(desired) = spec.integration_http_method {
            if live.http_method.as_deref() != Some(desired.as_str()) {
                out.push(Replacement {
                    field: "integrationHttpMethod",
                    live: live.http_method.clone(),
                    desired: desired.to_string(),
                    why: "UpdateIntegration cannot change the httpMethod of a MOCK integration",
                });
            }
        }
    }
    out
}

/// Pushes `replace path value` when the spec sets a value that differs from the live one.
fn replace_if_changed(
    ops: &mut Vec<PatchOperation>,
    path: &str,
    desired: Option<String>,
    live: Option<String>,
) {
    if let Some(desired) = desired {
        if live.as_ref() != Some(&desired) {
            ops.push(PatchOperation::new(
                Op::Replace,
                path.to_string(),
                Some(desired),
            ));
        }
    }
}

fn plan_scalars(
    spec: &ApiGatewayIntegrationSpec,
    live: &Integration,
    ops: &mut Vec<PatchOperation>,
) {
    let live_connection_type = live
        .connection_type
        .clone()
        .unwrap_or_else(|| defaults::CONNECTION_TYPE.to_string());
    let connection_type_op = spec
        .connection_type
        .filter(|desired| desired.as_str() != live_connection_type)
        .map(|desired| {
            PatchOperation::new(
                Op::Replace,
                "/connectionType".into(),
                Some(desired.to_string()),
            )
        });
    // Leaving VPC_LINK: switch the type first, so AWS never sees INTERNET checked against a
    // half-changed connection.
    let to_internet = spec.connection_type == Some(ConnectionType::Internet);
    if to_internet {
        ops.extend(connection_type_op.clone());
    }
    replace_if_changed(
        ops,
        "/httpMethod",
        spec.integration_http_method.map(|m| m.to_string()),
        live.http_method.clone(),
    );
    replace_if_changed(ops, "/uri", spec.uri.clone(), live.uri.clone());
    // Entering VPC_LINK: the link id must be in place before the type says VPC_LINK.
    replace_if_changed(
        ops,
        "/connectionId",
        spec.connection_id.clone(),
        live.connection_id.clone(),
    );
    if !to_internet {
        ops.extend(connection_type_op);
    }
    replace_if_changed(
        ops,
        "/passthroughBehavior",
        spec.passthrough_behavior.map(|p| p.to_string()),
        Some(
            live.passthrough_behavior
                .clone()
                .unwrap_or_else(|| defaults::PASSTHROUGH_BEHAVIOR.to_string()),
        ),
    );
    replace_if_changed(
        ops,
        "/contentHandling",
        spec.content_handling.map(|c| c.to_string()),
        live.content_handling.clone(),
    );
    replace_if_changed(
        ops,
        "/timeoutInMillis",
        spec.timeout_in_millis.map(|t| t.to_string()),
        Some(
            live.timeout_in_millis
                .unwrap_or(defaults::TIMEOUT_IN_MILLIS)
                .to_string(),
        ),
    );
    replace_if_changed(
        ops,
        "/cacheNamespace",
        spec.cache_namespace.clone(),
        live.cache_namespace.clone(),
    );
    replace_if_changed(
        ops,
        "/tlsConfig/insecureSkipVerification",
        spec.tls_config
            .as_ref()
            .and_then(|tls| tls.insecure_skip_verification)
            .map(|b| b.to_string()),
        Some(
            live.tls_config
                .as_ref()
                .and_then(|tls| tls.insecure_skip_verification)
                .unwrap_or(defaults::INSECURE_SKIP_VERIFICATION)
                .to_string(),
        ),
    );
}

fn plan_set(
    prefix: &str,
    desired: Option<&[String]>,
    live: Option<&[String]>,
    ops: &mut Vec<PatchOperation>,
) {
    let Some(desired) = desired else { return };
    let desired: BTreeSet<&String> = desired.iter().collect();
    let live: BTreeSet<&String> = live.unwrap_or_default().iter().collect();
    for gone in live.difference(&desired) {
        ops.push(PatchOperation::new(
            Op::Remove,
            format!("{prefix}{}", escape_key(gone)),
            None,
        ));
    }
    for new in desired.difference(&live) {
        ops.push(PatchOperation::new(
            Op::Add,
            format!("{prefix}{}", escape_key(new)),
            None,
        ));
    }
}

fn plan_map(
    prefix: &str,
    desired: Option<&BTreeMap<String, String>>,
    live: Option<&BTreeMap<String, String>>,
    ops: &mut Vec<PatchOperation>,
) {
    let Some(desired) = desired else { return };
    let empty = BTreeMap::new();
    let live = live.unwrap_or(&empty);
    for key in live.keys().filter(|key| !desired.contains_key(*key)) {
        ops.push(PatchOperation::new(
            Op::Remove,
            format!("{prefix}{}", escape_key(key)),
            None,
        ));
    }
    for (key, value) in desired {
        // "" is AWS's passthrough template, sent as an op without a value.
        let wire_value = (!value.is_empty()).then(|| value.clone());
        let op = match live.get(key) {
            None => Op::Add,
            Some(current) if current == value => continue,
            Some(_) => Op::Replace,
        };
        ops.push(PatchOperation::new(
            op,
            format!("{prefix}{}", escape_key(key)),
            wire_value,
        ));
    }
}

pub mod responses;

#[cfg(test)]
pub(crate) mod aws_model;
#[cfg(test)]
pub(crate) mod tests;
