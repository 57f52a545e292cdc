//! A simulated short-video platform whose ground truth is known: every logged label comes with
//! the exact probability it was drawn from, so models can be scored against the best possible
//! predictor, and the dependence between tasks is a knob rather than an unknown.

mod alias;
mod behaviour;
mod calendar;
mod config;
pub mod mmoe_synthetic;
mod normal;
mod platform;
mod population;
mod side_tables;
mod viewing;
mod writer;

pub use config::SimConfig;
pub use mmoe_synthetic::{MmoeSynthetic, MmoeSyntheticConfig};
pub use normal::{norm_cdf, norm_inv_cdf};
pub use platform::{
    ConditionalProbabilities, Impression, Impressions, Platform, TrueProbabilities,
};
pub use population::World;
pub use side_tables::{USER_FEATURES_HEADER, VIDEO_FEATURES_HEADER};
pub use writer::{
    LOG_HEADER, SimFiles, TRUTH_HEADER, write_kuairand, write_kuairand_with_progress,
};
