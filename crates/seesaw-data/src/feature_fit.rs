//! Fitting one feature's encoding on training rows: token counts for vocabularies, running
//! moments and a sample for numeric transforms. A fitter takes rows from one in-memory log at
//! once or chunk by chunk from a stream, and fitters of different chunks merge, so the in-memory
//! and the streaming fit share one definition.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::feature_map::{Encoding, FeatureSource, FittedFeature, split_multi};
use crate::numeric::NumericFitter;
use crate::raw_feature::{RawFeature, RawValues};
use crate::spec::{FeatureKind, FeatureSpec, NumericTransform};
use crate::vocabulary::Vocabulary;

/// The statistics of one feature over the training rows added so far.
#[derive(Debug, Clone)]
pub struct FeatureFitter {
    spec: FeatureSpec,
    source: FeatureSource,
    state: FitState,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
enum FitState {
    /// Impressions per token (per separated part for a multi-valued feature).
    Counts(HashMap<String, u64>),
    Numeric(NumericFitter),
}

impl FeatureFitter {
    pub fn new(spec: &FeatureSpec, source: FeatureSource) -> Self {
        let state = if spec.kind == FeatureKind::Numeric {
            FitState::Numeric(NumericFitter::new(spec.transform, spec.buckets))
        } else {
            FitState::Counts(HashMap::new())
        };
        Self { spec: spec.clone(), source, state }
    }

    /// Adds the training rows `rows` of `raw` (repeated indices weight the value by its
    /// impressions).
    pub fn add(&mut self, raw: &RawFeature, rows: impl Iterator<Item = u32>) {
        match (&mut self.state, &raw.values) {
            (FitState::Counts(counts), RawValues::Tokens { tokens, values }) => {
                // Counted per distinct cell first: one hash lookup per cell, not per row.
                let mut cell_counts = vec![0u64; tokens.len()];
                rows.for_each(|r| cell_counts[values[r as usize] as usize] += 1);
                let multi = self.spec.kind == FeatureKind::Multi;
                for (cell, &n) in tokens.tokens().zip(&cell_counts).filter(|(_, n)| **n > 0) {
                    if multi {
                        for part in split_multi(cell, &self.spec.separator) {
                            *counts.entry(part.to_owned()).or_default() += n;
                        }
                    } else {
                        *counts.entry(cell.to_owned()).or_default() += n;
                    }
                }
            }
            (FitState::Numeric(numeric), RawValues::Numbers(values)) => {
                numeric.add(rows.map(|r| values[r as usize]))
            }
            _ => unreachable!("feature '{}': raw values of another kind", self.spec.name()),
        }
    }

    /// Adds the statistics of a fitter of the same feature (another chunk's).
    pub fn merge(&mut self, other: FeatureFitter) {
        match (&mut self.state, other.state) {
            (FitState::Counts(counts), FitState::Counts(more)) => {
                for (token, n) in more {
                    *counts.entry(token).or_default() += n;
                }
            }
            (FitState::Numeric(numeric), FitState::Numeric(more)) => numeric.merge(more),
            _ => unreachable!("merging fitters of different features"),
        }
    }

    pub fn finish(self) -> FittedFeature {
        let spec = self.spec;
        let encoding = match self.state {
            FitState::Counts(counts) => {
                let vocabulary =
                    Vocabulary::fit(counts.iter().map(|(t, &n)| (t.as_str(), n)), spec.min_count);
                match spec.kind {
                    FeatureKind::Multi => Encoding::Multi {
                        vocabulary,
                        separator: spec.separator.clone(),
                        max_len: spec.max_len,
                    },
                    _ if spec.one_hot => Encoding::OneHot { vocabulary },
                    _ => Encoding::Categorical { vocabulary },
                }
            }
            FitState::Numeric(numeric) => {
                let numeric = numeric.finish();
                if spec.transform == NumericTransform::Quantile {
                    Encoding::Bucketized { numeric }
                } else {
                    Encoding::Numeric { numeric }
                }
            }
        };
        FittedFeature {
            name: spec.name().to_owned(),
            column: spec.column.clone(),
            source: self.source,
            encoding,
        }
    }
}

/// A fitter as ranks exchange it to merge their shards' fits: the spec travels as JSON, because
/// its serde form leaves out absent fields, which a compact binary format cannot.
#[derive(Serialize)]
struct FitterOnWire<'a> {
    spec: String,
    source: FeatureSource,
    state: &'a FitState,
}

#[derive(Deserialize)]
struct FitterFromWire {
    spec: String,
    source: FeatureSource,
    state: FitState,
}

impl Serialize for FeatureFitter {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let spec = serde_json::to_string(&self.spec).map_err(serde::ser::Error::custom)?;
        FitterOnWire { spec, source: self.source, state: &self.state }.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for FeatureFitter {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let FitterFromWire { spec, source, state } = FitterFromWire::deserialize(deserializer)?;
        let spec = serde_json::from_str(&spec).map_err(serde::de::Error::custom)?;
        Ok(Self { spec, source, state })
    }
}

/// Fits one feature from the raw values of training rows (`rows` index into `raw`; repeated
/// indices weight the value by its impressions).
pub fn fit_feature(
    raw: &RawFeature,
    source: FeatureSource,
    rows: impl Iterator<Item = u32>,
) -> FittedFeature {
    let mut fitter = FeatureFitter::new(&raw.spec, source);
    fitter.add(raw, rows);
    fitter.finish()
}
