//! One TOML file for a whole run: the dataset spec, the model, the training settings and, for
//! `seesaw compare`, the architectures and seeds. Relative paths resolve against the file.

use std::path::Path;

use serde::{Deserialize, Serialize};

use seesaw_data::spec::DatasetSpec;
use seesaw_models::cmi::CmiConfig;
use seesaw_models::fusion::FusionConfig;
use seesaw_models::{Architecture, ModelConfig};

use crate::cmi_estimate::CompareCmi;
use crate::config::TrainConfig;
use crate::error::{Result, TrainError};
use crate::weighting::TaskWeighting;

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
    /// Each architecture that shares parameters between tasks (not single-task or logistic
    /// regression) also runs once per variant, with the variant's settings, labelled
    /// `<label>+<name>` (`mmoe+pcgrad`): the same architecture under several task weightings
    /// in one report.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<CompareVariant>,
    /// Skip labels to put side by side (`skip_study.rs`): for each, single-task and the best
    /// multi-task architecture are trained again with every seed on that label.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skip_strategies: Vec<seesaw_data::labels::SkipStrategy>,
}

impl Default for CompareConfig {
    fn default() -> Self {
        Self {
            architectures: Architecture::default_set(),
            seeds: vec![0, 1, 2],
            cmi_matrix: CompareCmi::default(),
            variants: Vec::new(),
            skip_strategies: Vec::new(),
        }
    }
}

impl CompareConfig {
    pub fn validate(&self) -> Result<()> {
        for (i, variant) in self.variants.iter().enumerate() {
            variant.validate()?;
            if self.variants[..i].iter().any(|v| v.name == variant.name) {
                return Err(TrainError::Config(format!(
                    "[compare] lists two variants named `{}`: their results would be merged",
                    variant.name
                )));
            }
        }
        Ok(())
    }
}

/// `[compare] variants = [{ name = "pcgrad", weighting = { kind = "pcgrad" } }, ...]`: settings
/// that override the run's for one more run of each architecture with shared parameters. Every
/// field but the name is optional; a field that is absent keeps the run's setting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompareVariant {
    /// Appended to the architecture's label: `<label>+<name>`.
    pub name: String,
    /// Replaces `[train.weighting]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weighting: Option<TaskWeighting>,
    /// Sets `[model.cmi]` (training with the CMI between tasks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmi: Option<CmiConfig>,
}

impl CompareVariant {
    /// How compare and its report name the variant of the architecture labelled `architecture`.
    pub fn label(&self, architecture: &str) -> String {
        format!("{architecture}+{}", self.name)
    }

    /// The training and model settings of this variant's runs: the run's, with the variant's
    /// overrides. The one place a variant's fields take effect.
    pub fn apply(&self, train: &TrainConfig, model: &ModelConfig) -> (TrainConfig, ModelConfig) {
        let mut train = train.clone();
        if let Some(weighting) = &self.weighting {
            train.weighting = weighting.clone();
        }
        let mut model = model.clone();
        if let Some(cmi) = &self.cmi {
            model.cmi = Some(cmi.clone());
        }
        (train, model)
    }

    pub fn validate(&self) -> Result<()> {
        if self.name.is_empty() || self.name.chars().any(|c| c.is_whitespace() || c == '|') {
            return Err(TrainError::Config(format!(
                "[compare] variant name `{}`: a name is one word (no spaces or `|`)",
                self.name
            )));
        }
        if let Some(weighting) = &self.weighting {
            weighting.validate().map_err(|e| {
                let message = match e {
                    TrainError::Config(message) => message,
                    other => other.to_string(),
                };
                TrainError::Config(format!("[compare] variant `{}`: {message}", self.name))
            })?;
        }
        if let Some(cmi) = &self.cmi {
            cmi.validate().map_err(|e| {
                TrainError::Config(format!("[compare] variant `{}`: {e}", self.name))
            })?;
        }
        Ok(())
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
        config.compare.validate()?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(compare: &str) -> Result<RunConfig> {
        let text = format!("[dataset]\npreset = \"kuairand\"\n\n[compare]\n{compare}\n");
        RunConfig::from_toml_str(&text, Path::new("run.toml"))
    }

    #[test]
    fn variants_override_the_weighting_and_nothing_else() {
        let config = parse(
            r#"variants = [
                { name = "pcgrad", weighting = { kind = "pcgrad" } },
                { name = "gradnorm", weighting = { kind = "gradnorm" } },
                { name = "same" },
            ]"#,
        )
        .unwrap();
        let [pcgrad, gradnorm, same] = &config.compare.variants[..] else { panic!("three") };
        assert_eq!(pcgrad.label("mmoe"), "mmoe+pcgrad");
        let (train, model) = pcgrad.apply(&config.train, &config.model);
        assert_eq!(train.weighting, TaskWeighting::PcGrad);
        assert_eq!(
            TrainConfig { weighting: config.train.weighting.clone(), ..train },
            config.train
        );
        assert_eq!(model, config.model);
        // The paper's defaults.
        let (train, _) = gradnorm.apply(&config.train, &config.model);
        assert_eq!(train.weighting, TaskWeighting::GradNorm { alpha: 1.5, lr: 0.025 });
        assert_eq!(
            same.apply(&config.train, &config.model),
            (config.train.clone(), config.model.clone())
        );
        // The resolved config (written beside every run) keeps them.
        let again = RunConfig::from_toml_str(&config.to_toml(), Path::new("run.toml")).unwrap();
        assert_eq!(again.compare.variants, config.compare.variants);
    }

    #[test]
    fn bad_variants_are_refused_with_their_name() {
        let error = |compare: &str| parse(compare).unwrap_err().to_string();
        let twice = error(
            r#"variants = [{ name = "a" }, { name = "a", weighting = { kind = "pcgrad" } }]"#,
        );
        assert!(twice.contains("two variants named `a`"), "{twice}");
        let unknown = error(r#"variants = [{ name = "a", wieghting = { kind = "pcgrad" } }]"#);
        assert!(unknown.contains("wieghting"), "{unknown}");
        let lr =
            error(r#"variants = [{ name = "gn", weighting = { kind = "gradnorm", lr = 0.0 } }]"#);
        assert!(lr.contains("variant `gn`") && lr.contains("lr"), "{lr}");
        let spaced = error(r#"variants = [{ name = "two words" }]"#);
        assert!(spaced.contains("two words"), "{spaced}");
    }
}
