//! The access machinery at run time: the caches of accesses and namespaces behind the
//! [`Gate`], the wake-up every controller gets when either changes, the access controller
//! (it proves each access's identity: AssumeRole, then GetCallerIdentity, and writes the
//! account to status), and the admission ConfigMap the ValidatingAdmissionPolicy reads.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::EventType;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Client, Resource, ResourceExt};
use serde_json::json;
use tokio::sync::broadcast;
use tracing::{info, warn};

use super::check::{admits, AccessMode, Admission};
use super::gate::{identity_of, Gate};
use super::types::{ApiGatewayAccess, ApiGatewayAccessStatus};
use crate::aws::identity::Scoped;
use crate::aws::SdkAws;
use crate::conditions::{conditions_for, Outcome};
use crate::kit::{apply_status, object_key, Error, Kit};
use crate::FIELD_MANAGER;

/// How long the caches may take to fill before the controllers start anyway (an object
/// checked against an unfilled cache is refused, and woken again when it fills).
const CACHE_WAIT: Duration = Duration::from_secs(30);

/// The session name the access controller proves an identity with.
const OPERATOR_SESSION: &str = "apigw-operator";

/// Starts the caches of accesses (when the CRD is installed) and namespaces; returns the gate
/// and a sender that fires on every change of either (after the first fill).
pub async fn start_gate(client: &Client, mode: AccessMode) -> (Gate, broadcast::Sender<()>) {
    let (changed, _) = broadcast::channel(16);
    let (namespaces, ns_writer) = reflector::store();
    // Metadata only: the labels are all the selectors read.
    let ns_api: Api<PartialObjectMeta<Namespace>> = Api::all(client.clone());
    let ns_stream = watcher(ns_api, watcher::Config::default())
        .default_backoff()
        .reflect(ns_writer)
        .touched_objects();
    drive(ns_stream, changed.clone(), "namespaces");

    let access_api: Api<ApiGatewayAccess> = Api::all(client.clone());
    let accesses = match access_api
        .list(&kube::api::ListParams::default().limit(1))
        .await
    {
        Ok(_) => {
            let (store, writer) = reflector::store();
            let stream = watcher(access_api, watcher::Config::default())
                .default_backoff()
                .reflect(writer)
                .touched_objects();
            drive(stream, changed.clone(), "accesses");
            Some(store)
        }
        Err(e) => {
            warn!(error = %e, mode = ?mode, "cannot list ApiGatewayAccesses (is the CRD installed?); every namespace is treated as admitted by none");
            None
        }
    };
    wait_ready(&namespaces, "namespaces").await;
    if let Some(store) = &accesses {
        wait_ready(store, "accesses").await;
    }
    (Gate::new(mode, accesses, namespaces), changed)
}

fn drive<K, S>(stream: S, changed: broadcast::Sender<()>, what: &'static str)
where
    S: futures::Stream<Item = Result<K, watcher::Error>> + Send + 'static,
    K: Send + 'static,
{
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            match event {
                Ok(_) => {
                    let _ = changed.send(());
                }
                Err(e) => warn!(error = %e, what, "watch failed; retrying"),
            }
        }
    });
}

async fn wait_ready<K>(store: &Store<K>, what: &str)
where
    K: kube::Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    if tokio::time::timeout(CACHE_WAIT, store.wait_until_ready())
        .await
        .is_err()
    {
        warn!(what, "cache not filled in time; starting anyway");
    }
}

/// A stream that yields once per change (lagging receivers yield once for all they missed).
pub fn changes(changed: &broadcast::Sender<()>) -> impl futures::Stream<Item = ()> + Send {
    futures::stream::unfold(changed.subscribe(), |mut rx| async move {
        match rx.recv().await {
            Ok(()) | Err(broadcast::error::RecvError::Lagged(_)) => Some(((), rx)),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    })
}

/// The namespaces some access admits, each with the sorted names of those accesses: the data
/// of the admission ConfigMap.
pub fn admitted_namespaces(gate: &Gate) -> BTreeMap<String, String> {
    let accesses = gate.accesses();
    let mut admitted = BTreeMap::new();
    for (namespace, labels) in gate.namespaces() {
        let mut names: Vec<String> = accesses
            .iter()
            .filter(|a| admits(a, &namespace, &labels))
            .map(|a| a.name_any())
            .collect();
        if names.is_empty() {
            continue;
        }
        names.sort();
        admitted.insert(namespace, names.join(","));
    }
    admitted
}

/// Keeps `namespace/name` (a ConfigMap) equal to [`admitted_namespaces`], writing only when it
/// changes, until the process ends.
pub async fn run_admission_configmap(
    client: Client,
    gate: Gate,
    target: String,
    changed: broadcast::Sender<()>,
) {
    let Some((namespace, name)) = target.split_once('/') else {
        warn!(
            target,
            "--admission-configmap must be NAMESPACE/NAME; not written"
        );
        return;
    };
    let api: Api<ConfigMap> = Api::namespaced(client, namespace);
    let mut written: Option<BTreeMap<String, String>> = None;
    let mut wake = std::pin::pin!(futures::stream::once(async {}).chain(changes(&changed)));
    while wake.next().await.is_some() {
        let data = admitted_namespaces(&gate);
        if written.as_ref() == Some(&data) {
            continue;
        }
        let body = json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "apigw-operator"}},
            "data": data,
        });
        let params = PatchParams::apply(FIELD_MANAGER).force();
        match api.patch(name, &params, &Patch::Apply(&body)).await {
            Ok(_) => {
                info!(namespaces = data.len(), "admission ConfigMap written");
                written = Some(data);
            }
            Err(e) => {
                warn!(error = %e, target, "cannot write the admission ConfigMap; retrying");
                tokio::time::sleep(Duration::from_secs(5)).await;
                let _ = changed.send(());
            }
        }
    }
}

