//! The CMI matrix of a trained model: for every unordered pair of its tasks, the conditional
//! mutual information I(Y_a; Y_b | H) between their labels given the model's shared
//! representation h, in nats, with a bootstrap interval (`seesaw cmi`, the compare report).
//!
//! The estimator is contrastive (CCMI, Mukherjee et al. 2020, with CCL-K's kernel weighting,
//! Tsai et al. 2022): a critic f(h, y_a, y_b) learns to tell the observed triples from triples
//! whose y_b was replaced by a draw from p(y_b | h) — kernel neighbours or the model's own tower
//! b (`seesaw_models::cmi::negatives`) — on one half of the rows; a second critic that does not
//! see y_a learns the sampler's own error; on the other half, the difference of their
//! Donsker–Varadhan bounds is the estimate. The interval resamples the held-out rows
//! (it does not retrain the critic, so it shows the estimate's sampling spread, not the critic's
//! training variance).

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Tensor, TensorData};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};

use seesaw_data::batch::Batch;
use seesaw_data::feature_map::{TaskInfo, TaskKind};
use seesaw_models::cmi::critic::contrastive_loss;
use seesaw_models::cmi::{CmiSampler, Negatives, Neighbours, PairCritic, dv_estimate};
use seesaw_models::{ModelInput, MultiTaskModel, to_vec};

use crate::error::{Result, TrainError};

/// How the two critics' scores become an estimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CmiBound {
    /// The difference of the two critics' Donsker–Varadhan bounds (partition terms clipped,
    /// SMILE): the default, measured best on the simulator (docs/cmi-results.md).
    DonskerVaradhan,
    /// The mean over held-out triples of f_joint − f_marginal, the estimated pointwise CMI: no
    /// exponential, but every error of the two critics goes straight into it.
    LogRatio,
}

/// How the estimate is made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CmiSettings {
    pub sampler: CmiSampler,
    pub bound: CmiBound,
    /// Kernel sampler: neighbours per row.
    pub neighbours: usize,
    pub critic_hidden: Vec<usize>,
    /// Critic training: Adam steps, rows per step, learning rate.
    pub steps: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    /// Bootstrap resamples of the held-out rows for the 95% interval.
    pub bootstrap: usize,
    /// At most this many rows (a uniform sample) are used.
    pub max_rows: usize,
    pub seed: u64,
}

impl Default for CmiSettings {
    fn default() -> Self {
        Self {
            sampler: CmiSampler::Kernel,
            bound: CmiBound::DonskerVaradhan,
            neighbours: 8,
            critic_hidden: vec![32],
            steps: 600,
            batch_size: 256,
            learning_rate: 3e-3,
            bootstrap: 200,
            max_rows: 20_000,
            seed: 0,
        }
    }
}

/// One pair's estimate, in nats.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairCmi {
    pub a: String,
    pub b: String,
    pub cmi: f64,
    pub low: f64,
    pub high: f64,
}

/// `seesaw cmi --json`'s answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CmiMatrix {
    pub rows: usize,
    pub sampler: String,
    pub pairs: Vec<PairCmi>,
}

impl CmiMatrix {
    /// The estimate of the pair (a, b) in either order.
    pub fn get(&self, a: &str, b: &str) -> Option<&PairCmi> {
        self.pairs.iter().find(|p| (p.a == a && p.b == b) || (p.a == b && p.b == a))
    }
}

/// `[compare.cmi_matrix]`: the CMI matrix of every run of an architecture with a shared
/// representation, on the evaluated part. Cheaper than `seesaw cmi`'s defaults, since it runs
/// once per architecture and seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CompareCmi {
    pub enabled: bool,
    pub sampler: CmiSampler,
    pub max_rows: usize,
    pub steps: usize,
    pub bootstrap: usize,
}

impl Default for CompareCmi {
    fn default() -> Self {
        Self {
            enabled: true,
            sampler: CmiSampler::Kernel,
            max_rows: 5_000,
            steps: 300,
            bootstrap: 100,
        }
    }
}

