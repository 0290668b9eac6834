//! Unit tests of the reconcile's decisions (`decide`, `next_status`, deletion), against the
//! in-memory API Gateway. The end-to-end tests prove the same behaviours against the real API
//! server and the emulator.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

use super::*;
use crate::aws::fake::FakeAws;
use crate::crd::ApiGatewayIntegrationSpec;
use crate::integration::IntegrationResponse;

fn key() -> IntegrationKey {
    IntegrationKey {
        region: "us-east-1".into(),
        rest_api_id: "api1".into(),
        resource_id: "res1".into(),
        http_method: "POST".into(),
    }
}

fn live() -> Integration {
    serde_json::from_value(serde_json::json!({
        "type": "HTTP", "httpMethod": "POST", "uri": "https://old.example.com",
        "timeoutInMillis": 29000, "passthroughBehavior": "WHEN_NO_MATCH",
    }))
    .unwrap()
}

fn object(name: &str, created: i64, spec: serde_json::Value) -> ApiGatewayIntegration {
    let mut full = serde_json::json!({
        "restApiId": "api1", "resourceId": "res1", "httpMethod": "POST", "region": "us-east-1",
    });
    full.as_object_mut()
        .unwrap()
        .extend(spec.as_object().unwrap().clone());
    let spec: ApiGatewayIntegrationSpec = serde_json::from_value(full).unwrap();
    let mut obj = ApiGatewayIntegration::new(name, spec);
    obj.metadata = ObjectMeta {
        name: Some(name.into()),
        namespace: Some("ns".into()),
        uid: Some(format!("uid-{name}")),
        generation: Some(1),
        resource_version: Some("10".into()),
        creation_timestamp: Some(Time(
            k8s_openapi::jiff::Timestamp::from_second(created).unwrap(),
        )),
        ..ObjectMeta::default()
    };
    obj
}

/// The context acting as the operator's own identity.
fn acting(ctx: &Context<FakeAws>) -> crate::access::gate::Admitted<'_, Context<FakeAws>, FakeAws> {
    crate::access::gate::Admitted::operator(ctx, ctx.aws.clone())
}

fn context(aws: FakeAws) -> Context<FakeAws> {
    let (client, settings) = (
        crate::kit::testing::client(),
        crate::kit::testing::settings(),
    );
    Context::new(client, Arc::new(aws), settings, Arc::new(Metrics::new()))
}

fn synced_status(integration: Integration, generation: i64) -> ApiGatewayIntegrationStatus {
    ApiGatewayIntegrationStatus {
        observed_generation: Some(generation),
        synced_generation: Some(generation),
        integration: Some(integration),
        target: Some(resolved(&key())),
        ..ApiGatewayIntegrationStatus::default()
    }
}

