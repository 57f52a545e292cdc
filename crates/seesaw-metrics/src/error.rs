//! The one error type of this crate.
//!
//! Convention used by every metric:
//! - `Err(MetricError)` means the *input is malformed*: slices of different lengths, a NaN
//!   score, a label that is not a number, a probability outside `[0, 1]`, `k = 0`. Those are
//!   bugs in the caller (or corrupt data) and must not be averaged away silently.
//! - `Ok(None)` (or a `value: None` field) means the input is well-formed but the metric is
//!   *undefined* on it: no rows, only one class present for AUC, no user qualifying for a
//!   per-user average, a zero single-task baseline for a relative gain.

use thiserror::Error;

/// Why a metric could not be computed from its input.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum MetricError {
    /// Two parallel input slices have different lengths.
    #[error("length mismatch: `{left}` has {left_len} elements but `{right}` has {right_len}")]
    LengthMismatch {
        /// Name of the first slice.
        left: &'static str,
        /// Its length.
        left_len: usize,
        /// Name of the second slice.
        right: &'static str,
        /// Its length.
        right_len: usize,
    },
    /// A score used for ranking is NaN, so no order between it and the others exists.
    #[error("score at index {index} is NaN")]
    NanScore {
        /// Position in the input slice.
        index: usize,
    },
    /// A value that must be finite (a prediction, a regression target, a per-seed result) is
    /// NaN or infinite.
    #[error("`{what}` at index {index} is not finite ({value})")]
    NonFinite {
        /// Name of the input slice.
        what: &'static str,
        /// Position in the input slice.
        index: usize,
        /// The offending value.
        value: f64,
    },
    /// A probability is outside `[0, 1]` (or NaN): most likely a logit was passed where a
    /// probability was expected.
    #[error("probability at index {index} is {value}, outside [0, 1]")]
    ProbabilityOutOfRange {
        /// Position in the input slice.
        index: usize,
        /// The offending value.
        value: f64,
    },
    /// A binary label is NaN or infinite, so it is neither positive nor negative.
    #[error("label at index {index} is not a finite number ({value})")]
    InvalidLabel {
        /// Position in the input slice.
        index: usize,
        /// The offending value.
        value: f64,
    },
    /// A cut-off `k` of zero was requested for a top-K metric.
    #[error("k must be at least 1")]
    ZeroK,
    /// A single-task or multi-task metric value handed to the MTL comparison is not finite.
    #[error("task `{task}`: {which} metric is not finite ({value})")]
    NonFiniteTaskMetric {
        /// Task name.
        task: String,
        /// `"single"` or `"mtl"`.
        which: &'static str,
        /// The offending value.
        value: f64,
    },
}

/// Result alias used throughout the crate.
pub type Result<T> = std::result::Result<T, MetricError>;
