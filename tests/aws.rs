//! The AWS layer ([`apigw_operator::aws::SdkAws`]) against the API Gateway emulator, over real
//! HTTP. Needs the test environment: `make testenv-up`, then `. target/testenv/env.sh` (the
//! tests read `AWS_ENDPOINT_URL`, `AWS_REGION` and `APIGW_EMULATOR_ADMIN`; they fail, never
//! skip, when those are missing).
//!
//! Every test makes its own REST APIs with unique names. The emulator's faults are global, so
//! the tests that inject faults hold [`FAULTS`] for writing (one at a time, nobody else
//! running) and every other test holds it for reading; faults are limited to the operation
//! under test and cleared on the way out, even on failure.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use apigw_operator::aws::{
    AwsApi, AwsError, AwsSettings, IntegrationKey, Priority, RetryKind, SdkAws,
};
use apigw_operator::crd::ApiGatewayIntegrationSpec;
use apigw_operator::plan::{Op, PatchOperation};
use aws_sdk_apigateway::Client;
use serde_json::{json, Value};
use tokio::sync::RwLock;

static FAULTS: LazyLock<RwLock<()>> = LazyLock::new(|| RwLock::new(()));

const HOW: &str = "run `make testenv-up` and `. target/testenv/env.sh`";

fn env(name: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!("{name} is not set: {HOW}"),
    }
}

fn region() -> String {
    env("AWS_REGION")
}

// ---------------------------------------------------------------- the emulator's admin API

