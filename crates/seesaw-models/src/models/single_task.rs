//! Single-task networks: one complete network per task (own embeddings, MLP, tower), trained
//! together only because they share a batch. The reference every multi-task gain is measured
//! from: same inputs, same capacity per task, no sharing at all.

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

/// `kind = "single_task"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SingleTaskConfig {
    /// Hidden layers of each task's MLP (may be empty).
    pub hidden: Vec<usize>,
}

impl ArchitectureConfig for SingleTaskConfig {
    type Model = SingleTask;

    fn validate(&self) -> Result<()> {
        check_layers("single_task", "hidden", &self.hidden, true)
    }

    fn init(&self, context: &ModelContext, device: &Device) -> Result<SingleTask> {
        let nets = (0..context.tasks.len())
            .map(|_| {
                let embedding =
                    FeatureEmbedding::new(&context.schema, context.embedding_dim, device)?;
                let mlp = Mlp::new(embedding.input_dim(), &self.hidden, device);
                let tower = Tower::new(mlp.output_dim(), &context.tower_hidden, device);
                Ok(SingleTaskNet { embedding, mlp, tower })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(SingleTask { nets, heads: TaskHeads::new(context) })
    }
}

#[derive(Module, Debug)]
pub struct SingleTaskNet {
    pub embedding: FeatureEmbedding,
    pub mlp: Mlp,
    pub tower: Tower,
}

#[derive(Module, Debug)]
pub struct SingleTask {
    pub nets: Vec<SingleTaskNet>,
    #[module(skip)]
    pub heads: TaskHeads,
}

impl TaskModel for SingleTask {
    fn forward(&self, input: &ModelInput) -> ModelOutputs {
        let raw = self
            .nets
            .iter()
            .map(|n| n.tower.forward(n.mlp.forward(n.embedding.forward(input))))
            .collect();
        ModelOutputs::of_tasks(self.heads.apply(raw))
    }
}
