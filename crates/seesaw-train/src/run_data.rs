//! The dataset of a run: read from the files the spec names, or, when the run config has a
//! `[simulator]` table, simulated first into the run directory (then the true probabilities are
//! known and give each task's best achievable AUC).

use std::collections::BTreeMap;
use std::path::Path;

use seesaw_data::dataset::{PreparedDataset, prepare};
use seesaw_data::feature_map::TaskKind;
use seesaw_data::split::Part;
use seesaw_sim::{Platform, TrueProbabilities, write_kuairand};

use crate::error::{Result, TrainError};
use crate::run_config::RunConfig;

pub struct RunData {
    pub data: PreparedDataset,
    /// Simulated runs: the true probabilities of every log row, in row order.
    pub truth: Option<Vec<TrueProbabilities>>,
}

/// Prepares the run's dataset; a simulated platform is written under `out/simulator` and the
/// spec's paths are pointed at it (so the resolved config names the files used).
pub fn prepare_run_data(config: &mut RunConfig, out: &Path) -> Result<RunData> {
    let Some(platform) = simulate_into_spec(config, out)? else {
        return Ok(RunData { data: prepare(&config.dataset)?, truth: None });
    };
    let data = prepare(&config.dataset)?;
    if data.report.rows_kept != data.report.rows_read {
        return Err(TrainError::Config(format!(
            "the simulated log lost rows in cleaning ({:?}); rows no longer line up with the truth",
            data.report.dropped
        )));
    }
    let truth = platform.impressions().map(|i| i.truth).collect();
    Ok(RunData { data, truth: Some(truth) })
}

/// With a `[simulator]` table: writes the simulated platform's files under `out/simulator`,
/// points the spec's paths at them (so the resolved config names the files used) and returns
/// the platform; without one, nothing.
pub fn simulate_into_spec(config: &mut RunConfig, out: &Path) -> Result<Option<Platform>> {
    let Some(sim) = config.simulator.clone() else { return Ok(None) };
    let platform = Platform::new(&sim)?;
    let files = write_kuairand(&platform, &out.join("simulator"))?;
    let spec = &mut config.dataset;
    spec.log.path = Some(files.log);
    if let Some(users) = &mut spec.users {
        users.path = Some(files.user_features);
    }
    if let Some(videos) = &mut spec.videos {
        videos.path = Some(files.video_features);
    }
    // Clip features only when the config asks for clip labels: they cost a gather per row.
    match (&mut spec.clips, spec.labels.clips) {
        (Some(clips), Some(_)) => clips.path = Some(files.clip_features),
        _ => spec.clips = None,
    }
    // The model saves these paths: absolute, so that it works from any directory.
    spec.resolve_paths(Path::new("."));
    Ok(Some(platform))
}

/// AUC of the true probabilities on the rows of `part`, for the binary tasks the simulator
/// knows the truth of.
pub fn best_achievable_auc(
    run: &RunData,
    part: Part,
    skip_matches_truth: bool,
) -> Option<BTreeMap<String, f64>> {
    let truth = run.truth.as_ref()?;
    let data = &run.data;
    let rows = data.split.part(part);
    let mut out = BTreeMap::new();
    for (k, task) in data.feature_map.tasks.iter().enumerate() {
        if task.kind != TaskKind::Binary {
            continue;
        }
        let pick: fn(&TrueProbabilities) -> f32 = match task.name.as_str() {
            "click" => |t| t.click,
            "like" => |t| t.like,
            "follow" => |t| t.follow,
            "comment" => |t| t.comment,
            "forward" => |t| t.forward,
            "hate" => |t| t.hate,
            "long_view" => |t| t.long_view,
            "watch_through" => |t| t.complete,
            "skip" if skip_matches_truth => |t| t.skip,
            _ => continue,
        };
        let (scores, labels): (Vec<f32>, Vec<f32>) = rows
            .iter()
            .filter_map(|&r| {
                let (label, present) = data.labels[k].get(r as usize);
                present.then(|| (pick(&truth[r as usize]), label))
            })
            .unzip();
        if let Ok(Some(auc)) = seesaw_metrics::auc(&scores, &labels) {
            out.insert(task.name.clone(), auc);
        }
    }
    Some(out)
}
