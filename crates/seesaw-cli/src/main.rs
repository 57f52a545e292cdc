//! `seesaw`: simulate a short-video platform, inspect datasets, train and compare multi-task
//! models, score logs, benchmark.

mod allocator;
mod commands;
mod interrupt;
mod progress;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "seesaw",
    version,
    about = "Multi-task engagement prediction for short-video feeds"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Simulate a short-video platform with known ground truth and write it in the KuaiRand layout.
    Simulate(commands::simulate::SimulateArgs),
    /// Train one model and write a model directory.
    Train(commands::train::TrainArgs),
    /// Score a log with a trained model.
    Eval(commands::eval::EvalArgs),
    /// The conditional mutual information between every pair of a model's tasks given its
    /// shared representation, in nats, with a bootstrap interval.
    Cmi(commands::cmi::CmiArgs),
    /// Serve a trained model over HTTP: score and rank candidate videos for a user.
    Serve(commands::serve::ServeArgs),
    /// Train every architecture over several seeds and report which wins, by how much, and
    /// whether tasks trade off (the see-saw). Without --config: the built-in simulator.
    Compare(commands::compare::CompareArgs),
    /// Look at a dataset.
    #[command(subcommand)]
    Data(DataCommand),
    /// Clip features for FRAME.
    #[command(subcommand)]
    Clips(ClipsCommand),
    /// Benchmarks (measured numbers, not pass/fail tests).
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Subcommand)]
enum DataCommand {
    /// Rows read and kept, drops per reason, users, videos, label rates, vocabulary and split sizes.
    Inspect(commands::inspect::InspectArgs),
    /// Rewrite a log as a partitioned Parquet directory, which ranks under mpirun read in shards.
    Convert(commands::convert::ConvertArgs),
}

#[derive(Subcommand)]
enum ClipsCommand {
    /// Run an ONNX image network over each clip's frames and write the mean output per clip.
    Extract(commands::clips_extract::ClipsExtractArgs),
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Load/clean/join/encode/split the shared slice; simulator throughput; memory of 10M encoded rows.
    Data(commands::bench_data::BenchDataArgs),
    /// Training and inference samples/s of the reference MMoE; peak memory.
    Train(commands::bench_train::BenchTrainArgs),
    /// Loopback load test of `seesaw serve`: throughput and p50/p99 latency at fixed request rates.
    Serve(commands::bench_serve::BenchServeArgs),
}

fn main() {
    allocator::keep_freed_memory();
    tracing_subscriber::fmt()
        .with_env_filter(
            // The PNG plots' renderer warns for every zero-length shape (tiny-skia: the error
            // bar of a single seed; usvg: a bar of height 0), which draws as nothing, correctly.
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,tiny_skia=error,usvg=error".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Serve(_) | Command::Bench(BenchCommand::Serve(_))) {
        interrupt::remove_temporaries_on_interrupt();
    }
    if let Err(error) = run(cli) {
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    if !matches!(cli.command, Command::Train(_)) {
        commands::ranks::refuse_several(command_name(&cli.command))?;
    }
    match cli.command {
        Command::Simulate(args) => commands::simulate::run(args),
        Command::Train(args) => commands::train::run(args),
        Command::Eval(args) => commands::eval::run(args),
        Command::Serve(args) => commands::serve::run(args),
        Command::Cmi(args) => commands::cmi::run(args),
        Command::Compare(args) => commands::compare::run(args),
        Command::Data(DataCommand::Inspect(args)) => commands::inspect::run(args),
        Command::Data(DataCommand::Convert(args)) => commands::convert::run(args),
        Command::Clips(ClipsCommand::Extract(args)) => commands::clips_extract::run(args),
        Command::Bench(BenchCommand::Data(args)) => commands::bench_data::run(args),
        Command::Bench(BenchCommand::Train(args)) => commands::bench_train::run(args),
        Command::Bench(BenchCommand::Serve(args)) => commands::bench_serve::run(args),
    }
}

/// The command's name as typed, for messages.
fn command_name(command: &Command) -> &'static str {
    match command {
        Command::Simulate(_) => "simulate",
        Command::Train(_) => "train",
        Command::Eval(_) => "eval",
        Command::Serve(_) => "serve",
        Command::Cmi(_) => "cmi",
        Command::Compare(_) => "compare",
        Command::Data(_) => "data",
        Command::Clips(_) => "clips",
        Command::Bench(_) => "bench",
    }
}
