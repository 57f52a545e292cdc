//! The cleaned interaction log, held as columns. Rows are read chunk by chunk (from a CSV or
//! Parquet file, or from record batches made in memory), checked, and either kept or dropped
//! with a counted reason; exact repeats of an impression are removed at the end.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;

use crate::cells::{Cells, Number};
use crate::cleaning::{CleaningSpec, DropCounts, DropPolicy, DropReason};
use crate::dates;
use crate::error::{DataError, Location, Result};
use crate::interner::Interner;
pub use crate::labels::FLAG_MISSING;
use crate::labels::LabelRow;
use crate::raw_feature::{RawCell, RawFeature, retain_by};
use crate::spec::{DatasetSpec, flag_task_name};
use crate::table::{DEFAULT_CHUNK_ROWS, TableReader};

/// A behaviour flag column: 0 or 1, and `FLAG_MISSING` where the cell was empty.
#[derive(Debug, Clone)]
pub struct FlagColumn {
    pub column: String,
    pub task: String,
    pub values: Vec<u8>,
}

/// What reading saw, before and after cleaning.
#[derive(Debug, Clone, Default)]
pub struct ReadStats {
    pub rows_read: u64,
    pub dropped: DropCounts,
    /// Positives of each flag among all rows read (dropped ones included), in flag order.
    pub flag_positives_read: Vec<u64>,
    pub flag_observed_read: Vec<u64>,
}

#[derive(Debug, Clone)]
pub struct InteractionLog {
    pub source: PathBuf,
    /// Every user and video id seen in a row read, in order of first appearance.
    pub users: Interner,
    pub videos: Interner,
    pub user: Vec<u32>,
    pub video: Vec<u32>,
    /// Empty when the spec names no timestamp column.
    pub timestamp_ms: Vec<i64>,
    /// yyyymmdd; empty when neither a date nor a timestamp column is named.
    pub day: Vec<u32>,
    /// Capped watch ratio; empty when the log gives none.
    pub watch_ratio: Vec<f32>,
    /// Video duration in seconds; empty when unknown.
    pub duration_seconds: Vec<f32>,
    pub flags: Vec<FlagColumn>,
    pub features: Vec<RawFeature>,
    /// The line each kept row came from (for messages about it).
    pub line: Vec<u64>,
    /// Each kept row's position in the whole table (`TableChunk::first_row`): filled for a log
    /// read chunk by chunk (`streaming::CleanChunks`), where ranks' scores are put back in the
    /// table's order; empty otherwise.
    pub position: Vec<u64>,
    pub stats: ReadStats,
}

impl InteractionLog {
    pub fn len(&self) -> usize {
        self.user.len()
    }

    pub fn is_empty(&self) -> bool {
        self.user.is_empty()
    }

    /// What row `row` gives its labels from.
    pub fn label_row(&self, row: usize) -> LabelRow<'_> {
        LabelRow {
            row,
            watch_ratio: self.watch_ratio.get(row).copied(),
            duration_seconds: self.duration_seconds.get(row).copied().unwrap_or(0.0),
            user: self.users.token(self.user[row]),
        }
    }

    /// Reads and cleans the log file named by `path`.
    pub fn read(
        spec: &DatasetSpec,
        path: &Path,
        video_durations: Option<&HashMap<String, f64>>,
    ) -> Result<Self> {
        let reader = TableReader::open_with(path, spec.log.delimiter_byte()?, DEFAULT_CHUNK_ROWS)?;
        let mut ingestor = LogIngestor::new(spec, path, video_durations);
        ingestor.check_columns(reader.columns())?;
        for chunk in reader {
            let chunk = chunk?;
            ingestor.ingest(&chunk.batch, chunk.first_line)?;
        }
        let log = ingestor.finish()?;
        if log.stats.rows_read == 0 {
            return Err(DataError::Malformed {
                location: Location::file(path),
                message: "the log has a header but no rows".into(),
            });
        }
        Ok(log)
    }

    /// Keeps the rows whose flag is set; columns stay aligned.
    pub fn retain(&mut self, keep: &[bool]) {
        retain_by(&mut self.user, keep);
        retain_by(&mut self.video, keep);
        retain_by(&mut self.timestamp_ms, keep);
        retain_by(&mut self.day, keep);
        retain_by(&mut self.watch_ratio, keep);
        retain_by(&mut self.duration_seconds, keep);
        retain_by(&mut self.line, keep);
        for flag in &mut self.flags {
            retain_by(&mut flag.values, keep);
        }
        for feature in &mut self.features {
            feature.retain(keep);
        }
    }

    /// Distinct users and videos among kept rows.
    pub fn distinct_kept(&self) -> (usize, usize) {
        let count = |ids: &[u32], n: usize| {
            let mut seen = vec![false; n];
            ids.iter().filter(|&&id| !std::mem::replace(&mut seen[id as usize], true)).count()
        };
        (count(&self.user, self.users.len()), count(&self.video, self.videos.len()))
    }
}

