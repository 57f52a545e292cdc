//! Train-step throughput of the reference MMoE: three id embeddings of 16 (vocabularies 30,000,
//! 10,000 and 50), 10 dense features, 4 experts of [128, 64], 2 gates, 2 towers of [32], one
//! binary and one regression task, batch 4096 (override with the first argument), on Flex.
//!
//! `cargo run --release -p seesaw-models --example bench_mmoe [batch] [steps]`
//!
//! A train step is forward, backward and an Adam step; the loss is BCE-with-logits on the
//! binary task plus MSE on the regression task.

use std::time::Instant;

use burn::nn::loss::{BinaryCrossEntropyLossConfig, MseLoss, Reduction};
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Int, Tensor, TensorData};
use seesaw_data::batch::Batch;
use seesaw_data::feature_map::{CategoricalSlot, FeatureSchema, TaskInfo, TaskKind};
use seesaw_models::{Architecture, ModelConfig, ModelInput, MultiTaskModel};

fn main() {
    let mut args = std::env::args().skip(1);
    let batch_size: usize = args.next().map(|a| a.parse().expect("batch size")).unwrap_or(4096);
    let steps: usize = args.next().map(|a| a.parse().expect("steps")).unwrap_or(20);

    let schema = FeatureSchema {
        categorical: [("user_id", 30_000), ("video_id", 10_000), ("category", 50)]
            .into_iter()
            .map(|(n, c)| CategoricalSlot { name: n.into(), cardinality: c })
            .collect(),
        dense: (0..10).map(|i| format!("d{i}")).collect(),
        multi: vec![],
    };
    let tasks = vec![
        TaskInfo { name: "click".into(), kind: TaskKind::Binary },
        TaskInfo { name: "watch_ratio".into(), kind: TaskKind::Regression },
    ];
    let config = ModelConfig {
        architecture: Architecture::Mmoe {
            experts: 4,
            expert_hidden: vec![128, 64],
            gate_temperature: 1.0,
        },
        embedding_dim: 16,
        tower_hidden: vec![32],
        ..ModelConfig::default()
    };
    let device = Device::flex().autodiff();
    let mut model = MultiTaskModel::new(&config, &schema, &tasks, &device).unwrap();
    println!(
        "reference MMoE: {} parameters, batch {batch_size}, {steps} timed steps",
        model.num_params()
    );

    // A deterministic pseudo-random batch (an LCG is enough for timing).
    let mut state = 12345u64;
    let mut next = || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 33) as u32
    };
    let mut categorical = Vec::with_capacity(batch_size * 3);
    let mut dense = Vec::with_capacity(batch_size * 10);
    let mut labels = vec![0.0f32; batch_size * 2];
    for r in 0..batch_size {
        for c in &schema.categorical {
            categorical.push(next() % c.cardinality as u32);
        }
        for _ in 0..10 {
            dense.push((next() % 1000) as f32 / 500.0 - 1.0);
        }
        labels[r] = (next() % 2) as f32;
        labels[batch_size + r] = (next() % 1000) as f32 / 1000.0;
    }
    let batch = Batch {
        size: batch_size,
        categorical,
        n_categorical: 3,
        dense,
        n_dense: 10,
        labels,
        masks: vec![1.0; batch_size * 2],
        n_tasks: 2,
        ..Batch::default()
    };
    let input = ModelInput::from_batch(&batch, &device);
    let click = Tensor::<2, Int>::from_data(
        TensorData::new(
            batch.label(0).iter().map(|&v| v as i64).collect::<Vec<_>>(),
            [batch_size, 1],
        ),
        &device,
    );
    let ratio =
        Tensor::<2>::from_data(TensorData::new(batch.label(1).to_vec(), [batch_size, 1]), &device);
    let bce = BinaryCrossEntropyLossConfig::new().with_logits(true).init(&device);
    let mut optim = AdamConfig::new().init();

    let mut step = |model: MultiTaskModel| -> (MultiTaskModel, f32) {
        let out = model.forward(&input);
        let loss = bce.forward(out.outputs[0].clone(), click.clone())
            + MseLoss::new().forward(out.outputs[1].clone(), ratio.clone(), Reduction::Mean);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let model = optim.step(1e-3, model, grads);
        let value = loss.into_data().iter::<f32>().next().unwrap();
        (model, value)
    };
    for _ in 0..3 {
        model = step(model).0;
    }
    let start = Instant::now();
    let mut last = 0.0;
    for _ in 0..steps {
        let (m, l) = step(model);
        model = m;
        last = l;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "train step (forward + backward + Adam): {:.1} ms/step, {:.0} samples/s (final loss {last:.4})",
        1e3 * secs / steps as f64,
        (steps * batch_size) as f64 / secs
    );
}
