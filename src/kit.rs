//! The controller kit: what every kind's controller needs and none owns. Per-object backoff
//! (full jitter, Retry-After), the staleness guard on status writes, the "fresh answer" memory,
//! status writes with server-side apply on exactly the object decided for, Events, metrics.
//! The AWS quota and the leadership fence live in the AWS layer ([`crate::aws`],
//! [`crate::quota`]), which every kind shares too.
//!
//! A kind's controller holds a [`Kit`] in its context and reaches it through `Deref`, so the
//! per-kind code reads `ctx.fail(..)`, `ctx.publish(..)` whatever the kind.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use rand::Rng;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::json;
use tracing::warn;

use crate::aws::{AwsError, Identity, Scoped};
use crate::conditions::Outcome;
use crate::metrics::Metrics;
use crate::{FIELD_MANAGER, FINALIZER};

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

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Aws(e) => e.retry_after(),
            Error::Kube(_) => None,
        }
    }
}

/// The Ready outcome of an AWS error, for every kind: only AWS's 400 is InvalidSpec, a missing
/// or ambiguous target is TargetNotFound, 429 is Throttled, the rest is AwsError (retried).
pub fn outcome_of_error(e: &AwsError, identity: &Identity) -> Outcome {
    let message = e.to_string();
    match e {
        AwsError::NotFound { .. } | AwsError::Ambiguous { .. } => Outcome::TargetNotFound(message),
        AwsError::Invalid { .. } => Outcome::InvalidSpec(message),
        AwsError::Retryable {
            kind: crate::aws::RetryKind::Throttled,
            ..
        } => Outcome::Throttled(message),
        AwsError::Retryable { .. } => Outcome::AwsError(message),
        AwsError::Unauthorized { .. } => {
            Outcome::AccessDenied(format!("AWS refused {}: {message}", identity.describe()))
        }
    }
}

/// After an AWS error: credentials AWS said expired are dropped, so the next try assumes the
/// role again (the SDK refreshes them before expiry; this covers a clock or a revoked session).
pub fn forget_expired<A: Scoped>(aws: &A, identity: &Identity, e: &AwsError) {
    if crate::aws::identity::is_expired_token(e) {
        aws.forget(identity);
    }
}

/// What the controllers are configured with.
#[derive(Clone, Debug)]
pub struct Settings {
    pub default_region: String,
    pub resync_period: Duration,
    pub backoff: BackoffConfig,
    pub reporter: String,
    /// Which access admits an object, and what it allows.
    pub gate: crate::access::gate::Gate,
}

/// Consecutive failures of one object and the earliest time it may call AWS again.
#[derive(Clone, Copy, Debug)]
struct BackoffState {
    failures: u32,
    until: Instant,
}

/// The `namespace/name` key of an object, as the kit's memories and metrics know it.
pub fn object_key<K: ResourceExt>(obj: &K) -> String {
    format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any())
}

/// Shared by every reconcile of one kind.
pub struct Kit {
    /// The kind in metrics labels: integration, stage or access.
    pub kind: &'static str,
    pub client: kube::Client,
    pub settings: Settings,
    pub metrics: Arc<Metrics>,
    /// Who publishes Events. A `Recorder` is made per Event: kube's Recorder keeps every Event
    /// it published for 6 minutes (to fold repeats into a series), which is 10,000 Events
    /// after a rollout of 10,000 changes, and this operator's Events rarely repeat.
    reporter: Reporter,
    backoff: Mutex<HashMap<String, BackoffState>>,
    /// Until when the copy of AWS's last answer in an object's status stands in for a drift
    /// read. The answer itself is not kept here: the cached object's status is that copy.
    fresh: Mutex<HashMap<String, Instant>>,
    /// The resourceVersion of our last status write per object, until the cache has caught up
    /// with it: a cached object older than that is not planned from (server-side apply would
    /// drop what the stale copy lacks), however long the watch lags.
    written: Mutex<HashMap<String, u64>>,
}

