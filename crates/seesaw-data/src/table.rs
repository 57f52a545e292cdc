//! Reads a CSV or Parquet table chunk by chunk as Arrow record batches, remembering where each
//! chunk starts so that a bad cell can be reported by file, line and column.
//!
//! CSV columns are read as text (with the csv crate) and parsed by us (see `cells`), not by
//! arrow-csv's typed reader: one unparsable cell must become a counted drop of one row, not a
//! failed batch, and arrow-csv counts records rather than file lines, so its line numbers drift
//! after a blank line or a quoted line break.
//!
//! A directory is read as a Parquet dataset partitioned as Spark, Hive and DataFusion write it:
//! every `.parquet` file under it in path order, with each `key=value` folder on a file's path
//! (`date=20220408/part-0.parquet`) added as a text column `key` to its rows.
//!
//! Delimited text comes as it is logged: comma-separated (`.csv`), tab-separated (`.tsv`, or any
//! file with `[log] delimiter = "\t"`), and either gzip-compressed (`.csv.gz`, `.tsv.gz`,
//! decompressed as it is read by a pure-Rust decoder), with the same line numbers as the
//! uncompressed file.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::StringBuilder;
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};

use crate::error::{DataError, Location, Result};
use crate::shard::Shard;

pub const DEFAULT_CHUNK_ROWS: usize = 65_536;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableFormat {
    /// Delimited text, gzip-compressed or not.
    Csv {
        delimiter: u8,
        gzip: bool,
    },
    Parquet,
}

impl TableFormat {
    /// Parquet for `.parquet`/`.pq`; otherwise delimited text: tab-separated for `.tsv`, comma-
    /// separated for anything else, gzip-compressed when the name ends in `.gz`.
    pub fn from_path(path: &Path) -> Self {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("").to_ascii_lowercase();
        let (stem, gzip) = match name.strip_suffix(".gz") {
            Some(stem) => (stem, true),
            None => (name.as_str(), false),
        };
        let extension = stem.rsplit_once('.').map(|(_, e)| e);
        match (extension, gzip) {
            (Some("parquet" | "pq"), false) => TableFormat::Parquet,
            (Some("tsv" | "tab"), _) => TableFormat::Csv { delimiter: b'\t', gzip },
            _ => TableFormat::Csv { delimiter: b',', gzip },
        }
    }
}

/// The longest line a delimited file may have. A longer one is not a table (`/dev/zero`, a
/// binary file given by mistake), and reading it whole would grow memory without limit.
pub const MAX_LINE_BYTES: u64 = 64 << 20;

/// The raw bytes of a delimited file: decompressed when it is gzip, with a note of whether the
/// end of the data has been reached (which is how an unterminated last line is told apart), and
/// a refusal of any line longer than `MAX_LINE_BYTES`.
struct Source {
    inner: Box<dyn Read + Send>,
    at_end: bool,
    since_newline: u64,
}

impl Source {
    fn open(path: &Path, gzip: bool) -> Result<Self> {
        let file = File::open(path).map_err(|e| DataError::io(path, e))?;
        let inner: Box<dyn Read + Send> = if gzip {
            // Multi-member, as `cat a.gz b.gz` and many log shippers write them.
            Box::new(flate2::read::MultiGzDecoder::new(BufReader::with_capacity(1 << 16, file)))
        } else {
            Box::new(file)
        };
        Ok(Self { inner, at_end: false, since_newline: 0 })
    }
}

impl Read for Source {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.at_end = true;
        }
        self.since_newline = match buf[..n].iter().rposition(|&b| b == b'\n') {
            Some(last) => (n - last - 1) as u64,
            None => self.since_newline + n as u64,
        };
        if self.since_newline > MAX_LINE_BYTES {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "a line longer than {} MiB: not a delimited text table",
                    MAX_LINE_BYTES >> 20
                ),
            ));
        }
        Ok(n)
    }
}

