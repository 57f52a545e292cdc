//! The kill test: `seesaw train` killed with SIGKILL at random moments and at fault points placed
//! between the files of a checkpoint and of the final model save, then resumed with `--resume`
//! until it finishes. Every resumed model must score a log exactly as the uninterrupted run's
//! model does, and no temporary file or staging folder may be left behind.
//!
//! And the gentle end: SIGINT or SIGTERM during `simulate` or `train` removes the temporaries the
//! process was writing before it exits, so nothing is left even before a next run cleans up.

#![cfg(unix)]

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{SHARED_BOTTOM, eval_predictions, seesaw};

const EPOCHS: usize = 4;

fn config(dir: &Path) -> PathBuf {
    let tasks = r#"["click", "like", "watch_ratio"]"#;
    common::small_run_config(dir, "kill", tasks, 0, SHARED_BOTTOM, EPOCHS)
}

fn train(config: &Path, out: &Path, resume: bool) -> Command {
    let mut command = seesaw();
    command.args(["train", "--json", "--config"]).arg(config).arg("--out").arg(out);
    if resume {
        command.arg("--resume");
    }
    command.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::piped());
    command
}

/// Resumes until a run finishes (one resume must do; a second would mean the first failed).
fn resume(config: &Path, out: &Path) {
    let output = train(config, out, true).output().unwrap();
    assert!(
        output.status.success(),
        "resume of {} failed: {}",
        out.display(),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Every file and folder under `out` (and beside it) that a finished run should not have.
fn leftovers(out: &Path) -> Vec<PathBuf> {
    let mut found = temporaries(out);
    // The checkpoint holds its state and the files it names, nothing else.
    let checkpoint = out.join("checkpoint");
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(checkpoint.join("state.json")).unwrap()).unwrap();
    let named: Vec<String> = ["trainable", "optimizer", "best"]
        .iter()
        .filter_map(|k| state["files"][k].as_str().map(str::to_owned))
        .collect();
    for entry in std::fs::read_dir(&checkpoint).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name != "state.json" && !named.contains(&name) {
            found.push(checkpoint.join(name));
        }
    }
    found
}

/// The temporary files and staging folders under `out` and beside it.
fn temporaries(out: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![out.to_owned()];
    while let Some(dir) = stack.pop() {
        // A run stopped before it made `out` has nothing in it to check.
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.starts_with(".seesaw-tmp-") || name.starts_with(".tmp") {
                found.push(path.clone());
            }
            if path.is_dir() {
                stack.push(path);
            }
        }
    }
    // Beside it (the test's own folder, which holds nothing hidden otherwise): any staging
    // folder or temporary file of a save.
    for entry in std::fs::read_dir(out.parent().unwrap()).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap().to_string_lossy().starts_with('.') {
            found.push(path);
        }
    }
    found
}

/// The uninterrupted run every interrupted one must end equal to.
struct Reference {
    config: PathBuf,
    /// The simulated log, scored by each model.
    log: PathBuf,
    /// The uninterrupted model's predictions on `log`.
    expected: Vec<Vec<f64>>,
    /// How long the uninterrupted run took: the span kills are drawn from.
    full_run: Duration,
}

impl Reference {
    fn train(dir: &Path) -> Self {
        let config = config(dir);
        let reference = dir.join("reference");
        let started = Instant::now();
        let output = train(&config, &reference, false).output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let full_run = started.elapsed();
        let log = reference.join("simulator/log_standard_sim.csv");
        let (_, expected) = eval_predictions(&reference, &log, &dir.join("reference.csv"));
        Self { config, log, expected, full_run }
    }
}

/// A small deterministic generator for the kill times (no dependency for one test).
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    *state >> 33
}

