//! The whole preparation: read, clean, join, filter, split, fit the feature map on training rows,
//! encode, label. The result holds every row once, encoded, and hands out mini-batches.

use std::collections::BTreeMap;
use std::path::PathBuf;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::Serialize;

use crate::batch::{Batch, BatchBuilder, RowInputs};
use crate::clips::ClipTable;
use crate::entity::EntityTable;
use crate::error::{DataError, Result};
use crate::feature_map::{
    EncodedParts, FEATURE_MAP_VERSION, FeatureMap, FeatureSchema, FeatureSource, TaskKind,
    fit_feature, resolve_tasks,
};
use crate::interner::Interner;
use crate::labels::{FLAG_MISSING, FittedSkip, LabelDeriver, SKIP_TASK, flag_label};
use crate::log::InteractionLog;
use crate::side_table::{SideTable, SideTableStats};
use crate::spec::{DatasetSpec, SplitSpec};
use crate::split::{Part, Split, split};
use crate::vocabulary::Vocabulary;
use crate::{filter, log::ReadStats};

/// Labels of one task for every row.
#[derive(Debug, Clone)]
pub enum LabelColumn {
    /// 0 or 1, `FLAG_MISSING` where absent.
    Binary(Vec<u8>),
    /// NaN where absent.
    Regression(Vec<f32>),
}

impl LabelColumn {
    pub fn get(&self, row: usize) -> (f32, bool) {
        match self {
            LabelColumn::Binary(v) => flag_label(v[row]),
            LabelColumn::Regression(v) => {
                (if v[row].is_nan() { 0.0 } else { v[row] }, !v[row].is_nan())
            }
        }
    }

    /// Mean of the label over rows where it exists (the positive rate of a binary task).
    pub fn mean(&self) -> Option<f64> {
        let (sum, n) = match self {
            LabelColumn::Binary(v) => v
                .iter()
                .filter(|&&x| x != FLAG_MISSING)
                .fold((0.0, 0u64), |(s, n), &x| (s + f64::from(x), n + 1)),
            LabelColumn::Regression(v) => v
                .iter()
                .filter(|x| !x.is_nan())
                .fold((0.0, 0u64), |(s, n), &x| (s + f64::from(x), n + 1)),
        };
        (n > 0).then(|| sum / n as f64)
    }
}

/// What preparation saw and did; `seesaw data inspect` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct PrepareReport {
    pub log: PathBuf,
    pub rows_read: u64,
    pub rows_kept: u64,
    pub dropped: BTreeMap<&'static str, u64>,
    /// Distinct ids in all rows read, and in kept rows.
    pub users: usize,
    pub videos: usize,
    pub users_kept: usize,
    pub videos_kept: usize,
    /// Binary task → positive rate among kept rows.
    pub label_rates: BTreeMap<String, f64>,
    /// Behaviour flag → positive rate among all rows read (dropped rows included).
    pub label_rates_read: BTreeMap<String, f64>,
    /// Regression task → mean target among kept rows.
    pub label_means: BTreeMap<String, f64>,
    /// Kept users and videos with no row in their side table (they get default features).
    pub users_without_features: usize,
    pub videos_without_features: usize,
    pub side_tables: BTreeMap<&'static str, SideTableStats>,
    /// Feature → number of indices (the out-of-vocabulary one included) or dense width.
    pub vocabulary: BTreeMap<String, usize>,
    pub split: BTreeMap<&'static str, usize>,
    /// Set when the rows were not split as configured (`data inspect` on a log the configured
    /// split leaves no training rows in): why, and what was done instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub split_note: Option<String>,
}

