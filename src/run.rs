//! `apigw-operator run`: wires configuration, telemetry, the AWS layer, metrics, leader
//! election and the controller together.

use std::sync::Arc;
use std::time::Duration;

use kube::api::Api;
use kube::Client;
use tracing::{error, info, warn};

use crate::access;
use crate::aws::{AwsSettings, SdkAws};
use crate::cli::{LogFormat, RunArgs};
use crate::controller::{self, BackoffConfig, Context, Scope, Settings};
use crate::crd::ApiGatewayIntegration;
use crate::leader;
use crate::metrics::{self, Metrics};
use crate::stage;

/// Logs go to stderr, as text or JSON; RUST_LOG filters (default info).
pub fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

/// Runs until SIGTERM/SIGINT; returns the process exit status.
pub async fn run(args: RunArgs) -> i32 {
    init_tracing(args.log_format);
    // First: a SIGTERM from here on stops the operator gracefully (src/shutdown.rs).
    if let Err(e) = crate::shutdown::install() {
        eprintln!("error: cannot catch SIGTERM: {e}");
        return 1;
    }
    match run_inner(args).await {
        Ok(()) => 0,
        Err(message) => {
            error!("{message}");
            eprintln!("error: {message}");
            1
        }
    }
}

async fn run_inner(args: RunArgs) -> Result<(), String> {
    let client = Client::try_default()
        .await
        .map_err(|e| format!("cannot reach Kubernetes (KUBECONFIG or in-cluster config): {e}"))?;
    check_crd_installed(&client, args.namespace.as_deref()).await?;

    let metrics = Arc::new(Metrics::new());
    // Served from here on, before the waits of the start (the access gate's caches wait up to
    // 30 s when namespaces cannot be listed): /healthz answers at once, so the liveness probe
    // does not kill a slow start; /readyz says 503 until the controllers run.
    let server = tokio::spawn(metrics::serve(args.metrics_addr, metrics.clone()));
    // With leader election every AWS write passes the fence: the lease renewed within the
    // renew deadline.
    let fence = args.leader_elect.then(|| {
        Arc::new(leader::Fence::new(Duration::from_secs_f64(
            args.renew_deadline(),
        )))
    });
    let elector = fence.as_ref().map(|fence| {
        let namespace = args
            .lease_namespace
            .clone()
            .or_else(|| std::env::var("POD_NAMESPACE").ok())
            .unwrap_or_else(|| "default".into());
        leader::Elector::new(
            client.clone(),
            &namespace,
            leader::LeaderSettings {
                lease_name: args.lease_name.clone(),
                identity: hostname(),
                lease_duration: Duration::from_secs(args.lease_duration),
                renew_deadline: Duration::from_secs_f64(args.renew_deadline()),
                retry_period: Duration::from_secs_f64(args.retry_period()),
            },
            fence.clone(),
        )
    });
    let observer_metrics = metrics.clone();
    let wait_metrics = metrics.clone();
    let aws_settings = AwsSettings {
        region: args.region.clone(),
        endpoint_url: args.endpoint_url.clone(),
        ca_bundle: args.ca_bundle.clone(),
        read_timeout: Some(Duration::from_secs_f64(args.read_timeout)),
        connect_timeout: Some(Duration::from_secs_f64(args.connect_timeout)),
        max_attempts: args.aws_max_attempts,
        rps: args.aws_rps / f64::from(args.aws_shards),
        burst: (args.aws_burst / args.aws_shards).max(1),
        adaptive_rate: args.aws_adaptive_rate,
        shards: args.aws_shards,
        lookup_ttl: Duration::from_secs(300),
        deployment_interval: Duration::from_secs_f64(args.deployment_interval),
        observer: Some(Arc::new(
            move |operation: &'static str, outcome: &'static str| {
                observer_metrics.aws_call(operation, outcome)
            },
        )),
        quota_observer: Some(Arc::new(move |bucket, priority, waited| {
            wait_metrics.quota_waited(bucket, priority, waited)
        })),
        write_fence: fence
            .clone()
            .map(|fence| Arc::new(move || fence.may_write()) as crate::aws::WriteFence),
        ..AwsSettings::default()
    };
    let aws = Arc::new(
        SdkAws::from_config(aws_settings)
            .await
            .map_err(|e| e.to_string())?,
    );
    // Before any AWS call: the operator's own account keys its quota bucket, so an access
    // assuming a role in that same account shares it.
    // Bounded: an unreachable STS must not hold the start (the bucket is then keyed apart).
    match tokio::time::timeout(LEARN_ACCOUNT_TIMEOUT, aws.learn_account()).await {
        Ok(Ok(account)) => info!(account = %account, "the operator's own identity"),
        Ok(Err(e)) => {
            warn!(error = %e, "GetCallerIdentity failed: the operator's own identity gets a quota bucket of its own")
        }
        Err(_) => {
            warn!(timeout = ?LEARN_ACCOUNT_TIMEOUT, "GetCallerIdentity did not answer: the operator's own identity gets a quota bucket of its own")
        }
    }
    collect_buckets(&metrics, aws.clone());
    let (gate, access_changed) = access::reconcile::start_gate(&client, args.access_mode).await;
    let settings = Settings {
        gate: gate.clone(),
        default_region: aws.default_region().to_string(),
        resync_period: Duration::from_secs_f64(args.resync_period),
        backoff: BackoffConfig {
            base: Duration::from_secs_f64(args.backoff_base),
            cap: Duration::from_secs_f64(args.backoff_cap),
            factor: args.backoff_factor,
        },
        reporter: hostname(),
    };
    info!(region = %settings.default_region, concurrency = args.concurrency, "starting");

    // Ready once started, leader or standby (as controller-runtime does): a standby that
    // answered 503 would keep a Deployment of several replicas from ever being ready and stall
    // rolling updates. `apigw_leader` says which replica leads.
    metrics.set_ready_to_serve(true);
    let access_ctx = Arc::new(access::reconcile::AccessContext::new(
        crate::kit::Kit::new("access", client.clone(), settings.clone(), metrics.clone()),
        aws.clone(),
    ));
    // The access controller writes status and the admission ConfigMap: the leader's work.
    let access_changed_for_tasks = access_changed.clone();
    let start_access_tasks =
        || spawn_access_tasks(&client, &args, gate, access_ctx, &access_changed_for_tasks);
    let aws_for_stages = aws.clone();
    let settings_for_stages = settings.clone();
    let ctx = Arc::new(Context::new(client.clone(), aws, settings, metrics.clone()));
    let scope = Scope {
        namespace: args.namespace.clone(),
        selector: args.selector.clone(),
    };

    let stages = stage_controller(
        &client,
        &aws_for_stages,
        &settings_for_stages,
        &metrics,
        &scope,
    )
    .await;
    let controllers = run_controllers(ctx, scope, args.concurrency, stages, access_changed);

    if let Some(elector) = &elector {
        info!(lease = %args.lease_name, "waiting to become the leader");
        tokio::select! {
            acquired = elector.acquire() => acquired?,
            _ = shutdown_signal() => return Ok(()),
        }
        info!("leading");
        metrics.leader.set(1);
        let access_tasks = start_access_tasks();
        // Losing the lease (or not renewing it within the renew deadline) ends the process: a
        // replica that may no longer write must not. The fence has already stopped its writes.
        tokio::select! {
            _ = controllers => {
                elector.release().await;
            }
            reason = elector.keep() => {
                metrics.leader.set(0);
                return Err(format!("{reason}; exiting so that only the leader writes"));
            }
        }
        stop(access_tasks);
    } else {
        metrics.leader.set(1);
        let access_tasks = start_access_tasks();
        controllers.await;
        stop(access_tasks);
    }
    server.abort();
    info!("stopped");
    Ok(())
}

