//! `seesaw bench train`: training and inference speed of the reference MMoE, measured.
//! - the model: three id embeddings of size 16 (vocabularies 30,000, 10,000 and 50) and 10
//!   dense features, 4 experts of [128, 64], one gate and one tower of [32] per task, one binary
//!   and one regression task;
//! - training samples/s at batch 512 and 4096: one `seesaw_train::trainer::train_step` (forward,
//!   the model's loss terms read back to the host to be logged, backward and an Adam step), the
//!   trainer's own step (target >= 40,000 samples/s at 4096);
//! - inference samples/s at batch 1024: the model in inference mode on `Device::flex()`, the
//!   batch scored in two halves side by side as `seesaw evaluate` does (`row_halves.rs`),
//!   forward and predictions read back to host memory (target >= 200,000 samples/s);
//! - peak resident memory of the process (VmHWM).
//!
//! Batches are random but seeded, prepared before timing, so only the model's work is timed
//! (plus turning the batch into tensors, which the trainer also does every step).

use std::time::Instant;

use anyhow::Result;
use burn::module::Module;
use burn::tensor::Device;
use clap::Args;
use serde::Serialize;

use seesaw_data::batch::Batch;
use seesaw_data::feature_map::{
    CategoricalSlot, DenseSlot, FeatureSchema, FeatureSource, TaskInfo, TaskKind,
};
use seesaw_models::cmi::{CmiConfig, CmiUse};
use seesaw_models::models::MmoeConfig;
use seesaw_models::row_halves::{join_rows, score_in_halves};
use seesaw_models::{
    Architecture, ModelConfig, ModelContext, ModelInput, MultiTaskModel, RegressionHead, to_vec,
};
use seesaw_train::config::{EmbeddingUpdates, TrainConfig};
use seesaw_train::trainer::{Trainable, build_optimizer, train_step};
use seesaw_train::weighting::TaskWeighting;

use super::dataset_args::write_json;
use crate::progress;

const TRAIN_BATCHES: [usize; 2] = [512, 4096];
const INFERENCE_BATCH: usize = 1024;
const TRAIN_TARGET: f64 = 40_000.0;
const INFERENCE_TARGET: f64 = 200_000.0;
const VOCABULARIES: [(&str, usize); 3] =
    [("user_id", 30_000), ("video_id", 10_000), ("video_category", 50)];
const N_DENSE: usize = 10;
/// Distinct batches cycled through, so no step sees the same batch as the one before.
const DISTINCT_BATCHES: usize = 4;

