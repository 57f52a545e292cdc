//! A simulated short-video platform whose ground truth is known: every logged label comes with
//! the exact probability it was drawn from, so models can be scored against the best possible
//! predictor, and the dependence between tasks is a knob rather than an unknown.
//!
//! The generative story, per impression of video v to user u:
//! 1. a latent emotion state e ∈ {0, 1} with P(e=1) = σ(topic affinity + need match + quality
//!    + the user's mood − a large penalty for objectionable content);
//! 2. given e, a click (independent of everything else given e: the feed autoplays, so a view
//!    happens with or without it);
//! 3. given e, a view: the video is N_c equal clips, each watched through with a probability
//!    that depends on the user's taste for *that clip's* content (clips drift off the video's
//!    topic), on e, on clip length and on objectionability; the stop position is uniform in
//!    the clip it falls in, and a completed view may replay (watch ratio > 1);
//! 4. given e, like/follow/comment/forward/hate with known marginals, drawn jointly through an
//!    equicorrelated Gaussian copula whose correlation is `SimConfig::dependence`.
//!
//! Because e is binary and the view is a chain over clips, every label's probability given
//! (u, v) is a closed form: P(y) = P(e=1)·P(y | e=1) + P(e=0)·P(y | e=0). Derived labels:
//! long_view = play_time ≥ min(duration, long_view_ms) (18 s by default, so a short video must
//! be watched through); skip = watch_ratio < skip_ratio (0.5); complete = play_time ≥ duration.
//!
//! [`write_kuairand`] writes the platform in the KuaiRand file layout, with a truth file beside
//! the log; that layout is the simulator's only contract with seesaw-data, which reads it back
//! with its `kuairand` preset. [`record_batches`] hands the same log out as Arrow batches.

mod alias;
mod behaviour;
mod calendar;
mod config;
mod error;
pub mod joint;
pub mod mmoe_synthetic;
mod normal;
mod platform;
mod population;
mod record_batches;
mod side_tables;
mod viewing;
mod writer;

pub use config::SimConfig;
pub use error::{Result, SimError};
pub use mmoe_synthetic::{MmoeSynthetic, MmoeSyntheticConfig};
pub use normal::{norm_cdf, norm_inv_cdf};
pub use platform::{
    ConditionalProbabilities, Impression, Impressions, Platform, TrueProbabilities,
};
pub use population::{Authors, Users, Videos, World};
pub use record_batches::record_batches;
pub use side_tables::{USER_FEATURES_HEADER, VIDEO_FEATURES_HEADER};
pub use writer::{
    LOG_HEADER, SimFiles, TRUE_CMI_FILE, TRUTH_HEADER, truth_header, write_kuairand,
    write_kuairand_with_progress,
};