impl CompareCmi {
    pub fn settings(&self, seed: u64) -> CmiSettings {
        CmiSettings {
            sampler: self.sampler,
            max_rows: self.max_rows,
            steps: self.steps,
            bootstrap: self.bootstrap,
            seed,
            ..CmiSettings::default()
        }
    }

    /// The matrix of a trained model on `rows` of `data`; `None` when turned off or when the
    /// model has no shared representation or fewer than two tasks.
    pub fn matrix(
        &self,
        model: &MultiTaskModel,
        data: &seesaw_data::dataset::PreparedDataset,
        rows: &[u32],
        batch_size: usize,
        seed: u64,
    ) -> Result<Option<CmiMatrix>> {
        if !self.enabled || model.network.shared_dim().is_none() || model.tasks.len() < 2 {
            return Ok(None);
        }
        let settings = self.settings(seed);
        let batches = rows.chunks(batch_size).map(|r| data.batch(r));
        let collected = CmiData::collect(model, batches, settings.max_rows, seed, &Device::flex())?;
        Ok(Some(cmi_matrix(&collected, &settings, &mut |_, _| {})))
    }
}

/// One pair's CMI over the seeds of an architecture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairCmiSummary {
    pub a: String,
    pub b: String,
    pub cmi: seesaw_metrics::MeanSd,
}

/// The pairs' mean ± sd over the runs' matrices (pairs in the first matrix's order).
pub fn summarise_matrices(matrices: &[&CmiMatrix]) -> Result<Vec<PairCmiSummary>> {
    let Some(first) = matrices.first() else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    for pair in &first.pairs {
        let values: Vec<f64> =
            matrices.iter().filter_map(|m| m.get(&pair.a, &pair.b)).map(|p| p.cmi).collect();
        if let Some(cmi) = seesaw_metrics::MeanSd::from_values(&values)? {
            out.push(PairCmiSummary { a: pair.a.clone(), b: pair.b.clone(), cmi });
        }
    }
    Ok(out)
}

/// What the estimator reads: h, labels, masks and the model's predictions of n rows.
#[derive(Debug, Clone, Default)]
pub struct CmiData {
    pub n: usize,
    pub d: usize,
    /// [n × d]
    pub h: Vec<f32>,
    pub tasks: Vec<TaskInfo>,
    /// Per task, n values.
    pub labels: Vec<Vec<f32>>,
    pub masks: Vec<Vec<f32>>,
    /// Per task, the model's probability (binary) or value (regression): the variational
    /// sampler's generator.
    pub predictions: Vec<Vec<f32>>,
}

impl CmiData {
    /// Runs the model over the batches and keeps h, labels and predictions of a uniform sample of
    /// at most `max_rows` rows (reservoir sampling, seeded).
    pub fn collect(
        model: &MultiTaskModel,
        batches: impl Iterator<Item = Batch>,
        max_rows: usize,
        seed: u64,
        device: &Device,
    ) -> Result<Self> {
        let tasks = model.tasks.clone();
        let k = tasks.len();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ 0xC1_C1);
        let mut data = CmiData {
            tasks,
            labels: vec![Vec::new(); k],
            masks: vec![Vec::new(); k],
            predictions: vec![Vec::new(); k],
            ..Default::default()
        };
        let mut seen = 0usize;
        for batch in batches {
            let input = ModelInput { want_shared: true, ..ModelInput::from_batch(&batch, device) };
            let outputs = model.forward(&input);
            let Some(h) = outputs.shared.clone() else {
                return Err(TrainError::Config(
                    "the model has no shared representation h (single-task and logistic models \
                     have none): there is nothing to condition the CMI on"
                        .into(),
                ));
            };
            let d = h.dims()[1];
            data.d = d;
            let h = to_vec(h);
            let predictions: Vec<Vec<f32>> =
                outputs.predictions().into_iter().map(to_vec).collect();
            for i in 0..batch.size {
                // Algorithm R: row `seen` replaces a kept row with probability max_rows / (seen + 1).
                let slot = if data.n < max_rows {
                    data.push_empty_row();
                    Some(data.n - 1)
                } else {
                    let j = rng.random_range(0..=seen);
                    (j < max_rows).then_some(j)
                };
                if let Some(j) = slot {
                    data.h[j * d..(j + 1) * d].copy_from_slice(&h[i * d..(i + 1) * d]);
                    for (t, prediction) in predictions.iter().enumerate() {
                        data.labels[t][j] = batch.label(t)[i];
                        data.masks[t][j] = batch.mask(t)[i];
                        data.predictions[t][j] = prediction[i];
                    }
                }
                seen += 1;
            }
        }
        Ok(data)
    }

    /// One more row of zeros, to be filled.
    fn push_empty_row(&mut self) {
        self.n += 1;
        self.h.extend(std::iter::repeat_n(0.0, self.d));
        let columns = self.labels.iter_mut().chain(&mut self.masks).chain(&mut self.predictions);
        columns.for_each(|column| column.push(0.0));
    }
}

