//! The command line: `crd`, `plan`, `version` (and `run`, the controller).

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use kube::{CustomResourceExt, ResourceExt};

use crate::aws::AwsApi;

use crate::crd::ApiGatewayIntegration;
use crate::integration::Integration;
use crate::integration::IntegrationResponse;
use crate::plan::responses::{plan_responses, ResponseCall, ResponseCallKind};
use crate::plan::{plan, PatchOperation, Plan};

/// Manages AWS API Gateway (REST API) method integrations as Kubernetes objects.
#[derive(Debug, Parser)]
#[command(name = "apigw-operator", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the controller.
    Run(Box<RunArgs>),
    /// Print the CustomResourceDefinitions (ApiGatewayIntegration, ApiGatewayStage) as YAML,
    /// one document each.
    Crd {
        /// Write one file per CRD into this directory instead (what `make crds` does).
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
    },
    /// Print the patch operations a manifest needs against a live integration.
    Plan(PlanArgs),
    /// Print one ApiGatewayIntegration manifest per method integration of an existing REST
    /// API, with what AWS holds (it only reads): applying them changes nothing in AWS.
    Import(ImportArgs),
    /// Print the version.
    Version,
}

/// `apigw-operator run`. Every flag has an environment variable; the AWS ones mirror the AWS
/// CLI's global options and fall back to aws-config's default chain (AWS_REGION,
/// AWS_ENDPOINT_URL, AWS_CA_BUNDLE, profiles, IRSA, EKS Pod Identity).
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Default AWS Region for objects without spec.region (like the AWS CLI's --region).
    #[arg(long, env = "APIGW_REGION")]
    pub region: Option<String>,
    /// API Gateway endpoint URL (like the AWS CLI's --endpoint-url); else AWS_ENDPOINT_URL.
    #[arg(long, env = "APIGW_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,
    /// PEM bundle of CA certificates to trust for AWS (like --ca-bundle); else AWS_CA_BUNDLE.
    #[arg(long, env = "APIGW_CA_BUNDLE")]
    pub ca_bundle: Option<PathBuf>,
    /// Socket read timeout in seconds (like --cli-read-timeout).
    #[arg(long, env = "APIGW_READ_TIMEOUT", default_value_t = 60.0, value_parser = positive_seconds)]
    pub read_timeout: f64,
    /// Connect timeout in seconds (like --cli-connect-timeout).
    #[arg(long, env = "APIGW_CONNECT_TIMEOUT", default_value_t = 10.0, value_parser = positive_seconds)]
    pub connect_timeout: f64,
    /// Attempts the AWS SDK makes per call before the operator's own backoff takes over.
    #[arg(long, env = "APIGW_AWS_MAX_ATTEMPTS", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub aws_max_attempts: u32,
    /// Drift check period in seconds (jittered ±10%).
    #[arg(long, env = "APIGW_RESYNC_PERIOD", default_value_t = 600.0, value_parser = positive_seconds)]
    pub resync_period: f64,
    /// Objects reconciled at once.
    #[arg(long, env = "APIGW_CONCURRENCY", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,
    /// The operator's share of each account's API Gateway quota per Region, in management
    /// calls per second (0: no limit). AWS allows 10 for the whole account; the default takes
    /// half and leaves the rest to Terraform, CI and the console.
    #[arg(long, env = "APIGW_AWS_RPS", default_value_t = 5.0, value_parser = non_negative_rate)]
    pub aws_rps: f64,
    /// The operator's share of the account's burst (AWS: 40 for the whole account).
    #[arg(long, env = "APIGW_AWS_BURST", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub aws_burst: u32,
    /// Operators (shards, each with its own --selector) sharing --aws-rps and --aws-burst on
    /// the same accounts: each takes 1/N of them, so N shards together stay within the share.
    #[arg(long, env = "APIGW_AWS_SHARDS", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub aws_shards: u32,
    /// Lower the rate (halve it, at most once a second, down to a tenth) when AWS answers 429
    /// to a call the bucket allowed, as another tool on the account is drawing on its quota;
    /// recover it by 5 % of --aws-rps per second of clean answers. `--aws-adaptive-rate=false`
    /// switches it off.
    #[arg(long, env = "APIGW_AWS_ADAPTIVE_RATE", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub aws_adaptive_rate: bool,
    /// What happens to an object whose namespace no ApiGatewayAccess admits: `refuse`
    /// (Ready=False, Forbidden, no AWS call) or `operator-identity` (it acts as the operator,
    /// with no allow-list: single-team clusters and upgrades).
    #[arg(long, env = "APIGW_ACCESS_MODE", value_enum, default_value_t = crate::access::AccessMode::Refuse)]
    pub access_mode: crate::access::AccessMode,
    /// NAMESPACE/NAME of a ConfigMap the operator keeps listing the namespaces each access
    /// admits (the chart's ValidatingAdmissionPolicy reads it). Unset: not written.
    #[arg(long, env = "APIGW_ADMISSION_CONFIGMAP")]
    pub admission_configmap: Option<String>,
    /// CreateDeployment's own quota, seconds per call for each account and Region, shared fairly
    /// by every stage (AWS: one every 5 s, on top of the rate above). 0: no limit of its own.
    #[arg(long, env = "APIGW_DEPLOYMENT_INTERVAL", default_value_t = 5.0, value_parser = non_negative_seconds)]
    pub deployment_interval: f64,
    /// Retry backoff: first ceiling in seconds.
    #[arg(long, env = "APIGW_BACKOFF_BASE", default_value_t = 1.0, value_parser = positive_seconds)]
    pub backoff_base: f64,
    /// Retry backoff: largest ceiling in seconds.
    #[arg(long, env = "APIGW_BACKOFF_CAP", default_value_t = 300.0, value_parser = positive_seconds)]
    pub backoff_cap: f64,
    /// Retry backoff: growth factor per consecutive failure.
    #[arg(long, env = "APIGW_BACKOFF_FACTOR", default_value_t = 2.0, value_parser = factor_at_least_one)]
    pub backoff_factor: f64,
    /// Watch only this namespace (default: all).
    #[arg(long, env = "APIGW_NAMESPACE")]
    pub namespace: Option<String>,
    /// Watch only objects with these labels (a label selector), to shard across deployments.
    #[arg(long, env = "APIGW_SELECTOR")]
    pub selector: Option<String>,
    /// Run only while holding a Lease, so that one of several replicas writes.
    #[arg(long, env = "APIGW_LEADER_ELECT")]
    pub leader_elect: bool,
    /// Name of the leader-election Lease.
    #[arg(long, env = "APIGW_LEASE_NAME", default_value = "apigw-operator")]
    pub lease_name: String,
    /// Namespace of the Lease (default: POD_NAMESPACE, else default).
    #[arg(long, env = "APIGW_LEASE_NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// Seconds a leader's Lease stays valid without renewal: how long a standby waits before
    /// taking over from a leader that vanished without releasing it.
    #[arg(long, env = "APIGW_LEASE_DURATION", default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub lease_duration: u64,
    /// Seconds within which the leader must have renewed its Lease to send an AWS write; a
    /// leader that cannot renew for this long stops writing and exits. Shorter than
    /// --lease-duration, so it stops before a standby may take over (default: two thirds of
    /// it).
    #[arg(long, env = "APIGW_LEASE_RENEW_DEADLINE", value_parser = positive_seconds)]
    pub lease_renew_deadline: Option<f64>,
    /// Seconds between two attempts to acquire or renew the Lease (default: a quarter of the
    /// renew deadline).
    #[arg(long, env = "APIGW_LEASE_RETRY_PERIOD", value_parser = positive_seconds)]
    pub lease_retry_period: Option<f64>,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, env = "APIGW_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: std::net::SocketAddr,
    /// Log format.
    #[arg(long, env = "APIGW_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// The manifest: a YAML file with one or more ApiGatewayIntegration documents; - reads
    /// standard input.
    #[arg(short = 'f', long = "filename", value_name = "MANIFEST")]
    pub file: PathBuf,
    /// A file holding GetIntegration's JSON output (`aws apigateway get-integration ...`), the
    /// live state to plan against. Without it the live integration is empty.
    #[arg(long, value_name = "INTEGRATION.json", conflicts_with = "aws")]
    pub from: Option<PathBuf>,
    /// Read the live state from AWS with GetIntegration (names and paths are looked up), using
    /// the default credential chain like `run`.
    #[arg(long)]
    pub aws: bool,
    /// With --aws: the Region for documents without spec.region.
    #[arg(long, requires = "aws", env = "APIGW_REGION")]
    pub region: Option<String>,
    /// With --aws: the API Gateway endpoint URL (else AWS_ENDPOINT_URL).
    #[arg(long, requires = "aws", env = "APIGW_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,
    /// json: the calls as a JSON list, in order: {"call": "UpdateIntegration",
    /// "patchOperations": [...]} then one PutIntegrationResponse, UpdateIntegrationResponse or
    /// DeleteIntegrationResponse per integration response ([] means in sync). cli: the
    /// equivalent `aws apigateway` commands, quoted for a POSIX shell.
    #[arg(short, long, value_enum, default_value_t = Output::Json)]
    pub output: Output,
}

