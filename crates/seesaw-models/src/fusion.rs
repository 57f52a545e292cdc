//! Fusion of per-task predictions into one ranking score: a weighted sum or a weighted product of
//! the scores, then demotion by negative tasks (dislike, fast skip), so that content users
//! object to sinks even when it is clicked. The scores are the model's tasks and its named extra
//! scores (DLEN's emotion), so a fusion can weigh or demote by either.
//!
//! A run config may carry a `[fusion]` table; the server uses it unless a request brings its own.
//! Without one, every positive task has weight 1 and every negative task demotes with strength 1
//! (`FusionConfig::default_for`); polarity is the task's, declared in the dataset spec.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use seesaw_data::feature_map::{Polarity, TaskInfo, TaskKind};

use crate::outputs::ExtraScore;

/// Floor for a task score inside a weighted product, so that one zero prediction does not erase
/// every other task (and a negative weight does not divide by zero).
pub const PRODUCT_FLOOR: f64 = 1e-6;

/// Written as a plain string. Deserialised through `TryFrom<String>` rather than serde's enum
/// support, which would also take `{"weighted_sum": null}` and answer anything but a string or
/// an object with a JSON *syntax* error ("expected value") although the JSON is well formed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", try_from = "String")]
pub enum FusionMethod {
    /// Σ_k w_k · s_k.
    #[default]
    WeightedSum,
    /// Π_k max(s_k, PRODUCT_FLOOR)^w_k.
    WeightedProduct,
}

impl TryFrom<String> for FusionMethod {
    type Error = String;

