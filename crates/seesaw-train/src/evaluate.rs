//! Predictions over a set of rows and the per-task metrics of seesaw-metrics: AUC, GAUC,
//! logloss, accuracy and per-user Recall@K/NDCG@K (K = 3, 5) for binary tasks; MSE, RMSE, MAE
//! and XAUC for regression. Each task is scored on the rows where its label exists.

use std::collections::BTreeMap;

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use seesaw_data::batch::Batch;
use seesaw_data::feature_map::{TaskInfo, TaskKind};
use seesaw_metrics as metrics;
use seesaw_models::row_halves::score_in_halves;
use seesaw_models::{ModelInput, MultiTaskModel, to_vec};

use crate::config::MonitorTerm;
use crate::error::{Result, TrainError};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskMetrics {
    /// Rows with a label.
    pub n: usize,
    /// Positive rate (binary) or mean target (regression).
    pub label_mean: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auc: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gauc: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logloss: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mse: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rmse: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mae: Option<f64>,
    /// Pairwise order of predicted against true values (regression tasks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xauc: Option<f64>,
    /// Per-user top-K metrics over the scored rows (binary tasks; users with a positive and at
    /// least K rows, see `seesaw_metrics::ranking`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recall_at_3: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ndcg_at_3: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recall_at_5: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ndcg_at_5: Option<f64>,
}

impl TaskMetrics {
    pub fn get(&self, metric: &str) -> Option<f64> {
        match metric {
            "auc" => self.auc,
            "gauc" => self.gauc,
            "logloss" => self.logloss,
            "accuracy" => self.accuracy,
            "mse" => self.mse,
            "rmse" => self.rmse,
            "mae" => self.mae,
            "xauc" => self.xauc,
            "recall_at_3" => self.recall_at_3,
            "ndcg_at_3" => self.ndcg_at_3,
            "recall_at_5" => self.recall_at_5,
            "ndcg_at_5" => self.ndcg_at_5,
            _ => None,
        }
    }

    pub fn higher_is_better(metric: &str) -> bool {
        matches!(
            metric,
            "auc"
                | "gauc"
                | "accuracy"
                | "xauc"
                | "recall_at_3"
                | "ndcg_at_3"
                | "recall_at_5"
                | "ndcg_at_5"
        )
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub rows: usize,
    pub tasks: BTreeMap<String, TaskMetrics>,
}

/// Predictions (probabilities for binary tasks) with the labels they are scored against, the
/// model's extra scores, and its mean gate weights.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Predictions {
    pub rows: Vec<u32>,
    pub user_group: Vec<u32>,
    /// Per task, one value per row.
    pub predictions: Vec<Vec<f32>>,
    pub labels: Vec<Vec<f32>>,
    pub masks: Vec<Vec<f32>>,
    /// The model's extra scores by name (in its declaration order), one value per row.
    pub extras: Vec<(String, Vec<f32>)>,
    /// Gate name → mean weight per expert over the rows (gated models only).
    pub gate_utilisation: BTreeMap<String, Vec<f64>>,
}

/// Runs the model (in inference mode) over the batches, in one pass: task predictions, extra
/// scores and gate weights.
pub fn predict(
    model: &MultiTaskModel,
    tasks: &[TaskInfo],
    batches: impl Iterator<Item = Batch>,
    device: &Device,
) -> Predictions {
    let n_tasks = tasks.len();
    let mut out = Predictions {
        predictions: vec![Vec::new(); n_tasks],
        labels: vec![Vec::new(); n_tasks],
        masks: vec![Vec::new(); n_tasks],
        extras: model.extra_scores.iter().map(|e| (e.name.clone(), Vec::new())).collect(),
        ..Default::default()
    };
    let mut gate_sums: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for batch in batches {
        // Both cores on one batch: its halves side by side (`row_halves.rs`).
        let parts = score_in_halves(&batch, |rows| {
            let input = ModelInput::from_batch(rows, device).with_diagnostics();
            let outputs = model.forward(&input);
            let gates: Vec<(String, usize, Vec<f32>)> = outputs
                .gates
                .iter()
                .map(|g| (g.name.clone(), g.weights.dims()[1], to_vec(g.weights.clone())))
                .collect();
            let predictions: Vec<Vec<f32>> =
                outputs.predictions().into_iter().map(to_vec).collect();
            let extras: Vec<Vec<f32>> =
                outputs.extra_predictions().into_iter().map(to_vec).collect();
            (predictions, extras, gates)
        });
        for (predictions, extras, gates) in parts {
            for (all, part) in out.predictions.iter_mut().zip(predictions) {
                all.extend(part);
            }
            for (slot, part) in out.extras.iter_mut().zip(extras) {
                slot.1.extend(part);
            }
            for (name, n_experts, values) in gates {
                let sum = gate_sums.entry(name).or_insert_with(|| vec![0.0; n_experts]);
                for row in values.chunks(n_experts) {
                    for (s, &v) in sum.iter_mut().zip(row) {
                        *s += v as f64;
                    }
                }
            }
        }
        for k in 0..n_tasks {
            out.labels[k].extend_from_slice(batch.label(k));
            out.masks[k].extend_from_slice(batch.mask(k));
        }
        out.rows.extend_from_slice(&batch.rows);
        out.user_group.extend_from_slice(&batch.user_group);
    }
    let rows = out.rows.len().max(1) as f64;
    for sum in gate_sums.values_mut() {
        sum.iter_mut().for_each(|s| *s /= rows);
    }
    out.gate_utilisation = gate_sums;
    out
}