#[tokio::test]
async fn a_younger_claimant_is_in_conflict_and_calls_nothing() {
    let ctx = context(FakeAws::with(&key(), live()));
    let owner = Arc::new(object(
        "old",
        100,
        serde_json::json!({"uri": "https://a.example.com"}),
    ));
    let younger = object(
        "young",
        200,
        serde_json::json!({"uri": "https://b.example.com"}),
    );
    let peers = [owner.clone(), Arc::new(younger.clone())];
    let peers: Vec<_> = peers
        .iter()
        .map(|p| Arc::new(CachedIntegration::of(p)))
        .collect();
    ctx.set_peers(Box::new(move || peers.clone()));
    let decision = decide(
        &younger,
        &acting(&ctx),
        &ApiGatewayIntegrationStatus::default(),
    )
    .await
    .unwrap();
    match &decision.outcome {
        Outcome::Conflict(message) => assert!(message.contains("ns/old"), "{message}"),
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert_eq!(decision.requeue_after, Some(CONFLICT_RECHECK));
    assert!(ctx.aws.calls.lock().unwrap().is_empty(), "zero AWS calls");
    // Pinned from its own resolution, so later checks need no lookup either.
    assert_eq!(decision.target, Some(resolved(&key())));

    // The owner is not in conflict.
    let owner_decision = decide(
        &owner,
        &acting(&ctx),
        &ApiGatewayIntegrationStatus::default(),
    )
    .await
    .unwrap();
    assert_eq!(owner_decision.outcome, Outcome::Synced);
}

#[tokio::test]
async fn the_next_oldest_takes_over_when_the_owner_is_gone() {
    let ctx = context(FakeAws::with(&key(), live()));
    let younger = object(
        "young",
        200,
        serde_json::json!({"uri": "https://b.example.com"}),
    );
    let peers = [Arc::new(younger.clone())];
    let peers: Vec<_> = peers
        .iter()
        .map(|p| Arc::new(CachedIntegration::of(p)))
        .collect();
    ctx.set_peers(Box::new(move || peers.clone()));
    let decision = decide(
        &younger,
        &acting(&ctx),
        &ApiGatewayIntegrationStatus::default(),
    )
    .await
    .unwrap();
    assert_eq!(decision.outcome, Outcome::Synced);
    assert_eq!(
        ctx.aws.get(&key()).unwrap().uri.as_deref(),
        Some("https://b.example.com")
    );
}

#[tokio::test]
async fn equal_timestamps_order_by_namespace_and_name() {
    let a = Arc::new(object("a", 100, serde_json::json!({})));
    let b = object("b", 100, serde_json::json!({}));
    let peers = vec![
        Arc::new(CachedIntegration::of(&a)),
        Arc::new(CachedIntegration::of(&b)),
    ];
    assert_eq!(
        other_owner(&b, &resolved(&key()), &peers, "us-east-1"),
        Some("ns/a".into())
    );
    assert_eq!(
        other_owner(&a, &resolved(&key()), &peers, "us-east-1"),
        None
    );
}

#[tokio::test]
async fn an_ignored_op_is_not_converged_with_its_path_and_bounded() {
    let aws = FakeAws::with(&key(), live());
    aws.ignore_paths
        .lock()
        .unwrap()
        .push("/timeoutInMillis".into());
    let ctx = context(aws);
    let obj = object(
        "a",
        1,
        serde_json::json!({"timeoutInMillis": 1000, "uri": "https://new.example.com"}),
    );
    let decision = decide(&obj, &acting(&ctx), &ApiGatewayIntegrationStatus::default())
        .await
        .unwrap();
    match &decision.outcome {
        Outcome::NotConverged(message) => {
            assert!(message.contains("/timeoutInMillis"), "{message}");
            assert!(!message.contains("1000"), "paths, never values: {message}");
        }
        other => panic!("expected NotConverged, got {other:?}"),
    }
    // One UpdateIntegration: sending the same op again at once would only repeat the answer.
    assert_eq!(ctx.aws.count("UpdateIntegration"), 1);
    assert!(!decision.verdict, "never Synced, syncedGeneration stays");
    let sent = decision.sent.clone().unwrap();
    assert_eq!(sent.len(), 2, "the ops of the last call: {sent:?}");
    // Retried with backoff a few times, then once per resync period.
    let mut waits = Vec::new();
    for _ in 0..5 {
        let d = decide(&obj, &acting(&ctx), &ApiGatewayIntegrationStatus::default())
            .await
            .unwrap();
        waits.push(d.requeue_after.unwrap());
    }
    assert!(
        waits[..2].iter().all(|w| *w <= Duration::from_secs(5)),
        "{waits:?}"
    );
    assert!(
        waits[3..].iter().all(|w| *w >= Duration::from_secs(500)),
        "{waits:?}"
    );
    // Watch events (our own status writes) are held back until then too.
    assert!(ctx.backing_off("ns/a").unwrap() >= Duration::from_secs(500));
}

#[tokio::test]
async fn a_stray_field_gets_one_more_patch_and_last_patch_operations_is_the_last_call() {
    let aws = FakeAws::with(&key(), live());
    let ctx = context(aws);
    // The status copy is older than AWS: AWS has a stray timeout the copy does not show.
    let mut stale_copy = live();
    stale_copy.timeout_in_millis = Some(29000);
    ctx.aws
        .integrations
        .lock()
        .unwrap()
        .get_mut(&key())
        .unwrap()
        .timeout_in_millis = Some(5000);
    let mut obj = object(
        "a",
        1,
        serde_json::json!({"uri": "https://new.example.com", "timeoutInMillis": 29000}),
    );
    obj.metadata.generation = Some(2);
    let decision = decide(&obj, &acting(&ctx), &synced_status(stale_copy, 1))
        .await
        .unwrap();
    assert_eq!(decision.outcome, Outcome::Synced);
    assert_eq!(ctx.aws.count("UpdateIntegration"), 2);
    assert_eq!(ctx.aws.count("GetIntegration"), 0);
    let sent = decision.sent.unwrap();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].path, "/timeoutInMillis");
}

