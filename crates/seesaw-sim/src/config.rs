//! The simulator's knobs. Everything that shapes the ground truth is here, so that a run is
//! reproduced exactly by its `sim_config.json`.

use serde::{Deserialize, Serialize};

use super::calendar;
use crate::error::{Result, SimError};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimConfig {
    pub seed: u64,
    pub n_users: u32,
    pub n_videos: u32,
    pub n_impressions: u64,
    pub n_days: u32,
    /// First day of the log as yyyymmdd (local time, UTC+8, like KuaiRand).
    pub start_date: u32,
    pub n_topics: u32,
    /// N_c: clips per video, each an equal share of the duration.
    pub n_clips: u32,
    pub clip_feature_dim: u32,
    /// Off-diagonal correlation of the behaviours' Gaussian copula: the dependence between
    /// like/follow/comment/forward/hate that no observable (or latent) feature explains.
    /// 0 makes them conditionally independent given the latent state.
    pub dependence: f64,
    pub objectionable_share: f64,
    /// Zipf exponent of video popularity (0 = uniform).
    pub popularity_skew: f64,
    /// σ of the log-normal user activity weights (0 = every user equally active).
    pub activity_sigma: f64,
    /// Share of impressions drawn from the user's own topics rather than from global popularity,
    /// i.e. how much of a recommender the feed already is.
    pub personalization: f64,
    /// Scale of the random walk of clip content along a video: how fast videos drift off topic.
    pub clip_drift: f64,
    /// long_view = play_time ≥ min(duration, long_view_ms).
    pub long_view_ms: i64,
    /// skip = watch_ratio < skip_ratio (the seed study's 0.5).
    pub skip_ratio: f64,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            n_users: 2000,
            n_videos: 1000,
            n_impressions: 200_000,
            n_days: 10,
            start_date: 20220425,
            n_topics: 8,
            n_clips: 8,
            clip_feature_dim: 16,
            dependence: 0.3,
            objectionable_share: 0.05,
            popularity_skew: 0.8,
            activity_sigma: 1.0,
            personalization: 0.5,
            clip_drift: 0.35,
            long_view_ms: 18_000,
            skip_ratio: 0.5,
        }
    }
}

/// The most users, and the most videos, a platform holds.
pub const MAX_ENTITIES: u32 = 10_000_000;

/// The most impressions one simulation writes (about 2 TB of CSV).
pub const MAX_IMPRESSIONS: u64 = 10_000_000_000;

impl SimConfig {
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(SimError::Config(format!("simulator config: {m}")));
        if self.n_users == 0 || self.n_videos == 0 {
            return bad("n_users and n_videos must be positive".into());
        }
        // Every user and video is held in memory with its latent vectors; beyond these the
        // allocation would fail with a backtrace instead of this message.
        for (name, n) in [("n_users", self.n_users), ("n_videos", self.n_videos)] {
            if n > MAX_ENTITIES {
                return bad(format!("{name} must be at most {MAX_ENTITIES}, got {n}"));
            }
        }
        if self.n_impressions > MAX_IMPRESSIONS {
            return bad(format!(
                "n_impressions must be at most {MAX_IMPRESSIONS}, got {}",
                self.n_impressions
            ));
        }
        if self.n_days == 0 || self.n_days > 3650 {
            return bad(format!("n_days must be in 1..=3650, got {}", self.n_days));
        }
        if calendar::parse_yyyymmdd(self.start_date).is_none() {
            return bad(format!("start_date {} is not a valid yyyymmdd date", self.start_date));
        }
        if self.n_topics == 0 || self.n_topics > 10_000 {
            return bad(format!("n_topics must be in 1..=10000, got {}", self.n_topics));
        }
        if self.n_clips == 0 || self.n_clips > 255 {
            return bad(format!("n_clips must be in 1..=255, got {}", self.n_clips));
        }
        if self.clip_feature_dim == 0 || self.clip_feature_dim > 4096 {
            return bad(format!(
                "clip_feature_dim must be in 1..=4096, got {}",
                self.clip_feature_dim
            ));
        }
        if !(0.0..1.0).contains(&self.dependence) {
            return bad(format!("dependence must be in [0, 1), got {}", self.dependence));
        }
        for (name, v) in [
            ("objectionable_share", self.objectionable_share),
            ("personalization", self.personalization),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return bad(format!("{name} must be in [0, 1], got {v}"));
            }
        }
        for (name, v, max) in [
            ("popularity_skew", self.popularity_skew, 5.0),
            ("activity_sigma", self.activity_sigma, 5.0),
            ("clip_drift", self.clip_drift, 10.0),
        ] {
            if !(0.0..=max).contains(&v) {
                return bad(format!("{name} must be in [0, {max}], got {v}"));
            }
        }
        if self.long_view_ms <= 0 {
            return bad(format!("long_view_ms must be positive, got {}", self.long_view_ms));
        }
        if !(self.skip_ratio > 0.0 && self.skip_ratio <= 1.0) {
            return bad(format!("skip_ratio must be in (0, 1], got {}", self.skip_ratio));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_nonsense_is_rejected() {
        SimConfig::default().validate().unwrap();
        type Mutation = Box<dyn Fn(&mut SimConfig)>;
        let cases: Vec<Mutation> = vec![
            Box::new(|c| c.n_clips = 0),
            Box::new(|c| c.dependence = 1.0),
            Box::new(|c| c.dependence = -0.1),
            Box::new(|c| c.dependence = f64::NAN),
            Box::new(|c| c.n_users = 0),
            Box::new(|c| c.n_users = 4_000_000_000),
            Box::new(|c| c.n_videos = MAX_ENTITIES + 1),
            Box::new(|c| c.n_impressions = 1_000_000_000_000),
            Box::new(|c| c.start_date = 20220231),
            Box::new(|c| c.objectionable_share = 1.5),
            Box::new(|c| c.skip_ratio = 0.0),
        ];
        for f in cases {
            let mut c = SimConfig::default();
            f(&mut c);
            assert!(matches!(c.validate(), Err(SimError::Config(_))), "{c:?}");
        }
    }

    #[test]
    fn json_round_trip_and_unknown_fields() {
        let c = SimConfig { dependence: 0.6, ..SimConfig::default() };
        let s = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<SimConfig>(&s).unwrap(), c);
        let partial: SimConfig = serde_json::from_str(r#"{"n_users": 5}"#).unwrap();
        assert_eq!(partial.n_users, 5);
        assert_eq!(partial.seed, 42);
        assert!(serde_json::from_str::<SimConfig>(r#"{"n_user": 5}"#).is_err());
    }
}
