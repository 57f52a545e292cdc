//! Model configuration, deserialised from the run's TOML. `ModelConfig` holds what all
//! architectures share (embedding size, tower shape, regression head) and the `Architecture`,
//! whose `kind` tag picks a model of the registry and whose other fields are that model's own
//! config (each in the model's file).

use seesaw_data::feature_map::{FeatureMap, FeatureSchema, TaskInfo};
use serde::{Deserialize, Serialize};

use crate::cmi::CmiConfig;
pub use crate::context::RegressionHead;
use crate::context::{ClipShape, FittedState, ModelContext};
use crate::error::{Result, invalid};
use crate::models::{
    CgcConfig, CrossStitchConfig, LogisticConfig, MmoeConfig, PleConfig, SharedBottomConfig,
    SingleTaskConfig,
};
use crate::registry::Architecture;

/// Embedding sizes above this are refused: past it a table of a few thousand ids no longer fits
/// in memory, and no recommender uses one so wide.
pub const MAX_EMBEDDING_DIM: usize = 4096;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    pub architecture: Architecture,
    /// Size of every categorical and multi-valued embedding.
    pub embedding_dim: usize,
    /// Hidden layers of each task tower (before its single output unit).
    pub tower_hidden: Vec<usize>,
    /// What is applied to regression outputs (binary outputs are always logits).
    pub regression_head: RegressionHead,
    /// `[model.cmi]`: train with the conditional mutual information between tasks (any
    /// architecture with a shared representation; see `crate::cmi`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cmi: Option<CmiConfig>,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            architecture: Architecture::default(),
            embedding_dim: 16,
            tower_hidden: vec![32],
            regression_head: RegressionHead::Sigmoid,
            cmi: None,
        }
    }
}

impl ModelConfig {
    /// Rejects configs that cannot be built, with a message naming the offending field.
    pub fn validate(&self) -> Result<()> {
        if self.embedding_dim == 0 {
            return invalid("embedding_dim must be at least 1");
        }
        if self.embedding_dim > MAX_EMBEDDING_DIM {
            return invalid(format!(
                "embedding_dim {} is above the limit of {MAX_EMBEDDING_DIM}",
                self.embedding_dim
            ));
        }
        if self.tower_hidden.contains(&0) {
            return invalid("tower_hidden layers must have at least 1 unit");
        }
        if let Some(cmi) = &self.cmi {
            cmi.validate()?;
        }
        self.architecture.validate()
    }
}

impl Default for Architecture {
    fn default() -> Self {
        Architecture::Mmoe(MmoeConfig::default())
    }
}

impl Architecture {
    /// The seven standard architectures at comparable sizes: every hidden stack is [128, 64], so
    /// that single-task and shared-bottom networks match one MMoE expert, and towers come from
    /// `ModelConfig::tower_hidden`.
    pub fn default_set() -> Vec<Architecture> {
        let hidden = vec![128, 64];
        vec![
            Architecture::Logistic(LogisticConfig {}),
            Architecture::SingleTask(SingleTaskConfig { hidden: hidden.clone() }),
            Architecture::SharedBottom(SharedBottomConfig { hidden: hidden.clone() }),
            Architecture::CrossStitch(CrossStitchConfig { hidden: hidden.clone() }),
            Architecture::Mmoe(MmoeConfig {
                experts: 4,
                expert_hidden: hidden.clone(),
                gate_temperature: 1.0,
            }),
            Architecture::Cgc(CgcConfig {
                shared_experts: 2,
                task_experts: 1,
                expert_hidden: hidden.clone(),
                gate_temperature: 1.0,
            }),
            Architecture::Ple(PleConfig {
                levels: 2,
                shared_experts: 2,
                task_experts: 1,
                expert_hidden: hidden,
                gate_temperature: 1.0,
            }),
        ]
    }
}

