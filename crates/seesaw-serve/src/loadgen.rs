//! An open-loop load generator for the ranking service.
//!
//! Requests are sent at a fixed arrival rate: request `i` is scheduled at `start + i / rate`,
//! whether or not earlier requests have finished. Each request's latency is measured from its
//! *scheduled* start, not from when it was actually sent. A closed-loop generator (send, wait,
//! send again) or one that measures from the actual send time suffers from *coordinated
//! omission*: when the server stalls, the generator stops sending too, so the requests that
//! would have queued up behind the stall are never measured and the tail latencies look far
//! better than real users would see. Here, if the generator falls behind (server stalled, all
//! connections busy, runtime overloaded) the late requests go out immediately and the time
//! they spent waiting counts in their latency.
//!
//! One bias to keep in mind: tokio's timer has millisecond resolution, so a request usually
//! leaves about 1 ms after its scheduled time (measured on loopback: median ~1 ms), and that
//! lag is included in its latency. Latencies are therefore slight over-estimates; compare runs
//! with each other rather than reading sub-millisecond differences into them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Mutex, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::client::{ClientError, HttpClient, Response};

/// How long one request (including waiting for a connection) may take before it is abandoned
/// and counted as a transport error. Generous, so that only a hung server trips it.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What load to offer.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    /// Arrival rate; must be positive and finite.
    pub rate_per_second: f64,
    /// Requests are scheduled in `[0, duration)`, so `ceil(rate * duration)` of them.
    pub duration: Duration,
    /// Upper bound on open connections, i.e. on requests in flight; must be at least 1.
    pub max_connections: usize,
    /// Path every request is POSTed to.
    pub path: String,
}

/// Latency percentiles in milliseconds (nearest-rank). All NaN when nothing completed
/// (`serde_json` writes NaN as `null`).
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct LatencySummary {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

impl LatencySummary {
    fn from_sorted(sorted: &[f64]) -> Self {
        let mean = if sorted.is_empty() {
            f64::NAN
        } else {
            sorted.iter().sum::<f64>() / sorted.len() as f64
        };
        Self {
            p50: percentile(sorted, 0.50),
            p90: percentile(sorted, 0.90),
            p99: percentile(sorted, 0.99),
            max: percentile(sorted, 1.0),
            mean,
        }
    }
}

/// The outcome of [`run_load`].
#[derive(Debug, Clone, serde::Serialize)]
pub struct LoadReport {
    pub target_rps: f64,
    /// Requests scheduled; always `completed + transport_errors`.
    pub planned: usize,
    /// Requests that got a complete response, whatever its status.
    pub completed: usize,
    pub by_status: BTreeMap<u16, usize>,
    /// Connect, send or body-read failures and timeouts.
    pub transport_errors: usize,
    /// Wall time from the first scheduled request until the last one finished.
    pub elapsed_s: f64,
    /// Completed 2xx responses per second of `elapsed_s`.
    pub achieved_rps: f64,
    /// Over all completed responses, whatever their status.
    pub latency_ms: LatencySummary,
}

impl LoadReport {
    /// Number of 2xx responses.
    pub fn ok(&self) -> usize {
        self.count_statuses(|status| (200..300).contains(&status))
    }

    /// Non-2xx responses plus transport errors.
    pub fn errors(&self) -> usize {
        self.count_statuses(|status| !(200..300).contains(&status)) + self.transport_errors
    }

    fn count_statuses(&self, mut include: impl FnMut(u16) -> bool) -> usize {
        self.by_status.iter().filter(|&(&status, _)| include(status)).map(|(_, count)| count).sum()
    }
}

/// Nearest-rank percentile of ascending `sorted` for `q` in `[0, 1]`: the smallest value such
/// that at least a fraction `q` of the values are `<=` it, i.e. `sorted[ceil(q * n) - 1]`
/// (`q = 0` gives the minimum). NaN for an empty slice.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let n = sorted.len();
    // The epsilon keeps float noise from bumping an exact rank up by one: 0.07 * 100 is
    // 7.000000000000001 in f64, whose ceiling would be 8.
    let rank = (q * n as f64 - 1e-9).ceil();
    let rank = if rank.is_nan() { n } else { rank.clamp(1.0, n as f64) as usize };
    sorted[rank - 1]
}

/// Idle connections plus a bound on how many exist.
///
/// Every request holds one semaphore permit while it uses a connection, and a new connection
/// is opened only when no idle one is available, so open connections never exceed the permits.
struct Pool {
    addr: SocketAddr,
    idle: Mutex<Vec<HttpClient>>,
    permits: Semaphore,
}

impl Pool {
    async fn request(&self, path: &str, body: Bytes) -> Result<Response, ClientError> {
        // Waiting here when every connection is busy is queueing the caller would see, so it
        // is part of the measured latency. tokio's semaphore is FIFO, so queued requests go
        // out in schedule order.
        let _permit = self.permits.acquire().await.expect("semaphore never closed");
        let idle = self.idle.lock().await.pop();
        let mut client = match idle {
            Some(client) => client,
            None => HttpClient::connect(self.addr).await?,
        };
        // On error `client` is dropped here rather than returned: its connection is suspect.
        let response = client.post_json(path, body).await?;
        self.idle.lock().await.push(client);
        Ok(response)
    }
}

