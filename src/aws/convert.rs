//! Conversions between the SDK's types and the operator's: the SDK's Integration (three output
//! types and one embedded type with the same fields) into [`Integration`], and a spec into a
//! PutIntegration request.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_apigateway::types;

use crate::crd::ApiGatewayIntegrationSpec;
use crate::integration::{Integration, IntegrationResponse};
use crate::plan::{Op, PatchOperation};

pub(crate) fn sorted<V>(map: HashMap<String, V>) -> BTreeMap<String, V> {
    map.into_iter().collect()
}

pub(crate) fn response_from_sdk(r: types::IntegrationResponse) -> IntegrationResponse {
    IntegrationResponse {
        status_code: r.status_code,
        selection_pattern: r.selection_pattern,
        response_parameters: r.response_parameters.map(sorted),
        response_templates: r.response_templates.map(sorted),
        content_handling: r.content_handling.map(|c| c.as_str().to_owned()),
    }
}

/// Builds an [`Integration`] from any of the SDK's structs with the Integration's fields
/// (`GetIntegrationOutput`, `PutIntegrationOutput`, `UpdateIntegrationOutput`,
/// `types::Integration`).
///
/// The SDK reads two members as plain values, losing "absent": `timeoutInMillis` (an `i32`,
/// 0 when absent; AWS accepts 50.. only, so 0 means absent) and
/// `tlsConfig.insecureSkipVerification` (a `bool`, false when absent, which is AWS's default).
macro_rules! integration_from_sdk {
    ($value:expr) => {{
        let o = $value;
        $crate::integration::Integration {
            integration_type: o.r#type.map(|t| t.as_str().to_owned()),
            http_method: o.http_method,
            uri: o.uri,
            connection_type: o.connection_type.map(|c| c.as_str().to_owned()),
            connection_id: o.connection_id,
            credentials: o.credentials,
            request_parameters: o.request_parameters.map($crate::aws::convert::sorted),
            request_templates: o.request_templates.map($crate::aws::convert::sorted),
            passthrough_behavior: o.passthrough_behavior,
            content_handling: o.content_handling.map(|c| c.as_str().to_owned()),
            timeout_in_millis: (o.timeout_in_millis != 0).then_some(o.timeout_in_millis),
            cache_namespace: o.cache_namespace,
            cache_key_parameters: o.cache_key_parameters,
            integration_responses: o.integration_responses.map(|responses| {
                responses
                    .into_iter()
                    .map(|(k, v)| (k, $crate::aws::convert::response_from_sdk(v)))
                    .collect()
            }),
            tls_config: o.tls_config.map(|t| $crate::integration::TlsConfig {
                insecure_skip_verification: Some(t.insecure_skip_verification),
            }),
            response_transfer_mode: o.response_transfer_mode.map(|m| m.as_str().to_owned()),
            integration_target: o.integration_target,
        }
    }};
}
pub(crate) use integration_from_sdk;

/// An IntegrationResponse from the output of PutIntegrationResponse or
/// UpdateIntegrationResponse (the same fields, two SDK types).
macro_rules! response_from_output {
    ($value:expr) => {{
        let o = $value;
        $crate::aws::convert::response_from_sdk(
            aws_sdk_apigateway::types::IntegrationResponse::builder()
                .set_status_code(o.status_code)
                .set_selection_pattern(o.selection_pattern)
                .set_response_parameters(o.response_parameters)
                .set_response_templates(o.response_templates)
                .set_content_handling(o.content_handling)
                .build(),
        )
    }};
}
pub(crate) use response_from_output;

pub(crate) fn from_sdk_integration(i: types::Integration) -> Integration {
    integration_from_sdk!(i)
}

/// One of our patch operations in the SDK's type. An op without value (a passthrough template,
/// a remove) is sent without `value`.
pub(crate) fn patch_to_sdk(op: &PatchOperation) -> types::PatchOperation {
    let sdk_op = match op.op {
        Op::Add => types::Op::Add,
        Op::Remove => types::Op::Remove,
        Op::Replace => types::Op::Replace,
    };
    types::PatchOperation::builder()
        .op(sdk_op)
        .path(op.path.clone())
        .set_value(op.value.clone())
        .build()
}