/// `apigw-operator import`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("api").required(true).args(["rest_api_id", "rest_api_name"])))]
pub struct ImportArgs {
    /// The REST API's id (the manifests name it by id).
    #[arg(long)]
    pub rest_api_id: Option<String>,
    /// The REST API's name, which must be unique in the account and Region (the manifests name
    /// it by name).
    #[arg(long)]
    pub rest_api_name: Option<String>,
    /// The Region (written to spec.region); else the default chain's.
    #[arg(long, env = "APIGW_REGION")]
    pub region: Option<String>,
    /// The API Gateway endpoint URL (else AWS_ENDPOINT_URL).
    #[arg(long, env = "APIGW_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,
    /// metadata.namespace of every manifest.
    #[arg(long)]
    pub namespace: Option<String>,
    /// Prepended to every name (names come from path and method: /pets/{petId} POST →
    /// PREFIX-pets-petid-post).
    #[arg(long, default_value = "")]
    pub name_prefix: String,
    /// Only resources whose path matches this pattern (`*` any run of characters, `?` one).
    #[arg(long, value_name = "GLOB")]
    pub only_path: Option<String>,
    /// spec.managementPolicy of every manifest.
    #[arg(long, value_parser = ["Update", "Observe"], default_value = "Update")]
    pub policy: String,
    /// all: every field AWS holds; minimal: only fields that differ from AWS's defaults.
    #[arg(long, value_enum, default_value_t = crate::import::Fields::All)]
    pub fields: crate::import::Fields,
    /// Name resources by id (spec.resourceId) instead of by path.
    #[arg(long)]
    pub by_resource_id: bool,
    /// Print static request-parameter values (in single quotes) as 'REDACTED' (applying such a
    /// manifest then changes them in AWS: fill them in first).
    #[arg(long)]
    pub redact: bool,
    /// yaml (one document per object) or json (a List).
    #[arg(short, long, value_parser = ["yaml", "json"], default_value = "yaml")]
    pub output: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Json,
    Cli,
}

