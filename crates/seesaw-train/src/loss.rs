//! Masked per-task losses: BCE with logits for binary tasks, MSE for regression, each the mean
//! over the rows where the task's label exists.

use burn::tensor::Tensor;
use seesaw_data::feature_map::TaskKind;

use crate::tensors::TaskTargets;

/// The loss of one task, or None when no row of the batch has its label.
pub fn task_loss(kind: TaskKind, output: Tensor<2>, targets: &TaskTargets) -> Option<Tensor<1>> {
    if targets.count == 0.0 {
        return None;
    }
    let per_row = match kind {
        TaskKind::Binary => bce_with_logits(output, targets.labels.clone()),
        TaskKind::Regression => {
            let diff = output - targets.labels.clone();
            diff.clone() * diff
        }
    };
    Some((per_row * targets.mask.clone()).sum().mul_scalar(1.0 / targets.count))
}

/// max(x, 0) − x·y + ln(1 + e^(−|x|)): the numerically stable form, exact for large |x|.
pub fn bce_with_logits(logits: Tensor<2>, labels: Tensor<2>) -> Tensor<2> {
    let positive_part = logits.clone().clamp_min(0.0);
    let softplus_tail = logits.clone().abs().neg().exp().add_scalar(1.0).log();
    positive_part - logits * labels + softplus_tail
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    #[test]
    fn masked_bce_matches_hand_computed_values() {
        let device = Device::flex();
        let logits =
            Tensor::<2>::from_data(TensorData::new(vec![0.0f32, 2.0, -30.0], [3, 1]), &device);
        let labels =
            Tensor::<2>::from_data(TensorData::new(vec![1.0f32, 0.0, 1.0], [3, 1]), &device);
        let mask = Tensor::<2>::from_data(TensorData::new(vec![1.0f32, 1.0, 0.0], [3, 1]), &device);
        let targets = TaskTargets { labels, mask, count: 2.0 };
        let loss: f32 = task_loss(TaskKind::Binary, logits, &targets).unwrap().into_scalar();
        // ln 2 for (0, 1); ln(1 + e²) = 2.126928 for (2, 0); the masked row counts for nothing.
        let expected = ((2.0f64).ln() + (1.0 + (2.0f64).exp()).ln()) / 2.0;
        assert!((loss as f64 - expected).abs() < 1e-5, "{loss} vs {expected}");
    }

    #[test]
    fn bce_stays_finite_for_huge_logits() {
        let device = Device::flex();
        let logits =
            Tensor::<2>::from_data(TensorData::new(vec![1000.0f32, -1000.0], [2, 1]), &device);
        let labels = Tensor::<2>::from_data(TensorData::new(vec![0.0f32, 1.0], [2, 1]), &device);
        let values: Vec<f32> = bce_with_logits(logits, labels).into_data().try_to_vec().unwrap();
        assert_eq!(values, vec![1000.0, 1000.0]);
    }

    #[test]
    fn masked_mse_and_empty_masks() {
        let device = Device::flex();
        let preds = Tensor::<2>::from_data(TensorData::new(vec![0.5f32, 1.0], [2, 1]), &device);
        let labels = Tensor::<2>::from_data(TensorData::new(vec![0.0f32, 0.0], [2, 1]), &device);
        let mask = Tensor::<2>::from_data(TensorData::new(vec![1.0f32, 0.0], [2, 1]), &device);
        let loss: f32 = task_loss(
            TaskKind::Regression,
            preds.clone(),
            &TaskTargets { labels: labels.clone(), mask, count: 1.0 },
        )
        .unwrap()
        .into_scalar();
        assert!((loss - 0.25).abs() < 1e-7);
        let none = Tensor::<2>::zeros([2, 1], &device);
        assert!(
            task_loss(TaskKind::Regression, preds, &TaskTargets { labels, mask: none, count: 0.0 })
                .is_none()
        );
    }
}
