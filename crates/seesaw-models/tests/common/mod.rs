//! Shared fixtures: the tiny schema of the smoke tests (2 categorical slots, 3 dense, 1 multi
//! slot; one binary and one regression task), the model context built from it, and
//! deterministic random batches.
#![allow(dead_code)]

pub mod frame;

use seesaw_data::batch::Batch;
use seesaw_data::feature_map::{
    CategoricalSlot, DenseSlot, FeatureSchema, FeatureSource, MultiSlot, TaskInfo, TaskKind,
};
use seesaw_models::models::{
    CgcConfig, CrossStitchConfig, LogisticConfig, MmoeConfig, PleConfig, SharedBottomConfig,
    SingleTaskConfig,
};
use seesaw_models::{Architecture, ModelConfig, ModelContext};

/// A small deterministic generator (SplitMix64), so the tests need no rand dependency and
/// every run sees the same numbers.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-12);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

pub fn cat(name: &str, cardinality: usize, source: FeatureSource) -> CategoricalSlot {
    CategoricalSlot { name: name.into(), cardinality, source }
}

pub fn dense(name: &str, source: FeatureSource) -> DenseSlot {
    DenseSlot { name: name.into(), source }
}

pub fn multi(name: &str, cardinality: usize, max_len: usize, source: FeatureSource) -> MultiSlot {
    MultiSlot { name: name.into(), cardinality, max_len, source }
}

/// One of each built-in architecture with hidden layers `h` (3 experts for MMoE; 2 shared and
/// 1 per task for CGC and a 2-level PLE).
pub fn every_architecture(h: Vec<usize>) -> Vec<Architecture> {
    vec![
        Architecture::Logistic(LogisticConfig {}),
        Architecture::SingleTask(SingleTaskConfig { hidden: h.clone() }),
        Architecture::SharedBottom(SharedBottomConfig { hidden: h.clone() }),
        Architecture::CrossStitch(CrossStitchConfig { hidden: h.clone() }),
        Architecture::Mmoe(MmoeConfig {
            experts: 3,
            expert_hidden: h.clone(),
            gate_temperature: 1.0,
        }),
        Architecture::Cgc(CgcConfig {
            shared_experts: 2,
            task_experts: 1,
            expert_hidden: h.clone(),
            gate_temperature: 1.0,
        }),
        Architecture::Ple(PleConfig {
            levels: 2,
            shared_experts: 2,
            task_experts: 1,
            expert_hidden: h,
            gate_temperature: 1.0,
        }),
    ]
}

pub fn tiny_schema() -> FeatureSchema {
    use FeatureSource::{Log, User, Video};
    FeatureSchema {
        categorical: vec![cat("user_id", 7, User), cat("video_id", 11, Video)],
        dense: vec![dense("d0", User), dense("d1", Log), dense("d2", Video)],
        multi: vec![multi("tags", 5, 3, Video)],
    }
}

pub fn tiny_tasks() -> Vec<TaskInfo> {
    vec![
        TaskInfo::new("click", TaskKind::Binary),
        TaskInfo::new("watch_ratio", TaskKind::Regression),
    ]
}

/// The context of the tiny schema and tasks for `config`.
pub fn tiny_context(config: &ModelConfig) -> ModelContext {
    ModelContext::new(config, tiny_schema(), tiny_tasks())
}

/// A random batch for `schema`, with labels that depend on the inputs (so they can be learnt):
/// the binary label is 1 for even user ids, the regression label grows with the first dense
/// feature. Multi-valued rows get 0..=max_len real tags, the rest padding.
pub fn random_batch(schema: &FeatureSchema, size: usize, seed: u64) -> Batch {
    let mut rng = Rng(seed);
    let n_cat = schema.categorical.len();
    let n_dense = schema.dense.len();
    let width = schema.multi_width();
    let mut categorical = Vec::with_capacity(size * n_cat);
    let mut dense = Vec::with_capacity(size * n_dense);
    let mut multi = Vec::with_capacity(size * width);
    let mut click = Vec::with_capacity(size);
    let mut ratio = Vec::with_capacity(size);
    for _ in 0..size {
        for slot in &schema.categorical {
            categorical.push(rng.below(slot.cardinality) as u32);
        }
        for _ in 0..n_dense {
            dense.push(rng.normal() as f32);
        }
        for slot in &schema.multi {
            let n = rng.below(slot.max_len + 1);
            for i in 0..slot.max_len {
                multi.push(if i < n { 1 + rng.below(slot.cardinality - 1) as u32 } else { 0 });
            }
        }
        let user = categorical[categorical.len() - n_cat];
        click.push(if user % 2 == 0 { 1.0 } else { 0.0 });
        let d0 = if n_dense > 0 { dense[dense.len() - n_dense] } else { 0.0 };
        ratio.push(1.0 / (1.0 + (-d0).exp()));
    }
    let mut labels = click;
    labels.extend(ratio);
    Batch {
        size,
        categorical,
        n_categorical: n_cat,
        dense,
        n_dense,
        multi,
        multi_width: width,
        masks: vec![1.0; labels.len()],
        labels,
        n_tasks: 2,
        user_group: vec![0; size],
        rows: (0..size as u32).collect(),
        clips: None,
    }
}

pub fn to_vec(t: &burn::tensor::Tensor<2>) -> Vec<f64> {
    t.to_data().iter::<f64>().collect()
}

pub fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}
