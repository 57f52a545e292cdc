//! `seesaw bench data`: the data layer's three performance targets, measured.
//! - the shared KuaiRand slice loaded, cleaned, joined, encoded and split (target < 1 s);
//! - simulator throughput on one core (target >= 1,000,000 impressions/s);
//! - peak memory of 10 million simulated impressions read and encoded (target < 1.5 GB),
//!   measured in a child process so that nothing else this process did counts.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use serde::Serialize;

use seesaw_data::dataset::{prepare, prepare_log};
use seesaw_data::log::LogIngestor;
use seesaw_data::presets::preset;
use seesaw_sim::{Platform, SimConfig, record_batches};

use super::dataset_args::write_json;
use crate::progress;

#[derive(Args, Debug)]
pub struct BenchDataArgs {
    /// Directory of the KuaiRand slice.
    #[arg(long, default_value = "../shared/data/kuairand-pure-slice")]
    pub kuairand: PathBuf,
    /// Timed repetitions of the slice preparation (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub repeats: usize,
    /// Impressions for the simulator throughput run.
    #[arg(long, default_value_t = 5_000_000)]
    pub simulate: u64,
    /// Impressions for the memory run (0 skips it).
    #[arg(long, default_value_t = 10_000_000)]
    pub memory: u64,
    #[arg(long)]
    pub json: bool,
    /// Internal: run only the memory measurement in this process and print its JSON.
    #[arg(long, hide = true)]
    pub memory_child: bool,
}

#[derive(Serialize)]
struct SliceTiming {
    rows_read: u64,
    rows_kept: u64,
    median_seconds: f64,
    min_seconds: f64,
    rows_per_second: f64,
}

#[derive(Serialize, serde::Deserialize)]
struct MemoryResult {
    impressions: u64,
    rows_kept: u64,
    encoded_heap_bytes: usize,
    peak_rss_bytes: u64,
    seconds: f64,
}

#[derive(Serialize)]
struct Report {
    kuairand_slice: Option<SliceTiming>,
    simulator_impressions_per_second: f64,
    simulator_impressions: u64,
    memory: Option<MemoryResult>,
}

pub fn run(args: BenchDataArgs) -> Result<()> {
    if args.memory_child {
        return write_json(&memory_run(args.memory)?);
    }
    let kuairand_slice = if args.kuairand.join(LOG).exists() {
        Some(time_slice(&args)?)
    } else {
        eprintln!("skipping the slice benchmark: no {}", args.kuairand.join(LOG).display());
        None
    };
    let (simulator_impressions_per_second, simulator_impressions) = time_simulator(args.simulate)?;
    let memory = if args.memory > 0 { Some(memory_in_child(args.memory)?) } else { None };
    let report =
        Report { kuairand_slice, simulator_impressions_per_second, simulator_impressions, memory };
    if args.json {
        return write_json(&report);
    }
    if let Some(s) = &report.kuairand_slice {
        println!(
            "kuairand slice: {} rows read, {} kept; median {:.3} s (min {:.3} s) over {} runs = {:.0} rows/s  [target < 1 s]",
            s.rows_read,
            s.rows_kept,
            s.median_seconds,
            s.min_seconds,
            args.repeats,
            s.rows_per_second
        );
    }
    println!(
        "simulator: {:.0} impressions/s on one core ({} impressions)  [target >= 1,000,000]",
        report.simulator_impressions_per_second, report.simulator_impressions
    );
    if let Some(m) = &report.memory {
        println!(
            "memory: {} impressions read and encoded in {:.1} s; peak RSS {:.0} MiB, encoded rows {:.0} MiB  [target < 1.5 GB]",
            m.impressions,
            m.seconds,
            m.peak_rss_bytes as f64 / (1 << 20) as f64,
            m.encoded_heap_bytes as f64 / (1 << 20) as f64
        );
    }
    Ok(())
}

const LOG: &str = "log_standard_4_25_to_5_04_pure_slice.csv";

