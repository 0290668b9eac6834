//! Prometheus metrics (prefix `apigw_`) and the HTTP endpoints `/metrics`, `/healthz`, `/readyz`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

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
    /// "ok", or the error category.
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AwsCallLabels {
    /// AWS's operation name, e.g. UpdateIntegration.
    pub operation: String,
    /// "ok", or the error category (throttled, not_found, invalid, ...).
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReadyLabels {
    /// "True", "False" or "Unknown".
    pub ready: String,
}

/// Every metric the operator exports.
pub struct Metrics {
    registry: Registry,
    pub reconciles: Family<ResultLabels, Counter>,
    pub reconcile_duration: Histogram,
    pub aws_calls: Family<AwsCallLabels, Counter>,
    pub aws_throttles: Counter,
    pub objects: Family<ReadyLabels, Gauge>,
    /// 1 while this replica runs the controller (leads, or runs without leader election).
    pub leader: Gauge,
    ready_by_object: Mutex<HashMap<String, &'static str>>,
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
        registry.register("reconciles", "Reconciles by result", reconciles.clone());
        let reconcile_duration = Histogram::new(exponential_buckets(0.005, 2.0, 14));
        registry.register(
            "reconcile_duration_seconds",
            "Duration of one reconcile",
            reconcile_duration.clone(),
        );
        let aws_calls = Family::<AwsCallLabels, Counter>::default();
        registry.register(
            "aws_calls",
            "AWS API calls by operation and outcome",
            aws_calls.clone(),
        );
        let aws_throttles = Counter::default();
        registry.register(
            "aws_throttles",
            "AWS answers of 429 (throttled)",
            aws_throttles.clone(),
        );
        let objects = Family::<ReadyLabels, Gauge>::default();
        registry.register(
            "objects",
            "ApiGatewayIntegration objects by Ready status",
            objects.clone(),
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
            aws_calls,
            aws_throttles,
            objects,
            ready_by_object: Mutex::new(HashMap::new()),
            ready: AtomicBool::new(false),
        }
    }

    /// Counts one AWS call; `outcome` is "ok" or the error category.
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

    pub fn reconciled(&self, result: &str, seconds: f64) {
        self.reconciles
            .get_or_create(&ResultLabels {
                result: result.to_string(),
            })
            .inc();
        self.reconcile_duration.observe(seconds);
    }

    /// Records an object's Ready status (None: the object is gone).
    pub fn set_ready(&self, object: &str, ready: Option<&'static str>) {
        let mut by_object = self.ready_by_object.lock().expect("metrics lock");
        let previous = match ready {
            Some(state) => by_object.insert(object.to_string(), state),
            None => by_object.remove(object),
        };
        if previous == ready {
            return;
        }
        if let Some(previous) = previous {
            self.objects
                .get_or_create(&ReadyLabels {
                    ready: previous.to_string(),
                })
                .dec();
        }
        if let Some(state) = ready {
            self.objects
                .get_or_create(&ReadyLabels {
                    ready: state.to_string(),
                })
                .inc();
        }
    }

    /// Every object whose Ready state is counted: each one the controller has finished a
    /// reconcile of and not forgotten since.
    pub fn tracked_objects(&self) -> Vec<String> {
        let by_object = self.ready_by_object.lock().expect("metrics lock");
        by_object.keys().cloned().collect()
    }

    pub fn set_ready_to_serve(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("metrics encode");
        out
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
mod tests {
    use super::*;

    #[test]
    fn renders_with_the_apigw_prefix_and_tracks_ready_objects() {
        let m = Metrics::new();
        m.aws_call("UpdateIntegration", "ok");
        m.aws_call("GetIntegration", "throttled");
        m.set_ready("ns/a", Some("True"));
        m.set_ready("ns/b", Some("False"));
        m.set_ready("ns/b", Some("True"));
        m.set_ready("ns/a", None);
        let text = m.render();
        assert!(
            text.contains(r#"apigw_aws_calls_total{operation="UpdateIntegration",outcome="ok"} 1"#),
            "{text}"
        );
        assert!(text.contains("apigw_aws_throttles_total 1"), "{text}");
        assert!(text.contains(r#"apigw_objects{ready="True"} 1"#), "{text}");
        assert!(text.contains(r#"apigw_objects{ready="False"} 0"#), "{text}");
        assert_eq!(m.tracked_objects(), vec!["ns/b".to_string()]);
    }
}
