//! The training loop end to end on a small simulated KuaiRand-layout dataset: reproducibility,
//! learning, resume, checkpoint files, early stopping, task weighting and partial labels.
//!
//! burn's Flex backend keeps one process-wide RNG (seeded by `train`, drawn from when parameters
//! are initialised), so two trainings running at once on the test harness's threads would
//! interleave their draws. Every test holds `serial()` for its whole body.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, OnceLock};

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use seesaw_data::dataset::{LabelColumn, PreparedDataset, prepare};
use seesaw_data::log::FLAG_MISSING;
use seesaw_data::presets::preset;
use seesaw_data::spec::SplitSpec;
use seesaw_data::split::Part;
use seesaw_models::loss::task_loss;
use seesaw_models::models::MmoeConfig;
use seesaw_models::targets::TaskTargets;
use seesaw_models::{
    Architecture, ModelConfig, ModelContext, MultiTaskModel, Network, OutputKind, RegressionHead,
    TaskOutput,
};
use seesaw_sim::{Platform, SimConfig, SimFiles, write_kuairand};
use seesaw_train::collective::InProcessRanks;
use seesaw_train::config::{EarlyStopping, EmbeddingUpdates, MonitorTerm};
use seesaw_train::data_parallel::{materialize_parameters, parameter_hash, parameter_values};
use seesaw_train::evaluate::{Evaluation, predict, score};
use seesaw_train::trainer::{self, METRICS_FILE, NoObserver};
use seesaw_train::weighting::TaskWeighting;
use seesaw_train::{
    EpochRecord, TrainConfig, TrainObserver, TrainOutcome, evaluate, train, train_on_ranks,
};

const TASKS: [&str; 3] = ["click", "like", "watch_ratio"];

static RNG_LOCK: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    RNG_LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

struct Fixture {
    _dir: tempfile::TempDir,
    files: SimFiles,
    data: PreparedDataset,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let config = SimConfig {
            seed: 11,
            n_users: 300,
            n_videos: 150,
            n_impressions: 20_000,
            ..SimConfig::default()
        };
        let files = write_kuairand(&Platform::new(&config).unwrap(), dir.path()).unwrap();
        let data = prepare_from(&files);
        Fixture { _dir: dir, files, data }
    })
}

fn prepare_from(files: &SimFiles) -> PreparedDataset {
    let mut spec = preset("kuairand").unwrap();
    spec.log.path = Some(files.log.clone());
    spec.users.as_mut().unwrap().path = Some(files.user_features.clone());
    spec.videos.as_mut().unwrap().path = Some(files.video_features.clone());
    spec.clips = None;
    spec.labels.tasks = Some(TASKS.iter().map(|t| t.to_string()).collect());
    spec.split =
        SplitSpec::Temporal { train_end: None, valid_end: None, valid_days: 1, test_days: 1 };
    let data = prepare(&spec).unwrap();
    assert!(!data.split.train.is_empty() && !data.split.valid.is_empty());
    data
}

fn data() -> &'static PreparedDataset {
    &fixture().data
}

/// A small MMoE, so that an epoch takes a fraction of a second in the test profile.
fn model_config() -> ModelConfig {
    ModelConfig {
        architecture: Architecture::Mmoe(MmoeConfig {
            experts: 2,
            expert_hidden: vec![32],
            gate_temperature: 1.0,
        }),
        embedding_dim: 8,
        tower_hidden: vec![16],
        regression_head: RegressionHead::Sigmoid,
        cmi: None,
    }
}

fn train_config(epochs: usize) -> TrainConfig {
    TrainConfig {
        epochs,
        batch_size: 256,
        eval_batch_size: 4096,
        learning_rate: 3e-3,
        seed: 7,
        max_steps_per_epoch: Some(25),
        early_stopping: EarlyStopping { monitor: Vec::new(), patience: 100 },
        ..TrainConfig::default()
    }
}

fn run(config: &TrainConfig) -> TrainOutcome {
    train(config, &model_config(), data(), None, false, &mut NoObserver).unwrap()
}

/// Everything of an epoch record except the wall-clock fields.
type Numbers =
    (usize, usize, BTreeMap<String, f64>, BTreeMap<String, f64>, Evaluation, Option<f64>, f64);

