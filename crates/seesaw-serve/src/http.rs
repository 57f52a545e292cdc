//! The HTTP/1.1 accept loop. axum's own `serve` sets no deadline on a request head and waits for
//! every connection at shutdown for as long as it stays open, so one client that sends a byte a
//! second keeps a stopping server alive forever. Here:
//!
//! - a request head must arrive whole within `header_timeout` of its first byte (hyper's header
//!   read timeout), else the connection is closed; idle keep-alive connections are closed by the
//!   listener's idle timeout (see `connections`);
//! - at shutdown the listener is closed at once, every connection is asked to finish its request
//!   in flight and close, and after `shutdown_grace` the ones still open are dropped.

use std::pin::pin;
use std::time::Duration;

use axum::Router;
use axum::serve::Listener;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpSettings {
    /// From a request head's first byte to its last.
    pub header_timeout: Duration,
    /// From the stop signal until open connections are dropped.
    pub shutdown_grace: Duration,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self { header_timeout: Duration::from_secs(10), shutdown_grace: Duration::from_secs(30) }
    }
}

/// Serves `app` on the connections `listener` hands out until `stop` fires (or its sender is
/// dropped), then drains as described above. Returns how many connections were still open at
/// the end of the grace period and dropped.
pub async fn serve_http<L>(
    mut listener: L,
    app: Router,
    settings: HttpSettings,
    stop: oneshot::Receiver<()>,
) -> usize
where
    L: Listener,
{
    let (closing, closing_signal) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut stop = pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            (io, _addr) = listener.accept() => {
                connections.spawn(serve_connection(
                    io,
                    app.clone(),
                    settings.header_timeout,
                    closing_signal.clone(),
                ));
            }
            // Reap finished connections so that the set holds only open ones.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let _ = closing.send(true);
    let deadline = tokio::time::sleep(settings.shutdown_grace);
    let mut deadline = pin!(deadline);
    loop {
        tokio::select! {
            joined = connections.join_next() => if joined.is_none() { return 0 },
            _ = &mut deadline => {
                let dropped = connections.len();
                connections.abort_all();
                return dropped;
            }
        }
    }
}

async fn serve_connection<Io>(
    io: Io,
    app: Router,
    header_timeout: Duration,
    mut closing: watch::Receiver<bool>,
) where
    Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(header_timeout);
    let connection = builder.serve_connection(TokioIo::new(io), TowerToHyperService::new(app));
    let mut connection = pin!(connection);
    tokio::select! {
        // A connection error (a reset, a head too slow or malformed) only ends this connection.
        _ = connection.as_mut() => return,
        _ = closing.wait_for(|closing| *closing) => connection.as_mut().graceful_shutdown(),
    }
    let _ = connection.await;
}
