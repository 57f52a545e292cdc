//! The model contract end to end: the contract probe (seesaw-models/src/models/contract_probe.rs,
//! compiled into the test builds only) has fitted state, an auxiliary loss term and an extra
//! named score. Nothing outside its file and its registry line knows it, yet it trains (its term
//! logged by name), is evaluated (its score a column of `eval --predictions`), is served (its
//! score in every candidate, usable in fusion) and served scores equal eval's.

mod common;

use common::{
    Server, compare_served_with_eval, eval_predictions, log_rows, small_run_config, train,
};

#[test]
fn a_model_with_fitted_state_an_auxiliary_loss_and_an_extra_score_goes_through_train_eval_serve() {
    let dir = tempfile::tempdir().unwrap();
    let tasks = r#"["click", "like", "hate", "watch_ratio"]"#;
    let probe = r#"{ kind = "contract_probe", hidden = [16], aux_weight = 0.5 }"#;
    let config = small_run_config(dir.path(), "probe", tasks, 0, probe, 2);
    // A fusion that weighs the extra score: the server must resolve it against the model's scores.
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(
        "\n[fusion]\nmethod = \"weighted_sum\"\nweights = { click = 1.0, probe = 2.0 }\n",
    );
    std::fs::write(&config, text).unwrap();
    let model = train(&config, dir.path(), "probe");

    // Train: the auxiliary term is logged by name every epoch; the fitted state is saved.
    let metrics = std::fs::read_to_string(model.join("metrics.jsonl")).unwrap();
    let epochs: Vec<serde_json::Value> =
        metrics.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(epochs.len(), 2);
    for epoch in &epochs {
        let term = epoch["auxiliary_loss"]["probe_bce"].as_f64().expect("probe_bce logged");
        assert!(term.is_finite() && term > 0.0, "{epoch}");
    }
    let fitted: serde_json::Value =
        serde_json::from_slice(&std::fs::read(model.join("fitted_state.json")).unwrap()).unwrap();
    let rate = fitted["positive_rate"].as_f64().unwrap();
    assert!(fitted["rows"].as_u64().unwrap() > 1000 && rate > 0.0 && rate < 1.0, "{fitted}");

    // Eval: the extra score is a column after the tasks.
    let log = model.join("simulator/log_standard_sim.csv");
    let (names, expected) = eval_predictions(&model, &log, &dir.path().join("predictions.csv"));
    assert_eq!(names, ["click", "like", "hate", "watch_ratio", "probe"]);
    assert!(expected.iter().all(|r| (0.0..=1.0).contains(&r[4])), "probe is a probability");

    // Serve: every candidate carries "probe", equal to eval's, and the model's fusion uses it.
    let rows = log_rows(&model);
    let server = Server::spawn(&model);
    let (compared, worst) =
        compare_served_with_eval(server.addr, &rows, &names, 4, &expected, 600, |result, row| {
            let fused = result["fused_score"].as_f64().unwrap();
            let by_hand = expected[row][0] + 2.0 * expected[row][4];
            assert!((fused - by_hand).abs() < 1e-5, "fused {fused}, click + 2 probe {by_hand}");
        });
    eprintln!(
        "{compared} rows compared with seesaw eval (tasks and probe); largest difference {worst:e}"
    );
    assert_eq!(compared, 600);
    server.terminate();
}

#[test]
fn a_fusion_naming_an_unknown_score_is_refused_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let tasks = r#"["click", "like"]"#;
    let probe = r#"{ kind = "contract_probe", hidden = [8] }"#;
    let config = small_run_config(dir.path(), "typo", tasks, 0, probe, 1);
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("\n[fusion]\nweights = { click = 1.0, probz = 1.0 }\n");
    std::fs::write(&config, text).unwrap();
    let out = dir.path().join("typo");
    let output = common::seesaw()
        .args(["train", "--config"])
        .arg(&config)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("[fusion]") && stderr.contains("probz"), "{stderr}");
    // The model's own extra score is offered, and nothing was trained.
    assert!(stderr.contains("probe"), "{stderr}");
    assert!(!out.join("metrics.jsonl").exists(), "refused before the first epoch");
}
