//! The multi-task model zoo. Every model maps the same `ModelInput` (built from a
//! `seesaw_data::batch::Batch`) to the same `TaskOutputs`, so the trainer, evaluator and server
//! never branch on the model kind.
//!
//! Layout: `blocks` holds the reusable pieces (input embedding, MLP, expert bank, gate,
//! cross-stitch unit, tower), `models` one file per architecture, and `model` the
//! `MultiTaskModel` that dispatches to the architecture chosen in `ModelConfig`.

pub mod blocks;
pub mod config;
pub mod error;
pub mod input;
pub mod model;
pub mod models;
pub mod outputs;
pub mod shared;

pub use burn::tensor::{Device, Int, Tensor};
pub use config::{Architecture, ModelConfig, RegressionHead};
pub use error::ModelError;
pub use input::ModelInput;
pub use model::MultiTaskModel;
pub use outputs::{GateWeights, TaskOutputs};
pub use shared::SharedSlots;
