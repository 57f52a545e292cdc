//! Loopback tests for the HTTP client and the open-loop load generator against a tiny axum
//! server started inside each test.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use bytes::Bytes;
use seesaw_serve::client::HttpClient;
use seesaw_serve::loadgen::{LoadPlan, run_load};

#[derive(Default)]
struct Counters {
    /// Requests seen by `/flaky`.
    flaky: AtomicUsize,
    /// Requests currently inside `/slow`, and the most seen at once.
    slow_in_flight: AtomicUsize,
    slow_max_in_flight: AtomicUsize,
}

/// Sleeps 1 ms, then echoes the body with the request's content type.
async fn echo(headers: HeaderMap, body: Bytes) -> impl IntoResponse {
    tokio::time::sleep(Duration::from_millis(1)).await;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .cloned()
        .unwrap_or_else(|| header::HeaderValue::from_static("application/octet-stream"));
    ([(header::CONTENT_TYPE, content_type)], body)
}

/// Like `echo`, but every 3rd request (3rd, 6th, ...) gets a 503.
async fn flaky(State(counters): State<Arc<Counters>>, body: Bytes) -> impl IntoResponse {
    tokio::time::sleep(Duration::from_millis(1)).await;
    let n = counters.flaky.fetch_add(1, Ordering::SeqCst) + 1;
    if n % 3 == 0 {
        (StatusCode::SERVICE_UNAVAILABLE, Bytes::from_static(b"busy"))
    } else {
        (StatusCode::OK, body)
    }
}

/// Takes 50 ms and records how many requests it is serving at once.
async fn slow(State(counters): State<Arc<Counters>>) -> &'static str {
    let now = counters.slow_in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    counters.slow_max_in_flight.fetch_max(now, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(50)).await;
    counters.slow_in_flight.fetch_sub(1, Ordering::SeqCst);
    "done"
}

async fn start_server() -> (SocketAddr, Arc<Counters>) {
    let counters = Arc::new(Counters::default());
    let app = Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/echo", post(echo))
        .route("/flaky", post(flaky))
        .route("/slow", post(slow))
        .with_state(counters.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, counters)
}