/// An encoded dataset held in memory.
pub struct PreparedDataset {
    pub feature_map: FeatureMap,
    pub schema: FeatureSchema,
    pub users: EntityTable,
    pub videos: EntityTable,
    pub clips: Option<ClipTable>,
    /// Raw id keys (by first appearance in the log); `user`/`video` index into them.
    pub user_keys: Interner,
    pub video_keys: Interner,
    pub user: Vec<u32>,
    pub video: Vec<u32>,
    /// Per raw id: its vocabulary index, its side-table row, its clip-table row.
    user_vocab_index: Vec<u32>,
    video_vocab_index: Vec<u32>,
    user_feature_row: Vec<u32>,
    video_feature_row: Vec<u32>,
    video_clip_row: Vec<u32>,
    pub context_categorical: Vec<u32>,
    pub context_dense: Vec<f32>,
    pub context_multi: Vec<u32>,
    context_widths: (usize, usize, usize),
    pub labels: Vec<LabelColumn>,
    pub watch_ratio: Vec<f32>,
    /// The video's duration in seconds per row (what duration-bucketed skip labels use); empty
    /// when the log gives none.
    pub duration_seconds: Vec<f32>,
    pub day: Vec<u32>,
    pub timestamp_ms: Vec<i64>,
    pub split: Split,
    pub report: PrepareReport,
}

/// Reads every file the spec names (paths must be set) and prepares the dataset.
pub fn prepare(spec: &DatasetSpec) -> Result<PreparedDataset> {
    let log_path = spec.log.path.clone().ok_or_else(|| DataError::spec("no log path given"))?;
    let (users, videos) = read_side_tables(spec)?;
    let durations = videos.as_ref().and_then(SideTable::durations);
    let log = InteractionLog::read(spec, &log_path, durations.as_ref())?;
    prepare_log(spec, log, users, videos)
}

pub fn read_side_tables(spec: &DatasetSpec) -> Result<(Option<SideTable>, Option<SideTable>)> {
    let read =
        |table: &Option<crate::spec::SideTableSpec>, what: &str| -> Result<Option<SideTable>> {
            match table {
                Some(t) => match &t.path {
                    Some(path) => SideTable::read(t, path, &spec.cleaning).map(Some),
                    None if t.features.is_empty() && t.duration.is_none() => Ok(None),
                    None => Err(DataError::spec(format!(
                        "the {what} table declares features but no path"
                    ))),
                },
                None => Ok(None),
            }
        };
    Ok((read(&spec.users, "user")?, read(&spec.videos, "video")?))
}

/// The clip-feature table the spec names, when it asks for clip labels.
pub(crate) fn read_clip_table(spec: &DatasetSpec) -> Result<Option<ClipTable>> {
    match (spec.clips.as_ref(), spec.labels.clips) {
        (Some(clip_spec), Some(n)) => match &clip_spec.path {
            Some(path) => Ok(Some(ClipTable::read(clip_spec, path, n)?)),
            None => Ok(None),
        },
        (Some(clip_spec), None) if clip_spec.path.is_some() => {
            Err(DataError::spec("clip features need labels.clips (the number of clips)"))
        }
        _ => Ok(None),
    }
}

/// Says which split emptied training, what the log holds, and what would work.
fn no_training_rows(log: &InteractionLog, split: &SplitSpec) -> DataError {
    let message = match split {
        SplitSpec::Temporal { train_end: None, valid_days, test_days, .. } => {
            let mut days = log.day.clone();
            days.sort_unstable();
            days.dedup();
            let span = match (days.first(), days.last()) {
                (Some(first), Some(last)) if first != last => format!("{first} to {last}"),
                (Some(day), _) => format!("{day}"),
                _ => "no dates".into(),
            };
            format!(
                "the temporal split (valid_days = {valid_days}, test_days = {test_days}) leaves no \
                 training rows: the log holds {} day(s) ({span}) and needs at least {}; give it \
                 more days, lower valid_days/test_days, or set [dataset.split] strategy = \
                 \"random\"",
                days.len(),
                valid_days + test_days + 1
            )
        }
        SplitSpec::Temporal { train_end: Some(end), .. } => {
            let first = log.day.iter().min().copied().unwrap_or(0);
            format!(
                "the temporal split's train_end = {end} leaves no training rows: the log starts \
                 on {first}"
            )
        }
        other => format!("the split {other:?} leaves no training rows"),
    };
    DataError::NoTrainingRows { log: log.source.clone(), message }
}