/// Every unordered pair of the data's tasks, in task order; `on_pair(done, total)` after each.
pub fn cmi_matrix(
    data: &CmiData,
    settings: &CmiSettings,
    on_pair: &mut dyn FnMut(usize, usize),
) -> CmiMatrix {
    let device = Device::flex();
    let neighbours = (settings.sampler == CmiSampler::Kernel)
        .then(|| Neighbours::rbf(&data.h, data.n, data.d, settings.neighbours, &device));
    let k = data.tasks.len();
    let total = k * k.saturating_sub(1) / 2;
    let mut pairs = Vec::new();
    for a in 0..k {
        for b in a + 1..k {
            let negatives = match &neighbours {
                Some(nb) => nb.negatives(&data.labels[b], &data.masks[b]),
                None => Negatives::from_tower(
                    data.tasks[b].kind,
                    &data.predictions[b],
                    &data.labels[b],
                    &data.masks[b],
                ),
            };
            let rows: Vec<usize> = (0..data.n)
                .filter(|&i| {
                    data.masks[a][i] > 0.0 && data.masks[b][i] > 0.0 && negatives.usable(i)
                })
                .collect();
            let (cmi, low, high) = estimate_pair(
                &data.h,
                data.d,
                &data.labels[a],
                &data.labels[b],
                data.tasks[b].kind,
                &negatives,
                &rows,
                settings,
            );
            pairs.push(PairCmi {
                a: data.tasks[a].name.clone(),
                b: data.tasks[b].name.clone(),
                cmi,
                low,
                high,
            });
            on_pair(pairs.len(), total);
        }
    }
    CmiMatrix { rows: data.n, sampler: settings.sampler.name().to_string(), pairs }
}

