//! Every block's analytic gradient (burn's autodiff) against central finite differences of a
//! scalar loss, for every parameter element.
//!
//! Precision: Flex supports f64 tensors, so this test binary makes f64 the default float type of
//! the flex device (once, before any tensor exists; see `device()`), builds the blocks through
//! their ordinary constructors, and compares with eps = 1e-6 and a tolerance of 1e-6 relative
//! (plus 1e-8 absolute). In f32 the central difference would only be good to ~1e-3, too loose to
//! catch a wrong factor in a small term. It lives in its own test binary because the default
//! dtype is per process and per device.
//!
//! The loss is Σ out ⊙ R with a fixed random R, not Σ out: a plain sum hides errors (the sum of
//! softmax weights is constant, so a gate's gradient would be zero whatever the code did).

mod common;

use std::sync::OnceLock;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::{Device, DeviceConfig, FloatDType, Gradients, Int, Tensor, TensorData};
use seesaw_data::feature_map::{FeatureSchema, FeatureSource};
use seesaw_models::ModelInput;
use seesaw_models::blocks::{CrossStitchUnit, ExpertBank, FeatureEmbedding, Gate, Mlp, Tower};
use seesaw_models::rows::Rows;

use common::{Rng, cat, dense, multi, random_batch};

const EPS: f64 = 1e-6;
const RTOL: f64 = 1e-6;
const ATOL: f64 = 1e-8;

fn device() -> Device {
    static DEVICE: OnceLock<Device> = OnceLock::new();
    DEVICE
        .get_or_init(|| {
            let mut plain = Device::flex();
            let mut ad = Device::flex().autodiff();
            // One of the two may share its settings with the other; then the second call says
            // "already initialised", which is fine: the check below is what matters.
            let _ = plain.configure(DeviceConfig::default().float_dtype(FloatDType::F64));
            let _ = ad.configure(DeviceConfig::default().float_dtype(FloatDType::F64));
            let probe = Tensor::<1>::zeros([1], &ad);
            assert_eq!(probe.dtype(), burn::tensor::DType::F64, "flex did not take f64 as default");
            ad
        })
        .clone()
}

/// A fixed random [rows, cols] tensor (projection weights for the loss, or inputs).
fn random(rows: usize, cols: usize, seed: u64) -> Tensor<2> {
    let mut rng = Rng(seed);
    let v: Vec<f64> = (0..rows * cols).map(|_| rng.normal()).collect();
    Tensor::from_data(TensorData::new(v, [rows, cols]), &device())
}

fn scalar(t: Tensor<1>) -> f64 {
    t.to_data().iter::<f64>().next().unwrap()
}

struct Collect<'a> {
    grads: &'a Gradients,
    params: Vec<(ParamId, Vec<f64>)>,
}

impl ModuleVisitor for Collect<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let value = param.val();
        let n = value.shape().num_elements();
        let grad = value
            .grad(self.grads)
            .map(|g| g.to_data().iter::<f64>().collect())
            .unwrap_or(vec![0.0; n]);
        self.params.push((param.id, grad));
    }
}

/// Adds `delta` to element `index` of the parameter `id`.
struct Perturb {
    id: ParamId,
    index: usize,
    delta: f64,
}

impl ModuleMapper for Perturb {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        if param.id != self.id {
            return param;
        }
        let (id, value, mapper) = param.consume();
        let shape = value.shape();
        let mut v: Vec<f64> = value.to_data().iter::<f64>().collect();
        v[self.index] += self.delta;
        let value = Tensor::from_data(TensorData::new(v, shape), &device());
        Param::from_mapped_value(id, value, mapper)
    }
}

