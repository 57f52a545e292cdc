//! Crafted bad input files read through the public API: every bad row is either a counted drop or
//! an error that names the file (and, where there is one, the line and the column); nothing
//! panics, and no failed write leaves a half-written file behind.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use seesaw_data::DataError;
use seesaw_data::cleaning::{DropPolicy, DropReason};
use seesaw_data::dataset::{PreparedDataset, prepare};
use seesaw_data::log::InteractionLog;
use seesaw_data::spec::{DatasetSpec, FeatureSpec, NumericTransform, SideTableSpec, SplitSpec};
use seesaw_data::split::Part;
use seesaw_data::streamed_dataset::StreamedDataset;
use seesaw_data::table::TableReader;
use seesaw_data::training_data::TrainingData;
use tempfile::TempDir;

const COLUMNS: [&str; 19] = [
    "user_id",
    "video_id",
    "date",
    "hourmin",
    "time_ms",
    "is_click",
    "is_like",
    "is_follow",
    "is_comment",
    "is_forward",
    "is_hate",
    "long_view",
    "play_time_ms",
    "duration_ms",
    "profile_stay_time",
    "comment_stay_time",
    "is_profile_enter",
    "is_rand",
    "tab",
];

fn col(name: &str) -> usize {
    COLUMNS.iter().position(|c| *c == name).unwrap()
}

/// The i-th good row: three users, four days (the last two validate), distinct impressions.
fn good(i: usize) -> Vec<String> {
    let day = 20220408 + (i % 4);
    [
        format!("{}", 1 + i % 3),
        format!("{}", 100 + i),
        format!("{day}"),
        "1000".into(),
        format!("{}", 1_649_376_000_000u64 + i as u64 * 60_000),
        format!("{}", i % 2),
        "0".into(),
        "0".into(),
        "0".into(),
        "0".into(),
        "0".into(),
        format!("{}", u8::from(i.is_multiple_of(3))),
        format!("{}", 1000 * (i + 1)),
        "10000".into(),
        "0".into(),
        "0".into(),
        "0".into(),
        "0".into(),
        format!("{}", i % 3),
    ]
    .to_vec()
}

/// The i-th good row with one cell replaced.
fn with(i: usize, column: &str, value: &str) -> Vec<String> {
    let mut row = good(i);
    row[col(column)] = value.into();
    row
}

fn csv(rows: &[Vec<String>]) -> String {
    let mut text = COLUMNS.join(",");
    text.push('\n');
    for row in rows {
        text.push_str(&row.join(","));
        text.push('\n');
    }
    text
}

/// `n` good rows, with row `at` (0-based; it lands on file line `at + 2`) replaced.
fn rows_with(n: usize, at: usize, bad: Vec<String>) -> Vec<Vec<String>> {
    (0..n).map(|i| if i == at { bad.clone() } else { good(i) }).collect()
}

