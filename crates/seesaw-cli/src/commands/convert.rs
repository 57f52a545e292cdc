//! `seesaw data convert --log FILE --out DIR`: a log (CSV, TSV, gzip, Parquet) rewritten as a
//! partitioned Parquet directory, the form that `seesaw train --stream` under mpirun reads in
//! shards, one rank per share of the rows.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use seesaw_data::parquet_dataset::{DEFAULT_ROWS_PER_FILE, write_parquet_dataset};

use crate::progress;

#[derive(Args, Debug)]
pub struct ConvertArgs {
    /// The table to convert (its format from its name, as `[dataset.log]` reads it).
    #[arg(long)]
    pub log: PathBuf,
    /// The Parquet directory to write; it must not exist, and appears only when complete.
    #[arg(long)]
    pub out: PathBuf,
    /// One folder per value of this column (`date=20220408/`), the column left out of the
    /// files; point `[dataset.log] path` at the directory and the column reads back the same.
    #[arg(long, value_name = "COLUMN")]
    pub partition_by: Option<String>,
    /// At most this many rows per file.
    #[arg(long, default_value_t = DEFAULT_ROWS_PER_FILE)]
    pub rows_per_file: u64,
    /// Field delimiter of delimited text, when the file name does not imply it.
    #[arg(long)]
    pub delimiter: Option<char>,
}

pub fn run(args: ConvertArgs) -> Result<()> {
    let delimiter = args
        .delimiter
        .map(|c| u8::try_from(c).map_err(|_| anyhow::anyhow!("--delimiter must be one byte")))
        .transpose()?;
    let spinner = progress::spinner(format!("converting {}", args.log.display()));
    let written = write_parquet_dataset(
        &args.log,
        delimiter,
        &args.out,
        args.partition_by.as_deref(),
        args.rows_per_file,
        &mut |rows| spinner.set_message(format!("converting {}: {rows} rows", args.log.display())),
    )?;
    spinner.finish_and_clear();
    let partitions = match written.partitions.len() {
        0 => String::new(),
        n => format!(
            " in {n} partitions ({} .. {})",
            written.partitions[0],
            written.partitions[n - 1]
        ),
    };
    println!(
        "wrote {}: {} rows, {} files{partitions}",
        args.out.display(),
        written.rows,
        written.files
    );
    Ok(())
}
