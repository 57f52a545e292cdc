//! The connection bounds on loopback, with a tiny axum app behind `LimitedListener`: a client
//! that connects and sends nothing (or half a request head) is closed after the idle timeout,
//! and at the connection limit a new client is served only once an old connection closes.

use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use prometheus_client::metrics::gauge::Gauge;
use seesaw_serve::client::HttpClient;
use seesaw_serve::connections::{ConnectionLimits, LimitedListener};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const IDLE: Duration = Duration::from_millis(400);

async fn start(max_connections: usize) -> (std::net::SocketAddr, Gauge) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let open = Gauge::default();
    let limits = ConnectionLimits { max_connections, idle_timeout: IDLE };
    let listener = LimitedListener::new(listener, limits, open.clone());
    let app = Router::new().route("/", get(|| async { "ok" }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, open)
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