/// Checks every parameter element of `module` under `loss`; returns how many were checked.
fn check<M: Module>(module: M, loss: impl Fn(&M) -> Tensor<1>) -> usize {
    let grads = loss(&module).backward();
    let mut collect = Collect { grads: &grads, params: Vec::new() };
    module.visit(&mut collect);
    let mut checked = 0;
    for (id, grad) in collect.params {
        for (index, &analytic) in grad.iter().enumerate() {
            let plus = module.clone().map(&mut Perturb { id, index, delta: EPS });
            let minus = module.clone().map(&mut Perturb { id, index, delta: -EPS });
            let numeric = (scalar(loss(&plus)) - scalar(loss(&minus))) / (2.0 * EPS);
            let tol = ATOL + RTOL * numeric.abs().max(analytic.abs());
            assert!(
                (numeric - analytic).abs() <= tol,
                "param {id:?} element {index}: analytic {analytic}, numeric {numeric}"
            );
            checked += 1;
        }
    }
    assert!(checked > 0);
    checked
}

fn project(out: Tensor<2>, seed: u64) -> Tensor<1> {
    let [b, d] = out.dims();
    (out * random(b, d, seed)).sum()
}

#[test]
fn mlp_gradients_match_finite_differences() {
    let mlp = Mlp::new(5, &[4, 3], &device());
    let x = random(6, 5, 1);
    let n = check(mlp, |m| project(m.forward(x.clone()), 2));
    assert_eq!(n, 5 * 4 + 4 + 4 * 3 + 3);
}

#[test]
fn tower_gradients_match_finite_differences() {
    let tower = Tower::new(4, &[3], &device());
    let x = random(6, 4, 3);
    check(tower, |t| project(t.forward(x.clone()), 4));
}

#[test]
fn expert_bank_gradients_match_finite_differences() {
    let bank = ExpertBank::new(3, 4, &[5, 2], &device());
    let x = random(6, 4, 5);
    let n = check(bank, |b| {
        let out = b.forward(&Rows::Plain(x.clone())); // [3, 6, 2]
        project(out.reshape([18, 2]), 6)
    });
    assert_eq!(n, 3 * (4 * 5 + 5 + 5 * 2 + 2));
}

#[test]
fn gate_with_temperature_gradients_match_finite_differences() {
    for temperature in [1.0f32, 0.5, 3.0] {
        let gate = Gate::new(4, 3, temperature, &device());
        let x = random(6, 4, 7);
        let experts = random(18, 2, 8).reshape([3, 6, 2]);
        // Gate weights alone, and mixed into expert outputs (both paths the models use).
        let rows = Rows::Plain(x.clone());
        check(gate.clone(), |g| project(g.forward(&rows), 9));
        check(gate, |g| project(Gate::mix(g.forward(&rows), experts.clone()), 10));
    }
}

#[test]
fn cross_stitch_gradients_match_finite_differences() {
    let unit = CrossStitchUnit::new(3, &device());
    let xs: Vec<Tensor<2>> = (0..3).map(|k| random(5, 4, 20 + k)).collect();
    let n = check(unit, |u| {
        let outs = u.forward(Tensor::stack(xs.clone(), 0)).chunk(3, 0);
        outs.into_iter()
            .map(|o| o.reshape([5, 4]))
            .enumerate()
            .map(|(k, o)| project(o, 30 + k as u64))
            .reduce(|a, b| a + b)
            .unwrap()
    });
    assert_eq!(n, 9);
}

#[test]
fn embedding_gradients_match_finite_differences_including_pooled_multi() {
    use FeatureSource::{User, Video};
    let schema = FeatureSchema {
        categorical: vec![cat("a", 4, User), cat("b", 3, Video)],
        dense: vec![dense("d0", User), dense("d1", Video)],
        multi: vec![multi("tags", 5, 3, Video), multi("topics", 3, 2, User)],
    };
    let emb = FeatureEmbedding::new(&schema, 2, &device()).unwrap();
    let batch = random_batch(&schema, 8, 11);
    let input = ModelInput::from_batch(&batch, &device());
    assert_eq!(emb.input_dim(), 4 * 2 + 2);
    let n = check(emb, |e| project(e.forward_plain(&input), 12));
    assert_eq!(n, (4 + 3 + 5 + 3) * 2);
}

