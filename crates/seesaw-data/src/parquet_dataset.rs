//! Writing a log as a partitioned Parquet directory, the form several training ranks read in
//! shards (`crate::shard`): one folder per value of a partition column (`date=20220408/`, as
//! Spark, Hive and DataFusion write it, the column itself left out of the files), files of at
//! most `rows_per_file` rows, row groups of one shard block each, so that a rank skips the
//! others' blocks without reading them. Cells are written as they were read (delimited text
//! stays text; the reader parses it the same way from either).
//!
//! The directory appears only when complete: it is written under a temporary name beside the
//! destination and renamed at the end; a failure removes it.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{Array, RecordBatch};
use arrow_schema::{Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::error::{DataError, Location, Result};
use crate::shard::SHARD_BLOCK_ROWS;
use crate::table::TableReader;

/// Rows per file when the caller does not say: 16 shard blocks.
pub const DEFAULT_ROWS_PER_FILE: u64 = 16 * SHARD_BLOCK_ROWS;

/// What was written.
#[derive(Debug, Clone, PartialEq)]
pub struct WrittenDataset {
    pub rows: u64,
    pub files: usize,
    /// The partition values, in order (empty without a partition column).
    pub partitions: Vec<String>,
}

/// Writes the table at `source` as a Parquet directory `out` (which must not exist).
pub fn write_parquet_dataset(
    source: &Path,
    delimiter: Option<u8>,
    out: &Path,
    partition_by: Option<&str>,
    rows_per_file: u64,
    on_rows: &mut dyn FnMut(u64),
) -> Result<WrittenDataset> {
    if out.exists() {
        return Err(DataError::Malformed {
            location: Location::file(out),
            message: "exists already; remove it or write elsewhere".into(),
        });
    }
    let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| DataError::io(parent, e))?;
    let name = out.file_name().and_then(|n| n.to_str()).unwrap_or("dataset");
    let partial = crate::atomic::temp_dir_in(parent, &format!(".{name}.partial-"))
        .map_err(|e| DataError::io(parent, e))?;
    let written =
        write_into(source, delimiter, partial.path(), partition_by, rows_per_file, on_rows)?;
    let partial = partial.keep();
    std::fs::rename(&partial, out).map_err(|e| {
        let _ = std::fs::remove_dir_all(&partial);
        DataError::io(out, e)
    })?;
    Ok(written)
}

fn write_into(
    source: &Path,
    delimiter: Option<u8>,
    dir: &Path,
    partition_by: Option<&str>,
    rows_per_file: u64,
    on_rows: &mut dyn FnMut(u64),
) -> Result<WrittenDataset> {
    let reader = TableReader::open_with(source, delimiter, SHARD_BLOCK_ROWS as usize)?;
    let key_column = partition_by.map(|c| reader.require_column(c)).transpose()?;
    let mut files = PartitionFiles {
        dir: dir.to_owned(),
        key: partition_by.map(str::to_owned),
        rows_per_file: rows_per_file.max(1),
        open: BTreeMap::new(),
        written: 0,
    };
    let mut rows = 0u64;
    for chunk in reader {
        let chunk = chunk?;
        let batch = chunk.batch;
        match key_column {
            None => files.write(String::new(), &batch)?,
            Some(k) => {
                let keys = partition_values(&batch, k, source, chunk.first_line)?;
                let values = drop_column(&batch, k);
                // A run of rows with one value goes to its partition in one slice (a
                // time-ordered log holds long runs of one date).
                let mut start = 0;
                for end in 1..=keys.len() {
                    if end == keys.len() || keys[end] != keys[start] {
                        files.write(keys[start].clone(), &values.slice(start, end - start))?;
                        start = end;
                    }
                }
            }
        }
        rows += batch.num_rows() as u64;
        on_rows(rows);
    }
    let partitions =
        if key_column.is_some() { files.open.keys().cloned().collect() } else { vec![] };
    let written = files.finish()?;
    Ok(WrittenDataset { rows, files: written, partitions })
}

