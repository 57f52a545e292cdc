//! The comparison's plots, as SVG with a PNG of each beside it (`png.rs`): per-task primary
//! metric with the seed spread, MTL gain per task, validation curves, gate utilisation of the
//! gated models, and the gradient cosine of each task pair per epoch.

use std::path::Path;

use plotters::prelude::*;

use crate::compare::{ComparisonReport, SINGLE_TASK, primary_metric};
use crate::error::{Result, TrainError};

pub(crate) const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

fn plot_error(path: &Path, e: impl std::fmt::Display) -> TrainError {
    TrainError::Checkpoint { path: path.to_owned(), message: format!("plotting: {e}") }
}

/// Renders into a string, then writes it atomically to `path` (an `.svg`) and, rasterised, to the
/// same name with `.png`.
pub(crate) fn write_svg(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(
        DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    ) -> std::result::Result<(), String>,
) -> Result<()> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot_error(path, e))?;
        draw(root.clone()).map_err(|e| plot_error(path, e))?;
        root.present().map_err(|e| plot_error(path, e))?;
    }
    let png = crate::png::render(&svg, path)?;
    seesaw_data::atomic::write(path, svg.as_bytes())?;
    Ok(seesaw_data::atomic::write(&path.with_extension("png"), &png)?)
}

/// Draws one plot of a report into the `.svg` path it is given.
type Draw = fn(&ComparisonReport, &Path) -> Result<()>;

/// The plots a report gets, by file stem, with what draws each: the one list that `write_all`
/// draws and the report and `compare` name.
fn plots(report: &ComparisonReport) -> Vec<(&'static str, Draw)> {
    let mut plots: Vec<(&'static str, Draw)> = vec![
        ("metrics", metrics_plot),
        ("gains", gains_plot),
        ("curves", curves_plot),
        ("gates", gates_plot),
        ("cosines", cosines_plot),
        ("cmi", crate::cmi_report::heatmap),
    ];
    if report.runs.iter().any(|r| r.clip_curve.is_some()) {
        plots.push(("clip_curve", crate::clip_curve::plot));
    }
    plots
}

/// The file stems of the plots `write_all` writes for `report` (each as `.svg` and `.png`).
pub fn names(report: &ComparisonReport) -> Vec<&'static str> {
    plots(report).into_iter().map(|(name, _)| name).collect()
}

pub fn write_all(report: &ComparisonReport, dir: &Path) -> Result<()> {
    for (name, draw) in plots(report) {
        draw(report, &dir.join(format!("{name}.svg")))?;
    }
    Ok(())
}

