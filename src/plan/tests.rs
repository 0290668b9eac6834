use std::collections::BTreeMap;

use proptest::prelude::*;

use super::aws_model;
use super::*;
use crate::crd::*;
use crate::integration::TlsConfig;

fn spec() -> ApiGatewayIntegrationSpec {
    ApiGatewayIntegrationSpec {
        rest_api_id: Some("a1b2c3d4e5".into()),
        rest_api_name: None,
        resource_id: Some("a1b2c3".into()),
        resource_path: None,
        http_method: HttpMethod::Post,
        region: None,
        access_ref: None,
        integration_type: None,
        integration_http_method: None,
        uri: None,
        connection_type: None,
        connection_id: None,
        credentials: None,
        request_parameters: None,
        request_templates: None,
        passthrough_behavior: None,
        content_handling: None,
        timeout_in_millis: None,
        cache_namespace: None,
        cache_key_parameters: None,
        tls_config: None,
        integration_responses: None,
        management_policy: ManagementPolicy::Update,
        deletion_policy: DeletionPolicy::Retain,
    }
}

/// What AWS returns after PutIntegration of an HTTP integration with no optional fields.
fn http_live() -> Integration {
    Integration {
        integration_type: Some("HTTP".into()),
        http_method: Some("POST".into()),
        uri: Some("https://old.example.com".into()),
        passthrough_behavior: Some("WHEN_NO_MATCH".into()),
        timeout_in_millis: Some(29000),
        cache_namespace: Some("a1b2c3".into()),
        cache_key_parameters: Some(vec![]),
        ..Default::default()
    }
}

fn op(op: Op, path: &str, value: Option<&str>) -> PatchOperation {
    PatchOperation {
        op,
        path: path.into(),
        value: value.map(str::to_string),
    }
}

