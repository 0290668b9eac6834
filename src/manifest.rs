//! Reading `ApiGatewayIntegration` manifests outside the cluster (the `plan` command), with
//! the same checks the API server makes at admission: the CRD's OpenAPI schema and its CEL
//! rules. Errors name the file, the document and the field, in the API server's wording.

use std::path::Path;

use kube::CustomResourceExt;
use serde_json::Value;

use crate::crd::ApiGatewayIntegration;

/// A manifest that cannot be used, with where and why.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}: document {document}: not YAML: {source}")]
    Yaml {
        file: String,
        document: usize,
        source: serde_yaml::Error,
    },
    #[error("{file}: document {document}: {message}")]
    Invalid {
        file: String,
        document: usize,
        message: String,
    },
    #[error("{file}: no ApiGatewayIntegration document found")]
    Empty { file: String },
}

/// The CRD's openAPIV3Schema as JSON, the schema the API server checks objects against.
pub fn crd_schema() -> Value {
    let crd = ApiGatewayIntegration::crd();
    let schema = crd.spec.versions[0]
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .expect("the derived CRD has a schema");
    serde_json::to_value(schema).expect("the schema serializes")
}

/// Every admission error the API server would give for `object` (creation, or an update from
/// `old`), in its wording: OpenAPI checks first, then CEL rules.
pub fn admission_errors(object: &Value, old: Option<&Value>) -> Vec<String> {
    let schema = crd_schema();
    let mut errors = Vec::new();
    openapi::check(&schema, object, "", &mut errors);
    if errors.is_empty() {
        if let Err(failures) = kube::core::cel::Validator::new().validate(&schema, object, old) {
            for failure in failures.iter() {
                let path = if failure.field_path.is_empty() {
                    "<root>"
                } else {
                    &failure.field_path
                };
                errors.push(format!(
                    "{path}: Invalid value: \"object\": {}",
                    failure.message
                ));
            }
        }
    }
    errors
}

/// Reads every ApiGatewayIntegration in a YAML file (`-` is standard input), checked as the API
/// server would check it.
pub fn load(path: &Path) -> Result<Vec<ApiGatewayIntegration>, ManifestError> {
    let file = path.display().to_string();
    let text = if file == "-" {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(path)
    }
    .map_err(|source| ManifestError::Read {
        file: file.clone(),
        source,
    })?;
    let objects = parse(&file, &text)?;
    if objects.is_empty() {
        return Err(ManifestError::Empty { file });
    }
    Ok(objects)
}

/// Parses the documents of `text`; `file` only names the source in errors. Documents of other
/// kinds (a Namespace next to the integration, say) are passed over.
pub fn parse(file: &str, text: &str) -> Result<Vec<ApiGatewayIntegration>, ManifestError> {
    let mut out = Vec::new();
    for (index, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let number = index + 1;
        let invalid = |message: String| ManifestError::Invalid {
            file: file.to_string(),
            document: number,
            message,
        };
        let value: Value =
            serde::Deserialize::deserialize(document).map_err(|source| ManifestError::Yaml {
                file: file.to_string(),
                document: number,
                source,
            })?;
        if value.is_null() {
            continue;
        }
        let kind = value.get("kind").and_then(Value::as_str);
        let api_version = value.get("apiVersion").and_then(Value::as_str);
        if kind != Some("ApiGatewayIntegration") {
            continue;
        }
        if api_version != Some("apigw.dev/v1alpha1") {
            return Err(invalid(format!(
                "apiVersion: Unsupported value: {:?}: supported values: \"apigw.dev/v1alpha1\"",
                api_version.unwrap_or("")
            )));
        }
        let errors = admission_errors(&value, None);
        if !errors.is_empty() {
            return Err(invalid(errors.join("; ")));
        }
        let object: ApiGatewayIntegration = serde_path_to_error::deserialize(value)
            .map_err(|e| invalid(format!("{}: {}", e.path(), e.inner())))?;
        out.push(object);
    }
    Ok(out)
}

/// The subset of OpenAPI v3 validation a structural CRD schema uses, with the API server's
/// messages.
mod openapi {
    use serde_json::{Map, Value};