/// Exit status of `plan` when the integration must be re-created (PutIntegration).
pub const EXIT_NEEDS_REPLACEMENT: i32 = 2;

/// The longest period any flag takes (a year): `Duration::from_secs_f64` panics on
/// overflow, and nothing here needs longer.
const MAX_SECONDS: f64 = 365.0 * 24.0 * 3600.0;

fn positive_seconds(value: &str) -> Result<f64, String> {
    let secs: f64 = value
        .parse()
        .map_err(|_| format!("{value:?} is not a number of seconds"))?;
    if !(secs.is_finite() && secs > 0.0 && secs <= MAX_SECONDS) {
        return Err(format!(
            "must be a number of seconds above 0 and at most {MAX_SECONDS}"
        ));
    }
    Ok(secs)
}

fn non_negative_seconds(value: &str) -> Result<f64, String> {
    let secs: f64 = value
        .parse()
        .map_err(|_| format!("{value:?} is not a number of seconds"))?;
    if !(secs.is_finite() && (0.0..=MAX_SECONDS).contains(&secs)) {
        return Err(format!(
            "must be a number of seconds from 0 to {MAX_SECONDS} (0: no limit)"
        ));
    }
    Ok(secs)
}

fn non_negative_rate(value: &str) -> Result<f64, String> {
    let rate: f64 = value
        .parse()
        .map_err(|_| format!("{value:?} is not a number"))?;
    if !(rate.is_finite() && rate >= 0.0) {
        return Err("must be a finite number, 0 or more (0: no limit)".into());
    }
    Ok(rate)
}

