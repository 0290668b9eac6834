//! The stage controller: `reconcile` makes one stage serve what its selected integrations say.
//!
//! reconcile, step by step (DESIGN.md "ApiGatewayStage"):
//! 1. deletion: with `deletionPolicy: Delete`, DeleteStage (404 = done), then drop the
//!    finalizer; otherwise nothing in AWS;
//! 2. the finalizer follows `deletionPolicy`; the pause annotation stops here;
//! 3. resolve the REST API (id, or name via the cached lookup) and pin it;
//! 4. the rollout, from the controller's cache of integrations only (no AWS call): which
//!    selected integrations were written since the stage's last deployment, which are still
//!    changing, which are blocked;
//! 5. the live Stage: the status copy while it is fresh, else GetStage (a missing stage is
//!    TargetNotFound under Update and Observe, and is created by the first deployment under
//!    CreateOrUpdate). On the first reconcile, the stage's current deployment's createdDate
//!    stands in for "the last deployment";
//! 6. variables: one UpdateStage with every variable change;
//! 7. deploy (`plan::decide`): nothing, a wait (requeued), or one CreateDeployment with the
//!    stage name, within the deployment quota. A stage someone else pointed elsewhere is
//!    Drifted, not fought, until a selected integration is written again;
//! 8. write status with server-side apply, only when it changed.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use tracing::{info, instrument, warn};

use crate::access::check::Governed;
use crate::access::gate::{refused_delete, Admitted};
use crate::access::Refusal;
use crate::aws::stages::{Stage, StageApi, StageKey};
use crate::aws::{AwsError, Priority};
use crate::conditions::{conditions_for, ready_reason, Outcome};
use crate::controller::{Error, Scope};
use crate::crd::{DeletionPolicy, ManagementPolicy};
use crate::kit::{
    annotation_is_true, apply_status, follow_deletion_policy, forget_expired, object_key,
    outcome_of_error, remove_finalizer, Kit, Settings,
};
use crate::metrics::Metrics;
use crate::stage::plan::{decide, member, rollout, selects, variable_ops, Deploy, Rollout};
use crate::stage::types::{ApiGatewayStage, ApiGatewayStageStatus, StageTarget};
use crate::{FINALIZER, ORPHAN_ANNOTATION, PAUSE_ANNOTATION};

/// Lists the integrations the operator watches (the integration controller's cache).
pub type Integrations = Box<dyn Fn() -> Vec<Arc<crate::cache::CachedIntegration>> + Send + Sync>;

/// Shared by every stage reconcile; the kit's parts through `Deref`.
pub struct Context<A: StageApi> {
    kit: Kit,
    pub aws: Arc<A>,
    integrations: OnceLock<Integrations>,
}

impl<A: StageApi> std::ops::Deref for Context<A> {
    type Target = Kit;

    fn deref(&self) -> &Kit {
        &self.kit
    }
}

impl<A: StageApi> Context<A> {
    pub fn new(
        client: kube::Client,
        aws: Arc<A>,
        settings: Settings,
        metrics: Arc<Metrics>,
    ) -> Self {
        Context {
            kit: Kit::new("stage", client, settings, metrics),
            aws,
            integrations: OnceLock::new(),
        }
    }

    /// Where the stage finds the integrations (set once, by `run`).
    pub fn set_integrations(&self, integrations: Integrations) {
        let _ = self.integrations.set(integrations);
    }

    fn integrations(&self) -> Vec<Arc<crate::cache::CachedIntegration>> {
        self.integrations
            .get()
            .map(|list| list())
            .unwrap_or_default()
    }
}

/// What a stage reconcile decided, before status is written.
struct Decision {
    outcome: Outcome,
    stage: Option<Stage>,
    target: Option<StageTarget>,
    rollout: Option<Rollout>,
    /// A deployment made now: its id and when.
    deployed: Option<(String, Timestamp)>,
    /// The deployment the stage served at the first reconcile, and when it was made.
    adopted: Option<(String, Timestamp)>,
    wrote_aws: bool,
    requeue_after: Option<Duration>,
}

impl Decision {
    fn without_aws(outcome: Outcome, requeue_after: Option<Duration>) -> Self {
        Decision {
            outcome,
            stage: None,
            target: None,
            rollout: None,
            deployed: None,
            adopted: None,
            wrote_aws: false,
            requeue_after,
        }
    }
}

