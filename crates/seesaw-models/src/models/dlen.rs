//! DLEN-style latent emotion (Zhang, Zhao, Zhang, Wang, Yang 2021: only the abstract is public;
//! DESIGN.md, "DLEN-style latent emotion"), on top of any architecture with a shared
//! representation h:
//!
//! - a latent head e(x) = P(z = 1 | x) = σ(t_e(h)): does the user feel positively about the item;
//! - each task a mixture of two heads, p_k = e·a_k + (1 − e)·b_k, with a_k = σ(α_k) from the
//!   base's own tower k and b_k = σ(α_k − s_k·softplus(δ_k(h))), s_k = +1 for positive behaviours
//!   and −1 for negative ones (hate, a fast skip). So a_k ≥ b_k (or ≤) holds by construction on
//!   every row: the positive state can only raise a positive behaviour and lower a negative one.
//!   Regression tasks mix the regression head of the same two pre-activations the same way;
//! - the marginals keep the masked per-task losses; e is supervised, with weight γ, on the rows
//!   that confidence rules are sure of (`label_rules.rs`: by default z = 1 after a like, follow,
//!   share or comment, z = 0 after a hate or a watch ratio below 0.2), the named auxiliary term
//!   `emotion`; every other row leaves e to the mixture;
//! - e is the extra score `emotion`, for fusion (`[fusion]`, per request) and the server.
//!
//! With `tie_heads = true` (b_k = a_k) the tasks are exactly the base's, whatever e is; with
//! γ = 0 as well the model is the base architecture plus an unused head (tested).

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::{sigmoid, softplus};
use burn::tensor::{Device, Tensor};
use seesaw_data::feature_map::TaskKind;
use seesaw_data::labels::Polarity;
use serde::{Deserialize, Serialize};

use crate::blocks::Tower;
use crate::context::{ModelContext, RegressionHead};
use crate::contract::{ArchitectureConfig, TaskModel};
use crate::error::{Result, invalid};
use crate::heads::TaskHeads;
use crate::input::ModelInput;
use crate::label_rules::{ConfidenceRules, LabelRule, ResolvedRules};
use crate::loss::{LossTerms, bce_with_logits};
use crate::outputs::{ExtraScore, ModelOutputs, OutputKind, TaskOutput};
use crate::registry::{Architecture, Network};
use crate::targets::ModelTargets;

/// The name of the latent score, in fusion, the server's answers and predictions files.
pub const EMOTION: &str = "emotion";

/// The name of the auxiliary loss term that supervises e.
pub const EMOTION_LOSS: &str = "emotion";

const DEFAULT_POSITIVE: [&str; 5] = ["like", "follow", "share", "forward", "comment"];
const DEFAULT_NEGATIVE: [&str; 2] = ["hate", "watch_ratio < 0.2"];

/// `kind = "dlen"`: `architecture = { kind = "dlen", gamma = 0.5, base = { kind = "mmoe", ... } }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DlenConfig {
    /// The architecture underneath: any with a shared representation (shared-bottom,
    /// cross-stitch, MMoE, CGC, PLE with shared experts).
    pub base: Box<Architecture>,
    /// Weight of e's supervision on the confident rows.
    #[serde(default = "default_gamma")]
    pub gamma: f32,
    /// b_k = a_k: the tasks ignore e (the reduction to the base model; an ablation).
    #[serde(default)]
    pub tie_heads: bool,
    /// Hidden layers of e's tower; default: the model's `tower_hidden`.
    #[serde(default)]
    pub emotion_hidden: Option<Vec<usize>>,
    /// Rows where any of these fires have z = 1. Default: like, follow, share, forward, comment
    /// (those the model has).
    #[serde(default)]
    pub positive_when: Option<Vec<LabelRule>>,
    /// Rows where any of these fires have z = 0. Default: hate, `watch_ratio < 0.2`.
    #[serde(default)]
    pub negative_when: Option<Vec<LabelRule>>,
}

fn default_gamma() -> f32 {
    0.5
}

