//! A fixed seed gives fixed initial weights, and so fixed first outputs, for every architecture.
//! burn initialises a parameter when it is first read, so the values below change whenever a
//! model reads its parameters in another order (as a refactor of a forward pass easily does),
//! even if every equation stays the same: then every seeded result of `seesaw compare` changes
//! too. If a change here is intended, say so in the commit and print the new values with
//! `GOLDEN_PRINT=1 cargo test -p seesaw-models --test golden -- --nocapture`.
//!
//! One test in its own binary: burn's seed is process-wide, and models built in parallel would
//! draw from it in turn.

mod common;

use burn::tensor::Device;
use seesaw_models::models::SingleTaskConfig;
use seesaw_models::{Architecture, ModelConfig, ModelInput, MultiTaskModel};

use common::{random_batch, tiny_context, tiny_schema, to_vec};

/// (architecture, per task: sum of outputs, sum of squared outputs) over the fixed batch.
const EXPECTED: &[(&str, [f64; 4])] = &[
    ("logistic", [13.159728229045868, 10.019560888999703, 18.81730780005455, 11.404680036075042]),
    (
        "single_task",
        [0.4267892502248287, 0.010003597335026995, 16.611616611480713, 8.623762030225699],
    ),
    (
        "shared_bottom",
        [-3.817428797483444, 0.4610176890308798, 17.656155705451965, 9.742287624819056],
    ),
    (
        "cross_stitch",
        [2.0375212468206882, 0.13184111687713274, 15.203664481639862, 7.223551017469022],
    ),
    ("mmoe", [0.41240019723773, 0.006824943252672973, 16.88565021753311, 8.910260736659897]),
    ("cgc", [0.2905551418662071, 0.004065686580010663, 16.540139496326447, 8.549298630022019]),
    ("ple", [-0.08484578132629395, 0.0002508305613444506, 16.873634696006775, 8.897486210429427]),
    ("single_task", [2.191995333880186, 0.20533768669691388, 16.77660435438156, 8.800681032546988]),
];

#[test]
fn a_fixed_seed_gives_the_same_initial_outputs_for_every_architecture() {
    let mut architectures = Architecture::default_set();
    architectures.push(Architecture::SingleTask(SingleTaskConfig { hidden: vec![] }));
    let batch = random_batch(&tiny_schema(), 32, 11);
    let mut seen = Vec::new();
    for architecture in architectures {
        let config = ModelConfig { architecture, embedding_dim: 4, ..ModelConfig::default() };
        let device = Device::flex().autodiff();
        device.seed(7);
        let model = MultiTaskModel::new(&config, &tiny_context(&config), &device).unwrap();
        let outputs = model.forward(&ModelInput::from_batch(&batch, &device));
        let mut figures = [0.0f64; 4];
        for (k, task) in outputs.tasks.iter().enumerate() {
            let values = to_vec(&task.tensor);
            figures[2 * k] = values.iter().sum();
            figures[2 * k + 1] = values.iter().map(|v| v * v).sum();
        }
        seen.push((config.architecture.name(), figures));
    }
    if std::env::var_os("GOLDEN_PRINT").is_some() {
        for (name, f) in &seen {
            println!("    (\"{name}\", [{:?}, {:?}, {:?}, {:?}]),", f[0], f[1], f[2], f[3]);
        }
    }
    assert_eq!(seen.len(), EXPECTED.len(), "one expected row per architecture");
    for ((name, got), (expected_name, expected)) in seen.iter().zip(EXPECTED) {
        assert_eq!(name, expected_name);
        for (g, e) in got.iter().zip(expected) {
            // Kernels may sum in another order on another CPU: a few ulps, never a new draw.
            assert!((g - e).abs() <= 1e-4 * e.abs().max(1.0), "{name}: {got:?} vs {expected:?}");
        }
    }
}
