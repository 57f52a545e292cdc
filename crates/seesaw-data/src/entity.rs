//! A side table encoded once through the feature map: one row of categorical, dense and
//! multi-valued slots per user (or video), plus a last row of defaults for ids the table lacks.
//! Impressions point at these rows instead of copying attributes into every impression.

use crate::feature_map::{EncodedParts, FeatureMap, FeatureSource};
use crate::interner::Interner;
use crate::side_table::SideTable;

#[derive(Debug, Clone, Default)]
pub struct EntityTable {
    /// Side-table key → row.
    pub keys: Interner,
    pub n_categorical: usize,
    pub n_dense: usize,
    pub multi_width: usize,
    pub categorical: Vec<u32>,
    pub dense: Vec<f32>,
    pub multi: Vec<u32>,
}

impl EntityTable {
    pub fn build(side: Option<&SideTable>, map: &FeatureMap, source: FeatureSource) -> Self {
        let features: Vec<_> = map.features_of(source).collect();
        let mut parts = EncodedParts::default();
        let mut keys = Interner::new();
        if let Some(side) = side {
            keys = side.keys.clone();
            for row in 0..side.len() {
                for feature in &features {
                    let raw = side
                        .features
                        .iter()
                        .find(|f| f.spec.name() == feature.name)
                        .expect("a side-table feature is fitted from its own table");
                    feature.encode(raw, row, &mut parts);
                }
            }
        }
        let rows_before_default = keys.len();
        let categorical_before = parts.categorical.len();
        let dense_before = parts.dense.len();
        let multi_before = parts.multi.len();
        for feature in &features {
            feature.encode_missing(&mut parts);
        }
        Self {
            n_categorical: parts.categorical.len() - categorical_before,
            n_dense: parts.dense.len() - dense_before,
            multi_width: parts.multi.len() - multi_before,
            keys,
            categorical: parts.categorical,
            dense: parts.dense,
            multi: parts.multi,
        }
        .checked(rows_before_default)
    }

    fn checked(self, rows: usize) -> Self {
        debug_assert_eq!(self.categorical.len(), (rows + 1) * self.n_categorical);
        debug_assert_eq!(self.dense.len(), (rows + 1) * self.n_dense);
        self
    }

    /// Asks the CPU to bring row `row`'s slots into the cache, for a caller that will read many
    /// rows in an order it already knows (a served request's candidates): issued for every row
    /// first, the memory reads overlap instead of each copy waiting for its own. Only a hint:
    /// nothing is read, and a row out of range is ignored.
    pub fn prefetch_row(&self, row: u32) {
        let row = row as usize;
        prefetch(self.categorical.get(row * self.n_categorical..));
        prefetch(self.dense.get(row * self.n_dense..));
        prefetch(self.multi.get(row * self.multi_width..));
    }

    /// The row for an id; ids the table lacks get the default row.
    pub fn row_of(&self, key: &str) -> u32 {
        self.keys.get(key).unwrap_or(self.default_row())
    }

    pub fn default_row(&self) -> u32 {
        self.keys.len() as u32
    }

    pub fn categorical(&self, row: u32) -> &[u32] {
        let start = row as usize * self.n_categorical;
        &self.categorical[start..start + self.n_categorical]
    }

    pub fn dense(&self, row: u32) -> &[f32] {
        let start = row as usize * self.n_dense;
        &self.dense[start..start + self.n_dense]
    }

    pub fn multi(&self, row: u32) -> &[u32] {
        let start = row as usize * self.multi_width;
        &self.multi[start..start + self.multi_width]
    }
}

/// A prefetch of the cache line that holds `values[0]`.
#[inline(always)]
fn prefetch<T>(values: Option<&[T]>) {
    #[cfg(target_arch = "x86_64")]
    if let Some(first) = values.and_then(<[T]>::first) {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: a prefetch only hints at an address (here a valid one); it reads nothing and
        // cannot fault, and SSE, which it needs, is part of every x86-64 CPU.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(first).cast()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = values;
}
