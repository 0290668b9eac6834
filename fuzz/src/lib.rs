//! Structure-aware inputs and the checks shared by the fuzz targets.
//!
//! The inputs mix "interesting" values (keys AWS uses, keys with `/` and `~`, AWS's defaults,
//! the enum values) with arbitrary strings, so that libFuzzer reaches both valid specs (where
//! the planner's promises are checked against a model of AWS) and nonsense (where it must not
//! panic).
//!
//! The model of AWS's patch semantics is the project's own `src/plan/aws_model.rs`, compiled
//! here unchanged (it names `crate::integration` and `crate::plan`, re-exported below).

use std::collections::BTreeMap;

use arbitrary::{Arbitrary, Result, Unstructured};

pub use apigw_operator::{integration, plan};

#[path = "../../src/plan/aws_model.rs"]
#[allow(dead_code)]
pub mod aws_model;

use apigw_operator::crd::{
    ApiGatewayIntegrationSpec, ConnectionType, ContentHandling, DeletionPolicy, HttpMethod,
    IntegrationType, ManagementPolicy, PassthroughBehavior, TlsConfigSpec,
};
use apigw_operator::integration::{Integration, TlsConfig};
use apigw_operator::plan::{is_supported, Op, PatchOperation, Plan};

const PARAM_KEYS: &[&str] = &[
    "integration.request.header.x-id",
    "integration.request.querystring.page",
    "integration.request.path.petId",
    "integration.request.header.a/b",
    "integration.request.header.x~y",
    "integration.request.multivalueheader.x-many",
];
const PARAM_VALUES: &[&str] = &[
    "method.request.header.x-id",
    "method.request.path.petId",
    "context.requestId",
    "stageVariables.stage",
    "'static'",
    "''",
    "method.request.body",
    "method.request.body.a.b",
];
const TEMPLATE_KEYS: &[&str] = &[
    "application/json",
    "text/plain",
    "application/x~y",
    "application/vnd.a+json",
    "a/b~1c",
    "~0/~1",
];
const TEMPLATE_VALUES: &[&str] = &["", "{\"a\": 1}", "$input.json('$')", "#set($x = 1)", "~/~1"];
const CACHE_KEYS: &[&str] = &[
    "method.request.path.petId",
    "method.request.header.x-id",
    "method.request.querystring.a/b",
    "method.request.querystring.x~0",
];
const URIS: &[&str] = &[
    "https://backend.example.com/pets",
    "http://other.example.com/v2",
    "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/f/invocations",
];
const IDS: &[&str] = &["a1b2c3", "link0", "${stageVariables.vpcLinkId}", "x"];

/// A string: mostly from `pool`, sometimes anything.
fn pick(u: &mut Unstructured<'_>, pool: &[&str]) -> Result<String> {
    if u.ratio(1, 5)? {
        String::arbitrary(u)
    } else {
        Ok(u.choose(pool)?.to_string())
    }
}

