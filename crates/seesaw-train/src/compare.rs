//! `seesaw compare`: train each architecture with each seed on one dataset and one split,
//! evaluate on the held-out part, and summarise honestly: mean ± sd per task and metric, the MTL
//! gain of each architecture over the single-task reference, the see-saw verdict and Δm.

use std::collections::BTreeMap;
use std::time::Instant;

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use seesaw_data::dataset::PreparedDataset;
use seesaw_data::feature_map::{TaskInfo, TaskKind};
use seesaw_data::training_data::TrainingData;
use seesaw_metrics::{
    MeanSd, MetricDirection, MtlComparison, TaskComparison, compare_to_single_task,
};
use seesaw_models::models::SingleTaskConfig;
use seesaw_models::{Architecture, ModelConfig};

use crate::clip_curve::{ClipCurve, clip_curve};
use crate::cmi_estimate::{CmiMatrix, PairCmiSummary, summarise_matrices};
use crate::config::TrainConfig;
use crate::emotion::{Demotion, EmotionMetrics, demotion, emotion_metrics};
use crate::error::{Result, TrainError};
use crate::evaluate::{Evaluation, metrics, predict};
use crate::history::EpochRecord;
use crate::run_config::RunConfig;
use crate::task_gradients::shares_parameters;
use crate::trainer::{TrainObserver, train};

pub const SINGLE_TASK: &str = "single_task";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResult {
    pub architecture: String,
    pub seed: u64,
    pub evaluation: Evaluation,
    pub history: Vec<EpochRecord>,
    pub best_epoch: usize,
    pub train_seconds: f64,
    pub num_params: usize,
    /// Gate name → mean weight per expert over the evaluated rows (gated models only).
    pub gate_utilisation: BTreeMap<String, Vec<f64>>,
    /// A model with a latent emotion score (DLEN): its AUCs (see `emotion.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emotion: Option<EmotionMetrics>,
    /// With a `hate` task: the top of the fused ranking, with and without the emotion score.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub demotion: Option<Demotion>,
    /// A model with a shared representation: the CMI between its tasks given h
    /// (`[compare.cmi_matrix]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmi: Option<CmiMatrix>,
    /// A model that scores each clip (FRAME): its clip curve against where viewers left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip_curve: Option<ClipCurve>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArchitectureSummary {
    pub architecture: String,
    /// task → metric → mean ± sd over seeds.
    pub metrics: BTreeMap<String, BTreeMap<String, MeanSd>>,
    /// Gains over single-task on each task's primary metric (AUC, or RMSE for regression),
    /// from the seed means. None for the single-task reference itself.
    pub gains: Option<MtlComparison>,
    /// The see-saw pairs whose two gains both exceed twice their standard error over seeds
    /// (sd_mtl²/n + sd_single²/n): differences of a few 1e-4 AUC are seed noise, not a see-saw.
    /// Empty with one seed (no spread to judge by).
    #[serde(default)]
    pub significant_seesaw_pairs: Vec<seesaw_metrics::SeesawPair>,
    pub mean_train_seconds: f64,
    pub num_params: usize,
    /// Per task pair, the CMI given h (nats), mean ± sd over seeds; empty without a shared
    /// representation.
    #[serde(default)]
    pub cmi: Vec<PairCmiSummary>,
    /// Task pair `"a|b"` → mean ± sd over seeds of the cosine between the two tasks' gradients
    /// on the shared parameters after each run's last epoch (`EpochRecord::gradient_cosines`).
    /// Empty for models that share no parameters, or with the diagnostic off.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub gradient_cosines: BTreeMap<String, MeanSd>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ComparisonReport {
    pub evaluated_on: String,
    pub rows_evaluated: usize,
    pub split: BTreeMap<String, usize>,
    pub tasks: Vec<TaskInfo>,
    pub seeds: Vec<u64>,
    pub summaries: Vec<ArchitectureSummary>,
    pub runs: Vec<RunResult>,
    /// Simulator only: AUC of the true probabilities on the evaluated rows, the best any model
    /// can reach.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub best_achievable_auc: Option<BTreeMap<String, f64>>,
    /// `[compare] skip_strategies`: the skip label defined each way (`skip_study.rs`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skip_study: Vec<crate::skip_study::SkipStrategyResult>,
    pub config: RunConfig,
}

