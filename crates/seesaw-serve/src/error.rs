//! Errors: `ApiError` is what a client sees (a status and a JSON body with a stable code and a
//! message); `ServeError` is what stops the server from starting or a model from loading.

use std::path::PathBuf;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// A 4xx or 5xx answer: `{"error": {"status": 422, "code": "...", "message": "..."}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    /// Stable and machine-readable, e.g. `malformed_json`, `too_many_candidates`, `overloaded`.
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into() }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(400, code, message)
    }

    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(422, code, message)
    }

    /// 413 `body_too_large`; `bytes` is the body's size where it is known (axum's limit stops
    /// reading at the limit, so it is not).
    pub fn body_too_large(bytes: Option<usize>, limit: usize) -> Self {
        let size = match bytes {
            Some(bytes) => format!("{bytes} bytes"),
            None => "larger".to_string(),
        };
        Self::new(
            413,
            "body_too_large",
            format!("the body is {size}, more than this server's limit of {limit} bytes"),
        )
    }

    pub fn overloaded(message: impl Into<String>) -> Self {
        Self::new(503, "overloaded", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "internal", message)
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorFields<'a>,
}

#[derive(Serialize)]
struct ErrorFields<'a> {
    status: u16,
    code: &'a str,
    message: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = ErrorBody {
            error: ErrorFields { status: self.status, code: self.code, message: &self.message },
        };
        let mut response = axum::Json(body).into_response();
        *response.status_mut() = status;
        if status == StatusCode::SERVICE_UNAVAILABLE {
            // Saturation clears within milliseconds; tell well-behaved clients to retry soon.
            response.headers_mut().insert("retry-after", "1".parse().expect("a valid header"));
        }
        response
    }
}

/// Each message carries its cause's text, so that one line (a reload's 422, a log line) says
/// everything; the causes are therefore not also chained as `source()`, which would repeat them.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("loading the model in {dir}: {cause}", dir = .dir.display())]
    Model { dir: PathBuf, cause: seesaw_models::ModelError },
    #[error("loading the side tables for the model in {dir}: {cause}", dir = .dir.display())]
    SideTables { dir: PathBuf, cause: seesaw_data::DataError },
    #[error("the model in {dir}: {message}", dir = .dir.display())]
    Config { dir: PathBuf, message: String },
    #[error("{context}: {cause}")]
    Io { context: String, cause: std::io::Error },
    /// A server setting that cannot be served as given.
    #[error("{message}")]
    Setting { message: String },
}
