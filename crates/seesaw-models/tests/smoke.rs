//! Every architecture on a tiny schema (2 categorical slots, 3 dense, 1 multi-valued slot; one
//! binary and one regression task): output shapes, a few Adam steps on a fixed batch lower the
//! loss, and save -> load reproduces the outputs exactly.

mod common;

use burn::module::Module;
use burn::nn::loss::{BinaryCrossEntropyLossConfig, MseLoss, Reduction};
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Int, Tensor, TensorData};
use seesaw_data::batch::Batch;
use seesaw_models::{Architecture, ModelConfig, ModelError, ModelInput, MultiTaskModel};

use common::{max_abs_diff, random_batch, tiny_schema, tiny_tasks, to_vec};

fn small_set() -> Vec<Architecture> {
    let h = vec![16, 8];
    vec![
        Architecture::Logistic,
        Architecture::SingleTask { hidden: h.clone() },
        Architecture::SharedBottom { hidden: h.clone() },
        Architecture::CrossStitch { hidden: h.clone() },
        Architecture::Mmoe { experts: 3, expert_hidden: h.clone(), gate_temperature: 1.0 },
        Architecture::Cgc {
            shared_experts: 2,
            task_experts: 1,
            expert_hidden: h.clone(),
            gate_temperature: 1.0,
        },
        Architecture::Ple {
            levels: 2,
            shared_experts: 2,
            task_experts: 1,
            expert_hidden: h,
            gate_temperature: 1.0,
        },
    ]
}

fn config(arch: Architecture) -> ModelConfig {
    ModelConfig {
        architecture: arch,
        embedding_dim: 4,
        tower_hidden: vec![8],
        ..ModelConfig::default()
    }
}

fn loss(model: &MultiTaskModel, input: &ModelInput, batch: &Batch, device: &Device) -> Tensor<1> {
    let out = model.forward(input);
    let b = batch.size;
    let click = Tensor::<2, Int>::from_data(
        TensorData::new(batch.label(0).iter().map(|&v| v as i64).collect::<Vec<_>>(), [b, 1]),
        device,
    );
    let ratio = Tensor::<2>::from_data(TensorData::new(batch.label(1).to_vec(), [b, 1]), device);
    let bce = BinaryCrossEntropyLossConfig::new()
        .with_logits(true)
        .init(device)
        .forward(out.outputs[0].clone(), click);
    let mse = MseLoss::new().forward(out.outputs[1].clone(), ratio, Reduction::Mean);
    bce + mse
}

fn value(t: &Tensor<1>) -> f64 {
    t.to_data().iter::<f64>().next().unwrap()
}

