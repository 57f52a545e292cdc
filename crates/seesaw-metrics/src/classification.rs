//! Pointwise binary-classification metrics on predicted probabilities: logloss and accuracy.
//!
//! Inputs are probabilities in `[0, 1]` (after the sigmoid), not logits: a value outside
//! `[0, 1]` is an error, which catches logits passed by mistake. Labels follow the crate's
//! [`BinaryLabel`] convention (float label > 0.5 is positive), so soft labels are binarised.

use crate::check;
use crate::error::Result;
use crate::label::BinaryLabel;

/// Lower clip bound for probabilities in [`logloss`]; the upper bound is `1 − LOGLOSS_EPS`.
pub const LOGLOSS_EPS: f64 = 1e-7;

/// Mean binary cross-entropy (natural log), with probabilities clipped.
///
/// ```text
/// p̂_i     = clamp(p_i, 1e-7, 1 − 1e-7)            (in f64)
/// logloss = −(1/n) Σ_i [ y_i ln p̂_i + (1 − y_i) ln(1 − p̂_i) ]
/// ```
///
/// Why clip: one confident wrong prediction (`p = 0` for a positive) would make the loss
/// infinite and hide every other difference between models; clipping bounds each row's loss
/// at `−ln(1e-7) ≈ 16.118`.
///
/// `Ok(None)` on empty input; errors on mismatched lengths, probabilities outside `[0, 1]`
/// (including NaN) and invalid labels.
pub fn logloss<L: BinaryLabel>(probs: &[f32], labels: &[L]) -> Result<Option<f64>> {
    check::same_len("probs", probs.len(), "labels", labels.len())?;
    check::probabilities(probs)?;
    let labels = check::binary_labels(labels)?;
    if probs.is_empty() {
        return Ok(None);
    }
    let total: f64 = probs
        .iter()
        .zip(&labels)
        .map(|(&p, &y)| {
            let p = f64::from(p).clamp(LOGLOSS_EPS, 1.0 - LOGLOSS_EPS);
            if y { -p.ln() } else { -(1.0 - p).ln() }
        })
        .sum();
    Ok(Some(total / probs.len() as f64))
}

/// Fraction of rows classified correctly at threshold 0.5.
///
/// A row is predicted positive when `p >= 0.5` (so exactly 0.5 predicts positive), negative
/// otherwise. Same input conventions as [`logloss`]; `Ok(None)` on empty input.
pub fn accuracy<L: BinaryLabel>(probs: &[f32], labels: &[L]) -> Result<Option<f64>> {
    accuracy_at(probs, labels, 0.5)
}

