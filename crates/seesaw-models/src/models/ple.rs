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
use serde::{Deserialize, Serialize};

use crate::blocks::{ExpertBank, FeatureEmbedding, Gate, Tower};
use crate::context::ModelContext;
use crate::contract::{ArchitectureConfig, TaskModel};
use crate::error::{Result, invalid};
use crate::heads::TaskHeads;
use crate::input::ModelInput;
use crate::models::{check_layers, check_temperature, experts_side_by_side};
use crate::outputs::{GateWeights, ModelOutputs};
use crate::rows::Rows;

/// `kind = "ple"`: stacked CGC levels joined by shared gates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PleConfig {
    pub levels: usize,
    pub shared_experts: usize,
    pub task_experts: usize,
    pub expert_hidden: Vec<usize>,
    pub gate_temperature: f32,
}

/// `kind = "cgc"`: one PLE level (task-specific and shared experts, no shared gate).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CgcConfig {
    pub shared_experts: usize,
    pub task_experts: usize,
    pub expert_hidden: Vec<usize>,
    pub gate_temperature: f32,
}

impl CgcConfig {
    fn as_ple(&self) -> PleConfig {
        PleConfig {
            levels: 1,
            shared_experts: self.shared_experts,
            task_experts: self.task_experts,
            expert_hidden: self.expert_hidden.clone(),
            gate_temperature: self.gate_temperature,
        }
    }
}

impl ArchitectureConfig for CgcConfig {
    type Model = Ple;

    fn validate(&self) -> Result<()> {
        self.as_ple().check("cgc")
    }

    fn init(&self, context: &ModelContext, device: &Device) -> Result<Ple> {
        self.as_ple().init(context, device)
    }
}

impl PleConfig {
    fn check(&self, kind: &str) -> Result<()> {
        if self.levels == 0 {
            return invalid(format!("{kind}: levels must be at least 1"));
        }
        if self.shared_experts + self.task_experts == 0 {
            return invalid(format!("{kind}: shared_experts + task_experts must be at least 1"));
        }
        // The next level's shared experts read the shared gate's output; with no shared experts
        // there would still be a shared gate over the task experts, so this is allowed, but the
        // degenerate case of nothing at all is not.
        check_layers(kind, "expert_hidden", &self.expert_hidden, false)?;
        check_temperature(kind, self.gate_temperature)
    }
}

impl ArchitectureConfig for PleConfig {
    type Model = Ple;

    fn validate(&self) -> Result<()> {
        self.check("ple")
    }

    fn init(&self, context: &ModelContext, device: &Device) -> Result<Ple> {
        let n_tasks = context.tasks.len();
        let embedding = FeatureEmbedding::new(&context.schema, context.embedding_dim, device)?;
        let (t, s, temp) = (self.task_experts, self.shared_experts, self.gate_temperature);
        let mut d_in = embedding.input_dim();
        let mut levels = Vec::with_capacity(self.levels);
        for level in 0..self.levels {
            let task_experts = if t > 0 {
                (0..n_tasks)
                    .map(|_| ExpertBank::new(t, d_in, &self.expert_hidden, device))
                    .collect()
            } else {
                Vec::new()
            };
            let shared_experts =
                (s > 0).then(|| ExpertBank::new(s, d_in, &self.expert_hidden, device));
            let task_gates = (0..n_tasks).map(|_| Gate::new(d_in, t + s, temp, device)).collect();
            let shared_gate =
                (level + 1 < self.levels).then(|| Gate::new(d_in, n_tasks * t + s, temp, device));
            levels.push(PleLevel { task_experts, shared_experts, task_gates, shared_gate });
            d_in = *self.expert_hidden.last().expect("validated: experts have layers");
        }
        let towers =
            (0..n_tasks).map(|_| Tower::new(d_in, &context.tower_hidden, device)).collect();
        let task_names = context.tasks.iter().map(|t| t.name.clone()).collect();
        Ok(Ple { embedding, levels, towers, heads: TaskHeads::new(context), task_names })
    }
}

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
    #[module(skip)]
    pub heads: TaskHeads,
    /// For naming the gates in diagnostics.
    #[module(skip)]
    pub task_names: Vec<String>,
}

