//! Walker's alias method: the impression stream draws a user and a video per row from skewed
//! weights, and an O(1) draw is what keeps the stream above a million rows per second.

use rand::RngCore;

#[derive(Debug, Clone)]
pub struct AliasTable {
    prob: Vec<f64>,
    alias: Vec<u32>,
}

impl AliasTable {
    /// `weights` must be non-empty, finite and non-negative with a positive sum (the callers
    /// build them from exponentials and powers, so this is an internal invariant).
    pub fn new(weights: &[f64]) -> Self {
        let n = weights.len();
        assert!(n > 0 && n <= u32::MAX as usize, "alias table needs 1..=u32::MAX weights");
        let total: f64 = weights.iter().sum();
        assert!(total > 0.0 && total.is_finite(), "alias weights must have a positive sum");
        let mut prob: Vec<f64> = weights.iter().map(|w| w * n as f64 / total).collect();
        let mut alias: Vec<u32> = (0..n as u32).collect();
        let (mut small, mut large): (Vec<usize>, Vec<usize>) = (0..n).partition(|&i| prob[i] < 1.0);
        while let (Some(s), Some(&l)) = (small.pop(), large.last()) {
            alias[s] = l as u32;
            prob[l] -= 1.0 - prob[s];
            if prob[l] < 1.0 {
                large.pop();
                small.push(l);
            }
        }
        // Whatever is left is 1 up to rounding.
        for i in small.into_iter().chain(large) {
            prob[i] = 1.0;
        }
        Self { prob, alias }
    }

    pub fn len(&self) -> usize {
        self.prob.len()
    }

    #[inline]
    pub fn sample(&self, rng: &mut impl RngCore) -> usize {
        let r = rng.next_u64();
        // High 32 bits pick the column, low 32 bits decide between it and its alias.
        let i = (((r >> 32) * self.prob.len() as u64) >> 32) as usize;
        let u = (r & 0xffff_ffff) as f64 * (1.0 / 4_294_967_296.0);
        if u < self.prob[i] { i } else { self.alias[i] as usize }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;

    #[test]
    fn frequencies_follow_weights() {
        let w = [1.0, 0.0, 3.0, 6.0];
        let t = AliasTable::new(&w);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        let mut counts = [0usize; 4];
        let n = 400_000;
        for _ in 0..n {
            counts[t.sample(&mut rng)] += 1;
        }
        assert_eq!(counts[1], 0);
        for (c, w) in counts.iter().zip(w) {
            let f = *c as f64 / n as f64;
            assert!((f - w / 10.0).abs() < 0.004, "{counts:?}");
        }
    }
}
