//! `seesaw cmi` end to end: the JSON it promises, for both samplers, and a clear refusal for a
//! model without a shared representation; the simulator's true CMI file beside it.

mod common;

use common::{MMOE, seesaw, train_small_model};

#[test]
fn cmi_prints_every_task_pair_with_an_interval() {
    let dir = tempfile::tempdir().unwrap();
    let model = train_small_model(dir.path(), "mmoe", 0, MMOE);
    let log = model.join("simulator").join("log_standard_sim.csv");
    for sampler in ["kernel", "variational"] {
        let output = seesaw()
            .args(["cmi", "--json", "--sampler", sampler, "--bootstrap", "50", "--model"])
            .arg(&model)
            .arg("--log")
            .arg(&log)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        let keys: Vec<&String> = report.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["pairs", "rows", "sampler"]);
        assert_eq!(report["sampler"], sampler);
        let rows = report["rows"].as_u64().unwrap();
        assert!((7000..=8000).contains(&rows), "{rows} of the log's 8000 rows");
        let pairs = report["pairs"].as_array().unwrap();
        // click, like, hate, watch_ratio: six unordered pairs, in task order.
        assert_eq!(pairs.len(), 6);
        assert_eq!((pairs[0]["a"].as_str(), pairs[0]["b"].as_str()), (Some("click"), Some("like")));
        for p in pairs {
            let (cmi, low, high) = (
                p["cmi"].as_f64().unwrap(),
                p["low"].as_f64().unwrap(),
                p["high"].as_f64().unwrap(),
            );
            assert!(low <= cmi && cmi <= high && cmi.abs() < 1.0, "{p}");
        }
    }
    // The simulator published the truth to compare with.
    let truth: serde_json::Value = serde_json::from_slice(
        &std::fs::read(model.join("simulator").join("true_cmi.json")).unwrap(),
    )
    .unwrap();
    assert!(
        truth["pairs"].as_array().unwrap().iter().any(|p| p["a"] == "click" && p["b"] == "like")
    );
}

#[test]
fn cmi_refuses_a_model_without_a_shared_representation() {
    let dir = tempfile::tempdir().unwrap();
    let model =
        train_small_model(dir.path(), "single", 0, r#"{ kind = "single_task", hidden = [8] }"#);
    let log = model.join("simulator").join("log_standard_sim.csv");
    let output =
        seesaw().args(["cmi", "--model"]).arg(&model).arg("--log").arg(&log).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no shared representation"), "{stderr}");
}