/// A chunk of rows and the position of its first row in the file.
pub struct TableChunk {
    pub batch: RecordBatch,
    /// CSV: the 1-based line of the first row (the header is line 1). Parquet: 1-based row + 1,
    /// so that both read as "the header is line 1". Row `r` of the chunk starts on line
    /// `first_line + r`: a CSV chunk ends early where a blank line or a quoted line break would
    /// break that.
    pub first_line: u64,
    /// The position of the first row in the whole table: the rows before it, over the files of
    /// a directory in path order (a shard's chunks keep the positions of the whole table).
    pub first_row: u64,
}

enum Inner {
    Csv(Box<CsvChunks>),
    Parquet(ParquetRecordBatchReader),
    PartitionedParquet(Box<PartitionedParquet>),
}

pub struct TableReader {
    path: PathBuf,
    columns: Vec<String>,
    inner: Inner,
    next_line: u64,
    next_row: u64,
}

impl TableReader {
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with_chunk_rows(path, DEFAULT_CHUNK_ROWS)
    }

    pub fn open_with_chunk_rows(path: &Path, chunk_rows: usize) -> Result<Self> {
        Self::open_with(path, None, chunk_rows)
    }

    /// `delimiter` overrides the one the file name implies (delimited text only).
    pub fn open_with(path: &Path, delimiter: Option<u8>, chunk_rows: usize) -> Result<Self> {
        if path.is_dir() {
            return PartitionedParquet::open(path, chunk_rows, Shard::WHOLE);
        }
        match TableFormat::from_path(path) {
            TableFormat::Csv { delimiter: implied, gzip } => {
                Self::open_csv(path, delimiter.unwrap_or(implied), gzip, chunk_rows)
            }
            TableFormat::Parquet => Self::open_parquet(path, chunk_rows),
        }
    }

    /// This rank's rows of a Parquet log, a file or a directory of them (see [`crate::shard`]);
    /// the whole table for [`Shard::WHOLE`]. Delimited text cannot be read in shards.
    pub fn open_shard(
        path: &Path,
        delimiter: Option<u8>,
        chunk_rows: usize,
        shard: Shard,
    ) -> Result<Self> {
        if shard.is_whole() {
            return Self::open_with(path, delimiter, chunk_rows);
        }
        if !Shard::can_split(path) {
            return Err(malformed(
                path,
                "a delimited text log cannot be read in shards (a rank cannot find its rows \
                 without reading the ones before them); write it as Parquet",
            ));
        }
        PartitionedParquet::open(path, chunk_rows, shard)
    }

    fn open_csv(path: &Path, delimiter: u8, gzip: bool, chunk_rows: usize) -> Result<Self> {
        let (columns, crlf) = read_csv_header(path, delimiter, gzip)?;
        let fields: Vec<Field> =
            columns.iter().map(|name| Field::new(name, DataType::Utf8, true)).collect();
        // The csv crate, not arrow-csv: it gives each record's line, so blank lines and quoted
        // newlines do not shift the line numbers in messages.
        let reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .delimiter(delimiter)
            .from_reader(BufReader::with_capacity(1 << 20, Source::open(path, gzip)?));
        Ok(Self {
            path: path.to_owned(),
            columns,
            inner: Inner::Csv(Box::new(CsvChunks {
                reader,
                record: csv::ByteRecord::new(),
                pending: false,
                schema: Arc::new(Schema::new(fields)),
                chunk_rows: chunk_rows.max(1),
                crlf,
            })),
            next_line: 2,
            next_row: 0,
        })
    }

    fn open_parquet(path: &Path, chunk_rows: usize) -> Result<Self> {
        let (columns, reader) = open_parquet_file(path, chunk_rows)?;
        let inner = Inner::Parquet(reader);
        Ok(Self { path: path.to_owned(), columns, inner, next_line: 2, next_row: 0 })
    }

    /// The file being read (for a partitioned directory, the current file).
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// The position of a required column, or an error that lists the columns present.
    pub fn require_column(&self, name: &str) -> Result<usize> {
        self.columns.iter().position(|c| c == name).ok_or_else(|| DataError::MissingColumn {
            location: Location {
                path: self.path.clone(),
                line: Some(1),
                column: Some(name.into()),
            },
            present: self.columns.clone(),
        })
    }
}

