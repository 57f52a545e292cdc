//! `seesaw bench serve`: latency and throughput of `seesaw serve` on loopback, under an open-loop
//! load of score requests (500 candidates each by default) at a series of fixed rates.
//!
//! - The server runs in this process, with the same code and defaults as `seesaw serve`; the load
//!   generator shares the machine's cores with it, so the numbers are conservative.
//! - Latency is measured from each request's scheduled send time (no coordinated omission).
//! - A rate is sustained when every request got a 200, the achieved rate is at least 95% of the
//!   target, and p99 latency is within `--p99-target-ms` (15 ms by default).
//! - Without `--model`, a model is trained first on a simulated platform with the KuaiRand
//!   preset's features and all nine tasks: the reference MMoE of `bench train` (4 experts of
//!   [128, 64], embeddings of 16, towers [32]). Serving cost depends on the model's shape, not
//!   its accuracy, so one short epoch is enough. Pass `--model` to measure another model.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use clap::Args;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use seesaw_data::feature_map::{Encoding, FeatureMap, FeatureSource};
use seesaw_models::model_dir::{self, Manifest};
use seesaw_serve::loadgen::{LoadPlan, LoadReport, run_load};
use seesaw_serve::{ModelSource, ServeConfig};
use seesaw_train::collective::SingleProcess;
use seesaw_train::run_config::RunConfig;

use super::dataset_args::write_json;
use super::serve::ServeTuning;

#[derive(Args, Debug, Clone)]
pub struct BenchServeArgs {
    /// A model directory to serve; default: train one on the simulator first.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Request rates to try, per second, in order.
    #[arg(long, value_delimiter = ',', default_value = "50,100,200,300,400,600,800")]
    pub rates: Vec<f64>,
    /// Seconds at each rate.
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    #[arg(long, default_value_t = 500)]
    pub candidates: usize,
    /// Client connections at most.
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    #[arg(long, default_value_t = 15.0)]
    pub p99_target_ms: f64,
    /// Keep trying higher rates after one is not sustained.
    #[arg(long)]
    pub all_rates: bool,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[command(flatten)]
    pub tuning: ServeTuning,
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct BenchReport {
    model_dir: String,
    architecture: String,
    tasks: usize,
    candidates_per_request: usize,
    p99_target_ms: f64,
    runs: Vec<RateResult>,
    /// The highest rate tried that was sustained, requests per second.
    highest_sustained_rps: Option<f64>,
}

#[derive(Serialize)]
struct RateResult {
    sustained: bool,
    #[serde(flatten)]
    report: LoadReport,
}

pub fn run(args: BenchServeArgs) -> Result<()> {
    if args.rates.is_empty() || args.rates.iter().any(|r| !(r.is_finite() && *r > 0.0)) {
        bail!("--rates must be positive numbers, e.g. 50,100,200");
    }
    let scratch = tempfile::tempdir().context("creating a scratch directory")?;
    let model_dir = match &args.model {
        Some(dir) => dir.clone(),
        None => train_bench_model(scratch.path())?,
    };
    let manifest: Manifest = model_dir::read_manifest(&model_dir)
        .with_context(|| format!("reading the model in {}", model_dir.display()))?;
    let bodies = request_bodies(&manifest.feature_map, args.candidates, args.seed);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let mut config = ServeConfig::new(
        ModelSource { dir: model_dir.clone(), users: None, videos: None },
        SocketAddr::from(([127, 0, 0, 1], 0)),
    );
    args.tuning.apply(&mut config);
    config.limits.max_candidates = config.limits.max_candidates.max(args.candidates);
    let runs = runtime.block_on(async {
        let server = seesaw_serve::start(config).await?;
        let mut runs = Vec::new();
        // Untimed warm-up: first allocations, connection set-up, caches.
        let warm = LoadPlan {
            rate_per_second: 20.0,
            duration: Duration::from_secs(1),
            max_connections: args.connections,
            path: "/v1/score".into(),
        };
        let _ = run_load(server.addr, &warm, body_picker(&bodies)).await;
        for &rate in &args.rates {
            let plan = LoadPlan {
                rate_per_second: rate,
                duration: Duration::from_secs_f64(args.seconds),
                max_connections: args.connections,
                path: "/v1/score".into(),
            };
            if !args.json {
                eprintln!("{rate} requests/s for {} s …", args.seconds);
            }
            let report = run_load(server.addr, &plan, body_picker(&bodies)).await;
            let sustained = report.errors() == 0
                && report.achieved_rps >= 0.95 * rate
                && report.latency_ms.p99 <= args.p99_target_ms;
            if !args.json {
                print_run(&report, sustained);
            }
            runs.push(RateResult { sustained, report });
            if !sustained && !args.all_rates {
                break;
            }
        }
        server.shutdown().await.context("stopping the server")?;
        anyhow::Ok(runs)
    })?;
    let report = BenchReport {
        model_dir: model_dir.display().to_string(),
        architecture: manifest.architecture.clone(),
        tasks: manifest.feature_map.tasks.len(),
        candidates_per_request: args.candidates,
        p99_target_ms: args.p99_target_ms,
        highest_sustained_rps: runs
            .iter()
            .filter(|r| r.sustained)
            .map(|r| r.report.target_rps)
            .reduce(f64::max),
        runs,
    };
    if args.json {
        return write_json(&report);
    }
    match report.highest_sustained_rps {
        Some(rps) => println!(
            "highest sustained rate: {rps} requests/s of {} candidates (p99 ≤ {} ms, no errors)",
            args.candidates, args.p99_target_ms
        ),
        None => println!("no rate tried was sustained"),
    }
    Ok(())
}

fn print_run(report: &LoadReport, sustained: bool) {
    let l = &report.latency_ms;
    println!(
        "  target {:>6.0}/s  achieved {:>7.1}/s  ok {:>6}  errors {:>5}  p50 {:>6.2} ms  p90 {:>6.2} ms  p99 {:>6.2} ms  max {:>7.2} ms  {}",
        report.target_rps,
        report.achieved_rps,
        report.ok(),
        report.errors(),
        l.p50,
        l.p90,
        l.p99,
        l.max,
        if sustained { "sustained" } else { "NOT sustained" }
    );
}

fn body_picker(bodies: &[Bytes]) -> impl Fn(usize) -> Bytes + Send + Sync + 'static {
    let bodies = bodies.to_vec();
    move |i| bodies[i % bodies.len()].clone()
}

