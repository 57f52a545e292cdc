//! The latent emotion state and the explicit behaviours (click, like, follow, comment, forward,
//! hate). Each behaviour has a marginal probability given (user, video, state); the five
//! interaction behaviours are then drawn jointly through a Gaussian copula, so their marginals
//! are exactly the published ones while `dependence` adds correlation that nothing in the
//! model's inputs can explain: the situation CMI-aware training is meant to detect.

use rand::RngCore;

use super::normal::{norm_inv_cdf, sigmoid, std_normal};

/// Order of the copula's behaviours everywhere in this module.
pub const LIKE: usize = 0;
pub const FOLLOW: usize = 1;
pub const COMMENT: usize = 2;
pub const FORWARD: usize = 3;
pub const HATE: usize = 4;
pub const N_BEHAVIOURS: usize = 5;

/// What the (user, video) pair contributes to every probability; computed once per impression
/// and shared by both emotion states.
#[derive(Debug, Clone, Copy, Default)]
pub struct PairScores {
    /// Topic match on the logit scale: ≈0 for a random pair, up to ≈2.7 for a perfect match.
    pub affinity: f64,
    /// How well the video serves the user's needs, ≈[-0.5, 1].
    pub need_match: f64,
    pub entertainment: f64,
    pub information: f64,
    pub social_need: f64,
    pub social_content: f64,
    pub quality: f64,
    pub controversy: f64,
    pub author_appeal: f64,
    pub click_bias: f64,
    pub mood: f64,
    pub objectionable: bool,
}

/// P(e = 1): the user is in a positive state for this item. Objectionable content almost
/// never puts anyone in one, which is what lets a DLEN-style model demote it.
#[inline]
pub fn emotion_prob(s: &PairScores) -> f64 {
    sigmoid(
        -0.2 + s.affinity + 0.8 * s.need_match + 0.5 * s.quality + s.mood
            - if s.objectionable { 5.0 } else { 0.0 },
    )
}

/// P(click | state). Clicks are drawn independently of the copula behaviours given the state:
/// in a single-column autoplay feed the click is not a gate to watching.
#[inline]
pub fn click_prob(s: &PairScores, emotion: bool) -> f64 {
    sigmoid(
        -0.9 + if emotion { 1.0 } else { 0.0 } + 0.4 * s.affinity + s.click_bias + 0.3 * s.quality,
    )
}

/// Marginal probabilities of like, follow, comment, forward, hate given the state. Positive
/// behaviours rise in the positive state, hate falls: the a_k ≥ b_k structure DLEN assumes.
#[inline]
pub fn marginals(s: &PairScores, emotion: bool) -> [f64; N_BEHAVIOURS] {
    let e = if emotion { 1.0 } else { 0.0 };
    let obj = if s.objectionable { 1.0 } else { 0.0 };
    [
        sigmoid(-5.0 + 1.6 * e + 0.4 * s.affinity + 1.5 * s.entertainment + 0.4 * s.quality),
        sigmoid(-7.2 + 1.3 * e + 3.0 * s.social_need + s.author_appeal + 0.3 * s.affinity),
        sigmoid(
            -6.6 + 0.8 * e + 2.5 * s.social_need + 1.5 * s.social_content + 0.7 * s.controversy,
        ),
        sigmoid(-7.0 + 1.0 * e + 2.0 * s.social_need + 2.0 * s.information),
        sigmoid(-6.6 - 1.8 * (e - 0.5) + 3.5 * obj + 0.5 * s.controversy - 0.3 * s.affinity),
    ]
}

/// Equicorrelated Gaussian copula: z_k = √ρ·w + √(1−ρ)·ε_k has correlation ρ between any two
/// behaviours, and y_k = 1{z_k < Φ⁻¹(p_k)} keeps P(y_k) = p_k exactly.
#[derive(Debug, Clone, Copy)]
pub struct Copula {
    shared: f64,
    own: f64,
}

impl Copula {
    /// `dependence` ∈ [0, 1) (validated by the config).
    pub fn new(dependence: f64) -> Self {
        Self { shared: dependence.sqrt(), own: (1.0 - dependence).sqrt() }
    }

    /// Always six normal draws, whatever ρ, so streams stay aligned across dependence levels
    /// (at ρ = 0 the same seed gives the same ε and only the coupling differs).
    #[inline]
    pub fn sample(&self, p: &[f64; N_BEHAVIOURS], rng: &mut impl RngCore) -> [bool; N_BEHAVIOURS] {
        let w = std_normal(rng);
        let mut y = [false; N_BEHAVIOURS];
        for (yk, &pk) in y.iter_mut().zip(p) {
            let z = self.shared * w + self.own * std_normal(rng);
            *yk = z < norm_inv_cdf(pk);
        }
        y
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;

    #[test]
    fn copula_keeps_marginals_and_adds_correlation() {
        let p = [0.3, 0.05, 0.1, 0.02, 0.2];
        let n = 200_000;
        for rho in [0.0, 0.6] {
            let c = Copula::new(rho);
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(11);
            let mut counts = [0usize; N_BEHAVIOURS];
            let mut both = 0usize;
            for _ in 0..n {
                let y = c.sample(&p, &mut rng);
                for k in 0..N_BEHAVIOURS {
                    counts[k] += y[k] as usize;
                }
                both += (y[LIKE] && y[HATE]) as usize;
            }
            for k in 0..N_BEHAVIOURS {
                let f = counts[k] as f64 / n as f64;
                let se = (p[k] * (1.0 - p[k]) / n as f64).sqrt();
                assert!((f - p[k]).abs() < 4.0 * se, "ρ={rho} k={k}: {f} vs {}", p[k]);
            }
            let excess = both as f64 / n as f64 - p[LIKE] * p[HATE];
            if rho == 0.0 {
                assert!(excess.abs() < 0.004, "{excess}");
            } else {
                assert!(excess > 0.03, "{excess}");
            }
        }
    }
}
