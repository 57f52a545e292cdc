//! `seesaw simulate`: a short-video platform with known ground truth, written in the KuaiRand
//! layout so the `kuairand` preset reads it, then read back and summarised. With
//! `--mmoe-synthetic`, the MMoE paper's pair of regression tasks instead.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use serde::Serialize;

use seesaw_data::dataset::prepare;
use seesaw_data::presets::preset;
use seesaw_sim::{
    MmoeSyntheticConfig, Platform, SimConfig, SimFiles, mmoe_synthetic,
    write_kuairand_with_progress,
};

use super::dataset_args::write_json;
use super::inspect::print_report;
use crate::progress;

#[derive(Args, Debug)]
pub struct SimulateArgs {
    /// Simulator settings (TOML or JSON with SimConfig's fields); flags below override them.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Output directory (created if needed).
    #[arg(long, default_value = "seesaw-sim")]
    pub out: PathBuf,
    #[arg(long)]
    pub seed: Option<u64>,
    #[arg(long)]
    pub users: Option<u32>,
    #[arg(long)]
    pub videos: Option<u32>,
    #[arg(long)]
    pub impressions: Option<u64>,
    /// Dependence between behaviours beyond the latent state, in [0, 1).
    #[arg(long)]
    pub dependence: Option<f64>,
    /// Clips per video (N_c).
    #[arg(long)]
    pub clips: Option<u32>,
    /// Write the MMoE paper's synthetic regression pair instead (x0..x{d-1}, y1, y2).
    #[arg(long)]
    pub mmoe_synthetic: bool,
    /// MMoE synthetic: the correlation between the two tasks.
    #[arg(long, default_value_t = 0.5)]
    pub correlation: f64,
    /// MMoE synthetic: number of samples.
    #[arg(long, default_value_t = 10_000)]
    pub samples: usize,
    /// Print a JSON summary instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Summary {
    files: SimFilesJson,
    /// AUC of the true probabilities against the sampled labels: the best any model can reach.
    best_achievable_auc: std::collections::BTreeMap<&'static str, f64>,
    inspect: seesaw_data::dataset::PrepareReport,
}

#[derive(Serialize)]
struct SimFilesJson {
    log: PathBuf,
    users: PathBuf,
    videos: PathBuf,
    clips: PathBuf,
    truth: PathBuf,
    config: PathBuf,
}

pub fn run(args: SimulateArgs) -> Result<()> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    if args.mmoe_synthetic {
        let config = MmoeSyntheticConfig {
            correlation: args.correlation,
            n_samples: args.samples,
            seed: args.seed.unwrap_or(0),
            ..Default::default()
        };
        let data = mmoe_synthetic::generate(&config)?;
        let path = args.out.join("mmoe_synthetic.csv");
        mmoe_synthetic::write_csv(&data, &path)?;
        println!(
            "wrote {} ({} samples, task correlation {})",
            path.display(),
            args.samples,
            args.correlation
        );
        return Ok(());
    }
    let config = resolve_config(&args)?;
    let platform = Platform::new(&config)?;
    let bar = progress::bar(config.n_impressions, "simulating");
    let files = write_kuairand_with_progress(&platform, &args.out, |rows| bar.set_position(rows))?;
    bar.finish_and_clear();

    let best_achievable_auc = truth_aucs(&platform)?;
    let spinner = progress::spinner("reading the simulated log back with the kuairand preset");
    let data = prepare(&kuairand_spec_for(&files, config.n_clips as usize)?)
        .context("reading the simulated platform")?;
    spinner.finish_and_clear();
    let summary = Summary {
        files: SimFilesJson {
            log: files.log.clone(),
            users: files.user_features.clone(),
            videos: files.video_features.clone(),
            clips: files.clip_features.clone(),
            truth: files.truth.clone(),
            config: files.config.clone(),
        },
        best_achievable_auc,
        inspect: data.report,
    };
    if args.json {
        return write_json(&summary);
    }
    println!("wrote {} impressions to {}", config.n_impressions, args.out.display());
    for path in [
        &files.log,
        &files.user_features,
        &files.video_features,
        &files.clip_features,
        &files.truth,
        &files.config,
    ] {
        println!("  {}", path.display());
    }
    println!("best achievable AUC (true probabilities vs sampled labels):");
    for (task, auc) in &summary.best_achievable_auc {
        println!("  {task:<12} {auc:.4}");
    }
    println!();
    print_report(&summary.inspect);
    Ok(())
}

fn resolve_config(args: &SimulateArgs) -> Result<SimConfig> {
    let mut config = match &args.config {
        Some(path) => read_config(path)?,
        None => SimConfig::default(),
    };
    if let Some(v) = args.seed {
        config.seed = v;
    }
    if let Some(v) = args.users {
        config.n_users = v;
    }
    if let Some(v) = args.videos {
        config.n_videos = v;
    }
    if let Some(v) = args.impressions {
        config.n_impressions = v;
    }
    if let Some(v) = args.dependence {
        config.dependence = v;
    }
    if let Some(v) = args.clips {
        config.n_clips = v;
    }
    config.validate()?;
    Ok(config)
}

fn read_config(path: &Path) -> Result<SimConfig> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(&text).with_context(|| format!("{}", path.display()))
    } else {
        toml::from_str(&text).with_context(|| format!("{}", path.display()))
    }
}

/// The kuairand preset pointed at a simulator's files.
pub fn kuairand_spec_for(
    files: &SimFiles,
    n_clips: usize,
) -> Result<seesaw_data::spec::DatasetSpec> {
    let mut spec = preset("kuairand")?;
    spec.log.path = Some(files.log.clone());
    spec.users.as_mut().expect("kuairand has users").path = Some(files.user_features.clone());
    spec.videos.as_mut().expect("kuairand has videos").path = Some(files.video_features.clone());
    spec.clips.as_mut().expect("kuairand has clips").path = Some(files.clip_features.clone());
    spec.labels.clips = Some(n_clips);
    Ok(spec)
}

/// AUC of each label's true probability, over every impression.
fn truth_aucs(platform: &Platform) -> Result<std::collections::BTreeMap<&'static str, f64>> {
    let n = platform.config().n_impressions as usize;
    let names = ["click", "like", "follow", "comment", "forward", "hate", "long_view", "skip"];
    let mut scores: Vec<Vec<f32>> = vec![Vec::with_capacity(n); names.len()];
    let mut labels: Vec<Vec<bool>> = vec![Vec::with_capacity(n); names.len()];
    let skip_ratio = platform.config().skip_ratio;
    for i in platform.impressions() {
        let t = i.truth;
        let pairs = [
            (t.click, i.click),
            (t.like, i.like),
            (t.follow, i.follow),
            (t.comment, i.comment),
            (t.forward, i.forward),
            (t.hate, i.hate),
            (t.long_view, i.long_view),
            (t.skip, i.watch_ratio() < skip_ratio),
        ];
        for (k, (p, y)) in pairs.into_iter().enumerate() {
            scores[k].push(p);
            labels[k].push(y);
        }
    }
    let mut out = std::collections::BTreeMap::new();
    for (k, name) in names.into_iter().enumerate() {
        if let Some(auc) = seesaw_metrics::auc(&scores[k], &labels[k])? {
            out.insert(name, auc);
        }
    }
    Ok(out)
}
