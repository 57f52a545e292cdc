//! The HTTP service: routes, shared state, model reload and graceful shutdown.
//!
//! | route | answer |
//! | --- | --- |
//! | `POST /v1/score` | per candidate, every task's prediction and the fused score, best first |
//! | `GET /healthz` | 200 while the process serves HTTP |
//! | `GET /readyz` | 200 with the model version once a model is loaded; 503 while shutting down |
//! | `GET /metrics` | Prometheus (OpenMetrics) text |
//! | `POST /admin/reload` | loads `{"model": DIR}` (or the current directory again) and swaps it in |
//!
//! The admin route takes a bearer token when the server has one (`admin_token`): a request
//! without `Authorization: Bearer <token>` is answered 401. A server bound to an address other
//! than loopback refuses to start without a token, since anyone who reaches it could otherwise
//! swap the model.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::batcher::{Batcher, BatcherConfig, BatcherWorkers};
use crate::connections::{ConnectionLimits, LimitedListener, connections_that_fit};
use crate::error::{ApiError, ServeError};
use crate::http::{HttpSettings, serve_http};
use crate::loaded_model::{LoadedModel, ModelSource};
use crate::metrics::{self, Metrics};
use crate::request::{self, RequestLimits};
use crate::response::{ReturnedScores, ScoreResponse};

#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub source: ModelSource,
    pub addr: SocketAddr,
    pub limits: RequestLimits,
    pub batcher: BatcherConfig,
    pub connections: ConnectionLimits,
    /// How long a request may wait for its scores before it is answered 503.
    pub request_timeout: Duration,
    /// The bearer token `/admin/*` requires; required when `addr` is not loopback.
    pub admin_token: Option<String>,
    /// The request-head deadline and the shutdown grace period.
    pub http: HttpSettings,
}

impl ServeConfig {
    pub fn new(source: ModelSource, addr: SocketAddr) -> Self {
        Self {
            source,
            addr,
            limits: RequestLimits::default(),
            batcher: BatcherConfig::default(),
            connections: ConnectionLimits::default(),
            request_timeout: Duration::from_secs(10),
            admin_token: None,
            http: HttpSettings::default(),
        }
    }

    /// Refuses a configuration that would expose the admin route without a token, or a token
    /// nobody could send.
    fn check_admin_token(&self) -> Result<(), ServeError> {
        let refuse = |message: String| Err(ServeError::Setting { message });
        match &self.admin_token {
            None if !self.addr.ip().is_loopback() => refuse(format!(
                "{} is reachable from other machines, and /admin/reload would let anyone who \
                 reaches it swap the model: give an admin token (--admin-token or \
                 SEESAW_ADMIN_TOKEN), or bind to 127.0.0.1",
                self.addr
            )),
            Some(token) if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) => {
                refuse("the admin token must be non-empty printable ASCII without spaces".into())
            }
            _ => Ok(()),
        }
    }
}

struct AppState {
    /// The model new requests use; a request clones the Arc once and keeps it to the end.
    current: RwLock<Arc<LoadedModel>>,
    /// Where the current model came from, for a reload that names no directory.
    source: Mutex<ModelSource>,
    /// One reload at a time.
    reloading: tokio::sync::Mutex<()>,
    batcher: Batcher,
    metrics: Arc<Metrics>,
    limits: RequestLimits,
    device: Device,
    ready: AtomicBool,
    request_timeout: Duration,
    admin_token: Option<String>,
}

