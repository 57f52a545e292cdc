//! The model contract. Every model, from logistic regression to FRAME, is one file with:
//!
//! - a config (`XxxConfig`: serde, `validate`, `init`) that implements [`ArchitectureConfig`],
//!   optionally `fit`, which learns state from the training batches before the first step, and
//!   `extra_scores`, the named scores the model adds (known from the config, so that a fusion
//!   can be checked before any training);
//! - a burn `Module` that implements [`TaskModel`]: `forward` from a [`ModelInput`] to
//!   [`ModelOutputs`], and optionally `loss` (auxiliary terms).
//!
//! plus one line in the registry (`crate::registry`). The trainer, evaluator, compare report and
//! server only ever see `MultiTaskModel`, so they never branch on the model kind.

use std::fmt::Debug;

use burn::tensor::Device;
use seesaw_data::batch::Batch;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::context::{FittedState, ModelContext};
use crate::error::Result;
use crate::input::ModelInput;
use crate::loss::LossTerms;
use crate::outputs::{ExtraScore, ModelOutputs};
use crate::targets::ModelTargets;

/// The config of one architecture: the fields of its `architecture = { kind = "...", ... }`
/// table (the `kind` tag is the registry's).
pub trait ArchitectureConfig: Debug + Clone + PartialEq + Serialize + DeserializeOwned {
    type Model: TaskModel;

    /// Refuses settings that cannot be built, naming the field at fault.
    fn validate(&self) -> Result<()>;

    /// State learned from the training batches before the first step (see `FittedState`); most
    /// models learn none.
    fn fit(
        &self,
        _context: &ModelContext,
        _train: &mut dyn Iterator<Item = Batch>,
    ) -> Result<Option<FittedState>> {
        Ok(None)
    }

    /// A freshly initialised model; `context.fitted` holds what `fit` returned.
    fn init(&self, context: &ModelContext, device: &Device) -> Result<Self::Model>;

    /// How reports and compare name this architecture: its kind, unless it wraps another
    /// (`dlen-mmoe`).
    fn label(&self, kind: &str) -> String {
        kind.to_string()
    }

    /// The named extra scores the model's `forward` returns in `ModelOutputs::extras`, in that
    /// order.
    fn extra_scores(&self) -> Vec<ExtraScore> {
        Vec::new()
    }
}

/// What a built model does.
pub trait TaskModel {
    fn forward(&self, input: &ModelInput) -> ModelOutputs;

    /// The loss terms of `outputs` (this model's forward) against `targets`: by default the
    /// masked per-task losses and no auxiliary term.
    fn loss(&self, outputs: &ModelOutputs, targets: &ModelTargets) -> LossTerms {
        LossTerms::per_task(outputs, targets)
    }

    /// The width of the shared representation h that `forward` returns in
    /// `ModelOutputs::shared` when asked; `None` for models without one (logistic regression,
    /// single-task). Models built on top of another (DLEN) size their own layers from it.
    fn shared_dim(&self) -> Option<usize> {
        None
    }
}
