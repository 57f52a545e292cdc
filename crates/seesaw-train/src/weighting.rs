//! How per-task losses combine into one. `TaskWeighting` is the config (`[train.weighting]`);
//! `Weighting` the trait every rule implements; `WeightingModule` the rules as one burn module,
//! so that a rule with learned parameters (uncertainty weighting) lives in the same module tree
//! as the model: one optimiser, one record, one checkpoint.
//!
//! - fixed weights;
//! - uncertainty weighting (Kendall et al. 2018): learned log-variances s_k,
//!   L = Σ exp(-s_k)·L_k + s_k;
//! - Dynamic Weight Average (Liu et al. 2019): w_k = K·softmax(r_k / T), r_k the ratio of the
//!   task's last two epoch losses, so a task whose loss stalls gets more weight;
//! - PCGrad (Yu et al. 2020): gradient surgery on the shared parameters (see `PcGrad`);
//! - GradNorm (Chen et al. 2018): weights moved each step so that the tasks' gradient norms on
//!   the shared parameters train at similar rates (see `GradNormWeights`).
//!
//! The last two see each task's gradient over the shared parameters every step
//! (`crate::task_gradients`: one extra forward and backward pass per task).

use std::collections::BTreeMap;

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};
use crate::task_gradients::{TaskGradients, dot};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum TaskWeighting {
    Fixed {
        /// Task → weight; tasks not named weigh 1.
        #[serde(default)]
        weights: BTreeMap<String, f64>,
    },
    Uncertainty,
    Dwa {
        #[serde(default = "default_temperature")]
        temperature: f64,
    },
    /// PCGrad: the task losses are summed (weight 1 each), and the gradient of the shared
    /// parameters is each task's gradient with its conflicting components projected away.
    #[serde(rename = "pcgrad")]
    PcGrad,
    /// GradNorm: learned weights (summing to K) that balance the tasks' gradient norms.
    #[serde(rename = "gradnorm")]
    GradNorm {
        /// The restoring force towards equal training rates (the paper's α).
        #[serde(default = "default_gradnorm_alpha")]
        alpha: f64,
        /// The weights' own step size.
        #[serde(default = "default_gradnorm_lr")]
        lr: f64,
    },
}

fn default_temperature() -> f64 {
    2.0
}

fn default_gradnorm_alpha() -> f64 {
    1.5
}

fn default_gradnorm_lr() -> f64 {
    0.025
}

impl Default for TaskWeighting {
    fn default() -> Self {
        TaskWeighting::Fixed { weights: BTreeMap::new() }
    }
}

impl TaskWeighting {
    pub fn validate(&self) -> Result<()> {
        match self {
            TaskWeighting::Fixed { weights }
                if weights.values().any(|w| !(w.is_finite() && *w >= 0.0)) =>
            {
                Err(TrainError::Config("task weights must be finite and not negative".into()))
            }
            TaskWeighting::Dwa { temperature } if temperature.is_nan() || *temperature <= 0.0 => {
                Err(TrainError::Config("the DWA temperature must be positive".into()))
            }
            TaskWeighting::GradNorm { alpha, .. } if !(alpha.is_finite() && *alpha >= 0.0) => {
                Err(TrainError::Config("the GradNorm alpha must be finite and not negative".into()))
            }
            TaskWeighting::GradNorm { lr, .. } if !(lr.is_finite() && *lr > 0.0) => {
                Err(TrainError::Config("the GradNorm lr must be a positive number".into()))
            }
            _ => Ok(()),
        }
    }

    /// The rule for these tasks, its parameters (if any) on `device`.
    /// Refuses weights for tasks the run does not have (a misspelt `clik` would otherwise weigh
    /// nothing and leave `click` at 1, silently).
    pub fn check_tasks(&self, tasks: &[String]) -> Result<()> {
        let TaskWeighting::Fixed { weights } = self else { return Ok(()) };
        let unknown: Vec<&str> =
            weights.keys().filter(|name| !tasks.contains(name)).map(String::as_str).collect();
        if unknown.is_empty() {
            return Ok(());
        }
        Err(TrainError::Config(format!(
            "[train] weighting names {} not among the run's tasks ({})",
            unknown.iter().map(|n| format!("\"{n}\"")).collect::<Vec<_>>().join(", "),
            tasks.join(", ")
        )))
    }

