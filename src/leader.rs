//! Leader election on a `coordination.k8s.io/v1` Lease, with a fence on AWS writes.
//!
//! The semantics are client-go's: a replica holds the Lease while it renews it; a standby
//! takes it over when the holder's record has not changed for a lease duration (measured on
//! the standby's own clock from when it last saw the record change, so clock skew between
//! replicas does not matter), or at once when the holder released it.
//!
//! What client-go leaves to the caller, this module does: a [`Fence`] says whether the lease
//! was renewed within the renew deadline (shorter than the lease duration). The AWS layer asks
//! it before every write, so a leader cut off from the API server stops writing before a
//! standby can take over, however its requests hang; [`Elector::keep`] returns (and the
//! process exits) at the same moment. On graceful shutdown [`Elector::release`] clears the
//! holder, so a rolling update does not wait a lease duration.
//!
//! The Lease is written with merge patches carrying its resourceVersion (optimistic
//! concurrency), so RBAC needs `create` on leases and `get`/`patch` on this one only.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use tracing::{debug, info, warn};

use crate::FIELD_MANAGER;

/// Timing and identity of one replica.
#[derive(Clone, Debug)]
pub struct LeaderSettings {
    pub lease_name: String,
    pub identity: String,
    /// How long a holder's record stays valid without a renewal.
    pub lease_duration: Duration,
    /// A leader whose last successful renewal is older than this sends no write and exits.
    pub renew_deadline: Duration,
    /// Time between two acquire/renew attempts.
    pub retry_period: Duration,
}

/// Whether this replica may write: it renewed the lease within the renew deadline.
#[derive(Debug)]
pub struct Fence {
    renewed: Mutex<Option<Instant>>,
    renew_deadline: Duration,
}

impl Fence {
    pub fn new(renew_deadline: Duration) -> Self {
        Fence {
            renewed: Mutex::new(None),
            renew_deadline,
        }
    }

    /// True while the last successful renewal (counted from when its request was sent) is
    /// younger than the renew deadline.
    pub fn may_write(&self) -> bool {
        self.remaining() > Duration::ZERO
    }

    /// How long writes stay allowed without another renewal.
    pub fn remaining(&self) -> Duration {
        self.renewed
            .lock()
            .expect("fence lock")
            .map(|at| self.renew_deadline.saturating_sub(at.elapsed()))
            .unwrap_or_default()
    }

    fn renewed_at(&self, sent: Instant) {
        let mut renewed = self.renewed.lock().expect("fence lock");
        if renewed.is_none_or(|at| at < sent) {
            *renewed = Some(sent);
        }
    }

    fn close(&self) {
        *self.renewed.lock().expect("fence lock") = None;
    }
}

/// The last record seen and when it changed, on this replica's clock.
#[derive(Default)]
struct Observed {
    record: Option<(Option<String>, Option<MicroTime>, Option<i32>)>,
    at: Option<Instant>,
}

/// Acquires, renews and releases one Lease.
pub struct Elector {
    api: Api<Lease>,
    settings: LeaderSettings,
    fence: std::sync::Arc<Fence>,
    observed: Mutex<Observed>,
}

fn now() -> MicroTime {
    MicroTime(k8s_openapi::jiff::Timestamp::now())
}

impl Elector {
    pub fn new(
        client: kube::Client,
        namespace: &str,
        settings: LeaderSettings,
        fence: std::sync::Arc<Fence>,
    ) -> Self {
        Elector {
            api: Api::namespaced(client, namespace),
            settings,
            fence,
            observed: Mutex::new(Observed::default()),
        }
    }

    /// Waits until this replica holds the lease. Fails when RBAC refuses the Lease (the
    /// operator cannot work, and says so, rather than waiting forever).
    pub async fn acquire(&self) -> Result<(), String> {
        loop {
            match self.attempt().await {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(kube::Error::Api(s)) if s.code == 401 || s.code == 403 => {
                    return Err(format!(
                        "leader election: the Lease {} is refused: {}",
                        self.settings.lease_name, s.message
                    ));
                }
                Err(e) => debug!(error = %e, "lease: could not acquire"),
            }
            tokio::time::sleep(self.settings.retry_period).await;
        }
    }

