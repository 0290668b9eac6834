//! The controller: `reconcile` makes one ApiGatewayIntegration true in AWS, `error_policy`
//! decides when to try again.
//!
//! reconcile, step by step (DESIGN.md "Controller"):
//! 1. deletion: with `deletionPolicy: Delete`, DeleteIntegration (404 = done), then drop the
//!    finalizer; otherwise nothing in AWS;
//! 2. the finalizer follows `deletionPolicy`; the pause annotation stops here;
//! 3. an InvalidSpec of this generation is not retried until the spec changes;
//! 4. resolve the target (ids, or names and paths via cached lookups);
//! 5. the live Integration: the copy of AWS's last answer in `status` (while the next drift
//!    check is not due; for a spec change, of any age, to plan a patch), else this object's
//!    share of its API's snapshot when several objects share the API, else GetIntegration. So
//!    a spec change costs one UpdateIntegration however long ago AWS last answered;
//! 6. plan (a pure function) → nothing, one UpdateIntegration, or PutIntegration where the
//!    policy allows re-creating. A plan from an older answer that AWS refuses is planned again
//!    from a read; an answer to UpdateIntegration that shows a field changed out of band gets
//!    one more patch;
//! 7. write status with server-side apply, only when it changed; Events for AWS writes and new
//!    failure reasons.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Resource, ResourceExt};
use rand::Rng;
use serde_json::json;
use tracing::{info, instrument, warn};

use crate::aws::{AwsApi, AwsError, IntegrationKey, Priority, RetryKind};
use crate::conditions::{conditions_for, ready_reason, Outcome};
use crate::crd::{
    ApiGatewayIntegration, ApiGatewayIntegrationSpec, ApiGatewayIntegrationStatus, DeletionPolicy,
    ManagementPolicy, ResolvedTarget,
};
use crate::integration::Integration;
use crate::metrics::Metrics;
use crate::plan::{plan, PatchOperation, Plan};
use crate::snapshot::{ApiKey, Snapshots};
use crate::{FIELD_MANAGER, FINALIZER, PAUSE_ANNOTATION};

/// Why a reconcile failed; each carries a category that labels metrics.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("AWS: {0}")]
    Aws(#[from] AwsError),
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
}

impl Error {
    pub fn category(&self) -> &'static str {
        match self {
            Error::Aws(e) => e.category(),
            Error::Kube(_) => "kubernetes",
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Aws(e) => e.retry_after(),
            Error::Kube(_) => None,
        }
    }
}

/// Per-object exponential backoff with full jitter: the n-th consecutive failure waits a random
/// time in [0, min(cap, base·factorⁿ)], at least Retry-After when AWS gave one.
#[derive(Clone, Copy, Debug)]
pub struct BackoffConfig {
    pub base: Duration,
    pub cap: Duration,
    pub factor: f64,
}

impl BackoffConfig {
    /// The ceiling for the `failures`-th consecutive failure (1-based).
    pub fn ceiling(&self, failures: u32) -> Duration {
        let exp = self.factor.powi(failures.saturating_sub(1).min(64) as i32);
        let secs = (self.base.as_secs_f64() * exp).min(self.cap.as_secs_f64());
        Duration::from_secs_f64(secs)
    }

    /// A full-jitter delay for the `failures`-th failure, never shorter than `retry_after`, and
    /// never shorter than a tenth of the base so that nothing spins.
    pub fn delay(
        &self,
        failures: u32,
        retry_after: Option<Duration>,
        rng: &mut impl Rng,
    ) -> Duration {
        let ceiling = self.ceiling(failures).as_secs_f64();
        let jittered = Duration::from_secs_f64(rng.random_range(0.0..=ceiling));
        jittered
            .max(retry_after.unwrap_or_default())
            .max(self.base / 10)
    }
}

/// What the controller is configured with.
#[derive(Clone, Debug)]
pub struct Settings {
    pub default_region: String,
    pub resync_period: Duration,
    pub backoff: BackoffConfig,
    pub reporter: String,
}

/// Consecutive failures of one object and the earliest time it may call AWS again.
#[derive(Clone, Copy, Debug)]
struct BackoffState {
    failures: u32,
    until: Instant,
}

/// How long a cached object whose status is older than our last write is left to catch up.
const STALE_STATUS_GRACE: Duration = Duration::from_secs(5);

fn status_hash(status: Option<&ApiGatewayIntegrationStatus>) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_string(&status)
        .unwrap_or_default()
        .hash(&mut hasher);
    hasher.finish()
}

