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
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::EventType;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use tracing::{info, instrument, warn};

use crate::access::check::Governed;
use crate::access::gate::{refused_delete, Admitted};
use crate::access::Refusal;
use crate::aws::{AwsApi, AwsError, IntegrationKey, Priority, RetryKind};
use crate::cache::{CachedIntegration, Claimant};
use crate::conditions::{conditions_for, ready_reason, Outcome};
use crate::crd::{
    ApiGatewayIntegration, ApiGatewayIntegrationSpec, ApiGatewayIntegrationStatus, DeletionPolicy,
    ManagementPolicy, ResolvedTarget,
};
use crate::integration::{Integration, IntegrationResponse};
use crate::kit::{
    annotation_is_true, apply_status, follow_deletion_policy, forget_expired, object_key,
    outcome_of_error, remove_finalizer, Kit,
};
pub use crate::kit::{BackoffConfig, Settings};
use crate::metrics::Metrics;
use crate::plan::responses::{
    desired_responses, plan_responses, plan_restore, ResponseCall, ResponseCallKind,
};
use crate::plan::{plan, PatchOperation, Plan};
use crate::snapshot::{ApiKey, Snapshots};
use crate::{FINALIZER, ORPHAN_ANNOTATION, PAUSE_ANNOTATION};

pub use crate::kit::Error;

/// The context acting for one admitted object: `ctx.aws` is the AWS layer as the object's
/// identity.
type Acting<'a, A> = Admitted<'a, Context<A>, A>;

/// Shared by every reconcile of ApiGatewayIntegrations; the kit's parts through `Deref`.
pub struct Context<A: AwsApi> {
    kit: Kit,
    pub aws: Arc<A>,
    snapshots: Snapshots,
    /// Integration-response calls a re-create could not send yet.
    pending_responses: Mutex<HashMap<String, Vec<ResponseCall>>>,
    /// Every watched object (the controller's cache), for the ownership check.
    peers: std::sync::OnceLock<Peers>,
}

impl<A: AwsApi> std::ops::Deref for Context<A> {
    type Target = Kit;

    fn deref(&self) -> &Kit {
        &self.kit
    }
}

/// Lists the watched objects (the cache's copies: see [`crate::cache`]).
pub type Peers = Box<dyn Fn() -> Vec<Arc<CachedIntegration>> + Send + Sync>;

impl<A: AwsApi> Context<A> {
    pub fn new(
        client: kube::Client,
        aws: Arc<A>,
        settings: Settings,
        metrics: Arc<Metrics>,
    ) -> Self {
        Context {
            snapshots: Snapshots::new(settings.resync_period / 2),
            kit: Kit::new("integration", client, settings, metrics),
            aws,
            pending_responses: Mutex::new(HashMap::new()),
            peers: std::sync::OnceLock::new(),
        }
    }

    /// Where the ownership check finds the other objects (set once, by `run`).
    pub fn set_peers(&self, peers: Peers) {
        let _ = self.peers.set(peers);
    }

    /// Every watched integration (the controller's cache).
    pub fn peers(&self) -> Vec<Arc<CachedIntegration>> {
        self.peers.get().map(|list| list()).unwrap_or_default()
    }

    /// The object that owns `target` when it is not `obj` (an older claimant).
    fn owner_other_than(
        &self,
        obj: &ApiGatewayIntegration,
        target: &ResolvedTarget,
    ) -> Option<String> {
        let peers = self.peers_in_account(obj, target);
        other_owner(obj, target, &peers, &self.settings.default_region)
    }

    /// The watched objects claiming `target` that act in the same account as `obj` (see
    /// [`crate::access::gate::Gate::account_key`]). The account is worked out only for the
    /// claimants of `target`, not for every watched object.
    fn peers_in_account(
        &self,
        obj: &ApiGatewayIntegration,
        target: &ResolvedTarget,
    ) -> Vec<Arc<CachedIntegration>> {
        let gate = &self.settings.gate;
        let region = &self.settings.default_region;
        let account = |namespace: Option<String>, spec: &ApiGatewayIntegrationSpec| {
            gate.account_key(&namespace.unwrap_or_default(), spec.access_ref.as_deref())
        };
        let mine = account(obj.namespace(), &obj.spec);
        self.peers()
            .into_iter()
            .filter(|peer| claims(&**peer, target, region))
            .filter(|peer| account(peer.namespace(), &peer.spec) == mine)
            .collect()
    }

    /// Who takes `target` over when `obj` goes: its owner if that is not `obj`, else the
    /// oldest other claimant that is not being deleted.
    fn successor(&self, obj: &ApiGatewayIntegration, target: &ResolvedTarget) -> Option<String> {
        let peers = self.peers_in_account(obj, target);
        let region = &self.settings.default_region;
        other_owner(obj, target, &peers, region).or_else(|| {
            claimants(obj, target, &peers, region)
                .filter(|peer| peer.meta().deletion_timestamp.is_none())
                .map(|peer| claim_order(&**peer))
                .min()
                .map(|(_, key)| key)
        })
    }

    /// Drops everything remembered about objects for which `exists` is false.
    fn prune(&self, exists: impl Fn(&str) -> bool) {
        self.prune_written(&exists);
        // Whatever the kit, the snapshots or a re-create remember about an object.
        let mut known = self.remembered_keys();
        known.extend(self.snapshots.member_keys());
        known.extend(
            self.pending_responses
                .lock()
                .expect("pending lock")
                .keys()
                .cloned(),
        );
        known.sort_unstable();
        known.dedup();
        for key in known.into_iter().filter(|key| !exists(key)) {
            self.forget_object(&key);
        }
    }

    /// Forgets `object` entirely (deleted).
    fn forget_object(&self, object: &str) {
        self.kit.forget_object(object);
        self.snapshots.leave(object);
        self.pending_responses
            .lock()
            .expect("pending lock")
            .remove(object);
    }
}

