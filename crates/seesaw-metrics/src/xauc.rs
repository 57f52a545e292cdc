//! XAUC: the pairwise-order metric short-video teams use for watch time and watch ratio, where
//! the target is continuous and AUC does not apply.
//!
//! Over all pairs of rows (i, j) whose targets differ (y_i ≠ y_j), the share whose predictions
//! are in the same order as the targets; a pair whose predictions tie counts half:
//!
//! ```text
//! XAUC = ( #{(i,j): y_i > y_j, p_i > p_j} + ½ #{(i,j): y_i > y_j, p_i = p_j} )
//!        / #{(i,j): y_i > y_j}
//! ```
//!
//! Pairs with equal targets (two full watches at the capped ratio 1) say nothing about order and
//! are left out. 0.5 is a constant or random predictor, 1 a predictor in the targets' order.
//! On 0/1 targets XAUC is AUC. Computed exactly in O(n log n): rows sorted by target, a Fenwick
//! tree over prediction ranks counts the lower-target rows below and level with each row.
//!
//! `Ok(None)` when no pair has different targets (fewer than two rows, or all targets equal);
//! mismatched lengths, NaN predictions and non-finite targets are errors.

use crate::check;
use crate::error::Result;

/// XAUC of `preds` against continuous `targets` (see the module documentation).
pub fn xauc(preds: &[f32], targets: &[f32]) -> Result<Option<f64>> {
    check::same_len("preds", preds.len(), "targets", targets.len())?;
    check::no_nan_scores(preds)?;
    check::finite("targets", targets)?;
    let n = preds.len();
    // Prediction ranks: equal predictions share a rank (-0.0 and 0.0 are equal).
    let mut by_pred: Vec<usize> = (0..n).collect();
    by_pred.sort_by(|&a, &b| check::cmp_scores(preds[a], preds[b]));
    let mut rank = vec![0usize; n];
    let mut next = 0;
    for (k, &i) in by_pred.iter().enumerate() {
        if k > 0 && check::cmp_scores(preds[by_pred[k - 1]], preds[i]).is_lt() {
            next += 1;
        }
        rank[i] = next;
    }
    let mut by_target: Vec<usize> = (0..n).collect();
    by_target.sort_by(|&a, &b| check::cmp_scores(targets[a], targets[b]));
    let mut tree = Fenwick::new(next + 1);
    let (mut concordant, mut tied, mut pairs) = (0u64, 0u64, 0u64);
    let mut inserted = 0u64;
    for group in by_target.chunk_by(|&a, &b| targets[a] == targets[b]) {
        for &i in group {
            let below = tree.prefix(rank[i]); // lower target, lower prediction
            let level = tree.prefix(rank[i] + 1) - below; // lower target, same prediction
            concordant += below;
            tied += level;
            pairs += inserted;
        }
        for &i in group {
            tree.add(rank[i]);
        }
        inserted += group.len() as u64;
    }
    if pairs == 0 {
        return Ok(None);
    }
    Ok(Some((concordant as f64 + 0.5 * tied as f64) / pairs as f64))
}

/// Counts per rank, with prefix sums in O(log n).
struct Fenwick(Vec<u64>);

impl Fenwick {
    fn new(n: usize) -> Self {
        Self(vec![0; n + 1])
    }

    fn add(&mut self, i: usize) {
        let mut i = i + 1;
        while i < self.0.len() {
            self.0[i] += 1;
            i += i & i.wrapping_neg();
        }
    }

    /// How many of the added ranks are below `i`.
    fn prefix(&self, i: usize) -> u64 {
        let (mut i, mut sum) = (i, 0);
        while i > 0 {
            sum += self.0[i];
            i -= i & i.wrapping_neg();
        }
        sum
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MetricError;

    /// The definition, pair by pair.
    fn brute(preds: &[f32], targets: &[f32]) -> Option<f64> {
        let (mut good, mut pairs) = (0.0, 0.0);
        for i in 0..preds.len() {
            for j in 0..preds.len() {
                if targets[i] > targets[j] {
                    pairs += 1.0;
                    if preds[i] > preds[j] {
                        good += 1.0;
                    } else if preds[i] == preds[j] {
                        good += 0.5;
                    }
                }
            }
        }
        (pairs > 0.0).then(|| good / pairs)
    }

    #[test]
    fn hand_computed() {
        // targets 0.1  0.5  0.5  1.0 ; preds 0.2  0.1  0.4  0.4
        // pairs with different targets (higher, lower):
        //   (0.5a, 0.1): p 0.1 < 0.2 → 0      (0.5b, 0.1): 0.4 > 0.2 → 1
        //   (1.0, 0.1):  0.4 > 0.2 → 1        (1.0, 0.5a): 0.4 > 0.1 → 1
        //   (1.0, 0.5b): 0.4 = 0.4 → ½
        // the two 0.5 targets tie: not a pair. XAUC = 3.5 / 5 = 0.7
        let targets = [0.1, 0.5, 0.5, 1.0];
        let preds = [0.2, 0.1, 0.4, 0.4];
        assert_eq!(xauc(&preds, &targets).unwrap(), Some(0.7));
        assert_eq!(brute(&preds, &targets), Some(0.7));
    }

    #[test]
    fn perfect_reversed_constant_and_undefined() {
        let t = [0.0, 0.3, 0.9, 2.0];
        assert_eq!(xauc(&[1.0, 2.0, 3.0, 4.0], &t).unwrap(), Some(1.0));
        assert_eq!(xauc(&[4.0, 3.0, 2.0, 1.0], &t).unwrap(), Some(0.0));
        assert_eq!(xauc(&[0.5; 4], &t).unwrap(), Some(0.5));
        assert_eq!(xauc(&[0.1, 0.2], &[1.0, 1.0]).unwrap(), None);
        assert_eq!(xauc(&[], &[]).unwrap(), None);
        assert!(matches!(xauc(&[f32::NAN, 0.0], &[0.0, 1.0]), Err(MetricError::NanScore { .. })));
        assert!(matches!(xauc(&[0.0], &[f32::INFINITY]), Err(MetricError::NonFinite { .. })));
    }

    #[test]
    fn matches_the_pairwise_definition_on_random_data_and_auc_on_binary_targets() {
        let mut state = 7u64;
        let mut next = move || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 33) as f32 / (1u64 << 31) as f32
        };
        for _ in 0..20 {
            // Coarse values so that ties in both targets and predictions occur.
            let preds: Vec<f32> = (0..60).map(|_| (next() * 8.0).floor()).collect();
            let targets: Vec<f32> = (0..60).map(|_| (next() * 5.0).floor() / 4.0).collect();
            let fast = xauc(&preds, &targets).unwrap().unwrap();
            let slow = brute(&preds, &targets).unwrap();
            assert!((fast - slow).abs() < 1e-12, "{fast} vs {slow}");
            let binary: Vec<f32> = targets.iter().map(|&t| f32::from(u8::from(t > 0.5))).collect();
            let auc = crate::auc(&preds, &binary).unwrap().unwrap();
            assert!((xauc(&preds, &binary).unwrap().unwrap() - auc).abs() < 1e-12);
        }
    }
}