impl Kit {
    pub fn new(
        kind: &'static str,
        client: kube::Client,
        settings: Settings,
        metrics: Arc<Metrics>,
    ) -> Self {
        let reporter = Reporter {
            controller: "apigw-operator".into(),
            instance: Some(settings.reporter.clone()),
        };
        Kit {
            kind,
            client,
            settings,
            metrics,
            reporter,
            backoff: Mutex::new(HashMap::new()),
            fresh: Mutex::new(HashMap::new()),
            written: Mutex::new(HashMap::new()),
        }
    }

    /// Records one more failure of `object` and returns how long it waits before the next try.
    pub fn fail(&self, object: &str, retry_after: Option<Duration>) -> Duration {
        self.fail_counted(object, retry_after).1
    }

    /// [`Kit::fail`], with the number of consecutive failures.
    pub fn fail_counted(&self, object: &str, retry_after: Option<Duration>) -> (u32, Duration) {
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
        (state.failures, delay)
    }

    /// `object` calls AWS again in `wait` at the earliest (an InvalidSpec waits a resync period).
    pub fn hold(&self, object: &str, wait: Duration) {
        self.backoff.lock().expect("backoff lock").insert(
            object.to_string(),
            BackoffState {
                failures: 0,
                until: Instant::now() + wait,
            },
        );
    }

    /// `object` calls AWS again in `wait` at the earliest, keeping its count of failures (a
    /// retry moved to the resync period must not let every watch event through meanwhile).
    pub fn defer(&self, object: &str, wait: Duration) {
        let mut backoff = self.backoff.lock().expect("backoff lock");
        let state = backoff.entry(object.to_string()).or_insert(BackoffState {
            failures: 0,
            until: Instant::now(),
        });
        state.until = Instant::now() + wait;
    }

    /// How many times in a row `object` failed (0: it is not backing off).
    pub fn failures(&self, object: &str) -> u32 {
        let backoff = self.backoff.lock().expect("backoff lock");
        backoff.get(object).map_or(0, |state| state.failures)
    }

    /// Forgets the failures of `object` (it succeeded).
    pub fn succeed(&self, object: &str) {
        self.backoff.lock().expect("backoff lock").remove(object);
    }

    /// How long `object` must still wait before calling AWS, if it is backing off.
    pub fn backing_off(&self, object: &str) -> Option<Duration> {
        let backoff = self.backoff.lock().expect("backoff lock");
        backoff
            .get(object)
            .and_then(|state| state.until.checked_duration_since(Instant::now()))
    }

    /// Every object the kit remembers anything about (a backoff, a fresh answer, a status
    /// write the cache has not caught up with).
    pub fn remembered_keys(&self) -> Vec<String> {
        let mut keys = self.backing_off_keys();
        keys.extend(self.fresh.lock().expect("fresh lock").keys().cloned());
        keys.extend(self.written.lock().expect("written lock").keys().cloned());
        keys
    }

    /// The keys of every object backing off.
    pub fn backing_off_keys(&self) -> Vec<String> {
        self.backoff
            .lock()
            .expect("backoff lock")
            .keys()
            .cloned()
            .collect()
    }

    /// Remembers the resourceVersion the API server gave our last status write of `object`.
    pub fn wrote_status(&self, object: &str, resource_version: Option<String>) {
        let mut written = self.written.lock().expect("written lock");
        match resource_version.and_then(|v| v.parse::<u64>().ok()) {
            Some(version) => written.insert(object.to_string(), version),
            None => written.remove(object),
        };
    }

    /// Whether a cached object at `resource_version` has not yet seen our last status write of
    /// it. Acting on it would write status from stale knowledge. kube-apiserver's
    /// resourceVersions are etcd revisions, which only grow; one that is not a number is taken
    /// as current.
    pub fn is_stale(&self, object: &str, resource_version: Option<String>) -> bool {
        let mut written = self.written.lock().expect("written lock");
        let Some(ours) = written.get(object).copied() else {
            return false;
        };
        match resource_version.and_then(|v| v.parse::<u64>().ok()) {
            Some(seen) if seen < ours => true,
            _ => {
                written.remove(object);
                false
            }
        }
    }

    /// Drops the staleness marks of objects for which `exists` is false.
    pub fn prune_written(&self, exists: &dyn Fn(&str) -> bool) {
        self.written
            .lock()
            .expect("written lock")
            .retain(|key, _| exists(key));
    }