/// Fraction of rows classified correctly when `p >= threshold` predicts positive.
pub fn accuracy_at<L: BinaryLabel>(
    probs: &[f32],
    labels: &[L],
    threshold: f32,
) -> Result<Option<f64>> {
    check::same_len("probs", probs.len(), "labels", labels.len())?;
    check::probabilities(probs)?;
    let labels = check::binary_labels(labels)?;
    if probs.is_empty() {
        return Ok(None);
    }
    let correct = probs.iter().zip(&labels).filter(|&(&p, &y)| (p >= threshold) == y).count();
    Ok(Some(correct as f64 / probs.len() as f64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MetricError;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn logloss_by_hand() {
        // y=1, p=0.8: -ln 0.8 = 0.2231435513
        // y=0, p=0.4: -ln 0.6 = 0.5108256238
        // y=1, p=0.5: -ln 0.5 = 0.6931471806
        // mean = 1.4271163557 / 3 = 0.4757054519
        let v = logloss(&[0.8, 0.4, 0.5], &[1.0f32, 0.0, 1.0]).unwrap().unwrap();
        let expected = (-(0.8f64.ln()) - 0.6f64.ln() - 0.5f64.ln()) / 3.0;
        // f32 → f64 conversion of 0.8 and 0.4 is not exact; allow for it.
        assert!((v - expected).abs() < 1e-7, "{v} vs {expected}");
        assert!((v - 0.475_705_451_9).abs() < 1e-7);
    }

    #[test]
    fn logloss_clips_at_zero_and_one() {
        // p=0 for a positive: clipped to 1e-7, loss = -ln(1e-7) = 7 ln 10 = 16.11809565...
        let v = logloss(&[0.0], &[true]).unwrap().unwrap();
        assert!(close(v, 7.0 * 10f64.ln()), "{v}");
        assert!(close(v, 16.118_095_650_958_32));
        // p=1 for a negative: clipped to 1 - 1e-7, loss = -ln(1 - (1 - 1e-7)) = -ln(1e-7) again
        // (up to the rounding of 1 - 1e-7 in f64, ~1e-9 relative).
        let v = logloss(&[1.0], &[false]).unwrap().unwrap();
        assert!((v - 16.118_095_650_958_32).abs() < 1e-6, "{v}");
        // p=1 for a positive: clipped to 1 - 1e-7, loss = -ln(1 - 1e-7) ≈ 1.00000005e-7.
        let v = logloss(&[1.0], &[true]).unwrap().unwrap();
        assert!((v - 1.000_000_05e-7).abs() < 1e-12, "{v}");
        // p=0 for a negative: -ln(1 - 1e-7), same.
        let v = logloss(&[0.0], &[false]).unwrap().unwrap();
        assert!((v - 1.000_000_05e-7).abs() < 1e-12, "{v}");
        // Mean of one clipped row and one exact row: (16.11809565 + ln 2) / 2.
        let v = logloss(&[0.0, 0.5], &[true, false]).unwrap().unwrap();
        assert!(close(v, (16.118_095_650_958_32 + 2f64.ln()) / 2.0));
    }

    #[test]
    fn logloss_rejects_bad_input() {
        assert_eq!(logloss::<bool>(&[], &[]).unwrap(), None);
        assert!(matches!(
            logloss(&[1.5], &[true]),
            Err(MetricError::ProbabilityOutOfRange { index: 0, .. })
        ));
        assert!(matches!(
            logloss(&[0.2, -0.1], &[true, false]),
            Err(MetricError::ProbabilityOutOfRange { index: 1, .. })
        ));
        assert!(matches!(
            logloss(&[f32::NAN], &[true]),
            Err(MetricError::ProbabilityOutOfRange { index: 0, .. })
        ));
        assert!(matches!(logloss(&[0.5], &[true, false]), Err(MetricError::LengthMismatch { .. })));
        assert!(matches!(
            logloss(&[0.5], &[f32::NAN]),
            Err(MetricError::InvalidLabel { index: 0, .. })
        ));
    }

    #[test]
    fn accuracy_by_hand() {
        // p:    0.9  0.5  0.49  0.1  0.7
        // pred:  1    1    0     0    1     (p >= 0.5 → positive; 0.5 itself is positive)
        // y:     1    0    0     1    1
        // right: ✓    ✗    ✓     ✗    ✓   → 3/5 = 0.6
        let p = [0.9, 0.5, 0.49, 0.1, 0.7];
        let y = [1.0f32, 0.0, 0.0, 1.0, 1.0];
        assert_eq!(accuracy(&p, &y).unwrap(), Some(0.6));
        // Threshold 0.8: preds 1 0 0 0 0 → right: ✓ ✓ ✓ ✗ ✗ → 3/5.
        assert_eq!(accuracy_at(&p, &y, 0.8).unwrap(), Some(0.6));
        // Threshold 0.95: all predicted negative → right where y=0 → 2/5.
        assert_eq!(accuracy_at(&p, &y, 0.95).unwrap(), Some(0.4));
    }

    #[test]
    fn accuracy_exact_half_predicts_positive() {
        assert_eq!(accuracy(&[0.5], &[true]).unwrap(), Some(1.0));
        assert_eq!(accuracy(&[0.5], &[false]).unwrap(), Some(0.0));
    }

    #[test]
    fn accuracy_empty_and_invalid() {
        assert_eq!(accuracy::<f32>(&[], &[]).unwrap(), None);
        assert!(matches!(
            accuracy(&[2.0], &[true]),
            Err(MetricError::ProbabilityOutOfRange { .. })
        ));
    }
}
