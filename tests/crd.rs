//! The generated CRD: checked in, structural, and rejecting every invalid manifest in
//! tests/data/invalid-manifests.yaml with its message.

use apigw_operator::cli::{crd_files, crd_yaml};
use apigw_operator::manifest::admission_errors;
use serde_json::{json, Value};

#[test]
fn checked_in_crds_equal_what_the_crd_command_writes() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for (name, yaml) in crd_files() {
        let checked_in = std::fs::read_to_string(root.join("crds").join(name)).unwrap_or_default();
        assert!(
            checked_in == yaml,
            "crds/{name} differs from `apigw-operator crd`; run `make crds` and commit the result"
        );
    }
    assert!(crd_yaml().contains("name: apigatewaystages.apigw.dev"));
}

#[test]
fn helm_chart_crds_equal_the_generated_ones_when_the_chart_exists() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let chart_crds = root.join("charts/apigw-operator/crds");
    if chart_crds.exists() {
        for (name, yaml) in crd_files() {
            let copy = std::fs::read_to_string(chart_crds.join(name))
                .expect("the chart's crds/ holds every CRD");
            assert!(copy == yaml, "the chart's {name} differs; run `make crds`");
        }
    }
}

/// Every schema node is structural: a type everywhere, no $ref, no anyOf/oneOf at the top of a
/// property with its own type (what the API server's structural-schema check refuses).
#[test]
fn schema_is_structural() {
    fn walk(node: &Value, path: &str) {
        let Some(map) = node.as_object() else { return };
        assert!(!map.contains_key("$ref"), "{path} has $ref");
        let preserves = map.get("x-kubernetes-preserve-unknown-fields") == Some(&json!(true));
        let int_or_string = map.get("x-kubernetes-int-or-string") == Some(&json!(true));
        assert!(
            map.contains_key("type") || preserves || int_or_string,
            "{path} has no type"
        );
        for key in ["anyOf", "oneOf", "allOf", "not"] {
            if let Some(items) = map.get(key).and_then(Value::as_array) {
                for item in items {
                    assert!(
                        !item.as_object().is_some_and(|o| o.contains_key("type")),
                        "{path}.{key} sets a type"
                    );
                }
            }
        }
        if let Some(props) = map.get("properties").and_then(Value::as_object) {
            for (name, sub) in props {
                walk(sub, &format!("{path}.{name}"));
            }
        }
        if let Some(items) = map.get("items") {
            walk(items, &format!("{path}[]"));
        }
        if let Some(extra) = map.get("additionalProperties").filter(|v| v.is_object()) {
            walk(extra, &format!("{path}{{}}"));
        }
    }
    walk(&apigw_operator::manifest::crd_schema(), "");
}

fn merge(base: &mut Value, patch: &Value) {
    let (Some(base), Some(patch)) = (base.as_object_mut(), patch.as_object()) else {
        return;
    };
    for (key, value) in patch {
        if value.is_null() {
            base.remove(key);
        } else {
            base.insert(key.clone(), value.clone());
        }
    }
}

fn object(spec: Value) -> Value {
    json!({
        "apiVersion": "apigw.dev/v1alpha1",
        "kind": "ApiGatewayIntegration",
        "metadata": {"name": "row", "namespace": "default"},
        "spec": spec,
    })
}

#[test]
fn every_invalid_manifest_is_rejected_with_its_message() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/invalid-manifests.yaml");
    let table: Value = serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let base = table["base"].clone();
    let rows = table["rows"].as_array().unwrap();
    assert!(
        rows.len() >= 30,
        "the table has {} rows, fewer than 30",
        rows.len()
    );
    assert!(
        admission_errors(&object(base.clone()), None).is_empty(),
        "the base manifest is valid"
    );
    let mut failures = Vec::new();
    for row in rows {
        let name = row["name"].as_str().unwrap();
        let expected = row["message"].as_str().unwrap();
        let mut spec = base.clone();
        merge(&mut spec, &row["spec"]);
        let old = row.get("old").map(|old| {
            let mut old_spec = base.clone();
            merge(&mut old_spec, old);
            object(old_spec)
        });
        if let Some(old) = &old {
            assert!(
                admission_errors(old, None).is_empty(),
                "{name}: the old object is valid"
            );
        }
        let errors = admission_errors(&object(spec), old.as_ref());
        if !errors.iter().any(|e| e.contains(expected)) {
            failures.push(format!("{name}: expected {expected:?}, got {errors:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "rows not rejected as expected:\n{}",
        failures.join("\n")
    );
}

#[test]
fn valid_manifests_pass_admission() {
    for spec in [
        json!({"restApiName": "PetStore", "resourcePath": "/pets/{petId}", "httpMethod": "ANY"}),
        json!({"restApiId": "a1b2c3d4e5", "resourceId": "a1b2c3", "httpMethod": "GET", "type": "HTTP_PROXY",
               "uri": "http://nlb.example.com", "connectionType": "VPC_LINK", "connectionId": "${stageVariables.vpcLinkId}",
               "tlsConfig": {"insecureSkipVerification": false}, "managementPolicy": "CreateOrUpdate", "integrationHttpMethod": "GET",
               "requestParameters": {"integration.request.header.x-id": "method.request.header.x-id", "integration.request.querystring.v": "'1'"},
               "requestTemplates": {"application/json": "", "application/x~y": "{}"},
               "cacheKeyParameters": ["method.request.path.petId"], "timeoutInMillis": 29000, "deletionPolicy": "Delete"}),
        json!({"restApiId": "a1b2c3d4e5", "resourceId": "a1b2c3", "httpMethod": "POST", "type": "MOCK",
               "requestTemplates": {}, "managementPolicy": "Observe"}),
    ] {
        let errors = admission_errors(&object(spec.clone()), None);
        assert!(errors.is_empty(), "{spec}: {errors:?}");
    }
}
