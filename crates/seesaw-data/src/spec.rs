//! The dataset spec: which column plays which role, which side tables join on which key, which
//! features to build, and how to clean, filter, label and split. Written in TOML (`spec_toml`
//! reads it; a spec may start from a built-in preset, `preset = "kuairand"`, and override any
//! part of it).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cleaning::CleaningSpec;
use crate::error::{DataError, Result};
use crate::labels::LabelSpec;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DatasetSpec {
    /// The preset this spec started from, if any (kept so the resolved spec says so).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<String>,
    pub log: LogSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users: Option<SideTableSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub videos: Option<SideTableSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clips: Option<ClipFeatureSpec>,
    #[serde(default)]
    pub labels: LabelSpec,
    #[serde(default)]
    pub cleaning: CleaningSpec,
    #[serde(default)]
    pub filter: FilterSpec,
    #[serde(default)]
    pub split: SplitSpec,
}

/// The interaction log: one row per impression.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LogSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    pub user: String,
    pub video: String,
    /// Event time; `timestamp_unit` says whether it counts seconds or milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    #[serde(default)]
    pub timestamp_unit: TimeUnit,
    /// Calendar day, as yyyymmdd or yyyy-mm-dd. Derived from the timestamp (UTC) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub play_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// Unit of play time and duration (ratios do not depend on it; watch time in seconds does).
    #[serde(default)]
    pub time_unit: TimeUnit,
    /// A precomputed watch ratio, used only when play time or duration is not available.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch_ratio: Option<String>,
    /// Behaviour flag columns; each becomes a binary task named without its `is_` prefix.
    #[serde(default)]
    pub flags: Vec<String>,
    /// Features of the impression itself (tab, hour, device, ...).
    #[serde(default)]
    pub features: Vec<FeatureSpec>,
    /// The field delimiter of a delimited log, one ASCII character (`"\t"` for tab-separated);
    /// default: tab for `.tsv`/`.tsv.gz`, comma otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delimiter: Option<String>,
}

