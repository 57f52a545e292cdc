//! `seesaw train --config FILE --out DIR`: train one model and write a model directory
//! (weights, manifest with the resolved config, feature map and metrics, config.toml).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;

use burn::tensor::Device;
use seesaw_data::shard::Shard;
use seesaw_data::split::Part;
use seesaw_data::streamed_dataset::StreamedDataset;
use seesaw_data::training_data::{TrainingData, UntilError};
use seesaw_train::collective::Collective;
use seesaw_train::run_config::RunConfig;
use seesaw_train::run_data::{prepare_run_data, simulate_into_spec};
use seesaw_train::trained_model::{self, TrainedManifest, TrainingRecord};
use seesaw_train::trainer::NoObserver;
use seesaw_train::{TrainObserver, evaluate_on_ranks, train_on_ranks};

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
    /// Under mpirun: how long (seconds) a rank waits for the others in one gradient sum before
    /// it gives up and ends the job, naming itself and the step.
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    pub rank_timeout: u64,
}

pub fn run(args: TrainArgs) -> Result<()> {
    let config = RunConfig::from_toml_file(&args.config)?;
    let ranks = super::ranks::join(Duration::from_secs(args.rank_timeout))?;
    let manifest = if args.stream {
        train_streamed_to_dir(config, &args.out, args.resume, &*ranks)?
    } else {
        train_to_dir(config, &args.out, args.resume, &*ranks)?
    };
    // Rank 0 wrote the model and reports it; the other ranks' work ends with the training.
    let Some(manifest) = manifest else { return Ok(()) };
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

/// Prepares the run's data, trains (as one rank of `ranks`), evaluates on the held-out part and
/// writes the model directory `out`; shared by `seesaw train` and `seesaw bench serve`. Only
/// rank 0 writes and evaluates: the other ranks return `None`.
pub fn train_to_dir(
    mut config: RunConfig,
    out: &Path,
    resume: bool,
    ranks: &dyn Collective,
) -> Result<Option<TrainedManifest>> {
    let scratch = RankScratch::new(out, ranks)?;
    let spinner = progress::spinner("preparing the dataset");
    let run_data = prepare_run_data(&mut config, scratch.dir())?;
    spinner.finish_and_clear();
    train_on(config, &run_data.data, out, resume, ranks)
}

/// `train_to_dir` with the log read from disk every epoch (`--stream`).
pub fn train_streamed_to_dir(
    mut config: RunConfig,
    out: &Path,
    resume: bool,
    ranks: &dyn Collective,
) -> Result<Option<TrainedManifest>> {
    let scratch = RankScratch::new(out, ranks)?;
    // The simulator's files are written first; its platform is not kept.
    simulate_into_spec(&mut config, scratch.dir())?;
    let spinner = progress::spinner("fitting the feature map in one pass over the log");
    let data = fit_streamed(&config, ranks)?;
    spinner.finish_and_clear();
    if data.dropped.total() > 0 && ranks.is_root() {
        eprintln!(
            "read {} rows; dropped in cleaning: {:?}",
            data.rows_read,
            data.dropped.by_name()
        );
    }
    train_on(config, &data, out, resume, ranks)
}

/// The streamed log with its feature map: under several ranks, each reads only its shard of a
/// Parquet log, and the ranks merge what they fitted; delimited text cannot be read in shards,
/// so every rank reads all of it.
fn fit_streamed(config: &RunConfig, ranks: &dyn Collective) -> Result<StreamedDataset> {
    let (spec, shuffle_rows) = (&config.dataset, config.train.shuffle_rows);
    if ranks.size() == 1 {
        return Ok(StreamedDataset::fit(spec, shuffle_rows)?);
    }
    if !spec.log.path.as_deref().is_some_and(Shard::can_split) {
        if ranks.is_root() {
            eprintln!(
                "the log is delimited text, which cannot be read in shards: every rank reads \
                 all of it (write it as Parquet, a file or a directory, to shard it)"
            );
        }
        return Ok(StreamedDataset::fit(spec, shuffle_rows)?);
    }
    let shard = Shard::new(ranks.rank(), ranks.size());
    let gather = |mine: &[u8]| ranks.all_gather_bytes(mine);
    Ok(StreamedDataset::fit_shard(spec, shuffle_rows, shard, &gather)?)
}

/// Where a rank writes what it makes before training (the simulator's files): `out` for rank
/// 0, a private temporary folder for the others, which must not write into the model
/// directory (it may be shared, and the simulator is deterministic, so each makes its own).
struct RankScratch {
    out: PathBuf,
    private: Option<tempfile::TempDir>,
}

impl RankScratch {
    fn new(out: &Path, ranks: &dyn Collective) -> Result<Self> {
        let private = if ranks.is_root() {
            std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
            None
        } else {
            Some(tempfile::tempdir().context("creating the rank's scratch folder")?)
        };
        Ok(Self { out: out.to_path_buf(), private })
    }

    fn dir(&self) -> &Path {
        self.private.as_ref().map_or(&self.out, |d| d.path())
    }
}

/// Trains on prepared data, evaluates on the held-out part and writes the model directory
/// (rank 0; the other ranks train and return `None`).
fn train_on(
    config: RunConfig,
    data: &dyn TrainingData,
    out: &Path,
    resume: bool,
    ranks: &dyn Collective,
) -> Result<Option<TrainedManifest>> {
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
    if ranks.is_root() {
        let on_ranks = match (ranks.size(), data.shard().is_some()) {
            (1, _) => String::new(),
            (n, true) => format!(" on {n} ranks, each reading its shard,"),
            (n, false) => format!(" on {n} ranks"),
        };
        eprintln!(
            "training {}{on_ranks} on {} rows ({train_rows} train, {valid_rows} valid, \
             {test_rows} test), tasks {}",
            config.model.architecture.name(),
            train_rows + valid_rows + test_rows,
            tasks.join(", ")
        );
    }
    let mut progress = TrainProgress::new(tasks, true);
    let observer: &mut dyn TrainObserver =
        if ranks.is_root() { &mut progress } else { &mut NoObserver };
    // Every rank reads the checkpoint on resume; only rank 0 writes into `out`.
    let run_dir = (ranks.is_root() || resume).then_some(out);
    let outcome =
        train_on_ranks(&config.train, &config.model, data, run_dir, resume, observer, ranks)?;
    if let Some(traffic) = ranks.traffic().filter(|_| ranks.size() > 1) {
        eprintln!(
            "rank {}: {} gradient sums of {:.2} MB each, {:.2} s in them ({:.2} ms per sum)",
            ranks.rank(),
            traffic.sums,
            traffic.values as f64 * 4.0 / traffic.sums.max(1) as f64 / 1e6,
            traffic.seconds,
            traffic.seconds * 1e3 / traffic.sums.max(1) as f64
        );
    }
    // Every rank scores its rows of the held-out part (all of them, unless sharded).
    let part = data.evaluation_part();
    let mut batches = UntilError::new(data.batches(part, config.train.eval_batch_size, None));
    let device = Device::flex();
    let evaluation = evaluate_on_ranks(
        &outcome.model,
        &feature_map.tasks,
        batches.by_ref(),
        &device,
        data,
        ranks,
    )?;
    batches.finish()?;
    if !ranks.is_root() {
        return Ok(None);
    }
    let record = TrainingRecord {
        config,
        history: outcome.history,
        best_epoch: outcome.best_epoch,
        evaluation,
        evaluated_on: format!("{part:?}").to_lowercase(),
    };
    let manifest = trained_model::manifest(&outcome.model, feature_map.clone(), record);
    trained_model::save(out, &manifest, &outcome.model)?;
    Ok(Some(manifest))
}
