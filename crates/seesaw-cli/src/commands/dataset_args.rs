//! The options every command that reads a dataset shares: a preset or a spec file, and paths
//! that override the ones the spec names.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use seesaw_data::presets::{PRESETS, preset};
use seesaw_data::spec::DatasetSpec;

#[derive(Args, Debug, Clone)]
pub struct DatasetArgs {
    /// A preset (kuairand, kuairec, watch-history) or a dataset spec in TOML.
    #[arg(long, default_value = "kuairand")]
    pub dataset: String,
    /// The interaction log (CSV or Parquet).
    #[arg(long)]
    pub log: Option<PathBuf>,
    /// The user attribute table.
    #[arg(long)]
    pub users: Option<PathBuf>,
    /// The video attribute table.
    #[arg(long)]
    pub videos: Option<PathBuf>,
    /// Per-clip visual features (video_id, clip, f0..).
    #[arg(long)]
    pub clips: Option<PathBuf>,
}

impl DatasetArgs {
    pub fn resolve(&self) -> Result<DatasetSpec> {
        let mut spec = if PRESETS.contains(&self.dataset.as_str()) {
            preset(&self.dataset)?
        } else if Path::new(&self.dataset).is_file() {
            DatasetSpec::from_toml_file(Path::new(&self.dataset))?
        } else {
            bail!(
                "--dataset '{}' is neither a preset ({}) nor a spec file",
                self.dataset,
                PRESETS.join(", ")
            );
        };
        if let Some(log) = &self.log {
            spec.log.path = Some(log.clone());
        }
        if spec.log.path.is_none() {
            bail!("no log: pass --log FILE (or name log.path in the spec)");
        }
        override_table(&mut spec.users, &self.users, "--users")?;
        override_table(&mut spec.videos, &self.videos, "--videos")?;
        match (&mut spec.clips, &self.clips) {
            (Some(clips), Some(path)) => clips.path = Some(path.clone()),
            (None, Some(_)) => bail!("--clips: this dataset spec declares no clip features"),
            // Clip features are optional: without a file, the preset's declaration is dropped.
            (Some(clips), None) if clips.path.is_none() => spec.clips = None,
            _ => {}
        }
        if spec.clips.is_some() && spec.labels.clips.is_none() {
            spec.labels.clips = Some(8);
        }
        // Paths given on the command line are relative to the working directory; a model saves
        // them, so make them absolute now.
        spec.resolve_paths(Path::new("."));
        Ok(spec)
    }
}

fn override_table(
    table: &mut Option<seesaw_data::spec::SideTableSpec>,
    path: &Option<PathBuf>,
    flag: &str,
) -> Result<()> {
    match (table.as_mut(), path) {
        (Some(t), Some(p)) => t.path = Some(p.clone()),
        (None, Some(_)) => bail!("{flag}: this dataset spec declares no such table"),
        // Side tables are optional: without a file, ids get no attributes.
        (Some(t), None) if t.path.is_none() && t.duration.is_none() => *table = None,
        _ => {}
    }
    Ok(())
}

pub fn write_json(value: &impl serde::Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value).context("serialising the report")?;
    println!("{text}");
    Ok(())
}
