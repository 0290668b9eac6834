//! An in-memory API Gateway for unit tests of the reconcile's decisions: integrations by key,
//! UpdateIntegration applied with the planner's independent model of AWS, a call log, and the
//! failures the tests need (an op AWS ignores, a failure queued for one operation,
//! PutIntegration dropping the integration responses).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use super::{AwsApi, AwsError, IntegrationKey, MethodIntegration, Priority};
use crate::crd::ApiGatewayIntegrationSpec;
use crate::integration::{Integration, IntegrationResponse};
use crate::plan::aws_model;
use crate::plan::responses::aws_model as responses_model;
use crate::plan::responses::{ResponseCall, ResponseCallKind};
use crate::plan::PatchOperation;

#[derive(Default)]
pub struct FakeAws {
    pub integrations: Mutex<HashMap<IntegrationKey, Integration>>,
    /// Methods that exist without an integration (a listing shows them so).
    pub bare_methods: Mutex<Vec<IntegrationKey>>,
    /// Every call, by AWS operation name, in order.
    pub calls: Mutex<Vec<&'static str>>,
    /// UpdateIntegration answers 200 but leaves these paths as they were.
    pub ignore_paths: Mutex<Vec<String>>,
    /// Integration-response calls on these status codes answer 200 but change nothing.
    pub ignore_responses: Mutex<Vec<String>>,
    /// The next call of an operation fails with this error (one per entry).
    pub failures: Mutex<VecDeque<(&'static str, AwsError)>>,
    /// Whether PutIntegration keeps an existing integration's responses (AWS's answer is not
    /// recorded; the default drops them, as the facts infer).
    pub put_keeps_responses: bool,
    /// Every identity a reconcile acted as, and every one forgotten.
    pub identities: Mutex<Vec<super::Identity>>,
    pub forgotten: Mutex<Vec<super::Identity>>,
}

impl super::Scoped for FakeAws {
    async fn scoped(
        self: &std::sync::Arc<Self>,
        identity: &super::Identity,
    ) -> std::sync::Arc<Self> {
        self.identities.lock().unwrap().push(identity.clone());
        self.clone()
    }

    fn forget(&self, identity: &super::Identity) {
        self.forgotten.lock().unwrap().push(identity.clone());
    }
}

impl FakeAws {
    pub fn with(key: &IntegrationKey, integration: Integration) -> Self {
        let fake = FakeAws::default();
        fake.integrations
            .lock()
            .unwrap()
            .insert(key.clone(), integration);
        fake
    }

    pub fn get(&self, key: &IntegrationKey) -> Option<Integration> {
        self.integrations.lock().unwrap().get(key).cloned()
    }

    pub fn count(&self, operation: &str) -> usize {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| **c == operation)
            .count()
    }

    pub fn fail_next(&self, operation: &'static str, error: AwsError) {
        self.failures.lock().unwrap().push_back((operation, error));
    }

    fn call(&self, operation: &'static str) -> Result<(), AwsError> {
        self.calls.lock().unwrap().push(operation);
        let mut failures = self.failures.lock().unwrap();
        if let Some(i) = failures.iter().position(|(op, _)| *op == operation) {
            return Err(failures.remove(i).expect("present").1);
        }
        Ok(())
    }

    fn missing() -> AwsError {
        AwsError::NotFound {
            message: "Invalid Integration identifier specified".into(),
        }
    }
}

/// The Integration PutIntegration makes of a spec: its fields under AWS's names.
fn from_spec(spec: &ApiGatewayIntegrationSpec) -> Integration {
    let mut value = serde_json::to_value(spec).expect("spec serialises");
    let map = value.as_object_mut().expect("an object");
    // PutIntegration has no integration responses; they are calls of their own.
    map.remove("integrationResponses");
    if let Some(verb) = map.remove("integrationHttpMethod") {
        map.insert("httpMethod".into(), verb);
    } else {
        map.remove("httpMethod");
    }
    serde_json::from_value(value).expect("spec fields are Integration fields")
}

impl AwsApi for FakeAws {
    async fn get_integration(
        &self,
        key: &IntegrationKey,
        _priority: Priority,
    ) -> Result<Integration, AwsError> {
        self.call("GetIntegration")?;
        self.get(key).ok_or_else(Self::missing)
    }

