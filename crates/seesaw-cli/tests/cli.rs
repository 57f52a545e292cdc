//! The `seesaw` binary as scripts use it.

use std::path::PathBuf;
use std::process::Command;

fn seesaw() -> Command {
    Command::new(env!("CARGO_BIN_EXE_seesaw"))
}

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
