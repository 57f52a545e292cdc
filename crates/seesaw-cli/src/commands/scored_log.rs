//! What `eval` and `cmi` share: a trained model directory and a log to run it over, encoded
//! through the model's saved feature map with the side tables of its manifest (or others named
//! on the command line).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use burn::tensor::Device;
use seesaw_data::batch::Batch;
use seesaw_data::error::DataError;
use seesaw_data::feature_map::FeatureMap;
use seesaw_data::streaming::{EncodedSideTables, StreamingBatches};
use seesaw_models::MultiTaskModel;
use seesaw_models::model_dir::{self, Manifest};

#[derive(Args, Debug)]
pub struct ScoredLogArgs {
    #[arg(long)]
    pub model: PathBuf,
    #[arg(long)]
    pub log: PathBuf,
    /// User attributes; default: the table recorded in the model's manifest.
    #[arg(long)]
    pub users: Option<PathBuf>,
    /// Video attributes; default: the table recorded in the model's manifest.
    #[arg(long)]
    pub videos: Option<PathBuf>,
}

pub struct ScoredLog {
    pub manifest: Manifest,
    pub model: MultiTaskModel,
    /// The manifest's feature map with the side-table overrides applied.
    pub map: FeatureMap,
    pub tables: EncodedSideTables,
}

impl ScoredLogArgs {
    /// Loads the model and its side tables (the log itself is streamed by the caller).
    pub fn load(&self, device: &Device) -> Result<ScoredLog> {
        let (manifest, model): (Manifest, _) = model_dir::load(&self.model, device)
            .with_context(|| format!("loading the model in {}", self.model.display()))?;
        let mut map = manifest.feature_map.clone();
        if let (Some(path), Some(users)) = (&self.users, map.spec.users.as_mut()) {
            users.path = Some(path.clone());
        }
        if let (Some(path), Some(videos)) = (&self.videos, map.spec.videos.as_mut()) {
            videos.path = Some(path.clone());
        }
        let tables = EncodedSideTables::load(&map).context("loading the side tables")?;
        Ok(ScoredLog { manifest, model, map, tables })
    }
}

/// The stream's batches until the first read error, which is left in `failure` for the caller
/// to report once the consumer (which takes plain batches) is done.
pub fn until_error<'a>(
    stream: &'a mut StreamingBatches<'_>,
    failure: &'a mut Option<DataError>,
) -> impl Iterator<Item = Batch> + 'a {
    std::iter::from_fn(move || match stream.next()? {
        Ok(batch) => Some(batch),
        Err(e) => {
            *failure = Some(e);
            None
        }
    })
}