/// The access controller's context.
pub struct AccessContext {
    kit: Kit,
    aws: Arc<SdkAws>,
}

impl std::ops::Deref for AccessContext {
    type Target = Kit;

    fn deref(&self) -> &Kit {
        &self.kit
    }
}

impl AccessContext {
    pub fn new(kit: Kit, aws: Arc<SdkAws>) -> Self {
        AccessContext { kit, aws }
    }
}

/// Proves the access's identity (AssumeRole when it names a role, then GetCallerIdentity) at
/// most once per resync period and generation, and writes what it found to status.
pub async fn reconcile(
    obj: Arc<ApiGatewayAccess>,
    ctx: Arc<AccessContext>,
) -> Result<Action, Error> {
    let started = Instant::now();
    ctx.starting(&*obj);
    let result = reconcile_inner(&obj, &ctx).await;
    ctx.reconciled(&result, started);
    result
}

async fn reconcile_inner(obj: &ApiGatewayAccess, ctx: &AccessContext) -> Result<Action, Error> {
    let key = object_key(obj);
    let current = obj.status.clone().unwrap_or_default();
    let generation = obj.meta().generation;
    let namespaces = count_admitted(obj, &ctx.settings.gate);
    let proven = current.observed_generation == generation && ctx.is_fresh(&key);
    let (outcome, account_id, caller_arn) = if proven {
        let message = ready_message(&current.conditions);
        (
            Outcome::Live(message),
            current.account_id.clone(),
            current.caller_arn.clone(),
        )
    } else {
        prove(obj, ctx).await
    };
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let next = ApiGatewayAccessStatus {
        observed_generation: generation,
        conditions: conditions_for(&outcome, &current.conditions, generation, &now),
        account_id: account_id.or(current.account_id.clone()),
        caller_arn: caller_arn.or(current.caller_arn.clone()),
        namespaces: Some(namespaces),
    };
    if next != current {
        let api: Api<ApiGatewayAccess> = Api::all(ctx.client.clone());
        apply_status(&api, obj, &next).await?;
    }
    let previous = crate::conditions::ready_reason(&current.conditions);
    if outcome.reason() != "Synced" && previous != Some(outcome.reason()) {
        let message = ready_message(&next.conditions);
        ctx.publish(
            obj,
            EventType::Warning,
            outcome.reason(),
            "AssumeRole",
            message,
        )
        .await;
    }
    if outcome.is_ready() {
        if !proven {
            ctx.remember(&key, ctx.settings.resync_period);
        }
        ctx.succeed(&key);
        Ok(Action::requeue(ctx.jittered_resync()))
    } else {
        ctx.forget(&key);
        Ok(Action::requeue(ctx.fail(&key, None)))
    }
}

/// AssumeRole (through the credentials provider) and GetCallerIdentity.
async fn prove(
    obj: &ApiGatewayAccess,
    ctx: &AccessContext,
) -> (Outcome, Option<String>, Option<String>) {
    let mut identity = identity_of(&Admission::Access(Arc::new(obj.clone())), "");
    identity.session_name = OPERATOR_SESSION.into();
    let aws = ctx.aws.scoped(&identity).await;
    match aws.caller_identity().await {
        Ok((account, arn)) => {
            let message = match &obj.spec.role_arn {
                Some(role) => format!("assumed {role}: account {account}"),
                None => format!("the operator's own identity: account {account}"),
            };
            (Outcome::Live(message), Some(account), Some(arn))
        }
        Err(e) => {
            // A failed identity is built again next time: a fixed trust policy takes effect.
            ctx.aws.forget(&identity);
            let outcome = match e {
                crate::aws::AwsError::Unauthorized { .. } => {
                    Outcome::AccessDenied(format!("AWS refused {}: {e}", identity.describe()))
                }
                other => Outcome::AwsError(format!("{}: {other}", identity.describe())),
            };
            (outcome, None, None)
        }
    }
}

fn count_admitted(obj: &ApiGatewayAccess, gate: &Gate) -> u32 {
    gate.namespaces()
        .iter()
        .filter(|(namespace, labels)| admits(obj, namespace, labels))
        .count() as u32
}

fn ready_message(
    conditions: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition],
) -> String {
    conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.message.clone())
        .unwrap_or_default()
}

pub fn error_policy(obj: Arc<ApiGatewayAccess>, error: &Error, ctx: Arc<AccessContext>) -> Action {
    let delay = ctx.fail(&object_key(&*obj), error.retry_after());
    warn!(access = %obj.name_any(), error = %error, "access reconcile failed; retrying");
    Action::requeue(delay)
}

/// Runs the access controller until SIGTERM/SIGINT; every access is looked at again when a
/// namespace or an access changes (its namespace count).
pub async fn run(ctx: Arc<AccessContext>, changed: broadcast::Sender<()>) {
    let api: Api<ApiGatewayAccess> = Api::all(ctx.client.clone());
    let (reader, writer) = kube::runtime::reflector::store();
    let queue = ctx.metrics.queue(ctx.kind);
    let objects = crate::kit::watched(
        api,
        watcher::Config::default(),
        queue.clone(),
        writer,
        |_| {},
    );
    crate::kit::collect_objects(&ctx.metrics, ctx.kind, reader.clone());
    let wake_all = crate::kit::waking_all(changes(&changed), queue, reader.clone());
    Controller::for_stream(objects, reader)
        .reconcile_all_on(wake_all)
        .graceful_shutdown_on(crate::shutdown::requested())
        .run(reconcile, error_policy, ctx)
        .for_each(|_| futures::future::ready(()))
        .await;
}