fn write(dir: &TempDir, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

fn spec_for(path: &Path) -> DatasetSpec {
    let mut spec = seesaw_data::presets::preset("kuairand").unwrap();
    spec.log.path = Some(path.to_owned());
    spec.users = None;
    spec.videos = None;
    spec.clips = None;
    spec
}

fn read(spec: &DatasetSpec, path: &Path) -> seesaw_data::Result<InteractionLog> {
    InteractionLog::read(spec, path, None)
}

/// The error, with its message checked to name the file.
fn read_err(spec: &DatasetSpec, path: &Path) -> (DataError, String) {
    let err = match read(spec, path) {
        Ok(log) => panic!("{} read without error ({} rows kept)", path.display(), log.len()),
        Err(err) => err,
    };
    let message = err.to_string();
    assert!(message.contains(&path.display().to_string()), "no file name in: {message}");
    (err, message)
}

fn assert_contains(message: &str, parts: &[&str]) {
    for part in parts {
        assert!(message.contains(part), "'{part}' missing from: {message}");
    }
}

fn assert_only_drop(log: &InteractionLog, reason: DropReason, n: u64) {
    assert_eq!(log.stats.dropped.get(reason), n, "{:?}", log.stats.dropped);
    assert_eq!(log.stats.dropped.total(), n, "{:?}", log.stats.dropped);
    assert_eq!(log.len() as u64, log.stats.rows_read - n);
}

#[test]
fn non_numeric_play_time_is_a_counted_invalid_value() {
    let dir = TempDir::new().unwrap();
    let path = write(&dir, "log.csv", csv(&rows_with(8, 3, with(3, "play_time_ms", "abc"))));
    let spec = spec_for(&path);
    let log = read(&spec, &path).unwrap();
    assert_eq!(log.stats.rows_read, 8);
    assert_only_drop(&log, DropReason::InvalidValue, 1);
    assert!(!log.line.contains(&5), "line 5 was kept: {:?}", log.line);

    let data = prepare(&spec).unwrap();
    assert_eq!(data.report.rows_read, 8);
    assert_eq!(data.report.rows_kept, 7);
    assert_eq!(data.report.dropped.get("invalid_value"), Some(&1));
}

#[test]
fn non_numeric_play_time_with_fail_policy_names_file_line_and_column() {
    let dir = TempDir::new().unwrap();
    let path = write(&dir, "log.csv", csv(&rows_with(8, 3, with(3, "play_time_ms", "abc"))));
    let mut spec = spec_for(&path);
    spec.cleaning.invalid_value = DropPolicy::Fail;
    let (err, message) = read_err(&spec, &path);
    assert_contains(&message, &["line 5", "column 'play_time_ms'", "'abc'", "invalid_value"]);
    match err {
        DataError::BadValue { location, .. } => {
            assert_eq!(location.path, path);
            assert_eq!(location.line, Some(5));
            assert_eq!(location.column.as_deref(), Some("play_time_ms"));
        }
        other => panic!("expected BadValue, got {other:?}"),
    }
    // Through `prepare` too.
    let message = prepare(&spec).err().unwrap().to_string();
    assert_contains(&message, &[&path.display().to_string(), "line 5", "play_time_ms"]);
}

#[test]
fn negative_and_zero_durations_are_counted_duration_not_positive() {
    let dir = TempDir::new().unwrap();
    let mut rows: Vec<_> = (0..8).map(good).collect();
    rows[2] = with(2, "duration_ms", "-5");
    rows[6] = with(6, "duration_ms", "0");
    let path = write(&dir, "log.csv", csv(&rows));
    let spec = spec_for(&path);
    let log = read(&spec, &path).unwrap();
    assert_only_drop(&log, DropReason::DurationNotPositive, 2);
    assert!(log.watch_ratio.iter().all(|r| r.is_finite()));

    // A missing duration is not positive either.
    rows[6] = with(6, "duration_ms", "");
    let path = write(&dir, "log_missing.csv", csv(&rows));
    let log = read(&spec, &path).unwrap();
    assert_only_drop(&log, DropReason::DurationNotPositive, 2);
}

#[test]
fn non_positive_duration_with_fail_policy_names_file_line_and_column() {
    let dir = TempDir::new().unwrap();
    for (value, line) in [("-5", 4), ("0", 9)] {
        let at = line - 2;
        let path = write(&dir, "log.csv", csv(&rows_with(8, at, with(at, "duration_ms", value))));
        let mut spec = spec_for(&path);
        spec.cleaning.duration_not_positive = DropPolicy::Fail;
        let (_, message) = read_err(&spec, &path);
        assert_contains(
            &message,
            &[
                &format!("line {line}"),
                "column 'duration_ms'",
                &format!("duration is {value}"),
                "duration_not_positive",
            ],
        );
    }
}

#[test]
fn negative_play_time_is_counted_negative_play_time() {
    let dir = TempDir::new().unwrap();
    let path = write(&dir, "log.csv", csv(&rows_with(8, 1, with(1, "play_time_ms", "-1"))));
    let mut spec = spec_for(&path);
    let log = read(&spec, &path).unwrap();
    assert_only_drop(&log, DropReason::NegativePlayTime, 1);

    spec.cleaning.negative_play_time = DropPolicy::Fail;
    let (_, message) = read_err(&spec, &path);
    assert_contains(&message, &["line 3", "column 'play_time_ms'", "negative_play_time"]);
}

#[test]
fn short_and_long_rows_are_errors_naming_file_and_line() {
    let dir = TempDir::new().unwrap();
    // Row index 4 is file line 6.
    let mut rows: Vec<_> = (0..8).map(good).collect();
    rows[4].truncate(3);
    let path = write(&dir, "short.csv", csv(&rows));
    let spec = spec_for(&path);
    let (err, message) = read_err(&spec, &path);
    assert_contains(&message, &["line 6", "expected 19", "got 3"]);
    assert!(matches!(err, DataError::Malformed { .. }), "{err:?}");

    let mut rows: Vec<_> = (0..8).map(good).collect();
    rows[0].push("extra".into());
    let path = write(&dir, "long.csv", csv(&rows));
    let (_, message) = read_err(&spec, &path);
    assert_contains(&message, &["line 2", "expected 19", "got 20"]);
}

#[test]
fn blank_lines_do_not_shift_line_numbers() {
    let dir = TempDir::new().unwrap();
    let rows = rows_with(6, 4, with(4, "play_time_ms", "abc"));
    let mut text = csv(&rows[..2]);
    text.push('\n'); // line 4 is blank
    for row in &rows[2..] {
        text.push_str(&row.join(","));
        text.push('\n');
    }
    // Rows: line 2, 3, (blank 4), 5, 6, 7 (the bad one), 8.
    let path = write(&dir, "blank.csv", &text);
    let mut spec = spec_for(&path);
    let log = read(&spec, &path).unwrap();
    assert_eq!(log.stats.rows_read, 6);
    assert_eq!(log.line, vec![2, 3, 5, 6, 8]);
    spec.cleaning.invalid_value = DropPolicy::Fail;
    let (_, message) = read_err(&spec, &path);
    assert_contains(&message, &["line 7", "play_time_ms"]);
}

#[test]
fn quoted_newlines_do_not_shift_line_numbers() {
    let dir = TempDir::new().unwrap();
    let mut rows = rows_with(6, 4, with(4, "play_time_ms", "abc"));
    rows[1][col("tab")] = "\"two\nlines\"".into();
    // Rows start on lines 2, 3 (two lines long), 5, 6, 7 (the bad one), 8.
    let path = write(&dir, "quoted.csv", csv(&rows));
    let mut spec = spec_for(&path);
    let log = read(&spec, &path).unwrap();
    assert_eq!(log.line, vec![2, 3, 5, 6, 8]);
    spec.cleaning.invalid_value = DropPolicy::Fail;
    let (_, message) = read_err(&spec, &path);
    assert_contains(&message, &["line 7", "play_time_ms"]);
}

/// Every row's line as `TableReader` reports it, with the row's first cell.
fn table_lines(path: &Path, chunk_rows: usize) -> Vec<(u64, String)> {
    table_lines_with(path, None, chunk_rows)
}

fn table_lines_with(path: &Path, delimiter: Option<u8>, chunk_rows: usize) -> Vec<(u64, String)> {
    use arrow_array::cast::AsArray;
    let mut lines = Vec::new();
    for chunk in TableReader::open_with(path, delimiter, chunk_rows).unwrap() {
        let chunk = chunk.unwrap();
        let first = chunk.batch.column(0).as_string::<i32>().clone();
        for r in 0..chunk.batch.num_rows() {
            lines.push((chunk.first_line + r as u64, first.value(r).to_owned()));
        }
    }
    lines
}

#[test]
fn line_numbers_survive_blank_lines_crlf_quotes_and_chunking() {
    let dir = TempDir::new().unwrap();
    // The first cell says which line the row starts on.
    let lf = "a,b\n\n3,x\n4,\"two\nlines\"\n\n\n\n9,y\n10,z\n\n12,\"\n\n\"\n15,end";
    let crlf = lf.replace('\n', "\r\n");
    for (name, text) in [
        ("lf.csv", lf.to_string()),
        ("lf_terminated.csv", format!("{lf}\n")),
        ("lf_trailing_blank.csv", format!("{lf}\n\n")),
        ("crlf.csv", crlf.clone()),
        ("crlf_terminated.csv", format!("{crlf}\r\n")),
    ] {
        let path = write(&dir, name, &text);
        for chunk_rows in [1, 2, 3, 1000] {
            let lines = table_lines(&path, chunk_rows);
            let firsts: Vec<u64> = lines.iter().map(|(_, cell)| cell.parse().unwrap()).collect();
            let reported: Vec<u64> = lines.iter().map(|(line, _)| *line).collect();
            assert_eq!(reported, firsts, "{name}, chunks of {chunk_rows}");
            assert_eq!(firsts, vec![3, 4, 9, 10, 12, 15], "{name}");
        }
    }
    // A short row after blank lines is reported on its own line.
    let path = write(&dir, "short_after_blank.csv", "a,b\n1,2\n\n\n5\n");
    let err = TableReader::open(&path).unwrap().try_for_each(|c| c.map(|_| ()));
    let message = err.unwrap_err().to_string();
    assert_contains(&message, &[&path.display().to_string(), "line 5", "expected 2", "got 1"]);
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// Tab-separated and gzip-compressed files (by name, or with the delimiter given) read with the
/// same rows on the same lines as the plain CSV.
#[test]
fn tsv_and_gzip_logs_keep_exact_line_numbers() {
    let dir = TempDir::new().unwrap();
    let lf = "a,b\n\n3,x\n4,\"two\nlines\"\n\n\n\n9,y\n10,z\n\n12,\"\n\n\"\n15,end";
    let crlf = lf.replace('\n', "\r\n");
    for (name, text) in [
        ("lf", lf.to_string()),
        ("lf_terminated", format!("{lf}\n")),
        ("lf_trailing_blank", format!("{lf}\n\n")),
        ("crlf", crlf.clone()),
        ("crlf_terminated", format!("{crlf}\r\n")),
    ] {
        let tabs = text.replace(',', "\t");
        let files = [
            (format!("{name}.tsv"), tabs.as_bytes().to_vec(), None),
            (format!("{name}.csv.gz"), gzip(text.as_bytes()), None),
            (format!("{name}.TSV.GZ"), gzip(tabs.as_bytes()), None),
            (format!("{name}.log"), tabs.as_bytes().to_vec(), Some(b'\t')),
        ];
        for (file, bytes, delimiter) in files {
            let path = write(&dir, &file, bytes);
            for chunk_rows in [1, 3, 1000] {
                let lines = table_lines_with(&path, delimiter, chunk_rows);
                let firsts: Vec<u64> =
                    lines.iter().map(|(_, cell)| cell.parse().unwrap()).collect();
                let reported: Vec<u64> = lines.iter().map(|(line, _)| *line).collect();
                assert_eq!(reported, firsts, "{file}, chunks of {chunk_rows}");
                assert_eq!(firsts, vec![3, 4, 9, 10, 12, 15], "{file}");
                let second: Vec<&str> = lines.iter().map(|(_, c)| c.as_str()).collect();
                assert!(!second.iter().any(|c| c.contains('\t')), "{file}: split on tabs");
            }
        }
    }
    // A whole log: gzip-compressed CSV, and TSV named by `[log] delimiter`, read like the CSV.
    let rows = rows_with(6, 4, with(4, "play_time_ms", "abc"));
    let text = csv(&rows);
    let plain = write(&dir, "log.csv", &text);
    let expected = read(&spec_for(&plain), &plain).unwrap();
    let gz = write(&dir, "log.csv.gz", gzip(text.as_bytes()));
    let tsv = write(&dir, "log.txt", text.replace(',', "\t"));
    let mut tsv_spec = spec_for(&tsv);
    tsv_spec.log.delimiter = Some("\t".into());
    for (path, spec) in [(&gz, spec_for(&gz)), (&tsv, tsv_spec.clone())] {
        let log = read(&spec, path).unwrap();
        assert_eq!((log.len(), &log.line), (expected.len(), &expected.line), "{}", path.display());
        assert_eq!(log.stats.dropped.total(), 1, "{}", path.display());
        let mut failing = spec.clone();
        failing.cleaning.invalid_value = DropPolicy::Fail;
        let (_, message) = read_err(&failing, path);
        assert_contains(&message, &["line 6", "play_time_ms"]);
    }
    // A bad delimiter and a corrupt gzip file are refused with what is wrong.
    tsv_spec.log.delimiter = Some("ab".into());
    let (_, message) = match read(&tsv_spec, &tsv) {
        Err(e) => ((), e.to_string()),
        Ok(_) => panic!("a two-character delimiter was accepted"),
    };
    assert_contains(&message, &["log.delimiter", "\"ab\""]);
    let corrupt = write(&dir, "corrupt.csv.gz", b"not gzip at all");
    let (_, message) = read_err(&spec_for(&corrupt), &corrupt);
    assert!(message.to_lowercase().contains("gzip") || message.contains("header"), "{message}");
}

#[test]
fn short_row_after_blank_lines_in_a_gzip_file_is_reported_on_its_own_line() {
    let dir = TempDir::new().unwrap();
    let path = write(&dir, "short_after_blank.csv.gz", gzip(b"a,b\n1,2\n\n\n5\n"));
    let err = TableReader::open(&path).unwrap().try_for_each(|c| c.map(|_| ()));
    let message = err.unwrap_err().to_string();
    assert_contains(&message, &[&path.display().to_string(), "line 5", "expected 2", "got 1"]);
}

#[test]
fn a_missing_column_is_named_with_the_file() {
    let dir = TempDir::new().unwrap();
    let drop = col("duration_ms");
    let rows: Vec<Vec<String>> = (0..5)
        .map(|i| {
            let mut row = good(i);
            row.remove(drop);
            row
        })
        .collect();
    let mut text = COLUMNS.iter().filter(|c| **c != "duration_ms").copied().collect::<Vec<_>>();
    let mut body = text.join(",");
    body.push('\n');
    for row in &rows {
        body.push_str(&row.join(","));
        body.push('\n');
    }
    let path = write(&dir, "log.csv", &body);
    let spec = spec_for(&path);
    let (err, message) = read_err(&spec, &path);
    assert_contains(&message, &["duration_ms", "required column is missing", "play_time_ms"]);
    match err {
        DataError::MissingColumn { location, present } => {
            assert_eq!(location.column.as_deref(), Some("duration_ms"));
            text.sort_unstable();
            let mut present = present;
            present.sort_unstable();
            assert_eq!(present, text.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        }
        other => panic!("expected MissingColumn, got {other:?}"),
    }
}

#[test]
fn an_empty_file_and_a_header_alone_are_errors_naming_the_file() {
    let dir = TempDir::new().unwrap();
    let path = write(&dir, "empty.csv", "");
    let (err, message) = read_err(&spec_for(&path), &path);
    assert!(matches!(&err, DataError::EmptyFile { path: p } if *p == path), "{err:?}");
    assert_contains(&message, &["empty"]);

    let path = write(&dir, "header.csv", csv(&[]));
    let (_, message) = read_err(&spec_for(&path), &path);
    assert_contains(&message, &["no rows"]);
    let message = prepare(&spec_for(&path)).err().unwrap().to_string();
    assert_contains(&message, &[&path.display().to_string(), "no rows"]);
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

#[test]
fn random_bytes_are_an_error_naming_the_file() {
    let dir = TempDir::new().unwrap();
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let noise = rng.bytes(4096);
    assert!(noise.contains(&0) && std::str::from_utf8(&noise).is_err());
    let path = write(&dir, "noise.csv", &noise);
    let (_, message) = read_err(&spec_for(&path), &path);
    println!("noise: {message}");

    // A valid header followed by noise.
    let mut text = csv(&[good(0)]).into_bytes();
    text.extend_from_slice(&noise);
    let path = write(&dir, "header_then_noise.csv", &text);
    let (_, message) = read_err(&spec_for(&path), &path);
    assert_contains(&message, &["line "]);
    println!("header then noise: {message}");
}

#[test]
fn nan_and_infinity_are_counted_invalid_values() {
    let dir = TempDir::new().unwrap();
    let mut rows: Vec<_> = (0..8).map(good).collect();
    rows[1] = with(1, "play_time_ms", "NaN");
    rows[3] = with(3, "duration_ms", "inf");
    rows[5] = with(5, "time_ms", "-inf");
    let path = write(&dir, "log.csv", csv(&rows));
    let mut spec = spec_for(&path);
    let log = read(&spec, &path).unwrap();
    assert_only_drop(&log, DropReason::InvalidValue, 3);
    assert!(log.watch_ratio.iter().all(|r| r.is_finite()));

    spec.cleaning.invalid_value = DropPolicy::Fail;
    let (_, message) = read_err(&spec, &path);
    assert_contains(&message, &["line 3", "column 'play_time_ms'", "'NaN'"]);
}

#[test]
fn a_path_that_does_not_exist_is_an_io_error_naming_it() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("no_such_log.csv");
    let spec = spec_for(&path);
    let (err, _) = read_err(&spec, &path);
    assert!(matches!(&err, DataError::Io { path: p, .. } if *p == path), "{err:?}");
    let message = prepare(&spec).err().unwrap().to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");

    let path = dir.path().join("no_such_log.parquet");
    let (err, _) = read_err(&spec_for(&path), &path);
    assert!(matches!(err, DataError::Io { .. }), "{err:?}");
}

#[test]
fn a_repeated_impression_is_counted_and_the_fail_policy_names_both_lines() {
    let dir = TempDir::new().unwrap();
    let mut rows: Vec<_> = (0..8).map(good).collect();
    rows.push(good(2)); // line 10 repeats line 4
    let path = write(&dir, "log.csv", csv(&rows));
    let mut spec = spec_for(&path);
    let log = read(&spec, &path).unwrap();
    assert_eq!(log.stats.rows_read, 9);
    assert_only_drop(&log, DropReason::DuplicateImpression, 1);
    assert!(!log.line.contains(&10) && log.line.contains(&4));

    spec.cleaning.duplicate_impression = DropPolicy::Fail;
    let (err, message) = read_err(&spec, &path);
    assert_contains(&message, &["line 10", "line 4", "duplicate_impression"]);
    assert!(
        matches!(&err, DataError::BadValue { location, .. } if location.line == Some(10)),
        "{err:?}"
    );

    // With deduplication off, both are kept.
    spec.cleaning.deduplicate = false;
    let log = read(&spec, &path).unwrap();
    assert_eq!(log.len(), 9);
}

#[test]
fn a_flag_that_is_not_zero_or_one_is_an_invalid_value() {
    let dir = TempDir::new().unwrap();
    let mut rows: Vec<_> = (0..8).map(good).collect();
    rows[2] = with(2, "is_click", "2");
    rows[5] = with(5, "is_like", "yes");
    let path = write(&dir, "log.csv", csv(&rows));
    let mut spec = spec_for(&path);
    let log = read(&spec, &path).unwrap();
    assert_only_drop(&log, DropReason::InvalidValue, 2);
    // The bad cells are not counted as observed flags.
    assert_eq!(log.stats.flag_observed_read[0], 7);
    assert_eq!(log.stats.flag_observed_read[1], 7);

    spec.cleaning.invalid_value = DropPolicy::Fail;
    let (_, message) = read_err(&spec, &path);
    assert_contains(&message, &["line 4", "column 'is_click'", "not 0 or 1"]);
    let path = write(&dir, "yes.csv", csv(&rows_with(8, 5, with(5, "is_like", "yes"))));
    let (_, message) = read_err(&spec, &path);
    assert_contains(&message, &["line 7", "column 'is_like'", "'yes'"]);
}

#[test]
fn an_empty_id_is_an_invalid_value() {
    let dir = TempDir::new().unwrap();
    let mut rows: Vec<_> = (0..8).map(good).collect();
    rows[0] = with(0, "user_id", "");
    rows[7] = with(7, "video_id", "  ");
    let path = write(&dir, "log.csv", csv(&rows));
    let mut spec = spec_for(&path);
    let log = read(&spec, &path).unwrap();
    assert_only_drop(&log, DropReason::InvalidValue, 2);
    assert!(log.users.tokens().all(|t| !t.trim().is_empty()));

    spec.cleaning.invalid_value = DropPolicy::Fail;
    let (_, message) = read_err(&spec, &path);
    assert_contains(&message, &["line 2", "column 'user_id'", "user id is empty"]);
}

fn user_table_spec(path: &Path) -> SideTableSpec {
    SideTableSpec {
        path: Some(path.to_owned()),
        key: "user_id".into(),
        features: vec![
            FeatureSpec::categorical("user_active_degree"),
            FeatureSpec::numeric("follow_user_num", NumericTransform::Log1pZscore),
        ],
        duration: None,
    }
}

fn check_batch_indices(data: &PreparedDataset) {
    let mut batches = 0;
    for part in [Part::Train, Part::Valid] {
        for batch in data.batches(part, 4, Some(3)) {
            batches += 1;
            for (slot, c) in data.schema.categorical.iter().enumerate() {
                for &i in batch.categorical.iter().skip(slot).step_by(batch.n_categorical) {
                    assert!((i as usize) < c.cardinality, "{}: {i} >= {}", c.name, c.cardinality);
                }
            }
            assert!(batch.dense.iter().all(|v| v.is_finite()), "{:?}", batch.dense);
            assert!(batch.labels.iter().all(|v| v.is_finite()));
        }
    }
    assert!(batches > 0);
}

#[test]
fn a_bad_side_table_cell_and_a_user_without_features_are_counted() {
    let dir = TempDir::new().unwrap();
    let log_path = write(&dir, "log.csv", csv(&(0..12).map(good).collect::<Vec<_>>()));
    // User 3 is in the log but not the table; user 2's follower count does not parse.
    let users = write(
        &dir,
        "users.csv",
        "user_id,user_active_degree,follow_user_num\n1,high,10\n2,low,abc\n9,middle,3\n",
    );
    let mut spec = spec_for(&log_path);
    spec.users = Some(user_table_spec(&users));
    let data = prepare(&spec).unwrap();
    let stats = &data.report.side_tables["users"];
    assert_eq!(stats.rows_read, 3);
    assert_eq!(stats.invalid_cells, 1);
    assert_eq!(data.report.users_without_features, 1);
    assert_eq!(data.report.rows_kept, 12);
    assert_eq!(data.users.row_of("3"), data.users.default_row());
    assert_ne!(data.users.row_of("2"), data.users.default_row());
    check_batch_indices(&data);

    spec.cleaning.invalid_value = DropPolicy::Fail;
    let message = prepare(&spec).err().unwrap().to_string();
    assert_contains(
        &message,
        &[&users.display().to_string(), "line 3", "column 'follow_user_num'", "'abc'"],
    );

    // A side table without its key column.
    let users = write(&dir, "users_nokey.csv", "uid,user_active_degree,follow_user_num\n1,a,2\n");
    spec.users = Some(user_table_spec(&users));
    let message = prepare(&spec).err().unwrap().to_string();
    assert_contains(&message, &[&users.display().to_string(), "column 'user_id'"]);
}

#[test]
fn a_parquet_file_holding_csv_text_is_an_error_naming_it() {
    let dir = TempDir::new().unwrap();
    let path = write(&dir, "x.parquet", csv(&(0..4).map(good).collect::<Vec<_>>()));
    let (err, message) = read_err(&spec_for(&path), &path);
    assert!(matches!(err, DataError::Malformed { .. }), "{err:?}");
    println!("csv as parquet: {message}");

    let path = write(&dir, "empty.parquet", "");
    let (err, _) = read_err(&spec_for(&path), &path);
    assert!(matches!(err, DataError::EmptyFile { .. }), "{err:?}");

    // A real Parquet footer with a truncated body.
    let good_path = dir.path().join("good.parquet");
    write_parquet(&good_path, &typed_rows());
    let bytes = std::fs::read(&good_path).unwrap();
    let path = write(&dir, "truncated.parquet", &bytes[bytes.len() / 2..]);
    let (_, message) = read_err(&spec_for(&path), &path);
    println!("truncated parquet: {message}");
}

/// Rows as typed cells (None = empty/null), with a few bad ones mixed in.
fn typed_rows() -> Vec<Vec<Option<f64>>> {
    let mut rows: Vec<Vec<Option<f64>>> = (0..20)
        .map(|i| good(i).iter().map(|c| Some(c.parse::<f64>().unwrap())).collect())
        .collect();
    rows[3][col("duration_ms")] = Some(0.0);
    rows[5][col("play_time_ms")] = Some(f64::NAN);
    rows[7][col("user_id")] = None;
    rows[9][col("play_time_ms")] = Some(-3.0);
    rows[11][col("duration_ms")] = Some(12_345.5);
    rows[13][col("is_click")] = None;
    rows.push(rows[4].clone()); // a repeated impression
    rows
}

fn is_float_column(name: &str) -> bool {
    name == "play_time_ms" || name == "duration_ms"
}

fn write_parquet(path: &Path, rows: &[Vec<Option<f64>>]) {
    let mut fields = Vec::new();
    let mut arrays: Vec<ArrayRef> = Vec::new();
    for (k, name) in COLUMNS.iter().enumerate() {
        if is_float_column(name) {
            fields.push(Field::new(*name, DataType::Float64, true));
            arrays.push(Arc::new(rows.iter().map(|r| r[k]).collect::<Float64Array>()));
        } else {
            fields.push(Field::new(*name, DataType::Int64, true));
            arrays.push(Arc::new(
                rows.iter().map(|r| r[k].map(|v| v as i64)).collect::<Int64Array>(),
            ));
        }
    }
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).unwrap();
    let file = std::fs::File::create(path).unwrap();
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

fn write_typed_csv(path: &Path, rows: &[Vec<Option<f64>>]) {
    let text: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            r.iter()
                .map(|c| match c {
                    None => String::new(),
                    Some(v) => format!("{v}"),
                })
                .collect()
        })
        .collect();
    std::fs::write(path, csv(&text)).unwrap();
}

#[test]
fn a_parquet_log_reads_like_the_same_rows_as_csv() {
    let dir = TempDir::new().unwrap();
    let rows = typed_rows();
    let parquet_path = dir.path().join("log.parquet");
    let csv_path = dir.path().join("log.csv");
    write_parquet(&parquet_path, &rows);
    write_typed_csv(&csv_path, &rows);

    let from_parquet = prepare(&spec_for(&parquet_path)).unwrap();
    let from_csv = prepare(&spec_for(&csv_path)).unwrap();
    let (p, c) = (&from_parquet.report, &from_csv.report);
    assert_eq!(p.rows_read, 21);
    assert_eq!(p.rows_read, c.rows_read);
    assert_eq!(p.rows_kept, 21 - 5);
    assert_eq!(p.rows_kept, c.rows_kept);
    assert_eq!(p.dropped, c.dropped);
    assert_eq!(p.dropped["invalid_value"], 2);
    assert_eq!(p.dropped["duration_not_positive"], 1);
    assert_eq!(p.dropped["negative_play_time"], 1);
    assert_eq!(p.dropped["duplicate_impression"], 1);
    assert_eq!(p.label_rates, c.label_rates);
    assert_eq!(p.label_rates_read, c.label_rates_read);
    assert_eq!(p.label_means, c.label_means);
    assert_eq!(p.split, c.split);
    assert_eq!(p.vocabulary, c.vocabulary);
    assert_eq!(from_parquet.watch_ratio, from_csv.watch_ratio);
    assert_eq!(from_parquet.day, from_csv.day);
    assert_eq!(from_parquet.timestamp_ms, from_csv.timestamp_ms);
    let keys = |d: &PreparedDataset| d.user_keys.tokens().map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(keys(&from_parquet), keys(&from_csv));
    assert_eq!(
        from_parquet.batches(Part::Train, 8, Some(1)).collect::<Vec<_>>(),
        from_csv.batches(Part::Train, 8, Some(1)).collect::<Vec<_>>()
    );

    // The fail policy points at the Parquet row (row 6 reads as line 7: the header is line 1).
    let mut spec = spec_for(&parquet_path);
    spec.cleaning.invalid_value = DropPolicy::Fail;
    let (_, message) = read_err(&spec, &parquet_path);
    assert_contains(&message, &["line 7", "column 'play_time_ms'"]);
}

#[test]
fn a_failed_write_leaves_nothing_and_a_good_one_replaces_the_file_whole() {
    let dir = TempDir::new().unwrap();
    let listing = || {
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let path = dir.path().join("out.json");
    let err = seesaw_data::atomic::write_with(&path, |f| {
        use std::io::Write;
        f.write_all(&[b'x'; 10_000])?;
        Err(std::io::Error::other("boom"))
    })
    .unwrap_err();
    assert_contains(&err.to_string(), &[&path.display().to_string(), "boom"]);
    assert!(!path.exists());
    assert!(listing().is_empty(), "left behind: {:?}", listing());

    std::fs::write(&path, "old contents").unwrap();
    seesaw_data::atomic::write_with(&path, |f| {
        use std::io::Write;
        f.write_all(b"half")?;
        Err(std::io::Error::other("boom"))
    })
    .unwrap_err();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "old contents");
    assert_eq!(listing(), vec!["out.json".to_string()]);

    seesaw_data::atomic::write_with(&path, |f| {
        use std::io::Write;
        f.write_all(b"new")
    })
    .unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
    assert_eq!(listing(), vec!["out.json".to_string()]);
}

#[test]
fn saving_a_feature_map_into_a_missing_directory_names_the_path() {
    let dir = TempDir::new().unwrap();
    let log_path = write(&dir, "log.csv", csv(&(0..8).map(good).collect::<Vec<_>>()));
    let data = prepare(&spec_for(&log_path)).unwrap();
    let missing = dir.path().join("no_such_dir");
    let path = missing.join("feature_map.json");
    let err = data.feature_map.save(&path).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, DataError::Io { .. }), "{err:?}");
    assert!(message.contains(&missing.display().to_string()), "{message}");
    println!("save into a missing directory: {message}");
    assert!(!missing.exists());

    // And a good save round-trips.
    let path = dir.path().join("feature_map.json");
    data.feature_map.save(&path).unwrap();
    let loaded = seesaw_data::feature_map::FeatureMap::load(&path).unwrap();
    assert_eq!(loaded.schema(), data.schema);
}