pub fn metrics(tasks: &[TaskInfo], predictions: &Predictions) -> Result<Evaluation> {
    let mut evaluation = Evaluation { rows: predictions.rows.len(), tasks: BTreeMap::new() };
    for (k, task) in tasks.iter().enumerate() {
        let keep: Vec<usize> =
            (0..predictions.rows.len()).filter(|&r| predictions.masks[k][r] > 0.0).collect();
        let p: Vec<f32> = keep.iter().map(|&r| predictions.predictions[k][r]).collect();
        let y: Vec<f32> = keep.iter().map(|&r| predictions.labels[k][r]).collect();
        let users: Vec<u32> = keep.iter().map(|&r| predictions.user_group[r]).collect();
        let mut m = TaskMetrics {
            n: keep.len(),
            label_mean: if y.is_empty() {
                0.0
            } else {
                y.iter().map(|&v| v as f64).sum::<f64>() / y.len() as f64
            },
            ..Default::default()
        };
        if p.iter().any(|v| !v.is_finite()) {
            return Err(TrainError::Diverged { task: task.name.clone(), epoch: 0, step: 0 });
        }
        match task.kind {
            TaskKind::Binary => {
                m.auc = metrics::auc(&p, &y)?;
                m.gauc = metrics::gauc(&users, &p, &y)?.value;
                m.logloss = metrics::logloss(&p, &y)?;
                m.accuracy = metrics::accuracy(&p, &y)?;
                m.recall_at_3 = metrics::recall_at_k(&users, &p, &y, 3)?.value;
                m.ndcg_at_3 = metrics::ndcg_at_k(&users, &p, &y, 3)?.value;
                m.recall_at_5 = metrics::recall_at_k(&users, &p, &y, 5)?.value;
                m.ndcg_at_5 = metrics::ndcg_at_k(&users, &p, &y, 5)?.value;
            }
            TaskKind::Regression => {
                m.mse = metrics::mse(&p, &y)?;
                m.rmse = metrics::rmse(&p, &y)?;
                m.mae = metrics::mae(&p, &y)?;
                m.xauc = metrics::xauc(&p, &y)?;
            }
        }
        evaluation.tasks.insert(task.name.clone(), m);
    }
    Ok(evaluation)
}

pub fn evaluate(
    model: &MultiTaskModel,
    tasks: &[TaskInfo],
    batches: impl Iterator<Item = Batch>,
    device: &Device,
) -> Result<Evaluation> {
    metrics(tasks, &predict(model, tasks, batches, device))
}

/// The early-stopping score: the weighted sum of the monitored metrics (lower-is-better ones
/// negated); by default the mean AUC of the binary tasks.
pub fn score(evaluation: &Evaluation, tasks: &[TaskInfo], monitor: &[MonitorTerm]) -> Option<f64> {
    if monitor.is_empty() {
        let aucs: Vec<f64> = tasks
            .iter()
            .filter(|t| t.kind == TaskKind::Binary)
            .filter_map(|t| evaluation.tasks.get(&t.name)?.auc)
            .collect();
        if aucs.is_empty() {
            // Regression only: minus the mean RMSE.
            let rmses: Vec<f64> = evaluation.tasks.values().filter_map(|m| m.rmse).collect();
            return (!rmses.is_empty()).then(|| -rmses.iter().sum::<f64>() / rmses.len() as f64);
        }
        return Some(aucs.iter().sum::<f64>() / aucs.len() as f64);
    }
    let mut total = 0.0;
    for term in monitor {
        let value = evaluation.tasks.get(&term.task)?.get(&term.metric)?;
        let sign = if TaskMetrics::higher_is_better(&term.metric) { 1.0 } else { -1.0 };
        total += sign * term.weight * value;
    }
    Some(total)
}
