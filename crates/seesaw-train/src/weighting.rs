//! How per-task losses combine into one. `TaskWeighting` is the config (`[train.weighting]`);
//! `Weighting` the trait every rule implements; `WeightingModule` the rules as one burn module,
//! so that a rule with learned parameters (uncertainty weighting) lives in the same module tree
//! as the model: one optimiser, one record, one checkpoint.
//!
//! - fixed weights;
//! - uncertainty weighting (Kendall et al. 2018): learned log-variances s_k,
//!   L = Σ exp(-s_k)·L_k + s_k;
//! - Dynamic Weight Average (Liu et al. 2019): w_k = K·softmax(r_k / T), r_k the ratio of the
//!   task's last two epoch losses, so a task whose loss stalls gets more weight.

use std::collections::BTreeMap;

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum TaskWeighting {
    Fixed {
        /// Task → weight; tasks not named weigh 1.
        #[serde(default)]
        weights: BTreeMap<String, f64>,
    },
    Uncertainty,
    Dwa {
        #[serde(default = "default_temperature")]
        temperature: f64,
    },
}

fn default_temperature() -> f64 {
    2.0
}

impl Default for TaskWeighting {
    fn default() -> Self {
        TaskWeighting::Fixed { weights: BTreeMap::new() }
    }
}

impl TaskWeighting {
    pub fn validate(&self) -> Result<()> {
        match self {
            TaskWeighting::Fixed { weights }
                if weights.values().any(|w| !(w.is_finite() && *w >= 0.0)) =>
            {
                Err(TrainError::Config("task weights must be finite and not negative".into()))
            }
            TaskWeighting::Dwa { temperature } if temperature.is_nan() || *temperature <= 0.0 => {
                Err(TrainError::Config("the DWA temperature must be positive".into()))
            }
            _ => Ok(()),
        }
    }

    /// The rule for these tasks, its parameters (if any) on `device`.
    pub fn build(&self, tasks: &[String], device: &Device) -> WeightingModule {
        match self {
            TaskWeighting::Fixed { weights } => WeightingModule::Static(StaticWeights {
                weights: tasks.iter().map(|t| weights.get(t).copied().unwrap_or(1.0)).collect(),
                dwa_temperature: None,
            }),
            TaskWeighting::Uncertainty => {
                WeightingModule::Uncertainty(UncertaintyWeights::new(tasks.len(), device))
            }
            TaskWeighting::Dwa { temperature } => WeightingModule::Static(StaticWeights {
                weights: vec![1.0; tasks.len()],
                dwa_temperature: Some(*temperature),
            }),
        }
    }
}

/// A rule that combines the per-task losses of a step into the loss to minimise.
pub trait Weighting {
    /// Called before each epoch with the mean training loss of each task in every earlier epoch.
    fn start_epoch(&mut self, _loss_history: &[Vec<f64>]) {}

    /// The weighted total of the tasks present in the batch (`None`: no task has a label).
    fn combine(&self, losses: &[Option<Tensor<1>>]) -> Option<Tensor<1>>;

    /// The current weight of each task, for the metrics log.
    fn weights(&self) -> Vec<f64>;

    /// Whether the rule needs each task's gradient of the shared representation every step
    /// (gradient-based rules such as PCGrad and GradNorm, conflict diagnostics). The trainer then
    /// calls `observe_task_gradients` before the step.
    fn wants_task_gradients(&self) -> bool {
        false
    }

    /// Per task (in task order, `None` where the batch has no label), the gradient of its loss
    /// with respect to the model's shared representation h, flattened.
    fn observe_task_gradients(&mut self, _gradients: &[Option<Vec<f32>>]) {}
}

/// Every rule, as one module in the trainer's module tree.
#[derive(Module, Debug)]
pub enum WeightingModule {
    Static(StaticWeights),
    Uncertainty(UncertaintyWeights),
}

impl Weighting for WeightingModule {
    fn start_epoch(&mut self, loss_history: &[Vec<f64>]) {
        match self {
            WeightingModule::Static(w) => w.start_epoch(loss_history),
            WeightingModule::Uncertainty(w) => w.start_epoch(loss_history),
        }
    }

    fn combine(&self, losses: &[Option<Tensor<1>>]) -> Option<Tensor<1>> {
        match self {
            WeightingModule::Static(w) => w.combine(losses),
            WeightingModule::Uncertainty(w) => w.combine(losses),
        }
    }

    fn weights(&self) -> Vec<f64> {
        match self {
            WeightingModule::Static(w) => w.weights(),
            WeightingModule::Uncertainty(w) => w.weights(),
        }
    }
}

