//! A batch scored in two halves side by side: the first half on the helper thread, the second
//! on the calling one (`side_by_side`).
//!
//! Inference on a CPU with two cores: splitting every large product and element-wise pass in
//! two (the helper thread's own use) leaves the second core idle through all the smaller ops
//! between them, about half of an MMoE forward at batch 1024. Two half batches keep both cores
//! busy from the first op to the last, with one hand-off per batch instead of one per op.
//!
//! Rows are scored independently in inference, so the results are those of the whole batch up
//! to float rounding where a kernel's blocking depends on the row count (one unit in the last
//! place, seen on the logistic model; `tests/row_halves.rs`).

use seesaw_data::batch::Batch;

use crate::{helper_available, side_by_side};

/// Batches with fewer rows than twice this are scored whole: below it the hand-off and the
/// smaller products cost more than the second core gains.
pub const MIN_ROWS_PER_HALF: usize = 128;

/// `score` of `batch`: of the whole batch (one result), or of its first and second half side
/// by side (two results, in row order) when the batch is large enough and the helper thread
/// is available.
pub fn score_in_halves<R: Send>(batch: &Batch, score: impl Fn(&Batch) -> R + Sync) -> Vec<R> {
    if batch.size < 2 * MIN_ROWS_PER_HALF || !helper_available() {
        return vec![score(batch)];
    }
    let middle = batch.size / 2;
    let first = batch.slice_rows(0..middle);
    let second = batch.slice_rows(middle..batch.size);
    let score = &score;
    let (first, second) = side_by_side(move || score(&first), move || score(&second));
    vec![first, second]
}

/// Per-output values of consecutive row ranges, joined: `parts[i][k]` holds output k of part
/// i; the result holds output k of all parts in order.
pub fn join_rows(parts: Vec<Vec<Vec<f32>>>) -> Vec<Vec<f32>> {
    let mut parts = parts.into_iter();
    let Some(mut joined) = parts.next() else { return Vec::new() };
    for part in parts {
        for (all, more) in joined.iter_mut().zip(part) {
            all.extend(more);
        }
    }
    joined
}
