//! Batches straight from a log file, chunk by chunk, through an already fitted feature map: for
//! logs larger than memory, and for scoring new logs exactly as training encoded them. Only one
//! chunk is held at a time.
//!
//! Each chunk is cleaned with the same rules as the in-memory path; repeated impressions are
//! removed within a chunk (a time-sorted log keeps its repeats together, so chunk boundaries
//! rarely separate them). A chunk becomes one batch, so a batch holds at most `batch_size` rows
//! and fewer where rows were dropped.

use std::collections::HashMap;
use std::path::Path;

use crate::batch::{Batch, BatchBuilder, RowInputs};
use crate::cleaning::DropCounts;
use crate::clips::ClipTable;
use crate::dataset::{label_deriver, read_clip_table, read_side_tables};
use crate::entity::EntityTable;
use crate::error::Result;
use crate::feature_map::{EncodedParts, FeatureMap, FeatureSchema, FeatureSource};
use crate::interner::Interner;
use crate::log::{InteractionLog, LogIngestor};
use crate::shard::Shard;
use crate::side_table::SideTable;
use crate::spec::DatasetSpec;
use crate::table::TableReader;

/// The encoded side tables a fitted feature map needs to encode rows: loaded once, shared by
/// streams and by the server.
pub struct EncodedSideTables {
    pub users: EntityTable,
    pub videos: EntityTable,
    pub clips: Option<ClipTable>,
    pub video_durations: Option<HashMap<String, f64>>,
}

impl EncodedSideTables {
    /// Reads the side tables named in the feature map's spec.
    pub fn load(map: &FeatureMap) -> Result<Self> {
        let (users, videos) = read_side_tables(&map.spec)?;
        let clips = match map.clip_feature_dim {
            Some(_) => read_clip_table(&map.spec)?,
            None => None,
        };
        let durations = videos.as_ref().and_then(SideTable::durations);
        Ok(Self::encode(map, users.as_ref(), videos.as_ref(), clips, durations))
    }

    /// Encodes side tables already read; `video_durations` are those of `videos`, which the
    /// caller has already taken for reading the log.
    pub(crate) fn encode(
        map: &FeatureMap,
        users: Option<&SideTable>,
        videos: Option<&SideTable>,
        clips: Option<ClipTable>,
        video_durations: Option<HashMap<String, f64>>,
    ) -> Self {
        Self {
            users: EntityTable::build(users, map, FeatureSource::User),
            videos: EntityTable::build(videos, map, FeatureSource::Video),
            clips,
            video_durations,
        }
    }
}

pub struct StreamingBatches<'a> {
    map: &'a FeatureMap,
    schema: FeatureSchema,
    tables: &'a EncodedSideTables,
    chunks: CleanChunks<'a>,
    user_groups: Interner,
    rows_emitted: u64,
    rows_read: u64,
    dropped: DropCounts,
    /// The (user, video) key of every emitted row, indexed by the running row number; `None`
    /// unless asked for, so plain scoring does not hold two strings per row of a large log.
    row_keys: Option<Vec<(String, String)>>,
}

impl<'a> StreamingBatches<'a> {
    pub fn open(
        map: &'a FeatureMap,
        tables: &'a EncodedSideTables,
        log: &Path,
        batch_size: usize,
    ) -> Result<Self> {
        let chunks =
            CleanChunks::open(&map.spec, log, tables.video_durations.as_ref(), batch_size)?;
        Ok(Self {
            map,
            schema: map.schema(),
            tables,
            chunks,
            user_groups: Interner::new(),
            rows_emitted: 0,
            rows_read: 0,
            dropped: DropCounts::default(),
            row_keys: None,
        })
    }

    /// Keeps the user and video key of every row from now on, so per-row outputs can name the
    /// row they score. Call it before the first batch: the keys are indexed by the running row
    /// number that batches carry in `Batch::rows`.
    pub fn keep_row_keys(&mut self) {
        debug_assert_eq!(self.rows_emitted, 0, "keep_row_keys after rows were emitted");
        self.row_keys.get_or_insert_with(Vec::new);
    }

    /// The (user, video) key of each emitted row, as the log reader reads them (trimmed, integral
    /// numbers without a decimal part: the keys the vocabularies are looked up with), indexed by
    /// the row's running number. Empty unless `keep_row_keys` was called.
    pub fn row_keys(&self) -> &[(String, String)] {
        self.row_keys.as_deref().unwrap_or_default()
    }

    pub fn rows_read(&self) -> u64 {
        self.rows_read
    }

    pub fn dropped(&self) -> &DropCounts {
        &self.dropped
    }

    fn encode(&mut self, log: &InteractionLog) -> Result<Batch> {
        let batch = encode_rows(
            self.map,
            &self.schema,
            self.tables,
            log,
            0..log.len(),
            &mut self.user_groups,
            self.rows_emitted,
            self.row_keys.as_mut(),
        )?;
        self.rows_emitted += log.len() as u64;
        Ok(batch)
    }
}