/// Prepares an already-read log (from a file, or made in memory by the simulator).
pub fn prepare_log(
    spec: &DatasetSpec,
    mut log: InteractionLog,
    user_table: Option<SideTable>,
    video_table: Option<SideTable>,
) -> Result<PreparedDataset> {
    let ReadStats { rows_read, flag_positives_read, flag_observed_read, .. } = log.stats.clone();
    let users_read = log.users.len();
    let videos_read = log.videos.len();
    filter::apply(&mut log, &spec.filter);
    if log.is_empty() {
        return Err(DataError::Malformed {
            location: crate::error::Location::file(&log.source),
            message: format!(
                "no rows left after cleaning and filtering ({} read; dropped: {:?})",
                rows_read,
                log.stats.dropped.by_name()
            ),
        });
    }
    let split = split(&log, &spec.split)?;
    if split.train.is_empty() {
        return Err(no_training_rows(&log, &spec.split));
    }

    // Fit on training rows only.
    let train = &split.train;
    let user_vocab = fit_ids(&log.users, &log.user, train);
    let video_vocab = fit_ids(&log.videos, &log.video, train);
    let side_row_of = |table: &Option<SideTable>, keys: &Interner| -> Vec<Option<u32>> {
        keys.tokens().map(|k| table.as_ref().and_then(|t| t.row_of(k))).collect()
    };
    let user_side_rows = side_row_of(&user_table, &log.users);
    let video_side_rows = side_row_of(&video_table, &log.videos);
    let mut features = Vec::new();
    for raw in &log.features {
        features.push(fit_feature(raw, FeatureSource::Log, train.iter().copied()));
    }
    for (table, ids, side_rows, source) in [
        (&user_table, &log.user, &user_side_rows, FeatureSource::User),
        (&video_table, &log.video, &video_side_rows, FeatureSource::Video),
    ] {
        if let Some(table) = table {
            let rows: Vec<u32> =
                train.iter().filter_map(|&r| side_rows[ids[r as usize] as usize]).collect();
            for raw in &table.features {
                features.push(fit_feature(raw, source, rows.iter().copied()));
            }
        }
    }
    let tasks = resolve_tasks(spec)?;
    let skip = tasks.iter().any(|t| t.name == SKIP_TASK).then(|| {
        let pick = |v: &[f32]| -> Vec<f32> {
            if v.is_empty() {
                vec![0.0; train.len()]
            } else {
                train.iter().map(|&r| v[r as usize]).collect()
            }
        };
        let user_keys: Vec<&str> =
            train.iter().map(|&r| log.users.token(log.user[r as usize])).collect();
        FittedSkip::fit(
            spec.labels.skip,
            &pick(&log.watch_ratio),
            &pick(&log.duration_seconds),
            &user_keys,
        )
    });
    let clips = read_clip_table(spec)?;
    let feature_map = FeatureMap {
        version: FEATURE_MAP_VERSION,
        spec: spec.clone(),
        user_id: user_vocab,
        video_id: video_vocab,
        features,
        tasks,
        skip,
        clip_feature_dim: clips.as_ref().map(|c| c.dim),
    };
    let schema = feature_map.schema();
    let users = EntityTable::build(user_table.as_ref(), &feature_map, FeatureSource::User);
    let videos = EntityTable::build(video_table.as_ref(), &feature_map, FeatureSource::Video);

    // Per raw id lookups, so rows store only the raw id.
    let user_vocab_index: Vec<u32> =
        log.users.tokens().map(|k| feature_map.user_id.index(k)).collect();
    let video_vocab_index: Vec<u32> =
        log.videos.tokens().map(|k| feature_map.video_id.index(k)).collect();
    let user_feature_row: Vec<u32> = log.users.tokens().map(|k| users.row_of(k)).collect();
    let video_feature_row: Vec<u32> = log.videos.tokens().map(|k| videos.row_of(k)).collect();
    let video_clip_row: Vec<u32> =
        log.videos.tokens().map(|k| clips.as_ref().map_or(0, |c| c.row_of(k))).collect();

    // Impression features, encoded once.
    let mut context = EncodedParts::default();
    let log_features: Vec<_> = feature_map.features_of(FeatureSource::Log).collect();
    for row in 0..log.len() {
        for (fitted, raw) in log_features.iter().zip(&log.features) {
            fitted.encode(raw, row, &mut context);
        }
    }
    let n = log.len();
    let context_widths =
        (context.categorical.len() / n, context.dense.len() / n, context.multi.len() / n);

    let labels = build_labels(&feature_map, &log)?;
    let (users_kept, videos_kept) = log.distinct_kept();
    let count_without = |ids: &[u32], rows: &[Option<u32>], has_table: bool| -> usize {
        if !has_table {
            return 0;
        }
        let mut seen = vec![false; rows.len()];
        ids.iter()
            .filter(|&&id| {
                rows[id as usize].is_none() && !std::mem::replace(&mut seen[id as usize], true)
            })
            .count()
    };
    let report = PrepareReport {
        log: log.source.clone(),
        rows_read,
        rows_kept: n as u64,
        dropped: log.stats.dropped.by_name(),
        users: users_read,
        videos: videos_read,
        users_kept,
        videos_kept,
        label_rates: feature_map
            .tasks
            .iter()
            .zip(&labels)
            .filter(|(t, _)| t.kind == TaskKind::Binary)
            .filter_map(|(t, l)| Some((t.name.clone(), l.mean()?)))
            .collect(),
        label_rates_read: log
            .flags
            .iter()
            .enumerate()
            .filter(|&(k, _)| flag_observed_read[k] > 0)
            .map(|(k, f)| {
                (f.task.clone(), flag_positives_read[k] as f64 / flag_observed_read[k] as f64)
            })
            .collect(),
        label_means: feature_map
            .tasks
            .iter()
            .zip(&labels)
            .filter(|(t, _)| t.kind == TaskKind::Regression)
            .filter_map(|(t, l)| Some((t.name.clone(), l.mean()?)))
            .collect(),
        users_without_features: count_without(&log.user, &user_side_rows, user_table.is_some()),
        videos_without_features: count_without(&log.video, &video_side_rows, video_table.is_some()),
        side_tables: [("users", &user_table), ("videos", &video_table)]
            .into_iter()
            .filter_map(|(name, t)| Some((name, t.as_ref()?.stats.clone())))
            .collect(),
        vocabulary: schema
            .categorical
            .iter()
            .map(|s| (s.name.clone(), s.cardinality))
            .chain(schema.multi.iter().map(|s| (s.name.clone(), s.cardinality)))
            .collect(),
        split: [
            ("train", split.train.len()),
            ("valid", split.valid.len()),
            ("test", split.test.len()),
        ]
        .into_iter()
        .collect(),
        split_note: None,
    };

    Ok(PreparedDataset {
        schema,
        users,
        videos,
        clips,
        user: std::mem::take(&mut log.user),
        video: std::mem::take(&mut log.video),
        user_keys: std::mem::take(&mut log.users),
        video_keys: std::mem::take(&mut log.videos),
        user_vocab_index,
        video_vocab_index,
        user_feature_row,
        video_feature_row,
        video_clip_row,
        context_categorical: context.categorical,
        context_dense: context.dense,
        context_multi: context.multi,
        context_widths,
        labels,
        watch_ratio: std::mem::take(&mut log.watch_ratio),
        duration_seconds: std::mem::take(&mut log.duration_seconds),
        day: std::mem::take(&mut log.day),
        timestamp_ms: std::mem::take(&mut log.timestamp_ms),
        split,
        report,
        feature_map,
    })
}