    pub fn build(&self, tasks: &[String], device: &Device) -> WeightingModule {
        match self {
            TaskWeighting::Fixed { weights } => WeightingModule::Static(StaticWeights {
                weights: tasks.iter().map(|t| weights.get(t).copied().unwrap_or(1.0)).collect(),
                dwa_temperature: None,
            }),
            TaskWeighting::Uncertainty => {
                WeightingModule::Uncertainty(UncertaintyWeights::new(tasks.len(), device))
            }
            TaskWeighting::Dwa { temperature } => WeightingModule::Static(StaticWeights {
                weights: vec![1.0; tasks.len()],
                dwa_temperature: Some(*temperature),
            }),
            TaskWeighting::PcGrad => WeightingModule::PcGrad(PcGrad { n_tasks: tasks.len() }),
            TaskWeighting::GradNorm { alpha, lr } => {
                WeightingModule::GradNorm(GradNormWeights::new(tasks.len(), *alpha, *lr, device))
            }
        }
    }
}

/// A rule that combines the per-task losses of a step into the loss to minimise.
pub trait Weighting {
    /// Called before each epoch with the mean training loss of each task in every earlier epoch.
    fn start_epoch(&mut self, _loss_history: &[Vec<f64>]) {}

    /// The weighted total of the tasks present in the batch (`None`: no task has a label).
    fn combine(&self, losses: &[Option<Tensor<1>>]) -> Option<Tensor<1>>;

    /// The current weight of each task, for the metrics log.
    fn weights(&self) -> Vec<f64>;

    /// Whether the rule needs each task's gradient of the shared parameters every step
    /// (gradient-based rules such as PCGrad and GradNorm). The trainer then calls
    /// `observe_task_gradients` and `shared_gradient`, in that order, before `combine`.
    fn wants_task_gradients(&self) -> bool {
        false
    }

    /// Each task's loss and gradient over the model's shared parameters on the step's batch
    /// (`None` where the batch has no label).
    fn observe_task_gradients(&mut self, _gradients: &TaskGradients) {}

    /// The gradient the task losses give the shared parameters in this step, flattened like
    /// `gradients`, when the rule sets it itself (PCGrad's surgery): it replaces their gradient
    /// of the weighted sum (the model's auxiliary terms still add theirs). `None` keeps the plain
    /// gradient. `seed` is fixed by the run's seed and the step, for rules that draw at random,
    /// so that a run is repeatable and a resumed one equals an uninterrupted one.
    fn shared_gradient(&mut self, _gradients: &TaskGradients, _seed: u64) -> Option<Vec<f32>> {
        None
    }
}

/// Every rule, as one module in the trainer's module tree.
#[derive(Module, Debug)]
pub enum WeightingModule {
    Static(StaticWeights),
    Uncertainty(UncertaintyWeights),
    PcGrad(PcGrad),
    GradNorm(GradNormWeights),
}

/// `$w.$call` on whichever rule `$self` holds.
macro_rules! each_rule {
    ($self:expr, $w:ident => $call:expr) => {
        match $self {
            WeightingModule::Static($w) => $call,
            WeightingModule::Uncertainty($w) => $call,
            WeightingModule::PcGrad($w) => $call,
            WeightingModule::GradNorm($w) => $call,
        }
    };
}

impl Weighting for WeightingModule {
    fn start_epoch(&mut self, loss_history: &[Vec<f64>]) {
        each_rule!(self, w => w.start_epoch(loss_history))
    }

    fn combine(&self, losses: &[Option<Tensor<1>>]) -> Option<Tensor<1>> {
        each_rule!(self, w => w.combine(losses))
    }

    fn weights(&self) -> Vec<f64> {
        each_rule!(self, w => w.weights())
    }