#[tokio::test]
async fn an_unreadable_answer_is_retryable_and_names_the_call() {
    let aws = FakeAws::with(&key(), live());
    aws.fail_next(
        "UpdateIntegration",
        AwsError::retryable(
            RetryKind::Server,
            "unreadable response (HTTP 200): expected value",
        )
        .in_call("UpdateIntegration"),
    );
    let ctx = context(aws);
    let obj = object(
        "a",
        1,
        serde_json::json!({"uri": "https://new.example.com"}),
    );
    let Err(Error::Aws(e)) =
        decide(&obj, &acting(&ctx), &ApiGatewayIntegrationStatus::default()).await
    else {
        panic!("expected an AWS error");
    };
    let outcome = outcome_of_error(&e, &crate::aws::Identity::operator());
    assert_eq!(outcome.reason(), "AwsError", "not a verdict on the spec");
    assert!(e.to_string().starts_with("UpdateIntegration: "), "{e}");
    // Only a 400 is InvalidSpec.
    let invalid = AwsError::Invalid {
        code: "BadRequestException".into(),
        message: "Invalid patch path".into(),
    };
    assert_eq!(
        outcome_of_error(&invalid, &crate::aws::Identity::operator()).reason(),
        "InvalidSpec"
    );
}

#[tokio::test]
async fn a_cached_object_older_than_our_status_write_is_stale_however_long_it_lags() {
    let ctx = context(FakeAws::default());
    let mut obj = object("a", 1, serde_json::json!({}));
    ctx.wrote_status("ns/a", Some("120".into()));
    obj.metadata.resource_version = Some("119".into());
    assert!(ctx.is_stale("ns/a", obj.resource_version()));
    assert!(
        ctx.is_stale("ns/a", obj.resource_version()),
        "still stale: no timer lets it through"
    );
    obj.metadata.resource_version = Some("120".into());
    assert!(!ctx.is_stale("ns/a", obj.resource_version()));
    obj.metadata.resource_version = Some("119".into());
    assert!(
        !ctx.is_stale("ns/a", obj.resource_version()),
        "caught up once: forgotten"
    );
}

#[tokio::test]
async fn a_failed_change_is_still_a_change_at_its_retry() {
    let aws = FakeAws::with(&key(), live());
    aws.fail_next(
        "UpdateIntegration",
        AwsError::retryable(RetryKind::Server, "InternalFailure"),
    );
    let ctx = context(aws);
    let mut obj = object(
        "a",
        1,
        serde_json::json!({"uri": "https://new.example.com"}),
    );
    obj.metadata.generation = Some(2);
    let status = synced_status(live(), 1);
    assert!(decide(&obj, &acting(&ctx), &status).await.is_err());
    // finish wrote the failure for generation 2; syncedGeneration stays at 1.
    let failed = Decision::without_aws(Outcome::AwsError("x".into()), None);
    let after_failure = next_status(&status, &failed, Vec::new(), Some(2));
    assert_eq!(after_failure.observed_generation, Some(2));
    assert_eq!(after_failure.synced_generation, Some(1));
    // The retry plans from the last answer: no read, one UpdateIntegration.
    let decision = decide(&obj, &acting(&ctx), &after_failure).await.unwrap();
    assert_eq!(decision.outcome, Outcome::Synced);
    assert_eq!(ctx.aws.count("GetIntegration"), 0);
    assert_eq!(ctx.aws.count("UpdateIntegration"), 2);
    assert_eq!(
        synced_generation(&next_status(&after_failure, &decision, Vec::new(), Some(2))),
        Some(2)
    );
}

