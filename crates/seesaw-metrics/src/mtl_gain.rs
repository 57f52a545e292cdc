//! Gain of a multi-task model over single-task models, the see-saw verdict, and Δm.
//!
//! **Gain** (as in the PLE paper, Tang et al. 2020): for task k with metric M,
//!
//! ```text
//! gain_k = M_mtl,k − M_single,k     if higher is better (AUC, GAUC, NDCG, accuracy)
//! gain_k = M_single,k − M_mtl,k     if lower is better  (logloss, MSE, RMSE, MAE)
//! ```
//!
//! so a positive gain always means "the multi-task model is better on this task".
//!
//! **See-saw**: multi-task learning helps some tasks at the expense of others. The verdict
//! lists every pair of tasks whose gains have strictly opposite signs (one `> 0`, the other
//! `< 0`); a gain of exactly zero is neither improvement nor degradation and pairs with
//! nothing. There is a see-saw iff that list is non-empty.
//!
//! **Δm** (the average relative gain used in the MTL literature, e.g. Maninis et al. 2019),
//! in percent:
//!
//! ```text
//! Δm = (1/K) Σ_k 100 · gain_k / |M_single,k|
//! ```
//!
//! It folds the direction in through `gain_k`, so lower-is-better metrics count positively when
//! they decrease. Dividing by `|M_single,k|` makes tasks with metrics of different scales
//! comparable (and keeps the sign of the gain even for a negative baseline). Δm is undefined
//! (`None`) when there are no tasks or any `M_single,k` is exactly 0: dropping that task
//! silently would bias the mean.
//!
//! Non-finite metric values are errors.

use serde::{Deserialize, Serialize};

use crate::error::{MetricError, Result};

/// Whether a larger value of a metric means a better model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricDirection {
    /// AUC, GAUC, accuracy, Recall@K, NDCG@K.
    HigherIsBetter,
    /// Logloss, MSE, RMSE, MAE.
    LowerIsBetter,
}

impl MetricDirection {
    /// Gain of `mtl` over `single`: positive when `mtl` is better.
    pub fn gain(self, mtl: f64, single: f64) -> f64 {
        match self {
            Self::HigherIsBetter => mtl - single,
            Self::LowerIsBetter => single - mtl,
        }
    }
}

/// Gain of a multi-task model over the single-task reference on one metric
/// (`mtl − single` if higher is better, `single − mtl` if lower is better).
pub fn gain(mtl: f64, single: f64, direction: MetricDirection) -> f64 {
    direction.gain(mtl, single)
}

/// One task's metric, measured on the single-task model and on the multi-task model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskComparison {
    /// Task name (e.g. `"like"`, `"watch_ratio"`).
    pub task: String,
    /// Direction of the metric being compared.
    pub direction: MetricDirection,
    /// Metric of the single-task model, `M_single`.
    pub single: f64,
    /// Metric of the multi-task model, `M_mtl`.
    pub mtl: f64,
}

impl TaskComparison {
    /// Builds a comparison.
    pub fn new(task: impl Into<String>, direction: MetricDirection, single: f64, mtl: f64) -> Self {
        Self { task: task.into(), direction, single, mtl }
    }

    /// `gain_k`, positive when the multi-task model is better.
    pub fn gain(&self) -> f64 {
        self.direction.gain(self.mtl, self.single)
    }

    /// `100 · gain_k / |M_single,k|`, or `None` when `M_single,k == 0`.
    pub fn relative_gain_pct(&self) -> Option<f64> {
        (self.single != 0.0).then(|| 100.0 * self.gain() / self.single.abs())
    }

    fn validate(&self) -> Result<()> {
        for (which, value) in [("single", self.single), ("mtl", self.mtl)] {
            if !value.is_finite() {
                return Err(MetricError::NonFiniteTaskMetric {
                    task: self.task.clone(),
                    which,
                    value,
                });
            }
        }
        Ok(())
    }
}

/// One task's gain, as it appears in a comparison report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskGain {
    /// Task name.
    pub task: String,
    /// Direction of the metric.
    pub direction: MetricDirection,
    /// `M_single`.
    pub single: f64,
    /// `M_mtl`.
    pub mtl: f64,
    /// `gain_k` (positive: multi-task is better).
    pub gain: f64,
    /// `100 · gain_k / |M_single,k|`; `None` when `M_single,k == 0`.
    pub relative_gain_pct: Option<f64>,
}

impl From<&TaskComparison> for TaskGain {
    fn from(c: &TaskComparison) -> Self {
        Self {
            task: c.task.clone(),
            direction: c.direction,
            single: c.single,
            mtl: c.mtl,
            gain: c.gain(),
            relative_gain_pct: c.relative_gain_pct(),
        }
    }
}

