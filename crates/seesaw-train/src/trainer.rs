//! The training loop: shuffled mini-batches, masked per-task losses combined by the task
//! weighting, Adam or AdamW with warm-up and decay, validation after every epoch, early
//! stopping on the monitored score, and an atomic checkpoint every epoch from which a run
//! resumes exactly where it stopped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use burn::optim::{
    AdamConfig, AdamWConfig, GradientsParams, ModuleOptimizer, decay::WeightDecayConfig,
};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use seesaw_data::dataset::PreparedDataset;
use seesaw_data::feature_map::TaskInfo;
use seesaw_data::split::Part;
use seesaw_models::{ModelConfig, ModelInput, MultiTaskModel};

use crate::config::{OptimizerKind, TrainConfig};
use crate::error::{Result, TrainError};
use crate::evaluate::{Evaluation, evaluate, score};
use crate::history::{EpochRecord, append_jsonl};
use crate::loss::task_loss;
use crate::schedule::learning_rate;
use crate::tensors::task_targets;
use crate::weighting::{TaskWeighting, UncertaintyWeights};

/// Hooks for progress display; every method has a no-op default.
pub trait TrainObserver {
    fn on_epoch_start(&mut self, _epoch: usize, _steps: usize) {}
    /// Called after each step with the step's per-task losses (NaN where a task had no label).
    fn on_step(&mut self, _step: usize, _losses: &[f64]) {}
    fn on_epoch_end(&mut self, _record: &EpochRecord) {}
}

pub struct NoObserver;
impl TrainObserver for NoObserver {}

pub struct TrainOutcome {
    /// The model of the best epoch (the last one when there is no validation data), in inference
    /// mode.
    pub model: MultiTaskModel,
    pub history: Vec<EpochRecord>,
    pub best_epoch: usize,
    pub best_score: Option<f64>,
}

/// What a checkpoint directory holds besides the weights.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CheckpointState {
    /// Epochs completed.
    epochs_done: usize,
    history: Vec<EpochRecord>,
    best_epoch: usize,
    best_score: Option<f64>,
    /// The run's settings: resuming with other settings would not continue the same run.
    train: TrainConfig,
    model: ModelConfig,
}

const STATE_FILE: &str = "state.json";
const MODEL_FILE: &str = "model.bpk";
const BEST_MODEL_FILE: &str = "best_model.bpk";
const OPTIMIZER_FILE: &str = "optimizer.bpk";
const UNCERTAINTY_FILE: &str = "uncertainty.bpk";
/// Adam's moments of the uncertainty weights: without them a resumed run would restart them.
const UNCERTAINTY_OPTIMIZER_FILE: &str = "uncertainty_optimizer.bpk";
pub const METRICS_FILE: &str = "metrics.jsonl";