    /// Renews the lease every retry period; returns why leadership ended: another replica
    /// holds it, or no renewal succeeded within the renew deadline (the fence is closed then,
    /// whatever the hanging requests do).
    pub async fn keep(&self) -> String {
        loop {
            tokio::time::sleep(self.settings.retry_period).await;
            let remaining = self.fence.remaining();
            if remaining.is_zero() {
                break;
            }
            match tokio::time::timeout(remaining, self.attempt()).await {
                Ok(Ok(true)) => {}
                Ok(Ok(false)) => {
                    self.fence.close();
                    return "another replica holds the leader-election lease".into();
                }
                Ok(Err(kube::Error::Api(s))) if s.code == 401 || s.code == 403 => {
                    self.fence.close();
                    return format!(
                        "leader election: renewing the Lease is refused: {}",
                        s.message
                    );
                }
                Ok(Err(e)) => warn!(error = %e, "lease: renewal failed"),
                Err(_) => warn!("lease: renewal timed out"),
            }
            if !self.fence.may_write() {
                break;
            }
        }
        self.fence.close();
        format!(
            "could not renew the leader-election lease within the renew deadline ({:?}); AWS writes stopped",
            self.settings.renew_deadline
        )
    }

    /// Gives the lease up if this replica holds it, so a standby takes over at once.
    pub async fn release(&self) {
        self.fence.close();
        let Ok(Some(lease)) = self.api.get_opt(&self.settings.lease_name).await else {
            return;
        };
        let spec = lease.spec.unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.settings.identity.as_str()) {
            return;
        }
        let patch = json!({
            "metadata": {"resourceVersion": lease.metadata.resource_version},
            "spec": {"holderIdentity": null, "leaseDurationSeconds": 1, "renewTime": now()},
        });
        match self.patch(&patch).await {
            Ok(_) => info!("released the leader-election lease"),
            Err(e) => warn!(error = %e, "could not release the leader-election lease"),
        }
    }

    async fn patch(&self, patch: &serde_json::Value) -> Result<Lease, kube::Error> {
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PatchParams::default()
        };
        self.api
            .patch(&self.settings.lease_name, &params, &Patch::Merge(patch))
            .await
    }

    /// One try to take or renew the lease: Ok(true) when this replica holds it afterwards.
    async fn attempt(&self) -> Result<bool, kube::Error> {
        let sent = Instant::now();
        let me = self.settings.identity.as_str();
        let duration = self.settings.lease_duration.as_secs().max(1) as i32;
        let Some(lease) = self.api.get_opt(&self.settings.lease_name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.settings.lease_name.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(me.into()),
                    lease_duration_seconds: Some(duration),
                    acquire_time: Some(now()),
                    renew_time: Some(now()),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => {
                    self.fence.renewed_at(sent);
                    info!(
                        identity = me,
                        "acquired the leader-election lease (created it)"
                    );
                    Ok(true)
                }
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let held_by_me = holder.as_deref() == Some(me);
        if !held_by_me && holder.is_some() && !self.expired(&spec) {
            return Ok(false);
        }
        let transitions = spec.lease_transitions.unwrap_or(0) + i32::from(!held_by_me);
        let acquire_time = if held_by_me {
            spec.acquire_time.clone()
        } else {
            Some(now())
        };
        let patch = json!({
            "metadata": {"resourceVersion": lease.metadata.resource_version},
            "spec": {
                "holderIdentity": me,
                "leaseDurationSeconds": duration,
                "acquireTime": acquire_time,
                "renewTime": now(),
                "leaseTransitions": transitions,
            },
        });
        match self.patch(&patch).await {
            Ok(_) => {
                self.fence.renewed_at(sent);
                if !held_by_me {
                    info!(identity = me, previous = ?holder, "acquired the leader-election lease");
                }
                Ok(true)
            }
            // Someone else wrote the lease since we read it.
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Whether another holder's record has not changed for its lease duration, on our clock.
    fn expired(&self, spec: &LeaseSpec) -> bool {
        let record = (
            spec.holder_identity.clone(),
            spec.renew_time.clone(),
            spec.lease_transitions,
        );
        let duration = Duration::from_secs(spec.lease_duration_seconds.unwrap_or(1).max(1) as u64);
        let mut observed = self.observed.lock().expect("observed lock");
        if observed.record.as_ref() != Some(&record) {
            observed.record = Some(record);
            observed.at = Some(Instant::now());
            return false;
        }
        observed.at.is_some_and(|at| at.elapsed() >= duration)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fence_closes_at_the_renew_deadline() {
        let fence = Fence::new(Duration::from_millis(50));
        assert!(!fence.may_write(), "closed before the first renewal");
        fence.renewed_at(Instant::now());
        assert!(fence.may_write());
        // An older renewal never moves the fence back.
        fence.renewed_at(Instant::now() - Duration::from_secs(10));
        assert!(fence.may_write());
        let old = Instant::now() - Duration::from_millis(60);
        let stale = Fence::new(Duration::from_millis(50));
        stale.renewed_at(old);
        assert!(
            !stale.may_write(),
            "a renewal older than the deadline allows nothing"
        );
        fence.close();
        assert!(!fence.may_write());
    }
}