/// Offers `plan.rate_per_second` POST requests per second of `body(i)` (as JSON) to
/// `plan.path` on `addr` for `plan.duration`, then waits for every request to finish (or time
/// out after [`REQUEST_TIMEOUT`]) and reports.
///
/// # Panics
/// If `plan.rate_per_second` is not positive and finite or `plan.max_connections` is 0.
pub async fn run_load(
    addr: SocketAddr,
    plan: &LoadPlan,
    body: impl Fn(usize) -> Bytes + Send + Sync + 'static,
) -> LoadReport {
    let rate = plan.rate_per_second;
    assert!(
        rate.is_finite() && rate > 0.0,
        "rate_per_second must be positive and finite, got {rate}"
    );
    assert!(plan.max_connections > 0, "max_connections must be at least 1");

    // Request i is scheduled at i / rate for every i with i / rate < duration (the epsilon
    // keeps 200 rps * 1 s at exactly 200 despite float rounding).
    let planned = (rate * plan.duration.as_secs_f64() - 1e-9).ceil().max(0.0) as usize;

    let pool = Arc::new(Pool {
        addr,
        idle: Mutex::new(Vec::new()),
        permits: Semaphore::new(plan.max_connections),
    });
    let body = Arc::new(body);
    let path: Arc<str> = Arc::from(plan.path.as_str());

    let start = Instant::now();
    let mut tasks = JoinSet::new();
    for i in 0..planned {
        // Absolute deadlines, not accumulated sleeps: timer slop does not drift the rate, and
        // when the loop falls behind, `sleep_until` returns at once so no request is skipped.
        let scheduled = start + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(scheduled).await;
        let (pool, body, path) = (pool.clone(), body.clone(), path.clone());
        tasks.spawn(async move {
            let exchange = async { pool.request(&path, body(i)).await };
            match tokio::time::timeout(REQUEST_TIMEOUT, exchange).await {
                Ok(Ok(response)) => Some((response.status, scheduled.elapsed())),
                Ok(Err(_)) | Err(_) => None,
            }
        });
    }

    let mut by_status = BTreeMap::new();
    let mut latencies_ms = Vec::with_capacity(planned);
    let mut transport_errors = 0;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Some((status, latency))) => {
                *by_status.entry(status).or_insert(0) += 1;
                latencies_ms.push(latency.as_secs_f64() * 1e3);
            }
            // A panicked request task is as lost as a failed one.
            Ok(None) | Err(_) => transport_errors += 1,
        }
    }
    let elapsed_s = start.elapsed().as_secs_f64();
    latencies_ms.sort_by(f64::total_cmp);

    let mut report = LoadReport {
        target_rps: rate,
        planned,
        completed: latencies_ms.len(),
        by_status,
        transport_errors,
        elapsed_s,
        achieved_rps: 0.0,
        latency_ms: LatencySummary::from_sorted(&latencies_ms),
    };
    if elapsed_s > 0.0 {
        report.achieved_rps = report.ok() as f64 / elapsed_s;
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_nearest_rank_on_one_to_ten() {
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        // rank = ceil(q * 10)
        assert_eq!(percentile(&v, 0.0), 1.0); // rank 0 -> clamped to 1
        assert_eq!(percentile(&v, 0.05), 1.0); // ceil(0.5) = 1
        assert_eq!(percentile(&v, 0.10), 1.0); // ceil(1.0) = 1
        assert_eq!(percentile(&v, 0.11), 2.0); // ceil(1.1) = 2
        assert_eq!(percentile(&v, 0.50), 5.0); // ceil(5.0) = 5
        assert_eq!(percentile(&v, 0.90), 9.0); // ceil(9.0) = 9
        assert_eq!(percentile(&v, 0.99), 10.0); // ceil(9.9) = 10
        assert_eq!(percentile(&v, 1.0), 10.0);
    }

    #[test]
    fn percentile_nearest_rank_textbook_example() {
        // The usual worked example: 15, 20, 35, 40, 50.
        let v = [15.0, 20.0, 35.0, 40.0, 50.0];
        assert_eq!(percentile(&v, 0.05), 15.0); // ceil(0.25) = 1
        assert_eq!(percentile(&v, 0.30), 20.0); // ceil(1.5) = 2
        assert_eq!(percentile(&v, 0.40), 20.0); // ceil(2.0) = 2
        assert_eq!(percentile(&v, 0.50), 35.0); // ceil(2.5) = 3
        assert_eq!(percentile(&v, 1.00), 50.0); // ceil(5.0) = 5
    }

    #[test]
    fn percentile_exact_ranks_survive_float_noise() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        // 0.07 * 100 == 7.000000000000001 in f64; the rank is still exactly 7.
        assert_eq!(percentile(&v, 0.07), 7.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
    }

    #[test]
    fn percentile_edge_cases() {
        assert!(percentile(&[], 0.5).is_nan());
        assert_eq!(percentile(&[4.0], 0.0), 4.0);
        assert_eq!(percentile(&[4.0], 0.99), 4.0);
        // Out-of-range q is clamped to the ends.
        assert_eq!(percentile(&[1.0, 2.0], -1.0), 1.0);
        assert_eq!(percentile(&[1.0, 2.0], 2.0), 2.0);
    }

    #[test]
    fn summary_of_known_latencies() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        let s = LatencySummary::from_sorted(&v);
        assert_eq!((s.p50, s.p90, s.p99, s.max), (50.0, 90.0, 99.0, 100.0));
        assert_eq!(s.mean, 50.5);
        assert!(LatencySummary::from_sorted(&[]).mean.is_nan());
    }

    #[test]
    fn report_counts_ok_and_errors() {
        let report = LoadReport {
            target_rps: 10.0,
            planned: 10,
            completed: 8,
            by_status: BTreeMap::from([(200, 5), (204, 1), (404, 1), (503, 1)]),
            transport_errors: 2,
            elapsed_s: 1.0,
            achieved_rps: 6.0,
            latency_ms: LatencySummary::from_sorted(&[1.0]),
        };
        assert_eq!(report.ok(), 6);
        assert_eq!(report.errors(), 4);
    }
}
