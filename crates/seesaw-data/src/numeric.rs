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

/// At most this many values are held for quantile edges while fitting; past it, every other one
/// is dropped and later values are taken at twice the stride. Logs of up to this many training
/// rows keep every value until the end, where the stride rule of `MAX_QUANTILE_SAMPLE` applies.
const MAX_HELD_SAMPLE: usize = 8 * MAX_QUANTILE_SAMPLE;

/// The running statistics a numeric transform is fitted from: filled from one slice of rows or
/// chunk by chunk from a stream, and merged across chunks.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NumericFitter {
    transform: NumericTransform,
    buckets: usize,
    n: u64,
    sum: f64,
    sum_sq: f64,
    /// Quantile transform only: every `stride`-th value seen.
    sample: Vec<f64>,
    stride: u64,
    seen: u64,
}

impl NumericFitter {
    pub fn new(transform: NumericTransform, buckets: usize) -> Self {
        Self {
            transform,
            buckets,
            n: 0,
            sum: 0.0,
            sum_sq: 0.0,
            sample: Vec::new(),
            stride: 1,
            seen: 0,
        }
    }

    /// Adds training values; NaN (missing) values are skipped.
    pub fn add(&mut self, values: impl Iterator<Item = f32>) {
        let uses_log =
            matches!(self.transform, NumericTransform::Log1p | NumericTransform::Log1pZscore);
        let quantile = self.transform == NumericTransform::Quantile;
        for v in values.filter(|v| !v.is_nan()) {
            let x = if uses_log { signed_log1p(v as f64) } else { v as f64 };
            self.n += 1;
            self.sum += x;
            self.sum_sq += x * x;
            if quantile {
                if self.seen.is_multiple_of(self.stride) {
                    self.sample.push(v as f64);
                    if self.sample.len() > MAX_HELD_SAMPLE {
                        self.halve_sample();
                    }
                }
                self.seen += 1;
            }
        }
    }

    fn halve_sample(&mut self) {
        let mut keep = false;
        self.sample.retain(|_| {
            keep = !keep;
            keep
        });
        self.stride *= 2;
    }

    /// Adds the statistics of another fitter of the same transform.
    pub fn merge(&mut self, other: NumericFitter) {
        self.n += other.n;
        self.sum += other.sum;
        self.sum_sq += other.sum_sq;
        self.seen += other.seen;
        self.stride = self.stride.max(other.stride);
        self.sample.extend(other.sample);
        while self.sample.len() > MAX_HELD_SAMPLE {
            self.halve_sample();
        }
    }

    pub fn finish(self) -> FittedNumeric {
        let Self { transform, buckets, n, sum, sum_sq, mut sample, .. } = self;
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
        FittedNumeric { transform, mean, std, edges }
    }
}

impl FittedNumeric {
    /// Fits on the values of training rows; NaN (missing) values are skipped.
    pub fn fit(
        transform: NumericTransform,
        values: impl Iterator<Item = f32>,
        buckets: usize,
    ) -> Self {
        let mut fitter = NumericFitter::new(transform, buckets);
        fitter.add(values);
        fitter.finish()
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
    fn fitting_in_chunks_matches_fitting_at_once() {
        let values: Vec<f32> = (0..1000).map(|v| ((v * 37) % 1000) as f32 * 0.5).collect();
        for transform in [NumericTransform::Log1pZscore, NumericTransform::Quantile] {
            let whole = FittedNumeric::fit(transform, values.iter().copied(), 5);
            let mut fitter = NumericFitter::new(transform, 5);
            for chunk in values.chunks(300) {
                let mut part = NumericFitter::new(transform, 5);
                part.add(chunk.iter().copied());
                fitter.merge(part);
            }
            let merged = fitter.finish();
            assert!((merged.mean - whole.mean).abs() < 1e-9 * whole.mean.abs().max(1.0));
            assert!((merged.std - whole.std).abs() < 1e-9 * whole.std.max(1.0));
            assert_eq!(merged.edges, whole.edges, "{transform:?}");
        }
    }

    #[test]
    fn a_long_stream_keeps_a_bounded_even_sample() {
        let mut fitter = NumericFitter::new(NumericTransform::Quantile, 4);
        // Scrambled values in 0..1000, so that a thinned sample is not a lattice of them.
        let scrambled = |i: u64| (i.wrapping_mul(2_654_435_761) % (1 << 32) % 1000) as f32;
        fitter.add((0..(MAX_HELD_SAMPLE as u64 * 2 + 10)).map(scrambled));
        assert!(fitter.sample.len() <= MAX_HELD_SAMPLE);
        assert!(fitter.stride >= 2, "the sample was thinned");
        let fitted = fitter.finish();
        assert_eq!(fitted.edges.len(), 3);
        for (edge, quartile) in fitted.edges.iter().zip([250.0, 500.0, 750.0]) {
            assert!((edge - quartile).abs() < 5.0, "{:?}", fitted.edges);
        }
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