/// Column positions of one chunk's schema.
struct Columns {
    user: usize,
    video: usize,
    timestamp: Option<usize>,
    date: Option<usize>,
    play_time: Option<usize>,
    duration: Option<usize>,
    watch_ratio: Option<usize>,
    flags: Vec<usize>,
    features: Vec<usize>,
}

/// Turns chunks of rows into a cleaned `InteractionLog`.
pub struct LogIngestor<'a> {
    spec: &'a DatasetSpec,
    cleaning: CleaningSpec,
    video_durations: Option<&'a HashMap<String, f64>>,
    log: InteractionLog,
}

/// One row's parsed values, held until the row is known to be kept.
struct Row {
    user: u32,
    video: u32,
    timestamp_ms: Option<i64>,
    day: Option<u32>,
    ratio: Option<f32>,
    duration_seconds: Option<f32>,
}

impl<'a> LogIngestor<'a> {
    pub fn new(
        spec: &'a DatasetSpec,
        source: &Path,
        video_durations: Option<&'a HashMap<String, f64>>,
    ) -> Self {
        let flags = spec
            .log
            .flags
            .iter()
            .map(|column| FlagColumn {
                column: column.clone(),
                task: flag_task_name(column),
                values: Vec::new(),
            })
            .collect::<Vec<_>>();
        let n_flags = flags.len();
        let log = InteractionLog {
            source: source.to_owned(),
            users: Interner::new(),
            videos: Interner::new(),
            user: Vec::new(),
            video: Vec::new(),
            timestamp_ms: Vec::new(),
            day: Vec::new(),
            watch_ratio: Vec::new(),
            duration_seconds: Vec::new(),
            flags,
            features: spec.log.features.iter().cloned().map(RawFeature::new).collect(),
            line: Vec::new(),
            position: Vec::new(),
            stats: ReadStats {
                flag_positives_read: vec![0; n_flags],
                flag_observed_read: vec![0; n_flags],
                ..Default::default()
            },
        };
        Self { spec, cleaning: spec.cleaning.clone(), video_durations, log }
    }

    /// Fails early, naming the file, when a column the spec needs is absent.
    pub fn check_columns(&self, present: &[String]) -> Result<()> {
        self.resolve(present).map(|_| ())
    }

    fn resolve(&self, present: &[String]) -> Result<Columns> {
        let find = |name: &str| -> Result<usize> {
            present.iter().position(|c| c == name).ok_or_else(|| DataError::MissingColumn {
                location: Location {
                    path: self.log.source.clone(),
                    line: Some(1),
                    column: Some(name.into()),
                },
                present: present.to_vec(),
            })
        };
        let optional = |name: &Option<String>| name.as_deref().map(find).transpose();
        let log = &self.spec.log;
        Ok(Columns {
            user: find(&log.user)?,
            video: find(&log.video)?,
            timestamp: optional(&log.timestamp)?,
            date: optional(&log.date)?,
            play_time: optional(&log.play_time)?,
            duration: optional(&log.duration)?,
            watch_ratio: if log.play_time.is_some() { None } else { optional(&log.watch_ratio)? },
            flags: log.flags.iter().map(|f| find(f)).collect::<Result<_>>()?,
            features: log.features.iter().map(|f| find(&f.column)).collect::<Result<_>>()?,
        })
    }