fn factor_at_least_one(value: &str) -> Result<f64, String> {
    let factor: f64 = value
        .parse()
        .map_err(|_| format!("{value:?} is not a number"))?;
    if !(factor.is_finite() && (1.0..=100.0).contains(&factor)) {
        return Err("must be at least 1 (and at most 100)".into());
    }
    Ok(factor)
}

impl RunArgs {
    /// Checks between flags that clap cannot express; the message names the flags.
    pub fn validate(&self) -> Result<(), String> {
        if self.backoff_base > self.backoff_cap {
            return Err(format!(
                "--backoff-base ({}) must not exceed --backoff-cap ({})",
                self.backoff_base, self.backoff_cap
            ));
        }
        if self.renew_deadline() >= self.lease_duration as f64 {
            return Err(format!(
                "--lease-renew-deadline ({}) must be shorter than --lease-duration ({}): a leader must stop writing before a standby may take over",
                self.renew_deadline(), self.lease_duration
            ));
        }
        if self.retry_period() >= self.renew_deadline() {
            return Err(format!(
                "--lease-retry-period ({}) must be shorter than --lease-renew-deadline ({})",
                self.retry_period(),
                self.renew_deadline()
            ));
        }
        Ok(())
    }

    /// --lease-renew-deadline, or two thirds of --lease-duration.
    pub fn renew_deadline(&self) -> f64 {
        self.lease_renew_deadline
            .unwrap_or(self.lease_duration as f64 * 2.0 / 3.0)
    }

    /// --lease-retry-period, or a quarter of the renew deadline.
    pub fn retry_period(&self) -> f64 {
        self.lease_retry_period
            .unwrap_or(self.renew_deadline() / 4.0)
    }
}

/// Every CRD, with the file name `crds/` holds it under, as YAML.
pub fn crd_files() -> Vec<(&'static str, String)> {
    let yaml = |crd| serde_yaml::to_string(&crd).expect("the CRD serializes to YAML");
    vec![
        (
            "apigatewayintegrations.apigw.dev.yaml",
            yaml(ApiGatewayIntegration::crd()),
        ),
        (
            "apigatewaystages.apigw.dev.yaml",
            yaml(crate::stage::ApiGatewayStage::crd()),
        ),
        (
            "apigatewayaccesses.apigw.dev.yaml",
            yaml(crate::access::ApiGatewayAccess::crd()),
        ),
    ]
}

/// What `crd` prints: every CRD, as a multi-document YAML stream.
pub fn crd_yaml() -> String {
    crd_files()
        .into_iter()
        .map(|(_, yaml)| yaml)
        .collect::<Vec<_>>()
        .join("---\n")
}

/// What `plan` prints, and its exit status.
pub struct PlanOutcome {
    pub stdout: String,
    pub stderr: String,
    pub exit_code: i32,
}

/// Runs `plan` without touching the process: reads the files, returns the text to print.
pub fn run_plan(args: &PlanArgs) -> Result<PlanOutcome, String> {
    let objects = crate::manifest::load(&args.file).map_err(|e| e.to_string())?;
    let live = match &args.from {
        None => Integration::default(),
        Some(path) => read_live(path)?,
    };
    let pairs: Vec<_> = objects.iter().map(|o| (o, live.clone())).collect();
    Ok(render_plans(&pairs, args.output))
}

/// `plan --aws`: the live state of each document's integration comes from AWS, through the same
/// AWS layer (credentials, Region, endpoint, quota) as the controller.
pub async fn run_plan_aws(args: &PlanArgs) -> Result<PlanOutcome, String> {
    let objects = crate::manifest::load(&args.file).map_err(|e| e.to_string())?;
    let settings = crate::aws::AwsSettings {
        region: args.region.clone(),
        endpoint_url: args.endpoint_url.clone(),
        ..crate::aws::AwsSettings::default()
    };
    let aws = crate::aws::SdkAws::from_config(settings)
        .await
        .map_err(|e| e.to_string())?;
    let mut pairs = Vec::new();
    for object in &objects {
        let name = object.name_any();
        let target = crate::controller::resolve_target(&aws, aws.default_region(), &object.spec)
            .await
            .map_err(|e| format!("{name}: cannot resolve the target in AWS: {e}"))?;
        let live = aws
            .get_integration(&target, crate::aws::Priority::Change)
            .await
            .map_err(|e| format!("{name}: GetIntegration {target}: {e}"))?;
        pairs.push((object, live));
    }
    Ok(render_plans(&pairs, args.output))
}