#[test]
fn padding_row_gets_no_gradient_and_pooling_is_a_masked_mean() {
    let schema = FeatureSchema {
        categorical: vec![],
        dense: vec![],
        multi: vec![multi("tags", 4, 3, FeatureSource::Video)],
    };
    let emb = FeatureEmbedding::new(&schema, 2, &device()).unwrap();
    let ids = Tensor::<2, Int>::from_data(
        TensorData::new(vec![1i64, 2, 0, 0, 0, 0, 3, 3, 3], [3, 3]),
        &device(),
    );
    let input = ModelInput {
        categorical: Tensor::<2, Int>::zeros([3, 0], &device()),
        dense: None,
        multi: Some(ids),
        clip_features: None,
        batch_size: 3,
        row_groups: None,
        want_shared: false,
        want_diagnostics: false,
        parameters_frozen: false,
        varying_keys: Default::default(),
        varying_numbering: None,
    };
    let out: Vec<f64> = emb.forward_plain(&input).to_data().iter::<f64>().collect();
    let w: Vec<f64> = emb.multi[0].weight.val().to_data().iter::<f64>().collect();
    let row = |i: usize| [w[2 * i], w[2 * i + 1]];
    // Row 0: mean of ids 1 and 2 (the padding does not count); row 1: all padding -> zeros;
    // row 2: id 3 three times -> its embedding.
    for c in 0..2 {
        assert!((out[c] - (row(1)[c] + row(2)[c]) / 2.0).abs() < 1e-12);
        assert_eq!(out[2 + c], 0.0);
        assert!((out[4 + c] - row(3)[c]).abs() < 1e-12);
    }
    let grads = project(emb.forward_plain(&input), 13).backward();
    let g: Vec<f64> =
        emb.multi[0].weight.val().grad(&grads).unwrap().to_data().iter::<f64>().collect();
    assert_eq!(&g[0..2], &[0.0, 0.0], "padding row must not be trained");
}

/// DLEN's new parts — the emotion tower, the gaps, the two-head mixture and the supervision of
/// e on confident rows — through the whole model (a small shared-bottom base), under its full
/// loss: the marginal losses of a positive binary, a negative binary and a regression task plus
/// the emotion term.
#[test]
fn dlen_gradients_match_finite_differences() {
    use seesaw_data::feature_map::{TaskInfo, TaskKind};
    use seesaw_models::models::{DlenConfig, SharedBottomConfig};
    use seesaw_models::{
        Architecture, ArchitectureConfig, ModelConfig, ModelContext, ModelTargets, TaskModel,
    };

    let config = DlenConfig {
        base: Box::new(Architecture::SharedBottom(SharedBottomConfig { hidden: vec![3] })),
        gamma: 0.7,
        tie_heads: false,
        emotion_hidden: Some(vec![2]),
        positive_when: Some(vec!["click".parse().unwrap()]),
        negative_when: Some(vec!["hate".parse().unwrap(), "watch_ratio < 0.4".parse().unwrap()]),
    };
    let model_config = ModelConfig {
        architecture: Architecture::Dlen(config.clone()),
        embedding_dim: 2,
        tower_hidden: vec![2],
        ..ModelConfig::default()
    };
    let tasks = vec![
        TaskInfo::new("click", TaskKind::Binary),
        TaskInfo::new("hate", TaskKind::Binary),
        TaskInfo::new("watch_ratio", TaskKind::Regression),
    ];
    let context = ModelContext::new(&model_config, common::tiny_schema(), tasks);
    let model = config.init(&context, &device()).unwrap();
    let mut batch = random_batch(&common::tiny_schema(), 12, 50);
    let hate: Vec<f32> = (0..12).map(|i| f32::from(i % 4 == 1)).collect();
    batch.labels = [batch.label(0).to_vec(), hate, batch.label(1).to_vec()].concat();
    batch.masks = vec![1.0; 3 * 12];
    batch.n_tasks = 3;
    let input = ModelInput::from_batch(&batch, &device());
    let targets = ModelTargets::from_batch(&batch, &device());
    let n = check(model, |m| {
        let terms = m.loss(&m.forward(&input), &targets);
        assert_eq!(terms.auxiliary.len(), 1);
        let tasks = terms.tasks.into_iter().flatten().reduce(|a, b| a + b).unwrap();
        tasks + terms.auxiliary[0].1.clone()
    });
    assert!(n > 100, "{n}");
}