#[test]
fn every_architecture_trains_and_round_trips() {
    let schema = tiny_schema();
    let tasks = tiny_tasks();
    let device = Device::flex().autodiff();
    // Seeded so that a failure reproduces; the margin above is what keeps it from failing.
    device.seed(11);
    let batch = random_batch(&schema, 64, 7);
    let input = ModelInput::from_batch(&batch, &device);
    let dir = tempfile::tempdir().unwrap();
    for arch in small_set() {
        let name = arch.name();
        let cfg = config(arch);
        let mut model = MultiTaskModel::new(&cfg, &schema, &tasks, &device).unwrap();
        assert!(model.num_params() > 0);

        // Shapes: one [B, 1] per task; the regression output went through the sigmoid head.
        let out = model.forward(&input);
        assert_eq!(out.outputs.len(), 2, "{name}");
        for o in &out.outputs {
            assert_eq!(o.dims(), [64, 1], "{name}");
        }
        let preds = out.predictions(&tasks);
        for p in &preds {
            assert!(to_vec(p).iter().all(|&v| (0.0..=1.0).contains(&v)), "{name}");
        }

        // Gates: MMoE/CGC/PLE report rows that sum to 1; the others none.
        let gates = model.gate_weights(&input);
        match name {
            "mmoe" => assert_eq!(gates.len(), 2),
            "cgc" => assert_eq!(gates.len(), 2),
            "ple" => assert_eq!(gates.len(), 2 * 2 + 1), // two levels of task gates + one shared
            _ => assert!(gates.is_empty(), "{name}"),
        }
        for g in &gates {
            let [b, n] = g.weights.dims();
            let w = to_vec(&g.weights);
            for r in 0..b {
                let s: f64 = w[r * n..(r + 1) * n].iter().sum();
                assert!((s - 1.0).abs() < 1e-5, "{name} {}", g.name);
            }
        }
        if name == "ple" {
            let names: Vec<_> = gates.iter().map(|g| g.name.as_str()).collect();
            assert!(
                names.contains(&"level0/task:click") && names.contains(&"level0/shared"),
                "{names:?}"
            );
            assert!(names.contains(&"level1/task:watch_ratio"), "{names:?}");
        }

        // Sixty Adam steps on the fixed batch lower the loss. Thirty were too few: PLE's loss fell
        // only to 0.93x for some initialisations (CI hit one). Over seeds 0..30 the worst ratio
        // after sixty steps is 0.55 (logistic) and 0.38 (PLE), so 0.8 holds with a margin.
        let mut optim = AdamConfig::new().init();
        let first = value(&loss(&model, &input, &batch, &device));
        for _ in 0..60 {
            let l = loss(&model, &input, &batch, &device);
            let grads = GradientsParams::from_grads(l.backward(), &model);
            model = optim.step(1e-2, model, grads);
        }
        let last = value(&loss(&model, &input, &batch, &device));
        assert!(last < first * 0.8, "{name}: loss {first} -> {last}");

        // Save -> load (onto the plain device, as serving would) gives identical outputs.
        let path = dir.path().join(format!("{name}.bpk"));
        model.save(&path).unwrap();
        let plain = Device::flex();
        let loaded = MultiTaskModel::load(&cfg, &schema, &tasks, &path, &plain).unwrap();
        let plain_input = ModelInput::from_batch(&batch, &plain);
        let a = model.valid().forward(&plain_input);
        let b = loaded.forward(&plain_input);
        for (x, y) in a.outputs.iter().zip(&b.outputs) {
            assert_eq!(max_abs_diff(&to_vec(x), &to_vec(y)), 0.0, "{name}");
        }
        // Nothing but the model file is left behind.
        let left: Vec<_> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert!(left.iter().all(|n| n.to_string_lossy().ends_with(".bpk")), "{left:?}");
    }
}

#[test]
fn invalid_configs_and_files_are_errors_not_panics() {
    let schema = tiny_schema();
    let tasks = tiny_tasks();
    let device = Device::flex();
    let mmoe =
        config(Architecture::Mmoe { experts: 2, expert_hidden: vec![8], gate_temperature: 1.0 });
    assert!(matches!(
        MultiTaskModel::new(&mmoe, &schema, &[], &device),
        Err(ModelError::InvalidConfig(_))
    ));
    let zero =
        config(Architecture::Mmoe { experts: 0, expert_hidden: vec![8], gate_temperature: 1.0 });
    assert!(matches!(
        MultiTaskModel::new(&zero, &schema, &tasks, &device),
        Err(ModelError::InvalidConfig(_))
    ));

    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.bpk");
    match MultiTaskModel::load(&mmoe, &schema, &tasks, &missing, &device) {
        Err(ModelError::Read { path, .. }) => assert_eq!(path, missing),
        other => panic!("expected a read error, got {other:?}"),
    }

    // A file from another architecture, or another shape, is refused.
    let path = dir.path().join("mmoe.bpk");
    MultiTaskModel::new(&mmoe, &schema, &tasks, &device).unwrap().save(&path).unwrap();
    let sb = config(Architecture::SharedBottom { hidden: vec![8] });
    assert!(matches!(
        MultiTaskModel::load(&sb, &schema, &tasks, &path, &device),
        Err(ModelError::Record { .. })
    ));
    let wider =
        config(Architecture::Mmoe { experts: 2, expert_hidden: vec![9], gate_temperature: 1.0 });
    assert!(matches!(
        MultiTaskModel::load(&wider, &schema, &tasks, &path, &device),
        Err(ModelError::Record { .. })
    ));

    // Saving into a directory that does not exist is an error naming the path.
    let bad = dir.path().join("no/such/dir/m.bpk");
    match MultiTaskModel::new(&mmoe, &schema, &tasks, &device).unwrap().save(&bad) {
        Err(ModelError::Write { path, .. }) => assert_eq!(path, bad),
        other => panic!("expected a write error, got {other:?}"),
    }
}