fn render_plans(pairs: &[(&ApiGatewayIntegration, Integration)], output: Output) -> PlanOutcome {
    let mut outcome = PlanOutcome {
        stdout: String::new(),
        stderr: String::new(),
        exit_code: 0,
    };
    for (object, live) in pairs {
        let name = object.metadata.name.as_deref().unwrap_or("<unnamed>");
        match plan(&object.spec, live) {
            Plan::Patch(ops) => {
                let responses = plan_responses(
                    object.spec.integration_responses.as_ref(),
                    live.integration_responses.as_ref(),
                );
                let text = match output {
                    Output::Json => calls_json(&ops, &responses),
                    Output::Cli => commands(object, &ops, &responses),
                };
                outcome.stdout.push_str(&text);
                outcome.stdout.push('\n');
            }
            Plan::Replace(reasons) => {
                for reason in reasons {
                    outcome.stderr.push_str(&format!(
                        "{name}: needs replacement (PutIntegration): {reason}\n"
                    ));
                }
                outcome.stderr.push_str(&format!(
                    "{name}: set spec.managementPolicy: CreateOrUpdate to let the operator re-create the integration (and put every integration response back)\n"
                ));
                outcome.exit_code = EXIT_NEEDS_REPLACEMENT;
            }
        }
    }
    outcome
}

/// One call of a plan as `plan -o json` prints it.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct PrintedCall<'a> {
    call: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    status_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch_operations: Option<&'a [PatchOperation]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response: Option<&'a IntegrationResponse>,
}

/// The calls of a plan, in order, as a JSON list: the UpdateIntegration (if any), then one
/// call per integration response. `[]` means in sync.
pub fn calls_json(ops: &[PatchOperation], responses: &[ResponseCall]) -> String {
    let mut calls = Vec::new();
    if !ops.is_empty() {
        calls.push(PrintedCall {
            call: "UpdateIntegration",
            status_code: None,
            patch_operations: Some(ops),
            response: None,
        });
    }
    for call in responses {
        calls.push(PrintedCall {
            call: match call.call {
                ResponseCallKind::PutIntegrationResponse => "PutIntegrationResponse",
                ResponseCallKind::UpdateIntegrationResponse => "UpdateIntegrationResponse",
                ResponseCallKind::DeleteIntegrationResponse => "DeleteIntegrationResponse",
            },
            status_code: Some(&call.status_code),
            patch_operations: call.patch_operations.as_deref(),
            response: call.response.as_ref(),
        });
    }
    serde_json::to_string_pretty(&calls).expect("calls serialize")
}

fn read_live(path: &std::path::Path) -> Result<Integration, String> {
    let file = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{file}: cannot read: {e}"))?;
    let mut deserializer = serde_json::Deserializer::from_str(&text);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        format!(
            "{file}: not GetIntegration's JSON output: {}: {}",
            e.path(),
            e.inner()
        )
    })
}