impl LogSpec {
    /// The delimiter as a byte, or an error naming what is wrong with it.
    pub fn delimiter_byte(&self) -> crate::Result<Option<u8>> {
        match self.delimiter.as_deref() {
            None => Ok(None),
            Some(d) if d.len() == 1 && d.is_ascii() && d != "\"" && d != "\n" && d != "\r" => {
                Ok(Some(d.as_bytes()[0]))
            }
            Some(d) => Err(crate::DataError::spec(format!(
                "log.delimiter = {d:?}: give one ASCII character other than a quote or a line \
                 break, such as \"\\t\" or \",\""
            ))),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TimeUnit {
    #[default]
    Milliseconds,
    Seconds,
    Minutes,
}

impl TimeUnit {
    pub fn to_seconds(self, value: f64) -> f64 {
        match self {
            TimeUnit::Milliseconds => value / 1000.0,
            TimeUnit::Seconds => value,
            TimeUnit::Minutes => value * 60.0,
        }
    }

    pub fn to_millis(self, value: f64) -> f64 {
        self.to_seconds(value) * 1000.0
    }
}

/// A table of per-user or per-video attributes, joined on `key`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SideTableSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    pub key: String,
    #[serde(default)]
    pub features: Vec<FeatureSpec>,
    /// Video tables only: the duration column, used when the log itself has none (the seed
    /// study's watch history keeps durations in the content metadata).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
}

/// Per-clip visual features: a table with the video key, the 0-based clip index and `dim` floats.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClipFeatureSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    #[serde(default = "default_clip_video_column")]
    pub video: String,
    #[serde(default = "default_clip_index_column")]
    pub clip: String,
    /// Feature columns; empty means every other column, in file order.
    #[serde(default)]
    pub features: Vec<String>,
}

fn default_clip_video_column() -> String {
    "video_id".into()
}
fn default_clip_index_column() -> String {
    "clip".into()
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FeatureKind {
    /// One index per value into an embedding table.
    #[default]
    Categorical,
    /// A float, transformed (z-score, log1p, or quantile buckets that become an index).
    Numeric,
    /// Several categorical values in one cell, split on `separator` (tags, genres).
    Multi,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum NumericTransform {
    /// Standardise with the training mean and standard deviation.
    #[default]
    Zscore,
    /// sign(x)·ln(1+|x|), then standardise: for heavy-tailed counts (followers, durations).
    Log1pZscore,
    /// sign(x)·ln(1+|x|) only.
    Log1p,
    /// Leave the value as it is.
    None,
    /// Quantile buckets fitted on training rows; the bucket becomes a categorical index.
    Quantile,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FeatureSpec {
    pub column: String,
    /// Name in the feature map; defaults to the column name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default)]
    pub kind: FeatureKind,
    /// Categorical and multi: values seen fewer times in training map to the out-of-vocabulary
    /// index.
    #[serde(default = "default_min_count")]
    pub min_count: u32,
    /// Categorical: expand into dense one-hot columns instead of an embedding index.
    #[serde(default)]
    pub one_hot: bool,
    #[serde(default)]
    pub transform: NumericTransform,
    /// Quantile transform: number of buckets.
    #[serde(default = "default_buckets")]
    pub buckets: usize,
    /// Multi: separator between values, and how many values are kept (padding with 0).
    #[serde(default = "default_separator")]
    pub separator: String,
    #[serde(default = "default_max_len")]
    pub max_len: usize,
}

fn default_min_count() -> u32 {
    1
}
fn default_buckets() -> usize {
    10
}
fn default_separator() -> String {
    ",".into()
}
fn default_max_len() -> usize {
    4
}

impl FeatureSpec {
    pub fn categorical(column: &str) -> Self {
        Self::with_kind(column, FeatureKind::Categorical, NumericTransform::Zscore)
    }

    pub fn numeric(column: &str, transform: NumericTransform) -> Self {
        Self::with_kind(column, FeatureKind::Numeric, transform)
    }

    pub fn multi(column: &str) -> Self {
        Self::with_kind(column, FeatureKind::Multi, NumericTransform::Zscore)
    }

    fn with_kind(column: &str, kind: FeatureKind, transform: NumericTransform) -> Self {
        Self {
            column: column.into(),
            name: None,
            kind,
            min_count: default_min_count(),
            one_hot: false,
            transform,
            buckets: default_buckets(),
            separator: default_separator(),
            max_len: default_max_len(),
        }
    }

    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.column)
    }
}

/// Minimum interactions per user and per video, counted on the cleaned log in one pass.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FilterSpec {
    #[serde(default)]
    pub min_user_interactions: u32,
    #[serde(default)]
    pub min_video_interactions: u32,
}

/// How rows are split into train, validation and test (`split::split` applies it to a log).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "strategy", rename_all = "snake_case", deny_unknown_fields)]
pub enum SplitSpec {
    /// A seeded random share of rows for validation and test.
    Random {
        #[serde(default)]
        seed: u64,
        #[serde(default = "default_valid_fraction")]
        valid_fraction: f64,
        #[serde(default)]
        test_fraction: f64,
    },
    /// By calendar day: explicit inclusive end days (yyyymmdd), or else the last `test_days` days
    /// for test and the `valid_days` before them for validation.
    Temporal {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        train_end: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        valid_end: Option<u32>,
        #[serde(default = "default_valid_days")]
        valid_days: u32,
        #[serde(default)]
        test_days: u32,
    },
    /// Per user, in time order: the last `test` rows for test, the `valid` before them for
    /// validation. Users with no more rows than that stay wholly in training.
    LeaveLast {
        #[serde(default = "default_one")]
        valid: usize,
        #[serde(default = "default_one")]
        test: usize,
    },
}

fn default_valid_fraction() -> f64 {
    0.1
}
fn default_valid_days() -> u32 {
    2
}
fn default_one() -> usize {
    1
}

impl Default for SplitSpec {
    fn default() -> Self {
        SplitSpec::Temporal { train_end: None, valid_end: None, valid_days: 2, test_days: 0 }
    }
}

impl SplitSpec {
    pub fn validate(&self) -> Result<()> {
        match *self {
            SplitSpec::Random { valid_fraction, test_fraction, .. }
                if !(0.0..1.0).contains(&valid_fraction)
                    || !(0.0..1.0).contains(&test_fraction)
                    || valid_fraction + test_fraction >= 1.0 =>
            {
                Err(DataError::spec("split: valid_fraction + test_fraction must be below 1"))
            }
            SplitSpec::Temporal { train_end: Some(t), valid_end: Some(v), .. } if v < t => {
                Err(DataError::spec("split: valid_end comes before train_end"))
            }
            _ => Ok(()),
        }
    }
}

impl DatasetSpec {
    /// Makes every file path absolute, relative ones taken against `base` (itself against the
    /// working directory when relative). The spec is saved with a model, so a path relative to
    /// the directory a model was trained in would break `eval` and `serve` run from anywhere
    /// else.
    pub fn resolve_paths(&mut self, base: &Path) {
        let resolve = |p: &mut Option<PathBuf>| {
            if let Some(path) = p {
                let joined = base.join(&*path);
                // `absolute` fails only on an empty path or an unreadable working directory; the
                // joined path is then kept, and reading it names it in any error.
                *path = std::path::absolute(&joined).unwrap_or(joined);
            }
        };
        resolve(&mut self.log.path);
        if let Some(users) = &mut self.users {
            resolve(&mut users.path);
        }
        if let Some(videos) = &mut self.videos {
            resolve(&mut videos.path);
        }
        if let Some(clips) = &mut self.clips {
            resolve(&mut clips.path);
        }
    }

