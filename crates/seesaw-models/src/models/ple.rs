//! CGC and PLE (Tang et al. 2020). Each level has task-specific experts (per task) and shared
//! experts; task k's gate mixes its own and the shared experts. Below the last level a shared
//! gate mixes all experts and feeds the next level's shared experts; level j's task-k experts
//! read task k's gated output of level j-1, its shared experts the shared gated output. CGC is
//! PLE with one level (no shared gate at all).
//!
//! Expert order inside a gate: the task's own experts first, then the shared ones; in the shared
//! gate, task 0's experts, task 1's, ..., then the shared ones.

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use seesaw_data::feature_map::{FeatureSchema, TaskInfo};

use crate::blocks::{ExpertBank, FeatureEmbedding, Gate, Tower};
use crate::error::Result;
use crate::input::ModelInput;
use crate::outputs::GateWeights;
use crate::shared::{RowGrouping, SplitRows};

#[derive(Module, Debug)]
pub struct PleLevel {
    /// One bank per task; empty when there are no task-specific experts.
    pub task_experts: Vec<ExpertBank>,
    /// `None` when there are no shared experts.
    pub shared_experts: Option<ExpertBank>,
    /// One per task, over its own experts and the shared ones.
    pub task_gates: Vec<Gate>,
    /// Over all experts of the level; only below the last level.
    pub shared_gate: Option<Gate>,
}

#[derive(Module, Debug)]
pub struct Ple {
    pub embedding: FeatureEmbedding,
    pub levels: Vec<PleLevel>,
    pub towers: Vec<Tower>,
}

pub struct PleShape<'a> {
    pub levels: usize,
    pub shared_experts: usize,
    pub task_experts: usize,
    pub expert_hidden: &'a [usize],
    pub gate_temperature: f32,
}

impl Ple {
    pub fn new(
        schema: &FeatureSchema,
        n_tasks: usize,
        embedding_dim: usize,
        shape: &PleShape<'_>,
        tower_hidden: &[usize],
        device: &Device,
    ) -> Result<Self> {
        let embedding = FeatureEmbedding::new(schema, embedding_dim, device)?;
        let (t, s, temp) = (shape.task_experts, shape.shared_experts, shape.gate_temperature);
        let mut d_in = embedding.input_dim();
        let mut levels = Vec::with_capacity(shape.levels);
        for level in 0..shape.levels {
            let task_experts = if t > 0 {
                (0..n_tasks)
                    .map(|_| ExpertBank::new(t, d_in, shape.expert_hidden, device))
                    .collect()
            } else {
                Vec::new()
            };
            let shared_experts =
                (s > 0).then(|| ExpertBank::new(s, d_in, shape.expert_hidden, device));
            let task_gates = (0..n_tasks).map(|_| Gate::new(d_in, t + s, temp, device)).collect();
            let shared_gate =
                (level + 1 < shape.levels).then(|| Gate::new(d_in, n_tasks * t + s, temp, device));
            levels.push(PleLevel { task_experts, shared_experts, task_gates, shared_gate });
            d_in = *shape.expert_hidden.last().expect("validated: experts have layers");
        }
        let towers = (0..n_tasks).map(|_| Tower::new(d_in, tower_hidden, device)).collect();
        Ok(Self { embedding, levels, towers })
    }

    pub fn forward(&self, input: &ModelInput) -> Vec<Tensor<2>> {
        let x = LevelInput::Plain(self.embedding.forward(input));
        let task_inputs = self.run_levels(x, None);
        task_inputs.into_iter().zip(&self.towers).map(|(h, tower)| tower.forward(h)).collect()
    }

    /// `forward` with the shared slots embedded once per row group (see `crate::shared`): the
    /// first level's experts and gates read the split embedding.
    pub fn forward_shared(&self, input: &ModelInput, grouping: &RowGrouping<'_>) -> Vec<Tensor<2>> {
        let x = LevelInput::Split(self.embedding.forward_split(input, grouping));
        let task_inputs = self.run_levels(x, None);
        task_inputs.into_iter().zip(&self.towers).map(|(h, tower)| tower.forward(h)).collect()
    }