/// The integration fields of a spec, for PutIntegration. Unset fields are left out (AWS fills
/// its defaults); a passthrough template is sent as `""`, which AWS stores as `null`.
pub(crate) struct PutFields {
    pub integration_type: types::IntegrationType,
    pub integration_http_method: Option<String>,
    pub uri: Option<String>,
    pub connection_type: Option<types::ConnectionType>,
    pub connection_id: Option<String>,
    pub credentials: Option<String>,
    pub request_parameters: Option<HashMap<String, String>>,
    pub request_templates: Option<HashMap<String, String>>,
    pub passthrough_behavior: Option<String>,
    pub content_handling: Option<types::ContentHandlingStrategy>,
    pub timeout_in_millis: Option<i32>,
    pub cache_namespace: Option<String>,
    pub cache_key_parameters: Option<Vec<String>>,
    pub tls_config: Option<types::TlsConfig>,
}

/// `None` when the spec has no `type`, which PutIntegration requires.
pub(crate) fn put_fields(spec: &ApiGatewayIntegrationSpec) -> Option<PutFields> {
    let integration_type = types::IntegrationType::from(spec.integration_type?.as_str());
    Some(PutFields {
        integration_type,
        integration_http_method: spec.integration_http_method.map(|m| m.as_str().to_owned()),
        uri: spec.uri.clone(),
        connection_type: spec
            .connection_type
            .map(|c| types::ConnectionType::from(c.as_str())),
        connection_id: spec.connection_id.clone(),
        credentials: spec.credentials.clone(),
        request_parameters: spec
            .request_parameters
            .as_ref()
            .map(|m| m.clone().into_iter().collect()),
        request_templates: spec
            .request_templates
            .as_ref()
            .map(|m| m.clone().into_iter().collect()),
        passthrough_behavior: spec.passthrough_behavior.map(|p| p.as_str().to_owned()),
        content_handling: spec
            .content_handling
            .map(|c| types::ContentHandlingStrategy::from(c.as_str())),
        timeout_in_millis: spec.timeout_in_millis,
        cache_namespace: spec.cache_namespace.clone(),
        cache_key_parameters: spec.cache_key_parameters.clone(),
        tls_config: spec.tls_config.as_ref().map(|t| {
            types::TlsConfig::builder()
                .set_insecure_skip_verification(t.insecure_skip_verification)
                .build()
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdk_integration_converts_with_passthrough_templates_and_absent_timeout() {
        let sdk = types::Integration::builder()
            .r#type(types::IntegrationType::HttpProxy)
            .http_method("POST")
            .uri("https://example.com")
            .request_templates("application/json", "")
            .request_templates("text/plain", "x")
            .content_handling(types::ContentHandlingStrategy::ConvertToText)
            .tls_config(
                types::TlsConfig::builder()
                    .insecure_skip_verification(true)
                    .build(),
            )
            .integration_responses(
                "200",
                types::IntegrationResponse::builder()
                    .status_code("200")
                    .response_templates("application/json", "")
                    .build(),
            )
            .build();
        let ours = from_sdk_integration(sdk);
        assert_eq!(ours.integration_type.as_deref(), Some("HTTP_PROXY"));
        assert_eq!(ours.timeout_in_millis, None);
        assert_eq!(ours.content_handling.as_deref(), Some("CONVERT_TO_TEXT"));
        let templates = ours.request_templates.unwrap();
        assert_eq!(templates["application/json"], "");
        assert_eq!(templates["text/plain"], "x");
        assert_eq!(
            ours.tls_config.unwrap().insecure_skip_verification,
            Some(true)
        );
        assert_eq!(
            ours.integration_responses.unwrap()["200"]
                .response_templates
                .as_ref()
                .unwrap()["application/json"],
            ""
        );
    }

    #[test]
    fn patch_ops_keep_an_absent_value_absent() {
        let op = PatchOperation {
            op: Op::Add,
            path: "/requestTemplates/application~1json".into(),
            value: None,
        };
        let sdk = patch_to_sdk(&op);
        assert_eq!(sdk.op, Some(types::Op::Add));
        assert_eq!(sdk.value, None);
    }
}
