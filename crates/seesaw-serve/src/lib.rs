//! `seesaw serve`: scores candidate videos for a user with a trained model directory and fuses
//! the task scores into one ranking.
//!
//! A request is decoded (`request`), encoded through the model's saved feature map
//! (`loaded_model`), queued (`job_queue`) and scored together with concurrent requests
//! (`batcher`), and answered best first (`response`). `server` holds the routes, reload and
//! shutdown; `connections` bounds how many clients may hold a connection and for how long idle;
//! `http` runs the connections (a deadline for each request head, a bounded grace at shutdown);
//! `metrics` is what Prometheus scrapes. `client` and `loadgen` drive a server from tests and
//! `seesaw bench serve`.

pub mod batcher;
pub mod client;
pub mod connections;
pub mod error;
pub mod http;
pub mod job_queue;
pub mod loaded_model;
pub mod loadgen;
pub mod metrics;
pub mod request;
pub mod response;
pub mod server;
pub mod video_index;

pub use error::{ApiError, ServeError};
pub use loaded_model::{LoadedModel, ModelSource};
pub use request::RequestLimits;
pub use server::{RunningServer, ServeConfig, serve_until_signal, start};
