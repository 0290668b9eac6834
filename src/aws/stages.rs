//! Stages and deployments: what the `ApiGatewayStage` controller needs from API Gateway
//! (`aws-apigateway-deploy-facts.md` §2), behind a small trait with an in-memory fake for the
//! unit tests of its decisions.

use std::collections::BTreeMap;
use std::future::Future;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{convert, AwsError, Priority, SdkAws};
use crate::plan::PatchOperation;

/// The stage's address.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StageKey {
    pub region: String,
    pub rest_api_id: String,
    pub stage_name: String,
}

impl std::fmt::Display for StageKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/restapis/{}/stages/{}",
            self.region, self.rest_api_id, self.stage_name
        )
    }
}

/// A Stage as AWS returns it, the fields the operator reads or shows, under AWS's names.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Stage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage_name: Option<String>,
    /// The deployment the stage serves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Stage variables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variables: Option<BTreeMap<String, String>>,
    /// The canary's deployment, when the stage has a canary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_deployment_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracing_enabled: Option<bool>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_date: Option<String>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated_date: Option<String>,
}

/// A deployment as CreateDeployment or GetDeployment return it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Deployment {
    pub id: String,
    /// Seconds since the epoch.
    pub created_date: Option<f64>,
    /// CreateDeployment: when the request left, after its turn in the deployment quota. Every
    /// integration written before then is in the deployment.
    pub sent_at: Option<k8s_openapi::jiff::Timestamp>,
}

/// What the stage controller needs from API Gateway.
pub trait StageApi: crate::aws::Scoped + Send + Sync + 'static {
    /// GetStage; `NotFound` when the stage does not exist.
    fn get_stage(
        &self,
        key: &StageKey,
        priority: Priority,
    ) -> impl Future<Output = Result<Stage, AwsError>> + Send;

    /// CreateDeployment with `stageName`: snapshots the API's draft and points the stage at it
    /// (creating the stage, with `variables`, when it does not exist). Takes a token of the
    /// deployment quota first.
    fn create_deployment(
        &self,
        key: &StageKey,
        description: Option<&str>,
        variables: Option<&BTreeMap<String, String>>,
    ) -> impl Future<Output = Result<Deployment, AwsError>> + Send;

    /// GetDeployment: when it was made.
    fn get_deployment(
        &self,
        key: &StageKey,
        deployment_id: &str,
    ) -> impl Future<Output = Result<Deployment, AwsError>> + Send;

    /// UpdateStage with these operations, in this order; AWS's answer.
    fn update_stage(
        &self,
        key: &StageKey,
        ops: &[PatchOperation],
    ) -> impl Future<Output = Result<Stage, AwsError>> + Send;

    /// DeleteStage; `NotFound` when it is already gone.
    fn delete_stage(&self, key: &StageKey) -> impl Future<Output = Result<(), AwsError>> + Send;

    /// The id of the REST API with this name (see `AwsApi::find_rest_api_id`).
    fn rest_api_id(
        &self,
        region: &str,
        name: &str,
    ) -> impl Future<Output = Result<String, AwsError>> + Send;

    /// The operator's default Region.
    fn region(&self) -> &str;
}

fn rfc3339(date: Option<aws_smithy_types::DateTime>) -> Option<String> {
    date.and_then(|d| d.fmt(aws_smithy_types::date_time::Format::DateTime).ok())
}

macro_rules! stage_from_sdk {
    ($value:expr) => {{
        let o = $value;
        Stage {
            stage_name: o.stage_name,
            deployment_id: o.deployment_id,
            description: o.description,
            variables: o.variables.map(convert::sorted),
            canary_deployment_id: o.canary_settings.and_then(|c| c.deployment_id),
            tracing_enabled: Some(o.tracing_enabled),
            created_date: rfc3339(o.created_date),
            last_updated_date: rfc3339(o.last_updated_date),
        }
    }};
}

impl StageApi for SdkAws {
    async fn get_stage(&self, key: &StageKey, priority: Priority) -> Result<Stage, AwsError> {
        let r = self.regional(&key.region);
        let out = self
            .call(&r, "GetStage", priority, || {
                r.client
                    .get_stage()
                    .rest_api_id(&key.rest_api_id)
                    .stage_name(&key.stage_name)
                    .send()
            })
            .await?;
        Ok(stage_from_sdk!(out))
    }

