//! seesaw-data turns short-video interaction logs (CSV or Parquet, with user and video side
//! tables and optional per-clip features) into labelled, encoded mini-batches of plain
//! `f32`/`u32` buffers. It knows nothing of tensors, so it compiles and tests fast and can take
//! Parquet produced by any other pipeline, or the files that seesaw-sim writes.
//!
//! The flow: [`spec::DatasetSpec`] says what each column means; [`log::InteractionLog`] reads
//! and cleans the log with a counted reason per dropped row; [`dataset::prepare`] filters,
//! splits, fits the [`feature_map::FeatureMap`] on training rows only and encodes; the result
//! hands out [`batch::Batch`]es. [`streaming::StreamingBatches`] does the same for logs larger
//! than memory with an already fitted feature map.

pub mod atomic;
pub mod batch;
pub mod cells;
pub mod cleaning;
pub mod clips;
pub mod dataset;
pub mod dates;
pub mod entity;
pub mod error;
pub mod fault;
pub mod feature_fit;
pub mod feature_map;
pub mod filter;
pub mod interner;
pub mod labels;
pub mod log;
pub mod numeric;
pub mod parquet_dataset;
pub mod presets;
pub mod raw_feature;
pub mod shard;
pub mod side_table;
pub mod spec;
pub mod spec_toml;
pub mod split;
pub mod streamed_dataset;
pub mod streaming;
pub mod table;
pub mod training_data;
pub mod vocabulary;

pub use error::{DataError, Result};
