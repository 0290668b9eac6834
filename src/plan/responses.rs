//! The integration-response planner: a pure function from (spec.integrationResponses, the live
//! responses) to the calls that make AWS match, one per response that must change.
//!
//! Semantics (DESIGN.md "ApiGatewayIntegration", issue "Integration responses"):
//! - `spec.integrationResponses` unset: no response is managed, no call;
//! - set: authoritative over status codes; a live code missing from it is deleted, `{}` deletes
//!   them all;
//! - inside one response an unset field is not managed: the call leaves AWS's value as it is;
//!   a set map is authoritative;
//! - an unchanged response costs no call, a changed one exactly one.
//!
//! Which call changes a response. AWS's patch table for UpdateIntegrationResponse could not be
//! read (`aws-apigateway-deploy-facts.md` §1.3); only `replace /selectionPattern` and `replace
//! /responseTemplates/{existing content type}` are evidenced. A change made only of those goes
//! out as UpdateIntegrationResponse (it touches nothing else, even if the response changed out
//! of band meanwhile). Any other change (a parameter, contentHandling, a template added or
//! removed, a passthrough template, a pattern set for the first time or emptied) goes out as
//! PutIntegrationResponse of the merged response: the live response with the spec's fields laid
//! over it, so a field the spec leaves unset is sent back as AWS had it. PutIntegrationResponse
//! is a full replace (recorded, §1.1) and is what Terraform uses for every change. Both work
//! whichever way the unknown rows of the patch table turn out: the operator never sends an op
//! whose behaviour is unknown.
//!
//! Order: deletes first, then the calls whose result has a selection pattern, then the one whose
//! result is the default response; status codes ascending within each group. AWS refuses a
//! second default response (409, §1.1), so a default moving from one code to another must leave
//! the old code before it arrives at the new one.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::crd::IntegrationResponseSpec;
use crate::integration::IntegrationResponse;
use crate::plan::{escape_key, Op, PatchOperation};

/// Which integration-response call.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub enum ResponseCallKind {
    /// A full replace (or create) of the response.
    PutIntegrationResponse,
    /// Patch operations on an existing response.
    UpdateIntegrationResponse,
    /// The response is removed.
    DeleteIntegrationResponse,
}

impl ResponseCallKind {
    /// The AWS CLI subcommand.
    pub fn cli_command(self) -> &'static str {
        match self {
            ResponseCallKind::PutIntegrationResponse => "put-integration-response",
            ResponseCallKind::UpdateIntegrationResponse => "update-integration-response",
            ResponseCallKind::DeleteIntegrationResponse => "delete-integration-response",
        }
    }
}

/// One call on one integration response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResponseCall {
    /// PutIntegrationResponse, UpdateIntegrationResponse or DeleteIntegrationResponse.
    pub call: ResponseCallKind,
    /// The status code of the response.
    pub status_code: String,
    /// PutIntegrationResponse: the whole response sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<IntegrationResponse>,
    /// UpdateIntegrationResponse: the patch operations sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch_operations: Option<Vec<PatchOperation>>,
}

impl ResponseCall {
    fn put(status_code: &str, response: IntegrationResponse) -> Self {
        ResponseCall {
            call: ResponseCallKind::PutIntegrationResponse,
            status_code: status_code.to_string(),
            response: Some(response),
            patch_operations: None,
        }
    }

    fn update(status_code: &str, ops: Vec<PatchOperation>) -> Self {
        ResponseCall {
            call: ResponseCallKind::UpdateIntegrationResponse,
            status_code: status_code.to_string(),
            response: None,
            patch_operations: Some(ops),
        }
    }

    fn delete(status_code: &str) -> Self {
        ResponseCall {
            call: ResponseCallKind::DeleteIntegrationResponse,
            status_code: status_code.to_string(),
            response: None,
            patch_operations: None,
        }
    }

    /// What the call is about, for conditions and events: the call and the code, never values.
    pub fn describe(&self) -> String {
        format!("{:?} {}", self.call, self.status_code)
    }
}

/// A response without a selection pattern (or with an empty one) is the default response.
pub fn is_default(response: &IntegrationResponse) -> bool {
    response
        .selection_pattern
        .as_deref()
        .unwrap_or_default()
        .is_empty()
}

/// The response AWS should hold for `status_code`: `live` (if any) with every field the spec
/// sets laid over it. Fields the spec leaves unset keep AWS's value.
pub fn merged(
    status_code: &str,
    spec: &IntegrationResponseSpec,
    live: Option<&IntegrationResponse>,
) -> IntegrationResponse {
    let mut out = live.cloned().unwrap_or_default();
    out.status_code = Some(status_code.to_string());
    if let Some(pattern) = &spec.selection_pattern {
        out.selection_pattern = Some(pattern.clone());
    }
    if let Some(parameters) = &spec.response_parameters {
        out.response_parameters = Some(parameters.clone());
    }
    if let Some(templates) = &spec.response_templates {
        out.response_templates = Some(templates.clone());
    }
    if let Some(handling) = spec.content_handling {
        out.content_handling = Some(handling.to_string());
    }
    out
}

