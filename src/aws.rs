//! The AWS layer: a small trait ([`AwsApi`]) over the API Gateway calls the controller needs,
//! and its implementation over aws-sdk-apigateway ([`SdkAws`]).
//!
//! - **Configuration** comes from aws-config's default chain (environment, profile, IRSA web
//!   identity, EKS Pod Identity / ECS container credentials, IMDS), overridden by
//!   [`AwsSettings`]: Region, endpoint URL, CA bundle (`AWS_CA_BUNDLE`, which the Rust SDK does
//!   not read by itself), timeouts, SDK retry attempts. One SDK client per Region, created on
//!   first use.
//! - **Errors** are classified once ([`AwsError`]): not found, invalid (400), unauthorized,
//!   retryable (throttled with Retry-After, conflict, server, timeout, connection), ambiguous.
//! - **Null templates**: AWS answers `null` for a passthrough template, which the SDK cannot
//!   parse; an interceptor rewrites those `null`s to `""` before the SDK reads the answer
//!   (see `nulls`). [`Integration`] therefore always holds `""` for a passthrough template.
//! - **Quota**: every HTTP request takes a token from the Region's [`Quota`] first (one per
//!   page of a listing); SDK retries are charged to it as they happen. Spec changes
//!   ([`Priority::Change`]) go before drift reads ([`Priority::Drift`]). The buckets are keyed
//!   by account and Region and shared by every identity ([`identity`]) of that account: two
//!   accesses whose roles live in one account draw from one bucket, as AWS counts them.
//! - **Lookups** (REST API by name, resource by path) are cached per Region for
//!   [`AwsSettings::lookup_ttl`]; a name or path missing from a cached listing is looked up
//!   again once the listing is older than 30 s (or the TTL, if shorter), so a REST API or
//!   resource created later is found without waiting for the TTL. Concurrent lookups of the
//!   same listing share one fetch. [`AwsApi::invalidate_lookups`] forgets a Region's listings.
//! - **Observer**: [`AwsSettings::observer`] is called once per HTTP attempt (one per page of a
//!   listing, and once more for every retry the SDK makes inside one call) with AWS's
//!   operation name and the attempt's outcome by its HTTP status (`"ok"`, `"throttled"`, ...,
//!   `"unreadable"` for a 2xx the SDK could not parse); a call that never reached AWS for want
//!   of credentials is reported once with [`AwsError::category`], a write the fence stopped not
//!   at all. Every attempt also feeds the buckets' adaptation ([`crate::quota`]).

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_apigateway::config::interceptors::{
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_sdk_apigateway::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_apigateway::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_apigateway::Client;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::{HttpResponse, Metadata};
use aws_smithy_runtime_api::client::retries::RequestAttempts;
use tracing::debug;

use crate::crd::ApiGatewayIntegrationSpec;
use crate::integration::{Integration, IntegrationResponse};
use crate::plan::responses::{ResponseCall, ResponseCallKind};
use crate::plan::PatchOperation;
use crate::quota::{AccountBuckets, Quota};

pub(crate) mod convert;
mod error;
#[cfg(test)]
pub(crate) mod fake;
pub mod identity;
mod nulls;
pub mod stages;
mod tls;

pub use error::{AwsError, RetryKind};
pub use identity::{Identity, Scoped};

/// Which integration: the four ids of an UpdateIntegration call, plus its Region.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IntegrationKey {
    pub region: String,
    pub rest_api_id: String,
    pub resource_id: String,
    /// The method's verb (GET, POST, ..., ANY).
    pub http_method: String,
}

impl fmt::Display for IntegrationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/restapis/{}/resources/{}/methods/{}",
            self.region, self.rest_api_id, self.resource_id, self.http_method
        )
    }
}

/// Who waits first when the AWS quota is short.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Priority {
    /// Spec changes and writes.
    Change,
    /// Periodic drift reads.
    Drift,
}

/// One method of one resource of a REST API, with its integration if it has one (a result of
/// [`AwsApi::list_method_integrations`]).
#[derive(Clone, Debug)]
pub struct MethodIntegration {
    pub resource_id: String,
    pub resource_path: String,
    pub http_method: String,
    pub integration: Option<Integration>,
}