/// A pair of tasks on opposite sides of the see-saw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeesawPair {
    /// The task the multi-task model improved (gain > 0).
    pub improved: String,
    /// The task the multi-task model degraded (gain < 0).
    pub degraded: String,
    /// Gain of `improved` (> 0).
    pub improved_gain: f64,
    /// Gain of `degraded` (< 0).
    pub degraded_gain: f64,
}

/// Every pair of tasks whose gains have strictly opposite signs.
///
/// Pairs are listed in input order: for tasks `i < j` with opposite signs, one entry, ordered by
/// `i` then `j`; within the entry the improved task is named first regardless of position.
/// Zero (and NaN) gains pair with nothing.
pub fn seesaw_pairs(gains: &[TaskGain]) -> Vec<SeesawPair> {
    let mut pairs = Vec::new();
    for (i, a) in gains.iter().enumerate() {
        for b in &gains[i + 1..] {
            let (up, down) = if a.gain > 0.0 && b.gain < 0.0 {
                (a, b)
            } else if a.gain < 0.0 && b.gain > 0.0 {
                (b, a)
            } else {
                continue;
            };
            pairs.push(SeesawPair {
                improved: up.task.clone(),
                degraded: down.task.clone(),
                improved_gain: up.gain,
                degraded_gain: down.gain,
            });
        }
    }
    pairs
}

/// Δm in percent: `(1/K) Σ_k 100 · gain_k / |M_single,k|`.
///
/// `Ok(None)` when `tasks` is empty or any single-task metric is exactly 0; an error when any
/// metric is not finite.
pub fn delta_m(tasks: &[TaskComparison]) -> Result<Option<f64>> {
    for t in tasks {
        t.validate()?;
    }
    Ok(delta_m_unchecked(tasks))
}

fn delta_m_unchecked(tasks: &[TaskComparison]) -> Option<f64> {
    if tasks.is_empty() {
        return None;
    }
    let sum = tasks.iter().map(TaskComparison::relative_gain_pct).sum::<Option<f64>>()?;
    Some(sum / tasks.len() as f64)
}

/// The full multi-task versus single-task comparison for one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MtlComparison {
    /// Per-task gains, in input order.
    pub tasks: Vec<TaskGain>,
    /// See-saw pairs (see [`seesaw_pairs`]).
    pub seesaw_pairs: Vec<SeesawPair>,
    /// `true` iff `seesaw_pairs` is non-empty.
    pub seesaw: bool,
    /// Δm in percent (see [`delta_m`]); `None` when undefined.
    pub delta_m_pct: Option<f64>,
}