/// How the model config and a dataset make the context a model is built in (kept here, with the
/// config, so that the context's module needs nothing from this one).
impl ModelContext {
    pub fn new(config: &ModelConfig, schema: FeatureSchema, tasks: Vec<TaskInfo>) -> Self {
        Self {
            schema,
            tasks,
            embedding_dim: config.embedding_dim,
            tower_hidden: config.tower_hidden.clone(),
            regression_head: config.regression_head,
            clips: None,
            fitted: None,
        }
    }

    /// The context of a dataset: its schema, tasks and clip shape.
    pub fn from_feature_map(config: &ModelConfig, map: &FeatureMap) -> Self {
        let clips = map
            .spec
            .labels
            .clips
            .map(|n_clips| ClipShape { n_clips, feature_dim: map.clip_feature_dim.unwrap_or(0) });
        Self { clips, ..Self::new(config, map.schema(), map.tasks.clone()) }
    }

    pub fn with_fitted(self, fitted: Option<FittedState>) -> Self {
        Self { fitted, ..self }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_default_set_is_valid() {
        let set = Architecture::default_set();
        assert_eq!(set.len(), 7);
        let names: std::collections::HashSet<_> = set.iter().map(|a| a.name()).collect();
        assert_eq!(names.len(), 7);
        for a in &set {
            a.validate().unwrap();
            assert!(Architecture::kinds().contains(&a.name()));
        }
    }

    #[test]
    fn invalid_configs_are_rejected() {
        let bad = [
            Architecture::Mmoe(MmoeConfig {
                experts: 0,
                expert_hidden: vec![8],
                gate_temperature: 1.0,
            }),
            Architecture::Mmoe(MmoeConfig {
                experts: 2,
                expert_hidden: vec![8],
                gate_temperature: 0.0,
            }),
            Architecture::Cgc(CgcConfig {
                shared_experts: 0,
                task_experts: 0,
                expert_hidden: vec![8],
                gate_temperature: 1.0,
            }),
            Architecture::Ple(PleConfig {
                levels: 0,
                shared_experts: 1,
                task_experts: 1,
                expert_hidden: vec![8],
                gate_temperature: 1.0,
            }),
            Architecture::CrossStitch(CrossStitchConfig { hidden: vec![] }),
            Architecture::SharedBottom(SharedBottomConfig { hidden: vec![0] }),
        ];
        for a in bad {
            assert!(a.validate().is_err(), "{a:?} should be rejected");
        }
        let wide = ModelConfig { embedding_dim: 1_000_000_000, ..ModelConfig::default() };
        assert!(wide.validate().unwrap_err().to_string().contains("embedding_dim"));
    }

    #[test]
    fn toml_round_trip_uses_kind_tag_and_defaults() {
        for arch in Architecture::default_set() {
            let cfg = ModelConfig { architecture: arch, ..ModelConfig::default() };
            let text = toml::to_string(&cfg).unwrap();
            assert!(text.contains(&format!("kind = \"{}\"", cfg.architecture.name())), "{text}");
            let back: ModelConfig = toml::from_str(&text).unwrap();
            assert_eq!(back, cfg);
        }
        // Omitted fields take their defaults; unknown ones are refused, at both levels.
        let partial: ModelConfig = toml::from_str("embedding_dim = 8").unwrap();
        assert_eq!(partial.tower_hidden, vec![32]);
        assert_eq!(partial.regression_head, RegressionHead::Sigmoid);
        assert!(toml::from_str::<ModelConfig>("embeding_dim = 8").is_err());
        let logistic: ModelConfig = toml::from_str("[architecture]\nkind = \"logistic\"").unwrap();
        assert_eq!(logistic.architecture, Architecture::Logistic(LogisticConfig {}));
        let typo = "[architecture]\nkind = \"mmoe\"\nexperts = 2\nexpert_hidden = [8]\n\
                    gate_temperature = 1.0\nexpertz = 3";
        assert!(toml::from_str::<ModelConfig>(typo).is_err());
        assert!(toml::from_str::<ModelConfig>("[architecture]\nkind = \"nope\"").is_err());
    }
}