/// The stage controller's context, when the ApiGatewayStage CRD is installed. Without it the
/// operator manages integrations only (an upgrade that has not applied the new CRD yet).
async fn stage_controller(
    client: &Client,
    aws: &Arc<SdkAws>,
    settings: &Settings,
    metrics: &Arc<metrics::Metrics>,
    scope: &Scope,
) -> Option<Arc<stage::reconcile::Context<SdkAws>>> {
    let api: Api<stage::ApiGatewayStage> = match &scope.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    match api.list(&kube::api::ListParams::default().limit(1)).await {
        Ok(_) => Some(Arc::new(stage::reconcile::Context::new(
            client.clone(),
            aws.clone(),
            settings.clone(),
            metrics.clone(),
        ))),
        Err(e) => {
            warn!(error = %e, "cannot list ApiGatewayStages (is the CRD installed? kubectl apply --server-side -f crds/); stages are not managed");
            None
        }
    }
}

fn stop(tasks: Vec<tokio::task::JoinHandle<()>>) {
    for task in tasks {
        task.abort();
    }
}

/// The access controller (when the CRD is installed) and the admission ConfigMap writer.
fn spawn_access_tasks(
    client: &Client,
    args: &RunArgs,
    gate: access::gate::Gate,
    ctx: Arc<access::reconcile::AccessContext>,
    changed: &tokio::sync::broadcast::Sender<()>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = vec![];
    if let Some(target) = args.admission_configmap.clone() {
        let writer = access::reconcile::run_admission_configmap(
            client.clone(),
            gate.clone(),
            target,
            changed.clone(),
        );
        tasks.push(tokio::spawn(writer));
    }
    if !gate.accesses().is_empty() || gate.has_access_crd() {
        tasks.push(tokio::spawn(access::reconcile::run(ctx, changed.clone())));
    }
    tasks
}