impl Iterator for TableReader {
    type Item = Result<TableChunk>;

    fn next(&mut self) -> Option<Self::Item> {
        let next = match &mut self.inner {
            Inner::Csv(reader) => {
                let chunk = reader.next_chunk(&self.path, &self.columns, self.next_row);
                if let Some(Ok(chunk)) = &chunk {
                    self.next_row += chunk.batch.num_rows() as u64;
                }
                return chunk;
            }
            Inner::Parquet(reader) => reader.next(),
            Inner::PartitionedParquet(dataset) => loop {
                if let Some(batch) = dataset.next_batch() {
                    break Some(batch);
                }
                match dataset.open_next() {
                    Some(Ok((path, first_line, first_row))) => {
                        self.path = path;
                        self.next_line = first_line;
                        self.next_row = first_row.unwrap_or(self.next_row);
                    }
                    Some(Err(e)) => return Some(Err(e)),
                    None => break None,
                }
            },
        }?;
        Some(match next {
            Ok(batch) => {
                let (first_line, first_row) = (self.next_line, self.next_row);
                self.next_line += batch.num_rows() as u64;
                self.next_row += batch.num_rows() as u64;
                Ok(TableChunk { batch, first_line, first_row })
            }
            Err(e) => Err(malformed(&self.path, e)),
        })
    }
}

/// The Parquet files under a directory, read one after another, with the `key=value` folders on
/// each file's path as text columns; or a shard's pieces of them (or of one file).
struct PartitionedParquet {
    /// Each file and its partition values, in path order.
    files: Vec<(PathBuf, Vec<String>)>,
    /// What is read, in order: a file, whole (`None`) or a range of its rows; `next` is the one
    /// to open next, `current_file` the file of the one being read.
    pieces: Vec<(usize, Option<Range<u64>>)>,
    /// A shard's: the position of each file's first row in the whole directory.
    file_starts: Vec<u64>,
    next: usize,
    current_file: usize,
    reader: Option<ParquetRecordBatchReader>,
    file_columns: Vec<String>,
    partition_keys: Vec<String>,
    schema: Option<Arc<Schema>>,
    chunk_rows: usize,
}

