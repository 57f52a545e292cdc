//! DLEN end to end on the simulator: trains with its emotion term logged by name, `eval --json`
//! adds exactly the "emotion" and "demotion" objects scripts read, `eval --predictions` writes an
//! `emotion` column, and the server returns "emotion" per candidate equal to eval's to 1e-6, its
//! default fusion weighing it.

mod common;

use common::{
    Server, compare_served_with_eval, eval_json, eval_predictions, log_rows, small_run_config,
    train,
};

const TASKS: &str = r#"["click", "like", "follow", "long_view", "hate", "watch_ratio"]"#;

#[test]
fn a_dlen_model_trains_reports_its_emotion_and_serves_it_as_eval_scores_it() {
    let dir = tempfile::tempdir().unwrap();
    let dlen = r#"{ kind = "dlen", gamma = 0.5, base = { kind = "mmoe", experts = 2, expert_hidden = [16], gate_temperature = 1.0 } }"#;
    let config = small_run_config(dir.path(), "dlen", TASKS, 0, dlen, 2);
    let model = train(&config, dir.path(), "dlen");

    let metrics = std::fs::read_to_string(model.join("metrics.jsonl")).unwrap();
    for line in metrics.lines() {
        let epoch: serde_json::Value = serde_json::from_str(line).unwrap();
        let term = epoch["auxiliary_loss"]["emotion"].as_f64().expect("emotion term logged");
        assert!(term.is_finite() && term > 0.0, "{epoch}");
    }

    let log = model.join("simulator/log_standard_sim.csv");
    let report = eval_json(&model, &log);
    let keys = |v: &serde_json::Value| -> Vec<String> {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(&report), ["demotion", "dropped", "emotion", "rows", "rows_read", "tasks"]);
    assert_eq!(keys(&report["emotion"]), ["auc_confident", "auc_like_vs_hate"]);
    assert_eq!(
        keys(&report["demotion"]),
        [
            "engagement_rate",
            "engagement_rate_without_emotion",
            "hate_rate",
            "hate_rate_without_emotion",
            "top_fraction"
        ]
    );
    assert_eq!(report["demotion"]["top_fraction"], 0.1);
    let auc = report["emotion"]["auc_confident"].as_f64().unwrap();
    assert!(auc > 0.5 && auc <= 1.0, "e learnt nothing on the confident rows: {auc}");
    for key in ["hate_rate", "hate_rate_without_emotion", "engagement_rate"] {
        let rate = report["demotion"][key].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&rate), "{key} {rate}");
    }

    let (names, expected) = eval_predictions(&model, &log, &dir.path().join("predictions.csv"));
    assert_eq!(names.last().map(String::as_str), Some("emotion"));
    let n_tasks = names.len() - 1;
    assert!(expected.iter().all(|r| (0.0..=1.0).contains(&r[n_tasks])), "e is a probability");

    let rows = log_rows(&model);
    let server = Server::spawn(&model);
    let (compared, worst) =
        compare_served_with_eval(server.addr, &rows, &names, n_tasks, &expected, 400, |r, row| {
            // The default fusion of a DLEN model: every positive task and e weigh 1, hate demotes.
            let p = |name: &str| expected[row][names.iter().position(|n| n == name).unwrap()];
            let base = ["click", "like", "follow", "long_view", "watch_ratio", "emotion"]
                .iter()
                .map(|n| p(n))
                .sum::<f64>();
            let by_hand = base * (1.0 - p("hate"));
            let fused = r["fused_score"].as_f64().unwrap();
            assert!((fused - by_hand).abs() < 1e-5, "fused {fused}, by hand {by_hand}");
        });
    eprintln!(
        "{compared} rows compared with seesaw eval, emotion included; largest difference {worst:e}"
    );
    assert_eq!(compared, 400);
    server.terminate();
}