impl AppState {
    fn model(&self) -> Arc<LoadedModel> {
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn install(&self, model: LoadedModel, source: ModelSource) -> Arc<LoadedModel> {
        self.metrics.set_model(
            &model.version,
            &model.architecture,
            &model.dir.display().to_string(),
        );
        let model = Arc::new(model);
        *self.source.lock().unwrap_or_else(|e| e.into_inner()) = source;
        std::mem::replace(&mut *self.current.write().unwrap_or_else(|e| e.into_inner()), model)
    }
}

/// A server running on a tokio runtime: its address, and the means to reload and stop it.
pub struct RunningServer {
    pub addr: SocketAddr,
    state: Arc<AppState>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    workers: BatcherWorkers,
}

/// Loads the model, binds the address and starts serving in the background.
pub async fn start(config: ServeConfig) -> Result<RunningServer, ServeError> {
    config.check_admin_token()?;
    // The scoring workers already use every core; a product split onto a helper thread would
    // compete with them and with the connections (measured: 1 client p99 4.3 → 10.8 ms, 4 × 25/s
    // p99 11.8 → 18.3 ms; docs/performance.md).
    seesaw_models::set_helper_thread(false);
    let device = Device::flex();
    let source = config.source.clone();
    let load_device = device.clone();
    let model = tokio::task::spawn_blocking(move || LoadedModel::load(&source, &load_device))
        .await
        .expect("the model loader does not panic")?;
    let metrics = Arc::new(Metrics::new());
    metrics.set_model(&model.version, &model.architecture, &model.dir.display().to_string());
    let (batcher, workers) = Batcher::start(config.batcher, metrics.clone(), device.clone());
    let state = Arc::new(AppState {
        current: RwLock::new(Arc::new(model)),
        source: Mutex::new(config.source.clone()),
        reloading: tokio::sync::Mutex::new(()),
        batcher,
        metrics,
        limits: config.limits,
        device,
        ready: AtomicBool::new(true),
        request_timeout: config.request_timeout,
        admin_token: config.admin_token.clone(),
    });
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .map_err(|cause| ServeError::Io { context: format!("binding {}", config.addr), cause })?;
    let addr = listener
        .local_addr()
        .map_err(|cause| ServeError::Io { context: "reading the bound address".into(), cause })?;
    let mut connections = config.connections;
    if let Some(fit) = connections_that_fit()
        && fit < connections.max_connections
    {
        eprintln!(
            "seesaw serve: at most {fit} connections fit under this process's open-file limit; \
             serving that many instead of {}",
            connections.max_connections
        );
        connections.max_connections = fit.max(1);
    }
    let listener =
        LimitedListener::new(listener, connections, state.metrics.open_connections().clone());
    let (stop, stopped) = oneshot::channel::<()>();
    let app = router(state.clone());
    let http = config.http;
    let task = tokio::spawn(async move {
        let dropped = serve_http(listener, app, http, stopped).await;
        if dropped > 0 {
            eprintln!(
                "seesaw serve: {} connection(s) still open after the {} s grace period were \
                 dropped",
                dropped,
                http.shutdown_grace.as_secs_f64()
            );
        }
        Ok(())
    });
    Ok(RunningServer { addr, state, stop: Some(stop), task, workers })
}

impl RunningServer {
    /// The version of the model new requests are scored with.
    pub fn model_version(&self) -> String {
        self.state.model().version.clone()
    }

    /// Loads `dir` (or the current model's directory again) and swaps it in; on failure the
    /// current model stays.
    pub async fn reload(&self, dir: Option<std::path::PathBuf>) -> Result<ReloadReport, ApiError> {
        reload(&self.state, dir).await
    }

    /// Stops accepting connections, lets requests in flight finish (for at most the shutdown
    /// grace period), then stops the workers.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        self.state.ready.store(false, Ordering::SeqCst);
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let served = self.task.await.unwrap_or_else(|e| Err(std::io::Error::other(e)));
        // The router held the other references; with the state gone the queue closes and the
        // workers finish what is queued, then exit.
        drop(self.state);
        let workers = self.workers;
        let _ = tokio::task::spawn_blocking(move || workers.join()).await;
        served
    }
}

/// Runs until SIGTERM or Ctrl-C, reloading the model on SIGHUP; then shuts down gracefully.
pub async fn serve_until_signal(config: ServeConfig) -> Result<(), ServeError> {
    let server = start(config).await?;
    tracing::info!(addr = %server.addr, version = %server.model_version(), "serving");
    eprintln!(
        "seesaw serve: listening on http://{} (model {})",
        server.addr,
        server.model_version()
    );
    wait_for_stop_signal(&server).await;
    eprintln!("seesaw serve: shutting down; finishing requests in flight");
    server
        .shutdown()
        .await
        .map_err(|cause| ServeError::Io { context: "serving HTTP".into(), cause })
}

