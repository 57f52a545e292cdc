//! One served model: the trained network, its fitted feature map, the user and video side tables
//! encoded through that map at load time, and its default fusion. Requests are encoded here,
//! through exactly the map training used; unknown ids take the out-of-vocabulary path.
//!
//! A `LoadedModel` never changes once built. A reload builds a new one and swaps the pointer, so a
//! request that started on the old one finishes on it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::tensor::Device;
use seesaw_data::batch::{Batch, BatchBuilder, RowInputs};
use seesaw_data::feature_map::{EncodedParts, FeatureMap, FeatureSchema, FeatureSource};
use seesaw_data::streaming::EncodedSideTables;
use seesaw_models::MultiTaskModel;
use seesaw_models::fusion::{Fusion, FusionConfig};
use seesaw_models::model_dir::{self, MANIFEST_FILE, Manifest, WEIGHTS_FILE};

use crate::error::{ApiError, ServeError};
use crate::request::{Context, ScoreRequest};
use crate::video_index::{VideoIndex, VideoRows};

/// Where a model comes from: its directory, and side tables that replace the ones recorded in
/// its manifest (the same overrides apply to every reload).
#[derive(Debug, Clone, Default)]
pub struct ModelSource {
    pub dir: PathBuf,
    pub users: Option<PathBuf>,
    pub videos: Option<PathBuf>,
}

pub struct LoadedModel {
    pub dir: PathBuf,
    /// A fingerprint of the manifest and weights: changes whenever the model does.
    pub version: String,
    pub architecture: String,
    pub map: FeatureMap,
    pub schema: FeatureSchema,
    /// The task names in model order, built once: every response names them.
    pub task_names: Arc<[String]>,
    /// The model's extra scores (DLEN's emotion), in its order: every response names them.
    pub extra_names: Arc<[String]>,
    pub tables: EncodedSideTables,
    /// Each known video's vocabulary index and table rows, for encoding candidates.
    pub video_index: VideoIndex,
    pub model: MultiTaskModel,
    pub fusion_config: FusionConfig,
    pub fusion: Fusion,
}

impl LoadedModel {
    pub fn load(source: &ModelSource, device: &Device) -> Result<Self, ServeError> {
        let dir = source.dir.clone();
        let version = fingerprint(&dir)?;
        let (manifest, model): (Manifest, _) = model_dir::load(&dir, device)
            .map_err(|cause| ServeError::Model { dir: dir.clone(), cause })?;
        let mut map = manifest.feature_map;
        if let (Some(path), Some(users)) = (&source.users, map.spec.users.as_mut()) {
            users.path = Some(path.clone());
        }
        if let (Some(path), Some(videos)) = (&source.videos, map.spec.videos.as_mut()) {
            videos.path = Some(path.clone());
        }
        let tables = EncodedSideTables::load(&map)
            .map_err(|cause| ServeError::SideTables { dir: dir.clone(), cause })?;
        let fusion_config = manifest
            .fusion
            .clone()
            .unwrap_or_else(|| FusionConfig::default_for_scores(&map.tasks, &model.extra_scores));
        let fusion = fusion_config
            .resolve_with(&map.tasks, &model.extra_scores)
            .map_err(|message| ServeError::Config { dir: dir.clone(), message })?;
        let video_index = VideoIndex::new(&map.video_id, &tables.videos, tables.clips.as_ref());
        Ok(Self {
            video_index,
            version,
            architecture: manifest.architecture,
            schema: map.schema(),
            task_names: map.tasks.iter().map(|t| t.name.clone()).collect(),
            extra_names: model.extra_scores.iter().map(|e| e.name.clone()).collect(),
            map,
            tables,
            model,
            fusion_config,
            fusion,
            dir,
        })
    }

    /// The fusion a request asks for, or the model's.
    pub fn fusion_for(&self, request: &ScoreRequest) -> Result<Fusion, ApiError> {
        match &request.fusion {
            None => Ok(self.fusion.clone()),
            Some(config) => config
                .resolve_with(&self.map.tasks, &self.model.extra_scores)
                .map_err(|message| ApiError::unprocessable("invalid_fusion", message)),
        }
    }

