//! How per-task losses combine into one: fixed weights, uncertainty weighting (Kendall et al.
//! 2018: learned log-variances s_k, L = Σ exp(-s_k)·L_k + s_k) or Dynamic Weight Average
//! (Liu et al. 2019: w_k = K·softmax(r_k / T), r_k the ratio of the task's last two epoch
//! losses, so a task whose loss stalls gets more weight).

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

    /// Weights for an epoch, from the mean training losses of earlier epochs (DWA), or fixed.
    /// Uncertainty weighting is applied in the loss itself and returns ones here.
    pub fn epoch_weights(&self, tasks: &[String], loss_history: &[Vec<f64>]) -> Vec<f64> {
        match self {
            TaskWeighting::Fixed { weights } => {
                tasks.iter().map(|t| weights.get(t).copied().unwrap_or(1.0)).collect()
            }
            TaskWeighting::Uncertainty => vec![1.0; tasks.len()],
            TaskWeighting::Dwa { temperature } => match loss_history {
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
                    exp.iter().map(|e| tasks.len() as f64 * e / sum).collect()
                }
                _ => vec![1.0; tasks.len()],
            },
        }
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

    /// Σ exp(-s_k)·L_k + s_k over the tasks present in the batch.
    pub fn combine(&self, losses: &[Option<Tensor<1>>]) -> Option<Tensor<1>> {
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

    pub fn weights(&self) -> Vec<f64> {
        let values: Vec<f32> = self.log_var.val().into_data().try_to_vec().unwrap_or_default();
        values.iter().map(|s| (-(*s as f64)).exp()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dwa_upweights_the_task_whose_loss_fell_least() {
        let tasks = vec!["a".to_string(), "b".to_string()];
        let dwa = TaskWeighting::Dwa { temperature: 2.0 };
        assert_eq!(dwa.epoch_weights(&tasks, &[vec![1.0, 1.0]]), vec![1.0, 1.0]);
        let w = dwa.epoch_weights(&tasks, &[vec![1.0, 1.0], vec![0.5, 0.9]]);
        // r = (0.5, 0.9): w_b / w_a = exp((0.9 - 0.5) / 2).
        assert!((w[1] / w[0] - (0.2f64).exp()).abs() < 1e-12);
        assert!((w[0] + w[1] - 2.0).abs() < 1e-12);
    }

    #[test]
    fn fixed_weights_default_to_one() {
        let tasks = vec!["a".to_string(), "b".to_string()];
        let fixed =
            TaskWeighting::Fixed { weights: [("b".to_string(), 3.0)].into_iter().collect() };
        assert_eq!(fixed.epoch_weights(&tasks, &[]), vec![1.0, 3.0]);
    }
}