impl PartitionedParquet {
    /// `path`: a directory, or (for a shard) one Parquet file.
    fn open(path: &Path, chunk_rows: usize, shard: Shard) -> Result<TableReader> {
        let mut found = Vec::new();
        let dir = if path.is_dir() {
            collect_parquet_files(path, &mut found)?;
            path
        } else {
            found.push(path.to_owned());
            path.parent().unwrap_or(Path::new(""))
        };
        found.sort();
        let Some(first) = found.first() else {
            return Err(malformed(dir, "a directory with no .parquet file under it"));
        };
        let partitions = |file: &Path| -> Vec<(String, String)> {
            let relative = file.strip_prefix(dir).unwrap_or(file);
            relative
                .parent()
                .into_iter()
                .flat_map(Path::components)
                .filter_map(|c| c.as_os_str().to_str()?.split_once('='))
                .map(|(k, v)| {
                    // Hive's name for a null partition value.
                    let v = if v == "__HIVE_DEFAULT_PARTITION__" { "" } else { v };
                    (k.to_owned(), v.to_owned())
                })
                .collect()
        };
        let partition_keys: Vec<String> = partitions(first).into_iter().map(|(k, _)| k).collect();
        let mut files = Vec::with_capacity(found.len());
        for file in &found {
            let (keys, values): (Vec<String>, Vec<String>) = partitions(file).into_iter().unzip();
            if keys != partition_keys {
                return Err(malformed(
                    file,
                    format!(
                        "partition folders {keys:?} differ from the first file's {partition_keys:?}"
                    ),
                ));
            }
            files.push((file.clone(), values));
        }
        let mut file_starts = Vec::new();
        let pieces = if shard.is_whole() {
            (0..files.len()).map(|f| (f, None)).collect()
        } else {
            let rows =
                files.iter().map(|(file, _)| parquet_rows(file)).collect::<Result<Vec<_>>>()?;
            file_starts =
                rows.iter().scan(0, |at, &n| Some(std::mem::replace(at, *at + n))).collect();
            let mut pieces: Vec<_> =
                shard.pieces(&rows).into_iter().map(|(f, r)| (f, Some(r))).collect();
            if pieces.is_empty() {
                // More ranks than blocks: no rows here, but the columns still come from a file.
                pieces.push((0, Some(0..0)));
            }
            pieces
        };
        let mut dataset = PartitionedParquet {
            files,
            pieces,
            file_starts,
            next: 0,
            current_file: 0,
            reader: None,
            file_columns: Vec::new(),
            partition_keys,
            schema: None,
            chunk_rows,
        };
        // The first file sets the columns every other file must have.
        let (path, next_line, first_row) = match dataset.open_next() {
            Some(Ok(opened)) => opened,
            Some(Err(e)) => return Err(e),
            None => unreachable!("at least one file was found"),
        };
        let keys = &dataset.partition_keys;
        if let Some(key) = keys.iter().find(|k| dataset.file_columns.contains(k)) {
            return Err(malformed(
                &path,
                format!("column '{key}' is both in the file and a partition folder"),
            ));
        }
        let columns = dataset.file_columns.iter().chain(keys).cloned().collect();
        Ok(TableReader {
            path,
            columns,
            inner: Inner::PartitionedParquet(Box::new(dataset)),
            next_line,
            next_row: first_row.unwrap_or(0),
        })
    }

    /// Opens the next piece; its file, the line of its first row and (a shard's piece) that
    /// row's position in the directory, or None after the last.
    fn open_next(&mut self) -> Option<Result<(PathBuf, u64, Option<u64>)>> {
        let (file, rows) = self.pieces.get(self.next)?.clone();
        let path = self.files[file].0.clone();
        self.next += 1;
        self.current_file = file;
        let first = self.next == 1;
        let opened = open_parquet_rows(&path, self.chunk_rows, rows.clone());
        let opened = opened.and_then(|(columns, reader)| {
            if first {
                self.file_columns = columns;
            } else if columns != self.file_columns {
                return Err(malformed(
                    &path,
                    format!(
                        "columns {columns:?} differ from the first file's {:?}",
                        self.file_columns
                    ),
                ));
            }
            Ok(reader)
        });
        Some(opened.map(|reader| {
            self.reader = Some(reader);
            let first_row = rows.as_ref().map(|r| self.file_starts[file] + r.start);
            (path, rows.map_or(0, |r| r.start) + 2, first_row)
        }))
    }

    /// The current file's next batch with its partition columns, or None at its end.
    fn next_batch(&mut self) -> Option<std::result::Result<RecordBatch, arrow_schema::ArrowError>> {
        let batch = match self.reader.as_mut()?.next()? {
            Ok(batch) => batch,
            Err(e) => return Some(Err(e)),
        };
        if self.partition_keys.is_empty() {
            return Some(Ok(batch));
        }
        let values = &self.files[self.current_file].1;
        let n = batch.num_rows();
        let schema = self.schema.get_or_insert_with(|| {
            let mut fields: Vec<Field> =
                batch.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
            fields.extend(self.partition_keys.iter().map(|k| Field::new(k, DataType::Utf8, true)));
            Arc::new(Schema::new(fields))
        });
        let mut columns = batch.columns().to_vec();
        columns.extend(
            values
                .iter()
                .map(|v| Arc::new(arrow_array::StringArray::from(vec![v.as_str(); n])) as ArrayRef),
        );
        Some(RecordBatch::try_new(schema.clone(), columns))
    }
}

