//! A model of how API Gateway applies UpdateIntegration patch operations, written from the
//! facts table (aws-apigateway-facts.md) and independent of the planner's own code, so the
//! property tests check the planner against AWS's rules rather than against itself.
//!
//! Where AWS's text is silent the model takes the strict reading: removing an absent key is an
//! error, VPC_LINK needs a connectionId already in place, and INTERNET drops the link id.

use crate::integration::{Integration, TlsConfig};
use crate::plan::{Op, PatchOperation};

/// Applies `ops` in order, all or nothing, as AWS would. Returns AWS's kind of error message.
pub fn apply(live: &Integration, ops: &[PatchOperation]) -> Result<Integration, String> {
    let mut next = live.clone();
    for op in ops {
        apply_one(&mut next, op)?;
    }
    Ok(next)
}

/// The (op, path) pairs AWS documents, re-stated from the facts table.
pub fn aws_accepts(op: Op, path: &str) -> bool {
    let path = normalise(path);
    let fixed_replace = [
        "/uri",
        "/httpMethod",
        "/connectionType",
        "/connectionId",
        "/passthroughBehavior",
        "/contentHandling",
        "/timeoutInMillis",
        "/cacheNamespace",
        "/tlsConfig/insecureSkipVerification",
    ];
    if fixed_replace.contains(&path.as_str()) {
        return op == Op::Replace;
    }
    match split_keyed(&path) {
        Some(("cacheKeyParameters", _)) => matches!(op, Op::Add | Op::Remove),
        Some(("requestParameters" | "requestTemplates", _)) => true,
        _ => false,
    }
}

fn normalise(path: &str) -> String {
    if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    }
}

fn split_keyed(path: &str) -> Option<(&str, String)> {
    let rest = path.strip_prefix('/')?;
    let (field, key) = rest.split_once('/')?;
    if key.is_empty() || key.contains('/') {
        return None;
    }
    Some((field, key.replace("~1", "/").replace("~0", "~")))
}

fn apply_one(next: &mut Integration, op: &PatchOperation) -> Result<(), String> {
    let path = normalise(&op.path);
    if !aws_accepts(op.op, &path) {
        return Err(format!(
            "Invalid patch path '{path}' specified for op '{}'",
            op.op.as_str()
        ));
    }
    let value = || {
        op.value
            .clone()
            .ok_or_else(|| format!("{path} needs a value"))
    };
    let is_mock = next.integration_type.as_deref() == Some("MOCK");
    match path.as_str() {
        "/uri" | "/httpMethod" if is_mock => {
            return Err(format!("{path} cannot be patched on a MOCK integration"))
        }
        "/uri" => next.uri = Some(value()?),
        "/httpMethod" => next.http_method = Some(value()?),
        "/connectionType" => match value()?.as_str() {
            "INTERNET" => {
                next.connection_type = Some("INTERNET".into());
                next.connection_id = None;
            }
            "VPC_LINK" => {
                if next.connection_id.is_none() {
                    return Err("connectionId is required for VPC_LINK".into());
                }
                next.connection_type = Some("VPC_LINK".into());
            }
            other => return Err(format!("Invalid connection type {other}")),
        },
        "/connectionId" => next.connection_id = Some(value()?),
        "/passthroughBehavior" => next.passthrough_behavior = Some(value()?),
        "/contentHandling" => next.content_handling = Some(value()?),
        "/timeoutInMillis" => {
            let millis: i32 = value()?
                .parse()
                .map_err(|_| "Invalid timeout".to_string())?;
            next.timeout_in_millis = Some(millis);
        }
        "/cacheNamespace" => next.cache_namespace = Some(value()?),
        "/tlsConfig/insecureSkipVerification" => {
            if !matches!(
                next.integration_type.as_deref(),
                Some("HTTP" | "HTTP_PROXY")
            ) {
                return Err("tlsConfig is supported only for HTTP and HTTP_PROXY".into());
            }
            let skip = match value()?.as_str() {
                "true" => true,
                "false" => false,
                other => return Err(format!("Invalid boolean {other}")),
            };
            next.tls_config = Some(TlsConfig {
                insecure_skip_verification: Some(skip),
            });
        }
        _ => {
            let (field, key) = split_keyed(&path).expect("accepted paths are keyed here");
            match field {
                "cacheKeyParameters" => {
                    let set = next.cache_key_parameters.get_or_insert_with(Vec::new);
                    match op.op {
                        Op::Add if !set.contains(&key) => set.push(key),
                        Op::Add => {}
                        _ => {
                            let before = set.len();
                            set.retain(|item| item != &key);
                            if set.len() == before {
                                return Err(format!("{key} is not a cache key parameter"));
                            }
                        }
                    }
                }
                _ => {
                    let map = if field == "requestParameters" {
                        next.request_parameters.get_or_insert_with(Default::default)
                    } else {
                        next.request_templates.get_or_insert_with(Default::default)
                    };
                    match op.op {
                        Op::Remove => {
                            if map.remove(&key).is_none() {
                                return Err(format!("{key} does not exist in {field}"));
                            }
                        }
                        _ if field == "requestParameters" => {
                            map.insert(key, value()?);
                        }
                        // A template without a value is a passthrough template (AWS's null).
                        _ => {
                            map.insert(key, op.value.clone().unwrap_or_default());
                        }
                    }
                }
            }
        }
    }
    Ok(())
}