/// Both controllers, until SIGTERM/SIGINT. An access or namespace change wakes every object of
/// both (the access check may now decide otherwise).
async fn run_controllers(
    ctx: Arc<Context<SdkAws>>,
    scope: Scope,
    concurrency: u16,
    stages: Option<Arc<stage::reconcile::Context<SdkAws>>>,
    access_changed: tokio::sync::broadcast::Sender<()>,
) {
    let wake_integrations = access::reconcile::changes(&access_changed);
    let both = async move {
        let Some(stages) = stages else {
            controller::run(ctx, scope, concurrency, None, wake_integrations).await;
            return;
        };
        let wake_stages = access::reconcile::changes(&access_changed);
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let lister = ctx.clone();
        let integrations: stage::reconcile::Integrations = Box::new(move || lister.peers());
        let changed = tokio_stream_from(rx);
        tokio::join!(
            controller::run(ctx, scope.clone(), concurrency, Some(tx), wake_integrations),
            stage::reconcile::run(
                stages,
                scope,
                integrations,
                changed,
                wake_stages,
                concurrency
            ),
        );
    };
    // Each controller stops gracefully on SIGTERM (running reconciles finish). The wait is
    // bounded: kube-runtime holds a controller's runner until its store is ready, and its
    // graceful shutdown stops the watch without dropping the store's writer, so a SIGTERM that
    // arrives during the initial list (one start in three in a loop of `run` + SIGTERM after
    // 150 ms, with two controllers listing) never finishes by itself. No reconcile can be
    // running then; later, a reconcile that outlives the grace (a stage waiting its turn in the
    // deployment quota) has sent nothing yet.
    tokio::select! {
        _ = both => {}
        _ = async {
            shutdown_signal().await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => {
            warn!(grace = ?SHUTDOWN_GRACE, "the controllers did not stop within the grace period after the shutdown signal; exiting");
        }
    }
}

/// How long the start waits for GetCallerIdentity.
const LEARN_ACCOUNT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long running reconciles may take to finish after SIGTERM.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The receiver as a stream.
fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<String>,
) -> impl futures::Stream<Item = String> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

async fn check_crd_installed(client: &Client, namespace: Option<&str>) -> Result<(), String> {
    let api: Api<ApiGatewayIntegration> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    match api.list(&kube::api::ListParams::default().limit(1)).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Err(
            "the ApiGatewayIntegration CRD is not installed: kubectl apply --server-side -f crds/ (or `apigw-operator crd | kubectl apply --server-side -f -`)".into(),
        ),
        Err(e) => Err(format!("cannot list ApiGatewayIntegrations: {e}")),
    }
}

/// SIGTERM (what Kubernetes sends) or SIGINT.
async fn shutdown_signal() {
    crate::shutdown::requested().await
}

fn hostname() -> String {
    std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| format!("apigw-operator-{}", std::process::id()))
}

/// Every quota bucket in use (per account, Region and operation) at each scrape.
fn collect_buckets(metrics: &Metrics, aws: Arc<SdkAws>) {
    use crate::aws::Priority;
    metrics.add_collector(move |scrape| {
        for ((account, region), buckets) in aws.buckets_in_use() {
            for quota in buckets.all() {
                scrape.buckets.push(metrics::BucketState {
                    bucket: quota.name(),
                    account: account.clone(),
                    region: region.clone(),
                    tokens: quota.available(),
                    rate: quota.current_rps(),
                    waiting_change: quota.waiting(Priority::Change),
                    waiting_drift: quota.waiting(Priority::Drift),
                });
            }
        }
    });
}
