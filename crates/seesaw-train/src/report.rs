//! The comparison written for people (report.md, and the same table on the terminal) and for
//! scripts (report.json). Files are written atomically.

use std::fmt::Write as _;
use std::path::Path;

use seesaw_data::feature_map::TaskKind;
use seesaw_metrics::MeanSd;

use crate::compare::{ComparisonReport, primary_metric};
use crate::error::Result;
use crate::task_gradients::pair_key;

pub fn write_json(report: &ComparisonReport, path: &Path) -> Result<()> {
    let json = serde_json::to_vec_pretty(report).expect("a comparison report serialises");
    Ok(seesaw_data::atomic::write(path, &json)?)
}

pub fn write_markdown(report: &ComparisonReport, path: &Path) -> Result<()> {
    Ok(seesaw_data::atomic::write(path, markdown(report).as_bytes())?)
}

fn cell(report: &ComparisonReport, architecture: &str, task: &str, metric: &str) -> String {
    mean_sd_cell(report.summary(architecture).and_then(|s| s.metrics.get(task)?.get(metric)), 4)
}

/// A table cell of every report section: `mean ± sd` with `decimals` places, the mean alone
/// with one seed, "–" without a value.
pub(crate) fn mean_sd_cell(value: Option<&MeanSd>, decimals: usize) -> String {
    match value {
        Some(MeanSd { mean, sd: Some(sd), .. }) => format!("{mean:.decimals$} ± {sd:.decimals$}"),
        Some(MeanSd { mean, .. }) => format!("{mean:.decimals$}"),
        None => "–".into(),
    }
}

/// The primary-metric table: one row per architecture, one column per task.
pub fn primary_table(report: &ComparisonReport) -> String {
    let mut out = String::new();
    let header: Vec<String> = report
        .tasks
        .iter()
        .map(|t| format!("{} {}", t.name, primary_metric(t.kind).0.to_uppercase()))
        .collect();
    let _ = writeln!(out, "| architecture | {} |", header.join(" | "));
    let _ = writeln!(out, "|---|{}", "---|".repeat(header.len()));
    for summary in &report.summaries {
        let cells: Vec<String> = report
            .tasks
            .iter()
            .map(|t| cell(report, &summary.architecture, &t.name, primary_metric(t.kind).0))
            .collect();
        let _ = writeln!(out, "| {} | {} |", summary.architecture, cells.join(" | "));
    }
    if let Some(best) = &report.best_achievable_auc {
        let cells: Vec<String> = report
            .tasks
            .iter()
            .map(|t| match (t.kind, best.get(&t.name)) {
                (TaskKind::Binary, Some(auc)) => format!("{auc:.4}"),
                _ => "–".into(),
            })
            .collect();
        let _ = writeln!(out, "| best achievable (true probabilities) | {} |", cells.join(" | "));
    }
    out
}

pub fn gains_table(report: &ComparisonReport) -> String {
    let mut out = String::new();
    let names: Vec<&str> = report.tasks.iter().map(|t| t.name.as_str()).collect();
    let _ = writeln!(
        out,
        "| architecture | {} | Δm (%) | see-saw (any sign change) | significant see-saw (> 2 SE over seeds) |",
        names.join(" | ")
    );
    let _ = writeln!(out, "|---|{}---|---|---|", "---|".repeat(names.len()));
    for summary in &report.summaries {
        let Some(gains) = &summary.gains else { continue };
        let cells: Vec<String> = names
            .iter()
            .map(|name| {
                gains
                    .tasks
                    .iter()
                    .find(|g| g.task == *name)
                    .map_or("–".into(), |g| format!("{:+.4}", g.gain))
            })
            .collect();
        let verdict = if gains.seesaw {
            let pairs: Vec<String> = gains
                .seesaw_pairs
                .iter()
                .map(|p| format!("{}↑ {}↓", p.improved, p.degraded))
                .collect();
            format!("yes: {}", pairs.join(", "))
        } else {
            "no".into()
        };
        let delta = gains.delta_m_pct.map_or("–".into(), |d| format!("{d:+.2}"));
        let significant = if report.seeds.len() < 2 {
            "– (one seed)".to_string()
        } else if summary.significant_seesaw_pairs.is_empty() {
            "no".into()
        } else {
            let pairs: Vec<String> = summary
                .significant_seesaw_pairs
                .iter()
                .map(|p| format!("{}↑ {}↓", p.improved, p.degraded))
                .collect();
            format!("yes: {}", pairs.join(", "))
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            summary.architecture,
            cells.join(" | "),
            delta,
            verdict,
            significant
        );
    }
    out
}

