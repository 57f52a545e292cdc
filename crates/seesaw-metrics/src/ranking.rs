//! Top-K ranking metrics per user: Recall@K and NDCG@K with binary relevance.
//!
//! For each user u, sort that user's test items by score, highest first, and keep the top K.
//! With `P_u` the user's positive test items and `rel_i ∈ {0, 1}` the label at position i:
//!
//! ```text
//! Recall@K_u = |positives among the top K| / P_u
//! DCG@K_u    = Σ_{i=1..K} rel_i / log2(i + 1)
//! IDCG@K_u   = Σ_{i=1..min(K, P_u)} 1 / log2(i + 1)     (all positives ranked first)
//! NDCG@K_u   = DCG@K_u / IDCG@K_u
//! ```
//!
//! The reported value is the plain (unweighted) mean over users with **at least one positive
//! and at least K test items**; other users are skipped (a user with fewer than K items would
//! get a trivially high recall, and with no positive both metrics are undefined). Note that
//! Recall@K divides by all of the user's positives, so it is below 1 whenever `P_u > K`, even
//! for a perfect ranking.
//!
//! Ties in score are broken deterministically by **original input order**: the sort is stable,
//! so of two items with equal scores the one that appears first in the input ranks higher. The
//! result therefore never depends on hashing or on an unstable sort, but it does depend on the
//! input order when scores tie; a constant predictor is not "perfect" or "worst", it is scored
//! as the input happens to be ordered.

use crate::check;
use crate::error::{MetricError, Result};
use crate::label::BinaryLabel;
use crate::user_average::UserAverage;

/// Mean Recall@K over users with at least one positive and at least `k` test items.
///
/// `value` is `None` when no user qualifies. Errors on `k == 0`, mismatched lengths, NaN scores
/// and invalid labels.
pub fn recall_at_k<L: BinaryLabel>(
    user_ids: &[u32],
    scores: &[f32],
    labels: &[L],
    k: usize,
) -> Result<UserAverage> {
    per_user_at_k(user_ids, scores, labels, k, |ranked, positives| {
        let hits = ranked[..k].iter().filter(|&&y| y).count();
        hits as f64 / positives as f64
    })
}

/// Mean NDCG@K (binary relevance, `log2(i + 1)` discount) over users with at least one positive
/// and at least `k` test items.
///
/// `value` is `None` when no user qualifies. Errors on `k == 0`, mismatched lengths, NaN scores
/// and invalid labels.
pub fn ndcg_at_k<L: BinaryLabel>(
    user_ids: &[u32],
    scores: &[f32],
    labels: &[L],
    k: usize,
) -> Result<UserAverage> {
    per_user_at_k(user_ids, scores, labels, k, |ranked, positives| {
        let discount = |i: usize| 1.0 / ((i + 1) as f64).log2(); // i is the 1-based position
        let dcg: f64 = ranked[..k]
            .iter()
            .enumerate()
            .filter(|&(_, &y)| y)
            .map(|(i0, _)| discount(i0 + 1))
            .sum();
        let idcg: f64 = (1..=k.min(positives)).map(discount).sum();
        dcg / idcg
    })
}