/// What a reconcile decided, before status is written.
struct Decision {
    outcome: Outcome,
    integration: Option<Integration>,
    target: Option<ResolvedTarget>,
    sent: Option<Vec<PatchOperation>>,
    /// The integration-response calls this reconcile sent, if any.
    response_calls: Option<Vec<ResponseCall>>,
    wrote_aws: bool,
    /// When to reconcile again (None: on the next change). With an `integration`, its status
    /// copy stands in for a drift read until a little before then, so the requeued drift
    /// check does read.
    requeue_after: Option<Duration>,
    /// AWS was compared with this generation and the comparison settled it (Synced, Drifted,
    /// RequiresReplacement): `status.syncedGeneration` moves to it.
    verdict: bool,
    /// `integration` was read from AWS (or is AWS's answer to a write) in this reconcile, not
    /// the status copy: `status.lastObservedTime` may move.
    observed: bool,
}

impl Decision {
    /// A decision that learnt nothing about AWS.
    fn without_aws(outcome: Outcome, requeue_after: Option<Duration>) -> Self {
        Decision {
            outcome,
            integration: None,
            target: None,
            sent: None,
            response_calls: None,
            wrote_aws: false,
            requeue_after,
            verdict: false,
            observed: false,
        }
    }
}

#[instrument(skip_all, fields(object = %object_key(&*cached)))]
pub async fn reconcile<A: AwsApi>(
    cached: Arc<CachedIntegration>,
    ctx: Arc<Context<A>>,
) -> Result<Action, Error> {
    let started = Instant::now();
    ctx.starting(&*cached);
    // The whole object, for the reconcile: status is applied whole.
    let obj = cached.full();
    let observed = obj.status.as_ref().and_then(|s| s.observed_generation);
    if let Some(wait) = ctx.hold_back(&obj, observed) {
        return Ok(Action::requeue(wait));
    }
    let result = reconcile_inner(&obj, &ctx).await;
    ctx.reconciled(&result, started);
    result
}

async fn reconcile_inner<A: AwsApi>(
    obj: &ApiGatewayIntegration,
    ctx: &Context<A>,
) -> Result<Action, Error> {
    let api: Api<ApiGatewayIntegration> =
        Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
    let key = object_key(obj);
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

    // 4. A spec AWS rejected (400) is sent again at the resync period, not before: the 400 may
    //    come from AWS-side state that changes later (a VPC link still pending, a quota).
    let status = obj.status.clone().unwrap_or_default();
    if let Some(wait) = invalid_spec_wait(obj, &status, &ctx) {
        return Ok(Action::requeue(wait));
    }

    let decision = match decide(obj, &ctx, &status).await {
        Ok(decision) => decision,
        Err(Error::Aws(e)) => {
            forget_expired(ctx.aws.as_ref(), &ctx.identity, &e);
            if transient_drift_failure(obj, &status, &e, ctx.failures(&key)) {
                tracing::debug!(error = %e, "drift check failed; Ready stays while it is transient");
                return Err(Error::Aws(e));
            }
            let outcome = outcome_of_error(&e, &ctx.identity);
            if matches!(outcome, Outcome::InvalidSpec(_)) {
                let resync = Some(ctx.jittered_resync());
                return finish(&api, obj, &ctx, Decision::without_aws(outcome, resync)).await;
            }
            finish(&api, obj, &ctx, Decision::without_aws(outcome, None)).await?;
            return Err(Error::Aws(e));
        }
        Err(e) => return Err(e),
    };
    finish(&api, obj, &ctx, decision).await
}

/// A drift check (no spec change pending) of a Ready object that failed for a reason that goes
/// away by itself (429, 5xx, a timeout): Ready stays as it is and the object backs off, for up
/// to [`TRANSIENT_DRIFT_FAILURES`] tries in a row; a drift check says nothing new about AWS
/// until it succeeds. `status.lastObservedTime` shows how long that has been.
fn transient_drift_failure(
    obj: &ApiGatewayIntegration,
    status: &ApiGatewayIntegrationStatus,
    e: &AwsError,
    failures_so_far: u32,
) -> bool {
    let ready = status
        .conditions
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    e.is_retryable()
        && ready
        && synced_generation(status) == obj.meta().generation
        && failures_so_far + 1 < TRANSIENT_DRIFT_FAILURES
}

/// Consecutive failed drift checks after which Ready turns False (the failure is not transient).
const TRANSIENT_DRIFT_FAILURES: u32 = 3;

/// Step 2: admitted, allowed, and acting as the access's identity.
async fn admit<'a, A: AwsApi>(
    obj: &ApiGatewayIntegration,
    ctx: &'a Context<A>,
) -> Result<Acting<'a, A>, Refusal> {
    let region = &ctx.settings.default_region;
    Admitted::admit_object(ctx, &ctx.settings.gate, &ctx.aws, obj, region).await
}

/// A refused object: Forbidden, one Warning Event (on the change of reason), no AWS call.
/// Checked again at the resync period, and at once when an access or a namespace changes.
async fn forbidden<A: AwsApi>(
    api: &Api<ApiGatewayIntegration>,
    obj: &ApiGatewayIntegration,
    ctx: &Context<A>,
    refusal: Refusal,
) -> Result<Action, Error> {
    let resync = Some(ctx.jittered_resync());
    let outcome = Outcome::Forbidden(refusal.message);
    finish(api, obj, ctx, Decision::without_aws(outcome, resync)).await
}