#[tokio::test]
async fn a_re_create_is_decided_from_a_fresh_read_and_puts_the_responses_back() {
    let mut with_responses = live();
    let response = |pattern: &str| IntegrationResponse {
        status_code: None,
        selection_pattern: Some(pattern.into()),
        ..IntegrationResponse::default()
    };
    let mut responses = BTreeMap::new();
    for (code, pattern) in [("200", ""), ("404", ".*Not Found.*")] {
        let mut r = response(pattern);
        r.status_code = Some(code.into());
        responses.insert(code.to_string(), r);
    }
    with_responses.integration_responses = Some(responses.clone());
    let ctx = context(FakeAws::with(&key(), with_responses));
    // The status copy is fresh and says HTTP without responses: it must not be trusted for a
    // re-create.
    ctx.remember("ns/a", Duration::from_secs(600));
    let obj = object(
        "a",
        1,
        serde_json::json!({"type": "HTTP_PROXY", "integrationHttpMethod": "POST",
                           "uri": "https://old.example.com", "managementPolicy": "CreateOrUpdate"}),
    );
    let mut status = synced_status(live(), 1);
    status.synced_generation = Some(0);
    let decision = decide(&obj, &acting(&ctx), &status).await.unwrap();
    assert_eq!(decision.outcome, Outcome::Synced);
    let calls = ctx.aws.calls.lock().unwrap().clone();
    assert_eq!(
        calls,
        [
            "GetIntegration",
            "PutIntegration",
            "PutIntegrationResponse",
            "PutIntegrationResponse"
        ]
    );
    let now = ctx.aws.get(&key()).unwrap();
    assert_eq!(now.integration_type.as_deref(), Some("HTTP_PROXY"));
    assert_eq!(now.integration_responses, Some(responses.clone()));
    assert_eq!(
        decision.integration.unwrap().integration_responses,
        Some(responses)
    );
}

#[tokio::test]
async fn responses_aws_kept_across_a_re_create_cost_nothing() {
    let mut with_responses = live();
    let mut responses = BTreeMap::new();
    responses.insert(
        "200".to_string(),
        IntegrationResponse {
            status_code: Some("200".into()),
            ..IntegrationResponse::default()
        },
    );
    with_responses.integration_responses = Some(responses);
    let mut aws = FakeAws::with(&key(), with_responses);
    aws.put_keeps_responses = true;
    let ctx = context(aws);
    let obj = object(
        "a",
        1,
        serde_json::json!({"type": "MOCK", "managementPolicy": "CreateOrUpdate"}),
    );
    let decision = decide(&obj, &acting(&ctx), &ApiGatewayIntegrationStatus::default())
        .await
        .unwrap();
    assert_eq!(decision.outcome, Outcome::Synced);
    assert_eq!(ctx.aws.count("PutIntegrationResponse"), 0);
}

#[tokio::test]
async fn requires_replacement_is_not_reported_from_a_snapshot_or_a_status_copy() {
    let ctx = context(FakeAws::with(&key(), live()));
    ctx.remember("ns/a", Duration::from_secs(600));
    // The copy says MOCK, AWS says HTTP: the spec (HTTP) matches AWS, not the copy.
    let mut copy = live();
    copy.integration_type = Some("MOCK".into());
    let obj = object("a", 1, serde_json::json!({"type": "HTTP"}));
    let decision = decide(&obj, &acting(&ctx), &synced_status(copy, 1))
        .await
        .unwrap();
    assert_eq!(decision.outcome, Outcome::Synced);
    assert_eq!(ctx.aws.count("GetIntegration"), 1);
    assert_eq!(ctx.aws.count("PutIntegration"), 0);
}

#[tokio::test]
async fn a_target_that_resolves_elsewhere_is_target_changed_with_zero_writes() {
    let ctx = context(FakeAws::with(&key(), live()));
    let obj = object(
        "a",
        1,
        serde_json::json!({"region": "eu-west-1", "uri": "https://new.example.com"}),
    );
    let decision = decide(&obj, &acting(&ctx), &synced_status(live(), 1))
        .await
        .unwrap();
    match &decision.outcome {
        Outcome::TargetChanged(message) => {
            assert!(
                message.contains("eu-west-1") && message.contains("us-east-1"),
                "{message}"
            )
        }
        other => panic!("expected TargetChanged, got {other:?}"),
    }
    assert_eq!(ctx.aws.count("UpdateIntegration"), 0);
    assert_eq!(ctx.aws.count("PutIntegration"), 0);
    // The pinned target stays in status.
    let next = next_status(&synced_status(live(), 1), &decision, Vec::new(), Some(1));
    assert_eq!(next.target, Some(resolved(&key())));
}

