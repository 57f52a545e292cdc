//! Data-parallel `seesaw train` under an MPI launcher. Without the `distributed` feature the
//! binary must refuse a launch (a faked Open MPI environment stands in for mpirun); with it,
//! `mpirun -n 2` must train the model one process trains. The mpirun tests need Open MPI
//! (`.ci/run` installs it) and are built with the feature only.

mod common;

use common::seesaw;

const TASKS: &str = r#"["click", "like", "watch_ratio"]"#;
const MMOE: &str =
    r#"{ kind = "mmoe", experts = 2, expert_hidden = [16], gate_temperature = 1.0 }"#;

#[cfg(not(feature = "distributed"))]
#[test]
fn a_build_without_mpi_refuses_to_train_under_a_launcher() {
    use common::small_run_config;

    let dir = tempfile::tempdir().unwrap();
    let config = small_run_config(dir.path(), "run", TASKS, 1, MMOE, 1);
    let out = dir.path().join("model");
    let output = seesaw()
        .args(["train", "--config"])
        .arg(&config)
        .arg("--out")
        .arg(&out)
        .env("OMPI_COMM_WORLD_RANK", "1")
        .env("OMPI_COMM_WORLD_SIZE", "2")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("rank 1 of 2") && stderr.contains("--features distributed"),
        "{stderr}"
    );
    assert!(!out.exists(), "nothing is written");
}

#[test]
fn commands_other_than_train_refuse_several_ranks() {
    let dir = tempfile::tempdir().unwrap();
    let output = seesaw()
        .args(["compare", "--out"])
        .arg(dir.path().join("report"))
        .env("OMPI_COMM_WORLD_RANK", "0")
        .env("OMPI_COMM_WORLD_SIZE", "2")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("`seesaw compare` runs in one process"), "{stderr}");
    assert!(!dir.path().join("report").exists());
}

/// The mpirun tests: built with the feature only, so that the default test command needs no MPI.
#[cfg(feature = "distributed")]
mod under_mpirun {
    use std::path::Path;

    use serde_json::Value;

    use super::common::{self, small_run_config};
    use super::{MMOE, TASKS};

    /// `mpirun` with the flags a container's root user on a small machine needs.
    fn mpirun(ranks: usize) -> std::process::Command {
        let mut command = std::process::Command::new("mpirun");
        command.args(["--allow-run-as-root", "--oversubscribe", "-n", &ranks.to_string()]);
        command.arg(env!("CARGO_BIN_EXE_seesaw"));
        command
    }

    fn test_metrics(model: &Path) -> Value {
        let manifest = std::fs::read_to_string(model.join("manifest.json")).unwrap();
        let manifest: Value = serde_json::from_str(&manifest).unwrap();
        manifest["training"]["evaluation"]["tasks"].clone()
    }

