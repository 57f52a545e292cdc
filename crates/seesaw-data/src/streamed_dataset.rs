//! Training on a log larger than memory: one streaming pass fits the feature map (vocabularies,
//! normalisers, the skip rule) on the training rows, then every epoch reads the log again,
//! chunk by chunk, and hands out shuffled batches. What stays resident is the feature map, the
//! side tables, one shuffle window of encoded rows and the fit's per-token counts, never the log.
//!
//! What differs from the in-memory path ([`crate::dataset::prepare`]), by necessity:
//! - Shuffling is within a window of `shuffle_rows` consecutive rows of a part (rows left over
//!   from a window join the next), not over the whole part.
//! - Repeated impressions are removed within a read chunk of 65,536 rows (a time-sorted log keeps
//!   its repeats together), as [`crate::streaming::StreamingBatches`] does.
//! - A random split decides each row by a seeded hash of its line, so it needs no row count;
//!   it is a different draw from the in-memory shuffle.
//! - The leave-last split and the minimum-interaction filters need every row of a user at once,
//!   and are refused.
//!
//! A temporal split by `valid_days`/`test_days` still takes one pass: statistics are kept per
//! day for the latest days seen, and a day joins the training statistics once enough later days
//! have been seen that it cannot be among the held-out ones, in any row order.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};

use crate::batch::Batch;
use crate::cleaning::DropCounts;
use crate::dataset::{read_clip_table, read_side_tables};
use crate::error::{DataError, Location, Result};
use crate::feature_fit::FeatureFitter;
use crate::feature_map::{
    FEATURE_MAP_VERSION, FeatureMap, FeatureSchema, FeatureSource, resolve_tasks,
};
use crate::interner::Interner;
use crate::labels::{FittedSkip, SKIP_TASK, SkipStrategy};
use crate::log::InteractionLog;
use crate::shard::Shard;
use crate::side_table::SideTable;
use crate::spec::{DatasetSpec, SplitSpec};
use crate::split::Part;
use crate::streaming::{CleanChunks, EncodedSideTables, encode_rows};
use crate::table::DEFAULT_CHUNK_ROWS;
use crate::training_data::{ShardRows, ShardedData, TrainingData};
use crate::vocabulary::Vocabulary;

/// Rows shuffled together when the run config does not say.
pub const DEFAULT_SHUFFLE_ROWS: usize = 262_144;

/// A log on disk with a feature map fitted on its training rows.
pub struct StreamedDataset {
    feature_map: FeatureMap,
    schema: FeatureSchema,
    tables: EncodedSideTables,
    log: PathBuf,
    rule: PartRule,
    /// Rows of each part over the whole log (all ranks).
    part_rows: [usize; 3],
    /// Which rows this process reads, and how many of each part every rank holds.
    read_shard: Shard,
    shard: ShardRows,
    /// Batches' user groups, numbered across every part and epoch, so that a group's user key
    /// can be looked up when ranks merge their scores.
    user_groups: Mutex<Interner>,
    shuffle_rows: usize,
    /// Rows read from the log, and why the ones not kept were dropped.
    pub rows_read: u64,
    pub dropped: DropCounts,
}

/// Which part a row belongs to, decided from the row alone.
#[derive(Debug, Clone, Copy, PartialEq)]
enum PartRule {
    /// Inclusive end days (yyyymmdd) of training and validation.
    ByDay { train_end: u32, valid_end: u32 },
    /// A seeded hash of the row's line.
    ByLine { seed: u64, valid_fraction: f64, test_fraction: f64 },
}

impl PartRule {
    fn part(&self, log: &InteractionLog, row: usize) -> Part {
        match *self {
            PartRule::ByDay { train_end, valid_end } => match log.day[row] {
                d if d <= train_end => Part::Train,
                d if d <= valid_end => Part::Valid,
                _ => Part::Test,
            },
            PartRule::ByLine { seed, valid_fraction, test_fraction } => {
                let u = unit_hash(seed, log.line[row]);
                if u < valid_fraction {
                    Part::Valid
                } else if u < valid_fraction + test_fraction {
                    Part::Test
                } else {
                    Part::Train
                }
            }
        }
    }
}

