//! DLEN (models/dlen.rs): the ordering of its two heads on every row, its supervision, and the
//! configs it refuses. The reduction to the base model is in dlen_reduction.rs (its own binary:
//! it seeds burn's process-wide generator), the gradients in gradcheck.rs.

mod common;

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{Device, Tensor};
use seesaw_data::feature_map::{TaskInfo, TaskKind};
use seesaw_models::models::dlen::{Dlen, DlenConfig, EMOTION, EMOTION_LOSS};
use seesaw_models::models::{CgcConfig, MmoeConfig, SharedBottomConfig, SingleTaskConfig};
use seesaw_models::{
    Architecture, ArchitectureConfig, ModelConfig, ModelContext, ModelInput, ModelTargets,
    OutputKind, RegressionHead, TaskModel,
};

use common::{Rng, random_batch, tiny_schema, to_vec};

fn tasks() -> Vec<TaskInfo> {
    vec![
        TaskInfo::new("click", TaskKind::Binary),
        TaskInfo::new("hate", TaskKind::Binary),
        TaskInfo::new("watch_ratio", TaskKind::Regression),
    ]
}

fn dlen(base: Architecture, gamma: f32) -> DlenConfig {
    DlenConfig {
        base: Box::new(base),
        gamma,
        tie_heads: false,
        emotion_hidden: None,
        positive_when: Some(vec!["click".parse().unwrap()]),
        negative_when: Some(vec!["hate".parse().unwrap(), "watch_ratio < 0.3".parse().unwrap()]),
    }
}

fn context(config: &DlenConfig, head: RegressionHead) -> ModelContext {
    let model = ModelConfig {
        architecture: Architecture::Dlen(config.clone()),
        embedding_dim: 4,
        tower_hidden: vec![5],
        regression_head: head,
        cmi: None,
    };
    ModelContext::new(&model, tiny_schema(), tasks())
}

fn shared_bottom() -> Architecture {
    Architecture::SharedBottom(SharedBottomConfig { hidden: vec![8] })
}

/// A batch of the tiny schema with three tasks: random labels (hate rare).
fn batch(size: usize, seed: u64) -> seesaw_data::batch::Batch {
    let mut b = random_batch(&tiny_schema(), size, seed);
    let mut rng = Rng(seed ^ 0xD1E5);
    let click = b.label(0).to_vec();
    let ratio = b.label(1).to_vec();
    let hate: Vec<f32> = (0..size).map(|_| f32::from(rng.uniform() < 0.2)).collect();
    b.labels = [click, hate, ratio].concat();
    b.masks = vec![1.0; 3 * size];
    b.n_tasks = 3;
    b
}

fn scalar(t: &Tensor<1>) -> f64 {
    t.to_data().iter::<f64>().next().unwrap()
}

/// Multiplies every parameter by a factor, so that the gaps and logits reach large magnitudes.
struct Scale(f32);

impl ModuleMapper for Scale {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let factor = self.0;
        param.map(|t| t.mul_scalar(factor))
    }
}

#[test]
fn the_positive_state_never_lowers_a_positive_task_nor_raises_a_negative_one() {
    let device = Device::flex();
    let mut checked = 0;
    for (seed, base) in [
        (1, shared_bottom()),
        (2, Architecture::Mmoe(MmoeConfig::default())),
        (
            3,
            Architecture::Cgc(CgcConfig {
                shared_experts: 2,
                task_experts: 1,
                expert_hidden: vec![8],
                gate_temperature: 1.0,
            }),
        ),
    ] {
        for head in [RegressionHead::Sigmoid, RegressionHead::Identity] {
            let config = dlen(base.clone(), 0.5);
            let model: Dlen = config.init(&context(&config, head), &device).unwrap();
            for scale in [1.0, 4.0, 30.0] {
                let model = model.clone().map(&mut Scale(scale));
                let input = ModelInput::from_batch(&batch(64, seed), &device);
                let parts = model.parts(&input);
                let heads = parts.heads.expect("untied");
                for (k, (a, b)) in heads.into_iter().enumerate() {
                    let (a, b) = (to_vec(&a), to_vec(&b));
                    // click and watch_ratio are positive, hate negative.
                    let sign = if k == 1 { -1.0 } else { 1.0 };
                    for (x, y) in a.iter().zip(&b) {
                        assert!(sign * (x - y) >= 0.0, "task {k}, scale {scale}: a {x}, b {y}");
                        checked += 1;
                    }
                }
                // The mixture lies between its two heads, so it is a probability for binary
                // tasks.
                let out = model.forward(&input);
                for task in &out.tasks[..2] {
                    assert_eq!(task.kind, OutputKind::Probability);
                    assert!(to_vec(&task.tensor).iter().all(|p| (0.0..=1.0).contains(p)));
                }
            }
        }
    }
    assert_eq!(checked, 3 * 2 * 3 * 3 * 64);
}