#[tokio::test]
async fn a_failed_deletion_is_an_error_and_a_younger_claimant_is_the_successor() {
    let aws = FakeAws::with(&key(), live());
    aws.fail_next(
        "DeleteIntegration",
        AwsError::retryable(RetryKind::Server, "InternalFailure"),
    );
    let ctx = context(aws);
    let mut obj = object("a", 1, serde_json::json!({"deletionPolicy": "Delete"}));
    obj.status = Some(synced_status(live(), 1));
    assert!(delete_in_aws(&obj, &acting(&ctx)).await.is_err());
    assert!(ctx.aws.get(&key()).is_some(), "still there");
    // A younger object claims the same integration: it takes it over.
    let younger = Arc::new(object("b", 2, serde_json::json!({})));
    let peers = [younger];
    let peers: Vec<_> = peers
        .iter()
        .map(|p| Arc::new(CachedIntegration::of(p)))
        .collect();
    ctx.set_peers(Box::new(move || peers.clone()));
    assert_eq!(ctx.successor(&obj, &resolved(&key())), Some("ns/b".into()));
    delete_in_aws(&obj, &acting(&ctx)).await.unwrap();
    assert!(ctx.aws.get(&key()).is_none());
}

#[tokio::test]
async fn an_invalid_spec_waits_a_resync_period_after_a_restart() {
    let ctx = context(FakeAws::default());
    let obj = object("a", 1, serde_json::json!({}));
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let status = ApiGatewayIntegrationStatus {
        observed_generation: Some(1),
        conditions: conditions_for(&Outcome::InvalidSpec("400".into()), &[], Some(1), &now),
        ..ApiGatewayIntegrationStatus::default()
    };
    let wait = invalid_spec_wait(&obj, &status, &ctx).unwrap();
    assert!(
        wait > Duration::from_secs(590) && wait <= Duration::from_secs(600),
        "{wait:?}"
    );
    // A new generation is tried at once.
    let mut changed = obj.clone();
    changed.metadata.generation = Some(2);
    assert_eq!(invalid_spec_wait(&changed, &status, &ctx), None);
}

fn with_responses(responses: serde_json::Value) -> Integration {
    let mut integration = live();
    integration.integration_responses = Some(serde_json::from_value(responses).unwrap());
    integration
}

fn two_responses() -> Integration {
    with_responses(serde_json::json!({
        "200": {"statusCode": "200", "responseTemplates": {"application/json": "{}"},
                "responseParameters": {"method.response.header.x-id": "integration.response.header.x-id"}},
        "404": {"statusCode": "404", "selectionPattern": "4\\d\\d"},
    }))
}

fn response_calls(ctx: &Context<FakeAws>) -> Vec<&'static str> {
    ctx.aws
        .calls
        .lock()
        .unwrap()
        .iter()
        .copied()
        .filter(|c| c.contains("IntegrationResponse"))
        .collect()
}

#[tokio::test]
async fn one_call_per_changed_response_and_none_for_the_unchanged() {
    let ctx = context(FakeAws::with(&key(), two_responses()));
    let obj = object(
        "a",
        100,
        serde_json::json!({"integrationResponses": {
            "200": {"responseTemplates": {"application/json": "{\"ok\":true}"}},
            "404": {"selectionPattern": "4\\d\\d"},
            "500": {"selectionPattern": "5\\d\\d"},
        }}),
    );
    let decision = decide(&obj, &acting(&ctx), &ApiGatewayIntegrationStatus::default())
        .await
        .unwrap();
    assert_eq!(decision.outcome, Outcome::Synced);
    assert_eq!(
        response_calls(&ctx),
        vec!["PutIntegrationResponse", "UpdateIntegrationResponse"],
        "500 created, 404 untouched, then 200 (the default response goes last) patched"
    );
    assert_eq!(ctx.aws.count("UpdateIntegration"), 0);
    let after = ctx.aws.get(&key()).unwrap().integration_responses.unwrap();
    assert_eq!(
        after["200"].response_parameters,
        two_responses().integration_responses.unwrap()["200"].response_parameters,
        "an unmanaged field of a managed response is kept"
    );
    let sent = decision.response_calls.unwrap();
    assert_eq!(sent.len(), 2);
    assert_eq!(
        decision.integration.unwrap().integration_responses,
        Some(after),
        "status holds AWS's answers"
    );

    // Planning again against AWS costs nothing.
    ctx.aws.calls.lock().unwrap().clear();
    let again = decide(&obj, &acting(&ctx), &ApiGatewayIntegrationStatus::default())
        .await
        .unwrap();
    assert_eq!(again.outcome, Outcome::Synced);
    assert!(response_calls(&ctx).is_empty());
}