/// Whether `live` already holds every field `desired` has; AWS leaves an empty map out, and
/// the status code is the key, not a field to compare.
pub fn same_response(desired: &IntegrationResponse, live: &IntegrationResponse) -> bool {
    let map = |m: &Option<BTreeMap<String, String>>| m.clone().unwrap_or_default();
    desired.selection_pattern == live.selection_pattern
        && map(&desired.response_parameters) == map(&live.response_parameters)
        && map(&desired.response_templates) == map(&live.response_templates)
        && desired.content_handling == live.content_handling
}

/// The calls that make `live` match `spec`, in the order they must be sent.
pub fn plan_responses(
    spec: Option<&BTreeMap<String, IntegrationResponseSpec>>,
    live: Option<&BTreeMap<String, IntegrationResponse>>,
) -> Vec<ResponseCall> {
    let Some(spec) = spec else {
        return Vec::new();
    };
    let empty = BTreeMap::new();
    let live = live.unwrap_or(&empty);
    let mut deletes = Vec::new();
    let mut patterned = Vec::new();
    let mut defaults = Vec::new();
    for code in live.keys().filter(|code| !spec.contains_key(*code)) {
        deletes.push(ResponseCall::delete(code));
    }
    for (code, wanted) in spec {
        let current = live.get(code);
        let desired = merged(code, wanted, current);
        let call = match current {
            Some(current) if same_response(&desired, current) => continue,
            Some(current) => match evidenced_patch(&desired, current) {
                Some(ops) => ResponseCall::update(code, ops),
                None => ResponseCall::put(code, desired.clone()),
            },
            None => ResponseCall::put(code, desired.clone()),
        };
        if is_default(&desired) {
            defaults.push(call);
        } else {
            patterned.push(call);
        }
    }
    deletes
        .into_iter()
        .chain(patterned)
        .chain(defaults)
        .collect()
}

/// The calls that put every response of `desired` in place over `live`, and delete what
/// `desired` lacks: used after a re-create, where `desired` already holds the merged responses
/// (the spec's, and the live ones it does not manage).
pub fn plan_restore(
    desired: &BTreeMap<String, IntegrationResponse>,
    live: Option<&BTreeMap<String, IntegrationResponse>>,
) -> Vec<ResponseCall> {
    let as_spec: BTreeMap<String, IntegrationResponseSpec> = desired
        .iter()
        .map(|(code, response)| (code.clone(), spec_of(response)))
        .collect();
    plan_responses(Some(&as_spec), live)
}

/// A response as a spec that manages every field it has (an absent map manages nothing).
fn spec_of(response: &IntegrationResponse) -> IntegrationResponseSpec {
    IntegrationResponseSpec {
        selection_pattern: response.selection_pattern.clone(),
        response_parameters: response.response_parameters.clone(),
        response_templates: response.response_templates.clone(),
        content_handling: response
            .content_handling
            .as_deref()
            .and_then(|c| serde_json::from_value(serde_json::Value::String(c.into())).ok()),
    }
}

/// The responses AWS should hold when the spec is met: every live response the spec does not
/// manage, and each spec response merged over its live one. With the field unset, the live
/// responses as they are.
pub fn desired_responses(
    spec: Option<&BTreeMap<String, IntegrationResponseSpec>>,
    live: Option<&BTreeMap<String, IntegrationResponse>>,
) -> BTreeMap<String, IntegrationResponse> {
    let live = live.cloned().unwrap_or_default();
    let Some(spec) = spec else {
        return live;
    };
    spec.iter()
        .map(|(code, wanted)| (code.clone(), merged(code, wanted, live.get(code))))
        .collect()
}

/// UpdateIntegrationResponse operations for a change made only of evidenced ops, else None.
fn evidenced_patch(
    desired: &IntegrationResponse,
    live: &IntegrationResponse,
) -> Option<Vec<PatchOperation>> {
    let map = |m: &Option<BTreeMap<String, String>>| m.clone().unwrap_or_default();
    if map(&desired.response_parameters) != map(&live.response_parameters)
        || desired.content_handling != live.content_handling
    {
        return None;
    }
    let mut ops = Vec::new();
    if desired.selection_pattern != live.selection_pattern {
        let (Some(new), Some(old)) = (&desired.selection_pattern, &live.selection_pattern) else {
            return None;
        };
        if new.is_empty() || old.is_empty() {
            return None;
        }
        ops.push(PatchOperation {
            op: Op::Replace,
            path: "/selectionPattern".into(),
            value: Some(new.clone()),
        });
    }
    let (new, old) = (
        map(&desired.response_templates),
        map(&live.response_templates),
    );
    if new.keys().ne(old.keys()) {
        return None;
    }
    for (content_type, value) in &new {
        if old[content_type] == *value {
            continue;
        }
        if value.is_empty() {
            return None;
        }
        ops.push(PatchOperation {
            op: Op::Replace,
            path: format!("/responseTemplates/{}", escape_key(content_type)),
            value: Some(value.clone()),
        });
    }
    Some(ops)
}

#[cfg(test)]
pub(crate) mod aws_model;
#[cfg(test)]
pub(crate) mod tests;