/// (estimate, low, high) for one pair over `rows`: the critics learn on one half, the estimate
/// is taken on the other, the interval resamples that half.
#[allow(clippy::too_many_arguments)]
pub fn estimate_pair(
    h: &[f32],
    d: usize,
    y_a: &[f32],
    y_b: &[f32],
    kind_b: TaskKind,
    negatives: &Negatives,
    rows: &[usize],
    settings: &CmiSettings,
) -> (f64, f64, f64) {
    if rows.len() < 20 {
        return (0.0, f64::NEG_INFINITY, f64::INFINITY);
    }
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(settings.seed);
    let mut shuffled = rows.to_vec();
    shuffled.shuffle(&mut rng);
    let (fit_rows, held_out) = shuffled.split_at(shuffled.len() / 2);
    let scale = Standardise::fit(h, d, y_a, y_b, kind_b, fit_rows);
    let m = negatives.m;
    // Two critics on the same negatives: with y_a (KL(p(h, y_a, y_b) ‖ p(h, y_a) q(y_b | h)),
    // = I + the sampler's error E KL(p(y_b | h) ‖ q)) and without it (the sampler's error alone).
    // Their difference is the CMI whatever the sampler's error (CCMI's difference of two
    // divergences), so a miscalibrated tower or coarse neighbours do not pass for dependence.
    // The difference of their DV bounds is the default estimate; at the optimum
    // f_joint − f_marginal = ln p(y_b | h, y_a) / p(y_b | h) as well, and its mean over the
    // held-out triples is the alternative (`bound`), which has no exponential but takes every
    // error of the critics at face value (it was off by up to 0.03 nats on the simulator).
    let joint = held_out_scores(
        h, y_a, y_b, negatives, fit_rows, held_out, &scale, true, settings, &mut rng,
    );
    let marginal = held_out_scores(
        h, y_a, y_b, negatives, fit_rows, held_out, &scale, false, settings, &mut rng,
    );
    let weights: Vec<f32> = held_out
        .iter()
        .flat_map(|&i| negatives.weights[i * m..(i + 1) * m].iter().copied())
        .collect();
    let estimate_on = |rows: &[usize]| match settings.bound {
        CmiBound::LogRatio => {
            rows.iter().map(|&i| (joint.0[i] - marginal.0[i]) as f64).sum::<f64>()
                / rows.len().max(1) as f64
        }
        CmiBound::DonskerVaradhan => {
            dv_estimate(&joint.0, &joint.1, &weights, m, rows)
                - dv_estimate(&marginal.0, &marginal.1, &weights, m, rows)
        }
    };
    let all: Vec<usize> = (0..held_out.len()).collect();
    let estimate = estimate_on(&all);
    let mut resampled: Vec<f64> = (0..settings.bootstrap)
        .map(|_| {
            let rows: Vec<usize> = (0..all.len()).map(|_| rng.random_range(0..all.len())).collect();
            estimate_on(&rows)
        })
        .collect();
    resampled.sort_by(f64::total_cmp);
    let quantile = |q: f64| {
        if resampled.is_empty() {
            return estimate;
        }
        resampled[((q * (resampled.len() - 1) as f64).round() as usize).min(resampled.len() - 1)]
    };
    (estimate, quantile(0.025), quantile(0.975))
}

/// Trains a critic on `fit_rows` (with y_a, or with y_a held at 0 so that it sees only h and
/// y_b) and returns its scores on `held_out`: the observed triples [n] and the negatives [n × m].
#[allow(clippy::too_many_arguments)]
fn held_out_scores(
    h: &[f32],
    y_a: &[f32],
    y_b: &[f32],
    negatives: &Negatives,
    fit_rows: &[usize],
    held_out: &[usize],
    scale: &Standardise,
    with_a: bool,
    settings: &CmiSettings,
    rng: &mut Xoshiro256PlusPlus,
) -> (Vec<f32>, Vec<f32>) {
    let train_device = Device::flex().autodiff();
    train_device.seed(settings.seed);
    let mut critic = PairCritic::new(scale.d, &settings.critic_hidden, &train_device);
    let mut optimizer = AdamConfig::new().init();
    let zeros = vec![0f32; y_a.len()];
    let y_a = if with_a { y_a } else { &zeros };
    for _ in 0..settings.steps {
        let batch: Vec<usize> = (0..settings.batch_size.min(fit_rows.len()))
            .map(|_| fit_rows[rng.random_range(0..fit_rows.len())])
            .collect();
        let t = scale.tensors(h, y_a, with_a, negatives, y_b, &batch, &train_device);
        let (positive, negative) = critic.scores(t.h, t.y_a, t.y_b, t.negative_values);
        let mask = Tensor::ones([batch.len(), 1], &train_device);
        let loss =
            contrastive_loss(positive, negative, t.negative_weights, mask, batch.len() as f32);
        let grads = GradientsParams::from_grads(loss.backward(), &critic);
        critic = optimizer.step(settings.learning_rate, critic, grads);
    }
    let critic = critic.valid();
    let device = Device::flex();
    let (mut positive, mut negative) = (Vec::new(), Vec::new());
    for chunk in held_out.chunks(4096) {
        let t = scale.tensors(h, y_a, with_a, negatives, y_b, chunk, &device);
        let (p, n) = critic.scores(t.h, t.y_a, t.y_b, t.negative_values);
        positive.extend(to_vec(p));
        negative.extend(to_vec(n));
    }
    (positive, negative)
}