#[tokio::test]
async fn an_empty_map_deletes_every_response_and_unset_manages_none() {
    let ctx = context(FakeAws::with(&key(), two_responses()));
    let unset = object("a", 100, serde_json::json!({}));
    decide(
        &unset,
        &acting(&ctx),
        &ApiGatewayIntegrationStatus::default(),
    )
    .await
    .unwrap();
    assert!(response_calls(&ctx).is_empty());
    let cleared = object("a", 100, serde_json::json!({"integrationResponses": {}}));
    let decision = decide(
        &cleared,
        &acting(&ctx),
        &ApiGatewayIntegrationStatus::default(),
    )
    .await
    .unwrap();
    assert_eq!(decision.outcome, Outcome::Synced);
    assert_eq!(
        response_calls(&ctx),
        vec!["DeleteIntegrationResponse", "DeleteIntegrationResponse"]
    );
    assert_eq!(
        ctx.aws.get(&key()).unwrap().integration_responses,
        Some(BTreeMap::new())
    );
}

#[tokio::test]
async fn a_spec_change_with_a_response_change_is_one_update_then_the_response_call() {
    let ctx = context(FakeAws::with(&key(), two_responses()));
    let mut obj = object(
        "a",
        100,
        serde_json::json!({"uri": "https://new.example.com", "integrationResponses": {
            "200": {"responseTemplates": {"application/json": "{}"}},
            "404": {"selectionPattern": "4.."},
        }}),
    );
    obj.metadata.generation = Some(2);
    // The status copy is from generation 1: a spec change plans from it.
    let status = synced_status(two_responses(), 1);
    let decision = decide(&obj, &acting(&ctx), &status).await.unwrap();
    assert_eq!(decision.outcome, Outcome::Synced);
    assert_eq!(
        *ctx.aws.calls.lock().unwrap(),
        vec!["UpdateIntegration", "UpdateIntegrationResponse"],
        "no read: the answer to UpdateIntegration carries the responses"
    );
}

#[tokio::test]
async fn a_response_call_is_not_planned_from_an_old_status_copy() {
    let ctx = context(FakeAws::with(&key(), two_responses()));
    let mut obj = object(
        "a",
        100,
        serde_json::json!({"integrationResponses": {
            "200": {"responseTemplates": {"application/json": "{}"}},
            "404": {"selectionPattern": "4.."},
        }}),
    );
    obj.metadata.generation = Some(2);
    // The status copy lacks a response AWS has now; a Put planned from it would be wrong.
    let status = synced_status(live(), 1);
    decide(&obj, &acting(&ctx), &status).await.unwrap();
    assert_eq!(
        *ctx.aws.calls.lock().unwrap(),
        vec!["GetIntegration", "UpdateIntegrationResponse"]
    );
}

#[tokio::test]
async fn a_re_create_puts_back_the_spec_responses_and_the_unmanaged_ones() {
    let ctx = context(FakeAws::with(&key(), two_responses()));
    let obj = object(
        "a",
        100,
        serde_json::json!({"type": "MOCK", "managementPolicy": "CreateOrUpdate",
            "integrationResponses": {"200": {"responseTemplates": {"application/json": "{\"mock\":1}"}}}}),
    );
    let decision = decide(&obj, &acting(&ctx), &ApiGatewayIntegrationStatus::default())
        .await
        .unwrap();
    assert_eq!(decision.outcome, Outcome::Synced);
    let after = ctx.aws.get(&key()).unwrap();
    assert_eq!(after.integration_type.as_deref(), Some("MOCK"));
    let responses = after.integration_responses.unwrap();
    assert_eq!(
        responses.keys().collect::<Vec<_>>(),
        vec!["200"],
        "spec.integrationResponses is authoritative"
    );
    assert_eq!(
        responses["200"].response_parameters,
        two_responses().integration_responses.unwrap()["200"].response_parameters,
        "the unmanaged parameters of 200 came back"
    );
    assert_eq!(
        responses["200"].response_templates.as_ref().unwrap()["application/json"],
        "{\"mock\":1}"
    );

    // Without the field every live response comes back as it was.
    let ctx = context(FakeAws::with(&key(), two_responses()));
    let unmanaged = object(
        "a",
        100,
        serde_json::json!({"type": "MOCK", "managementPolicy": "CreateOrUpdate"}),
    );
    decide(
        &unmanaged,
        &acting(&ctx),
        &ApiGatewayIntegrationStatus::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        ctx.aws.get(&key()).unwrap().integration_responses,
        two_responses().integration_responses
    );
}

