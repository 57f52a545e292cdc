//! CMI-aware multi-task learning (DESIGN.md, "CMI-aware MTL").
//!
//! Summed per-task losses drop exactly the conditional mutual information between the tasks'
//! labels given what the model sees: E[−log p(y_a, y_b | x)] = E[−log p(y_a | x)] +
//! E[−log p(y_b | x)] − I(Y_a; Y_b | X). This module holds what estimating and training with it
//! needs, for any architecture with a shared representation h:
//!
//! - `negatives`: for each row, a small distribution over replacement values y_b' standing for
//!   p(y_b | h) — kernel neighbours (labels of rows whose h is close, RBF-weighted) or the
//!   variational generator (the model's own tower b: Bernoulli for binary tasks, the prediction
//!   plus the residuals' quantiles for regression ones);
//! - `critic`: the contrastive critic f(h, y_a, y_b) that tells observed triples from ones whose
//!   y_b was replaced, and the Donsker–Varadhan estimate that turns its scores into nats;
//! - `config`: the `[model.cmi]` table;
//! - `term`: the module `MultiTaskModel` carries when `[model.cmi]` is set, which adds the named
//!   auxiliary loss term (`cmi_joint` or `cmi_adversarial`).
//!
//! Negatives are distributions, not draws: the critic's loss takes the expectation over them, so
//! training needs no random numbers (a fixed seed reproduces a run, and a resumed run equals an
//! uninterrupted one).

pub mod config;
pub mod critic;
pub mod negatives;
pub mod term;

pub use config::{CmiConfig, CmiSampler, CmiUse};
pub use critic::{PairCritic, dv_estimate};
pub use negatives::{Negatives, Neighbours};
pub use term::CmiModule;