impl PartRule {
    /// The rows of each part (train, valid, test) of a by-day rule, from the rows of each day.
    fn rows_by_day(&self, rows_per_day: &BTreeMap<u32, usize>) -> [usize; 3] {
        let mut part_rows = [0; 3];
        let PartRule::ByDay { train_end, valid_end } = *self else { return part_rows };
        for (&day, &n) in rows_per_day {
            let part = match day {
                d if d <= train_end => Part::Train,
                d if d <= valid_end => Part::Valid,
                _ => Part::Test,
            };
            part_rows[part as usize] += n;
        }
        part_rows
    }
}

/// A uniform number in [0, 1) from (seed, line): splitmix64's finaliser.
fn unit_hash(seed: u64, line: u64) -> f64 {
    let mut z = seed ^ line.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// How the fit pass learns which rows train.
enum SplitPlan {
    Fixed(PartRule),
    /// The last `valid_days + test_days` distinct days are held out.
    LastDays {
        valid_days: u32,
        test_days: u32,
    },
}

impl SplitPlan {
    fn splits_by_day(&self) -> bool {
        !matches!(self, SplitPlan::Fixed(PartRule::ByLine { .. }))
    }

    fn from_spec(split: &SplitSpec) -> Result<Self> {
        Ok(match *split {
            SplitSpec::Random { seed, valid_fraction, test_fraction } => {
                SplitPlan::Fixed(PartRule::ByLine { seed, valid_fraction, test_fraction })
            }
            SplitSpec::Temporal { train_end: Some(train_end), valid_end, .. } => {
                SplitPlan::Fixed(PartRule::ByDay {
                    train_end,
                    valid_end: valid_end.unwrap_or(u32::MAX),
                })
            }
            SplitSpec::Temporal { train_end: None, valid_days, test_days, .. } => {
                SplitPlan::LastDays { valid_days, test_days }
            }
            SplitSpec::LeaveLast { .. } => {
                return Err(DataError::spec(
                    "a streamed log cannot be split leave-last (it needs every row of a user at \
                     once); use a temporal or random split, or train in memory",
                ));
            }
        })
    }
}

/// The statistics of training rows that the feature map is fitted from; mergeable, so that each
/// day's can be kept apart until the split is known, and each rank's shard's merged into one.
#[derive(Serialize, Deserialize)]
struct TrainStats {
    rows: usize,
    users: HashMap<String, u64>,
    videos: HashMap<String, u64>,
    log_features: Vec<FeatureFitter>,
    /// Only when a fitted skip rule needs them: watch ratio, duration and user of each row.
    skip_rows: Option<SkipRows>,
}

#[derive(Default, Serialize, Deserialize)]
struct SkipRows {
    ratios: Vec<f32>,
    durations: Vec<f32>,
    /// Ids into the fit pass's user interner.
    users: Vec<u32>,
}

impl TrainStats {
    fn new(log: &InteractionLog, keeps_skip_rows: bool) -> Self {
        Self {
            rows: 0,
            users: HashMap::new(),
            videos: HashMap::new(),
            log_features: log
                .features
                .iter()
                .map(|raw| FeatureFitter::new(&raw.spec, FeatureSource::Log))
                .collect(),
            skip_rows: keeps_skip_rows.then(SkipRows::default),
        }
    }

    fn add(&mut self, log: &InteractionLog, rows: &[u32], skip_users: &mut Interner) {
        self.rows += rows.len();
        count_keys(&mut self.users, &log.users, &log.user, rows);
        count_keys(&mut self.videos, &log.videos, &log.video, rows);
        for (fitter, raw) in self.log_features.iter_mut().zip(&log.features) {
            fitter.add(raw, rows.iter().copied());
        }
        if let Some(skip) = &mut self.skip_rows {
            for &r in rows {
                let r = r as usize;
                skip.ratios.push(log.watch_ratio.get(r).copied().unwrap_or(0.0));
                skip.durations.push(log.duration_seconds.get(r).copied().unwrap_or(0.0));
                skip.users.push(skip_users.intern(log.users.token(log.user[r])));
            }
        }
    }

    /// Renumbers the skip rows' users from `from`'s ids to `to`'s (another scan's interner).
    fn renumber_skip_users(&mut self, from: &Interner, to: &mut Interner) {
        if let Some(skip) = &mut self.skip_rows {
            skip.users.iter_mut().for_each(|u| *u = to.intern(from.token(*u)));
        }
    }

    fn merge(&mut self, other: TrainStats) {
        self.rows += other.rows;
        for (mine, theirs) in [(&mut self.users, other.users), (&mut self.videos, other.videos)] {
            for (key, n) in theirs {
                *mine.entry(key).or_default() += n;
            }
        }
        for (fitter, more) in self.log_features.iter_mut().zip(other.log_features) {
            fitter.merge(more);
        }
        if let (Some(mine), Some(theirs)) = (&mut self.skip_rows, other.skip_rows) {
            mine.ratios.extend(theirs.ratios);
            mine.durations.extend(theirs.durations);
            mine.users.extend(theirs.users);
        }
    }
}

/// Adds the impressions of `rows` per key.
fn count_keys(counts: &mut HashMap<String, u64>, keys: &Interner, ids: &[u32], rows: &[u32]) {
    let mut per_id = vec![0u64; keys.len()];
    for &r in rows {
        per_id[ids[r as usize] as usize] += 1;
    }
    for (key, n) in keys.tokens().zip(per_id).filter(|&(_, n)| n > 0) {
        *counts.entry(key.to_owned()).or_default() += n;
    }
}

/// What one reading of a log, or of one rank's shard of it, learns for the fit: mergeable, and
/// sent between ranks as bytes.
#[derive(Serialize, Deserialize)]
struct FitScan {
    /// Statistics of the rows known to train: a fixed split's training rows, or (split by the
    /// last days) the days with enough later days seen that they cannot be held out.
    train: Option<TrainStats>,
    /// Split by the last days: the latest days seen, each apart until the split is known.
    recent: BTreeMap<u32, TrainStats>,
    rows_per_day: BTreeMap<u32, usize>,
    /// A fixed split: the rows of each part.
    part_rows: [usize; 3],
    rows_read: u64,
    dropped: DropCounts,
    /// The users the skip rows number.
    skip_users: Interner,
}

/// A scan's row counts, kept per rank after the scans merge.
struct RankScan {
    rows_per_day: BTreeMap<u32, usize>,
    part_rows: [usize; 3],
}

impl RankScan {
    fn part_rows(&self, rule: &PartRule) -> [usize; 3] {
        match rule {
            PartRule::ByDay { .. } if self.part_rows == [0; 3] => {
                rule.rows_by_day(&self.rows_per_day)
            }
            _ => self.part_rows,
        }
    }
}

impl FitScan {
    fn read(
        spec: &DatasetSpec,
        log_path: &Path,
        durations: Option<&HashMap<String, f64>>,
        plan: &SplitPlan,
        keeps_skip_rows: bool,
        shard: Shard,
    ) -> Result<Self> {
        let mut scan = FitScan {
            train: None,
            recent: BTreeMap::new(),
            rows_per_day: BTreeMap::new(),
            part_rows: [0; 3],
            rows_read: 0,
            dropped: DropCounts::default(),
            skip_users: Interner::new(),
        };
        for log in CleanChunks::open_shard(spec, log_path, durations, DEFAULT_CHUNK_ROWS, shard)? {
            let log = log?;
            scan.rows_read += log.stats.rows_read;
            scan.dropped.merge(&log.stats.dropped);
            if log.is_empty() {
                continue;
            }
            if plan.splits_by_day() && log.day.is_empty() {
                return Err(DataError::spec(
                    "split: a temporal split needs a date or timestamp column in the log",
                ));
            }
            let new_stats = || TrainStats::new(&log, keeps_skip_rows);
            match plan {
                SplitPlan::Fixed(rule) => {
                    let mut train_rows = Vec::new();
                    for r in 0..log.len() {
                        let part = rule.part(&log, r);
                        scan.part_rows[part as usize] += 1;
                        if part == Part::Train {
                            train_rows.push(r as u32);
                        }
                    }
                    let train = scan.train.get_or_insert_with(new_stats);
                    train.add(&log, &train_rows, &mut scan.skip_users);
                }
                SplitPlan::LastDays { valid_days, test_days } => {
                    let mut by_day: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
                    for (r, &day) in log.day.iter().enumerate() {
                        by_day.entry(day).or_default().push(r as u32);
                    }
                    for (day, rows) in by_day {
                        *scan.rows_per_day.entry(day).or_default() += rows.len();
                        let stats = scan.recent.entry(day).or_insert_with(new_stats);
                        stats.add(&log, &rows, &mut scan.skip_users);
                    }
                    let held_out = (valid_days + test_days) as usize;
                    move_old_days_to_train(&mut scan.recent, &mut scan.train, held_out);
                }
            }
        }
        Ok(scan)
    }

    fn counts(&self) -> RankScan {
        RankScan { rows_per_day: self.rows_per_day.clone(), part_rows: self.part_rows }
    }

    /// Adds another rank's scan (its skip rows' users renumbered into this scan's).
    fn merge(&mut self, mut other: FitScan) {
        let theirs = &other.skip_users;
        for stats in other.train.iter_mut().chain(other.recent.values_mut()) {
            stats.renumber_skip_users(theirs, &mut self.skip_users);
        }
        merge_stats(&mut self.train, other.train);
        for (day, stats) in other.recent {
            match self.recent.entry(day) {
                Entry::Occupied(mut mine) => mine.get_mut().merge(stats),
                Entry::Vacant(slot) => {
                    slot.insert(stats);
                }
            }
        }
        for (day, n) in other.rows_per_day {
            *self.rows_per_day.entry(day).or_default() += n;
        }
        for (mine, theirs) in self.part_rows.iter_mut().zip(other.part_rows) {
            *mine += theirs;
        }
        self.rows_read += other.rows_read;
        self.dropped.merge(&other.dropped);
    }
}

fn merge_stats(into: &mut Option<TrainStats>, more: Option<TrainStats>) {
    match (into.as_mut(), more) {
        (Some(stats), Some(more)) => stats.merge(more),
        (None, more) => *into = more,
        (_, None) => {}
    }
}

/// A day with `held_out` later days seen is a training day whatever follows: its statistics
/// join the training ones.
fn move_old_days_to_train(
    recent: &mut BTreeMap<u32, TrainStats>,
    train: &mut Option<TrainStats>,
    held_out: usize,
) {
    while recent.len() > held_out {
        let (_, stats) = recent.pop_first().expect("more days than held out");
        merge_stats(train, Some(stats));
    }
}

/// Every rank's scan, in rank order, or the first failure (this rank's own, with its location,
/// before another's).
fn exchange_scans(
    scan: Result<FitScan>,
    shard: Shard,
    all_gather: &dyn Fn(&[u8]) -> Vec<Vec<u8>>,
) -> Result<Vec<FitScan>> {
    let (sent, own_error) = match scan {
        Ok(scan) => (Ok(scan), None),
        Err(e) => (Err(e.to_string()), Some(e)),
    };
    let bytes = postcard::to_stdvec(&sent).expect("fit statistics serialise");
    drop(sent);
    let gathered = all_gather(&bytes);
    drop(bytes);
    if let Some(e) = own_error {
        return Err(e);
    }
    let mut scans = Vec::with_capacity(gathered.len());
    for (rank, bytes) in gathered.iter().enumerate() {
        let received: std::result::Result<FitScan, String> =
            postcard::from_bytes(bytes).map_err(|e| {
                DataError::spec(format!("rank {rank}'s fit statistics are unreadable: {e}"))
            })?;
        match received {
            Ok(scan) => scans.push(scan),
            Err(message) => {
                return Err(DataError::spec(format!(
                    "rank {rank} of {} could not read its shard of the log: {message}",
                    shard.ranks
                )));
            }
        }
    }
    Ok(scans)
}

impl StreamedDataset {
    /// Reads the log once to fit the feature map on its training rows; `shuffle_rows` is the
    /// shuffle window of training batches.
    pub fn fit(spec: &DatasetSpec, shuffle_rows: usize) -> Result<Self> {
        Self::fit_shard(spec, shuffle_rows, Shard::WHOLE, &|mine| vec![mine.to_vec()])
    }

    /// [`StreamedDataset::fit`] as one of several ranks, each reading only its `shard` of a
    /// Parquet log: every rank scans its shard, the scans are exchanged (`all_gather`: every
    /// rank's bytes, in rank order) and merged in rank order, so that every rank fits the same
    /// feature map and split, from the statistics of the whole log. The batches then hold this
    /// rank's rows only ([`TrainingData::shard`]). A rank whose scan failed makes every rank fail,
    /// naming it.
    pub fn fit_shard(
        spec: &DatasetSpec,
        shuffle_rows: usize,
        shard: Shard,
        all_gather: &dyn Fn(&[u8]) -> Vec<Vec<u8>>,
    ) -> Result<Self> {
        let log_path = spec.log.path.clone().ok_or_else(|| DataError::spec("no log path given"))?;
        if spec.filter.min_user_interactions > 1 || spec.filter.min_video_interactions > 1 {
            return Err(DataError::spec(
                "a streamed log cannot apply [dataset.filter] minimum interactions (they need \
                 every row of a user or video at once); drop the filter or train in memory",
            ));
        }
        let plan = SplitPlan::from_spec(&spec.split)?;
        let (user_table, video_table) = read_side_tables(spec)?;
        let durations = video_table.as_ref().and_then(SideTable::durations);
        let tasks = resolve_tasks(spec)?;
        let fits_skip = tasks.iter().any(|t| t.name == SKIP_TASK);
        let keeps_skip_rows = fits_skip && !matches!(spec.labels.skip, SkipStrategy::Fixed { .. });

        let scan =
            FitScan::read(spec, &log_path, durations.as_ref(), &plan, keeps_skip_rows, shard);
        let scans =
            if shard.is_whole() { vec![scan?] } else { exchange_scans(scan, shard, all_gather)? };
        let rank_scans: Vec<RankScan> = scans.iter().map(FitScan::counts).collect();
        let mut scans = scans.into_iter();
        let mut merged = scans.next().expect("at least one rank");
        for scan in scans {
            merged.merge(scan);
        }
        let FitScan {
            mut train,
            mut recent,
            rows_per_day,
            mut part_rows,
            rows_read,
            dropped,
            skip_users,
        } = merged;
        if let SplitPlan::LastDays { valid_days, test_days } = &plan {
            // What each rank kept apart were its latest days; over all ranks, only the latest
            // days of the whole log are held out.
            move_old_days_to_train(&mut recent, &mut train, (valid_days + test_days) as usize);
        }
        let rows_kept: usize = match &plan {
            SplitPlan::Fixed(_) => part_rows.iter().sum(),
            SplitPlan::LastDays { .. } => rows_per_day.values().sum(),
        };
        if rows_kept == 0 {
            return Err(DataError::Malformed {
                location: Location::file(&log_path),
                message: format!(
                    "no rows left after cleaning ({rows_read} read; dropped: {:?})",
                    dropped.by_name()
                ),
            });
        }
        let rule = match plan {
            SplitPlan::Fixed(rule) => rule,
            SplitPlan::LastDays { valid_days, test_days } => {
                // `recent` holds the latest valid_days + test_days days; earlier ones trained.
                let held: Vec<u32> = recent.keys().copied().collect();
                let train_end =
                    rows_per_day.keys().copied().take_while(|d| !held.contains(d)).last();
                let Some(train_end) = train_end.filter(|_| train.is_some()) else {
                    let days = rows_per_day.len();
                    return Err(DataError::NoTrainingRows {
                        log: log_path,
                        message: format!(
                            "the temporal split (valid_days = {valid_days}, test_days = \
                             {test_days}) leaves no training rows: the log holds {days} day(s) \
                             and needs at least {}",
                            valid_days + test_days + 1
                        ),
                    });
                };
                // Held out: the first valid_days days validate, the rest test.
                let valid_end = match (valid_days as usize, test_days) {
                    (_, 0) => u32::MAX,
                    (0, _) => train_end,
                    (v, _) => held[v - 1],
                };
                let rule = PartRule::ByDay { train_end, valid_end };
                part_rows = rule.rows_by_day(&rows_per_day);
                rule
            }
        };
        let rank_part_rows: Vec<[usize; 3]> =
            rank_scans.iter().map(|scan| scan.part_rows(&rule)).collect();
        let Some(train) = train.filter(|t| t.rows > 0) else {
            return Err(DataError::NoTrainingRows {
                log: log_path,
                message: format!("the split {:?} leaves no training rows", spec.split),
            });
        };

        let clips = read_clip_table(spec)?;
        let feature_map = fit_feature_map(
            spec,
            train,
            &skip_users,
            user_table.as_ref(),
            video_table.as_ref(),
            tasks,
            clips.as_ref().map(|c| c.dim),
        );
        let tables = EncodedSideTables::encode(
            &feature_map,
            user_table.as_ref(),
            video_table.as_ref(),
            clips,
            durations,
        );
        Ok(Self {
            schema: feature_map.schema(),
            feature_map,
            tables,
            log: log_path,
            rule,
            part_rows,
            shard: ShardRows { rank: shard.rank, per_rank: rank_part_rows },
            read_shard: shard,
            user_groups: Mutex::new(Interner::new()),
            shuffle_rows: shuffle_rows.max(1),
            rows_read,
            dropped,
        })
    }
}

/// The feature map from the training statistics, in the order `dataset::prepare_log` fits it:
/// log features, then user, then video side-table features (weighted by training impressions).
fn fit_feature_map(
    spec: &DatasetSpec,
    train: TrainStats,
    skip_users: &Interner,
    user_table: Option<&SideTable>,
    video_table: Option<&SideTable>,
    tasks: Vec<crate::feature_map::TaskInfo>,
    clip_feature_dim: Option<usize>,
) -> FeatureMap {
    let vocabulary = |counts: &HashMap<String, u64>| {
        Vocabulary::fit(counts.iter().map(|(k, &n)| (k.as_str(), n)), 1)
    };
    let mut features: Vec<_> = train.log_features.into_iter().map(FeatureFitter::finish).collect();
    for (table, counts, source) in [
        (user_table, &train.users, FeatureSource::User),
        (video_table, &train.videos, FeatureSource::Video),
    ] {
        let Some(table) = table else { continue };
        // Sorted by key: the sums a numeric fit takes must not follow hash order.
        let mut rows: Vec<(&str, u32, u64)> =
            counts.iter().filter_map(|(k, &n)| Some((k.as_str(), table.row_of(k)?, n))).collect();
        rows.sort_unstable();
        for raw in &table.features {
            let mut fitter = FeatureFitter::new(&raw.spec, source);
            fitter.add(
                raw,
                rows.iter().flat_map(|&(_, row, n)| std::iter::repeat_n(row, n as usize)),
            );
            features.push(fitter.finish());
        }
    }
    let skip = tasks.iter().any(|t| t.name == SKIP_TASK).then(|| {
        let rows = train.skip_rows.unwrap_or_default();
        let users: Vec<&str> = rows.users.iter().map(|&u| skip_users.token(u)).collect();
        FittedSkip::fit(spec.labels.skip, &rows.ratios, &rows.durations, &users)
    });
    FeatureMap {
        version: FEATURE_MAP_VERSION,
        spec: spec.clone(),
        user_id: vocabulary(&train.users),
        video_id: vocabulary(&train.videos),
        features,
        tasks,
        skip,
        clip_feature_dim,
    }
}

impl TrainingData for StreamedDataset {
    fn feature_map(&self) -> &FeatureMap {
        &self.feature_map
    }

    fn part_len(&self, part: Part) -> usize {
        self.part_rows[part as usize]
    }

    fn shard(&self) -> Option<&dyn ShardedData> {
        (!self.read_shard.is_whole()).then_some(self as &dyn ShardedData)
    }

    fn batches(
        &self,
        part: Part,
        batch_size: usize,
        shuffle_seed: Option<u64>,
    ) -> Box<dyn Iterator<Item = Result<Batch>> + '_> {
        match CleanChunks::open_shard(
            &self.feature_map.spec,
            &self.log,
            self.tables.video_durations.as_ref(),
            DEFAULT_CHUNK_ROWS,
            self.read_shard,
        ) {
            Ok(chunks) => Box::new(PartBatches {
                data: self,
                part,
                chunks: Some(chunks),
                batch_size: batch_size.max(1),
                window_rows: if shuffle_seed.is_some() {
                    self.shuffle_rows.max(batch_size)
                } else {
                    batch_size.max(1)
                },
                rng: shuffle_seed.map(Xoshiro256PlusPlus::seed_from_u64),
                window: Vec::new(),
                ready: VecDeque::new(),
                rows_emitted: 0,
            }),
            Err(e) => Box::new(std::iter::once(Err(e))),
        }
    }
}

