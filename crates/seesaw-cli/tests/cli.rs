//! The `seesaw` binary as scripts use it.

mod common;

use std::path::PathBuf;

use common::{eval_json, seesaw};

fn kuairand_dir() -> Option<PathBuf> {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/kuairand-pure-slice");
    if dir.join("log_standard_4_25_to_5_04_pure_slice.csv").exists() {
        return Some(dir);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI is set but the shared data is missing at {}",
        dir.display()
    );
    eprintln!("skipped: the KuaiRand slice is not at {}", dir.display());
    None
}

#[test]
fn data_inspect_json_is_the_documented_contract() {
    let Some(dir) = kuairand_dir() else { return };
    let output = seesaw()
        .args(["data", "inspect", "--dataset", "kuairand", "--json", "--log"])
        .arg(dir.join("log_standard_4_25_to_5_04_pure_slice.csv"))
        .arg("--users")
        .arg(dir.join("user_features_pure.csv"))
        .arg("--videos")
        .arg(dir.join("video_features_basic_pure.csv"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("one JSON object on stdout");
    assert_eq!(report["rows_read"], 171_671);
    assert_eq!(report["rows_kept"], 164_286);
    assert_eq!(report["dropped"]["duration_not_positive"], 2_646);
    assert_eq!(report["dropped"]["duplicate_impression"], 4_739);
    assert_eq!(report["users"], 24_076);
    assert_eq!(report["videos"], 6_075);
    let click = report["label_rates"]["click"].as_f64().unwrap();
    assert_eq!(format!("{click:.4}"), "0.4553");
    assert_eq!(format!("{:.4}", report["label_rates_read"]["click"].as_f64().unwrap()), "0.4433");
    for task in ["like", "follow", "comment", "forward", "hate", "long_view", "skip"] {
        let rate = report["label_rates"][task].as_f64().unwrap();
        assert!((0.0..1.0).contains(&rate), "{task}: {rate}");
    }
}

#[test]
fn simulate_writes_the_kuairand_layout_and_reports_the_best_achievable_auc() {
    let dir = tempfile::tempdir().unwrap();
    let output = seesaw()
        .args([
            "simulate",
            "--impressions",
            "20000",
            "--users",
            "300",
            "--videos",
            "150",
            "--json",
            "--out",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["inspect"]["rows_read"], 20_000);
    for file in [
        "log_standard_sim.csv",
        "user_features_sim.csv",
        "video_features_sim.csv",
        "clip_features.csv",
        "truth.csv",
        "sim_config.json",
    ] {
        assert!(dir.path().join(file).exists(), "{file}");
    }
    let click_auc = summary["best_achievable_auc"]["click"].as_f64().unwrap();
    assert!(click_auc > 0.6 && click_auc < 1.0, "{click_auc}");
}

#[test]
fn a_missing_file_is_named_and_nothing_is_printed_to_stdout() {
    let output = seesaw()
        .args(["data", "inspect", "--log", "/nonexistent/log.csv", "--json"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("/nonexistent/log.csv"), "{stderr}");
}

#[test]
fn a_bad_simulator_setting_is_refused_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let output = seesaw()
        .args(["simulate", "--dependence", "1.5", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("dependence"), "{stderr}");
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none(), "nothing written on failure");
}

#[test]
fn serve_refuses_a_zero_count_before_loading_anything() {
    for flag in ["--workers", "--queue", "--max-connections", "--max-candidates"] {
        let output =
            seesaw().args(["serve", "--model", "/nonexistent/model", flag, "0"]).output().unwrap();
        assert!(!output.status.success(), "{flag} 0 was accepted");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(flag) && stderr.contains("at least 1"), "{stderr}");
    }
    let output = seesaw()
        .args(["serve", "--model", "/nonexistent/model", "--idle-timeout-s", "0"])
        .output()
        .unwrap();
    assert!(!output.status.success(), "an idle timeout of 0 s was accepted");
    assert!(String::from_utf8_lossy(&output.stderr).contains("--idle-timeout-s"));
}

/// The small simulated run with three tasks, two epochs.
fn tiny_run_config(dir: &std::path::Path) -> PathBuf {
    let tasks = r#"["click", "like", "watch_ratio"]"#;
    common::small_run_config(dir, "tiny", tasks, 0, common::MMOE, 2)
}

fn train_tiny_model(dir: &std::path::Path) -> PathBuf {
    common::train(&tiny_run_config(dir), dir, "model")
}

#[test]
fn train_writes_a_model_directory_and_eval_reproduces_its_test_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let model = train_tiny_model(dir.path());
    for file in
        ["manifest.json", "model.bpk", "config.toml", "metrics.jsonl", "checkpoint/state.json"]
    {
        assert!(model.join(file).exists(), "{file}");
    }
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(model.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["format_version"], 2);
    assert_eq!(manifest["training"]["evaluated_on"], "test");

    // The test part is the last simulated day: score exactly those rows with `seesaw eval`.
    let log = std::fs::read_to_string(model.join("simulator/log_standard_sim.csv")).unwrap();
    let mut lines = log.lines();
    let header = lines.next().unwrap();
    let rows: Vec<&str> = lines.collect();
    let last_day = rows.iter().map(|r| r.split(',').nth(2).unwrap()).max().unwrap();
    let test_rows: Vec<&str> =
        rows.iter().copied().filter(|r| r.split(',').nth(2) == Some(last_day)).collect();
    let test_log = dir.path().join("test_day.csv");
    std::fs::write(&test_log, format!("{header}\n{}\n", test_rows.join("\n"))).unwrap();
    let eval = eval_json(&model, &test_log);
    assert_eq!(eval["rows"], test_rows.len());
    for (task, metrics) in ["click", "like"].iter().map(|t| (t, ["auc", "gauc", "logloss"])) {
        for metric in metrics {
            let a = eval["tasks"][task][metric].as_f64().unwrap();
            let b = manifest["training"]["evaluation"]["tasks"][task][metric].as_f64().unwrap();
            assert!((a - b).abs() < 1e-6, "{task} {metric}: eval {a} vs train {b}");
        }
    }
    let rmse = eval["tasks"]["watch_ratio"]["rmse"].as_f64().unwrap();
    assert!(
        (rmse
            - manifest["training"]["evaluation"]["tasks"]["watch_ratio"]["rmse"].as_f64().unwrap())
        .abs()
            < 1e-6
    );

    // Users and videos never seen in training are scored through the out-of-vocabulary path.
    let mut fields: Vec<String> = test_rows[0].split(',').map(String::from).collect();
    fields[0] = "987654321".into();
    fields[1] = "123456789".into();
    std::fs::write(
        &test_log,
        format!("{header}\n{}\n{}\n", test_rows.join("\n"), fields.join(",")),
    )
    .unwrap();
    let eval = eval_json(&model, &test_log);
    assert_eq!(eval["rows"], test_rows.len() + 1);
}

#[test]
fn eval_writes_one_prediction_per_scored_row_in_log_order() {
    let dir = tempfile::tempdir().unwrap();
    let model = train_tiny_model(dir.path());
    let log_path = model.join("simulator/log_standard_sim.csv");
    let predictions = dir.path().join("predictions.csv");
    // Small batches: several of them, so the file must be stitched back into log order.
    let output = seesaw()
        .args(["eval", "--json", "--batch-size", "1000", "--model"])
        .arg(&model)
        .arg("--log")
        .arg(&log_path)
        .arg("--predictions")
        .arg(&predictions)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let eval: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("stdout is still one JSON object");
    let rows = eval["rows"].as_u64().unwrap() as usize;

    let text = std::fs::read_to_string(&predictions).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("row,user_id,video_id,click,like,watch_ratio"));
    let lines: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(lines.len(), rows);

    // The simulated log loses no row to cleaning, so every row is scored, in log order.
    let log = std::fs::read_to_string(&log_path).unwrap();
    let log_keys: Vec<(&str, &str)> = log
        .lines()
        .skip(1)
        .map(|l| {
            let mut fields = l.split(',');
            (fields.next().unwrap(), fields.next().unwrap())
        })
        .collect();
    assert_eq!(log_keys.len(), rows);
    for (i, (fields, (user, video))) in lines.iter().zip(&log_keys).enumerate() {
        assert_eq!(fields.len(), 6, "line {i}: {fields:?}");
        assert_eq!(fields[0], i.to_string());
        assert_eq!((fields[1], fields[2]), (*user, *video), "line {i}");
        for (k, cell) in fields[3..].iter().enumerate() {
            let value: f32 = cell.parse().unwrap();
            assert!(value.is_finite(), "line {i}: {cell}");
            // Shortest round-trip form: printing the parsed value gives the same text back.
            assert_eq!(value.to_string(), *cell);
            if k < 2 {
                assert!((0.0..=1.0).contains(&value), "line {i}: probability {value}");
            }
        }
    }

    // A file that cannot be written fails the run and names the file.
    let output = seesaw()
        .args(["eval", "--model"])
        .arg(&model)
        .arg("--log")
        .arg(&log_path)
        .arg("--predictions")
        .arg(dir.path().join("missing/predictions.csv"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("missing/predictions.csv"), "{stderr}");
}

#[test]
fn compare_writes_reports_and_plots() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_run_config(dir.path());
    std::fs::write(
        &config,
        std::fs::read_to_string(&config).unwrap().replace("epochs = 2", "epochs = 1")
            + "\n[compare]\nseeds = [0, 1]\narchitectures = [{ kind = \"shared_bottom\", hidden = [16] }, { kind = \"mmoe\", experts = 2, expert_hidden = [16], gate_temperature = 1.0 }]\n",
    )
    .unwrap();
    let out = dir.path().join("cmp");
    let (report, stdout) = common::compare_report(&config, &out);
    for file in ["report.md", "report.json", "metrics.svg", "gains.svg", "curves.svg", "gates.svg"]
    {
        assert!(out.join(file).exists(), "{file}");
    }
    // Each plot also as PNG, twice the SVG's size, its text drawn with the shipped font.
    for plot in ["metrics", "gains", "curves", "gates", "cosines", "cmi"] {
        let png = std::fs::read(out.join(format!("{plot}.png"))).unwrap();
        assert_eq!(&png[1..4], b"PNG", "{plot}.png");
        let svg = std::fs::read_to_string(out.join(format!("{plot}.svg"))).unwrap();
        let svg_width: u32 =
            svg.split("width=\"").nth(1).unwrap().split('"').next().unwrap().parse().unwrap();
        let png_width = u32::from_be_bytes(png[16..20].try_into().unwrap());
        assert_eq!(png_width, 2 * svg_width, "{plot}.png");
    }
    // single_task is added as the reference; two seeds each.
    assert_eq!(report["runs"].as_array().unwrap().len(), 6);
    let mmoe = report["summaries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["architecture"] == "mmoe")
        .unwrap();
    assert!(mmoe["metrics"]["click"]["auc"]["sd"].is_number(), "two seeds give a spread");
    assert!(mmoe["gains"]["tasks"].as_array().unwrap().len() == 3);
    assert!(report["best_achievable_auc"]["click"].as_f64().unwrap() > 0.5);
    let gates = &report["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["architecture"] == "mmoe")
        .unwrap()["gate_utilisation"];
    let weights: Vec<f64> = gates["level0/task:click"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert!((weights.iter().sum::<f64>() - 1.0).abs() < 1e-4, "{weights:?}");
    assert!(stdout.contains("| mmoe |"), "{stdout}");
    // Every row of every printed table has as many cells as its header.
    for table in stdout.split("\n\n").filter(|t| t.starts_with('|')) {
        let widths: Vec<usize> = table.lines().map(|l| l.matches('|').count()).collect();
        assert!(widths.iter().all(|&w| w == widths[0]), "ragged table:\n{table}");
    }
}

#[test]
fn compare_runs_weighting_variants_and_reports_gradient_cosines() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_run_config(dir.path());
    std::fs::write(
        &config,
        std::fs::read_to_string(&config).unwrap()
            + r#"
[compare]
seeds = [0]
architectures = [{ kind = "mmoe", experts = 2, expert_hidden = [16], gate_temperature = 1.0 }]
variants = [
    { name = "pcgrad", weighting = { kind = "pcgrad" } },
    { name = "gradnorm", weighting = { kind = "gradnorm" } },
    { name = "uw", weighting = { kind = "uncertainty" } },
]
"#,
    )
    .unwrap();
    let out = dir.path().join("cmp");
    let (report, stdout) = common::compare_report(&config, &out);
    let labels: Vec<&str> = report["summaries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["architecture"].as_str().unwrap())
        .collect();
    // The single-task reference has no shared parameters, so no variants.
    assert_eq!(labels, ["single_task", "mmoe", "mmoe+pcgrad", "mmoe+gradnorm", "mmoe+uw"]);
    let runs = report["runs"].as_array().unwrap();
    let run = |label: &str| runs.iter().find(|r| r["architecture"] == label).unwrap();
    let weights = |label: &str| run(label)["history"][1]["task_weights"].clone();
    assert_eq!(weights("mmoe+pcgrad")["click"], 1.0);
    assert_ne!(weights("mmoe+gradnorm")["click"], 1.0, "GradNorm moves the weights");
    assert_ne!(weights("mmoe+uw")["click"], 1.0, "uncertainty weights are learned");
    assert_ne!(run("mmoe")["evaluation"], run("mmoe+pcgrad")["evaluation"]);

    // Cosines per epoch in each run's history, and the last epoch's in the summaries.
    let pairs = ["click|like", "click|watch_ratio", "like|watch_ratio"];
    for label in &labels[1..] {
        for record in run(label)["history"].as_array().unwrap() {
            let cosines = record["gradient_cosines"].as_object().unwrap();
            assert_eq!(cosines.keys().collect::<Vec<_>>(), pairs, "{label}");
        }
        let summary = report["summaries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["architecture"] == *label)
            .unwrap();
        let last = &run(label)["history"][1]["gradient_cosines"];
        for pair in pairs {
            assert_eq!(summary["gradient_cosines"][pair]["mean"], last[pair], "{label} {pair}");
        }
    }
    assert!(run("single_task")["history"][0].get("gradient_cosines").is_none());
    let markdown = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(markdown.contains("## Gradient cosines between tasks"), "{markdown}");
    assert!(markdown.contains("| mmoe+gradnorm |"), "{markdown}");
    assert!(markdown.contains("click / watch_ratio"), "{markdown}");
    let svg = std::fs::read_to_string(out.join("cosines.svg")).unwrap();
    assert!(svg.contains("mmoe+pcgrad") && svg.contains("like / watch_ratio"));
    for table in stdout.split("\n\n").filter(|t| t.starts_with('|')) {
        let widths: Vec<usize> = table.lines().map(|l| l.matches('|').count()).collect();
        assert!(widths.iter().all(|&w| w == widths[0]), "ragged table:\n{table}");
    }
}

#[test]
fn a_model_directory_from_before_the_model_contract_is_refused_with_a_hint_to_retrain() {
    let dir = tempfile::tempdir().unwrap();
    let model = train_tiny_model(dir.path());
    // The manifest as version 1 wrote it: the run config and evaluation at the top level.
    let path = model.join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    manifest["format_version"] = 1.into();
    std::fs::write(&path, manifest.to_string()).unwrap();
    let log = model.join("simulator/log_standard_sim.csv");
    let output =
        seesaw().args(["eval", "--model"]).arg(&model).arg("--log").arg(&log).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("manifest version 1") && stderr.contains("retrain"), "{stderr}");
}

/// Every file and folder a run writes is as readable as the umask allows (0644 and 0755 under
/// umask 022), never tempfile's private 0600 and 0700.
#[cfg(unix)]
#[test]
fn written_files_respect_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let config = common::small_run_config(dir.path(), "umask", r#"["click"]"#, 0, common::MMOE, 1);
    let model = dir.path().join("model");
    let output = std::process::Command::new("sh")
        .args(["-c", "umask 022 && exec \"$0\" \"$@\""])
        .arg(env!("CARGO_BIN_EXE_seesaw"))
        .args(["train", "--json", "--config"])
        .arg(&config)
        .arg("--out")
        .arg(&model)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let mut checked = 0;
    let mut stack = vec![model];
    while let Some(path) = stack.pop() {
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        if path.is_dir() {
            assert_eq!(mode, 0o755, "{}", path.display());
            stack.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else {
            assert_eq!(mode, 0o644, "{}", path.display());
        }
        checked += 1;
    }
    assert!(checked > 8, "the model, its simulator files and its checkpoint: {checked}");
}

/// A sample of one day's log: inspect reads it whole (the default temporal split would leave no
/// training rows) and says so; train refuses it naming the file, the days it holds, and a way out.
#[test]
fn inspecting_one_day_needs_no_split_and_training_on_it_says_why_not() {
    let dir = tempfile::tempdir().unwrap();
    let output = seesaw()
        .args(["simulate", "--impressions", "3000", "--users", "50", "--videos", "40", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let full = std::fs::read_to_string(dir.path().join("log_standard_sim.csv")).unwrap();
    let mut lines = full.lines();
    let header = lines.next().unwrap();
    let date = header.split(',').position(|c| c == "date").expect("a date column");
    let rows: Vec<&str> = lines.collect();
    let first_day = rows[0].split(',').nth(date).unwrap().to_owned();
    let day: Vec<&str> =
        rows.iter().copied().filter(|r| r.split(',').nth(date) == Some(&first_day)).collect();
    assert!(day.len() > 50 && day.len() < rows.len(), "{} of {}", day.len(), rows.len());
    let one_day = dir.path().join("one_day.csv");
    std::fs::write(&one_day, format!("{header}\n{}\n", day.join("\n"))).unwrap();

    let output = seesaw()
        .args(["data", "inspect", "--json", "--log"])
        .arg(&one_day)
        .args(["--users"])
        .arg(dir.path().join("user_features_sim.csv"))
        .args(["--videos"])
        .arg(dir.path().join("video_features_sim.csv"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["rows_read"], day.len());
    assert_eq!(report["split"]["train"], report["rows_kept"]);
    let note = report["split_note"].as_str().unwrap();
    assert!(note.contains("holds 1 day(s)") && note.contains(&first_day), "{note}");

    let config = dir.path().join("one_day.toml");
    std::fs::write(
        &config,
        format!(
            "[dataset]\npreset = \"kuairand\"\n[dataset.log]\npath = {:?}\n[dataset.users]\npath = {:?}\n\
             [dataset.videos]\npath = {:?}\n[dataset.split]\nstrategy = \"temporal\"\nvalid_days = 1\n\
             test_days = 1\n[model]\narchitecture = {}\n",
            one_day.display().to_string(),
            dir.path().join("user_features_sim.csv").display().to_string(),
            dir.path().join("video_features_sim.csv").display().to_string(),
            common::MMOE
        ),
    )
    .unwrap();
    let output = seesaw()
        .args(["train", "--config"])
        .arg(&config)
        .arg("--out")
        .arg(dir.path().join("model"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    for needle in
        ["one_day.csv", "leaves no training rows", "needs at least 3", "strategy = \"random\""]
    {
        assert!(stderr.contains(needle), "{needle} not in {stderr}");
    }
}

/// A model trained from a relative `--config` (whose data paths are relative to it) and a
/// relative `--out` is evaluated from another directory: the manifest holds absolute paths.
#[test]
fn a_model_trained_with_relative_paths_works_from_any_directory() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let output = seesaw()
        .args(["simulate", "--impressions", "3000", "--users", "60", "--videos", "40", "--out"])
        .arg(root.join("data"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    std::fs::create_dir(root.join("configs")).unwrap();
    std::fs::write(
        root.join("configs/relative.toml"),
        format!(
            "[dataset]\npreset = \"kuairand\"\n[dataset.log]\npath = \"../data/log_standard_sim.csv\"\n\
             [dataset.users]\npath = \"../data/user_features_sim.csv\"\n\
             [dataset.videos]\npath = \"../data/video_features_sim.csv\"\n\
             [dataset.labels]\ntasks = [\"click\"]\n\
             [dataset.split]\nstrategy = \"random\"\nvalid_fraction = 0.2\n\
             [model]\nembedding_dim = 4\narchitecture = {}\n[train]\nepochs = 1\n",
            common::MMOE
        ),
    )
    .unwrap();
    let output = seesaw()
        .current_dir(root)
        .args(["train", "--config", "configs/relative.toml", "--out", "models/relative"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let elsewhere = root.join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let output = seesaw()
        .current_dir(&elsewhere)
        .args(["eval", "--json", "--model", "../models/relative", "--log"])
        .arg("../data/log_standard_sim.csv")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["rows"], 3000);
}

/// eval says what cleaning dropped (JSON and stderr) and refuses a log it can score nothing of.
#[test]
fn eval_reports_dropped_rows_and_refuses_to_score_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::train_small_model(dir.path(), "model", 0, common::MMOE);
    let log = std::fs::read_to_string(model.join("simulator/log_standard_sim.csv")).unwrap();
    let mut lines = log.lines();
    let header = lines.next().unwrap();
    let columns: Vec<&str> = header.split(',').collect();
    let play = columns.iter().position(|c| *c == "play_time_ms").unwrap();
    let duration = columns.iter().position(|c| *c == "duration_ms").unwrap();
    let rows: Vec<&str> = lines.collect();
    let edit = |row: &str, column: usize, value: &str| -> String {
        let mut cells: Vec<&str> = row.split(',').collect();
        cells[column] = value;
        cells.join(",")
    };
    let some_nan: Vec<String> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| if i < 30 { edit(r, play, "NaN") } else { r.to_string() })
        .collect();
    let nan_log = dir.path().join("some_nan.csv");
    std::fs::write(&nan_log, format!("{header}\n{}\n", some_nan.join("\n"))).unwrap();
    let output = seesaw()
        .args(["eval", "--json", "--model"])
        .arg(&model)
        .arg("--log")
        .arg(&nan_log)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["rows_read"], rows.len());
    assert_eq!(report["rows"], rows.len() - 30);
    assert_eq!(report["dropped"]["invalid_value"], 30, "{report}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("30 of") && stderr.contains("invalid_value: 30"), "{stderr}");

    let all_dropped: Vec<String> = rows.iter().map(|r| edit(r, duration, "0")).collect();
    let empty_log = dir.path().join("all_dropped.csv");
    std::fs::write(&empty_log, format!("{header}\n{}\n", all_dropped.join("\n"))).unwrap();
    let output = seesaw()
        .args(["eval", "--json", "--model"])
        .arg(&model)
        .arg("--log")
        .arg(&empty_log)
        .output()
        .unwrap();
    assert!(!output.status.success(), "scoring nothing must fail");
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    for needle in ["all_dropped.csv", "no row left to score", "duration_not_positive"] {
        assert!(stderr.contains(needle), "{needle} not in {stderr}");
    }
}

/// Sizes nobody would mean are refused before anything grows: a log with no line breaks
/// (`/dev/zero`), a simulation of more impressions or users than the limits.
#[cfg(unix)]
#[test]
fn endless_lines_and_impossible_sizes_are_refused_with_the_limit_named() {
    let output = seesaw().args(["data", "inspect", "--log", "/dev/zero"]).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("/dev/zero") && stderr.contains("longer than 64 MiB"), "{stderr}");
    let dir = tempfile::tempdir().unwrap();
    for (flag, value, needle) in [
        ("--impressions", "1000000000000", "n_impressions must be at most"),
        ("--users", "4000000000", "n_users must be at most"),
    ] {
        let output =
            seesaw().args(["simulate", flag, value, "--out"]).arg(dir.path()).output().unwrap();
        assert_eq!(output.status.code(), Some(1), "{flag} {value}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(needle) && !stderr.contains("panicked"), "{stderr}");
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nothing was written");
}

/// A simulation interrupted by Ctrl-C or a kill leaves its half-written temporary files; the next
/// simulation into the same folder removes them.
#[test]
fn a_simulation_removes_what_an_interrupted_one_left() {
    let dir = tempfile::tempdir().unwrap();
    let stale = dir.path().join(".seesaw-tmp-AbC123");
    std::fs::write(&stale, vec![b'x'; 4096]).unwrap();
    let output = seesaw()
        .args(["simulate", "--impressions", "2000", "--users", "40", "--videos", "30", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(!stale.exists(), "the interrupted run's temporary file is still there");
    assert!(dir.path().join("log_standard_sim.csv").exists());
}

/// `[compare] skip_strategies`: one table of the skip label defined three ways, each with its
/// base rate, single-task and best multi-task AUC over seeds, and the AUC of duration alone.
#[test]
fn compare_puts_skip_label_strategies_side_by_side() {
    let dir = tempfile::tempdir().unwrap();
    let config = common::small_run_config(
        dir.path(),
        "skips",
        r#"["click", "skip"]"#,
        0,
        common::SHARED_BOTTOM,
        1,
    );
    let text = std::fs::read_to_string(&config).unwrap()
        + r#"
[compare]
seeds = [0, 1]
architectures = [{ kind = "shared_bottom", hidden = [16] }]
skip_strategies = [
    { strategy = "fixed", threshold = 0.3 },
    { strategy = "duration_quantile", buckets = 4, quantile = 0.5 },
    { strategy = "user_median" },
]
[compare.cmi_matrix]
enabled = false
"#;
    std::fs::write(&config, text).unwrap();
    let out = dir.path().join("cmp");
    let (report, _) = common::compare_report(&config, &out);
    let study = report["skip_study"].as_array().unwrap();
    assert_eq!(study.len(), 3);
    let mut rates = Vec::new();
    for row in study {
        let rate = row["base_rate"].as_f64().unwrap();
        assert!(rate > 0.0 && rate < 1.0, "{row}");
        rates.push(rate);
        assert_eq!(row["multi_task"], "shared_bottom");
        for key in ["single_task_auc", "multi_task_auc"] {
            assert!(row[key]["sd"].is_number(), "two seeds give a spread: {row}");
        }
        let duration = row["duration_auc"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&duration), "{row}");
    }
    // A threshold of 0.3 labels fewer skips than the per-user median (about half).
    assert!(rates[0] < rates[2], "{rates:?}");
    let markdown = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(markdown.contains("## Skip label strategies"), "{markdown}");
    assert!(markdown.contains("| fixed, ratio < 0.3 |"), "{markdown}");
}

#[test]
fn train_stream_reads_the_log_from_disk_and_matches_the_in_memory_model() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_run_config(dir.path());
    let in_memory = train_tiny_model(dir.path());
    let streamed = dir.path().join("streamed");
    let output = common::seesaw()
        .args(["train", "--json", "--stream", "--config"])
        .arg(&config)
        .arg("--out")
        .arg(&streamed)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let manifest = |model: &std::path::Path| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(model.join("manifest.json")).unwrap()).unwrap()
    };
    let (a, b) = (manifest(&streamed), manifest(&in_memory));
    assert_eq!(a["training"]["evaluated_on"], "test");
    // One chunk holds the whole simulated log and the shuffle window the whole training part,
    // so both runs see the same batches in the same order: the same model, up to the order in
    // which the normalisers' sums were added.
    let metric = |m: &serde_json::Value, task: &str, name: &str| {
        m["training"]["evaluation"]["tasks"][task][name].as_f64().unwrap()
    };
    for (task, name) in
        [("click", "auc"), ("click", "logloss"), ("like", "auc"), ("watch_ratio", "rmse")]
    {
        let (x, y) = (metric(&a, task, name), metric(&b, task, name));
        assert!((x - y).abs() < 1e-9, "{task} {name}: streamed {x} vs in memory {y}");
    }
    // The streamed model scores a log like any other.
    let log = streamed.join("simulator/log_standard_sim.csv");
    assert!(eval_json(&streamed, &log)["rows"].as_u64().unwrap() > 0);
}