/// Trains a model on the training part of `data`, validating on its validation part. With a
/// `run_dir`, writes `metrics.jsonl` and `checkpoint/` there; with `resume`, continues from the
/// checkpoint found there.
pub fn train(
    config: &TrainConfig,
    model_config: &ModelConfig,
    data: &PreparedDataset,
    run_dir: Option<&Path>,
    resume: bool,
    observer: &mut dyn TrainObserver,
) -> Result<TrainOutcome> {
    config.validate()?;
    let tasks: Vec<TaskInfo> = data.feature_map.tasks.clone();
    let task_names: Vec<String> = tasks.iter().map(|t| t.name.clone()).collect();
    let infer_device = Device::flex();
    let train_device = infer_device.clone().autodiff();
    train_device.seed(config.seed);

    let mut model = MultiTaskModel::new(model_config, &data.schema, &tasks, &train_device)?;
    let mut optimizer = build_optimizer(config);
    let uncertain = matches!(config.weighting, TaskWeighting::Uncertainty);
    let mut uncertainty = uncertain.then(|| UncertaintyWeights::new(tasks.len(), &train_device));
    let mut uncertainty_optimizer = uncertain.then(|| AdamConfig::new().init());

    let checkpoint_dir = run_dir.map(|d| d.join("checkpoint"));
    let mut state = CheckpointState {
        epochs_done: 0,
        history: Vec::new(),
        best_epoch: 0,
        best_score: None,
        train: config.clone(),
        model: model_config.clone(),
    };
    let mut best_model: Option<MultiTaskModel> = None;
    if let (Some(dir), true) = (&checkpoint_dir, resume)
        && dir.join(STATE_FILE).exists()
    {
        let loaded = load_state(dir)?;
        // Only `epochs` may change, and only upwards: a run resumed with more epochs continues
        // the same run (with a decaying learning rate, the decay is stretched over the new
        // total from the resumed step on). Any other setting would not continue this run.
        let ignoring_epochs = |c: &TrainConfig| TrainConfig { epochs: 0, ..c.clone() };
        if ignoring_epochs(&loaded.train) != ignoring_epochs(config)
            || config.epochs < loaded.train.epochs
            || loaded.model != *model_config
        {
            return Err(TrainError::Checkpoint {
                path: dir.join(STATE_FILE),
                message: "the checkpoint was written with other settings (only epochs may grow \
                          on resume); start a new run directory"
                    .into(),
            });
        }
        state = loaded;
        state.train = config.clone();
        model = MultiTaskModel::load(
            model_config,
            &data.schema,
            &tasks,
            dir.join(MODEL_FILE),
            &train_device,
        )?;
        optimizer =
            optimizer.load(dir.join(OPTIMIZER_FILE)).map_err(|e| checkpoint_error(dir, e))?;
        if let Some(u) = uncertainty.take() {
            let path = dir.join(UNCERTAINTY_FILE);
            uncertainty = Some(u.try_load_file(&path).map_err(|e| checkpoint_error(&path, e))?);
        }
        if let Some(opt) = uncertainty_optimizer.take() {
            let path = dir.join(UNCERTAINTY_OPTIMIZER_FILE);
            uncertainty_optimizer = Some(opt.load(&path).map_err(|e| checkpoint_error(&path, e))?);
        }
        if dir.join(BEST_MODEL_FILE).exists() {
            best_model = Some(MultiTaskModel::load(
                model_config,
                &data.schema,
                &tasks,
                dir.join(BEST_MODEL_FILE),
                &infer_device,
            )?);
        }
    }
    if let Some(dir) = &checkpoint_dir {
        std::fs::create_dir_all(dir).map_err(|e| checkpoint_error(dir, e))?;
        if state.epochs_done == 0 {
            // A fresh run must not inherit an earlier run's best model.
            match std::fs::remove_file(dir.join(BEST_MODEL_FILE)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(checkpoint_error(dir, e));
                }
                _ => {}
            }
        }
    }
    if let Some(dir) = run_dir {
        // One line per epoch of this run: drop lines of an earlier run in the same directory,
        // or of epochs written after the checkpoint being resumed from.
        write_jsonl(&dir.join(METRICS_FILE), &state.history)?;
    }

    let train_rows = data.split.part(Part::Train).len();
    let full_steps = train_rows.div_ceil(config.batch_size);
    let steps_per_epoch = config.max_steps_per_epoch.map_or(full_steps, |m| m.min(full_steps));
    let total_steps = steps_per_epoch * config.epochs;
    let mut global_step = state.epochs_done * steps_per_epoch;
    let has_validation = !data.split.valid.is_empty();

    for epoch in state.epochs_done..config.epochs {
        // Stop once `patience` epochs in a row have not improved on the best, at least one:
        // patience 0 stops at the first epoch that does not improve (as in Keras and
        // Lightning) instead of never training past epoch 0.
        if epoch > state.best_epoch + config.early_stopping.patience.max(1)
            && has_validation
            && state.best_score.is_some()
        {
            break;
        }
        let loss_history: Vec<Vec<f64>> = state
            .history
            .iter()
            .map(|r| {
                task_names.iter().map(|t| r.train_loss.get(t).copied().unwrap_or(0.0)).collect()
            })
            .collect();
        let weights = config.weighting.epoch_weights(&task_names, &loss_history);
        observer.on_epoch_start(epoch, steps_per_epoch);
        let started = Instant::now();
        let mut loss_sums = vec![0.0f64; tasks.len()];
        let mut loss_counts = vec![0usize; tasks.len()];
        let mut samples = 0usize;
        let mut lr = config.learning_rate;
        let batch_seed = config.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(epoch as u64);
        for (step, batch) in data
            .batches(Part::Train, config.batch_size, Some(batch_seed))
            .take(steps_per_epoch)
            .enumerate()
        {
            let input = ModelInput::from_batch(&batch, &train_device);
            let outputs = model.forward(&input);
            let losses: Vec<Option<Tensor<1>>> = tasks
                .iter()
                .zip(outputs.outputs)
                .enumerate()
                .map(|(k, (task, output))| {
                    task_loss(task.kind, output, &task_targets(&batch, k, &train_device))
                })
                .collect();
            let step_losses: Vec<f64> = losses
                .iter()
                .map(|l| l.as_ref().map_or(f64::NAN, |l| l.clone().into_scalar::<f32>() as f64))
                .collect();
            for (k, value) in step_losses.iter().enumerate() {
                if value.is_nan() {
                    continue;
                }
                if !value.is_finite() {
                    return Err(TrainError::Diverged { task: task_names[k].clone(), epoch, step });
                }
                loss_sums[k] += value;
                loss_counts[k] += 1;
            }
            let total = match &uncertainty {
                Some(u) => u.combine(&losses),
                None => losses
                    .into_iter()
                    .zip(&weights)
                    .filter_map(|(l, &w)| l.map(|l| l.mul_scalar(w)))
                    .reduce(|a, b| a + b),
            };
            let Some(total) = total else { continue };
            lr = learning_rate(
                config.learning_rate,
                config.warmup_steps,
                config.decay,
                global_step,
                total_steps,
            );
            let mut grads = total.backward();
            let model_grads = GradientsParams::from_module(&mut grads, &model);
            if let (Some(u), Some(opt)) = (uncertainty.take(), uncertainty_optimizer.as_mut()) {
                let u_grads = GradientsParams::from_module(&mut grads, &u);
                uncertainty = Some(opt.step(lr, u, u_grads));
            }
            model = optimizer.step(lr, model, model_grads);
            samples += batch.size;
            global_step += 1;
            observer.on_step(step, &step_losses);
        }
        let train_seconds = started.elapsed().as_secs_f64();

        let inference = model.valid();
        let valid = if has_validation {
            evaluate(
                &inference,
                &tasks,
                data.batches(Part::Valid, config.eval_batch_size, None),
                &infer_device,
            )?
        } else {
            Evaluation::default()
        };
        let epoch_score = score(&valid, &tasks, &config.early_stopping.monitor);
        let task_weights = match &uncertainty {
            Some(u) => u.weights(),
            None => weights.clone(),
        };
        let record = EpochRecord {
            epoch,
            steps: steps_per_epoch,
            train_loss: task_names
                .iter()
                .enumerate()
                .filter(|&(k, _)| loss_counts[k] > 0)
                .map(|(k, t)| (t.clone(), loss_sums[k] / loss_counts[k] as f64))
                .collect(),
            task_weights: task_names.iter().cloned().zip(task_weights).collect::<BTreeMap<_, _>>(),
            valid,
            score: epoch_score,
            learning_rate: lr,
            seconds: started.elapsed().as_secs_f64(),
            samples_per_second: samples as f64 / train_seconds.max(1e-9),
        };
        let improved = match (epoch_score, state.best_score) {
            (Some(s), Some(best)) => s > best,
            (Some(_), None) => true,
            (None, _) => !has_validation,
        };
        if improved {
            state.best_score = epoch_score;
            state.best_epoch = epoch;
            best_model = Some(inference);
        }
        state.history.push(record.clone());
        state.epochs_done = epoch + 1;
        if let Some(dir) = run_dir {
            append_jsonl(&dir.join(METRICS_FILE), &record)?;
        }
        if let Some(dir) = &checkpoint_dir {
            save_checkpoint(
                dir,
                &state,
                &model,
                &optimizer,
                uncertainty.as_ref().zip(uncertainty_optimizer.as_ref()),
                improved.then_some(best_model.as_ref()).flatten(),
            )?;
        }
        observer.on_epoch_end(&record);
    }
    let model = best_model.unwrap_or_else(|| model.valid());
    Ok(TrainOutcome {
        model,
        history: state.history,
        best_epoch: state.best_epoch,
        best_score: state.best_score,
    })
}