    pub fn validate(&self) -> Result<()> {
        let mut names = BTreeMap::new();
        let tables = [
            ("log", Some(&self.log.features)),
            ("users", self.users.as_ref().map(|t| &t.features)),
            ("videos", self.videos.as_ref().map(|t| &t.features)),
        ];
        for (table, features) in tables {
            for feature in features.into_iter().flatten() {
                if let Some(other) = names.insert(feature.name().to_owned(), table) {
                    return Err(DataError::spec(format!(
                        "feature name '{}' is declared twice ({other} and {table}); give one a `name`",
                        feature.name()
                    )));
                }
                if feature.kind == FeatureKind::Numeric
                    && feature.transform == NumericTransform::Quantile
                    && feature.buckets < 2
                {
                    return Err(DataError::spec(format!(
                        "feature '{}': quantile transform needs at least 2 buckets",
                        feature.name()
                    )));
                }
                if feature.kind == FeatureKind::Multi
                    && (feature.max_len == 0 || feature.separator.is_empty())
                {
                    return Err(DataError::spec(format!(
                        "feature '{}': multi-valued features need max_len >= 1 and a separator",
                        feature.name()
                    )));
                }
            }
        }
        if (self.log.play_time.is_some())
            != (self.log.duration.is_some() || self.video_duration_column().is_some())
        {
            return Err(DataError::spec(
                "play time and duration come together: name both (duration may come from the video table)",
            ));
        }
        self.labels.validate()?;
        self.split.validate()?;
        Ok(())
    }

    /// The duration column of the video table, when the log has none.
    pub fn video_duration_column(&self) -> Option<&str> {
        self.videos.as_ref().and_then(|v| v.duration.as_deref())
    }

    /// Task names of the behaviour flags, in spec order.
    pub fn flag_tasks(&self) -> Vec<(String, String)> {
        self.log.flags.iter().map(|column| (column.clone(), flag_task_name(column))).collect()
    }

    /// Whether watch ratio (and so skip and clip labels) can be derived.
    pub fn has_watch_ratio(&self) -> bool {
        self.log.play_time.is_some() || self.log.watch_ratio.is_some()
    }
}

/// `is_click` → `click`; `long_view` stays `long_view`.
pub fn flag_task_name(column: &str) -> String {
    column.strip_prefix("is_").unwrap_or(column).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_feature_names_are_rejected() {
        let err = DatasetSpec::from_toml_str(
            r#"
            [log]
            user = "u"
            video = "v"
            features = [{ column = "x" }]
            [users]
            key = "u"
            features = [{ column = "x" }]
            "#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("declared twice"), "{err}");
    }

    #[test]
    fn flag_names_drop_the_is_prefix() {
        assert_eq!(flag_task_name("is_click"), "click");
        assert_eq!(flag_task_name("long_view"), "long_view");
    }
}
