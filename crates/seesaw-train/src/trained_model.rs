//! A trained model directory as the trainer writes it: `seesaw_models::model_dir` with the run's
//! record (its resolved config, history and held-out evaluation) in the manifest and the config
//! beside it as `config.toml`, so the run can be repeated exactly.

use std::path::Path;

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use seesaw_data::feature_map::FeatureMap;
use seesaw_models::MultiTaskModel;
use seesaw_models::model_dir::{self, MANIFEST_VERSION, Manifest};

use crate::error::Result;
use crate::evaluate::Evaluation;
use crate::history::EpochRecord;
use crate::run_config::RunConfig;

pub const CONFIG_FILE: &str = "config.toml";

/// What the trainer records about a run in the manifest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainingRecord {
    pub config: RunConfig,
    pub history: Vec<EpochRecord>,
    pub best_epoch: usize,
    /// Metrics on the split's test part (or validation part when there is no test part).
    pub evaluation: Evaluation,
    pub evaluated_on: String,
}

pub type TrainedManifest = Manifest<TrainingRecord>;

/// The manifest of `model` trained with `record.config` on data fitted into `feature_map`.
pub fn manifest(
    model: &MultiTaskModel,
    feature_map: FeatureMap,
    record: TrainingRecord,
) -> TrainedManifest {
    Manifest {
        format_version: MANIFEST_VERSION,
        seesaw_version: env!("CARGO_PKG_VERSION").into(),
        burn_version: "0.22".into(),
        architecture: record.config.model.architecture.name().into(),
        num_params: model.num_params(),
        model: record.config.model.clone(),
        feature_map,
        fusion: record.config.fusion.clone(),
        training: record,
    }
}

pub fn save(dir: &Path, manifest: &TrainedManifest, model: &MultiTaskModel) -> Result<()> {
    let config = manifest.training.config.to_toml().into_bytes();
    model_dir::save(dir, manifest, model, &[(CONFIG_FILE, config)])?;
    Ok(())
}

pub fn load(dir: &Path, device: &Device) -> Result<(TrainedManifest, MultiTaskModel)> {
    Ok(model_dir::load(dir, device)?)
}