fn numbers(history: &[EpochRecord]) -> Vec<Numbers> {
    history
        .iter()
        .map(|r| {
            (
                r.epoch,
                r.steps,
                r.train_loss.clone(),
                r.task_weights.clone(),
                r.valid.clone(),
                r.score,
                r.learning_rate,
            )
        })
        .collect()
}

/// The histories agree in every number but wall-clock time: exactly from epoch `exact_from` on,
/// to within a few ulps (1e-12 relative) before it, where one side was read back from JSON.
fn assert_same_history(a: &[EpochRecord], b: &[EpochRecord], exact_from: usize) {
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        let strip = |r: &EpochRecord| {
            let mut v = serde_json::to_value(r).unwrap();
            let object = v.as_object_mut().unwrap();
            object.remove("seconds");
            object.remove("samples_per_second");
            v
        };
        let (x, y) = (strip(x), strip(y));
        if i >= exact_from {
            assert_eq!(x, y, "epoch {i}");
        } else {
            assert!(values_close(&x, &y), "epoch {i}:\n{x}\n{y}");
        }
    }
}

fn values_close(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            x == y || (x - y).abs() <= 1e-12 * x.abs().max(y.abs())
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| values_close(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| values_close(v, w)))
        }
        _ => a == b,
    }
}

fn valid_predictions(model: &MultiTaskModel) -> Vec<Vec<f32>> {
    let data = data();
    predict(model, &data.feature_map.tasks, data.batches(Part::Valid, 1024, None), &Device::flex())
        .predictions
}

fn click_loss(record: &EpochRecord) -> f64 {
    record.train_loss["click"]
}

#[test]
fn a_fixed_seed_reproduces_every_number_and_another_seed_does_not() {
    let _guard = serial();
    let config = train_config(2);
    let first = run(&config);
    let again = run(&config);
    assert_eq!(first.history.len(), 2);
    assert_eq!(numbers(&first.history), numbers(&again.history));
    assert_eq!(first.best_epoch, again.best_epoch);
    assert_eq!(first.best_score, again.best_score);
    assert_eq!(valid_predictions(&first.model), valid_predictions(&again.model));

    let other = run(&TrainConfig { seed: 8, ..config });
    assert_ne!(click_loss(&first.history[0]), click_loss(&other.history[0]));
    assert_ne!(first.history[1].valid, other.history[1].valid);
    assert_ne!(valid_predictions(&first.model), valid_predictions(&other.model));
}

#[test]
fn training_lowers_the_loss_and_beats_a_constant_predictor() {
    let _guard = serial();
    let outcome = run(&train_config(2));
    let h = &outcome.history;
    assert!(click_loss(&h[1]) < click_loss(&h[0]), "click loss {} -> {}", click_loss(&h[0]), {
        click_loss(&h[1])
    });
    for task in TASKS {
        assert!(h[1].train_loss[task].is_finite(), "{task}: {:?}", h[1].train_loss);
    }
    let auc = h[1].valid.tasks["click"].auc.unwrap();
    assert!(auc > 0.55, "validation click AUC {auc}");
    assert!(h[1].valid.tasks["watch_ratio"].rmse.unwrap().is_finite());
    // The returned model is the best epoch's: its own evaluation gives the recorded numbers.
    let evaluation = evaluate(
        &outcome.model,
        &data().feature_map.tasks,
        data().batches(Part::Valid, 4096, None),
        &Device::flex(),
    )
    .unwrap();
    assert_eq!(evaluation, h[outcome.best_epoch].valid);
}