/// How long an InvalidSpec of this generation still waits before it is tried again. The
/// in-memory hold is set when AWS said 400; after a restart, the Ready condition's transition
/// time stands in for it.
fn invalid_spec_wait<A: AwsApi>(
    obj: &ApiGatewayIntegration,
    status: &ApiGatewayIntegrationStatus,
    ctx: &Context<A>,
) -> Option<Duration> {
    let ready = status.conditions.iter().find(|c| c.type_ == "Ready")?;
    if ready.reason != "InvalidSpec" || status.observed_generation != obj.meta().generation {
        return None;
    }
    if let Some(wait) = ctx.backing_off(&object_key(obj)) {
        return Some(wait);
    }
    let since = k8s_openapi::jiff::Timestamp::now().duration_since(ready.last_transition_time.0);
    let since = Duration::try_from(since).unwrap_or_default();
    let wait = ctx.settings.resync_period.checked_sub(since)?;
    ctx.hold(&object_key(obj), wait);
    Some(wait)
}

/// Step 1: an object being deleted. With `deletionPolicy: Delete` the integration is deleted
/// in AWS first (404 = done) — unless the object does not own it (an older object manages
/// it) or a live object claims it too (it is handed over, not deleted), or the object is
/// orphaned with `apigw.dev/orphan: "true"`. A paused object keeps its finalizer until it is
/// unpaused or orphaned.
async fn delete<A: AwsApi>(
    api: &Api<ApiGatewayIntegration>,
    obj: &ApiGatewayIntegration,
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
            let paused = Decision::without_aws(Outcome::Paused, None);
            return finish(api, obj, ctx, paused).await;
        }
        let target = claimed_target(obj, &ctx.settings.default_region);
        match target.as_ref().and_then(|t| ctx.successor(obj, t)) {
            Some(successor) => {
                let note = format!(
                    "the integration was not deleted: {successor} manages it too and takes it over"
                );
                publish(ctx, obj, EventType::Normal, "HandedOver", "Delete", note).await;
            }
            None => {
                let acting = match admit(obj, ctx).await {
                    Ok(acting) => acting,
                    Err(refusal) => {
                        let refusal = refused_delete(refusal, "DeleteIntegration");
                        return forbidden(api, obj, ctx, refusal).await;
                    }
                };
                if let Err(e) = delete_in_aws(obj, &acting).await {
                    if let Error::Aws(aws) = &e {
                        forget_expired(acting.aws.as_ref(), &acting.identity, aws);
                    }
                    let outcome = Outcome::DeleteFailed(format!(
                        "DeleteIntegration failed, retrying with backoff: {}",
                        e
                    ));
                    finish(api, obj, ctx, Decision::without_aws(outcome, None)).await?;
                    return Err(e);
                }
            }
        }
    }
    remove_finalizer(api, obj).await?;
    ctx.forget_object(&key);
    Ok(Action::await_change())
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

fn key_of(target: &ResolvedTarget) -> IntegrationKey {
    IntegrationKey {
        region: target.region.clone(),
        rest_api_id: target.rest_api_id.clone(),
        resource_id: target.resource_id.clone(),
        http_method: target.http_method.clone(),
    }
}

/// The integration an object claims, known without calling AWS: its pinned `status.target`,
/// else the ids its spec names. An object that names its API or resource by name and was
/// never resolved claims nothing yet; its first reconcile resolves and pins it.
fn claimed_target(obj: &impl Claimant, default_region: &str) -> Option<ResolvedTarget> {
    if let Some(target) = obj.pinned_target() {
        return Some(target.clone());
    }
    let spec = obj.claim_spec();
    Some(ResolvedTarget {
        rest_api_id: spec.rest_api_id.clone()?,
        resource_id: spec.resource_id.clone()?,
        http_method: spec.http_method.to_string(),
        region: spec
            .region
            .clone()
            .unwrap_or_else(|| default_region.to_string()),
    })
}

/// Whether `obj` claims `target` ([`claimed_target`] without allocating: the ownership check
/// asks it of every watched object).
fn claims(obj: &impl Claimant, target: &ResolvedTarget, default_region: &str) -> bool {
    if let Some(pinned) = obj.pinned_target() {
        return pinned == target;
    }
    let spec = obj.claim_spec();
    spec.rest_api_id.as_deref() == Some(target.rest_api_id.as_str())
        && spec.resource_id.as_deref() == Some(target.resource_id.as_str())
        && spec.http_method.as_str() == target.http_method
        && spec.region.as_deref().unwrap_or(default_region) == target.region
}

/// Who owns an integration among its claimants: the oldest, by creationTimestamp, then
/// namespace/name.
fn claim_order(obj: &impl ResourceExt) -> (Option<k8s_openapi::jiff::Timestamp>, String) {
    (
        obj.meta().creation_timestamp.as_ref().map(|t| t.0),
        object_key(obj),
    )
}

/// The other objects among `peers` that claim `target`.
fn claimants<'a>(
    me: &'a ApiGatewayIntegration,
    target: &'a ResolvedTarget,
    peers: &'a [Arc<CachedIntegration>],
    default_region: &'a str,
) -> impl Iterator<Item = &'a Arc<CachedIntegration>> + 'a {
    peers.iter().filter(move |peer| {
        peer.meta().uid != me.meta().uid
            && object_key(&***peer) != object_key(me)
            && claims(&***peer, target, default_region)
    })
}

/// The owner of `target` when it is not `me`: the oldest claimant among `peers` and `me`.
pub fn other_owner(
    me: &ApiGatewayIntegration,
    target: &ResolvedTarget,
    peers: &[Arc<CachedIntegration>],
    default_region: &str,
) -> Option<String> {
    claimants(me, target, peers, default_region)
        .map(|peer| claim_order(&**peer))
        .filter(|order| *order < claim_order(me))
        .min()
        .map(|(_, key)| key)
}