    fn wants_task_gradients(&self) -> bool {
        each_rule!(self, w => w.wants_task_gradients())
    }

    fn observe_task_gradients(&mut self, gradients: &TaskGradients) {
        each_rule!(self, w => w.observe_task_gradients(gradients))
    }

    fn shared_gradient(&mut self, gradients: &TaskGradients, seed: u64) -> Option<Vec<f32>> {
        each_rule!(self, w => w.shared_gradient(gradients, seed))
    }
}

/// Σ of the losses present, each times its weight.
fn weighted_sum(losses: &[Option<Tensor<1>>], weights: &[f64]) -> Option<Tensor<1>> {
    losses
        .iter()
        .zip(weights)
        .filter_map(|(l, &w)| l.clone().map(|l| l.mul_scalar(w)))
        .reduce(|a, b| a + b)
}

/// Weights that are numbers, not parameters: fixed, or set by DWA at each epoch.
#[derive(Module, Debug)]
pub struct StaticWeights {
    #[module(skip)]
    pub weights: Vec<f64>,
    /// `Some(T)`: Dynamic Weight Average with temperature T.
    #[module(skip)]
    pub dwa_temperature: Option<f64>,
}

impl Weighting for StaticWeights {
    fn start_epoch(&mut self, loss_history: &[Vec<f64>]) {
        let Some(temperature) = self.dwa_temperature else { return };
        let k = self.weights.len();
        self.weights = match loss_history {
            [.., before, last] => {
                let ratios: Vec<f64> = last
                    .iter()
                    .zip(before)
                    .map(|(l, b)| if *b > 0.0 { l / b } else { 1.0 })
                    .collect();
                let max = ratios.iter().copied().fold(f64::MIN, f64::max);
                let exp: Vec<f64> =
                    ratios.iter().map(|r| ((r - max) / temperature).exp()).collect();
                let sum: f64 = exp.iter().sum();
                exp.iter().map(|e| k as f64 * e / sum).collect()
            }
            _ => vec![1.0; k],
        };
    }

    fn combine(&self, losses: &[Option<Tensor<1>>]) -> Option<Tensor<1>> {
        weighted_sum(losses, &self.weights)
    }

    fn weights(&self) -> Vec<f64> {
        self.weights.clone()
    }
}

/// The learned log-variances of uncertainty weighting, optimised with the model.
#[derive(Module, Debug)]
pub struct UncertaintyWeights {
    pub log_var: Param<Tensor<1>>,
}

impl UncertaintyWeights {
    pub fn new(n_tasks: usize, device: &Device) -> Self {
        Self {
            log_var: Param::from_tensor(Tensor::from_data(
                TensorData::new(vec![0.0f32; n_tasks], [n_tasks]),
                device,
            )),
        }
    }
}

impl Weighting for UncertaintyWeights {
    /// Σ exp(-s_k)·L_k + s_k over the tasks present in the batch.
    fn combine(&self, losses: &[Option<Tensor<1>>]) -> Option<Tensor<1>> {
        let log_var = self.log_var.val();
        let mut total: Option<Tensor<1>> = None;
        for (k, loss) in losses.iter().enumerate() {
            let Some(loss) = loss else { continue };
            let s = log_var.clone().slice(k..k + 1);
            let term = s.clone().neg().exp() * loss.clone() + s;
            total = Some(match total {
                Some(t) => t + term,
                None => term,
            });
        }
        total
    }

    fn weights(&self) -> Vec<f64> {
        let values: Vec<f32> = self.log_var.val().into_data().try_to_vec().unwrap_or_default();
        values.iter().map(|s| (-(*s as f64)).exp()).collect()
    }
}

/// PCGrad (Yu et al. 2020, "Gradient Surgery for Multi-Task Learning"): the task losses weigh 1
/// each; on the shared parameters, each task's gradient g_i loses its component along every
/// other task's gradient g_j that it conflicts with (g_i·g_j < 0: g_i ← g_i − (g_i·g_j/‖g_j‖²)
/// g_j), the other tasks taken in a random order per task, and the step uses the sum of the
/// projected gradients there. Parameters that only one task reaches (its tower) keep their
/// plain gradient. The order is drawn from the seed the trainer passes (the run's seed and the
/// step), so nothing needs saving.
#[derive(Module, Debug)]
pub struct PcGrad {
    #[module(skip)]
    pub n_tasks: usize,
}

