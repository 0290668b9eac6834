//! The Integration as AWS returns it (GetIntegration, PutIntegration, UpdateIntegration), in
//! AWS's JSON names. It is the planner's "live" input, the `--from` file of `plan`, and
//! `status.integration`.
//!
//! AWS stores an empty mapping template ("input passthrough") as `null`. This type normalises
//! such a `null` to `""`, the same value a manifest uses for a passthrough template, so that a
//! template map stays a plain `map[string]string` everywhere and `null` never reads as drift.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

/// An API Gateway method integration, every field AWS returns, under AWS's names.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Integration {
    /// The integration type: HTTP, HTTP_PROXY, AWS, AWS_PROXY or MOCK.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub integration_type: Option<String>,
    /// The verb API Gateway uses to call the backend (spec.integrationHttpMethod).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_method: Option<String>,
    /// The backend endpoint: an HTTP(S) URL or an arn:aws:apigateway:... service URI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// INTERNET or VPC_LINK. AWS omits it when it was never set, which means INTERNET.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_type: Option<String>,
    /// The VpcLink id (or a stage variable) used when connectionType is VPC_LINK.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_id: Option<String>,
    /// The IAM role API Gateway assumes to call the backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<String>,
    /// Integration request parameter mappings, integration.request.* to a method request value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_parameters: Option<BTreeMap<String, String>>,
    /// Mapping templates by content type; "" is an input-passthrough template (AWS's null).
    #[serde(
        default,
        deserialize_with = "nullable_values",
        skip_serializing_if = "Option::is_none"
    )]
    pub request_templates: Option<BTreeMap<String, String>>,
    /// WHEN_NO_MATCH, WHEN_NO_TEMPLATES or NEVER.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passthrough_behavior: Option<String>,
    /// CONVERT_TO_BINARY or CONVERT_TO_TEXT; absent means the payload passes unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_handling: Option<String>,
    /// Backend timeout in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_in_millis: Option<i32>,
    /// The cache namespace; AWS uses the resource id when none was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_namespace: Option<String>,
    /// Method request parameters whose values API Gateway caches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_key_parameters: Option<Vec<String>>,
    /// The integration responses by status code (managed with UpdateIntegrationResponse, not by
    /// this resource; reported for completeness).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration_responses: Option<BTreeMap<String, IntegrationResponse>>,
    /// TLS settings for HTTP and HTTP_PROXY integrations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_config: Option<TlsConfig>,
    /// BUFFERED or STREAM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_transfer_mode: Option<String>,
    /// The ALB or NLB target of a private integration, when one is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration_target: Option<String>,
}

/// One integration response, as AWS returns it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IntegrationResponse {
    /// The method response status code this response maps to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<String>,
    /// The regular expression that selects this response from the backend's answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selection_pattern: Option<String>,
    /// Response parameter mappings, method.response.header.* to a backend value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_parameters: Option<BTreeMap<String, String>>,
    /// Response templates by content type; "" is a passthrough template (AWS's null).
    #[serde(
        default,
        deserialize_with = "nullable_values",
        skip_serializing_if = "Option::is_none"
    )]
    pub response_templates: Option<BTreeMap<String, String>>,
    /// CONVERT_TO_BINARY or CONVERT_TO_TEXT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_handling: Option<String>,
}

/// TLS settings of an integration.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TlsConfig {
    /// Whether API Gateway skips verifying the backend's certificate chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure_skip_verification: Option<bool>,
}

/// AWS's defaults for fields it fills in when PutIntegration leaves them out. The planner treats
/// an absent live value as the default, so a default is never drift.
pub mod defaults {
    pub const CONNECTION_TYPE: &str = "INTERNET";
    pub const PASSTHROUGH_BEHAVIOR: &str = "WHEN_NO_MATCH";
    pub const TIMEOUT_IN_MILLIS: i32 = 29_000;
    pub const INSECURE_SKIP_VERIFICATION: bool = false;
}

fn nullable_values<'de, D>(deserializer: D) -> Result<Option<BTreeMap<String, String>>, D::Error>
where
    D: Deserializer<'de>,
{
    let raw: Option<BTreeMap<String, Option<String>>> = Option::deserialize(deserializer)?;
    Ok(raw.map(|map| {
        map.into_iter()
            .map(|(key, value)| (key, value.unwrap_or_default()))
            .collect()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_templates_read_as_passthrough() {
        let live: Integration = serde_json::from_str(
            r#"{"type":"MOCK","requestTemplates":{"application/json":null,"text/plain":"x"},
                "integrationResponses":{"200":{"statusCode":"200","responseTemplates":{"application/json":null}}}}"#,
        )
        .unwrap();
        let templates = live.request_templates.unwrap();
        assert_eq!(templates["application/json"], "");
        assert_eq!(templates["text/plain"], "x");
        let response = &live.integration_responses.unwrap()["200"];
        assert_eq!(
            response.response_templates.as_ref().unwrap()["application/json"],
            ""
        );
    }

    #[test]
    fn unknown_fields_from_newer_aws_are_ignored() {
        let live: Integration =
            serde_json::from_str(r#"{"type":"HTTP","somethingNew":1,"timeoutInMillis":29000}"#)
                .unwrap();
        assert_eq!(live.integration_type.as_deref(), Some("HTTP"));
        assert_eq!(live.timeout_in_millis, Some(29000));
    }
}
