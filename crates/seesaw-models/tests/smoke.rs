//! Every architecture on a tiny schema (2 categorical slots, 3 dense, 1 multi-valued slot; one
//! binary and one regression task): output shapes and kinds, gate diagnostics, the model's own
//! loss terms against burn's losses, a few Adam steps on a fixed batch lower the loss, and
//! save -> load reproduces the outputs exactly.

mod common;

use burn::module::Module;
use burn::nn::loss::{BinaryCrossEntropyLossConfig, MseLoss, Reduction};
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Int, Tensor, TensorData};
use seesaw_data::batch::Batch;
use seesaw_models::models::{MmoeConfig, SharedBottomConfig};
use seesaw_models::{
    Architecture, ModelConfig, ModelContext, ModelError, ModelInput, ModelTargets, MultiTaskModel,
    OutputKind,
};

use common::{
    every_architecture, max_abs_diff, random_batch, tiny_context, tiny_schema, tiny_tasks, to_vec,
};

fn small_set() -> Vec<Architecture> {
    every_architecture(vec![16, 8])
}

fn mmoe_arch(experts: usize, width: usize) -> Architecture {
    Architecture::Mmoe(MmoeConfig { experts, expert_hidden: vec![width], gate_temperature: 1.0 })
}

fn config(arch: Architecture) -> ModelConfig {
    ModelConfig {
        architecture: arch,
        embedding_dim: 4,
        tower_hidden: vec![8],
        ..ModelConfig::default()
    }
}

/// BCE on the click logit plus MSE on the watch ratio, with burn's own loss functions (not the
/// crate's), so the model's `loss` can be checked against it.
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
        .forward(out.tasks[0].tensor.clone(), click);
    let mse = MseLoss::new().forward(out.tasks[1].tensor.clone(), ratio, Reduction::Mean);
    bce + mse
}

/// The sum of the model's own loss terms (what the trainer optimises with equal weights).
fn model_loss(model: &MultiTaskModel, input: &ModelInput, targets: &ModelTargets) -> Tensor<1> {
    let terms = model.loss(&model.forward(input), targets);
    assert_eq!(terms.tasks.len(), 2);
    assert!(terms.auxiliary.is_empty(), "no standard model has auxiliary loss terms");
    terms
        .tasks
        .into_iter()
        .map(|t| t.expect("every row has both labels"))
        .reduce(|a, b| a + b)
        .unwrap()
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
        let context = ModelContext::new(&cfg, schema.clone(), tasks.clone());
        let mut model = MultiTaskModel::new(&cfg, &context, &device).unwrap();
        assert!(model.num_params() > 0);
        assert_eq!(model.tasks(), &tasks[..], "{name}");

        // Shapes: one [B, 1] per task; the binary task hands out a logit, the regression output
        // went through the sigmoid head.
        let out = model.forward(&input);
        assert_eq!(out.tasks.len(), 2, "{name}");
        for o in &out.tasks {
            assert_eq!(o.tensor.dims(), [64, 1], "{name}");
        }
        assert_eq!(out.tasks[0].kind, OutputKind::Logit, "{name}");
        assert_eq!(out.tasks[1].kind, OutputKind::Value, "{name}");
        assert!(out.extras.is_empty(), "{name}");
        assert!(out.shared.is_none() && out.gates.is_empty(), "{name}: nothing was asked for");
        let ratio = to_vec(&out.tasks[1].tensor);
        assert!(ratio.iter().all(|&v| v > 0.0 && v < 1.0), "{name}: sigmoid head");
        let preds = out.predictions();
        assert_eq!(preds.len(), 2, "{name}");
        for p in &preds {
            assert!(to_vec(p).iter().all(|&v| (0.0..=1.0).contains(&v)), "{name}");
        }
        // The click prediction is the sigmoid of its logit; the ratio's is its value.
        let logit = to_vec(&out.tasks[0].tensor);
        let sig: Vec<f64> = logit.iter().map(|x| 1.0 / (1.0 + (-x).exp())).collect();
        assert!(max_abs_diff(&to_vec(&preds[0]), &sig) < 1e-6, "{name}");
        assert_eq!(max_abs_diff(&to_vec(&preds[1]), &ratio), 0.0, "{name}");

        // Gates: MMoE/CGC/PLE report rows that sum to 1; the others none. Asking for them (or
        // for the shared representation) does not change the outputs.
        let diagnosed = model.forward(&input.clone().with_diagnostics().with_shared());
        for (a, b) in out.tasks.iter().zip(&diagnosed.tasks) {
            assert_eq!(max_abs_diff(&to_vec(&a.tensor), &to_vec(&b.tensor)), 0.0, "{name}");
        }
        match name {
            "shared_bottom" | "mmoe" | "cgc" | "ple" => {
                let h = diagnosed.shared.as_ref().unwrap_or_else(|| panic!("{name}: no h"));
                assert_eq!(h.dims()[0], 64, "{name}");
            }
            "logistic" | "single_task" => assert!(diagnosed.shared.is_none(), "{name}"),
            _ => {}
        }
        let gates = diagnosed.gates;
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

        // The model's own loss terms (masked BCE on the logit, masked MSE on the value; every
        // label present here) are burn's BCE-with-logits and MSE.
        let targets = ModelTargets::from_batch(&batch, &device);
        let ours = value(&model_loss(&model, &input, &targets));
        let burns = value(&loss(&model, &input, &batch, &device));
        assert!((ours - burns).abs() < 1e-5 * burns.max(1.0), "{name}: {ours} vs {burns}");

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
        let loaded = MultiTaskModel::load(&cfg, &context, &path, &plain).unwrap();
        let plain_input = ModelInput::from_batch(&batch, &plain);
        let a = model.valid().forward(&plain_input);
        let b = loaded.forward(&plain_input);
        assert_eq!(a.tasks.len(), b.tasks.len(), "{name}");
        for (x, y) in a.tasks.iter().zip(&b.tasks) {
            assert_eq!(x.kind, y.kind, "{name}");
            assert_eq!(max_abs_diff(&to_vec(&x.tensor), &to_vec(&y.tensor)), 0.0, "{name}");
        }
        // Nothing but the model file is left behind.
        let left: Vec<_> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert!(left.iter().all(|n| n.to_string_lossy().ends_with(".bpk")), "{left:?}");
    }
}

