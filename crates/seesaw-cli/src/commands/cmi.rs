//! `seesaw cmi --model DIR --log FILE [--sampler kernel|variational] --json`: the conditional
//! mutual information between every pair of a trained model's tasks given its shared
//! representation h, in nats, with a bootstrap interval (see `seesaw_train::cmi_estimate`).

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};

use burn::tensor::Device;
use seesaw_data::streaming::StreamingBatches;
use seesaw_models::cmi::CmiSampler;
use seesaw_train::cmi_estimate::{CmiBound, CmiData, CmiSettings, cmi_matrix};

use super::dataset_args::write_json;
use super::scored_log::{ScoredLog, ScoredLogArgs, until_error};
use crate::progress;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SamplerArg {
    Kernel,
    Variational,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum BoundArg {
    LogRatio,
    Dv,
}

#[derive(Args, Debug)]
pub struct CmiArgs {
    #[command(flatten)]
    pub scored: ScoredLogArgs,
    /// Where the critic's negatives come from: neighbours in h, or the model's own towers.
    #[arg(long, value_enum, default_value = "kernel")]
    pub sampler: SamplerArg,
    /// How the critics' scores become the estimate: the difference of two Donsker–Varadhan
    /// bounds (default), or the mean log-ratio.
    #[arg(long, value_enum, default_value = "dv")]
    pub bound: BoundArg,
    /// At most this many rows of the log (a uniform sample) are used.
    #[arg(long, default_value_t = 20_000)]
    pub max_rows: usize,
    /// Bootstrap resamples for the 95% interval.
    #[arg(long, default_value_t = 200)]
    pub bootstrap: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: CmiArgs) -> Result<()> {
    let device = Device::flex();
    let ScoredLog { model, map, tables, .. } = args.scored.load(&device)?;
    if map.tasks.len() < 2 {
        anyhow::bail!("the model has {} task: the CMI needs two", map.tasks.len());
    }
    let log = &args.scored.log;
    let mut stream = StreamingBatches::open(&map, &tables, log, 8192)?;
    let settings = CmiSettings {
        sampler: match args.sampler {
            SamplerArg::Kernel => CmiSampler::Kernel,
            SamplerArg::Variational => CmiSampler::Variational,
        },
        bound: match args.bound {
            BoundArg::LogRatio => CmiBound::LogRatio,
            BoundArg::Dv => CmiBound::DonskerVaradhan,
        },
        bootstrap: args.bootstrap,
        max_rows: args.max_rows,
        seed: args.seed,
        ..CmiSettings::default()
    };
    let spinner = progress::spinner(format!("computing h over {}", log.display()));
    let mut failure = None;
    let batches = until_error(&mut stream, &mut failure);
    let data = CmiData::collect(&model, batches, settings.max_rows, settings.seed, &device);
    spinner.finish_and_clear();
    if let Some(e) = failure {
        return Err(e).context("reading the log");
    }
    let data = data?;
    if data.n == 0 {
        anyhow::bail!("{} has no scorable rows", log.display());
    }
    let pairs = data.tasks.len() * (data.tasks.len() - 1) / 2;
    let bar = progress::bar(pairs as u64, "training a critic per task pair");
    let matrix = cmi_matrix(&data, &settings, &mut |done, _| bar.set_position(done as u64));
    bar.finish_and_clear();
    if args.json {
        return write_json(&matrix);
    }
    println!(
        "I(a; b | h) in nats over {} rows, {} sampler, 95% bootstrap interval:",
        matrix.rows, matrix.sampler
    );
    for p in &matrix.pairs {
        println!("  {:<12} {:<12} {:>8.4}  [{:.4}, {:.4}]", p.a, p.b, p.cmi, p.low, p.high);
    }
    Ok(())
}