impl DlenConfig {
    /// The configured rules, or the defaults (which skip tasks the model does not have).
    pub fn rules(&self) -> ConfidenceRules {
        let defaults = |names: &[&str]| names.iter().map(|n| n.parse().expect("valid")).collect();
        ConfidenceRules {
            drop_missing_tasks: self.positive_when.is_none() && self.negative_when.is_none(),
            positive_when: self
                .positive_when
                .clone()
                .unwrap_or_else(|| defaults(&DEFAULT_POSITIVE)),
            negative_when: self
                .negative_when
                .clone()
                .unwrap_or_else(|| defaults(&DEFAULT_NEGATIVE)),
        }
    }
}

impl ArchitectureConfig for DlenConfig {
    type Model = Dlen;

    fn validate(&self) -> Result<()> {
        if matches!(*self.base, Architecture::Dlen(_)) {
            return invalid("dlen: the base architecture cannot itself be dlen");
        }
        self.base.validate()?;
        if !(self.gamma.is_finite() && self.gamma >= 0.0) {
            return invalid(format!(
                "dlen: gamma must be a finite number >= 0, got {}",
                self.gamma
            ));
        }
        if let Some(hidden) = &self.emotion_hidden {
            crate::models::check_layers("dlen", "emotion_hidden", hidden, true)?;
        }
        Ok(())
    }

    fn fit(
        &self,
        context: &ModelContext,
        train: &mut dyn Iterator<Item = seesaw_data::batch::Batch>,
    ) -> Result<Option<crate::context::FittedState>> {
        self.base.fit(&Self::base_context(context), train)
    }

    fn init(&self, context: &ModelContext, device: &Device) -> Result<Dlen> {
        let rules = self.rules().resolve(&context.tasks)?;
        if self.gamma > 0.0 && rules.is_one_sided() {
            let tasks: Vec<&str> = context.tasks.iter().map(|t| t.name.as_str()).collect();
            return invalid(format!(
                "dlen: with gamma > 0, e needs confident rows of both kinds, but no {} rule \
                 applies to this model's tasks ({}); set positive_when / negative_when",
                if rules.positive.is_empty() { "positive_when" } else { "negative_when" },
                tasks.join(", ")
            ));
        }
        let base = self.base.init(&Self::base_context(context), device)?;
        let Some(h_dim) = base.shared_dim() else {
            return invalid(format!(
                "dlen: the base architecture `{}` has no shared representation for e to read; \
                 use shared_bottom, cross_stitch, mmoe, cgc or ple (with shared experts)",
                self.base.name()
            ));
        };
        let hidden = self.emotion_hidden.as_ref().unwrap_or(&context.tower_hidden);
        let n_tasks = context.tasks.len();
        Ok(Dlen {
            base: vec![base],
            emotion: Tower::new(h_dim, hidden, device),
            gaps: (!self.tie_heads).then(|| LinearConfig::new(h_dim, n_tasks).init(device)),
            spec: DlenSpec {
                kinds: context.tasks.iter().map(|t| t.kind).collect(),
                signs: context
                    .tasks
                    .iter()
                    .map(|t| if t.polarity == Polarity::Negative { -1.0 } else { 1.0 })
                    .collect(),
                regression_head: context.regression_head,
                task_heads: TaskHeads::new(context),
                rules,
                gamma: self.gamma,
            },
        })
    }

    fn label(&self, kind: &str) -> String {
        format!("{kind}-{}", self.base.label())
    }

    fn extra_scores(&self) -> Vec<ExtraScore> {
        vec![ExtraScore {
            name: EMOTION.into(),
            kind: OutputKind::Logit,
            supervision: Some(self.rules()),
            clip: None,
        }]
    }
}

impl DlenConfig {
    /// The base sees every task as binary, so that its towers hand out raw pre-activations α_k
    /// and the mixture applies the heads itself.
    fn base_context(context: &ModelContext) -> ModelContext {
        let mut inner = context.clone();
        inner.tasks.iter_mut().for_each(|t| t.kind = TaskKind::Binary);
        inner
    }
}

#[derive(Debug, Clone)]
pub struct DlenSpec {
    pub kinds: Vec<TaskKind>,
    /// +1 for positive tasks (a_k ≥ b_k), −1 for negative ones.
    pub signs: Vec<f32>,
    pub regression_head: RegressionHead,
    /// The heads of the plain base model, for tied heads.
    pub task_heads: TaskHeads,
    pub rules: ResolvedRules,
    pub gamma: f32,
}