impl Weighting for PcGrad {
    fn combine(&self, losses: &[Option<Tensor<1>>]) -> Option<Tensor<1>> {
        weighted_sum(losses, &vec![1.0; losses.len()])
    }

    fn weights(&self) -> Vec<f64> {
        vec![1.0; self.n_tasks]
    }

    fn wants_task_gradients(&self) -> bool {
        true
    }

    fn shared_gradient(&mut self, gradients: &TaskGradients, seed: u64) -> Option<Vec<f32>> {
        let present: Vec<&[f32]> = gradients.gradients().into_iter().flatten().collect();
        if gradients.dim() == 0 || present.len() < 2 {
            return None;
        }
        Some(pcgrad(&present, &mut SplitMix64(seed)))
    }
}

/// The sum of PCGrad's projected gradients; `rng` orders the other tasks for each task.
pub fn pcgrad(gradients: &[&[f32]], rng: &mut SplitMix64) -> Vec<f32> {
    let dim = gradients.first().map_or(0, |g| g.len());
    let mut total = vec![0.0f64; dim];
    for projected in pcgrad_projections(gradients, rng) {
        for (t, p) in total.iter_mut().zip(&projected) {
            *t += p;
        }
    }
    total.into_iter().map(|t| t as f32).collect()
}

/// Each task's gradient after PCGrad's projections (Yu et al. 2020, Algorithm 1): for each other
/// task j, in an order drawn from `rng`, the part along g_j is removed when it conflicts
/// (g_i^PC·g_j < 0), against g_j as it was (not its own projection).
pub fn pcgrad_projections(gradients: &[&[f32]], rng: &mut SplitMix64) -> Vec<Vec<f64>> {
    let squared_norms: Vec<f64> = gradients.iter().map(|g| dot(g, g)).collect();
    gradients
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let mut projected: Vec<f64> = g.iter().map(|&x| x as f64).collect();
            let mut others: Vec<usize> = (0..gradients.len()).filter(|&j| j != i).collect();
            rng.shuffle(&mut others);
            for j in others {
                let g_j = gradients[j];
                let along: f64 = projected.iter().zip(g_j.iter()).map(|(p, &q)| p * q as f64).sum();
                if along < 0.0 && squared_norms[j] > 0.0 {
                    let scale = along / squared_norms[j];
                    for (p, &q) in projected.iter_mut().zip(g_j.iter()) {
                        *p -= scale * q as f64;
                    }
                }
            }
            projected
        })
        .collect()
}

/// A small deterministic generator (SplitMix64), for PCGrad's task order.
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Fisher–Yates.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = (self.next_u64() % (i as u64 + 1)) as usize;
            items.swap(i, j);
        }
    }
}

/// The smallest weight GradNorm leaves a task (before renormalising): a weight that reached 0
/// would give the task's gradient norm no say in its own weight again.
pub const GRADNORM_MIN_WEIGHT: f64 = 1e-4;

