//! Confidence rules over a row's task labels: when a row's labels say for sure what a latent
//! state is (DLEN's emotion: z = 1 when the user liked, followed, shared or commented; z = 0 when
//! they hated the video or left it within the first fifth). Rows where no rule fires, or where
//! rules of both sides fire, say nothing and are left unsupervised.
//!
//! A rule is written as the task's name (a binary label that is 1) or as a comparison of the
//! task's label with a number (`"watch_ratio < 0.2"`, `"watch_ratio >= 0.9"`). The same resolved
//! rules label rows in the model's loss (on tensors) and in evaluation (on plain slices), so the
//! two can never disagree.

use std::fmt;

use burn::tensor::Tensor;
use seesaw_data::feature_map::{TaskInfo, TaskKind};
use serde::{Deserialize, Serialize};

use crate::error::{Result, invalid};
use crate::targets::ModelTargets;

/// How a rule tests a label.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RuleTest {
    /// A binary label equal to 1 (written as the bare task name).
    Positive,
    Below(f32),
    AtMost(f32),
    Above(f32),
    AtLeast(f32),
}

impl RuleTest {
    pub fn fires(self, label: f32) -> bool {
        match self {
            RuleTest::Positive => label >= 0.5,
            RuleTest::Below(t) => label < t,
            RuleTest::AtMost(t) => label <= t,
            RuleTest::Above(t) => label > t,
            RuleTest::AtLeast(t) => label >= t,
        }
    }

    /// 1.0 where the rule fires, as a [B, 1] tensor.
    fn fires_on(self, labels: Tensor<2>) -> Tensor<2> {
        match self {
            RuleTest::Positive => labels.greater_equal_elem(0.5).float(),
            RuleTest::Below(t) => labels.lower_elem(t).float(),
            RuleTest::AtMost(t) => labels.lower_equal_elem(t).float(),
            RuleTest::Above(t) => labels.greater_elem(t).float(),
            RuleTest::AtLeast(t) => labels.greater_equal_elem(t).float(),
        }
    }
}

/// One rule, as written in the config: `"like"` or `"watch_ratio < 0.2"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct LabelRule {
    pub task: String,
    pub test: RuleTest,
}

impl TryFrom<String> for LabelRule {
    type Error = String;

    fn try_from(text: String) -> std::result::Result<Self, String> {
        text.parse()
    }
}

impl std::str::FromStr for LabelRule {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Self, String> {
        // Two-character operators first, so "<=" is not read as "<" followed by "=0.2".
        for (op, make) in [
            ("<=", RuleTest::AtMost as fn(f32) -> RuleTest),
            (">=", RuleTest::AtLeast),
            ("<", RuleTest::Below),
            (">", RuleTest::Above),
        ] {
            if let Some((task, number)) = text.split_once(op) {
                let task = task.trim();
                let number = number.trim();
                let threshold: f32 = number
                    .parse()
                    .map_err(|_| format!("label rule `{text}`: `{number}` is not a number"))?;
                if task.is_empty() || !threshold.is_finite() {
                    return Err(format!(
                        "label rule `{text}`: write `<task> {op} <number>`, e.g. `watch_ratio < 0.2`"
                    ));
                }
                return Ok(LabelRule { task: task.to_string(), test: make(threshold) });
            }
        }
        let task = text.trim();
        if task.is_empty() || task.contains(char::is_whitespace) || task.contains('=') {
            return Err(format!(
                "label rule `{text}`: write a binary task's name (`like`) or `<task> < <number>`"
            ));
        }
        Ok(LabelRule { task: task.to_string(), test: RuleTest::Positive })
    }
}

impl fmt::Display for LabelRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.test {
            RuleTest::Positive => write!(f, "{}", self.task),
            RuleTest::Below(t) => write!(f, "{} < {t}", self.task),
            RuleTest::AtMost(t) => write!(f, "{} <= {t}", self.task),
            RuleTest::Above(t) => write!(f, "{} > {t}", self.task),
            RuleTest::AtLeast(t) => write!(f, "{} >= {t}", self.task),
        }
    }
}

