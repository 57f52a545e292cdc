//! The module `MultiTaskModel` carries when `[model.cmi]` is set: one joint head or critic per
//! task pair, reading the architecture's shared representation h, and the auxiliary loss term it
//! adds. It works for every architecture with an h (`TaskModel::shared_dim`), so no model file
//! knows about it.

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use seesaw_data::feature_map::TaskKind;

use super::config::{CmiConfig, CmiSampler, CmiUse};
use super::critic::{PairCritic, contrastive_loss};
use super::negatives::{Negatives, Neighbours};
use crate::blocks::Tower;
use crate::context::ModelContext;
use crate::error::Result;
use crate::heads::TaskHeads;
use crate::loss::per_row_loss;
use crate::outputs::ModelOutputs;
use crate::targets::ModelTargets;

/// The auxiliary term of `use = "joint_head"`.
pub const JOINT_TERM: &str = "cmi_joint";
/// The auxiliary term of `use = "adversarial"` (the critic's contrastive loss; h sees it
/// reversed).
pub const ADVERSARIAL_TERM: &str = "cmi_adversarial";

#[derive(Module, Debug)]
pub struct CmiModule {
    /// `joint_head`: per pair, a tower on [h, y_a] predicting y_b.
    pub joint_heads: Vec<Tower>,
    /// `adversarial`: per pair, a critic f(h, y_a, y_b) ...
    pub critics: Vec<PairCritic>,
    /// ... and one that sees only (h, y_b): what it finds is the sampler's error, not dependence.
    pub marginal_critics: Vec<PairCritic>,
    #[module(skip)]
    pub config: CmiConfig,
    #[module(skip)]
    pub pairs: Vec<(usize, usize)>,
    #[module(skip)]
    pub heads: TaskHeads,
    #[module(skip)]
    pub kinds: Vec<TaskKind>,
}

impl CmiModule {
    pub fn new(
        config: &CmiConfig,
        context: &ModelContext,
        h_dim: usize,
        device: &Device,
    ) -> Result<Self> {
        config.validate()?;
        let names: Vec<String> = context.tasks.iter().map(|t| t.name.clone()).collect();
        let pairs = config.resolve_pairs(&names)?;
        let hidden = &config.critic_hidden;
        let critics = || pairs.iter().map(|_| PairCritic::new(h_dim, hidden, device)).collect();
        let (joint_heads, critics, marginal_critics) = match config.use_ {
            CmiUse::JointHead => (
                pairs.iter().map(|_| Tower::new(h_dim + 1, hidden, device)).collect(),
                Vec::new(),
                Vec::new(),
            ),
            CmiUse::Adversarial => (Vec::new(), critics(), critics()),
        };
        Ok(Self {
            joint_heads,
            critics,
            marginal_critics,
            config: config.clone(),
            pairs,
            heads: TaskHeads::new(context),
            kinds: context.tasks.iter().map(|t| t.kind).collect(),
        })
    }

    /// The term's name and value for this batch, `None` when no pair has both labels on any row
    /// (or the outputs carry no h).
    pub fn loss(
        &self,
        outputs: &ModelOutputs,
        targets: &ModelTargets,
    ) -> Option<(String, Tensor<1>)> {
        let h = outputs.shared.clone()?;
        let ramp = match (self.config.warmup_steps, targets.step) {
            (0, _) | (_, None) => 1.0,
            (w, Some(step)) => (step as f32 / w as f32).min(1.0),
        };
        let beta = self.config.beta * ramp;
        match self.config.use_ {
            CmiUse::JointHead => {
                let total = self.joint_loss(&h, targets)?;
                Some((JOINT_TERM.to_string(), total.mul_scalar(beta)))
            }
            CmiUse::Adversarial => {
                let total = self.adversarial_loss(h, beta, outputs, targets)?;
                Some((ADVERSARIAL_TERM.to_string(), total))
            }
        }
    }

