//! Drift reads per REST API: when several objects manage integrations of one API, a drift
//! check reads the whole API with `GET /restapis/{id}/resources?embed=methods` (one call per
//! 500 resources) and each object takes its share, instead of one GetIntegration each.
//!
//! A snapshot serves drift checks for `max_age` (half the resync period): the objects of one
//! API come due within the ±10% jitter of the resync period, so one read per API per cycle
//! serves them all. Concurrent reconciles of one API wait for the same read. A drift is
//! therefore seen at most 1.5 resync periods after it happened.
//!
//! The same snapshot serves any object whose live state is unknown (a new object, or the first
//! spec change after a restart): at start-up 10,000 objects over 10 APIs cost 30 list calls
//! instead of 10,000 GetIntegration. The controller confirms with GetIntegration what a
//! snapshot alone cannot settle: a spec change that would need re-creating, or a missing
//! integration in a snapshot older than [`CREATE_TRUST`].
//!
//! **Creating costs one call.** A method without an integration in a snapshot taken less than
//! [`CREATE_TRUST`] ago is created with PutIntegration directly: the listing was the read. In an
//! older snapshot the absence is confirmed by listing the API again (one call per 500
//! resources, shared by every object of the API created in the next [`CREATE_TRUST`]) rather
//! than one GetIntegration per object; PutIntegration over an integration created meanwhile
//! would replace it, dropping what the spec does not manage. The risk left is another tool
//! creating the very same method's integration within those seconds, the same window the
//! confirming read itself leaves open while the PutIntegration waits for its quota token.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::aws::{AwsApi, AwsError, IntegrationKey, Priority};
use crate::integration::Integration;

/// A REST API in a Region.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ApiKey {
    pub region: String,
    pub rest_api_id: String,
}

impl From<&IntegrationKey> for ApiKey {
    fn from(key: &IntegrationKey) -> Self {
        ApiKey {
            region: key.region.clone(),
            rest_api_id: key.rest_api_id.clone(),
        }
    }
}

struct Snapshot {
    taken: Instant,
    /// (resource id, method) → the integration as JSON (None: the method has none). JSON in
    /// one allocation takes about a third of the memory of the parsed form; with 10,000
    /// objects every integration of every API is held here for half a resync period.
    methods: HashMap<(String, String), Option<Box<str>>>,
    resources: HashSet<String>,
}

fn compact(integration: &Integration) -> Box<str> {
    serde_json::to_string(integration)
        .expect("an Integration serializes")
        .into_boxed_str()
}

impl Snapshot {
    fn find(&self, target: &IntegrationKey) -> Found {
        match self
            .methods
            .get(&(target.resource_id.clone(), target.http_method.clone()))
        {
            Some(Some(json)) => Found::Integration(Box::new(
                serde_json::from_str(json).expect("written by compact()"),
            )),
            Some(None) => Found::NoIntegration,
            None => Found::NoMethod {
                resource_exists: self.resources.contains(&target.resource_id),
            },
        }
    }
}

/// AWS's NotFound for a method without an integration.
pub fn no_integration() -> AwsError {
    AwsError::NotFound {
        message: "Invalid Integration identifier specified".to_string(),
    }
}

fn no_method(resource_exists: bool) -> AwsError {
    AwsError::NotFound {
        message: if resource_exists {
            "Invalid Method identifier specified".to_string()
        } else {
            "Invalid Method identifier specified (or resource)".to_string()
        },
    }
}

#[derive(Default)]
struct Members {
    /// One shared key per API, not one copy per object.
    api_of: HashMap<String, Arc<ApiKey>>,
    count: HashMap<Arc<ApiKey>, usize>,
}

impl Members {
    fn remove(&mut self, object: &str) {
        if let Some(api) = self.api_of.remove(object) {
            if let Some(n) = self.count.get_mut(&api) {
                *n -= 1;
                if *n == 0 {
                    self.count.remove(&api);
                }
            }
        }
    }
}

/// How long a snapshot's "this method has no integration" is trusted for creating it.
pub const CREATE_TRUST: Duration = Duration::from_secs(60);

/// What a snapshot says of one method.
enum Found {
    Integration(Box<Integration>),
    /// The method exists and has no integration.
    NoIntegration,
    NoMethod {
        resource_exists: bool,
    },
}