    pub fn check(schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
        let Some(schema) = schema.as_object() else {
            return;
        };
        if value.is_null() {
            if !schema
                .get("nullable")
                .and_then(Value::as_bool)
                .unwrap_or(false)
                && !path.is_empty()
            {
                errors.push(format!(
                    "{path}: Invalid value: \"null\": {path} in body must be of type {}",
                    type_name(schema)
                ));
            }
            return;
        }
        let expected = schema.get("type").and_then(Value::as_str);
        let int_or_string = schema
            .get("x-kubernetes-int-or-string")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if let Some(expected) = expected.filter(|_| !int_or_string) {
            let ok = match expected {
                "object" => value.is_object(),
                "array" => value.is_array(),
                "string" => value.is_string(),
                "integer" => value.is_i64() || value.is_u64(),
                "number" => value.is_number(),
                "boolean" => value.is_boolean(),
                _ => true,
            };
            if !ok {
                errors.push(format!(
                    "{path}: Invalid value: \"{}\": {path} in body must be of type {expected}: \"{}\"",
                    json_type(value),
                    json_type(value)
                ));
                return;
            }
        }
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
            if !allowed.contains(value) {
                let list: Vec<String> = allowed.iter().map(|v| v.to_string()).collect();
                errors.push(format!(
                    "{path}: Unsupported value: {value}: supported values: {}",
                    list.join(", ")
                ));
            }
        }
        match value {
            Value::String(s) => check_string(schema, s, path, errors),
            Value::Number(n) => check_number(schema, n.as_f64().unwrap_or_default(), path, errors),
            Value::Object(map) => check_object(schema, map, path, errors),
            Value::Array(items) => {
                if let Some(max) = schema.get("maxItems").and_then(Value::as_u64) {
                    if items.len() as u64 > max {
                        errors.push(format!(
                            "{path}: Too many: {}: must have at most {max} items",
                            items.len()
                        ));
                    }
                }
                if schema.get("x-kubernetes-list-type").and_then(Value::as_str) == Some("set") {
                    for (i, item) in items.iter().enumerate() {
                        if items[..i].contains(item) {
                            errors.push(format!("{path}[{i}]: Duplicate value: {item}"));
                        }
                    }
                }
                if let Some(item_schema) = schema.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        check(item_schema, item, &format!("{path}[{i}]"), errors);
                    }
                }
            }
            _ => {}
        }
    }

    fn check_string(schema: &Map<String, Value>, s: &str, path: &str, errors: &mut Vec<String>) {
        let len = s.chars().count() as u64;
        if let Some(min) = schema.get("minLength").and_then(Value::as_u64) {
            if len < min {
                errors.push(format!("{path}: Invalid value: \"\": {path} in body should be at least {min} chars long"));
            }
        }
        if let Some(max) = schema.get("maxLength").and_then(Value::as_u64) {
            if len > max {
                errors.push(format!(
                    "{path}: Too long: may not be more than {max} bytes"
                ));
            }
        }
        if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
            let matches = regex::Regex::new(pattern)
                .map(|re| re.is_match(s))
                .unwrap_or(false);
            if !matches {
                errors.push(format!(
                    "{path}: Invalid value: {s:?}: {path} in body should match '{pattern}'"
                ));
            }
        }
    }

    fn check_number(schema: &Map<String, Value>, n: f64, path: &str, errors: &mut Vec<String>) {
        if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
            if n < min {
                errors.push(format!("{path}: Invalid value: {n}: {path} in body should be greater than or equal to {min}"));
            }
        }
        if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
            if n > max {
                errors.push(format!("{path}: Invalid value: {n}: {path} in body should be less than or equal to {max}"));
            }
        }
    }

    fn check_object(
        schema: &Map<String, Value>,
        map: &Map<String, Value>,
        path: &str,
        errors: &mut Vec<String>,
    ) {
        let prefix = if path.is_empty() {
            String::new()
        } else {
            format!("{path}.")
        };
        if let Some(required) = schema.get("required").and_then(Value::as_array) {
            for name in required.iter().filter_map(Value::as_str) {
                if !map.contains_key(name) {
                    errors.push(format!("{prefix}{name}: Required value"));
                }
            }
        }
        if let Some(max) = schema.get("maxProperties").and_then(Value::as_u64) {
            if map.len() as u64 > max {
                errors.push(format!(
                    "{path}: Too many: {}: must have at most {max} items",
                    map.len()
                ));
            }
        }
        let properties = schema.get("properties").and_then(Value::as_object);
        let additional = schema.get("additionalProperties");
        let preserve = schema
            .get("x-kubernetes-preserve-unknown-fields")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        for (key, item) in map {
            if let Some(sub) = properties.and_then(|p| p.get(key)) {
                check(sub, item, &format!("{prefix}{key}"), errors);
            } else if let Some(sub) = additional.filter(|a| a.is_object()) {
                check(sub, item, &format!("{path}.{key}"), errors);
            } else if properties.is_some()
                && !preserve
                && !(path.is_empty() && matches!(key.as_str(), "apiVersion" | "kind" | "metadata"))
            {
                errors.push(format!("unknown field \"{prefix}{key}\""));
            }
        }
    }

    fn type_name(schema: &Map<String, Value>) -> &str {
        schema
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("object")
    }

    fn json_type(value: &Value) -> &'static str {
        match value {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        }
    }
}