fn time_slice(args: &BenchDataArgs) -> Result<SliceTiming> {
    let mut spec = preset("kuairand")?;
    spec.log.path = Some(args.kuairand.join(LOG));
    spec.users.as_mut().expect("kuairand has users").path =
        Some(args.kuairand.join("user_features_pure.csv"));
    spec.videos.as_mut().expect("kuairand has videos").path =
        Some(args.kuairand.join("video_features_basic_pure.csv"));
    spec.clips = None;
    let bar = progress::bar(args.repeats as u64, "kuairand slice");
    let mut seconds = Vec::new();
    let mut rows = (0, 0);
    for _ in 0..args.repeats.max(1) {
        let start = Instant::now();
        let data = prepare(&spec).context("preparing the KuaiRand slice")?;
        seconds.push(start.elapsed().as_secs_f64());
        rows = (data.report.rows_read, data.report.rows_kept);
        bar.inc(1);
    }
    bar.finish_and_clear();
    seconds.sort_by(f64::total_cmp);
    let median = seconds[seconds.len() / 2];
    Ok(SliceTiming {
        rows_read: rows.0,
        rows_kept: rows.1,
        median_seconds: median,
        min_seconds: seconds[0],
        rows_per_second: rows.0 as f64 / median,
    })
}

fn time_simulator(n: u64) -> Result<(f64, u64)> {
    let config = SimConfig { n_impressions: n, ..SimConfig::default() };
    let platform = Platform::new(&config)?;
    let spinner = progress::spinner(format!("simulating {n} impressions"));
    let start = Instant::now();
    let mut checksum = 0u64;
    for impression in platform.impressions() {
        checksum =
            checksum.wrapping_add(impression.play_time_ms as u64 ^ u64::from(impression.like));
    }
    let seconds = start.elapsed().as_secs_f64();
    spinner.finish_and_clear();
    std::hint::black_box(checksum);
    Ok((n as f64 / seconds, n))
}

fn memory_in_child(n: u64) -> Result<MemoryResult> {
    let spinner =
        progress::spinner(format!("simulating and encoding {n} impressions in a child process"));
    let output = std::process::Command::new(std::env::current_exe()?)
        .args(["bench", "data", "--memory-child", "--memory", &n.to_string()])
        .output()
        .context("starting the memory child process")?;
    spinner.finish_and_clear();
    if !output.status.success() {
        bail!("the memory child failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    serde_json::from_slice(&output.stdout).context("reading the memory child's report")
}

/// Simulates `n` impressions, reads them through the same ingestion as a file (record batches in
/// the KuaiRand layout), and prepares them; reports the process's peak resident memory.
fn memory_run(n: u64) -> Result<MemoryResult> {
    let start = Instant::now();
    let config = SimConfig { n_impressions: n, ..SimConfig::default() };
    let platform = Platform::new(&config)?;
    let mut spec = preset("kuairand")?;
    spec.users = None;
    spec.videos = None;
    spec.clips = None;
    let source = PathBuf::from("<simulator>");
    let mut ingestor = LogIngestor::new(&spec, &source, None);
    let mut line = 2;
    for batch in record_batches(&platform, 65_536) {
        let batch = batch?;
        ingestor.ingest(&batch, line)?;
        line += batch.num_rows() as u64;
    }
    let log = ingestor.finish()?;
    let data = prepare_log(&spec, log, None, None)?;
    Ok(MemoryResult {
        impressions: n,
        rows_kept: data.report.rows_kept,
        encoded_heap_bytes: data.heap_bytes(),
        peak_rss_bytes: peak_rss_bytes()?,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// VmHWM of this process (Linux).
pub fn peak_rss_bytes() -> Result<u64> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .context("no VmHWM in /proc/self/status")?;
    let kib: u64 = line.split_whitespace().nth(1).context("malformed VmHWM")?.parse()?;
    Ok(kib * 1024)
}
