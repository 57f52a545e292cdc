//! The multi-task model zoo and the contract every model implements (see `contract`): each
//! model maps the same `ModelInput` to the same kind of `ModelOutputs` and states its own loss
//! terms, so the trainer, evaluator and server never branch on the model kind.
//!
//! Layout: `contract` (the traits), `context`/`input`/`outputs`/`targets`/`loss` (what crosses
//! the contract), `registry` (every architecture, once), `models` (one file per architecture with
//! its config), `blocks` (embedding, MLP, expert bank, gate, cross-stitch unit, tower), `rows`
//! (the input split by row groups for serving), `model` (`MultiTaskModel`, what callers hold),
//! `model_dir` (a trained model on disk) and `fusion` (task scores into one ranking score).

pub mod blocks;
pub mod cmi;
pub mod config;
pub mod context;
pub mod contract;
pub mod error;
pub mod fusion;
pub mod heads;
pub mod input;
pub mod joined_tables;
pub mod label_rules;
pub mod loss;
pub mod model;
pub mod model_dir;
pub mod models;
pub mod outputs;
pub mod registry;
pub mod row_halves;
pub mod rows;
pub mod shared_products;
pub mod split_weights;
pub mod targets;
pub mod varying_projections;

pub use burn::tensor::{Device, Int, Tensor};
/// Whether a large matrix product or element-wise pass does half of its work on a helper thread
/// (on by default; the vendored burn-flex patch, `vendor/README.md`). Bit for bit the same
/// result.
pub use burn_flex::ops::helper_thread::{helper_available, set_helper_thread, side_by_side};
pub use config::{ModelConfig, RegressionHead};
pub use context::{ClipShape, FittedState, ModelContext};
pub use contract::{ArchitectureConfig, TaskModel};
pub use error::ModelError;
pub use input::ModelInput;
pub use loss::LossTerms;
pub use model::MultiTaskModel;
pub use outputs::{ExtraScore, GateWeights, ModelOutputs, OutputKind, TaskOutput};
pub use registry::{Architecture, Network};
pub use rows::SharedSlots;
pub use targets::ModelTargets;

/// Converts a [B, 1] (or any) float tensor to its values.
pub fn to_vec<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor.into_data().try_to_vec().expect("model outputs are f32")
}