    /// Reads one chunk whose first row is on `first_line` of the source.
    pub fn ingest(&mut self, batch: &RecordBatch, first_line: u64) -> Result<()> {
        let names: Vec<String> = batch.schema().fields().iter().map(|f| f.name().clone()).collect();
        let columns = self.resolve(&names)?;
        let cells = |i: usize| Cells::of_column(batch, i, &self.log.source);
        let user = cells(columns.user)?;
        let video = cells(columns.video)?;
        let timestamp = columns.timestamp.map(cells).transpose()?;
        let date = columns.date.map(cells).transpose()?;
        let play_time = columns.play_time.map(cells).transpose()?;
        let duration = columns.duration.map(cells).transpose()?;
        let watch_ratio = columns.watch_ratio.map(cells).transpose()?;
        let flags = columns.flags.iter().map(|&i| cells(i)).collect::<Result<Vec<_>>>()?;
        let features = columns.features.iter().map(|&i| cells(i)).collect::<Result<Vec<_>>>()?;

        let mut buf = String::new();
        let mut flag_values = vec![0u8; flags.len()];
        let mut feature_cells = Vec::with_capacity(features.len());
        for row in 0..batch.num_rows() {
            let line = first_line + row as u64;
            self.log.stats.rows_read += 1;
            // Flags are tallied over every row read, before any drop, so the raw rates of a
            // file can be reported exactly.
            let mut bad: Option<(DropReason, usize, String)> = None;
            for (k, flag) in flags.iter().enumerate() {
                flag_values[k] = match flag.number(row) {
                    Number::Value(v) if v == 0.0 || v == 1.0 => v as u8,
                    Number::Missing => FLAG_MISSING,
                    Number::Value(v) => {
                        bad.get_or_insert((
                            DropReason::InvalidValue,
                            columns.flags[k],
                            format!("flag value {v} is not 0 or 1"),
                        ));
                        FLAG_MISSING
                    }
                    Number::Invalid(text) => {
                        bad.get_or_insert((
                            DropReason::InvalidValue,
                            columns.flags[k],
                            format!("cannot read '{text}' as a 0/1 flag"),
                        ));
                        FLAG_MISSING
                    }
                };
                if flag_values[k] != FLAG_MISSING {
                    self.log.stats.flag_observed_read[k] += 1;
                    self.log.stats.flag_positives_read[k] += flag_values[k] as u64;
                }
            }
            let parsed = self.parse_row(
                row,
                &columns,
                &user,
                &video,
                timestamp.as_ref(),
                date.as_ref(),
                play_time.as_ref(),
                duration.as_ref(),
                watch_ratio.as_ref(),
                &mut buf,
            );
            let row_values = match (parsed, bad) {
                (Ok(values), None) => Some(values),
                (Err(problem), _) | (Ok(_), Some(problem)) => {
                    self.reject(problem, line, &names)?;
                    None
                }
            };
            let Some(values) = row_values else { continue };
            feature_cells.clear();
            let mut invalid = None;
            for (k, feature) in self.log.features.iter_mut().enumerate() {
                match feature.parse(&features[k], row, &mut buf) {
                    Ok(cell) => feature_cells.push(cell),
                    Err(cell) => {
                        invalid = Some((
                            DropReason::InvalidValue,
                            columns.features[k],
                            format!("cannot read '{}' as a number", cell.0),
                        ));
                        break;
                    }
                }
            }
            if let Some(problem) = invalid {
                self.reject(problem, line, &names)?;
                continue;
            }
            self.push(values, &flag_values, &feature_cells, line);
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn parse_row(
        &mut self,
        row: usize,
        columns: &Columns,
        user: &Cells,
        video: &Cells,
        timestamp: Option<&Cells>,
        date: Option<&Cells>,
        play_time: Option<&Cells>,
        duration: Option<&Cells>,
        watch_ratio: Option<&Cells>,
        buf: &mut String,
    ) -> std::result::Result<Row, (DropReason, usize, String)> {
        let invalid = |column: usize, message: String| (DropReason::InvalidValue, column, message);
        let user_key = user
            .text(row, buf)
            .ok_or_else(|| invalid(columns.user, "the user id is empty".into()))?;
        let user_id = self.log.users.intern(user_key);
        let video_key = video
            .text(row, buf)
            .ok_or_else(|| invalid(columns.video, "the video id is empty".into()))?;
        let video_id = self.log.videos.intern(video_key);
        let video_key = self.log.videos.token(video_id);

        let number =
            |cells: &Cells, column: usize, what: &str| -> std::result::Result<Option<f64>, _> {
                match cells.number(row) {
                    Number::Value(v) => Ok(Some(v)),
                    Number::Missing => Ok(None),
                    Number::Invalid(text) => {
                        Err(invalid(column, format!("cannot read '{text}' as {what}")))
                    }
                }
            };
        let log = &self.spec.log;
        let timestamp_ms = match (timestamp, columns.timestamp) {
            (Some(cells), Some(column)) => match number(cells, column, "a timestamp")? {
                Some(v) => Some(log.timestamp_unit.to_millis(v).round() as i64),
                None => return Err(invalid(column, "the timestamp is empty".into())),
            },
            _ => None,
        };
        let day = match (date, columns.date) {
            (Some(cells), Some(column)) => {
                let parsed = match cells.number(row) {
                    Number::Value(v) => dates::day_from_number(v),
                    _ => cells.text(row, buf).and_then(dates::parse_day),
                };
                Some(parsed.ok_or_else(|| {
                    invalid(column, "cannot read the date (expected yyyymmdd or yyyy-mm-dd)".into())
                })?)
            }
            _ => timestamp_ms.map(dates::day_from_unix_millis),
        };

        let mut ratio = None;
        let mut duration_seconds = None;
        if let (Some(play_cells), Some(play_column)) = (play_time, columns.play_time) {
            let play = number(play_cells, play_column, "a play time")?;
            let (duration_value, duration_column) = match (duration, columns.duration) {
                (Some(cells), Some(column)) => (number(cells, column, "a duration")?, column),
                // The duration lives in the video table; a video missing there has none.
                _ => (self.video_durations.and_then(|d| d.get(video_key).copied()), play_column),
            };
            let play = play.ok_or_else(|| invalid(play_column, "the play time is empty".into()))?;
            let duration_value = match duration_value {
                Some(d) if d > 0.0 => d,
                other => {
                    let what = other.map_or("missing".to_string(), |d| format!("{d}"));
                    return Err((
                        DropReason::DurationNotPositive,
                        duration_column,
                        format!("duration is {what}"),
                    ));
                }
            };
            if play < 0.0 {
                return Err((
                    DropReason::NegativePlayTime,
                    play_column,
                    format!("play time is {play}"),
                ));
            }
            ratio = Some((play / duration_value).min(self.spec.labels.watch_ratio_cap) as f32);
            duration_seconds = Some(log.time_unit.to_seconds(duration_value) as f32);
        } else if let (Some(cells), Some(column)) = (watch_ratio, columns.watch_ratio) {
            let value = number(cells, column, "a watch ratio")?
                .ok_or_else(|| invalid(column, "the watch ratio is empty".into()))?;
            if value < 0.0 {
                return Err((
                    DropReason::NegativePlayTime,
                    column,
                    format!("watch ratio is {value}"),
                ));
            }
            ratio = Some(value.min(self.spec.labels.watch_ratio_cap) as f32);
        }
        Ok(Row { user: user_id, video: video_id, timestamp_ms, day, ratio, duration_seconds })
    }

    /// Counts a bad row, or fails with its location when the policy says so.
    fn reject(
        &mut self,
        (reason, column, message): (DropReason, usize, String),
        line: u64,
        names: &[String],
    ) -> Result<()> {
        if self.cleaning.policy(reason) == DropPolicy::Fail {
            return Err(DataError::BadValue {
                location: Location::cell(&self.log.source, line, &names[column]),
                reason: format!("{message} ({})", reason.as_str()),
            });
        }
        self.log.stats.dropped.add(reason, 1);
        Ok(())
    }

    fn push(&mut self, row: Row, flags: &[u8], features: &[RawCell], line: u64) {
        let log = &mut self.log;
        log.user.push(row.user);
        log.video.push(row.video);
        if let Some(t) = row.timestamp_ms {
            log.timestamp_ms.push(t);
        }
        if let Some(d) = row.day {
            log.day.push(d);
        }
        if let Some(r) = row.ratio {
            log.watch_ratio.push(r);
        }
        if let Some(d) = row.duration_seconds {
            log.duration_seconds.push(d);
        }
        for (column, &value) in log.flags.iter_mut().zip(flags) {
            column.values.push(value);
        }
        for (feature, &cell) in log.features.iter_mut().zip(features) {
            feature.push(cell);
        }
        log.line.push(line);
    }

    /// Removes repeated impressions (same user, video and timestamp; the first is kept).
    pub fn finish(mut self) -> Result<InteractionLog> {
        if self.cleaning.deduplicate && !self.log.timestamp_ms.is_empty() {
            let log = &self.log;
            let mut order: Vec<u32> = (0..log.len() as u32).collect();
            order.sort_unstable_by_key(|&i| {
                (log.user[i as usize], log.video[i as usize], log.timestamp_ms[i as usize], i)
            });
            let mut keep = vec![true; log.len()];
            let mut duplicates = 0u64;
            for pair in order.windows(2) {
                let (a, b) = (pair[0] as usize, pair[1] as usize);
                if log.user[a] == log.user[b]
                    && log.video[a] == log.video[b]
                    && log.timestamp_ms[a] == log.timestamp_ms[b]
                {
                    if self.cleaning.duplicate_impression == DropPolicy::Fail {
                        return Err(DataError::BadValue {
                            location: Location {
                                path: log.source.clone(),
                                line: Some(log.line[b]),
                                column: None,
                            },
                            reason: format!(
                                "repeats the impression on line {} (duplicate_impression)",
                                log.line[a]
                            ),
                        });
                    }
                    keep[b] = false;
                    duplicates += 1;
                }
            }
            if duplicates > 0 {
                self.log.retain(&keep);
                self.log.stats.dropped.add(DropReason::DuplicateImpression, duplicates);
            }
        }
        Ok(self.log)
    }
}
