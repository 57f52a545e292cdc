//! `seesaw serve` on loopback: its predictions equal `seesaw eval`'s, bad input gets a JSON 4xx,
//! a saturated server answers 503, a reload under load loses no request, SIGTERM stops it cleanly.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};

use common::{
    MMOE, SHARED_BOTTOM, Server, compare_served_with_eval, eval_predictions, log_rows,
    train_small_model,
};
use seesaw_serve::batcher::BatcherConfig;
use seesaw_serve::client::HttpClient;
use seesaw_serve::loadgen::{LoadPlan, run_load};
use seesaw_serve::{ModelSource, RequestLimits, ServeConfig};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn config(model: &Path) -> ServeConfig {
    ServeConfig::new(
        ModelSource { dir: model.to_owned(), users: None, videos: None },
        SocketAddr::from(([127, 0, 0, 1], 0)),
    )
}

async fn post(client: &mut HttpClient, path: &str, body: impl Into<Bytes>) -> (u16, Value) {
    let response = client.post_json(path, body.into()).await.unwrap();
    let value = serde_json::from_slice(&response.body).unwrap_or_else(|e| {
        panic!(
            "{path} answered {} with a body that is not JSON ({e}): {:?}",
            response.status, response.body
        )
    });
    (response.status, value)
}

#[test]
fn served_predictions_equal_eval_and_sigterm_stops_the_server_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let model = train_small_model(dir.path(), "model", 0, MMOE);
    let log = model.join("simulator/log_standard_sim.csv");
    let (tasks, expected) = eval_predictions(&model, &log, &dir.path().join("predictions.csv"));
    assert_eq!(tasks, ["click", "like", "hate", "watch_ratio"]);
    let rows = log_rows(&model);
    assert_eq!(rows.len(), expected.len(), "the simulated log loses no row to cleaning");

    // The first 1,500 rows, one request per user (at most 200 candidates each), every candidate
    // with its own row's context: the same rows eval scored. Then the same rows from a server
    // that scores every request of 2 rows or more in two halves whenever its other worker is
    // idle, as it is between these one-at-a-time requests.
    let split = ["--workers", "2", "--split-rows", "2"];
    for args in [&[][..], &split[..]] {
        let server = Server::spawn_with(&model, args);
        let (compared, worst) = compare_served_with_eval(
            server.addr,
            &rows,
            &tasks,
            tasks.len(),
            &expected,
            1500,
            |_, _| {},
        );
        eprintln!(
            "{args:?}: {compared} rows compared with seesaw eval; largest difference {worst:e}"
        );
        assert_eq!(compared, 1500);
        if !args.is_empty() {
            let (calls, requests) = runtime().block_on(async {
                let mut client = HttpClient::connect(server.addr).await.unwrap();
                let metrics = client.get("/metrics").await.unwrap().body;
                let metrics = String::from_utf8(metrics.to_vec()).unwrap();
                let value = |name: &str| -> f64 {
                    let line = metrics.lines().find(|l| l.starts_with(name)).unwrap();
                    line.rsplit(' ').next().unwrap().parse().unwrap()
                };
                (
                    value("seesaw_model_call_duration_seconds_count"),
                    value("seesaw_http_request_duration_seconds_count{route=\"/v1/score\"}"),
                )
            });
            assert!(calls > requests, "{calls} model calls for {requests} requests: none split");
        }
        server.terminate();
    }
}

