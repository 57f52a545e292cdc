//! `seesaw serve --model DIR [--addr 127.0.0.1:8080]`: the HTTP ranking service. See
//! seesaw-serve for the routes; SIGTERM or Ctrl-C stops it after the requests in flight, SIGHUP
//! (or `POST /admin/reload`) reloads the model without a restart.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;

use seesaw_serve::batcher::BatcherConfig;
use seesaw_serve::connections::ConnectionLimits;
use seesaw_serve::http::HttpSettings;
use seesaw_serve::{ModelSource, RequestLimits, ServeConfig};

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// A model directory written by `seesaw train`.
    #[arg(long)]
    pub model: PathBuf,
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// User attributes; default: the table recorded in the model's manifest.
    #[arg(long)]
    pub users: Option<PathBuf>,
    /// Video attributes; default: the table recorded in the model's manifest.
    #[arg(long)]
    pub videos: Option<PathBuf>,
    /// The bearer token `POST /admin/reload` requires (`Authorization: Bearer TOKEN`); required
    /// when --addr is not loopback. Prefer the environment variable: a command line is visible
    /// to every user of the machine.
    #[arg(long, env = "SEESAW_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    #[command(flatten)]
    pub tuning: ServeTuning,
}

/// Limits and batching, shared with `seesaw bench serve`.
#[derive(Args, Debug, Clone)]
pub struct ServeTuning {
    /// Most candidates one request may carry.
    #[arg(long, default_value_t = RequestLimits::default().max_candidates, value_parser = at_least_one)]
    pub max_candidates: usize,
    /// Largest request body, in bytes.
    #[arg(long, default_value_t = RequestLimits::default().max_body_bytes, value_parser = at_least_one)]
    pub max_body_bytes: usize,
    /// Requests that may wait to be scored; beyond that the server answers 503.
    #[arg(long, default_value_t = BatcherConfig::default().queue_capacity, value_parser = at_least_one)]
    pub queue: usize,
    /// Rows at which a model call takes no more requests and is scored without waiting for
    /// more; the requests behind it go to the other workers.
    #[arg(long, default_value_t = BatcherConfig::default().max_batch_rows, value_parser = at_least_one)]
    pub max_batch_rows: usize,
    /// How long, in microseconds, a batch waits for more requests after its first.
    #[arg(long, default_value_t = BatcherConfig::default().max_wait.as_micros() as u64)]
    pub max_wait_us: u64,
    /// A request of at least this many candidates, taken while another worker is idle, is
    /// scored in two halves side by side (0: never split).
    #[arg(long, default_value_t = BatcherConfig::default().split_rows)]
    pub split_rows: usize,
    /// Pin each scoring worker to a core of its own (when there are as many cores as workers);
    /// `--pin-workers false` leaves placement to the kernel.
    #[arg(long, default_value_t = BatcherConfig::default().pin_workers, action = clap::ArgAction::Set)]
    pub pin_workers: bool,
    /// Threads running the model (default: one per core).
    #[arg(long, default_value_t = BatcherConfig::default().workers, value_parser = at_least_one)]
    pub workers: usize,
    /// A request not scored within this many milliseconds is answered 503 (at least 1: with 0
    /// every request would be turned away as overloaded).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout_ms: u64,
    /// Client connections open at once; further clients wait to be accepted.
    #[arg(long, default_value_t = ConnectionLimits::default().max_connections, value_parser = at_least_one)]
    pub max_connections: usize,
    /// Seconds a connection may sit without sending or taking a byte before it is closed.
    #[arg(
        long,
        default_value_t = ConnectionLimits::default().idle_timeout.as_secs(),
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub idle_timeout_s: u64,
    /// Seconds a client may take to send a request head, from its first byte to its last;
    /// slower clients are disconnected (one byte a second would otherwise hold a connection
    /// forever, since it is never idle).
    #[arg(
        long,
        default_value_t = HttpSettings::default().header_timeout.as_secs(),
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub header_timeout_s: u64,
    /// Seconds the server waits at shutdown for requests in flight before it drops the
    /// connections still open.
    #[arg(long, default_value_t = HttpSettings::default().shutdown_grace.as_secs())]
    pub shutdown_grace_s: u64,
}

/// A count that must be at least 1: zero workers, connections or candidates would serve nothing.
fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

impl ServeTuning {
    pub fn apply(&self, config: &mut ServeConfig) {
        config.limits = RequestLimits {
            max_candidates: self.max_candidates,
            max_body_bytes: self.max_body_bytes,
        };
        config.batcher = BatcherConfig {
            queue_capacity: self.queue,
            max_batch_rows: self.max_batch_rows,
            max_wait: Duration::from_micros(self.max_wait_us),
            workers: self.workers,
            split_rows: self.split_rows,
            pin_workers: self.pin_workers,
        };
        config.request_timeout = Duration::from_millis(self.timeout_ms);
        config.connections = ConnectionLimits {
            max_connections: self.max_connections,
            idle_timeout: Duration::from_secs(self.idle_timeout_s),
        };
        config.http = HttpSettings {
            header_timeout: Duration::from_secs(self.header_timeout_s),
            shutdown_grace: Duration::from_secs(self.shutdown_grace_s),
        };
    }
}

pub fn run(args: ServeArgs) -> Result<()> {
    let source = ModelSource { dir: args.model.clone(), users: args.users, videos: args.videos };
    let mut config = ServeConfig::new(source, args.addr);
    config.admin_token = args.admin_token;
    args.tuning.apply(&mut config);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("seesaw-http")
        .build()
        .context("starting the async runtime")?;
    runtime
        .block_on(seesaw_serve::serve_until_signal(config))
        .with_context(|| format!("serving {}", args.model.display()))
}