/// Each row's partition value as the folder name holds it; Hive's name for an empty one.
fn partition_values(
    batch: &RecordBatch,
    column: usize,
    source: &Path,
    first_line: u64,
) -> Result<Vec<String>> {
    let array = batch.column(column);
    let text = arrow_cast::cast(array, &arrow_schema::DataType::Utf8).map_err(|e| {
        DataError::Malformed { location: Location::file(source), message: e.to_string() }
    })?;
    let text = text.as_any().downcast_ref::<arrow_array::StringArray>().expect("cast to text");
    let name = batch.schema().field(column).name().clone();
    (0..text.len())
        .map(|r| {
            let value = if text.is_null(r) { "" } else { text.value(r) };
            if value.is_empty() {
                return Ok("__HIVE_DEFAULT_PARTITION__".to_owned());
            }
            if value.contains(['/', '\\', '=']) || value == "." || value == ".." {
                return Err(DataError::Malformed {
                    location: Location::cell(source, first_line + r as u64, &name),
                    message: format!("'{value}' cannot name a partition folder"),
                });
            }
            Ok(value.to_owned())
        })
        .collect()
}

fn drop_column(batch: &RecordBatch, column: usize) -> RecordBatch {
    let keep: Vec<usize> = (0..batch.num_columns()).filter(|&c| c != column).collect();
    batch.project(&keep).expect("projecting existing columns")
}

/// The file being written for each partition value.
struct PartitionFiles {
    dir: PathBuf,
    key: Option<String>,
    rows_per_file: u64,
    open: BTreeMap<String, OpenFile>,
    /// Files closed so far.
    written: usize,
}

struct OpenFile {
    writer: Option<ArrowWriter<File>>,
    path: PathBuf,
    rows: u64,
    /// Files this partition started so far.
    files: usize,
}

impl PartitionFiles {
    fn write(&mut self, value: String, batch: &RecordBatch) -> Result<()> {
        let folder = match &self.key {
            Some(key) => self.dir.join(format!("{key}={value}")),
            None => self.dir.clone(),
        };
        let file = self.open.entry(value).or_insert_with(|| OpenFile {
            writer: None,
            path: PathBuf::new(),
            rows: 0,
            files: 0,
        });
        let mut offset = 0;
        while offset < batch.num_rows() {
            if file.writer.is_none() {
                std::fs::create_dir_all(&folder).map_err(|e| DataError::io(&folder, e))?;
                file.path = folder.join(format!("part-{:05}.parquet", file.files));
                file.writer = Some(new_writer(&file.path, batch.schema())?);
                file.files += 1;
                file.rows = 0;
            }
            let room = (self.rows_per_file - file.rows) as usize;
            let n = room.min(batch.num_rows() - offset);
            let writer = file.writer.as_mut().expect("opened above");
            writer.write(&batch.slice(offset, n)).map_err(|e| write_error(&file.path, e))?;
            file.rows += n as u64;
            offset += n;
            if file.rows == self.rows_per_file {
                close(file)?;
                self.written += 1;
            }
        }
        Ok(())
    }

    fn finish(mut self) -> Result<usize> {
        for file in self.open.values_mut() {
            if file.writer.is_some() {
                close(file)?;
                self.written += 1;
            }
        }
        Ok(self.written)
    }
}

fn new_writer(path: &Path, schema: SchemaRef) -> Result<ArrowWriter<File>> {
    let file = File::create(path).map_err(|e| DataError::io(path, e))?;
    let properties = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(SHARD_BLOCK_ROWS as usize))
        .build();
    let schema = Arc::new(Schema::new(schema.fields().clone()));
    ArrowWriter::try_new(file, schema, Some(properties)).map_err(|e| write_error(path, e))
}

fn close(file: &mut OpenFile) -> Result<()> {
    let writer = file.writer.take().expect("an open file");
    writer.close().map_err(|e| write_error(&file.path, e))?;
    Ok(())
}

fn write_error(path: &Path, error: impl std::fmt::Display) -> DataError {
    DataError::Malformed {
        location: Location::file(path),
        message: format!("writing Parquet: {error}"),
    }
}