impl TaskModel for Ple {
    fn forward(&self, input: &ModelInput) -> ModelOutputs {
        let mut gates = Vec::new();
        let record = input.want_diagnostics.then_some(&mut gates);
        let (task_inputs, shared) = self.run_levels(self.embedding.forward(input), record);
        let raw = task_inputs.into_iter().zip(&self.towers).map(|(h, t)| t.forward(h)).collect();
        ModelOutputs {
            tasks: self.heads.apply(raw),
            extras: Vec::new(),
            shared: if input.want_shared { shared.map(experts_side_by_side) } else { None },
            gates,
        }
    }

    /// The last level's shared experts side by side; none without shared experts.
    fn shared_dim(&self) -> Option<usize> {
        let bank = self.levels.last()?.shared_experts.as_ref()?;
        Some(bank.n_experts * bank.output_dim())
    }
}

impl Ple {
    /// Runs all levels, returning each task's gated output of the last level and the last
    /// level's shared experts' outputs (when it has shared experts); records every gate's
    /// weights when asked.
    fn run_levels(
        &self,
        x: Rows,
        mut record: Option<&mut Vec<GateWeights>>,
    ) -> (Vec<Tensor<2>>, Option<Tensor<3>>) {
        let n_tasks = self.towers.len();
        let mut task_inputs = vec![x.clone(); n_tasks];
        let mut shared_input = x;
        let mut last_shared = None;
        for (j, level) in self.levels.iter().enumerate() {
            let task_outs: Vec<Tensor<3>> = level
                .task_experts
                .iter()
                .zip(&task_inputs)
                .map(|(bank, h)| bank.forward(h))
                .collect();
            let shared_out = level.shared_experts.as_ref().map(|bank| bank.forward(&shared_input));

            let mut next_task_inputs = Vec::with_capacity(n_tasks);
            for (k, gate) in level.task_gates.iter().enumerate() {
                let mut pool: Vec<Tensor<3>> = Vec::with_capacity(2);
                if let Some(own) = task_outs.get(k) {
                    pool.push(own.clone());
                }
                if let Some(shared) = &shared_out {
                    pool.push(shared.clone());
                }
                let w = gate.forward(&task_inputs[k]);
                if let Some(out) = record.as_mut() {
                    out.push(GateWeights {
                        name: format!("level{j}/task:{}", self.task_names[k]),
                        weights: w.clone(),
                    });
                }
                next_task_inputs.push(Gate::mix(w, cat0(pool)));
            }
            if let Some(gate) = &level.shared_gate {
                let mut pool: Vec<Tensor<3>> = task_outs.clone();
                pool.extend(shared_out.clone());
                let w = gate.forward(&shared_input);
                if let Some(out) = record.as_mut() {
                    out.push(GateWeights { name: format!("level{j}/shared"), weights: w.clone() });
                }
                shared_input = Rows::Plain(Gate::mix(w, cat0(pool)));
            }
            last_shared = shared_out;
            task_inputs = next_task_inputs.into_iter().map(Rows::Plain).collect();
        }
        let task_inputs = task_inputs
            .into_iter()
            .map(|h| match h {
                Rows::Plain(h) => h,
                Rows::Split(_) => unreachable!("a PLE has at least one level"),
            })
            .collect();
        (task_inputs, last_shared)
    }
}

/// Concatenates expert outputs along the expert axis, skipping the copy for a single bank.
fn cat0(mut pool: Vec<Tensor<3>>) -> Tensor<3> {
    if pool.len() == 1 { pool.pop().expect("one element") } else { Tensor::cat(pool, 0) }
}