#[test]
fn killed_and_resumed_runs_equal_the_uninterrupted_run_and_leave_no_temp_file() {
    let dir = tempfile::tempdir().unwrap();
    let Reference { config, log, expected, full_run } = Reference::train(dir.path());

    let check = |out: &Path, what: &str| {
        let (_, got) = eval_predictions(out, &log, &out.with_extension("csv"));
        assert!(got == expected, "{what}: the resumed model scores differently");
        let left = leftovers(out);
        assert!(left.is_empty(), "{what}: left behind {left:?}");
    };

    // Kills at fault points between the files of a save: each checkpoint file of the first and
    // a later epoch, the commit, and the final model's staging and renames.
    let placed = [
        "checkpoint:trainable@1",
        "checkpoint:optimizer@1",
        "checkpoint:best@1",
        "checkpoint:state@1",
        "checkpoint:trainable@3",
        "checkpoint:optimizer@2",
        "checkpoint:state@3",
        "model:staged@1",
        "model:renamed@1",
        "model:renamed@2",
    ];
    for (i, point) in placed.iter().enumerate() {
        let out = dir.path().join(format!("placed-{i}"));
        let output = train(&config, &out, false).env("SEESAW_FAULT", point).output().unwrap();
        assert!(!output.status.success(), "{point}: the fault point was never reached");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("aborting at"), "{point}: {stderr}");
        resume(&config, &out);
        check(&out, point);
    }

    // Kills at random moments over the length of a whole run.
    let mut seed = 0x5eed;
    for i in 0..20 {
        let out = dir.path().join(format!("random-{i}"));
        let at = Duration::from_millis(next(&mut seed) % (full_run.as_millis() as u64 + 1));
        let mut child = train(&config, &out, false).spawn().unwrap();
        std::thread::sleep(at);
        let _ = child.kill();
        let _ = child.wait();
        resume(&config, &out);
        check(&out, &format!("kill after {at:?}"));
    }
}

fn signal(child: &std::process::Child, signal: i32) {
    // SAFETY: kill(2) on the pid of a child this test spawned and has not yet waited for.
    assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
}

#[test]
fn an_interrupted_simulation_removes_the_files_it_was_writing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sim");
    // Two million impressions: minutes of writing, and 1.3 GB by the disk check's estimate, which
    // refuses a run that would not fit before writing anything.
    let mut child = seesaw()
        .args(["simulate", "--impressions", "2000000", "--out"])
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once the log's temporary file holds data: mid-write, the case that used to leave
    // hundreds of MB behind.
    let deadline = Instant::now() + Duration::from_secs(60);
    let writing = loop {
        let writing = std::fs::read_dir(&out).into_iter().flatten().flatten().any(|e| {
            e.file_name().to_string_lossy().starts_with(".seesaw-tmp-")
                && e.metadata().is_ok_and(|m| m.len() > 1 << 20)
        });
        if writing || Instant::now() > deadline {
            break writing;
        }
        if child.try_wait().unwrap().is_some() {
            let output = child.wait_with_output().unwrap();
            panic!("simulate ended first: {}", String::from_utf8_lossy(&output.stderr));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    signal(&child, libc::SIGINT);
    let output = child.wait_with_output().unwrap();
    assert!(writing, "no temporary file with data appeared within 60 s");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted: removed"), "{stderr}");
    let left = temporaries(&out);
    assert!(left.is_empty(), "left behind {left:?}");
}

#[test]
fn training_stopped_by_sigterm_leaves_no_temporary_and_resumes_to_the_same_model() {
    let dir = tempfile::tempdir().unwrap();
    let Reference { config, log, expected, full_run } = Reference::train(dir.path());

    let mut seed = 0x51_6e;
    for i in 0..6 {
        let out = dir.path().join(format!("stopped-{i}"));
        let at = Duration::from_millis(next(&mut seed) % (full_run.as_millis() as u64 + 1));
        let child = train(&config, &out, false).spawn().unwrap();
        std::thread::sleep(at);
        signal(&child, libc::SIGTERM);
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        // A run that finished before the signal exits 0; one that was stopped exits 128 + 15;
        // one signalled before it set up its handler (the first milliseconds) dies of the
        // signal, having written nothing yet: the checks below hold for all three.
        let died_of_sigterm = output.status.signal() == Some(libc::SIGTERM);
        assert!(
            matches!(output.status.code(), Some(0 | 143)) || died_of_sigterm,
            "stopped after {at:?}: {:?} {stderr}",
            output.status
        );
        // Checked before the resume, which would remove what a stopped run left.
        let left = temporaries(&out);
        assert!(left.is_empty(), "stopped after {at:?}: left behind {left:?}");
        resume(&config, &out);
        let (_, got) = eval_predictions(&out, &log, &out.with_extension("csv"));
        assert!(got == expected, "stopped after {at:?}: the resumed model scores differently");
    }
}
