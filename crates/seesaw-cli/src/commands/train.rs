//! `seesaw train --config FILE --out DIR`: train one model and write a model directory
//! (weights, manifest with the resolved config, feature map and metrics, config.toml).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;

use burn::tensor::Device;
use seesaw_data::split::Part;
use seesaw_data::streamed_dataset::StreamedDataset;
use seesaw_data::training_data::{TrainingData, UntilError};
use seesaw_train::run_config::RunConfig;
use seesaw_train::run_data::{prepare_run_data, simulate_into_spec};
use seesaw_train::trained_model::{self, TrainedManifest, TrainingRecord};
use seesaw_train::{evaluate, train};

use super::training_progress::TrainProgress;
use crate::progress;

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// The run config (TOML: [dataset], [model], [train], optional [simulator]).
    #[arg(long)]
    pub config: PathBuf,
    /// The model directory to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Continue from the checkpoint in --out.
    #[arg(long)]
    pub resume: bool,
    /// Read the log from disk every epoch instead of holding it in memory: for logs larger
    /// than memory. One pass fits the feature map; training rows are shuffled within windows
    /// of [train] shuffle_rows. Refuses leave-last splits and minimum-interaction filters.
    #[arg(long)]
    pub stream: bool,
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: TrainArgs) -> Result<()> {
    let config = RunConfig::from_toml_file(&args.config)?;
    let manifest = if args.stream {
        train_streamed_to_dir(config, &args.out, args.resume)?
    } else {
        train_to_dir(config, &args.out, args.resume)?
    };
    let record = &manifest.training;
    if args.json {
        return super::dataset_args::write_json(&record.evaluation);
    }
    println!("wrote {} (best epoch {})", args.out.display(), record.best_epoch + 1);
    println!("{} metrics on the {} part:", manifest.architecture, record.evaluated_on);
    for (task, m) in &record.evaluation.tasks {
        match (m.auc, m.rmse) {
            (Some(auc), _) => println!(
                "  {task:<12} AUC {auc:.4}  GAUC {}  logloss {:.4}",
                m.gauc.map_or("–".into(), |g| format!("{g:.4}")),
                m.logloss.unwrap_or(f64::NAN)
            ),
            (None, Some(rmse)) => {
                println!("  {task:<12} RMSE {rmse:.4}  MSE {:.4}", m.mse.unwrap_or(f64::NAN))
            }
            _ => println!("  {task:<12} {}", undefined_metrics(m)),
        }
    }
    Ok(())
}

/// Why a task has no AUC (or RMSE) on the evaluated part.
fn undefined_metrics(m: &seesaw_train::TaskMetrics) -> String {
    match m.n {
        0 => "(no labelled rows)".into(),
        n if m.label_mean >= 1.0 => format!("AUC undefined: all {n} labelled rows are positive"),
        n if m.label_mean <= 0.0 => format!("AUC undefined: all {n} labelled rows are negative"),
        n => format!("(no metric over {n} labelled rows)"),
    }
}

/// Prepares the run's data, trains, evaluates on the held-out part and writes the model
/// directory `out`; shared by `seesaw train` and `seesaw bench serve`.
pub fn train_to_dir(mut config: RunConfig, out: &Path, resume: bool) -> Result<TrainedManifest> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let spinner = progress::spinner("preparing the dataset");
    let run_data = prepare_run_data(&mut config, out)?;
    spinner.finish_and_clear();
    train_on(config, &run_data.data, out, resume)
}

/// `train_to_dir` with the log read from disk every epoch (`--stream`).
pub fn train_streamed_to_dir(
    mut config: RunConfig,
    out: &Path,
    resume: bool,
) -> Result<TrainedManifest> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    // The simulator's files are written first; its platform is not kept.
    simulate_into_spec(&mut config, out)?;
    let spinner = progress::spinner("fitting the feature map in one pass over the log");
    let data = StreamedDataset::fit(&config.dataset, config.train.shuffle_rows)?;
    spinner.finish_and_clear();
    if data.dropped.total() > 0 {
        eprintln!(
            "read {} rows; dropped in cleaning: {:?}",
            data.rows_read,
            data.dropped.by_name()
        );
    }
    train_on(config, &data, out, resume)
}

/// Trains on prepared data, evaluates on the held-out part and writes the model directory.
fn train_on(
    config: RunConfig,
    data: &dyn TrainingData,
    out: &Path,
    resume: bool,
) -> Result<TrainedManifest> {
    let feature_map = data.feature_map();
    if let Some(fusion) = &config.fusion {
        // Refused now rather than after training, or when `seesaw serve` first loads the model.
        fusion
            .resolve_with(&feature_map.tasks, &config.model.architecture.extra_scores())
            .map_err(|m| anyhow::anyhow!("[fusion]: {m}"))?;
    }
    let tasks: Vec<String> = feature_map.tasks.iter().map(|t| t.name.clone()).collect();
    let [train_rows, valid_rows, test_rows] =
        [Part::Train, Part::Valid, Part::Test].map(|p| data.part_len(p));
    eprintln!(
        "training {} on {} rows ({train_rows} train, {valid_rows} valid, {test_rows} test), \
         tasks {}",
        config.model.architecture.name(),
        train_rows + valid_rows + test_rows,
        tasks.join(", ")
    );
    let mut observer = TrainProgress::new(tasks, true);
    let outcome = train(&config.train, &config.model, data, Some(out), resume, &mut observer)?;
    let part = data.evaluation_part();
    let mut batches = UntilError::new(data.batches(part, config.train.eval_batch_size, None));
    let evaluation =
        evaluate(&outcome.model, &feature_map.tasks, batches.by_ref(), &Device::flex())?;
    batches.finish()?;
    let record = TrainingRecord {
        config,
        history: outcome.history,
        best_epoch: outcome.best_epoch,
        evaluation,
        evaluated_on: format!("{part:?}").to_lowercase(),
    };
    let manifest = trained_model::manifest(&outcome.model, feature_map.clone(), record);
    trained_model::save(out, &manifest, &outcome.model)?;
    Ok(manifest)
}
