//! The per-video clip curve (FRAME's figure, as a measurement): for a model that scores each clip
//! of a video (extra scores declared with `ExtraScore::clip`), how its clip scores follow where
//! viewers actually leave, on the evaluated rows.
//!
//! With N_c clips and a view's watch ratio r, the view leaves in clip ⌊r·N_c⌋ (or watches
//! through); it *reached* clip i when it left in clip i or later, and *watched through* clip i when
//! it left after it. The model's σ(s_i) is trained on exactly those labels (seesaw-data's clip
//! labels). Measured:
//!
//! - `clip_auc[i]`: per clip, the AUC of σ(s_i) for watching through clip i among the views that
//!   reached it (the per-clip continuation task);
//! - per video with at least `MIN_VIEWS` evaluated views and per clip, the observed continuation
//!   P(through i | reached i) against the mean σ(s_i), and the observed share still watching after
//!   clip i (the paper's curve) against the model's implied share, the mean of Π_{j≤i} σ(s_j);
//!   `continuation_correlation` and `survival_correlation` are the Pearson correlations over all
//!   (video, clip) cells, `survival_mae` the mean absolute difference of the shares;
//! - `examples`: the `EXAMPLES` most-viewed videos' curves, for the plot.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use seesaw_data::dataset::PreparedDataset;
use seesaw_data::labels::ClipOutcome;
use seesaw_metrics::{MeanSd, auc};
use seesaw_models::ExtraScore;

use crate::compare::ComparisonReport;
use crate::error::Result;
use crate::evaluate::Predictions;
use crate::plots::{PALETTE, write_svg};
use crate::report::mean_sd_cell;

/// Videos with fewer evaluated views are left out of the per-video cells: their observed shares
/// are too noisy to compare against.
pub const MIN_VIEWS: usize = 30;

/// How many of the most-viewed videos the report draws.
pub const EXAMPLES: usize = 4;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClipCurve {
    pub n_clips: usize,
    /// Per clip: AUC of watching it through among the views that reached it.
    pub clip_auc: Vec<Option<f64>>,
    /// Videos with at least `MIN_VIEWS` evaluated views.
    pub videos: usize,
    pub continuation_correlation: Option<f64>,
    pub survival_correlation: Option<f64>,
    pub survival_mae: Option<f64>,
    pub examples: Vec<VideoCurve>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoCurve {
    pub video: String,
    pub views: usize,
    /// Per clip: mean σ(s_i), observed P(through i | reached i) (None when no view reached it),
    /// the model's implied share still watching after clip i, and the observed share.
    pub predicted_continuation: Vec<f64>,
    pub observed_continuation: Vec<Option<f64>>,
    pub predicted_survival: Vec<f64>,
    pub observed_survival: Vec<f64>,
}

/// The clip scores' columns in `predictions.extras`, in clip order; None unless the model
/// declares a score for each of clips 0..N_c.
fn clip_columns<'p>(extras: &[ExtraScore], predictions: &'p Predictions) -> Option<Vec<&'p [f32]>> {
    let mut columns: Vec<(usize, &[f32])> = extras
        .iter()
        .zip(&predictions.extras)
        .filter_map(|(e, (_, values))| Some((e.clip?, values.as_slice())))
        .collect();
    columns.sort_by_key(|c| c.0);
    let complete = !columns.is_empty() && columns.iter().enumerate().all(|(i, c)| c.0 == i);
    complete.then(|| columns.into_iter().map(|c| c.1).collect())
}

/// `None` when the model scores no clips.
pub fn clip_curve(
    extras: &[ExtraScore],
    predictions: &Predictions,
    data: &PreparedDataset,
) -> Result<Option<ClipCurve>> {
    let Some(columns) = clip_columns(extras, predictions) else { return Ok(None) };
    let n_clips = columns.len();
    let skip_clip: Vec<usize> = predictions
        .rows
        .iter()
        .map(|&r| ClipOutcome::from_ratio(data.watch_ratio[r as usize], n_clips).skip_clip)
        .collect();
    let mut clip_auc = Vec::with_capacity(n_clips);
    for (i, column) in columns.iter().enumerate() {
        let (scores, through): (Vec<f32>, Vec<bool>) = skip_clip
            .iter()
            .zip(column.iter())
            .filter(|(s, _)| **s >= i)
            .map(|(&s, &p)| (p, s > i))
            .unzip();
        clip_auc.push(auc(&scores, &through)?);
    }

    let mut views_of: HashMap<u32, Vec<usize>> = HashMap::new();
    for (k, &row) in predictions.rows.iter().enumerate() {
        views_of.entry(data.video[row as usize]).or_default().push(k);
    }
    let mut videos: Vec<(u32, Vec<usize>)> =
        views_of.into_iter().filter(|(_, views)| views.len() >= MIN_VIEWS).collect();
    // Most-viewed first; ties by key so that the examples do not depend on hashing.
    videos.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(&b.0)));
    let curves: Vec<VideoCurve> = videos
        .iter()
        .map(|(video, views)| {
            video_curve(data.video_keys.token(*video), views, &columns, &skip_clip)
        })
        .collect();

    let (mut predicted, mut observed) = (Vec::new(), Vec::new());
    let (mut implied, mut share) = (Vec::new(), Vec::new());
    for curve in &curves {
        for i in 0..n_clips {
            if let Some(o) = curve.observed_continuation[i] {
                predicted.push(curve.predicted_continuation[i]);
                observed.push(o);
            }
            implied.push(curve.predicted_survival[i]);
            share.push(curve.observed_survival[i]);
        }
    }
    let survival_mae = (!share.is_empty()).then(|| {
        implied.iter().zip(&share).map(|(a, b)| (a - b).abs()).sum::<f64>() / share.len() as f64
    });
    Ok(Some(ClipCurve {
        n_clips,
        clip_auc,
        videos: curves.len(),
        continuation_correlation: pearson(&predicted, &observed),
        survival_correlation: pearson(&implied, &share),
        survival_mae,
        examples: curves.into_iter().take(EXAMPLES).collect(),
    }))
}

