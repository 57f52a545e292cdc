//! The skip label as a measured choice (`[compare] skip_strategies`): a skip is a watch ratio
//! under a threshold, and which threshold is a modelling decision. For each strategy (a fixed
//! threshold, a per-duration-bucket quantile, the user's own median), on the same rows and split:
//!
//! - the base rate of the label on the evaluated rows;
//! - the skip AUC of single-task and of the multi-task architecture that was best on skip in the
//!   main comparison, each trained again with every seed on that label (mean ± sd);
//! - the AUC of the video's duration alone as a skip score: how much of the label is only the
//!   video's length (0.5: none; far from 0.5: much of it).

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use seesaw_data::dataset::PreparedDataset;
use seesaw_data::labels::{SKIP_TASK, SkipStrategy};
use seesaw_data::training_data::TrainingData;
use seesaw_metrics::{MeanSd, auc_masked};
use seesaw_models::Architecture;

use crate::compare::{CompareObserver, ComparisonReport, SINGLE_TASK, compare};
use crate::error::{Result, TrainError};
use crate::report::mean_sd_cell;
use crate::run_config::RunConfig;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkipStrategyResult {
    pub strategy: SkipStrategy,
    /// Positive rate of the label on the evaluated rows.
    pub base_rate: Option<f64>,
    pub single_task_auc: Option<MeanSd>,
    /// The multi-task architecture retrained on this label, and its skip AUC.
    pub multi_task: String,
    pub multi_task_auc: Option<MeanSd>,
    /// AUC of the video's duration as the only score (None without durations).
    pub duration_auc: Option<f64>,
}

/// The multi-task architecture of `report` with the highest mean skip AUC, as configured.
fn best_on_skip<'c>(config: &'c RunConfig, report: &ComparisonReport) -> Option<&'c Architecture> {
    config
        .compare
        .architectures
        .iter()
        .filter(|a| a.name() != SINGLE_TASK)
        .filter_map(|a| {
            Some((a, report.summary(&a.label())?.metrics.get(SKIP_TASK)?.get("auc")?.mean))
        })
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(a, _)| a)
}

/// Runs the study; `prepare` reads the dataset of a config (the same files, another label).
/// Refused when the comparison has no skip task.
pub fn skip_study(
    config: &RunConfig,
    report: &ComparisonReport,
    mut prepare: impl FnMut(&RunConfig) -> Result<PreparedDataset>,
    observer: &mut dyn CompareObserver,
) -> Result<Vec<SkipStrategyResult>> {
    if config.compare.skip_strategies.is_empty() {
        return Ok(Vec::new());
    }
    if !report.tasks.iter().any(|t| t.name == SKIP_TASK) {
        return Err(TrainError::Config(
            "[compare] skip_strategies needs the skip task among [dataset.labels] tasks".into(),
        ));
    }
    let best = best_on_skip(config, report).cloned().ok_or_else(|| {
        TrainError::Config(
            "[compare] skip_strategies needs a multi-task architecture in the comparison".into(),
        )
    })?;
    let mut results = Vec::new();
    for &strategy in &config.compare.skip_strategies {
        let mut run = config.clone();
        run.dataset.labels.skip = strategy;
        run.compare.architectures = vec![best.clone()];
        run.compare.variants.clear();
        run.compare.skip_strategies.clear();
        run.compare.cmi_matrix.enabled = false;
        let data = prepare(&run)?;
        let study = compare(&run, &data, None, observer)?;
        let auc = |architecture: &str| {
            study.summary(architecture)?.metrics.get(SKIP_TASK)?.get("auc").copied()
        };
        results.push(SkipStrategyResult {
            strategy,
            base_rate: study
                .runs
                .first()
                .and_then(|r| r.evaluation.tasks.get(SKIP_TASK).map(|m| m.label_mean)),
            single_task_auc: auc(SINGLE_TASK),
            multi_task: best.label(),
            multi_task_auc: auc(&best.label()),
            duration_auc: duration_auc(&data)?,
        });
    }
    Ok(results)
}

/// AUC of the duration as a skip score on the evaluated rows.
fn duration_auc(data: &PreparedDataset) -> Result<Option<f64>> {
    let Some(k) = data.feature_map.tasks.iter().position(|t| t.name == SKIP_TASK) else {
        return Ok(None);
    };
    if data.duration_seconds.is_empty() {
        return Ok(None);
    }
    let rows = data.split.part(data.evaluation_part());
    let mut scores = Vec::with_capacity(rows.len());
    let mut labels = Vec::with_capacity(rows.len());
    let mut mask = Vec::with_capacity(rows.len());
    for &row in rows {
        let (label, present) = data.labels[k].get(row as usize);
        scores.push(data.duration_seconds[row as usize]);
        labels.push(label);
        mask.push(present);
    }
    Ok(auc_masked(&scores, &labels, &mask)?)
}

fn describe(strategy: &SkipStrategy) -> String {
    match strategy {
        SkipStrategy::Fixed { threshold } => format!("fixed, ratio < {threshold}"),
        SkipStrategy::DurationQuantile { buckets, quantile } => {
            format!("duration quantile ({buckets} buckets, q = {quantile})")
        }
        SkipStrategy::UserMedian => "the user's median ratio".into(),
    }
}

/// The markdown section; empty without a study.
pub fn markdown_section(report: &ComparisonReport) -> String {
    if report.skip_study.is_empty() {
        return String::new();
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n## Skip label strategies\n\nThe same rows and split, the skip label defined each way; \
         single-task and the best multi-task architecture on skip retrained with every seed \
         (mean ± sd). Duration AUC: the video's duration alone as the skip score (0.5: the label \
         says nothing about length).\n"
    );
    let _ = writeln!(
        out,
        "| skip label | base rate | single-task AUC | multi-task | multi-task AUC | duration AUC \
         |\n|---|---|---|---|---|---|"
    );
    for r in &report.skip_study {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            describe(&r.strategy),
            r.base_rate.map_or("–".into(), |v| format!("{v:.3}")),
            mean_sd_cell(r.single_task_auc.as_ref(), 4),
            r.multi_task,
            mean_sd_cell(r.multi_task_auc.as_ref(), 4),
            r.duration_auc.map_or("–".into(), |v| format!("{v:.3}")),
        );
    }
    out
}
