//! What the binary's integration tests share: the binary, and a small simulated model trained in
//! about a second.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn seesaw() -> Command {
    Command::new(env!("CARGO_BIN_EXE_seesaw"))
}

/// A small simulated run config (trains in about a second), written to `dir/<name>.toml`.
/// `architecture` is a TOML inline table; `tasks` a TOML array of task names.
pub fn small_run_config(
    dir: &Path,
    name: &str,
    tasks: &str,
    seed: u64,
    architecture: &str,
    epochs: usize,
) -> PathBuf {
    let config = dir.join(format!("{name}.toml"));
    std::fs::write(
        &config,
        format!(
            r#"
[simulator]
n_users = 200
n_videos = 100
n_impressions = 8000

[dataset]
preset = "kuairand"
[dataset.labels]
tasks = {tasks}
[dataset.split]
strategy = "temporal"
valid_days = 1
test_days = 1

[model]
embedding_dim = 4
architecture = {architecture}

[train]
epochs = {epochs}
batch_size = 256
seed = {seed}
"#
        ),
    )
    .unwrap();
    config
}

/// Trains `config` into `dir/<name>` and returns the model directory; the simulated log it
/// trained on is in `simulator/` inside it.
pub fn train(config: &Path, dir: &Path, name: &str) -> PathBuf {
    let model = dir.join(name);
    let output = seesaw()
        .args(["train", "--json", "--config"])
        .arg(config)
        .arg("--out")
        .arg(&model)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    model
}

/// One epoch of the small run with four tasks (a negative one, hate, among them).
pub fn train_small_model(dir: &Path, name: &str, seed: u64, architecture: &str) -> PathBuf {
    let tasks = r#"["click", "like", "hate", "watch_ratio"]"#;
    let config = small_run_config(dir, name, tasks, seed, architecture, 1);
    train(&config, dir, name)
}

pub const MMOE: &str =
    r#"{ kind = "mmoe", experts = 2, expert_hidden = [16], gate_temperature = 1.0 }"#;
pub const SHARED_BOTTOM: &str = r#"{ kind = "shared_bottom", hidden = [16] }"#;
