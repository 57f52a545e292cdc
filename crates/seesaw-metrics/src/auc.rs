//! Area under the ROC curve.
//!
//! AUC is the probability that a randomly drawn positive is scored above a randomly drawn
//! negative, with a tie counted as half a win. Exactly:
//!
//! ```text
//! AUC = ( #{(i, j) : y_i = 1, y_j = 0, s_i > s_j} + ½ · #{(i, j) : y_i = 1, y_j = 0, s_i = s_j} )
//!       / (n_pos · n_neg)
//! ```
//!
//! This is the Mann-Whitney U statistic divided by `n_pos · n_neg`, i.e. the rank-sum form
//! `(R_pos − n_pos(n_pos+1)/2) / (n_pos·n_neg)` with tied scores given their average rank.
//! It is computed in O(n log n): sort by score, walk groups of equal scores from low to high;
//! a group with `p` positives and `q` negatives contributes `p · (negatives strictly below)`
//! wins plus `p · q / 2` ties. The count `2U` is accumulated as an exact integer (`u128`), so
//! the only rounding is the final division.
//!
//! Ties matter in practice: models emit many identical scores (saturated sigmoids, quantised
//! outputs, constant predictors), and a tie-unaware implementation gives such a constant model
//! an AUC of 0 or 1 depending on the input order instead of the correct 0.5.
//!
//! Undefined cases: with no positives or no negatives the denominator is zero and the result is
//! `Ok(None)`. Mismatched lengths, NaN scores and NaN/infinite labels are errors. Infinite
//! scores are allowed (they are only compared). `-0.0` and `0.0` are the same score.

use crate::check;
use crate::error::Result;
use crate::label::BinaryLabel;

/// AUC of `scores` against binary `labels`, ties counted half.
///
/// Returns `Ok(None)` when only one class (or nothing) is present.
///
/// ```
/// use seesaw_metrics::auc;
/// // The positive is above the negative: 1 win out of 1 pair.
/// assert_eq!(auc(&[0.9, 0.1], &[true, false]).unwrap(), Some(1.0));
/// assert_eq!(auc(&[0.5, 0.5], &[1.0f32, 0.0]).unwrap(), Some(0.5));
/// assert_eq!(auc(&[0.5, 0.7], &[1.0f32, 1.0]).unwrap(), None);
/// ```
pub fn auc<L: BinaryLabel>(scores: &[f32], labels: &[L]) -> Result<Option<f64>> {
    check::same_len("scores", scores.len(), "labels", labels.len())?;
    check::no_nan_scores(scores)?;
    let labels = check::binary_labels(labels)?;
    let mut items: Vec<(f32, bool)> = scores.iter().copied().zip(labels).collect();
    Ok(auc_of_unsorted(&mut items))
}

/// AUC over the rows where `mask[i]` is true (e.g. rows where this task's label is observed).
///
/// Rows outside the mask are ignored entirely, including their scores and labels, which are
/// not validated. Same conventions as [`auc`].
pub fn auc_masked<L: BinaryLabel>(
    scores: &[f32],
    labels: &[L],
    mask: &[bool],
) -> Result<Option<f64>> {
    check::same_len("scores", scores.len(), "labels", labels.len())?;
    check::same_len("scores", scores.len(), "mask", mask.len())?;
    let mut items = Vec::with_capacity(mask.iter().filter(|&&m| m).count());
    for (index, ((&s, &l), &m)) in scores.iter().zip(labels).zip(mask).enumerate() {
        if !m {
            continue;
        }
        if s.is_nan() {
            return Err(crate::MetricError::NanScore { index });
        }
        let pos =
            l.binary_label().ok_or(crate::MetricError::InvalidLabel { index, value: l.raw() })?;
        items.push((s, pos));
    }
    Ok(auc_of_unsorted(&mut items))
}

/// Sorts `items` by score and computes the AUC (scores must not be NaN).
pub(crate) fn auc_of_unsorted(items: &mut [(f32, bool)]) -> Option<f64> {
    items.sort_unstable_by(|a, b| check::cmp_scores(a.0, b.0));
    auc_of_sorted(items)
}

