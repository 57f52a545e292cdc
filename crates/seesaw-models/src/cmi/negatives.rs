//! Negatives for the contrastive CMI critic. A negative keeps a row's (h, y_a) and replaces y_b
//! by a value drawn from p(y_b | h), which breaks whatever ties y_b to y_a beyond h. Each row gets
//! a small discrete distribution q_i over replacement values instead of one draw, so the critic's
//! loss and the estimate take the expectation exactly (no sampling noise, no random numbers):
//!
//! - kernel neighbours: the y_b of the row's k nearest other rows in h (Euclidean), weighted by
//!   an RBF kernel exp(−d²/2σ²) with σ² the median squared distance to the k-th neighbour
//!   (a local version of CCL-K's kernel weighting; the full (K + λI)⁻¹K is O(n³));
//! - variational: the model's own prediction of y_b — {0, 1} with weights {1 − p, p} for a binary
//!   task; for a regression task, the prediction plus the quantiles of the residuals
//!   (`residual_quantiles`: a Gaussian around μ, tried first, does not keep the skew and the
//!   bounds of a target such as a watch ratio).

use burn::tensor::{Device, Tensor, TensorData};
use seesaw_data::feature_map::TaskKind;

/// How many replacement values a regression task's generator gives each row.
const REGRESSION_NEGATIVES: usize = 8;

/// Per row i, `m` replacement values and their weights (summing to 1; all 0 on a row that has
/// no usable negative, which then counts for nothing).
#[derive(Debug, Clone, PartialEq)]
pub struct Negatives {
    pub n: usize,
    pub m: usize,
    /// [n × m], row-major.
    pub values: Vec<f32>,
    /// [n × m], row-major.
    pub weights: Vec<f32>,
}

impl Negatives {
    /// Binary y_b ~ Bernoulli(p_i).
    pub fn bernoulli(p: &[f32]) -> Self {
        let n = p.len();
        let values = (0..n).flat_map(|_| [0.0, 1.0]).collect();
        let weights =
            p.iter().flat_map(|&p| [1.0 - p.clamp(0.0, 1.0), p.clamp(0.0, 1.0)]).collect();
        Self { n, m: 2, values, weights }
    }

    /// The variational generator, the model's own tower b: Bernoulli(p_i) for a binary task;
    /// for a regression task the prediction plus the quantiles of the residuals of the rows
    /// that have the label (`mask`).
    pub fn from_tower(kind: TaskKind, prediction: &[f32], labels: &[f32], mask: &[f32]) -> Self {
        match kind {
            TaskKind::Binary => Self::bernoulli(prediction),
            TaskKind::Regression => {
                let residuals: Vec<f32> = (0..prediction.len())
                    .filter(|&i| mask[i] > 0.0)
                    .map(|i| labels[i] - prediction[i])
                    .collect();
                Self::residual_quantiles(prediction, &residuals, REGRESSION_NEGATIVES)
            }
        }
    }

    /// Regression y_b = μ_i + r, r from the empirical distribution of the residuals (its m
    /// quantiles at (k + ½)/m, equally weighted): the generator keeps the skew and the bounds of
    /// real targets such as a watch ratio, which a Gaussian around μ does not.
    pub fn residual_quantiles(mean: &[f32], residuals: &[f32], m: usize) -> Self {
        let mut sorted: Vec<f32> = residuals.iter().copied().filter(|r| r.is_finite()).collect();
        sorted.sort_by(f32::total_cmp);
        if sorted.is_empty() {
            sorted.push(0.0);
        }
        let quantiles: Vec<f32> = (0..m)
            .map(|k| {
                let q = (k as f64 + 0.5) / m as f64;
                sorted[((q * sorted.len() as f64) as usize).min(sorted.len() - 1)]
            })
            .collect();
        let n = mean.len();
        let values = mean.iter().flat_map(|&mu| quantiles.iter().map(move |r| mu + r)).collect();
        Self { n, m, values, weights: vec![1.0 / m as f32; n * m] }
    }

    /// The values and weights as [n, m] tensors.
    pub fn tensors(&self, device: &Device) -> (Tensor<2>, Tensor<2>) {
        let t =
            |v: &Vec<f32>| Tensor::from_data(TensorData::new(v.clone(), [self.n, self.m]), device);
        (t(&self.values), t(&self.weights))
    }

    /// Whether row i has any weight.
    pub fn usable(&self, i: usize) -> bool {
        self.weights[i * self.m..(i + 1) * self.m].iter().any(|&w| w > 0.0)
    }
}

/// Each row's k nearest other rows in h and their normalised RBF weights.
#[derive(Debug, Clone, PartialEq)]
pub struct Neighbours {
    pub n: usize,
    pub k: usize,
    /// [n × k]
    pub index: Vec<u32>,
    /// [n × k], RBF kernel values (not normalised: `negatives` normalises over the neighbours
    /// that have the label).
    pub kernel: Vec<f32>,
}