#[test]
fn invalid_configs_and_files_are_errors_not_panics() {
    let device = Device::flex();
    let mmoe = config(mmoe_arch(2, 8));
    let context = tiny_context(&mmoe);
    let no_tasks = ModelContext::new(&mmoe, tiny_schema(), vec![]);
    assert!(matches!(
        MultiTaskModel::new(&mmoe, &no_tasks, &device),
        Err(ModelError::InvalidConfig(_))
    ));
    let zero = config(mmoe_arch(0, 8));
    assert!(matches!(
        MultiTaskModel::new(&zero, &tiny_context(&zero), &device),
        Err(ModelError::InvalidConfig(_))
    ));

    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.bpk");
    match MultiTaskModel::load(&mmoe, &context, &missing, &device) {
        Err(ModelError::Read { path, .. }) => assert_eq!(path, missing),
        other => panic!("expected a read error, got {other:?}"),
    }

    // A file from another architecture, or another shape, is refused.
    let path = dir.path().join("mmoe.bpk");
    MultiTaskModel::new(&mmoe, &context, &device).unwrap().save(&path).unwrap();
    let sb = config(Architecture::SharedBottom(SharedBottomConfig { hidden: vec![8] }));
    assert!(matches!(
        MultiTaskModel::load(&sb, &tiny_context(&sb), &path, &device),
        Err(ModelError::Record { .. })
    ));
    let wider = config(mmoe_arch(2, 9));
    assert!(matches!(
        MultiTaskModel::load(&wider, &tiny_context(&wider), &path, &device),
        Err(ModelError::Record { .. })
    ));
    // The file itself is fine: the right config loads it.
    MultiTaskModel::load(&mmoe, &context, &path, &device).unwrap();

    // Saving into a directory that does not exist is an error naming the path.
    let bad = dir.path().join("no/such/dir/m.bpk");
    match MultiTaskModel::new(&mmoe, &context, &device).unwrap().save(&bad) {
        Err(ModelError::Write { path, .. }) => assert_eq!(path, bad),
        other => panic!("expected a write error, got {other:?}"),
    }
}

/// Sets one element of every float parameter to `value` (NaN, infinity).
struct Poison(f32);

impl burn::module::ModuleMapper for Poison {
    fn map_float<const D: usize>(
        &mut self,
        param: burn::module::Param<Tensor<D>>,
    ) -> burn::module::Param<Tensor<D>> {
        let (id, value, mapper) = param.consume();
        let (shape, device) = (value.shape(), value.device());
        let mut values: Vec<f32> = value.into_data().try_to_vec().unwrap();
        values[0] = self.0;
        let value = Tensor::from_data(TensorData::new(values, shape), &device);
        burn::module::Param::from_mapped_value(id, value, mapper)
    }
}

#[test]
fn a_model_file_with_nan_or_infinite_weights_is_refused_at_load() {
    let device = Device::flex();
    let mmoe = config(mmoe_arch(2, 8));
    let context = tiny_context(&mmoe);
    let dir = tempfile::tempdir().unwrap();
    for poison in [f32::NAN, f32::INFINITY] {
        let path = dir.path().join("poisoned.bpk");
        let model = MultiTaskModel::new(&mmoe, &context, &device).unwrap();
        model.map(&mut Poison(poison)).save(&path).unwrap();
        match MultiTaskModel::load(&mmoe, &context, &path, &device) {
            Err(ModelError::Record { message, .. }) => {
                assert!(message.contains("NaN or infinite"), "{message}")
            }
            other => panic!("a {poison} weight must be refused, got {other:?}"),
        }
    }
}