/// Distinct request bodies, cycled through: known users and videos from the model's
/// vocabularies (one user in ten unknown, to exercise the out-of-vocabulary path) and a context
/// value for each context feature.
fn request_bodies(map: &FeatureMap, candidates: usize, seed: u64) -> Vec<Bytes> {
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed);
    let users: Vec<&str> =
        (1..map.user_id.cardinality() as u32).filter_map(|i| map.user_id.token(i)).collect();
    let videos: Vec<&str> =
        (1..map.video_id.cardinality() as u32).filter_map(|i| map.video_id.token(i)).collect();
    let context_values: Vec<(&str, Vec<&str>)> = map
        .features_of(FeatureSource::Log)
        .map(|f| {
            let values = match &f.encoding {
                Encoding::Categorical { vocabulary } | Encoding::OneHot { vocabulary } => (1
                    ..vocabulary.cardinality() as u32)
                    .filter_map(|i| vocabulary.token(i))
                    .collect(),
                _ => vec!["1"],
            };
            (f.name.as_str(), values)
        })
        .collect();
    (0..64)
        .map(|_| {
            let user = match users.choose(&mut rng) {
                Some(user) if rng.random_bool(0.9) => user.to_string(),
                _ => format!("unknown-{}", rng.random::<u32>()),
            };
            let context: serde_json::Map<String, serde_json::Value> = context_values
                .iter()
                .filter_map(|(name, values)| {
                    values.choose(&mut rng).map(|v| (name.to_string(), (*v).into()))
                })
                .collect();
            let candidates: Vec<serde_json::Value> = (0..candidates)
                .map(|_| {
                    let video = videos.choose(&mut rng).copied().unwrap_or("0");
                    serde_json::json!({ "video_id": video })
                })
                .collect();
            let body = serde_json::json!({ "user_id": user, "context": context, "candidates": candidates });
            Bytes::from(serde_json::to_vec(&body).expect("a request serialises"))
        })
        .collect()
}

/// The reference MMoE on the KuaiRand features, trained briefly on a simulated platform.
fn train_bench_model(scratch: &Path) -> Result<PathBuf> {
    const CONFIG: &str = r#"
[simulator]
seed = 7
n_users = 5000
n_videos = 2000
n_impressions = 60000

[dataset]
preset = "kuairand"
[dataset.split]
strategy = "temporal"
valid_days = 1
test_days = 1

[model]
embedding_dim = 16
tower_hidden = [32]
architecture = { kind = "mmoe", experts = 4, expert_hidden = [128, 64], gate_temperature = 1.0 }

[train]
epochs = 1
batch_size = 1024
"#;
    // Nothing in it is a relative path, so the name it is read "as" only labels errors.
    let config = RunConfig::from_toml_str(CONFIG, &scratch.join("bench-serve.toml"))?;
    let out = scratch.join("model");
    eprintln!("training a model to serve (seesaw bench serve without --model)");
    super::train::train_to_dir(config, &out, false, &SingleProcess)?;
    Ok(out)
}