/// Shared by every reconcile.
pub struct Context<A: AwsApi> {
    pub client: kube::Client,
    pub aws: Arc<A>,
    pub settings: Settings,
    pub metrics: Arc<Metrics>,
    /// Who publishes Events. A `Recorder` is made per Event: kube's Recorder keeps every Event
    /// it published for 6 minutes (to fold repeats into a series), which is 10,000 Events
    /// after a rollout of 10,000 changes, and this operator's Events rarely repeat.
    reporter: Reporter,
    backoff: Mutex<HashMap<String, BackoffState>>,
    /// Until when the copy of AWS's last answer in an object's status stands in for a drift
    /// read. The answer itself is not kept here: the cached object's `status.integration` is
    /// that copy, and keeping a second one per object doubled the memory at 10,000 objects.
    fresh: Mutex<HashMap<String, Instant>>,
    snapshots: Snapshots,
    written: Mutex<HashMap<String, (u64, Instant)>>,
}

impl<A: AwsApi> Context<A> {
    pub fn new(
        client: kube::Client,
        aws: Arc<A>,
        settings: Settings,
        metrics: Arc<Metrics>,
    ) -> Self {
        let reporter = Reporter {
            controller: "apigw-operator".into(),
            instance: Some(settings.reporter.clone()),
        };
        Context {
            reporter,
            client,
            aws,
            metrics,
            backoff: Mutex::new(HashMap::new()),
            fresh: Mutex::new(HashMap::new()),
            snapshots: Snapshots::new(settings.resync_period / 2),
            written: Mutex::new(HashMap::new()),
            settings,
        }
    }

    /// Records one more failure of `object` and returns how long it waits before the next try.
    fn fail(&self, object: &str, retry_after: Option<Duration>) -> Duration {
        let mut backoff = self.backoff.lock().expect("backoff lock");
        let state = backoff.entry(object.to_string()).or_insert(BackoffState {
            failures: 0,
            until: Instant::now(),
        });
        state.failures += 1;
        let delay = self
            .settings
            .backoff
            .delay(state.failures, retry_after, &mut rand::rng());
        state.until = Instant::now() + delay;
        delay
    }

    /// Forgets the failures of `object` (it succeeded).
    fn succeed(&self, object: &str) {
        self.backoff.lock().expect("backoff lock").remove(object);
    }

    /// How long `object` must still wait before calling AWS, if it is backing off.
    fn backing_off(&self, object: &str) -> Option<Duration> {
        let backoff = self.backoff.lock().expect("backoff lock");
        backoff
            .get(object)
            .and_then(|state| state.until.checked_duration_since(Instant::now()))
    }

    /// Remembers (as a hash) the status the API server stored for `object` on our last write.
    fn wrote_status(&self, object: &str, status: Option<&ApiGatewayIntegrationStatus>) {
        self.written
            .lock()
            .expect("written lock")
            .insert(object.to_string(), (status_hash(status), Instant::now()));
    }

    /// Whether `obj` comes from a cache that has not yet seen our last status write. Acting on
    /// it would write status from stale knowledge, and server-side apply would then drop the
    /// fields that knowledge lacks. A few seconds at most: after that (someone else wrote
    /// status, say) the object is taken as it is.
    fn is_stale(&self, object: &str, obj: &ApiGatewayIntegration) -> bool {
        let written = self.written.lock().expect("written lock");
        written.get(object).is_some_and(|(hash, at)| {
            at.elapsed() < STALE_STATUS_GRACE && *hash != status_hash(obj.status.as_ref())
        })
    }

    /// Drops everything remembered about objects for which `exists` is false.
    fn prune(&self, exists: impl Fn(&str) -> bool) {
        // What was written more than the grace ago no longer matters to `is_stale`.
        self.written
            .lock()
            .expect("written lock")
            .retain(|_, (_, at)| at.elapsed() < STALE_STATUS_GRACE);
        // The metrics track every object a reconcile finished (a paused one has nothing in
        // the other maps); a reconcile that failed before finishing left a backoff.
        let mut known = self.metrics.tracked_objects();
        known.extend(self.backoff.lock().expect("backoff lock").keys().cloned());
        known.sort_unstable();
        known.dedup();
        for key in known.into_iter().filter(|key| !exists(key)) {
            self.forget_object(&key);
        }
    }