/// The harness itself can fail: a forward pass that hides part of its dependence on a parameter
/// from autodiff (a detached term) must be caught.
#[test]
#[should_panic(expected = "analytic")]
fn the_check_catches_a_wrong_gradient() {
    let mlp = Mlp::new(3, &[2], &device());
    let x = random(4, 3, 40);
    check(mlp, |m| {
        let w = m.layers[0].weight.val();
        let wrong = x.clone().matmul(w.clone()) + x.clone().matmul(w.detach()); // true grad is 2x
        project(wrong, 41)
    });
}

/// FRAME end to end: the feature transform, both graph convolutions (gather and scatter-add
/// over the fitted edges), both scoring branches, the towers, and every loss term (the task
/// losses, the position-weighted clip BCE and BPR), in the paper's version and in the authors'
/// code's (row normalisation, shared GCN weights, a trainable feature table, batch-wide BPR,
/// σ(Σ clip logits), watched-fraction weights).
#[test]
fn frame_gradients_match_finite_differences() {
    use common::frame::{DIM, N_CLIPS, batch, schema, tasks, training_rows};
    use seesaw_models::models::frame::{
        Activation, BprScope, ClipFeatures, ClipWeighting, FrameConfig, Normalization, VideoScore,
    };
    use seesaw_models::{
        Architecture, ClipShape, ModelConfig, ModelContext, ModelTargets, MultiTaskModel,
    };

    let paper = FrameConfig {
        n_clips: N_CLIPS,
        features: ClipFeatures::Linear,
        dim: 2,
        activation: Activation::Tanh,
        score_hidden: vec![3],
        ..FrameConfig::default()
    };
    let code = FrameConfig {
        normalization: Normalization::Row,
        share_gcn_weights: true,
        trainable_features: true,
        bpr_scope: BprScope::Batch,
        video_score: VideoScore::Sum,
        clip_weighting: ClipWeighting::WatchedFraction,
        gcn_layers: 2,
        ..paper.clone()
    };
    let rows = training_rows(24, 2);
    let train = batch(&rows);
    for frame in [paper, code] {
        let cfg = ModelConfig {
            architecture: Architecture::Frame(frame),
            embedding_dim: 2,
            tower_hidden: vec![2],
            ..ModelConfig::default()
        };
        let context = ModelContext {
            clips: Some(ClipShape { n_clips: N_CLIPS, feature_dim: DIM }),
            ..ModelContext::new(&cfg, schema(), tasks())
        };
        let mut batches = vec![train.clone()].into_iter();
        let model = MultiTaskModel::fit_new(&cfg, &context, &mut batches, &device()).unwrap();
        let input = ModelInput::from_batch(&train, &device());
        let targets = ModelTargets::from_batch(&train, &device());
        check(model, |m| {
            let terms = m.loss(&m.forward(&input), &targets);
            assert_eq!(terms.auxiliary.len(), 2);
            let tasks = terms.tasks.into_iter().map(|t| t.unwrap());
            tasks.chain(terms.auxiliary.into_iter().map(|(_, t)| t)).reduce(|a, b| a + b).unwrap()
        });
    }
}

