//! Numeric transforms fitted on training rows: z-score, signed log1p, quantile buckets.

use serde::{Deserialize, Serialize};

use crate::labels::quantile_sorted;
use crate::spec::NumericTransform;

/// At most this many values are kept to fit quantile edges (an even stride over the rest).
const MAX_QUANTILE_SAMPLE: usize = 1_000_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FittedNumeric {
    pub transform: NumericTransform,
    /// Mean and standard deviation after the log step (when there is one); the mean also fills
    /// missing values, so a missing cell encodes as 0 after z-scoring.
    pub mean: f64,
    pub std: f64,
    /// Quantile transform: ascending inner bucket edges.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub edges: Vec<f64>,
}

fn signed_log1p(x: f64) -> f64 {
    x.signum() * x.abs().ln_1p()
}

impl FittedNumeric {
    /// Fits on the values of training rows; NaN (missing) values are skipped.
    pub fn fit(
        transform: NumericTransform,
        values: impl Iterator<Item = f32>,
        buckets: usize,
    ) -> Self {
        let uses_log = matches!(transform, NumericTransform::Log1p | NumericTransform::Log1pZscore);
        let mut n = 0u64;
        let (mut sum, mut sum_sq) = (0.0f64, 0.0f64);
        let mut sample = Vec::new();
        for v in values.filter(|v| !v.is_nan()) {
            let x = if uses_log { signed_log1p(v as f64) } else { v as f64 };
            n += 1;
            sum += x;
            sum_sq += x * x;
            if transform == NumericTransform::Quantile {
                sample.push(v as f64);
            }
        }
        let mean = if n > 0 { sum / n as f64 } else { 0.0 };
        let variance = if n > 1 { (sum_sq - n as f64 * mean * mean) / (n - 1) as f64 } else { 0.0 };
        let std = variance.max(0.0).sqrt();
        let mut edges = Vec::new();
        if transform == NumericTransform::Quantile && !sample.is_empty() {
            if sample.len() > MAX_QUANTILE_SAMPLE {
                let stride = sample.len().div_ceil(MAX_QUANTILE_SAMPLE);
                sample = sample.into_iter().step_by(stride).collect();
            }
            sample.sort_by(f64::total_cmp);
            edges =
                (1..buckets).map(|b| quantile_sorted(&sample, b as f64 / buckets as f64)).collect();
            edges.dedup();
        }
        Self { transform, mean, std, edges }
    }

    /// The dense value of `v` (NaN = missing, filled with the training mean).
    pub fn dense(&self, v: f32) -> f32 {
        let x = match self.transform {
            NumericTransform::Log1p | NumericTransform::Log1pZscore if !v.is_nan() => {
                signed_log1p(v as f64)
            }
            _ if v.is_nan() => self.mean,
            _ => v as f64,
        };
        let scaled = match self.transform {
            NumericTransform::Zscore | NumericTransform::Log1pZscore => {
                if self.std > 0.0 {
                    (x - self.mean) / self.std
                } else {
                    0.0
                }
            }
            _ => x,
        };
        scaled as f32
    }

    /// Quantile transform: 0 for missing, 1 + the bucket otherwise.
    pub fn bucket(&self, v: f32) -> u32 {
        if v.is_nan() {
            return 0;
        }
        1 + self.edges.partition_point(|&edge| edge <= v as f64) as u32
    }

    pub fn bucket_cardinality(&self) -> usize {
        self.edges.len() + 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zscore_uses_the_training_mean_and_sample_std() {
        let fitted = FittedNumeric::fit(
            NumericTransform::Zscore,
            [1.0f32, 2.0, 3.0, f32::NAN].into_iter(),
            0,
        );
        assert_eq!(fitted.mean, 2.0);
        assert_eq!(fitted.std, 1.0);
        assert_eq!(fitted.dense(3.0), 1.0);
        assert_eq!(fitted.dense(f32::NAN), 0.0);
    }

    #[test]
    fn signed_log_keeps_negative_sentinels_finite() {
        let fitted = FittedNumeric::fit(NumericTransform::Log1p, [-124.0f32, 0.0].into_iter(), 0);
        assert!((fitted.dense(-124.0) + (125.0f32).ln()).abs() < 1e-5);
    }

    #[test]
    fn quantile_buckets_reserve_zero_for_missing() {
        let fitted = FittedNumeric::fit(NumericTransform::Quantile, (1..=100).map(|v| v as f32), 4);
        assert_eq!(fitted.edges.len(), 3);
        assert_eq!(fitted.bucket(f32::NAN), 0);
        assert_eq!(fitted.bucket(1.0), 1);
        assert_eq!(fitted.bucket(100.0), 4);
        assert_eq!(fitted.bucket_cardinality(), 5);
    }
}
