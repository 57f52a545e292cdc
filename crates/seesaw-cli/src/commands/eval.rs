//! `seesaw eval --model DIR --log FILE [--users FILE] [--videos FILE] --json`: score a log with a
//! trained model, encoding it through the model's saved feature map. Users and videos never
//! seen in training take the out-of-vocabulary path; no row is dropped for being new.
//!
//! `--predictions FILE` also writes the per-row scores as CSV, `row,user_id,video_id,<task>..` in
//! the model's task order, then the model's extra scores (DLEN's `emotion`) by name, one line per
//! scored row in log order (rows dropped by cleaning are absent): probabilities for binary tasks,
//! values for regression tasks, each f32 printed in its shortest form that parses back to the
//! same bits, so other scorers can be checked against it exactly.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use serde::Serialize;

use burn::tensor::Device;
use seesaw_data::feature_map::TaskInfo;
use seesaw_data::streaming::StreamingBatches;
use seesaw_train::emotion::{Demotion, EmotionMetrics, demotion, emotion_metrics};
use seesaw_train::evaluate::{Predictions, TaskMetrics, metrics, predict};

use super::dataset_args::write_json;
use super::scored_log::{ScoredLog, ScoredLogArgs, until_error};
use crate::progress;

#[derive(Args, Debug)]
pub struct EvalArgs {
    #[command(flatten)]
    pub scored: ScoredLogArgs,
    #[arg(long, default_value_t = 8192)]
    pub batch_size: usize,
    #[arg(long)]
    pub json: bool,
    /// Also write one CSV line per scored row: row,user_id,video_id, then each task's score.
    #[arg(long, value_name = "FILE")]
    pub predictions: Option<PathBuf>,
}

#[derive(Serialize)]
struct EvalReport {
    /// Rows scored.
    rows: usize,
    /// Rows read from the log, and those dropped by cleaning (reason → count), so that nothing
    /// disappears without a word.
    rows_read: u64,
    dropped: std::collections::BTreeMap<&'static str, u64>,
    tasks: std::collections::BTreeMap<String, TaskMetrics>,
    /// A model with a latent emotion score (DLEN): its AUCs.
    #[serde(skip_serializing_if = "Option::is_none")]
    emotion: Option<EmotionMetrics>,
    /// A model with a `hate` task: what the top of its ranking holds (with and without the
    /// emotion score in the fusion, when it has one).
    #[serde(skip_serializing_if = "Option::is_none")]
    demotion: Option<Demotion>,
}

pub fn run(args: EvalArgs) -> Result<()> {
    let device = Device::flex();
    let ScoredLog { manifest, model, map, tables } = args.scored.load(&device)?;
    let log = &args.scored.log;
    let mut stream = StreamingBatches::open(&map, &tables, log, args.batch_size)?;
    if args.predictions.is_some() {
        stream.keep_row_keys();
    }
    let spinner = progress::spinner(format!("scoring {}", log.display()));
    let mut failure = None;
    let batches = until_error(&mut stream, &mut failure);
    let predictions = predict(&model, &map.tasks, batches, &device);
    spinner.finish_and_clear();
    if let Some(e) = failure {
        return Err(e).context("reading the log");
    }
    let dropped = stream.dropped().by_name();
    if predictions.rows.is_empty() {
        anyhow::bail!(
            "{}: no row left to score: {} read, all dropped by cleaning ({})",
            log.display(),
            stream.rows_read(),
            describe_drops(&dropped)
        );
    }
    if !dropped.is_empty() {
        eprintln!(
            "seesaw eval: {} of {} rows dropped by cleaning ({})",
            stream.dropped().total(),
            stream.rows_read(),
            describe_drops(&dropped)
        );
    }
    let evaluation = metrics(&map.tasks, &predictions)?;
    if let Some(path) = &args.predictions {
        write_predictions(path, &map.tasks, &predictions, stream.row_keys())
            .context("writing the predictions")?;
    }
    let extras = &model.extra_scores;
    let report = EvalReport {
        rows: evaluation.rows,
        rows_read: stream.rows_read(),
        dropped,
        tasks: evaluation.tasks,
        emotion: emotion_metrics(&map.tasks, extras, &predictions)?,
        demotion: demotion(&map.tasks, extras, manifest.fusion.as_ref(), &predictions)?,
    };
    if args.json {
        return write_json(&report);
    }
    println!("{} rows scored of {} read", report.rows, report.rows_read);
    for (task, m) in &report.tasks {
        println!("  {task:<12} {}", serde_json::to_string(m)?);
    }
    if let Some(emotion) = &report.emotion {
        println!("  emotion      {}", serde_json::to_string(emotion)?);
    }
    if let Some(demotion) = &report.demotion {
        println!("  demotion     {}", serde_json::to_string(demotion)?);
    }
    if let Some(path) = &args.predictions {
        println!("predictions written to {}", path.display());
    }
    Ok(())
}

/// `"invalid_value: 3000, duplicate_impression: 2"`, or "none".
fn describe_drops(dropped: &std::collections::BTreeMap<&'static str, u64>) -> String {
    if dropped.is_empty() {
        return "none".into();
    }
    dropped.iter().map(|(reason, n)| format!("{reason}: {n}")).collect::<Vec<_>>().join(", ")
}

/// Writes the per-row predictions in log order. Batches may come back in any order, so lines are
/// placed by each row's running number, which also indexes `keys`.
fn write_predictions(
    path: &Path,
    tasks: &[TaskInfo],
    predictions: &Predictions,
    keys: &[(String, String)],
) -> Result<()> {
    let mut order: Vec<usize> = (0..predictions.rows.len()).collect();
    order.sort_unstable_by_key(|&i| predictions.rows[i]);
    if let Some(&i) = order.iter().find(|&&i| predictions.rows[i] as usize >= keys.len()) {
        anyhow::bail!(
            "row {} was scored but only {} row keys were kept",
            predictions.rows[i],
            keys.len()
        );
    }
    seesaw_data::atomic::write_with(path, |file| {
        let mut out = csv::Writer::from_writer(std::io::BufWriter::new(file));
        let header = ["row", "user_id", "video_id"].into_iter().map(String::from);
        let extras = predictions.extras.iter().map(|(name, _)| name.clone());
        out.write_record(header.chain(tasks.iter().map(|t| t.name.clone())).chain(extras))?;
        let mut record = Vec::with_capacity(3 + tasks.len() + predictions.extras.len());
        for &i in &order {
            let row = predictions.rows[i];
            let (user, video) = &keys[row as usize];
            record.clear();
            record.extend([row.to_string(), user.clone(), video.clone()]);
            // Display prints the shortest decimal that reads back as the same f32.
            record.extend(predictions.predictions.iter().map(|scores| scores[i].to_string()));
            record.extend(predictions.extras.iter().map(|(_, scores)| scores[i].to_string()));
            out.write_record(&record)?;
        }
        out.flush()
    })?;
    Ok(())
}
