//! Group AUC: AUC computed per user, then averaged.
//!
//! A global AUC also rewards ranking *users* against each other (an active user's items all
//! score high), which a feed never has to do: it only orders items for one user at a time.
//! GAUC measures that within-user ordering:
//!
//! ```text
//! GAUC = Σ_u w_u · AUC_u / Σ_u w_u,   over users u whose impressions contain both classes,
//! w_u  = number of impressions of user u (all of them, positives and negatives).
//! ```
//!
//! `AUC_u` is [`crate::auc`] on that user's rows (ties counted half). Users with only
//! positives or only negatives have no AUC and are skipped entirely (they add nothing to the
//! weights either). Cost: one O(n log n) sort by (user, score).

use crate::auc::auc_of_sorted;
use crate::check;
use crate::error::Result;
use crate::label::BinaryLabel;
use crate::user_average::UserAverage;

/// Impression-weighted mean of per-user AUC over users with both classes.
///
/// `value` is `None` when no user has both classes (including empty input). Errors on
/// mismatched lengths, NaN scores and invalid labels.
pub fn gauc<L: BinaryLabel>(user_ids: &[u32], scores: &[f32], labels: &[L]) -> Result<UserAverage> {
    check::same_len("user_ids", user_ids.len(), "scores", scores.len())?;
    check::same_len("user_ids", user_ids.len(), "labels", labels.len())?;
    check::no_nan_scores(scores)?;
    let labels = check::binary_labels(labels)?;

    let mut rows: Vec<(u32, f32, bool)> =
        user_ids.iter().zip(scores).zip(labels).map(|((&u, &s), y)| (u, s, y)).collect();
    rows.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(check::cmp_scores(a.1, b.1)));

    let mut weighted_sum = 0.0f64;
    let mut weight_total = 0u64;
    let mut users_counted = 0usize;
    let mut users_total = 0usize;
    let mut user_rows: Vec<(f32, bool)> = Vec::new();
    for group in rows.chunk_by(|a, b| a.0 == b.0) {
        users_total += 1;
        user_rows.clear();
        user_rows.extend(group.iter().map(|&(_, s, y)| (s, y)));
        if let Some(a) = auc_of_sorted(&user_rows) {
            let w = group.len() as u64;
            weighted_sum += w as f64 * a;
            weight_total += w;
            users_counted += 1;
        }
    }
    Ok(UserAverage {
        value: (weight_total > 0).then(|| weighted_sum / weight_total as f64),
        users_counted,
        users_total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MetricError, auc};

    #[test]
    fn skips_single_class_users_and_weights_by_impressions() {
        // user 1: scores 0.9 0.1 0.5, labels 1 0 0 -> pos 0.9 beats both negatives: AUC 1.0,
        //         weight 3.
        // user 2: scores 0.2 0.8, labels 1 0 -> pos below neg: AUC 0.0, weight 2.
        // user 3: scores 0.3 0.3 0.6 0.1 0.7, labels 1 0 1 0 0
        //         pos 0.3: > 0.1 (1), = 0.3 (½), < 0.7 -> 1.5
        //         pos 0.6: > 0.3, 0.1 (2), < 0.7     -> 2
        //         AUC = 3.5 / (2·3) = 0.58333..., weight 5.
        // user 4: labels all positive -> skipped (not counted, no weight).
        // user 5: labels all negative -> skipped.
        // GAUC = (3·1.0 + 2·0.0 + 5·3.5/6) / (3+2+5) = (3 + 2.91666...) / 10 = 0.591666...
        // (An unweighted mean would give (1 + 0 + 0.58333)/3 = 0.52777..., so weights matter.)
        let users = [1, 2, 1, 3, 4, 3, 1, 5, 3, 2, 3, 3, 4];
        let scores = [0.9, 0.2, 0.1, 0.3, 0.5, 0.3, 0.5, 0.4, 0.6, 0.8, 0.1, 0.7, 0.9];
        let labels =
            [true, true, false, true, true, false, false, false, true, false, false, false, true];
        let g = gauc(&users, &scores, &labels).unwrap();
        assert_eq!(g.users_counted, 3);
        assert_eq!(g.users_total, 5);
        let expected = (3.0 + 5.0 * 3.5 / 6.0) / 10.0;
        assert!((g.value.unwrap() - expected).abs() < 1e-12, "{g:?}");
    }

    #[test]
    fn ties_within_user_count_half() {
        // user 7: constant scores, 1 pos 1 neg -> 0.5.
        let g = gauc(&[7, 7], &[0.5, 0.5], &[1.0f32, 0.0]).unwrap();
        assert_eq!(g.value, Some(0.5));
        assert_eq!((g.users_counted, g.users_total), (1, 1));
    }

    #[test]
    fn no_qualifying_user_is_none() {
        let g = gauc(&[1, 2], &[0.5, 0.4], &[true, false]).unwrap();
        assert_eq!(g.value, None);
        assert_eq!((g.users_counted, g.users_total), (0, 2));
        let g = gauc::<bool>(&[], &[], &[]).unwrap();
        assert_eq!(g.value, None);
        assert_eq!((g.users_counted, g.users_total), (0, 0));
    }

    #[test]
    fn invalid_inputs_are_errors() {
        assert!(matches!(
            gauc(&[1], &[0.5, 0.4], &[true, false]),
            Err(MetricError::LengthMismatch { .. })
        ));
        assert!(matches!(
            gauc(&[1, 1], &[0.5, 0.4], &[true]),
            Err(MetricError::LengthMismatch { .. })
        ));
        assert!(matches!(
            gauc(&[1, 1], &[f32::NAN, 0.4], &[true, false]),
            Err(MetricError::NanScore { index: 0 })
        ));
    }

    #[test]
    fn single_user_equals_global_auc() {
        let s = [0.1, 0.4, 0.4, 0.35, 0.8, 0.4];
        let y = [0.0f32, 0.0, 1.0, 1.0, 1.0, 0.0];
        let g = gauc(&[9; 6], &s, &y).unwrap();
        assert_eq!(g.value, auc(&s, &y).unwrap());
    }

    #[test]
    fn randomized_matches_per_user_filtering() {
        // Reference: run `auc` on each user's rows separately, weight by row count.
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        for _ in 0..200 {
            let n = next(80) as usize;
            let n_users = 1 + next(6) as u32;
            let users: Vec<u32> = (0..n).map(|_| next(u64::from(n_users)) as u32).collect();
            let scores: Vec<f32> = (0..n).map(|_| next(4) as f32 * 0.25).collect();
            let labels: Vec<bool> = (0..n).map(|_| next(3) == 0).collect();
            let g = gauc(&users, &scores, &labels).unwrap();
            let (mut num, mut den, mut counted, mut total) = (0.0, 0.0, 0, 0);
            for u in 0..n_users {
                let rows: Vec<usize> = (0..n).filter(|&i| users[i] == u).collect();
                if rows.is_empty() {
                    continue;
                }
                total += 1;
                let s: Vec<f32> = rows.iter().map(|&i| scores[i]).collect();
                let y: Vec<bool> = rows.iter().map(|&i| labels[i]).collect();
                if let Some(a) = auc(&s, &y).unwrap() {
                    num += rows.len() as f64 * a;
                    den += rows.len() as f64;
                    counted += 1;
                }
            }
            assert_eq!((g.users_counted, g.users_total), (counted, total));
            match g.value {
                Some(v) => assert!((v - num / den).abs() < 1e-12),
                None => assert_eq!(counted, 0),
            }
        }
    }
}