#[test]
fn bad_input_gets_a_json_4xx_and_the_server_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let model = train_small_model(dir.path(), "model", 0, MMOE);
    let mut config = config(&model);
    config.limits = RequestLimits { max_candidates: 10, max_body_bytes: 4096 };
    runtime().block_on(async {
        let server = seesaw_serve::start(config).await.unwrap();
        let mut client = HttpClient::connect(server.addr).await.unwrap();
        let valid = json!({"user_id": 1, "context": {"tab": 1}, "candidates": [{"video_id": 2}, {"video_id": 3}]});
        let cases: Vec<(Vec<u8>, u16, &str)> = vec![
            (b"{\"user_id\": 1,".to_vec(), 400, "malformed_json"),
            (b"\xc3\x28\xa0\xa1".to_vec(), 400, "invalid_utf8"),
            (br#"{"user_id": [1], "candidates": [{"video_id": 2}]}"#.to_vec(), 422, "invalid_request"),
            (br#"{"user_id": 1, "candidates": "2"}"#.to_vec(), 422, "invalid_request"),
            (br#"{"user_id": 1, "candidates": []}"#.to_vec(), 422, "no_candidates"),
            (json!({"user_id": 1, "candidates": vec![json!({"video_id": 1}); 11]}).to_string().into_bytes(), 422, "too_many_candidates"),
            (vec![b' '; 5000], 413, "body_too_large"),
            (br#"{"user_id": 1, "context": {"tabb": 1}, "candidates": [{"video_id": 2}]}"#.to_vec(), 422, "unknown_context"),
            (br#"{"user_id": 1, "candidates": [{"video_id": 2}], "fusion": {"weights": {"share": 1.0}}}"#.to_vec(), 422, "invalid_fusion"),
        ];
        for (body, status, code) in cases {
            let (got, answer) = post(&mut client, "/v1/score", body.clone()).await;
            assert_eq!((got, answer["error"]["code"].as_str().unwrap()), (status, code), "{answer}");
            assert!(!answer["error"]["message"].as_str().unwrap().is_empty());
        }
        let response = client.get("/v1/score").await.unwrap();
        assert_eq!(response.status, 405);
        let response = client.get("/v2/score").await.unwrap();
        assert_eq!(response.status, 404);
        assert!(String::from_utf8_lossy(&response.body).contains("not_found"));

        // A reload from a directory that holds no model fails and leaves the model in place.
        let version = server.model_version();
        let (status, answer) = post(&mut client, "/admin/reload", json!({"model": dir.path().join("nothing")}).to_string()).await;
        assert_eq!(status, 422, "{answer}");
        assert_eq!(server.model_version(), version);

        // Still serving, unknown users and videos through the out-of-vocabulary path.
        let (status, answer) = post(&mut client, "/v1/score", valid.to_string()).await;
        assert_eq!(status, 200, "{answer}");
        let unknown = json!({"user_id": "never-seen", "candidates": [{"video_id": "nor-this"}]});
        let (status, answer) = post(&mut client, "/v1/score", unknown.to_string()).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["results"][0]["predictions"].as_object().unwrap().len(), 4);

        let health = client.get("/healthz").await.unwrap();
        assert_eq!(health.status, 200);
        let ready: Value = serde_json::from_slice(&client.get("/readyz").await.unwrap().body).unwrap();
        assert_eq!(ready["status"], "ready");
        assert_eq!(ready["model_version"], version.as_str());
        let metrics = String::from_utf8(client.get("/metrics").await.unwrap().body.to_vec()).unwrap();
        for needle in [
            r#"seesaw_http_requests_total{route="/v1/score",status="422"} 6"#,
            r#"seesaw_http_requests_total{route="/v1/score",status="200"} 2"#,
            r#"seesaw_model_reloads_total{outcome="failed"} 1"#,
            "seesaw_http_request_duration_seconds_bucket",
            "seesaw_batch_rows_count 2",
        ] {
            assert!(metrics.contains(needle), "{needle} not in\n{metrics}");
        }
        assert!(metrics.contains(&format!(r#"version="{version}""#)));
        server.shutdown().await.unwrap();
    });
}

#[test]
fn fusion_ranks_by_the_requested_weights_and_demotes_negative_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let model = train_small_model(dir.path(), "model", 0, MMOE);
    runtime().block_on(async {
        let server = seesaw_serve::start(config(&model)).await.unwrap();
        let mut client = HttpClient::connect(server.addr).await.unwrap();
        let candidates: Vec<Value> = (0..40).map(|v| json!({"video_id": v})).collect();
        // The model's default: positive tasks summed, hate demoting.
        let (status, answer) = post(&mut client, "/v1/score", json!({"user_id": 3, "candidates": candidates}).to_string()).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["fusion"]["demote"]["hate"], 1.0);
        for result in answer["results"].as_array().unwrap() {
            let p = |t: &str| result["predictions"][t].as_f64().unwrap();
            let expected = (p("click") + p("like") + p("watch_ratio")) * (1.0 - p("hate"));
            assert!((result["fused_score"].as_f64().unwrap() - expected).abs() < 1e-5, "{result}");
        }
        // Per request: rank by like alone, then by a product demoted hard by hate.
        let by_like = json!({"user_id": 3, "candidates": candidates, "fusion": {"weights": {"like": 1.0}}});
        let (_, answer) = post(&mut client, "/v1/score", by_like.to_string()).await;
        let likes: Vec<f64> = answer["results"].as_array().unwrap().iter().map(|r| r["predictions"]["like"].as_f64().unwrap()).collect();
        assert!(likes.windows(2).all(|w| w[0] >= w[1]), "{likes:?}");
        let product = json!({"user_id": 3, "candidates": candidates,
            "fusion": {"method": "weighted_product", "weights": {"click": 1.0, "watch_ratio": 0.5}, "demote": {"hate": 4.0}}});
        let (status, answer) = post(&mut client, "/v1/score", product.to_string()).await;
        assert_eq!(status, 200, "{answer}");
        for result in answer["results"].as_array().unwrap() {
            let p = |t: &str| result["predictions"][t].as_f64().unwrap();
            let expected = p("click") * p("watch_ratio").max(1e-6).sqrt() * (1.0 - p("hate")).powi(4);
            assert!((result["fused_score"].as_f64().unwrap() - expected).abs() < 1e-5, "{result}");
        }
        server.shutdown().await.unwrap();
    });
}

#[test]
fn a_compact_answer_lists_only_the_asked_scores_of_the_best_top_k() {
    let dir = tempfile::tempdir().unwrap();
    let model = train_small_model(dir.path(), "model", 0, MMOE);
    runtime().block_on(async {
        let server = seesaw_serve::start(config(&model)).await.unwrap();
        let mut client = HttpClient::connect(server.addr).await.unwrap();
        let candidates: Vec<Value> = (0..40).map(|v| json!({"video_id": v})).collect();
        let request = |extra: Value| {
            let mut body = json!({"user_id": 3, "candidates": candidates});
            body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            body.to_string()
        };
        let (_, full) = post(&mut client, "/v1/score", request(json!({}))).await;
        let full = full["results"].as_array().unwrap().clone();
        assert_eq!(full.len(), 40);

        // Two scores of the best 5: the same candidates, order and fused scores as the full answer.
        let (status, compact) = post(
            &mut client,
            "/v1/score",
            request(json!({"predictions": ["like", "click"], "top_k": 5})),
        )
        .await;
        assert_eq!(status, 200, "{compact}");
        let results = compact["results"].as_array().unwrap();
        assert_eq!(results.len(), 5);
        for (got, want) in results.iter().zip(&full) {
            assert_eq!(
                (&got["index"], &got["fused_score"]),
                (&want["index"], &want["fused_score"])
            );
            let names: Vec<&String> = got["predictions"].as_object().unwrap().keys().collect();
            assert_eq!(names, ["click", "like"], "only the named ones");
            assert_eq!(got["predictions"]["like"], want["predictions"]["like"]);
        }
        // The raw text (a JSON object's keys are sorted once parsed): model order, once each.
        let raw = client
            .post_json(
                "/v1/score",
                request(json!({"predictions": ["like", "click", "like"], "top_k": 1})).into(),
            )
            .await
            .unwrap();
        let raw = String::from_utf8(raw.body.to_vec()).unwrap();
        let result = raw.split(r#""results":"#).nth(1).unwrap();
        assert!(
            result.contains(r#""predictions":{"click":"#)
                && result.matches(r#""like":"#).count() == 1,
            "{raw}"
        );
        // None: the fused score alone. A top_k past the candidates returns them all.
        let (_, bare) =
            post(&mut client, "/v1/score", request(json!({"predictions": [], "top_k": 100}))).await;
        let bare = bare["results"].as_array().unwrap();
        assert_eq!(bare.len(), 40);
        assert!(bare.iter().all(|r| r.get("predictions").is_none()), "{:?}", bare[0]);

        for (extra, code) in [
            (json!({"predictions": ["share"]}), "unknown_prediction"),
            (json!({"top_k": 0}), "invalid_top_k"),
            (json!({"top_k": -1}), "invalid_request"),
        ] {
            let (status, answer) = post(&mut client, "/v1/score", request(extra)).await;
            assert_eq!(
                (status, answer["error"]["code"].as_str().unwrap()),
                (422, code),
                "{answer}"
            );
        }
        server.shutdown().await.unwrap();
    });
}

#[test]
fn a_saturated_server_answers_503_instead_of_queueing_without_bound() {
    let dir = tempfile::tempdir().unwrap();
    let model = train_small_model(dir.path(), "model", 0, MMOE);
    let mut config = config(&model);
    config.batcher = BatcherConfig {
        queue_capacity: 1,
        max_batch_rows: 2000,
        max_wait: Duration::ZERO,
        workers: 1,
        split_rows: 0,
        pin_workers: false,
    };
    config.limits.max_candidates = 2000;
    runtime().block_on(async {
        let server = seesaw_serve::start(config).await.unwrap();
        let candidates: Vec<Value> = (0..2000).map(|v| json!({"video_id": v % 100})).collect();
        let body = Bytes::from(json!({"user_id": 1, "candidates": candidates}).to_string());
        let requests = (0..48).map(|_| {
            let body = body.clone();
            let addr = server.addr;
            tokio::spawn(async move {
                let mut client = HttpClient::connect(addr).await.unwrap();
                let response = client.post_json("/v1/score", body).await.unwrap();
                let value: Value = serde_json::from_slice(&response.body).unwrap();
                (response.status, value)
            })
        });
        let mut by_status = BTreeMap::new();
        for request in requests.collect::<Vec<_>>() {
            let (status, value) = request.await.unwrap();
            if status == 503 {
                assert_eq!(value["error"]["code"], "overloaded", "{value}");
            }
            *by_status.entry(status).or_insert(0) += 1;
        }
        eprintln!("48 concurrent requests of 2,000 candidates, queue of 1: {by_status:?}");
        assert!(by_status.get(&503).copied().unwrap_or(0) > 0, "{by_status:?}");
        assert!(by_status.get(&200).copied().unwrap_or(0) > 0, "{by_status:?}");
        assert_eq!(
            by_status.keys().filter(|s| ![200, 503].contains(*s)).count(),
            0,
            "{by_status:?}"
        );
        server.shutdown().await.unwrap();
    });
}

#[test]
fn a_reload_under_load_loses_no_request() {
    let dir = tempfile::tempdir().unwrap();
    let first = train_small_model(dir.path(), "first", 0, MMOE);
    let second = train_small_model(dir.path(), "second", 1, SHARED_BOTTOM);
    runtime().block_on(async {
        let server = seesaw_serve::start(config(&first)).await.unwrap();
        let first_version = server.model_version();
        let candidates: Vec<Value> = (0..100).map(|v| json!({"video_id": v})).collect();
        let body = Bytes::from(json!({"user_id": 5, "context": {"tab": 1}, "candidates": candidates}).to_string());
        let plan = LoadPlan {
            rate_per_second: 150.0,
            duration: Duration::from_secs(3),
            max_connections: 32,
            path: "/v1/score".into(),
        };
        let addr = server.addr;
        let load = tokio::spawn(async move { run_load(addr, &plan, move |_| body.clone()).await });
        let mut admin = HttpClient::connect(server.addr).await.unwrap();
        let mut versions = vec![first_version.clone()];
        for i in 0..6 {
            tokio::time::sleep(Duration::from_millis(350)).await;
            let target = if i % 2 == 0 { &second } else { &first };
            let (status, answer) = post(&mut admin, "/admin/reload", json!({"model": target}).to_string()).await;
            assert_eq!(status, 200, "{answer}");
            assert_eq!(answer["previous_version"], versions.last().unwrap().as_str());
            versions.push(answer["model_version"].as_str().unwrap().to_string());
        }
        let report = load.await.unwrap();
        eprintln!(
            "reload under load: {} requests planned, by status {:?}, transport errors {}, p99 {:.2} ms, 6 reloads",
            report.planned, report.by_status, report.transport_errors, report.latency_ms.p99
        );
        assert_ne!(versions[0], versions[1], "two different models");
        assert_eq!(versions[2], versions[0]);
        assert_eq!(report.transport_errors, 0);
        assert_eq!(report.by_status.get(&200).copied(), Some(report.planned), "{:?}", report.by_status);
        assert_eq!(server.model_version(), first_version);
        server.shutdown().await.unwrap();
    });
}

#[test]
fn the_admin_route_takes_a_bearer_token_and_a_public_address_requires_one() {
    let dir = tempfile::tempdir().unwrap();
    let model = train_small_model(dir.path(), "model", 0, MMOE);
    runtime().block_on(async {
        // Reachable from other machines and no token: refused before anything is bound.
        let mut public = config(&model);
        public.addr = SocketAddr::from(([0, 0, 0, 0], 0));
        let refused = seesaw_serve::start(public).await.err().expect("refused without a token");
        assert!(refused.to_string().contains("admin token"), "{refused}");

        let mut with_token = config(&model);
        with_token.admin_token = Some("s3cret-token".into());
        let server = seesaw_serve::start(with_token).await.unwrap();
        let mut client = HttpClient::connect(server.addr).await.unwrap();
        for bearer in [None, Some("wrong"), Some("s3cret-toke"), Some("s3cret-token-")] {
            client.set_bearer(bearer);
            let (status, answer) = post(&mut client, "/admin/reload", "").await;
            assert_eq!((status, answer["error"]["code"].as_str()), (401, Some("unauthorised")));
        }
        // Scoring needs no token.
        client.set_bearer(None);
        let valid = json!({"user_id": 1, "candidates": [{"video_id": 2}]});
        assert_eq!(post(&mut client, "/v1/score", valid.to_string()).await.0, 200);
        client.set_bearer(Some("s3cret-token"));
        let (status, answer) = post(&mut client, "/admin/reload", "").await;
        assert_eq!(status, 200, "{answer}");
        server.shutdown().await.unwrap();
    });
}

/// Raises this process's open-file limit to its hard limit; false when the hard limit is too low
/// for `needed` descriptors.
#[cfg(unix)]
fn allow_open_files(needed: u64) -> bool {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed to them.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return false;
        }
        limit.rlim_cur = limit.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
    }
    // rlim_t is u64 here but not on every unix.
    #[allow(clippy::unnecessary_cast)]
    let hard = limit.rlim_max as u64;
    hard >= needed
}

/// 1,100 idle sockets and 20 clients trickling their request heads: a normal client still gets
/// every answer at once, and SIGTERM ends the server within its grace period.
#[cfg(unix)]
#[test]
fn idle_sockets_and_slow_clients_block_nobody_and_sigterm_ends_within_the_grace() {
    use std::io::Write;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    if !allow_open_files(1_400) {
        assert!(std::env::var_os("CI").is_none(), "CI must allow 1,400 open files");
        eprintln!("skipped: the open-file limit is below 1,400");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let model = train_small_model(dir.path(), "model", 0, MMOE);
    let server = Server::spawn_with(&model, &["--shutdown-grace-s", "2"]);
    let addr = server.addr;
    let idle: Vec<std::net::TcpStream> =
        (0..1_100).map(|_| std::net::TcpStream::connect(addr).unwrap()).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let slow: Vec<_> = (0..20)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut stream = std::net::TcpStream::connect(addr).unwrap();
                let head = b"POST /v1/score HTTP/1.1\r\nHost: x\r\nX-Slow: ";
                for &byte in head.iter().chain(std::iter::repeat_n(&b'a', 10_000)) {
                    if stop.load(Ordering::SeqCst) || stream.write_all(&[byte]).is_err() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));

    let body = json!({"user_id": 1, "candidates": [{"video_id": 2}, {"video_id": 3}]}).to_string();
    let slowest = runtime().block_on(async {
        let mut slowest = Duration::ZERO;
        for _ in 0..50 {
            let started = std::time::Instant::now();
            let mut client = HttpClient::connect(addr).await.unwrap();
            let (status, answer) = post(&mut client, "/v1/score", body.clone()).await;
            assert_eq!(status, 200, "{answer}");
            assert_eq!(client.get("/healthz").await.unwrap().status, 200);
            slowest = slowest.max(started.elapsed());
        }
        slowest
    });
    eprintln!("50 new connections beside 1,100 idle and 20 slow ones; slowest answer {slowest:?}");
    assert!(slowest < Duration::from_secs(2), "a normal client waited {slowest:?}");

    let stopping = std::time::Instant::now();
    server.terminate();
    let took = stopping.elapsed();
    assert!(took < Duration::from_secs(5), "SIGTERM took {took:?} with a grace of 2 s");
    stop.store(true, Ordering::SeqCst);
    for thread in slow {
        thread.join().unwrap();
    }
    drop(idle);
}