    async fn update_integration(
        &self,
        key: &IntegrationKey,
        ops: &[PatchOperation],
    ) -> Result<Integration, AwsError> {
        self.call("UpdateIntegration")?;
        let mut all = self.integrations.lock().unwrap();
        let live = all.get(key).ok_or_else(Self::missing)?;
        let ignored = self.ignore_paths.lock().unwrap().clone();
        let applied: Vec<PatchOperation> = ops
            .iter()
            .filter(|op| !ignored.contains(&op.path))
            .cloned()
            .collect();
        let next = aws_model::apply(live, &applied).map_err(|message| AwsError::Invalid {
            code: "BadRequestException".into(),
            message,
        })?;
        all.insert(key.clone(), next.clone());
        Ok(next)
    }

    async fn put_integration(
        &self,
        key: &IntegrationKey,
        spec: &ApiGatewayIntegrationSpec,
    ) -> Result<Integration, AwsError> {
        self.call("PutIntegration")?;
        let mut all = self.integrations.lock().unwrap();
        let mut next = from_spec(spec);
        if self.put_keeps_responses {
            next.integration_responses = all.get(key).and_then(|i| i.integration_responses.clone());
        }
        all.insert(key.clone(), next.clone());
        Ok(next)
    }

    async fn integration_response_call(
        &self,
        key: &IntegrationKey,
        call: &ResponseCall,
    ) -> Result<Option<IntegrationResponse>, AwsError> {
        self.call(match call.call {
            ResponseCallKind::PutIntegrationResponse => "PutIntegrationResponse",
            ResponseCallKind::UpdateIntegrationResponse => "UpdateIntegrationResponse",
            ResponseCallKind::DeleteIntegrationResponse => "DeleteIntegrationResponse",
        })?;
        let mut all = self.integrations.lock().unwrap();
        let live = all.get_mut(key).ok_or_else(Self::missing)?;
        let responses = live.integration_responses.clone().unwrap_or_default();
        if self
            .ignore_responses
            .lock()
            .unwrap()
            .contains(&call.status_code)
        {
            return Ok(responses.get(&call.status_code).cloned());
        }
        let next =
            responses_model::apply(&responses, std::slice::from_ref(call)).map_err(|message| {
                match message.as_str() {
                    "Invalid Response status code specified" => AwsError::NotFound { message },
                    _ => AwsError::Invalid {
                        code: "BadRequestException".into(),
                        message,
                    },
                }
            })?;
        let answer = next.get(&call.status_code).cloned();
        live.integration_responses = Some(next);
        Ok(answer)
    }

    async fn delete_integration(&self, key: &IntegrationKey) -> Result<(), AwsError> {
        self.call("DeleteIntegration")?;
        self.integrations
            .lock()
            .unwrap()
            .remove(key)
            .map(|_| ())
            .ok_or_else(Self::missing)
    }

    async fn find_rest_api_id(&self, _region: &str, name: &str) -> Result<String, AwsError> {
        self.call("GetRestApis")?;
        Ok(name.to_string())
    }

    async fn find_resource_id(
        &self,
        _region: &str,
        _rest_api_id: &str,
        path: &str,
    ) -> Result<String, AwsError> {
        self.call("GetResources")?;
        Ok(path.trim_start_matches('/').to_string())
    }

    async fn list_method_integrations(
        &self,
        region: &str,
        rest_api_id: &str,
        _priority: Priority,
    ) -> Result<Vec<MethodIntegration>, AwsError> {
        self.call("GetResources")?;
        let all = self.integrations.lock().unwrap();
        let bare = self.bare_methods.lock().unwrap();
        let bare = bare
            .iter()
            .filter(|k| !all.contains_key(k))
            .map(|k| (k, None));
        Ok(all
            .iter()
            .map(|(k, i)| (k, Some(i)))
            .chain(bare)
            .filter(|(k, _)| k.region == region && k.rest_api_id == rest_api_id)
            .map(|(k, i)| MethodIntegration {
                resource_id: k.resource_id.clone(),
                resource_path: format!("/{}", k.resource_id),
                http_method: k.http_method.clone(),
                integration: i.cloned(),
            })
            .collect())
    }

    fn invalidate_lookups(&self, _region: &str) {}
}
