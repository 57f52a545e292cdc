//! The result type of metrics averaged over users (GAUC, Recall@K, NDCG@K).

use serde::{Deserialize, Serialize};

/// A per-user metric averaged over the users for which it is defined.
///
/// Reports should show `users_counted` next to `value`: a GAUC over 40 of 10 000 users says
/// something very different from one over 9 000.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct UserAverage {
    /// The average, or `None` when no user qualified (the average of nothing is undefined).
    pub value: Option<f64>,
    /// Users that qualified and entered the average.
    pub users_counted: usize,
    /// Distinct users in the input, qualified or not.
    pub users_total: usize,
}