/// One panel per task: the primary metric of each architecture, mean with a ±sd bar.
fn metrics_plot(report: &ComparisonReport, path: &Path) -> Result<()> {
    let n_tasks = report.tasks.len().max(1);
    let cols = n_tasks.min(3);
    let rows = n_tasks.div_ceil(cols);
    write_svg(path, (520 * cols as u32, 320 * rows as u32), |root| {
        let panels = root.split_evenly((rows, cols));
        for (task, panel) in report.tasks.iter().zip(panels) {
            let (metric, _) = primary_metric(task.kind);
            let points: Vec<(usize, f64, f64)> = report
                .summaries
                .iter()
                .enumerate()
                .filter_map(|(i, s)| {
                    let m = s.metrics.get(&task.name)?.get(metric)?;
                    Some((i, m.mean, m.sd.unwrap_or(0.0)))
                })
                .collect();
            if points.is_empty() {
                continue;
            }
            // On the simulator, the AUC of the true probabilities: the most any model can reach.
            let best = (metric == "auc")
                .then(|| report.best_achievable_auc.as_ref()?.get(&task.name).copied())
                .flatten();
            let lo = points.iter().map(|p| p.1 - p.2).fold(f64::INFINITY, f64::min);
            let hi = points.iter().map(|p| p.1 + p.2).chain(best).fold(f64::NEG_INFINITY, f64::max);
            let pad = ((hi - lo) * 0.15).max(1e-3);
            let mut chart = ChartBuilder::on(&panel)
                .caption(format!("{} {}", task.name, metric.to_uppercase()), ("sans-serif", 16))
                .margin(8)
                .x_label_area_size(60)
                .y_label_area_size(56)
                .build_cartesian_2d(
                    -0.5f64..(report.summaries.len() as f64 - 0.5),
                    (lo - pad)..(hi + pad),
                )
                .map_err(|e| e.to_string())?;
            let names: Vec<String> =
                report.summaries.iter().map(|s| s.architecture.clone()).collect();
            chart
                .configure_mesh()
                .x_labels(names.len())
                .x_label_style(("sans-serif", 10))
                .x_label_formatter(&|x| category_label(&names, *x))
                .disable_x_mesh()
                .draw()
                .map_err(|e| e.to_string())?;
            for &(i, mean, sd) in &points {
                let color = PALETTE[i % PALETTE.len()];
                chart
                    .draw_series([ErrorBar::new_vertical(
                        i as f64,
                        mean - sd,
                        mean,
                        mean + sd,
                        color.filled(),
                        8,
                    )])
                    .map_err(|e| e.to_string())?;
                chart
                    .draw_series([Circle::new((i as f64, mean), 4, color.filled())])
                    .map_err(|e| e.to_string())?;
            }
            if let Some(best) = best {
                let right = report.summaries.len() as f64 - 0.5;
                chart
                    .draw_series(DashedLineSeries::new(
                        [(-0.5, best), (right, best)],
                        6,
                        4,
                        BLACK.stroke_width(1),
                    ))
                    .map_err(|e| e.to_string())?;
                chart
                    .draw_series([Text::new(
                        format!("best achievable {best:.4}"),
                        (-0.45, best),
                        ("sans-serif", 11),
                    )])
                    .map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    })
}

/// MTL gain per task (primary metric) of each architecture over single-task, with a bar of ±1
/// standard error over seeds (√(sd_mtl²/n + sd_single²/n), as the see-saw verdict uses); the
/// legend sits in its own column to the right, so it never covers a bar.
fn gains_plot(report: &ComparisonReport, path: &Path) -> Result<()> {
    let gained: Vec<_> = report
        .summaries
        .iter()
        .filter_map(|s| Some((s.architecture.as_str(), s.gains.as_ref()?)))
        .collect();
    // The standard error of one architecture's gain on one task, where both have a spread.
    let standard_error = |architecture: &str, task: &str| -> Option<f64> {
        let (metric, _) = primary_metric(report.tasks.iter().find(|t| t.name == task)?.kind);
        let primary = |name: &str| report.summary(name)?.metrics.get(task)?.get(metric);
        primary(architecture)?.difference_standard_error(primary(SINGLE_TASK)?)
    };
    write_svg(path, (1060, 420), |root| {
        let (plot_area, legend_area) = root.split_horizontally(880);
        let bars: Vec<(usize, usize, f64, f64)> = gained
            .iter()
            .enumerate()
            .flat_map(|(a, (name, gains))| {
                report.tasks.iter().enumerate().filter_map(move |(t, task)| {
                    let gain = gains.tasks.iter().find(|g| g.task == task.name)?.gain;
                    Some((a, t, gain, standard_error(name, &task.name).unwrap_or(0.0)))
                })
            })
            .collect();
        let extent = bars.iter().fold(1e-3f64, |m, &(_, _, gain, se)| m.max(gain.abs() + se)) * 1.2;
        let n_tasks = report.tasks.len();
        let mut chart = ChartBuilder::on(&plot_area)
            .caption(
                "MTL gain over single-task (AUC; −RMSE for regression), ±1 SE over seeds",
                ("sans-serif", 16),
            )
            .margin(10)
            .x_label_area_size(50)
            .y_label_area_size(60)
            .build_cartesian_2d(-0.5f64..(n_tasks as f64 - 0.5), -extent..extent)
            .map_err(|e| e.to_string())?;
        let names: Vec<String> = report.tasks.iter().map(|t| t.name.clone()).collect();
        chart
            .configure_mesh()
            .x_labels(n_tasks)
            .x_label_formatter(&|x| category_label(&names, *x))
            .disable_x_mesh()
            .draw()
            .map_err(|e| e.to_string())?;
        let width = 0.8 / gained.len().max(1) as f64;
        for &(a, t, gain, se) in &bars {
            let color = PALETTE[(a + 1) % PALETTE.len()];
            let x0 = t as f64 - 0.4 + a as f64 * width;
            chart
                .draw_series([Rectangle::new(
                    [(x0, 0.0), (x0 + width * 0.9, gain)],
                    color.filled(),
                )])
                .map_err(|e| e.to_string())?;
            if se > 0.0 {
                let x = x0 + width * 0.45;
                chart
                    .draw_series([ErrorBar::new_vertical(
                        x,
                        gain - se,
                        gain,
                        gain + se,
                        BLACK.stroke_width(1),
                        6,
                    )])
                    .map_err(|e| e.to_string())?;
            }
        }
        for (a, (name, _)) in gained.iter().enumerate() {
            let color = PALETTE[(a + 1) % PALETTE.len()];
            let y = 40 + 22 * a as i32;
            legend_area
                .draw(&Rectangle::new([(10, y - 6), (22, y + 6)], color.filled()))
                .map_err(|e| e.to_string())?;
            legend_area
                .draw(&Text::new(name.to_string(), (28, y - 7), ("sans-serif", 13)))
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    })
}

/// The validation score per epoch of each architecture's first seed.
fn curves_plot(report: &ComparisonReport, path: &Path) -> Result<()> {
    let first_seed = report.seeds.first().copied().unwrap_or(0);
    let runs: Vec<_> = report.runs.iter().filter(|r| r.seed == first_seed).collect();
    write_svg(path, (800, 450), |root| {
        let scores: Vec<f64> =
            runs.iter().flat_map(|r| r.history.iter().filter_map(|h| h.score)).collect();
        if scores.is_empty() {
            return Ok(());
        }
        let lo = scores.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let pad = ((hi - lo) * 0.1).max(1e-3);
        let epochs = runs.iter().map(|r| r.history.len()).max().unwrap_or(1).max(2);
        let mut chart = ChartBuilder::on(&root)
            .caption(format!("validation score per epoch (seed {first_seed})"), ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..(epochs - 1) as f64, (lo - pad)..(hi + pad))
            .map_err(|e| e.to_string())?;
        chart.configure_mesh().x_desc("epoch").y_desc("score").draw().map_err(|e| e.to_string())?;
        for (i, run) in runs.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            let line: Vec<(f64, f64)> =
                run.history.iter().filter_map(|h| Some((h.epoch as f64, h.score?))).collect();
            chart
                .draw_series(LineSeries::new(line, color.stroke_width(2)))
                .map_err(|e| e.to_string())?
                .label(run.architecture.clone())
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 16, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE)
            .draw()
            .map_err(|e| e.to_string())?;
        Ok(())
    })
}

/// Mean gate weight per expert, one row of stacked bars per gate of each gated model.
fn gates_plot(report: &ComparisonReport, path: &Path) -> Result<()> {
    let first_seed = report.seeds.first().copied().unwrap_or(0);
    let gates: Vec<(String, &Vec<f64>)> = report
        .runs
        .iter()
        .filter(|r| r.seed == first_seed)
        .flat_map(|r| {
            r.gate_utilisation.iter().map(move |(g, w)| (format!("{} {}", r.architecture, g), w))
        })
        .collect();
    let height = (60 + 28 * gates.len().max(1)) as u32;
    write_svg(path, (900, height), |root| {
        if gates.is_empty() {
            return Ok(());
        }
        let mut chart = ChartBuilder::on(&root)
            .caption("gate utilisation (mean weight per expert)", ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(260)
            .build_cartesian_2d(0f64..1f64, -0.5f64..(gates.len() as f64 - 0.5))
            .map_err(|e| e.to_string())?;
        let names: Vec<String> = gates.iter().map(|(n, _)| n.clone()).collect();
        chart
            .configure_mesh()
            .y_labels(names.len())
            .y_label_formatter(&|y| category_label(&names, *y))
            .disable_y_mesh()
            .draw()
            .map_err(|e| e.to_string())?;
        for (row, (_, weights)) in gates.iter().enumerate() {
            let mut start = 0.0;
            let y = row as f64;
            for (e, &w) in weights.iter().enumerate() {
                let color = PALETTE[e % PALETTE.len()];
                chart
                    .draw_series([Rectangle::new(
                        [(start, y - 0.35), (start + w, y + 0.35)],
                        color.filled(),
                    )])
                    .map_err(|e| e.to_string())?;
                start += w;
            }
        }
        Ok(())
    })
}

/// One panel per task pair: the cosine between the two tasks' gradients on the shared parameters
/// after each epoch, one line per architecture (the mean over the seeds that reached the epoch).
fn cosines_plot(report: &ComparisonReport, path: &Path) -> Result<()> {
    let pairs = crate::report::cosine_pairs(report);
    let architectures: Vec<&str> = report
        .summaries
        .iter()
        .filter(|s| !s.gradient_cosines.is_empty())
        .map(|s| s.architecture.as_str())
        .collect();
    // Per architecture and pair: the mean cosine at each epoch, over the seeds that have it.
    let curve = |architecture: &str, pair: &str| -> Vec<(f64, f64)> {
        let mut sums: Vec<(f64, usize)> = Vec::new();
        for run in report.runs.iter().filter(|r| r.architecture == architecture) {
            for record in &run.history {
                let Some(&c) = record.gradient_cosines.get(pair) else { continue };
                if sums.len() <= record.epoch {
                    sums.resize(record.epoch + 1, (0.0, 0));
                }
                sums[record.epoch].0 += c;
                sums[record.epoch].1 += 1;
            }
        }
        sums.iter()
            .enumerate()
            .filter(|(_, s)| s.1 > 0)
            .map(|(e, s)| (e as f64, s.0 / s.1 as f64))
            .collect()
    };
    let cols = pairs.len().clamp(1, 3);
    let rows = pairs.len().div_ceil(cols).max(1);
    write_svg(path, (480 * cols as u32, 300 * rows as u32), |root| {
        let panels = root.split_evenly((rows, cols));
        for (p, (pair, panel)) in pairs.iter().zip(panels).enumerate() {
            let curves: Vec<Vec<(f64, f64)>> =
                architectures.iter().map(|a| curve(a, pair)).collect();
            let values: Vec<f64> = curves.iter().flatten().map(|p| p.1).collect();
            let lo = values.iter().copied().fold(0.0f64, f64::min);
            let hi = values.iter().copied().fold(0.0f64, f64::max);
            let pad = ((hi - lo) * 0.1).max(1e-2);
            let epochs = curves.iter().flatten().map(|p| p.0 as usize + 1).max().unwrap_or(1);
            let mut chart = ChartBuilder::on(&panel)
                .caption(
                    format!("{} (gradient cosine)", pair.replace('|', " / ")),
                    ("sans-serif", 15),
                )
                .margin(8)
                .x_label_area_size(36)
                .y_label_area_size(50)
                .build_cartesian_2d(0f64..(epochs.max(2) - 1) as f64, (lo - pad)..(hi + pad))
                .map_err(|e| e.to_string())?;
            chart.configure_mesh().x_desc("epoch").draw().map_err(|e| e.to_string())?;
            chart
                .draw_series(LineSeries::new(
                    [(0.0, 0.0), ((epochs.max(2) - 1) as f64, 0.0)],
                    BLACK.mix(0.4).stroke_width(1),
                ))
                .map_err(|e| e.to_string())?;
            for (i, (name, line)) in architectures.iter().zip(curves).enumerate() {
                if line.is_empty() {
                    continue;
                }
                let color = PALETTE[i % PALETTE.len()];
                let series = chart
                    .draw_series(LineSeries::new(line, color.stroke_width(2)))
                    .map_err(|e| e.to_string())?;
                if p == 0 {
                    series.label(name.to_string()).legend(move |(x, y)| {
                        PathElement::new([(x, y), (x + 16, y)], color.stroke_width(2))
                    });
                }
            }
            if p == 0 {
                chart
                    .configure_series_labels()
                    .border_style(BLACK)
                    .background_style(WHITE)
                    .draw()
                    .map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    })
}

/// The name of the category at an integer position of a category axis, blank between them.
fn category_label(names: &[String], position: f64) -> String {
    let i = position.round();
    if (position - i).abs() < 1e-6 && i >= 0.0 {
        names.get(i as usize).cloned().unwrap_or_default()
    } else {
        String::new()
    }
}
