//! Times what `seesaw serve`'s HTTP thread does for one score request besides the model call,
//! in process: decoding the body, encoding the candidates, building the ranked answer and
//! writing its JSON. A companion to `model_call`, for changes on that side of the server.
//!
//! ```text
//! cargo run --release -p seesaw-serve --example http_side -- MODEL_DIR BODY.json CALLS [SWEEP_MB]
//! ```
//! Before each call it writes to SWEEP_MB megabytes of memory at random places (0: none), as the
//! scoring workers' sweep through their kept products does between two served requests: before
//! `encode` prefetched its rows, a 500-candidate encode took 0.03 ms here with warm caches, about
//! 0.2 ms in the server, and with a 128 MB sweep about 0.2 ms here too (docs/performance.md,
//! twelfth stop). Prints each phase's median over CALLS calls, after 50 warm-up calls.

use std::time::Instant;

use seesaw_models::input::ModelInput;
use seesaw_serve::response::{ReturnedScores, ScoreResponse};
use seesaw_serve::{LoadedModel, ModelSource, RequestLimits};

const WARM_UP_CALLS: usize = 50;
const PHASES: [&str; 4] = ["decode", "encode", "build", "to_json"];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        eprintln!("usage: http_side MODEL_DIR BODY.json CALLS [SWEEP_MB]");
        std::process::exit(2);
    }
    let body = std::fs::read(&args[1]).expect("reading the request body");
    let calls: usize = args[2].parse().expect("CALLS is a number");
    if calls == 0 {
        eprintln!("CALLS must be at least 1: the medians are over the timed calls");
        std::process::exit(2);
    }
    let sweep_mb: usize = args.get(3).map_or(0, |a| a.parse().expect("SWEEP_MB is a number"));
    let device = Default::default();
    let source = ModelSource { dir: args[0].clone().into(), ..Default::default() };
    let model = LoadedModel::load(&source, &device).expect("loading the model");
    let limits = RequestLimits::default();
    // The answer's predictions, from one real call.
    let request = seesaw_serve::request::decode(&body, &limits).expect("a valid request");
    let encoded = model.encode(&request).expect("an encodable request");
    let input = ModelInput::from_batch(&encoded.batch, &device)
        .with_frozen_parameters()
        .with_row_groups(encoded.groups);
    let predictions: Vec<Vec<f32>> =
        model.model.forward(&input).predictions().into_iter().map(seesaw_models::to_vec).collect();

    let mut sweep = vec![0u8; sweep_mb << 20];
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut times: [Vec<f64>; 4] = Default::default();
    let mut answer_bytes = 0;
    for _ in 0..WARM_UP_CALLS + calls {
        for _ in 0..sweep.len() / 64 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let at = state as usize % sweep.len();
            sweep[at] = sweep[at].wrapping_add(1);
        }
        std::hint::black_box(&sweep);
        let mut marks = [Instant::now(); 5];
        let request = seesaw_serve::request::decode(&body, &limits).expect("a valid request");
        marks[1] = Instant::now();
        let fusion = model.fusion_for(&request).expect("the model's fusion");
        let returned = ReturnedScores::for_request(&model, &request).expect("known scores");
        let encoded = model.encode(&request).expect("an encodable request");
        marks[2] = Instant::now();
        let answer = ScoreResponse::build(&model, request, &fusion, returned, predictions.clone());
        marks[3] = Instant::now();
        answer_bytes += answer.to_json().len();
        marks[4] = Instant::now();
        std::hint::black_box(encoded);
        for (phase, times) in times.iter_mut().enumerate() {
            times.push((marks[phase + 1] - marks[phase]).as_secs_f64() * 1e3);
        }
    }
    std::hint::black_box(answer_bytes);
    let medians: Vec<String> = PHASES
        .iter()
        .zip(&mut times)
        .map(|(name, times)| {
            let mut kept = times.split_off(WARM_UP_CALLS);
            kept.sort_by(f64::total_cmp);
            format!("{name} {:.4}", kept[kept.len() / 2])
        })
        .collect();
    println!("{} ms (medians of {calls} calls)", medians.join(", "));
}
