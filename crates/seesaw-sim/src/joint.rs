//! Exact joint probabilities of two binary labels of an impression, and the true conditional
//! mutual information between them given what a model could know at best (the user and the
//! video; the context carries no signal), marginalised over everything drawn per impression.
//!
//! Given the latent emotion state e, the labels fall into independent groups: the click, the
//! five copula behaviours (coupled by the equicorrelated Gaussian copula with correlation ρ =
//! `dependence`), and the viewing labels (drawn from one view, so long view and skip are coupled
//! by more than e and that one pair is left out). So for a pair (a, b):
//! P(a, b | x) = Σ_e P(e | x)·J_e(a, b), with J_e the copula's bivariate normal probability when
//! both are copula behaviours and p_a·p_b otherwise. Even at ρ = 0 the pair is dependent through
//! e, which a model does not observe: the true CMI is positive whenever both labels move with e.

use serde::{Deserialize, Serialize};

use super::normal::norm_cdf;

/// The binary labels with an exact joint, in this order everywhere in the module.
pub const JOINT_LABELS: [&str; 8] =
    ["click", "like", "follow", "comment", "forward", "hate", "long_view", "skip"];
const COPULA: std::ops::RangeInclusive<usize> = 1..=5;
const VIEWING: [usize; 2] = [6, 7];

/// Label probabilities given e = 0 and e = 1, in `JOINT_LABELS` order.
pub type StateLabelProbs = [[f64; 8]; 2];

/// Every pair (a < b) of `JOINT_LABELS` with an exact joint: all but (long_view, skip).
pub fn label_pairs() -> Vec<(usize, usize)> {
    let n = JOINT_LABELS.len();
    (0..n)
        .flat_map(|a| (a + 1..n).map(move |b| (a, b)))
        .filter(|&(a, b)| !(VIEWING.contains(&a) && VIEWING.contains(&b)))
        .collect()
}

/// P(z_a < Φ⁻¹(p_a), z_b < Φ⁻¹(p_b)) for the equicorrelated copula z_k = √ρ·w + √(1−ρ)·ε_k:
/// ∫ φ(w) Φ((c_a − √ρ w)/√(1−ρ)) Φ((c_b − √ρ w)/√(1−ρ)) dw, by the trapezoid rule on
/// [−8, 8] (step 0.1; spectrally accurate for this smooth Gaussian-weighted integrand).
pub fn copula_joint(p_a: f64, p_b: f64, rho: f64) -> f64 {
    if rho <= 0.0 || p_a <= 0.0 || p_b <= 0.0 {
        return p_a * p_b;
    }
    let (c_a, c_b) = (super::normal::norm_inv_cdf(p_a), super::normal::norm_inv_cdf(p_b));
    let (shared, own) = (rho.sqrt(), (1.0 - rho).sqrt());
    const STEP: f64 = 0.1;
    let norm = STEP / (2.0 * std::f64::consts::PI).sqrt();
    (-80..=80)
        .map(|i| {
            let w = i as f64 * STEP;
            let pdf = (-0.5 * w * w).exp();
            pdf * norm_cdf((c_a - shared * w) / own) * norm_cdf((c_b - shared * w) / own)
        })
        .sum::<f64>()
        * norm
}

/// P(y_a = 1, y_b = 1 | user, video) for the pair (a, b) of `JOINT_LABELS`.
pub fn joint_positive(
    p_emotion: f64,
    states: &StateLabelProbs,
    a: usize,
    b: usize,
    rho: f64,
) -> f64 {
    let coupled = COPULA.contains(&a) && COPULA.contains(&b);
    let given = |s: &[f64; 8]| if coupled { copula_joint(s[a], s[b], rho) } else { s[a] * s[b] };
    (1.0 - p_emotion) * given(&states[0]) + p_emotion * given(&states[1])
}

/// The mutual information (nats) of two binary labels with marginals p_a, p_b and
/// P(both) = p11.
pub fn binary_mutual_information(p_a: f64, p_b: f64, p11: f64) -> f64 {
    let cells = [
        (p11, p_a, p_b),
        (p_a - p11, p_a, 1.0 - p_b),
        (p_b - p11, 1.0 - p_a, p_b),
        (1.0 - p_a - p_b + p11, 1.0 - p_a, 1.0 - p_b),
    ];
    cells
        .iter()
        .filter(|(p, ma, mb)| *p > 1e-300 && *ma > 0.0 && *mb > 0.0)
        .map(|(p, ma, mb)| p * (p / (ma * mb)).ln())
        .sum::<f64>()
        .max(0.0)
}