    /// Forgets `object` entirely (deleted).
    fn forget_object(&self, object: &str) {
        self.metrics.set_ready(object, None);
        self.forget(object);
        self.snapshots.leave(object);
        self.written.lock().expect("written lock").remove(object);
        self.backoff.lock().expect("backoff lock").remove(object);
    }

    fn jittered_resync(&self) -> Duration {
        let period = self.settings.resync_period.as_secs_f64();
        Duration::from_secs_f64(period * rand::rng().random_range(0.9..=1.1))
    }

    /// The status copy of AWS's last answer stands in for a drift read for `fresh_for`.
    fn remember(&self, object: &str, fresh_for: Duration) {
        self.fresh
            .lock()
            .expect("fresh lock")
            .insert(object.to_string(), Instant::now() + fresh_for);
    }

    /// The status copy of AWS's last answer no longer stands in for a drift read.
    fn forget(&self, object: &str) {
        self.fresh.lock().expect("fresh lock").remove(object);
    }

    fn is_fresh(&self, object: &str) -> bool {
        self.fresh
            .lock()
            .expect("fresh lock")
            .get(object)
            .is_some_and(|until| Instant::now() < *until)
    }
}

fn object_key(obj: &ApiGatewayIntegration) -> String {
    format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any())
}

/// What a reconcile decided, before status is written.
struct Decision {
    outcome: Outcome,
    integration: Option<Integration>,
    target: Option<ResolvedTarget>,
    sent: Option<Vec<PatchOperation>>,
    wrote_aws: bool,
    /// When to reconcile again (None: on the next change). With an `integration`, its status
    /// copy stands in for a drift read until a little before then, so the requeued drift
    /// check does read.
    requeue_after: Option<Duration>,
}

#[instrument(skip_all, fields(object = %object_key(&obj)))]
pub async fn reconcile<A: AwsApi>(
    obj: Arc<ApiGatewayIntegration>,
    ctx: Arc<Context<A>>,
) -> Result<Action, Error> {
    let started = Instant::now();
    let key = object_key(&obj);
    // A watch event (our own status write, say) must not cut a backoff short: only a new
    // generation, a deletion or a pause may.
    let spec_changed =
        obj.status.as_ref().and_then(|s| s.observed_generation) != obj.meta().generation;
    if obj.meta().deletion_timestamp.is_none() {
        if ctx.is_stale(&key, &obj) {
            return Ok(Action::requeue(Duration::from_millis(500)));
        }
        if let Some(wait) = ctx.backing_off(&key).filter(|_| !spec_changed) {
            return Ok(Action::requeue(wait));
        }
    }
    let result = reconcile_inner(&obj, &ctx).await;
    let label = match &result {
        Ok(_) => "ok",
        Err(e) => e.category(),
    };
    ctx.metrics
        .reconciled(label, started.elapsed().as_secs_f64());
    result
}

async fn reconcile_inner<A: AwsApi>(
    obj: &ApiGatewayIntegration,
    ctx: &Context<A>,
) -> Result<Action, Error> {
    let api: Api<ApiGatewayIntegration> =
        Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
    let key = object_key(obj);
    let paused = obj.annotations().get(PAUSE_ANNOTATION).map(String::as_str) == Some("true");

    // 1. Deletion.
    if obj.meta().deletion_timestamp.is_some() {
        if obj.finalizers().iter().any(|f| f == FINALIZER) {
            if obj.spec.deletion_policy == DeletionPolicy::Delete && !paused {
                delete_in_aws(obj, ctx).await?;
            }
            remove_finalizer(&api, obj).await?;
        }
        ctx.forget_object(&key);
        return Ok(Action::await_change());
    }

    // 2. The finalizer follows deletionPolicy; pause stops all AWS calls.
    let has_finalizer = obj.finalizers().iter().any(|f| f == FINALIZER);
    match (obj.spec.deletion_policy, has_finalizer) {
        (DeletionPolicy::Delete, false) => add_finalizer(&api, obj).await?,
        (DeletionPolicy::Retain, true) => remove_finalizer(&api, obj).await?,
        _ => {}
    }
    if paused {
        let decision = Decision {
            outcome: Outcome::Paused,
            integration: None,
            target: None,
            sent: None,
            wrote_aws: false,
            requeue_after: None,
        };
        return finish(&api, obj, ctx, decision).await;
    }

    // 3. A spec AWS rejected is not sent again until it changes.
    let status = obj.status.clone().unwrap_or_default();
    if ready_reason(&status.conditions) == Some("InvalidSpec")
        && status.observed_generation == obj.meta().generation
    {
        return Ok(Action::await_change());
    }

    let decision = match decide(obj, ctx, &status).await {
        Ok(decision) => decision,
        Err(Error::Aws(e)) => {
            let outcome = outcome_of_error(&e);
            let requeue_now = matches!(outcome, Outcome::InvalidSpec(_));
            let failed = Decision {
                outcome,
                integration: None,
                target: None,
                sent: None,
                wrote_aws: false,
                requeue_after: None,
            };
            finish(&api, obj, ctx, failed).await?;
            if requeue_now {
                // AWS said 400: wait for a new generation.
                return Ok(Action::await_change());
            }
            return Err(Error::Aws(e));
        }
        Err(e) => return Err(e),
    };
    finish(&api, obj, ctx, decision).await
}

