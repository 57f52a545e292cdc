use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Data(#[from] seesaw_data::DataError),
    #[error(transparent)]
    Sim(#[from] seesaw_sim::SimError),
    #[error(transparent)]
    Model(#[from] seesaw_models::ModelError),
    #[error(transparent)]
    Metric(#[from] seesaw_metrics::MetricError),
    #[error("{path}: {message}", path = .path.display())]
    Checkpoint { path: PathBuf, message: String },
    #[error("training config: {0}")]
    Config(String),
    #[error("training diverged: task '{task}' has a non-finite loss at epoch {epoch}, step {step}")]
    Diverged { task: String, epoch: usize, step: usize },
}

pub type Result<T, E = TrainError> = std::result::Result<T, E>;