/// What the controller needs from API Gateway. [`SdkAws`] is the implementation over AWS;
/// tests can provide their own.
pub trait AwsApi: Scoped + Send + Sync + 'static {
    /// GetIntegration.
    fn get_integration(
        &self,
        key: &IntegrationKey,
        priority: Priority,
    ) -> impl Future<Output = Result<Integration, AwsError>> + Send;

    /// UpdateIntegration with these operations, in this order; AWS's answer, the whole
    /// Integration.
    fn update_integration(
        &self,
        key: &IntegrationKey,
        ops: &[PatchOperation],
    ) -> impl Future<Output = Result<Integration, AwsError>> + Send;

    /// PutIntegration from every integration field the spec sets (AWS fills its defaults for
    /// the rest). A spec without `type` is [`AwsError::Invalid`] without calling AWS.
    fn put_integration(
        &self,
        key: &IntegrationKey,
        spec: &ApiGatewayIntegrationSpec,
    ) -> impl Future<Output = Result<Integration, AwsError>> + Send;

    /// One integration-response call: PutIntegrationResponse (create or wholly replace, with
    /// `call.response`), UpdateIntegrationResponse (`call.patch_operations`) or
    /// DeleteIntegrationResponse. AWS's answer: the response, or None after a delete.
    fn integration_response_call(
        &self,
        key: &IntegrationKey,
        call: &ResponseCall,
    ) -> impl Future<Output = Result<Option<IntegrationResponse>, AwsError>> + Send;

    /// DeleteIntegration. 404 is returned as `Err(NotFound)`; the caller treats it as done.
    fn delete_integration(
        &self,
        key: &IntegrationKey,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;

    /// GetRestApis (paged, limit 500): the id of the one REST API with this name; `NotFound`
    /// if none, `Ambiguous` if several. Cached with a TTL.
    fn find_rest_api_id(
        &self,
        region: &str,
        name: &str,
    ) -> impl Future<Output = Result<String, AwsError>> + Send;

    /// GetResources (paged, limit 500): the id of the resource with this path; `NotFound` if
    /// none. Cached with a TTL, per REST API.
    fn find_resource_id(
        &self,
        region: &str,
        rest_api_id: &str,
        path: &str,
    ) -> impl Future<Output = Result<String, AwsError>> + Send;

    /// `GET /restapis/{id}/resources?embed=methods`, paged at limit=500 via `position`: one
    /// call per 500 resources. Every method of every resource, sorted by path then verb.
    fn list_method_integrations(
        &self,
        region: &str,
        rest_api_id: &str,
        priority: Priority,
    ) -> impl Future<Output = Result<Vec<MethodIntegration>, AwsError>> + Send;

    /// Forgets the cached lookups of a Region (after a NotFound on a looked-up id).
    fn invalidate_lookups(&self, region: &str);
}

/// Called once per HTTP attempt with AWS's operation name (`GetIntegration`,
/// `UpdateIntegration`, ..., `Other` for one this crate does not name) and the attempt's
/// outcome (see the module documentation).
pub type CallObserver = Arc<dyn Fn(&'static str, &'static str) + Send + Sync>;

/// Asked right before every write is sent (after its quota token, so a long wait for a token
/// cannot outlive leadership) and before every SDK retry of a write: `false` means this replica
/// may no longer write (its leader-election lease was not renewed within the renew deadline).
pub type WriteFence = Arc<dyn Fn() -> bool + Send + Sync>;

/// Whether an AWS operation changes anything (and so must pass the [`WriteFence`]).
pub fn is_write(operation: &str) -> bool {
    ["Update", "Put", "Delete", "Create"]
        .iter()
        .any(|verb| operation.starts_with(verb))
}

/// How [`SdkAws`] talks to AWS. Unset options fall back to aws-config's chain.
#[derive(Clone)]
pub struct AwsSettings {
    /// The default Region; else aws-config's chain (AWS_REGION, profile).
    pub region: Option<String>,
    /// The API Gateway endpoint (used for API Gateway only, as the CLI's `--endpoint-url`);
    /// else aws-config's (AWS_ENDPOINT_URL_API_GATEWAY, AWS_ENDPOINT_URL, profile).
    pub endpoint_url: Option<String>,
    /// A PEM file of extra trusted CA certificates; else AWS_CA_BUNDLE.
    pub ca_bundle: Option<PathBuf>,
    /// Time to wait for an answer once connected (default 30 s).
    pub read_timeout: Option<Duration>,
    /// Time to wait for a connection (default 10 s).
    pub connect_timeout: Option<Duration>,
    /// The whole call, SDK retries included (default: enough for every attempt plus backoff).
    pub operation_timeout: Option<Duration>,
    /// SDK attempts per call, the first included (default 3; at least 1).
    pub max_attempts: u32,
    /// Token bucket refill rate per account and Region, requests per second (default 10).
    pub rps: f64,
    /// Token bucket size (default 40).
    pub burst: u32,
    /// Lower the rate on a 429 the bucket allowed (another tool draws on the account), and
    /// recover it on clean answers; see [`crate::quota`]. Default off.
    pub adaptive_rate: bool,
    /// Operators splitting the account (`rps` and `burst` are already this one's share); the
    /// GetResources and CreateDeployment sub-buckets are divided among them too (default 1).
    pub shards: u32,
    /// How long a name or path lookup is cached (default 5 min).
    pub lookup_ttl: Duration,
    /// CreateDeployment's own quota: one call per this interval per account and Region, on top
    /// of `rps` (AWS: 1 every 5 s). Zero: no limit of its own.
    pub deployment_interval: Duration,
    /// Called for every attempt of every AWS call; see [`CallObserver`].
    pub observer: Option<CallObserver>,
    /// Told how long every quota wait took; see [`crate::quota::WaitObserver`].
    pub quota_observer: Option<crate::quota::WaitObserver>,
    /// Writes are sent only while this says yes; see [`WriteFence`]. None: always.
    pub write_fence: Option<WriteFence>,
    /// Page size of GetRestApis and GetResources (default and maximum 500). For tests.
    #[doc(hidden)]
    pub page_size: i32,
}

