//! Training and evaluation of the model zoo: masked multi-task losses, task weighting, the
//! optimiser and its schedule, early stopping, atomic checkpoints with resume, and per-task
//! metrics computed with seesaw-metrics' exact definitions.

pub mod checkpoint;
pub mod clip_curve;
pub mod cmi_estimate;
pub mod cmi_report;
pub mod collective;
pub mod compare;
pub mod config;
pub mod data_parallel;
pub mod emotion;
pub mod error;
pub mod evaluate;
pub mod gathered_scores;
pub mod history;
pub mod launcher;
pub mod lazy_adam;
#[cfg(feature = "distributed")]
pub mod mpi_ranks;
pub mod plots;
pub mod png;
pub mod rank_watchdog;
pub mod report;
pub mod run_config;
pub mod run_data;
pub mod schedule;
pub mod skip_study;
pub mod task_gradients;
pub mod trained_model;
pub mod trainer;
pub mod weighting;

pub use config::TrainConfig;
pub use error::{Result, TrainError};
pub use evaluate::{Evaluation, TaskMetrics, evaluate};
pub use gathered_scores::evaluate_on_ranks;
pub use history::EpochRecord;
pub use trainer::{TrainObserver, TrainOutcome, train, train_on_ranks};
