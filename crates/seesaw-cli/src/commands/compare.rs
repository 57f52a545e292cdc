//! `seesaw compare [--config FILE] --out DIR`: train every chosen architecture over several seeds
//! on one dataset and one split, and write report.md, report.json and plots. Without --config
//! it runs configs/simulator.toml (built in), so it works on a fresh machine.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;

use seesaw_data::labels::SkipStrategy;
use seesaw_data::training_data::TrainingData;
use seesaw_train::compare::compare;
use seesaw_train::run_config::RunConfig;
use seesaw_train::run_data::{best_achievable_auc, prepare_run_data};
use seesaw_train::skip_study::skip_study;
use seesaw_train::{plots, report};

use super::training_progress::TrainProgress;
use crate::progress;

/// The default comparison: the simulator, every architecture, three seeds.
const SIMULATOR_CONFIG: &str = include_str!("../../../../configs/simulator.toml");

#[derive(Args, Debug)]
pub struct CompareArgs {
    /// A run config; default: the built-in simulator comparison (configs/simulator.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Where to write report.md, report.json and the plots.
    #[arg(long, default_value = "seesaw-compare")]
    pub out: PathBuf,
    /// Override the seeds: 0..N.
    #[arg(long)]
    pub seeds: Option<u64>,
    /// Override the number of epochs.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Print report.json to stdout instead of the tables.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: CompareArgs) -> Result<()> {
    let mut config = match &args.config {
        Some(path) => RunConfig::from_toml_file(path)?,
        None => RunConfig::from_toml_str(SIMULATOR_CONFIG, Path::new("configs/simulator.toml"))?,
    };
    if let Some(n) = args.seeds {
        config.compare.seeds = (0..n).collect();
    }
    if let Some(epochs) = args.epochs {
        config.train.epochs = epochs;
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let spinner = progress::spinner("preparing the dataset");
    let run_data = prepare_run_data(&mut config, &args.out)?;
    spinner.finish_and_clear();
    let data = &run_data.data;
    let skip_matches_truth = config.simulator.as_ref().is_some_and(|sim| {
        config.dataset.labels.skip == SkipStrategy::Fixed { threshold: sim.skip_ratio }
    });
    let best = best_achievable_auc(&run_data, data.evaluation_part(), skip_matches_truth);
    let tasks: Vec<String> = data.feature_map.tasks.iter().map(|t| t.name.clone()).collect();
    eprintln!(
        "comparing {} architectures × {} seeds on {} rows ({} train, {} valid, {} test), tasks {}",
        config.compare.architectures.len(),
        config.compare.seeds.len(),
        data.len(),
        data.split.train.len(),
        data.split.valid.len(),
        data.split.test.len(),
        tasks.join(", ")
    );
    if !config.compare.variants.is_empty() {
        let names: Vec<&str> = config.compare.variants.iter().map(|v| v.name.as_str()).collect();
        eprintln!("and each architecture with shared parameters again as: {}", names.join(", "));
    }
    let mut observer = TrainProgress::new(tasks, false);
    let mut comparison = compare(&config, data, best, &mut observer)?;
    if !config.compare.skip_strategies.is_empty() {
        eprintln!(
            "and single-task and the best multi-task architecture on skip again with each of {} \
             skip labels",
            config.compare.skip_strategies.len()
        );
        // The same files (the simulator's, once written) read again with another skip label.
        comparison.skip_study = skip_study(
            &config,
            &comparison,
            |run| Ok(seesaw_data::dataset::prepare(&run.dataset)?),
            &mut observer,
        )?;
    }
    report::write_json(&comparison, &args.out.join("report.json"))?;
    report::write_markdown(&comparison, &args.out.join("report.md"))?;
    plots::write_all(&comparison, &args.out)?;
    if args.json {
        return super::dataset_args::write_json(&comparison);
    }
    println!("{}", report::primary_table(&comparison));
    println!("{}", report::gains_table(&comparison));
    if let Some(cosines) = report::cosine_table(&comparison) {
        println!("gradient cosines between tasks after the last epoch:\n\n{cosines}");
    }
    if let Some(best) = comparison.best_architecture() {
        println!("best architecture on the mean primary metric: {best}");
    }
    println!(
        "wrote {}/report.md, report.json, and the plots {}, each as .svg and .png",
        args.out.display(),
        plots::names(&comparison).join(", ")
    );
    Ok(())
}