/// Flips, inserts and deletes random bytes of a valid log; reading never panics and either
/// succeeds or fails naming the file.
#[test]
fn random_mutations_never_panic_and_errors_name_the_file() {
    let dir = TempDir::new().unwrap();
    let valid = csv(&(0..24).map(good).collect::<Vec<_>>()).into_bytes();
    let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
    let (mut ok, mut failed) = (0, 0);
    for case in 0..300 {
        let mut bytes = valid.clone();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(bytes.len());
            // Bias towards bytes that matter to a CSV parser.
            let byte = match rng.below(4) {
                0 => b",\n\"\r-.0"[rng.below(7)],
                _ => rng.next() as u8,
            };
            match rng.below(3) {
                0 => bytes[at] = byte,
                1 => bytes.insert(at, byte),
                _ => {
                    bytes.remove(at);
                }
            }
        }
        let path = write(&dir, &format!("mutant_{case}.csv"), &bytes);
        let spec = spec_for(&path);
        let outcome = std::panic::catch_unwind(|| read(&spec, &path));
        let Ok(result) = outcome else {
            panic!("case {case} panicked; input kept at {}", path.display());
        };
        match result {
            Ok(log) => {
                ok += 1;
                assert!(log.stats.rows_read >= log.len() as u64);
                // Preparing must not panic either (it may fail for a spec reason).
                let prepared = std::panic::catch_unwind(|| prepare(&spec).map(|d| d.len()));
                assert!(prepared.is_ok(), "case {case}: prepare panicked");
            }
            Err(err) => {
                failed += 1;
                let message = err.to_string();
                assert!(
                    message.contains(&format!("mutant_{case}.csv")),
                    "case {case}: no file name in: {message}"
                );
            }
        }
        std::fs::remove_file(&path).unwrap();
    }
    println!("mutations: {ok} read, {failed} failed with the file named");
    assert!(ok > 0 && failed > 0, "{ok} read, {failed} failed");
}