fn opt<T>(
    u: &mut Unstructured<'_>,
    f: impl FnOnce(&mut Unstructured<'_>) -> Result<T>,
) -> Result<Option<T>> {
    if bool::arbitrary(u)? {
        Ok(Some(f(u)?))
    } else {
        Ok(None)
    }
}

fn string_map(
    u: &mut Unstructured<'_>,
    keys: &[&str],
    values: &[&str],
) -> Result<BTreeMap<String, String>> {
    let len = u.int_in_range(0..=4)?;
    let mut map = BTreeMap::new();
    for _ in 0..len {
        map.insert(pick(u, keys)?, pick(u, values)?);
    }
    Ok(map)
}

fn string_list(u: &mut Unstructured<'_>, items: &[&str]) -> Result<Vec<String>> {
    let len = u.int_in_range(0..=4)?;
    (0..len).map(|_| pick(u, items)).collect()
}

fn one_of<T: Copy>(u: &mut Unstructured<'_>, all: &[T]) -> Result<T> {
    Ok(*u.choose(all)?)
}

/// An ApiGatewayIntegration spec: any combination of fields, values mostly plausible.
pub fn arbitrary_spec(u: &mut Unstructured<'_>) -> Result<ApiGatewayIntegrationSpec> {
    let mut spec = raw_spec(u)?;
    // Three times in four, make the combination one the CRD's rules allow, so that the model
    // check runs often; the fourth leaves whatever was drawn.
    if u.ratio(3, 4)? {
        let kind = spec.integration_type;
        if kind == Some(IntegrationType::Mock) {
            spec.uri = None;
            spec.connection_type = spec
                .connection_type
                .filter(|c| *c == ConnectionType::Internet);
        }
        match spec.connection_type {
            Some(ConnectionType::VpcLink) => {
                spec.connection_id.get_or_insert_with(|| "link0".into());
            }
            _ => spec.connection_id = None,
        }
        if !matches!(
            kind,
            Some(IntegrationType::Http | IntegrationType::HttpProxy)
        ) {
            spec.tls_config = None;
        }
        if let Some(params) = &mut spec.request_parameters {
            params.retain(|k, v| !k.is_empty() && !v.is_empty());
        }
        if let Some(t) = &mut spec.timeout_in_millis {
            *t = (*t).clamp(50, 29000);
        }
    }
    Ok(spec)
}

fn raw_spec(u: &mut Unstructured<'_>) -> Result<ApiGatewayIntegrationSpec> {
    Ok(ApiGatewayIntegrationSpec {
        rest_api_id: Some("a1b2c3d4e5".into()),
        rest_api_name: None,
        resource_id: Some("a1b2c3".into()),
        resource_path: None,
        http_method: one_of(u, HttpMethod::ALL)?,
        region: None,
        integration_type: opt(u, |u| one_of(u, IntegrationType::ALL))?,
        integration_http_method: opt(u, |u| one_of(u, HttpMethod::ALL))?,
        uri: opt(u, |u| pick(u, URIS))?,
        connection_type: opt(u, |u| one_of(u, ConnectionType::ALL))?,
        connection_id: opt(u, |u| pick(u, IDS))?,
        credentials: opt(u, |u| {
            pick(
                u,
                &[
                    "arn:aws:iam::123456789012:role/apigw",
                    "arn:aws:iam::*:user/*",
                ],
            )
        })?,
        request_parameters: opt(u, |u| string_map(u, PARAM_KEYS, PARAM_VALUES))?,
        request_templates: opt(u, |u| string_map(u, TEMPLATE_KEYS, TEMPLATE_VALUES))?,
        passthrough_behavior: opt(u, |u| one_of(u, PassthroughBehavior::ALL))?,
        content_handling: opt(u, |u| one_of(u, ContentHandling::ALL))?,
        timeout_in_millis: opt(u, timeout_in_millis)?,
        cache_namespace: opt(u, |u| pick(u, IDS))?,
        cache_key_parameters: opt(u, |u| string_list(u, CACHE_KEYS))?,
        tls_config: opt(u, |u| {
            Ok(TlsConfigSpec {
                insecure_skip_verification: Option::<bool>::arbitrary(u)?,
            })
        })?,
        management_policy: one_of(u, ManagementPolicy::ALL)?,
        deletion_policy: one_of(u, DeletionPolicy::ALL)?,
    })
}

/// A live Integration as AWS could return it (and sometimes as it never would).
pub fn arbitrary_live(u: &mut Unstructured<'_>) -> Result<Integration> {
    let mut live = raw_live(u)?;
    // Three times in four, a state AWS could hold (see `live_is_plausible`).
    if u.ratio(3, 4)? {
        let known = live
            .integration_type
            .as_deref()
            .is_some_and(|k| IntegrationType::ALL.iter().any(|t| t.as_str() == k));
        if !known {
            live.integration_type = Some(one_of(u, IntegrationType::ALL)?.to_string());
        }
        let kind = live.integration_type.clone().unwrap_or_default();
        if kind == "MOCK" {
            live.uri = None;
            live.connection_type = None;
        }
        match live.connection_type.as_deref() {
            Some("VPC_LINK") => {
                live.connection_id.get_or_insert_with(|| "link0".into());
            }
            Some("INTERNET") | None => {}
            Some(_) => live.connection_type = None,
        }
        if kind != "HTTP" && kind != "HTTP_PROXY" {
            live.tls_config = None;
        }
        if let Some(params) = &mut live.request_parameters {
            params.retain(|k, v| !k.is_empty() && !v.is_empty());
        }
    }
    Ok(live)
}

fn raw_live(u: &mut Unstructured<'_>) -> Result<Integration> {
    let types: Vec<&str> = IntegrationType::ALL.iter().map(|t| t.as_str()).collect();
    let verbs: Vec<&str> = HttpMethod::ALL.iter().map(|t| t.as_str()).collect();
    let passthrough: Vec<&str> = PassthroughBehavior::ALL
        .iter()
        .map(|t| t.as_str())
        .collect();
    let content: Vec<&str> = ContentHandling::ALL.iter().map(|t| t.as_str()).collect();
    Ok(Integration {
        integration_type: opt(u, |u| pick(u, &types))?,
        http_method: opt(u, |u| pick(u, &verbs))?,
        uri: opt(u, |u| pick(u, URIS))?,
        connection_type: opt(u, |u| pick(u, &["INTERNET", "VPC_LINK"]))?,
        connection_id: opt(u, |u| pick(u, IDS))?,
        credentials: opt(u, |u| pick(u, &["arn:aws:iam::123456789012:role/apigw"]))?,
        request_parameters: opt(u, |u| string_map(u, PARAM_KEYS, PARAM_VALUES))?,
        request_templates: opt(u, |u| string_map(u, TEMPLATE_KEYS, TEMPLATE_VALUES))?,
        passthrough_behavior: opt(u, |u| pick(u, &passthrough))?,
        content_handling: opt(u, |u| pick(u, &content))?,
        timeout_in_millis: opt(u, timeout_in_millis)?,
        cache_namespace: opt(u, |u| pick(u, IDS))?,
        cache_key_parameters: opt(u, |u| string_list(u, CACHE_KEYS))?,
        integration_responses: None,
        tls_config: opt(u, |u| {
            Ok(TlsConfig {
                insecure_skip_verification: Option::<bool>::arbitrary(u)?,
            })
        })?,
        response_transfer_mode: None,
        integration_target: None,
    })
}

/// A (spec, live) pair for the fuzz targets.
#[derive(Debug)]
pub struct Case {
    pub spec: ApiGatewayIntegrationSpec,
    pub live: Integration,
}

impl<'a> Arbitrary<'a> for Case {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(Case {
            spec: arbitrary_spec(u)?,
            live: arbitrary_live(u)?,
        })
    }
}