    /// Forgets what the kit remembers about `object` (deleted).
    pub fn forget_object(&self, object: &str) {
        self.forget(object);
        self.written.lock().expect("written lock").remove(object);
        self.backoff.lock().expect("backoff lock").remove(object);
    }

    /// The resync period with ±10% jitter, so objects created together do not stay in step.
    pub fn jittered_resync(&self) -> Duration {
        let period = self.settings.resync_period.as_secs_f64();
        Duration::from_secs_f64(period * rand::rng().random_range(0.9..=1.1))
    }

    /// The status copy of AWS's last answer stands in for a drift read for `fresh_for`.
    pub fn remember(&self, object: &str, fresh_for: Duration) {
        self.fresh
            .lock()
            .expect("fresh lock")
            .insert(object.to_string(), Instant::now() + fresh_for);
    }

    /// The status copy of AWS's last answer no longer stands in for a drift read.
    pub fn forget(&self, object: &str) {
        self.fresh.lock().expect("fresh lock").remove(object);
    }

    pub fn is_fresh(&self, object: &str) -> bool {
        self.fresh
            .lock()
            .expect("fresh lock")
            .get(object)
            .is_some_and(|until| Instant::now() < *until)
    }

    /// Publishes an Event about `obj`; a failure is logged, never fatal.
    pub async fn publish<K>(
        &self,
        obj: &K,
        type_: EventType,
        reason: &str,
        action: &str,
        note: String,
    ) where
        K: Resource<DynamicType = ()>,
    {
        let event = Event {
            type_,
            reason: reason.into(),
            note: Some(note.chars().take(1000).collect()),
            action: action.into(),
            secondary: None,
        };
        let recorder = Recorder::new(self.client.clone(), self.reporter.clone());
        if let Err(e) = recorder.publish(&event, &obj.object_ref(&())).await {
            warn!(error = %e, "could not publish an event");
        }
    }
}

/// Server-side applies `status` to `obj`, and to no other object of its name. The status
/// subresource ignores a uid in the applied body, so the write carries the resourceVersion of
/// the object it was decided for as a precondition; when someone else wrote the object since
/// (409), it is read again and, if it is still the same object (uid), applied on that version.
/// None: the object is gone or is another one now.
pub async fn apply_status<K, S>(api: &Api<K>, obj: &K, status: &S) -> Result<Option<K>, kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
    S: Serialize,
{
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let body = |resource_version: Option<String>| {
        json!({
            "apiVersion": K::api_version(&()),
            "kind": K::kind(&()),
            "metadata": {"resourceVersion": resource_version},
            "status": status,
        })
    };
    let name = obj.name_any();
    match api
        .patch_status(&name, &params, &Patch::Apply(&body(obj.resource_version())))
        .await
    {
        Ok(written) => return Ok(Some(written)),
        Err(kube::Error::Api(s)) if s.code == 404 => return Ok(None),
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => return Err(e),
    }
    let Some(fresh) = api.get_opt(&name).await? else {
        return Ok(None);
    };
    if fresh.uid() != obj.uid() {
        return Ok(None);
    }
    let written = api
        .patch_status(
            &name,
            &params,
            &Patch::Apply(&body(fresh.resource_version())),
        )
        .await?;
    Ok(Some(written))
}

fn finalizer_params() -> PatchParams {
    PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PatchParams::default()
    }
}

/// Adds the finalizer `apigw.dev/cleanup`; returns the object's new resourceVersion.
pub async fn add_finalizer<K>(api: &Api<K>, obj: &K) -> Result<Option<String>, kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let mut finalizers = obj.finalizers().to_vec();
    finalizers.push(FINALIZER.to_string());
    let patch =
        json!({"metadata": {"finalizers": finalizers, "resourceVersion": obj.resource_version()}});
    let patched = api
        .patch(&obj.name_any(), &finalizer_params(), &Patch::Merge(&patch))
        .await?;
    Ok(patched.resource_version())
}

/// Removes the finalizer `apigw.dev/cleanup` (an object already gone is fine).
pub async fn remove_finalizer<K>(api: &Api<K>, obj: &K) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
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
        Err(e) => Err(e),
    }
}

