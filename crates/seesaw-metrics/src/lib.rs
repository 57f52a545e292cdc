//! Evaluation metrics for Seesaw, with exact, hand-checked definitions and no ML framework.
//!
//! | file                 | metrics                                                     |
//! |----------------------|-------------------------------------------------------------|
//! | [`auc`](mod@auc)     | [`auc`], [`auc_masked`]: ties counted half, O(n log n)      |
//! | [`gauc`](mod@gauc)   | [`gauc`]: impression-weighted mean of per-user AUC          |
//! | [`classification`]   | [`logloss`] (clipped to `[1e-7, 1 − 1e-7]`), [`accuracy`]   |
//! | [`regression`]       | [`mse`], [`rmse`], [`mae`]                                  |
//! | [`ranking`]          | [`recall_at_k`], [`ndcg_at_k`] per user                     |
//! | [`mtl_gain`]         | [`gain`], [`seesaw_pairs`], [`delta_m`], [`compare_to_single_task`] |
//! | [`summary`]          | [`MeanSd`]: mean ± sample sd over seeds                     |
//! | [`xauc`](mod@xauc)   | [`xauc`]: pairwise order of watch time/ratio, ties half     |
//!
//! Each module's documentation gives the exact formula and why it is defined that way.
//!
//! # Conventions
//! - **Errors versus undefined.** Malformed input (slices of different lengths, a NaN score, a
//!   NaN label, a probability outside `[0, 1]`, `k = 0`) is an `Err(`[`MetricError`]`)`.
//!   Well-formed input on which a metric has no value (empty input, a single class for AUC, no
//!   qualifying user, a zero baseline for a relative gain) gives `Ok(None)` or a `None` value.
//!   Nothing panics on input data.
//! - **Labels** are `&[bool]` or `&[f32]`/`&[f64]` through [`BinaryLabel`]: a float label is
//!   positive iff it is `> 0.5`; NaN or infinite labels are errors.
//! - **Scores** are `f32` (what the models emit); all accumulation is in `f64`.
//! - Everything that appears in a JSON report (`UserAverage`, `MeanSd`, the MTL comparison
//!   types) implements serde's `Serialize` and `Deserialize`.

pub mod auc;
mod check;
pub mod classification;
pub mod error;
pub mod gauc;
pub mod label;
pub mod mtl_gain;
pub mod ranking;
pub mod regression;
pub mod summary;
pub mod user_average;
pub mod xauc;

pub use auc::{auc, auc_masked};
pub use classification::{LOGLOSS_EPS, accuracy, accuracy_at, logloss};
pub use error::{MetricError, Result};
pub use gauc::gauc;
pub use label::BinaryLabel;
pub use mtl_gain::{
    MetricDirection, MtlComparison, SeesawPair, TaskComparison, TaskGain, compare_to_single_task,
    delta_m, gain, seesaw_pairs,
};
pub use ranking::{ndcg_at_k, recall_at_k};
pub use regression::{mae, mse, rmse};
pub use summary::{MeanSd, mean_sd};
pub use user_average::UserAverage;
pub use xauc::xauc;

#[cfg(test)]
mod tests {
    use super::*;

    /// Compile-time check that every report type round-trips through serde.
    #[test]
    fn report_types_are_serde() {
        fn assert_serde<T: serde::Serialize + serde::de::DeserializeOwned>() {}
        assert_serde::<UserAverage>();
        assert_serde::<MeanSd>();
        assert_serde::<MetricDirection>();
        assert_serde::<TaskComparison>();
        assert_serde::<TaskGain>();
        assert_serde::<SeesawPair>();
        assert_serde::<MtlComparison>();
    }
}
