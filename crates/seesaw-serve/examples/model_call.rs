//! Times the served model call in process, without HTTP, the way `seesaw serve`'s scoring
//! workers make it (frozen parameters, the request's row groups), to judge a change to the
//! model's forward path on numbers steadier than a load test's.
//!
//! ```text
//! cargo run --release -p seesaw-serve --example model_call -- \
//!     MODEL_DIR BODY.json ROWS CALLS THREADS GAP_MS [--spin] [--no-helper]
//! ```
//! Each of THREADS threads (pinned to core t) encodes its own ROWS candidates of the request in
//! BODY.json (thread t takes candidates t·ROWS..(t+1)·ROWS) and scores them CALLS times, all
//! threads starting each call together, as the two halves of a split request do; GAP_MS apart
//! (sleeping, or busy-waiting with `--spin`), as a server at 100 requests/s is idle between
//! requests. `--no-helper` turns burn-flex's helper thread off. Prints the call's median, p10,
//! p90, p99 and mean over every thread's calls, after 50 warm-up calls.
//!
//! What it showed (docs/performance.md, "eighth stop"): on the KuaiRand cross-stitch model a
//! 250-row call takes 0.7–0.9 ms back to back and 1.3–1.5 ms with 8 ms gaps, busy-waiting or not:
//! the caches lose the call's weights and buffers in between.

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use seesaw_models::input::ModelInput;
use seesaw_serve::request::ScoreRequest;
use seesaw_serve::{LoadedModel, ModelSource};

const WARM_UP_CALLS: usize = 50;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (flags, positional): (Vec<&String>, Vec<&String>) =
        args.iter().partition(|a| a.starts_with("--"));
    let usage = "usage: model_call MODEL_DIR BODY.json ROWS CALLS THREADS GAP_MS [--spin] \
                 [--no-helper]";
    let [dir, body, rows, calls, threads, gap_ms] = positional[..] else { panic!("{usage}") };
    let number = |s: &str| s.parse::<usize>().unwrap_or_else(|_| panic!("{usage}"));
    let (rows, calls, threads) = (number(rows), number(calls), number(threads));
    let gap = Duration::from_millis(number(gap_ms) as u64);
    let spin = flags.iter().any(|f| *f == "--spin");
    if flags.iter().any(|f| *f == "--no-helper") {
        seesaw_models::set_helper_thread(false);
    }

    let device = burn::tensor::Device::flex();
    let source = ModelSource { dir: dir.into(), ..Default::default() };
    let model = Arc::new(LoadedModel::load(&source, &device).expect("a trained model directory"));
    let request: ScoreRequest =
        serde_json::from_slice(&std::fs::read(body).expect("a readable request body"))
            .expect("a score request");
    assert!(request.candidates.len() >= rows * threads, "the body has too few candidates");
    let barrier = Arc::new(Barrier::new(threads));
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let (model, barrier, device) = (model.clone(), barrier.clone(), device.clone());
            let mut request = request.clone();
            request.candidates = request.candidates[t * rows..(t + 1) * rows].to_vec();
            std::thread::spawn(move || {
                core_affinity::set_for_current(core_affinity::CoreId { id: t });
                let encoded = model.encode(&request).expect("the request encodes");
                let mut times = Vec::with_capacity(WARM_UP_CALLS + calls);
                for _ in 0..WARM_UP_CALLS + calls {
                    barrier.wait();
                    let started = Instant::now();
                    let input = ModelInput::from_batch(&encoded.batch, &device)
                        .with_frozen_parameters()
                        .with_row_groups(encoded.groups.clone());
                    let outputs = model.model.forward(&input);
                    let scores: Vec<Vec<f32>> =
                        outputs.predictions().into_iter().map(seesaw_models::to_vec).collect();
                    std::hint::black_box(scores);
                    times.push(started.elapsed().as_secs_f64() * 1e3);
                    wait(gap, spin);
                }
                times.split_off(WARM_UP_CALLS)
            })
        })
        .collect();
    let mut times: Vec<f64> = workers.into_iter().flat_map(|w| w.join().unwrap()).collect();
    times.sort_by(f64::total_cmp);
    let at = |q: usize| times[(times.len() * q / 100).min(times.len() - 1)];
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    println!(
        "{rows} rows x {threads} threads, {gap:?} apart{}: median {:.3} ms, p10 {:.3}, p90 {:.3}, \
         p99 {:.3}, mean {mean:.3}",
        if spin { " (spinning)" } else { "" },
        at(50),
        at(10),
        at(90),
        at(99),
    );
}

fn wait(gap: Duration, spin: bool) {
    if !spin {
        std::thread::sleep(gap);
        return;
    }
    let until = Instant::now() + gap;
    while Instant::now() < until {
        std::hint::spin_loop();
    }
}