impl From<LabelRule> for String {
    fn from(rule: LabelRule) -> String {
        rule.to_string()
    }
}

/// The rules of both sides, as configured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfidenceRules {
    /// Any of these fires: the latent state is 1.
    pub positive_when: Vec<LabelRule>,
    /// Any of these fires: the latent state is 0.
    pub negative_when: Vec<LabelRule>,
    /// Rules naming a task the model does not have are dropped (the defaults, written for every
    /// dataset) rather than refused (rules the user wrote).
    #[serde(default)]
    pub drop_missing_tasks: bool,
}

/// Rules resolved against a model's tasks: (task index, test).
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedRules {
    pub positive: Vec<(usize, RuleTest)>,
    pub negative: Vec<(usize, RuleTest)>,
}

impl ConfidenceRules {
    pub fn resolve(&self, tasks: &[TaskInfo]) -> Result<ResolvedRules> {
        let side = |rules: &[LabelRule]| -> Result<Vec<(usize, RuleTest)>> {
            let mut resolved = Vec::new();
            for rule in rules {
                let Some(k) = tasks.iter().position(|t| t.name == rule.task) else {
                    if self.drop_missing_tasks {
                        continue;
                    }
                    let names: Vec<&str> = tasks.iter().map(|t| t.name.as_str()).collect();
                    return invalid(format!(
                        "label rule `{rule}` names no task of this model (tasks: {})",
                        names.join(", ")
                    ));
                };
                if rule.test == RuleTest::Positive && tasks[k].kind == TaskKind::Regression {
                    return invalid(format!(
                        "label rule `{rule}`: `{}` is a regression task, give a threshold \
                         (e.g. `{} < 0.2`)",
                        rule.task, rule.task
                    ));
                }
                resolved.push((k, rule.test));
            }
            Ok(resolved)
        };
        Ok(ResolvedRules {
            positive: side(&self.positive_when)?,
            negative: side(&self.negative_when)?,
        })
    }
}

impl ResolvedRules {
    pub fn is_one_sided(&self) -> bool {
        self.positive.is_empty() || self.negative.is_empty()
    }

    /// The latent state of one row when the rules are sure of it: `labels[k][row]` and
    /// `masks[k][row]` per task (a missing label fires nothing).
    pub fn label_row(&self, labels: &[Vec<f32>], masks: &[Vec<f32>], row: usize) -> Option<bool> {
        let any = |rules: &[(usize, RuleTest)]| {
            rules.iter().any(|&(k, test)| masks[k][row] > 0.0 && test.fires(labels[k][row]))
        };
        match (any(&self.positive), any(&self.negative)) {
            (true, false) => Some(true),
            (false, true) => Some(false),
            _ => None,
        }
    }