/// What the API server would say about this spec at creation (empty: accepted).
pub fn admission_errors(spec: &ApiGatewayIntegrationSpec) -> Vec<String> {
    let object = serde_json::json!({
        "apiVersion": "apigw.dev/v1alpha1",
        "kind": "ApiGatewayIntegration",
        "metadata": {"name": "fuzz", "namespace": "default"},
        "spec": spec,
    });
    apigw_operator::manifest::admission_errors(&object, None)
}

fn keys_nonempty(spec: &ApiGatewayIntegrationSpec, live: &Integration) -> bool {
    fn map_ok(m: &Option<BTreeMap<String, String>>) -> bool {
        m.as_ref().is_none_or(|m| m.keys().all(|k| !k.is_empty()))
    }
    fn list_ok(l: &Option<Vec<String>>) -> bool {
        l.as_ref().is_none_or(|l| l.iter().all(|k| !k.is_empty()))
    }
    map_ok(&spec.request_parameters)
        && map_ok(&spec.request_templates)
        && list_ok(&spec.cache_key_parameters)
        && map_ok(&live.request_parameters)
        && map_ok(&live.request_templates)
        && list_ok(&live.cache_key_parameters)
}

/// Rules of the CRD that are cheap to check here; necessary (not sufficient) for admission, so
/// that the expensive check (the CRD's OpenAPI schema and CEL rules) runs less often.
fn passes_cheap_admission_rules(spec: &ApiGatewayIntegrationSpec) -> bool {
    let kind = spec.integration_type;
    let vpc = spec.connection_type == Some(ConnectionType::VpcLink);
    let http = matches!(
        kind,
        Some(IntegrationType::Http | IntegrationType::HttpProxy)
    );
    (vpc == spec.connection_id.is_some())
        && (spec.tls_config.is_none() || http)
        && !(kind == Some(IntegrationType::Mock) && (spec.uri.is_some() || vpc))
        && spec
            .timeout_in_millis
            .is_none_or(|t| (50..=300_000).contains(&t))
        && spec
            .request_parameters
            .as_ref()
            .is_none_or(|m| m.values().all(|v| !v.is_empty()))
}

/// Whether the live state is one AWS could hold: what the planner may assume about its input.
pub fn live_is_plausible(live: &Integration) -> bool {
    let kind = live.integration_type.as_deref();
    let known_type = kind.is_some_and(|k| IntegrationType::ALL.iter().any(|t| t.as_str() == k));
    let is_http = matches!(kind, Some("HTTP" | "HTTP_PROXY"));
    let vpc = live.connection_type.as_deref() == Some("VPC_LINK");
    known_type
        && (live.tls_config.is_none() || is_http)
        && (!vpc || live.connection_id.is_some())
        && (kind != Some("MOCK") || (live.uri.is_none() && !vpc))
        && live
            .connection_type
            .as_deref()
            .is_none_or(|c| c == "INTERNET" || c == "VPC_LINK")
        && live
            .request_parameters
            .as_ref()
            .is_none_or(|m| m.values().all(|v| !v.is_empty()))
}

