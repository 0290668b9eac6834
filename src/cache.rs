//! What the integration controller keeps of every watched object: metadata and spec as they
//! are, and the status as one compact JSON string plus the few fields read across objects
//! (the pinned target, the Ready reason, the last write and observation, the synced
//! generation). A typed status holds four conditions, AWS's last answer and the last patch
//! operations as some sixty separate allocations, about 2.2 KB an object with its inline
//! size; the JSON is about half that, and at 10,000 objects the difference is what keeps the
//! operator within its memory budget (docs/benchmarks.md, "Memory").
//!
//! A reconcile works on the whole typed object, parsed from this copy when it starts
//! ([`CachedIntegration::full`]): status is written with server-side apply, which needs every
//! field the operator owns. The ownership check and the stage controller read only the
//! digest, so scanning every watched object parses nothing.

use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use kube::core::NamespaceResourceScope;
use kube::Resource;
use serde::{Deserialize, Deserializer};

use crate::crd::{
    ApiGatewayIntegration, ApiGatewayIntegrationSpec, ApiGatewayIntegrationStatus, ResolvedTarget,
};

/// A watched ApiGatewayIntegration as the cache holds it.
#[derive(Clone, Debug, Deserialize)]
pub struct CachedIntegration {
    pub metadata: ObjectMeta,
    pub spec: ApiGatewayIntegrationSpec,
    #[serde(default)]
    pub status: Option<StatusDigest>,
}

/// The status: compact JSON, and what is read without parsing it.
#[derive(Clone, Debug)]
pub struct StatusDigest {
    json: Box<str>,
    pub target: Option<ResolvedTarget>,
    pub last_write_time: Option<MicroTime>,
    pub last_observed_time: Option<Time>,
    pub synced_generation: Option<i64>,
    /// The Ready condition's status and reason.
    pub ready: Option<(Box<str>, Box<str>)>,
}

impl StatusDigest {
    /// The digest of a typed status.
    pub fn of(status: &ApiGatewayIntegrationStatus) -> Self {
        let ready = status
            .conditions
            .iter()
            .find(|c| c.type_ == "Ready")
            .map(|c| (c.status.as_str().into(), c.reason.as_str().into()));
        StatusDigest {
            json: serde_json::to_string(status)
                .expect("a status serializes")
                .into_boxed_str(),
            target: status.target.clone(),
            last_write_time: status.last_write_time.clone(),
            last_observed_time: status.last_observed_time.clone(),
            synced_generation: status.synced_generation,
            ready,
        }
    }

    /// The whole typed status.
    pub fn parse(&self) -> ApiGatewayIntegrationStatus {
        serde_json::from_str(&self.json).expect("written by StatusDigest::of")
    }
}

impl<'de> Deserialize<'de> for StatusDigest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let status = ApiGatewayIntegrationStatus::deserialize(deserializer)?;
        Ok(StatusDigest::of(&status))
    }
}

impl CachedIntegration {
    /// The whole typed object (status parsed).
    pub fn full(&self) -> ApiGatewayIntegration {
        ApiGatewayIntegration {
            metadata: self.metadata.clone(),
            spec: self.spec.clone(),
            status: self.status.as_ref().map(StatusDigest::parse),
        }
    }

    /// The cache's copy of a typed object.
    pub fn of(obj: &ApiGatewayIntegration) -> Self {
        CachedIntegration {
            metadata: obj.metadata.clone(),
            spec: obj.spec.clone(),
            status: obj.status.as_ref().map(StatusDigest::of),
        }
    }
}

impl Resource for CachedIntegration {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(dt: &()) -> Cow<'_, str> {
        ApiGatewayIntegration::kind(dt)
    }

    fn group(dt: &()) -> Cow<'_, str> {
        ApiGatewayIntegration::group(dt)
    }

    fn version(dt: &()) -> Cow<'_, str> {
        ApiGatewayIntegration::version(dt)
    }

    fn plural(dt: &()) -> Cow<'_, str> {
        ApiGatewayIntegration::plural(dt)
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

impl crate::kit::Observed for CachedIntegration {
    fn ready(&self) -> Option<(&str, &str)> {
        let (status, reason) = self.status.as_ref()?.ready.as_ref()?;
        Some((status, reason))
    }

    fn last_observed(&self) -> Option<&Time> {
        self.status.as_ref()?.last_observed_time.as_ref()
    }
}

/// What the ownership check reads of an object, cached or whole.
pub trait Claimant: kube::ResourceExt {
    fn claim_spec(&self) -> &ApiGatewayIntegrationSpec;
    fn pinned_target(&self) -> Option<&ResolvedTarget>;
}

impl Claimant for CachedIntegration {
    fn claim_spec(&self) -> &ApiGatewayIntegrationSpec {
        &self.spec
    }

    fn pinned_target(&self) -> Option<&ResolvedTarget> {
        self.status.as_ref()?.target.as_ref()
    }
}

impl Claimant for ApiGatewayIntegration {
    fn claim_spec(&self) -> &ApiGatewayIntegrationSpec {
        &self.spec
    }

    fn pinned_target(&self) -> Option<&ResolvedTarget> {
        self.status.as_ref()?.target.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cached_copy_reads_back_as_the_same_object_and_digests_what_others_read() {
        let obj: ApiGatewayIntegration = serde_json::from_value(serde_json::json!({
            "apiVersion": "apigw.dev/v1alpha1", "kind": "ApiGatewayIntegration",
            "metadata": {"name": "a", "namespace": "ns", "generation": 2, "labels": {"x": "y"}},
            "spec": {"restApiId": "api", "resourceId": "res", "httpMethod": "POST", "type": "MOCK"},
            "status": {
                "observedGeneration": 2, "syncedGeneration": 2,
                "conditions": [{"type": "Ready", "status": "True", "reason": "Synced",
                    "message": "AWS holds the spec", "lastTransitionTime": "2026-11-28T20:00:00Z"}],
                "integration": {"type": "MOCK", "requestTemplates": {"application/json": "{}"}},
                "lastPatchOperations": [{"op": "replace", "path": "/timeoutInMillis", "value": "1"}],
                "lastWriteTime": "2026-11-28T20:00:00.123456Z",
                "lastObservedTime": "2026-11-28T20:00:01Z",
                "target": {"region": "us-east-1", "restApiId": "api", "resourceId": "res", "httpMethod": "POST"}
            }
        }))
        .unwrap();
        let text = serde_json::to_string(&obj).unwrap();
        let cached: CachedIntegration = serde_json::from_str(&text).unwrap();
        let as_json = |o: &ApiGatewayIntegration| serde_json::to_value(o).unwrap();
        assert_eq!(as_json(&cached.full()), as_json(&obj));
        assert_eq!(as_json(&CachedIntegration::of(&obj).full()), as_json(&obj));
        let digest = cached.status.as_ref().unwrap();
        assert_eq!(digest.synced_generation, Some(2));
        assert_eq!(digest.target.as_ref().unwrap().resource_id, "res");
        assert!(digest.last_write_time.is_some() && digest.last_observed_time.is_some());
        assert_eq!(
            crate::kit::Observed::ready(&cached),
            Some(("True", "Synced"))
        );
        assert_eq!(cached.pinned_target(), obj.pinned_target());
        assert_eq!(
            CachedIntegration::api_version(&()),
            ApiGatewayIntegration::api_version(&())
        );
        assert_eq!(CachedIntegration::plural(&()), "apigatewayintegrations");
    }
}