    /// Σ over pairs of the masked loss of p(y_b | h, y_a) against y_b.
    fn joint_loss(&self, h: &Tensor<2>, targets: &ModelTargets) -> Option<Tensor<1>> {
        let mut total: Option<Tensor<1>> = None;
        for (head, &(a, b)) in self.joint_heads.iter().zip(&self.pairs) {
            let (ta, tb) = (&targets.tasks[a], &targets.tasks[b]);
            let mask = ta.mask.clone() * tb.mask.clone();
            let count: f32 = mask.clone().sum().into_scalar();
            if count == 0.0 {
                continue;
            }
            let raw = head.forward(Tensor::cat(vec![h.clone(), ta.labels.clone()], 1));
            let output = self.heads.apply_one(b, raw);
            let term =
                (per_row_loss(&output, tb.labels.clone()) * mask).sum().mul_scalar(1.0 / count);
            total = Some(match total {
                Some(t) => t + term,
                None => term,
            });
        }
        total
    }

    /// Σ over pairs of both critics' contrastive losses. The critics minimise them; h gets −β
    /// times the joint critic's gradient (Ganin and Lempitsky's reversal: forward h, backward
    /// −β) and +β times the marginal one's, so it lowers the CMI estimate, the difference of the
    /// two divergences, rather than the sampler's error that both contain.
    fn adversarial_loss(
        &self,
        h: Tensor<2>,
        beta: f32,
        outputs: &ModelOutputs,
        targets: &ModelTargets,
    ) -> Option<Tensor<1>> {
        let device = h.device();
        let n = h.dims()[0];
        // The kernel sampler's neighbours depend on h only: found once per batch, on values
        // (no gradient flows through the choice of neighbours).
        let neighbours = (self.config.sampler == CmiSampler::Kernel).then(|| {
            let d = h.dims()[1];
            let values: Vec<f32> =
                h.clone().into_data().convert::<f32>().try_to_vec::<f32>().expect("f32 h");
            Neighbours::rbf(&values, n, d, self.config.neighbours, &device)
        });
        let reversed = h.clone().detach().mul_scalar(1.0 + beta) - h.clone().mul_scalar(beta);
        let scaled = h.clone().detach().mul_scalar(1.0 - beta) + h.mul_scalar(beta);
        let mut total: Option<Tensor<1>> = None;
        let critics = self.critics.iter().zip(&self.marginal_critics);
        for ((critic, marginal), &(a, b)) in critics.zip(&self.pairs) {
            let (ta, tb) = (&targets.tasks[a], &targets.tasks[b]);
            let mask_a = to_vec(ta.mask.clone());
            let mask_b = to_vec(tb.mask.clone());
            let labels_b = to_vec(tb.labels.clone());
            let negatives = match &neighbours {
                Some(nb) => nb.negatives(&labels_b, &mask_b),
                None => {
                    let prediction = to_vec(outputs.tasks[b].prediction().detach());
                    Negatives::from_tower(self.kinds[b], &prediction, &labels_b, &mask_b)
                }
            };
            let mask: Vec<f32> = (0..n)
                .map(|i| if mask_a[i] * mask_b[i] > 0.0 && negatives.usable(i) { 1.0 } else { 0.0 })
                .collect();
            let count: f32 = mask.iter().sum();
            if count == 0.0 {
                continue;
            }
            let (values, weights) = negatives.tensors(&device);
            let mask = Tensor::from_data(TensorData::new(mask, [n, 1]), &device);
            let (positive, negative) = critic.scores(
                reversed.clone(),
                ta.labels.clone(),
                tb.labels.clone(),
                values.clone(),
            );
            let joint = contrastive_loss(positive, negative, weights.clone(), mask.clone(), count);
            let zeros = ta.labels.zeros_like();
            let (positive, negative) =
                marginal.scores(scaled.clone(), zeros, tb.labels.clone(), values);
            let term = joint + contrastive_loss(positive, negative, weights, mask, count);
            total = Some(match total {
                Some(t) => t + term,
                None => term,
            });
        }
        total
    }
}

fn to_vec(t: Tensor<2>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().expect("f32 tensor")
}