fn fit_ids(keys: &Interner, ids: &[u32], train: &[u32]) -> Vocabulary {
    let mut counts = vec![0u64; keys.len()];
    for &r in train {
        counts[ids[r as usize] as usize] += 1;
    }
    Vocabulary::fit(keys.tokens().zip(counts), 1)
}

/// One label column per task, in task order, by the rules of [`LabelDeriver`].
fn build_labels(map: &FeatureMap, log: &InteractionLog) -> Result<Vec<LabelColumn>> {
    let deriver = &label_deriver(map, log)?;
    let column = |k: usize| {
        let labels = (0..log.len()).map(move |r| deriver.label(k, &log.label_row(r)));
        if deriver.is_regression(k) {
            LabelColumn::Regression(
                labels.map(|(v, present)| if present { v } else { f32::NAN }).collect(),
            )
        } else {
            LabelColumn::Binary(
                labels.map(|(v, present)| if present { v as u8 } else { FLAG_MISSING }).collect(),
            )
        }
    };
    Ok((0..map.tasks.len()).map(column).collect())
}

/// The label rules of `map` over the flag columns of `log`.
pub(crate) fn label_deriver<'a>(
    map: &'a FeatureMap,
    log: &'a InteractionLog,
) -> Result<LabelDeriver<'a>> {
    let flags: Vec<(&str, &[u8])> =
        log.flags.iter().map(|f| (f.task.as_str(), f.values.as_slice())).collect();
    LabelDeriver::new(
        map.tasks.iter().map(|t| t.name.as_str()),
        map.spec.labels.regression_cap,
        map.skip.as_ref(),
        &flags,
    )
}