fn build_optimizer(config: &TrainConfig) -> ModuleOptimizer {
    match config.optimizer {
        OptimizerKind::Adam => {
            let decay = (config.weight_decay > 0.0)
                .then(|| WeightDecayConfig::new(config.weight_decay as f32));
            AdamConfig::new().with_weight_decay(decay).init()
        }
        OptimizerKind::AdamW => {
            AdamWConfig::new().with_weight_decay(config.weight_decay as f32).init()
        }
    }
}

fn checkpoint_error(path: &Path, e: impl std::fmt::Display) -> TrainError {
    TrainError::Checkpoint { path: path.to_owned(), message: e.to_string() }
}

/// Replaces the metrics file with one line per record, atomically.
fn write_jsonl(path: &Path, records: &[EpochRecord]) -> Result<()> {
    let mut text = String::new();
    for record in records {
        text.push_str(&serde_json::to_string(record).expect("an epoch record serialises"));
        text.push('\n');
    }
    seesaw_data::atomic::write(path, text.as_bytes())?;
    Ok(())
}

fn load_state(dir: &Path) -> Result<CheckpointState> {
    let path = dir.join(STATE_FILE);
    let bytes = std::fs::read(&path).map_err(|e| checkpoint_error(&path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| checkpoint_error(&path, e))
}

/// Writes every file of the checkpoint under a temporary name, then renames them; the state
/// file goes last, so a checkpoint whose state names epoch n has all of epoch n's weights.
fn save_checkpoint(
    dir: &Path,
    state: &CheckpointState,
    model: &MultiTaskModel,
    optimizer: &ModuleOptimizer,
    uncertainty: Option<(&UncertaintyWeights, &ModuleOptimizer)>,
    best: Option<&MultiTaskModel>,
) -> Result<()> {
    model.save(dir.join(MODEL_FILE))?;
    if let Some(best) = best {
        best.save(dir.join(BEST_MODEL_FILE))?;
    }
    let temp = |name: &str| -> PathBuf { dir.join(format!(".{name}.tmp")) };
    optimizer
        .save(temp(OPTIMIZER_FILE))
        .map_err(|e| checkpoint_error(&dir.join(OPTIMIZER_FILE), e))?;
    std::fs::rename(temp(OPTIMIZER_FILE), dir.join(OPTIMIZER_FILE))
        .map_err(|e| checkpoint_error(dir, e))?;
    if let Some((u, u_optimizer)) = uncertainty {
        u.clone()
            .save_file(temp(UNCERTAINTY_FILE))
            .map_err(|e| checkpoint_error(&dir.join(UNCERTAINTY_FILE), e))?;
        std::fs::rename(temp(UNCERTAINTY_FILE), dir.join(UNCERTAINTY_FILE))
            .map_err(|e| checkpoint_error(dir, e))?;
        u_optimizer
            .save(temp(UNCERTAINTY_OPTIMIZER_FILE))
            .map_err(|e| checkpoint_error(&dir.join(UNCERTAINTY_OPTIMIZER_FILE), e))?;
        std::fs::rename(temp(UNCERTAINTY_OPTIMIZER_FILE), dir.join(UNCERTAINTY_OPTIMIZER_FILE))
            .map_err(|e| checkpoint_error(dir, e))?;
    }
    let json = serde_json::to_vec_pretty(state).expect("the checkpoint state serialises");
    seesaw_data::atomic::write(&dir.join(STATE_FILE), &json)?;
    Ok(())
}