#[instrument(skip_all, fields(stage = %object_key(&*obj)))]
pub async fn reconcile<A: StageApi>(
    obj: Arc<ApiGatewayStage>,
    ctx: Arc<Context<A>>,
) -> Result<Action, Error> {
    let started = Instant::now();
    ctx.starting(&*obj);
    let observed = obj.status.as_ref().and_then(|s| s.observed_generation);
    if let Some(wait) = ctx.hold_back(&*obj, observed) {
        return Ok(Action::requeue(wait));
    }
    let result = reconcile_inner(&obj, &ctx).await;
    ctx.reconciled(&result, started);
    result
}

async fn reconcile_inner<A: StageApi>(
    obj: &ApiGatewayStage,
    ctx: &Context<A>,
) -> Result<Action, Error> {
    let api: Api<ApiGatewayStage> =
        Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
    let paused = annotation_is_true(obj, PAUSE_ANNOTATION);

    // 1. Deletion.
    if obj.meta().deletion_timestamp.is_some() {
        return delete(&api, obj, ctx, paused).await;
    }

    // 2. Access: the access admitting the namespace, and what it allows; no AWS call before.
    let ctx = match admit(obj, ctx).await {
        Ok(acting) => acting,
        Err(refusal) => return forbidden(&api, obj, ctx, refusal).await,
    };

    // 3. The finalizer follows deletionPolicy; pause stops all AWS calls.
    let delete_policy = obj.spec.deletion_policy == DeletionPolicy::Delete;
    let patched = follow_deletion_policy(&api, obj, delete_policy).await?;
    let obj = patched.as_ref().unwrap_or(obj);
    if paused {
        return finish(
            &api,
            obj,
            &ctx,
            Decision::without_aws(Outcome::Paused, None),
        )
        .await;
    }

    let status = obj.status.clone().unwrap_or_default();
    match decide_stage(obj, &ctx, &status).await {
        Ok(decision) => finish(&api, obj, &ctx, decision).await,
        Err(Error::Aws(e)) => {
            forget_expired(ctx.aws.as_ref(), &ctx.identity, &e);
            let outcome = outcome_of_error(&e, &ctx.identity);
            if let Outcome::InvalidSpec(_) = outcome {
                let resync = Some(ctx.jittered_resync());
                return finish(&api, obj, &ctx, Decision::without_aws(outcome, resync)).await;
            }
            finish(&api, obj, &ctx, Decision::without_aws(outcome, None)).await?;
            Err(Error::Aws(e))
        }
        Err(e) => Err(e),
    }
}

/// Step 2: admitted, allowed, and acting as the access's identity.
async fn admit<'a, A: StageApi>(
    obj: &ApiGatewayStage,
    ctx: &'a Context<A>,
) -> Result<Acting<'a, A>, Refusal> {
    let region = &ctx.settings.default_region;
    Admitted::admit_object(ctx, &ctx.settings.gate, &ctx.aws, obj, region).await
}

/// A refused stage: Forbidden, one Warning Event, no AWS call; checked again at the resync
/// period and when an access or a namespace changes.
async fn forbidden<A: StageApi>(
    api: &Api<ApiGatewayStage>,
    obj: &ApiGatewayStage,
    ctx: &Context<A>,
    refusal: Refusal,
) -> Result<Action, Error> {
    let resync = Some(ctx.jittered_resync());
    let outcome = Outcome::Forbidden(refusal.message);
    finish(api, obj, ctx, Decision::without_aws(outcome, resync)).await
}

/// The context acting for one admitted stage.
type Acting<'a, A> = Admitted<'a, Context<A>, A>;

/// Step 3: the stage's REST API id and Region.
async fn resolve<A: StageApi>(
    obj: &ApiGatewayStage,
    ctx: &Acting<'_, A>,
) -> Result<StageTarget, AwsError> {
    let region = obj
        .spec
        .region
        .clone()
        .unwrap_or_else(|| ctx.settings.default_region.clone());
    let rest_api_id = match (&obj.spec.rest_api_id, &obj.spec.rest_api_name) {
        (Some(id), _) => id.clone(),
        (None, Some(name)) => ctx.aws.rest_api_id(&region, name).await?,
        (None, None) => {
            return Err(AwsError::Invalid {
                code: "MissingRestApi".into(),
                message: "spec.restApiId or spec.restApiName is required".into(),
            })
        }
    };
    Ok(StageTarget {
        rest_api_id,
        region,
        stage_name: obj.spec.stage_name.clone(),
    })
}