fn json_body(i: usize) -> Bytes {
    Bytes::from(format!(r#"{{"request":{i}}}"#))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_get_and_post_return_status_and_body() {
    let (addr, _) = start_server().await;
    let mut client = HttpClient::connect(addr).await.unwrap();

    let health = client.get("/health").await.unwrap();
    assert_eq!(health.status, 200);
    assert_eq!(&health.body[..], b"ok");
    assert!(health.content_type.unwrap().starts_with("text/plain"));

    // Several requests on the one keep-alive connection.
    for i in 0..5 {
        let response = client.post_json("/echo", json_body(i)).await.unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(response.body, json_body(i));
        assert_eq!(response.content_type.as_deref(), Some("application/json"));
    }

    let response =
        client.post("/echo", "text/csv", Bytes::from_static(b"a,b\n1,2\n")).await.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(&response.body[..], b"a,b\n1,2\n");
    assert_eq!(response.content_type.as_deref(), Some("text/csv"));

    let missing = client.get("/nope").await.unwrap();
    assert_eq!(missing.status, 404);
    assert!(client.get("/health").await.is_ok(), "a 404 does not break the connection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_connect_to_closed_port_is_an_error() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let err = HttpClient::connect(addr).await.unwrap_err();
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_at_200_rps_for_1_s() {
    let (addr, _) = start_server().await;
    let plan = LoadPlan {
        rate_per_second: 200.0,
        duration: Duration::from_secs(1),
        max_connections: 16,
        path: "/echo".into(),
    };
    let report = run_load(addr, &plan, json_body).await;
    println!("{}", serde_json::to_string_pretty(&report).unwrap());

    assert_eq!(report.target_rps, 200.0);
    assert_eq!(report.planned, 200);
    assert_eq!(report.completed, 200);
    assert_eq!(report.transport_errors, 0);
    assert_eq!(report.by_status.get(&200), Some(&200));
    assert_eq!(report.ok(), 200);
    assert_eq!(report.errors(), 0);
    let l = report.latency_ms;
    assert!(l.p50 >= 1.0, "the handler sleeps 1 ms: {l:?}");
    assert!(l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.max, "{l:?}");
    assert!(l.mean >= 1.0 && l.mean <= l.max, "{l:?}");
    // Loose: CI is a loaded 2-core machine.
    assert!((150.0..=250.0).contains(&report.achieved_rps), "achieved {} rps", report.achieved_rps);
    assert!(report.elapsed_s >= 0.995, "elapsed {} s", report.elapsed_s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_counts_statuses_of_a_flaky_route() {
    let (addr, counters) = start_server().await;
    let plan = LoadPlan {
        rate_per_second: 200.0,
        duration: Duration::from_secs(1),
        max_connections: 16,
        path: "/flaky".into(),
    };
    let report = run_load(addr, &plan, json_body).await;

    assert_eq!(counters.flaky.load(Ordering::SeqCst), 200);
    assert_eq!(report.planned, 200);
    assert_eq!(report.completed, 200);
    assert_eq!(report.transport_errors, 0);
    // Every 3rd of 200 requests: floor(200 / 3) = 66 get a 503.
    assert_eq!(report.by_status.get(&503), Some(&66));
    assert_eq!(report.by_status.get(&200), Some(&134));
    assert_eq!(report.by_status.len(), 2);
    assert_eq!(report.ok(), 134);
    assert_eq!(report.errors(), 66);
    let l = report.latency_ms;
    assert!(l.p50 >= 1.0 && l.p50 <= l.p99 && l.p99 <= l.max, "{l:?}");
    // achieved_rps counts only the 2xx responses.
    assert!(
        (134.0 * 0.75..=134.0 * 1.25).contains(&report.achieved_rps),
        "achieved {} rps",
        report.achieved_rps
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_for_a_busy_connection_counts_in_latency() {
    let (addr, counters) = start_server().await;
    // 20 requests over 200 ms, each taking 50 ms, on only 2 connections: the server can do
    // 40 rps, so requests queue for a connection. The last one is scheduled at 190 ms but
    // cannot finish before 10 rounds of 50 ms = 500 ms, so open-loop latency is >= 310 ms;
    // a closed-loop measurement would report about 50 ms for it.
    let plan = LoadPlan {
        rate_per_second: 100.0,
        duration: Duration::from_millis(200),
        max_connections: 2,
        path: "/slow".into(),
    };
    let report = run_load(addr, &plan, |_| Bytes::new()).await;

    assert_eq!(report.planned, 20);
    assert_eq!(report.completed, 20);
    assert_eq!(report.ok(), 20);
    assert!(
        counters.slow_max_in_flight.load(Ordering::SeqCst) <= 2,
        "max_connections bounds the requests in flight"
    );
    assert!(report.latency_ms.max >= 300.0, "{:?}", report.latency_ms);
    assert!(report.elapsed_s >= 0.5, "elapsed {} s", report.elapsed_s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_server_gives_transport_errors() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let plan = LoadPlan {
        rate_per_second: 50.0,
        duration: Duration::from_millis(100),
        max_connections: 4,
        path: "/echo".into(),
    };
    let report = run_load(addr, &plan, json_body).await;

    assert_eq!(report.planned, 5);
    assert_eq!(report.completed, 0);
    assert_eq!(report.transport_errors, 5);
    assert_eq!(report.errors(), 5);
    assert_eq!(report.achieved_rps, 0.0);
    assert!(report.latency_ms.p50.is_nan());
    // NaN latencies serialize as null rather than failing.
    let json = serde_json::to_value(&report).unwrap();
    assert!(json["latency_ms"]["p50"].is_null());
}
