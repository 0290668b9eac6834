use proptest::prelude::*;

use super::*;
use crate::plan::responses::plan_responses;
use crate::plan::{plan, Plan};

fn method(path: &str, verb: &str, integration: Option<Integration>) -> MethodIntegration {
    MethodIntegration {
        resource_id: format!("r{}", path.len()),
        resource_path: path.into(),
        http_method: verb.into(),
        integration,
    }
}

fn http() -> Integration {
    Integration {
        integration_type: Some("HTTP".into()),
        http_method: Some("POST".into()),
        uri: Some("https://backend.example.com".into()),
        passthrough_behavior: Some("WHEN_NO_MATCH".into()),
        timeout_in_millis: Some(29000),
        cache_namespace: Some("r5".into()),
        connection_type: Some("INTERNET".into()),
        ..Integration::default()
    }
}

fn options() -> ImportOptions {
    ImportOptions {
        rest_api_id: Some("a1b2c3".into()),
        policy: "Update".into(),
        ..ImportOptions::default()
    }
}

#[test]
fn names_come_from_path_and_verb_and_stay_unique_and_valid() {
    let methods = vec![
        method("/", "GET", Some(http())),
        method("/pets/{petId}", "POST", Some(http())),
        method("/a-b", "GET", Some(http())),
        method("/a_b", "GET", Some(http())),
        method(&format!("/{}", "x".repeat(100)), "ANY", Some(http())),
    ];
    let (objects, _) = manifests(
        &methods,
        &ImportOptions {
            name_prefix: "shop".into(),
            ..options()
        },
    );
    let names: Vec<String> = objects
        .iter()
        .map(|o| o.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(names[0], "shop-root-get");
    assert_eq!(names[1], "shop-pets-petid-post");
    assert_ne!(names[2], names[3], "a collision gets a suffix");
    assert!(names[2].starts_with("shop-a-b-get-") && names[3].starts_with("shop-a-b-get-"));
    let dns = regex::Regex::new(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$").unwrap();
    for name in &names {
        assert!(name.len() <= 63 && dns.is_match(name), "{name}");
    }
    // Stable: the same listing gives the same names.
    let (again, _) = manifests(
        &methods,
        &ImportOptions {
            name_prefix: "shop".into(),
            ..options()
        },
    );
    let yaml = |o: &[ApiGatewayIntegration]| render(o, &ImportReport::default(), false, "h");
    assert_eq!(yaml(&objects), yaml(&again));
}

#[test]
fn methods_without_integration_are_counted_and_proxy_responses_dropped() {
    let mut proxy = http();
    proxy.integration_type = Some("HTTP_PROXY".into());
    proxy.integration_responses = Some(BTreeMap::from([(
        "200".into(),
        IntegrationResponse::default(),
    )]));
    let methods = vec![
        method("/a", "GET", None),
        method("/b", "GET", Some(proxy)),
        method("/c", "GET", Some(http())),
    ];
    let (objects, report) = manifests(
        &methods,
        &ImportOptions {
            only_path: Some("/[bc]".into()),
            ..options()
        },
    );
    assert_eq!(
        report.filtered_out, 3,
        "the glob has no character classes: nothing matches"
    );
    assert!(objects.is_empty());
    let (objects, report) = manifests(&methods, &options());
    assert_eq!(report.without_integration, 1);
    assert_eq!(report.dropped_proxy_responses, 1);
    assert_eq!(report.imported, 2);
    assert!(objects[0].spec.integration_responses.is_none());
    let (only, _) = manifests(
        &methods,
        &ImportOptions {
            only_path: Some("/c".into()),
            ..options()
        },
    );
    assert_eq!(only.len(), 1);
}

#[test]
fn minimal_leaves_out_aws_defaults_and_all_keeps_them() {
    let methods = vec![method("/pets", "POST", Some(http()))];
    let (all, _) = manifests(&methods, &options());
    assert_eq!(all[0].spec.timeout_in_millis, Some(29000));
    assert!(all[0].spec.passthrough_behavior.is_some());
    let (minimal, _) = manifests(
        &methods,
        &ImportOptions {
            fields: Fields::Minimal,
            ..options()
        },
    );
    let spec = &minimal[0].spec;
    assert_eq!(spec.timeout_in_millis, None);
    assert!(spec.passthrough_behavior.is_none() && spec.connection_type.is_none());
    assert_eq!(
        spec.cache_namespace, None,
        "the resource id is AWS's default namespace"
    );
    assert_eq!(spec.uri.as_deref(), Some("https://backend.example.com"));
}

#[test]
fn static_values_are_flagged_and_can_be_redacted() {
    let mut secret = http();
    secret.request_parameters = Some(BTreeMap::from([
        ("integration.request.header.x-key".into(), "'s3cr3t'".into()),
        (
            "integration.request.header.x-id".into(),
            "context.requestId".into(),
        ),
    ]));
    let methods = vec![method("/pets", "POST", Some(secret))];
    let (objects, report) = manifests(&methods, &options());
    assert_eq!(report.with_static_values, vec!["pets-post".to_string()]);
    let yaml = render(&objects, &report, false, "header");
    assert!(yaml.contains("# WARNING: spec.requestParameters holds static values"));
    assert!(yaml.contains("'s3cr3t'"), "printed as AWS has them");
    let (redacted, _) = manifests(
        &methods,
        &ImportOptions {
            redact: true,
            ..options()
        },
    );
    let params = redacted[0].spec.request_parameters.as_ref().unwrap();
    assert_eq!(params["integration.request.header.x-key"], "'REDACTED'");
    assert_eq!(
        params["integration.request.header.x-id"],
        "context.requestId"
    );
}

#[test]
fn yaml_output_parses_back_as_the_objects_and_json_is_a_list() {
    let methods = vec![
        method("/pets", "POST", Some(http())),
        method("/", "GET", Some(http())),
    ];
    let (objects, report) = manifests(
        &methods,
        &ImportOptions {
            namespace: Some("shop".into()),
            ..options()
        },
    );
    let yaml = render(&objects, &report, false, "header");
    let parsed = crate::manifest::parse("import", &yaml).unwrap();
    assert_eq!(parsed.len(), 2);
    assert_eq!(parsed[0].spec, objects[0].spec);
    let json: serde_json::Value =
        serde_json::from_str(&render(&objects, &report, true, "h")).unwrap();
    assert_eq!(json["kind"], "List");
    assert_eq!(json["items"].as_array().unwrap().len(), 2);
    assert_eq!(json["items"][0]["metadata"]["namespace"], "shop");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// Import, then plan against the same live integration: nothing to do, in both field modes.
    #[test]
    fn import_then_plan_is_empty(
        live in crate::plan::tests::live_integration(),
        responses in prop::option::of(crate::plan::responses::tests::live_map()),
        minimal in any::<bool>(),
    ) {
        let mut live = live;
        let proxy = live.integration_type.as_deref().is_some_and(|t| t.ends_with("_PROXY"));
        live.integration_responses = responses.filter(|_| !proxy);
        let methods = vec![method("/pets", "POST", Some(live.clone()))];
        let fields = if minimal { Fields::Minimal } else { Fields::All };
        let (objects, _) = manifests(&methods, &ImportOptions { fields, ..options() });
        let spec = &objects[0].spec;
        prop_assert_eq!(plan(spec, &live), Plan::Patch(vec![]));
        let calls = plan_responses(spec.integration_responses.as_ref(), live.integration_responses.as_ref());
        prop_assert!(calls.is_empty(), "{:?}", calls);
    }
}