fn key_of(target: &StageTarget) -> StageKey {
    StageKey {
        region: target.region.clone(),
        rest_api_id: target.rest_api_id.clone(),
        stage_name: target.stage_name.clone(),
    }
}

/// Steps 3–7.
async fn decide_stage<A: StageApi>(
    obj: &ApiGatewayStage,
    ctx: &Acting<'_, A>,
    status: &ApiGatewayStageStatus,
) -> Result<Decision, Error> {
    let key = object_key(obj);
    let target = match &status.target {
        Some(pinned) => pinned.clone(),
        None => match resolve(obj, ctx).await {
            Ok(target) => target,
            Err(AwsError::NotFound { message }) | Err(AwsError::Ambiguous { message }) => {
                let wait = ctx.fail(&key, None).min(ctx.settings.resync_period);
                return Ok(Decision::without_aws(
                    Outcome::TargetNotFound(message),
                    Some(wait),
                ));
            }
            Err(e) => return Err(e.into()),
        },
    };
    let request = obj.access_request(&ctx.settings.default_region, Some(&target.rest_api_id));
    if let Err(refusal) = ctx.allows(&request) {
        let resync = Some(ctx.jittered_resync());
        return Ok(Decision::without_aws(
            Outcome::Forbidden(refusal.message),
            resync,
        ));
    }
    let stage_key = key_of(&target);

    // 4. The rollout, from the cache.
    let namespace = obj.namespace().unwrap_or_default();
    let members: Vec<_> = ctx
        .integrations()
        .iter()
        .filter(|i| {
            selects(
                &obj.spec,
                &namespace,
                &target,
                &ctx.settings.default_region,
                i,
            )
        })
        .map(|i| member(i))
        .collect();
    let deployed_at = status.deployed_at.as_ref().map(|t| t.0);

    // 5. The live stage.
    // A new generation reads: a touch of the spec is how a person asks for a fresh look.
    let fresh = ctx.is_fresh(&key) && status.observed_generation == obj.meta().generation;
    let live = match status.stage.clone().filter(|_| fresh) {
        Some(stage) => Some(stage),
        None => match ctx.aws.get_stage(&stage_key, Priority::Drift).await {
            Ok(stage) => Some(stage),
            Err(AwsError::NotFound { message }) => {
                if obj.spec.management_policy != ManagementPolicy::CreateOrUpdate {
                    let wait = ctx.fail(&key, None).min(ctx.settings.resync_period);
                    return Ok(Decision {
                        target: Some(target),
                        ..Decision::without_aws(
                            Outcome::TargetNotFound(format!(
                                "{message} (stage {stage_key}; set spec.managementPolicy: CreateOrUpdate to let the operator create it)"
                            )),
                            Some(wait),
                        )
                    });
                }
                None
            }
            Err(e) => return Err(e.into()),
        },
    };

    // The first reconcile adopts the deployment the stage serves as "the last deployment".
    let mut adopted = None;
    let deployed_at = match (deployed_at, &live) {
        (Some(at), _) => Some(at),
        (
            None,
            Some(Stage {
                deployment_id: Some(id),
                ..
            }),
        ) => {
            let deployment = ctx.aws.get_deployment(&stage_key, id).await?;
            let at = deployment
                .created_date
                .and_then(|secs| Timestamp::from_second(secs as i64).ok());
            if let Some(at) = at {
                adopted = Some((id.clone(), at));
            }
            at
        }
        (None, _) => None,
    };
    let rollout = rollout(&members, deployed_at);
    act(obj, ctx, status, target, stage_key, live, rollout, adopted).await
}