impl Default for AwsSettings {
    fn default() -> Self {
        AwsSettings {
            region: None,
            endpoint_url: None,
            ca_bundle: None,
            read_timeout: None,
            connect_timeout: None,
            operation_timeout: None,
            max_attempts: 3,
            rps: 10.0,
            burst: 40,
            adaptive_rate: false,
            shards: 1,
            lookup_ttl: Duration::from_secs(300),
            deployment_interval: Duration::from_secs(5),
            observer: None,
            quota_observer: None,
            write_fence: None,
            page_size: 500,
        }
    }
}

impl fmt::Debug for AwsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsSettings")
            .field("region", &self.region)
            .field("endpoint_url", &self.endpoint_url)
            .field("ca_bundle", &self.ca_bundle)
            .field("read_timeout", &self.read_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("operation_timeout", &self.operation_timeout)
            .field("max_attempts", &self.max_attempts)
            .field("rps", &self.rps)
            .field("burst", &self.burst)
            .field("adaptive_rate", &self.adaptive_rate)
            .field("lookup_ttl", &self.lookup_ttl)
            .field("observer", &self.observer.as_ref().map(|_| "..."))
            .field("write_fence", &self.write_fence.as_ref().map(|_| "..."))
            .field("page_size", &self.page_size)
            .finish()
    }
}

/// Why [`SdkAws::from_config`] failed.
#[derive(Debug, thiserror::Error)]
pub enum AwsSetupError {
    #[error("no AWS Region: set --region or AWS_REGION, or a region in the AWS profile")]
    NoRegion,
    #[error("CA bundle {}: {message}", path.display())]
    CaBundle { path: PathBuf, message: String },
    #[error("TLS setup: {0}")]
    Tls(String),
}

/// Default time to wait for a TCP/TLS connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time to wait for an answer.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// A name or path missing from a cached listing younger than this is reported missing without
/// listing again.
const NEGATIVE_LOOKUP_TTL: Duration = Duration::from_secs(30);
/// A listing stops after this many pages (500 resources each), whatever AWS answers.
const MAX_PAGES: usize = 1000;

/// [`AwsApi`] over aws-sdk-apigateway. Cheap to clone (shared state).
#[derive(Clone)]
pub struct SdkAws {
    inner: Arc<Inner>,
}

struct Inner {
    sdk_config: SdkConfig,
    default_region: String,
    settings: AwsSettings,
    regions: Mutex<HashMap<String, Arc<Regional>>>,
    /// The account these credentials act in: from the role ARN, or (the operator's own
    /// identity) GetCallerIdentity once at start; until then, or if it failed, "operator".
    account: std::sync::OnceLock<String>,
    /// The access's quota for this account, over the settings'.
    quota: Option<(f64, u32)>,
    shared: Arc<Shared>,
}

/// What every identity shares: the quota buckets per account and Region, and the identities
/// handed out so far.
#[derive(Default)]
struct Shared {
    buckets: Mutex<HashMap<(String, String), AccountBuckets>>,
    identities: Mutex<HashMap<String, Arc<SdkAws>>>,
}

/// Everything per Region: the client, the quota, the lookup caches.
struct Regional {
    region: String,
    client: Client,
    /// The account's buckets in this Region; CreateDeployment's is taken by the stage layer
    /// (every stage waits in one FIFO queue, so none starves).
    buckets: AccountBuckets,
    /// Bumped by `invalidate_lookups`; listings fetched under an older epoch are stale.
    epoch: AtomicU64,
    /// Name → ids of every REST API of the Region (key "").
    rest_apis: LookupCache<HashMap<String, Vec<String>>>,
    /// Per REST API id: path → resource id.
    resources: LookupCache<HashMap<String, String>>,
}

impl fmt::Debug for SdkAws {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SdkAws")
            .field("default_region", &self.inner.default_region)
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

fn not_leader(operation: &str) -> AwsError {
    AwsError::retryable(
        RetryKind::NotLeader,
        format!("{operation} not sent: this replica could not renew its leader-election lease within the renew deadline"),
    )
}

/// Charges every SDK retry attempt (after the first, which the caller paid for) to the Region's
/// quota.
/// It also stops an SDK retry of a write once the [`WriteFence`] is closed, and reports every
/// attempt that reached AWS (or timed out, or failed to connect) to the observer and to the
/// buckets' adaptation: a 429 the SDK retried by itself is still a 429 AWS answered.
struct Attempts {
    buckets: AccountBuckets,
    fence: Option<WriteFence>,
    observer: Option<CallObserver>,
}

impl fmt::Debug for Attempts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Attempts").finish_non_exhaustive()
    }
}

