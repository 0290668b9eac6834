//! Unit tests of the stage controller's decisions (`decide_stage`), against the in-memory API
//! Gateway. The end-to-end tests (tests/e2e/test_stages.py) prove the same against the real API
//! server and the emulator.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;

use super::*;
use crate::aws::stages::fake::FakeStages;
use crate::cache::CachedIntegration;
use crate::crd::ApiGatewayIntegration;
use crate::crd::{ApiGatewayIntegrationSpec, ApiGatewayIntegrationStatus, ResolvedTarget};
use crate::stage::types::ApiGatewayStageSpec;

fn key() -> StageKey {
    StageKey {
        region: "us-east-1".into(),
        rest_api_id: "api1".into(),
        stage_name: "prod".into(),
    }
}

/// The context acting as the operator's own identity.
fn acting(
    ctx: &Context<FakeStages>,
) -> crate::access::gate::Admitted<'_, Context<FakeStages>, FakeStages> {
    crate::access::gate::Admitted::operator(ctx, ctx.aws.clone())
}

fn context(aws: FakeStages, members: Vec<ApiGatewayIntegration>) -> Context<FakeStages> {
    let (client, settings) = (
        crate::kit::testing::client(),
        crate::kit::testing::settings(),
    );
    let ctx = Context::new(client, Arc::new(aws), settings, Arc::new(Metrics::new()));
    let members: Vec<Arc<CachedIntegration>> = members
        .iter()
        .map(|m| Arc::new(CachedIntegration::of(m)))
        .collect();
    ctx.set_integrations(Box::new(move || members.clone()));
    ctx
}

fn stage_obj(spec: serde_json::Value) -> ApiGatewayStage {
    let mut full =
        serde_json::json!({"restApiId": "api1", "stageName": "prod", "settleSeconds": 0});
    full.as_object_mut()
        .unwrap()
        .extend(spec.as_object().unwrap().clone());
    let spec: ApiGatewayStageSpec = serde_json::from_value(full).unwrap();
    let mut obj = ApiGatewayStage::new("prod", spec);
    obj.metadata = ObjectMeta {
        name: Some("prod".into()),
        namespace: Some("ns".into()),
        generation: Some(1),
        resource_version: Some("1".into()),
        ..ObjectMeta::default()
    };
    obj
}

/// A selected integration, settled at its generation, last written at `written` (seconds since
/// the epoch), with Ready reason `reason`.
fn integration(
    name: &str,
    written: Option<i64>,
    settled: bool,
    reason: &str,
) -> ApiGatewayIntegration {
    let spec: ApiGatewayIntegrationSpec = serde_json::from_value(serde_json::json!({
        "restApiId": "api1", "resourceId": name, "httpMethod": "POST"
    }))
    .unwrap();
    let mut obj = ApiGatewayIntegration::new(name, spec);
    obj.metadata.namespace = Some("ns".into());
    obj.metadata.generation = Some(2);
    let now = Time(Timestamp::now());
    obj.status = Some(ApiGatewayIntegrationStatus {
        observed_generation: Some(2),
        synced_generation: Some(if settled { 2 } else { 1 }),
        target: Some(ResolvedTarget {
            rest_api_id: "api1".into(),
            resource_id: name.into(),
            http_method: "POST".into(),
            region: "us-east-1".into(),
        }),
        last_write_time: written.map(|s| MicroTime(Timestamp::from_second(s).unwrap())),
        conditions: crate::conditions::conditions_for(
            &match reason {
                "Synced" => Outcome::Synced,
                "InvalidSpec" => Outcome::InvalidSpec("400".into()),
                _ => Outcome::AwsError("500".into()),
            },
            &[],
            Some(2),
            &now,
        ),
        ..ApiGatewayIntegrationStatus::default()
    });
    obj
}

fn ago(secs: i64) -> i64 {
    Timestamp::now().as_second() - secs
}