    /// One batch row per candidate, in request order, with the request's row groups: runs of
    /// consecutive candidates whose context encodes alike (all of them, when no candidate brings
    /// its own), so that the user and context slots are the same on every row of a group.
    pub fn encode(&self, request: &ScoreRequest) -> Result<EncodedRequest, ApiError> {
        let map = &self.map;
        let n_tasks = map.tasks.len();
        let mut builder = BatchBuilder::new(
            &self.schema,
            &self.tables.users,
            &self.tables.videos,
            n_tasks,
            map.spec.labels.clips.map(|n| (n, self.tables.clips.as_ref())),
            request.candidates.len(),
        );
        let user_key = request.user_id.0.as_str();
        let user_id = map.user_id.index(user_key);
        let user_row = self.tables.users.row_of(user_key);
        let no_labels = vec![(0.0, false); n_tasks];
        let shared_context = self.encode_context(&request.context, None)?;
        let mut own_context;
        let mut groups: Vec<usize> = Vec::new();
        // The context of the group being built. Consecutive candidates without a context of
        // their own join it without comparing encodings (comparing them was 4% of the HTTP
        // thread's time at 500 candidates a request).
        let mut group_context: Option<GroupContext> = None;
        // Every candidate's rows first, with their video table rows prefetched, then the copies:
        // between requests the scoring workers sweep the caches, and a loop that looked a row
        // up and copied it at once waited on memory for each candidate in turn.
        let videos: Vec<VideoRows> = request
            .candidates
            .iter()
            .map(|candidate| {
                let video = self.video_index.rows_of(&candidate.video_id.0);
                self.tables.videos.prefetch_row(video.row);
                video
            })
            .collect();
        for ((i, candidate), video) in request.candidates.iter().enumerate().zip(videos) {
            let shared = candidate.context.is_empty();
            let context = if shared {
                &shared_context
            } else {
                own_context =
                    self.encode_context(&candidate.context, Some(&request.context)).map_err(
                        |e| ApiError { message: format!("candidate {i}: {}", e.message), ..e },
                    )?;
                &own_context
            };
            // A new group wherever the context differs from the previous candidate's.
            let same_group = match &group_context {
                None => false,
                Some(GroupContext::Shared) => shared || same_parts(&shared_context, context),
                Some(GroupContext::Own(before)) => same_parts(before, context),
            };
            match groups.last_mut() {
                Some(size) if same_group => *size += 1,
                _ => {
                    groups.push(1);
                    group_context = Some(if shared {
                        GroupContext::Shared
                    } else {
                        GroupContext::Own(EncodedParts {
                            categorical: context.categorical.clone(),
                            dense: context.dense.clone(),
                            multi: context.multi.clone(),
                        })
                    });
                }
            }
            builder.push(RowInputs {
                user_id,
                video_id: video.id,
                user_row,
                video_row: video.row,
                clip_row: video.clip_row,
                context_categorical: &context.categorical,
                context_dense: &context.dense,
                context_multi: &context.multi,
                labels: &no_labels,
                watch_ratio: None,
                user_group: 0,
                row: i as u32,
            });
        }
        Ok(EncodedRequest { batch: builder.finish(), groups })
    }

    /// Encodes the model's context features from `context`, falling back to `base` for names it
    /// lacks; a feature named in neither is missing, as an empty log cell would be.
    fn encode_context(
        &self,
        context: &Context,
        base: Option<&Context>,
    ) -> Result<EncodedParts, ApiError> {
        let mut parts = EncodedParts::default();
        let features: Vec<_> = self.map.features_of(FeatureSource::Log).collect();
        if let Some(unknown) =
            context.keys().find(|name| !features.iter().any(|f| &f.name == *name))
        {
            return Err(ApiError::unprocessable(
                "unknown_context",
                format!(
                    "context '{unknown}' is not a feature of this model (its context features: {})",
                    if features.is_empty() {
                        "none".to_string()
                    } else {
                        features.iter().map(|f| f.name.as_str()).collect::<Vec<_>>().join(", ")
                    }
                ),
            ));
        }
        for feature in features {
            let value = context
                .get(&feature.name)
                .or_else(|| base.and_then(|b| b.get(&feature.name)))
                .map_or(seesaw_data::feature_map::FeatureValue::Missing, |v| v.as_feature_value());
            feature.encode_value(value, &mut parts).map_err(|message| {
                ApiError::unprocessable(
                    "invalid_context",
                    format!("context '{}': {message}", feature.name),
                )
            })?;
        }
        Ok(parts)
    }
}

/// Whose context a row group's candidates share.
enum GroupContext {
    /// The request's.
    Shared,
    /// The encoding of the first candidate's own.
    Own(EncodedParts),
}

/// Whether two encodings are the same (dense values compared bit for bit).
fn same_parts(a: &EncodedParts, b: &EncodedParts) -> bool {
    a.categorical == b.categorical
        && a.multi == b.multi
        && a.dense.len() == b.dense.len()
        && a.dense.iter().zip(&b.dense).all(|(x, y)| x.to_bits() == y.to_bits())
}

/// A request's rows and their row groups (sizes summing to the number of rows).
pub struct EncodedRequest {
    pub batch: Batch,
    pub groups: Vec<usize>,
}

/// FNV-1a over the manifest and the weights: cheap, stable across builds, and enough to tell two
/// models apart in /metrics and /readyz.
fn fingerprint(dir: &Path) -> Result<String, ServeError> {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for name in [MANIFEST_FILE, WEIGHTS_FILE] {
        let path = dir.join(name);
        let bytes = std::fs::read(&path).map_err(|cause| ServeError::Io {
            context: format!("reading {}", path.display()),
            cause,
        })?;
        for byte in bytes {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    Ok(format!("{hash:016x}"))
}