/// Centres and scales h's columns and a regression y_b on the critic's training rows, so that
/// one learning rate suits every model and task (binary labels stay 0/1).
struct Standardise {
    d: usize,
    h_mean: Vec<f32>,
    h_scale: Vec<f32>,
    a: (f32, f32),
    b: (f32, f32),
}

struct CriticTensors {
    h: Tensor<2>,
    y_a: Tensor<2>,
    y_b: Tensor<2>,
    negative_values: Tensor<2>,
    negative_weights: Tensor<2>,
}

impl Standardise {
    fn fit(
        h: &[f32],
        d: usize,
        y_a: &[f32],
        y_b: &[f32],
        kind_b: TaskKind,
        rows: &[usize],
    ) -> Self {
        let n = rows.len().max(1) as f64;
        let mut h_mean = vec![0f32; d];
        let mut h_scale = vec![1f32; d];
        for c in 0..d {
            let mean = rows.iter().map(|&i| h[i * d + c] as f64).sum::<f64>() / n;
            let var = rows.iter().map(|&i| (h[i * d + c] as f64 - mean).powi(2)).sum::<f64>() / n;
            h_mean[c] = mean as f32;
            h_scale[c] = if var > 1e-12 { (1.0 / var.sqrt()) as f32 } else { 0.0 };
        }
        let moments = |y: &[f32]| {
            let mean = rows.iter().map(|&i| y[i] as f64).sum::<f64>() / n;
            let var = rows.iter().map(|&i| (y[i] as f64 - mean).powi(2)).sum::<f64>() / n;
            (mean as f32, if var > 1e-12 { (1.0 / var.sqrt()) as f32 } else { 1.0 })
        };
        let binary = (0.0, 1.0);
        let a = if is_binary(y_a, rows) { binary } else { moments(y_a) };
        let b = if kind_b == TaskKind::Binary { binary } else { moments(y_b) };
        Self { d, h_mean, h_scale, a, b }
    }

    /// The critic's inputs for `rows`; without `scale_a`, y_a is passed as it is (the marginal
    /// critic's zeros).
    #[allow(clippy::too_many_arguments)]
    fn tensors(
        &self,
        h: &[f32],
        y_a: &[f32],
        scale_a: bool,
        negatives: &Negatives,
        y_b: &[f32],
        rows: &[usize],
        device: &Device,
    ) -> CriticTensors {
        let (d, m, n) = (self.d, negatives.m, rows.len());
        let mut hv = Vec::with_capacity(n * d);
        for &i in rows {
            for c in 0..d {
                hv.push((h[i * d + c] - self.h_mean[c]) * self.h_scale[c]);
            }
        }
        let sa = |v: f32| if scale_a { (v - self.a.0) * self.a.1 } else { v };
        let sb = |v: f32| (v - self.b.0) * self.b.1;
        let column = |v: Vec<f32>| Tensor::from_data(TensorData::new(v, [n, 1]), device);
        let grid = |v: Vec<f32>| Tensor::from_data(TensorData::new(v, [n, m]), device);
        CriticTensors {
            h: Tensor::from_data(TensorData::new(hv, [n, d]), device),
            y_a: column(rows.iter().map(|&i| sa(y_a[i])).collect()),
            y_b: column(rows.iter().map(|&i| sb(y_b[i])).collect()),
            negative_values: grid(
                rows.iter()
                    .flat_map(|&i| negatives.values[i * m..(i + 1) * m].iter().map(|&v| sb(v)))
                    .collect(),
            ),
            negative_weights: grid(
                rows.iter()
                    .flat_map(|&i| negatives.weights[i * m..(i + 1) * m].iter().copied())
                    .collect(),
            ),
        }
    }
}

fn is_binary(y: &[f32], rows: &[usize]) -> bool {
    rows.iter().all(|&i| y[i] == 0.0 || y[i] == 1.0)
}
