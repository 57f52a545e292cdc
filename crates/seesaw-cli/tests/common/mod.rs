//! What the binary's integration tests share: the binary, and a small simulated model trained in
//! about a second.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Stdio};

use serde_json::{Value, json};

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

/// `seesaw eval --json` of `model` on `log`: the parsed report (the command must succeed).
pub fn eval_json(model: &Path, log: &Path) -> Value {
    let output =
        seesaw().args(["eval", "--json", "--model"]).arg(model).arg("--log").arg(log).output();
    let output = output.unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
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

/// `seesaw compare --config config --out out` (it must succeed): the parsed report.json and
/// what the command printed.
pub fn compare_report(config: &Path, out: &Path) -> (Value, String) {
    let output =
        seesaw().args(["compare", "--config"]).arg(config).arg("--out").arg(out).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    // Drawing the PNGs is silent (zero-length error bars and zero-height bars once warned, one
    // line each).
    assert!(!stderr.contains("tiny_skia") && !stderr.contains("usvg"), "{stderr}");
    let report = serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    (report, String::from_utf8(output.stdout).unwrap())
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

/// `seesaw eval --predictions` of `log` with `model`: the score columns' names (tasks, then extra
/// scores) and each row's scores.
pub fn eval_predictions(model: &Path, log: &Path, out: &Path) -> (Vec<String>, Vec<Vec<f64>>) {
    let output = seesaw()
        .args(["eval", "--model"])
        .arg(model)
        .arg("--log")
        .arg(log)
        .arg("--predictions")
        .arg(out)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let mut reader = csv::Reader::from_path(out).unwrap();
    let names: Vec<String> = reader.headers().unwrap().iter().skip(3).map(String::from).collect();
    let rows = reader
        .records()
        .map(|r| r.unwrap().iter().skip(3).map(|v| v.parse().unwrap()).collect())
        .collect();
    (names, rows)
}

/// The simulated log's rows as (user_id, video_id, tab), in file order.
pub fn log_rows(model: &Path) -> Vec<(String, String, String)> {
    let mut reader = csv::Reader::from_path(model.join("simulator/log_standard_sim.csv")).unwrap();
    let headers = reader.headers().unwrap().clone();
    let column = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (user, video, tab) = (column("user_id"), column("video_id"), column("tab"));
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[user].to_string(), r[video].to_string(), r[tab].to_string())
        })
        .collect()
}

/// A `seesaw serve` process on a free loopback port, and the address it listens on.
pub struct Server {
    pub child: Child,
    pub stderr: BufReader<ChildStderr>,
    pub addr: SocketAddr,
}

impl Server {
    pub fn spawn(model: &Path) -> Self {
        Self::spawn_with(model, &[])
    }

    /// With further `seesaw serve` arguments.
    pub fn spawn_with(model: &Path, args: &[&str]) -> Self {
        let mut child = seesaw()
            .args(["serve", "--addr", "127.0.0.1:0", "--model"])
            .arg(model)
            .args(args)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        let addr = loop {
            line.clear();
            assert!(stderr.read_line(&mut line).unwrap() > 0, "the server exited before listening");
            if let Some(rest) = line.split("listening on http://").nth(1) {
                break rest.split_whitespace().next().unwrap().parse().unwrap();
            }
        };
        Self { child, stderr, addr }
    }

    /// SIGTERM, then the process must exit 0 after saying it is shutting down.
    pub fn terminate(mut self) {
        let status =
            Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
        let exit = self.child.wait().unwrap();
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut self.stderr, &mut rest).unwrap();
        assert!(exit.success(), "exit {exit:?}: {rest}");
        assert!(rest.contains("shutting down"), "{rest}");
    }
}

/// A test that fails before `terminate` must not leave its server running.
impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Sends the first `n` log rows to the server as per-user requests (at most 200 candidates, each
/// with its row's context) and checks every served score against eval's to 1e-6: tasks under
/// "predictions", extra scores as keys of the candidate. Returns the rows compared and the
/// largest difference; `check` also sees each result with its row.
pub fn compare_served_with_eval(
    addr: SocketAddr,
    rows: &[(String, String, String)],
    names: &[String],
    n_tasks: usize,
    expected: &[Vec<f64>],
    n: usize,
    mut check: impl FnMut(&Value, usize),
) -> (usize, f64) {
    use seesaw_serve::client::HttpClient;
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let mut client = HttpClient::connect(addr).await.unwrap();
        let mut by_user: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, (user, _, _)) in rows.iter().enumerate().take(n) {
            by_user.entry(user.as_str()).or_default().push(i);
        }
        let (mut compared, mut worst) = (0, 0.0f64);
        for (user, indices) in by_user {
            for chunk in indices.chunks(200) {
                // Candidates of a tab side by side; the first tab is the request's context and
                // its candidates bring none of their own, the others each bring theirs: row
                // groups of the request's context and of candidates' own, one after another.
                let mut chunk = chunk.to_vec();
                chunk.sort_by_key(|&i| &rows[i].2);
                let request_tab = &rows[chunk[0]].2;
                let candidates: Vec<Value> = chunk
                    .iter()
                    .map(|&i| match &rows[i].2 {
                        tab if tab == request_tab => json!({"video_id": rows[i].1}),
                        tab => json!({"video_id": rows[i].1, "context": {"tab": tab}}),
                    })
                    .collect();
                let body = json!({"user_id": user, "context": {"tab": request_tab},
                    "candidates": candidates})
                .to_string();
                let response = client.post_json("/v1/score", body.into()).await.unwrap();
                let answer: Value = serde_json::from_slice(&response.body).unwrap();
                assert_eq!(response.status, 200, "{answer}");
                let results = answer["results"].as_array().unwrap();
                assert_eq!(results.len(), chunk.len());
                let scores: Vec<f64> =
                    results.iter().map(|r| r["fused_score"].as_f64().unwrap()).collect();
                assert!(scores.windows(2).all(|w| w[0] >= w[1]), "sorted best first");
                for result in results {
                    let row = chunk[result["index"].as_u64().unwrap() as usize];
                    assert_eq!(result["video_id"], rows[row].1);
                    for (k, name) in names.iter().enumerate() {
                        let served =
                            if k < n_tasks { &result["predictions"][name] } else { &result[name] };
                        let served =
                            served.as_f64().unwrap_or_else(|| panic!("no {name} in {result}"));
                        let difference = (served - expected[row][k]).abs();
                        worst = worst.max(difference);
                        assert!(
                            difference < 1e-6,
                            "row {row} {name}: served {served}, eval {}",
                            expected[row][k]
                        );
                    }
                    check(result, row);
                    compared += 1;
                }
            }
        }
        (compared, worst)
    })
}