/// Gains, see-saw verdict and Δm for one multi-task model against its single-task references.
///
/// Errors when any metric is not finite.
pub fn compare_to_single_task(tasks: &[TaskComparison]) -> Result<MtlComparison> {
    for t in tasks {
        t.validate()?;
    }
    let gains: Vec<TaskGain> = tasks.iter().map(TaskGain::from).collect();
    let pairs = seesaw_pairs(&gains);
    Ok(MtlComparison {
        seesaw: !pairs.is_empty(),
        seesaw_pairs: pairs,
        delta_m_pct: delta_m_unchecked(tasks),
        tasks: gains,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use MetricDirection::{HigherIsBetter as Hi, LowerIsBetter as Lo};

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn gain_direction() {
        // AUC 0.70 → 0.72: +0.02. Logloss 0.50 → 0.45: +0.05 (lower is better).
        assert!(close(gain(0.72, 0.70, Hi), 0.02));
        assert!(close(gain(0.45, 0.50, Lo), 0.05));
        // Logloss 0.50 → 0.55: −0.05.
        assert!(close(gain(0.55, 0.50, Lo), -0.05));
    }

    #[test]
    fn seesaw_with_mixed_signs() {
        // like AUC    0.70 → 0.72   gain +0.02
        // follow AUC  0.80 → 0.78   gain −0.02
        // share AUC   0.60 → 0.60   gain  0     (neither)
        // ratio MSE   0.10 → 0.12   gain −0.02  (lower is better: 0.10 − 0.12)
        // finish AUC  0.50 → 0.55   gain +0.05
        // Opposite pairs (i < j): (like, follow), (like, ratio), (follow, finish),
        // (ratio, finish); share pairs with nothing.
        let tasks = [
            TaskComparison::new("like", Hi, 0.70, 0.72),
            TaskComparison::new("follow", Hi, 0.80, 0.78),
            TaskComparison::new("share", Hi, 0.60, 0.60),
            TaskComparison::new("ratio", Lo, 0.10, 0.12),
            TaskComparison::new("finish", Hi, 0.50, 0.55),
        ];
        let r = compare_to_single_task(&tasks).unwrap();
        assert!(r.seesaw);
        let names: Vec<(&str, &str)> =
            r.seesaw_pairs.iter().map(|p| (p.improved.as_str(), p.degraded.as_str())).collect();
        assert_eq!(
            names,
            [("like", "follow"), ("like", "ratio"), ("finish", "follow"), ("finish", "ratio"),]
        );
        for p in &r.seesaw_pairs {
            assert!(p.improved_gain > 0.0 && p.degraded_gain < 0.0);
        }
        assert_eq!(r.tasks[2].gain, 0.0);
    }

    #[test]
    fn no_seesaw_when_all_gains_agree_or_are_zero() {
        let tasks = [
            TaskComparison::new("a", Hi, 0.70, 0.71),
            TaskComparison::new("b", Lo, 0.30, 0.30),
            TaskComparison::new("c", Lo, 0.30, 0.29),
        ];
        let r = compare_to_single_task(&tasks).unwrap();
        assert!(!r.seesaw);
        assert!(r.seesaw_pairs.is_empty());
        // All negative: also no see-saw (the model is just worse).
        let tasks =
            [TaskComparison::new("a", Hi, 0.70, 0.69), TaskComparison::new("b", Lo, 0.30, 0.31)];
        assert!(!compare_to_single_task(&tasks).unwrap().seesaw);
    }

    #[test]
    fn delta_m_with_lower_is_better_metrics() {
        // AUC     0.80 → 0.82   gain +0.02    relative 100 · 0.02 / 0.80 = +2.5 %
        // logloss 0.40 → 0.38   gain +0.02    relative 100 · 0.02 / 0.40 = +5.0 %
        // MSE     0.050 → 0.060 gain −0.010   relative 100 · −0.01 / 0.05 = −20.0 %
        // Δm = (2.5 + 5.0 − 20.0) / 3 = −12.5 / 3 = −4.1666... %
        let tasks = [
            TaskComparison::new("like", Hi, 0.80, 0.82),
            TaskComparison::new("like_logloss", Lo, 0.40, 0.38),
            TaskComparison::new("watch_ratio", Lo, 0.05, 0.06),
        ];
        let d = delta_m(&tasks).unwrap().unwrap();
        assert!(close(d, -12.5 / 3.0), "{d}");
        let r = compare_to_single_task(&tasks).unwrap();
        assert!(close(r.delta_m_pct.unwrap(), -12.5 / 3.0));
        assert!(close(r.tasks[1].relative_gain_pct.unwrap(), 5.0));
        assert!(close(r.tasks[2].relative_gain_pct.unwrap(), -20.0));
        // A lower-is-better metric that decreased counts as an improvement: Δm > 0.
        let d = delta_m(&[TaskComparison::new("mse", Lo, 0.2, 0.15)]).unwrap().unwrap();
        assert!(close(d, 25.0)); // 100 · 0.05 / 0.2
    }

    #[test]
    fn delta_m_uses_absolute_baseline() {
        // A metric whose baseline is negative (e.g. a log-likelihood, higher is better):
        // −2.0 → −1.5, gain +0.5, relative 100 · 0.5 / |−2.0| = +25 % (sign kept).
        let d = delta_m(&[TaskComparison::new("ll", Hi, -2.0, -1.5)]).unwrap().unwrap();
        assert!(close(d, 25.0));
    }

    #[test]
    fn delta_m_undefined_and_invalid() {
        assert_eq!(delta_m(&[]).unwrap(), None);
        let zero = [TaskComparison::new("a", Hi, 0.5, 0.6), TaskComparison::new("b", Lo, 0.0, 0.1)];
        assert_eq!(delta_m(&zero).unwrap(), None);
        let r = compare_to_single_task(&zero).unwrap();
        assert_eq!(r.delta_m_pct, None);
        assert_eq!(r.tasks[1].relative_gain_pct, None);
        assert!(r.seesaw); // a improved (+0.1), b degraded (−0.1)
        let nan = [TaskComparison::new("a", Hi, f64::NAN, 0.6)];
        assert!(matches!(
            delta_m(&nan),
            Err(MetricError::NonFiniteTaskMetric { which: "single", .. })
        ));
        assert!(compare_to_single_task(&nan).is_err());
        let empty = compare_to_single_task(&[]).unwrap();
        assert!(!empty.seesaw && empty.tasks.is_empty() && empty.delta_m_pct.is_none());
    }
}