/// A tiny HTTP/1.1 client for the admin API (127.0.0.1 only, `Connection: close`).
fn admin(method: &str, path: &str, body: Option<&Value>) -> Value {
    let base = env("APIGW_EMULATOR_ADMIN");
    let host = base
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("APIGW_EMULATOR_ADMIN must be http://HOST:PORT, is {base}"))
        .trim_end_matches('/');
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut stream = TcpStream::connect(host)
        .unwrap_or_else(|e| panic!("cannot reach the emulator at {base} ({e}): {HOW}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, payload) = answer
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"));
    let status = head.split(' ').nth(1).unwrap_or("");
    assert_eq!(status, "200", "{method} {path}: {answer}");
    serde_json::from_str(payload).unwrap_or_else(|e| panic!("{method} {path}: {e}: {payload}"))
}

/// How many answers the emulator has sent for `operation` (every status).
fn answered(operation: &str) -> u64 {
    admin("GET", "/_emulator/responses", None)[operation]
        .as_object()
        .map(|by_status| by_status.values().filter_map(Value::as_u64).sum())
        .unwrap_or(0)
}

/// Waits (up to a minute) until the emulator has answered `operation` more than `before`
/// times: a call whose client timed out keeps running there until its latency has passed, and
/// would otherwise land in another test's call counts.
async fn wait_answered(operation: &str, before: u64) {
    for _ in 0..600 {
        if answered(operation) > before {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the emulator has not answered the timed-out {operation} after 60 s");
}

fn calls(operation: &str) -> u64 {
    admin("GET", "/_emulator/calls", None)[operation]
        .as_u64()
        .unwrap_or(0)
}

/// Holds the fault lock and a fault config; clears the faults when dropped.
struct Faults {
    _lock: tokio::sync::RwLockWriteGuard<'static, ()>,
}

impl Faults {
    async fn set(config: Value) -> Faults {
        let lock = FAULTS.write().await;
        admin("POST", "/_emulator/faults", Some(&config));
        Faults { _lock: lock }
    }
}

impl Drop for Faults {
    fn drop(&mut self) {
        admin("POST", "/_emulator/faults", Some(&json!({})));
    }
}

// ---------------------------------------------------------------- fixtures

fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "aws-test-{prefix}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

type Observed = Arc<Mutex<Vec<(&'static str, &'static str)>>>;

async fn sdk_aws_with(tweak: impl FnOnce(&mut AwsSettings)) -> (SdkAws, Observed) {
    let observed: Observed = Arc::default();
    let sink = observed.clone();
    let mut settings = AwsSettings {
        region: Some(region()),
        endpoint_url: Some(env("AWS_ENDPOINT_URL")),
        observer: Some(Arc::new(move |op, outcome| {
            sink.lock().unwrap().push((op, outcome))
        })),
        // Fast and generous: these tests measure behaviour, not the quota.
        rps: 1000.0,
        burst: 1000,
        ..AwsSettings::default()
    };
    tweak(&mut settings);
    let aws = SdkAws::from_config(settings)
        .await
        .unwrap_or_else(|e| panic!("SdkAws::from_config: {e}"));
    (aws, observed)
}

async fn sdk_aws() -> SdkAws {
    sdk_aws_with(|_| {}).await.0
}

fn count(observed: &Observed, op: &str) -> usize {
    observed
        .lock()
        .unwrap()
        .iter()
        .filter(|(o, _)| *o == op)
        .count()
}

struct Api {
    client: Client,
    id: String,
    root_id: String,
}

impl Api {
    async fn create(aws: &SdkAws, name: &str) -> Api {
        let client = aws.client(&region());
        let api = client
            .create_rest_api()
            .name(name)
            .send()
            .await
            .unwrap_or_else(|e| panic!("CreateRestApi: {e:?}: {HOW}"));
        let id = api.id.unwrap();
        let resources = client
            .get_resources()
            .rest_api_id(&id)
            .send()
            .await
            .unwrap();
        let root_id = resources
            .items
            .unwrap_or_default()
            .into_iter()
            .find(|r| r.path.as_deref() == Some("/"))
            .and_then(|r| r.id)
            .expect("a new REST API has a root resource");
        Api {
            client,
            id,
            root_id,
        }
    }

    async fn resource(&self, parent: &str, part: &str) -> String {
        self.client
            .create_resource()
            .rest_api_id(&self.id)
            .parent_id(parent)
            .path_part(part)
            .send()
            .await
            .unwrap()
            .id
            .unwrap()
    }

    async fn method(&self, resource: &str, verb: &str) {
        self.client
            .put_method()
            .rest_api_id(&self.id)
            .resource_id(resource)
            .http_method(verb)
            .authorization_type("NONE")
            .send()
            .await
            .unwrap();
    }

    fn key(&self, resource: &str, verb: &str) -> IntegrationKey {
        IntegrationKey {
            region: region(),
            rest_api_id: self.id.clone(),
            resource_id: resource.to_owned(),
            http_method: verb.to_owned(),
        }
    }
}

fn spec(value: Value) -> ApiGatewayIntegrationSpec {
    serde_json::from_value(value).unwrap()
}

fn mock_spec() -> ApiGatewayIntegrationSpec {
    spec(json!({
        "restApiId": "x", "resourceId": "x", "httpMethod": "GET",
        "type": "MOCK",
        "requestTemplates": {"application/json": ""},
    }))
}

/// A REST API with /pets and a POST method on it (no integration).
async fn pets_api(aws: &SdkAws, test: &str) -> (Api, String) {
    let api = Api::create(aws, &unique(test)).await;
    let pets = api.resource(&api.root_id, "pets").await;
    api.method(&pets, "POST").await;
    (api, pets)
}

fn templates(pairs: &[(&str, &str)]) -> Option<BTreeMap<String, String>> {
    Some(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

// ---------------------------------------------------------------- tests

#[tokio::test]
async fn put_get_update_list_delete_round_trip_with_passthrough_templates() {
    let _shared = FAULTS.read().await;
    let (aws, observed) = sdk_aws_with(|_| {}).await;
    let (api, pets) = pets_api(&aws, "roundtrip").await;
    let key = api.key(&pets, "POST");

    // PutIntegration with a passthrough template: sent as "", stored by AWS as null, read as "".
    let put = aws
        .put_integration(
            &key,
            &spec(json!({
                "restApiId": api.id, "resourceId": pets, "httpMethod": "POST",
                "type": "HTTP", "integrationHttpMethod": "POST",
                "uri": "https://backend.example.com/pets",
                "requestTemplates": {"application/json": "", "text/plain": "$input.body"},
                "requestParameters": {"integration.request.header.x-id": "method.request.header.x-id"},
                "tlsConfig": {"insecureSkipVerification": true},
            })),
        )
        .await
        .unwrap();
    assert_eq!(put.integration_type.as_deref(), Some("HTTP"));
    assert_eq!(put.http_method.as_deref(), Some("POST"));
    assert_eq!(put.uri.as_deref(), Some("https://backend.example.com/pets"));
    assert_eq!(
        put.request_templates,
        templates(&[("application/json", ""), ("text/plain", "$input.body")])
    );
    assert_eq!(put.timeout_in_millis, Some(29000), "AWS's default");
    assert_eq!(put.passthrough_behavior.as_deref(), Some("WHEN_NO_MATCH"));
    assert_eq!(
        put.tls_config.as_ref().unwrap().insecure_skip_verification,
        Some(true)
    );

    // GetIntegration parses the null template (the SDK alone fails on it).
    let got = aws.get_integration(&key, Priority::Drift).await.unwrap();
    assert_eq!(got, put);

    // UpdateIntegration: a passthrough template is an add without value.
    let ops = vec![
        PatchOperation {
            op: Op::Replace,
            path: "/timeoutInMillis".into(),
            value: Some("1000".into()),
        },
        PatchOperation {
            op: Op::Remove,
            path: "/requestTemplates/text~1plain".into(),
            value: None,
        },
        PatchOperation {
            op: Op::Add,
            path: "/requestTemplates/application~1xml".into(),
            value: None,
        },
        PatchOperation {
            op: Op::Replace,
            path: "/uri".into(),
            value: Some("https://backend.example.com/v2/pets".into()),
        },
    ];
    let updated = aws.update_integration(&key, &ops).await.unwrap();
    assert_eq!(updated.timeout_in_millis, Some(1000));
    assert_eq!(
        updated.uri.as_deref(),
        Some("https://backend.example.com/v2/pets")
    );
    assert_eq!(
        updated.request_templates,
        templates(&[("application/json", ""), ("application/xml", "")])
    );
    assert_eq!(
        aws.get_integration(&key, Priority::Change).await.unwrap(),
        updated
    );

    // The API-wide read sees the same integration, null templates included.
    let listed = aws
        .list_method_integrations(&region(), &api.id, Priority::Drift)
        .await
        .unwrap();
    let found: Vec<_> = listed
        .iter()
        .filter(|m| m.resource_id == pets && m.http_method == "POST")
        .collect();
    assert_eq!(found.len(), 1, "{listed:?}");
    assert_eq!(found[0].resource_path, "/pets");
    assert_eq!(found[0].integration.as_ref(), Some(&updated));

    // DeleteIntegration; then the integration is gone, and a second delete is a 404.
    aws.delete_integration(&key).await.unwrap();
    let gone = aws
        .get_integration(&key, Priority::Change)
        .await
        .unwrap_err();
    assert!(matches!(gone, AwsError::NotFound { .. }), "{gone:?}");
    let again = aws.delete_integration(&key).await.unwrap_err();
    assert!(matches!(again, AwsError::NotFound { .. }), "{again:?}");

    let seen = observed.lock().unwrap().clone();
    for op in [
        "PutIntegration",
        "GetIntegration",
        "UpdateIntegration",
        "GetResources",
        "DeleteIntegration",
    ] {
        assert!(seen.contains(&(op, "ok")), "{op} ok in {seen:?}");
    }
    assert!(
        seen.contains(&("DeleteIntegration", "not_found")),
        "{seen:?}"
    );
    assert!(seen.contains(&("GetIntegration", "not_found")), "{seen:?}");
}

#[tokio::test]
async fn missing_targets_are_not_found_with_aws_messages() {
    let _shared = FAULTS.read().await;
    let aws = sdk_aws().await;
    let (api, pets) = pets_api(&aws, "notfound").await;

    let message = |e: AwsError| match e {
        AwsError::NotFound { message } => message,
        other => panic!("not a NotFound: {other:?}"),
    };
    // No such resource.
    let e = aws
        .get_integration(&api.key("nosuchres", "POST"), Priority::Change)
        .await
        .unwrap_err();
    assert_eq!(message(e), "Invalid Resource identifier specified");
    // No such method.
    let e = aws
        .get_integration(&api.key(&pets, "GET"), Priority::Change)
        .await
        .unwrap_err();
    assert_eq!(message(e), "Invalid Method identifier specified");
    // A method without integration.
    let e = aws
        .get_integration(&api.key(&pets, "POST"), Priority::Change)
        .await
        .unwrap_err();
    assert_eq!(message(e), "Invalid Integration identifier specified");
    // No such REST API.
    let e = aws
        .update_integration(
            &IntegrationKey {
                rest_api_id: "nosuchapi".into(),
                ..api.key(&pets, "POST")
            },
            &[],
        )
        .await
        .unwrap_err();
    assert_eq!(e.category(), "not_found");
    // Delete of a missing integration.
    let e = aws
        .delete_integration(&api.key(&pets, "POST"))
        .await
        .unwrap_err();
    assert_eq!(e.category(), "not_found");
    assert_eq!(e.retry_after(), None);
}

#[tokio::test]
async fn a_bad_patch_is_invalid_with_aws_message() {
    let _shared = FAULTS.read().await;
    let aws = sdk_aws().await;
    let (api, pets) = pets_api(&aws, "badpatch").await;
    let key = api.key(&pets, "POST");
    aws.put_integration(&key, &mock_spec()).await.unwrap();

    let e = aws
        .update_integration(
            &key,
            &[PatchOperation {
                op: Op::Replace,
                path: "/nonsense".into(),
                value: Some("x".into()),
            }],
        )
        .await
        .unwrap_err();
    assert_eq!(
        e,
        AwsError::Invalid {
            code: "BadRequestException".into(),
            message: "Invalid patch path /nonsense".into(),
        }
    );
    assert_eq!(
        e.to_string(),
        "BadRequestException: Invalid patch path /nonsense"
    );
    assert!(!e.is_retryable());

    let e = aws
        .update_integration(
            &key,
            &[PatchOperation {
                op: Op::Add,
                path: "/timeoutInMillis".into(),
                value: Some("1000".into()),
            }],
        )
        .await
        .unwrap_err();
    assert_eq!(e.category(), "invalid");
    assert_eq!(
        e.message(),
        "Invalid patch operation specified. Must be one of: [replace]"
    );
    // The integration is unchanged.
    let live = aws.get_integration(&key, Priority::Change).await.unwrap();
    assert_eq!(
        live.request_templates,
        templates(&[("application/json", "")])
    );
}

#[tokio::test]
async fn put_without_type_is_invalid_without_calling_aws() {
    let _shared = FAULTS.read().await;
    let (aws, observed) = sdk_aws_with(|_| {}).await;
    let key = IntegrationKey {
        region: region(),
        rest_api_id: "a".into(),
        resource_id: "b".into(),
        http_method: "GET".into(),
    };
    let e = aws
        .put_integration(
            &key,
            &spec(json!({"restApiId": "a", "resourceId": "b", "httpMethod": "GET"})),
        )
        .await
        .unwrap_err();
    assert_eq!(e.category(), "invalid");
    assert!(observed.lock().unwrap().is_empty());
}

#[tokio::test]
async fn throttling_is_retryable_with_retry_after() {
    let (aws, observed) = sdk_aws_with(|s| s.max_attempts = 1).await;
    let (api, pets) = {
        let _shared = FAULTS.read().await;
        pets_api(&aws, "throttle").await
    };
    let key = api.key(&pets, "POST");
    let _faults = Faults::set(json!({
        "throttle": 1.0, "retry_after": 2, "operations": ["GetIntegration"],
    }))
    .await;
    let e = aws
        .get_integration(&key, Priority::Drift)
        .await
        .unwrap_err();
    match &e {
        AwsError::Retryable {
            kind: RetryKind::Throttled,
            message,
            retry_after: Some(d),
        } => {
            assert_eq!(*d, Duration::from_secs(2));
            // A retryable error names the call it came from; AWS's words follow unchanged.
            assert_eq!(message, "GetIntegration: Too Many Requests");
        }
        other => panic!("not a throttled Retryable: {other:?}"),
    }
    assert_eq!(e.category(), "throttled");
    assert_eq!(e.retry_after(), Some(Duration::from_secs(2)));
    assert_eq!(
        observed.lock().unwrap().as_slice(),
        &[("GetIntegration", "throttled")]
    );
}

#[tokio::test]
async fn sdk_retries_are_bounded_and_charged_to_the_quota() {
    // A bucket that does not refill during the test: every HTTP request shows.
    let (aws, observed) = sdk_aws_with(|s| {
        s.max_attempts = 3;
        s.rps = 0.0001;
        s.burst = 20;
    })
    .await;
    let (api, pets) = {
        let _shared = FAULTS.read().await;
        pets_api(&aws, "retries").await
    };
    let key = api.key(&pets, "POST");
    let quota = aws.quota(&region());
    let before_tokens = quota.available();
    let _faults = Faults::set(json!({
        "throttle": 1.0, "retry_after": 0, "operations": ["GetIntegration"],
    }))
    .await;
    let before_calls = calls("GetIntegration");
    let e = aws
        .get_integration(&key, Priority::Change)
        .await
        .unwrap_err();
    assert_eq!(e.category(), "throttled");
    assert_eq!(
        calls("GetIntegration") - before_calls,
        3,
        "max_attempts bounds the SDK's retries"
    );
    let spent = before_tokens - quota.available();
    assert!(
        (2.99..3.01).contains(&spent),
        "one token per HTTP request, retries included: spent {spent}"
    );
    assert_eq!(
        observed.lock().unwrap().as_slice(),
        &[("GetIntegration", "throttled"); 3],
        "one observation per attempt, the SDK's retries included"
    );
}

#[tokio::test]
async fn server_errors_are_retryable() {
    let (aws, _) = sdk_aws_with(|s| s.max_attempts = 1).await;
    let (api, pets) = {
        let _shared = FAULTS.read().await;
        pets_api(&aws, "5xx").await
    };
    let key = api.key(&pets, "POST");
    {
        let _faults = Faults::set(json!({
            "error_5xx": 1.0, "error_5xx_status": 503, "retry_after": 3,
            "operations": ["GetIntegration"],
        }))
        .await;
        let e = aws
            .get_integration(&key, Priority::Change)
            .await
            .unwrap_err();
        assert!(
            matches!(
                &e,
                AwsError::Retryable { kind: RetryKind::Server, retry_after: Some(d), .. }
                    if *d == Duration::from_secs(3)
            ),
            "{e:?}"
        );
        assert_eq!(e.message(), "GetIntegration: Service Unavailable");
    }
    {
        let _faults = Faults::set(json!({
            "error_5xx": 1.0, "error_5xx_status": 500, "operations": ["DeleteIntegration"],
        }))
        .await;
        let e = aws.delete_integration(&key).await.unwrap_err();
        assert_eq!(e.category(), "server");
        assert_eq!(e.retry_after(), None);
    }
}

/// Only the calls under test go through the client with the short read timeout; the setup
/// (CreateRestApi and the rest) goes through an ordinary one, so a slow answer on a loaded
/// machine cannot fail it. The timeout comes from a latency fault six times the read timeout.
#[tokio::test]
async fn dropped_connections_and_timeouts_are_retryable() {
    let (api, pets) = {
        let _shared = FAULTS.read().await;
        pets_api(&sdk_aws().await, "net").await
    };
    let key = api.key(&pets, "POST");
    let (aws, _) = sdk_aws_with(|s| {
        s.max_attempts = 1;
        s.read_timeout = Some(Duration::from_millis(500));
    })
    .await;
    {
        let _faults = Faults::set(json!({"drop": 1.0, "operations": ["GetIntegration"]})).await;
        let e = aws
            .get_integration(&key, Priority::Change)
            .await
            .unwrap_err();
        assert_eq!(e.category(), "connection", "{e:?}");
    }
    {
        let _faults =
            Faults::set(json!({"latency_ms": 3000, "operations": ["GetIntegration"]})).await;
        let before = answered("GetIntegration");
        let e = aws
            .get_integration(&key, Priority::Change)
            .await
            .unwrap_err();
        assert_eq!(e.category(), "timeout", "{e:?}");
        // The emulator is still sleeping on that call: let it finish while the fault lock is
        // held, so that it cannot land in another test's call counts.
        wait_answered("GetIntegration", before).await;
    }
}

/// A 200 whose body cannot be parsed (the `garbage_body` fault: the emulator applied the
/// update, then spoiled the answer) is an error, never a success with an empty integration;
/// AWS has the change all the same.
#[tokio::test]
async fn a_garbled_answer_is_an_error_though_the_change_took_effect() {
    let aws = sdk_aws_with(|s| s.max_attempts = 1).await.0;
    let (api, pets) = {
        let _shared = FAULTS.read().await;
        let (api, pets) = pets_api(&aws, "garbled").await;
        aws.put_integration(&api.key(&pets, "POST"), &mock_spec())
            .await
            .unwrap();
        (api, pets)
    };
    let key = api.key(&pets, "POST");
    let ops = [PatchOperation {
        op: Op::Replace,
        path: "/timeoutInMillis".into(),
        value: Some("1234".into()),
    }];
    {
        let _faults =
            Faults::set(json!({"garbage_body": 1.0, "operations": ["UpdateIntegration"]})).await;
        let garbled = || {
            admin("GET", "/_emulator/garbled", None)["UpdateIntegration"]
                .as_u64()
                .unwrap_or(0)
        };
        let before = garbled();
        let e = aws.update_integration(&key, &ops).await.unwrap_err();
        assert!(
            !matches!(e, AwsError::NotFound { .. } | AwsError::Invalid { .. }),
            "a spoiled answer is not AWS refusing the call: {e:?}"
        );
        assert_eq!(garbled() - before, 1);
    }
    let _shared = FAULTS.read().await;
    let live = aws
        .get_integration(&key, Priority::Change)
        .await
        .unwrap_or_else(|e| panic!("GetIntegration after the garbled update: {e:?}"));
    assert_eq!(live.timeout_in_millis, Some(1234));
}

#[tokio::test]
async fn a_closed_port_is_a_connection_error() {
    let _shared = FAULTS.read().await;
    // A port nobody listens on: bind, note it, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (aws, _) = sdk_aws_with(|s| {
        s.max_attempts = 1;
        s.endpoint_url = Some(format!("http://127.0.0.1:{port}"));
    })
    .await;
    let key = IntegrationKey {
        region: region(),
        rest_api_id: "a".into(),
        resource_id: "b".into(),
        http_method: "GET".into(),
    };
    let e = aws
        .get_integration(&key, Priority::Change)
        .await
        .unwrap_err();
    assert_eq!(e.category(), "connection", "{e:?}");
}

#[tokio::test]
async fn rest_apis_are_found_by_unique_name_only() {
    let _shared = FAULTS.read().await;
    let (aws, observed) = sdk_aws_with(|s| s.page_size = 2).await;
    let name = unique("byname");
    let api = Api::create(&aws, &name).await;
    assert_eq!(
        aws.find_rest_api_id(&region(), &name).await.unwrap(),
        api.id
    );
    let pages = count(&observed, "GetRestApis");
    assert!(pages >= 1);
    // Cached: no second listing.
    assert_eq!(
        aws.find_rest_api_id(&region(), &name).await.unwrap(),
        api.id
    );
    assert_eq!(count(&observed, "GetRestApis"), pages);

    let missing = aws
        .find_rest_api_id(&region(), &unique("nosuchapi"))
        .await
        .unwrap_err();
    assert_eq!(missing.category(), "not_found", "{missing:?}");

    // A second API of the same name: ambiguous, once the cache is invalidated.
    let twin = Api::create(&aws, &name).await;
    aws.invalidate_lookups(&region());
    let e = aws.find_rest_api_id(&region(), &name).await.unwrap_err();
    match &e {
        AwsError::Ambiguous { message } => {
            assert!(
                message.contains(&api.id) && message.contains(&twin.id),
                "{message}"
            )
        }
        other => panic!("not Ambiguous: {other:?}"),
    }
    assert_eq!(e.category(), "ambiguous");
}

#[tokio::test]
async fn resources_are_found_by_path_and_cached() {
    let _shared = FAULTS.read().await;
    let (aws, observed) = sdk_aws_with(|s| s.page_size = 2).await;
    let api = Api::create(&aws, &unique("bypath")).await;
    let pets = api.resource(&api.root_id, "pets").await;
    let pet = api.resource(&pets, "{petId}").await;
    let _toys = api.resource(&pets, "toys").await;
    let r = region();

    assert_eq!(
        aws.find_resource_id(&r, &api.id, "/").await.unwrap(),
        api.root_id
    );
    assert_eq!(
        aws.find_resource_id(&r, &api.id, "/pets/{petId}")
            .await
            .unwrap(),
        pet
    );
    // 4 resources at 2 a page: 2 calls, then answers from the cache.
    assert_eq!(count(&observed, "GetResources"), 2);
    assert_eq!(
        aws.find_resource_id(&r, &api.id, "/pets").await.unwrap(),
        pets
    );
    assert_eq!(count(&observed, "GetResources"), 2);

    // A missing path: NotFound; a resource created later is found once lookups are
    // invalidated (or the negative TTL has passed).
    let e = aws
        .find_resource_id(&r, &api.id, "/owners")
        .await
        .unwrap_err();
    assert_eq!(e.category(), "not_found");
    let owners = api.resource(&api.root_id, "owners").await;
    assert!(aws.find_resource_id(&r, &api.id, "/owners").await.is_err());
    aws.invalidate_lookups(&r);
    assert_eq!(
        aws.find_resource_id(&r, &api.id, "/owners").await.unwrap(),
        owners
    );

    // A missing REST API.
    let e = aws
        .find_resource_id(&r, "nosuchapi", "/")
        .await
        .unwrap_err();
    assert_eq!(e.category(), "not_found", "{e:?}");
}

#[tokio::test]
async fn method_integrations_are_listed_page_by_page() {
    let _shared = FAULTS.read().await;
    let (aws, observed) = sdk_aws_with(|s| s.page_size = 2).await;
    let api = Api::create(&aws, &unique("paging")).await;
    let mut expected = Vec::new();
    for i in 0..5 {
        let id = api.resource(&api.root_id, &format!("r{i}")).await;
        api.method(&id, "GET").await;
        aws.put_integration(&api.key(&id, "GET"), &mock_spec())
            .await
            .unwrap();
        expected.push((format!("/r{i}"), id));
    }
    // One method without integration.
    api.method(&api.root_id, "OPTIONS").await;

    let before = calls("GetResources");
    let listed = aws
        .list_method_integrations(&region(), &api.id, Priority::Drift)
        .await
        .unwrap();
    // 6 resources (the root and r0..r4) at 2 a page.
    assert_eq!(count(&observed, "GetResources"), 3);
    assert!(calls("GetResources") - before >= 3);

    let summary: Vec<_> = listed
        .iter()
        .map(|m| (m.resource_path.as_str(), m.http_method.as_str()))
        .collect();
    let mut want = vec![("/", "OPTIONS")];
    want.extend(expected.iter().map(|(p, _)| (p.as_str(), "GET")));
    assert_eq!(summary, want, "sorted by path, then verb");
    assert!(listed[0].integration.is_none());
    for (m, (_, id)) in listed[1..].iter().zip(&expected) {
        assert_eq!(&m.resource_id, id);
        let integration = m.integration.as_ref().unwrap();
        assert_eq!(integration.integration_type.as_deref(), Some("MOCK"));
        assert_eq!(
            integration.request_templates,
            templates(&[("application/json", "")])
        );
    }
    // The listing also filled the path lookup: no further GetResources.
    assert_eq!(
        aws.find_resource_id(&region(), &api.id, "/r3")
            .await
            .unwrap(),
        expected[3].1
    );
    assert_eq!(count(&observed, "GetResources"), 3);
}

#[tokio::test]
async fn settings_default_region_and_quota() {
    let _shared = FAULTS.read().await;
    let (aws, _) = sdk_aws_with(|s| {
        s.region = Some("eu-west-3".into());
        s.rps = 7.0;
        s.burst = 9;
    })
    .await;
    assert_eq!(aws.default_region(), "eu-west-3");
    let quota = aws.quota("eu-west-3");
    // The bucket keeps rps × 0.3 s of the burst for delivery jitter.
    assert_eq!(
        quota.burst(),
        apigw_operator::quota::burst_after_jitter_margin(7.0, 9)
    );
    assert_eq!(quota.burst(), 6);
    assert_eq!(quota.rps(), 7.0);
    // An empty Region means the default one.
    let e = aws
        .find_rest_api_id("", &unique("elsewhere"))
        .await
        .unwrap_err();
    assert_eq!(e.category(), "not_found");
    assert!(e.message().contains("eu-west-3"), "{e}");
    let regions: Vec<_> = aws
        .buckets_in_use()
        .into_iter()
        .map(|((_, r), _)| r)
        .collect();
    assert_eq!(regions, ["eu-west-3"]);
}

/// Without credentials anywhere in the default chain, a call is Unauthorized (code
/// CredentialsError), not a connection error. Runs itself in a child process with the
/// credential variables removed (the environment is shared by the test threads).
#[tokio::test]
async fn no_credentials_is_unauthorized() {
    const CHILD: &str = "APIGW_AWS_TEST_NO_CREDENTIALS_CHILD";
    if std::env::var_os(CHILD).is_some() {
        let (aws, observed) = sdk_aws_with(|s| s.max_attempts = 1).await;
        let key = IntegrationKey {
            region: region(),
            rest_api_id: "a".into(),
            resource_id: "b".into(),
            http_method: "GET".into(),
        };
        let e = aws
            .get_integration(&key, Priority::Change)
            .await
            .unwrap_err();
        assert!(
            matches!(&e, AwsError::Unauthorized { code, .. } if code == "CredentialsError"),
            "{e:?}"
        );
        assert_eq!(
            observed.lock().unwrap().as_slice(),
            &[("GetIntegration", "unauthorized")]
        );
        return;
    }
    let _shared = FAULTS.read().await;
    let mut child = std::process::Command::new(std::env::current_exe().unwrap());
    child
        .args(["--exact", "no_credentials_is_unauthorized", "--nocapture"])
        .env(CHILD, "1")
        .env("AWS_CONFIG_FILE", "/nonexistent/apigw-test/config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/apigw-test/credentials",
        )
        .env("AWS_EC2_METADATA_DISABLED", "true");
    for var in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ] {
        child.env_remove(var);
    }
    let out = child.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// With the write fence closed (a leader that could not renew its lease), no write reaches AWS
/// and the error says why; reads still go out. An SDK retry of a write stops at the fence too.
#[tokio::test]
async fn a_closed_write_fence_sends_no_write() {
    let _shared = FAULTS.read().await;
    let open = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let gate = open.clone();
    let (aws, observed) = sdk_aws_with(move |s| {
        s.write_fence = Some(Arc::new(move || gate.load(Ordering::SeqCst)));
    })
    .await;
    let (api, pets) = pets_api(&aws, "fence").await;
    let key = api.key(&pets, "POST");
    aws.put_integration(&key, &mock_spec()).await.unwrap();
    open.store(false, Ordering::SeqCst);
    let op = PatchOperation {
        op: Op::Replace,
        path: "/timeoutInMillis".into(),
        value: Some("1000".into()),
    };
    let e = aws.update_integration(&key, &[op]).await.unwrap_err();
    assert!(
        matches!(
            &e,
            AwsError::Retryable {
                kind: RetryKind::NotLeader,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.message().starts_with("UpdateIntegration not sent"), "{e}");
    assert_eq!(e.category(), "not_leader");
    let http = spec(json!({
        "restApiId": "x", "resourceId": "x", "httpMethod": "GET",
        "type": "HTTP", "integrationHttpMethod": "GET", "uri": "https://fenced.example.com",
    }));
    assert!(aws.put_integration(&key, &http).await.is_err());
    assert!(aws.delete_integration(&key).await.is_err());
    // Other tests run at the same time, so the emulator's global counters cannot tell; its
    // state can: none of the three writes reached it. Reads are not fenced.
    let live = aws.get_integration(&key, Priority::Change).await.unwrap();
    assert_eq!(live.integration_type.as_deref(), Some("MOCK"));
    assert_eq!(live.timeout_in_millis, Some(29_000));
    assert_eq!(count(&observed, "GetIntegration"), 1);
    for write in ["UpdateIntegration", "DeleteIntegration"] {
        assert_eq!(count(&observed, write), 0, "{write} was sent");
    }
    assert_eq!(count(&observed, "PutIntegration"), 1, "only the setup's");
}
