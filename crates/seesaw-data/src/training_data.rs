//! What a trainer reads: the fitted feature map and batches of each part of the split. An
//! in-memory [`PreparedDataset`] and a log streamed from disk
//! ([`StreamedDataset`](crate::streamed_dataset::StreamedDataset)) both provide it, so training,
//! validation and evaluation never ask where the rows live.

use crate::batch::Batch;
use crate::dataset::PreparedDataset;
use crate::error::{DataError, Result};
use crate::feature_map::FeatureMap;
use crate::split::Part;

pub trait TrainingData {
    fn feature_map(&self) -> &FeatureMap;

    /// Rows in `part`, after cleaning.
    fn part_len(&self, part: Part) -> usize;

    /// Batches of `batch_size` rows (the last may be smaller) over `part`. With a seed the rows
    /// come shuffled, the same way for the same seed; without one, in log order. A streamed log
    /// reports a read error as an item.
    fn batches(
        &self,
        part: Part,
        batch_size: usize,
        shuffle_seed: Option<u64>,
    ) -> Box<dyn Iterator<Item = Result<Batch>> + '_>;

    /// `Some` when this process's batches hold only its shard of the log (several ranks, each
    /// reading disjoint rows); `None` when its batches are the whole part, as every rank's are.
    fn shard(&self) -> Option<&dyn ShardedData> {
        None
    }

    /// The part a trained model is judged on: test when the split has one, else validation.
    fn evaluation_part(&self) -> Part {
        if self.part_len(Part::Test) == 0 { Part::Valid } else { Part::Test }
    }
}

impl TrainingData for PreparedDataset {
    fn feature_map(&self) -> &FeatureMap {
        &self.feature_map
    }

    fn part_len(&self, part: Part) -> usize {
        self.split.part(part).len()
    }

    fn batches(
        &self,
        part: Part,
        batch_size: usize,
        shuffle_seed: Option<u64>,
    ) -> Box<dyn Iterator<Item = Result<Batch>> + '_> {
        Box::new(PreparedDataset::batches(self, part, batch_size, shuffle_seed).map(Ok))
    }
}

/// Data that one of several ranks holds a shard of.
pub trait ShardedData {
    fn rows(&self) -> &ShardRows;

    /// The user keys of batch user groups (`Batch::user_group`): a group number is this rank's
    /// own, so scores merged across ranks are grouped by key.
    fn user_group_keys(&self, groups: &[u32]) -> Vec<String>;
}

/// How many rows of each part every rank's shard holds.
#[derive(Debug, Clone, PartialEq)]
pub struct ShardRows {
    pub rank: usize,
    /// Per rank: rows of train, validation and test (`Part as usize`).
    pub per_rank: Vec<[usize; 3]>,
}

impl ShardRows {
    pub fn ranks(&self) -> usize {
        self.per_rank.len()
    }

    /// This rank's rows of `part`.
    pub fn local(&self, part: Part) -> usize {
        self.per_rank[self.rank][part as usize]
    }

    /// The rows of a global batch of `batch_size` this rank contributes: its share, as when
    /// every rank slices one batch (`batch_size · r / N` boundaries), at least one.
    pub fn local_batch_size(&self, batch_size: usize) -> usize {
        batch_share(batch_size, self.rank, self.ranks())
    }

    /// Steps every rank can take over `part` with local batches of its share of `batch_size`:
    /// the fewest any rank's shard gives, so that every rank joins every step's sum. Rows of a
    /// larger shard beyond them are not trained that epoch (at most the difference between
    /// shards, which the dealing of blocks keeps within one block).
    pub fn steps(&self, part: Part, batch_size: usize) -> usize {
        let ranks = self.ranks();
        let steps = |(rank, rows): (usize, &[usize; 3])| {
            rows[part as usize].div_ceil(batch_share(batch_size, rank, ranks))
        };
        self.per_rank.iter().enumerate().map(steps).min().unwrap_or(0)
    }
}

fn batch_share(batch_size: usize, rank: usize, ranks: usize) -> usize {
    (batch_size * (rank + 1) / ranks - batch_size * rank / ranks).max(1)
}

/// Batches until the first error, which is kept for the caller to return once its loop ends:
/// for code that takes plain batches (model fitting, evaluation) fed from a fallible stream.
pub struct UntilError<'a> {
    inner: Box<dyn Iterator<Item = Result<Batch>> + 'a>,
    error: Option<DataError>,
}

impl<'a> UntilError<'a> {
    pub fn new(inner: Box<dyn Iterator<Item = Result<Batch>> + 'a>) -> Self {
        Self { inner, error: None }
    }

    /// The first error met, if any.
    pub fn finish(self) -> Result<()> {
        self.error.map_or(Ok(()), Err)
    }
}

impl Iterator for UntilError<'_> {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        if self.error.is_some() {
            return None;
        }
        match self.inner.next()? {
            Ok(batch) => Some(batch),
            Err(e) => {
                self.error = Some(e);
                None
            }
        }
    }
}