/// `[model.cmi]` with joint heads on a shared-bottom model: the task losses plus the joint
/// heads' term, through the heads, the shared bottom and the embeddings (labels of task a enter
/// the heads as inputs).
#[test]
fn cmi_joint_head_gradients_match_finite_differences() {
    use seesaw_data::feature_map::{TaskInfo, TaskKind};
    use seesaw_models::cmi::CmiConfig;
    use seesaw_models::cmi::term::JOINT_TERM;
    use seesaw_models::models::SharedBottomConfig;
    use seesaw_models::{Architecture, ModelConfig, ModelContext, ModelTargets, MultiTaskModel};

    let model_config = ModelConfig {
        architecture: Architecture::SharedBottom(SharedBottomConfig { hidden: vec![3] }),
        embedding_dim: 2,
        tower_hidden: vec![2],
        cmi: Some(CmiConfig { beta: 0.7, critic_hidden: vec![2], ..CmiConfig::default() }),
        ..ModelConfig::default()
    };
    let tasks = vec![
        TaskInfo::new("click", TaskKind::Binary),
        TaskInfo::new("hate", TaskKind::Binary),
        TaskInfo::new("watch_ratio", TaskKind::Regression),
    ];
    let context = ModelContext::new(&model_config, common::tiny_schema(), tasks);
    let model = MultiTaskModel::new(&model_config, &context, &device()).unwrap();
    assert_eq!(model.cmi.as_ref().unwrap().joint_heads.len(), 3);
    let mut batch = random_batch(&common::tiny_schema(), 12, 60);
    let hate: Vec<f32> = (0..12).map(|i| f32::from(i % 3 == 1)).collect();
    batch.labels = [batch.label(0).to_vec(), hate, batch.label(1).to_vec()].concat();
    batch.masks = vec![1.0; 3 * 12];
    batch.masks[12 + 5] = 0.0; // one row without a hate label: its pairs skip it
    batch.n_tasks = 3;
    let input = ModelInput::from_batch(&batch, &device());
    let targets = ModelTargets::from_batch(&batch, &device());
    let n = check(model, |m| {
        let terms = m.loss(&m.forward(&input), &targets);
        assert_eq!(terms.auxiliary.len(), 1);
        assert_eq!(terms.auxiliary[0].0, JOINT_TERM);
        let tasks = terms.tasks.into_iter().flatten().reduce(|a, b| a + b).unwrap();
        tasks + terms.auxiliary[0].1.clone()
    });
    assert!(n > 50, "{n}");
}

/// The contrastive critic and its loss, with fixed negatives (in training the negatives'
/// distribution is a constant of the step: neighbours and the generator's probabilities carry no
/// gradient).
#[test]
fn cmi_critic_gradients_match_finite_differences() {
    use seesaw_models::cmi::PairCritic;
    use seesaw_models::cmi::critic::contrastive_loss;

    let critic = PairCritic::new(3, &[4], &device());
    let h = random(6, 3, 70);
    let labels =
        |v: [f64; 6]| Tensor::<2>::from_data(TensorData::new(v.to_vec(), [6, 1]), &device());
    let y_a = labels([1.0, 0.0, 1.0, 1.0, 0.0, 0.0]);
    let y_b = labels([1.0, 0.0, 0.0, 1.0, 1.0, 0.0]);
    let values = random(6, 3, 71);
    let raw: Vec<f64> = random(6, 3, 72).to_data().iter::<f64>().map(f64::abs).collect();
    let weights: Vec<f64> = raw
        .chunks(3)
        .flat_map(|r| {
            let s: f64 = r.iter().sum();
            r.iter().map(move |v| v / s).collect::<Vec<_>>()
        })
        .collect();
    let weights = Tensor::<2>::from_data(TensorData::new(weights, [6, 3]), &device());
    let mask = labels([1.0, 1.0, 0.0, 1.0, 1.0, 1.0]);
    check(critic, |c| {
        let (positive, negative) = c.scores(h.clone(), y_a.clone(), y_b.clone(), values.clone());
        contrastive_loss(positive, negative, weights.clone(), mask.clone(), 5.0)
    });
}