/// Where the live Integration a plan starts from came from. The plan's trust in it differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    /// The status copy of AWS's last answer, younger than the next drift check: as good as a
    /// read for a patch or "in sync".
    FreshAnswer,
    /// The status copy of AWS's last answer, of any age: used only to plan a patch for a spec
    /// change. If AWS was changed out of band since, UpdateIntegration refuses the plan or
    /// answers with the stray field, and either is caught below; anything else is read first.
    LastAnswer,
    /// This object's share of the API-wide snapshot: a drift read, at most half a resync
    /// period old. Trusted for a patch or "in sync"; a drift check catches what changed since.
    Snapshot,
    /// AWS's answer to this reconcile's own UpdateIntegration.
    Answer,
    /// GetIntegration in this reconcile: the only source a re-create (or the report that one
    /// is needed) rests on.
    Read,
}

impl Source {
    /// Whether "in sync" may rest on it; otherwise read first.
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

/// The generation AWS last held (or was judged against). Status written before
/// `syncedGeneration` existed says it with a Synced Ready condition.
fn synced_generation(status: &ApiGatewayIntegrationStatus) -> Option<i64> {
    status.synced_generation.or_else(|| {
        (ready_reason(&status.conditions) == Some("Synced"))
            .then_some(status.observed_generation)
            .flatten()
    })
}

/// The status copy of an answer stops standing in for a read this long before the drift check
/// it was requeued for.
const FRESHNESS_MARGIN: Duration = Duration::from_secs(1);

/// How many UpdateIntegration calls one reconcile may send: the planned one, and one more when
/// AWS's answer shows a field changed out of band meanwhile.
const MAX_UPDATES_PER_RECONCILE: usize = 2;

/// NotConverged is retried with the object's backoff this many times in a row; after that, once
/// per resync period. A field AWS never takes costs a few calls per period, not a stream.
const NOT_CONVERGED_QUICK_RETRIES: u32 = 3;

/// How often an object in Conflict checks (in memory, no AWS call) whether it owns its
/// integration now.
const CONFLICT_RECHECK: Duration = Duration::from_secs(10);

/// A reconcile's loop over sources and plans ends after this many rounds whatever happens (each
/// round reads or writes at most once).
const MAX_ROUNDS: usize = 6;

/// Steps 4–6: everything that talks to AWS for a live object.
async fn decide<A: AwsApi>(
    obj: &ApiGatewayIntegration,
    ctx: &Acting<'_, A>,
    status: &ApiGatewayIntegrationStatus,
) -> Result<Decision, Error> {
    let key = object_key(obj);
    let spec_changed = synced_generation(status) != obj.meta().generation;
    let priority = if spec_changed {
        Priority::Change
    } else {
        Priority::Drift
    };

    // 4. Resolve the target, pin it, and check it is ours. A pinned target is checked for
    //    ownership before anything else, so an object in Conflict calls AWS not even for lookups.
    let pinned = status.target.clone();
    if let Some(decision) = pinned.as_ref().and_then(|t| conflict(obj, ctx, t)) {
        return Ok(decision);
    }
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
    let request = obj.access_request(&ctx.settings.default_region, Some(&target.rest_api_id));
    if let Err(refusal) = ctx.allows(&request) {
        return Ok(Decision::without_aws(
            Outcome::Forbidden(refusal.message),
            Some(ctx.jittered_resync()),
        ));
    }
    let now_resolved = resolved(&target);
    match &pinned {
        Some(pinned) if *pinned != now_resolved => {
            return Ok(target_changed(pinned, &now_resolved));
        }
        Some(_) => {}
        None => {
            if let Some(decision) = conflict(obj, ctx, &now_resolved) {
                return Ok(decision);
            }
        }
    }
    ctx.snapshots.join(&key, &target);
    // Responses a re-create of an earlier reconcile could not put back yet.
    restore_pending_responses(ctx, &key, &target).await?;
    plan_and_write(obj, ctx, status, &target, spec_changed, priority).await
}

/// Conflict when an older object claims `target`.
fn conflict<A: AwsApi>(
    obj: &ApiGatewayIntegration,
    ctx: &Context<A>,
    target: &ResolvedTarget,
) -> Option<Decision> {
    let owner = ctx.owner_other_than(obj, target)?;
    let message = format!(
        "{owner} manages this integration ({}): it is older; this object makes no AWS call until {owner} is deleted",
        key_of(target)
    );
    Some(Decision {
        target: Some(target.clone()),
        ..Decision::without_aws(Outcome::Conflict(message), Some(CONFLICT_RECHECK))
    })
}

fn target_changed(pinned: &ResolvedTarget, now: &ResolvedTarget) -> Decision {
    let message = format!(
        "the spec now resolves to {} but this object manages {} (status.target, pinned at its first resolution); nothing is written. Delete and re-create the object to manage the new target",
        key_of(now),
        key_of(pinned)
    );
    Decision::without_aws(Outcome::TargetChanged(message), None)
}

/// What one reconcile has written so far, and what the next plan must not repeat.
#[derive(Default)]
struct Written {
    /// The operations of the last UpdateIntegration.
    ops: Option<Vec<PatchOperation>>,
    updates: usize,
    /// The response calls sent, in order.
    response_calls: Vec<ResponseCall>,
}

impl Written {
    fn any(&self) -> bool {
        self.ops.is_some() || !self.response_calls.is_empty()
    }

