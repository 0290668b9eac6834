//! `apigw-operator import`: one `ApiGatewayIntegration` manifest per method integration of an
//! existing REST API, with what AWS holds, so that applying them changes nothing in AWS
//! (adoption in bulk). It only reads: GetRestApis (for a name) and GetResources `embed=methods`,
//! through the same paged, quota-aware layer the controller uses.
//!
//! The manifests are a pure function of the listing ([`manifests`]): sorted by path and verb,
//! named from them, so two runs over an unchanged API print the same bytes.

use std::collections::{BTreeMap, HashMap};

use serde_json::{json, Map, Value};

use crate::access::check::glob_match;
use crate::aws::MethodIntegration;
use crate::crd::{ApiGatewayIntegration, ApiGatewayIntegrationSpec};
use crate::integration::{defaults, Integration, IntegrationResponse};

/// Which fields a manifest carries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Fields {
    /// Every field AWS holds.
    #[default]
    All,
    /// Only what differs from AWS's defaults (an unset field is not managed).
    Minimal,
}

/// How the manifests name their integration and what they may do.
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// The REST API as the manifests name it: `restApiId` or `restApiName`.
    pub rest_api_id: Option<String>,
    pub rest_api_name: Option<String>,
    /// spec.region, when the import named one.
    pub region: Option<String>,
    pub namespace: Option<String>,
    pub name_prefix: String,
    /// Only resources whose path matches (`*` any run of characters, `?` one).
    pub only_path: Option<String>,
    /// spec.managementPolicy: Update or Observe.
    pub policy: String,
    pub fields: Fields,
    /// Name the resource by id instead of by path.
    pub by_resource_id: bool,
    /// Replace static request-parameter values (in single quotes) with 'REDACTED'.
    pub redact: bool,
}

/// What an import found and left out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub imported: usize,
    /// Methods without an integration.
    pub without_integration: usize,
    /// Methods left out by --only-path.
    pub filtered_out: usize,
    /// Integration responses of *_PROXY integrations (API Gateway ignores them; the CRD
    /// refuses them there).
    pub dropped_proxy_responses: usize,
    /// Objects whose requestParameters hold static values.
    pub with_static_values: Vec<String>,
}

/// The manifests of the methods `methods` lists (as `list_method_integrations` returns them).
pub fn manifests(
    methods: &[MethodIntegration],
    options: &ImportOptions,
) -> (Vec<ApiGatewayIntegration>, ImportReport) {
    let mut report = ImportReport::default();
    let mut picked = Vec::new();
    for method in methods {
        if let Some(glob) = &options.only_path {
            if !glob_match(glob, &method.resource_path) {
                report.filtered_out += 1;
                continue;
            }
        }
        match &method.integration {
            Some(integration) => picked.push((method, integration)),
            None => report.without_integration += 1,
        }
    }
    let names = names(&picked, &options.name_prefix);
    let mut objects = Vec::new();
    for ((method, integration), name) in picked.into_iter().zip(names) {
        let (spec, dropped) = spec_of(method, integration, options);
        report.dropped_proxy_responses += dropped;
        let spec: ApiGatewayIntegrationSpec =
            serde_json::from_value(spec).expect("an imported spec matches the CRD's types");
        if has_static_values(&spec) {
            report.with_static_values.push(name.clone());
        }
        let mut object = ApiGatewayIntegration::new(&name, spec);
        object.metadata.namespace = options.namespace.clone();
        objects.push(object);
    }
    report.imported = objects.len();
    (objects, report)
}

fn has_static_values(spec: &ApiGatewayIntegrationSpec) -> bool {
    spec.request_parameters
        .as_ref()
        .is_some_and(|p| p.values().any(|v| is_static(v)))
}

fn is_static(value: &str) -> bool {
    value.len() >= 2 && value.starts_with('\'') && value.ends_with('\'')
}

/// DNS-1123 names from prefix, path and verb (`/pets/{petId}` POST → `pets-petid-post`); names
/// that would repeat get a suffix hashed from path and verb, so they stay stable across runs.
fn names(picked: &[(&MethodIntegration, &Integration)], prefix: &str) -> Vec<String> {
    let bases: Vec<String> = picked
        .iter()
        .map(|(m, _)| base_name(prefix, &m.resource_path, &m.http_method))
        .collect();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for base in &bases {
        *counts.entry(base).or_default() += 1;
    }
    bases
        .iter()
        .zip(picked)
        .map(|(base, (m, _))| {
            if counts[base.as_str()] > 1 {
                let hash = &crate::kit::sha256_hex(
                    format!("{} {}", m.resource_path, m.http_method).as_bytes(),
                )[..8];
                format!("{}-{hash}", truncate(base, 63 - 9))
            } else {
                base.clone()
            }
        })
        .collect()
}

