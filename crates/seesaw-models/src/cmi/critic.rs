//! The contrastive critic f(h, y_a, y_b) of one task pair, and the Donsker–Varadhan estimate.
//!
//! Trained to tell observed triples (label 1) from the same (h, y_a) with y_b replaced by a
//! negative (label 0, weighted by the negative's probability q), the optimal critic is
//! f* = ln p(y_b | h, y_a) / p(y_b | h): the pointwise CMI. The DV bound
//! E_joint[f] − ln E_negatives[e^f] equals I(Y_a; Y_b | H) at f* and is below it for any other f,
//! so a critic that has learnt nothing estimates 0, not a spurious dependence.

use burn::module::Module;
use burn::tensor::activation::softplus;
use burn::tensor::{Device, Tensor};

use crate::blocks::Tower;

#[derive(Module, Debug)]
pub struct PairCritic {
    pub tower: Tower,
}

impl PairCritic {
    /// A critic over h of width `h_dim`: an MLP on [h, y_a, y_b, y_a·y_b].
    pub fn new(h_dim: usize, hidden: &[usize], device: &Device) -> Self {
        Self { tower: Tower::new(h_dim + 3, hidden, device) }
    }

    /// f for [n, d] h and [n, 1] labels: [n, 1].
    pub fn score(&self, h: Tensor<2>, y_a: Tensor<2>, y_b: Tensor<2>) -> Tensor<2> {
        let interaction = y_a.clone() * y_b.clone();
        self.tower.forward(Tensor::cat(vec![h, y_a, y_b, interaction], 1))
    }

    /// The scores of the observed triples ([n, 1]) and of each row's m negatives ([n, m]).
    pub fn scores(
        &self,
        h: Tensor<2>,
        y_a: Tensor<2>,
        y_b: Tensor<2>,
        negative_values: Tensor<2>,
    ) -> (Tensor<2>, Tensor<2>) {
        let [n, d] = h.dims();
        let m = negative_values.dims()[1];
        let positive = self.score(h.clone(), y_a.clone(), y_b);
        let h_rep = h.unsqueeze_dim::<3>(1).repeat_dim(1, m).reshape([n * m, d]);
        let y_a_rep = y_a.repeat_dim(1, m).reshape([n * m, 1]);
        let negative =
            self.score(h_rep, y_a_rep, negative_values.reshape([n * m, 1])).reshape([n, m]);
        (positive, negative)
    }
}

/// The critic's loss: BCE of the observed triples as 1 plus the q-weighted BCE of the negatives
/// as 0, the mean over the rows of `mask` ([n, 1], `count` of them).
pub fn contrastive_loss(
    positive: Tensor<2>,
    negative: Tensor<2>,
    weights: Tensor<2>,
    mask: Tensor<2>,
    count: f32,
) -> Tensor<1> {
    let positive_term = softplus(positive.neg(), 1.0);
    let negative_term = (softplus(negative, 1.0) * weights).sum_dim(1);
    ((positive_term + negative_term) * mask).sum().mul_scalar(1.0 / count.max(1.0))
}

/// The negatives' scores enter the partition term clipped to [−τ, τ] (SMILE, Song and Ermon
/// 2020): without it a few negatives that the critic scores very high (a label the generator
/// almost never draws) make the estimate swing by nats.
pub const DV_CLIP: f64 = 5.0;

fn clip(score: f32) -> f64 {
    (score as f64).clamp(-DV_CLIP, DV_CLIP)
}

/// The DV estimate over `rows`: mean_i f_i − ln mean_i Σ_m q_im e^{f_im}, with `positive` [n]
/// and `negative`, `weights` [n × m] row-major. Computed in f64 with the largest exponent
/// factored out.
pub fn dv_estimate(
    positive: &[f32],
    negative: &[f32],
    weights: &[f32],
    m: usize,
    rows: &[usize],
) -> f64 {
    if rows.is_empty() {
        return 0.0;
    }
    let mean_positive = rows.iter().map(|&i| positive[i] as f64).sum::<f64>() / rows.len() as f64;
    let max = rows
        .iter()
        .flat_map(|&i| {
            (0..m)
                .filter(move |&s| weights[i * m + s] > 0.0)
                .map(move |s| clip(negative[i * m + s]))
        })
        .fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return 0.0;
    }
    let mean_exp = rows
        .iter()
        .map(|&i| {
            (0..m)
                .map(|s| weights[i * m + s] as f64 * (clip(negative[i * m + s]) - max).exp())
                .sum::<f64>()
        })
        .sum::<f64>()
        / rows.len() as f64;
    mean_positive - (max + mean_exp.ln())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dv_of_the_true_log_ratio_is_the_mutual_information() {
        // y_a = y_b always, each 0/1 with probability 1/2, h constant: I = ln 2. The optimal
        // critic is ln p(y_b | y_a) / p(y_b) = ln 2 where y_b = y_a, −∞ otherwise.
        let positive = [2f32.ln(); 4];
        let negative: Vec<f32> = (0..4).flat_map(|_| [2f32.ln(), -1e4]).collect();
        // Each row's negatives: the matching value (weight 1/2) and the other one (weight 1/2).
        let weights = vec![0.5f32; 8];
        let rows: Vec<usize> = (0..4).collect();
        let estimate = dv_estimate(&positive, &negative, &weights, 2, &rows);
        // The −1e4 scores count as −τ: e^−5 of weight 1/2 is left in the partition term.
        let clipped = 2f64.ln() - (1.0 + 0.5 * (-DV_CLIP).exp()).ln();
        assert!((estimate - clipped).abs() < 1e-6, "{estimate} vs {clipped}");
        // A critic that learnt nothing (constant) estimates exactly 0.
        assert!(dv_estimate(&[0.3; 4], &[0.3; 8], &weights, 2, &rows).abs() < 1e-12);
    }
}