/// The planner's promises on one (spec, live) pair; panics (a libFuzzer crash) when one is
/// broken. With `check_model`, also applies the plan with the model of AWS and plans again
/// (for plausible live states and specs the cheap admission rules accept); returns whether
/// that ran.
pub fn check(case: &Case, check_model: bool) -> bool {
    let Case { spec, live } = case;
    let first = apigw_operator::plan::plan(spec, live);
    // Deterministic: the same inputs give the same plan.
    assert_eq!(
        first,
        apigw_operator::plan::plan(spec, live),
        "plan is not deterministic"
    );
    let ops = match &first {
        Plan::Patch(ops) => ops,
        Plan::Replace(reasons) => {
            assert!(!reasons.is_empty(), "a replacement without a reason");
            for r in reasons {
                assert!(
                    matches!(
                        r.field,
                        "type" | "credentials" | "uri" | "integrationHttpMethod"
                    ),
                    "replacement for a patchable field: {r}"
                );
            }
            return false;
        }
    };
    for op in ops {
        assert!(op.path.starts_with('/'), "path without a leading /: {op:?}");
        assert!(
            !(op.op == Op::Remove && op.value.is_some()),
            "a remove with a value: {op:?}"
        );
    }
    if keys_nonempty(spec, live) {
        for op in ops {
            assert!(
                is_supported(op.op, &op.path),
                "AWS does not support {op:?}\nspec: {spec:?}\nlive: {live:?}"
            );
            assert!(
                aws_model::aws_accepts(op.op, &op.path),
                "the AWS model does not accept {op:?}"
            );
        }
    }
    if !check_model || !keys_nonempty(spec, live) || !live_is_plausible(live) {
        return false;
    }
    if !passes_cheap_admission_rules(spec) {
        return false;
    }
    // A broken promise counts only for a spec the API server admits: the full admission check
    // (the CRD's OpenAPI schema and CEL rules) is slow, so it runs only on a failure.
    let broken = match aws_model::apply(live, ops) {
        Err(e) => Some(format!("AWS (model) rejects the plan: {e}")),
        Ok(after) => {
            let again = apigw_operator::plan::plan(spec, &after);
            (!again.is_in_sync())
                .then(|| format!("planning again is not empty: {again:?}\nafter: {after:?}"))
        }
    };
    if let Some(message) = broken {
        if admission_errors(spec).is_empty() {
            panic!("{message}\nops: {ops:?}\nspec: {spec:?}\nlive: {live:?}");
        }
    }
    true
}

/// Checks of escape_key/unescape_key on one string.
pub fn check_escaping(s: &str) {
    use apigw_operator::plan::{escape_key, unescape_key};
    let escaped = escape_key(s);
    assert!(!escaped.contains('/'), "escaped key holds a /: {escaped:?}");
    assert_eq!(
        unescape_key(&escaped),
        s,
        "round trip of {s:?} via {escaped:?}"
    );
    // Every ~ in an escaped key starts ~0 or ~1.
    let bytes = escaped.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'~' {
            assert!(
                matches!(bytes.get(i + 1), Some(b'0' | b'1')),
                "bare ~ in {escaped:?}"
            );
        }
    }
    // A well-formed pointer segment survives unescape then escape.
    let well_formed = !s.contains('/') && {
        let b = s.as_bytes();
        b.iter()
            .enumerate()
            .all(|(i, c)| *c != b'~' || matches!(b.get(i + 1), Some(b'0' | b'1')))
    };
    if well_formed {
        assert_eq!(
            escape_key(&unescape_key(s)),
            s,
            "segment {s:?} is not stable"
        );
    }
    // A non-empty key makes a path AWS supports, and the model reads the key back.
    if !s.is_empty() {
        for prefix in ["/requestTemplates/", "/requestParameters/"] {
            let path = format!("{prefix}{escaped}");
            assert!(is_supported(Op::Add, &path), "{path} unsupported");
            let live = Integration::default();
            let op = PatchOperation {
                op: Op::Add,
                path: path.clone(),
                value: Some("'v'".into()),
            };
            let after = aws_model::apply(&live, std::slice::from_ref(&op)).expect("model add");
            let map = if prefix == "/requestTemplates/" {
                after.request_templates
            } else {
                after.request_parameters
            };
            assert_eq!(
                map.and_then(|m| m.keys().next().cloned()).as_deref(),
                Some(s),
                "{path} does not name {s:?}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The generators reach the model check often enough to matter.
    #[test]
    fn the_model_check_runs_on_a_good_share_of_inputs() {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut ran = 0;
        let total = 5000;
        for _ in 0..total {
            let bytes: Vec<u8> = (0..512)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    (seed >> 24) as u8
                })
                .collect();
            let mut u = Unstructured::new(&bytes);
            if let Ok(case) = Case::arbitrary(&mut u) {
                if check(&case, true) {
                    ran += 1;
                }
            }
        }
        eprintln!("model check ran on {ran} of {total} random inputs");
        assert!(ran * 50 > total, "only {ran} of {total}");
    }
}

/// Mostly timeouts admission allows, a quarter of any value at all.
fn timeout_in_millis(u: &mut Unstructured<'_>) -> Result<i32> {
    if u.ratio(1, 4)? {
        i32::arbitrary(u)
    } else {
        u.int_in_range(50..=29000)
    }
}