/// Every batch of one part of a streamed dataset, or its first error.
fn streamed_rows(data: &StreamedDataset, part: Part) -> seesaw_data::Result<usize> {
    let mut rows = 0;
    for batch in data.batches(part, 7, Some(3)) {
        rows += batch?.size;
    }
    Ok(rows)
}

#[test]
fn a_streamed_fit_splits_rows_in_any_day_order_as_the_in_memory_fit_does() {
    let dir = TempDir::new().unwrap();
    // Days cycle 08, 09, 10, 11 row by row: every chunk holds every day, in no order.
    let path = write(&dir, "log.csv", csv(&(0..200).map(good).collect::<Vec<_>>()));
    let spec = spec_for(&path);
    let memory = prepare(&spec).unwrap();
    let streamed = StreamedDataset::fit(&spec, 16).unwrap();
    for part in [Part::Train, Part::Valid, Part::Test] {
        assert_eq!(streamed.part_len(part), memory.split.part(part).len(), "{part:?}");
        assert_eq!(streamed_rows(&streamed, part).unwrap(), memory.split.part(part).len());
    }
    assert_eq!(streamed.part_len(Part::Train), 100, "the first two of four days train");
    let (a, b) = (streamed.feature_map(), &memory.feature_map);
    assert_eq!(
        (&a.user_id, &a.video_id, &a.features, &a.skip),
        (&b.user_id, &b.video_id, &b.features, &b.skip)
    );

    // The same with the rows ordered by day, and with the split given by end days.
    let mut rows: Vec<_> = (0..200).map(good).collect();
    rows.sort_by(|x, y| x[col("date")].cmp(&y[col("date")]));
    let path = write(&dir, "sorted.csv", csv(&rows));
    let mut spec = spec_for(&path);
    let sorted = StreamedDataset::fit(&spec, 16).unwrap();
    assert_eq!(sorted.feature_map().user_id, b.user_id);
    assert_eq!(sorted.part_len(Part::Valid), 100);
    spec.split = SplitSpec::Temporal {
        train_end: Some(20220408),
        valid_end: Some(20220410),
        valid_days: 0,
        test_days: 0,
    };
    let by_end = StreamedDataset::fit(&spec, 16).unwrap();
    assert_eq!([Part::Train, Part::Valid, Part::Test].map(|p| by_end.part_len(p)), [50, 100, 50]);
    // A random split: each row drawn by its line, the same rows in the fit and every pass.
    spec.split = SplitSpec::Random { seed: 1, valid_fraction: 0.2, test_fraction: 0.1 };
    let random = StreamedDataset::fit(&spec, 16).unwrap();
    let parts = [Part::Train, Part::Valid, Part::Test];
    assert_eq!(parts.map(|p| random.part_len(p)).iter().sum::<usize>(), 200);
    for part in parts {
        assert!(random.part_len(part) > 10, "{part:?}: {}", random.part_len(part));
        assert_eq!(streamed_rows(&random, part).unwrap(), random.part_len(part));
    }
}