    pub fn gate_weights(&self, input: &ModelInput, tasks: &[TaskInfo]) -> Vec<GateWeights> {
        let mut out = Vec::new();
        let x = LevelInput::Plain(self.embedding.forward(input));
        self.run_levels(x, Some((tasks, &mut out)));
        out
    }

    /// Runs all levels, returning each task's gated output of the last level; records every
    /// gate's weights when asked.
    fn run_levels(
        &self,
        x: LevelInput,
        mut record: Option<(&[TaskInfo], &mut Vec<GateWeights>)>,
    ) -> Vec<Tensor<2>> {
        let n_tasks = self.towers.len();
        let mut task_inputs = vec![x.clone(); n_tasks];
        let mut shared_input = x;
        for (j, level) in self.levels.iter().enumerate() {
            let task_outs: Vec<Tensor<3>> = level
                .task_experts
                .iter()
                .zip(&task_inputs)
                .map(|(bank, h)| h.experts(bank))
                .collect();
            let shared_out = level.shared_experts.as_ref().map(|bank| shared_input.experts(bank));

            let mut next_task_inputs = Vec::with_capacity(n_tasks);
            for (k, gate) in level.task_gates.iter().enumerate() {
                let mut pool: Vec<Tensor<3>> = Vec::with_capacity(2);
                if let Some(own) = task_outs.get(k) {
                    pool.push(own.clone());
                }
                if let Some(shared) = &shared_out {
                    pool.push(shared.clone());
                }
                let w = task_inputs[k].gate(gate);
                if let Some((tasks, out)) = record.as_mut() {
                    out.push(GateWeights {
                        name: format!("level{j}/task:{}", tasks[k].name),
                        weights: w.clone(),
                    });
                }
                next_task_inputs.push(Gate::mix(w, cat0(pool)));
            }
            if let Some(gate) = &level.shared_gate {
                let mut pool: Vec<Tensor<3>> = task_outs.clone();
                pool.extend(shared_out.clone());
                let w = shared_input.gate(gate);
                if let Some((_, out)) = record.as_mut() {
                    out.push(GateWeights { name: format!("level{j}/shared"), weights: w.clone() });
                }
                shared_input = LevelInput::Plain(Gate::mix(w, cat0(pool)));
            }
            task_inputs = next_task_inputs.into_iter().map(LevelInput::Plain).collect();
        }
        task_inputs
            .into_iter()
            .map(|h| match h {
                LevelInput::Plain(h) => h,
                LevelInput::Split(_) => unreachable!("a PLE has at least one level"),
            })
            .collect()
    }
}

/// What a level's experts and gates read: the embedding (plain or split) at the first level,
/// the previous level's gated outputs after it.
/// (A handful live per forward call, so the size of the split variant does not matter.)
#[derive(Clone)]
#[allow(clippy::large_enum_variant)]
enum LevelInput {
    Plain(Tensor<2>),
    Split(SplitRows),
}

impl LevelInput {
    fn experts(&self, bank: &ExpertBank) -> Tensor<3> {
        match self {
            LevelInput::Plain(x) => bank.forward(x.clone()),
            LevelInput::Split(x) => bank.forward_split(x),
        }
    }

    fn gate(&self, gate: &Gate) -> Tensor<2> {
        match self {
            LevelInput::Plain(x) => gate.forward(x.clone()),
            LevelInput::Split(x) => gate.forward_split(x),
        }
    }
}

/// Concatenates expert outputs along the expert axis, skipping the copy for a single bank.
fn cat0(mut pool: Vec<Tensor<3>>) -> Tensor<3> {
    if pool.len() == 1 { pool.pop().expect("one element") } else { Tensor::cat(pool, 0) }
}
