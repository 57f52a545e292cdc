//! The simulator's errors: a setting it refuses, or a file it could not write.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A setting out of range; the message names the setting.
    #[error("{0}")]
    Config(String),

    #[error("{path}: {source}", path = .path.display())]
    Io { path: PathBuf, source: std::io::Error },

    #[error("{path}: {message}", path = .path.display())]
    Json { path: PathBuf, message: String },

    /// An Arrow record batch that could not be assembled.
    #[error("simulator batch: {0}")]
    Batch(String),
}

impl SimError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }
}

pub type Result<T, E = SimError> = std::result::Result<T, E>;