#[test]
fn a_streamed_fit_refuses_what_needs_the_whole_log_and_names_why() {
    let dir = TempDir::new().unwrap();
    let path = write(&dir, "log.csv", csv(&(0..40).map(good).collect::<Vec<_>>()));
    let mut spec = spec_for(&path);
    spec.split = SplitSpec::LeaveLast { valid: 1, test: 0 };
    let message = StreamedDataset::fit(&spec, 16).err().unwrap().to_string();
    assert_contains(&message, &["leave-last", "temporal or random"]);
    let mut spec = spec_for(&path);
    spec.filter.min_user_interactions = 5;
    let message = StreamedDataset::fit(&spec, 16).err().unwrap().to_string();
    assert_contains(&message, &["[dataset.filter]", "train in memory"]);
    // Days named by the split but by no column.
    let mut spec = spec_for(&path);
    (spec.log.date, spec.log.timestamp) = (None, None);
    spec.split = SplitSpec::Temporal {
        train_end: Some(20220409),
        valid_end: None,
        valid_days: 0,
        test_days: 0,
    };
    let message = StreamedDataset::fit(&spec, 16).err().unwrap().to_string();
    assert_contains(&message, &["temporal split needs a date or timestamp column"]);
    // Four days, all held out: nothing trains.
    let mut spec = spec_for(&path);
    spec.split =
        SplitSpec::Temporal { train_end: None, valid_end: None, valid_days: 3, test_days: 1 };
    let message = StreamedDataset::fit(&spec, 16).err().unwrap().to_string();
    assert_contains(&message, &["no training rows", "4 day(s)", "at least 5"]);
}