/// The metric each task's gain and verdict are judged on.
pub fn primary_metric(kind: TaskKind) -> (&'static str, MetricDirection) {
    match kind {
        TaskKind::Binary => ("auc", MetricDirection::HigherIsBetter),
        TaskKind::Regression => ("rmse", MetricDirection::LowerIsBetter),
    }
}

/// Hooks for progress across the whole comparison.
pub trait CompareObserver {
    fn on_run_start(&mut self, _architecture: &str, _seed: u64, _index: usize, _total: usize) {}
    fn trainer(&mut self) -> &mut dyn TrainObserver;
    fn on_run_end(&mut self, _result: &RunResult) {}
}

pub fn compare(
    config: &RunConfig,
    data: &PreparedDataset,
    best_achievable_auc: Option<BTreeMap<String, f64>>,
    observer: &mut dyn CompareObserver,
) -> Result<ComparisonReport> {
    let tasks = data.feature_map.tasks.clone();
    let part = data.evaluation_part();
    let entries = entries(config, data)?;
    let total = entries.len() * config.compare.seeds.len();
    let device = Device::flex();
    let mut runs = Vec::new();
    for entry in &entries {
        for &seed in &config.compare.seeds {
            observer.on_run_start(&entry.label, seed, runs.len(), total);
            let mut train_config = entry.train.clone();
            train_config.seed = seed;
            let started = Instant::now();
            let outcome =
                train(&train_config, &entry.model, data, None, false, observer.trainer())?;
            let train_seconds = started.elapsed().as_secs_f64();
            let rows = data.split.part(part);
            let batches = || rows.chunks(config.train.eval_batch_size).map(|r| data.batch(r));
            let predictions = predict(&outcome.model, &tasks, batches(), &device);
            let extras = &outcome.model.extra_scores;
            let result = RunResult {
                emotion: emotion_metrics(&tasks, extras, &predictions)?,
                demotion: demotion(&tasks, extras, config.fusion.as_ref(), &predictions)?,
                clip_curve: clip_curve(extras, &predictions, data)?,
                architecture: entry.label.clone(),
                seed,
                evaluation: metrics(&tasks, &predictions)?,
                history: outcome.history,
                best_epoch: outcome.best_epoch,
                train_seconds,
                num_params: outcome.model.num_params(),
                gate_utilisation: predictions.gate_utilisation,
                cmi: config.compare.cmi_matrix.matrix(
                    &outcome.model,
                    data,
                    rows,
                    config.train.eval_batch_size,
                    seed,
                )?,
            };
            observer.on_run_end(&result);
            runs.push(result);
        }
    }
    let labels: Vec<String> = entries.iter().map(|e| e.label.clone()).collect();
    let summaries = summarise(&labels, &runs, &tasks)?;
    Ok(ComparisonReport {
        evaluated_on: format!("{part:?}").to_lowercase(),
        rows_evaluated: data.split.part(part).len(),
        split: data.report.split.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        tasks,
        seeds: config.compare.seeds.clone(),
        summaries,
        runs,
        best_achievable_auc,
        skip_study: Vec::new(),
        config: config.clone(),
    })
}

/// One line of the comparison: what is trained with each seed, and its label.
struct Entry {
    label: String,
    model: ModelConfig,
    train: TrainConfig,
}

