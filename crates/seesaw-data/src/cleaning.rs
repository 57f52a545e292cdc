//! Why rows are dropped, what to do about each reason, and the counts that make every dropped
//! row accountable.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Every reason a log row can be left out. Names are stable: they are JSON keys in reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    /// Duration missing, zero or negative: a watch ratio cannot be computed, never divided.
    DurationNotPositive,
    NegativePlayTime,
    /// A cell that does not parse, or parses to NaN or infinity; also an empty user or video id.
    InvalidValue,
    /// Same user, video and timestamp as an earlier row.
    DuplicateImpression,
    /// Removed by the minimum-interactions filters.
    UserBelowMinInteractions,
    VideoBelowMinInteractions,
}

impl DropReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::DurationNotPositive => "duration_not_positive",
            DropReason::NegativePlayTime => "negative_play_time",
            DropReason::InvalidValue => "invalid_value",
            DropReason::DuplicateImpression => "duplicate_impression",
            DropReason::UserBelowMinInteractions => "user_below_min_interactions",
            DropReason::VideoBelowMinInteractions => "video_below_min_interactions",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DropPolicy {
    /// Leave the row out and count it.
    #[default]
    Drop,
    /// Stop with an error naming the file, line and column.
    Fail,
}

/// What to do for each reason a row can be bad. Filters always drop (they are a choice, not a
/// data error).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CleaningSpec {
    #[serde(default)]
    pub duration_not_positive: DropPolicy,
    #[serde(default)]
    pub negative_play_time: DropPolicy,
    #[serde(default)]
    pub invalid_value: DropPolicy,
    #[serde(default)]
    pub duplicate_impression: DropPolicy,
    /// Drop exact repeats of (user, video, timestamp); off keeps them as separate impressions.
    #[serde(default = "default_true")]
    pub deduplicate: bool,
}

fn default_true() -> bool {
    true
}

impl Default for CleaningSpec {
    fn default() -> Self {
        Self {
            duration_not_positive: DropPolicy::Drop,
            negative_play_time: DropPolicy::Drop,
            invalid_value: DropPolicy::Drop,
            duplicate_impression: DropPolicy::Drop,
            deduplicate: true,
        }
    }
}

impl CleaningSpec {
    pub fn policy(&self, reason: DropReason) -> DropPolicy {
        match reason {
            DropReason::DurationNotPositive => self.duration_not_positive,
            DropReason::NegativePlayTime => self.negative_play_time,
            DropReason::InvalidValue => self.invalid_value,
            DropReason::DuplicateImpression => self.duplicate_impression,
            DropReason::UserBelowMinInteractions | DropReason::VideoBelowMinInteractions => {
                DropPolicy::Drop
            }
        }
    }
}

/// Counts of dropped rows by reason, plus side-table gaps (ids without attributes), which do not
/// drop rows but are worth knowing.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct DropCounts {
    counts: BTreeMap<DropReason, u64>,
}

impl DropCounts {
    pub fn add(&mut self, reason: DropReason, n: u64) {
        if n > 0 {
            *self.counts.entry(reason).or_default() += n;
        }
    }

    pub fn get(&self, reason: DropReason) -> u64 {
        self.counts.get(&reason).copied().unwrap_or(0)
    }

    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }

    pub fn merge(&mut self, other: &DropCounts) {
        for (&reason, &n) in &other.counts {
            self.add(reason, n);
        }
    }

    /// reason name → count, for reports.
    pub fn by_name(&self) -> BTreeMap<&'static str, u64> {
        self.counts.iter().map(|(reason, &n)| (reason.as_str(), n)).collect()
    }
}