#[tokio::test]
async fn a_missing_integration_is_created_with_its_responses() {
    let ctx = context(FakeAws::default());
    let obj = object(
        "a",
        100,
        serde_json::json!({"type": "MOCK", "managementPolicy": "CreateOrUpdate",
            "integrationResponses": {"200": {}, "500": {"selectionPattern": "5\\d\\d"}}}),
    );
    let decision = decide(&obj, &acting(&ctx), &ApiGatewayIntegrationStatus::default())
        .await
        .unwrap();
    assert_eq!(decision.outcome, Outcome::Synced);
    assert_eq!(
        response_calls(&ctx),
        vec!["PutIntegrationResponse", "PutIntegrationResponse"]
    );
    let responses = ctx.aws.get(&key()).unwrap().integration_responses.unwrap();
    assert_eq!(responses.keys().collect::<Vec<_>>(), vec!["200", "500"]);
}

#[tokio::test]
async fn observe_reports_a_response_drift_by_status_code_without_values_or_calls() {
    let ctx = context(FakeAws::with(&key(), two_responses()));
    let obj = object(
        "a",
        100,
        serde_json::json!({"managementPolicy": "Observe", "integrationResponses": {
            "200": {"responseTemplates": {"application/json": "secret-template"}},
            "404": {"selectionPattern": "4\\d\\d"},
        }}),
    );
    let decision = decide(&obj, &acting(&ctx), &ApiGatewayIntegrationStatus::default())
        .await
        .unwrap();
    match &decision.outcome {
        Outcome::Drifted(message) => {
            assert!(
                message.contains("UpdateIntegrationResponse 200"),
                "{message}"
            );
            assert!(!message.contains("secret-template"), "{message}");
        }
        other => panic!("expected Drifted, got {other:?}"),
    }
    assert!(response_calls(&ctx).is_empty());
}

#[tokio::test]
async fn a_response_aws_does_not_take_is_not_converged_and_bounded() {
    let ctx = context(FakeAws::with(&key(), two_responses()));
    // AWS answers the Put with something else: the fake fails the first call and the
    // response stays as it was, so the plan asks again. A second call for the same code in
    // one reconcile is not sent.
    let obj = object(
        "a",
        100,
        serde_json::json!({"integrationResponses": {
            "200": {"responseTemplates": {"application/json": "{}"}},
            "404": {"selectionPattern": "4\\d\\d", "contentHandling": "CONVERT_TO_TEXT"},
        }}),
    );
    ctx.aws.ignore_responses.lock().unwrap().push("404".into());
    let decision = decide(&obj, &acting(&ctx), &ApiGatewayIntegrationStatus::default())
        .await
        .unwrap();
    match &decision.outcome {
        Outcome::NotConverged(message) => {
            assert!(message.contains("/integrationResponses/404"), "{message}")
        }
        other => panic!("expected NotConverged, got {other:?}"),
    }
    assert_eq!(response_calls(&ctx), vec!["PutIntegrationResponse"]);
}

#[tokio::test]
async fn a_put_without_a_method_response_is_invalid_spec_naming_the_field() {
    let ctx = context(FakeAws::with(&key(), live()));
    ctx.aws.fail_next(
        "PutIntegrationResponse",
        AwsError::NotFound {
            message: "PutIntegrationResponse: Invalid Response status code specified".into(),
        },
    );
    let obj = object(
        "a",
        100,
        serde_json::json!({"integrationResponses": {"418": {"selectionPattern": "x"}}}),
    );
    match decide(&obj, &acting(&ctx), &ApiGatewayIntegrationStatus::default()).await {
        Err(Error::Aws(e)) => match outcome_of_error(&e, &crate::aws::Identity::operator()) {
            Outcome::InvalidSpec(message) => {
                assert!(
                    message.contains("spec.integrationResponses.418"),
                    "{message}"
                )
            }
            other => panic!("expected InvalidSpec, got {other:?}"),
        },
        other => panic!("expected an AWS error, got {:?}", other.map(|d| d.outcome)),
    }
}

fn key_on(resource: &str) -> IntegrationKey {
    IntegrationKey {
        resource_id: resource.into(),
        ..key()
    }
}