/// Quotes a word for a POSIX shell.
pub fn shell_quote(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+%".contains(c))
    {
        return word.to_string();
    }
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// How the AWS CLI commands of one document name the method: lookups of names and paths
/// with the AWS CLI's own queries, then the arguments every command shares.
struct CliTarget {
    lookups: Vec<String>,
    region: String,
    rest_api: String,
    resource: String,
    http_method: String,
}

impl CliTarget {
    fn of(object: &ApiGatewayIntegration) -> Self {
        let spec = &object.spec;
        let mut lookups = Vec::new();
        let region = spec
            .region
            .as_ref()
            .map(|r| format!(" --region {}", shell_quote(r)))
            .unwrap_or_default();
        let rest_api = match (&spec.rest_api_id, &spec.rest_api_name) {
            (Some(id), _) => shell_quote(id),
            (None, Some(name)) => {
                let query = format!("items[?name=='{}'].id", name.replace('\'', "\\'"));
                lookups.push(format!(
                    "REST_API_ID=$(aws apigateway get-rest-apis{region} --query {} --output text)",
                    shell_quote(&query)
                ));
                "\"$REST_API_ID\"".to_string()
            }
            (None, None) => "\"$REST_API_ID\"".to_string(),
        };
        let resource = match (&spec.resource_id, &spec.resource_path) {
            (Some(id), _) => shell_quote(id),
            (None, Some(path)) => {
                let query = format!("items[?path=='{}'].id", path.replace('\'', "\\'"));
                lookups.push(format!(
                    "RESOURCE_ID=$(aws apigateway get-resources{region} --rest-api-id {rest_api} --query {} --output text)",
                    shell_quote(&query)
                ));
                "\"$RESOURCE_ID\"".to_string()
            }
            (None, None) => "\"$RESOURCE_ID\"".to_string(),
        };
        CliTarget {
            lookups,
            region,
            rest_api,
            resource,
            http_method: spec.http_method.to_string(),
        }
    }

    /// `aws apigateway {command}` on this method, then `args` (already quoted), one per line.
    fn command(&self, command: &str, args: &[String]) -> String {
        let mut line = format!(
            "aws apigateway {command}{} \\\n  --rest-api-id {} \\\n  --resource-id {} \\\n  --http-method {}",
            self.region, self.rest_api, self.resource, self.http_method
        );
        for arg in args {
            line.push_str(" \\\n  ");
            line.push_str(arg);
        }
        line
    }
}

/// The `aws apigateway update-integration` command that sends `ops`. A target given by name or
/// path is looked up first with the AWS CLI's own queries.
pub fn update_integration_command(
    object: &ApiGatewayIntegration,
    ops: &[PatchOperation],
) -> String {
    commands(object, ops, &[])
}

/// Every AWS CLI command of a plan, in order: the lookups, `update-integration` (if any
/// operation), then one `put-integration-response`, `update-integration-response` or
/// `delete-integration-response` per response call. Quoted for a POSIX shell.
pub fn commands(
    object: &ApiGatewayIntegration,
    ops: &[PatchOperation],
    responses: &[ResponseCall],
) -> String {
    let target = CliTarget::of(object);
    let mut lines = target.lookups.clone();
    if !ops.is_empty() || responses.is_empty() {
        let compact = serde_json::to_string(ops).expect("operations serialize");
        lines.push(target.command(
            "update-integration",
            &[format!("--patch-operations {}", shell_quote(&compact))],
        ));
    }
    for call in responses {
        let mut args = vec![format!("--status-code {}", shell_quote(&call.status_code))];
        if let Some(ops) = &call.patch_operations {
            let compact = serde_json::to_string(ops).expect("operations serialize");
            args.push(format!("--patch-operations {}", shell_quote(&compact)));
        }
        if let Some(response) = &call.response {
            args.extend(put_response_args(response));
        }
        lines.push(target.command(call.call.cli_command(), &args));
    }
    lines.join("\n")
}

fn put_response_args(response: &IntegrationResponse) -> Vec<String> {
    let mut args = Vec::new();
    if let Some(pattern) = &response.selection_pattern {
        args.push(format!("--selection-pattern {}", shell_quote(pattern)));
    }
    let json_map = |m: &std::collections::BTreeMap<String, String>| {
        shell_quote(&serde_json::to_string(m).expect("a map serializes"))
    };
    if let Some(parameters) = &response.response_parameters {
        args.push(format!("--response-parameters {}", json_map(parameters)));
    }
    if let Some(templates) = &response.response_templates {
        args.push(format!("--response-templates {}", json_map(templates)));
    }
    if let Some(handling) = &response.content_handling {
        args.push(format!("--content-handling {}", shell_quote(handling)));
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quoting_survives_single_quotes() {
        assert_eq!(shell_quote("a1b2c3"), "a1b2c3");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(r#"[{"op":"add"}]"#), r#"'[{"op":"add"}]'"#);
    }
}
