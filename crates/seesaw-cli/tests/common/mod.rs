//! What the binary's integration tests share: the binary, and a small simulated model trained in
//! about a second.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn seesaw() -> Command {
    Command::new(env!("CARGO_BIN_EXE_seesaw"))
}

/// Trains a small simulated run into `dir/<name>` and returns the model directory; the simulated
/// log it trained on is in `simulator/` inside it. `architecture` is a TOML inline table.
pub fn train_small_model(dir: &Path, name: &str, seed: u64, architecture: &str) -> PathBuf {
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
tasks = ["click", "like", "hate", "watch_ratio"]
[dataset.split]
strategy = "temporal"
valid_days = 1
test_days = 1

[model]
embedding_dim = 4
architecture = {architecture}

[train]
epochs = 1
batch_size = 256
seed = {seed}
"#
        ),
    )
    .unwrap();
    let model = dir.join(name);
    let output = seesaw()
        .args(["train", "--json", "--config"])
        .arg(&config)
        .arg("--out")
        .arg(&model)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    model
}

pub const MMOE: &str =
    r#"{ kind = "mmoe", experts = 2, expert_hidden = [16], gate_temperature = 1.0 }"#;
pub const SHARED_BOTTOM: &str = r#"{ kind = "shared_bottom", hidden = [16] }"#;