    #[test]
    fn two_ranks_under_mpirun_train_the_model_one_process_trains() {
        let dir = tempfile::tempdir().unwrap();
        let config = small_run_config(dir.path(), "run", TASKS, 3, MMOE, 2);
        let alone = common::train(&config, dir.path(), "alone");
        let out = dir.path().join("two");
        let output =
            mpirun(2).args(["train", "--config"]).arg(&config).arg("--out").arg(&out).output();
        let output = output.unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}");
        assert!(stderr.contains("on 2 ranks"), "{stderr}");
        // One model directory, written once (by rank 0).
        assert_eq!(String::from_utf8_lossy(&output.stdout).matches("wrote ").count(), 1);
        let (one, two) = (test_metrics(&alone), test_metrics(&out));
        for task in ["click", "like"] {
            let (a, b) = (one[task]["auc"].as_f64().unwrap(), two[task]["auc"].as_f64().unwrap());
            assert!((a - b).abs() < 1e-4, "{task}: AUC {a} in one process, {b} on two ranks");
        }
        let (a, b) = (
            one["watch_ratio"]["rmse"].as_f64().unwrap(),
            two["watch_ratio"]["rmse"].as_f64().unwrap(),
        );
        assert!((a - b).abs() < 1e-4, "watch_ratio: RMSE {a} in one process, {b} on two ranks");
    }

    /// A launch of `seesaw` where rank 1 arms `fault` (`SEESAW_FAULT`) and rank 0 does not.
    fn faulty_rank_one(dir: &Path, fault: &str) -> std::process::Command {
        let script = dir.join("rank-one-faulty.sh");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\nif [ \"$OMPI_COMM_WORLD_RANK\" = 1 ]; then export SEESAW_FAULT='{fault}'; \
                 fi\nexec '{}' \"$@\"\n",
                env!("CARGO_BIN_EXE_seesaw")
            ),
        )
        .unwrap();
        let mut command = std::process::Command::new("mpirun");
        command.args(["--allow-run-as-root", "--oversubscribe", "-n", "2", "sh"]).arg(script);
        command
    }

    /// `--stream` reads the log every epoch on every rank; two ranks still train one process's
    /// streamed model.
    #[test]
    fn two_streaming_ranks_train_the_model_one_streaming_process_trains() {
        let dir = tempfile::tempdir().unwrap();
        let config = small_run_config(dir.path(), "run", TASKS, 4, MMOE, 2);
        let train = |ranks: usize, out: &Path| {
            let output = mpirun(ranks)
                .args(["train", "--stream", "--config"])
                .arg(&config)
                .arg("--out")
                .arg(out)
                .output()
                .unwrap();
            assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
            test_metrics(out)
        };
        let (one, two) = (train(1, &dir.path().join("one")), train(2, &dir.path().join("two")));
        for (task, metric) in [("click", "auc"), ("like", "auc"), ("watch_ratio", "rmse")] {
            let (a, b) = (one[task][metric].as_f64().unwrap(), two[task][metric].as_f64().unwrap());
            assert!((a - b).abs() < 1e-4, "{task}: {metric} {a} in one process, {b} on two ranks");
        }
    }

    /// A simulated log converted to a Parquet directory partitioned by date, and a run config
    /// reading it (ranks under mpirun read it in shards).
    fn parquet_run_config(dir: &Path, epochs: usize) -> std::path::PathBuf {
        let sim = dir.join("sim");
        let simulated = common::seesaw()
            .args(["simulate", "--users", "300", "--videos", "150", "--impressions", "40000"])
            .arg("--out")
            .arg(&sim)
            .output()
            .unwrap();
        assert!(simulated.status.success(), "{}", String::from_utf8_lossy(&simulated.stderr));
        let log = dir.join("log");
        let converted = common::seesaw()
            .args(["data", "convert", "--partition-by", "date", "--log"])
            .arg(sim.join("log_standard_sim.csv"))
            .arg("--out")
            .arg(&log)
            .output()
            .unwrap();
        assert!(converted.status.success(), "{}", String::from_utf8_lossy(&converted.stderr));
        let config = dir.join("parquet.toml");
        let path = |p: &Path| p.display().to_string();
        std::fs::write(
            &config,
            format!(
                r#"
[dataset]
preset = "kuairand"
[dataset.log]
path = "{}"
[dataset.users]
path = "{}"
[dataset.videos]
path = "{}"
[dataset.labels]
tasks = {TASKS}
[dataset.split]
strategy = "temporal"
valid_days = 1
test_days = 1

[model]
embedding_dim = 4
architecture = {MMOE}

[train]
epochs = {epochs}
batch_size = 256
seed = 3
"#,
                path(&log),
                path(&sim.join("user_features_sim.csv")),
                path(&sim.join("video_features_sim.csv")),
            ),
        )
        .unwrap();
        config
    }

    fn train_streamed(command: &mut std::process::Command, config: &Path, out: &Path) -> String {
        let output = command
            .args(["train", "--stream", "--config"])
            .arg(config)
            .arg("--out")
            .arg(out)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "{stderr}");
        stderr
    }

    /// Each rank streams only its shard of a Parquet log: the batches differ from one
    /// process's (other rows share a batch), so the model is not the same one, but it must be
    /// as good, and the metrics are over every rank's test rows.
    #[test]
    fn ranks_streaming_their_shards_of_a_parquet_log_train_as_well_as_one_process() {
        let dir = tempfile::tempdir().unwrap();
        let config = parquet_run_config(dir.path(), 2);
        let (one, two) = (dir.path().join("one"), dir.path().join("two"));
        train_streamed(&mut mpirun(1), &config, &one);
        let stderr = train_streamed(&mut mpirun(2), &config, &two);
        assert!(stderr.contains("on 2 ranks, each reading its shard"), "{stderr}");
        let (one, two) = (test_metrics(&one), test_metrics(&two));
        assert_eq!(one["click"]["n"], two["click"]["n"], "both score every test row");
        for task in ["click", "like"] {
            let (a, b) = (one[task]["auc"].as_f64().unwrap(), two[task]["auc"].as_f64().unwrap());
            assert!((a - b).abs() < 0.03, "{task}: AUC {a} in one process, {b} on two shards");
        }
    }

    /// Shards are dealt from the files' row counts alone, so a resumed sharded run reads what
    /// the killed one read and finishes with the uninterrupted run's model.
    #[test]
    fn a_sharded_run_killed_mid_run_resumes_to_the_uninterrupted_model() {
        let dir = tempfile::tempdir().unwrap();
        let config = parquet_run_config(dir.path(), 3);
        let full = dir.path().join("full");
        train_streamed(&mut mpirun(2), &config, &full);
        let out = dir.path().join("killed");
        let mut killed = faulty_rank_one(dir.path(), "train:step@60");
        let killed = killed.args(["train", "--stream", "--config"]).arg(&config).arg("--out");
        assert!(!killed.arg(&out).output().unwrap().status.success());
        let mut resume = mpirun(2);
        resume.args(["train", "--stream", "--resume", "--config"]).arg(&config).arg("--out");
        let resumed = resume.arg(&out).output().unwrap();
        assert!(resumed.status.success(), "{}", String::from_utf8_lossy(&resumed.stderr));
        assert_eq!(test_metrics(&full), test_metrics(&out), "the resumed model differs");
    }

    #[test]
    fn a_rank_that_hangs_ends_the_job_with_the_waiting_rank_and_step_named() {
        let dir = tempfile::tempdir().unwrap();
        let config = small_run_config(dir.path(), "run", TASKS, 1, MMOE, 2);
        let started = std::time::Instant::now();
        let output = faulty_rank_one(dir.path(), "hang:train:step@5")
            .args(["train", "--rank-timeout", "5", "--config"])
            .arg(&config)
            .arg("--out")
            .arg(dir.path().join("model"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{stderr}");
        assert!(stderr.contains("rank 0 of 2") && stderr.contains("epoch 1 step 5"), "{stderr}");
        assert!(started.elapsed().as_secs() < 60, "took {:?}", started.elapsed());
    }

    #[test]
    fn a_rank_killed_mid_run_ends_the_job_and_resume_finishes_the_uninterrupted_model() {
        let dir = tempfile::tempdir().unwrap();
        let config = small_run_config(dir.path(), "run", TASKS, 5, MMOE, 3);
        let full = dir.path().join("full");
        let output =
            mpirun(2).args(["train", "--config"]).arg(&config).arg("--out").arg(&full).output();
        assert!(output.unwrap().status.success());
        // Killed in the second epoch (an epoch of this run is 22 steps).
        let out = dir.path().join("killed");
        let train = |resume: bool, command: &mut std::process::Command| {
            command.args(["train", "--config"]).arg(&config).arg("--out").arg(&out);
            if resume {
                command.arg("--resume");
            }
            command.output().unwrap()
        };
        let killed = train(false, &mut faulty_rank_one(dir.path(), "train:step@30"));
        assert!(!killed.status.success());
        let resumed = train(true, &mut mpirun(2));
        assert!(resumed.status.success(), "{}", String::from_utf8_lossy(&resumed.stderr));
        assert_eq!(test_metrics(&full), test_metrics(&out), "the resumed model differs");
    }
}
