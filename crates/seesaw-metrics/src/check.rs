//! Input validation shared by the metrics (crate-private).

use crate::error::{MetricError, Result};
use crate::label::BinaryLabel;

pub(crate) fn same_len(
    left: &'static str,
    left_len: usize,
    right: &'static str,
    right_len: usize,
) -> Result<()> {
    if left_len == right_len {
        Ok(())
    } else {
        Err(MetricError::LengthMismatch { left, left_len, right, right_len })
    }
}

/// Ranking scores may be infinite (they are only compared), but not NaN.
pub(crate) fn no_nan_scores(scores: &[f32]) -> Result<()> {
    match scores.iter().position(|s| s.is_nan()) {
        Some(index) => Err(MetricError::NanScore { index }),
        None => Ok(()),
    }
}

pub(crate) fn finite(what: &'static str, values: &[f32]) -> Result<()> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(MetricError::NonFinite { what, index, value: f64::from(values[index]) }),
        None => Ok(()),
    }
}

pub(crate) fn probabilities(probs: &[f32]) -> Result<()> {
    match probs.iter().position(|p| !(0.0..=1.0).contains(p)) {
        Some(index) => {
            Err(MetricError::ProbabilityOutOfRange { index, value: f64::from(probs[index]) })
        }
        None => Ok(()),
    }
}

/// Reads every label as a bool, failing on the first invalid one.
pub(crate) fn binary_labels<L: BinaryLabel>(labels: &[L]) -> Result<Vec<bool>> {
    labels
        .iter()
        .enumerate()
        .map(|(index, l)| {
            l.binary_label().ok_or(MetricError::InvalidLabel { index, value: l.raw() })
        })
        .collect()
}

/// Total order on scores already known not to be NaN. `-0.0` and `0.0` compare equal (they are
/// the same score), unlike `f32::total_cmp`.
pub(crate) fn cmp_scores(a: f32, b: f32) -> std::cmp::Ordering {
    a.partial_cmp(&b).unwrap_or(std::cmp::Ordering::Equal)
}