#[test]
fn resuming_with_more_epochs_continues_the_same_run() {
    let _guard = serial();
    let dir = tempfile::tempdir().unwrap();
    let two = train_config(2);
    let three = train_config(3);
    let first =
        train(&two, &model_config(), data(), Some(dir.path()), false, &mut NoObserver).unwrap();
    assert_eq!(first.history.len(), 2);
    let resumed =
        train(&three, &model_config(), data(), Some(dir.path()), true, &mut NoObserver).unwrap();
    let straight = run(&three);
    assert_eq!(resumed.history.len(), 3);
    // Weights, Adam moments and step counts round-trip through burnpack bit for bit, and batch
    // order depends only on the seed and the epoch: the epoch trained after the resume matches
    // exactly. The two epochs before it come back from state.json, whose floats serde_json
    // (without its `float_roundtrip` feature) may parse one ulp off.
    assert_same_history(&resumed.history, &straight.history, 2);
    assert_eq!(valid_predictions(&resumed.model), valid_predictions(&straight.model));
    assert_eq!(metrics_lines(dir.path()).len(), 3);

    // Any other change of settings is refused, and so are fewer epochs than the checkpoint's.
    let other_lr = TrainConfig { learning_rate: 1e-2, ..three.clone() };
    assert!(
        train(&other_lr, &model_config(), data(), Some(dir.path()), true, &mut NoObserver).is_err()
    );
    assert!(train(&two, &model_config(), data(), Some(dir.path()), true, &mut NoObserver).is_err());
    let other_model = ModelConfig { embedding_dim: 4, ..model_config() };
    assert!(train(&three, &other_model, data(), Some(dir.path()), true, &mut NoObserver).is_err());
}

#[test]
fn lazy_embedding_updates_learn_as_dense_ones_and_resume_exactly() {
    let _guard = serial();
    let lazy =
        |epochs| TrainConfig { embedding_updates: EmbeddingUpdates::Lazy, ..train_config(epochs) };
    let dir = tempfile::tempdir().unwrap();
    train(&lazy(1), &model_config(), data(), Some(dir.path()), false, &mut NoObserver).unwrap();
    let resumed =
        train(&lazy(2), &model_config(), data(), Some(dir.path()), true, &mut NoObserver).unwrap();
    let straight = run(&lazy(2));
    // The lazy moments and step counts are checkpointed like dense Adam's.
    assert_same_history(&resumed.history, &straight.history, 1);
    assert_eq!(valid_predictions(&resumed.model), valid_predictions(&straight.model));

    // Another update rule, so other weights; about as good after the same steps.
    let dense = run(&train_config(2));
    assert_ne!(valid_predictions(&straight.model), valid_predictions(&dense.model));
    let auc = |o: &TrainOutcome| o.history[1].valid.tasks["click"].auc.unwrap();
    let (lazy_auc, dense_auc) = (auc(&straight), auc(&dense));
    eprintln!("valid click AUC after 50 steps: lazy {lazy_auc:.4}, dense {dense_auc:.4}");
    assert!((lazy_auc - dense_auc).abs() < 0.02, "lazy {lazy_auc}, dense {dense_auc}");
}

#[test]
fn resuming_uncertainty_weighting_keeps_its_optimizer_state() {
    let _guard = serial();
    let dir = tempfile::tempdir().unwrap();
    let config = |epochs| TrainConfig {
        weighting: TaskWeighting::Uncertainty,
        max_steps_per_epoch: Some(15),
        ..train_config(epochs)
    };
    train(&config(1), &model_config(), data(), Some(dir.path()), false, &mut NoObserver).unwrap();
    // The log-variances are parameters of the one module tree the checkpoint saves.
    let state = checkpoint_state(dir.path());
    assert!(state["files"]["trainable"].as_str().unwrap().starts_with("trainable-"));
    let resumed =
        train(&config(2), &model_config(), data(), Some(dir.path()), true, &mut NoObserver)
            .unwrap();
    let straight = run(&config(2));
    assert_same_history(&resumed.history, &straight.history, 1);
    assert_eq!(valid_predictions(&resumed.model), valid_predictions(&straight.model));
}

fn metrics_lines(run_dir: &Path) -> Vec<EpochRecord> {
    std::fs::read_to_string(run_dir.join(METRICS_FILE))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).expect("each metrics line is one JSON record"))
        .collect()
}