    /// The same on a batch's targets, as tensors: (z, confident), each [B, 1] of 0/1.
    pub fn label_batch(&self, targets: &ModelTargets) -> (Tensor<2>, Tensor<2>) {
        let any = |rules: &[(usize, RuleTest)]| -> Option<Tensor<2>> {
            rules
                .iter()
                .map(|&(k, test)| {
                    let t = &targets.tasks[k];
                    test.fires_on(t.labels.clone()) * t.mask.clone()
                })
                .reduce(|a, b| a + b)
                .map(|sum| sum.clamp_max(1.0))
        };
        let template = &targets.tasks[0].mask;
        let zeros = || template.zeros_like();
        let positive = any(&self.positive).unwrap_or_else(zeros);
        let negative = any(&self.negative).unwrap_or_else(zeros);
        // Exactly one side fired: |pos − neg| = 1; both or neither: 0.
        let confident = (positive.clone() - negative).abs();
        (positive * confident.clone(), confident)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(text: &str) -> LabelRule {
        text.parse().unwrap()
    }

    #[test]
    fn rules_parse_and_print_back() {
        assert_eq!(rule("like"), LabelRule { task: "like".into(), test: RuleTest::Positive });
        assert_eq!(rule(" watch_ratio<0.2 ").test, RuleTest::Below(0.2));
        assert_eq!(rule("watch_ratio <= 0.2").test, RuleTest::AtMost(0.2));
        assert_eq!(rule("watch_ratio >= 1").test, RuleTest::AtLeast(1.0));
        assert_eq!(rule("watch_ratio > 1").test, RuleTest::Above(1.0));
        for text in ["like", "watch_ratio < 0.2", "watch_ratio >= 1"] {
            assert_eq!(rule(text).to_string(), text);
        }
        for bad in ["", "< 0.2", "watch_ratio < x", "like = 1", "a b", "w < inf"] {
            assert!(bad.parse::<LabelRule>().is_err(), "{bad:?} parsed");
        }
    }

    fn tasks() -> Vec<TaskInfo> {
        vec![
            TaskInfo::new("like", TaskKind::Binary),
            TaskInfo::new("hate", TaskKind::Binary),
            TaskInfo::new("watch_ratio", TaskKind::Regression),
        ]
    }

    fn rules(pos: &[&str], neg: &[&str], drop: bool) -> ConfidenceRules {
        ConfidenceRules {
            positive_when: pos.iter().map(|r| rule(r)).collect(),
            negative_when: neg.iter().map(|r| rule(r)).collect(),
            drop_missing_tasks: drop,
        }
    }

    #[test]
    fn missing_tasks_are_refused_unless_dropped_and_regression_needs_a_threshold() {
        let err = rules(&["share"], &["hate"], false).resolve(&tasks()).unwrap_err();
        assert!(err.to_string().contains("`share` names no task"), "{err}");
        let r = rules(&["like", "share"], &["hate"], true).resolve(&tasks()).unwrap();
        assert_eq!(r.positive, vec![(0, RuleTest::Positive)]);
        let err = rules(&["watch_ratio"], &["hate"], false).resolve(&tasks()).unwrap_err();
        assert!(err.to_string().contains("regression task"), "{err}");
    }

    #[test]
    fn a_row_is_confident_only_when_exactly_one_side_fires() {
        let r = rules(&["like"], &["hate", "watch_ratio < 0.2"], false).resolve(&tasks()).unwrap();
        // rows: liked; hated; left early; liked and hated; nothing; like label missing.
        let labels = vec![
            vec![1.0, 0.0, 0.0, 1.0, 0.0, 1.0],
            vec![0.0, 1.0, 0.0, 1.0, 0.0, 0.0],
            vec![0.9, 0.9, 0.1, 0.9, 0.9, 0.9],
        ];
        let mut masks = vec![vec![1.0; 6]; 3];
        masks[0][5] = 0.0;
        let got: Vec<Option<bool>> = (0..6).map(|i| r.label_row(&labels, &masks, i)).collect();
        assert_eq!(got, vec![Some(true), Some(false), Some(false), None, None, None]);

        // The tensor form agrees row for row.
        let device = burn::tensor::Device::flex();
        let t = |v: &Vec<f32>| {
            Tensor::<2>::from_data(burn::tensor::TensorData::new(v.clone(), [6, 1]), &device)
        };
        let targets = ModelTargets {
            tasks: (0..3)
                .map(|k| crate::targets::TaskTargets {
                    labels: t(&labels[k]),
                    mask: t(&masks[k]),
                    count: masks[k].iter().sum(),
                })
                .collect(),
            clips: None,
            step: None,
        };
        let (z, confident) = r.label_batch(&targets);
        let z = crate::to_vec(z);
        let confident = crate::to_vec(confident);
        for (i, g) in got.iter().enumerate() {
            assert_eq!(confident[i] == 1.0, g.is_some(), "row {i}");
            assert_eq!(z[i] == 1.0, *g == Some(true), "row {i}");
        }
    }
}
