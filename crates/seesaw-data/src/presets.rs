//! Built-in dataset specs for the layouts users bring most often. A TOML spec can start from one
//! (`preset = "kuairand"`) and override any part.

use crate::error::{DataError, Result};
use crate::labels::LabelSpec;
use crate::spec::{
    ClipFeatureSpec, DatasetSpec, FeatureSpec, FilterSpec, LogSpec, NumericTransform,
    SideTableSpec, SplitSpec, TimeUnit,
};

pub const PRESETS: [&str; 3] = ["kuairand", "kuairec", "watch-history"];

pub fn preset(name: &str) -> Result<DatasetSpec> {
    let mut spec = match name {
        "kuairand" => kuairand(),
        "kuairec" => kuairec(),
        "watch-history" => watch_history(),
        other => {
            return Err(DataError::spec(format!(
                "unknown preset '{other}' (known: {})",
                PRESETS.join(", ")
            )));
        }
    };
    spec.preset = Some(name.to_owned());
    Ok(spec)
}

fn base(log: LogSpec) -> DatasetSpec {
    DatasetSpec {
        preset: None,
        log,
        users: None,
        videos: None,
        clips: None,
        labels: LabelSpec::default(),
        cleaning: Default::default(),
        filter: FilterSpec::default(),
        split: SplitSpec::default(),
    }
}

fn categorical(columns: &[&str]) -> Vec<FeatureSpec> {
    columns.iter().map(|c| FeatureSpec::categorical(c)).collect()
}

/// The categorical columns of the user table KuaiRand and KuaiRec share (same layout).
fn kuai_user_categoricals() -> Vec<FeatureSpec> {
    let mut features = categorical(&[
        "user_active_degree",
        "is_lowactive_period",
        "is_live_streamer",
        "is_video_author",
        "follow_user_num_range",
        "fans_user_num_range",
        "friend_user_num_range",
        "register_days_range",
    ]);
    features.extend((0..18).map(|i| FeatureSpec::categorical(&format!("onehot_feat{i}"))));
    features
}

/// KuaiRand (Gao et al. 2022): `log_standard_*.csv`, `user_features*.csv`,
/// `video_features_basic*.csv`. Also what `seesaw simulate` writes, clip features included.
fn kuairand() -> DatasetSpec {
    let mut spec = base(LogSpec {
        path: None,
        user: "user_id".into(),
        video: "video_id".into(),
        timestamp: Some("time_ms".into()),
        timestamp_unit: TimeUnit::Milliseconds,
        date: Some("date".into()),
        play_time: Some("play_time_ms".into()),
        duration: Some("duration_ms".into()),
        time_unit: TimeUnit::Milliseconds,
        watch_ratio: None,
        flags: [
            "is_click",
            "is_like",
            "is_follow",
            "is_comment",
            "is_forward",
            "is_hate",
            "long_view",
        ]
        .map(String::from)
        .to_vec(),
        features: categorical(&["tab"]),
        delimiter: None,
    });
    let mut user_features = kuai_user_categoricals();
    user_features.extend(
        ["follow_user_num", "fans_user_num", "friend_user_num", "register_days"]
            .map(|c| FeatureSpec::numeric(c, NumericTransform::Log1pZscore)),
    );
    spec.users = Some(SideTableSpec {
        path: None,
        key: "user_id".into(),
        features: user_features,
        duration: None,
    });
    let mut video_features = categorical(&["video_type", "upload_type", "music_type"]);
    video_features.push(FeatureSpec { min_count: 2, ..FeatureSpec::categorical("author_id") });
    video_features.push(FeatureSpec::multi("tag"));
    video_features.push(FeatureSpec::numeric("video_duration", NumericTransform::Log1pZscore));
    spec.videos = Some(SideTableSpec {
        path: None,
        key: "video_id".into(),
        features: video_features,
        duration: None,
    });
    spec.clips = Some(ClipFeatureSpec {
        path: None,
        video: "video_id".into(),
        clip: "clip".into(),
        features: Vec::new(),
    });
    spec
}

/// KuaiRec (Gao et al. 2022): `small_matrix.csv`/`big_matrix.csv`, `item_categories.csv`
/// (video_id, feat as a list like "[8, 2]"), `user_features.csv`.
fn kuairec() -> DatasetSpec {
    let mut spec = base(LogSpec {
        path: None,
        user: "user_id".into(),
        video: "video_id".into(),
        timestamp: Some("timestamp".into()),
        timestamp_unit: TimeUnit::Seconds,
        date: Some("date".into()),
        play_time: Some("play_duration".into()),
        duration: Some("video_duration".into()),
        time_unit: TimeUnit::Milliseconds,
        watch_ratio: Some("watch_ratio".into()),
        flags: Vec::new(),
        features: Vec::new(),
        delimiter: None,
    });
    spec.users = Some(SideTableSpec {
        path: None,
        key: "user_id".into(),
        features: kuai_user_categoricals(),
        duration: None,
    });
    spec.videos = Some(SideTableSpec {
        path: None,
        key: "video_id".into(),
        features: vec![FeatureSpec { name: Some("category".into()), ..FeatureSpec::multi("feat") }],
        duration: None,
    });
    spec
}

/// The seed study's shape: a watch history merged with content metadata and user attributes on
/// user_id and content_id; watch time and duration in minutes; skip at 0.5; users with more
/// than ten views.
fn watch_history() -> DatasetSpec {
    let mut spec = base(LogSpec {
        path: None,
        user: "user_id".into(),
        video: "content_id".into(),
        timestamp: None,
        timestamp_unit: TimeUnit::Seconds,
        date: Some("watch_date".into()),
        play_time: Some("watch_time".into()),
        duration: None,
        time_unit: TimeUnit::Minutes,
        watch_ratio: None,
        flags: Vec::new(),
        features: Vec::new(),
        delimiter: None,
    });
    spec.users = Some(SideTableSpec {
        path: None,
        key: "user_id".into(),
        features: vec![
            FeatureSpec { buckets: 6, ..FeatureSpec::numeric("age", NumericTransform::Quantile) },
            FeatureSpec::categorical("gender"),
        ],
        duration: None,
    });
    spec.videos = Some(SideTableSpec {
        path: None,
        key: "content_id".into(),
        features: vec![
            FeatureSpec::multi("genre"),
            FeatureSpec::categorical("content_rating"),
            FeatureSpec::numeric("duration", NumericTransform::Log1pZscore),
        ],
        duration: Some("duration".into()),
    });
    spec.filter.min_user_interactions = 11;
    spec.split = SplitSpec::Random { seed: 0, valid_fraction: 0.3, test_fraction: 0.0 };
    spec
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_is_valid_and_round_trips_through_toml() {
        for name in PRESETS {
            let spec = preset(name).unwrap();
            spec.validate().unwrap();
            let text = toml::to_string(&spec).unwrap();
            assert_eq!(DatasetSpec::from_toml_str(&text).unwrap(), spec, "{name}");
        }
    }
}
