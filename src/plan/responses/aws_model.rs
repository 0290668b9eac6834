//! A model of how API Gateway applies integration-response calls, written from the facts file
//! (`aws-apigateway-deploy-facts.md` §1) and independent of the planner's code. It takes the
//! strict reading everywhere the facts are silent: UpdateIntegrationResponse accepts only the
//! evidenced ops, a delete of a missing code is an error, and a second default response is
//! refused (409) whether its pattern is absent or empty.

use std::collections::BTreeMap;

use crate::integration::IntegrationResponse;
use crate::plan::responses::{is_default, ResponseCall, ResponseCallKind};
use crate::plan::{unescape_key, Op};

/// Applies `calls` in order as AWS would; each call is checked against the state it meets.
pub fn apply(
    live: &BTreeMap<String, IntegrationResponse>,
    calls: &[ResponseCall],
) -> Result<BTreeMap<String, IntegrationResponse>, String> {
    let mut next = live.clone();
    for call in calls {
        apply_one(&mut next, call)?;
    }
    Ok(next)
}

/// AWS refuses a second default response (409): `response` would be the default for `code`
/// while another status code already is.
fn check_single_default(
    map: &BTreeMap<String, IntegrationResponse>,
    code: &str,
    response: &IntegrationResponse,
) -> Result<(), String> {
    let elsewhere = map.iter().any(|(other, r)| other != code && is_default(r));
    if is_default(response) && elsewhere {
        return Err("Integration response with selection pattern default already exists".into());
    }
    Ok(())
}

fn apply_one(
    map: &mut BTreeMap<String, IntegrationResponse>,
    call: &ResponseCall,
) -> Result<(), String> {
    let code = call.status_code.clone();
    match call.call {
        ResponseCallKind::PutIntegrationResponse => {
            let mut response = call.response.clone().ok_or("Put without a response")?;
            response.status_code = Some(code.clone());
            check_single_default(map, &code, &response)?;
            map.insert(code, response);
        }
        ResponseCallKind::DeleteIntegrationResponse => {
            map.remove(&code)
                .ok_or("Invalid Response status code specified")?;
        }
        ResponseCallKind::UpdateIntegrationResponse => {
            let mut response = map
                .get(&code)
                .cloned()
                .ok_or("Invalid Response status code specified")?;
            for op in call.patch_operations.iter().flatten() {
                let value = op.value.clone().ok_or("replace needs a value")?;
                if op.op != Op::Replace {
                    return Err(format!(
                        "Invalid patch path  '{}' specified for op '{}'",
                        op.path,
                        op.op.as_str()
                    ));
                }
                if op.path == "/selectionPattern" {
                    response.selection_pattern = Some(value);
                } else if let Some(key) = op.path.strip_prefix("/responseTemplates/") {
                    let key = unescape_key(key);
                    let templates = response.response_templates.get_or_insert_default();
                    if !templates.contains_key(&key) {
                        return Err(format!(
                            "Invalid patch path  '{}' specified for op 'replace'",
                            op.path
                        ));
                    }
                    templates.insert(key, value);
                } else {
                    return Err(format!(
                        "Invalid patch path  '{}' specified for op 'replace'",
                        op.path
                    ));
                }
            }
            check_single_default(map, &code, &response)?;
            map.insert(code, response);
        }
    }
    Ok(())
}
