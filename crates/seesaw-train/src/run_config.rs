//! One TOML file for a whole run: the dataset spec, the model, the training settings and, for
//! `seesaw compare`, the architectures and seeds. Relative paths resolve against the file.

use std::path::Path;

use serde::{Deserialize, Serialize};

use seesaw_data::spec::DatasetSpec;
use seesaw_models::fusion::FusionConfig;
use seesaw_models::{Architecture, ModelConfig};

use crate::cmi_estimate::CompareCmi;
use crate::config::TrainConfig;
use crate::error::{Result, TrainError};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// When present, the platform is simulated first and the dataset's files are the
    /// simulator's (the `kuairand` layout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub simulator: Option<seesaw_sim::SimConfig>,
    pub dataset: DatasetSpec,
    #[serde(default)]
    pub model: ModelConfig,
    #[serde(default)]
    pub train: TrainConfig,
    #[serde(default)]
    pub compare: CompareConfig,
    /// How `seesaw serve` fuses task scores into one ranking score; absent: every positive task
    /// weighted 1, negative tasks demoting (`FusionConfig::default_for`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fusion: Option<FusionConfig>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CompareConfig {
    /// Architectures to compare; every one by default. The single-task model is always trained:
    /// gains are measured from it.
    pub architectures: Vec<Architecture>,
    pub seeds: Vec<u64>,
    /// The CMI matrix of every run with a shared representation (on by default).
    pub cmi_matrix: CompareCmi,
}

impl Default for CompareConfig {
    fn default() -> Self {
        Self {
            architectures: Architecture::default_set(),
            seeds: vec![0, 1, 2],
            cmi_matrix: CompareCmi::default(),
        }
    }
}

impl RunConfig {
    pub fn from_toml_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| TrainError::Config(format!("{}: {e}", path.display())))?;
        Self::from_toml_str(&text, path)
    }

    /// Parses `text` as if read from `path` (relative paths resolve against its directory).
    pub fn from_toml_str(text: &str, path: &Path) -> Result<Self> {
        let mut table: toml::Table = toml::from_str(text)
            .map_err(|e| TrainError::Config(format!("{}: {e}", path.display())))?;
        let dataset = table
            .remove("dataset")
            .and_then(|v| v.as_table().cloned())
            .ok_or_else(|| TrainError::Config(format!("{}: no [dataset] table", path.display())))?;
        let mut dataset = DatasetSpec::from_toml_table(dataset)
            .map_err(|e| TrainError::Config(format!("{}: {e}", path.display())))?;
        dataset.resolve_paths(path.parent().unwrap_or(Path::new(".")));
        let rest: RestOfConfig = table
            .try_into()
            .map_err(|e: toml::de::Error| TrainError::Config(format!("{}: {e}", path.display())))?;
        let config = RunConfig {
            simulator: rest.simulator,
            dataset,
            model: rest.model,
            train: rest.train,
            compare: rest.compare,
            fusion: rest.fusion,
        };
        config.train.validate()?;
        Ok(config)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("a run config serialises to TOML")
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RestOfConfig {
    #[serde(default)]
    simulator: Option<seesaw_sim::SimConfig>,
    #[serde(default)]
    model: ModelConfig,
    #[serde(default)]
    train: TrainConfig,
    #[serde(default)]
    compare: CompareConfig,
    #[serde(default)]
    fusion: Option<FusionConfig>,
}