/// The .parquet/.pq files under `dir`, at any depth; hidden and `_`-prefixed entries (Spark's
/// `_SUCCESS`, `.crc` files, staging folders) are not data.
fn collect_parquet_files(dir: &Path, found: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))? {
        let path = entry.map_err(|e| DataError::io(dir, e))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') || name.starts_with('_') {
            continue;
        }
        if path.is_dir() {
            collect_parquet_files(&path, found)?;
        } else if TableFormat::from_path(&path) == TableFormat::Parquet {
            found.push(path);
        }
    }
    Ok(())
}

/// Opens one Parquet file: its column names, and a reader of `chunk_rows`-row batches.
fn open_parquet_file(
    path: &Path,
    chunk_rows: usize,
) -> Result<(Vec<String>, ParquetRecordBatchReader)> {
    open_parquet_rows(path, chunk_rows, None)
}

/// The rows in a Parquet file, from its footer.
fn parquet_rows(path: &Path) -> Result<u64> {
    let file = File::open(path).map_err(|e| DataError::io(path, e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| malformed(path, e))?;
    Ok(builder.metadata().file_metadata().num_rows().max(0) as u64)
}

/// [`open_parquet_file`] reading `rows` only (all without); the row groups before them are
/// skipped unread.
fn open_parquet_rows(
    path: &Path,
    chunk_rows: usize,
    rows: Option<Range<u64>>,
) -> Result<(Vec<String>, ParquetRecordBatchReader)> {
    let file = File::open(path).map_err(|e| DataError::io(path, e))?;
    if file.metadata().map(|m| m.len()).unwrap_or(0) == 0 {
        return Err(DataError::EmptyFile { path: path.to_owned() });
    }
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| malformed(path, e))?;
    let columns = builder.schema().fields().iter().map(|f| f.name().clone()).collect();
    let builder = match rows {
        Some(rows) => {
            builder.with_offset(rows.start as usize).with_limit((rows.end - rows.start) as usize)
        }
        None => builder,
    };
    let reader = builder.with_batch_size(chunk_rows).build().map_err(|e| malformed(path, e))?;
    Ok((columns, reader))
}

/// CSV records read into all-text record batches, chunk by chunk.
struct CsvChunks {
    reader: csv::Reader<BufReader<Source>>,
    record: csv::ByteRecord,
    /// `record` holds a record read but not yet put into a chunk.
    pending: bool,
    schema: Arc<Schema>,
    chunk_rows: usize,
    /// The header line ends with "\r\n" (taken to hold for the whole file).
    crlf: bool,
}

impl CsvChunks {
    /// The line the record just read starts on. The csv crate's own record position counts
    /// from before the blank lines it skipped, so count back from where the record ended
    /// instead: its terminator and any line breaks inside quoted fields.
    fn start_line(&self) -> u64 {
        let end = self.reader.position();
        let inner = self.record.as_slice().iter().filter(|&&b| b == b'\n').count() as u64;
        // A record ended by "\r\n" returns before its '\n' is read (and counted); one that ends
        // the file without a line break has none. Only such a record makes the parser ask for
        // input past the end of the data before returning it: a terminated one is returned at
        // its line break.
        let unterminated = self.reader.get_ref().get_ref().at_end;
        let terminator = u64::from(!self.crlf && !unterminated);
        let start = end.line().saturating_sub(inner + terminator);
        start.max(self.record.position().map_or(1, |p| p.line()))
    }

