//! What each kind asks of its access ([`Governed`]).

use super::check::{Governed, Request};
use crate::crd::{ApiGatewayIntegration, DeletionPolicy, ManagementPolicy};
use crate::stage::ApiGatewayStage;

/// The fields both kinds share, as a request. `rest_api_id` (pinned or resolved) stands in
/// when the spec names its API by name.
#[allow(clippy::too_many_arguments)]
fn request<'a>(
    region: Option<&'a str>,
    spec_rest_api_id: Option<&'a str>,
    rest_api_name: Option<&'a str>,
    management: &ManagementPolicy,
    deletion: &DeletionPolicy,
    credentials: Option<&'a str>,
    default_region: &'a str,
    rest_api_id: Option<&'a str>,
) -> Request<'a> {
    Request {
        region: region.unwrap_or(default_region),
        rest_api_id: spec_rest_api_id.or(rest_api_id),
        rest_api_name,
        creates: *management == ManagementPolicy::CreateOrUpdate,
        deletes: *deletion == DeletionPolicy::Delete,
        credentials,
    }
}

impl Governed for ApiGatewayIntegration {
    fn access_request<'a>(
        &'a self,
        default_region: &'a str,
        rest_api_id: Option<&'a str>,
    ) -> Request<'a> {
        let s = &self.spec;
        request(
            s.region.as_deref(),
            s.rest_api_id.as_deref(),
            s.rest_api_name.as_deref(),
            &s.management_policy,
            &s.deletion_policy,
            s.credentials.as_deref(),
            default_region,
            rest_api_id,
        )
    }

    fn access_ref(&self) -> Option<&str> {
        self.spec.access_ref.as_deref()
    }

    fn pinned_rest_api_id(&self) -> Option<&str> {
        let target = self.status.as_ref()?.target.as_ref()?;
        Some(target.rest_api_id.as_str())
    }
}

impl Governed for ApiGatewayStage {
    fn access_request<'a>(
        &'a self,
        default_region: &'a str,
        rest_api_id: Option<&'a str>,
    ) -> Request<'a> {
        let s = &self.spec;
        request(
            s.region.as_deref(),
            s.rest_api_id.as_deref(),
            s.rest_api_name.as_deref(),
            &s.management_policy,
            &s.deletion_policy,
            None,
            default_region,
            rest_api_id,
        )
    }

    fn access_ref(&self) -> Option<&str> {
        self.spec.access_ref.as_deref()
    }

    fn pinned_rest_api_id(&self) -> Option<&str> {
        let target = self.status.as_ref()?.target.as_ref()?;
        Some(target.rest_api_id.as_str())
    }
}