fn checkpoint_state(run_dir: &Path) -> serde_json::Value {
    let path = run_dir.join("checkpoint/state.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// After every epoch: the checkpoint holds exactly the state and the files it names (the model
/// and weighting, the optimiser, the best model), and no temporary file is left.
struct CheckpointInspector<'a> {
    run_dir: &'a Path,
    seen: usize,
}

impl TrainObserver for CheckpointInspector<'_> {
    fn on_epoch_end(&mut self, record: &EpochRecord) {
        let checkpoint = self.run_dir.join("checkpoint");
        let state = checkpoint_state(self.run_dir);
        let files = &state["files"];
        let epoch = record.epoch + 1;
        assert_eq!(files["trainable"], format!("trainable-{epoch}.bpk"));
        assert_eq!(files["optimizer"], format!("optimizer-{epoch}.bpk"));
        let best = files["best"].as_str().expect("a best model after every epoch here");
        let mut expected = vec![
            "state.json".to_string(),
            files["trainable"].as_str().unwrap().to_string(),
            files["optimizer"].as_str().unwrap().to_string(),
            best.to_string(),
        ];
        expected.sort();
        expected.dedup();
        let mut present: Vec<String> = std::fs::read_dir(&checkpoint)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        present.sort();
        assert_eq!(present, expected, "epoch {}: the checkpoint's files", record.epoch);
        assert_eq!(state["epochs_done"], record.epoch + 1);
        assert_eq!(state["history"].as_array().unwrap().len(), record.epoch + 1);
        for dir in [self.run_dir, checkpoint.as_path()] {
            for entry in std::fs::read_dir(dir).unwrap() {
                let name = entry.unwrap().file_name().to_string_lossy().into_owned();
                assert!(
                    !name.contains("tmp") && !name.starts_with('.'),
                    "epoch {}: temporary file {name} left in {}",
                    record.epoch,
                    dir.display()
                );
            }
        }
        let lines = metrics_lines(self.run_dir);
        assert_eq!(lines.len(), record.epoch + 1);
        assert_same_history(&lines[record.epoch..], std::slice::from_ref(record), usize::MAX);
        self.seen += 1;
    }
}

#[test]
fn every_epoch_leaves_a_complete_checkpoint_and_one_metrics_line() {
    let _guard = serial();
    let dir = tempfile::tempdir().unwrap();
    let config = TrainConfig { max_steps_per_epoch: Some(10), ..train_config(3) };
    let mut inspector = CheckpointInspector { run_dir: dir.path(), seen: 0 };
    let outcome =
        train(&config, &model_config(), data(), Some(dir.path()), false, &mut inspector).unwrap();
    assert_eq!(inspector.seen, 3);
    let lines = metrics_lines(dir.path());
    assert_same_history(&lines, &outcome.history, usize::MAX);
    assert_eq!(lines.iter().map(|r| r.epoch).collect::<Vec<_>>(), vec![0, 1, 2]);

    // A new run (not resumed) in the same directory starts the metrics file afresh.
    let one = TrainConfig { epochs: 1, ..config };
    let mut inspector = CheckpointInspector { run_dir: dir.path(), seen: 0 };
    train(&one, &model_config(), data(), Some(dir.path()), false, &mut inspector).unwrap();
    assert_eq!(metrics_lines(dir.path()).len(), 1);
}

#[test]
fn early_stopping_stops_and_returns_the_best_epoch() {
    let _guard = serial();
    // A monitor that gets worse as the model learns: minus the click AUC.
    let monitor = vec![MonitorTerm { task: "click".into(), metric: "auc".into(), weight: -1.0 }];
    let config = TrainConfig {
        early_stopping: EarlyStopping { monitor: monitor.clone(), patience: 0 },
        ..train_config(6)
    };
    let outcome = run(&config);
    let h = &outcome.history;
    assert!(h.len() < config.epochs, "ran all {} epochs", h.len());
    let scores: Vec<f64> = h.iter().map(|r| r.score.unwrap()).collect();
    let best = (0..scores.len()).max_by(|&a, &b| scores[a].total_cmp(&scores[b])).unwrap();
    assert_eq!(outcome.best_epoch, best, "scores {scores:?}");
    assert_eq!(outcome.best_score, Some(scores[best]));
    // Patience 0: the first epoch without improvement is the last one.
    assert_eq!(h.len(), best + 2, "scores {scores:?}");
    assert!(scores[best + 1] <= scores[best]);

    let tasks = &data().feature_map.tasks;
    let evaluation = evaluate(
        &outcome.model,
        tasks,
        data().batches(Part::Valid, config.eval_batch_size, None),
        &Device::flex(),
    )
    .unwrap();
    assert_eq!(score(&evaluation, tasks, &monitor), h[best].score);
    assert_ne!(score(&evaluation, tasks, &monitor), h.last().unwrap().score);
}