    fn next_chunk(
        &mut self,
        path: &Path,
        columns: &[String],
        first_row: u64,
    ) -> Option<Result<TableChunk>> {
        let n = columns.len();
        let mut builders: Vec<StringBuilder> = (0..n).map(|_| StringBuilder::new()).collect();
        let mut first_line = None;
        let mut rows = 0u64;
        while rows < self.chunk_rows as u64 {
            if !self.pending {
                match self.reader.read_byte_record(&mut self.record) {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(e) => {
                        let line = e.position().map(|p| p.line());
                        let message = match e.into_kind() {
                            csv::ErrorKind::Io(e) => return Some(Err(DataError::io(path, e))),
                            other => format!("cannot read the CSV: {other:?}"),
                        };
                        let location = Location { path: path.to_owned(), line, column: None };
                        return Some(Err(DataError::Malformed { location, message }));
                    }
                }
            }
            let line = self.start_line();
            match first_line {
                None => first_line = Some(line),
                // A gap in line numbers ends the chunk, so that first_line + row stays exact.
                Some(first) if line != first + rows => {
                    self.pending = true;
                    break;
                }
                Some(_) => {}
            }
            self.pending = false;
            if self.record.len() != n {
                return Some(Err(DataError::Malformed {
                    location: Location { path: path.to_owned(), line: Some(line), column: None },
                    message: format!(
                        "incorrect number of fields: expected {n} (as in the header), got {}",
                        self.record.len()
                    ),
                }));
            }
            for (k, (field, builder)) in self.record.iter().zip(&mut builders).enumerate() {
                match std::str::from_utf8(field) {
                    Ok(text) => builder.append_value(text),
                    Err(_) => {
                        return Some(Err(DataError::Malformed {
                            location: Location::cell(path, line, &columns[k]),
                            message: "the cell is not valid UTF-8".into(),
                        }));
                    }
                }
            }
            rows += 1;
        }
        let first_line = first_line?;
        let arrays: Vec<ArrayRef> =
            builders.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef).collect();
        Some(
            RecordBatch::try_new(self.schema.clone(), arrays)
                .map(|batch| TableChunk { batch, first_line, first_row })
                .map_err(|e| malformed(path, e)),
        )
    }
}

fn malformed(path: &Path, error: impl std::fmt::Display) -> DataError {
    DataError::Malformed { location: Location::file(path), message: error.to_string() }
}

/// Reads the header line with a real CSV parser (quoted names, invalid UTF-8 detected), and
/// whether it ends with "\r\n" (taken to hold for the whole file).
fn read_csv_header(path: &Path, delimiter: u8, gzip: bool) -> Result<(Vec<String>, bool)> {
    let mut first_line = Vec::new();
    BufReader::new(Source::open(path, gzip)?.take(1 << 20))
        .read_until(b'\n', &mut first_line)
        .map_err(|e| DataError::io(path, e))?;
    if first_line.is_empty() {
        return Err(DataError::EmptyFile { path: path.to_owned() });
    }
    let crlf = first_line.ends_with(b"\r\n");
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(Source::open(path, gzip)?);
    let mut record = csv::StringRecord::new();
    let read = reader.read_record(&mut record).map_err(|e| DataError::Malformed {
        location: Location { path: path.to_owned(), line: Some(1), column: None },
        message: format!("cannot read the header: {e}"),
    })?;
    if !read {
        return Err(DataError::EmptyFile { path: path.to_owned() });
    }
    let mut columns: Vec<String> = record.iter().map(|s| s.trim().to_owned()).collect();
    if let Some(first) = columns.first_mut() {
        *first = first.trim_start_matches('\u{feff}').to_owned();
    }
    let mut seen = std::collections::HashSet::new();
    for name in &columns {
        if !seen.insert(name) {
            return Err(DataError::Malformed {
                location: Location {
                    path: path.to_owned(),
                    line: Some(1),
                    column: Some(name.clone()),
                },
                message: "the header names this column twice".into(),
            });
        }
    }
    Ok((columns, crlf))
}