impl PreparedDataset {
    pub fn len(&self) -> usize {
        self.user.len()
    }

    pub fn is_empty(&self) -> bool {
        self.user.is_empty()
    }

    /// The batch of the given rows, in the given order.
    pub fn batch(&self, rows: &[u32]) -> Batch {
        let n_clips = self.feature_map.spec.labels.clips;
        let mut builder = BatchBuilder::new(
            &self.schema,
            &self.users,
            &self.videos,
            self.labels.len(),
            n_clips.map(|n| (n, self.clips.as_ref())),
            rows.len(),
        );
        let (wc, wd, wm) = self.context_widths;
        let mut labels = vec![(0.0, false); self.labels.len()];
        for &row in rows {
            let r = row as usize;
            let (u, v) = (self.user[r] as usize, self.video[r] as usize);
            for (slot, column) in labels.iter_mut().zip(&self.labels) {
                *slot = column.get(r);
            }
            builder.push(RowInputs {
                user_id: self.user_vocab_index[u],
                video_id: self.video_vocab_index[v],
                user_row: self.user_feature_row[u],
                video_row: self.video_feature_row[v],
                clip_row: self.video_clip_row[v],
                context_categorical: &self.context_categorical[r * wc..(r + 1) * wc],
                context_dense: &self.context_dense[r * wd..(r + 1) * wd],
                context_multi: &self.context_multi[r * wm..(r + 1) * wm],
                labels: &labels,
                watch_ratio: self.watch_ratio.get(r).copied(),
                user_group: self.user[r],
                row,
            });
        }
        builder.finish()
    }

    /// Mini-batches over one part of the split; shuffled with `seed` when given, so a fixed seed
    /// gives the same batches on every run.
    pub fn batches(
        &self,
        part: Part,
        batch_size: usize,
        seed: Option<u64>,
    ) -> impl Iterator<Item = Batch> + '_ {
        let mut rows = self.split.part(part).to_vec();
        if let Some(seed) = seed {
            rows.shuffle(&mut Xoshiro256PlusPlus::seed_from_u64(seed));
        }
        let batch_size = batch_size.max(1);
        (0..rows.len().div_ceil(batch_size)).map(move |i| {
            let end = ((i + 1) * batch_size).min(rows.len());
            self.batch(&rows[i * batch_size..end])
        })
    }

    /// Heap bytes held by the encoded rows and tables (what a training run keeps resident).
    pub fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        let labels: usize = self
            .labels
            .iter()
            .map(|l| match l {
                LabelColumn::Binary(v) => v.capacity(),
                LabelColumn::Regression(v) => v.capacity() * 4,
            })
            .sum();
        (self.user.capacity() + self.video.capacity()) * 4
            + self.context_categorical.capacity() * 4
            + self.context_dense.capacity() * 4
            + self.context_multi.capacity() * 4
            + self.watch_ratio.capacity() * 4
            + self.duration_seconds.capacity() * 4
            + self.day.capacity() * 4
            + self.timestamp_ms.capacity() * size_of::<i64>()
            + (self.split.train.capacity()
                + self.split.valid.capacity()
                + self.split.test.capacity())
                * 4
            + labels
            + (self.users.categorical.capacity() + self.videos.categorical.capacity()) * 4
            + (self.users.dense.capacity() + self.videos.dense.capacity()) * 4
    }
}
