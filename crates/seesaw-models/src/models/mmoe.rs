//! MMoE (Ma et al. 2018): n shared experts f_i and one softmax gate per task,
//! y_k = t_k(Σ_i g_k(x)_i f_i(x)). All experts run as one batched product (see expert_bank.rs).

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use seesaw_data::feature_map::{FeatureSchema, TaskInfo};

use crate::blocks::{ExpertBank, FeatureEmbedding, Gate, Tower};
use crate::error::Result;
use crate::input::ModelInput;
use crate::outputs::GateWeights;
use crate::shared::RowGrouping;

#[derive(Module, Debug)]
pub struct Mmoe {
    pub embedding: FeatureEmbedding,
    pub experts: ExpertBank,
    pub gates: Vec<Gate>,
    pub towers: Vec<Tower>,
}

impl Mmoe {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        schema: &FeatureSchema,
        n_tasks: usize,
        embedding_dim: usize,
        experts: usize,
        expert_hidden: &[usize],
        gate_temperature: f32,
        tower_hidden: &[usize],
        device: &Device,
    ) -> Result<Self> {
        let embedding = FeatureEmbedding::new(schema, embedding_dim, device)?;
        let d = embedding.input_dim();
        let bank = ExpertBank::new(experts, d, expert_hidden, device);
        let gates = (0..n_tasks).map(|_| Gate::new(d, experts, gate_temperature, device)).collect();
        let towers =
            (0..n_tasks).map(|_| Tower::new(bank.output_dim(), tower_hidden, device)).collect();
        Ok(Self { embedding, experts: bank, gates, towers })
    }

    pub fn forward(&self, input: &ModelInput) -> Vec<Tensor<2>> {
        let x = self.embedding.forward(input);
        let experts = self.experts.forward(x.clone());
        self.gates
            .iter()
            .zip(&self.towers)
            .map(|(gate, tower)| tower.forward(Gate::mix(gate.forward(x.clone()), experts.clone())))
            .collect()
    }

    /// `forward` with the shared slots embedded once per row group (see `crate::shared`): the
    /// experts' first layer and the gates read the split embedding.
    pub fn forward_shared(&self, input: &ModelInput, grouping: &RowGrouping<'_>) -> Vec<Tensor<2>> {
        let x = self.embedding.forward_split(input, grouping);
        let experts = self.experts.forward_split(&x);
        self.gates
            .iter()
            .zip(&self.towers)
            .map(|(gate, tower)| tower.forward(Gate::mix(gate.forward_split(&x), experts.clone())))
            .collect()
    }

    pub fn gate_weights(&self, input: &ModelInput, tasks: &[TaskInfo]) -> Vec<GateWeights> {
        let x = self.embedding.forward(input);
        self.gates
            .iter()
            .zip(tasks)
            .map(|(gate, task)| GateWeights {
                name: format!("level0/task:{}", task.name),
                weights: gate.forward(x.clone()),
            })
            .collect()
    }
}