fn base_name(prefix: &str, path: &str, verb: &str) -> String {
    let path = if path == "/" { "root" } else { path };
    let raw = format!("{prefix}-{path}-{verb}").to_lowercase();
    let mut name = String::new();
    for c in raw.chars() {
        if c.is_ascii_alphanumeric() {
            name.push(c);
        } else if !name.ends_with('-') {
            name.push('-');
        }
    }
    let name = name.trim_matches('-').to_string();
    if name.len() <= 63 {
        return name;
    }
    // Too long for a label-friendly name: cut, and keep it unique with a hash of the whole.
    let hash = &crate::kit::sha256_hex(raw.as_bytes())[..8];
    format!("{}-{hash}", truncate(&name, 63 - 9))
}

fn truncate(name: &str, max: usize) -> &str {
    name[..name.len().min(max)].trim_end_matches('-')
}

/// The spec of one integration, as JSON in the CRD's names; and how many proxy responses it
/// dropped.
fn spec_of(
    method: &MethodIntegration,
    live: &Integration,
    options: &ImportOptions,
) -> (Value, usize) {
    let minimal = options.fields == Fields::Minimal;
    let mut spec = Map::new();
    let mut put = |key: &str, value: Value| {
        spec.insert(key.to_string(), value);
    };
    match (&options.rest_api_id, &options.rest_api_name) {
        (Some(id), _) => put("restApiId", json!(id)),
        (None, Some(name)) => put("restApiName", json!(name)),
        (None, None) => {}
    }
    if options.by_resource_id {
        put("resourceId", json!(method.resource_id));
    } else {
        put("resourcePath", json!(method.resource_path));
    }
    put("httpMethod", json!(method.http_method));
    if let Some(region) = &options.region {
        put("region", json!(region));
    }
    put("managementPolicy", json!(options.policy));
    put("type", json!(live.integration_type));
    let keep = |value: Option<&str>, default: &str| -> Option<String> {
        value
            .filter(|v| !(minimal && *v == default))
            .map(str::to_string)
    };
    if let Some(verb) = &live.http_method {
        put("integrationHttpMethod", json!(verb));
    }
    if let Some(uri) = &live.uri {
        put("uri", json!(uri));
    }
    if let Some(v) = keep(live.connection_type.as_deref(), defaults::CONNECTION_TYPE) {
        put("connectionType", json!(v));
    }
    if let Some(v) = &live.connection_id {
        put("connectionId", json!(v));
    }
    if let Some(v) = &live.credentials {
        put("credentials", json!(v));
    }
    if let Some(params) = live.request_parameters.as_ref().filter(|p| !p.is_empty()) {
        put("requestParameters", json!(redacted(params, options.redact)));
    }
    if let Some(templates) = live.request_templates.as_ref().filter(|t| !t.is_empty()) {
        put("requestTemplates", json!(templates));
    }
    if let Some(v) = keep(
        live.passthrough_behavior.as_deref(),
        defaults::PASSTHROUGH_BEHAVIOR,
    ) {
        put("passthroughBehavior", json!(v));
    }
    if let Some(v) = &live.content_handling {
        put("contentHandling", json!(v));
    }
    if let Some(ms) = live
        .timeout_in_millis
        .filter(|ms| !(minimal && *ms == defaults::TIMEOUT_IN_MILLIS))
    {
        put("timeoutInMillis", json!(ms));
    }
    // AWS fills the cache namespace with the resource id: that default is left out in minimal.
    if let Some(ns) = keep(live.cache_namespace.as_deref(), &method.resource_id) {
        put("cacheNamespace", json!(ns));
    }
    if let Some(keys) = live.cache_key_parameters.as_ref().filter(|k| !k.is_empty()) {
        put("cacheKeyParameters", json!(keys));
    }
    if let Some(skip) = live
        .tls_config
        .as_ref()
        .and_then(|t| t.insecure_skip_verification)
        .filter(|skip| !(minimal && *skip == defaults::INSECURE_SKIP_VERIFICATION))
    {
        put("tlsConfig", json!({"insecureSkipVerification": skip}));
    }
    let proxy = live
        .integration_type
        .as_deref()
        .is_some_and(|t| t.ends_with("_PROXY"));
    let responses = live.integration_responses.as_ref();
    let mut dropped = 0;
    match responses {
        Some(responses) if proxy => dropped = responses.len(),
        Some(responses) => put("integrationResponses", json!(responses_spec(responses))),
        None => {}
    }
    (Value::Object(spec), dropped)
}

fn redacted(params: &BTreeMap<String, String>, redact: bool) -> BTreeMap<String, String> {
    params
        .iter()
        .map(|(k, v)| {
            let v = if redact && is_static(v) {
                "'REDACTED'".to_string()
            } else {
                v.clone()
            };
            (k.clone(), v)
        })
        .collect()
}