#[derive(Args, Debug, Clone, Copy)]
pub struct BenchTrainArgs {
    /// Timed steps per measurement (the median step time is reported).
    #[arg(long, default_value_t = 20)]
    pub steps: usize,
    /// Untimed warm-up steps before each measurement.
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// Seeds the parameters and the random batches.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Train with `[model.cmi]` in this use (its defaults otherwise), to time the CMI term
    /// against the plain model.
    #[arg(long, value_enum)]
    pub cmi: Option<CmiUseArg>,
    /// How the optimiser steps the embedding tables (`[train] embedding_updates`).
    #[arg(long, value_enum, default_value_t = EmbeddingUpdatesArg::Dense)]
    pub embedding_updates: EmbeddingUpdatesArg,
    /// Time only this part (for profiling one of them); both by default.
    #[arg(long, value_enum)]
    pub only: Option<BenchPart>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchPart {
    Training,
    Inference,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum EmbeddingUpdatesArg {
    Dense,
    Lazy,
}

impl From<EmbeddingUpdatesArg> for EmbeddingUpdates {
    fn from(arg: EmbeddingUpdatesArg) -> Self {
        match arg {
            EmbeddingUpdatesArg::Dense => EmbeddingUpdates::Dense,
            EmbeddingUpdatesArg::Lazy => EmbeddingUpdates::Lazy,
        }
    }
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum CmiUseArg {
    JointHead,
    Adversarial,
}

#[derive(Serialize)]
struct Timing {
    batch_size: usize,
    steps: usize,
    median_step_seconds: f64,
    min_step_seconds: f64,
    samples_per_second: f64,
    target_samples_per_second: Option<f64>,
}

#[derive(Serialize)]
struct Report {
    model: &'static str,
    /// `[model.cmi]`, when timed with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    cmi: Option<CmiConfig>,
    num_params: usize,
    /// `dense` or `lazy`: how the optimiser stepped the embedding tables.
    embedding_updates: EmbeddingUpdates,
    threads_available: usize,
    training: Vec<Timing>,
    /// Absent with `--only training`.
    #[serde(skip_serializing_if = "Option::is_none")]
    inference: Option<Timing>,
    peak_rss_bytes: u64,
}

pub fn run(args: BenchTrainArgs) -> Result<()> {
    let steps = args.steps.max(1);
    let (schema, tasks, mut config) = reference_mmoe();
    config.cmi = args.cmi.map(|use_| CmiConfig {
        use_: match use_ {
            CmiUseArg::JointHead => CmiUse::JointHead,
            CmiUseArg::Adversarial => CmiUse::Adversarial,
        },
        ..CmiConfig::default()
    });
    let num_params = {
        let device = Device::flex();
        MultiTaskModel::new(
            &config,
            &ModelContext::new(&config, schema.clone(), tasks.clone()),
            &device,
        )?
        .num_params()
    };
    let mut training = Vec::new();
    let train_batches: &[usize] =
        if args.only == Some(BenchPart::Inference) { &[] } else { &TRAIN_BATCHES };
    for &batch_size in train_batches {
        let batches = random_batches(batch_size, tasks.len(), args.seed);
        let spinner = progress::spinner(format!("training at batch {batch_size}"));
        let seconds = time_training(&config, &schema, &tasks, &batches, args, steps)?;
        spinner.finish_and_clear();
        training.push(timing(batch_size, seconds, (batch_size == 4096).then_some(TRAIN_TARGET)));
    }
    let inference = if args.only == Some(BenchPart::Training) {
        None
    } else {
        let batches = random_batches(INFERENCE_BATCH, tasks.len(), args.seed.wrapping_add(1));
        let spinner = progress::spinner(format!("inference at batch {INFERENCE_BATCH}"));
        let seconds = time_inference(&config, &schema, &tasks, &batches, args, steps)?;
        spinner.finish_and_clear();
        Some(timing(INFERENCE_BATCH, seconds, Some(INFERENCE_TARGET)))
    };
    let report = Report {
        model: "mmoe: ids 30000/10000/50 x 16 + 10 dense, 4 experts [128, 64], towers [32], \
                click (binary) + watch_ratio (regression)",
        cmi: config.cmi.clone(),
        num_params,
        embedding_updates: args.embedding_updates.into(),
        threads_available: std::thread::available_parallelism().map_or(1, |n| n.get()),
        training,
        inference,
        peak_rss_bytes: super::bench_data::peak_rss_bytes()?,
    };
    if args.json {
        return write_json(&report);
    }
    println!(
        "{} ({} parameters, embedding updates {:?}; {} threads available)",
        report.model, report.num_params, report.embedding_updates, report.threads_available
    );
    for t in &report.training {
        print_timing("training", t);
    }
    if let Some(t) = &report.inference {
        print_timing("inference", t);
    }
    println!("peak RSS: {:.0} MiB", report.peak_rss_bytes as f64 / (1 << 20) as f64);
    Ok(())
}

fn print_timing(what: &str, t: &Timing) {
    println!(
        "{what}, batch {:>4}: {:>9.0} samples/s (median step {:.2} ms, min {:.2} ms, {} steps){}",
        t.batch_size,
        t.samples_per_second,
        t.median_step_seconds * 1e3,
        t.min_step_seconds * 1e3,
        t.steps,
        target_note(t)
    );
}

fn target_note(t: &Timing) -> String {
    match t.target_samples_per_second {
        Some(target) => {
            let verdict = if t.samples_per_second >= target { "met" } else { "NOT met" };
            format!("  [target >= {target:.0}: {verdict}]")
        }
        None => String::new(),
    }
}

fn timing(batch_size: usize, mut seconds: Vec<f64>, target: Option<f64>) -> Timing {
    seconds.sort_by(f64::total_cmp);
    let median = seconds[seconds.len() / 2];
    Timing {
        batch_size,
        steps: seconds.len(),
        median_step_seconds: median,
        min_step_seconds: seconds[0],
        samples_per_second: batch_size as f64 / median,
        target_samples_per_second: target,
    }
}

/// The reference model: its feature schema, tasks and config.
fn reference_mmoe() -> (FeatureSchema, Vec<TaskInfo>, ModelConfig) {
    let source = |name: &str| match name {
        "user_id" => FeatureSource::User,
        _ => FeatureSource::Video,
    };
    let schema = FeatureSchema {
        categorical: VOCABULARIES
            .iter()
            .map(|&(name, cardinality)| CategoricalSlot {
                name: name.into(),
                cardinality,
                source: source(name),
            })
            .collect(),
        dense: (0..N_DENSE)
            .map(|i| DenseSlot { name: format!("dense_{i}"), source: FeatureSource::Video })
            .collect(),
        multi: Vec::new(),
    };
    let tasks = vec![
        TaskInfo::new("click", TaskKind::Binary),
        TaskInfo::new("watch_ratio", TaskKind::Regression),
    ];
    let config = ModelConfig {
        architecture: Architecture::Mmoe(MmoeConfig {
            experts: 4,
            expert_hidden: vec![128, 64],
            gate_temperature: 1.0,
        }),
        embedding_dim: 16,
        tower_hidden: vec![32],
        regression_head: RegressionHead::Sigmoid,
        cmi: None,
    };
    (schema, tasks, config)
}

/// SplitMix64: enough randomness for benchmark inputs, with no dependency.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> u32 {
        (self.next() % n as u64) as u32
    }

    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// Random batches in the reference schema: ids over the whole vocabulary, standardised-looking
/// dense values, a click label for every row and a watch ratio for nine rows in ten (so the
/// masked loss does real masking).
fn random_batches(size: usize, n_tasks: usize, seed: u64) -> Vec<Batch> {
    let mut rng = SplitMix(seed ^ (size as u64).wrapping_mul(0xA076_1D64_78BD_642F));
    (0..DISTINCT_BATCHES)
        .map(|_| {
            let mut categorical = Vec::with_capacity(size * VOCABULARIES.len());
            for _ in 0..size {
                for &(_, cardinality) in &VOCABULARIES {
                    categorical.push(rng.below(cardinality));
                }
            }
            let dense = (0..size * N_DENSE).map(|_| rng.unit() * 4.0 - 2.0).collect();
            let mut labels = Vec::with_capacity(n_tasks * size);
            let mut masks = Vec::with_capacity(n_tasks * size);
            for _ in 0..size {
                labels.push(f32::from(rng.unit() < 0.4));
                masks.push(1.0);
            }
            for _ in 0..size {
                labels.push(rng.unit());
                masks.push(if rng.unit() < 0.9 { 1.0 } else { 0.0 });
            }
            Batch {
                size,
                categorical,
                n_categorical: VOCABULARIES.len(),
                dense,
                n_dense: N_DENSE,
                multi: Vec::new(),
                multi_width: 0,
                labels,
                masks,
                n_tasks,
                user_group: (0..size).map(|_| rng.below(1000)).collect(),
                rows: (0..size as u32).collect(),
                clips: None,
            }
        })
        .collect()
}

/// Seconds of each timed training step.
fn time_training(
    config: &ModelConfig,
    schema: &FeatureSchema,
    tasks: &[TaskInfo],
    batches: &[Batch],
    args: BenchTrainArgs,
    steps: usize,
) -> Result<Vec<f64>> {
    let device = Device::flex().autodiff();
    device.seed(args.seed);
    let context = ModelContext::new(config, schema.clone(), tasks.to_vec());
    let names: Vec<String> = tasks.iter().map(|t| t.name.clone()).collect();
    let mut trainable = Trainable {
        model: MultiTaskModel::new(config, &context, &device)?,
        weighting: TaskWeighting::default().build(&names, &device),
    };
    // The trainer's optimiser: Adam (lr 1e-3, no decay), the embedding tables as asked.
    let train_config =
        TrainConfig { embedding_updates: args.embedding_updates.into(), ..TrainConfig::default() };
    let mut optimizer = build_optimizer(&train_config, &trainable);
    let mut seconds = Vec::with_capacity(steps);
    for step in 0..args.warmup + steps {
        let batch = &batches[step % batches.len()];
        let start = Instant::now();
        let (stepped, losses) =
            train_step(trainable, &mut optimizer, batch, step, 1e-3, 0, &device)
                .map_err(|e| anyhow::anyhow!("the loss '{}' diverged at step {step}", e.term))?;
        trainable = stepped;
        if step >= args.warmup {
            seconds.push(start.elapsed().as_secs_f64());
        }
        anyhow::ensure!(losses.is_some(), "no task loss at step {step}");
    }
    Ok(seconds)
}

/// Seconds of each timed inference step.
fn time_inference(
    config: &ModelConfig,
    schema: &FeatureSchema,
    tasks: &[TaskInfo],
    batches: &[Batch],
    args: BenchTrainArgs,
    steps: usize,
) -> Result<Vec<f64>> {
    let train_device = Device::flex().autodiff();
    train_device.seed(args.seed);
    let context = ModelContext::new(config, schema.clone(), tasks.to_vec());
    let model = MultiTaskModel::new(config, &context, &train_device)?.valid();
    let device = Device::flex();
    let mut seconds = Vec::with_capacity(steps);
    let mut checksum = 0.0f64;
    for step in 0..args.warmup + steps {
        let batch = &batches[step % batches.len()];
        let start = Instant::now();
        let predictions = join_rows(score_in_halves(batch, |rows| {
            let input = ModelInput::from_batch(rows, &device);
            model.forward(&input).predictions().into_iter().map(to_vec).collect()
        }));
        if step >= args.warmup {
            seconds.push(start.elapsed().as_secs_f64());
        }
        checksum += predictions.iter().map(|p| p[0] as f64).sum::<f64>();
    }
    std::hint::black_box(checksum);
    Ok(seconds)
}
