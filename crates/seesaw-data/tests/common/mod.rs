//! Locating ../shared/data for tests: skipped with a printed reason when absent, except under CI,
//! where the data is always present and its absence is a failure.

#![allow(dead_code)]

use std::path::PathBuf;

pub fn kuairand_dir() -> Option<PathBuf> {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/kuairand-pure-slice");
    if dir.join("log_standard_4_25_to_5_04_pure_slice.csv").exists() {
        return Some(dir);
    }
    if std::env::var_os("CI").is_some() {
        panic!("CI is set but the shared data is missing at {}", dir.display());
    }
    eprintln!("skipped: the KuaiRand slice is not at {}", dir.display());
    None
}

pub fn kuairand_spec(dir: &std::path::Path) -> seesaw_data::spec::DatasetSpec {
    let mut spec = seesaw_data::presets::preset("kuairand").unwrap();
    spec.log.path = Some(dir.join("log_standard_4_25_to_5_04_pure_slice.csv"));
    spec.users.as_mut().unwrap().path = Some(dir.join("user_features_pure.csv"));
    spec.videos.as_mut().unwrap().path = Some(dir.join("video_features_basic_pure.csv"));
    spec.clips = None;
    spec
}
