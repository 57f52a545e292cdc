//! What `GET /metrics` exposes, in the OpenMetrics text format that Prometheus scrapes: requests
//! by route and status, request latency, the rows and requests per model batch, the queue depth,
//! open connections, reloads, and which model version is being served.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels = Vec<(String, String)>;

pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

pub struct Metrics {
    registry: Registry,
    requests: Family<Labels, Counter>,
    request_seconds: Family<Labels, Histogram>,
    batch_rows: Histogram,
    batch_requests: Histogram,
    model_seconds: Histogram,
    queue_depth: Gauge,
    open_connections: Gauge,
    reloads: Family<Labels, Counter>,
    model_info: Family<Labels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("seesaw");
        let requests = Family::<Labels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route and status",
            requests.clone(),
        );
        // 0.25 ms to about 4 s: a scoring request takes milliseconds; the tail shows saturation.
        let request_seconds = Family::<Labels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.00025, 2.0, 15))
        });
        registry.register(
            "http_request_duration_seconds",
            "Time from a request's arrival to its answer, by route",
            request_seconds.clone(),
        );
        let batch_rows = Histogram::new(exponential_buckets(1.0, 2.0, 14));
        registry.register("batch_rows", "Candidate rows scored per model call", batch_rows.clone());
        let batch_requests = Histogram::new(exponential_buckets(1.0, 2.0, 8));
        registry.register(
            "batch_requests",
            "Requests scored together per model call",
            batch_requests.clone(),
        );
        let model_seconds = Histogram::new(exponential_buckets(0.00025, 2.0, 15));
        registry.register(
            "model_call_duration_seconds",
            "Time of one model call (tensors in, forward, predictions out)",
            model_seconds.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register("queue_depth", "Requests waiting to be scored", queue_depth.clone());
        let open_connections = Gauge::default();
        registry.register(
            "open_connections",
            "Client connections open now (bounded by --max-connections)",
            open_connections.clone(),
        );
        let reloads = Family::<Labels, Counter>::default();
        registry.register("model_reloads", "Model reloads, by outcome", reloads.clone());
        let model_info = Family::<Labels, Gauge>::default();
        registry.register(
            "model_info",
            "The model being served (1 for the current version)",
            model_info.clone(),
        );
        Self {
            registry,
            requests,
            request_seconds,
            batch_rows,
            batch_requests,
            model_seconds,
            queue_depth,
            open_connections,
            reloads,
            model_info,
        }
    }

    pub fn observe_request(&self, route: &str, status: u16, seconds: f64) {
        let route = vec![("route".to_string(), route.to_string())];
        let mut labels = route.clone();
        labels.push(("status".into(), status.to_string()));
        self.requests.get_or_create(&labels).inc();
        self.request_seconds.get_or_create(&route).observe(seconds);
    }

    /// One model call: the rows and requests it scored, and how long it took.
    pub fn observe_model_call(&self, rows: usize, requests: usize, took: std::time::Duration) {
        self.batch_rows.observe(rows as f64);
        self.batch_requests.observe(requests as f64);
        self.model_seconds.observe(took.as_secs_f64());
    }

    pub fn queue_depth(&self) -> &Gauge {
        &self.queue_depth
    }

    pub fn open_connections(&self) -> &Gauge {
        &self.open_connections
    }

    pub fn observe_reload(&self, ok: bool) {
        let outcome = if ok { "ok" } else { "failed" };
        self.reloads.get_or_create(&vec![("outcome".to_string(), outcome.to_string())]).inc();
    }

    /// Marks `version` as the model being served (the previous one disappears from the family).
    pub fn set_model(&self, version: &str, architecture: &str, dir: &str) {
        self.model_info.clear();
        self.model_info
            .get_or_create(&vec![
                ("version".to_string(), version.to_string()),
                ("architecture".to_string(), architecture.to_string()),
                ("dir".to_string(), dir.to_string()),
            ])
            .set(1);
    }

    pub fn render(&self) -> String {
        let mut text = String::new();
        encode(&mut text, &self.registry).expect("writing to a String cannot fail");
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_what_was_observed() {
        let metrics = Metrics::new();
        metrics.observe_request("/v1/score", 200, 0.003);
        metrics.observe_request("/v1/score", 200, 0.004);
        metrics.observe_request("/v1/score", 503, 0.0001);
        metrics.observe_model_call(500, 1, std::time::Duration::from_millis(2));
        metrics.set_model("aaaa", "mmoe", "m1");
        metrics.set_model("bbbb", "mmoe", "m2");
        metrics.observe_reload(true);
        let text = metrics.render();
        assert!(
            text.contains(r#"seesaw_http_requests_total{route="/v1/score",status="200"} 2"#),
            "{text}"
        );
        assert!(text.contains(r#"seesaw_http_requests_total{route="/v1/score",status="503"} 1"#));
        assert!(
            text.contains(r#"seesaw_http_request_duration_seconds_count{route="/v1/score"} 3"#)
        );
        assert!(text.contains("seesaw_batch_rows_sum 500.0"), "{text}");
        assert!(text.contains(r#"version="bbbb""#) && !text.contains(r#"version="aaaa""#));
        assert!(text.contains(r#"seesaw_model_reloads_total{outcome="ok"} 1"#));
        assert!(text.trim_end().ends_with("# EOF"));
    }
}