/// The spec of the integration responses: each field AWS holds. Without responses AWS omits
/// the map, so an integration imported with responses manages them (authoritative).
fn responses_spec(responses: &BTreeMap<String, IntegrationResponse>) -> Value {
    let mut out = Map::new();
    for (code, response) in responses {
        let mut r = Map::new();
        if let Some(p) = &response.selection_pattern {
            r.insert("selectionPattern".into(), json!(p));
        }
        if let Some(p) = response
            .response_parameters
            .as_ref()
            .filter(|p| !p.is_empty())
        {
            r.insert("responseParameters".into(), json!(p));
        }
        if let Some(t) = response
            .response_templates
            .as_ref()
            .filter(|t| !t.is_empty())
        {
            r.insert("responseTemplates".into(), json!(t));
        }
        if let Some(c) = &response.content_handling {
            r.insert("contentHandling".into(), json!(c));
        }
        out.insert(code.clone(), Value::Object(r));
    }
    Value::Object(out)
}

/// The manifests as YAML documents (a warning comment before each one holding static
/// values) or as one JSON `List`.
pub fn render(
    objects: &[ApiGatewayIntegration],
    report: &ImportReport,
    json_output: bool,
    header: &str,
) -> String {
    if json_output {
        let list = json!({"apiVersion": "v1", "kind": "List", "items": objects});
        return serde_json::to_string_pretty(&list).expect("JSON") + "\n";
    }
    let mut out = format!("# {header}\n");
    for object in objects {
        out.push_str("---\n");
        let name = object.metadata.name.clone().unwrap_or_default();
        if report.with_static_values.contains(&name) {
            out.push_str("# WARNING: spec.requestParameters holds static values as AWS has them (backend keys often live\n# there): review before committing, or import with --redact.\n");
        }
        out.push_str(&serde_yaml::to_string(object).expect("YAML"));
    }
    out
}

/// Runs `import`: reads the API, prints the manifests on stdout and what it found on stderr.
/// Exit status 1 with a message on any AWS error (including a name that is not unique).
pub async fn run(args: &crate::cli::ImportArgs) -> Result<(String, String), String> {
    let settings = crate::aws::AwsSettings {
        region: args.region.clone(),
        endpoint_url: args.endpoint_url.clone(),
        ..crate::aws::AwsSettings::default()
    };
    let aws = crate::aws::SdkAws::from_config(settings)
        .await
        .map_err(|e| e.to_string())?;
    use crate::aws::AwsApi;
    let region = args
        .region
        .clone()
        .unwrap_or_else(|| aws.default_region().to_string());
    let id = match (&args.rest_api_id, &args.rest_api_name) {
        (Some(id), _) => id.clone(),
        (None, Some(name)) => aws
            .find_rest_api_id(&region, name)
            .await
            .map_err(|e| format!("REST API {name}: {e}"))?,
        (None, None) => return Err("--rest-api-id or --rest-api-name is required".into()),
    };
    let methods = aws
        .list_method_integrations(&region, &id, crate::aws::Priority::Change)
        .await
        .map_err(|e| format!("GetResources of REST API {id}: {e}"))?;
    let options = ImportOptions {
        rest_api_id: args.rest_api_id.clone(),
        rest_api_name: args.rest_api_name.clone(),
        region: args.region.clone(),
        namespace: args.namespace.clone(),
        name_prefix: args.name_prefix.clone(),
        only_path: args.only_path.clone(),
        policy: args.policy.clone(),
        fields: args.fields,
        by_resource_id: args.by_resource_id,
        redact: args.redact,
    };
    let (objects, report) = manifests(&methods, &options);
    let header = format!(
        "apigw-operator import of REST API {id} ({region}): {} integrations",
        report.imported
    );
    let stdout = render(&objects, &report, args.output == "json", &header);
    Ok((stdout, summary(&report)))
}

/// What the import found and left out, for stderr.
pub fn summary(report: &ImportReport) -> String {
    let mut lines = vec![format!("imported {} integrations", report.imported)];
    if report.without_integration > 0 {
        lines.push(format!(
            "skipped {} methods without an integration",
            report.without_integration
        ));
    }
    if report.filtered_out > 0 {
        lines.push(format!(
            "left out {} methods by --only-path",
            report.filtered_out
        ));
    }
    if report.dropped_proxy_responses > 0 {
        lines.push(format!("dropped {} integration responses of *_PROXY integrations (API Gateway ignores them there)", report.dropped_proxy_responses));
    }
    if !report.with_static_values.is_empty() {
        lines.push(format!(
            "{} manifests hold static requestParameters values (marked with a WARNING comment): review before committing, or use --redact",
            report.with_static_values.len()
        ));
    }
    lines.join("\n") + "\n"
}

#[cfg(test)]
mod tests;