/// GradNorm (Chen et al. 2018): task weights w_k, summing to K, moved every step so that each
/// task's weighted gradient norm on the shared parameters, G_k = w_k‖g_k‖, approaches
/// Ḡ·r_k^α, where Ḡ is the mean G_k and r_k = L̃_k / mean_j L̃_j the task's relative inverse
/// training rate (L̃_k = L_k / L_k(0), L_k(0) its loss at the first step it had labels). The
/// target is held constant, so d/dw_k Σ_j |G_j − target_j| = sign(G_k − target_k)·‖g_k‖; the
/// weights take one step of size `lr` along minus that, are kept at least
/// `GRADNORM_MIN_WEIGHT`, and are rescaled to their previous sum. Tasks without labels in the
/// batch are left out of that step.
///
/// The paper takes the norms on the weights of the last shared layer only, to save compute;
/// here they are over all the shared parameters (everything at least two tasks' losses reach:
/// the embeddings, the bottom or the experts), which `task_gradients` computes anyway.
///
/// The weights updated from a step's gradients weigh the next step's loss, as in the paper. The
/// weights and the initial losses are parameters without gradient, so they are saved in the
/// checkpoint with the model; they are kept in f32 in memory too, so that a resumed run equals an
/// uninterrupted one.
#[derive(Module, Debug)]
pub struct GradNormWeights {
    /// w_k.
    pub weights: Param<Tensor<1>>,
    /// L_k(0); NaN until the task has had a label.
    pub initial_loss: Param<Tensor<1>>,
    #[module(skip)]
    pub alpha: f64,
    #[module(skip)]
    pub lr: f64,
    /// The weights of the current step (those before its update), set by
    /// `observe_task_gradients`; `weights` until then.
    #[module(skip)]
    pub step_weights: Option<Vec<f64>>,
}

impl GradNormWeights {
    pub fn new(n_tasks: usize, alpha: f64, lr: f64, device: &Device) -> Self {
        let constant = |v: f32| {
            Param::from_tensor(Tensor::from_data(
                TensorData::new(vec![v; n_tasks], [n_tasks]),
                device,
            ))
            .set_require_grad(false)
        };
        Self {
            weights: constant(1.0),
            initial_loss: constant(f32::NAN),
            alpha,
            lr,
            step_weights: None,
        }
    }

    fn read(param: &Param<Tensor<1>>) -> Vec<f32> {
        param.val().into_data().iter::<f32>().collect()
    }

    /// Sets the values of a parameter without gradient, keeping its id.
    fn write(param: &mut Param<Tensor<1>>, values: Vec<f32>) {
        let n = values.len();
        let value = Tensor::from_data(TensorData::new(values, [n]), &param.val().device());
        *param = Param::initialized(param.id, value.set_require_grad(false));
    }
}

impl Weighting for GradNormWeights {
    fn combine(&self, losses: &[Option<Tensor<1>>]) -> Option<Tensor<1>> {
        weighted_sum(losses, &self.step_weights.clone().unwrap_or_else(|| self.weights()))
    }

    fn weights(&self) -> Vec<f64> {
        Self::read(&self.weights).into_iter().map(f64::from).collect()
    }

    fn wants_task_gradients(&self) -> bool {
        true
    }

    fn observe_task_gradients(&mut self, gradients: &TaskGradients) {
        let weights = self.weights();
        self.step_weights = Some(weights.clone());
        let mut initial = Self::read(&self.initial_loss);
        let mut seen_first = false;
        for (l0, task) in initial.iter_mut().zip(&gradients.tasks) {
            if let Some(task) = task
                && l0.is_nan()
            {
                *l0 = task.loss as f32;
                seen_first = true;
            }
        }
        if seen_first {
            Self::write(&mut self.initial_loss, initial.clone());
        }
        if gradients.dim() == 0 {
            return;
        }
        let present: Vec<(usize, f64, f64)> = gradients
            .tasks
            .iter()
            .enumerate()
            .filter_map(|(k, t)| {
                let t = t.as_ref()?;
                let l0 = initial[k] as f64;
                let ratio = if l0 > 0.0 && l0.is_finite() { t.loss / l0 } else { 1.0 };
                Some((k, dot(&t.gradient, &t.gradient).sqrt(), ratio))
            })
            .collect();
        if present.len() < 2 {
            return;
        }
        let updated = gradnorm_step(&weights, &present, self.alpha, self.lr);
        Self::write(&mut self.weights, updated.into_iter().map(|w| w as f32).collect());
    }
}