/// Which objects target which API, and the API snapshots.
pub struct Snapshots {
    max_age: Duration,
    /// One API is listed at a time: a listing is held whole while it is parsed (about 2 MB per
    /// 1,000 resources), and at the quota's pace listing APIs side by side is no faster.
    listing: tokio::sync::Semaphore,
    members: Mutex<Members>,
    snapshots: Mutex<HashMap<ApiKey, Arc<tokio::sync::Mutex<Option<Snapshot>>>>>,
}

impl Snapshots {
    pub fn new(max_age: Duration) -> Self {
        Snapshots {
            max_age,
            listing: tokio::sync::Semaphore::new(1),
            members: Mutex::new(Members::default()),
            snapshots: Mutex::new(HashMap::new()),
        }
    }

    /// Records that `object` manages an integration of `target`'s API.
    pub fn join(&self, object: &str, target: &IntegrationKey) {
        let api = ApiKey::from(target);
        let mut members = self.members.lock().expect("members lock");
        if members.api_of.get(object).is_some_and(|a| **a == api) {
            return;
        }
        members.remove(object);
        let shared = match members.count.get_key_value(&api) {
            Some((shared, _)) => shared.clone(),
            None => Arc::new(api),
        };
        members.api_of.insert(object.to_string(), shared.clone());
        *members.count.entry(shared).or_default() += 1;
    }

    /// Drops the snapshots too old to serve anyone (a stale one is listed again before use):
    /// at 10,000 objects they are several MB that would otherwise stay until the next drift
    /// cycle lists the API again. A snapshot being read or listed right now is left alone.
    pub fn purge_expired(&self) {
        let mut snapshots = self.snapshots.lock().expect("snapshots lock");
        snapshots.retain(|_, slot| match slot.try_lock() {
            Ok(mut snapshot) => {
                if snapshot
                    .as_ref()
                    .is_some_and(|s| s.taken.elapsed() >= self.max_age)
                {
                    *snapshot = None;
                }
                snapshot.is_some()
            }
            Err(_) => true,
        });
    }

    /// Every object recorded as a member of an API.
    pub fn member_keys(&self) -> Vec<String> {
        let members = self.members.lock().expect("members lock");
        members.api_of.keys().cloned().collect()
    }

    /// Forgets `object` (deleted).
    pub fn leave(&self, object: &str) {
        self.members.lock().expect("members lock").remove(object);
    }

    /// Whether more than one object manages integrations of this API, so reading it whole
    /// costs less than one GetIntegration each.
    pub fn is_shared(&self, api: &ApiKey) -> bool {
        let members = self.members.lock().expect("members lock");
        members.count.get(api).is_some_and(|n| *n > 1)
    }

    /// The integration of `target` from a snapshot of its API no older than `max_age`,
    /// reading the API (at `priority`) when needed. A missing method or integration is AWS's
    /// NotFound.
    pub async fn read<A: AwsApi>(
        &self,
        aws: &A,
        target: &IntegrationKey,
        priority: Priority,
    ) -> Result<Integration, AwsError> {
        let api = ApiKey::from(target);
        let slot = self.slot(&api);
        let mut snapshot = slot.lock().await;
        let stale = snapshot
            .as_ref()
            .is_none_or(|s| s.taken.elapsed() >= self.max_age);
        if stale {
            *snapshot = Some(self.list(aws, &api, priority).await?);
        }
        let snapshot = snapshot.as_ref().expect("filled above");
        match snapshot.find(target) {
            Found::Integration(integration) => Ok(*integration),
            Found::NoIntegration => Err(no_integration()),
            Found::NoMethod { resource_exists } => Err(no_method(resource_exists)),
        }
    }

    /// Whether the integration of `target` is missing from AWS as far as a snapshot younger
    /// than [`CREATE_TRUST`] shows, listing the API again when its snapshot is older (see the
    /// module documentation). `Ok(false)`: it exists, or the method does not.
    pub async fn confirm_absent<A: AwsApi>(
        &self,
        aws: &A,
        target: &IntegrationKey,
    ) -> Result<bool, AwsError> {
        let api = ApiKey::from(target);
        let slot = self.slot(&api);
        let mut snapshot = slot.lock().await;
        let trusted = snapshot
            .as_ref()
            .is_some_and(|s| s.taken.elapsed() < CREATE_TRUST.min(self.max_age));
        if !trusted {
            *snapshot = Some(self.list(aws, &api, Priority::Change).await?);
        }
        let snapshot = snapshot.as_ref().expect("filled above");
        Ok(matches!(snapshot.find(target), Found::NoIntegration))
    }