fn outcome_of_error(e: &AwsError) -> Outcome {
    let message = e.to_string();
    match e {
        AwsError::NotFound { .. } | AwsError::Ambiguous { .. } => Outcome::TargetNotFound(message),
        AwsError::Invalid { .. } => Outcome::InvalidSpec(message),
        AwsError::Retryable {
            kind: RetryKind::Throttled,
            ..
        } => Outcome::Throttled(message),
        AwsError::Retryable { .. } | AwsError::Unauthorized { .. } => Outcome::AwsError(message),
    }
}

/// The ids of the integration `spec` names, looking up names and paths through `aws`.
pub async fn resolve_target<A: AwsApi>(
    aws: &A,
    default_region: &str,
    spec: &ApiGatewayIntegrationSpec,
) -> Result<IntegrationKey, AwsError> {
    let region = spec
        .region
        .clone()
        .unwrap_or_else(|| default_region.to_string());
    let rest_api_id = match (&spec.rest_api_id, &spec.rest_api_name) {
        (Some(id), _) => id.clone(),
        (None, Some(name)) => aws.find_rest_api_id(&region, name).await?,
        (None, None) => unreachable!("admission requires restApiId or restApiName"),
    };
    let resource_id = match (&spec.resource_id, &spec.resource_path) {
        (Some(id), _) => id.clone(),
        (None, Some(path)) => aws.find_resource_id(&region, &rest_api_id, path).await?,
        (None, None) => unreachable!("admission requires resourceId or resourcePath"),
    };
    Ok(IntegrationKey {
        region,
        rest_api_id,
        resource_id,
        http_method: spec.http_method.to_string(),
    })
}

fn resolved(target: &IntegrationKey) -> ResolvedTarget {
    ResolvedTarget {
        rest_api_id: target.rest_api_id.clone(),
        resource_id: target.resource_id.clone(),
        http_method: target.http_method.clone(),
        region: target.region.clone(),
    }
}

/// Where the live Integration a plan starts from came from. The plan's trust in it differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    /// The status copy of AWS's last answer, younger than the next drift check: as good as a
    /// read.
    FreshAnswer,
    /// The status copy of AWS's last answer, of any age: used only to plan a patch for a spec
    /// change. If AWS was changed out of band since, UpdateIntegration refuses the plan or
    /// answers with the stray field, and either is caught below; anything else is read first.
    LastAnswer,
    /// This object's share of the API-wide snapshot: a drift read, at most half a resync
    /// period old. Trusted like one: a change found in sync with it, or needing re-creation,
    /// is reported as such, and a drift check catches what changed since.
    Snapshot,
    /// GetIntegration in this reconcile, or AWS's answer to this reconcile's own write.
    Read,
}

impl Source {
    /// Whether a decision other than a patch may rest on it; otherwise read first.
    fn settles(self) -> bool {
        self != Source::LastAnswer
    }
}

/// The copy of AWS's last answer in `status`, when it is an answer about `target`.
fn last_answer<'a>(
    status: &'a ApiGatewayIntegrationStatus,
    target: &IntegrationKey,
) -> Option<&'a Integration> {
    let same = status.target.as_ref() == Some(&resolved(target));
    status.integration.as_ref().filter(|_| same)
}

/// The status copy of an answer stops standing in for a read this long before the drift check
/// it was requeued for.
const FRESHNESS_MARGIN: Duration = Duration::from_secs(1);

/// How many UpdateIntegration calls one reconcile may send: the planned one, and one more when
/// AWS's answer shows a field changed out of band meanwhile.
const MAX_UPDATES_PER_RECONCILE: usize = 2;