#[test]
fn the_emotion_is_an_extra_score_and_its_supervision_a_named_term_scaled_by_gamma() {
    let device = Device::flex();
    let config = dlen(shared_bottom(), 1.0);
    assert_eq!(config.extra_scores()[0].name, EMOTION);
    let ctx = context(&config, RegressionHead::Sigmoid);
    let model: Dlen = config.init(&ctx, &device).unwrap();
    let b = batch(32, 5);
    let input = ModelInput::from_batch(&b, &device);
    let targets = ModelTargets::from_batch(&b, &device);
    let out = model.forward(&input);
    let term = |m: &Dlen| -> f64 {
        let terms = m.loss(&out, &targets);
        assert_eq!(terms.auxiliary.len(), 1);
        assert_eq!(terms.auxiliary[0].0, EMOTION_LOSS);
        scalar(&terms.auxiliary[0].1)
    };
    let one = term(&model);
    assert!(one > 0.0);
    let mut half = model.clone();
    half.spec.gamma = 0.5;
    assert!((term(&half) - one / 2.0).abs() < 1e-6);

    // By hand: the mean BCE of e over the confident rows (click, or hate / watch ratio < 0.3
    // but not both sides).
    let e: Vec<f64> = to_vec(&out.extras[0].tensor);
    let (click, hate, ratio) = (b.label(0), b.label(1), b.label(2));
    let mut sum = 0.0;
    let mut n = 0.0;
    for i in 0..32 {
        let pos = click[i] == 1.0;
        let neg = hate[i] == 1.0 || ratio[i] < 0.3;
        if pos == neg {
            continue;
        }
        let p = 1.0 / (1.0 + (-e[i]).exp());
        sum -= if pos { p.ln() } else { (1.0 - p).ln() };
        n += 1.0;
    }
    assert!(n > 0.0);
    assert!((one - sum / n).abs() < 1e-4, "{one} vs {}", sum / n);

    // With gamma = 0 there is no term at all.
    let mut none = model.clone();
    none.spec.gamma = 0.0;
    assert!(none.loss(&out, &targets).auxiliary.is_empty());
}

#[test]
fn a_batch_without_confident_rows_adds_nothing() {
    let device = Device::flex();
    let config = dlen(shared_bottom(), 1.0);
    let model: Dlen = config.init(&context(&config, RegressionHead::Sigmoid), &device).unwrap();
    let mut b = batch(16, 9);
    // No click, no hate, every watch ratio high: no rule fires.
    b.labels = [vec![0.0; 16], vec![0.0; 16], vec![0.9; 16]].concat();
    let out = model.forward(&ModelInput::from_batch(&b, &device));
    let terms = model.loss(&out, &ModelTargets::from_batch(&b, &device));
    assert_eq!(scalar(&terms.auxiliary[0].1), 0.0);
}

#[test]
fn bases_without_a_shared_representation_and_one_sided_rules_are_refused() {
    let device = Device::flex();
    let single = dlen(Architecture::SingleTask(SingleTaskConfig { hidden: vec![4] }), 0.5);
    let err = single.init(&context(&single, RegressionHead::Sigmoid), &device).unwrap_err();
    assert!(err.to_string().contains("no shared representation"), "{err}");

    let nested = dlen(Architecture::Dlen(dlen(shared_bottom(), 0.5)), 0.5);
    assert!(nested.validate().unwrap_err().to_string().contains("cannot itself be dlen"));

    let mut one_sided = dlen(shared_bottom(), 0.5);
    one_sided.negative_when = Some(vec![]);
    let err = one_sided.init(&context(&one_sided, RegressionHead::Sigmoid), &device).unwrap_err();
    assert!(err.to_string().contains("negative_when"), "{err}");

    let mut unknown = dlen(shared_bottom(), 0.5);
    unknown.positive_when = Some(vec!["share".parse().unwrap()]);
    let err = unknown.init(&context(&unknown, RegressionHead::Sigmoid), &device).unwrap_err();
    assert!(err.to_string().contains("`share` names no task"), "{err}");

    // The defaults skip the tasks a model does not have: like, follow, ... are absent here,
    // so with no positive rule left and gamma > 0 the model is refused with a hint.
    let mut defaults = dlen(shared_bottom(), 0.5);
    defaults.positive_when = None;
    defaults.negative_when = None;
    let err = defaults.init(&context(&defaults, RegressionHead::Sigmoid), &device).unwrap_err();
    assert!(err.to_string().contains("positive_when"), "{err}");
}

#[test]
fn the_toml_form_reads_and_writes_back() {
    let text = r#"kind = "dlen"
gamma = 0.25
positive_when = ["like", "follow"]
negative_when = ["hate", "watch_ratio < 0.2"]
base = { kind = "mmoe", experts = 2, expert_hidden = [8], gate_temperature = 1.0 }
"#;
    let arch: Architecture = toml::from_str(text).unwrap();
    let Architecture::Dlen(config) = &arch else { panic!("{arch:?}") };
    assert_eq!(config.gamma, 0.25);
    assert_eq!(config.negative_when.as_ref().unwrap()[1].to_string(), "watch_ratio < 0.2");
    let back: Architecture = toml::from_str(&toml::to_string(&arch).unwrap()).unwrap();
    assert_eq!(back, arch);
    let bad = text.replace("\"watch_ratio < 0.2\"", "\"watch_ratio < twenty\"");
    let err = toml::from_str::<Architecture>(&bad).unwrap_err().to_string();
    assert!(err.contains("is not a number"), "{err}");
}