/// Groups rows by user, ranks each user's items (score descending, stable), and averages
/// `metric(ranked_labels, positives)` over qualifying users.
fn per_user_at_k<L: BinaryLabel>(
    user_ids: &[u32],
    scores: &[f32],
    labels: &[L],
    k: usize,
    metric: impl Fn(&[bool], usize) -> f64,
) -> Result<UserAverage> {
    if k == 0 {
        return Err(MetricError::ZeroK);
    }
    check::same_len("user_ids", user_ids.len(), "scores", scores.len())?;
    check::same_len("user_ids", user_ids.len(), "labels", labels.len())?;
    check::no_nan_scores(scores)?;
    let labels = check::binary_labels(labels)?;

    // Rows start in input order; the stable sort keeps that order among equal (user, score).
    let mut rows: Vec<(u32, f32, bool)> =
        user_ids.iter().zip(scores).zip(labels).map(|((&u, &s), y)| (u, s, y)).collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0).then(check::cmp_scores(b.1, a.1)));

    let mut sum = 0.0f64;
    let mut users_counted = 0usize;
    let mut users_total = 0usize;
    let mut ranked: Vec<bool> = Vec::new();
    for group in rows.chunk_by(|a, b| a.0 == b.0) {
        users_total += 1;
        ranked.clear();
        ranked.extend(group.iter().map(|r| r.2));
        let positives = ranked.iter().filter(|&&y| y).count();
        if positives == 0 || ranked.len() < k {
            continue;
        }
        sum += metric(&ranked, positives);
        users_counted += 1;
    }
    Ok(UserAverage {
        value: (users_counted > 0).then(|| sum / users_counted as f64),
        users_counted,
        users_total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn recall_skips_users_with_fewer_than_k_items_or_no_positive() {
        // K = 2.
        // user 1: scores 0.9 0.8 0.1 0.7, labels 1 0 1 0
        //         ranked: 0.9(1) 0.8(0) 0.7(0) 0.1(1); top 2 hold 1 of 2 positives → 0.5
        // user 2: scores 0.2 0.6 0.4, labels 1 1 0
        //         ranked: 0.6(1) 0.4(0) 0.2(1); top 2 hold 1 of 2 → 0.5
        // user 3: scores 0.3 0.5 0.9, labels 1 1 1 → top 2 hold 2 of 3 → 0.6666...
        // user 4: one item (positive) → fewer than K items, skipped
        // user 5: two items, no positive → skipped
        // mean over users 1, 2, 3 = (0.5 + 0.5 + 2/3) / 3 = 0.5555...
        let users = [1, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 5, 5];
        let scores = [0.9, 0.8, 0.1, 0.7, 0.2, 0.6, 0.4, 0.3, 0.5, 0.9, 0.99, 0.1, 0.2];
        let labels: [f32; 13] = [1., 0., 1., 0., 1., 1., 0., 1., 1., 1., 1., 0., 0.];
        let r = recall_at_k(&users, &scores, &labels, 2).unwrap();
        assert_eq!((r.users_counted, r.users_total), (3, 5));
        assert!(close(r.value.unwrap(), (0.5 + 0.5 + 2.0 / 3.0) / 3.0), "{r:?}");

        // K = 4: only user 1 has ≥ 4 items; all its positives are in the top 4 → 1.0.
        let r = recall_at_k(&users, &scores, &labels, 4).unwrap();
        assert_eq!((r.users_counted, r.users_total), (1, 5));
        assert_eq!(r.value, Some(1.0));

        // K = 5: nobody qualifies.
        let r = recall_at_k(&users, &scores, &labels, 5).unwrap();
        assert_eq!((r.users_counted, r.value), (0, None));
    }

    #[test]
    fn ndcg_hand_computed() {
        // One user, K = 3. Items (score, label):
        //   (0.9, 0) (0.8, 1) (0.7, 0) (0.6, 1) (0.5, 1)
        // ranked positions 1..5 have labels 0 1 0 1 1; P = 3.
        // DCG@3  = 0/log2 2 + 1/log2 3 + 0/log2 4 = 1/1.5849625007 = 0.6309297536
        // IDCG@3 = 1/log2 2 + 1/log2 3 + 1/log2 4 = 1 + 0.6309297536 + 0.5 = 2.1309297536
        // NDCG@3 = 0.6309297536 / 2.1309297536 = 0.2960819...
        let users = [1; 5];
        let scores = [0.7, 0.5, 0.9, 0.8, 0.6]; // shuffled input order on purpose
        let labels = [false, true, false, true, true];
        let n = ndcg_at_k(&users, &scores, &labels, 3).unwrap();
        let dcg = 1.0 / 3f64.log2();
        let idcg = 1.0 + 1.0 / 3f64.log2() + 0.5;
        assert!(close(n.value.unwrap(), dcg / idcg));
        assert!((n.value.unwrap() - 0.296_081_9).abs() < 1e-6);
        assert_eq!((n.users_counted, n.users_total), (1, 1));
    }

    #[test]
    fn ndcg_idcg_uses_min_k_positives_and_averages_users() {
        // K = 2.
        // user 1: ranked labels 1 0 1 (P = 2): DCG = 1; IDCG = 1 + 1/log2 3 → 1/1.6309297536
        //         = 0.6131471928
        // user 2: ranked labels 0 1 (P = 1): DCG = 1/log2 3 = 0.6309297536; IDCG = 1
        //         (only min(K, P) = 1 ideal position) → 0.6309297536
        // user 3: ranked labels 1 1 0 0 (P = 2): DCG = IDCG → 1.0
        // mean = (0.6131471928 + 0.6309297536 + 1) / 3 = 0.7480256488
        let users = [1, 1, 1, 2, 2, 3, 3, 3, 3];
        let scores = [0.9, 0.5, 0.1, 0.8, 0.2, 0.4, 0.3, 0.2, 0.1];
        let labels = [true, false, true, false, true, true, true, false, false];
        let n = ndcg_at_k(&users, &scores, &labels, 2).unwrap();
        let inv_log3 = 1.0 / 3f64.log2();
        let expected = (1.0 / (1.0 + inv_log3) + inv_log3 + 1.0) / 3.0;
        assert!(close(n.value.unwrap(), expected), "{n:?}");
        assert!((expected - 0.748_025_648_8).abs() < 1e-9);
        assert_eq!((n.users_counted, n.users_total), (3, 3));
        // User 3 alone is ranked perfectly: exactly 1.
        let n = ndcg_at_k(&users[5..], &scores[5..], &labels[5..], 2).unwrap();
        assert_eq!(n.value, Some(1.0));
    }

    #[test]
    fn ties_broken_by_original_order() {
        // All scores tie, so the ranking is the input order.
        // labels in input order 0 1 → top-1 holds the negative: recall@1 = 0, NDCG@1 = 0.
        // labels in input order 1 0 → top-1 holds the positive: both 1.
        let users = [1, 1];
        let scores = [0.5, 0.5];
        assert_eq!(recall_at_k(&users, &scores, &[false, true], 1).unwrap().value, Some(0.0));
        assert_eq!(ndcg_at_k(&users, &scores, &[false, true], 1).unwrap().value, Some(0.0));
        assert_eq!(recall_at_k(&users, &scores, &[true, false], 1).unwrap().value, Some(1.0));
        assert_eq!(ndcg_at_k(&users, &scores, &[true, false], 1).unwrap().value, Some(1.0));
        // Interleaved users do not disturb the within-user input order: user 1's tied items
        // are at input positions 0 and 2 (labels 1, 0), so its top-1 is the positive.
        let users = [1, 2, 1, 2];
        let scores = [0.5, 0.9, 0.5, 0.1];
        let labels = [true, false, false, true];
        let r = recall_at_k(&users, &scores, &labels, 1).unwrap();
        // user 1: 1.0; user 2: ranked 0.9(0) 0.1(1) → 0.0. Mean 0.5.
        assert_eq!(r.value, Some(0.5));
    }

    #[test]
    fn recall_below_one_when_more_positives_than_k() {
        // Perfect ranking, 3 positives, K = 2: recall = 2/3 by definition.
        let r = recall_at_k(&[1, 1, 1], &[0.9, 0.8, 0.7], &[true, true, true], 2).unwrap();
        assert!(close(r.value.unwrap(), 2.0 / 3.0));
        // NDCG normalises by min(K, P), so it is 1.
        let n = ndcg_at_k(&[1, 1, 1], &[0.9, 0.8, 0.7], &[true, true, true], 2).unwrap();
        assert_eq!(n.value, Some(1.0));
    }

    #[test]
    fn empty_and_invalid() {
        let r = recall_at_k::<bool>(&[], &[], &[], 3).unwrap();
        assert_eq!(r, UserAverage { value: None, users_counted: 0, users_total: 0 });
        assert_eq!(ndcg_at_k(&[1], &[0.5], &[true], 0), Err(MetricError::ZeroK));
        assert!(matches!(
            recall_at_k(&[1], &[0.5, 0.2], &[true, false], 1),
            Err(MetricError::LengthMismatch { .. })
        ));
        assert!(matches!(
            ndcg_at_k(&[1, 1], &[0.5, f32::NAN], &[true, false], 1),
            Err(MetricError::NanScore { index: 1 })
        ));
    }
}
