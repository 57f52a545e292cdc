//! A trained model on disk: weights, the fitted feature map, the resolved run config and the
//! training metrics, written into a temporary directory and renamed into place, so a failed run
//! never leaves a half-written model behind.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use seesaw_data::feature_map::FeatureMap;
use seesaw_models::MultiTaskModel;

use crate::error::{Result, TrainError};
use crate::evaluate::Evaluation;
use crate::history::EpochRecord;
use crate::run_config::RunConfig;

pub const MANIFEST_FILE: &str = "manifest.json";
pub const WEIGHTS_FILE: &str = "model.bpk";
pub const CONFIG_FILE: &str = "config.toml";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    pub seesaw_version: String,
    pub burn_version: String,
    pub architecture: String,
    pub num_params: usize,
    pub config: RunConfig,
    pub feature_map: FeatureMap,
    pub history: Vec<EpochRecord>,
    pub best_epoch: usize,
    /// Metrics on the split's test part (or validation part when there is no test part).
    pub evaluation: Evaluation,
    pub evaluated_on: String,
}

pub const MANIFEST_VERSION: u32 = 1;

pub fn save(dir: &Path, manifest: &Manifest, model: &MultiTaskModel) -> Result<()> {
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(|e| io(&parent, e))?;
    let staging = tempfile::Builder::new()
        .prefix(".seesaw-model-")
        .tempdir_in(&parent)
        .map_err(|e| io(&parent, e))?;
    model.save(staging.path().join(WEIGHTS_FILE))?;
    let json = serde_json::to_vec_pretty(manifest).expect("a manifest serialises");
    std::fs::write(staging.path().join(MANIFEST_FILE), json).map_err(|e| io(staging.path(), e))?;
    std::fs::write(staging.path().join(CONFIG_FILE), manifest.config.to_toml())
        .map_err(|e| io(staging.path(), e))?;
    // Training logs written during the run (metrics.jsonl, checkpoint/) stay where they are.
    if dir.join(MANIFEST_FILE).exists() || dir.join(WEIGHTS_FILE).exists() {
        for name in [MANIFEST_FILE, WEIGHTS_FILE, CONFIG_FILE] {
            std::fs::rename(staging.path().join(name), dir.join(name)).map_err(|e| io(dir, e))?;
        }
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    // Weights first, manifest last: a directory with a manifest is complete.
    for name in [WEIGHTS_FILE, CONFIG_FILE, MANIFEST_FILE] {
        std::fs::rename(staging.path().join(name), dir.join(name)).map_err(|e| io(dir, e))?;
    }
    Ok(())
}

pub fn load(dir: &Path, device: &Device) -> Result<(Manifest, MultiTaskModel)> {
    let manifest = read_manifest(dir)?;
    let schema = manifest.feature_map.schema();
    let model = MultiTaskModel::load(
        &manifest.config.model,
        &schema,
        &manifest.feature_map.tasks,
        dir.join(WEIGHTS_FILE),
        device,
    )?;
    Ok((manifest, model))
}

/// The manifest of the model in `dir`, checked for its format version; the weights are not read.
pub fn read_manifest(dir: &Path) -> Result<Manifest> {
    let path = dir.join(MANIFEST_FILE);
    let bytes = std::fs::read(&path).map_err(|e| io(&path, e))?;
    let manifest: Manifest = serde_json::from_slice(&bytes)
        .map_err(|e| TrainError::Checkpoint { path: path.clone(), message: e.to_string() })?;
    if manifest.format_version != MANIFEST_VERSION {
        return Err(TrainError::Checkpoint {
            path,
            message: format!(
                "manifest version {} is not the supported {MANIFEST_VERSION}",
                manifest.format_version
            ),
        });
    }
    Ok(manifest)
}

fn io(path: &Path, e: impl std::fmt::Display) -> TrainError {
    TrainError::Checkpoint { path: path.to_owned(), message: e.to_string() }
}
