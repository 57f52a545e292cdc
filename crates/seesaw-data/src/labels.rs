//! Label definitions: which tasks exist, how watch ratio is capped, and how "skip" is decided.
//! The skip threshold is a first-class choice: the seed study's fixed 0.5 made the label nearly
//! random, so better-founded thresholds are offered and fitted on training rows only.
//! [`LabelDeriver`] holds the rules that turn a row of a log into its task labels, for prepared
//! and streamed data alike.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};

pub const WATCH_RATIO_TASK: &str = "watch_ratio";
pub const SKIP_TASK: &str = "skip";
/// A full watch: watch ratio ≥ 1 (FRAME's video label). Derived only when named in
/// `labels.tasks`, so the default task list of a log is unchanged.
pub const WATCH_THROUGH_TASK: &str = "watch_through";

/// A behaviour flag cell that was empty: neither 0 nor 1.
pub const FLAG_MISSING: u8 = 2;

/// A flag cell as a label: its value, and whether it is present.
pub fn flag_label(value: u8) -> (f32, bool) {
    (f32::from(value & 1), value != FLAG_MISSING)
}

/// Whether a task's positive label is good news for the ranking (a like, a long view) or bad
/// news (a dislike, a fast skip). Declared in the dataset spec (`[labels] polarity`), with
/// defaults by name (`Polarity::default_for`); fusion and DLEN read it, nothing guesses it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Polarity {
    #[default]
    Positive,
    Negative,
}