/// Steps 4–6: everything that talks to AWS for a live object.
async fn decide<A: AwsApi>(
    obj: &ApiGatewayIntegration,
    ctx: &Context<A>,
    status: &ApiGatewayIntegrationStatus,
) -> Result<Decision, Error> {
    let key = object_key(obj);
    let spec_changed = status.observed_generation != obj.meta().generation;
    let priority = if spec_changed {
        Priority::Change
    } else {
        Priority::Drift
    };
    let policy = obj.spec.management_policy;
    let resync = ctx.jittered_resync();

    let target =
        match resolve_target(ctx.aws.as_ref(), &ctx.settings.default_region, &obj.spec).await {
            Ok(target) => target,
            Err(AwsError::NotFound { message }) | Err(AwsError::Ambiguous { message }) => {
                return Ok(not_found(
                    format!("{message} (spec target: {})", describe_target(obj)),
                    None,
                    ctx,
                    obj,
                ));
            }
            Err(e) => return Err(e.into()),
        };
    ctx.snapshots.join(&key, &target);
    let synced =
        |integration: Integration, sent: Option<Vec<PatchOperation>>, wrote: bool| Decision {
            outcome: Outcome::Synced,
            integration: Some(integration),
            target: Some(resolved(&target)),
            sent,
            wrote_aws: wrote,
            requeue_after: Some(resync),
        };

    // 5. The live Integration, from the cheapest source that can be trusted for this plan.
    let mut from_memory = last_answer(status, &target).cloned();
    let mut may_use_snapshot = true;
    let mut sent: Vec<PatchOperation> = Vec::new();
    let mut updates = 0;
    let mut answer: Option<(Integration, Source)> = None;
    loop {
        let (live, source) = match answer.take() {
            Some(known) => known,
            None => match from_memory.take() {
                Some(last) if ctx.is_fresh(&key) => (last, Source::FreshAnswer),
                Some(last) if spec_changed && policy != ManagementPolicy::Observe => {
                    (last, Source::LastAnswer)
                }
                _ => match read_live(ctx, &target, priority, may_use_snapshot).await {
                    Ok(read) => read,
                    Err(AwsError::NotFound { message }) => {
                        if policy == ManagementPolicy::CreateOrUpdate
                            && message.contains("Integration")
                        {
                            let note = "created the integration with PutIntegration".into();
                            let created = put(ctx, obj, &target, "Created", note).await?;
                            return Ok(synced(created, None, true));
                        }
                        ctx.aws.invalidate_lookups(&target.region);
                        return Ok(not_found(message, Some(&target), ctx, obj));
                    }
                    Err(e) => return Err(e.into()),
                },
            },
        };
        // Anything but a patch from a source this plan cannot rest on: read, then plan again.
        let read_first = |plan: &Plan| {
            let patches = matches!(plan, Plan::Patch(ops) if !ops.is_empty());
            !patches && !source.settles()
        };

        // 6. Plan.
        let planned = plan(&obj.spec, &live);
        if read_first(&planned) {
            continue;
        }
        let ops = match (planned, policy) {
            (plan, _) if plan.is_in_sync() => {
                let sent = if sent.is_empty() {
                    status.last_patch_operations.clone()
                } else {
                    Some(sent)
                };
                return Ok(synced(live, sent, updates > 0));
            }
            (plan, ManagementPolicy::Observe) => {
                return Ok(Decision {
                    outcome: Outcome::Drifted(drift_message(&plan)),
                    integration: Some(live),
                    target: Some(resolved(&target)),
                    sent: status.last_patch_operations.clone(),
                    wrote_aws: false,
                    requeue_after: Some(resync),
                });
            }
            (Plan::Replace(reasons), ManagementPolicy::CreateOrUpdate) => {
                let note = format!(
                    "re-created the integration with PutIntegration: {}",
                    join_reasons(&reasons)
                );
                let created = put(ctx, obj, &target, "Replaced", note).await?;
                return Ok(synced(created, None, true));
            }
            (Plan::Replace(reasons), _) => {
                return Ok(Decision {
                    outcome: Outcome::RequiresReplacement(format!(
                        "{}. Set spec.managementPolicy: CreateOrUpdate to let the operator re-create the integration with PutIntegration",
                        join_reasons(&reasons)
                    )),
                    integration: Some(live),
                    target: Some(resolved(&target)),
                    sent: status.last_patch_operations.clone(),
                    wrote_aws: updates > 0,
                    requeue_after: Some(resync),
                });
            }
            (Plan::Patch(ops), _) => ops,
        };

        let updated = match ctx.aws.update_integration(&target, &ops).await {
            Ok(updated) => updated,
            // AWS was changed out of band since the answer this plan started from (a key gone,
            // say): read it and plan again; the next plan starts from a fresh read.
            Err(AwsError::Invalid { .. } | AwsError::NotFound { .. }) if source != Source::Read => {
                info!(?source, "UpdateIntegration refused a plan made from an earlier answer; reading AWS and planning again");
                may_use_snapshot = false;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        updates += 1;
        ctx.snapshots.record(&target, &updated).await;
        let reason = if spec_changed {
            "Updated"
        } else {
            "DriftCorrected"
        };
        publish(
            ctx,
            obj,
            EventType::Normal,
            reason,
            "UpdateIntegration",
            format!(
                "UpdateIntegration sent {}",
                serde_json::to_string(&ops).unwrap_or_default()
            ),
        )
        .await;
        sent.extend(ops);
        // AWS answers with the whole integration: a field changed out of band, that this plan
        // did not touch, shows here and is corrected by one more patch planned from the answer.
        if updates >= MAX_UPDATES_PER_RECONCILE {
            if !plan(&obj.spec, &updated).is_in_sync() {
                warn!("AWS still differs from the spec after {updates} UpdateIntegration calls; the next drift check tries again");
            }
            return Ok(synced(updated, Some(sent), true));
        }
        answer = Some((updated, Source::Read));
    }
}

/// PutIntegration from the spec, recorded in the API's snapshot and in an Event.
async fn put<A: AwsApi>(
    ctx: &Context<A>,
    obj: &ApiGatewayIntegration,
    target: &IntegrationKey,
    reason: &str,
    note: String,
) -> Result<Integration, AwsError> {
    let created = ctx.aws.put_integration(target, &obj.spec).await?;
    ctx.snapshots.record(target, &created).await;
    publish(ctx, obj, EventType::Normal, reason, "PutIntegration", note).await;
    Ok(created)
}

fn join_reasons(reasons: &[impl ToString]) -> String {
    reasons
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

fn drift_message(plan: &Plan) -> String {
    match plan {
        Plan::Patch(ops) => format!(
            "AWS differs from the spec; UpdateIntegration would send {}",
            serde_json::to_string(ops).unwrap_or_default()
        ),
        Plan::Replace(reasons) => format!("AWS differs from the spec: {}", join_reasons(reasons)),
    }
}

/// The live integration when no answer in memory will do: this object's share of the
/// API-wide snapshot when several objects share the API (and the snapshot may serve), else
/// GetIntegration. A method or integration missing from the snapshot is confirmed with
/// GetIntegration: the snapshot may predate its creation.
async fn read_live<A: AwsApi>(
    ctx: &Context<A>,
    target: &IntegrationKey,
    priority: Priority,
    may_use_snapshot: bool,
) -> Result<(Integration, Source), AwsError> {
    if may_use_snapshot && ctx.snapshots.is_shared(&ApiKey::from(target)) {
        match ctx.snapshots.read(ctx.aws.as_ref(), target, priority).await {
            Ok(live) => return Ok((live, Source::Snapshot)),
            Err(AwsError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    let live = ctx.aws.get_integration(target, priority).await?;
    Ok((live, Source::Read))
}

fn describe_target(obj: &ApiGatewayIntegration) -> String {
    let s = &obj.spec;
    format!(
        "{} {} {}",
        s.rest_api_id
            .clone()
            .or_else(|| s.rest_api_name.clone())
            .unwrap_or_default(),
        s.resource_id
            .clone()
            .or_else(|| s.resource_path.clone())
            .unwrap_or_default(),
        s.http_method
    )
}

/// A missing target: reported, and checked again with backoff (never terminal: another tool may
/// create it later).
fn not_found<A: AwsApi>(
    message: String,
    target: Option<&IntegrationKey>,
    ctx: &Context<A>,
    obj: &ApiGatewayIntegration,
) -> Decision {
    let delay = ctx
        .fail(&object_key(obj), None)
        .min(ctx.settings.resync_period);
    Decision {
        outcome: Outcome::TargetNotFound(message),
        integration: None,
        target: target.map(resolved),
        sent: None,
        wrote_aws: false,
        requeue_after: Some(delay),
    }
}

async fn delete_in_aws<A: AwsApi>(
    obj: &ApiGatewayIntegration,
    ctx: &Context<A>,
) -> Result<(), Error> {
    let target = match obj.status.as_ref().and_then(|s| s.target.clone()) {
        Some(t) => IntegrationKey {
            region: t.region,
            rest_api_id: t.rest_api_id,
            resource_id: t.resource_id,
            http_method: t.http_method,
        },
        None => {
            match resolve_target(ctx.aws.as_ref(), &ctx.settings.default_region, &obj.spec).await {
                Ok(target) => target,
                // Nothing to delete when the API or resource is gone.
                Err(AwsError::NotFound { .. }) => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
    };
    match ctx.aws.delete_integration(&target).await {
        Ok(()) => {
            publish(
                ctx,
                obj,
                EventType::Normal,
                "Deleted",
                "DeleteIntegration",
                "deleted the integration in AWS (deletionPolicy: Delete)".into(),
            )
            .await;
            Ok(())
        }
        Err(AwsError::NotFound { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Finalizer patches go under the operator's own field manager, so managedFields show that it
/// owns only status and (with deletionPolicy Delete) its finalizer.
fn finalizer_params() -> PatchParams {
    PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PatchParams::default()
    }
}

async fn add_finalizer(
    api: &Api<ApiGatewayIntegration>,
    obj: &ApiGatewayIntegration,
) -> Result<(), Error> {
    let mut finalizers = obj.finalizers().to_vec();
    finalizers.push(FINALIZER.to_string());
    let patch =
        json!({"metadata": {"finalizers": finalizers, "resourceVersion": obj.resource_version()}});
    api.patch(&obj.name_any(), &finalizer_params(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

async fn remove_finalizer(
    api: &Api<ApiGatewayIntegration>,
    obj: &ApiGatewayIntegration,
) -> Result<(), Error> {
    let finalizers: Vec<String> = obj
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    let patch =
        json!({"metadata": {"finalizers": finalizers, "resourceVersion": obj.resource_version()}});
    match api
        .patch(&obj.name_any(), &finalizer_params(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

async fn publish<A: AwsApi>(
    ctx: &Context<A>,
    obj: &ApiGatewayIntegration,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
) {
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(note.chars().take(1000).collect()),
        action: action.into(),
        secondary: None,
    };
    let recorder = Recorder::new(ctx.client.clone(), ctx.reporter.clone());
    if let Err(e) = recorder.publish(&event, &obj.object_ref(&())).await {
        warn!(error = %e, "could not publish an event");
    }
}

/// Step 7: status (only when it changed), events for new failure reasons, metrics.
async fn finish<A: AwsApi>(
    api: &Api<ApiGatewayIntegration>,
    obj: &ApiGatewayIntegration,
    ctx: &Context<A>,
    decision: Decision,
) -> Result<Action, Error> {
    let current = obj.status.clone().unwrap_or_default();
    let generation = obj.meta().generation;
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let conditions = conditions_for(&decision.outcome, &current.conditions, generation, &now);
    let learnt = decision.integration.is_some();
    // Keep what was last known when this attempt learnt nothing new, unless it was about
    // another target: the status copy of AWS's answer is what the next plan starts from.
    let same_target = decision.target.is_none() || decision.target == current.target;
    let mut next = ApiGatewayIntegrationStatus {
        observed_generation: generation,
        conditions,
        integration: decision
            .integration
            .or_else(|| current.integration.clone().filter(|_| same_target)),
        last_patch_operations: decision.sent.or(current.last_patch_operations.clone()),
        last_sync_time: current.last_sync_time.clone(),
        target: decision.target.or(current.target.clone()),
    };
    let changed = next != current;
    if changed || decision.wrote_aws {
        if decision.outcome == Outcome::Synced {
            next.last_sync_time = Some(now);
        }
        let patch = json!({
            "apiVersion": "apigw.dev/v1alpha1",
            "kind": "ApiGatewayIntegration",
            "status": next,
        });
        let written = api
            .patch_status(
                &obj.name_any(),
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&patch),
            )
            .await?;
        ctx.wrote_status(&object_key(obj), written.status.as_ref());
    }
    // The status now holds AWS's answer of this reconcile: it stands in for a drift read
    // until the next drift check is due.
    match decision.requeue_after {
        Some(after) if learnt => {
            ctx.remember(&object_key(obj), after.saturating_sub(FRESHNESS_MARGIN))
        }
        _ => ctx.forget(&object_key(obj)),
    }
    let previous_reason = ready_reason(&current.conditions);
    let reason = decision.outcome.reason();
    if reason != "Synced" && previous_reason != Some(reason) {
        let message = next
            .conditions
            .iter()
            .find(|c| c.type_ == "Ready")
            .map(|c| c.message.clone())
            .unwrap_or_default();
        publish(ctx, obj, EventType::Warning, reason, "Reconcile", message).await;
    }
    if !decision.outcome.is_reconciling() {
        ctx.succeed(&object_key(obj));
    }
    let ready = if decision.outcome == Outcome::Synced {
        "True"
    } else {
        "False"
    };
    ctx.metrics.set_ready(&object_key(obj), Some(ready));
    if decision.wrote_aws {
        info!(reason, "wrote to AWS");
    }
    Ok(decision
        .requeue_after
        .map_or_else(Action::await_change, Action::requeue))
}

/// Backoff per object, honouring Retry-After; never a hot loop.
pub fn error_policy<A: AwsApi>(
    obj: Arc<ApiGatewayIntegration>,
    error: &Error,
    ctx: Arc<Context<A>>,
) -> Action {
    let delay = ctx.fail(&object_key(&obj), error.retry_after());
    warn!(object = %object_key(&obj), error = %error, delay_ms = delay.as_millis() as u64, "reconcile failed; retrying");
    Action::requeue(delay)
}

/// Which objects this operator instance watches.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    pub namespace: Option<String>,
    pub selector: Option<String>,
}

/// Runs the controller until SIGTERM/SIGINT.
pub async fn run<A: AwsApi>(ctx: Arc<Context<A>>, scope: Scope, concurrency: u16) {
    let api: Api<ApiGatewayIntegration> = match &scope.namespace {
        Some(ns) => Api::namespaced(ctx.client.clone(), ns),
        None => Api::all(ctx.client.clone()),
    };
    // Pages of 100 objects: every page is held whole while it is parsed, on top of the cache
    // it fills, and that sum is the operator's peak memory at start-up.
    let mut watch = watcher::Config::default().page_size(LIST_PAGE_SIZE);
    if let Some(selector) = &scope.selector {
        watch = watch.labels(selector);
    }
    // The cache keeps every watched object. managedFields, kubectl's last-applied copy of the
    // spec, and the labels and annotations Helm and Argo CD add are most of an object's size,
    // and the operator reads none of them but the pause annotation.
    let (reader, writer) = kube::runtime::reflector::store();
    let objects = kube::runtime::watcher(api, watch)
        .default_backoff()
        .modify(|obj: &mut ApiGatewayIntegration| {
            obj.managed_fields_mut().clear();
            obj.labels_mut().clear();
            obj.annotations_mut().retain(|k, _| k == PAUSE_ANNOTATION);
        })
        .reflect(writer)
        .applied_objects();
    let controller = Controller::for_stream(objects, reader)
        .with_config(kube::runtime::controller::Config::default().concurrency(concurrency))
        .shutdown_on_signal();
    // An object deleted without a finalizer (deletionPolicy Retain) is never reconciled again,
    // so what the operator remembers about it is dropped here, once a minute.
    let store = controller.store();
    let janitor_ctx = ctx.clone();
    let janitor = tokio::spawn(async move {
        let mut tick = tokio::time::interval(PRUNE_PERIOD);
        loop {
            tick.tick().await;
            janitor_ctx.prune(|key| {
                let (namespace, name) = key.split_once('/').unwrap_or(("", key));
                store
                    .get(&kube::runtime::reflector::ObjectRef::new(name).within(namespace))
                    .is_some()
            });
        }
    });
    controller
        .run(reconcile, error_policy, ctx)
        .for_each(|_| futures::future::ready(()))
        .await;
    janitor.abort();
}

/// Objects per page of the watcher's initial list.
const LIST_PAGE_SIZE: u32 = 100;

/// How often memory about deleted objects is dropped.
const PRUNE_PERIOD: Duration = Duration::from_secs(60);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_the_cap_and_honours_retry_after() {
        let cfg = BackoffConfig {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(300),
            factor: 2.0,
        };
        assert_eq!(cfg.ceiling(1), Duration::from_secs(1));
        assert_eq!(cfg.ceiling(4), Duration::from_secs(8));
        assert_eq!(cfg.ceiling(40), Duration::from_secs(300));
        let mut rng = rand::rng();
        for failures in 1..20 {
            let d = cfg.delay(failures, None, &mut rng);
            assert!(d <= cfg.ceiling(failures).max(cfg.base / 10));
            assert!(d >= cfg.base / 10);
            assert!(
                cfg.delay(failures, Some(Duration::from_secs(7)), &mut rng)
                    >= Duration::from_secs(7)
            );
        }
    }
}
