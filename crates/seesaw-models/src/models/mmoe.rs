//! MMoE (Ma et al. 2018): n shared experts f_i and one softmax gate per task,
//! y_k = t_k(Σ_i g_k(x)_i f_i(x)). All experts run as one batched product (see expert_bank.rs).

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::blocks::{ExpertBank, FeatureEmbedding, Gate, Tower};
use crate::context::ModelContext;
use crate::contract::{ArchitectureConfig, TaskModel};
use crate::error::{Result, invalid};
use crate::heads::TaskHeads;
use crate::input::ModelInput;
use crate::models::{check_layers, check_temperature, experts_side_by_side};
use crate::outputs::{GateWeights, ModelOutputs};

/// `kind = "mmoe"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MmoeConfig {
    pub experts: usize,
    pub expert_hidden: Vec<usize>,
    /// Softmax temperature of the gates: > 1 flattens the mixture, < 1 sharpens it.
    pub gate_temperature: f32,
}

impl Default for MmoeConfig {
    fn default() -> Self {
        Self { experts: 4, expert_hidden: vec![128, 64], gate_temperature: 1.0 }
    }
}

impl ArchitectureConfig for MmoeConfig {
    type Model = Mmoe;

    fn validate(&self) -> Result<()> {
        if self.experts == 0 {
            return invalid("mmoe: experts must be at least 1");
        }
        check_layers("mmoe", "expert_hidden", &self.expert_hidden, false)?;
        check_temperature("mmoe", self.gate_temperature)
    }

    fn init(&self, context: &ModelContext, device: &Device) -> Result<Mmoe> {
        let n_tasks = context.tasks.len();
        let embedding = FeatureEmbedding::new(&context.schema, context.embedding_dim, device)?;
        let d = embedding.input_dim();
        let bank = ExpertBank::new(self.experts, d, &self.expert_hidden, device);
        let gates = (0..n_tasks)
            .map(|_| Gate::new(d, self.experts, self.gate_temperature, device))
            .collect();
        let towers = (0..n_tasks)
            .map(|_| Tower::new(bank.output_dim(), &context.tower_hidden, device))
            .collect();
        let task_names = context.tasks.iter().map(|t| t.name.clone()).collect();
        Ok(Mmoe {
            embedding,
            experts: bank,
            gates,
            towers,
            heads: TaskHeads::new(context),
            task_names,
        })
    }
}

#[derive(Module, Debug)]
pub struct Mmoe {
    pub embedding: FeatureEmbedding,
    pub experts: ExpertBank,
    pub gates: Vec<Gate>,
    pub towers: Vec<Tower>,
    #[module(skip)]
    pub heads: TaskHeads,
    /// For naming the gates in diagnostics.
    #[module(skip)]
    pub task_names: Vec<String>,
}

impl TaskModel for Mmoe {
    fn forward(&self, input: &ModelInput) -> ModelOutputs {
        let x = self.embedding.forward(input);
        let experts = self.experts.forward(&x);
        let mut gates = Vec::new();
        let raw: Vec<Tensor<2>> = self
            .gates
            .iter()
            .zip(&self.towers)
            .zip(&self.task_names)
            .map(|((gate, tower), name)| {
                let w = gate.forward(&x);
                if input.want_diagnostics {
                    gates.push(GateWeights {
                        name: format!("level0/task:{name}"),
                        weights: w.clone(),
                    });
                }
                tower.forward(Gate::mix(w, experts.clone()))
            })
            .collect();
        ModelOutputs {
            tasks: self.heads.apply(raw),
            extras: Vec::new(),
            shared: input.want_shared.then(|| experts_side_by_side(experts)),
            gates,
        }
    }

    fn shared_dim(&self) -> Option<usize> {
        Some(self.experts.n_experts * self.experts.output_dim())
    }
}