impl Polarity {
    /// The default for a task of this name: `skip`, and any name containing `hate` or
    /// `dislike`, are negative; everything else is positive.
    pub fn default_for(name: &str) -> Self {
        let name = name.to_ascii_lowercase();
        if name == SKIP_TASK || name.contains("hate") || name.contains("dislike") {
            Polarity::Negative
        } else {
            Polarity::Positive
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LabelSpec {
    /// Watch ratios above this are capped (replays make ratios above 1 real, but a few are huge).
    #[serde(default = "default_ratio_cap")]
    pub watch_ratio_cap: f64,
    /// The regression target is min(watch ratio, this).
    #[serde(default = "default_regression_cap")]
    pub regression_cap: f64,
    #[serde(default)]
    pub skip: SkipStrategy,
    /// N_c: split each video into this many equal clips and derive clip labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clips: Option<usize>,
    /// The tasks to build, in order; default: every flag, then watch_ratio and skip when the log
    /// gives a watch ratio.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tasks: Option<Vec<String>>,
    /// Task name → "positive" or "negative", overriding the default of its name
    /// (`Polarity::default_for`: skip, hate and dislike are negative).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub polarity: BTreeMap<String, Polarity>,
}

fn default_ratio_cap() -> f64 {
    5.0
}
fn default_regression_cap() -> f64 {
    1.0
}

impl Default for LabelSpec {
    fn default() -> Self {
        Self {
            watch_ratio_cap: default_ratio_cap(),
            regression_cap: default_regression_cap(),
            skip: SkipStrategy::default(),
            clips: None,
            tasks: None,
            polarity: BTreeMap::new(),
        }
    }
}

impl LabelSpec {
    pub fn validate(&self) -> Result<()> {
        if self.watch_ratio_cap.is_nan()
            || self.watch_ratio_cap <= 0.0
            || self.regression_cap.is_nan()
            || self.regression_cap <= 0.0
        {
            return Err(DataError::spec(
                "labels: watch_ratio_cap and regression_cap must be positive",
            ));
        }
        if self.clips == Some(0) || self.clips.is_some_and(|n| n > 255) {
            return Err(DataError::spec("labels.clips must be between 1 and 255"));
        }
        match self.skip {
            SkipStrategy::Fixed { threshold } if threshold.is_nan() || threshold <= 0.0 => {
                Err(DataError::spec("labels.skip: the fixed threshold must be positive"))
            }
            SkipStrategy::DurationQuantile { buckets, quantile }
                if buckets == 0 || !(0.0..=1.0).contains(&quantile) =>
            {
                Err(DataError::spec(
                    "labels.skip: duration_quantile needs buckets >= 1 and quantile in [0, 1]",
                ))
            }
            _ => Ok(()),
        }
    }
}

/// How a watch ratio becomes a skip label: skip = ratio < threshold.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(tag = "strategy", rename_all = "snake_case", deny_unknown_fields)]
pub enum SkipStrategy {
    /// One threshold for everyone (the seed study used 0.5).
    Fixed { threshold: f64 },
    /// Videos are bucketed by duration quantiles; within a bucket the threshold is the given
    /// quantile of training watch ratios, so a long video is not "skipped" just for being long.
    DurationQuantile { buckets: usize, quantile: f64 },
    /// A user skips when watching less than their own median training watch ratio.
    UserMedian,
}

impl Default for SkipStrategy {
    fn default() -> Self {
        SkipStrategy::Fixed { threshold: 0.5 }
    }
}

/// A skip rule fitted on training rows; applies to any row, seen or unseen.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "strategy", rename_all = "snake_case")]
pub enum FittedSkip {
    Fixed {
        threshold: f64,
    },
    DurationQuantile {
        /// Upper edges (seconds) of every bucket but the last.
        duration_edges: Vec<f64>,
        thresholds: Vec<f64>,
    },
    UserMedian {
        per_user: HashMap<String, f64>,
        /// For users without training rows.
        global: f64,
    },
}

impl FittedSkip {
    /// Fits on training rows: `ratios`, `durations` (seconds) and `users` are parallel.
    pub fn fit(strategy: SkipStrategy, ratios: &[f32], durations: &[f32], users: &[&str]) -> Self {
        match strategy {
            SkipStrategy::Fixed { threshold } => FittedSkip::Fixed { threshold },
            SkipStrategy::DurationQuantile { buckets, quantile } => {
                let mut sorted: Vec<f64> = durations.iter().map(|&d| d as f64).collect();
                sorted.sort_by(f64::total_cmp);
                let duration_edges: Vec<f64> = (1..buckets)
                    .map(|b| quantile_sorted(&sorted, b as f64 / buckets as f64))
                    .collect();
                let mut per_bucket: Vec<Vec<f64>> = vec![Vec::new(); buckets];
                for (&ratio, &duration) in ratios.iter().zip(durations) {
                    per_bucket[bucket_of(&duration_edges, duration as f64)].push(ratio as f64);
                }
                let mut all: Vec<f64> = ratios.iter().map(|&r| r as f64).collect();
                all.sort_by(f64::total_cmp);
                let global = quantile_sorted(&all, quantile);
                let thresholds = per_bucket
                    .into_iter()
                    .map(|mut values| {
                        if values.is_empty() {
                            return global;
                        }
                        values.sort_by(f64::total_cmp);
                        quantile_sorted(&values, quantile)
                    })
                    .collect();
                FittedSkip::DurationQuantile { duration_edges, thresholds }
            }
            SkipStrategy::UserMedian => {
                let mut by_user: HashMap<&str, Vec<f64>> = HashMap::new();
                for (&ratio, &user) in ratios.iter().zip(users) {
                    by_user.entry(user).or_default().push(ratio as f64);
                }
                let mut all: Vec<f64> = ratios.iter().map(|&r| r as f64).collect();
                all.sort_by(f64::total_cmp);
                let global = quantile_sorted(&all, 0.5);
                let per_user = by_user
                    .into_iter()
                    .map(|(user, mut values)| {
                        values.sort_by(f64::total_cmp);
                        (user.to_owned(), quantile_sorted(&values, 0.5))
                    })
                    .collect();
                FittedSkip::UserMedian { per_user, global }
            }
        }
    }

    pub fn threshold(&self, duration_seconds: f32, user: &str) -> f64 {
        match self {
            FittedSkip::Fixed { threshold } => *threshold,
            FittedSkip::DurationQuantile { duration_edges, thresholds } => {
                thresholds[bucket_of(duration_edges, duration_seconds as f64)]
            }
            FittedSkip::UserMedian { per_user, global } => {
                per_user.get(user).copied().unwrap_or(*global)
            }
        }
    }

    pub fn is_skip(&self, ratio: f32, duration_seconds: f32, user: &str) -> bool {
        (ratio as f64) < self.threshold(duration_seconds, user)
    }
}

/// What one row of a log gives its labels from.
#[derive(Debug, Clone, Copy)]
pub struct LabelRow<'a> {
    /// The row's index into the flag columns the deriver was built with.
    pub row: usize,
    /// Capped watch ratio; `None` when the log gives none.
    pub watch_ratio: Option<f32>,
    /// Video duration in seconds; 0 when unknown.
    pub duration_seconds: f32,
    pub user: &'a str,
}

/// Where one task's label comes from.
#[derive(Debug, Clone, Copy)]
enum LabelSource<'a> {
    /// A behaviour flag column of the log.
    Flag(&'a [u8]),
    /// min(watch ratio, regression cap).
    WatchRatio { cap: f32 },
    /// The fitted skip rule applied to the watch ratio.
    Skip(&'a FittedSkip),
    /// Watch ratio ≥ 1.
    WatchThrough,
}

/// The label rules, in one place for prepared and streamed data. A task takes the log's flag of
/// its name; else `watch_ratio` is the watch ratio capped at the regression cap, and `skip` the
/// fitted skip rule applied to it, and `watch_through` whether it is at least 1; a row without a
/// watch ratio has none of them.
#[derive(Debug, Clone)]
pub struct LabelDeriver<'a> {
    sources: Vec<LabelSource<'a>>,
}

impl<'a> LabelDeriver<'a> {
    /// `tasks`: the task names, in task order; `flags`: the log's flag columns as (task, values).
    pub fn new<'t>(
        tasks: impl IntoIterator<Item = &'t str>,
        regression_cap: f64,
        skip: Option<&'a FittedSkip>,
        flags: &[(&str, &'a [u8])],
    ) -> Result<Self> {
        let source = |task: &str| {
            if let Some(&(_, values)) = flags.iter().find(|(name, _)| *name == task) {
                Ok(LabelSource::Flag(values))
            } else if task == WATCH_RATIO_TASK {
                Ok(LabelSource::WatchRatio { cap: regression_cap as f32 })
            } else if task == SKIP_TASK {
                let skip = skip.expect("the skip rule is fitted whenever skip is a task");
                Ok(LabelSource::Skip(skip))
            } else if task == WATCH_THROUGH_TASK {
                Ok(LabelSource::WatchThrough)
            } else {
                Err(DataError::spec(format!("no flag column gives task '{task}'")))
            }
        };
        let sources = tasks.into_iter().map(source).collect::<Result<_>>()?;
        Ok(Self { sources })
    }

    /// Whether task `task` is the regression target; the others are binary.
    pub fn is_regression(&self, task: usize) -> bool {
        matches!(self.sources[task], LabelSource::WatchRatio { .. })
    }

    /// The label of task `task` for `row`: its value, and whether it is present.
    pub fn label(&self, task: usize, row: &LabelRow<'_>) -> (f32, bool) {
        match self.sources[task] {
            LabelSource::Flag(values) => flag_label(values[row.row]),
            LabelSource::WatchRatio { cap } => {
                row.watch_ratio.map_or((0.0, false), |ratio| (ratio.min(cap), true))
            }
            LabelSource::Skip(skip) => row.watch_ratio.map_or((0.0, false), |ratio| {
                let skipped = skip.is_skip(ratio, row.duration_seconds, row.user);
                (f32::from(u8::from(skipped)), true)
            }),
            LabelSource::WatchThrough => row
                .watch_ratio
                .map_or((0.0, false), |ratio| (f32::from(u8::from(ratio >= 1.0)), true)),
        }
    }
}

fn bucket_of(edges: &[f64], value: f64) -> usize {
    edges.partition_point(|&edge| edge < value)
}

/// Linear-interpolated quantile of sorted values (NumPy's default); 0 for no values.
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let position = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lower = position.floor() as usize;
    let upper = position.ceil() as usize;
    let weight = position - lower as f64;
    sorted[lower] * (1.0 - weight) + sorted[upper] * weight
}

/// Clip labels of one impression for N_c equal clips, from its watch ratio.
/// Clips before the one where the skip happened were watched (weak positives, weighted by their
/// position (i+1)/N_c, since watching on to a later clip says more); the skip clip is a weak
/// negative; clips after it are unlabelled. A ratio of 1 or more watches every clip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClipOutcome {
    /// The clip in which the user left, or `n_clips` when the video was watched through.
    pub skip_clip: usize,
    pub n_clips: usize,
}

impl ClipOutcome {
    pub fn from_ratio(ratio: f32, n_clips: usize) -> Self {
        let position = (ratio.max(0.0) as f64 * n_clips as f64).floor() as usize;
        Self { skip_clip: position.min(n_clips), n_clips }
    }