/// Steps 6–7: variables, then the deployment, then the verdict.
#[allow(clippy::too_many_arguments)]
async fn act<A: StageApi>(
    obj: &ApiGatewayStage,
    ctx: &Acting<'_, A>,
    status: &ApiGatewayStageStatus,
    target: StageTarget,
    stage_key: StageKey,
    mut live: Option<Stage>,
    rollout: Rollout,
    adopted: Option<(String, Timestamp)>,
) -> Result<Decision, Error> {
    let observe = obj.spec.management_policy == ManagementPolicy::Observe;
    let resync = ctx.jittered_resync();
    let mut decision = Decision {
        target: Some(target),
        adopted,
        requeue_after: Some(resync),
        ..Decision::without_aws(Outcome::Synced, None)
    };

    // 6. Variables (a missing stage gets them from CreateDeployment).
    let ops = match &live {
        Some(stage) => variable_ops(obj.spec.variables.as_ref(), stage.variables.as_ref()),
        None => Vec::new(),
    };
    let mut drift = Vec::new();
    if !ops.is_empty() {
        if observe {
            let paths: Vec<&str> = ops.iter().map(|o| o.path.as_str()).collect();
            drift.push(format!("stage variables differ at {}", paths.join(", ")));
        } else {
            let updated = ctx.aws.update_stage(&stage_key, &ops).await?;
            let paths: Vec<&str> = ops.iter().map(|o| o.path.as_str()).collect();
            let note = format!("UpdateStage changed {}", paths.join(", "));
            ctx.publish(obj, EventType::Normal, "Updated", "UpdateStage", note)
                .await;
            live = Some(updated);
            decision.wrote_aws = true;
        }
    }

    // 7. Deploy.
    let now = Timestamp::now();
    let missing = live.is_none();
    let plan = if missing {
        Deploy::Now {
            left_behind: rollout.changing.clone(),
        }
    } else {
        decide(&rollout, now, obj.spec.settle())
    };
    let ours = status
        .deployment_id
        .clone()
        .or(decision.adopted.as_ref().map(|(id, _)| id.clone()));
    let serving = live.as_ref().and_then(|s| s.deployment_id.clone());
    let moved = matches!((&ours, &serving), (Some(o), Some(s)) if o != s);
    let summary = |r: &Rollout| {
        let mut parts = vec![format!("{} pending", r.pending.len())];
        if !r.blocked.is_empty() {
            parts.push(format!(
                "deployed without (a person must act): {}",
                r.blocked.join(", ")
            ));
        }
        parts.join("; ")
    };
    let outcome = match plan {
        Deploy::Now { .. } if observe => Outcome::Drifted(format!(
            "{} selected integrations were written since the stage's deployment; Observe never deploys",
            rollout.written
        )),
        Deploy::Now { left_behind } => {
            let deployment = ctx
                .aws
                .create_deployment(
                    &stage_key,
                    obj.spec.description.as_deref(),
                    obj.spec.variables.as_ref(),
                )
                .await?;
            let note = format!(
                "CreateDeployment {} for stage {}: {} integrations, {} written since the last deployment",
                deployment.id,
                stage_key.stage_name,
                rollout.published.integrations,
                rollout.written
            );
            ctx.publish(obj, EventType::Normal, "Deployed", "CreateDeployment", note)
                .await;
            info!(deployment = %deployment.id, written = rollout.written, "deployed");
            decision.deployed = Some((deployment.id.clone(), deployment.sent_at.unwrap_or(now)));
            decision.wrote_aws = true;
            let mut stage = live.take().unwrap_or_default();
            stage.deployment_id = Some(deployment.id.clone());
            stage.stage_name = Some(stage_key.stage_name.clone());
            if missing {
                stage.variables = obj.spec.variables.clone();
            }
            live = Some(stage);
            if left_behind.is_empty() {
                Outcome::Live(format!(
                    "stage {} serves deployment {} with every selected integration ({}){}",
                    stage_key.stage_name,
                    deployment.id,
                    rollout.published.integrations,
                    blocked_note(&rollout.blocked)
                ))
            } else {
                Outcome::Pending(format!(
                    "deployed {} without the changes of integrations still retrying after {} s: {}",
                    deployment.id,
                    crate::stage::plan::MAX_HOLD.as_secs(),
                    left_behind.join(", ")
                ))
            }
        }
        Deploy::Wait(wait) => {
            decision.requeue_after = Some(wait.max(Duration::from_millis(200)));
            Outcome::Pending(format!(
                "waiting {} s before deploying (quiet time after the last write, or integrations still changing): {}",
                wait.as_secs(),
                summary(&rollout)
            ))
        }
        Deploy::Nothing if moved => Outcome::Drifted(format!(
            "stage {} serves deployment {} but the operator deployed {}: someone moved it (a rollback?). Not fought: the next write of a selected integration deploys again",
            stage_key.stage_name,
            serving.clone().unwrap_or_default(),
            ours.clone().unwrap_or_default()
        )),
        Deploy::Nothing if !rollout.pending.is_empty() => {
            decision.requeue_after = Some(obj.spec.settle().max(Duration::from_secs(1)));
            Outcome::Pending(format!("integrations still changing: {}", summary(&rollout)))
        }
        Deploy::Nothing => Outcome::Live(format!(
            "stage {} serves deployment {} with every selected integration ({}){}",
            stage_key.stage_name,
            serving.clone().unwrap_or_default(),
            rollout.published.integrations,
            blocked_note(&rollout.blocked)
        )),
    };
    decision.outcome = match (outcome, drift.is_empty()) {
        (Outcome::Live(_), false) => Outcome::Drifted(drift.join("; ")),
        (outcome, _) => outcome,
    };
    decision.stage = live;
    decision.rollout = Some(rollout);
    Ok(decision)
}