fn video_curve(
    video: &str,
    views: &[usize],
    columns: &[&[f32]],
    skip_clip: &[usize],
) -> VideoCurve {
    let n_clips = columns.len();
    let n = views.len() as f64;
    let mut curve = VideoCurve {
        video: video.to_owned(),
        views: views.len(),
        predicted_continuation: Vec::with_capacity(n_clips),
        observed_continuation: Vec::with_capacity(n_clips),
        predicted_survival: Vec::with_capacity(n_clips),
        observed_survival: Vec::with_capacity(n_clips),
    };
    // Per view, the product of σ(s_j) so far: the model's chance that it is still watching.
    let mut still = vec![1.0f64; views.len()];
    for (i, column) in columns.iter().enumerate() {
        let mut sum = 0.0;
        for (s, &k) in still.iter_mut().zip(views) {
            let p = column[k] as f64;
            sum += p;
            *s *= p;
        }
        curve.predicted_continuation.push(sum / n);
        curve.predicted_survival.push(still.iter().sum::<f64>() / n);
        let reached = views.iter().filter(|&&k| skip_clip[k] >= i).count();
        let through = views.iter().filter(|&&k| skip_clip[k] > i).count();
        curve.observed_continuation.push((reached > 0).then(|| through as f64 / reached as f64));
        curve.observed_survival.push(through as f64 / n);
    }
    curve
}

/// Pearson's correlation; None with fewer than two points or no spread.
fn pearson(a: &[f64], b: &[f64]) -> Option<f64> {
    let n = a.len();
    if n < 2 || n != b.len() {
        return None;
    }
    let (ma, mb) = (a.iter().sum::<f64>() / n as f64, b.iter().sum::<f64>() / n as f64);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma) * (x - ma);
        sbb += (y - mb) * (y - mb);
    }
    (saa > 0.0 && sbb > 0.0).then(|| sab / (saa * sbb).sqrt())
}

/// The seeds' values of one measure as a table cell (seeds without the value are left out).
fn mean_sd(values: impl Iterator<Item = Option<f64>>) -> String {
    let values: Vec<f64> = values.flatten().collect();
    mean_sd_cell(MeanSd::from_values(&values).ok().flatten().as_ref(), 3)
}

/// The markdown section; empty when no run scores clips.
pub fn markdown_section(report: &ComparisonReport) -> String {
    let mut architectures: Vec<&str> = Vec::new();
    for run in report.runs.iter().filter(|r| r.clip_curve.is_some()) {
        if !architectures.contains(&run.architecture.as_str()) {
            architectures.push(&run.architecture);
        }
    }
    if architectures.is_empty() {
        return String::new();
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n## Clip curves\n\nFor models that score each clip: per clip, the AUC of watching it \
         through among the views that reached it; over videos with at least {MIN_VIEWS} evaluated \
         views, the correlation of the mean clip score with the observed continuation \
         P(through i | reached i), and of the implied share still watching (mean of Π σ(s_j)) \
         with the observed share. Mean ± sd over seeds. clip_curve.svg draws the {EXAMPLES} \
         most-viewed videos (first seed).\n"
    );
    let _ = writeln!(
        out,
        "| architecture | videos | clip AUC per clip | continuation corr. | share-watching corr. | \
         share-watching MAE |\n|---|---|---|---|---|---|"
    );
    for name in architectures {
        let curves: Vec<&ClipCurve> = report
            .runs
            .iter()
            .filter(|r| r.architecture == name)
            .filter_map(|r| r.clip_curve.as_ref())
            .collect();
        let n_clips = curves[0].n_clips;
        let per_clip: Vec<String> = (0..n_clips)
            .map(|i| mean_sd(curves.iter().map(|c| c.clip_auc.get(i).copied().flatten())))
            .collect();
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {} | {} | {} |",
            curves[0].videos,
            per_clip.join(" / "),
            mean_sd(curves.iter().map(|c| c.continuation_correlation)),
            mean_sd(curves.iter().map(|c| c.survival_correlation)),
            mean_sd(curves.iter().map(|c| c.survival_mae)),
        );
    }
    out
}