/// One GradNorm update of `weights` from `present` = (task, ‖g_k‖, L_k/L_k(0)) of the tasks
/// with labels; the other tasks' weights are unchanged.
pub fn gradnorm_step(
    weights: &[f64],
    present: &[(usize, f64, f64)],
    alpha: f64,
    lr: f64,
) -> Vec<f64> {
    let n = present.len() as f64;
    let g: Vec<f64> = present.iter().map(|&(k, norm, _)| weights[k] * norm).collect();
    let g_mean = g.iter().sum::<f64>() / n;
    let ratio_mean = present.iter().map(|p| p.2).sum::<f64>() / n;
    let before: f64 = present.iter().map(|&(k, ..)| weights[k]).sum();
    let mut out = weights.to_vec();
    for (&(k, norm, ratio), &g_k) in present.iter().zip(&g) {
        let r = if ratio_mean > 0.0 { ratio / ratio_mean } else { 1.0 };
        let target = g_mean * r.powf(alpha);
        let grad = (g_k - target).signum() * norm;
        let grad = if g_k == target { 0.0 } else { grad };
        out[k] = (weights[k] - lr * grad).max(GRADNORM_MIN_WEIGHT);
    }
    let after: f64 = present.iter().map(|&(k, ..)| out[k]).sum();
    for &(k, ..) in present {
        out[k] *= before / after;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        vec!["a".to_string(), "b".to_string()]
    }

    #[test]
    fn fixed_weights_for_a_task_the_run_lacks_are_refused_with_its_name() {
        let weights = [("a".to_string(), 2.0), ("clik".to_string(), 100.0)].into();
        let error = TaskWeighting::Fixed { weights }.check_tasks(&names()).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("\"clik\"") && message.contains("(a, b)"), "{message}");
        assert!(!message.contains("\"a\""), "{message}");
        let known = [("b".to_string(), 0.5)].into();
        assert!(TaskWeighting::Fixed { weights: known }.check_tasks(&names()).is_ok());
        assert!(TaskWeighting::Uncertainty.check_tasks(&names()).is_ok());
    }

    #[test]
    fn dwa_upweights_the_task_whose_loss_fell_least() {
        let device = Device::flex();
        let mut dwa = TaskWeighting::Dwa { temperature: 2.0 }.build(&names(), &device);
        dwa.start_epoch(&[vec![1.0, 1.0]]);
        assert_eq!(dwa.weights(), vec![1.0, 1.0]);
        dwa.start_epoch(&[vec![1.0, 1.0], vec![0.5, 0.9]]);
        let w = dwa.weights();
        // r = (0.5, 0.9): w_b / w_a = exp((0.9 - 0.5) / 2).
        assert!((w[1] / w[0] - (0.2f64).exp()).abs() < 1e-12);
        assert!((w[0] + w[1] - 2.0).abs() < 1e-12);
    }

    #[test]
    fn fixed_weights_default_to_one_and_weigh_the_sum() {
        let device = Device::flex();
        let fixed =
            TaskWeighting::Fixed { weights: [("b".to_string(), 3.0)].into_iter().collect() }
                .build(&names(), &device);
        assert_eq!(fixed.weights(), vec![1.0, 3.0]);
        let one = |v: f32| Some(Tensor::<1>::from_data(TensorData::new(vec![v], [1]), &device));
        let total: f32 = fixed.combine(&[one(2.0), one(0.5)]).unwrap().into_scalar();
        assert_eq!(total, 3.5);
        assert!(fixed.combine(&[None, None]).is_none());
    }

    #[test]
    fn uncertainty_weights_start_at_one_and_are_parameters() {
        let device = Device::flex();
        let u = TaskWeighting::Uncertainty.build(&names(), &device);
        assert_eq!(u.weights(), vec![1.0, 1.0]);
        assert_eq!(u.num_params(), 2);
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    fn dot64(a: &[f64], b: &[f32]) -> f64 {
        a.iter().zip(b).map(|(x, &y)| x * y as f64).sum()
    }

    #[test]
    fn pcgrad_makes_two_conflicting_gradients_orthogonal_to_each_other() {
        // g_a·g_b = -1 < 0. Projected: a' = a - (a·b/|b|²) b = (0.5, 0.5, 0), b' = b - (a·b/|a|²) a
        // = (0, 1, 0); each orthogonal to the other's original (the paper's Theorem / Fig. 1).
        let a = [1.0f32, 0.0, 0.0];
        let b = [-1.0f32, 1.0, 0.0];
        let projected = pcgrad_projections(&[&a, &b], &mut SplitMix64(3));
        assert!(close(dot64(&projected[0], &b), 0.0), "{:?}", projected[0]);
        assert!(close(dot64(&projected[1], &a), 0.0), "{:?}", projected[1]);
        assert_eq!(projected[0], vec![0.5, 0.5, 0.0]);
        assert_eq!(projected[1], vec![0.0, 1.0, 0.0]);
        assert_eq!(pcgrad(&[&a, &b], &mut SplitMix64(3)), vec![0.5, 1.5, 0.0]);
        // The plain sum would have been (0, 1, 0): the surgery changed it.
    }

    #[test]
    fn pcgrad_leaves_gradients_that_do_not_conflict_unchanged() {
        let a = [1.0f32, 0.5, -2.0];
        let b = [0.5f32, 1.0, -0.25];
        let c = [0.0f32, 0.0, -1.0];
        let gradients: [&[f32]; 3] = [&a, &b, &c];
        for seed in 0..5 {
            let projected = pcgrad_projections(&gradients, &mut SplitMix64(seed));
            for (p, g) in projected.iter().zip(gradients) {
                assert_eq!(p, &g.iter().map(|&x| x as f64).collect::<Vec<_>>());
            }
            assert_eq!(pcgrad(&gradients, &mut SplitMix64(seed)), vec![1.5, 1.5, -3.25]);
        }
    }

    #[test]
    fn pcgrad_with_three_tasks_depends_on_the_order_only_through_the_seed() {
        let a = [1.0f32, 0.2, 0.0, -0.3];
        let b = [-0.8f32, 1.0, 0.1, 0.0];
        let c = [-0.5f32, -0.9, 1.0, 0.4];
        let gradients: [&[f32]; 3] = [&a, &b, &c];
        let sums: Vec<Vec<f32>> =
            (0..16).map(|seed| pcgrad(&gradients, &mut SplitMix64(seed))).collect();
        for (seed, sum) in sums.iter().enumerate() {
            assert_eq!(sum, &pcgrad(&gradients, &mut SplitMix64(seed as u64)), "seed {seed}");
        }
        // With three mutually conflicting tasks the order matters: some seeds differ.
        assert!(sums.iter().any(|s| s != &sums[0]), "{sums:?}");
        // Each projected gradient no longer conflicts with the last task it was projected on,
        // and a projection never increases a conflict's size: |g'| ≤ |g|.
        for seed in 0..16 {
            let projected = pcgrad_projections(&gradients, &mut SplitMix64(seed));
            for (p, g) in projected.iter().zip(gradients) {
                let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
                let original: Vec<f64> = g.iter().map(|&x| x as f64).collect();
                assert!(norm(p) <= norm(&original) + 1e-12);
            }
        }
    }

    fn task_gradients(tasks: Vec<Option<(f64, Vec<f32>)>>) -> TaskGradients {
        TaskGradients {
            tasks: tasks
                .into_iter()
                .map(|t| {
                    t.map(|(loss, gradient)| crate::task_gradients::TaskGradient { loss, gradient })
                })
                .collect(),
            shared: Vec::new(),
        }
    }

    #[test]
    fn pcgrad_keeps_the_plain_gradient_when_fewer_than_two_tasks_share_parameters() {
        let device = Device::flex();
        let mut rule = TaskWeighting::PcGrad.build(&names(), &device);
        assert!(rule.wants_task_gradients());
        assert_eq!(rule.weights(), vec![1.0, 1.0]);
        let one = task_gradients(vec![Some((1.0, vec![1.0, 0.0])), None]);
        assert_eq!(rule.shared_gradient(&one, 0), None);
        let nothing_shared = task_gradients(vec![Some((1.0, vec![])), Some((1.0, vec![]))]);
        assert_eq!(rule.shared_gradient(&nothing_shared, 0), None);
        let two = task_gradients(vec![Some((1.0, vec![1.0, 0.0])), Some((1.0, vec![-1.0, 1.0]))]);
        assert_eq!(rule.shared_gradient(&two, 0), Some(vec![0.5, 1.5]));
    }

    #[test]
    fn gradnorm_takes_weight_from_the_task_whose_gradient_is_too_large() {
        // Equal training rates: the target of each G_k is the mean, 2.
        let w = gradnorm_step(&[1.0, 1.0], &[(0, 1.0, 0.5), (1, 3.0, 0.5)], 1.5, 0.025);
        assert!(w[1] < 1.0 && w[0] > 1.0, "{w:?}");
        assert!(close(w[0] + w[1], 2.0), "{w:?}");
        // Before renormalising: (1 + 0.025·1, 1 − 0.025·3).
        assert!(close(w[0] / w[1], 1.025 / 0.925), "{w:?}");
        // Equal norms, but task 1 trains slower (its loss fell less): it gains weight.
        let w = gradnorm_step(&[1.0, 1.0], &[(0, 2.0, 0.5), (1, 2.0, 0.9)], 1.5, 0.025);
        assert!(w[1] > 1.0 && w[0] < 1.0, "{w:?}");
        // α = 0 ignores the rates: equal norms and weights stay put.
        let w = gradnorm_step(&[1.0, 1.0], &[(0, 2.0, 0.5), (1, 2.0, 0.9)], 0.0, 0.025);
        assert_eq!(w, vec![1.0, 1.0]);
        // A step far too large is floored, not negative, and the sum is kept.
        let w = gradnorm_step(&[1.5, 1.5, 0.0], &[(0, 1.0, 1.0), (1, 100.0, 1.0)], 1.5, 10.0);
        assert!(w.iter().take(2).all(|&x| x > 0.0), "{w:?}");
        assert!(close(w[0] + w[1], 3.0), "{w:?}");
        assert_eq!(w[2], 0.0, "a task without labels keeps its weight");
    }

    #[test]
    fn gradnorm_weights_move_each_step_and_weigh_the_step_with_the_weights_before_it() {
        let device = Device::flex();
        let names: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let mut rule = TaskWeighting::GradNorm { alpha: 1.5, lr: 0.025 }.build(&names, &device);
        assert_eq!(rule.weights(), vec![1.0, 1.0, 1.0]);
        // c has no label: it is left out, and its initial loss stays unknown.
        let step =
            task_gradients(vec![Some((0.7, vec![3.0, 0.0])), Some((0.2, vec![0.0, 1.0])), None]);
        rule.observe_task_gradients(&step);
        let w = rule.weights();
        assert!(w[0] < 1.0 && w[1] > 1.0 && w[2] == 1.0, "{w:?}");
        assert!((w.iter().sum::<f64>() - 3.0).abs() < 1e-6, "{w:?}");
        let one = |v: f32| Some(Tensor::<1>::from_data(TensorData::new(vec![v], [1]), &device));
        // The step that produced the update is weighed with the weights before it (all 1).
        let total: f32 = rule.combine(&[one(1.0), one(1.0), one(1.0)]).unwrap().into_scalar();
        assert_eq!(total, 3.0);
        let WeightingModule::GradNorm(inner) = &rule else { panic!("gradnorm") };
        let initial = GradNormWeights::read(&inner.initial_loss);
        assert_eq!(&initial[..2], &[0.7, 0.2]);
        assert!(initial[2].is_nan());
        // No parameter of the rule is trained by the optimiser.
        assert!(!inner.weights.is_require_grad() && !inner.initial_loss.is_require_grad());
        // The next step is weighed with the updated weights.
        rule.observe_task_gradients(&step);
        let total: f32 = rule.combine(&[one(1.0), one(1.0), one(1.0)]).unwrap().into_scalar();
        assert!((total as f64 - w.iter().sum::<f64>()).abs() < 1e-6);
        assert!(rule.weights()[0] < w[0]);
    }
}
