//! The `[model.cmi]` table: how the CMI between tasks is used in training.

use serde::{Deserialize, Serialize};

use crate::error::{Result, invalid};

/// How the CMI enters training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CmiUse {
    /// A joint head per pair models p(y_b | h, y_a), so the loss includes the joint likelihood
    /// −log p(y_a | x) − log p(y_b | x, y_a) that the summed losses miss; its gradient makes h
    /// carry what the joint needs. Term `cmi_joint`.
    JointHead,
    /// A critic per pair estimates the residual CMI I(y_a; y_b | h) contrastively; h is trained
    /// against it through a gradient reversal (min–max in one backward pass), so that h comes to
    /// explain the dependence. Term `cmi_adversarial`.
    Adversarial,
}

/// Where the adversarial critic's negatives come from (see `negatives.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CmiSampler {
    /// Labels of the batch's rows whose h is closest, RBF-weighted.
    Kernel,
    /// The model's own tower b (Bernoulli, or a regression prediction plus the residuals'
    /// quantiles).
    Variational,
}

impl CmiSampler {
    pub fn name(self) -> &'static str {
        match self {
            CmiSampler::Kernel => "kernel",
            CmiSampler::Variational => "variational",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CmiConfig {
    /// Weight of the term (for `adversarial`, the strength of the reversed gradient on h).
    pub beta: f32,
    #[serde(rename = "use")]
    pub use_: CmiUse,
    pub sampler: CmiSampler,
    /// The task pairs [a, b] (b is modelled given a); empty: every unordered pair, in task order.
    pub pairs: Vec<[String; 2]>,
    /// Hidden layers of each joint head or critic.
    pub critic_hidden: Vec<usize>,
    /// Neighbours per row for the kernel sampler.
    pub neighbours: usize,
    /// Steps over which beta ramps up linearly from 0 (the critic itself trains from the start).
    pub warmup_steps: usize,
}

impl Default for CmiConfig {
    fn default() -> Self {
        Self {
            beta: 0.1,
            use_: CmiUse::JointHead,
            sampler: CmiSampler::Kernel,
            pairs: Vec::new(),
            critic_hidden: vec![32],
            neighbours: 8,
            warmup_steps: 0,
        }
    }
}

impl CmiConfig {
    pub fn validate(&self) -> Result<()> {
        if !(self.beta.is_finite() && self.beta >= 0.0) {
            return invalid(format!("[model.cmi] beta must be finite and >= 0, got {}", self.beta));
        }
        if self.critic_hidden.contains(&0) {
            return invalid("[model.cmi] critic_hidden layers must have at least 1 unit");
        }
        if self.neighbours == 0 {
            return invalid("[model.cmi] neighbours must be at least 1");
        }
        if let Some([a, _]) = self.pairs.iter().find(|[a, b]| a == b) {
            return invalid(format!(
                "[model.cmi] pairs: [\"{a}\", \"{a}\"] pairs a task with itself"
            ));
        }
        Ok(())
    }

    /// The pairs as task indices, checked against the model's task names.
    pub fn resolve_pairs(&self, tasks: &[String]) -> Result<Vec<(usize, usize)>> {
        if self.pairs.is_empty() {
            let k = tasks.len();
            return Ok((0..k).flat_map(|a| (a + 1..k).map(move |b| (a, b))).collect());
        }
        let index = |name: &String| {
            tasks.iter().position(|t| t == name).ok_or_else(|| {
                crate::error::ModelError::InvalidConfig(format!(
                    "[model.cmi] pairs names the task '{name}', which the model does not have \
                     (its tasks: {})",
                    tasks.join(", ")
                ))
            })
        };
        self.pairs.iter().map(|[a, b]| Ok((index(a)?, index(b)?))).collect()
    }
}