pub fn markdown(report: &ComparisonReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Multi-task comparison\n");
    let _ = writeln!(
        out,
        "Evaluated on the {} part ({} rows); split sizes {:?}; seeds {:?}. Each cell is the mean ± \
         sample standard deviation over seeds.\n",
        report.evaluated_on, report.rows_evaluated, report.split, report.seeds
    );
    let _ = writeln!(out, "## Primary metric per task (AUC; RMSE for regression)\n");
    out.push_str(&primary_table(report));
    let _ = writeln!(
        out,
        "\n## MTL gain over single-task\n\nGain = M_mtl − M_single (AUC), M_single − M_mtl (RMSE). \
         A see-saw is a pair of tasks whose gains have opposite signs. Δm is the mean relative gain.\n"
    );
    out.push_str(&gains_table(report));
    for metric in ["gauc", "logloss", "accuracy", "mse", "mae", "xauc", "recall_at_3", "ndcg_at_3"]
    {
        let tasks: Vec<&str> = report
            .tasks
            .iter()
            .filter(|t| {
                report
                    .summaries
                    .iter()
                    .any(|s| s.metrics.get(&t.name).is_some_and(|m| m.contains_key(metric)))
            })
            .map(|t| t.name.as_str())
            .collect();
        if tasks.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n## {}\n", metric.to_uppercase());
        let _ = writeln!(out, "| architecture | {} |", tasks.join(" | "));
        let _ = writeln!(out, "|---|{}", "---|".repeat(tasks.len()));
        for summary in &report.summaries {
            let cells: Vec<String> =
                tasks.iter().map(|t| cell(report, &summary.architecture, t, metric)).collect();
            let _ = writeln!(out, "| {} | {} |", summary.architecture, cells.join(" | "));
        }
    }
    let _ = writeln!(
        out,
        "\n## Cost\n\n| architecture | parameters | training seconds (mean) |\n|---|---|---|"
    );
    for s in &report.summaries {
        let _ = writeln!(
            out,
            "| {} | {} | {:.1} |",
            s.architecture, s.num_params, s.mean_train_seconds
        );
    }
    let gated: Vec<_> = report
        .runs
        .iter()
        .filter(|r| !r.gate_utilisation.is_empty() && r.seed == report.seeds[0])
        .collect();
    if !gated.is_empty() {
        let _ = writeln!(
            out,
            "\n## Gate utilisation (seed {}, mean weight per expert)\n",
            report.seeds[0]
        );
        for run in gated {
            for (gate, weights) in &run.gate_utilisation {
                let w: Vec<String> = weights.iter().map(|v| format!("{v:.3}")).collect();
                let _ = writeln!(out, "- {} {}: {}", run.architecture, gate, w.join(" "));
            }
        }
    }
    if let Some(table) = cosine_table(report) {
        let _ = writeln!(
            out,
            "\n## Gradient cosines between tasks (after the last epoch)\n\nThe cosine between two \
             tasks' gradients on the shared parameters, averaged over `gradient_cosine_batches` \
             training batches, then mean ± sd over seeds. Below zero the two tasks pull the shared \
             parameters apart: the mechanism of a see-saw. cosines.svg shows it per epoch.\n"
        );
        out.push_str(&table);
    }
    out.push_str(&crate::cmi_report::markdown_section(report));
    out.push_str(&crate::clip_curve::markdown_section(report));
    out.push_str(&crate::skip_study::markdown_section(report));
    let plots: Vec<String> =
        crate::plots::names(report).iter().map(|name| format!("{name}.svg")).collect();
    let _ = writeln!(out, "\nPlots: {}, each with a PNG of the same name.", plots.join(", "));
    out
}

/// Every pair of tasks that some architecture has a gradient cosine for, in task order.
pub fn cosine_pairs(report: &ComparisonReport) -> Vec<String> {
    let mut pairs = Vec::new();
    for (i, a) in report.tasks.iter().enumerate() {
        for b in &report.tasks[i + 1..] {
            let key = pair_key(&a.name, &b.name);
            if report.summaries.iter().any(|s| s.gradient_cosines.contains_key(&key)) {
                pairs.push(key);
            }
        }
    }
    pairs
}

/// One row per architecture with shared parameters, one column per task pair: the last
/// epoch's gradient cosine, mean ± sd over seeds. `None` when no run has any.
pub fn cosine_table(report: &ComparisonReport) -> Option<String> {
    let pairs = cosine_pairs(report);
    if pairs.is_empty() {
        return None;
    }
    let mut out = String::new();
    // A pair's key is "a|b"; in a table cell it reads "a / b".
    let header: Vec<String> = pairs.iter().map(|p| p.replace('|', " / ")).collect();
    let _ = writeln!(out, "| architecture | {} |", header.join(" | "));
    let _ = writeln!(out, "|---|{}", "---|".repeat(pairs.len()));
    for summary in report.summaries.iter().filter(|s| !s.gradient_cosines.is_empty()) {
        let cells: Vec<String> = pairs
            .iter()
            .map(|pair| match summary.gradient_cosines.get(pair) {
                Some(m) => match m.sd {
                    Some(sd) => format!("{:+.3} ± {:.3}", m.mean, sd),
                    None => format!("{:+.3}", m.mean),
                },
                None => "–".into(),
            })
            .collect();
        let _ = writeln!(out, "| {} | {} |", summary.architecture, cells.join(" | "));
    }
    Some(out)
}
