//! The fitted feature map: vocabularies, normalisers, the skip rule and the task list, fitted on
//! training rows only. Saved as JSON beside a model so that serving encodes a new row exactly as
//! training did (FuxiCTR's habit).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};
pub use crate::feature_fit::fit_feature;
pub use crate::labels::Polarity;
use crate::labels::{FittedSkip, SKIP_TASK, WATCH_RATIO_TASK, WATCH_THROUGH_TASK};
use crate::numeric::FittedNumeric;
use crate::raw_feature::{RawFeature, RawValues};
use crate::spec::DatasetSpec;
use crate::vocabulary::Vocabulary;

pub const FEATURE_MAP_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureSource {
    Log,
    User,
    Video,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    /// A 0/1 label, trained with BCE.
    Binary,
    /// A ratio in [0, regression_cap], trained with MSE.
    Regression,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "TaskInfoRecord")]
pub struct TaskInfo {
    pub name: String,
    pub kind: TaskKind,
    pub polarity: Polarity,
}

impl TaskInfo {
    /// A task with the default polarity of its name.
    pub fn new(name: impl Into<String>, kind: TaskKind) -> Self {
        let name = name.into();
        Self { polarity: Polarity::default_for(&name), name, kind }
    }
}

/// `TaskInfo` as written by feature maps older than task polarity: a missing polarity is the
/// default of the task's name, as it was when those maps were written.
#[derive(Deserialize)]
struct TaskInfoRecord {
    name: String,
    kind: TaskKind,
    #[serde(default)]
    polarity: Option<Polarity>,
}