fn our_status(deployment: &str, at: i64) -> ApiGatewayStageStatus {
    ApiGatewayStageStatus {
        observed_generation: Some(1),
        deployment_id: Some(deployment.into()),
        deployed_at: Some(MicroTime(Timestamp::from_second(at).unwrap())),
        target: Some(StageTarget {
            rest_api_id: "api1".into(),
            region: "us-east-1".into(),
            stage_name: "prod".into(),
        }),
        ..ApiGatewayStageStatus::default()
    }
}

#[tokio::test]
async fn a_first_reconcile_adopts_the_served_deployment_and_deploys_nothing_unwritten() {
    let aws = FakeStages::with_stage(&key(), "old", ago(100) as f64);
    let ctx = context(aws, vec![integration("a", Some(ago(200)), true, "Synced")]);
    let obj = stage_obj(serde_json::json!({}));
    let decision = decide_stage(&obj, &acting(&ctx), &ApiGatewayStageStatus::default())
        .await
        .unwrap();
    assert!(decision.outcome.is_ready(), "{:?}", decision.outcome);
    assert_eq!(ctx.aws.count("CreateDeployment"), 0);
    assert_eq!(decision.adopted.map(|(id, _)| id), Some("old".to_string()));
}

#[tokio::test]
async fn a_first_reconcile_deploys_once_when_the_stage_is_older_than_a_write() {
    let aws = FakeStages::with_stage(&key(), "old", ago(100) as f64);
    let ctx = context(aws, vec![integration("a", Some(ago(50)), true, "Synced")]);
    let decision = decide_stage(
        &stage_obj(serde_json::json!({})),
        &acting(&ctx),
        &ApiGatewayStageStatus::default(),
    )
    .await
    .unwrap();
    assert_eq!(ctx.aws.count("CreateDeployment"), 1);
    assert!(decision.outcome.is_ready(), "{:?}", decision.outcome);
}

#[tokio::test]
async fn many_writes_are_one_deployment_after_the_quiet_time() {
    let aws = FakeStages::with_stage(&key(), "ours", ago(100) as f64);
    let members = (0..20)
        .map(|i| integration(&format!("i{i}"), Some(ago(30)), true, "Synced"))
        .collect();
    let ctx = context(aws, members);
    let status = our_status("ours", ago(100));
    let waiting = decide_stage(
        &stage_obj(serde_json::json!({"settleSeconds": 60})),
        &acting(&ctx),
        &status,
    )
    .await
    .unwrap();
    assert!(
        matches!(waiting.outcome, Outcome::Pending(_)),
        "{:?}",
        waiting.outcome
    );
    assert_eq!(ctx.aws.count("CreateDeployment"), 0);
    let wait = waiting.requeue_after.unwrap();
    assert!(
        wait > Duration::from_secs(25) && wait <= Duration::from_secs(30),
        "{wait:?}"
    );
    let decision = decide_stage(
        &stage_obj(serde_json::json!({"settleSeconds": 10})),
        &acting(&ctx),
        &status,
    )
    .await
    .unwrap();
    assert_eq!(ctx.aws.count("CreateDeployment"), 1);
    assert!(decision.outcome.is_ready());
    assert_eq!(decision.rollout.unwrap().published.integrations, 20);
}

#[tokio::test]
async fn a_blocked_integration_is_listed_and_does_not_hold_the_deployment() {
    let aws = FakeStages::with_stage(&key(), "ours", ago(100) as f64);
    let ctx = context(
        aws,
        vec![
            integration("good", Some(ago(30)), true, "Synced"),
            integration("bad", None, false, "InvalidSpec"),
        ],
    );
    let decision = decide_stage(
        &stage_obj(serde_json::json!({})),
        &acting(&ctx),
        &our_status("ours", ago(100)),
    )
    .await
    .unwrap();
    assert_eq!(ctx.aws.count("CreateDeployment"), 1);
    // The message of the reconcile that deploys names the blocked one too, as
    // status.blockedIntegrations does (it said "every selected integration" alone).
    let message = decision.outcome.message();
    assert!(
        message.contains("not serving the spec of (a person must act): ns/bad (InvalidSpec)"),
        "{message}"
    );
    assert_eq!(
        decision.rollout.unwrap().blocked,
        vec!["ns/bad (InvalidSpec)"]
    );
}