#[cfg(unix)]
async fn wait_for_stop_signal(server: &RunningServer) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut hangup)) =
        (signal(SignalKind::terminate()), signal(SignalKind::hangup()))
    else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    loop {
        tokio::select! {
            _ = term.recv() => return,
            _ = tokio::signal::ctrl_c() => return,
            _ = hangup.recv() => match server.reload(None).await {
                Ok(report) => eprintln!("seesaw serve: reloaded, now serving {}", report.model_version),
                Err(e) => eprintln!("seesaw serve: reload failed, still serving the old model: {}", e.message),
            },
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_stop_signal(_server: &RunningServer) {
    let _ = tokio::signal::ctrl_c().await;
}

fn router(state: Arc<AppState>) -> Router {
    let body_limit = state.limits.max_body_bytes;
    Router::new()
        .route("/v1/score", post(score))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route("/admin/reload", post(admin_reload))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// Counts every answer by route and status and times it, whatever route answered (unknown
/// paths are counted as one route, `unmatched`, so a scanner cannot grow the label set).
async fn observe(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |path| path.as_str().to_string());
    let response = next.run(request).await;
    state.metrics.observe_request(
        &route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

async fn score(
    State(state): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let answer = score_request(&state, body).await?;
    let content_type = [(axum::http::header::CONTENT_TYPE, "application/json")];
    Ok((content_type, answer.to_json()).into_response())
}

async fn score_request(
    state: &AppState,
    body: Result<Bytes, BytesRejection>,
) -> Result<ScoreResponse, ApiError> {
    let body = body.map_err(|rejection| body_error(rejection, state.limits.max_body_bytes))?;
    let request = request::decode(&body, &state.limits)?;
    let model = state.model();
    let fusion = model.fusion_for(&request)?;
    let returned = ReturnedScores::for_request(&model, &request)?;
    let encoded = model.encode(&request)?;
    let answer = state.batcher.submit(model.clone(), encoded)?;
    let predictions = match tokio::time::timeout(state.request_timeout, answer).await {
        Ok(Ok(result)) => result?,
        Ok(Err(_)) => return Err(ApiError::internal("the scoring worker stopped")),
        Err(_) => {
            return Err(ApiError::overloaded(format!(
                "no scores within {} ms; the server is overloaded",
                state.request_timeout.as_millis()
            )));
        }
    };
    Ok(ScoreResponse::build(&model, request, &fusion, returned, predictions))
}

fn body_error(rejection: BytesRejection, limit: usize) -> ApiError {
    if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::body_too_large(None, limit)
    } else {
        ApiError::new(rejection.status().as_u16(), "unreadable_body", rejection.body_text())
    }
}

async fn healthz() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({"status": "ok"}))
}

#[derive(Serialize)]
struct Readiness {
    status: &'static str,
    model_version: String,
    architecture: String,
    model_dir: String,
    tasks: Vec<String>,
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    let model = state.model();
    let ready = state.ready.load(Ordering::SeqCst);
    let body = Readiness {
        status: if ready { "ready" } else { "shutting_down" },
        model_version: model.version.clone(),
        architecture: model.architecture.clone(),
        model_dir: model.dir.display().to_string(),
        tasks: model.task_names.to_vec(),
    };
    let mut response = axum::Json(body).into_response();
    if !ready {
        *response.status_mut() = axum::http::StatusCode::SERVICE_UNAVAILABLE;
    }
    response
}

async fn metrics_text(State(state): State<Arc<AppState>>) -> Response {
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], state.metrics.render()).into_response()
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReloadRequest {
    /// A model directory; absent: the current model's directory, read again.
    #[serde(default)]
    model: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReloadReport {
    pub model_version: String,
    pub previous_version: String,
    pub model_dir: String,
    pub load_seconds: f64,
}

async fn admin_reload(
    State(state): State<Arc<AppState>>,
    headers: axum::http::HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<axum::Json<ReloadReport>, ApiError> {
    authorise_admin(&state, &headers)?;
    let body = body.map_err(|rejection| body_error(rejection, state.limits.max_body_bytes))?;
    let request: ReloadRequest = if body.iter().all(u8::is_ascii_whitespace) {
        ReloadRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::bad_request(
                "invalid_request",
                format!("reload body: {e}; send {{\"model\": \"DIR\"}} or nothing"),
            )
        })?
    };
    reload(&state, request.model).await.map(axum::Json)
}

/// With a token set, the request must carry `Authorization: Bearer <token>`.
fn authorise_admin(state: &AppState, headers: &axum::http::HeaderMap) -> Result<(), ApiError> {
    let Some(token) = &state.admin_token else { return Ok(()) };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(given) if same_secret(given.trim().as_bytes(), token.as_bytes()) => Ok(()),
        _ => Err(ApiError::new(
            401,
            "unauthorised",
            "the admin routes need the header `Authorization: Bearer <admin token>`",
        )),
    }
}

/// Compares without stopping at the first differing byte, so that the time taken does not tell
/// an attacker how much of a guess was right.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn reload(
    state: &Arc<AppState>,
    dir: Option<std::path::PathBuf>,
) -> Result<ReloadReport, ApiError> {
    let _one_at_a_time = state.reloading.lock().await;
    let started = Instant::now();
    let mut source = state.source.lock().unwrap_or_else(|e| e.into_inner()).clone();
    if let Some(dir) = dir {
        source.dir = dir;
    }
    let device = state.device.clone();
    let load_source = source.clone();
    let loaded = tokio::task::spawn_blocking(move || LoadedModel::load(&load_source, &device))
        .await
        .map_err(|_| ApiError::internal("the model loader panicked"))?;
    let model = match loaded {
        Ok(model) => model,
        Err(e) => {
            state.metrics.observe_reload(false);
            return Err(ApiError::unprocessable(
                "reload_failed",
                format!("{e}; still serving the previous model"),
            ));
        }
    };
    let report_dir = model.dir.display().to_string();
    let version = model.version.clone();
    let previous = state.install(model, source);
    state.metrics.observe_reload(true);
    tracing::info!(from = %previous.version, to = %version, "model reloaded");
    Ok(ReloadReport {
        model_version: version,
        previous_version: previous.version.clone(),
        model_dir: report_dir,
        load_seconds: started.elapsed().as_secs_f64(),
    })
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        404,
        "not_found",
        format!(
            "no route {uri}; routes: POST /v1/score, GET /healthz, GET /readyz, GET /metrics, POST /admin/reload"
        ),
    )
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(405, "method_not_allowed", format!("{method} is not allowed on {uri}"))
}
