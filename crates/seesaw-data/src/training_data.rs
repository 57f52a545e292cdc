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
