//! Prometheus metrics (prefix `apigw_`) and the HTTP endpoints `/metrics`, `/healthz`, `/readyz`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::{extract::State, http::StatusCode, response::IntoResponse, routing::get, Router};
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// integration, stage or access.
    pub kind: String,
    /// "ok", or the error category.
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub kind: String,
    /// The error's category (AWS's: throttled, server, ...; or kube, finalizer, ...).
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AwsCallLabels {
    /// AWS's operation name, e.g. UpdateIntegration.
    pub operation: String,
    /// "ok", or the attempt's category (throttled, not_found, invalid, server, ...).
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ObjectLabels {
    pub kind: String,
    /// "True", "False" or "Unknown" (no status yet).
    pub ready: String,
    /// The Ready condition's reason ("Pending" before the first status).
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BucketLabels {
    /// account, get_resources or deployment.
    pub bucket: String,
    pub account: String,
    pub region: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WaitLabels {
    pub bucket: String,
    /// change or drift.
    pub priority: String,
}

/// One quota bucket as metrics show it (see [`Metrics::add_collector`]).
#[derive(Clone, Debug)]
pub struct BucketState {
    pub bucket: &'static str,
    pub account: String,
    pub region: String,
    pub tokens: f64,
    pub rate: f64,
    pub waiting_change: usize,
    pub waiting_drift: usize,
}

/// What a collector adds at each scrape.
#[derive(Default)]
pub struct Scrape {
    /// (kind, ready, reason) → objects.
    pub objects: HashMap<(&'static str, String, String), i64>,
    /// kind → age in seconds of the oldest successful observation among Ready objects.
    pub oldest_observation: HashMap<&'static str, f64>,
    pub buckets: Vec<BucketState>,
}

type Collector = Box<dyn Fn(&mut Scrape) + Send + Sync>;

/// Objects waiting for a reconcile to start (a watch event, a wake-up of every object), per
/// kind: what `apigw_workqueue_depth` and `apigw_workqueue_oldest_seconds` show. A requeue the
/// controller scheduled (a drift check, a backoff) is not counted until it runs.
#[derive(Default)]
pub struct WorkQueue {
    due: Mutex<HashMap<String, Instant>>,
}

impl WorkQueue {
    /// `object` needs a reconcile; an earlier mark stays (the oldest wait counts).
    pub fn triggered(&self, object: &str) {
        let mut due = self.due.lock().expect("queue lock");
        if !due.contains_key(object) {
            due.insert(object.to_string(), Instant::now());
        }
    }

    /// A reconcile of `object` started.
    pub fn started(&self, object: &str) {
        self.due.lock().expect("queue lock").remove(object);
    }

    /// Drops marks of objects for which `exists` is false (deleted before they ran).
    pub fn retain(&self, exists: impl Fn(&str) -> bool) {
        self.due
            .lock()
            .expect("queue lock")
            .retain(|k, _| exists(k));
    }

    /// (depth, age of the oldest in seconds).
    pub fn state(&self) -> (usize, f64) {
        let due = self.due.lock().expect("queue lock");
        let oldest = due
            .values()
            .map(|at| at.elapsed().as_secs_f64())
            .fold(0.0, f64::max);
        (due.len(), oldest)
    }
}

/// Every metric the operator exports.
pub struct Metrics {
    registry: Registry,
    pub reconciles: Family<ResultLabels, Counter>,
    pub reconcile_duration: Family<KindLabels, Histogram>,
    pub reconcile_errors: Family<ErrorLabels, Counter>,
    pub aws_calls: Family<AwsCallLabels, Counter>,
    pub aws_throttles: Counter,
    pub objects: Family<ObjectLabels, Gauge>,
    pub workqueue_depth: Family<KindLabels, Gauge>,
    pub workqueue_oldest: Family<KindLabels, Gauge<f64, AtomicU64>>,
    pub quota_tokens: Family<BucketLabels, Gauge<f64, AtomicU64>>,
    pub quota_rate: Family<BucketLabels, Gauge<f64, AtomicU64>>,
    pub quota_waiters: Family<WaitLabels, Gauge>,
    pub quota_wait: Family<WaitLabels, Histogram>,
    pub oldest_observation: Family<KindLabels, Gauge<f64, AtomicU64>>,
    /// 1 while this replica runs the controller (leads, or runs without leader election).
    pub leader: Gauge,
    queues: Mutex<HashMap<&'static str, Arc<WorkQueue>>>,
    collectors: Mutex<Vec<Collector>>,
    ready: AtomicBool,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("apigw");
        let reconciles = Family::<ResultLabels, Counter>::default();
        registry.register(
            "reconciles",
            "Reconciles by kind and result",
            reconciles.clone(),
        );
        let reconcile_duration = Family::<KindLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(exponential_buckets(0.005, 2.0, 14))) as fn() -> Histogram,
        );
        registry.register(
            "reconcile_duration_seconds",
            "Duration of one reconcile",
            reconcile_duration.clone(),
        );
        let reconcile_errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "reconcile_errors",
            "Reconciles that failed, by kind and reason (the error's category)",
            reconcile_errors.clone(),
        );
        let aws_calls = Family::<AwsCallLabels, Counter>::default();
        registry.register(
            "aws_calls",
            "AWS API attempts by operation and outcome (every HTTP attempt, SDK retries and 429s included)",
            aws_calls.clone(),
        );
        let aws_throttles = Counter::default();
        registry.register(
            "aws_throttles",
            "AWS answers of 429 (throttled), SDK retries included",
            aws_throttles.clone(),
        );
        let objects = Family::<ObjectLabels, Gauge>::default();
        registry.register(
            "objects",
            "Objects by kind and Ready status and reason, from the cache (so also right after a restart)",
            objects.clone(),
        );
        let workqueue_depth = Family::<KindLabels, Gauge>::default();
        registry.register(
            "workqueue_depth",
            "Objects waiting for a reconcile to start",
            workqueue_depth.clone(),
        );
        let workqueue_oldest = Family::<KindLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "workqueue_oldest_seconds",
            "How long the oldest object waiting for a reconcile has waited",
            workqueue_oldest.clone(),
        );
        let quota_tokens = Family::<BucketLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "quota_tokens",
            "Tokens in the operator's quota bucket (negative while SDK retries are paid back)",
            quota_tokens.clone(),
        );
        let quota_rate = Family::<BucketLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "quota_rate",
            "The bucket's refill rate now, requests per second (lowered after 429s the operator did not cause)",
            quota_rate.clone(),
        );
        let quota_waiters = Family::<WaitLabels, Gauge>::default();
        registry.register(
            "quota_waiters",
            "Callers waiting for a token, by bucket and priority",
            quota_waiters.clone(),
        );
        let quota_wait = Family::<WaitLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(exponential_buckets(0.001, 4.0, 10))) as fn() -> Histogram,
        );
        registry.register(
            "quota_wait_seconds",
            "How long a call waited for its token, by bucket and priority",
            quota_wait.clone(),
        );
        let oldest_observation = Family::<KindLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "drift_oldest_observation_seconds",
            "Age of the oldest successful observation of AWS among Ready objects (status.lastObservedTime): grows when drift checks are starved",
            oldest_observation.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this replica runs the controller",
            leader.clone(),
        );
        Metrics {
            registry,
            leader,
            reconciles,
            reconcile_duration,
            reconcile_errors,
            aws_calls,
            aws_throttles,
            objects,
            workqueue_depth,
            workqueue_oldest,
            quota_tokens,
            quota_rate,
            quota_waiters,
            quota_wait,
            oldest_observation,
            queues: Mutex::new(HashMap::new()),
            collectors: Mutex::new(Vec::new()),
            ready: AtomicBool::new(false),
        }
    }

    /// Counts one AWS attempt; `outcome` is "ok" or the attempt's category.
    pub fn aws_call(&self, operation: &str, outcome: &str) {
        self.aws_calls
            .get_or_create(&AwsCallLabels {
                operation: operation.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
        if outcome == "throttled" {
            self.aws_throttles.inc();
        }
    }

    /// Counts one finished reconcile of `kind`; `result` is "ok" or the error's category.
    pub fn reconciled(&self, kind: &str, result: &str, seconds: f64) {
        self.reconciles
            .get_or_create(&ResultLabels {
                kind: kind.to_string(),
                result: result.to_string(),
            })
            .inc();
        if result != "ok" {
            self.reconcile_errors
                .get_or_create(&ErrorLabels {
                    kind: kind.to_string(),
                    reason: result.to_string(),
                })
                .inc();
        }
        self.reconcile_duration
            .get_or_create(&KindLabels {
                kind: kind.to_string(),
            })
            .observe(seconds);
    }

    /// One quota wait (see [`crate::quota::WaitObserver`]).
    pub fn quota_waited(&self, bucket: &str, priority: crate::aws::Priority, waited: Duration) {
        self.quota_wait
            .get_or_create(&WaitLabels {
                bucket: bucket.to_string(),
                priority: priority_label(priority).to_string(),
            })
            .observe(waited.as_secs_f64());
    }

    /// The work queue of `kind`.
    pub fn queue(&self, kind: &'static str) -> Arc<WorkQueue> {
        self.queues
            .lock()
            .expect("metrics lock")
            .entry(kind)
            .or_default()
            .clone()
    }

    /// Adds something read at every scrape (objects from a cache, quota buckets).
    pub fn add_collector(&self, collector: impl Fn(&mut Scrape) + Send + Sync + 'static) {
        self.collectors
            .lock()
            .expect("metrics lock")
            .push(Box::new(collector));
    }

    pub fn set_ready_to_serve(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }

    /// Reads the collectors and the work queues into the gauges.
    fn collect(&self) {
        let mut scrape = Scrape::default();
        for collector in self.collectors.lock().expect("metrics lock").iter() {
            collector(&mut scrape);
        }
        self.objects.clear();
        for ((kind, ready, reason), n) in scrape.objects {
            self.objects
                .get_or_create(&ObjectLabels {
                    kind: kind.to_string(),
                    ready,
                    reason,
                })
                .set(n);
        }
        for (kind, age) in scrape.oldest_observation {
            self.oldest_observation
                .get_or_create(&KindLabels {
                    kind: kind.to_string(),
                })
                .set(age);
        }
        let mut waiters: HashMap<(&'static str, &'static str), i64> = HashMap::new();
        for b in &scrape.buckets {
            let labels = BucketLabels {
                bucket: b.bucket.to_string(),
                account: b.account.clone(),
                region: b.region.clone(),
            };
            self.quota_tokens.get_or_create(&labels).set(b.tokens);
            self.quota_rate.get_or_create(&labels).set(b.rate);
            *waiters.entry((b.bucket, "change")).or_default() += b.waiting_change as i64;
            *waiters.entry((b.bucket, "drift")).or_default() += b.waiting_drift as i64;
        }
        for ((bucket, priority), n) in waiters {
            self.quota_waiters
                .get_or_create(&WaitLabels {
                    bucket: bucket.to_string(),
                    priority: priority.to_string(),
                })
                .set(n);
        }
        for (kind, queue) in self.queues.lock().expect("metrics lock").iter() {
            let (depth, oldest) = queue.state();
            let labels = KindLabels {
                kind: kind.to_string(),
            };
            self.workqueue_depth
                .get_or_create(&labels)
                .set(depth as i64);
            self.workqueue_oldest.get_or_create(&labels).set(oldest);
        }
    }

    pub fn render(&self) -> String {
        self.collect();
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("metrics encode");
        out
    }
}

fn priority_label(priority: crate::aws::Priority) -> &'static str {
    match priority {
        crate::aws::Priority::Change => "change",
        crate::aws::Priority::Drift => "drift",
    }
}

async fn metrics(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    (
        [(
            "content-type",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics.render(),
    )
}

async fn readyz(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    if metrics.ready.load(Ordering::SeqCst) {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}

/// Serves /metrics, /healthz and /readyz until the process ends.
pub async fn serve(addr: SocketAddr, metrics: Arc<Metrics>) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(metrics);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "serving /metrics, /healthz, /readyz");
    axum::serve(listener, app).await
}

async fn metrics_handler(state: State<Arc<Metrics>>) -> impl IntoResponse {
    metrics(state).await
}

#[cfg(test)]
mod tests;
