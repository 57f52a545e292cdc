//! Mini-batches of plain buffers, the only thing a model sees: categorical indices, dense
//! floats, multi-valued indices, and per-task labels with masks, row-major and ready to become
//! tensors. Built the same way from an in-memory dataset and from a stream.

use crate::clips::ClipTable;
use crate::entity::EntityTable;
use crate::feature_map::{FeatureSchema, FeatureSource, SOURCE_ORDER};
use crate::labels::ClipOutcome;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    pub size: usize,
    /// size × n_categorical, in `FeatureSchema::categorical` order.
    pub categorical: Vec<u32>,
    pub n_categorical: usize,
    /// size × n_dense.
    pub dense: Vec<f32>,
    pub n_dense: usize,
    /// size × multi_width, 0-padded.
    pub multi: Vec<u32>,
    pub multi_width: usize,
    /// n_tasks × size, task-major: `label(k)` is one contiguous slice per task.
    pub labels: Vec<f32>,
    /// 1 where the task's label exists, 0 where it does not.
    pub masks: Vec<f32>,
    pub n_tasks: usize,
    /// A per-user group id (for GAUC and per-user ranking metrics), stable within one dataset.
    pub user_group: Vec<u32>,
    /// Dataset row of each batch row (in-memory) or running row number (streaming).
    pub rows: Vec<u32>,
    pub clips: Option<ClipBatch>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClipBatch {
    pub n_clips: usize,
    /// size × n_clips each.
    pub labels: Vec<f32>,
    pub masks: Vec<f32>,
    /// Position weight (i+1)/N_c for watched clips, 1 for the skip clip, 0 when unlabelled.
    pub weights: Vec<f32>,
    /// size × n_clips × dim; empty when no clip features were given.
    pub features: Vec<f32>,
    pub dim: usize,
}

impl Batch {
    pub fn label(&self, task: usize) -> &[f32] {
        &self.labels[task * self.size..(task + 1) * self.size]
    }

    pub fn mask(&self, task: usize) -> &[f32] {
        &self.masks[task * self.size..(task + 1) * self.size]
    }

    /// Rows `range` of this batch, as a batch of their own.
    pub fn slice_rows(&self, range: std::ops::Range<usize>) -> Batch {
        let picks: Vec<(u32, u32)> = range.map(|r| (0, r as u32)).collect();
        Batch::gather(std::slice::from_ref(self), &picks)
    }

    /// The rows `picks` — (index into `sources`, row of that batch) — in that order, as one
    /// batch. The sources must share one layout (they come from one feature map); `rows` and
    /// `user_group` are carried over from them.
    pub fn gather(sources: &[Batch], picks: &[(u32, u32)]) -> Batch {
        let Some(first) = sources.first() else { return Batch::default() };
        let n = picks.len();
        let (nc, nd, nm, nt) =
            (first.n_categorical, first.n_dense, first.multi_width, first.n_tasks);
        let mut out = Batch {
            size: n,
            n_categorical: nc,
            n_dense: nd,
            multi_width: nm,
            n_tasks: nt,
            categorical: Vec::with_capacity(n * nc),
            dense: Vec::with_capacity(n * nd),
            multi: Vec::with_capacity(n * nm),
            labels: vec![0.0; n * nt],
            masks: vec![0.0; n * nt],
            user_group: Vec::with_capacity(n),
            rows: Vec::with_capacity(n),
            clips: first.clips.as_ref().map(|c| ClipBatch {
                n_clips: c.n_clips,
                dim: c.dim,
                ..Default::default()
            }),
        };
        for (i, &(source, row)) in picks.iter().enumerate() {
            let b = &sources[source as usize];
            let r = row as usize;
            out.categorical.extend_from_slice(&b.categorical[r * nc..(r + 1) * nc]);
            out.dense.extend_from_slice(&b.dense[r * nd..(r + 1) * nd]);
            out.multi.extend_from_slice(&b.multi[r * nm..(r + 1) * nm]);
            for k in 0..nt {
                out.labels[k * n + i] = b.labels[k * b.size + r];
                out.masks[k * n + i] = b.masks[k * b.size + r];
            }
            out.user_group.push(b.user_group[r]);
            out.rows.push(b.rows[r]);
            if let (Some(to), Some(from)) = (out.clips.as_mut(), b.clips.as_ref()) {
                let (c, dim) = (from.n_clips, from.dim);
                to.labels.extend_from_slice(&from.labels[r * c..(r + 1) * c]);
                to.masks.extend_from_slice(&from.masks[r * c..(r + 1) * c]);
                to.weights.extend_from_slice(&from.weights[r * c..(r + 1) * c]);
                to.features.extend_from_slice(&from.features[r * c * dim..(r + 1) * c * dim]);
            }
        }
        out
    }
}