/// Weights that are numbers, not parameters: fixed, or set by DWA at each epoch.
#[derive(Module, Debug)]
pub struct StaticWeights {
    #[module(skip)]
    pub weights: Vec<f64>,
    /// `Some(T)`: Dynamic Weight Average with temperature T.
    #[module(skip)]
    pub dwa_temperature: Option<f64>,
}

impl Weighting for StaticWeights {
    fn start_epoch(&mut self, loss_history: &[Vec<f64>]) {
        let Some(temperature) = self.dwa_temperature else { return };
        let k = self.weights.len();
        self.weights = match loss_history {
            [.., before, last] => {
                let ratios: Vec<f64> = last
                    .iter()
                    .zip(before)
                    .map(|(l, b)| if *b > 0.0 { l / b } else { 1.0 })
                    .collect();
                let max = ratios.iter().copied().fold(f64::MIN, f64::max);
                let exp: Vec<f64> =
                    ratios.iter().map(|r| ((r - max) / temperature).exp()).collect();
                let sum: f64 = exp.iter().sum();
                exp.iter().map(|e| k as f64 * e / sum).collect()
            }
            _ => vec![1.0; k],
        };
    }

    fn combine(&self, losses: &[Option<Tensor<1>>]) -> Option<Tensor<1>> {
        losses
            .iter()
            .zip(&self.weights)
            .filter_map(|(l, &w)| l.clone().map(|l| l.mul_scalar(w)))
            .reduce(|a, b| a + b)
    }

    fn weights(&self) -> Vec<f64> {
        self.weights.clone()
    }
}

/// The learned log-variances of uncertainty weighting, optimised with the model.
#[derive(Module, Debug)]
pub struct UncertaintyWeights {
    pub log_var: Param<Tensor<1>>,
}

impl UncertaintyWeights {
    pub fn new(n_tasks: usize, device: &Device) -> Self {
        Self {
            log_var: Param::from_tensor(Tensor::from_data(
                TensorData::new(vec![0.0f32; n_tasks], [n_tasks]),
                device,
            )),
        }
    }
}

impl Weighting for UncertaintyWeights {
    /// Σ exp(-s_k)·L_k + s_k over the tasks present in the batch.
    fn combine(&self, losses: &[Option<Tensor<1>>]) -> Option<Tensor<1>> {
        let log_var = self.log_var.val();
        let mut total: Option<Tensor<1>> = None;
        for (k, loss) in losses.iter().enumerate() {
            let Some(loss) = loss else { continue };
            let s = log_var.clone().slice(k..k + 1);
            let term = s.clone().neg().exp() * loss.clone() + s;
            total = Some(match total {
                Some(t) => t + term,
                None => term,
            });
        }
        total
    }

    fn weights(&self) -> Vec<f64> {
        let values: Vec<f32> = self.log_var.val().into_data().try_to_vec().unwrap_or_default();
        values.iter().map(|s| (-(*s as f64)).exp()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        vec!["a".to_string(), "b".to_string()]
    }

    #[test]
    fn dwa_upweights_the_task_whose_loss_fell_least() {
        let device = Device::flex();
        let mut dwa = TaskWeighting::Dwa { temperature: 2.0 }.build(&names(), &device);
        dwa.start_epoch(&[vec![1.0, 1.0]]);
        assert_eq!(dwa.weights(), vec![1.0, 1.0]);
        dwa.start_epoch(&[vec![1.0, 1.0], vec![0.5, 0.9]]);
        let w = dwa.weights();
        // r = (0.5, 0.9): w_b / w_a = exp((0.9 - 0.5) / 2).
        assert!((w[1] / w[0] - (0.2f64).exp()).abs() < 1e-12);
        assert!((w[0] + w[1] - 2.0).abs() < 1e-12);
    }

    #[test]
    fn fixed_weights_default_to_one_and_weigh_the_sum() {
        let device = Device::flex();
        let fixed =
            TaskWeighting::Fixed { weights: [("b".to_string(), 3.0)].into_iter().collect() }
                .build(&names(), &device);
        assert_eq!(fixed.weights(), vec![1.0, 3.0]);
        let one = |v: f32| Some(Tensor::<1>::from_data(TensorData::new(vec![v], [1]), &device));
        let total: f32 = fixed.combine(&[one(2.0), one(0.5)]).unwrap().into_scalar();
        assert_eq!(total, 3.5);
        assert!(fixed.combine(&[None, None]).is_none());
    }

    #[test]
    fn uncertainty_weights_start_at_one_and_are_parameters() {
        let device = Device::flex();
        let u = TaskWeighting::Uncertainty.build(&names(), &device);
        assert_eq!(u.weights(), vec![1.0, 1.0]);
        assert_eq!(u.num_params(), 2);
    }
}