impl Kit {
    /// Counts a finished reconcile in the metrics, labelled "ok" or by the error's category.
    pub fn reconciled<T>(&self, result: &Result<T, Error>, started: Instant) {
        let label = match result {
            Ok(_) => "ok",
            Err(e) => e.category(),
        };
        self.metrics
            .reconciled(self.kind, label, started.elapsed().as_secs_f64());
    }

    /// A reconcile of `obj` starts: it leaves the work queue metrics count.
    pub fn starting<K: ResourceExt>(&self, obj: &K) {
        self.metrics.queue(self.kind).started(&object_key(obj));
    }

    /// The checks before a reconcile of a live object: a cached copy older than our own last
    /// status write waits for the watch to catch up; an object backing off waits out its
    /// backoff, unless its generation is new (a watch event, such as our own status write,
    /// must not cut a backoff short: only a new generation, a deletion or a pause may).
    pub fn hold_back<K: ResourceExt>(
        &self,
        obj: &K,
        observed_generation: Option<i64>,
    ) -> Option<Duration> {
        if obj.meta().deletion_timestamp.is_some() {
            return None;
        }
        let key = object_key(obj);
        if self.is_stale(&key, obj.resource_version()) {
            return Some(Duration::from_millis(500));
        }
        let new_generation = observed_generation != obj.meta().generation;
        self.backing_off(&key).filter(|_| !new_generation)
    }
}

/// Step 2 of every reconcile: the finalizer follows `deletionPolicy` (added for Delete, removed
/// for Retain). Returns the object to go on with: after our own finalizer patch, a copy at the
/// patched resourceVersion, so that the status write (which carries the version it was decided
/// on) does not take our own patch for someone else's change.
pub async fn follow_deletion_policy<K>(
    api: &Api<K>,
    obj: &K,
    delete: bool,
) -> Result<Option<K>, kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let has_finalizer = obj.finalizers().iter().any(|f| f == FINALIZER);
    match (delete, has_finalizer) {
        (true, false) => {
            let version = add_finalizer(api, obj).await?;
            let mut updated = obj.clone();
            updated.meta_mut().resource_version = version;
            Ok(Some(updated))
        }
        (false, true) => {
            remove_finalizer(api, obj).await?;
            Ok(None)
        }
        _ => Ok(None),
    }
}

/// Whether the annotation `name` of `obj` is `"true"`.
pub fn annotation_is_true<K: ResourceExt>(obj: &K, name: &str) -> bool {
    obj.annotations().get(name).map(String::as_str) == Some("true")
}

/// For unit tests of a reconcile's decisions: a client with no API server behind it (the only
/// kube calls a decision makes are Events, which fail and are logged), and settings with a
/// short backoff.
#[cfg(test)]
pub mod testing {
    use super::*;

    pub fn client() -> kube::Client {
        let (service, handle) = tower_test::mock::pair::<
            http::Request<kube::client::Body>,
            http::Response<kube::client::Body>,
        >();
        drop(handle);
        kube::Client::new(service, "default")
    }

    pub fn settings() -> Settings {
        Settings {
            default_region: "us-east-1".into(),
            resync_period: Duration::from_secs(600),
            backoff: BackoffConfig {
                base: Duration::from_millis(500),
                cap: Duration::from_secs(5),
                factor: 2.0,
            },
            reporter: "test".into(),
            gate: crate::access::gate::Gate::empty(crate::access::AccessMode::OperatorIdentity),
        }
    }
}

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

/// SHA-256 (FIPS 180-4) of `data`, as lowercase hex. Small and dependency-free: it names what
/// a deployment published (a digest for humans and for equality), not a security boundary.
pub fn sha256_hex(data: &[u8]) -> String {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let mut message = data.to_vec();
    let bits = (data.len() as u64).wrapping_mul(8);
    message.push(0x80);
    while message.len() % 64 != 56 {
        message.push(0);
    }
    message.extend_from_slice(&bits.to_be_bytes());
    for block in message.chunks_exact(64) {
        let mut w = [0u32; 64];
        for (i, word) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let mut v = h;
        for i in 0..64 {
            let s1 = v[4].rotate_right(6) ^ v[4].rotate_right(11) ^ v[4].rotate_right(25);
            let ch = (v[4] & v[5]) ^ (!v[4] & v[6]);
            let t1 = v[7]
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(K[i])
                .wrapping_add(w[i]);
            let s0 = v[0].rotate_right(2) ^ v[0].rotate_right(13) ^ v[0].rotate_right(22);
            let maj = (v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]);
            let t2 = s0.wrapping_add(maj);
            v = [
                t1.wrapping_add(t2),
                v[0],
                v[1],
                v[2],
                v[3].wrapping_add(t1),
                v[4],
                v[5],
                v[6],
            ];
        }
        for (acc, x) in h.iter_mut().zip(v) {
            *acc = acc.wrapping_add(x);
        }
    }
    h.iter().map(|x| format!("{x:08x}")).collect()
}