/// The mean over a log's impressions of each pair's CMI given (user, video).
#[derive(Debug, Clone)]
pub struct TrueCmi {
    pairs: Vec<(usize, usize)>,
    sums: Vec<f64>,
    rows: u64,
    rho: f64,
}

/// `true_cmi.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrueCmiFile {
    /// What the CMI is conditioned on.
    pub given: String,
    pub dependence: f64,
    pub rows: u64,
    pub pairs: Vec<TruePairCmi>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TruePairCmi {
    pub a: String,
    pub b: String,
    pub cmi: f64,
}

impl TrueCmi {
    pub fn new(rho: f64) -> Self {
        let pairs = label_pairs();
        Self { sums: vec![0.0; pairs.len()], pairs, rows: 0, rho }
    }

    /// The truth file's column names of the joint probabilities, in pair order:
    /// `p_like_and_follow`, ...
    pub fn columns() -> Vec<String> {
        label_pairs()
            .iter()
            .map(|&(a, b)| format!("p_{}_and_{}", JOINT_LABELS[a], JOINT_LABELS[b]))
            .collect()
    }

    /// Adds one impression; returns its joint probabilities P(a = 1, b = 1 | x), in pair order.
    pub fn add(&mut self, p_emotion: f64, states: &StateLabelProbs, joint: &mut Vec<f64>) {
        joint.clear();
        let marginal = |k: usize| (1.0 - p_emotion) * states[0][k] + p_emotion * states[1][k];
        for (sum, &(a, b)) in self.sums.iter_mut().zip(&self.pairs) {
            let p11 = joint_positive(p_emotion, states, a, b, self.rho);
            *sum += binary_mutual_information(marginal(a), marginal(b), p11);
            joint.push(p11);
        }
        self.rows += 1;
    }

    pub fn finish(&self) -> TrueCmiFile {
        let n = self.rows.max(1) as f64;
        TrueCmiFile {
            given: "user and video (the context carries no signal), marginalised over the \
                    emotion state, the copula and the view"
                .into(),
            dependence: self.rho,
            rows: self.rows,
            pairs: self
                .pairs
                .iter()
                .zip(&self.sums)
                .map(|(&(a, b), s)| TruePairCmi {
                    a: JOINT_LABELS[a].into(),
                    b: JOINT_LABELS[b].into(),
                    cmi: s / n,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::behaviour::Copula;
    use rand::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;

    #[test]
    fn the_copula_joint_matches_sampling_and_the_independent_case() {
        assert_eq!(copula_joint(0.3, 0.2, 0.0), 0.3 * 0.2);
        let p = [0.3, 0.1, 0.05, 0.2, 0.15];
        let n = 400_000;
        let copula = Copula::new(0.6);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        let mut both = 0usize;
        for _ in 0..n {
            let y = copula.sample(&p, &mut rng);
            both += (y[0] && y[3]) as usize;
        }
        let sampled = both as f64 / n as f64;
        let exact = copula_joint(0.3, 0.2, 0.6);
        let se = (exact * (1.0 - exact) / n as f64).sqrt();
        assert!((sampled - exact).abs() < 4.0 * se, "{sampled} vs {exact}");
        assert!(exact > 0.3 * 0.2 + 0.03, "positive dependence raises P(both): {exact}");
    }

    #[test]
    fn mutual_information_of_tables() {
        assert!(binary_mutual_information(0.3, 0.4, 0.12).abs() < 1e-12);
        // y_a = y_b, each 1/2: ln 2.
        assert!((binary_mutual_information(0.5, 0.5, 0.5) - 2f64.ln()).abs() < 1e-12);
    }

    #[test]
    fn the_emotion_state_alone_makes_labels_dependent() {
        // ρ = 0, both labels rise with e: positive CMI; a label that ignores e: none.
        let states: StateLabelProbs = [
            [0.1, 0.05, 0.02, 0.02, 0.02, 0.2, 0.3, 0.6],
            [0.5, 0.4, 0.1, 0.1, 0.1, 0.02, 0.7, 0.2],
        ];
        let mut t = TrueCmi::new(0.0);
        let mut joint = Vec::new();
        t.add(0.5, &states, &mut joint);
        let file = t.finish();
        let get = |a: &str, b: &str| file.pairs.iter().find(|p| p.a == a && p.b == b).unwrap().cmi;
        assert!(get("click", "like") > 0.01);
        assert_eq!(joint.len(), label_pairs().len());
        assert!(!file.pairs.iter().any(|p| p.a == "long_view" && p.b == "skip"));
        let flat: StateLabelProbs = [[0.3; 8], [0.3; 8]];
        let mut t = TrueCmi::new(0.0);
        t.add(0.5, &flat, &mut joint);
        assert!(t.finish().pairs.iter().all(|p| p.cmi.abs() < 1e-12));
    }
}
