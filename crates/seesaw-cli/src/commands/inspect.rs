//! `seesaw data inspect`: what a dataset holds once read, cleaned, joined, filtered and split.
//! Inspecting needs no split: when the configured one leaves no training rows (a sample of one
//! day's log under the default temporal split), every row is kept as training, the vocabulary is
//! fitted on all of them, and the report says so (`split_note`).
//!
//! `--json` prints one object whose keys rows_read, rows_kept, dropped, users, videos and
//! label_rates are a contract that scripts rely on; further keys may be added, never renamed.

use anyhow::{Context, Result};
use clap::Args;
use seesaw_data::DataError;
use seesaw_data::dataset::{PrepareReport, prepare};
use seesaw_data::spec::SplitSpec;

use super::dataset_args::{DatasetArgs, write_json};
use crate::progress;

#[derive(Args, Debug)]
pub struct InspectArgs {
    #[command(flatten)]
    pub dataset: DatasetArgs,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: InspectArgs) -> Result<()> {
    let spec = args.dataset.resolve()?;
    let spinner = progress::spinner(format!(
        "reading {}",
        spec.log.path.as_ref().expect("resolved").display()
    ));
    let data = match prepare(&spec) {
        Err(DataError::NoTrainingRows { message, .. }) => {
            let mut whole = spec.clone();
            whole.split = SplitSpec::Random { seed: 0, valid_fraction: 0.0, test_fraction: 0.0 };
            let mut data = prepare(&whole).context("preparing the dataset")?;
            data.report.split_note =
                Some(format!("{message}. Inspected with every row as training instead."));
            data
        }
        prepared => prepared.context("preparing the dataset")?,
    };
    spinner.finish_and_clear();
    if args.json {
        write_json(&data.report)
    } else {
        print_report(&data.report);
        Ok(())
    }
}

pub fn print_report(r: &PrepareReport) {
    println!("log            {}", r.log.display());
    println!("rows read      {}", r.rows_read);
    println!(
        "rows kept      {} ({:.2}%)",
        r.rows_kept,
        100.0 * r.rows_kept as f64 / r.rows_read.max(1) as f64
    );
    for (reason, n) in &r.dropped {
        println!("  dropped      {n:>9}  {reason}");
    }
    println!(
        "users          {} read, {} kept, {} without attributes",
        r.users, r.users_kept, r.users_without_features
    );
    println!(
        "videos         {} read, {} kept, {} without attributes",
        r.videos, r.videos_kept, r.videos_without_features
    );
    for (table, stats) in &r.side_tables {
        println!(
            "  {table:<12} {} rows, {} duplicate keys, {} without key, {} unreadable cells",
            stats.rows_read, stats.duplicate_keys, stats.rows_without_key, stats.invalid_cells
        );
    }
    println!(
        "split          train {}, valid {}, test {}",
        r.split["train"], r.split["valid"], r.split["test"]
    );
    if let Some(note) = &r.split_note {
        println!("  note         {note}");
    }
    println!("label          kept rows   all rows read");
    for (task, rate) in &r.label_rates {
        let read = r.label_rates_read.get(task).map_or(String::new(), |v| format!("{v:.4}"));
        println!("  {task:<12} {rate:<11.4} {read}");
    }
    for (task, mean) in &r.label_means {
        println!("  {task:<12} mean {mean:.4}");
    }
    println!("vocabulary     (indices, out-of-vocabulary included)");
    for (feature, n) in &r.vocabulary {
        println!("  {feature:<24} {n}");
    }
}