fn patch(spec: &ApiGatewayIntegrationSpec, live: &Integration) -> Vec<PatchOperation> {
    match plan(spec, live) {
        Plan::Patch(ops) => ops,
        Plan::Replace(r) => panic!("unexpected replacement: {r:?}"),
    }
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn an_empty_spec_manages_nothing() {
    assert!(plan(&spec(), &http_live()).is_in_sync());
    assert!(plan(&spec(), &Integration::default()).is_in_sync());
}

#[test]
fn each_scalar_field_is_replaced_with_its_wire_value() {
    let live = http_live();
    type Edit = Box<dyn Fn(&mut ApiGatewayIntegrationSpec)>;
    let cases: Vec<(Edit, PatchOperation)> = vec![
        (
            Box::new(|s| s.uri = Some("https://new.example.com".into())),
            op(Op::Replace, "/uri", Some("https://new.example.com")),
        ),
        (
            Box::new(|s| s.integration_http_method = Some(HttpMethod::Get)),
            op(Op::Replace, "/httpMethod", Some("GET")),
        ),
        (
            Box::new(|s| s.passthrough_behavior = Some(PassthroughBehavior::Never)),
            op(Op::Replace, "/passthroughBehavior", Some("NEVER")),
        ),
        (
            Box::new(|s| s.content_handling = Some(ContentHandling::ConvertToText)),
            op(Op::Replace, "/contentHandling", Some("CONVERT_TO_TEXT")),
        ),
        (
            Box::new(|s| s.timeout_in_millis = Some(1000)),
            op(Op::Replace, "/timeoutInMillis", Some("1000")),
        ),
        (
            Box::new(|s| s.cache_namespace = Some("shared".into())),
            op(Op::Replace, "/cacheNamespace", Some("shared")),
        ),
        (
            Box::new(|s| {
                s.tls_config = Some(TlsConfigSpec {
                    insecure_skip_verification: Some(true),
                })
            }),
            op(
                Op::Replace,
                "/tlsConfig/insecureSkipVerification",
                Some("true"),
            ),
        ),
        (
            Box::new(|s| {
                s.connection_type = Some(ConnectionType::VpcLink);
                s.connection_id = Some("abc123".into());
            }),
            // connectionId comes first; the second op is checked in its own test.
            op(Op::Replace, "/connectionId", Some("abc123")),
        ),
    ];
    for (edit, expected) in cases {
        let mut s = spec();
        edit(&mut s);
        let ops = patch(&s, &live);
        assert_eq!(ops[0], expected, "spec {s:?}");
        let applied = aws_model::apply(&live, &ops).expect("AWS accepts the plan");
        assert!(
            plan(&s, &applied).is_in_sync(),
            "a second plan is empty for {s:?}"
        );
    }
}

#[test]
fn equal_values_give_no_operation() {
    let mut s = spec();
    s.uri = Some("https://old.example.com".into());
    s.integration_http_method = Some(HttpMethod::Post);
    s.timeout_in_millis = Some(29000);
    s.cache_namespace = Some("a1b2c3".into());
    s.integration_type = Some(IntegrationType::Http);
    assert!(plan(&s, &http_live()).is_in_sync());
}

#[test]
fn aws_defaults_are_not_drift_when_the_live_field_is_absent() {
    // AWS omits connectionType and tlsConfig when they were never set; moto omits more.
    let live = Integration {
        integration_type: Some("HTTP".into()),
        ..Default::default()
    };
    let mut s = spec();
    s.connection_type = Some(ConnectionType::Internet);
    s.passthrough_behavior = Some(PassthroughBehavior::WhenNoMatch);
    s.timeout_in_millis = Some(29000);
    s.tls_config = Some(TlsConfigSpec {
        insecure_skip_verification: Some(false),
    });
    s.cache_key_parameters = Some(vec![]);
    s.request_parameters = Some(BTreeMap::new());
    s.request_templates = Some(BTreeMap::new());
    assert!(plan(&s, &live).is_in_sync());
}

#[test]
fn switching_to_vpc_link_sends_the_link_id_before_the_type() {
    let mut s = spec();
    s.connection_type = Some(ConnectionType::VpcLink);
    s.connection_id = Some("${stageVariables.vpcLinkId}".into());
    s.uri = Some("http://nlb.example.com".into());
    assert_eq!(
        patch(&s, &http_live()),
        vec![
            op(Op::Replace, "/uri", Some("http://nlb.example.com")),
            op(
                Op::Replace,
                "/connectionId",
                Some("${stageVariables.vpcLinkId}")
            ),
            op(Op::Replace, "/connectionType", Some("VPC_LINK")),
        ]
    );
}

#[test]
fn switching_to_internet_sends_the_type_first() {
    let mut live = http_live();
    live.connection_type = Some("VPC_LINK".into());
    live.connection_id = Some("abc123".into());
    let mut s = spec();
    s.connection_type = Some(ConnectionType::Internet);
    s.uri = Some("https://public.example.com".into());
    s.timeout_in_millis = Some(50);
    assert_eq!(
        patch(&s, &live),
        vec![
            op(Op::Replace, "/connectionType", Some("INTERNET")),
            op(Op::Replace, "/uri", Some("https://public.example.com")),
            op(Op::Replace, "/timeoutInMillis", Some("50")),
        ]
    );
}

#[test]
fn cache_key_parameters_are_a_set_with_add_and_remove() {
    let mut live = http_live();
    live.cache_key_parameters = Some(vec![
        "method.request.path.old".into(),
        "method.request.path.keep".into(),
    ]);
    let mut s = spec();
    s.cache_key_parameters = Some(vec![
        "method.request.path.keep".into(),
        "method.request.querystring.new".into(),
        "method.request.querystring.new".into(),
    ]);
    assert_eq!(
        patch(&s, &live),
        vec![
            op(
                Op::Remove,
                "/cacheKeyParameters/method.request.path.old",
                None
            ),
            op(
                Op::Add,
                "/cacheKeyParameters/method.request.querystring.new",
                None
            ),
        ]
    );
    s.cache_key_parameters = Some(vec![]);
    assert_eq!(
        patch(&s, &live),
        vec![
            op(
                Op::Remove,
                "/cacheKeyParameters/method.request.path.keep",
                None
            ),
            op(
                Op::Remove,
                "/cacheKeyParameters/method.request.path.old",
                None
            ),
        ]
    );
}

#[test]
fn request_parameters_add_replace_and_remove_in_order() {
    let mut live = http_live();
    live.request_parameters = Some(map(&[
        (
            "integration.request.header.x-gone",
            "method.request.header.x-gone",
        ),
        (
            "integration.request.header.x-id",
            "method.request.header.x-old",
        ),
        ("integration.request.path.id", "method.request.path.id"),
    ]));
    let mut s = spec();
    s.request_parameters = Some(map(&[
        (
            "integration.request.header.x-id",
            "method.request.header.x-id",
        ),
        ("integration.request.path.id", "method.request.path.id"),
        ("integration.request.querystring.q", "'static'"),
    ]));
    assert_eq!(
        patch(&s, &live),
        vec![
            op(
                Op::Remove,
                "/requestParameters/integration.request.header.x-gone",
                None
            ),
            op(
                Op::Replace,
                "/requestParameters/integration.request.header.x-id",
                Some("method.request.header.x-id")
            ),
            op(
                Op::Add,
                "/requestParameters/integration.request.querystring.q",
                Some("'static'")
            ),
        ]
    );
}

#[test]
fn an_empty_map_removes_every_live_key() {
    let mut live = http_live();
    live.request_templates = Some(map(&[("application/json", "{}"), ("text/plain", "")]));
    let mut s = spec();
    s.request_templates = Some(BTreeMap::new());
    assert_eq!(
        patch(&s, &live),
        vec![
            op(Op::Remove, "/requestTemplates/application~1json", None),
            op(Op::Remove, "/requestTemplates/text~1plain", None),
        ]
    );
}

#[test]
fn seed_example_1_adds_a_passthrough_template_without_a_value() {
    let mut s = spec();
    s.request_templates = Some(map(&[("application/json", "")]));
    assert_eq!(
        patch(&s, &http_live()),
        vec![op(Op::Add, "/requestTemplates/application~1json", None)]
    );
}

#[test]
fn seed_example_2_replaces_a_template_with_a_custom_one() {
    let mut live = http_live();
    live.request_templates = Some(map(&[("application/json", "")]));
    let mut s = spec();
    s.request_templates = Some(map(&[("application/json", r#"{"example": "json"}"#)]));
    assert_eq!(
        patch(&s, &live),
        vec![op(
            Op::Replace,
            "/requestTemplates/application~1json",
            Some(r#"{"example": "json"}"#)
        )]
    );
}

#[test]
fn seed_example_3_replaces_a_custom_template_with_passthrough() {
    let mut live = http_live();
    live.request_templates = Some(map(&[("application/json", r#"{"example": "json"}"#)]));
    let mut s = spec();
    s.request_templates = Some(map(&[("application/json", "")]));
    assert_eq!(
        patch(&s, &live),
        vec![op(Op::Replace, "/requestTemplates/application~1json", None)]
    );
}

#[test]
fn seed_example_4_removes_a_template() {
    let mut live = http_live();
    live.request_templates = Some(map(&[("application/json", "")]));
    let mut s = spec();
    s.request_templates = Some(BTreeMap::new());
    assert_eq!(
        patch(&s, &live),
        vec![op(Op::Remove, "/requestTemplates/application~1json", None)]
    );
}

#[test]
fn escaping_follows_rfc_6901() {
    assert_eq!(escape_key("application/json"), "application~1json");
    assert_eq!(escape_key("a~b"), "a~0b");
    assert_eq!(escape_key("x~/y/~1"), "x~0~1y~1~01");
    for key in [
        "application/json",
        "a~b",
        "x~/y/~1",
        "~0",
        "~1",
        "/~",
        "plain",
    ] {
        assert_eq!(unescape_key(&escape_key(key)), key);
    }
    let mut s = spec();
    s.request_templates = Some(map(&[("application/x~y+json", "t")]));
    assert_eq!(
        patch(&s, &http_live()),
        vec![op(
            Op::Add,
            "/requestTemplates/application~1x~0y+json",
            Some("t")
        )]
    );
}

#[test]
fn type_and_credentials_need_replacement() {
    let mut s = spec();
    s.integration_type = Some(IntegrationType::HttpProxy);
    s.uri = Some("https://new.example.com".into());
    let Plan::Replace(reasons) = plan(&s, &http_live()) else {
        panic!("type change must need replacement")
    };
    assert_eq!(reasons.len(), 1);
    assert_eq!(reasons[0].field, "type");
    assert!(reasons[0]
        .to_string()
        .contains("spec.type is \"HTTP_PROXY\" but AWS has \"HTTP\""));

    let mut s = spec();
    s.credentials = Some("arn:aws:iam::123456789012:role/apigw".into());
    let Plan::Replace(reasons) = plan(&s, &http_live()) else {
        panic!("credentials change must need replacement")
    };
    assert_eq!(reasons[0].field, "credentials");
}

#[test]
fn uri_and_method_on_mock_need_replacement() {
    let live = Integration {
        integration_type: Some("MOCK".into()),
        ..Default::default()
    };
    let mut s = spec();
    s.integration_http_method = Some(HttpMethod::Post);
    let Plan::Replace(reasons) = plan(&s, &live) else {
        panic!("httpMethod on MOCK must need replacement")
    };
    assert_eq!(reasons[0].field, "integrationHttpMethod");
    let mut s = spec();
    s.timeout_in_millis = Some(100);
    assert_eq!(
        patch(&s, &live),
        vec![op(Op::Replace, "/timeoutInMillis", Some("100"))]
    );
}

#[test]
fn the_supported_table_matches_aws_facts() {
    for (path, ops) in [
        ("/uri", vec![Op::Replace]),
        ("/tlsConfig/insecureSkipVerification", vec![Op::Replace]),
        (
            "/cacheKeyParameters/method.request.path.id",
            vec![Op::Add, Op::Remove],
        ),
        (
            "/requestTemplates/application~1json",
            vec![Op::Add, Op::Replace, Op::Remove],
        ),
    ] {
        for candidate in [Op::Add, Op::Remove, Op::Replace] {
            assert_eq!(
                is_supported(candidate, path),
                ops.contains(&candidate),
                "{candidate:?} {path}"
            );
        }
    }
    for path in [
        "/type",
        "/credentials",
        "/requestParameters",
        "/cacheKeyParameters/",
        "/x",
    ] {
        for candidate in [Op::Add, Op::Remove, Op::Replace] {
            assert!(!is_supported(candidate, path), "{candidate:?} {path}");
        }
    }
}

#[test]
fn the_order_is_deterministic_across_every_field() {
    let mut live = http_live();
    live.request_templates = Some(map(&[("text/plain", "x")]));
    live.request_parameters = Some(map(&[(
        "integration.request.path.a",
        "method.request.path.a",
    )]));
    let mut s = spec();
    s.request_templates = Some(map(&[("application/json", "")]));
    s.request_parameters = Some(map(&[(
        "integration.request.path.b",
        "method.request.path.b",
    )]));
    s.cache_key_parameters = Some(vec!["method.request.path.b".into()]);
    s.tls_config = Some(TlsConfigSpec {
        insecure_skip_verification: Some(true),
    });
    s.cache_namespace = Some("ns".into());
    s.timeout_in_millis = Some(5000);
    s.content_handling = Some(ContentHandling::ConvertToBinary);
    s.passthrough_behavior = Some(PassthroughBehavior::WhenNoTemplates);
    s.uri = Some("https://b.example.com".into());
    s.integration_http_method = Some(HttpMethod::Put);
    let paths: Vec<String> = patch(&s, &live)
        .into_iter()
        .map(|o| format!("{} {}", o.op.as_str(), o.path))
        .collect();
    assert_eq!(
        paths,
        vec![
            "replace /httpMethod",
            "replace /uri",
            "replace /passthroughBehavior",
            "replace /contentHandling",
            "replace /timeoutInMillis",
            "replace /cacheNamespace",
            "replace /tlsConfig/insecureSkipVerification",
            "add /cacheKeyParameters/method.request.path.b",
            "remove /requestParameters/integration.request.path.a",
            "add /requestParameters/integration.request.path.b",
            "remove /requestTemplates/text~1plain",
            "add /requestTemplates/application~1json",
        ]
    );
    for _ in 0..3 {
        assert_eq!(plan(&s, &live), plan(&s, &live));
    }
}

// ---------------------------------------------------------------------------------------------
// Property tests: the planner against the model of AWS's patch semantics.

const TEMPLATE_KEYS: &[&str] = &[
    "application/json",
    "text/plain",
    "application/x~y",
    "a~1b/c",
    "text/~0",
];
const TEMPLATE_VALUES: &[&str] = &["", "{}", "$input.body", "#set($x = 1)"];
const PARAM_KEYS: &[&str] = &[
    "integration.request.header.x-id",
    "integration.request.querystring.q",
    "integration.request.path.id",
    "integration.request.header.a~b",
];
const PARAM_VALUES: &[&str] = &[
    "method.request.header.x-id",
    "'static'",
    "context.requestId",
    "method.request.path.id",
];
const CACHE_KEYS: &[&str] = &[
    "method.request.path.petId",
    "method.request.querystring.q",
    "method.request.header.a/b",
    "method.request.header.t~x",
];

fn pick(pool: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop::sample::select(pool).prop_map(str::to_string)
}

fn string_map(
    keys: &'static [&'static str],
    values: &'static [&'static str],
) -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map(pick(keys), pick(values), 0..=keys.len())
}

fn string_set(pool: &'static [&'static str]) -> impl Strategy<Value = Vec<String>> {
    prop::collection::btree_set(pick(pool), 0..=pool.len()).prop_map(|s| s.into_iter().collect())
}

fn any_of<T: Copy + std::fmt::Debug + 'static>(all: &'static [T]) -> impl Strategy<Value = T> {
    prop::sample::select(all)
}

/// A live integration as AWS could hold it, with defaults sometimes filled and sometimes
/// omitted (as moto does).
pub(crate) fn live_integration() -> impl Strategy<Value = Integration> {
    let types = any_of(IntegrationType::ALL);
    (
        types,
        prop::option::of(any_of(HttpMethod::ALL)),
        prop::option::of("https://[a-z]{1,8}\\.example\\.com"),
        prop::option::of(prop::bool::ANY),
        prop::option::of(any_of(PassthroughBehavior::ALL)),
        prop::option::of(any_of(ContentHandling::ALL)),
        prop::option::of(50i32..=29000),
        prop::option::of("[a-z0-9]{1,6}"),
        (
            prop::option::of(string_set(CACHE_KEYS)),
            prop::option::of(string_map(PARAM_KEYS, PARAM_VALUES)),
            prop::option::of(string_map(TEMPLATE_KEYS, TEMPLATE_VALUES)),
            prop::option::of(prop::bool::ANY),
            prop::option::of("arn:aws:iam::123456789012:role/[a-z]{1,4}"),
        ),
    )
        .prop_map(
            |(
                kind,
                method,
                uri,
                vpc,
                passthrough,
                content,
                timeout,
                namespace,
                (cache, params, templates, tls, creds),
            )| {
                let is_http = matches!(kind, IntegrationType::Http | IntegrationType::HttpProxy);
                let is_mock = kind == IntegrationType::Mock;
                Integration {
                    integration_type: Some(kind.to_string()),
                    http_method: method.map(|m| m.to_string()),
                    uri: if is_mock { None } else { uri },
                    connection_type: vpc
                        .map(|v| if v { "VPC_LINK" } else { "INTERNET" }.to_string()),
                    connection_id: vpc.filter(|v| *v).map(|_| "link0".to_string()),
                    credentials: creds,
                    request_parameters: params,
                    request_templates: templates,
                    passthrough_behavior: passthrough.map(|p| p.to_string()),
                    content_handling: content.map(|c| c.to_string()),
                    timeout_in_millis: timeout,
                    cache_namespace: namespace,
                    cache_key_parameters: cache,
                    tls_config: tls.filter(|_| is_http).map(|skip| TlsConfig {
                        insecure_skip_verification: Some(skip),
                    }),
                    ..Default::default()
                }
            },
        )
}

/// A valid spec (one the admission rules accept) for `live`'s type, so that it can be patched.
fn patchable_spec(live: &Integration) -> impl Strategy<Value = ApiGatewayIntegrationSpec> {
    let kind: IntegrationType =
        serde_json::from_value(serde_json::json!(live.integration_type.clone().unwrap())).unwrap();
    let is_http = matches!(kind, IntegrationType::Http | IntegrationType::HttpProxy);
    let is_mock = kind == IntegrationType::Mock;
    let live_creds = live.credentials.clone();
    (
        prop::option::of(Just(kind)),
        prop::option::of(any_of(HttpMethod::ALL)),
        prop::option::of("https://[a-z]{1,8}\\.example\\.com"),
        prop::option::of(prop::option::of("[a-z0-9]{1,6}")),
        prop::option::of(any_of(PassthroughBehavior::ALL)),
        prop::option::of(any_of(ContentHandling::ALL)),
        prop::option::of(50i32..=29000),
        prop::option::of("[a-z0-9]{1,6}"),
        (
            prop::option::of(string_set(CACHE_KEYS)),
            prop::option::of(string_map(PARAM_KEYS, PARAM_VALUES)),
            prop::option::of(string_map(TEMPLATE_KEYS, TEMPLATE_VALUES)),
            prop::option::of(prop::option::of(prop::bool::ANY)),
            prop::bool::ANY,
        ),
    )
        .prop_map(
            move |(
                kind,
                method,
                uri,
                connection,
                passthrough,
                content,
                timeout,
                namespace,
                (cache, params, templates, tls, keep_creds),
            )| {
                let mut s = spec();
                s.integration_type = kind;
                if !is_mock {
                    s.integration_http_method = method;
                    s.uri = uri;
                }
                match connection {
                    None => {}
                    Some(None) => s.connection_type = Some(ConnectionType::Internet),
                    Some(Some(id)) => {
                        s.connection_type = Some(ConnectionType::VpcLink);
                        s.connection_id = Some(id);
                    }
                }
                s.passthrough_behavior = passthrough;
                s.content_handling = content;
                s.timeout_in_millis = timeout;
                s.cache_namespace = namespace;
                s.cache_key_parameters = cache;
                s.request_parameters = params;
                s.request_templates = templates;
                if is_http && s.integration_type.is_some() {
                    s.tls_config = tls.map(|skip| TlsConfigSpec {
                        insecure_skip_verification: skip,
                    });
                }
                if keep_creds {
                    s.credentials = live_creds.clone();
                }
                s
            },
        )
}

fn live_and_patchable_spec() -> impl Strategy<Value = (Integration, ApiGatewayIntegrationSpec)> {
    live_integration().prop_flat_map(|live| {
        let spec = patchable_spec(&live);
        (Just(live), spec)
    })
}

fn as_set(items: &Option<Vec<String>>) -> std::collections::BTreeSet<String> {
    items.clone().unwrap_or_default().into_iter().collect()
}

/// Asserts that every field the spec manages reads as the spec on `after`.
fn assert_spec_holds(
    spec: &ApiGatewayIntegrationSpec,
    after: &Integration,
) -> Result<(), TestCaseError> {
    if let Some(uri) = &spec.uri {
        prop_assert_eq!(after.uri.as_ref(), Some(uri));
    }
    if let Some(m) = spec.integration_http_method {
        prop_assert_eq!(after.http_method.as_deref(), Some(m.as_str()));
    }
    if let Some(c) = spec.connection_type {
        prop_assert_eq!(
            after.connection_type.as_deref().unwrap_or("INTERNET"),
            c.as_str()
        );
    }
    if let Some(id) = &spec.connection_id {
        prop_assert_eq!(after.connection_id.as_ref(), Some(id));
    }
    if let Some(p) = spec.passthrough_behavior {
        prop_assert_eq!(
            after
                .passthrough_behavior
                .as_deref()
                .unwrap_or("WHEN_NO_MATCH"),
            p.as_str()
        );
    }
    if let Some(c) = spec.content_handling {
        prop_assert_eq!(after.content_handling.as_deref(), Some(c.as_str()));
    }
    if let Some(t) = spec.timeout_in_millis {
        prop_assert_eq!(after.timeout_in_millis.unwrap_or(29000), t);
    }
    if let Some(ns) = &spec.cache_namespace {
        prop_assert_eq!(after.cache_namespace.as_ref(), Some(ns));
    }
    if let Some(skip) = spec
        .tls_config
        .as_ref()
        .and_then(|t| t.insecure_skip_verification)
    {
        let live_skip = after
            .tls_config
            .as_ref()
            .and_then(|t| t.insecure_skip_verification)
            .unwrap_or(false);
        prop_assert_eq!(live_skip, skip);
    }
    if spec.cache_key_parameters.is_some() {
        prop_assert_eq!(
            as_set(&after.cache_key_parameters),
            as_set(&spec.cache_key_parameters)
        );
    }
    if let Some(params) = &spec.request_parameters {
        prop_assert_eq!(
            &after.request_parameters.clone().unwrap_or_default(),
            params
        );
    }
    if let Some(templates) = &spec.request_templates {
        prop_assert_eq!(
            &after.request_templates.clone().unwrap_or_default(),
            templates
        );
    }
    Ok(())
}

/// Asserts that every field the spec leaves unset is as it was.
fn assert_unmanaged_untouched(
    spec: &ApiGatewayIntegrationSpec,
    live: &Integration,
    after: &Integration,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(&after.integration_type, &live.integration_type);
    prop_assert_eq!(&after.credentials, &live.credentials);
    if spec.uri.is_none() {
        prop_assert_eq!(&after.uri, &live.uri);
    }
    if spec.integration_http_method.is_none() {
        prop_assert_eq!(&after.http_method, &live.http_method);
    }
    if spec.connection_type.is_none() {
        prop_assert_eq!(&after.connection_type, &live.connection_type);
    }
    // Switching to INTERNET drops the link id in AWS; that is the spec's doing.
    if spec.connection_id.is_none() && spec.connection_type != Some(ConnectionType::Internet) {
        prop_assert_eq!(&after.connection_id, &live.connection_id);
    }
    if spec.passthrough_behavior.is_none() {
        prop_assert_eq!(&after.passthrough_behavior, &live.passthrough_behavior);
    }
    if spec.content_handling.is_none() {
        prop_assert_eq!(&after.content_handling, &live.content_handling);
    }
    if spec.timeout_in_millis.is_none() {
        prop_assert_eq!(after.timeout_in_millis, live.timeout_in_millis);
    }
    if spec.cache_namespace.is_none() {
        prop_assert_eq!(&after.cache_namespace, &live.cache_namespace);
    }
    if spec
        .tls_config
        .as_ref()
        .and_then(|t| t.insecure_skip_verification)
        .is_none()
    {
        prop_assert_eq!(&after.tls_config, &live.tls_config);
    }
    if spec.cache_key_parameters.is_none() {
        prop_assert_eq!(&after.cache_key_parameters, &live.cache_key_parameters);
    }
    if spec.request_parameters.is_none() {
        prop_assert_eq!(&after.request_parameters, &live.request_parameters);
    }
    if spec.request_templates.is_none() {
        prop_assert_eq!(&after.request_templates, &live.request_templates);
    }
    Ok(())
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 2000,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn applying_the_plan_yields_the_spec((live, spec) in live_and_patchable_spec()) {
        let Plan::Patch(ops) = plan(&spec, &live) else {
            return Err(TestCaseError::fail("a patchable spec gave a replacement"));
        };
        let after = aws_model::apply(&live, &ops).map_err(|e| TestCaseError::fail(format!("AWS rejects {ops:?}: {e}")))?;
        assert_spec_holds(&spec, &after)?;
    }

    #[test]
    fn planning_again_yields_nothing((live, spec) in live_and_patchable_spec()) {
        let Plan::Patch(ops) = plan(&spec, &live) else {
            return Err(TestCaseError::fail("a patchable spec gave a replacement"));
        };
        let after = aws_model::apply(&live, &ops).map_err(TestCaseError::fail)?;
        prop_assert_eq!(plan(&spec, &after), Plan::Patch(vec![]));
    }

    #[test]
    fn unmanaged_fields_are_untouched((live, spec) in live_and_patchable_spec()) {
        let Plan::Patch(ops) = plan(&spec, &live) else {
            return Err(TestCaseError::fail("a patchable spec gave a replacement"));
        };
        let after = aws_model::apply(&live, &ops).map_err(TestCaseError::fail)?;
        assert_unmanaged_untouched(&spec, &live, &after)?;
    }

    #[test]
    fn every_operation_is_one_aws_supports((live, spec) in live_and_patchable_spec()) {
        if let Plan::Patch(ops) = plan(&spec, &live) {
            for o in &ops {
                prop_assert!(aws_model::aws_accepts(o.op, &o.path), "{:?}", o);
                prop_assert!(o.path.starts_with('/'));
                prop_assert_eq!(o.value.is_some() && o.op == Op::Remove, false);
            }
        }
    }

    #[test]
    fn replacement_is_named_only_for_fields_a_patch_cannot_change(
        live in live_integration(),
        kind in prop::option::of(any_of(IntegrationType::ALL)),
        creds in prop::option::of("arn:aws:iam::123456789012:role/[a-z]{1,4}"),
        uri in prop::option::of("https://[a-z]{1,8}\\.example\\.com"),
    ) {
        let mut s = spec();
        s.integration_type = kind;
        s.credentials = creds;
        s.uri = uri;
        match plan(&s, &live) {
            Plan::Replace(reasons) => {
                prop_assert!(!reasons.is_empty());
                for r in reasons {
                    let differs = match r.field {
                        "type" => kind.map(|k| k.to_string()) != live.integration_type,
                        "credentials" => s.credentials != live.credentials,
                        "uri" => live.integration_type.as_deref() == Some("MOCK") && s.uri != live.uri,
                        other => return Err(TestCaseError::fail(format!("unexpected field {other}"))),
                    };
                    prop_assert!(differs, "{}", r);
                }
            }
            Plan::Patch(ops) => {
                prop_assert!(kind.is_none() || kind.map(|k| k.to_string()) == live.integration_type);
                prop_assert!(s.credentials.is_none() || s.credentials == live.credentials);
                for o in &ops {
                    prop_assert!(aws_model::aws_accepts(o.op, &o.path));
                }
            }
        }
    }

    #[test]
    fn escaping_round_trips(key in "[a-z~/0-9]{0,12}") {
        let escaped = escape_key(&key);
        prop_assert!(!escaped.contains('/'));
        prop_assert_eq!(unescape_key(&escaped), key);
    }
}
