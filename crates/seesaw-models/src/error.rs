//! Typed errors of the model zoo: a config that cannot be built, or a model file that cannot be
//! written or read. IO errors carry the path so the binary can report it without guessing.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("invalid model config: {0}")]
    InvalidConfig(String),
    #[error("cannot write model file {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read model file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("model record error for {path}: {message}")]
    Record { path: PathBuf, message: String },
}

pub type Result<T> = std::result::Result<T, ModelError>;

/// Shorthand for `Err(ModelError::InvalidConfig(..))`.
pub(crate) fn invalid<T>(message: impl Into<String>) -> Result<T> {
    Err(ModelError::InvalidConfig(message.into()))
}
