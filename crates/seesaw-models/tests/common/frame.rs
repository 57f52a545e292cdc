//! The FRAME fixture: a schema with only user_id and video_id, three tasks (watch_through,
//! click, watch_ratio), and batches of (user, video, watch ratio) rows with clip labels derived
//! as seesaw-data derives them and clip features that depend on the video and the clip.

use seesaw_data::batch::{Batch, ClipBatch};
use seesaw_data::feature_map::{FeatureSchema, FeatureSource, TaskInfo, TaskKind};
use seesaw_data::labels::ClipOutcome;

use super::{Rng, cat};

pub const N_CLIPS: usize = 3;
pub const DIM: usize = 2;
pub const USERS: usize = 6;
pub const VIDEOS: usize = 5;

pub fn schema() -> FeatureSchema {
    FeatureSchema {
        categorical: vec![
            cat("user_id", USERS, FeatureSource::User),
            cat("video_id", VIDEOS, FeatureSource::Video),
        ],
        dense: vec![],
        multi: vec![],
    }
}

pub fn tasks() -> Vec<TaskInfo> {
    vec![
        TaskInfo::new("watch_through", TaskKind::Binary),
        TaskInfo::new("click", TaskKind::Binary),
        TaskInfo::new("watch_ratio", TaskKind::Regression),
    ]
}

/// A clip's features: a function of the video and clip, the same on every row of the video.
pub fn features(video: u32, clip: usize) -> [f32; DIM] {
    [
        video as f32 * 0.3 - 0.5,
        (clip as f32 + 1.0) * 0.4 * if video.is_multiple_of(2) { 1.0 } else { -1.0 },
    ]
}

/// Rows of (user, video, watch ratio), labelled as seesaw-data labels them.
pub fn batch(rows: &[(u32, u32, f32)]) -> Batch {
    let size = rows.len();
    let mut clips = ClipBatch { n_clips: N_CLIPS, dim: DIM, ..Default::default() };
    let mut categorical = Vec::new();
    let mut labels = vec![Vec::new(); 3];
    for &(user, video, ratio) in rows {
        categorical.extend([user, video]);
        let outcome = ClipOutcome::from_ratio(ratio, N_CLIPS);
        for i in 0..N_CLIPS {
            let (y, m, w) = outcome.clip(i);
            clips.labels.push(y);
            clips.masks.push(m);
            clips.weights.push(w);
            clips.features.extend(features(video, i));
        }
        labels[0].push(if ratio >= 1.0 { 1.0 } else { 0.0 });
        labels[1].push(if user.is_multiple_of(2) { 1.0 } else { 0.0 });
        labels[2].push(ratio.min(1.0));
    }
    let labels: Vec<f32> = labels.concat();
    Batch {
        size,
        categorical,
        n_categorical: 2,
        dense: vec![],
        n_dense: 0,
        multi: vec![],
        multi_width: 0,
        masks: vec![1.0; labels.len()],
        labels,
        n_tasks: 3,
        user_group: rows.iter().map(|r| r.0).collect(),
        rows: (0..size as u32).collect(),
        clips: Some(clips),
    }
}

/// A learnable log: users 1..=4 like even videos (watch them through) and leave odd ones early.
pub fn training_rows(n: usize, seed: u64) -> Vec<(u32, u32, f32)> {
    let mut rng = Rng(seed);
    (0..n)
        .map(|_| {
            let user = 1 + rng.below(4) as u32;
            let video = 1 + rng.below(VIDEOS - 1) as u32;
            let ratio = if video.is_multiple_of(2) {
                0.7 + rng.uniform() as f32 * 0.6
            } else {
                rng.uniform() as f32 * 0.5
            };
            (user, video, ratio)
        })
        .collect()
}