/// Output of task `k`'s tower on a fixed input: equal outputs mean an untouched tower.
fn tower_output(model: &MultiTaskModel, k: usize) -> Vec<f32> {
    let Network::Mmoe(mmoe) = &model.network else { panic!("an MMoE") };
    let width = mmoe.experts.output_dim();
    let values: Vec<f32> = (0..8 * width).map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0).collect();
    let x = Tensor::<2>::from_data(TensorData::new(values, [8, width]), &Device::flex());
    mmoe.towers[k].forward(x).into_data().try_to_vec().unwrap()
}

#[test]
fn a_zero_task_weight_leaves_that_tower_untouched() {
    let _guard = serial();
    let weights = [("like".to_string(), 0.0)].into_iter().collect();
    let config = TrainConfig { weighting: TaskWeighting::Fixed { weights }, ..train_config(1) };
    let data = data();
    let tasks = &data.feature_map.tasks;
    let like = tasks.iter().position(|t| t.name == "like").unwrap();
    let click = tasks.iter().position(|t| t.name == "click").unwrap();
    // The trainer's initial model: the same seed, the same construction, and the parameters
    // drawn in the same order (burn initialises them lazily, in the order they are first
    // touched; the trainer touches them all in module order before the first step).
    let device = Device::flex().autodiff();
    device.seed(config.seed);
    let context = ModelContext::from_feature_map(&model_config(), &data.feature_map);
    let initial = MultiTaskModel::new(&model_config(), &context, &device).unwrap();
    materialize_parameters(&initial);
    let initial = initial.valid();

    let trained = run(&config);
    assert_eq!(trained.history[0].task_weights["like"], 0.0);
    assert_eq!(trained.history[0].task_weights["click"], 1.0);
    assert_eq!(tower_output(&trained.model, like), tower_output(&initial, like));
    assert_ne!(tower_output(&trained.model, click), tower_output(&initial, click));
    // And the weights change the run: the shared layers no longer learn the like task.
    let default = run(&train_config(1));
    assert_ne!(click_loss(&default.history[0]), click_loss(&trained.history[0]));
}

#[test]
fn uncertainty_weights_are_learned() {
    let _guard = serial();
    let config = TrainConfig { weighting: TaskWeighting::Uncertainty, ..train_config(2) };
    let outcome = run(&config);
    for record in &outcome.history {
        for (task, w) in &record.task_weights {
            assert!(w.is_finite() && *w > 0.0, "{task}: {w}");
            assert_ne!(*w, 1.0, "epoch {}: {task} weight still 1", record.epoch);
        }
    }
}

#[test]
fn dwa_weights_are_one_for_two_epochs_then_move() {
    let _guard = serial();
    let config = TrainConfig {
        weighting: TaskWeighting::Dwa { temperature: 2.0 },
        max_steps_per_epoch: Some(10),
        ..train_config(3)
    };
    let outcome = run(&config);
    let h = &outcome.history;
    for record in &h[..2] {
        assert!(record.task_weights.values().all(|&w| w == 1.0), "{:?}", record.task_weights);
    }
    let last: Vec<f64> = h[2].task_weights.values().copied().collect();
    assert!(last.iter().any(|&w| w != 1.0), "{last:?}");
    assert!((last.iter().sum::<f64>() - TASKS.len() as f64).abs() < 1e-9, "{last:?}");
}

/// Counts the per-task losses the trainer reports at each step (NaN = no label in the batch).
#[derive(Default)]
struct MissingLosses {
    per_task_missing: Vec<usize>,
    steps: usize,
}

impl TrainObserver for MissingLosses {
    fn on_step(&mut self, _step: usize, losses: &trainer::StepLosses) {
        assert!(losses.auxiliary.is_empty(), "an MMoE has no auxiliary loss");
        self.per_task_missing.resize(losses.tasks.len(), 0);
        for (k, l) in losses.tasks.iter().enumerate() {
            if l.is_nan() {
                self.per_task_missing[k] += 1;
            } else {
                assert!(l.is_finite());
            }
        }
        self.steps += 1;
    }
}