    /// (label, mask, weight) of clip `i`.
    pub fn clip(&self, i: usize) -> (f32, f32, f32) {
        let position_weight = (i + 1) as f32 / self.n_clips as f32;
        if i < self.skip_clip {
            (1.0, 1.0, position_weight)
        } else if i == self.skip_clip {
            (0.0, 1.0, 1.0)
        } else {
            (0.0, 0.0, 0.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_like_numpy() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile_sorted(&v, 0.5), 2.5);
        assert_eq!(quantile_sorted(&v, 0.0), 1.0);
        assert_eq!(quantile_sorted(&v, 1.0), 4.0);
        assert!((quantile_sorted(&v, 0.25) - 1.75).abs() < 1e-12);
    }

    #[test]
    fn user_median_threshold_is_per_user_with_global_fallback() {
        let ratios = [0.1, 0.2, 0.9, 0.8, 0.7];
        let durations = [10.0; 5];
        let users = ["a", "a", "b", "b", "b"];
        let fitted = FittedSkip::fit(SkipStrategy::UserMedian, &ratios, &durations, &users);
        assert!((fitted.threshold(10.0, "a") - 0.15).abs() < 1e-6);
        assert!((fitted.threshold(10.0, "b") - 0.8).abs() < 1e-6);
        assert!((fitted.threshold(10.0, "new") - 0.7).abs() < 1e-6);
        assert!(fitted.is_skip(0.1, 10.0, "a"));
        assert!(!fitted.is_skip(0.2, 10.0, "a"));
    }

    #[test]
    fn duration_quantile_thresholds_follow_their_bucket() {
        // Short videos are watched to ~0.9, long ones to ~0.1: one fixed threshold would call
        // every long view a skip.
        let durations = [5.0, 6.0, 7.0, 8.0, 100.0, 110.0, 120.0, 130.0];
        let ratios = [0.8, 0.9, 1.0, 0.9, 0.1, 0.2, 0.1, 0.05];
        let users = [""; 8];
        let strategy = SkipStrategy::DurationQuantile { buckets: 2, quantile: 0.5 };
        let fitted = FittedSkip::fit(strategy, &ratios, &durations, &users);
        assert!((fitted.threshold(6.0, "") - 0.9).abs() < 1e-6);
        assert!((fitted.threshold(200.0, "") - 0.1).abs() < 1e-6);
    }

    #[test]
    fn a_flag_of_the_tasks_name_comes_first_then_watch_ratio_and_skip() {
        let skip = FittedSkip::Fixed { threshold: 0.5 };
        let flags = [("like", &[1u8, 0, FLAG_MISSING][..])];
        let tasks = ["watch_ratio", "like", "skip", "watch_through"];
        let deriver = LabelDeriver::new(tasks, 1.0, Some(&skip), &flags).unwrap();
        assert!(deriver.is_regression(0) && !deriver.is_regression(1));
        assert!(!deriver.is_regression(3));
        let row = |row, watch_ratio| LabelRow { row, watch_ratio, duration_seconds: 0.0, user: "" };
        let labels = |r: LabelRow| (0..4).map(|k| deriver.label(k, &r)).collect::<Vec<_>>();
        let (yes, no, none) = ((1.0, true), (0.0, true), (0.0, false));
        assert_eq!(labels(row(0, Some(1.7))), [yes, yes, no, yes]);
        assert_eq!(labels(row(1, Some(0.2))), [(0.2, true), no, yes, no]);
        assert_eq!(labels(row(2, None)), [none, none, none, none]);
        // Exactly 1 is a full watch; just under is not.
        assert_eq!(deriver.label(3, &row(0, Some(1.0))), yes);
        assert_eq!(deriver.label(3, &row(0, Some(0.999))), no);
        let unknown = LabelDeriver::new(["follow"], 1.0, None, &flags).unwrap_err();
        assert!(unknown.to_string().contains("no flag column gives task 'follow'"), "{unknown}");
    }

    #[test]
    fn clip_labels_split_watched_skipped_and_unlabelled() {
        let outcome = ClipOutcome::from_ratio(0.45, 4); // left in clip 1 (covers 0.25..0.5)
        assert_eq!(outcome.skip_clip, 1);
        assert_eq!(outcome.clip(0), (1.0, 1.0, 0.25));
        assert_eq!(outcome.clip(1), (0.0, 1.0, 1.0));
        assert_eq!(outcome.clip(2), (0.0, 0.0, 0.0));
        let through = ClipOutcome::from_ratio(1.7, 4);
        assert_eq!(through.skip_clip, 4);
        assert_eq!(through.clip(3), (1.0, 1.0, 1.0));
    }
}