/// One row's inputs to a batch.
pub struct RowInputs<'a> {
    pub user_id: u32,
    pub video_id: u32,
    pub user_row: u32,
    pub video_row: u32,
    /// Row of the video in the clip table (ignored without one).
    pub clip_row: u32,
    pub context_categorical: &'a [u32],
    pub context_dense: &'a [f32],
    pub context_multi: &'a [u32],
    /// Per task: the label and whether it exists.
    pub labels: &'a [(f32, bool)],
    /// For clip labels.
    pub watch_ratio: Option<f32>,
    pub user_group: u32,
    pub row: u32,
}

/// Assembles rows into a `Batch`; rows are appended one by one, then the task-major label
/// buffers are laid out at `finish`.
pub struct BatchBuilder<'a> {
    users: &'a EntityTable,
    videos: &'a EntityTable,
    clips: Option<(usize, Option<&'a ClipTable>)>,
    n_tasks: usize,
    batch: Batch,
    row_labels: Vec<(f32, bool)>,
}

impl<'a> BatchBuilder<'a> {
    pub fn new(
        schema: &FeatureSchema,
        users: &'a EntityTable,
        videos: &'a EntityTable,
        n_tasks: usize,
        clips: Option<(usize, Option<&'a ClipTable>)>,
        capacity: usize,
    ) -> Self {
        let batch = Batch {
            n_categorical: schema.categorical.len(),
            n_dense: schema.dense.len(),
            multi_width: schema.multi_width(),
            n_tasks,
            categorical: Vec::with_capacity(capacity * schema.categorical.len()),
            dense: Vec::with_capacity(capacity * schema.dense.len()),
            ..Default::default()
        };
        Self {
            users,
            videos,
            clips,
            n_tasks,
            batch,
            row_labels: Vec::with_capacity(capacity * n_tasks),
        }
    }

    pub fn len(&self) -> usize {
        self.batch.size
    }

    pub fn is_empty(&self) -> bool {
        self.batch.size == 0
    }

    pub fn push(&mut self, row: RowInputs<'_>) {
        let b = &mut self.batch;
        b.categorical.push(row.user_id);
        b.categorical.push(row.video_id);
        // The slots of each source, in the schema's order.
        let (users, videos) = (self.users, self.videos);
        let parts = SOURCE_ORDER.map(|source| match source {
            FeatureSource::Log => (row.context_categorical, row.context_dense, row.context_multi),
            FeatureSource::User => (
                users.categorical(row.user_row),
                users.dense(row.user_row),
                users.multi(row.user_row),
            ),
            FeatureSource::Video => (
                videos.categorical(row.video_row),
                videos.dense(row.video_row),
                videos.multi(row.video_row),
            ),
        });
        parts.iter().for_each(|p| b.categorical.extend_from_slice(p.0));
        parts.iter().for_each(|p| b.dense.extend_from_slice(p.1));
        parts.iter().for_each(|p| b.multi.extend_from_slice(p.2));
        debug_assert_eq!(row.labels.len(), self.n_tasks);
        self.row_labels.extend_from_slice(row.labels);
        b.user_group.push(row.user_group);
        b.rows.push(row.row);
        if let Some((n_clips, table)) = self.clips {
            let clips = b.clips.get_or_insert_with(|| ClipBatch {
                n_clips,
                dim: table.map_or(0, |t| t.dim),
                ..Default::default()
            });
            let outcome = row.watch_ratio.map(|r| ClipOutcome::from_ratio(r, n_clips));
            for i in 0..n_clips {
                let (label, mask, weight) = outcome.map_or((0.0, 0.0, 0.0), |o| o.clip(i));
                clips.labels.push(label);
                clips.masks.push(mask);
                clips.weights.push(weight);
            }
            if let Some(table) = table {
                clips.features.extend_from_slice(table.features(row.clip_row));
            }
        }
        b.size += 1;
    }

    pub fn finish(mut self) -> Batch {
        let size = self.batch.size;
        self.batch.labels = vec![0.0; self.n_tasks * size];
        self.batch.masks = vec![0.0; self.n_tasks * size];
        for (r, labels) in self.row_labels.chunks(self.n_tasks.max(1)).enumerate().take(size) {
            for (k, &(value, present)) in labels.iter().enumerate() {
                self.batch.labels[k * size + r] = if present { value } else { 0.0 };
                self.batch.masks[k * size + r] = if present { 1.0 } else { 0.0 };
            }
        }
        self.batch
    }
}
