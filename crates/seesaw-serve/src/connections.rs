//! Bounds on client connections: how many may be open at once, and how long one may sit without
//! sending or taking a byte. Without them a client that opens sockets and never finishes a request
//! holds file descriptors and memory for as long as it likes; the request queue's 503 never sees it.
//!
//! At the limit the server stops accepting: new connections wait in the kernel's backlog until
//! one closes, rather than being accepted and dropped. A connection idle longer than the timeout
//! (reading or writing) is closed; between requests a keep-alive connection counts as idle.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::serve::Listener;
use prometheus_client::metrics::gauge::Gauge;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_io_timeout::TimeoutStream;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Connections open at once; the next waits in the backlog.
    pub max_connections: usize,
    /// A connection that neither sends nor takes a byte for this long is closed.
    pub idle_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        // Idle and half-sent connections are closed by the idle and header timeouts; the limit
        // is there for file descriptors and memory, and set high enough that a thousand idle
        // sockets (a scanner, a misbehaving client pool) leave room for everyone else.
        Self { max_connections: 10_000, idle_timeout: Duration::from_secs(60) }
    }
}

/// Descriptors kept back from the connection limit for the model, logs and the listener.
const RESERVED_DESCRIPTORS: u64 = 64;

/// Raises this process's open-file limit to its hard limit (as servers commonly do: the soft
/// default, often 1024, is below any useful connection limit) and returns how many
/// connections fit under it, or None where the limit is unknown.
pub fn connections_that_fit() -> Option<usize> {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit and setrlimit read and write only the struct passed to them.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
                return None;
            }
            if limit.rlim_cur < limit.rlim_max {
                let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                    limit = raised;
                }
            }
        }
        // rlim_t is u64 here but not on every unix.
        #[allow(clippy::unnecessary_cast)]
        let usable = (limit.rlim_cur as u64).saturating_sub(RESERVED_DESCRIPTORS);
        Some(usize::try_from(usable).unwrap_or(usize::MAX))
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// A TCP listener that hands out at most `max_connections` connections at a time, each with
/// read and write timeouts.
pub struct LimitedListener {
    inner: TcpListener,
    permits: Arc<Semaphore>,
    idle_timeout: Duration,
    open: Gauge,
}

impl LimitedListener {
    /// `open` is the gauge that counts connections open now (`seesaw_open_connections`).
    pub fn new(inner: TcpListener, limits: ConnectionLimits, open: Gauge) -> Self {
        Self {
            inner,
            permits: Arc::new(Semaphore::new(limits.max_connections.max(1))),
            idle_timeout: limits.idle_timeout,
            open,
        }
    }
}

impl Listener for LimitedListener {
    type Io = LimitedConnection;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        // The semaphore is never closed, so acquiring only waits.
        let permit = self.permits.clone().acquire_owned().await.expect("the semaphore stays open");
        // axum's accept retries transient errors (such as running out of descriptors) itself.
        let (stream, addr) = Listener::accept(&mut self.inner).await;
        // The last piece of a response is usually shorter than a segment; with Nagle's algorithm
        // on, it would wait for the client to acknowledge the rest, and a client that delays
        // its acknowledgements (up to 40 ms on Linux) would delay the answer. On loopback under
        // hey this changed nothing measurable; it is what a request/response server wants. A
        // failure only costs that delay.
        let _ = stream.set_nodelay(true);
        let mut stream = TimeoutStream::new(stream);
        stream.set_read_timeout(Some(self.idle_timeout));
        stream.set_write_timeout(Some(self.idle_timeout));
        self.open.inc();
        let connection = LimitedConnection {
            stream: Box::pin(stream),
            _permit: permit,
            open: self.open.clone(),
        };
        (connection, addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// One accepted connection; closing it (dropping it) frees its place under the limit.
pub struct LimitedConnection {
    stream: Pin<Box<TimeoutStream<TcpStream>>>,
    _permit: OwnedSemaphorePermit,
    open: Gauge,
}

impl Drop for LimitedConnection {
    fn drop(&mut self) {
        self.open.dec();
    }
}

impl AsyncRead for LimitedConnection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.stream.as_mut().poll_read(cx, buf)
    }
}

impl AsyncWrite for LimitedConnection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.stream.as_mut().poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.stream.as_mut().poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.stream.as_mut().poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.stream.as_mut().poll_shutdown(cx)
    }
}