/// Step 1: a stage object being deleted.
async fn delete<A: StageApi>(
    api: &Api<ApiGatewayStage>,
    obj: &ApiGatewayStage,
    ctx: &Context<A>,
    paused: bool,
) -> Result<Action, Error> {
    let key = object_key(obj);
    if !obj.finalizers().iter().any(|f| f == FINALIZER) {
        ctx.forget_object(&key);
        return Ok(Action::await_change());
    }
    let orphan = annotation_is_true(obj, ORPHAN_ANNOTATION);
    if obj.spec.deletion_policy == DeletionPolicy::Delete && !orphan {
        if paused {
            return finish(api, obj, ctx, Decision::without_aws(Outcome::Paused, None)).await;
        }
        let acting = match admit(obj, ctx).await {
            Ok(acting) => acting,
            Err(refusal) => {
                let refusal = refused_delete(refusal, "DeleteStage");
                return forbidden(api, obj, ctx, refusal).await;
            }
        };
        if let Err(e) = delete_in_aws(obj, &acting).await {
            forget_expired(acting.aws.as_ref(), &acting.identity, &e);
            let outcome =
                Outcome::DeleteFailed(format!("DeleteStage failed, retrying with backoff: {e}"));
            finish(api, obj, ctx, Decision::without_aws(outcome, None)).await?;
            return Err(e.into());
        }
    }
    remove_finalizer(api, obj).await?;
    ctx.forget_object(&key);
    Ok(Action::await_change())
}