#[test]
fn a_log_that_breaks_after_the_fit_is_an_error_naming_its_line_not_a_short_epoch() {
    let dir = TempDir::new().unwrap();
    let rows: Vec<_> = (0..200).map(good).collect();
    let path = write(&dir, "log.csv", csv(&rows));
    let data = StreamedDataset::fit(&spec_for(&path), 16).unwrap();
    // The file is replaced between epochs by one with a short row on line 152.
    let mut broken = rows.clone();
    broken[150].truncate(3);
    write(&dir, "log.csv", csv(&broken));
    let err = streamed_rows(&data, Part::Train).unwrap_err();
    assert_contains(&err.to_string(), &["log.csv", "line 152", "got 3"]);
}

/// Writes `rows` (all columns but `date`, as text) to `path`.
fn write_text_parquet(path: &Path, rows: &[Vec<String>], skip: &str) {
    let kept: Vec<usize> = (0..COLUMNS.len()).filter(|&k| COLUMNS[k] != skip).collect();
    let fields: Vec<Field> =
        kept.iter().map(|&k| Field::new(COLUMNS[k], DataType::Utf8, true)).collect();
    let arrays: Vec<ArrayRef> = kept
        .iter()
        .map(|&k| {
            Arc::new(arrow_array::StringArray::from_iter_values(rows.iter().map(|r| &r[k])))
                as ArrayRef
        })
        .collect();
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).unwrap();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let file = std::fs::File::create(path).unwrap();
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