/// The comparison's lines: the single-task reference (added when not listed), each listed
/// architecture, and after each one that shares parameters between tasks its variants.
fn entries(config: &RunConfig, data: &PreparedDataset) -> Result<Vec<Entry>> {
    let mut architectures = config.compare.architectures.clone();
    if !architectures.iter().any(|a| a.name() == SINGLE_TASK) {
        architectures
            .insert(0, Architecture::SingleTask(SingleTaskConfig { hidden: vec![128, 64] }));
    }
    let mut entries = Vec::new();
    for architecture in architectures {
        let model = ModelConfig { architecture, ..config.model.clone() };
        let label = model.architecture.label();
        let variants = &config.compare.variants;
        let shared = !variants.is_empty() && shares_parameters(&model, data)?;
        let variant_entries: Vec<Entry> = variants
            .iter()
            .filter(|_| shared)
            .map(|variant| {
                let (train, model) = variant.apply(&config.train, &model);
                Entry { label: variant.label(&label), model, train }
            })
            .collect();
        entries.push(Entry { label, model, train: config.train.clone() });
        entries.extend(variant_entries);
    }
    for (i, entry) in entries.iter().enumerate() {
        if entries[..i].iter().any(|e| e.label == entry.label) {
            return Err(TrainError::Config(format!(
                "[compare] lists two architectures named `{}`: their results would be merged",
                entry.label
            )));
        }
    }
    Ok(entries)
}

fn summarise(
    labels: &[String],
    runs: &[RunResult],
    tasks: &[TaskInfo],
) -> Result<Vec<ArchitectureSummary>> {
    let metric_names = [
        "auc",
        "gauc",
        "logloss",
        "accuracy",
        "mse",
        "rmse",
        "mae",
        "xauc",
        "recall_at_3",
        "ndcg_at_3",
    ];
    let mut summaries = Vec::new();
    for name in labels {
        let name = name.clone();
        let mine: Vec<&RunResult> = runs.iter().filter(|r| r.architecture == name).collect();
        let mut by_task = BTreeMap::new();
        for task in tasks {
            let mut by_metric = BTreeMap::new();
            for metric in metric_names {
                let values: Vec<f64> = mine
                    .iter()
                    .filter_map(|r| r.evaluation.tasks.get(&task.name).and_then(|m| m.get(metric)))
                    .collect();
                if let Some(mean_sd) = MeanSd::from_values(&values)? {
                    by_metric.insert(metric.to_owned(), mean_sd);
                }
            }
            by_task.insert(task.name.clone(), by_metric);
        }
        summaries.push(ArchitectureSummary {
            architecture: name,
            metrics: by_task,
            gains: None,
            significant_seesaw_pairs: Vec::new(),
            mean_train_seconds: mine.iter().map(|r| r.train_seconds).sum::<f64>()
                / mine.len().max(1) as f64,
            num_params: mine.first().map_or(0, |r| r.num_params),
            cmi: summarise_matrices(
                &mine.iter().filter_map(|r| r.cmi.as_ref()).collect::<Vec<_>>(),
            )?,
            gradient_cosines: last_epoch_cosines(&mine)?,
        });
    }
    let single = summaries.iter().find(|s| s.architecture == SINGLE_TASK).cloned();
    if let Some(single) = single {
        for summary in summaries.iter_mut().filter(|s| s.architecture != SINGLE_TASK) {
            let comparisons: Vec<TaskComparison> = tasks
                .iter()
                .filter_map(|task| {
                    let (metric, direction) = primary_metric(task.kind);
                    let mtl = summary.metrics.get(&task.name)?.get(metric)?.mean;
                    let reference = single.metrics.get(&task.name)?.get(metric)?.mean;
                    Some(TaskComparison::new(task.name.clone(), direction, reference, mtl))
                })
                .collect();
            let gains = compare_to_single_task(&comparisons)?;
            let significant = |task: &str| -> bool {
                let kind = tasks.iter().find(|t| t.name == task).map(|t| t.kind);
                let Some((metric, _)) = kind.map(primary_metric) else { return false };
                let (Some(mtl), Some(reference)) = (
                    summary.metrics.get(task).and_then(|m| m.get(metric)),
                    single.metrics.get(task).and_then(|m| m.get(metric)),
                ) else {
                    return false;
                };
                let Some(standard_error) = mtl.difference_standard_error(reference) else {
                    return false;
                };
                (mtl.mean - reference.mean).abs() > 2.0 * standard_error
            };
            summary.significant_seesaw_pairs = gains
                .seesaw_pairs
                .iter()
                .filter(|p| significant(&p.improved) && significant(&p.degraded))
                .cloned()
                .collect();
            summary.gains = Some(gains);
        }
    }
    Ok(summaries)
}

