//! Simulated impressions as Arrow record batches in the KuaiRand log layout, so the simulator
//! feeds the same ingestion code as a file does, without a round trip through CSV.

use std::sync::Arc;

use arrow_array::{ArrayRef, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};

use super::{Impression, Platform};
use crate::error::{Result, SimError};

/// The log columns the `kuairand` preset reads, in KuaiRand's order.
const COLUMNS: [&str; 15] = [
    "user_id",
    "video_id",
    "date",
    "hourmin",
    "time_ms",
    "is_click",
    "is_like",
    "is_follow",
    "is_comment",
    "is_forward",
    "is_hate",
    "long_view",
    "play_time_ms",
    "duration_ms",
    "tab",
];

/// Batches of at most `rows` impressions each, in time order.
pub fn record_batches(
    platform: &Platform,
    rows: usize,
) -> impl Iterator<Item = Result<RecordBatch>> + '_ {
    let schema = Arc::new(Schema::new(
        COLUMNS.iter().map(|c| Field::new(*c, DataType::Int64, false)).collect::<Vec<_>>(),
    ));
    let mut impressions = platform.impressions();
    let rows = rows.max(1);
    std::iter::from_fn(move || {
        let chunk: Vec<Impression> = impressions.by_ref().take(rows).collect();
        if chunk.is_empty() {
            return None;
        }
        let column = |f: &dyn Fn(&Impression) -> i64| -> ArrayRef {
            Arc::new(Int64Array::from_iter_values(chunk.iter().map(f)))
        };
        let columns = vec![
            column(&|i| i64::from(i.user)),
            column(&|i| i64::from(i.video)),
            column(&|i| i64::from(i.date)),
            column(&|i| i64::from(i.hourmin)),
            column(&|i| i.time_ms),
            column(&|i| i64::from(i.click)),
            column(&|i| i64::from(i.like)),
            column(&|i| i64::from(i.follow)),
            column(&|i| i64::from(i.comment)),
            column(&|i| i64::from(i.forward)),
            column(&|i| i64::from(i.hate)),
            column(&|i| i64::from(i.long_view)),
            column(&|i| i.play_time_ms),
            column(&|i| i.duration_ms),
            column(&|i| i64::from(i.tab)),
        ];
        Some(
            RecordBatch::try_new(schema.clone(), columns)
                .map_err(|e| SimError::Batch(e.to_string())),
        )
    })
}
