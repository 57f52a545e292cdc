//! Reads a CSV or Parquet table chunk by chunk as Arrow record batches, remembering where each
//! chunk starts so that a bad cell can be reported by file, line and column.
//!
//! CSV columns are read as text and parsed by us (see `cells`), not by arrow-csv's type
//! inference: one unparsable cell must become a counted drop of one row, not a failed batch.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};

use crate::error::{DataError, Location, Result};

pub const DEFAULT_CHUNK_ROWS: usize = 65_536;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableFormat {
    Csv,
    Parquet,
}

impl TableFormat {
    /// Parquet for `.parquet`/`.pq`, CSV for anything else.
    pub fn from_path(path: &Path) -> Self {
        match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("parquet" | "pq") => TableFormat::Parquet,
            _ => TableFormat::Csv,
        }
    }
}

/// A chunk of rows and the position of its first row in the file.
pub struct TableChunk {
    pub batch: RecordBatch,
    /// CSV: the 1-based line of the first row (the header is line 1). Parquet: 1-based row + 1,
    /// so that both read as "the header is line 1".
    pub first_line: u64,
}

enum Inner {
    Csv(Box<arrow_csv::Reader<BufReader<File>>>),
    Parquet(ParquetRecordBatchReader),
}

pub struct TableReader {
    path: PathBuf,
    columns: Vec<String>,
    inner: Inner,
    next_line: u64,
}

impl TableReader {
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with_chunk_rows(path, DEFAULT_CHUNK_ROWS)
    }

    pub fn open_with_chunk_rows(path: &Path, chunk_rows: usize) -> Result<Self> {
        match TableFormat::from_path(path) {
            TableFormat::Csv => Self::open_csv(path, chunk_rows),
            TableFormat::Parquet => Self::open_parquet(path, chunk_rows),
        }
    }

    fn open_csv(path: &Path, chunk_rows: usize) -> Result<Self> {
        let columns = read_csv_header(path)?;
        let fields: Vec<Field> =
            columns.iter().map(|name| Field::new(name, DataType::Utf8, true)).collect();
        let file = File::open(path).map_err(|e| DataError::io(path, e))?;
        let reader = arrow_csv::ReaderBuilder::new(Arc::new(Schema::new(fields)))
            .with_header(true)
            .with_batch_size(chunk_rows)
            .build(BufReader::with_capacity(1 << 20, file))
            .map_err(|e| malformed(path, e))?;
        Ok(Self {
            path: path.to_owned(),
            columns,
            inner: Inner::Csv(Box::new(reader)),
            next_line: 2,
        })
    }

    fn open_parquet(path: &Path, chunk_rows: usize) -> Result<Self> {
        let file = File::open(path).map_err(|e| DataError::io(path, e))?;
        if file.metadata().map(|m| m.len()).unwrap_or(0) == 0 {
            return Err(DataError::EmptyFile { path: path.to_owned() });
        }
        let builder =
            ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| malformed(path, e))?;
        let columns = builder.schema().fields().iter().map(|f| f.name().clone()).collect();
        let reader = builder.with_batch_size(chunk_rows).build().map_err(|e| malformed(path, e))?;
        Ok(Self { path: path.to_owned(), columns, inner: Inner::Parquet(reader), next_line: 2 })
    }

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
            Inner::Csv(reader) => reader.next(),
            Inner::Parquet(reader) => reader.next(),
        }?;
        Some(match next {
            Ok(batch) => {
                let first_line = self.next_line;
                self.next_line += batch.num_rows() as u64;
                Ok(TableChunk { batch, first_line })
            }
            Err(e) => Err(malformed(&self.path, e)),
        })
    }
}

fn malformed(path: &Path, error: impl std::fmt::Display) -> DataError {
    DataError::Malformed { location: Location::file(path), message: error.to_string() }
}

/// Reads the header line with a real CSV parser (quoted names, invalid UTF-8 detected).
fn read_csv_header(path: &Path) -> Result<Vec<String>> {
    let mut file = File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut probe = [0u8; 1];
    if file.read(&mut probe).map_err(|e| DataError::io(path, e))? == 0 {
        return Err(DataError::EmptyFile { path: path.to_owned() });
    }
    let file = File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(file);
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
    Ok(columns)
}
