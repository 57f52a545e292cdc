//! Shared-bottom (Caruana 1997): one embedding layer and MLP shared by all tasks, one tower per
//! task. The simplest hard parameter sharing, and the one most prone to the see-saw.

use burn::module::Module;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::blocks::{FeatureEmbedding, Mlp, Tower};
use crate::context::ModelContext;
use crate::contract::{ArchitectureConfig, TaskModel};
use crate::error::Result;
use crate::heads::TaskHeads;
use crate::input::ModelInput;
use crate::models::check_layers;
use crate::outputs::ModelOutputs;

/// `kind = "shared_bottom"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharedBottomConfig {
    /// Hidden layers of the shared MLP (may be empty: the towers then read the embedding).
    pub hidden: Vec<usize>,
}

impl ArchitectureConfig for SharedBottomConfig {
    type Model = SharedBottom;

    fn validate(&self) -> Result<()> {
        check_layers("shared_bottom", "hidden", &self.hidden, true)
    }

    fn init(&self, context: &ModelContext, device: &Device) -> Result<SharedBottom> {
        let embedding = FeatureEmbedding::new(&context.schema, context.embedding_dim, device)?;
        let bottom = Mlp::new(embedding.input_dim(), &self.hidden, device);
        let towers = (0..context.tasks.len())
            .map(|_| Tower::new(bottom.output_dim(), &context.tower_hidden, device))
            .collect();
        Ok(SharedBottom { embedding, bottom, towers, heads: TaskHeads::new(context) })
    }
}

#[derive(Module, Debug)]
pub struct SharedBottom {
    pub embedding: FeatureEmbedding,
    pub bottom: Mlp,
    pub towers: Vec<Tower>,
    #[module(skip)]
    pub heads: TaskHeads,
}

impl TaskModel for SharedBottom {
    fn forward(&self, input: &ModelInput) -> ModelOutputs {
        let h = self.bottom.forward(self.embedding.forward(input));
        let raw = self.towers.iter().map(|t| t.forward(h.clone())).collect();
        ModelOutputs {
            shared: input.want_shared.then_some(h),
            ..ModelOutputs::of_tasks(self.heads.apply(raw))
        }
    }

    fn shared_dim(&self) -> Option<usize> {
        Some(self.bottom.output_dim())
    }
}
