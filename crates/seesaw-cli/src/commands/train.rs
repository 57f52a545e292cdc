//! `seesaw train --config FILE --out DIR`: train one model and write a model directory
//! (weights, manifest with the resolved config, feature map and metrics, config.toml).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;

use burn::tensor::Device;
use seesaw_train::compare::evaluation_part;
use seesaw_train::run_config::RunConfig;
use seesaw_train::run_data::prepare_run_data;
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
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: TrainArgs) -> Result<()> {
    let config = RunConfig::from_toml_file(&args.config)?;
    let manifest = train_to_dir(config, &args.out, args.resume)?;
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
    let data = &run_data.data;
    if let Some(fusion) = &config.fusion {
        // Refused now rather than after training, or when `seesaw serve` first loads the model.
        fusion
            .resolve_with(&data.feature_map.tasks, &config.model.architecture.extra_scores())
            .map_err(|m| anyhow::anyhow!("[fusion]: {m}"))?;
    }
    let tasks: Vec<String> = data.feature_map.tasks.iter().map(|t| t.name.clone()).collect();
    eprintln!(
        "training {} on {} rows ({} train, {} valid, {} test), tasks {}",
        config.model.architecture.name(),
        data.len(),
        data.split.train.len(),
        data.split.valid.len(),
        data.split.test.len(),
        tasks.join(", ")
    );
    let mut observer = TrainProgress::new(tasks, true);
    let outcome = train(&config.train, &config.model, data, Some(out), resume, &mut observer)?;
    let part = evaluation_part(data);
    let rows = data.split.part(part);
    let evaluation = evaluate(
        &outcome.model,
        &data.feature_map.tasks,
        rows.chunks(config.train.eval_batch_size).map(|r| data.batch(r)),
        &Device::flex(),
    )?;
    let record = TrainingRecord {
        config,
        history: outcome.history,
        best_epoch: outcome.best_epoch,
        evaluation,
        evaluated_on: format!("{part:?}").to_lowercase(),
    };
    let manifest = trained_model::manifest(&outcome.model, data.feature_map.clone(), record);
    trained_model::save(out, &manifest, &outcome.model)?;
    Ok(manifest)
}