/// What one attempt came to, by its HTTP status (AWS's error codes do not change the
/// category: a 409 is a conflict whatever its code); None when it never reached AWS (no
/// credentials, say), which the call reports itself.
fn attempt_outcome(context: &FinalizerInterceptorContextRef<'_>) -> Option<&'static str> {
    let failed = matches!(context.output_or_error(), Some(Err(_)));
    if let Some(response) = context.response() {
        let status = response.status().as_u16();
        return Some(match status {
            200..=299 if failed => "unreadable",
            200..=299 => "ok",
            429 => "throttled",
            404 => "not_found",
            409 => "conflict",
            401 | 403 => "unauthorized",
            400..=499 => "invalid",
            _ => "server",
        });
    }
    match context.output_or_error() {
        Some(Err(e)) if e.is_timeout_error() => Some("timeout"),
        Some(Err(e)) if e.is_connector_error() => {
            Some(if e.as_connector_error().is_some_and(|c| c.is_timeout()) {
                "timeout"
            } else {
                "connection"
            })
        }
        _ => None,
    }
}

/// The operations this crate calls, as static names for metrics labels.
const OPERATIONS: &[&str] = &[
    "GetIntegration",
    "UpdateIntegration",
    "PutIntegration",
    "DeleteIntegration",
    "PutIntegrationResponse",
    "UpdateIntegrationResponse",
    "DeleteIntegrationResponse",
    "GetRestApis",
    "GetResources",
    "GetStage",
    "CreateStage",
    "UpdateStage",
    "DeleteStage",
    "GetDeployment",
    "GetDeployments",
    "CreateDeployment",
    "DeleteDeployment",
];

fn static_operation(name: &str) -> &'static str {
    OPERATIONS
        .iter()
        .find(|op| **op == name)
        .copied()
        .unwrap_or("Other")
}

impl Intercept for Attempts {
    fn name(&self) -> &'static str {
        "Attempts"
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(outcome) = attempt_outcome(context) else {
            return Ok(());
        };
        let operation = cfg.load::<Metadata>().map(|m| m.name()).unwrap_or("");
        let buckets =
            std::iter::once(&self.buckets.account).chain(self.buckets.sub_bucket(operation));
        for bucket in buckets {
            if outcome == "throttled" {
                bucket.throttled();
            } else {
                bucket.answered();
            }
        }
        if let Some(observer) = &self.observer {
            observer(static_operation(operation), outcome);
        }
        Ok(())
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if cfg
            .load::<RequestAttempts>()
            .is_some_and(|a| a.attempts() > 1)
        {
            let write = cfg.load::<Metadata>().is_some_and(|m| is_write(m.name()));
            if write && self.fence.as_ref().is_some_and(|f| !f()) {
                return Err("write fenced: the leader-election lease was not renewed".into());
            }
            self.buckets.account.charge();
        }
        Ok(())
    }
}