    async fn create_deployment(
        &self,
        key: &StageKey,
        description: Option<&str>,
        variables: Option<&BTreeMap<String, String>>,
    ) -> Result<Deployment, AwsError> {
        let r = self.regional(&key.region);
        let variables = variables.map(|v| v.clone().into_iter().collect());
        // CreateDeployment's own quota first (every stage waits in one FIFO queue), then the
        // stamp: the deployment holds whatever was written before it left, not before it
        // queued.
        r.buckets.deployments.acquire(Priority::Change).await;
        let sent_at = k8s_openapi::jiff::Timestamp::now();
        let out = self
            .call(&r, "CreateDeployment", Priority::Change, || {
                r.client
                    .create_deployment()
                    .rest_api_id(&key.rest_api_id)
                    .stage_name(&key.stage_name)
                    .set_description(description.map(str::to_owned))
                    .set_variables(variables.clone())
                    .send()
            })
            .await?;
        Ok(Deployment {
            id: out.id.unwrap_or_default(),
            created_date: out.created_date.map(|d| d.as_secs_f64()),
            sent_at: Some(sent_at),
        })
    }

    async fn get_deployment(
        &self,
        key: &StageKey,
        deployment_id: &str,
    ) -> Result<Deployment, AwsError> {
        let r = self.regional(&key.region);
        let out = self
            .call(&r, "GetDeployment", Priority::Change, || {
                r.client
                    .get_deployment()
                    .rest_api_id(&key.rest_api_id)
                    .deployment_id(deployment_id)
                    .send()
            })
            .await?;
        Ok(Deployment {
            id: out.id.unwrap_or_default(),
            created_date: out.created_date.map(|d| d.as_secs_f64()),
            sent_at: None,
        })
    }

    async fn update_stage(
        &self,
        key: &StageKey,
        ops: &[PatchOperation],
    ) -> Result<Stage, AwsError> {
        let r = self.regional(&key.region);
        let patch: Vec<_> = ops.iter().map(convert::patch_to_sdk).collect();
        let out = self
            .call(&r, "UpdateStage", Priority::Change, || {
                r.client
                    .update_stage()
                    .rest_api_id(&key.rest_api_id)
                    .stage_name(&key.stage_name)
                    .set_patch_operations(Some(patch.clone()))
                    .send()
            })
            .await?;
        Ok(stage_from_sdk!(out))
    }

    async fn delete_stage(&self, key: &StageKey) -> Result<(), AwsError> {
        let r = self.regional(&key.region);
        self.call(&r, "DeleteStage", Priority::Change, || {
            r.client
                .delete_stage()
                .rest_api_id(&key.rest_api_id)
                .stage_name(&key.stage_name)
                .send()
        })
        .await?;
        Ok(())
    }

    async fn rest_api_id(&self, region: &str, name: &str) -> Result<String, AwsError> {
        super::AwsApi::find_rest_api_id(self, region, name).await
    }

    fn region(&self) -> &str {
        self.default_region()
    }
}

/// An in-memory API Gateway for the unit tests of the stage controller's decisions: stages by
/// key, deployments with their creation time, and a call log.
#[cfg(test)]
pub mod fake {
    use std::collections::{BTreeMap, HashMap};
    use std::sync::Mutex;

    use super::{Deployment, Stage, StageApi, StageKey};
    use crate::aws::{AwsError, Priority};
    use crate::plan::{Op, PatchOperation};

    #[derive(Default)]
    pub struct FakeStages {
        pub stages: Mutex<HashMap<StageKey, Stage>>,
        /// Deployment id → seconds since the epoch.
        pub deployments: Mutex<BTreeMap<String, f64>>,
        pub calls: Mutex<Vec<&'static str>>,
        /// Every identity a reconcile acted as.
        pub identities: Mutex<Vec<crate::aws::Identity>>,
    }

    impl crate::aws::Scoped for FakeStages {
        async fn scoped(
            self: &std::sync::Arc<Self>,
            identity: &crate::aws::Identity,
        ) -> std::sync::Arc<Self> {
            self.identities.lock().unwrap().push(identity.clone());
            self.clone()
        }