/// The first clip-scoring run's example videos: per video, the implied share still watching
/// (line) against the observed share (points), and the mean clip score (dashed) against the
/// observed continuation (crosses). Nothing is drawn when no run scores clips.
pub fn plot(report: &ComparisonReport, path: &Path) -> Result<()> {
    let Some(run) = report.runs.iter().find(|r| r.clip_curve.is_some()) else {
        return write_svg(path, (400, 100), |_| Ok(()));
    };
    let curve = run.clip_curve.as_ref().expect("found with a clip curve");
    let n = curve.examples.len().max(1);
    let cols = n.min(2);
    let rows = n.div_ceil(cols);
    write_svg(path, (520 * cols as u32, 340 * rows as u32), |root| {
        for (video, panel) in curve.examples.iter().zip(root.split_evenly((rows, cols))) {
            let caption = format!(
                "{} seed {}: video {} ({} views)",
                run.architecture, run.seed, video.video, video.views
            );
            let x_max = curve.n_clips as f64 + 0.5;
            let mut chart = ChartBuilder::on(&panel)
                .caption(caption, ("sans-serif", 15))
                .margin(10)
                .x_label_area_size(35)
                .y_label_area_size(45)
                // Above 1.05 the legend has a band of its own, so it covers no point.
                .build_cartesian_2d(0.5f64..x_max, 0f64..1.5)
                .map_err(|e| e.to_string())?;
            chart
                .configure_mesh()
                .x_labels(curve.n_clips)
                .x_label_formatter(&|x| format!("{}", x.round() as i64))
                .y_labels(6)
                .y_label_formatter(&|y| if *y <= 1.0 { format!("{y:.1}") } else { String::new() })
                .x_desc("clip")
                .y_desc("probability")
                .draw()
                .map_err(|e| e.to_string())?;
            let at = |values: &[f64]| -> Vec<(f64, f64)> {
                values.iter().enumerate().map(|(i, &v)| ((i + 1) as f64, v)).collect()
            };
            let (blue, orange) = (PALETTE[0], PALETTE[1]);
            chart
                .draw_series(LineSeries::new(at(&video.predicted_survival), blue.stroke_width(2)))
                .map_err(|e| e.to_string())?
                .label("model: share still watching")
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 16, y)], blue.stroke_width(2))
                });
            chart
                .draw_series(
                    at(&video.observed_survival)
                        .into_iter()
                        .map(|p| Circle::new(p, 4, blue.filled())),
                )
                .map_err(|e| e.to_string())?
                .label("observed share still watching")
                .legend(move |(x, y)| Circle::new((x + 8, y), 4, blue.filled()));
            chart
                .draw_series(DashedLineSeries::new(
                    at(&video.predicted_continuation),
                    6,
                    4,
                    orange.stroke_width(2),
                ))
                .map_err(|e| e.to_string())?
                .label("model: mean clip score")
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 16, y)], orange.stroke_width(2))
                });
            let observed: Vec<(f64, f64)> = video
                .observed_continuation
                .iter()
                .enumerate()
                .filter_map(|(i, v)| Some(((i + 1) as f64, (*v)?)))
                .collect();
            chart
                .draw_series(observed.into_iter().map(|p| Cross::new(p, 5, orange.stroke_width(2))))
                .map_err(|e| e.to_string())?
                .label("observed P(through | reached)")
                .legend(move |(x, y)| Cross::new((x + 8, y), 5, orange.stroke_width(2)));
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .border_style(BLACK)
                .background_style(WHITE.mix(0.8))
                .draw()
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pearson_is_one_for_a_line_and_none_without_spread() {
        assert!((pearson(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.0]).unwrap() - 1.0).abs() < 1e-12);
        assert!((pearson(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]).unwrap() + 1.0).abs() < 1e-12);
        assert_eq!(pearson(&[1.0, 1.0], &[1.0, 2.0]), None);
    }

    #[test]
    fn a_video_curve_counts_reached_and_through_views_per_clip() {
        // Four views of one video with 2 clips: left in clip 0, clip 1, and two watched through.
        let skip_clip = [0, 1, 2, 2];
        let clip0 = [0.5f32, 0.5, 0.5, 0.5];
        let clip1 = [0.2f32, 0.4, 0.6, 0.8];
        let curve = video_curve("v", &[0, 1, 2, 3], &[&clip0, &clip1], &skip_clip);
        assert_eq!(curve.observed_continuation, vec![Some(0.75), Some(2.0 / 3.0)]);
        assert_eq!(curve.observed_survival, vec![0.75, 0.5]);
        assert_eq!(curve.predicted_continuation[0], 0.5);
        assert!((curve.predicted_continuation[1] - 0.5).abs() < 1e-7);
        // Π σ per view: 0.1, 0.2, 0.3, 0.4 → mean 0.25.
        assert!((curve.predicted_survival[1] - 0.25).abs() < 1e-7);
    }
}
