//! The compare report's CMI section: a table of I(y_a; y_b | h) per task pair and architecture
//! (mean ± sd over seeds), and a heat map per architecture (`cmi.svg`).

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;

use crate::compare::ComparisonReport;
use crate::error::Result;
use crate::plots::write_svg;
use crate::report::mean_sd_cell;

/// The markdown section; empty when no run has a CMI matrix.
pub fn markdown_section(report: &ComparisonReport) -> String {
    let with: Vec<_> = report.summaries.iter().filter(|s| !s.cmi.is_empty()).collect();
    let Some(first) = with.first() else { return String::new() };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n## Conditional mutual information between tasks given h (nats)\n\nEstimated on the \
         evaluated part with a contrastive critic (`seesaw cmi`); what summed per-task losses \
         ignore. Mean ± sd over seeds.\n"
    );
    let names: Vec<&str> = with.iter().map(|s| s.architecture.as_str()).collect();
    let _ = writeln!(out, "| pair | {} |", names.join(" | "));
    let _ = writeln!(out, "|---|{}", "---|".repeat(names.len()));
    for pair in &first.cmi {
        let cells: Vec<String> = with
            .iter()
            .map(|s| {
                let found = s.cmi.iter().find(|p| p.a == pair.a && p.b == pair.b);
                mean_sd_cell(found.map(|p| &p.cmi), 4)
            })
            .collect();
        let _ = writeln!(out, "| {}–{} | {} |", pair.a, pair.b, cells.join(" | "));
    }
    out
}

/// One heat map per architecture with a CMI matrix: task × task, darker = more CMI, on a common
/// scale (the largest mean in the report).
pub fn heatmap(report: &ComparisonReport, path: &Path) -> Result<()> {
    let with: Vec<_> = report.summaries.iter().filter(|s| !s.cmi.is_empty()).collect();
    let tasks: Vec<String> = report.tasks.iter().map(|t| t.name.clone()).collect();
    let k = tasks.len();
    let max = with.iter().flat_map(|s| s.cmi.iter().map(|p| p.cmi.mean)).fold(1e-9f64, f64::max);
    let cols = with.len().clamp(1, 3);
    let rows = with.len().div_ceil(cols).max(1);
    write_svg(path, (420 * cols as u32, 400 * rows as u32), |root| {
        for (summary, panel) in with.iter().zip(root.split_evenly((rows, cols))) {
            let caption = format!("{} (max {:.4} nats)", summary.architecture, max);
            let mut chart = ChartBuilder::on(&panel)
                .caption(caption, ("sans-serif", 16))
                .margin(10)
                .x_label_area_size(40)
                .y_label_area_size(90)
                .build_cartesian_2d(-0.5f64..(k as f64 - 0.5), -0.5f64..(k as f64 - 0.5))
                .map_err(|e| e.to_string())?;
            let label = |v: &f64| {
                let i = v.round();
                if (v - i).abs() < 1e-6 && i >= 0.0 {
                    tasks.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            };
            chart
                .configure_mesh()
                .x_labels(k)
                .y_labels(k)
                .x_label_formatter(&label)
                .y_label_formatter(&label)
                .disable_mesh()
                .draw()
                .map_err(|e| e.to_string())?;
            for pair in &summary.cmi {
                let (Some(a), Some(b)) = (
                    tasks.iter().position(|t| *t == pair.a),
                    tasks.iter().position(|t| *t == pair.b),
                ) else {
                    continue;
                };
                let shade = (pair.cmi.mean.max(0.0) / max).min(1.0);
                let level = (255.0 * (1.0 - shade)) as u8;
                let color = RGBColor(level, level, 255);
                for (x, y) in [(a, b), (b, a)] {
                    let (x, y) = (x as f64, y as f64);
                    chart
                        .draw_series([Rectangle::new(
                            [(x - 0.5, y - 0.5), (x + 0.5, y + 0.5)],
                            color.filled(),
                        )])
                        .map_err(|e| e.to_string())?;
                }
            }
        }
        Ok(())
    })
}