impl Neighbours {
    /// The k nearest other rows of each of the n rows of `h` ([n × d], row-major), by brute
    /// force in blocks of rows (the distance matrix of a block is one matrix product).
    /// k is capped at n − 1.
    pub fn rbf(h: &[f32], n: usize, d: usize, k: usize, device: &Device) -> Self {
        assert_eq!(h.len(), n * d, "h is not n × d");
        let k = k.min(n.saturating_sub(1));
        if k == 0 {
            return Self { n, k, index: Vec::new(), kernel: Vec::new() };
        }
        let norms: Vec<f32> =
            h.chunks_exact(d.max(1)).map(|r| r.iter().map(|v| v * v).sum()).collect();
        let all = Tensor::<2>::from_data(TensorData::new(h.to_vec(), [n, d]), device);
        let all_t = all.clone().transpose();
        const BLOCK: usize = 1024;
        let mut index = vec![0u32; n * k];
        let mut sq = vec![0f32; n * k];
        let mut best: Vec<(f32, u32)> = Vec::with_capacity(k + 1);
        for start in (0..n).step_by(BLOCK) {
            let end = (start + BLOCK).min(n);
            let dots: Vec<f32> = all
                .clone()
                .slice(start..end)
                .matmul(all_t.clone())
                .into_data()
                .try_to_vec()
                .expect("f32 distances");
            for (r, i) in (start..end).enumerate() {
                best.clear();
                let row = &dots[r * n..(r + 1) * n];
                for (j, &dot) in row.iter().enumerate() {
                    if j == i {
                        continue;
                    }
                    let dist = (norms[i] + norms[j] - 2.0 * dot).max(0.0);
                    if best.len() == k && dist >= best[k - 1].0 {
                        continue;
                    }
                    let at = best.partition_point(|&(b, _)| b <= dist);
                    best.insert(at, (dist, j as u32));
                    best.truncate(k);
                }
                for (slot, &(dist, j)) in best.iter().enumerate() {
                    index[i * k + slot] = j;
                    sq[i * k + slot] = dist;
                }
            }
        }
        // σ² = the median squared distance to the k-th neighbour (at least a tiny positive
        // number, so that duplicated rows do not divide by zero).
        let mut kth: Vec<f32> = (0..n).map(|i| sq[i * k + k - 1]).collect();
        kth.sort_by(f32::total_cmp);
        let sigma2 = kth[n / 2].max(1e-12);
        let kernel = sq.iter().map(|&s| (-s / (2.0 * sigma2)).exp()).collect();
        Self { n, k, index, kernel }
    }

    /// Negatives from the neighbours' labels `y_b`, over the neighbours that have one
    /// (`mask_b`), kernel weights normalised per row.
    pub fn negatives(&self, y_b: &[f32], mask_b: &[f32]) -> Negatives {
        let (n, k) = (self.n, self.k);
        let mut values = vec![0f32; n * k];
        let mut weights = vec![0f32; n * k];
        for i in 0..n {
            let mut total = 0f32;
            for s in 0..k {
                let j = self.index[i * k + s] as usize;
                values[i * k + s] = y_b[j];
                let w = if mask_b[j] > 0.0 { self.kernel[i * k + s] } else { 0.0 };
                weights[i * k + s] = w;
                total += w;
            }
            if total > 0.0 {
                weights[i * k..(i + 1) * k].iter_mut().for_each(|w| *w /= total);
            }
        }
        Negatives { n, m: k, values, weights }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neighbours_are_the_nearest_other_rows() {
        let device = Device::flex();
        // Points on a line at 0, 1, 3, 7, 15.
        let h = [0.0f32, 1.0, 3.0, 7.0, 15.0];
        let nb = Neighbours::rbf(&h, 5, 1, 2, &device);
        assert_eq!(&nb.index[0..2], &[1, 2]);
        assert_eq!(&nb.index[4..6], &[1, 0]); // from 3: 1 at 2, 0 at 3 (7 is 4 away)
        assert_eq!(&nb.index[8..10], &[3, 2]);
        let neg = nb.negatives(&[10.0, 11.0, 13.0, 17.0, 25.0], &[1.0, 1.0, 0.0, 1.0, 1.0]);
        // Row 0's second neighbour (row 2) has no label: all its weight goes to row 1.
        assert_eq!((neg.values[0], neg.weights[0], neg.weights[1]), (11.0, 1.0, 0.0));
        for i in 0..5 {
            let s: f32 = neg.weights[i * 2..i * 2 + 2].iter().sum();
            assert!((s - 1.0).abs() < 1e-6);
        }
    }

    #[test]
    fn variational_negatives_follow_the_tower() {
        let b = Negatives::bernoulli(&[0.25]);
        assert_eq!((b.values.clone(), b.weights.clone()), (vec![0.0, 1.0], vec![0.75, 0.25]));
        assert_eq!(Negatives::from_tower(TaskKind::Binary, &[0.25], &[1.0], &[1.0]), b);
        // Residuals -50..49: the quantiles at 12.5%, 37.5%, 62.5%, 87.5% of them, added to μ.
        let residuals: Vec<f32> = (0..100).map(|r| r as f32 - 50.0).collect();
        let q = Negatives::residual_quantiles(&[1.0, 2.0], &residuals, 4);
        assert_eq!(&q.values[..4], &[1.0 - 38.0, 1.0 - 13.0, 1.0 + 12.0, 1.0 + 37.0]);
        assert_eq!((q.values[4] - q.values[0], q.weights[0]), (1.0, 0.25));
        // Regression from the tower: residuals of the labelled rows only (not the 100).
        let r =
            Negatives::from_tower(TaskKind::Regression, &[0.5, 0.5], &[1.0, 100.0], &[1.0, 0.0]);
        assert_eq!((r.m, &r.values[..2]), (8, &[1.0f32, 1.0][..]));
    }
}