#[cfg(test)]
mod sha256_tests {
    #[test]
    fn matches_the_fips_vectors() {
        assert_eq!(
            super::sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            super::sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            super::sha256_hex(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
        assert_eq!(
            super::sha256_hex(&[b'a'; 1000]),
            "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3"
        );
    }
}

/// What the metrics read from a cached object of any kind: its Ready condition and when AWS
/// was last observed for it.
pub trait Observed {
    /// The Ready condition's status and reason.
    fn ready(&self) -> Option<(&str, &str)>;
    /// The last successful observation of AWS (None: the kind records none).
    fn last_observed(&self) -> Option<&Time> {
        None
    }
}

/// The Ready condition's status and reason among `conditions`, for [`Observed::ready`].
pub fn ready_of(
    conditions: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition],
) -> Option<(&str, &str)> {
    let ready = conditions.iter().find(|c| c.type_ == "Ready")?;
    Some((&ready.status, &ready.reason))
}

/// Counts the cached objects of `kind` by Ready status and reason at every scrape (so the
/// figures are right from the first list after a restart), and the age of the oldest
/// observation among Ready ones.
pub fn collect_objects<K>(metrics: &Metrics, kind: &'static str, store: Store<K>)
where
    K: Observed + kube::Resource + Clone + Send + Sync + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    metrics.add_collector(move |scrape| {
        let now = k8s_openapi::jiff::Timestamp::now();
        let mut oldest: Option<f64> = None;
        for obj in store.state() {
            let (status, reason) = match obj.ready() {
                Some((status, reason)) => (status.to_string(), reason.to_string()),
                None => ("Unknown".to_string(), "Pending".to_string()),
            };
            if status == "True" {
                if let Some(at) = obj.last_observed() {
                    let age = now.duration_since(at.0).as_secs_f64().max(0.0);
                    oldest = Some(oldest.map_or(age, |o: f64| o.max(age)));
                }
            }
            *scrape.objects.entry((kind, status, reason)).or_default() += 1;
        }
        if let Some(age) = oldest {
            scrape.oldest_observation.insert(kind, age);
        }
    });
}

/// A watch of `api` through a cache (`store`'s writer), every applied object marked in the
/// work queue of `kind` until its reconcile starts; for `Controller::for_stream`.
pub fn watched<K>(
    api: Api<K>,
    config: watcher::Config,
    queue: Arc<crate::metrics::WorkQueue>,
    writer: kube::runtime::reflector::store::Writer<K>,
    modify: impl FnMut(&mut K) + Send + 'static,
) -> impl futures::Stream<Item = Result<K, watcher::Error>> + Send
where
    K: kube::Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone + Default,
{
    use futures::StreamExt;
    use kube::runtime::WatchStreamExt;
    kube::runtime::watcher(api, config)
        .default_backoff()
        .modify(modify)
        .reflect(writer)
        .applied_objects()
        .inspect(move |event| {
            if let Ok(obj) = event {
                queue.triggered(&object_key(obj));
            }
        })
}

/// Marks every cached object in the work queue whenever `wake_all` fires (each will be
/// reconciled).
pub fn waking_all<K>(
    wake_all: impl futures::Stream<Item = ()> + Send + Sync + 'static,
    queue: Arc<crate::metrics::WorkQueue>,
    store: Store<K>,
) -> impl futures::Stream<Item = ()> + Send + Sync + 'static
where
    K: kube::Resource + Clone + Send + Sync + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    use futures::StreamExt;
    wake_all.inspect(move |_| {
        for obj in store.state() {
            queue.triggered(&object_key(&*obj));
        }
    })
}