#[test]
fn tasks_labelled_on_some_rows_train_on_those_rows_only() {
    let _guard = serial();
    let mut data = prepare_from(&fixture().files);
    let task = |name: &str| data.feature_map.tasks.iter().position(|t| t.name == name).unwrap();
    let (click, like, ratio) = (task("click"), task("like"), task("watch_ratio"));
    // like: labelled on one row in three; watch_ratio: never labelled in training.
    let LabelColumn::Binary(likes) = &mut data.labels[like] else { panic!("like is binary") };
    for (r, v) in likes.iter_mut().enumerate() {
        if r % 3 != 0 {
            *v = FLAG_MISSING;
        }
    }
    let train_rows = data.split.train.clone();
    let LabelColumn::Regression(ratios) = &mut data.labels[ratio] else { panic!("regression") };
    for &r in &train_rows {
        ratios[r as usize] = f32::NAN;
    }

    let mut observer = MissingLosses::default();
    let outcome =
        train(&train_config(2), &model_config(), &data, None, false, &mut observer).unwrap();
    let h = &outcome.history;
    assert_eq!(observer.steps, 50);
    assert_eq!(observer.per_task_missing[ratio], 50, "watch_ratio has no training label");
    assert_eq!(observer.per_task_missing[click], 0);
    assert_eq!(observer.per_task_missing[like], 0, "a third of 256 rows is never empty");
    assert!(!h[1].train_loss.contains_key("watch_ratio"));
    assert!(h[1].train_loss["like"].is_finite());
    assert!(click_loss(&h[1]) < click_loss(&h[0]));
    let valid_like = &h[1].valid.tasks["like"];
    let expected = data.split.valid.iter().filter(|&&r| r % 3 == 0).count();
    assert_eq!(valid_like.n, expected, "like is scored on its labelled rows only");
    assert_eq!(h[1].valid.tasks["watch_ratio"].n, data.split.valid.len());

    // The loss itself: a task with no label in the batch gives no loss at all.
    let batch = data.batch(&train_rows[..64]);
    let device = Device::flex();
    let targets = TaskTargets::of(&batch, ratio, &device);
    assert_eq!(targets.count, 0.0);
    let zeros = Tensor::<2>::zeros([batch.size, 1], &device);
    let value = TaskOutput { tensor: zeros.clone(), kind: OutputKind::Value };
    assert!(task_loss(&value, &targets).is_none());
    let like_targets = TaskTargets::of(&batch, like, &device);
    let labelled = batch.mask(like).iter().filter(|&&m| m > 0.0).count();
    assert_eq!(like_targets.count as usize, labelled);
    let logit = TaskOutput { tensor: zeros, kind: OutputKind::Logit };
    let loss: f32 = task_loss(&logit, &like_targets).unwrap().into_scalar::<f32>();
    assert!((loss - std::f32::consts::LN_2).abs() < 1e-6, "zero logits give ln 2, got {loss}");
}

/// `[model.cmi]` in both uses: the term is logged, the same seed gives the same numbers, and a
/// resumed run equals an uninterrupted one (the critics, the joint heads and their Adam moments
/// are in the one module tree; the negatives are expectations, so no random state is skipped).
#[test]
fn cmi_training_reproduces_and_resumes_exactly() {
    use seesaw_models::cmi::{CmiConfig, CmiSampler, CmiUse};
    let _guard = serial();
    for (use_, sampler, term) in [
        (CmiUse::JointHead, CmiSampler::Kernel, "cmi_joint"),
        (CmiUse::Adversarial, CmiSampler::Kernel, "cmi_adversarial"),
        (CmiUse::Adversarial, CmiSampler::Variational, "cmi_adversarial"),
    ] {
        let model = ModelConfig {
            cmi: Some(CmiConfig { use_, sampler, warmup_steps: 10, ..CmiConfig::default() }),
            ..model_config()
        };
        let config = |epochs| TrainConfig { max_steps_per_epoch: Some(10), ..train_config(epochs) };
        let straight = train(&config(2), &model, data(), None, false, &mut NoObserver).unwrap();
        let again = train(&config(2), &model, data(), None, false, &mut NoObserver).unwrap();
        assert_eq!(numbers(&straight.history), numbers(&again.history), "{use_:?} {sampler:?}");
        let logged = straight.history[1].auxiliary_loss.get(term).copied();
        assert!(logged.is_some_and(f64::is_finite), "{use_:?}: {:?}", straight.history[1]);

        let dir = tempfile::tempdir().unwrap();
        train(&config(1), &model, data(), Some(dir.path()), false, &mut NoObserver).unwrap();
        let resumed =
            train(&config(2), &model, data(), Some(dir.path()), true, &mut NoObserver).unwrap();
        assert_same_history(&resumed.history, &straight.history, 1);
        assert_eq!(valid_predictions(&resumed.model), valid_predictions(&straight.model));
    }
}

