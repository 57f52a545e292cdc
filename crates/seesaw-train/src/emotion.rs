//! What a latent emotion score (DLEN's e) is for, measured on scored rows:
//!
//! - `emotion`: the AUC of e on the rows its confidence rules are sure of (the rules it was
//!   trained with, so the same rows), and on liked against hated impressions (rows with like and
//!   no hate against rows with hate and no like);
//! - `demotion`: among the top `top_fraction` of the rows ranked by the fused score, the rate of
//!   hated impressions and of positive engagement (a like, follow, comment or long view), with
//!   the model's fusion and with the same fusion without e. Any model with a `hate` task gets the
//!   first two figures, so the base architecture can be put beside DLEN.

use serde::{Deserialize, Serialize};

use seesaw_data::feature_map::TaskInfo;
use seesaw_metrics as metrics;
use seesaw_models::ExtraScore;
use seesaw_models::fusion::FusionConfig;

use crate::error::Result;
use crate::evaluate::Predictions;

/// The share of rows, best-ranked first, that demotion looks at.
pub const TOP_FRACTION: f64 = 0.1;

/// The task whose rate demotion should lower.
pub const HATE_TASK: &str = "hate";

/// The tasks that count as positive engagement.
pub const ENGAGEMENT_TASKS: [&str; 4] = ["like", "follow", "comment", "long_view"];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmotionMetrics {
    pub auc_confident: Option<f64>,
    pub auc_like_vs_hate: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Demotion {
    pub top_fraction: f64,
    pub hate_rate: Option<f64>,
    pub hate_rate_without_emotion: Option<f64>,
    pub engagement_rate: Option<f64>,
    pub engagement_rate_without_emotion: Option<f64>,
}

/// The model's latent score: the first extra score with confidence rules, and its index.
fn latent(extras: &[ExtraScore]) -> Option<(usize, &ExtraScore)> {
    extras.iter().enumerate().find(|(_, e)| e.supervision.is_some())
}

fn task_index(tasks: &[TaskInfo], name: &str) -> Option<usize> {
    tasks.iter().position(|t| t.name == name)
}

/// `None` when the model has no supervised latent score.
pub fn emotion_metrics(
    tasks: &[TaskInfo],
    extras: &[ExtraScore],
    predictions: &Predictions,
) -> Result<Option<EmotionMetrics>> {
    let Some((i, extra)) = latent(extras) else { return Ok(None) };
    let rules = extra.supervision.as_ref().expect("latent() picks supervised scores");
    let rules = rules.resolve(tasks)?;
    let e = &predictions.extras[i].1;
    let (labels, masks) = (&predictions.labels, &predictions.masks);
    let mut scores = Vec::new();
    let mut z = Vec::new();
    for (row, &score) in e.iter().enumerate() {
        if let Some(state) = rules.label_row(labels, masks, row) {
            scores.push(score);
            z.push(if state { 1.0 } else { 0.0 });
        }
    }
    let auc_confident = metrics::auc(&scores, &z)?;
    let auc_like_vs_hate = match like_vs_hate(tasks, predictions) {
        Some((rows, liked)) => {
            let scores: Vec<f32> = rows.iter().map(|&r| e[r]).collect();
            metrics::auc(&scores, &liked)?
        }
        None => None,
    };
    Ok(Some(EmotionMetrics { auc_confident, auc_like_vs_hate }))
}

/// The rows liked and not hated (label 1) and hated and not liked (label 0), when the model has
/// both tasks.
pub fn like_vs_hate(tasks: &[TaskInfo], p: &Predictions) -> Option<(Vec<usize>, Vec<f32>)> {
    let like = task_index(tasks, "like")?;
    let hate = task_index(tasks, HATE_TASK)?;
    let mut rows = Vec::new();
    let mut liked = Vec::new();
    for row in 0..p.rows.len() {
        if p.masks[like][row] == 0.0 || p.masks[hate][row] == 0.0 {
            continue;
        }
        match (p.labels[like][row] >= 0.5, p.labels[hate][row] >= 0.5) {
            (true, false) => liked.push(1.0),
            (false, true) => liked.push(0.0),
            _ => continue,
        }
        rows.push(row);
    }
    Some((rows, liked))
}

/// `None` when the model has no `hate` task. The fusion is the model's (`None`: the default).
pub fn demotion(
    tasks: &[TaskInfo],
    extras: &[ExtraScore],
    fusion: Option<&FusionConfig>,
    predictions: &Predictions,
) -> Result<Option<Demotion>> {
    let Some(hate) = task_index(tasks, HATE_TASK) else { return Ok(None) };
    let config = fusion.cloned().unwrap_or_else(|| FusionConfig::default_for_scores(tasks, extras));
    let without = latent(extras).and_then(|(_, e)| config.without(&e.name));
    let engagement: Vec<usize> =
        ENGAGEMENT_TASKS.iter().filter_map(|name| task_index(tasks, name)).collect();
    let rates = |config: &FusionConfig| -> Result<(Option<f64>, Option<f64>)> {
        let fusion =
            config.resolve_with(tasks, extras).map_err(crate::error::TrainError::Config)?;
        let top = top_rows(&fused_scores(&fusion, predictions), TOP_FRACTION);
        let hated: Vec<f64> = top
            .iter()
            .filter(|&&r| predictions.masks[hate][r] > 0.0)
            .map(|&r| f64::from(predictions.labels[hate][r] >= 0.5))
            .collect();
        let engaged: Vec<f64> = top
            .iter()
            .map(|&r| {
                let any = engagement
                    .iter()
                    .any(|&k| predictions.masks[k][r] > 0.0 && predictions.labels[k][r] >= 0.5);
                f64::from(any)
            })
            .collect();
        let engagement_rate = (!engagement.is_empty()).then(|| mean(&engaged)).flatten();
        Ok((mean(&hated), engagement_rate))
    };
    let (hate_rate, engagement_rate) = rates(&config)?;
    let (hate_rate_without_emotion, engagement_rate_without_emotion) = match &without {
        Some(config) => rates(config)?,
        None => (None, None),
    };
    Ok(Some(Demotion {
        top_fraction: TOP_FRACTION,
        hate_rate,
        hate_rate_without_emotion,
        engagement_rate,
        engagement_rate_without_emotion,
    }))
}

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// Each row's fused score, from its task predictions then its extra scores.
pub fn fused_scores(fusion: &seesaw_models::fusion::Fusion, p: &Predictions) -> Vec<f64> {
    let mut row = Vec::with_capacity(p.predictions.len() + p.extras.len());
    (0..p.rows.len())
        .map(|r| {
            row.clear();
            row.extend(p.predictions.iter().map(|task| task[r]));
            row.extend(p.extras.iter().map(|(_, scores)| scores[r]));
            fusion.score(&row)
        })
        .collect()
}

/// The indices of the best `fraction` of the rows (at least one when there are rows), best first;
/// ties keep the row order, so the cut is deterministic.
pub fn top_rows(scores: &[f64], fraction: f64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let n = ((scores.len() as f64 * fraction).ceil() as usize).min(scores.len());
    order.truncate(n);
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use seesaw_data::feature_map::TaskKind;
    use seesaw_models::OutputKind;
    use seesaw_models::label_rules::ConfidenceRules;

    fn tasks() -> Vec<TaskInfo> {
        vec![TaskInfo::new("like", TaskKind::Binary), TaskInfo::new("hate", TaskKind::Binary)]
    }

    fn emotion_score() -> ExtraScore {
        ExtraScore {
            name: "emotion".into(),
            kind: OutputKind::Logit,
            supervision: Some(ConfidenceRules {
                positive_when: vec!["like".parse().unwrap()],
                negative_when: vec!["hate".parse().unwrap()],
                drop_missing_tasks: false,
            }),
            clip: None,
        }
    }

    /// Ten rows: the first is liked, the last two hated; e ranks the hated ones lowest, while
    /// p(like) alone ranks one hated row first.
    fn predictions() -> Predictions {
        let n = 10;
        let like_label = [1., 0., 0., 0., 0., 0., 0., 0., 0., 0.];
        let hate_label = [0., 0., 0., 0., 0., 0., 0., 0., 1., 1.];
        let p_like = [0.5, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.9, 0.1];
        let p_hate = [0.0; 10];
        let e = [0.9, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.0, 0.0];
        Predictions {
            rows: (0..n as u32).collect(),
            user_group: vec![0; n],
            predictions: vec![p_like.to_vec(), p_hate.to_vec()],
            labels: vec![like_label.to_vec(), hate_label.to_vec()],
            masks: vec![vec![1.0; n]; 2],
            extras: vec![("emotion".into(), e.to_vec())],
            gate_utilisation: Default::default(),
        }
    }

    #[test]
    fn emotion_aucs_by_hand() {
        let m = emotion_metrics(&tasks(), &[emotion_score()], &predictions()).unwrap().unwrap();
        // Confident rows: 0 (z = 1, e = 0.9), 8 and 9 (z = 0, e = 0): AUC 1.
        assert_eq!(m.auc_confident, Some(1.0));
        assert_eq!(m.auc_like_vs_hate, Some(1.0));
        assert!(emotion_metrics(&tasks(), &[], &predictions()).unwrap().is_none());
    }

    #[test]
    fn demotion_with_and_without_the_emotion_by_hand() {
        let fusion = FusionConfig {
            method: seesaw_models::fusion::FusionMethod::WeightedSum,
            weights: [("like".to_string(), 1.0), ("emotion".to_string(), 1.0)].into(),
            demote: Default::default(),
        };
        let d =
            demotion(&tasks(), &[emotion_score()], Some(&fusion), &predictions()).unwrap().unwrap();
        // Top 10% of 10 rows = 1 row. With e: row 0 (0.5 + 0.9), liked. Without: row 8, hated.
        assert_eq!(d.hate_rate, Some(0.0));
        assert_eq!(d.engagement_rate, Some(1.0));
        assert_eq!(d.hate_rate_without_emotion, Some(1.0));
        assert_eq!(d.engagement_rate_without_emotion, Some(0.0));
    }

    #[test]
    fn the_top_rows_are_the_best_with_ties_in_row_order() {
        assert_eq!(top_rows(&[0.1, 0.5, 0.5, 0.2], 0.5), vec![1, 2]);
        assert_eq!(top_rows(&[0.1, 0.2, 0.3], 0.1), vec![2]);
        assert!(top_rows(&[], 0.1).is_empty());
    }
}
