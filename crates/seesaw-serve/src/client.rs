//! A minimal HTTP/1.1 client for loopback tests and the load generator.
//!
//! Each [`HttpClient`] owns exactly one keep-alive TCP connection and sends one request at a
//! time on it. That is deliberate: the load generator controls concurrency by how many clients
//! it holds, so a client must never open connections behind its back (as a pooling client
//! such as `hyper_util`'s legacy client would).

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Why a request through [`HttpClient`] failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("connecting to {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("HTTP/1.1 handshake with {addr}: {source}")]
    Handshake {
        addr: SocketAddr,
        #[source]
        source: hyper::Error,
    },
    /// The request could not be built (e.g. a path that is not a valid URI).
    #[error("building request for {path:?}: {source}")]
    Request {
        path: String,
        #[source]
        source: hyper::http::Error,
    },
    /// The connection was closed or failed before a response head arrived.
    #[error("sending request: {0}")]
    Send(#[source] hyper::Error),
    #[error("reading response body: {0}")]
    Body(#[source] hyper::Error),
}

/// A response with its body fully read.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub body: Bytes,
    pub content_type: Option<String>,
}

/// One keep-alive HTTP/1.1 connection to `addr`.
#[derive(Debug)]
pub struct HttpClient {
    sender: SendRequest<Full<Bytes>>,
    /// Sent as the `Host` header, which HTTP/1.1 requires.
    host: String,
    /// Sent as `Authorization: Bearer …` with every request when set (the admin routes).
    bearer: Option<String>,
}

impl HttpClient {
    pub async fn connect(addr: SocketAddr) -> Result<Self, ClientError> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|source| ClientError::Connect { addr, source })?;
        // Small request/response exchanges on a keep-alive connection would otherwise hit
        // Nagle + delayed-ACK stalls (tens of ms), which would swamp the latencies we measure.
        stream.set_nodelay(true).map_err(|source| ClientError::Connect { addr, source })?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|source| ClientError::Handshake { addr, source })?;
        // hyper leaves driving the socket to us. The task ends when the connection closes or
        // when `sender` is dropped; a connection error also makes the next `send_request`
        // fail, which is where the caller learns about it, so the result is ignored here.
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Self { sender, host: addr.to_string(), bearer: None })
    }

    /// Sends `Authorization: Bearer <token>` with the requests that follow (None: no header).
    pub fn set_bearer(&mut self, token: Option<&str>) {
        self.bearer = token.map(str::to_owned);
    }

    pub async fn post(
        &mut self,
        path: &str,
        content_type: &str,
        body: Bytes,
    ) -> Result<Response, ClientError> {
        self.send(Method::POST, path, Some(content_type), body).await
    }

    /// POST with `content-type: application/json`.
    pub async fn post_json(&mut self, path: &str, body: Bytes) -> Result<Response, ClientError> {
        self.post(path, "application/json", body).await
    }

    pub async fn get(&mut self, path: &str) -> Result<Response, ClientError> {
        self.send(Method::GET, path, None, Bytes::new()).await
    }

    async fn send(
        &mut self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Bytes,
    ) -> Result<Response, ClientError> {
        let mut builder = Request::builder().method(method).uri(path).header(HOST, &self.host);
        if let Some(content_type) = content_type {
            builder = builder.header(CONTENT_TYPE, content_type);
        }
        if let Some(token) = &self.bearer {
            builder = builder.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = builder
            .body(Full::new(body))
            .map_err(|source| ClientError::Request { path: path.to_owned(), source })?;

        // Waits until the previous exchange has finished and the connection can take another
        // request; fails at once if the server has closed it.
        self.sender.ready().await.map_err(ClientError::Send)?;
        let response = self.sender.send_request(request).await.map_err(ClientError::Send)?;

        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        // Reading the whole body is part of the exchange: the connection is only reusable
        // once it has been consumed, and a latency measurement should include it.
        let body = response.into_body().collect().await.map_err(ClientError::Body)?.to_bytes();
        Ok(Response { status, body, content_type })
    }
}