#[derive(Module, Debug)]
pub struct Dlen {
    /// Exactly one model, the base. A `Vec` because burn derives modules through `Vec` but not
    /// `Box`, and the base is itself a `Network`, which contains this type.
    pub base: Vec<Network>,
    /// t_e: h → the logit of e.
    pub emotion: Tower,
    /// δ(h), one column per task; `None` when the heads are tied.
    pub gaps: Option<Linear>,
    #[module(skip)]
    pub spec: DlenSpec,
}

impl Dlen {
    /// The task's head on a pre-activation: the logit itself for binary tasks (the caller takes
    /// its sigmoid), the regression head for regression tasks.
    fn head(&self, k: usize, pre: Tensor<2>) -> Tensor<2> {
        match (self.spec.kinds[k], self.spec.regression_head) {
            (TaskKind::Binary, _) | (TaskKind::Regression, RegressionHead::Sigmoid) => sigmoid(pre),
            (TaskKind::Regression, RegressionHead::Identity) => pre,
        }
    }
}

/// One forward pass taken apart: the base's outputs, h, the logit of e, and per task the two
/// heads (a_k, b_k) that e mixes, each [B, 1]: probabilities for binary tasks, values for
/// regression tasks; `None` when the heads are tied.
pub struct DlenParts {
    pub base: ModelOutputs,
    pub h: Tensor<2>,
    pub e_logit: Tensor<2>,
    pub heads: Option<Vec<(Tensor<2>, Tensor<2>)>>,
}

impl Dlen {
    pub fn parts(&self, input: &ModelInput) -> DlenParts {
        let base_input = ModelInput { want_shared: true, ..input.clone() };
        // The base first: burn initialises parameters when first read, so a seed gives the base
        // the same initial weights as the base model alone.
        let base = self.base[0].forward(&base_input);
        let h = base.shared.clone().expect("the base's shared_dim was checked at init");
        let e_logit = self.emotion.forward(h.clone());
        let heads = self.gaps.as_ref().map(|gaps| {
            let gaps = softplus(gaps.forward(h.clone()), 1.0);
            let b = input.batch_size;
            base.tasks
                .iter()
                .enumerate()
                .map(|(k, alpha)| {
                    let delta = gaps.clone().slice([0..b, k..k + 1]);
                    let shifted = alpha.tensor.clone() - delta.mul_scalar(self.spec.signs[k]);
                    (self.head(k, alpha.tensor.clone()), self.head(k, shifted))
                })
                .collect()
        });
        DlenParts { base, h, e_logit, heads }
    }
}

impl TaskModel for Dlen {
    fn forward(&self, input: &ModelInput) -> ModelOutputs {
        let DlenParts { base, h, e_logit, heads } = self.parts(input);
        let tasks = match heads {
            // Tied: the base's raw tower outputs through the heads the base itself would apply.
            None => self.spec.task_heads.apply(base.tasks.into_iter().map(|t| t.tensor).collect()),
            Some(heads) => {
                let e = sigmoid(e_logit.clone());
                let not_e = e.clone().neg().add_scalar(1.0);
                heads
                    .into_iter()
                    .enumerate()
                    .map(|(k, (a, b))| {
                        let kind = match self.spec.kinds[k] {
                            TaskKind::Binary => OutputKind::Probability,
                            TaskKind::Regression => OutputKind::Value,
                        };
                        TaskOutput { tensor: e.clone() * a + not_e.clone() * b, kind }
                    })
                    .collect()
            }
        };
        ModelOutputs {
            tasks,
            extras: vec![TaskOutput { tensor: e_logit, kind: OutputKind::Logit }],
            shared: input.want_shared.then_some(h),
            gates: base.gates,
        }
    }

    fn loss(&self, outputs: &ModelOutputs, targets: &ModelTargets) -> LossTerms {
        let terms = LossTerms::per_task(outputs, targets);
        if self.spec.gamma == 0.0 {
            return terms;
        }
        let (z, confident) = self.spec.rules.label_batch(targets);
        let per_row = bce_with_logits(outputs.extras[0].tensor.clone(), z) * confident.clone();
        // The mean over the confident rows; a batch without any adds zero.
        let count = confident.sum().clamp_min(1.0);
        let term = (per_row.sum() / count).mul_scalar(self.spec.gamma);
        terms.with_auxiliary(EMOTION_LOSS, term)
    }

    fn shared_dim(&self) -> Option<usize> {
        self.base[0].shared_dim()
    }
}