    fn try_from(name: String) -> Result<Self, String> {
        match name.as_str() {
            "weighted_sum" => Ok(FusionMethod::WeightedSum),
            "weighted_product" => Ok(FusionMethod::WeightedProduct),
            other => Err(format!(
                "unknown fusion method {other:?}; expected \"weighted_sum\" or \"weighted_product\""
            )),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FusionConfig {
    #[serde(default)]
    pub method: FusionMethod,
    /// Task name → weight; tasks not named do not enter the base score.
    #[serde(default)]
    pub weights: BTreeMap<String, f64>,
    /// Negative binary task name → strength β ≥ 0: the score is multiplied by (1 − p)^β.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub demote: BTreeMap<String, f64>,
}

impl FusionConfig {
    /// Weight 1 for every positive task, demotion of strength 1 by every negative binary task.
    pub fn default_for(tasks: &[TaskInfo]) -> Self {
        let (negative, positive): (Vec<_>, Vec<_>) = tasks
            .iter()
            .partition(|t| t.kind == TaskKind::Binary && t.polarity == Polarity::Negative);
        Self {
            method: FusionMethod::WeightedSum,
            weights: positive.iter().map(|t| (t.name.clone(), 1.0)).collect(),
            demote: negative.iter().map(|t| (t.name.clone(), 1.0)).collect(),
        }
    }

    /// `default_for` the tasks, plus weight 1 for each extra score that is a supervised latent
    /// probability (DLEN's emotion): a model that learns such a score ranks by it by default.
    pub fn default_for_scores(tasks: &[TaskInfo], extras: &[ExtraScore]) -> Self {
        let mut config = Self::default_for(tasks);
        for extra in extras {
            if extra.supervision.is_some() && extra.kind.is_probability() {
                config.weights.insert(extra.name.clone(), 1.0);
            }
        }
        config
    }

    /// The same fusion without the named score (in neither the weights nor the demotion); `None`
    /// when no weight would remain.
    pub fn without(&self, name: &str) -> Option<Self> {
        let mut config = self.clone();
        config.weights.remove(name);
        config.demote.remove(name);
        (!config.weights.is_empty()).then_some(config)
    }

    /// Checks the config against a model's tasks and turns names into task indices.
    pub fn resolve(&self, tasks: &[TaskInfo]) -> Result<Fusion, String> {
        self.resolve_with(tasks, &[])
    }

    /// Checks the config against a model's tasks and extra scores and turns names into indices
    /// of the scores in `Fusion::score`'s order (tasks, then extras).
    pub fn resolve_with(
        &self,
        tasks: &[TaskInfo],
        extras: &[ExtraScore],
    ) -> Result<Fusion, String> {
        let names: Vec<&str> = tasks
            .iter()
            .map(|t| t.name.as_str())
            .chain(extras.iter().map(|e| e.name.as_str()))
            .collect();
        let index_of = |name: &str| {
            names.iter().position(|n| *n == name).ok_or_else(|| {
                let what = if extras.is_empty() { "tasks" } else { "tasks and scores" };
                format!(
                    "fusion names task '{name}', which the model does not predict (its {what}: {})",
                    names.join(", ")
                )
            })
        };
        let is_probability = |k: usize| match tasks.get(k) {
            Some(task) => task.kind == TaskKind::Binary,
            None => extras[k - tasks.len()].kind.is_probability(),
        };
        let mut weights = Vec::with_capacity(self.weights.len());
        for (name, &weight) in &self.weights {
            if !weight.is_finite() {
                return Err(format!("fusion weight of '{name}' is {weight}, not a finite number"));
            }
            weights.push((index_of(name)?, weight));
        }
        if weights.is_empty() {
            return Err("fusion has no task weights: name at least one task".into());
        }
        let mut demote = Vec::with_capacity(self.demote.len());
        for (name, &strength) in &self.demote {
            if !(strength.is_finite() && strength >= 0.0) {
                return Err(format!(
                    "demotion strength of '{name}' is {strength}; it must be a number ≥ 0"
                ));
            }
            let k = index_of(name)?;
            if !is_probability(k) {
                return Err(format!(
                    "only a binary task or a probability can demote ('{name}' is a regression \
                     value): demotion multiplies by (1 - p)^strength"
                ));
            }
            demote.push((k, strength));
        }
        Ok(Fusion { method: self.method, weights, demote })
    }
}

/// A fusion config resolved against one model's task list.
#[derive(Debug, Clone, PartialEq)]
pub struct Fusion {
    method: FusionMethod,
    weights: Vec<(usize, f64)>,
    demote: Vec<(usize, f64)>,
}

impl Fusion {
    /// The fused score of one candidate from its predictions (the model's tasks in order, then
    /// its extra scores). Always a finite number: a score that overflows is clamped to the
    /// largest finite one, and a NaN (which only a broken model could give) ranks last.
    pub fn score(&self, predictions: &[f32]) -> f64 {
        let score = self.raw_score(predictions);
        if score.is_nan() { f64::MIN } else { score.clamp(f64::MIN, f64::MAX) }
    }

    fn raw_score(&self, predictions: &[f32]) -> f64 {
        let base = match self.method {
            FusionMethod::WeightedSum => {
                self.weights.iter().map(|&(k, w)| w * f64::from(predictions[k])).sum::<f64>()
            }
            FusionMethod::WeightedProduct => self
                .weights
                .iter()
                .map(|&(k, w)| f64::from(predictions[k]).max(PRODUCT_FLOOR).powf(w))
                .product(),
        };
        self.demote.iter().fold(base, |score, &(k, strength)| {
            let p = f64::from(predictions[k]).clamp(0.0, 1.0);
            score * (1.0 - p).powf(strength)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tasks() -> Vec<TaskInfo> {
        [
            ("is_click", TaskKind::Binary),
            ("is_like", TaskKind::Binary),
            ("is_hate", TaskKind::Binary),
            ("watch_ratio", TaskKind::Regression),
        ]
        .map(|(name, kind)| TaskInfo::new(name, kind))
        .to_vec()
    }

    #[test]
    fn default_weights_positive_tasks_and_demotes_negative_ones() {
        let config = FusionConfig::default_for(&tasks());
        assert_eq!(
            config.weights.keys().collect::<Vec<_>>(),
            ["is_click", "is_like", "watch_ratio"]
        );
        assert_eq!(config.demote.keys().collect::<Vec<_>>(), ["is_hate"]);
        let fusion = config.resolve(&tasks()).unwrap();
        // (0.5 + 0.2 + 0.8) · (1 − 0.4)
        let score = fusion.score(&[0.5, 0.2, 0.4, 0.8]);
        assert!((score - 1.5 * 0.6).abs() < 1e-6, "{score}");
    }

    #[test]
    fn weighted_product_by_hand() {
        let config = FusionConfig {
            method: FusionMethod::WeightedProduct,
            weights: [("is_click".to_string(), 2.0), ("watch_ratio".to_string(), 0.5)].into(),
            demote: [("is_hate".to_string(), 2.0)].into(),
        };
        let fusion = config.resolve(&tasks()).unwrap();
        let expected = 0.5f64.powi(2) * 0.81f64.sqrt() * 0.9f64.powi(2);
        let score = fusion.score(&[0.5, 0.3, 0.1, 0.81]);
        assert!((score - expected).abs() < 1e-6, "{score} vs {expected}");
        // A zero prediction is floored, not allowed to zero every candidate alike.
        assert!(fusion.score(&[0.0, 0.3, 0.1, 0.81]) > 0.0);
    }

    #[test]
    fn demotion_reorders_a_clicked_but_hated_item() {
        let fusion = FusionConfig::default_for(&tasks()).resolve(&tasks()).unwrap();
        let hated = fusion.score(&[0.9, 0.3, 0.8, 0.9]);
        let liked = fusion.score(&[0.6, 0.3, 0.01, 0.7]);
        assert!(liked > hated, "{liked} vs {hated}");
    }

    #[test]
    fn bad_configs_name_what_is_wrong() {
        let unknown =
            FusionConfig { weights: [("is_share".into(), 1.0)].into(), ..Default::default() };
        let message = unknown.resolve(&tasks()).unwrap_err();
        assert!(message.contains("is_share") && message.contains("is_click"), "{message}");
        let empty = FusionConfig::default();
        assert!(empty.resolve(&tasks()).unwrap_err().contains("no task weights"));
        let regression_demotes = FusionConfig {
            weights: [("is_click".into(), 1.0)].into(),
            demote: [("watch_ratio".into(), 1.0)].into(),
            ..Default::default()
        };
        assert!(regression_demotes.resolve(&tasks()).unwrap_err().contains("binary"));
        let negative = FusionConfig {
            weights: [("is_click".into(), 1.0)].into(),
            demote: [("is_hate".into(), -1.0)].into(),
            ..Default::default()
        };
        assert!(negative.resolve(&tasks()).unwrap_err().contains("≥ 0"));
        let nan =
            FusionConfig { weights: [("is_click".into(), f64::NAN)].into(), ..Default::default() };
        assert!(nan.resolve(&tasks()).unwrap_err().contains("finite"));
    }

    #[test]
    fn declared_polarity_not_the_name_decides_demotion() {
        let mut tasks = tasks();
        tasks[1].polarity = Polarity::Negative; // is_like declared negative
        tasks[2].polarity = Polarity::Positive; // is_hate declared positive
        let config = FusionConfig::default_for(&tasks);
        assert_eq!(config.demote.keys().collect::<Vec<_>>(), ["is_like"]);
        assert!(config.weights.contains_key("is_hate"));
    }

    #[test]
    fn extra_scores_can_be_weighed_and_demote() {
        use crate::outputs::OutputKind;
        let extras = [ExtraScore::new("emotion", OutputKind::Probability)];
        let config = FusionConfig {
            method: FusionMethod::WeightedProduct,
            weights: [("is_click".into(), 1.0), ("emotion".into(), 2.0)].into(),
            demote: [("is_hate".into(), 1.0)].into(),
        };
        assert!(config.resolve(&tasks()).unwrap_err().contains("emotion"));
        let fusion = config.resolve_with(&tasks(), &extras).unwrap();
        let score = fusion.score(&[0.5, 0.3, 0.2, 0.8, 0.9]);
        assert!((score - 0.5 * 0.81 * 0.8).abs() < 1e-6, "{score}");
        let value = [ExtraScore::new("minutes", OutputKind::Value)];
        let demote_by_value = FusionConfig {
            weights: [("is_click".into(), 1.0)].into(),
            demote: [("minutes".into(), 1.0)].into(),
            ..Default::default()
        };
        assert!(demote_by_value.resolve_with(&tasks(), &value).is_err());
    }

    #[test]
    fn overflowing_scores_stay_finite() {
        let huge = FusionConfig {
            weights: [("is_click".into(), f64::MAX), ("is_like".into(), f64::MAX)].into(),
            ..Default::default()
        };
        let fusion = huge.resolve(&tasks()).unwrap();
        let score = fusion.score(&[1.0, 1.0, 0.0, 0.0]);
        assert!(score.is_finite() && score == f64::MAX, "{score}");
        let product = FusionConfig {
            method: FusionMethod::WeightedProduct,
            weights: [("is_click".into(), -1e300)].into(),
            ..Default::default()
        };
        let score = product.resolve(&tasks()).unwrap().score(&[0.5, 0.0, 0.0, 0.0]);
        assert!(score.is_finite(), "{score}");
        assert_eq!(huge.resolve(&tasks()).unwrap().score(&[f32::NAN, 0.0, 0.0, 0.0]), f64::MIN);
    }

    #[test]
    fn toml_round_trip() {
        let text = r#"
            method = "weighted_product"
            weights = { is_click = 1.0, watch_ratio = 2.0 }
            demote = { is_hate = 3.0 }
        "#;
        let config: FusionConfig = toml::from_str(text).unwrap();
        assert_eq!(config.method, FusionMethod::WeightedProduct);
        assert_eq!(config.demote["is_hate"], 3.0);
        let again: FusionConfig = toml::from_str(&toml::to_string(&config).unwrap()).unwrap();
        assert_eq!(again, config);
        assert!(toml::from_str::<FusionConfig>("methd = \"weighted_sum\"").is_err());
    }
}