/// Encodes rows `rows` of one chunk's log through a fitted feature map: the batch rows carry
/// running row numbers from `first_row` on, and user groups from `user_groups` (shared across
/// the chunks of one stream). With `row_keys`, each row's (user, video) key is appended to it.
#[allow(clippy::too_many_arguments)]
pub(crate) fn encode_rows(
    map: &FeatureMap,
    schema: &FeatureSchema,
    tables: &EncodedSideTables,
    log: &InteractionLog,
    rows: impl ExactSizeIterator<Item = usize>,
    user_groups: &mut Interner,
    first_row: u64,
    mut row_keys: Option<&mut Vec<(String, String)>>,
) -> Result<Batch> {
    let n_clips = map.spec.labels.clips;
    let mut builder = BatchBuilder::new(
        schema,
        &tables.users,
        &tables.videos,
        map.tasks.len(),
        n_clips.map(|n| (n, tables.clips.as_ref())),
        rows.len(),
    );
    let log_features: Vec<_> = map.features_of(FeatureSource::Log).collect();
    let deriver = label_deriver(map, log)?;
    let mut context = EncodedParts::default();
    let mut labels = vec![(0.0, false); map.tasks.len()];
    for (i, r) in rows.enumerate() {
        let user_key = log.users.token(log.user[r]);
        let video_key = log.videos.token(log.video[r]);
        if let Some(keys) = row_keys.as_mut() {
            keys.push((user_key.to_owned(), video_key.to_owned()));
        }
        context.categorical.clear();
        context.dense.clear();
        context.multi.clear();
        for (fitted, raw) in log_features.iter().zip(&log.features) {
            fitted.encode(raw, r, &mut context);
        }
        let label_row = log.label_row(r);
        for (k, label) in labels.iter_mut().enumerate() {
            *label = deriver.label(k, &label_row);
        }
        builder.push(RowInputs {
            user_id: map.user_id.index(user_key),
            video_id: map.video_id.index(video_key),
            user_row: tables.users.row_of(user_key),
            video_row: tables.videos.row_of(video_key),
            clip_row: tables.clips.as_ref().map_or(0, |c| c.row_of(video_key)),
            context_categorical: &context.categorical,
            context_dense: &context.dense,
            context_multi: &context.multi,
            labels: &labels,
            watch_ratio: label_row.watch_ratio,
            user_group: user_groups.intern(user_key),
            row: (first_row + i as u64) as u32,
        });
    }
    Ok(builder.finish())
}

impl Iterator for StreamingBatches<'_> {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let log = match self.chunks.next()? {
                Ok(log) => log,
                Err(e) => return Some(Err(e)),
            };
            self.rows_read += log.stats.rows_read;
            self.dropped.merge(&log.stats.dropped);
            if !log.is_empty() {
                return Some(self.encode(&log));
            }
        }
    }
}

/// Reads a log chunk by chunk, each chunk cleaned on its own: the one reading of a log that
/// scoring streams, the streamed fit and its batch passes share, so that all see the same rows.
pub(crate) struct CleanChunks<'a> {
    spec: &'a DatasetSpec,
    durations: Option<&'a HashMap<String, f64>>,
    reader: TableReader,
}

impl<'a> CleanChunks<'a> {
    pub(crate) fn open(
        spec: &'a DatasetSpec,
        path: &Path,
        durations: Option<&'a HashMap<String, f64>>,
        chunk_rows: usize,
    ) -> Result<Self> {
        Self::open_shard(spec, path, durations, chunk_rows, Shard::WHOLE)
    }

    /// Only `shard`'s rows of the log (see [`crate::shard`]).
    pub(crate) fn open_shard(
        spec: &'a DatasetSpec,
        path: &Path,
        durations: Option<&'a HashMap<String, f64>>,
        chunk_rows: usize,
        shard: Shard,
    ) -> Result<Self> {
        let delimiter = spec.log.delimiter_byte()?;
        let reader = TableReader::open_shard(path, delimiter, chunk_rows.max(1), shard)?;
        LogIngestor::new(spec, path, durations).check_columns(reader.columns())?;
        Ok(Self { spec, durations, reader })
    }
}

impl Iterator for CleanChunks<'_> {
    type Item = Result<InteractionLog>;

    fn next(&mut self) -> Option<Self::Item> {
        let chunk = match self.reader.next()? {
            Ok(chunk) => chunk,
            Err(e) => return Some(Err(e)),
        };
        let mut ingestor = LogIngestor::new(self.spec, self.reader.path(), self.durations);
        let log = ingestor.ingest(&chunk.batch, chunk.first_line).and_then(|_| ingestor.finish());
        Some(log.map(|mut log| {
            // A chunk's rows are on consecutive lines (a reader ends a chunk at a gap).
            let to_position = |line: &u64| chunk.first_row + (line - chunk.first_line);
            log.position = log.line.iter().map(to_position).collect();
            log
        }))
    }
}