    fn slot(&self, api: &ApiKey) -> Arc<tokio::sync::Mutex<Option<Snapshot>>> {
        self.snapshots
            .lock()
            .expect("snapshots lock")
            .entry(api.clone())
            .or_default()
            .clone()
    }

    /// One listing of the API (one API at a time).
    async fn list<A: AwsApi>(
        &self,
        aws: &A,
        api: &ApiKey,
        priority: Priority,
    ) -> Result<Snapshot, AwsError> {
        let _one_at_a_time = self.listing.acquire().await.expect("never closed");
        let listing = aws
            .list_method_integrations(&api.region, &api.rest_api_id, priority)
            .await?;
        let mut methods = HashMap::new();
        let mut resources = HashSet::new();
        for item in listing {
            resources.insert(item.resource_id.clone());
            methods.insert(
                (item.resource_id, item.http_method),
                item.integration.as_ref().map(compact),
            );
        }
        Ok(Snapshot {
            taken: Instant::now(),
            methods,
            resources,
        })
    }

    /// Puts what AWS returned after a write into the snapshot of its API, so that a later
    /// drift check served from that snapshot does not see the state before the write.
    pub async fn record(&self, target: &IntegrationKey, integration: &Integration) {
        let slot = self
            .snapshots
            .lock()
            .expect("snapshots lock")
            .get(&ApiKey::from(target))
            .cloned();
        if let Some(slot) = slot {
            if let Some(snapshot) = slot.lock().await.as_mut() {
                snapshot.resources.insert(target.resource_id.clone());
                snapshot.methods.insert(
                    (target.resource_id.clone(), target.http_method.clone()),
                    Some(compact(integration)),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(api: &str, resource: &str) -> IntegrationKey {
        IntegrationKey {
            region: "us-east-1".into(),
            rest_api_id: api.into(),
            resource_id: resource.into(),
            http_method: "POST".into(),
        }
    }

    #[test]
    fn the_compact_form_reads_back_as_the_same_integration() {
        let integration: Integration = serde_json::from_value(serde_json::json!({
            "type": "HTTP_PROXY",
            "httpMethod": "POST",
            "uri": "https://example.com/a~b",
            "requestTemplates": {"application/json": "", "text/plain": "$input.body"},
            "requestParameters": {"integration.request.header.x": "'v'"},
            "cacheKeyParameters": ["method.request.path.id"],
            "timeoutInMillis": 29000,
            "tlsConfig": {"insecureSkipVerification": true}
        }))
        .expect("an integration");
        let back: Integration = serde_json::from_str(&compact(&integration)).expect("parses");
        assert_eq!(back, integration);
    }

    #[tokio::test(start_paused = true)]
    async fn expired_snapshots_are_dropped_and_fresh_ones_kept() {
        let aws = crate::aws::fake::FakeAws::with(&key("a", "r1"), Integration::default());
        let s = Snapshots::new(Duration::from_secs(60));
        s.read(&aws, &key("a", "r1"), Priority::Drift)
            .await
            .unwrap();
        s.purge_expired();
        assert_eq!(s.snapshots.lock().unwrap().len(), 1, "fresh: kept");
        tokio::time::advance(Duration::from_secs(61)).await;
        s.purge_expired();
        assert!(s.snapshots.lock().unwrap().is_empty(), "expired: dropped");
        // The next read lists the API again.
        s.read(&aws, &key("a", "r1"), Priority::Drift)
            .await
            .unwrap();
        assert_eq!(aws.count("GetResources"), 2);
    }

    #[test]
    fn an_api_is_shared_while_two_objects_target_it() {
        let s = Snapshots::new(Duration::from_secs(60));
        let api = ApiKey::from(&key("a", "r1"));
        s.join("ns/x", &key("a", "r1"));
        s.join("ns/x", &key("a", "r1"));
        assert!(!s.is_shared(&api));
        s.join("ns/y", &key("a", "r2"));
        assert!(s.is_shared(&api));
        s.join("ns/y", &key("b", "r2"));
        assert!(!s.is_shared(&api));
        s.join("ns/z", &key("a", "r3"));
        assert!(s.is_shared(&api));
        s.leave("ns/z");
        assert!(!s.is_shared(&api));
    }
}
