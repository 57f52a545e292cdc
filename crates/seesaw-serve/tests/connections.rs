//! The connection bounds on loopback, with a tiny axum app behind `LimitedListener` served by
//! `serve_http`: a client that connects and sends nothing (or half a request head) is closed after
//! the idle timeout, one that trickles its head a byte at a time after the header timeout, at
//! the connection limit a new client is served only once an old connection closes, and a stop
//! ends the server within the grace period whatever the clients do.

use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use prometheus_client::metrics::gauge::Gauge;
use seesaw_serve::client::HttpClient;
use seesaw_serve::connections::{ConnectionLimits, LimitedListener};
use seesaw_serve::http::{HttpSettings, serve_http};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const IDLE: Duration = Duration::from_millis(400);

struct TestServer {
    addr: std::net::SocketAddr,
    open: Gauge,
    stop: oneshot::Sender<()>,
    /// Resolves to the connections dropped at the end of the grace period.
    task: JoinHandle<usize>,
}

async fn start_with(max_connections: usize, settings: HttpSettings) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let open = Gauge::default();
    let limits = ConnectionLimits { max_connections, idle_timeout: IDLE };
    let listener = LimitedListener::new(listener, limits, open.clone());
    let app = Router::new().route("/", get(|| async { "ok" }));
    let (stop, stopped) = oneshot::channel();
    let task = tokio::spawn(serve_http(listener, app, settings, stopped));
    TestServer { addr, open, stop, task }
}

async fn start(max_connections: usize) -> (std::net::SocketAddr, Gauge) {
    let server = start_with(max_connections, HttpSettings::default()).await;
    std::mem::forget(server.stop);
    (server.addr, server.open)
}

/// Sends one byte of a request head every `every` until the write fails (the server closed).
async fn trickle(mut stream: TcpStream, every: Duration) -> Duration {
    let started = Instant::now();
    let head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Padding: ".iter().chain(std::iter::repeat(&b'a'));
    for &byte in head {
        if stream.write_all(&[byte]).await.is_err() || started.elapsed() > Duration::from_secs(20) {
            break;
        }
        tokio::time::sleep(every).await;
    }
    started.elapsed()
}

#[tokio::test]
async fn a_client_trickling_its_request_head_is_closed_after_the_header_timeout() {
    let header_timeout = Duration::from_secs(1);
    let settings = HttpSettings { header_timeout, ..HttpSettings::default() };
    let server = start_with(16, settings).await;
    // A byte every 100 ms is never idle for the 400 ms idle timeout, so only the head deadline
    // can close it.
    let slow = TcpStream::connect(server.addr).await.unwrap();
    let took = trickle(slow, Duration::from_millis(100)).await;
    assert!(
        took >= header_timeout && took < header_timeout * 4,
        "a trickling head was cut after {took:?} (header timeout {header_timeout:?})"
    );
    let mut client = HttpClient::connect(server.addr).await.unwrap();
    assert_eq!(client.get("/").await.unwrap().status, 200);
}

#[tokio::test]
async fn a_stop_ends_the_server_within_the_grace_period_whatever_the_clients_do() {
    let grace = Duration::from_millis(700);
    // A long header timeout, so that only the grace period can end the slow clients.
    let settings = HttpSettings { header_timeout: Duration::from_secs(60), shutdown_grace: grace };
    let server = start_with(64, settings).await;
    let slow: Vec<_> = (0..20)
        .map(|_| {
            let addr = server.addr;
            tokio::spawn(async move {
                let stream = TcpStream::connect(addr).await.unwrap();
                trickle(stream, Duration::from_millis(50)).await
            })
        })
        .collect();
    let mut idle = Vec::new();
    for _ in 0..20 {
        idle.push(TcpStream::connect(server.addr).await.unwrap());
    }
    let mut client = HttpClient::connect(server.addr).await.unwrap();
    assert_eq!(client.get("/").await.unwrap().status, 200);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let stopped = Instant::now();
    server.stop.send(()).unwrap();
    let dropped = tokio::time::timeout(Duration::from_secs(10), server.task)
        .await
        .expect("the server stopped")
        .unwrap();
    let took = stopped.elapsed();
    assert!(took < grace + Duration::from_millis(500), "stopped after {took:?}, grace {grace:?}");
    assert!(dropped >= 20, "the trickling clients were dropped: {dropped}");
    for client in slow {
        let sending_for = client.await.unwrap();
        assert!(
            sending_for < Duration::from_secs(15),
            "a slow client was never cut: {sending_for:?}"
        );
    }
    drop(idle);
}

/// Reads until the server closes the connection (EOF or reset), and says how long that took.
async fn time_until_closed(stream: &mut TcpStream) -> Duration {
    let started = Instant::now();
    let mut buf = [0u8; 256];
    loop {
        match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return started.elapsed(),
            Ok(Ok(_)) => continue,
            Err(_) => panic!("the server kept an idle connection open for 10 s"),
        }
    }
}

#[tokio::test]
async fn idle_and_half_sent_connections_are_closed_after_the_idle_timeout() {
    let (addr, open) = start(16).await;
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let mut half = TcpStream::connect(addr).await.unwrap();
    half.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let (silent_closed, half_closed) =
        tokio::join!(time_until_closed(&mut silent), time_until_closed(&mut half));
    for (what, took) in [("silent", silent_closed), ("half a head", half_closed)] {
        assert!(took >= IDLE / 2, "{what}: closed after {took:?}, before the idle timeout");
    }
    // A client that finishes its request is answered as usual.
    let mut client = HttpClient::connect(addr).await.unwrap();
    assert_eq!(client.get("/").await.unwrap().status, 200);
    drop(client);
    // The gauge falls back once every connection has closed.
    let deadline = Instant::now() + Duration::from_secs(5);
    while open.get() != 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(open.get(), 0);
}

#[tokio::test]
async fn at_the_limit_a_new_client_waits_for_a_place() {
    let (addr, open) = start(2).await;
    let mut first = TcpStream::connect(addr).await.unwrap();
    let mut second = TcpStream::connect(addr).await.unwrap();
    // Let the server accept both before the third arrives.
    let deadline = Instant::now() + Duration::from_secs(5);
    while open.get() < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(open.get(), 2);

    let started = Instant::now();
    let third = tokio::spawn(async move {
        let mut client = HttpClient::connect(addr).await.unwrap();
        let status = client.get("/").await.unwrap().status;
        (status, started.elapsed())
    });
    tokio::time::sleep(IDLE / 4).await;
    assert_eq!(open.get(), 2, "a third connection was accepted over the limit of 2");
    assert!(!third.is_finished(), "the third client was served over the limit");

    // Closing one of the two makes room.
    drop(first.shutdown().await);
    drop(first);
    let (status, waited) = third.await.unwrap();
    assert_eq!(status, 200);
    assert!(waited >= IDLE / 4, "served after {waited:?}");
    assert!(time_until_closed(&mut second).await <= Duration::from_secs(10));
}