/// AUC of `(score, is_positive)` pairs already sorted by ascending score.
pub(crate) fn auc_of_sorted(items: &[(f32, bool)]) -> Option<f64> {
    let mut n_pos: u64 = 0;
    let mut n_neg: u64 = 0; // negatives with a score strictly below the current group
    let mut twice_u: u128 = 0; // 2 · (wins + ½ ties), exact
    let mut start = 0;
    while start < items.len() {
        let score = items[start].0;
        let mut end = start;
        let (mut p, mut q) = (0u64, 0u64);
        while end < items.len() && items[end].0 == score {
            if items[end].1 {
                p += 1;
            } else {
                q += 1;
            }
            end += 1;
        }
        twice_u += 2 * u128::from(p) * u128::from(n_neg) + u128::from(p) * u128::from(q);
        n_pos += p;
        n_neg += q;
        start = end;
    }
    if n_pos == 0 || n_neg == 0 {
        return None;
    }
    Some(twice_u as f64 / (2.0 * n_pos as f64 * n_neg as f64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MetricError;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn single_tie_is_half() {
        // One pair (pos 0.5, neg 0.5): a tie, ½ / (1·1) = 0.5.
        assert_eq!(auc(&[0.5, 0.5], &[1.0f32, 0.0]).unwrap(), Some(0.5));
        assert_eq!(auc(&[0.5, 0.5], &[true, false]).unwrap(), Some(0.5));
    }

    #[test]
    fn negative_zero_ties_with_zero() {
        // -0.0 == 0.0, so this is a tie: 0.5 (total_cmp would have ordered them).
        assert_eq!(auc(&[-0.0, 0.0], &[1.0f32, 0.0]).unwrap(), Some(0.5));
        assert_eq!(auc(&[0.0, -0.0], &[1.0f32, 0.0]).unwrap(), Some(0.5));
    }

    #[test]
    fn perfect_and_reversed() {
        assert_eq!(auc(&[0.1, 0.2, 0.8, 0.9], &[false, false, true, true]).unwrap(), Some(1.0));
        assert_eq!(auc(&[0.9, 0.8, 0.2, 0.1], &[false, false, true, true]).unwrap(), Some(0.0));
    }

    #[test]
    fn hand_computed_with_ties() {
        // scores  0.1  0.4  0.4  0.35  0.8  0.4
        // labels   0    0    1    1     1    0
        // positives: 0.4, 0.35, 0.8 (n_pos = 3); negatives: 0.1, 0.4, 0.4 (n_neg = 3).
        // pos 0.4 : > 0.1 (1 win), = 0.4, 0.4 (2 ties)  -> 1 + 1.0 = 2.0
        // pos 0.35: > 0.1 (1 win), < 0.4, 0.4           -> 1
        // pos 0.8 : > all three                          -> 3
        // AUC = (2 + 1 + 3) / 9 = 6/9 = 0.6666...
        let s = [0.1, 0.4, 0.4, 0.35, 0.8, 0.4];
        let y = [0.0f32, 0.0, 1.0, 1.0, 1.0, 0.0];
        assert!(close(auc(&s, &y).unwrap().unwrap(), 6.0 / 9.0));
        // Rank-sum check: ascending 0.1(1) 0.35(2) 0.4,0.4,0.4(avg rank 4) 0.8(6).
        // R_pos = 2 + 4 + 6 = 12; U = 12 - 3·4/2 = 6; 6/9. Same.
    }

    #[test]
    fn constant_predictor_is_half() {
        // All pairs tie: (½ · 2·3) / (2·3) = 0.5.
        let s = [0.3; 5];
        let y = [true, false, true, false, false];
        assert_eq!(auc(&s, &y).unwrap(), Some(0.5));
    }

    #[test]
    fn infinite_scores_are_ordered() {
        assert_eq!(auc(&[f32::INFINITY, f32::NEG_INFINITY], &[true, false]).unwrap(), Some(1.0));
    }

    #[test]
    fn undefined_and_invalid_inputs() {
        assert_eq!(auc::<bool>(&[], &[]).unwrap(), None);
        assert_eq!(auc(&[0.1, 0.2], &[true, true]).unwrap(), None);
        assert_eq!(auc(&[0.1, 0.2], &[0.0f32, 0.0]).unwrap(), None);
        assert!(matches!(
            auc(&[0.1, 0.2], &[true]),
            Err(MetricError::LengthMismatch { left_len: 2, right_len: 1, .. })
        ));
        assert!(matches!(
            auc(&[0.1, f32::NAN], &[true, false]),
            Err(MetricError::NanScore { index: 1 })
        ));
        assert!(matches!(
            auc(&[0.1, 0.2], &[f32::NAN, 0.0]),
            Err(MetricError::InvalidLabel { index: 0, .. })
        ));
    }

    #[test]
    fn masked_ignores_rows_outside_mask() {
        // Masked-out row 2 has a NaN score and would flip the result; it is ignored.
        // Remaining: pos 0.9 vs neg 0.2 -> 1.0.
        let s = [0.9, 0.2, f32::NAN, 0.95];
        let y = [1.0f32, 0.0, 0.0, f32::NAN];
        let m = [true, true, false, false];
        assert_eq!(auc_masked(&s, &y, &m).unwrap(), Some(1.0));
        // With row 1 masked out only one class is left.
        assert_eq!(auc_masked(&s, &y, &[true, false, false, false]).unwrap(), None);
        assert!(matches!(auc_masked(&s, &y, &[true]), Err(MetricError::LengthMismatch { .. })));
        assert!(matches!(
            auc_masked(&s, &y, &[true, true, true, false]),
            Err(MetricError::NanScore { index: 2 })
        ));
    }

    /// xorshift64*: a tiny deterministic generator so the test needs no dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// O(n²) reference: count every (positive, negative) pair.
    fn pairwise_auc(s: &[f32], y: &[bool]) -> Option<f64> {
        let (mut num, mut den) = (0.0f64, 0.0f64);
        for i in 0..s.len() {
            for j in 0..s.len() {
                if y[i] && !y[j] {
                    den += 1.0;
                    if s[i] > s[j] {
                        num += 1.0;
                    } else if s[i] == s[j] {
                        num += 0.5;
                    }
                }
            }
        }
        (den > 0.0).then_some(num / den)
    }

    #[test]
    fn randomized_matches_pairwise_with_many_ties() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut defined = 0;
        for _ in 0..500 {
            let n = rng.below(120) as usize;
            // Few distinct score levels -> many ties; sometimes very few levels.
            let max_levels = if rng.below(2) == 0 { 3 } else { 20 };
            let levels = 1 + rng.below(max_levels);
            let p_pos = rng.below(101);
            let s: Vec<f32> = (0..n).map(|_| rng.below(levels) as f32 / levels as f32).collect();
            let y: Vec<bool> = (0..n).map(|_| rng.below(100) < p_pos).collect();
            let fast = auc(&s, &y).unwrap();
            let slow = pairwise_auc(&s, &y);
            match (fast, slow) {
                (Some(a), Some(b)) => {
                    defined += 1;
                    assert!(close(a, b), "fast {a} vs pairwise {b} on {s:?} {y:?}");
                }
                (None, None) => {}
                other => panic!("definedness differs: {other:?}"),
            }
        }
        assert!(defined > 300, "too few defined cases: {defined}");
    }
}
