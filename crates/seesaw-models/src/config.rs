//! Model configuration, deserialised from the run's TOML. `ModelConfig` holds what all
//! architectures share (embedding size, tower shape, regression head); `Architecture` what is
//! specific to one, tagged by `kind` so that a config file reads `kind = "mmoe"`.

use serde::{Deserialize, Serialize};

use crate::error::{Result, invalid};

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
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            architecture: Architecture::default(),
            embedding_dim: 16,
            tower_hidden: vec![32],
            regression_head: RegressionHead::Sigmoid,
        }
    }
}

impl ModelConfig {
    /// Rejects configs that cannot be built, with a message naming the offending field.
    pub fn validate(&self) -> Result<()> {
        if self.embedding_dim == 0 {
            return invalid("embedding_dim must be at least 1");
        }
        if self.tower_hidden.contains(&0) {
            return invalid("tower_hidden layers must have at least 1 unit");
        }
        self.architecture.validate()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Architecture {
    /// Per-task logistic regression on the same inputs: the linear baseline.
    Logistic,
    /// One full network per task (own embeddings, MLP, tower): the reference every gain is
    /// measured from.
    SingleTask { hidden: Vec<usize> },
    /// One shared embedding and MLP, one tower per task.
    SharedBottom { hidden: Vec<usize> },
    /// One full column per task; after each hidden layer x̃_k = Σ_j α_kj x_j.
    CrossStitch { hidden: Vec<usize> },
    /// Shared experts, one softmax gate per task.
    Mmoe { experts: usize, expert_hidden: Vec<usize>, gate_temperature: f32 },
    /// One PLE level: task-specific and shared experts.
    Cgc {
        shared_experts: usize,
        task_experts: usize,
        expert_hidden: Vec<usize>,
        gate_temperature: f32,
    },
    /// Stacked CGC levels joined by shared gates.
    Ple {
        levels: usize,
        shared_experts: usize,
        task_experts: usize,
        expert_hidden: Vec<usize>,
        gate_temperature: f32,
    },
}

impl Default for Architecture {
    fn default() -> Self {
        Architecture::Mmoe { experts: 4, expert_hidden: vec![128, 64], gate_temperature: 1.0 }
    }
}

impl Architecture {
    pub fn name(&self) -> &'static str {
        match self {
            Architecture::Logistic => "logistic",
            Architecture::SingleTask { .. } => "single_task",
            Architecture::SharedBottom { .. } => "shared_bottom",
            Architecture::CrossStitch { .. } => "cross_stitch",
            Architecture::Mmoe { .. } => "mmoe",
            Architecture::Cgc { .. } => "cgc",
            Architecture::Ple { .. } => "ple",
        }
    }

    /// All seven architectures at comparable sizes: every hidden stack is [128, 64], so that
    /// single-task and shared-bottom networks match one MMoE expert, and towers come from
    /// `ModelConfig::tower_hidden`.
    pub fn default_set() -> Vec<Architecture> {
        let hidden = vec![128, 64];
        vec![
            Architecture::Logistic,
            Architecture::SingleTask { hidden: hidden.clone() },
            Architecture::SharedBottom { hidden: hidden.clone() },
            Architecture::CrossStitch { hidden: hidden.clone() },
            Architecture::Mmoe { experts: 4, expert_hidden: hidden.clone(), gate_temperature: 1.0 },
            Architecture::Cgc {
                shared_experts: 2,
                task_experts: 1,
                expert_hidden: hidden.clone(),
                gate_temperature: 1.0,
            },
            Architecture::Ple {
                levels: 2,
                shared_experts: 2,
                task_experts: 1,
                expert_hidden: hidden,
                gate_temperature: 1.0,
            },
        ]
    }

    pub fn validate(&self) -> Result<()> {
        let layers_ok = |what: &str, layers: &[usize], allow_empty: bool| -> Result<()> {
            if !allow_empty && layers.is_empty() {
                return invalid(format!("{}: {what} must have at least one layer", self.name()));
            }
            if layers.contains(&0) {
                return invalid(format!(
                    "{}: {what} layers must have at least 1 unit",
                    self.name()
                ));
            }
            Ok(())
        };
        let temperature_ok = |t: f32| -> Result<()> {
            if !(t.is_finite() && t > 0.0) {
                return invalid(format!("{}: gate_temperature must be > 0, got {t}", self.name()));
            }
            Ok(())
        };
        match self {
            Architecture::Logistic => Ok(()),
            Architecture::SingleTask { hidden } | Architecture::SharedBottom { hidden } => {
                layers_ok("hidden", hidden, true)
            }
            // Cross-stitch units sit after hidden layers, so without one there is nothing to mix.
            Architecture::CrossStitch { hidden } => layers_ok("hidden", hidden, false),
            Architecture::Mmoe { experts, expert_hidden, gate_temperature } => {
                if *experts == 0 {
                    return invalid("mmoe: experts must be at least 1");
                }
                layers_ok("expert_hidden", expert_hidden, false)?;
                temperature_ok(*gate_temperature)
            }
            Architecture::Cgc { shared_experts, task_experts, expert_hidden, gate_temperature } => {
                if shared_experts + task_experts == 0 {
                    return invalid("cgc: shared_experts + task_experts must be at least 1");
                }
                layers_ok("expert_hidden", expert_hidden, false)?;
                temperature_ok(*gate_temperature)
            }
            Architecture::Ple {
                levels,
                shared_experts,
                task_experts,
                expert_hidden,
                gate_temperature,
            } => {
                if *levels == 0 {
                    return invalid("ple: levels must be at least 1");
                }
                if shared_experts + task_experts == 0 {
                    return invalid("ple: shared_experts + task_experts must be at least 1");
                }
                // The next level's shared experts read the shared gate's output; with no shared
                // experts there would still be a shared gate over the task experts, so this is
                // allowed, but the degenerate case of nothing at all is not.
                layers_ok("expert_hidden", expert_hidden, false)?;
                temperature_ok(*gate_temperature)
            }
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum RegressionHead {
    /// Squash into (0, 1): right for watch ratios capped at 1.
    #[default]
    Sigmoid,
    /// Raw tower output: for targets outside (0, 1).
    Identity,
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
        }
    }

    #[test]
    fn invalid_configs_are_rejected() {
        let bad = [
            Architecture::Mmoe { experts: 0, expert_hidden: vec![8], gate_temperature: 1.0 },
            Architecture::Mmoe { experts: 2, expert_hidden: vec![8], gate_temperature: 0.0 },
            Architecture::Cgc {
                shared_experts: 0,
                task_experts: 0,
                expert_hidden: vec![8],
                gate_temperature: 1.0,
            },
            Architecture::Ple {
                levels: 0,
                shared_experts: 1,
                task_experts: 1,
                expert_hidden: vec![8],
                gate_temperature: 1.0,
            },
            Architecture::CrossStitch { hidden: vec![] },
            Architecture::SharedBottom { hidden: vec![0] },
        ];
        for a in bad {
            assert!(a.validate().is_err(), "{a:?} should be rejected");
        }
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
        // Omitted fields take their defaults; unknown ones are refused.
        let partial: ModelConfig = toml::from_str("embedding_dim = 8").unwrap();
        assert_eq!(partial.tower_hidden, vec![32]);
        assert_eq!(partial.regression_head, RegressionHead::Sigmoid);
        assert!(toml::from_str::<ModelConfig>("embeding_dim = 8").is_err());
        let logistic: ModelConfig = toml::from_str("[architecture]\nkind = \"logistic\"").unwrap();
        assert_eq!(logistic.architecture, Architecture::Logistic);
    }
}