/// Per task pair, the mean ± sd over runs of the cosine after each run's last epoch.
fn last_epoch_cosines(runs: &[&RunResult]) -> Result<BTreeMap<String, MeanSd>> {
    let mut values: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for run in runs {
        for (pair, &cosine) in run.history.last().map(|h| &h.gradient_cosines).into_iter().flatten()
        {
            values.entry(pair.clone()).or_default().push(cosine);
        }
    }
    let mut out = BTreeMap::new();
    for (pair, values) in values {
        if let Some(mean_sd) = MeanSd::from_values(&values)? {
            out.insert(pair, mean_sd);
        }
    }
    Ok(out)
}

impl ComparisonReport {
    pub fn summary(&self, architecture: &str) -> Option<&ArchitectureSummary> {
        self.summaries.iter().find(|s| s.architecture == architecture)
    }

    /// The architecture with the best mean primary metric averaged over tasks (AUC, with RMSE
    /// counted negatively).
    pub fn best_architecture(&self) -> Option<&str> {
        self.summaries
            .iter()
            .map(|s| {
                let score: f64 = self
                    .tasks
                    .iter()
                    .filter_map(|t| {
                        let (metric, direction) = primary_metric(t.kind);
                        let v = s.metrics.get(&t.name)?.get(metric)?.mean;
                        Some(if direction == MetricDirection::HigherIsBetter { v } else { -v })
                    })
                    .sum();
                (s.architecture.as_str(), score)
            })
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(name, _)| name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluate::TaskMetrics;

    fn run(architecture: &str, seed: u64, a: f64, b: f64) -> RunResult {
        let metrics = |auc: f64| TaskMetrics { n: 100, auc: Some(auc), ..Default::default() };
        RunResult {
            architecture: architecture.into(),
            seed,
            evaluation: Evaluation {
                rows: 100,
                tasks: [("a".to_string(), metrics(a)), ("b".to_string(), metrics(b))]
                    .into_iter()
                    .collect(),
            },
            history: Vec::new(),
            best_epoch: 0,
            train_seconds: 1.0,
            num_params: 1,
            gate_utilisation: BTreeMap::new(),
            emotion: None,
            demotion: None,
            cmi: None,
            clip_curve: None,
        }
    }

    #[test]
    fn a_seesaw_within_seed_noise_is_not_significant() {
        let tasks =
            vec![TaskInfo::new("a", TaskKind::Binary), TaskInfo::new("b", TaskKind::Binary)];
        let architectures = vec!["single_task".to_string(), "shared_bottom".to_string()];
        // a improves by 0.05 (far beyond the spread); b loses 0.0001 (well within it).
        let runs = vec![
            run("single_task", 0, 0.70, 0.80),
            run("single_task", 1, 0.71, 0.81),
            run("shared_bottom", 0, 0.75, 0.7999),
            run("shared_bottom", 1, 0.76, 0.8099),
        ];
        let summaries = summarise(&architectures, &runs, &tasks).unwrap();
        let shared = &summaries[1];
        assert!(shared.gains.as_ref().unwrap().seesaw, "the signs differ");
        assert!(shared.significant_seesaw_pairs.is_empty(), "but b's loss is noise");
        // Now b loses 0.1: both gains are significant.
        let runs = vec![
            run("single_task", 0, 0.70, 0.80),
            run("single_task", 1, 0.71, 0.81),
            run("shared_bottom", 0, 0.75, 0.70),
            run("shared_bottom", 1, 0.76, 0.71),
        ];
        let summaries = summarise(&architectures, &runs, &tasks).unwrap();
        let pairs = &summaries[1].significant_seesaw_pairs;
        assert_eq!(pairs.len(), 1);
        assert_eq!((pairs[0].improved.as_str(), pairs[0].degraded.as_str()), ("a", "b"));
    }
}
