//! User and video attribute tables, read as they are and keyed by their id. Joining happens at
//! encoding time through the key, so a table is stored once, not copied into every impression.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::cells::{Cells, Number};
use crate::cleaning::{CleaningSpec, DropPolicy};
use crate::error::{DataError, Location, Result};
use crate::interner::Interner;
use crate::raw_feature::RawFeature;
use crate::spec::SideTableSpec;
use crate::table::TableReader;

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct SideTableStats {
    pub rows_read: u64,
    /// Rows whose key was empty (skipped) or repeated an earlier key (the first row wins).
    pub rows_without_key: u64,
    pub duplicate_keys: u64,
    /// Numeric cells that did not parse; read as missing and imputed when encoding.
    pub invalid_cells: u64,
}

#[derive(Debug, Clone)]
pub struct SideTable {
    pub source: PathBuf,
    pub spec: SideTableSpec,
    /// Key → row.
    pub keys: Interner,
    pub features: Vec<RawFeature>,
    /// The duration column (seconds-agnostic: as written), when the spec names one.
    pub duration: Option<Vec<f64>>,
    pub stats: SideTableStats,
}

impl SideTable {
    pub fn read(spec: &SideTableSpec, path: &Path, cleaning: &CleaningSpec) -> Result<Self> {
        let reader = TableReader::open(path)?;
        let key_column = reader.require_column(&spec.key)?;
        let feature_columns = spec
            .features
            .iter()
            .map(|f| reader.require_column(&f.column))
            .collect::<Result<Vec<_>>>()?;
        let duration_column =
            spec.duration.as_deref().map(|c| reader.require_column(c)).transpose()?;
        let names = reader.columns().to_vec();
        let mut table = SideTable {
            source: path.to_owned(),
            spec: spec.clone(),
            keys: Interner::new(),
            features: spec.features.iter().cloned().map(RawFeature::new).collect(),
            duration: duration_column.map(|_| Vec::new()),
            stats: SideTableStats::default(),
        };
        let mut buf = String::new();
        for chunk in reader {
            let chunk = chunk?;
            let cells = |i: usize| Cells::of_column(&chunk.batch, i, path);
            let keys = cells(key_column)?;
            let features = feature_columns.iter().map(|&i| cells(i)).collect::<Result<Vec<_>>>()?;
            let duration = duration_column.map(cells).transpose()?;
            for row in 0..chunk.batch.num_rows() {
                let line = chunk.first_line + row as u64;
                table.stats.rows_read += 1;
                let Some(key) = keys.text(row, &mut buf) else {
                    table.stats.rows_without_key += 1;
                    continue;
                };
                let before = table.keys.len();
                if (table.keys.intern(key) as usize) < before {
                    table.stats.duplicate_keys += 1;
                    continue;
                }
                for (k, feature) in table.features.iter_mut().enumerate() {
                    match feature.parse(&features[k], row, &mut buf) {
                        Ok(cell) => feature.push(cell),
                        Err(invalid) => {
                            if cleaning.invalid_value == DropPolicy::Fail {
                                return Err(DataError::BadValue {
                                    location: Location::cell(
                                        path,
                                        line,
                                        &names[feature_columns[k]],
                                    ),
                                    reason: format!("cannot read '{}' as a number", invalid.0),
                                });
                            }
                            table.stats.invalid_cells += 1;
                            feature.push_missing();
                        }
                    }
                }
                if let (Some(values), Some(cells)) = (&mut table.duration, &duration) {
                    values.push(match cells.number(row) {
                        Number::Value(v) => v,
                        _ => f64::NAN,
                    });
                }
            }
        }
        Ok(table)
    }

    /// Video key → duration, for logs that keep durations in the video table.
    pub fn durations(&self) -> Option<HashMap<String, f64>> {
        let values = self.duration.as_ref()?;
        Some(
            self.keys
                .tokens()
                .zip(values)
                .filter(|(_, d)| d.is_finite())
                .map(|(key, &d)| (key.to_owned(), d))
                .collect(),
        )
    }

    pub fn row_of(&self, key: &str) -> Option<u32> {
        self.keys.get(key)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}