impl From<TaskInfoRecord> for TaskInfo {
    fn from(r: TaskInfoRecord) -> Self {
        Self {
            polarity: r.polarity.unwrap_or_else(|| Polarity::default_for(&r.name)),
            ..Self::new(r.name, r.kind)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "encoding", rename_all = "snake_case")]
pub enum Encoding {
    /// One categorical slot.
    Categorical { vocabulary: Vocabulary },
    /// `vocabulary.cardinality()` dense slots.
    OneHot { vocabulary: Vocabulary },
    /// One dense slot.
    Numeric { numeric: FittedNumeric },
    /// One categorical slot of `numeric.bucket_cardinality()` values.
    Bucketized { numeric: FittedNumeric },
    /// `max_len` indices into one vocabulary, 0-padded.
    Multi { vocabulary: Vocabulary, separator: String, max_len: usize },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FittedFeature {
    pub name: String,
    pub column: String,
    pub source: FeatureSource,
    #[serde(flatten)]
    pub encoding: Encoding,
}

/// The order in which the features of each source sit in a batch row, after user_id and
/// video_id: the one definition that the fit (`dataset::prepare_log`), the schema
/// (`FeatureMap::schema`) and the batch layout (`BatchBuilder::push`) all follow.
pub const SOURCE_ORDER: [FeatureSource; 3] =
    [FeatureSource::Log, FeatureSource::User, FeatureSource::Video];

/// Where each encoded value sits in a batch row: what an embedding layer reads. Every slot knows
/// its source, so a server can tell which slots are the same for every candidate of a request
/// (the user's and the context's) without counting slots itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureSchema {
    /// Categorical slots: user_id, video_id, then features in `SOURCE_ORDER`.
    pub categorical: Vec<CategoricalSlot>,
    /// Dense slots, one per f32, in `SOURCE_ORDER`.
    pub dense: Vec<DenseSlot>,
    /// Multi-valued slots, in `SOURCE_ORDER`.
    pub multi: Vec<MultiSlot>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoricalSlot {
    pub name: String,
    pub cardinality: usize,
    /// user_id is a user slot, video_id a video slot.
    pub source: FeatureSource,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DenseSlot {
    pub name: String,
    pub source: FeatureSource,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MultiSlot {
    pub name: String,
    pub cardinality: usize,
    pub max_len: usize,
    pub source: FeatureSource,
}

impl FeatureSchema {
    pub fn multi_width(&self) -> usize {
        self.multi.iter().map(|m| m.max_len).sum()
    }
}

/// The encoded values of one feature for one row, appended to the right buffers.
#[derive(Default)]
pub struct EncodedParts {
    pub categorical: Vec<u32>,
    pub dense: Vec<f32>,
    pub multi: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureMap {
    pub version: u32,
    /// The resolved dataset spec, so new rows are read with the same roles and cleaning.
    pub spec: DatasetSpec,
    pub user_id: Vocabulary,
    pub video_id: Vocabulary,
    pub features: Vec<FittedFeature>,
    pub tasks: Vec<TaskInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip: Option<FittedSkip>,
    /// Clip feature width, when clip features were given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip_feature_dim: Option<usize>,
}

impl FeatureMap {
    pub fn schema(&self) -> FeatureSchema {
        let mut schema = FeatureSchema {
            categorical: vec![
                CategoricalSlot {
                    name: "user_id".into(),
                    cardinality: self.user_id.cardinality(),
                    source: FeatureSource::User,
                },
                CategoricalSlot {
                    name: "video_id".into(),
                    cardinality: self.video_id.cardinality(),
                    source: FeatureSource::Video,
                },
            ],
            dense: Vec::new(),
            multi: Vec::new(),
        };
        for feature in SOURCE_ORDER.iter().flat_map(|&source| self.features_of(source)) {
            let (name, source) = (feature.name.clone(), feature.source);
            let dense = |name: String| DenseSlot { name, source };
            match &feature.encoding {
                Encoding::Categorical { vocabulary } => schema.categorical.push(CategoricalSlot {
                    name,
                    cardinality: vocabulary.cardinality(),
                    source,
                }),
                Encoding::Bucketized { numeric } => schema.categorical.push(CategoricalSlot {
                    name,
                    cardinality: numeric.bucket_cardinality(),
                    source,
                }),
                Encoding::OneHot { vocabulary } => {
                    schema.dense.push(dense(format!("{name}=<oov>")));
                    for i in 1..vocabulary.cardinality() as u32 {
                        schema
                            .dense
                            .push(dense(format!("{name}={}", vocabulary.token(i).unwrap_or(""))));
                    }
                }
                Encoding::Numeric { .. } => schema.dense.push(dense(name)),
                Encoding::Multi { vocabulary, max_len, .. } => schema.multi.push(MultiSlot {
                    name,
                    cardinality: vocabulary.cardinality(),
                    max_len: *max_len,
                    source,
                }),
            }
        }
        schema
    }

    pub fn features_of(&self, source: FeatureSource) -> impl Iterator<Item = &FittedFeature> {
        self.features.iter().filter(move |f| f.source == source)
    }

    pub fn task_index(&self, name: &str) -> Option<usize> {
        self.tasks.iter().position(|t| t.name == name)
    }

    /// Writes JSON atomically: a temporary file in the same directory, renamed into place.
    pub fn save(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(self)
            .map_err(|e| DataError::Json { path: path.to_owned(), message: e.to_string() })?;
        crate::atomic::write(path, &json)
    }

    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
        let map: FeatureMap = serde_json::from_slice(&bytes)
            .map_err(|e| DataError::Json { path: path.to_owned(), message: e.to_string() })?;
        if map.version != FEATURE_MAP_VERSION {
            return Err(DataError::Json {
                path: path.to_owned(),
                message: format!(
                    "feature map version {} is not the supported {FEATURE_MAP_VERSION}",
                    map.version
                ),
            });
        }
        Ok(map)
    }
}

/// The task list a spec asks for, checked against what the log can give.
pub fn resolve_tasks(spec: &DatasetSpec) -> Result<Vec<TaskInfo>> {
    let mut available: Vec<TaskInfo> = spec
        .flag_tasks()
        .into_iter()
        .map(|(_, name)| TaskInfo::new(name, TaskKind::Binary))
        .collect();
    if spec.has_watch_ratio() {
        available.push(TaskInfo::new(WATCH_RATIO_TASK, TaskKind::Regression));
        available.push(TaskInfo::new(SKIP_TASK, TaskKind::Binary));
    }
    // Derivable on request only: naming it in `labels.tasks` adds it, the default list stays.
    let on_request: Vec<TaskInfo> = if spec.has_watch_ratio() {
        vec![TaskInfo::new(WATCH_THROUGH_TASK, TaskKind::Binary)]
    } else {
        Vec::new()
    };
    let n_default = available.len();
    available.extend(on_request);
    for (name, &polarity) in &spec.labels.polarity {
        match available.iter_mut().find(|t| &t.name == name) {
            Some(task) => task.polarity = polarity,
            None => {
                return Err(DataError::spec(format!(
                    "labels.polarity names '{name}', which is not a task of this log (tasks: {})",
                    available.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(", ")
                )));
            }
        }
    }
    let tasks: Vec<TaskInfo> = match &spec.labels.tasks {
        None => available[..n_default].to_vec(),
        Some(names) => names
            .iter()
            .map(|name| {
                available.iter().find(|t| &t.name == name).cloned().ok_or_else(|| {
                    DataError::spec(format!(
                        "labels.tasks names '{name}', which this log cannot give (available: {})",
                        available.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(", ")
                    ))
                })
            })
            .collect::<Result<_>>()?,
    };
    for (i, task) in tasks.iter().enumerate() {
        if tasks[..i].iter().any(|t| t.name == task.name) {
            return Err(DataError::spec(format!("labels.tasks names '{}' twice", task.name)));
        }
    }
    Ok(tasks)
}

/// A single value handed to `FittedFeature::encode_value`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FeatureValue<'a> {
    Text(&'a str),
    Number(f64),
    Missing,
}

/// The number a numeric feature reads from a value, with the CSV reader's rules: blank text is
/// missing (NaN), anything else must parse as a finite number.
fn number_of(value: FeatureValue<'_>) -> Result<f32, String> {
    match value {
        FeatureValue::Missing => Ok(f32::NAN),
        FeatureValue::Number(v) if v.is_finite() => Ok(v as f32),
        FeatureValue::Number(v) => Err(format!("{v} is not a finite number")),
        FeatureValue::Text(text) => match text.trim() {
            "" => Ok(f32::NAN),
            trimmed => match trimmed.parse::<f64>() {
                Ok(v) if v.is_finite() => Ok(v as f32),
                _ => Err(format!("cannot read '{text}' as a number")),
            },
        },
    }
}

/// The values of a multi-valued cell: "3,39", "[8, 2]" (KuaiRec's lists) and "'a'|'b'" all
/// split into bare values.
pub(crate) fn split_multi<'a>(cell: &'a str, separator: &'a str) -> impl Iterator<Item = &'a str> {
    cell.split(separator)
        .map(|s| s.trim_matches(|c: char| c.is_whitespace() || matches!(c, '[' | ']' | '"' | '\'')))
        .filter(|s| !s.is_empty())
}

impl FittedFeature {
    /// Encodes row `row` of `raw` (the same feature's raw values) into `out`.
    pub fn encode(&self, raw: &RawFeature, row: usize, out: &mut EncodedParts) {
        match &raw.values {
            RawValues::Tokens { tokens, values } => {
                self.encode_text(tokens.token(values[row]), out)
            }
            RawValues::Numbers(values) => self.encode_number(values[row], out),
        }
    }

    /// Encodes one value that did not come from a table: a field of a scoring request. It follows
    /// the table readers' rules exactly, so a request and a log row with the same values encode
    /// alike: a number given to a categorical feature is its text, text given to a numeric
    /// feature is parsed, and `Missing` is what an empty cell would be.
    pub fn encode_value(
        &self,
        value: FeatureValue<'_>,
        out: &mut EncodedParts,
    ) -> Result<(), String> {
        if self.reads_numbers() {
            self.encode_number(number_of(value)?, out);
            return Ok(());
        }
        match value {
            FeatureValue::Text(text) => self.encode_text(text, out),
            FeatureValue::Number(v) => self.encode_text(&v.to_string(), out),
            FeatureValue::Missing => self.encode_text("", out),
        }
        Ok(())
    }

    /// The encoding of a missing value (an id absent from its side table): what an empty cell
    /// gives.
    pub fn encode_missing(&self, out: &mut EncodedParts) {
        if self.reads_numbers() {
            self.encode_number(f32::NAN, out)
        } else {
            self.encode_text("", out)
        }
    }

    /// Whether the table readers hand this feature numbers (numeric, bucketized) or text.
    fn reads_numbers(&self) -> bool {
        matches!(self.encoding, Encoding::Numeric { .. } | Encoding::Bucketized { .. })
    }

    /// One text cell of a categorical, one-hot or multi-valued feature; "" is the empty cell.
    fn encode_text(&self, text: &str, out: &mut EncodedParts) {
        match &self.encoding {
            Encoding::Categorical { vocabulary } => out.categorical.push(vocabulary.index(text)),
            Encoding::OneHot { vocabulary } => {
                let hot = vocabulary.index(text) as usize;
                out.dense.extend(
                    (0..vocabulary.cardinality()).map(|i| if i == hot { 1.0 } else { 0.0 }),
                );
            }
            Encoding::Multi { vocabulary, separator, max_len } => {
                let start = out.multi.len();
                out.multi.extend(
                    split_multi(text, separator).take(*max_len).map(|p| vocabulary.index(p)),
                );
                out.multi.resize(start + max_len, 0);
            }
            Encoding::Numeric { .. } | Encoding::Bucketized { .. } => {
                unreachable!("feature '{}' is encoded from numbers, not text", self.name)
            }
        }
    }

    /// One number of a numeric or bucketized feature; NaN is the empty cell.
    fn encode_number(&self, value: f32, out: &mut EncodedParts) {
        match &self.encoding {
            Encoding::Numeric { numeric } => out.dense.push(numeric.dense(value)),
            Encoding::Bucketized { numeric } => out.categorical.push(numeric.bucket(value)),
            _ => unreachable!("feature '{}' is encoded from text, not numbers", self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interner::Interner;
    use crate::spec::{FeatureSpec, NumericTransform};

    fn tokens(spec: FeatureSpec, cells: &[&str]) -> RawFeature {
        let mut interner = Interner::new();
        let values = cells.iter().map(|c| interner.intern(c)).collect();
        RawFeature { spec, values: RawValues::Tokens { tokens: interner, values } }
    }

    fn encoded_by_table(
        fitted: &FittedFeature,
        raw: &RawFeature,
        row: usize,
    ) -> (Vec<u32>, Vec<f32>, Vec<u32>) {
        let mut out = EncodedParts::default();
        fitted.encode(raw, row, &mut out);
        (out.categorical, out.dense, out.multi)
    }

    fn encoded_by_value(
        fitted: &FittedFeature,
        value: FeatureValue<'_>,
    ) -> (Vec<u32>, Vec<f32>, Vec<u32>) {
        let mut out = EncodedParts::default();
        fitted.encode_value(value, &mut out).unwrap();
        (out.categorical, out.dense, out.multi)
    }

    fn encoded_missing(fitted: &FittedFeature) -> (Vec<u32>, Vec<f32>, Vec<u32>) {
        let mut out = EncodedParts::default();
        fitted.encode_missing(&mut out);
        (out.categorical, out.dense, out.multi)
    }

    #[test]
    fn a_request_value_encodes_like_the_same_table_cell() {
        let cells = ["1", "2", "", "1", "7"];
        let specs = [
            FeatureSpec::categorical("tab"),
            FeatureSpec { one_hot: true, ..FeatureSpec::categorical("tab") },
            FeatureSpec::multi("tab"),
        ];
        for spec in specs {
            let raw = tokens(spec, &cells);
            let fitted = fit_feature(&raw, FeatureSource::Log, 0..4);
            for (row, cell) in cells.iter().enumerate() {
                let value =
                    if cell.is_empty() { FeatureValue::Missing } else { FeatureValue::Text(cell) };
                assert_eq!(encoded_by_value(&fitted, value), encoded_by_table(&fitted, &raw, row));
                if cell.is_empty() {
                    assert_eq!(encoded_missing(&fitted), encoded_by_table(&fitted, &raw, row));
                }
            }
            // A JSON number for a categorical feature is its text.
            assert_eq!(
                encoded_by_value(&fitted, FeatureValue::Number(2.0)),
                encoded_by_table(&fitted, &raw, 1)
            );
        }
        for transform in [NumericTransform::Log1pZscore, NumericTransform::Quantile] {
            let numbers = vec![1.0, 5.0, f32::NAN, 20.0, 3.5];
            let raw = RawFeature {
                spec: FeatureSpec::numeric("x", transform),
                values: RawValues::Numbers(numbers.clone()),
            };
            let fitted = fit_feature(&raw, FeatureSource::Log, 0..5);
            for (row, &v) in numbers.iter().enumerate() {
                let text = v.to_string();
                let by_table = encoded_by_table(&fitted, &raw, row);
                if v.is_nan() {
                    assert_eq!(encoded_by_value(&fitted, FeatureValue::Missing), by_table);
                    assert_eq!(encoded_missing(&fitted), by_table);
                    assert_eq!(encoded_by_value(&fitted, FeatureValue::Text(" ")), by_table);
                } else {
                    assert_eq!(encoded_by_value(&fitted, FeatureValue::Number(v.into())), by_table);
                    assert_eq!(encoded_by_value(&fitted, FeatureValue::Text(&text)), by_table);
                }
            }
            let mut out = EncodedParts::default();
            let error = fitted.encode_value(FeatureValue::Text("abc"), &mut out).unwrap_err();
            assert!(error.contains("'abc'"), "{error}");
            assert!(fitted.encode_value(FeatureValue::Number(f64::INFINITY), &mut out).is_err());
        }
    }

    #[test]
    fn polarity_is_declared_with_name_defaults_and_task_names_are_unique() {
        let mut spec = crate::presets::preset("kuairand").unwrap();
        spec.labels.tasks = Some(vec!["click".into(), "hate".into(), "skip".into()]);
        let tasks = resolve_tasks(&spec).unwrap();
        let polarity: Vec<Polarity> = tasks.iter().map(|t| t.polarity).collect();
        assert_eq!(polarity, [Polarity::Positive, Polarity::Negative, Polarity::Negative]);

        spec.labels.polarity = [("click".to_string(), Polarity::Negative)].into();
        assert_eq!(resolve_tasks(&spec).unwrap()[0].polarity, Polarity::Negative);
        spec.labels.polarity = [("share".to_string(), Polarity::Negative)].into();
        let message = resolve_tasks(&spec).unwrap_err().to_string();
        assert!(message.contains("labels.polarity names 'share'"), "{message}");

        spec.labels.polarity.clear();
        spec.labels.tasks = Some(vec!["click".into(), "like".into(), "click".into()]);
        let message = resolve_tasks(&spec).unwrap_err().to_string();
        assert!(message.contains("'click' twice"), "{message}");

        // A task written before polarity existed reads with its name's default.
        let old: TaskInfo = serde_json::from_str(r#"{"name": "hate", "kind": "binary"}"#).unwrap();
        assert_eq!(old.polarity, Polarity::Negative);
    }
}