/// The gradient weightings: PCGrad (gradient surgery, a task order drawn per step) and GradNorm
/// (weights moved every step, with the first losses remembered).
fn gradient_weightings() -> [TaskWeighting; 2] {
    [TaskWeighting::PcGrad, TaskWeighting::GradNorm { alpha: 1.5, lr: 0.025 }]
}

#[test]
fn gradient_weightings_reproduce_bit_for_bit_and_change_the_run() {
    let _guard = serial();
    let fixed = run(&TrainConfig { max_steps_per_epoch: Some(10), ..train_config(2) });
    for weighting in gradient_weightings() {
        let config = TrainConfig {
            weighting: weighting.clone(),
            max_steps_per_epoch: Some(10),
            ..train_config(2)
        };
        let first = run(&config);
        let again = run(&config);
        assert_same_history(&first.history, &again.history, 0);
        assert_eq!(
            valid_predictions(&first.model),
            valid_predictions(&again.model),
            "{weighting:?}"
        );
        assert_ne!(
            numbers(&first.history)[1].2,
            numbers(&fixed.history)[1].2,
            "{weighting:?} trains like fixed weights"
        );
        for task in TASKS {
            assert!(first.history[1].train_loss[task].is_finite(), "{weighting:?}");
        }
        if let TaskWeighting::GradNorm { .. } = weighting {
            let w: Vec<f64> = first.history[1].task_weights.values().copied().collect();
            assert!(w.iter().all(|&w| w > 0.0 && w != 1.0), "{w:?}");
            assert!((w.iter().sum::<f64>() - TASKS.len() as f64).abs() < 1e-5, "{w:?}");
        }
    }
}

#[test]
fn gradient_weightings_resume_exactly() {
    let _guard = serial();
    for weighting in gradient_weightings() {
        let dir = tempfile::tempdir().unwrap();
        let config = |epochs| TrainConfig {
            weighting: weighting.clone(),
            max_steps_per_epoch: Some(10),
            ..train_config(epochs)
        };
        train(&config(1), &model_config(), data(), Some(dir.path()), false, &mut NoObserver)
            .unwrap();
        let resumed =
            train(&config(2), &model_config(), data(), Some(dir.path()), true, &mut NoObserver)
                .unwrap();
        let straight = run(&config(2));
        // GradNorm's weights and first losses come back from the checkpoint, PCGrad's task order
        // from the run's seed and the step number: the epoch after the resume matches exactly.
        assert_same_history(&resumed.history, &straight.history, 1);
        assert_eq!(
            valid_predictions(&resumed.model),
            valid_predictions(&straight.model),
            "{weighting:?}"
        );
    }
}

#[test]
fn gradient_cosines_are_logged_per_epoch_and_do_not_change_training() {
    let _guard = serial();
    let dir = tempfile::tempdir().unwrap();
    let on = TrainConfig {
        gradient_cosine_batches: 3,
        max_steps_per_epoch: Some(10),
        ..train_config(2)
    };
    let off = TrainConfig { gradient_cosine_batches: 0, ..on.clone() };
    let with =
        train(&on, &model_config(), data(), Some(dir.path()), false, &mut NoObserver).unwrap();
    let without = run(&off);
    assert_eq!(numbers(&with.history), numbers(&without.history));
    assert_eq!(valid_predictions(&with.model), valid_predictions(&without.model));
    assert!(without.history.iter().all(|r| r.gradient_cosines.is_empty()));

    let pairs = ["click|like", "click|watch_ratio", "like|watch_ratio"];
    let lines = metrics_lines(dir.path());
    assert_eq!(lines.len(), 2);
    for record in &lines {
        let keys: Vec<&str> = record.gradient_cosines.keys().map(String::as_str).collect();
        assert_eq!(keys, pairs, "epoch {}", record.epoch);
        assert!(record.gradient_cosines.values().all(|c| (-1.0..=1.0).contains(c)));
    }
    assert_ne!(lines[0].gradient_cosines, lines[1].gradient_cosines, "the model moved");

    // A model without shared parameters has nothing to measure.
    let single = ModelConfig {
        architecture: Architecture::SingleTask(seesaw_models::models::SingleTaskConfig {
            hidden: vec![8],
        }),
        ..model_config()
    };
    let config = TrainConfig { epochs: 1, max_steps_per_epoch: Some(2), ..on };
    let outcome = train(&config, &single, data(), None, false, &mut NoObserver).unwrap();
    assert!(outcome.history[0].gradient_cosines.is_empty());
}