impl SdkAws {
    /// Loads aws-config's default chain, then applies `settings` over it. Fails when no Region
    /// is known or the CA bundle cannot be used; credentials are resolved lazily, on the first
    /// call (a failure then is [`AwsError::Unauthorized`] with code `CredentialsError`).
    pub async fn from_config(settings: AwsSettings) -> Result<Self, AwsSetupError> {
        let max_attempts = settings.max_attempts.max(1);
        let connect = settings.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT);
        let read = settings.read_timeout.unwrap_or(DEFAULT_READ_TIMEOUT);
        let attempt = connect + read;
        // Every attempt, plus the SDK's backoff between them (at most 20 s each).
        let operation = settings
            .operation_timeout
            .unwrap_or(attempt * max_attempts + Duration::from_secs(20) * (max_attempts - 1));
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(RetryConfig::standard().with_max_attempts(max_attempts))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(connect)
                    .read_timeout(read)
                    .operation_attempt_timeout(attempt)
                    .operation_timeout(operation)
                    .build(),
            );
        if let Some(region) = &settings.region {
            loader = loader.region(Region::new(region.clone()));
        }
        let ca_bundle = settings.ca_bundle.clone().or_else(|| {
            std::env::var_os("AWS_CA_BUNDLE")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        });
        if let Some(path) = &ca_bundle {
            let certificates = tls::read_ca_bundle(path)?;
            debug!(path = %path.display(), certificates = certificates.len(), "extra CA certificates");
            loader = loader.http_client(tls::https_client_with_roots(certificates)?);
        }
        let sdk_config = loader.load().await;
        let default_region = sdk_config
            .region()
            .map(|r| r.to_string())
            .filter(|r| !r.is_empty())
            .ok_or(AwsSetupError::NoRegion)?;
        Ok(SdkAws {
            inner: Arc::new(Inner {
                sdk_config,
                default_region,
                settings,
                regions: Mutex::new(HashMap::new()),
                account: std::sync::OnceLock::new(),
                quota: None,
                shared: Arc::default(),
            }),
        })
    }

    /// The account the quota buckets of these credentials are keyed by.
    pub fn account(&self) -> &str {
        self.inner
            .account
            .get()
            .map(String::as_str)
            .unwrap_or("operator")
    }

    /// GetCallerIdentity with these credentials: (account id, ARN). For an assumed role this
    /// runs AssumeRole first, so it is how an access's identity is proven.
    pub async fn caller_identity(&self) -> Result<(String, String), AwsError> {
        let sts = aws_sdk_sts::Client::new(&self.inner.sdk_config);
        let answer = sts
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| error::classify(e).in_call("GetCallerIdentity"))?;
        let account = answer.account.unwrap_or_default();
        let arn = answer.arn.unwrap_or_default();
        if let Some(observer) = &self.inner.settings.observer {
            observer("GetCallerIdentity", "ok");
        }
        Ok((account, arn))
    }

    /// Learns the operator's own account (GetCallerIdentity), so that an access assuming a
    /// role in that same account shares its quota bucket. Call before the first AWS call;
    /// a failure leaves the key "operator" (a bucket of its own) and is returned.
    pub async fn learn_account(&self) -> Result<String, AwsError> {
        let (account, _) = self.caller_identity().await?;
        let _ = self.inner.account.set(account.clone());
        Ok(account)
    }

    /// A copy acting as the role of `identity` (credentials from AssumeRole, cached and
    /// refreshed by the SDK before they expire), sharing the quota buckets.
    async fn assume(&self, identity: &Identity, role: &str) -> SdkAws {
        let mut provider = aws_config::sts::AssumeRoleProvider::builder(role)
            .session_name(identity.session_name.clone())
            .configure(&self.inner.sdk_config);
        if let Some(external_id) = &identity.external_id {
            provider = provider.external_id(external_id.clone());
        }
        let provider = provider.build().await;
        let sdk_config = self
            .inner
            .sdk_config
            .to_builder()
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(provider),
            )
            .build();
        let account = std::sync::OnceLock::new();
        let _ = account.set(
            identity::account_of_role(role)
                .unwrap_or("unknown")
                .to_string(),
        );
        SdkAws {
            inner: Arc::new(Inner {
                sdk_config,
                default_region: self.inner.default_region.clone(),
                settings: self.inner.settings.clone(),
                regions: Mutex::new(HashMap::new()),
                account,
                quota: identity.quota,
                shared: self.inner.shared.clone(),
            }),
        }
    }

    /// The quota buckets of this identity's account in `region`, created on first use with
    /// the access's quota or the settings'.
    fn buckets(&self, region: &str) -> AccountBuckets {
        let key = (self.account().to_string(), region.to_string());
        let mut buckets = self.inner.shared.buckets.lock().unwrap();
        buckets
            .entry(key)
            .or_insert_with(|| {
                let settings = &self.inner.settings;
                let (rps, burst) = self.inner.quota.unwrap_or((settings.rps, settings.burst));
                AccountBuckets::new(
                    rps,
                    burst,
                    settings.adaptive_rate,
                    settings.shards,
                    settings.deployment_interval,
                    settings.quota_observer.clone(),
                )
            })
            .clone()
    }

    /// The Region used when a spec names none.
    pub fn default_region(&self) -> &str {
        &self.inner.default_region
    }

    /// The settings this was built with.
    pub fn settings(&self) -> &AwsSettings {
        &self.inner.settings
    }

    /// The account's quota bucket in a Region (for tests and metrics).
    pub fn quota(&self, region: &str) -> Arc<Quota> {
        self.regional(region).buckets.account.clone()
    }

    /// Every (account, Region) bucket set made so far, by every identity: what metrics show.
    pub fn buckets_in_use(&self) -> Vec<((String, String), AccountBuckets)> {
        let buckets = self.inner.shared.buckets.lock().unwrap();
        let mut all: Vec<_> = buckets
            .iter()
            .map(|(k, b)| (k.clone(), b.clone()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// An SDK client of a Region with the trait methods' configuration (credentials, endpoint,
    /// CA bundle, timeouts, the null-template fix), for set-up and tools: its calls take no
    /// quota token, pass no write fence and are not reported to the observer.
    pub fn client(&self, region: &str) -> Client {
        let region = if region.is_empty() {
            self.inner.default_region.as_str()
        } else {
            region
        };
        let mut config = aws_sdk_apigateway::config::Builder::from(&self.inner.sdk_config);
        if let Some(url) = &self.inner.settings.endpoint_url {
            config = config.endpoint_url(url);
        }
        Client::from_conf(
            config
                .region(Region::new(region.to_owned()))
                .interceptor(nulls::NullMapValues)
                .build(),
        )
    }

    fn regional(&self, region: &str) -> Arc<Regional> {
        let region = if region.is_empty() {
            self.inner.default_region.as_str()
        } else {
            region
        };
        let mut regions = self.inner.regions.lock().unwrap();
        if let Some(r) = regions.get(region) {
            return r.clone();
        }
        let settings = &self.inner.settings;
        let buckets = self.buckets(region);
        let mut config = aws_sdk_apigateway::config::Builder::from(&self.inner.sdk_config);
        // Like the CLI's --endpoint-url: API Gateway only, not STS or SSO (credentials).
        if let Some(url) = &settings.endpoint_url {
            config = config.endpoint_url(url);
        }
        let config = config
            .region(Region::new(region.to_owned()))
            .interceptor(nulls::NullMapValues)
            .interceptor(Attempts {
                buckets: buckets.clone(),
                fence: settings.write_fence.clone(),
                observer: settings.observer.clone(),
            })
            .build();
        let r = Arc::new(Regional {
            region: region.to_owned(),
            client: Client::from_conf(config),
            buckets,
            epoch: AtomicU64::new(0),
            rest_apis: LookupCache::default(),
            resources: LookupCache::default(),
        });
        regions.insert(region.to_owned(), r.clone());
        r
    }

    fn may_write(&self) -> bool {
        self.inner.settings.write_fence.as_ref().is_none_or(|f| f())
    }

    fn page_size(&self) -> i32 {
        self.inner.settings.page_size.clamp(1, 500)
    }

    /// One SDK call: a token first, then the call, its error classified and its outcome
    /// reported.
    async fn call<T, E, F, Fut>(
        &self,
        r: &Regional,
        operation: &'static str,
        priority: Priority,
        send: F,
    ) -> Result<T, AwsError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        // The operation's own sub-bucket first: waiting there holds no token of the account's.
        if let Some(sub) = r.buckets.sub_bucket(operation) {
            sub.acquire(priority).await;
        }
        r.buckets.account.acquire(priority).await;
        if is_write(operation) && !self.may_write() {
            return Err(not_leader(operation));
        }
        let started = Instant::now();
        let result = send().await.map_err(|e| {
            // A retry stopped by the fence surfaces as an SDK error of its own kind.
            if is_write(operation) && !self.may_write() {
                not_leader(operation)
            } else {
                error::classify(e).in_call(operation)
            }
        });
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => e.category(),
        };
        // Attempts that reached AWS were reported (and fed the adaptation) by `Attempts`.
        if let Err(e) = &result {
            if e.never_sent() {
                self.observe_unsent(operation, outcome);
            }
        }
        match &result {
            Ok(_) => {
                debug!(region = %r.region, operation, outcome, elapsed = ?started.elapsed(), "AWS call")
            }
            Err(e) => {
                debug!(region = %r.region, operation, outcome, elapsed = ?started.elapsed(), error = %e, "AWS call failed")
            }
        }
        result
    }

    /// Reports a call that never reached AWS for want of credentials.
    fn observe_unsent(&self, operation: &'static str, outcome: &'static str) {
        if let Some(observer) = &self.inner.settings.observer {
            observer(operation, outcome);
        }
    }

    /// Looks `find` up in a cached listing, fetching it (once for concurrent callers) when it
    /// is missing, stale, or does not have the answer and is older than the negative TTL.
    async fn lookup<V, T, Fetch, Fut>(
        &self,
        r: &Regional,
        cache: &LookupCache<V>,
        key: &str,
        find: impl Fn(&V) -> Option<T>,
        fetch: Fetch,
    ) -> Result<Option<T>, AwsError>
    where
        Fetch: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, AwsError>>,
    {
        let ttl = self.inner.settings.lookup_ttl;
        let negative_ttl = ttl.min(NEGATIVE_LOOKUP_TTL);
        let check = |epoch| {
            cache
                .get(key, epoch, ttl)
                .and_then(|(listing, age)| match find(&listing) {
                    Some(found) => Some(Some(found)),
                    None if age < negative_ttl => Some(None),
                    None => None,
                })
        };
        if let Some(answer) = check(r.epoch.load(Ordering::SeqCst)) {
            return Ok(answer);
        }
        let lock = cache.fetch_lock(key);
        let _fetching = lock.lock().await;
        // Someone else may have fetched it while this caller waited.
        let epoch = r.epoch.load(Ordering::SeqCst);
        if let Some(answer) = check(epoch) {
            return Ok(answer);
        }
        let listing = Arc::new(fetch().await?);
        if r.epoch.load(Ordering::SeqCst) == epoch {
            cache.put(key, listing.clone(), epoch);
        }
        Ok(find(&listing))
    }

    async fn list_rest_apis(&self, r: &Regional) -> Result<HashMap<String, Vec<String>>, AwsError> {
        let mut names: HashMap<String, Vec<String>> = HashMap::new();
        let mut position: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page = self
                .call(r, "GetRestApis", Priority::Change, || {
                    r.client
                        .get_rest_apis()
                        .limit(self.page_size())
                        .set_position(position.clone())
                        .send()
                })
                .await?;
            for api in page.items.unwrap_or_default() {
                if let (Some(name), Some(id)) = (api.name, api.id) {
                    names.entry(name).or_default().push(id);
                }
            }
            match page.position {
                Some(next) if !next.is_empty() && Some(&next) != position.as_ref() => {
                    position = Some(next)
                }
                _ => break,
            }
        }
        for ids in names.values_mut() {
            ids.sort();
        }
        Ok(names)
    }

    /// Every resource of a REST API (one GetResources call per page), with its methods when
    /// `embed_methods`.
    async fn list_resources(
        &self,
        r: &Regional,
        rest_api_id: &str,
        embed_methods: bool,
        priority: Priority,
    ) -> Result<Vec<aws_sdk_apigateway::types::Resource>, AwsError> {
        let mut resources = Vec::new();
        let mut position: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page = self
                .call(r, "GetResources", priority, || {
                    let mut request = r
                        .client
                        .get_resources()
                        .rest_api_id(rest_api_id)
                        .limit(self.page_size())
                        .set_position(position.clone());
                    if embed_methods {
                        request = request.embed("methods");
                    }
                    request.send()
                })
                .await?;
            resources.extend(page.items.unwrap_or_default());
            match page.position {
                Some(next) if !next.is_empty() && Some(&next) != position.as_ref() => {
                    position = Some(next)
                }
                _ => break,
            }
        }
        Ok(resources)
    }

    fn paths(resources: &[aws_sdk_apigateway::types::Resource]) -> HashMap<String, String> {
        resources
            .iter()
            .filter_map(|res| Some((res.path.clone()?, res.id.clone()?)))
            .collect()
    }
}

