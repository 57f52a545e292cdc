//! A trained model on disk: the weights, the manifest (model config, fitted feature map, fusion,
//! and whatever the trainer records about the run), the model's fitted state when it has one, and
//! any files the caller adds (the resolved run config). Written into a temporary directory and
//! renamed into place, so a failed run never leaves a half-written model behind.
//!
//! The server reads a model directory through this module alone; it never needs the trainer.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use seesaw_data::feature_map::FeatureMap;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::config::ModelConfig;
use crate::context::{FittedState, ModelContext};
use crate::error::{ModelError, Result};
use crate::fusion::FusionConfig;
use crate::model::MultiTaskModel;

pub const MANIFEST_FILE: &str = "manifest.json";
pub const WEIGHTS_FILE: &str = "model.bpk";
pub const FITTED_STATE_FILE: &str = "fitted_state.json";

/// Version 2: the model contract (model config and fusion at the top level, the trainer's
/// record under `training`, fitted state beside the weights). Version 1 directories were written
/// before it and are refused with a message to retrain.
pub const MANIFEST_VERSION: u32 = 2;

/// `T`: what the trainer records about the run (its config, history, evaluation). Readers that do
/// not need it (the server) read it as `serde_json::Value`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest<T = serde_json::Value> {
    pub format_version: u32,
    pub seesaw_version: String,
    pub burn_version: String,
    pub architecture: String,
    pub num_params: usize,
    pub model: ModelConfig,
    pub feature_map: FeatureMap,
    /// The fusion the server uses by default; `None`: `FusionConfig::default_for` the tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fusion: Option<FusionConfig>,
    pub training: T,
}

impl<T> Manifest<T> {
    /// The context the model is built in: the feature map's schema, tasks and clips, and the
    /// fitted state.
    pub fn context(&self, fitted: Option<FittedState>) -> ModelContext {
        ModelContext::from_feature_map(&self.model, &self.feature_map).with_fitted(fitted)
    }
}

/// Writes `dir` with the model's weights, fitted state and manifest, plus `extra_files` (name,
/// content). Files of an earlier model in `dir` are replaced; other files there (training logs,
/// checkpoints) stay.
pub fn save<T: Serialize>(
    dir: &Path,
    manifest: &Manifest<T>,
    model: &MultiTaskModel,
    extra_files: &[(&str, Vec<u8>)],
) -> Result<()> {
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(|e| io(&parent, e))?;
    // The staging folder is named after the model directory, so that the folder of a save that
    // was killed (a kill skips the temporary folder's own cleanup) is found and removed by the
    // next save of the same model.
    let prefix = staging_prefix(dir);
    seesaw_data::atomic::remove_leftovers(&parent, &prefix).map_err(|e| ModelError::Write {
        path: parent.clone(),
        source: std::io::Error::other(e),
    })?;
    let staging = seesaw_data::atomic::temp_dir_in(&parent, &prefix).map_err(|e| io(&parent, e))?;
    model.save(staging.path().join(WEIGHTS_FILE))?;
    let mut files = vec![WEIGHTS_FILE.to_string()];
    if let Some(fitted) = &model.fitted {
        let json = serde_json::to_vec(fitted).expect("a fitted state serialises");
        std::fs::write(staging.path().join(FITTED_STATE_FILE), json)
            .map_err(|e| io(staging.path(), e))?;
        files.push(FITTED_STATE_FILE.into());
    }
    for (name, bytes) in extra_files {
        std::fs::write(staging.path().join(name), bytes).map_err(|e| io(staging.path(), e))?;
        files.push(name.to_string());
    }
    let json = serde_json::to_vec_pretty(manifest).expect("a manifest serialises");
    std::fs::write(staging.path().join(MANIFEST_FILE), json).map_err(|e| io(staging.path(), e))?;
    // The manifest goes last: a directory with a manifest is complete.
    files.push(MANIFEST_FILE.into());
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    if model.fitted.is_none() {
        // An earlier model's fitted state must not be read with these weights.
        match std::fs::remove_file(dir.join(FITTED_STATE_FILE)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(dir, e)),
            _ => {}
        }
    }
    // An earlier model's manifest goes first, so that a kill among the renames leaves a
    // directory without a manifest (refused as incomplete) rather than new weights under the old
    // manifest.
    match std::fs::remove_file(dir.join(MANIFEST_FILE)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(dir, e)),
        _ => {}
    }
    seesaw_data::fault::point("model:staged");
    for name in &files {
        std::fs::rename(staging.path().join(name), dir.join(name)).map_err(|e| io(dir, e))?;
        seesaw_data::fault::point("model:renamed");
    }
    Ok(())
}

/// `.<model dir name>.staging-`: the prefix of the model's staging folders beside it.
fn staging_prefix(dir: &Path) -> String {
    let name = dir.file_name().map_or_else(|| "model".into(), |n| n.to_string_lossy());
    format!(".{name}.staging-")
}

/// The manifest and the model of `dir`.
pub fn load<T: DeserializeOwned>(
    dir: &Path,
    device: &Device,
) -> Result<(Manifest<T>, MultiTaskModel)> {
    let manifest: Manifest<T> = read_manifest(dir)?;
    let fitted = read_fitted_state(dir)?;
    let model = MultiTaskModel::load(
        &manifest.model,
        &manifest.context(fitted),
        dir.join(WEIGHTS_FILE),
        device,
    )?;
    Ok((manifest, model))
}

/// The fitted state saved in `dir`, if any.
pub fn read_fitted_state(dir: &Path) -> Result<Option<FittedState>> {
    let path = dir.join(FITTED_STATE_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| ModelError::Record { path, message: e.to_string() }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ModelError::Read { path, source }),
    }
}

/// The manifest of the model in `dir`, checked for its format version; the weights are not read.
pub fn read_manifest<T: DeserializeOwned>(dir: &Path) -> Result<Manifest<T>> {
    let path = dir.join(MANIFEST_FILE);
    let bytes =
        std::fs::read(&path).map_err(|source| ModelError::Read { path: path.clone(), source })?;
    #[derive(Deserialize)]
    struct Version {
        format_version: u32,
    }
    let version: Version = serde_json::from_slice(&bytes)
        .map_err(|e| ModelError::Record { path: path.clone(), message: e.to_string() })?;
    if version.format_version != MANIFEST_VERSION {
        return Err(ModelError::Record {
            path,
            message: format!(
                "manifest version {} is not the supported {MANIFEST_VERSION}: this model directory \
                 was written by another version of Seesaw; retrain it with `seesaw train`",
                version.format_version
            ),
        });
    }
    serde_json::from_slice(&bytes).map_err(|e| ModelError::Record { path, message: e.to_string() })
}

fn io(path: &Path, source: std::io::Error) -> ModelError {
    ModelError::Write { path: path.to_owned(), source }
}
