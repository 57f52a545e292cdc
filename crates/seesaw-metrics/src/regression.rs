//! Regression metrics for continuous targets such as the (capped) watch ratio.
//!
//! ```text
//! MSE  = (1/n) Σ_i (ŷ_i − y_i)²
//! RMSE = √MSE                      (same unit as the target, so readable next to MAE)
//! MAE  = (1/n) Σ_i |ŷ_i − y_i|     (less dominated by the long tail of re-watches)
//! ```
//!
//! Sums are accumulated in f64. `Ok(None)` on empty input; mismatched lengths and NaN or
//! infinite predictions/targets are errors (a NaN would otherwise poison the mean silently).

use crate::check;
use crate::error::Result;

fn residuals<'a>(
    preds: &'a [f32],
    targets: &'a [f32],
) -> Result<Option<impl Iterator<Item = f64> + 'a>> {
    check::same_len("preds", preds.len(), "targets", targets.len())?;
    check::finite("preds", preds)?;
    check::finite("targets", targets)?;
    if preds.is_empty() {
        return Ok(None);
    }
    Ok(Some(preds.iter().zip(targets).map(|(&p, &t)| f64::from(p) - f64::from(t))))
}

/// Mean squared error: `(1/n) Σ (ŷ_i − y_i)²`.
pub fn mse(preds: &[f32], targets: &[f32]) -> Result<Option<f64>> {
    let n = preds.len() as f64;
    Ok(residuals(preds, targets)?.map(|r| r.map(|d| d * d).sum::<f64>() / n))
}

/// Root mean squared error: `√MSE`.
pub fn rmse(preds: &[f32], targets: &[f32]) -> Result<Option<f64>> {
    Ok(mse(preds, targets)?.map(f64::sqrt))
}

/// Mean absolute error: `(1/n) Σ |ŷ_i − y_i|`.
pub fn mae(preds: &[f32], targets: &[f32]) -> Result<Option<f64>> {
    let n = preds.len() as f64;
    Ok(residuals(preds, targets)?.map(|r| r.map(f64::abs).sum::<f64>() / n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MetricError;

    // preds   0.5  1.0  0.0   2.0
    // targets 1.0  1.0  0.5   0.5
    // diff   -0.5  0.0 -0.5   1.5
    // sq      0.25 0.0  0.25  2.25  → sum 2.75, MSE = 0.6875, RMSE = 0.8291561976
    // abs     0.5  0.0  0.5   1.5   → sum 2.5,  MAE = 0.625
    // (All values exact in binary floating point.)
    const P: [f32; 4] = [0.5, 1.0, 0.0, 2.0];
    const T: [f32; 4] = [1.0, 1.0, 0.5, 0.5];

    #[test]
    fn by_hand() {
        assert_eq!(mse(&P, &T).unwrap(), Some(0.6875));
        assert_eq!(rmse(&P, &T).unwrap(), Some(0.6875f64.sqrt()));
        assert!((rmse(&P, &T).unwrap().unwrap() - 0.829_156_197_6).abs() < 1e-9);
        assert_eq!(mae(&P, &T).unwrap(), Some(0.625));
    }

    #[test]
    fn perfect_prediction_is_zero() {
        assert_eq!(mse(&T, &T).unwrap(), Some(0.0));
        assert_eq!(rmse(&T, &T).unwrap(), Some(0.0));
        assert_eq!(mae(&T, &T).unwrap(), Some(0.0));
    }

    #[test]
    fn empty_and_invalid() {
        assert_eq!(mse(&[], &[]).unwrap(), None);
        assert_eq!(rmse(&[], &[]).unwrap(), None);
        assert_eq!(mae(&[], &[]).unwrap(), None);
        assert!(matches!(mse(&[1.0], &[1.0, 2.0]), Err(MetricError::LengthMismatch { .. })));
        assert!(matches!(
            mae(&[1.0, f32::NAN], &[1.0, 2.0]),
            Err(MetricError::NonFinite { what: "preds", index: 1, .. })
        ));
        assert!(matches!(
            rmse(&[1.0], &[f32::INFINITY]),
            Err(MetricError::NonFinite { what: "targets", index: 0, .. })
        ));
    }
}