impl AwsApi for SdkAws {
    async fn get_integration(
        &self,
        key: &IntegrationKey,
        priority: Priority,
    ) -> Result<Integration, AwsError> {
        let r = self.regional(&key.region);
        let out = self
            .call(&r, "GetIntegration", priority, || {
                r.client
                    .get_integration()
                    .rest_api_id(&key.rest_api_id)
                    .resource_id(&key.resource_id)
                    .http_method(&key.http_method)
                    .send()
            })
            .await?;
        Ok(convert::integration_from_sdk!(out))
    }

    async fn update_integration(
        &self,
        key: &IntegrationKey,
        ops: &[PatchOperation],
    ) -> Result<Integration, AwsError> {
        let r = self.regional(&key.region);
        let patch: Vec<_> = ops.iter().map(convert::patch_to_sdk).collect();
        let out = self
            .call(&r, "UpdateIntegration", Priority::Change, || {
                r.client
                    .update_integration()
                    .rest_api_id(&key.rest_api_id)
                    .resource_id(&key.resource_id)
                    .http_method(&key.http_method)
                    .set_patch_operations(Some(patch))
                    .send()
            })
            .await?;
        Ok(convert::integration_from_sdk!(out))
    }

    async fn put_integration(
        &self,
        key: &IntegrationKey,
        spec: &ApiGatewayIntegrationSpec,
    ) -> Result<Integration, AwsError> {
        let Some(fields) = convert::put_fields(spec) else {
            return Err(AwsError::Invalid {
                code: "MissingType".into(),
                message: "spec.type is required to create an integration with PutIntegration"
                    .into(),
            });
        };
        let r = self.regional(&key.region);
        let out = self
            .call(&r, "PutIntegration", Priority::Change, || {
                r.client
                    .put_integration()
                    .rest_api_id(&key.rest_api_id)
                    .resource_id(&key.resource_id)
                    .http_method(&key.http_method)
                    .r#type(fields.integration_type)
                    .set_integration_http_method(fields.integration_http_method)
                    .set_uri(fields.uri)
                    .set_connection_type(fields.connection_type)
                    .set_connection_id(fields.connection_id)
                    .set_credentials(fields.credentials)
                    .set_request_parameters(fields.request_parameters)
                    .set_request_templates(fields.request_templates)
                    .set_passthrough_behavior(fields.passthrough_behavior)
                    .set_content_handling(fields.content_handling)
                    .set_timeout_in_millis(fields.timeout_in_millis)
                    .set_cache_namespace(fields.cache_namespace)
                    .set_cache_key_parameters(fields.cache_key_parameters)
                    .set_tls_config(fields.tls_config)
                    .send()
            })
            .await?;
        Ok(convert::integration_from_sdk!(out))
    }