#[test]
fn a_metrics_line_from_before_gradient_cosines_still_parses() {
    let _guard = serial();
    let mut record = serde_json::to_value(
        &run(&TrainConfig { epochs: 1, max_steps_per_epoch: Some(1), ..train_config(1) }).history
            [0],
    )
    .unwrap();
    record.as_object_mut().unwrap().remove("gradient_cosines");
    let parsed: EpochRecord = serde_json::from_value(record).unwrap();
    assert!(parsed.gradient_cosines.is_empty());
}

/// The gradient-cosine diagnostic never touches the weights, so a run may be resumed with it
/// turned off (or on): the resumed model is the one an uninterrupted run gives.
#[test]
fn a_resume_may_change_the_gradient_cosine_batches() {
    let _guard = serial();
    let dir = tempfile::tempdir().unwrap();
    let on = |epochs| TrainConfig {
        gradient_cosine_batches: 3,
        max_steps_per_epoch: Some(10),
        ..train_config(epochs)
    };
    train(&on(1), &model_config(), data(), Some(dir.path()), false, &mut NoObserver).unwrap();
    let off = TrainConfig { gradient_cosine_batches: 0, ..on(2) };
    let resumed =
        train(&off, &model_config(), data(), Some(dir.path()), true, &mut NoObserver).unwrap();
    let straight = run(&off);
    assert_eq!(valid_predictions(&resumed.model), valid_predictions(&straight.model));
    assert!(!resumed.history[0].gradient_cosines.is_empty());
    assert!(resumed.history[1].gradient_cosines.is_empty());
}

/// The models of two ranks with half a batch each, trained as threads of this process.
fn two_rank_models(config: &TrainConfig) -> Vec<MultiTaskModel> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = InProcessRanks::group(2)
            .into_iter()
            .map(|rank| {
                scope.spawn(move || {
                    let data = data();
                    train_on_ranks(
                        config,
                        &model_config(),
                        data,
                        None,
                        false,
                        &mut NoObserver,
                        &rank,
                    )
                    .unwrap()
                    .model
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// The ranks' weights stay bit-identical: every rank steps with the same summed gradient.
#[test]
fn two_ranks_keep_bit_identical_weights() {
    let _serial = serial();
    let config = TrainConfig { max_steps_per_epoch: Some(20), ..train_config(1) };
    let models = two_rank_models(&config);
    assert_eq!(parameter_hash(&models[0]), parameter_hash(&models[1]), "the ranks' weights differ");
    // The hash tells trained models apart.
    assert_ne!(parameter_hash(&models[0]), parameter_hash(&run(&config).model.valid()));
}

/// Two ranks with half a batch each take the steps one process takes with the whole batch.
#[test]
fn two_ranks_with_half_batches_train_the_model_one_process_trains() {
    let _serial = serial();
    let config = TrainConfig { max_steps_per_epoch: Some(20), ..train_config(1) };
    let reference = parameter_values(&run(&config).model);
    let ranks = parameter_values(&two_rank_models(&config)[0]);
    let scale = reference.iter().fold(0f32, |m, v| m.max(v.abs()));
    let worst = reference.iter().zip(&ranks).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    eprintln!("two ranks against one process after 20 steps: max |dw| {worst:e}, scale {scale}");
    assert!(worst / scale <= 1e-5, "two ranks differ from one process by {worst} (scale {scale})");
}