/// Two bare methods on one API, both claimed by an object (so the API is read whole).
fn two_bare_methods() -> Context<FakeAws> {
    let aws = FakeAws::default();
    aws.bare_methods
        .lock()
        .unwrap()
        .extend([key_on("res1"), key_on("res2")]);
    let ctx = context(aws);
    ctx.snapshots.join("ns/a", &key_on("res1"));
    ctx.snapshots.join("ns/b", &key_on("res2"));
    ctx
}

fn creating(name: &str, resource: &str) -> ApiGatewayIntegration {
    object(
        name,
        100,
        serde_json::json!({"resourceId": resource, "type": "MOCK",
            "managementPolicy": "CreateOrUpdate"}),
    )
}

#[tokio::test]
async fn creating_from_a_recent_listing_costs_one_call() {
    let ctx = two_bare_methods();
    for (name, resource) in [("a", "res1"), ("b", "res2")] {
        let decision = decide(
            &creating(name, resource),
            &acting(&ctx),
            &ApiGatewayIntegrationStatus::default(),
        )
        .await
        .unwrap();
        assert_eq!(decision.outcome, Outcome::Synced);
    }
    assert_eq!(
        *ctx.aws.calls.lock().unwrap(),
        vec!["GetResources", "PutIntegration", "PutIntegration"],
        "one listing of the API, then one PutIntegration per integration, no GetIntegration"
    );
}

#[tokio::test(start_paused = true)]
async fn an_integration_created_after_an_old_listing_is_never_replaced() {
    let ctx = two_bare_methods();
    decide(
        &creating("b", "res2"),
        &acting(&ctx),
        &ApiGatewayIntegrationStatus::default(),
    )
    .await
    .unwrap();
    // Another tool creates res1's integration, with a response, after the listing.
    let mut theirs = with_responses(serde_json::json!({"200": {"statusCode": "200"}}));
    theirs.integration_type = Some("MOCK".into());
    theirs.uri = None;
    ctx.aws
        .integrations
        .lock()
        .unwrap()
        .insert(key_on("res1"), theirs);
    tokio::time::advance(crate::snapshot::CREATE_TRUST + Duration::from_secs(1)).await;
    let decision = decide(
        &creating("a", "res1"),
        &acting(&ctx),
        &ApiGatewayIntegrationStatus::default(),
    )
    .await
    .unwrap();
    assert_eq!(decision.outcome, Outcome::Synced);
    assert_eq!(
        ctx.aws.count("PutIntegration"),
        1,
        "only b's: a's integration exists and is updated, not replaced: {:?}",
        ctx.aws.calls.lock().unwrap()
    );
    assert_eq!(
        ctx.aws.count("GetResources"),
        2,
        "the old listing was read again"
    );
    let now = ctx.aws.get(&key_on("res1")).unwrap();
    assert_eq!(now.integration_type.as_deref(), Some("MOCK"));
    assert!(
        now.integration_responses
            .is_some_and(|r| r.contains_key("200")),
        "what the spec does not manage stays"
    );
}

#[test]
fn a_transient_drift_failure_keeps_ready_for_a_few_tries() {
    let obj = object("a", 100, serde_json::json!({}));
    let mut status = synced_status(live(), 1);
    status.conditions = conditions_for(
        &Outcome::Synced,
        &[],
        Some(1),
        &Time(k8s_openapi::jiff::Timestamp::now()),
    );
    let throttled = AwsError::retryable(RetryKind::Throttled, "GetResources: Too Many Requests");
    assert!(transient_drift_failure(&obj, &status, &throttled, 0));
    assert!(transient_drift_failure(&obj, &status, &throttled, 1));
    assert!(
        !transient_drift_failure(&obj, &status, &throttled, TRANSIENT_DRIFT_FAILURES - 1),
        "the third failure in a row is no longer transient"
    );
    let denied = AwsError::Unauthorized {
        code: "AccessDeniedException".into(),
        message: "no".into(),
    };
    assert!(!transient_drift_failure(&obj, &status, &denied, 0));
    let mut changed = obj.clone();
    changed.metadata.generation = Some(2);
    assert!(
        !transient_drift_failure(&changed, &status, &throttled, 0),
        "a spec change's failure is reported"
    );
    status.conditions.clear();
    assert!(!transient_drift_failure(&obj, &status, &throttled, 0));
}