    async fn integration_response_call(
        &self,
        key: &IntegrationKey,
        call: &ResponseCall,
    ) -> Result<Option<IntegrationResponse>, AwsError> {
        let r = self.regional(&key.region);
        let code = call.status_code.as_str();
        match call.call {
            ResponseCallKind::PutIntegrationResponse => {
                let response = call.response.clone().unwrap_or_default();
                let to_map = |m: Option<std::collections::BTreeMap<String, String>>| {
                    m.map(|m| m.into_iter().collect::<HashMap<_, _>>())
                };
                let out = self
                    .call(&r, "PutIntegrationResponse", Priority::Change, || {
                        r.client
                            .put_integration_response()
                            .rest_api_id(&key.rest_api_id)
                            .resource_id(&key.resource_id)
                            .http_method(&key.http_method)
                            .status_code(code)
                            .set_selection_pattern(response.selection_pattern.clone())
                            .set_response_parameters(to_map(response.response_parameters.clone()))
                            .set_response_templates(to_map(response.response_templates.clone()))
                            .set_content_handling(
                                response
                                    .content_handling
                                    .as_deref()
                                    .map(aws_sdk_apigateway::types::ContentHandlingStrategy::from),
                            )
                            .send()
                    })
                    .await?;
                Ok(Some(convert::response_from_output!(out)))
            }
            ResponseCallKind::UpdateIntegrationResponse => {
                let patch: Vec<_> = call
                    .patch_operations
                    .iter()
                    .flatten()
                    .map(convert::patch_to_sdk)
                    .collect();
                let out = self
                    .call(&r, "UpdateIntegrationResponse", Priority::Change, || {
                        r.client
                            .update_integration_response()
                            .rest_api_id(&key.rest_api_id)
                            .resource_id(&key.resource_id)
                            .http_method(&key.http_method)
                            .status_code(code)
                            .set_patch_operations(Some(patch.clone()))
                            .send()
                    })
                    .await?;
                Ok(Some(convert::response_from_output!(out)))
            }
            ResponseCallKind::DeleteIntegrationResponse => {
                self.call(&r, "DeleteIntegrationResponse", Priority::Change, || {
                    r.client
                        .delete_integration_response()
                        .rest_api_id(&key.rest_api_id)
                        .resource_id(&key.resource_id)
                        .http_method(&key.http_method)
                        .status_code(code)
                        .send()
                })
                .await?;
                Ok(None)
            }
        }
    }

    async fn delete_integration(&self, key: &IntegrationKey) -> Result<(), AwsError> {
        let r = self.regional(&key.region);
        self.call(&r, "DeleteIntegration", Priority::Change, || {
            r.client
                .delete_integration()
                .rest_api_id(&key.rest_api_id)
                .resource_id(&key.resource_id)
                .http_method(&key.http_method)
                .send()
        })
        .await?;
        Ok(())
    }