/// DeleteStage of the pinned (or resolved) stage; a stage or API already gone is done.
async fn delete_in_aws<A: StageApi>(
    obj: &ApiGatewayStage,
    ctx: &Acting<'_, A>,
) -> Result<(), AwsError> {
    let target = match obj.status.as_ref().and_then(|s| s.target.clone()) {
        Some(t) => t,
        None => match resolve(obj, ctx).await {
            Ok(t) => t,
            Err(AwsError::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(e),
        },
    };
    match ctx.aws.delete_stage(&key_of(&target)).await {
        Ok(()) | Err(AwsError::NotFound { .. }) => {
            let note = format!("DeleteStage {}", key_of(&target));
            ctx.publish(obj, EventType::Normal, "Deleted", "DeleteStage", note)
                .await;
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Step 8.
async fn finish<A: StageApi>(
    api: &Api<ApiGatewayStage>,
    obj: &ApiGatewayStage,
    ctx: &Context<A>,
    decision: Decision,
) -> Result<Action, Error> {
    let key = object_key(obj);
    let current = obj.status.clone().unwrap_or_default();
    let generation = obj.meta().generation;
    let now = Time(Timestamp::now());
    let conditions = conditions_for(&decision.outcome, &current.conditions, generation, &now);
    let next = next_status(&current, &decision, conditions, generation);
    if next != current || decision.wrote_aws {
        let Some(written) = apply_status(api, obj, &next).await? else {
            return Ok(Action::await_change());
        };
        ctx.wrote_status(&key, written.resource_version());
    }
    match (&decision.stage, decision.requeue_after) {
        (Some(_), Some(after)) => ctx.remember(&key, after.saturating_sub(Duration::from_secs(1))),
        _ => ctx.forget(&key),
    }
    let reason = decision.outcome.reason();
    if reason != "Synced"
        && reason != "Pending"
        && ready_reason(&current.conditions) != Some(reason)
    {
        let message = next
            .conditions
            .iter()
            .find(|c| c.type_ == "Ready")
            .map(|c| c.message.clone())
            .unwrap_or_default();
        ctx.publish(obj, EventType::Warning, reason, "Reconcile", message)
            .await;
    }
    match (&decision.outcome, decision.requeue_after) {
        (Outcome::InvalidSpec(_), Some(wait)) => ctx.hold(&key, wait),
        (outcome, _) if !outcome.is_reconciling() || matches!(outcome, Outcome::Pending(_)) => {
            ctx.succeed(&key)
        }
        _ => {}
    }
    Ok(decision
        .requeue_after
        .map_or_else(Action::await_change, Action::requeue))
}

/// The status a decision leads to.
fn next_status(
    current: &ApiGatewayStageStatus,
    decision: &Decision,
    conditions: Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>,
    generation: Option<i64>,
) -> ApiGatewayStageStatus {
    let mut next = ApiGatewayStageStatus {
        observed_generation: generation,
        conditions,
        stage: decision.stage.clone().or_else(|| current.stage.clone()),
        target: current.target.clone().or_else(|| decision.target.clone()),
        ..current.clone()
    };
    if let Some((id, at)) = decision.deployed.as_ref().or(decision.adopted.as_ref()) {
        if current.deployment_id.is_none() || decision.deployed.is_some() {
            next.deployment_id = Some(id.clone());
            next.deployed_at = Some(MicroTime(*at));
        }
    }
    if let Some(rollout) = &decision.rollout {
        if decision.deployed.is_some() {
            next.published = Some(rollout.published.clone());
            next.pending = rollout.changing.len() as u32;
            next.pending_integrations = rollout.changing.iter().take(50).cloned().collect();
        } else {
            next.pending = rollout.pending.len() as u32;
            next.pending_integrations = rollout.pending.iter().take(50).cloned().collect();
        }
        next.blocked_integrations = rollout.blocked.iter().take(50).cloned().collect();
    }
    next
}

/// What a Live message adds about the blocked integrations, the same whether this reconcile
/// deployed or found the stage serving already: a deployment made while one is blocked ships its
/// old state, and `status.blockedIntegrations` lists it either way.
fn blocked_note(blocked: &[String]) -> String {
    if blocked.is_empty() {
        String::new()
    } else {
        format!(
            "; not serving the spec of (a person must act): {}",
            blocked.join(", ")
        )
    }
}

/// Backoff per object, honouring Retry-After; never a hot loop.
pub fn error_policy<A: StageApi>(
    obj: Arc<ApiGatewayStage>,
    error: &Error,
    ctx: Arc<Context<A>>,
) -> Action {
    let delay = ctx.fail(&object_key(&*obj), error.retry_after());
    warn!(stage = %object_key(&*obj), error = %error, delay_ms = delay.as_millis() as u64, "stage reconcile failed; retrying");
    Action::requeue(delay)
}

/// Runs the stage controller until SIGTERM/SIGINT. `changed` yields the namespace of every
/// integration the integration controller's cache saw change; each wakes the stages of that
/// namespace.
pub async fn run<A: StageApi>(
    ctx: Arc<Context<A>>,
    scope: Scope,
    integrations: Integrations,
    changed: impl futures::Stream<Item = String> + Send + 'static,
    wake_all: impl futures::Stream<Item = ()> + Send + Sync + 'static,
    concurrency: u16,
) {
    let api: Api<ApiGatewayStage> = scope.api(ctx.client.clone());
    ctx.set_integrations(integrations);
    let (reader, writer) = kube::runtime::reflector::store();
    let queue = ctx.metrics.queue(ctx.kind);
    // The shard's selector too: a stage outside it belongs to the shard that sees its members.
    let objects = crate::kit::watched(api, scope.watch_config(), queue.clone(), writer, |_| {});
    crate::kit::collect_objects(&ctx.metrics, ctx.kind, reader.clone());
    let wake_all = crate::kit::waking_all(wake_all, queue.clone(), reader.clone());
    let controller = Controller::for_stream(objects, reader);
    let stages = controller.store();
    let woken = queue.clone();
    let wake = changed.flat_map(move |namespace| {
        let refs: Vec<ObjectRef<ApiGatewayStage>> = stages
            .state()
            .iter()
            .filter(|s| s.namespace().as_deref() == Some(namespace.as_str()))
            .map(|s| ObjectRef::from_obj(&**s))
            .collect();
        for r in &refs {
            woken.triggered(&format!(
                "{}/{}",
                r.namespace.as_deref().unwrap_or_default(),
                r.name
            ));
        }
        futures::stream::iter(refs)
    });
    controller
        .reconcile_on(wake)
        .reconcile_all_on(wake_all)
        .with_config(kube::runtime::controller::Config::default().concurrency(concurrency))
        .graceful_shutdown_on(crate::shutdown::requested())
        .run(reconcile, error_policy, ctx)
        .for_each(|_| futures::future::ready(()))
        .await;
}

#[cfg(test)]
#[path = "decisions.rs"]
mod decisions;