    /// Paths a new plan would touch again: AWS answered the last write with something else
    /// (it normalised the value, ignored the op, or another writer got in between).
    fn repeated(&self, ops: &[PatchOperation], calls: &[ResponseCall]) -> Vec<String> {
        let mut paths: Vec<String> = ops
            .iter()
            .filter(|op| self.ops.iter().flatten().any(|s| s.path == op.path))
            .map(|op| op.path.clone())
            .collect();
        paths.extend(
            calls
                .iter()
                .filter(|c| {
                    self.response_calls
                        .iter()
                        .any(|s| s.status_code == c.status_code)
                })
                .map(|c| format!("/integrationResponses/{}", c.status_code)),
        );
        paths.dedup();
        paths
    }
}

/// Steps 5–6: the live Integration from the cheapest source that can be trusted, the plan, and
/// the writes it needs: at most one UpdateIntegration (two when AWS's answer shows a field
/// changed meanwhile), then one call per integration response that differs.
async fn plan_and_write<A: AwsApi>(
    obj: &ApiGatewayIntegration,
    ctx: &Acting<'_, A>,
    status: &ApiGatewayIntegrationStatus,
    target: &IntegrationKey,
    spec_changed: bool,
    priority: Priority,
) -> Result<Decision, Error> {
    let policy = obj.spec.management_policy;
    let resync = ctx.jittered_resync();
    let judged =
        |outcome: Outcome, integration: Integration, written: &Written, source: Source| Decision {
            outcome,
            integration: Some(integration),
            target: Some(resolved(target)),
            sent: written
                .ops
                .clone()
                .or_else(|| status.last_patch_operations.clone()),
            response_calls: Some(written.response_calls.clone())
                .filter(|calls| !calls.is_empty())
                .or_else(|| status.last_response_calls.clone()),
            wrote_aws: written.any(),
            requeue_after: Some(resync),
            verdict: true,
            observed: !matches!(source, Source::FreshAnswer | Source::LastAnswer),
        };

    let mut from_memory = last_answer(status, target).cloned();
    let mut may_use_snapshot = true;
    let mut written = Written::default();
    let mut answer: Option<(Integration, Source)> = None;
    for _ in 0..MAX_ROUNDS {
        let (live, source) = match answer.take() {
            Some(known) => known,
            None => match from_memory.take() {
                Some(last) if ctx.is_fresh(&object_key(obj)) => (last, Source::FreshAnswer),
                Some(last) if spec_changed && policy != ManagementPolicy::Observe => {
                    (last, Source::LastAnswer)
                }
                _ => match read_live(
                    ctx,
                    target,
                    priority,
                    may_use_snapshot,
                    policy == ManagementPolicy::CreateOrUpdate,
                )
                .await
                {
                    Ok(read) => read,
                    Err(AwsError::NotFound { message }) => {
                        if policy == ManagementPolicy::CreateOrUpdate
                            && message.contains("Integration")
                        {
                            let created = create(ctx, obj, target, None, "Created").await?;
                            written.response_calls = created.1;
                            return Ok(judged(
                                Outcome::Synced,
                                created.0,
                                &written,
                                Source::Answer,
                            ));
                        }
                        ctx.aws.invalidate_lookups(&target.region);
                        return Ok(not_found(message, Some(target), ctx, obj));
                    }
                    Err(e) => return Err(e.into()),
                },
            },
        };

        // 6. Plan. A re-create, or the report that one is needed, rests on GetIntegration in
        //    this reconcile only; "in sync" on anything but an old answer; a response call on
        //    anything but an old answer too (a PutIntegrationResponse carries the response's
        //    unmanaged fields back as they were read).
        let planned = plan(&obj.spec, &live);
        let calls = plan_responses(
            obj.spec.integration_responses.as_ref(),
            live.integration_responses.as_ref(),
        );
        let patches = matches!(&planned, Plan::Patch(ops) if !ops.is_empty());
        if matches!(planned, Plan::Replace(_)) && source != Source::Read {
            may_use_snapshot = false;
            continue;
        }
        if !patches && !source.settles() {
            continue;
        }
        let ops = match (planned, policy) {
            (plan, _) if plan.is_in_sync() && calls.is_empty() => {
                return Ok(judged(Outcome::Synced, live, &written, source));
            }
            (plan, ManagementPolicy::Observe) => {
                let outcome = Outcome::Drifted(drift_message(&plan, &calls));
                return Ok(judged(outcome, live, &written, source));
            }
            (Plan::Replace(reasons), ManagementPolicy::CreateOrUpdate) => {
                let (created, calls) = recreate(ctx, obj, target, &live, &reasons).await?;
                written.response_calls = calls;
                return Ok(judged(Outcome::Synced, created, &written, Source::Answer));
            }
            (Plan::Replace(reasons), _) => {
                let outcome = Outcome::RequiresReplacement(format!(
                    "{}. Set spec.managementPolicy: CreateOrUpdate to let the operator re-create the integration with PutIntegration",
                    join_reasons(&reasons)
                ));
                return Ok(judged(outcome, live, &written, source));
            }
            (Plan::Patch(ops), _) => ops,
        };

        // AWS answered the last write with a value other than the one sent: sending it again
        // at once would only repeat that.
        let repeated = written.repeated(&ops, if ops.is_empty() { &calls } else { &[] });
        if !repeated.is_empty() {
            return Ok(not_converged(ctx, obj, target, live, repeated, &written));
        }
        let stale = matches!(
            source,
            Source::FreshAnswer | Source::LastAnswer | Source::Snapshot
        );
        let result = if ops.is_empty() {
            write_responses(ctx, obj, target, live, calls, spec_changed, &mut written).await
        } else {
            update(ctx, obj, target, ops, spec_changed, &mut written).await
        };
        match result {
            Ok(next) => {
                if written.updates >= MAX_UPDATES_PER_RECONCILE && written.response_calls.is_empty()
                {
                    // Already the second UpdateIntegration: what still differs is not
                    // converging.
                    if let Plan::Patch(still) = plan(&obj.spec, &next) {
                        if !still.is_empty() {
                            let paths = still.into_iter().map(|op| op.path).collect();
                            return Ok(not_converged(ctx, obj, target, next, paths, &written));
                        }
                    }
                }
                // AWS answers with the whole integration (or response): a field changed out of
                // band, that this plan did not touch, shows here and is planned for next.
                answer = Some((next, Source::Answer));
            }
            // AWS was changed out of band since the answer this plan started from (a key or a
            // response gone, say): read it and plan again; the next plan starts from a read.
            Err(AwsError::Invalid { .. } | AwsError::NotFound { .. }) if stale => {
                info!(?source, "AWS refused a plan made from an earlier answer; reading AWS and planning again");
                may_use_snapshot = false;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::Aws(AwsError::retryable(
        RetryKind::Server,
        "AWS's answers kept changing while the operator planned; retrying with backoff",
    )))
}

/// One UpdateIntegration; AWS's answer.
async fn update<A: AwsApi>(
    ctx: &Acting<'_, A>,
    obj: &ApiGatewayIntegration,
    target: &IntegrationKey,
    ops: Vec<PatchOperation>,
    spec_changed: bool,
    written: &mut Written,
) -> Result<Integration, AwsError> {
    let updated = ctx.aws.update_integration(target, &ops).await?;
    ctx.snapshots.record(target, &updated).await;
    let note = format!("UpdateIntegration changed {}", paths_of(&ops));
    publish(
        ctx,
        obj,
        EventType::Normal,
        change_reason(spec_changed),
        "UpdateIntegration",
        note,
    )
    .await;
    written.updates += 1;
    written.ops = Some(ops);
    Ok(updated)
}

/// The response calls, in order; `live` with AWS's answers in place.
async fn write_responses<A: AwsApi>(
    ctx: &Acting<'_, A>,
    obj: &ApiGatewayIntegration,
    target: &IntegrationKey,
    mut live: Integration,
    calls: Vec<ResponseCall>,
    spec_changed: bool,
    written: &mut Written,
) -> Result<Integration, AwsError> {
    for call in calls {
        let answer = response_call(ctx, target, &call).await?;
        set_response(&mut live, &call.status_code, answer);
        written.response_calls.push(call);
    }
    ctx.snapshots.record(target, &live).await;
    let note = format!(
        "integration responses: {}",
        written
            .response_calls
            .iter()
            .map(ResponseCall::describe)
            .collect::<Vec<_>>()
            .join(", ")
    );
    publish(
        ctx,
        obj,
        EventType::Normal,
        change_reason(spec_changed),
        "IntegrationResponses",
        note,
    )
    .await;
    Ok(live)
}

/// One response call. AWS's 404 "Invalid Response status code specified" on a Put means the
/// method has no method response of that code (this operator does not manage method
/// responses): a spec problem, not a missing target.
async fn response_call<A: AwsApi>(
    ctx: &Acting<'_, A>,
    target: &IntegrationKey,
    call: &ResponseCall,
) -> Result<Option<IntegrationResponse>, AwsError> {
    match ctx.aws.integration_response_call(target, call).await {
        Err(AwsError::NotFound { message })
            if call.call == ResponseCallKind::PutIntegrationResponse
                && message.contains("Response status code") =>
        {
            Err(AwsError::Invalid {
                code: "NotFoundException".into(),
                message: format!(
                    "{message} (spec.integrationResponses.{}: the method needs a method response with this status code; create it first)",
                    call.status_code
                ),
            })
        }
        other => other,
    }
}

fn set_response(live: &mut Integration, code: &str, answer: Option<IntegrationResponse>) {
    let responses = live.integration_responses.get_or_insert_default();
    match answer {
        Some(response) => {
            responses.insert(code.to_string(), response);
        }
        None => {
            responses.remove(code);
        }
    }
}

fn change_reason(spec_changed: bool) -> &'static str {
    if spec_changed {
        "Updated"
    } else {
        "DriftCorrected"
    }
}

fn paths_of(ops: &[PatchOperation]) -> String {
    let mut paths: Vec<&str> = ops.iter().map(|op| op.path.as_str()).collect();
    paths.dedup();
    paths.join(", ")
}

/// AWS's answer still differs from the spec after a write: `Ready=False` with the paths that
/// differ (never the values), retried with backoff, then once per resync period.
fn not_converged<A: AwsApi>(
    ctx: &Context<A>,
    obj: &ApiGatewayIntegration,
    target: &IntegrationKey,
    live: Integration,
    paths: Vec<String>,
    written: &Written,
) -> Decision {
    let (failures, delay) = ctx.fail_counted(&object_key(obj), None);
    let requeue = if failures <= NOT_CONVERGED_QUICK_RETRIES {
        delay
    } else {
        // Our own status write (lastWriteTime moves) is a watch event: held back, like any
        // other, until the resync period.
        let resync = ctx.jittered_resync();
        ctx.defer(&object_key(obj), resync);
        resync
    };
    warn!(paths = ?paths, failures, "AWS's answer to a write still differs from the spec");
    Decision {
        outcome: Outcome::NotConverged(format!(
            "AWS's answer still differs from the spec at {} (AWS normalised or ignored the value, or another writer changed it); retrying with backoff",
            paths.join(", ")
        )),
        integration: Some(live),
        target: Some(resolved(target)),
        sent: written.ops.clone(),
        response_calls: Some(written.response_calls.clone()).filter(|c| !c.is_empty()),
        wrote_aws: true,
        requeue_after: Some(requeue),
        verdict: false,
        observed: false,
    }
}

/// PutIntegration over an integration that UpdateIntegration cannot change, decided from
/// GetIntegration in this reconcile (`read`).
async fn recreate<A: AwsApi>(
    ctx: &Acting<'_, A>,
    obj: &ApiGatewayIntegration,
    target: &IntegrationKey,
    read: &Integration,
    reasons: &[impl ToString],
) -> Result<(Integration, Vec<ResponseCall>), AwsError> {
    info!(reasons = %join_reasons(reasons), "re-creating the integration with PutIntegration");
    create(ctx, obj, target, Some(read), "Replaced").await
}

/// PutIntegration from the spec, then the integration responses AWS should hold: the spec's,
/// merged over what `read` held, and every response of `read` the spec does not manage.
/// PutIntegration drops the responses (`aws-apigateway-deploy-facts.md` §3: inferred, not
/// recorded); whichever AWS does, the calls are planned against its answer, so a response it
/// kept costs nothing. Calls not sent yet are kept in memory and sent first next time.
async fn create<A: AwsApi>(
    ctx: &Acting<'_, A>,
    obj: &ApiGatewayIntegration,
    target: &IntegrationKey,
    read: Option<&Integration>,
    reason: &str,
) -> Result<(Integration, Vec<ResponseCall>), AwsError> {
    let desired = desired_responses(
        obj.spec.integration_responses.as_ref(),
        read.and_then(|r| r.integration_responses.as_ref()),
    );
    let note = match read {
        Some(_) => "re-created the integration with PutIntegration".to_string(),
        None => "created the integration with PutIntegration".to_string(),
    };
    let mut created = ctx.aws.put_integration(target, &obj.spec).await?;
    ctx.snapshots.record(target, &created).await;
    publish(ctx, obj, EventType::Normal, reason, "PutIntegration", note).await;
    let calls = plan_restore(&desired, created.integration_responses.as_ref());
    if calls.is_empty() {
        return Ok((created, calls));
    }
    let key = object_key(obj);
    ctx.pending_responses
        .lock()
        .expect("pending lock")
        .insert(key.clone(), calls.clone());
    for (code, answer) in restore_pending_responses(ctx, &key, target).await? {
        set_response(&mut created, &code, answer);
    }
    ctx.snapshots.record(target, &created).await;
    Ok((created, calls))
}

/// Sends the response calls a (re-)create could not send yet, in order; each is forgotten
/// once AWS took it. AWS's answers by status code.
async fn restore_pending_responses<A: AwsApi>(
    ctx: &Acting<'_, A>,
    key: &str,
    target: &IntegrationKey,
) -> Result<Vec<(String, Option<IntegrationResponse>)>, AwsError> {
    let pending = ctx
        .pending_responses
        .lock()
        .expect("pending lock")
        .get(key)
        .cloned()
        .unwrap_or_default();
    let mut answers = Vec::new();
    for call in pending {
        let answer = response_call(ctx, target, &call).await?;
        let mut pending = ctx.pending_responses.lock().expect("pending lock");
        if let Some(left) = pending.get_mut(key) {
            left.retain(|c| c != &call);
            if left.is_empty() {
                pending.remove(key);
            }
        }
        answers.push((call.status_code, answer));
    }
    Ok(answers)
}

fn join_reasons(reasons: &[impl ToString]) -> String {
    reasons
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

fn drift_message(plan: &Plan, calls: &[ResponseCall]) -> String {
    let mut parts = Vec::new();
    match plan {
        Plan::Patch(ops) if ops.is_empty() => {}
        Plan::Patch(ops) => parts.push(format!("UpdateIntegration would change {}", paths_of(ops))),
        Plan::Replace(reasons) => parts.push(join_reasons(reasons)),
    }
    if !calls.is_empty() {
        parts.push(format!(
            "integration responses would need {}",
            calls
                .iter()
                .map(ResponseCall::describe)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    format!("AWS differs from the spec: {}", parts.join("; "))
}

/// The live integration when no answer in memory will do: this object's share of the
/// API-wide snapshot when several objects share the API (and the snapshot may serve), else
/// GetIntegration. A method or integration missing from the snapshot is confirmed with
/// GetIntegration: the snapshot may predate its creation.
async fn read_live<A: AwsApi>(
    ctx: &Acting<'_, A>,
    target: &IntegrationKey,
    priority: Priority,
    may_use_snapshot: bool,
    may_create: bool,
) -> Result<(Integration, Source), AwsError> {
    if may_use_snapshot && ctx.snapshots.is_shared(&ApiKey::from(target)) {
        match ctx.snapshots.read(ctx.aws.as_ref(), target, priority).await {
            Ok(live) => return Ok((live, Source::Snapshot)),
            // Creating costs one call: a recent listing (or a new one) is the read.
            Err(AwsError::NotFound { .. })
                if may_create
                    && ctx
                        .snapshots
                        .confirm_absent(ctx.aws.as_ref(), target)
                        .await? =>
            {
                return Err(crate::snapshot::no_integration());
            }
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
        target: target.map(resolved),
        ..Decision::without_aws(Outcome::TargetNotFound(message), Some(delay))
    }
}

async fn delete_in_aws<A: AwsApi>(
    obj: &ApiGatewayIntegration,
    ctx: &Acting<'_, A>,
) -> Result<(), Error> {
    let target = match obj.status.as_ref().and_then(|s| s.target.clone()) {
        Some(t) => key_of(&t),
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
async fn publish<A: AwsApi>(
    ctx: &Context<A>,
    obj: &ApiGatewayIntegration,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
) {
    ctx.kit.publish(obj, type_, reason, action, note).await;
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
    let mut next = next_status(&current, &decision, conditions, generation);
    if decision.wrote_aws {
        next.last_write_time = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
            now.0,
        ));
    }
    if decision.observed && observation_due(&current, ctx.settings.resync_period, &now) {
        next.last_observed_time = Some(now.clone());
    }
    let changed = next != current;
    if changed || decision.wrote_aws {
        if decision.outcome == Outcome::Synced {
            next.last_sync_time = Some(now);
        }
        let Some(written) = apply_status(api, obj, &next).await? else {
            // The object was deleted, or re-created under its name: this status is not its.
            return Ok(Action::await_change());
        };
        ctx.wrote_status(&object_key(obj), written.resource_version());
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
    match (&decision.outcome, decision.requeue_after) {
        (Outcome::InvalidSpec(_), Some(wait)) => ctx.hold(&object_key(obj), wait),
        (outcome, _) if !outcome.is_reconciling() => ctx.succeed(&object_key(obj)),
        _ => {}
    }
    if decision.wrote_aws {
        info!(reason, "wrote to AWS");
    }
    Ok(decision
        .requeue_after
        .map_or_else(Action::await_change, Action::requeue))
}

/// Whether `status.lastObservedTime` is worth a status write: missing, or older than half a
/// resync period (so a drift check, once per resync period, moves it; see the field).
fn observation_due(
    status: &ApiGatewayIntegrationStatus,
    resync_period: Duration,
    now: &Time,
) -> bool {
    status.last_observed_time.as_ref().is_none_or(|at| {
        now.0.duration_since(at.0).as_secs_f64() >= resync_period.as_secs_f64() / 2.0
    })
}

/// The status a decision leads to (before `lastSyncTime`).
fn next_status(
    current: &ApiGatewayIntegrationStatus,
    decision: &Decision,
    conditions: Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>,
    generation: Option<i64>,
) -> ApiGatewayIntegrationStatus {
    ApiGatewayIntegrationStatus {
        observed_generation: generation,
        conditions,
        // Kept when this attempt learnt nothing new: the status copy of AWS's answer is what
        // the next plan starts from.
        integration: decision
            .integration
            .clone()
            .or_else(|| current.integration.clone()),
        last_patch_operations: decision
            .sent
            .clone()
            .or_else(|| current.last_patch_operations.clone()),
        last_response_calls: decision
            .response_calls
            .clone()
            .or_else(|| current.last_response_calls.clone()),
        last_sync_time: current.last_sync_time.clone(),
        last_observed_time: current.last_observed_time.clone(),
        last_write_time: current.last_write_time.clone(),
        // Pinned: the first resolution stays.
        target: current.target.clone().or_else(|| decision.target.clone()),
        synced_generation: if decision.verdict {
            generation
        } else {
            current.synced_generation
        },
    }
}

/// Backoff per object, honouring Retry-After; never a hot loop.
pub fn error_policy<A: AwsApi>(
    obj: Arc<CachedIntegration>,
    error: &Error,
    ctx: Arc<Context<A>>,
) -> Action {
    let delay = ctx.fail(&object_key(&*obj), error.retry_after());
    warn!(object = %object_key(&*obj), error = %error, delay_ms = delay.as_millis() as u64, "reconcile failed; retrying");
    Action::requeue(delay)
}

/// Which objects this operator instance watches: its namespace (or all) and its label selector
/// (`--selector`, a shard). Both apply to every namespaced kind alike, stages included: a shard
/// manages only the stages its selector selects, and a stage counts only the integrations its
/// shard sees (README, "Sharding").
#[derive(Clone, Debug, Default)]
pub struct Scope {
    pub namespace: Option<String>,
    pub selector: Option<String>,
}

impl Scope {
    /// The API of kind `K` over this scope's namespace (or all namespaces).
    pub fn api<K>(&self, client: kube::Client) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        match &self.namespace {
            Some(ns) => Api::namespaced(client, ns),
            None => Api::all(client),
        }
    }

    /// A watcher configuration with this scope's label selector.
    pub fn watch_config(&self) -> watcher::Config {
        match &self.selector {
            Some(selector) => watcher::Config::default().labels(selector),
            None => watcher::Config::default(),
        }
    }
}

/// Runs the controller until SIGTERM/SIGINT. The namespace of every integration the cache saw
/// change goes to `changed` (the stage controller wakes the stages of that namespace).
pub async fn run<A: AwsApi>(
    ctx: Arc<Context<A>>,
    scope: Scope,
    concurrency: u16,
    changed: Option<tokio::sync::mpsc::UnboundedSender<String>>,
    wake_all: impl futures::Stream<Item = ()> + Send + Sync + 'static,
) {
    let api: Api<CachedIntegration> = scope.api(ctx.client.clone());
    // Pages of 100 objects: every page is held whole while it is parsed, on top of the cache
    // it fills, and that sum is the operator's peak memory at start-up.
    let watch = scope.watch_config().page_size(LIST_PAGE_SIZE);
    // The cache keeps every watched object. managedFields, kubectl's last-applied copy of the
    // spec, and the annotations Helm and Argo CD add are most of an object's size, and the
    // operator reads none of them but the pause and orphan annotations. Labels stay: a stage's
    // integrationSelector reads them.
    let (reader, writer) = kube::runtime::reflector::store();
    let queue = ctx.metrics.queue(ctx.kind);
    let objects = crate::kit::watched(
        api,
        watch,
        queue.clone(),
        writer,
        |obj: &mut CachedIntegration| {
            obj.managed_fields_mut().clear();
            obj.annotations_mut()
                .retain(|k, _| k == PAUSE_ANNOTATION || k == ORPHAN_ANNOTATION);
        },
    )
    .inspect(move |event| {
        if let (Ok(obj), Some(changed)) = (event, &changed) {
            let _ = changed.send(obj.namespace().unwrap_or_default());
        }
    });
    crate::kit::collect_objects(&ctx.metrics, ctx.kind, reader.clone());
    let wake_all = crate::kit::waking_all(wake_all, queue.clone(), reader.clone());
    let controller = Controller::for_stream(objects, reader)
        .reconcile_all_on(wake_all)
        .with_config(kube::runtime::controller::Config::default().concurrency(concurrency))
        .graceful_shutdown_on(crate::shutdown::requested());
    let peers = controller.store();
    ctx.set_peers(Box::new(move || peers.state()));
    // An object deleted without a finalizer (deletionPolicy Retain) is never reconciled again,
    // so what the operator remembers about it is dropped here, once a minute.
    let store = controller.store();
    let janitor_ctx = ctx.clone();
    let janitor = tokio::spawn(async move {
        let mut tick = tokio::time::interval(PRUNE_PERIOD);
        loop {
            tick.tick().await;
            let exists = |key: &str| {
                let (namespace, name) = key.split_once('/').unwrap_or(("", key));
                store
                    .get(&kube::runtime::reflector::ObjectRef::new(name).within(namespace))
                    .is_some()
            };
            janitor_ctx.prune(exists);
            janitor_ctx.snapshots.purge_expired();
            queue.retain(exists);
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
mod decisions;