    async fn find_rest_api_id(&self, region: &str, name: &str) -> Result<String, AwsError> {
        let r = self.regional(region);
        let ids = self
            .lookup(
                &r,
                &r.rest_apis,
                "",
                |names| names.get(name).cloned(),
                || self.list_rest_apis(&r),
            )
            .await?;
        match ids.as_deref() {
            Some([id]) => Ok(id.clone()),
            Some(ids) if ids.len() > 1 => Err(AwsError::Ambiguous {
                message: format!(
                    "{} REST APIs are named {name:?} in {}: {}; use spec.restApiId",
                    ids.len(),
                    r.region,
                    ids.join(", ")
                ),
            }),
            _ => Err(AwsError::NotFound {
                message: format!("no REST API is named {name:?} in {}", r.region),
            }),
        }
    }

    async fn find_resource_id(
        &self,
        region: &str,
        rest_api_id: &str,
        path: &str,
    ) -> Result<String, AwsError> {
        let r = self.regional(region);
        let id = self
            .lookup(
                &r,
                &r.resources,
                rest_api_id,
                |paths| paths.get(path).cloned(),
                || async {
                    let resources = self
                        .list_resources(&r, rest_api_id, false, Priority::Change)
                        .await?;
                    Ok(Self::paths(&resources))
                },
            )
            .await?;
        id.ok_or_else(|| AwsError::NotFound {
            message: format!(
                "no resource has the path {path:?} in REST API {rest_api_id} ({})",
                r.region
            ),
        })
    }

    async fn list_method_integrations(
        &self,
        region: &str,
        rest_api_id: &str,
        priority: Priority,
    ) -> Result<Vec<MethodIntegration>, AwsError> {
        let r = self.regional(region);
        let epoch = r.epoch.load(Ordering::SeqCst);
        let resources = self.list_resources(&r, rest_api_id, true, priority).await?;
        // The listing has every path: refresh the path lookup for free.
        if r.epoch.load(Ordering::SeqCst) == epoch {
            r.resources
                .put(rest_api_id, Arc::new(Self::paths(&resources)), epoch);
        }
        let mut methods = Vec::new();
        for resource in resources {
            let (Some(resource_id), Some(resource_path)) = (resource.id, resource.path) else {
                continue;
            };
            for (verb, method) in resource.resource_methods.unwrap_or_default() {
                methods.push(MethodIntegration {
                    resource_id: resource_id.clone(),
                    resource_path: resource_path.clone(),
                    http_method: method.http_method.unwrap_or(verb),
                    integration: method.method_integration.map(convert::from_sdk_integration),
                });
            }
        }
        methods.sort_by(|a, b| {
            (&a.resource_path, &a.http_method).cmp(&(&b.resource_path, &b.http_method))
        });
        Ok(methods)
    }

    fn invalidate_lookups(&self, region: &str) {
        let regions = self.inner.regions.lock().unwrap();
        let region = if region.is_empty() {
            self.inner.default_region.as_str()
        } else {
            region
        };
        if let Some(r) = regions.get(region) {
            r.epoch.fetch_add(1, Ordering::SeqCst);
            r.rest_apis.clear();
            r.resources.clear();
        }
    }
}

impl Scoped for SdkAws {
    async fn scoped(self: &Arc<Self>, identity: &Identity) -> Arc<Self> {
        let (Some(key), Some(role)) = (identity.cache_key(), identity.role_arn.as_deref()) else {
            return self.clone();
        };
        if let Some(known) = self.inner.shared.identities.lock().unwrap().get(&key) {
            return known.clone();
        }
        let assumed = Arc::new(self.assume(identity, role).await);
        self.inner
            .shared
            .identities
            .lock()
            .unwrap()
            .entry(key)
            .or_insert(assumed)
            .clone()
    }

    fn forget(&self, identity: &Identity) {
        if let Some(key) = identity.cache_key() {
            self.inner.shared.identities.lock().unwrap().remove(&key);
        }
    }
}

/// Listings by key, with their age and the epoch they were fetched under, and one fetch lock
/// per key.
struct LookupCache<V> {
    entries: Mutex<HashMap<String, Cached<V>>>,
    fetch_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

struct Cached<V> {
    value: Arc<V>,
    at: Instant,
    epoch: u64,
}

impl<V> Default for LookupCache<V> {
    fn default() -> Self {
        LookupCache {
            entries: Mutex::new(HashMap::new()),
            fetch_locks: Mutex::new(HashMap::new()),
        }
    }
}

impl<V> LookupCache<V> {
    /// The listing and its age, when fetched under `epoch` less than `ttl` ago.
    fn get(&self, key: &str, epoch: u64, ttl: Duration) -> Option<(Arc<V>, Duration)> {
        let entries = self.entries.lock().unwrap();
        let cached = entries.get(key)?;
        let age = cached.at.elapsed();
        (cached.epoch == epoch && age < ttl).then(|| (cached.value.clone(), age))
    }

    fn put(&self, key: &str, value: Arc<V>, epoch: u64) {
        self.entries.lock().unwrap().insert(
            key.to_owned(),
            Cached {
                value,
                at: Instant::now(),
                epoch,
            },
        );
    }

    fn fetch_lock(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.fetch_locks
            .lock()
            .unwrap()
            .entry(key.to_owned())
            .or_default()
            .clone()
    }

    fn clear(&self) {
        self.entries.lock().unwrap().clear();
    }
}