#[tokio::test]
async fn a_retrying_integration_holds_the_deployment_back() {
    let aws = FakeStages::with_stage(&key(), "ours", ago(100) as f64);
    let ctx = context(
        aws,
        vec![
            integration("good", Some(ago(30)), true, "Synced"),
            integration("slow", None, false, "AwsError"),
        ],
    );
    let decision = decide_stage(
        &stage_obj(serde_json::json!({})),
        &acting(&ctx),
        &our_status("ours", ago(100)),
    )
    .await
    .unwrap();
    assert_eq!(ctx.aws.count("CreateDeployment"), 0);
    assert!(matches!(decision.outcome, Outcome::Pending(_)));
}

#[tokio::test]
async fn a_stage_moved_elsewhere_is_drifted_and_not_fought_until_a_write() {
    let aws = FakeStages::with_stage(&key(), "rollback", ago(500) as f64);
    let ctx = context(aws, vec![integration("a", Some(ago(200)), true, "Synced")]);
    let status = our_status("ours", ago(100));
    let decision = decide_stage(&stage_obj(serde_json::json!({})), &acting(&ctx), &status)
        .await
        .unwrap();
    match &decision.outcome {
        Outcome::Drifted(m) => assert!(m.contains("rollback") && m.contains("ours"), "{m}"),
        other => panic!("expected Drifted, got {other:?}"),
    }
    assert_eq!(ctx.aws.count("CreateDeployment"), 0);

    // A write after our deployment deploys again.
    let aws = FakeStages::with_stage(&key(), "rollback", ago(500) as f64);
    let ctx = context(aws, vec![integration("a", Some(ago(20)), true, "Synced")]);
    decide_stage(&stage_obj(serde_json::json!({})), &acting(&ctx), &status)
        .await
        .unwrap();
    assert_eq!(ctx.aws.count("CreateDeployment"), 1);
}

#[tokio::test]
async fn a_missing_stage_is_target_not_found_under_update_and_created_under_create_or_update() {
    let ctx = context(FakeStages::default(), vec![]);
    let decision = decide_stage(
        &stage_obj(serde_json::json!({})),
        &acting(&ctx),
        &ApiGatewayStageStatus::default(),
    )
    .await
    .unwrap();
    assert!(matches!(decision.outcome, Outcome::TargetNotFound(_)));
    assert_eq!(ctx.aws.count("CreateDeployment"), 0);
    let obj = stage_obj(
        serde_json::json!({"managementPolicy": "CreateOrUpdate", "variables": {"v": "1"}}),
    );
    let decision = decide_stage(&obj, &acting(&ctx), &ApiGatewayStageStatus::default())
        .await
        .unwrap();
    assert_eq!(ctx.aws.count("CreateDeployment"), 1);
    assert!(decision.outcome.is_ready());
    assert_eq!(
        ctx.aws.stages.lock().unwrap()[&key()].variables,
        Some([("v".to_string(), "1".to_string())].into())
    );
}

#[tokio::test]
async fn variables_are_one_update_stage_and_observe_only_reports() {
    let aws = FakeStages::with_stage(&key(), "ours", ago(100) as f64);
    let ctx = context(aws, vec![]);
    let obj = stage_obj(serde_json::json!({"variables": {"a": "1", "b": "2"}}));
    decide_stage(&obj, &acting(&ctx), &our_status("ours", ago(100)))
        .await
        .unwrap();
    assert_eq!(ctx.aws.count("UpdateStage"), 1);
    let observe =
        stage_obj(serde_json::json!({"variables": {"a": "9"}, "managementPolicy": "Observe"}));
    let decision = decide_stage(&observe, &acting(&ctx), &our_status("ours", ago(100)))
        .await
        .unwrap();
    assert!(matches!(decision.outcome, Outcome::Drifted(_)));
    assert_eq!(ctx.aws.count("UpdateStage"), 1, "Observe never writes");
}