/// The batches of one part: chunks are read and encoded into a window; a full window is
/// shuffled (with a seed) and cut into batches, and the rows short of a batch carry over.
struct PartBatches<'a> {
    data: &'a StreamedDataset,
    part: Part,
    chunks: Option<CleanChunks<'a>>,
    batch_size: usize,
    window_rows: usize,
    rng: Option<Xoshiro256PlusPlus>,
    /// Encoded rows of the part not yet handed out.
    window: Vec<Batch>,
    ready: VecDeque<Batch>,
    rows_emitted: u64,
}

impl PartBatches<'_> {
    /// Rows in the window, summed over its batches (one per chunk read since the last cut).
    fn window_len(&self) -> usize {
        self.window.iter().map(|b| b.size).sum()
    }

    /// Reads the next chunk into the window; false at the end of the log.
    fn read_chunk(&mut self) -> Result<bool> {
        let Some(chunks) = self.chunks.as_mut() else { return Ok(false) };
        let Some(log) = chunks.next().transpose()? else {
            self.chunks = None;
            return Ok(false);
        };
        let data = self.data;
        let rows: Vec<usize> =
            (0..log.len()).filter(|&r| data.rule.part(&log, r) == self.part).collect();
        if !rows.is_empty() {
            // A shard's rows are numbered by their place in the whole log, so that ranks' scores
            // can be put back in its order (as one process reads it).
            let positions: Option<Vec<u32>> = (!data.read_shard.is_whole())
                .then(|| rows.iter().map(|&r| log.position[r] as u32).collect());
            let mut batch = encode_rows(
                &data.feature_map,
                &data.schema,
                &data.tables,
                &log,
                rows.into_iter(),
                &mut data.user_groups.lock().expect("no batch stream panicked encoding"),
                self.rows_emitted,
                None,
            )?;
            self.rows_emitted += batch.size as u64;
            if let Some(positions) = positions {
                batch.rows = positions;
            }
            self.window.push(batch);
        }
        Ok(true)
    }

    /// Cuts the window into batches; at the end of the log the last one may be short, before
    /// it the rows short of a batch stay in the window.
    fn cut_window(&mut self, at_end: bool) {
        let mut picks: Vec<(u32, u32)> = self
            .window
            .iter()
            .enumerate()
            .flat_map(|(s, b)| (0..b.size as u32).map(move |r| (s as u32, r)))
            .collect();
        if let Some(rng) = &mut self.rng {
            picks.shuffle(rng);
        }
        let full = picks.len() / self.batch_size * self.batch_size;
        for batch in picks[..full].chunks(self.batch_size) {
            self.ready.push_back(Batch::gather(&self.window, batch));
        }
        let rest = &picks[full..];
        if at_end && !rest.is_empty() {
            self.ready.push_back(Batch::gather(&self.window, rest));
        }
        self.window = if at_end || rest.is_empty() {
            Vec::new()
        } else {
            vec![Batch::gather(&self.window, rest)]
        };
    }
}

impl Iterator for PartBatches<'_> {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(batch) = self.ready.pop_front() {
                return Some(Ok(batch));
            }
            match self.read_chunk() {
                Err(e) => {
                    self.chunks = None;
                    self.window.clear();
                    return Some(Err(e));
                }
                Ok(true) if self.window_len() >= self.window_rows => self.cut_window(false),
                Ok(true) => {}
                Ok(false) if self.window_len() > 0 => self.cut_window(true),
                Ok(false) => return None,
            }
        }
    }
}

impl ShardedData for StreamedDataset {
    fn rows(&self) -> &ShardRows {
        &self.shard
    }

    fn user_group_keys(&self, groups: &[u32]) -> Vec<String> {
        let interner = self.user_groups.lock().expect("no batch stream panicked encoding");
        groups.iter().map(|&g| interner.token(g).to_owned()).collect()
    }
}
