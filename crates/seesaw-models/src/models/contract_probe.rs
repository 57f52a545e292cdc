//! The contract probe: a shared-bottom model that uses every optional part of the model contract,
//! so that a test can carry it through train → eval → serve and show that a model needs nothing
//! outside its file and its registry line. Compiled only with the `contract-probe` feature (the
//! test builds turn it on).
//!
//! - fitted state: the positive rate of the first task on the training rows, learnt by `fit`;
//! - an extra named score, `probe`: a probability from its own head on the shared
//!   representation, whose bias starts at the fitted rate's logit;
//! - an auxiliary loss term, `probe_bce`: `aux_weight` × the masked BCE of `probe` against the
//!   first task's label.

use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Tensor, TensorData};
use seesaw_data::batch::Batch;
use serde::{Deserialize, Serialize};

use crate::blocks::{FeatureEmbedding, Mlp, Tower};
use crate::context::{FittedState, ModelContext};
use crate::contract::{ArchitectureConfig, TaskModel};
use crate::error::{Result, invalid};
use crate::heads::TaskHeads;
use crate::input::ModelInput;
use crate::loss::{LossTerms, task_loss};
use crate::models::check_layers;
use crate::outputs::{ExtraScore, ModelOutputs, OutputKind, TaskOutput};
use crate::targets::ModelTargets;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContractProbeConfig {
    pub hidden: Vec<usize>,
    #[serde(default = "default_aux_weight")]
    pub aux_weight: f32,
}

fn default_aux_weight() -> f32 {
    0.5
}

#[derive(Debug, Serialize, Deserialize)]
struct ProbeState {
    rows: usize,
    positive_rate: f64,
}

impl ArchitectureConfig for ContractProbeConfig {
    type Model = ContractProbe;

    fn validate(&self) -> Result<()> {
        if !(self.aux_weight.is_finite() && self.aux_weight >= 0.0) {
            return invalid("contract_probe: aux_weight must be a number ≥ 0");
        }
        check_layers("contract_probe", "hidden", &self.hidden, true)
    }

    fn fit(
        &self,
        _context: &ModelContext,
        train: &mut dyn Iterator<Item = Batch>,
    ) -> Result<Option<FittedState>> {
        let (mut rows, mut positives, mut labelled) = (0usize, 0.0f64, 0.0f64);
        for batch in train {
            rows += batch.size;
            let (labels, mask) = (batch.label(0), batch.mask(0));
            positives += labels.iter().zip(mask).map(|(y, m)| f64::from(y * m)).sum::<f64>();
            labelled += mask.iter().map(|&m| f64::from(m)).sum::<f64>();
        }
        let positive_rate = if labelled > 0.0 { positives / labelled } else { 0.5 };
        let state = ProbeState { rows, positive_rate };
        Ok(Some(FittedState(serde_json::to_value(state).expect("the probe state serialises"))))
    }

    fn extra_scores(&self) -> Vec<ExtraScore> {
        vec![ExtraScore::new("probe", OutputKind::Probability)]
    }

    fn init(&self, context: &ModelContext, device: &Device) -> Result<ContractProbe> {
        let Some(fitted) = &context.fitted else {
            return invalid("contract_probe: built without its fitted state");
        };
        let state: ProbeState = serde_json::from_value(fitted.0.clone())
            .map_err(|e| crate::error::ModelError::InvalidConfig(format!("contract_probe: {e}")))?;
        let embedding = FeatureEmbedding::new(&context.schema, context.embedding_dim, device)?;
        let bottom = Mlp::new(embedding.input_dim(), &self.hidden, device);
        let towers = (0..context.tasks.len())
            .map(|_| Tower::new(bottom.output_dim(), &context.tower_hidden, device))
            .collect();
        let mut probe = LinearConfig::new(bottom.output_dim(), 1).init(device);
        let rate = state.positive_rate.clamp(1e-4, 1.0 - 1e-4);
        let logit = (rate / (1.0 - rate)).ln() as f32;
        probe.bias = Some(Param::from_data(TensorData::new(vec![logit], [1]), device));
        Ok(ContractProbe {
            embedding,
            bottom,
            towers,
            probe,
            heads: TaskHeads::new(context),
            aux_weight: self.aux_weight,
        })
    }
}

#[derive(Module, Debug)]
pub struct ContractProbe {
    pub embedding: FeatureEmbedding,
    pub bottom: Mlp,
    pub towers: Vec<Tower>,
    pub probe: Linear,
    #[module(skip)]
    pub heads: TaskHeads,
    #[module(skip)]
    pub aux_weight: f32,
}

impl TaskModel for ContractProbe {
    fn forward(&self, input: &ModelInput) -> ModelOutputs {
        let h = self.bottom.forward(self.embedding.forward(input));
        let raw = self.towers.iter().map(|t| t.forward(h.clone())).collect();
        let probe: Tensor<2> = sigmoid(self.probe.forward(h.clone()));
        ModelOutputs {
            tasks: self.heads.apply(raw),
            extras: vec![TaskOutput { tensor: probe, kind: OutputKind::Probability }],
            shared: input.want_shared.then_some(h),
            gates: Vec::new(),
        }
    }

    fn loss(&self, outputs: &ModelOutputs, targets: &ModelTargets) -> LossTerms {
        let terms = LossTerms::per_task(outputs, targets);
        match task_loss(&outputs.extras[0], &targets.tasks[0]) {
            Some(bce) => terms.with_auxiliary("probe_bce", bce.mul_scalar(self.aux_weight)),
            None => terms,
        }
    }
}
