//! Per-clip visual features: N_c clips per video, `dim` floats each, read from a table with the
//! video key, the 0-based clip index and the feature columns.

use std::path::Path;

use crate::cells::{Cells, Number};
use crate::error::{DataError, Location, Result};
use crate::interner::Interner;
use crate::spec::ClipFeatureSpec;
use crate::table::TableReader;

#[derive(Debug, Clone)]
pub struct ClipTable {
    /// Video key → row; the row after the last holds zeros for videos without clip features.
    pub keys: Interner,
    pub n_clips: usize,
    pub dim: usize,
    pub values: Vec<f32>,
    /// (video, clip) pairs the file did not give; their features are zeros.
    pub missing_clips: u64,
}

impl ClipTable {
    pub fn read(spec: &ClipFeatureSpec, path: &Path, n_clips: usize) -> Result<Self> {
        let reader = TableReader::open(path)?;
        let video_column = reader.require_column(&spec.video)?;
        let clip_column = reader.require_column(&spec.clip)?;
        let feature_columns: Vec<usize> = if spec.features.is_empty() {
            (0..reader.columns().len()).filter(|&i| i != video_column && i != clip_column).collect()
        } else {
            spec.features.iter().map(|c| reader.require_column(c)).collect::<Result<_>>()?
        };
        if feature_columns.is_empty() {
            return Err(DataError::Malformed {
                location: Location::file(path),
                message: "no clip feature columns".into(),
            });
        }
        let names = reader.columns().to_vec();
        let dim = feature_columns.len();
        let width = n_clips * dim;
        let mut keys = Interner::new();
        let mut values: Vec<f32> = Vec::new();
        let mut seen: Vec<bool> = Vec::new();
        let mut buf = String::new();
        for chunk in reader {
            let chunk = chunk?;
            let cells = |i: usize| Cells::of_column(&chunk.batch, i, path);
            let videos = cells(video_column)?;
            let clips = cells(clip_column)?;
            let features = feature_columns.iter().map(|&i| cells(i)).collect::<Result<Vec<_>>>()?;
            for row in 0..chunk.batch.num_rows() {
                let line = chunk.first_line + row as u64;
                let bad = |column: usize, reason: String| DataError::BadValue {
                    location: Location::cell(path, line, &names[column]),
                    reason,
                };
                let key = videos
                    .text(row, &mut buf)
                    .ok_or_else(|| bad(video_column, "empty video id".into()))?;
                let video = keys.intern(key) as usize;
                if values.len() < (video + 1) * width {
                    values.resize((video + 1) * width, 0.0);
                    seen.resize((video + 1) * n_clips, false);
                }
                let clip = match clips.number(row) {
                    Number::Value(c) if c >= 0.0 && c.fract() == 0.0 && (c as usize) < n_clips => {
                        c as usize
                    }
                    _ => {
                        return Err(bad(
                            clip_column,
                            format!("the clip index must be an integer in 0..{n_clips}"),
                        ));
                    }
                };
                seen[video * n_clips + clip] = true;
                for (k, cells) in features.iter().enumerate() {
                    values[(video * n_clips + clip) * dim + k] = match cells.number(row) {
                        Number::Value(v) => v as f32,
                        _ => {
                            return Err(bad(
                                feature_columns[k],
                                "clip features must be finite numbers".into(),
                            ));
                        }
                    };
                }
            }
        }
        values.resize((keys.len() + 1) * width, 0.0);
        let missing_clips = seen.iter().filter(|s| !**s).count() as u64;
        Ok(Self { keys, n_clips, dim, values, missing_clips })
    }

    /// The row for a video; videos the table lacks get the zero row.
    pub fn row_of(&self, key: &str) -> u32 {
        self.keys.get(key).unwrap_or(self.default_row())
    }

    /// The row of zeros after the last video's.
    pub fn default_row(&self) -> u32 {
        self.keys.len() as u32
    }

    /// n_clips × dim floats of one video row.
    pub fn features(&self, row: u32) -> &[f32] {
        let width = self.n_clips * self.dim;
        &self.values[row as usize * width..(row as usize + 1) * width]
    }
}