        fn forget(&self, _identity: &crate::aws::Identity) {}
    }

    impl FakeStages {
        pub fn count(&self, operation: &str) -> usize {
            self.calls
                .lock()
                .unwrap()
                .iter()
                .filter(|c| **c == operation)
                .count()
        }

        /// A stage serving a deployment made at `created` (seconds since the epoch).
        pub fn with_stage(key: &StageKey, deployment: &str, created: f64) -> Self {
            let fake = FakeStages::default();
            fake.deployments
                .lock()
                .unwrap()
                .insert(deployment.into(), created);
            fake.stages.lock().unwrap().insert(
                key.clone(),
                Stage {
                    stage_name: Some(key.stage_name.clone()),
                    deployment_id: Some(deployment.into()),
                    ..Stage::default()
                },
            );
            fake
        }

        fn missing() -> AwsError {
            AwsError::NotFound {
                message: "Invalid Stage identifier specified".into(),
            }
        }
    }

    impl StageApi for FakeStages {
        async fn get_stage(&self, key: &StageKey, _priority: Priority) -> Result<Stage, AwsError> {
            self.calls.lock().unwrap().push("GetStage");
            self.stages
                .lock()
                .unwrap()
                .get(key)
                .cloned()
                .ok_or_else(Self::missing)
        }

        async fn create_deployment(
            &self,
            key: &StageKey,
            _description: Option<&str>,
            variables: Option<&BTreeMap<String, String>>,
        ) -> Result<Deployment, AwsError> {
            self.calls.lock().unwrap().push("CreateDeployment");
            let mut deployments = self.deployments.lock().unwrap();
            let id = format!("dep{}", deployments.len() + 1);
            let now = k8s_openapi::jiff::Timestamp::now().as_second() as f64;
            deployments.insert(id.clone(), now);
            let mut stages = self.stages.lock().unwrap();
            let stage = stages.entry(key.clone()).or_insert_with(|| Stage {
                stage_name: Some(key.stage_name.clone()),
                variables: variables.cloned(),
                ..Stage::default()
            });
            stage.deployment_id = Some(id.clone());
            Ok(Deployment {
                id,
                created_date: Some(now),
                sent_at: Some(k8s_openapi::jiff::Timestamp::now()),
            })
        }

        async fn get_deployment(
            &self,
            _key: &StageKey,
            deployment_id: &str,
        ) -> Result<Deployment, AwsError> {
            self.calls.lock().unwrap().push("GetDeployment");
            let created = self.deployments.lock().unwrap().get(deployment_id).copied();
            created
                .map(|c| Deployment {
                    id: deployment_id.into(),
                    created_date: Some(c),
                    sent_at: None,
                })
                .ok_or_else(|| AwsError::NotFound {
                    message: "Invalid Deployment identifier specified".into(),
                })
        }

        async fn update_stage(
            &self,
            key: &StageKey,
            ops: &[PatchOperation],
        ) -> Result<Stage, AwsError> {
            self.calls.lock().unwrap().push("UpdateStage");
            let mut stages = self.stages.lock().unwrap();
            let stage = stages.get_mut(key).ok_or_else(Self::missing)?;
            for op in ops {
                let name = op.path.trim_start_matches("/variables/").to_string();
                let variables = stage.variables.get_or_insert_default();
                match op.op {
                    Op::Remove => {
                        variables.remove(&name);
                    }
                    _ => {
                        variables.insert(name, op.value.clone().unwrap_or_default());
                    }
                }
            }
            Ok(stage.clone())
        }

        async fn delete_stage(&self, key: &StageKey) -> Result<(), AwsError> {
            self.calls.lock().unwrap().push("DeleteStage");
            self.stages
                .lock()
                .unwrap()
                .remove(key)
                .map(|_| ())
                .ok_or_else(Self::missing)
        }

        async fn rest_api_id(&self, _region: &str, name: &str) -> Result<String, AwsError> {
            Ok(name.to_string())
        }

        fn region(&self) -> &str {
            "us-east-1"
        }
    }
}