#[test]
fn a_directory_of_parquet_files_partitioned_by_date_reads_like_one_csv() {
    let dir = TempDir::new().unwrap();
    let rows: Vec<_> = (0..200).map(good).collect();
    let csv_path = write(&dir, "log.csv", csv(&rows));
    // As Spark writes it: one folder per date, the date only in the folder name, marker files.
    let dataset = dir.path().join("log");
    for day in 20220408..20220412 {
        let of_day: Vec<_> =
            rows.iter().filter(|r| r[col("date")] == day.to_string()).cloned().collect();
        for (part, half) in of_day.chunks(30).enumerate() {
            let file = dataset.join(format!("date={day}/part-{part:05}.parquet"));
            write_text_parquet(&file, half, "date");
        }
    }
    std::fs::write(dataset.join("_SUCCESS"), "").unwrap();
    std::fs::write(dataset.join("date=20220408/.part-00000.parquet.crc"), "crc").unwrap();

    let from_dir = prepare(&spec_for(&dataset)).unwrap();
    let from_csv = prepare(&spec_for(&csv_path)).unwrap();
    let (d, c) = (&from_dir.report, &from_csv.report);
    assert_eq!((d.rows_read, d.rows_kept), (200, 200));
    assert_eq!(
        (&d.split, &d.vocabulary, &d.label_rates),
        (&c.split, &c.vocabulary, &c.label_rates)
    );
    let mut days = from_dir.day.clone();
    days.dedup();
    assert_eq!(days, [20220408, 20220409, 20220410, 20220411], "files are read in path order");
    let streamed = StreamedDataset::fit(&spec_for(&dataset), 16).unwrap();
    for part in [Part::Train, Part::Valid, Part::Test] {
        assert_eq!(streamed.part_len(part), from_csv.split.part(part).len(), "{part:?}");
    }

    // A file whose columns differ is named, with what differs.
    write_text_parquet(&dataset.join("date=20220410/part-99999.parquet"), &rows[..3], "tab");
    let message = prepare(&spec_for(&dataset)).err().unwrap().to_string();
    assert_contains(
        &message,
        &["date=20220410", "part-99999.parquet", "differ from the first file's"],
    );
    // A directory without Parquet files is named as such.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let message = prepare(&spec_for(&empty)).err().unwrap().to_string();
    assert_contains(&message, &["empty", "no .parquet file"]);
}
