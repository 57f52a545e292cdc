//! Loss terms: the masked per-task losses every model has (BCE on logits or probabilities, MSE on
//! values, each the mean over the rows where the task's label exists) and the named auxiliary
//! terms a model adds (DLEN's emotion supervision, FRAME's BPR, CMI's contrastive term). The
//! trainer combines the task terms with the task weighting, adds the auxiliary ones as they are,
//! and logs every term by name.

use burn::tensor::Tensor;

use crate::outputs::{ModelOutputs, OutputKind, TaskOutput};
use crate::targets::{ModelTargets, TaskTargets};

/// Probabilities are clipped into [EPS, 1 − EPS] before their log, as in the logloss metric.
const PROBABILITY_EPS: f64 = 1e-7;

pub struct LossTerms {
    /// One per task, in task order; `None` when no row of the batch has the task's label.
    pub tasks: Vec<Option<Tensor<1>>>,
    /// Named terms, already weighted by the model's own settings; added to the total as they are.
    pub auxiliary: Vec<(String, Tensor<1>)>,
}

impl LossTerms {
    /// The default: the masked loss of each task, no auxiliary term.
    pub fn per_task(outputs: &ModelOutputs, targets: &ModelTargets) -> Self {
        let tasks =
            outputs.tasks.iter().zip(&targets.tasks).map(|(out, t)| task_loss(out, t)).collect();
        Self { tasks, auxiliary: Vec::new() }
    }

    pub fn with_auxiliary(mut self, name: impl Into<String>, term: Tensor<1>) -> Self {
        self.auxiliary.push((name.into(), term));
        self
    }
}

/// The masked loss of one task output, or `None` when no row has its label.
pub fn task_loss(output: &TaskOutput, targets: &TaskTargets) -> Option<Tensor<1>> {
    if targets.count == 0.0 {
        return None;
    }
    let per_row = per_row_loss(output, targets.labels.clone());
    Some((per_row * targets.mask.clone()).sum().mul_scalar(1.0 / targets.count))
}

/// The unreduced loss of each row: BCE for logits and probabilities, squared error for values.
pub fn per_row_loss(output: &TaskOutput, labels: Tensor<2>) -> Tensor<2> {
    match output.kind {
        OutputKind::Logit => bce_with_logits(output.tensor.clone(), labels),
        OutputKind::Probability => bce_with_probabilities(output.tensor.clone(), labels),
        OutputKind::Value => {
            let diff = output.tensor.clone() - labels;
            diff.clone() * diff
        }
    }
}

/// max(x, 0) − x·y + ln(1 + e^(−|x|)): the numerically stable form, exact for large |x|.
pub fn bce_with_logits(logits: Tensor<2>, labels: Tensor<2>) -> Tensor<2> {
    let positive_part = logits.clone().clamp_min(0.0);
    let softplus_tail = logits.clone().abs().neg().exp().add_scalar(1.0).log();
    positive_part - logits * labels + softplus_tail
}

/// −y·ln p − (1 − y)·ln(1 − p), with p clipped away from 0 and 1.
pub fn bce_with_probabilities(p: Tensor<2>, labels: Tensor<2>) -> Tensor<2> {
    let p = p.clamp(PROBABILITY_EPS, 1.0 - PROBABILITY_EPS);
    let one_minus_p = p.clone().neg().add_scalar(1.0);
    let one_minus_y = labels.clone().neg().add_scalar(1.0);
    (labels * p.log() + one_minus_y * one_minus_p.log()).neg()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    fn t2(values: Vec<f32>, device: &Device) -> Tensor<2> {
        let n = values.len();
        Tensor::from_data(TensorData::new(values, [n, 1]), device)
    }

    fn targets(labels: Vec<f32>, mask: Vec<f32>, device: &Device) -> TaskTargets {
        let count = mask.iter().sum();
        TaskTargets { labels: t2(labels, device), mask: t2(mask, device), count }
    }

    #[test]
    fn masked_bce_matches_hand_computed_values() {
        let device = Device::flex();
        let out =
            TaskOutput { tensor: t2(vec![0.0, 2.0, -30.0], &device), kind: OutputKind::Logit };
        let t = targets(vec![1.0, 0.0, 1.0], vec![1.0, 1.0, 0.0], &device);
        let loss: f32 = task_loss(&out, &t).unwrap().into_scalar();
        // ln 2 for (0, 1); ln(1 + e²) = 2.126928 for (2, 0); the masked row counts for nothing.
        let expected = ((2.0f64).ln() + (1.0 + (2.0f64).exp()).ln()) / 2.0;
        assert!((loss as f64 - expected).abs() < 1e-5, "{loss} vs {expected}");
    }

    #[test]
    fn bce_on_probabilities_equals_bce_on_their_logits() {
        let device = Device::flex();
        let logits = vec![-3.0f32, -0.5, 0.0, 1.5, 4.0];
        let labels = vec![0.0f32, 1.0, 1.0, 0.0, 1.0];
        let probs: Vec<f32> = logits.iter().map(|x| 1.0 / (1.0 + (-x).exp())).collect();
        let a: Vec<f32> = bce_with_logits(t2(logits, &device), t2(labels.clone(), &device))
            .into_data()
            .try_to_vec()
            .unwrap();
        let b: Vec<f32> = bce_with_probabilities(t2(probs, &device), t2(labels, &device))
            .into_data()
            .try_to_vec()
            .unwrap();
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-5, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn bce_stays_finite_for_huge_logits_and_certain_probabilities() {
        let device = Device::flex();
        let values: Vec<f32> =
            bce_with_logits(t2(vec![1000.0, -1000.0], &device), t2(vec![0.0, 1.0], &device))
                .into_data()
                .try_to_vec()
                .unwrap();
        assert_eq!(values, vec![1000.0, 1000.0]);
        let values: Vec<f32> =
            bce_with_probabilities(t2(vec![1.0, 0.0], &device), t2(vec![0.0, 1.0], &device))
                .into_data()
                .try_to_vec()
                .unwrap();
        assert!(values.iter().all(|v| v.is_finite() && *v > 15.0), "{values:?}");
    }

    #[test]
    fn masked_mse_and_empty_masks() {
        let device = Device::flex();
        let out = TaskOutput { tensor: t2(vec![0.5, 1.0], &device), kind: OutputKind::Value };
        let loss: f32 = task_loss(&out, &targets(vec![0.0, 0.0], vec![1.0, 0.0], &device))
            .unwrap()
            .into_scalar();
        assert!((loss - 0.25).abs() < 1e-7);
        assert!(task_loss(&out, &targets(vec![0.0, 0.0], vec![0.0, 0.0], &device)).is_none());
    }
}
