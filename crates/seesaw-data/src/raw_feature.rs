//! Feature values as read, before any fitting: categorical cells interned per feature, numeric
//! cells as f32 with NaN for missing. Shared by impression features and side tables.

use crate::cells::{Cells, Number};
use crate::interner::Interner;
use crate::spec::{FeatureKind, FeatureSpec};

#[derive(Debug, Clone)]
pub enum RawValues {
    /// Categorical and multi-valued features: the whole cell interned ("" when empty, so that
    /// missingness is a category of its own).
    Tokens { tokens: Interner, values: Vec<u32> },
    /// NaN when missing.
    Numbers(Vec<f32>),
}

#[derive(Debug, Clone)]
pub struct RawFeature {
    pub spec: FeatureSpec,
    pub values: RawValues,
}

/// A cell that should hold a number and does not.
pub struct InvalidCell<'a>(pub &'a str);

/// A parsed cell, held until the whole row is known to be kept.
#[derive(Debug, Clone, Copy)]
pub enum RawCell {
    Token(u32),
    Number(f32),
}

impl RawFeature {
    pub fn new(spec: FeatureSpec) -> Self {
        let values = match spec.kind {
            FeatureKind::Categorical | FeatureKind::Multi => {
                RawValues::Tokens { tokens: Interner::new(), values: Vec::new() }
            }
            FeatureKind::Numeric => RawValues::Numbers(Vec::new()),
        };
        Self { spec, values }
    }

    /// Parses a cell. Interning happens here (a dropped row may leave an unused token behind,
    /// which is harmless: vocabularies are fitted from kept training rows).
    pub fn parse<'a>(
        &mut self,
        cells: &'a Cells,
        row: usize,
        buf: &mut String,
    ) -> Result<RawCell, InvalidCell<'a>> {
        match &mut self.values {
            RawValues::Tokens { tokens, .. } => {
                Ok(RawCell::Token(tokens.intern(cells.text(row, buf).unwrap_or(""))))
            }
            RawValues::Numbers(_) => match cells.number(row) {
                Number::Value(v) => Ok(RawCell::Number(v as f32)),
                Number::Missing => Ok(RawCell::Number(f32::NAN)),
                Number::Invalid(text) => Err(InvalidCell(text)),
            },
        }
    }

    pub fn push(&mut self, cell: RawCell) {
        match (&mut self.values, cell) {
            (RawValues::Tokens { values, .. }, RawCell::Token(t)) => values.push(t),
            (RawValues::Numbers(values), RawCell::Number(v)) => values.push(v),
            _ => unreachable!("a cell is parsed by the feature it is pushed to"),
        }
    }

    /// A missing value, for rows whose source has no such cell (ids absent from a side table).
    pub fn push_missing(&mut self) {
        match &mut self.values {
            RawValues::Tokens { tokens, values } => values.push(tokens.intern("")),
            RawValues::Numbers(values) => values.push(f32::NAN),
        }
    }

    pub fn len(&self) -> usize {
        match &self.values {
            RawValues::Tokens { values, .. } => values.len(),
            RawValues::Numbers(values) => values.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keeps the rows whose flag is set, in order.
    pub fn retain(&mut self, keep: &[bool]) {
        match &mut self.values {
            RawValues::Tokens { values, .. } => retain_by(values, keep),
            RawValues::Numbers(values) => retain_by(values, keep),
        }
    }
}

/// Keeps `values[i]` where `keep[i]`, in place and in order.
pub fn retain_by<T: Copy>(values: &mut Vec<T>, keep: &[bool]) {
    if values.is_empty() {
        return;
    }
    debug_assert_eq!(values.len(), keep.len());
    let mut next = 0;
    for i in 0..values.len() {
        if keep[i] {
            values[next] = values[i];
            next += 1;
        }
    }
    values.truncate(next);
}
