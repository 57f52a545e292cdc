//! `seesaw eval --model DIR --log FILE [--users FILE] [--videos FILE] --json`: score a log with a
//! trained model, encoding it through the model's saved feature map. Users and videos never
//! seen in training take the out-of-vocabulary path; no row is dropped for being new.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use serde::Serialize;

use burn::tensor::Device;
use seesaw_data::streaming::{EncodedSideTables, StreamingBatches};
use seesaw_train::evaluate::{TaskMetrics, metrics, predict};
use seesaw_train::model_dir;

use super::dataset_args::write_json;
use crate::progress;

#[derive(Args, Debug)]
pub struct EvalArgs {
    #[arg(long)]
    pub model: PathBuf,
    #[arg(long)]
    pub log: PathBuf,
    /// User attributes; default: the table recorded in the model's manifest.
    #[arg(long)]
    pub users: Option<PathBuf>,
    /// Video attributes; default: the table recorded in the model's manifest.
    #[arg(long)]
    pub videos: Option<PathBuf>,
    #[arg(long, default_value_t = 8192)]
    pub batch_size: usize,
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct EvalReport {
    rows: usize,
    tasks: std::collections::BTreeMap<String, TaskMetrics>,
}

pub fn run(args: EvalArgs) -> Result<()> {
    let device = Device::flex();
    let (manifest, model) = model_dir::load(&args.model, &device)
        .with_context(|| format!("loading the model in {}", args.model.display()))?;
    let mut map = manifest.feature_map;
    if let (Some(path), Some(users)) = (&args.users, map.spec.users.as_mut()) {
        users.path = Some(path.clone());
    }
    if let (Some(path), Some(videos)) = (&args.videos, map.spec.videos.as_mut()) {
        videos.path = Some(path.clone());
    }
    let tables = EncodedSideTables::load(&map).context("loading the side tables")?;
    let mut stream = StreamingBatches::open(&map, &tables, &args.log, args.batch_size)?;
    let spinner = progress::spinner(format!("scoring {}", args.log.display()));
    let mut failure = None;
    let batches = std::iter::from_fn(|| match stream.next()? {
        Ok(batch) => Some(batch),
        Err(e) => {
            failure = Some(e);
            None
        }
    });
    let predictions = predict(&model, &map.tasks, batches, &device);
    spinner.finish_and_clear();
    if let Some(e) = failure {
        return Err(e).context("reading the log");
    }
    let evaluation = metrics(&map.tasks, &predictions)?;
    let report = EvalReport { rows: evaluation.rows, tasks: evaluation.tasks };
    if args.json {
        return write_json(&report);
    }
    println!("{} rows scored", report.rows);
    for (task, m) in &report.tasks {
        println!("  {task:<12} {}", serde_json::to_string(m)?);
    }
    Ok(())
}
