//! The training loop: shuffled mini-batches, the model's loss terms combined by the task
//! weighting, Adam or AdamW with warm-up and decay, validation after every epoch, early stopping
//! on the monitored score, and an atomic checkpoint every epoch from which a run resumes exactly
//! where it stopped.
//!
//! `train_step` is one optimiser step; `train` the fit loop around it. Neither knows the model
//! kind: the model gives its loss terms (`MultiTaskModel::loss`), the weighting combines the
//! per-task ones, and every named term is logged.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use burn::module::{Module, ParamGroup};
use burn::optim::{
    AdamConfig, AdamWConfig, GradientsParams, ModuleOptimizer, decay::WeightDecayConfig,
};
use burn::tensor::Device;

use seesaw_data::batch::Batch;
use seesaw_data::feature_map::TaskInfo;
use seesaw_data::split::Part;
use seesaw_data::training_data::{TrainingData, UntilError};
use seesaw_models::{ModelConfig, ModelContext, ModelInput, ModelTargets, MultiTaskModel};

use crate::checkpoint::{Checkpoint, CheckpointState, error as checkpoint_error};
use crate::collective::{Collective, SingleProcess};
use crate::config::{EmbeddingUpdates, OptimizerKind, TrainConfig};
use crate::data_parallel::{
    broadcast_from_root, materialize_parameters, rank_rows, sum_gradients, task_shares,
};
use crate::error::{Result, TrainError};
use crate::evaluate::{Evaluation, score};
use crate::gathered_scores::evaluate_on_ranks;
use crate::history::{EpochRecord, append_jsonl};
use crate::lazy_adam::{LazyAdam, LazyRule, embedding_table_ids};
use crate::schedule::learning_rate;
use crate::task_gradients::{auxiliary_gradient, mean_gradient_cosines, shared_task_gradients};
use crate::weighting::{SplitMix64, Weighting, WeightingModule};

/// Hooks for progress display; every method has a no-op default.
pub trait TrainObserver {
    fn on_epoch_start(&mut self, _epoch: usize, _steps: usize) {}
    /// Called after each step with the step's loss terms.
    fn on_step(&mut self, _step: usize, _losses: &StepLosses) {}
    fn on_epoch_end(&mut self, _record: &EpochRecord) {}
}

pub struct NoObserver;
impl TrainObserver for NoObserver {}

/// The loss terms of one step, as numbers.
#[derive(Debug, Clone, Default)]
pub struct StepLosses {
    /// Per task, in task order; NaN where the batch has no label of the task.
    pub tasks: Vec<f64>,
    /// The model's named auxiliary terms.
    pub auxiliary: Vec<(String, f64)>,
}

/// What the optimiser steps: the model and the task weighting's parameters, one module tree.
#[derive(Module, Debug)]
pub struct Trainable {
    pub model: MultiTaskModel,
    pub weighting: WeightingModule,
}

pub struct TrainOutcome {
    /// The model of the best epoch (the last one when there is no validation data), in inference
    /// mode.
    pub model: MultiTaskModel,
    pub history: Vec<EpochRecord>,
    pub best_epoch: usize,
    pub best_score: Option<f64>,
}

pub const METRICS_FILE: &str = "metrics.jsonl";

/// Mixed into the run's seed to draw the batches of the gradient-cosine diagnostic, so that they
/// are not those of any training epoch (whose seeds are the run's seed mixed with the epoch).
const COSINE_BATCH_SALT: u64 = 0xD1A6_C051_0000_0000;

/// The seed of global step `step` of a run seeded with `seed`, for weightings that draw at random
/// (PCGrad's task order): a function of the two numbers only, so a resumed run draws what an
/// uninterrupted one does.
pub fn step_seed(seed: u64, step: usize) -> u64 {
    let mut mix = SplitMix64(seed);
    let base = mix.next_u64();
    SplitMix64(base ^ (step as u64)).next_u64()
}

/// One optimiser step on `batch` (the run's global step `step`, which terms with a warm-up
/// read): forward, the model's loss terms, the weighting's total, one
/// backward pass, one update. A weighting that wants them first sees each task's gradient on the
/// shared parameters (one more forward and backward pass per task) and may set the shared
/// parameters' gradient itself (PCGrad); `step_seed` (see `step_seed`) is what it may draw from.
/// Returns the stepped module and the step's losses; `None` when no task of the batch has a
/// label (no step is taken). A non-finite loss term is an error.
pub fn train_step(
    trainable: Trainable,
    optimizer: &mut ModuleOptimizer,
    batch: &Batch,
    step: usize,
    lr: f64,
    step_seed: u64,
    device: &Device,
) -> std::result::Result<(Trainable, Option<StepLosses>), NonFiniteLoss> {
    train_step_on_ranks(trainable, optimizer, batch, step, lr, step_seed, device, &SingleProcess)
}

/// [`train_step`] with the global batch `batch` spread over the ranks of `collective`: each rank
/// takes its slice of the rows (`data_parallel::rank_rows`), and the summed gradient is that of
/// the whole batch's loss: the step one process takes on `batch`, to float rounding.
/// The losses returned are the global batch's on every rank. Weightings that want task gradients
/// run on one rank only (`train` refuses them on several).
#[allow(clippy::too_many_arguments)]
pub fn train_step_on_ranks(
    trainable: Trainable,
    optimizer: &mut ModuleOptimizer,
    batch: &Batch,
    step: usize,
    lr: f64,
    step_seed: u64,
    device: &Device,
    collective: &dyn Collective,
) -> std::result::Result<(Trainable, Option<StepLosses>), NonFiniteLoss> {
    let ranks = collective.size();
    if ranks == 1 {
        return step_with_shares(
            trainable, optimizer, batch, None, step, lr, step_seed, device, collective,
        );
    }
    let rows = rank_rows(batch.size, collective.rank(), ranks);
    let shares = task_shares(batch, &rows);
    let batch = batch.slice_rows(rows);
    step_with_shares(
        trainable,
        optimizer,
        &batch,
        Some(shares),
        step,
        lr,
        step_seed,
        device,
        collective,
    )
}

/// [`train_step_on_ranks`] where `batch` is this rank's own rows (read from its shard), not a
/// slice of a batch every rank holds: the global batch is the union of the ranks' batches, and
/// each task's label count over it comes from one small sum before the step.
#[allow(clippy::too_many_arguments)]
pub fn train_shard_step_on_ranks(
    trainable: Trainable,
    optimizer: &mut ModuleOptimizer,
    batch: &Batch,
    step: usize,
    lr: f64,
    step_seed: u64,
    device: &Device,
    collective: &dyn Collective,
) -> std::result::Result<(Trainable, Option<StepLosses>), NonFiniteLoss> {
    let local: Vec<f32> = (0..batch.n_tasks).map(|t| batch.mask(t).iter().sum()).collect();
    let mut global = local.clone();
    collective.sum_f32(&mut global);
    let shares = local.iter().zip(&global).map(|(&l, &g)| (g > 0.0).then(|| l / g)).collect();
    step_with_shares(
        trainable,
        optimizer,
        batch,
        Some(shares),
        step,
        lr,
        step_seed,
        device,
        collective,
    )
}

/// One step on this rank's rows `batch`; `shares` (several ranks): per task, the share of the
/// global batch's labels these rows hold, `None` for a task the global batch has no label of.
#[allow(clippy::too_many_arguments)]
fn step_with_shares(
    trainable: Trainable,
    optimizer: &mut ModuleOptimizer,
    batch: &Batch,
    shares: Option<Vec<Option<f32>>>,
    step: usize,
    lr: f64,
    step_seed: u64,
    device: &Device,
    collective: &dyn Collective,
) -> std::result::Result<(Trainable, Option<StepLosses>), NonFiniteLoss> {
    let ranks = collective.size();
    let mut trainable = trainable;
    let input = ModelInput::from_batch(batch, device);
    let targets = ModelTargets::from_batch(batch, device).at_step(step);
    let mut surgery = None;
    if ranks == 1 && trainable.weighting.wants_task_gradients() {
        let gradients = shared_task_gradients(&trainable.model, &input, &targets);
        trainable.weighting.observe_task_gradients(&gradients);
        surgery = trainable
            .weighting
            .shared_gradient(&gradients, step_seed)
            .map(|shared| (gradients, shared));
    }
    let outputs = trainable.model.forward(&input);
    let mut terms = trainable.model.loss(&outputs, &targets);
    let mut values = StepLosses {
        tasks: terms
            .tasks
            .iter()
            .map(|l| l.as_ref().map_or(f64::NAN, |l| l.clone().into_scalar::<f32>() as f64))
            .collect(),
        auxiliary: terms
            .auxiliary
            .iter()
            .map(|(name, l)| (name.clone(), l.clone().into_scalar::<f32>() as f64))
            .collect(),
    };
    if ranks == 1 {
        check_finite(&values, &trainable.model.tasks)?;
    }
    if let Some(shares) = &shares {
        // Rank r's task loss weighed by N × its share of the task's labels, and the total by 1/N:
        // summed over the ranks, the task terms are the global batch's means and a weighting's
        // own terms (uncertainty's log σ) count once.
        for (loss, share) in terms.tasks.iter_mut().zip(shares) {
            *loss = loss.take().map(|l| l * (ranks as f32 * share.unwrap_or(0.0)));
        }
    }
    let has_auxiliary = !terms.auxiliary.is_empty();
    let total = trainable.weighting.combine(&terms.tasks);
    let total = terms.auxiliary.into_iter().fold(total, |total, (_, term)| match total {
        Some(t) => Some(t + term),
        None => Some(term),
    });
    let mut grads = match total {
        Some(total) if ranks == 1 => GradientsParams::from_grads(total.backward(), &trainable),
        Some(total) => GradientsParams::from_grads((total / ranks as f32).backward(), &trainable),
        None if ranks == 1 => return Ok((trainable, None)),
        // Still in the sum, which every rank must join.
        None => GradientsParams::new(),
    };
    if let Some(shares) = &shares {
        let mut global = weighted_losses(&values, shares, ranks);
        let summed = sum_gradients(&trainable, grads, &mut global, collective);
        values = global_losses(values, shares, &global);
        check_finite(&values, &trainable.model.tasks)?;
        match summed {
            Some(summed) => grads = summed,
            None => return Ok((trainable, None)),
        }
    }
    if let Some((layout, mut shared)) = surgery {
        // The weighting set the task losses' gradient on the shared parameters; the model's
        // auxiliary terms add theirs, as they do to the plain gradient.
        if has_auxiliary
            && let Some(auxiliary) = auxiliary_gradient(&trainable.model, &input, &targets, &layout)
        {
            for (s, a) in shared.iter_mut().zip(auxiliary) {
                *s += a;
            }
        }
        layout.replace(&trainable.model, &shared, &mut grads);
    }
    Ok((optimizer.step(lr, trainable, grads), Some(values)))
}

/// A task's NaN means "no label in this batch"; an infinite task loss, or an auxiliary term
/// that is not finite, means the run diverged.
fn check_finite(values: &StepLosses, tasks: &[TaskInfo]) -> std::result::Result<(), NonFiniteLoss> {
    if let Some(k) = values.tasks.iter().position(|v| v.is_infinite()) {
        return Err(NonFiniteLoss { term: tasks[k].name.clone() });
    }
    if let Some((name, _)) = values.auxiliary.iter().find(|(_, v)| !v.is_finite()) {
        return Err(NonFiniteLoss { term: name.clone() });
    }
    Ok(())
}

/// This rank's part of the global batch's losses, to be summed over the ranks: each task's mean
/// weighed by its share of the labels, each auxiliary term by 1/N.
fn weighted_losses(values: &StepLosses, shares: &[Option<f32>], ranks: usize) -> Vec<f32> {
    let tasks = values.tasks.iter().zip(shares).map(|(&loss, share)| match share {
        Some(share) if *share > 0.0 => (loss * *share as f64) as f32,
        _ => 0.0,
    });
    let auxiliary = values.auxiliary.iter().map(|(_, loss)| (*loss / ranks as f64) as f32);
    tasks.chain(auxiliary).collect()
}

/// The global batch's losses from their sum over the ranks (NaN for a task the batch has no
/// label of).
fn global_losses(local: StepLosses, shares: &[Option<f32>], summed: &[f32]) -> StepLosses {
    let n = local.tasks.len();
    StepLosses {
        tasks: shares
            .iter()
            .zip(summed)
            .map(|(share, &sum)| share.map_or(f64::NAN, |_| sum as f64))
            .collect(),
        auxiliary: local
            .auxiliary
            .into_iter()
            .zip(&summed[n..])
            .map(|((name, _), &sum)| (name, sum as f64))
            .collect(),
    }
}

/// A loss term that is infinite (or an auxiliary term that is NaN): the run diverged.
#[derive(Debug)]
pub struct NonFiniteLoss {
    pub term: String,
}

/// Trains a model on the training part of `data`, validating on its validation part. With a
/// `run_dir`, writes `metrics.jsonl` and `checkpoint/` there; with `resume`, continues from the
/// checkpoint found there.
pub fn train(
    config: &TrainConfig,
    model_config: &ModelConfig,
    data: &dyn TrainingData,
    run_dir: Option<&Path>,
    resume: bool,
    observer: &mut dyn TrainObserver,
) -> Result<TrainOutcome> {
    train_on_ranks(config, model_config, data, run_dir, resume, observer, &SingleProcess)
}

/// [`train`] as one rank of `collective`: every rank reads the same batches and trains on its
/// slice of each (`train_step_on_ranks`), making the model one process makes with the same batch
/// size (to float rounding); only rank 0 writes `metrics.jsonl` and `checkpoint/`. Every rank
/// reads the checkpoint on resume, so `run_dir` must be a path every rank sees.
pub fn train_on_ranks(
    config: &TrainConfig,
    model_config: &ModelConfig,
    data: &dyn TrainingData,
    run_dir: Option<&Path>,
    resume: bool,
    observer: &mut dyn TrainObserver,
    collective: &dyn Collective,
) -> Result<TrainOutcome> {
    config.validate()?;
    let writes = collective.is_root();
    // Rank 0 draws its initial weights before any other rank starts drawing: ranks that are
    // threads of one process share the random generator, and rank 0's draw must be the one a
    // single process makes (the others' are replaced by it below).
    let mut turn = [0.0];
    if !writes {
        collective.sum_f32(&mut turn);
    }
    let tasks: Vec<TaskInfo> = data.feature_map().tasks.clone();
    let task_names: Vec<String> = tasks.iter().map(|t| t.name.clone()).collect();
    config.weighting.check_tasks(&task_names)?;
    let shard_rows = data.shard().map(|shard| shard.rows());
    // With a sharded log, each rank's batches are its share of the global batch.
    let batch_size =
        shard_rows.map_or(config.batch_size, |rows| rows.local_batch_size(config.batch_size));
    let infer_device = Device::flex();
    let train_device = infer_device.clone().autodiff();
    train_device.seed(config.seed);
    let context = ModelContext::from_feature_map(model_config, data.feature_map());

    if let Some(dir) = run_dir.filter(|_| writes) {
        // What a killed run left half-written here (its checkpoint directory clears its own).
        seesaw_data::atomic::remove_stale_temp_files(dir)?;
    }
    let checkpoint = run_dir.map(|d| Checkpoint::new(d.join("checkpoint"))).transpose()?;
    let resumed = match (&checkpoint, resume) {
        (Some(c), true) => c.load_state()?,
        _ => None,
    };
    let mut state;
    let mut trainable;
    let mut optimizer_file = None;
    let mut best_model: Option<MultiTaskModel> = None;
    match (resumed, &checkpoint) {
        (Some(loaded), Some(checkpoint)) => {
            // Only `epochs` may change, and only upwards: a run resumed with more epochs
            // continues the same run (with a decaying learning rate, the decay is stretched over
            // the new total from the resumed step on). The gradient-cosine diagnostic may change
            // too: it draws its own batches and never touches the weights. Any other setting
            // would not continue the run.
            let comparable = |c: &TrainConfig| TrainConfig {
                epochs: 0,
                gradient_cosine_batches: 0,
                ..c.clone()
            };
            if comparable(&loaded.train) != comparable(config)
                || config.epochs < loaded.train.epochs
                || loaded.model != *model_config
            {
                return Err(TrainError::Checkpoint {
                    path: checkpoint.path(crate::checkpoint::STATE_FILE),
                    message: "the checkpoint was written with other settings (only epochs may \
                              grow and gradient_cosine_batches change on resume); start a new run \
                              directory"
                        .into(),
                });
            }
            if writes {
                checkpoint.remove_unreferenced(loaded.files.as_ref())?;
            }
            let context = context.clone().with_fitted(loaded.fitted.clone());
            let model = MultiTaskModel::new(model_config, &context, &train_device)?;
            trainable =
                Trainable { model, weighting: config.weighting.build(&task_names, &train_device) };
            if let Some(files) = &loaded.files {
                trainable = checkpoint.load_module(trainable, &files.trainable)?;
                optimizer_file = Some(files.optimizer.clone());
                if let Some(best) = &files.best {
                    let model = MultiTaskModel::new(model_config, &context, &infer_device)?;
                    best_model = Some(checkpoint.load_module(model, best)?);
                }
            }
            state = loaded;
            state.train = config.clone();
        }
        _ => {
            if let Some(checkpoint) = checkpoint.as_ref().filter(|_| writes) {
                checkpoint.clear()?;
            }
            let mut train_batches = UntilError::new(data.batches(Part::Train, batch_size, None));
            let model =
                MultiTaskModel::fit_new(model_config, &context, &mut train_batches, &train_device)?;
            train_batches.finish()?;
            state = CheckpointState {
                epochs_done: 0,
                history: Vec::new(),
                best_epoch: 0,
                best_score: None,
                train: config.clone(),
                model: model_config.clone(),
                fitted: model.fitted.clone(),
                files: None,
            };
            trainable =
                Trainable { model, weighting: config.weighting.build(&task_names, &train_device) };
        }
    }
    // Drawn now, in visit order, while rank 0 still has the random generator to itself.
    materialize_parameters(&trainable);
    if writes && collective.size() > 1 {
        collective.sum_f32(&mut turn);
    }
    if shard_rows.is_some() && state.epochs_done == 0 {
        // Each rank fitted the architecture on its own shard; all take rank 0's fit.
        trainable = adopt_root_fit(trainable, model_config, &context, &train_device, collective)?;
        state.fitted = trainable.model.fitted.clone();
    }
    // Every rank starts from rank 0's weights, whatever its random generator drew.
    trainable = broadcast_from_root(trainable, collective);
    if collective.size() > 1 && trainable.weighting.wants_task_gradients() {
        return Err(TrainError::Config(
            "the task weighting's rule needs each task's gradient (PCGrad, GradNorm), which \
             data-parallel training does not gather yet; train it in one process"
                .into(),
        ));
    }
    // Built once the parameters exist: lazy embedding updates group the tables by their ids.
    let mut optimizer = build_optimizer(config, &trainable);
    if let (Some(file), Some(checkpoint)) = (&optimizer_file, &checkpoint) {
        optimizer = checkpoint.load_optimizer(optimizer, file)?;
    }
    if let Some(dir) = run_dir.filter(|_| writes) {
        // One line per epoch of this run: drop lines of an earlier run in the same directory,
        // or of epochs written after the checkpoint being resumed from.
        write_jsonl(&dir.join(METRICS_FILE), &state.history)?;
    }

    let full_steps = match shard_rows {
        Some(rows) => rows.steps(Part::Train, config.batch_size),
        None => data.part_len(Part::Train).div_ceil(config.batch_size),
    };
    let step_on_ranks =
        if shard_rows.is_some() { train_shard_step_on_ranks } else { train_step_on_ranks };
    let steps_per_epoch = config.max_steps_per_epoch.map_or(full_steps, |m| m.min(full_steps));
    let total_steps = steps_per_epoch * config.epochs;
    let mut global_step = state.epochs_done * steps_per_epoch;
    let has_validation = data.part_len(Part::Valid) > 0;

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
        trainable.weighting.start_epoch(&loss_history);
        observer.on_epoch_start(epoch, steps_per_epoch);
        let started = Instant::now();
        let mut task_sums = vec![(0.0f64, 0usize); tasks.len()];
        let mut auxiliary_sums: BTreeMap<String, (f64, usize)> = BTreeMap::new();
        let mut samples = 0usize;
        let mut lr = config.learning_rate;
        let batch_seed = config.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(epoch as u64);
        let mut train_batches =
            UntilError::new(data.batches(Part::Train, batch_size, Some(batch_seed)));
        for (step, batch) in train_batches.by_ref().take(steps_per_epoch).enumerate() {
            collective.at_step(epoch, step);
            seesaw_data::fault::point("train:step");
            lr = learning_rate(
                config.learning_rate,
                config.warmup_steps,
                config.decay,
                global_step,
                total_steps,
            );
            let seed = step_seed(config.seed, global_step);
            let (stepped, losses) = step_on_ranks(
                trainable,
                &mut optimizer,
                &batch,
                global_step,
                lr,
                seed,
                &train_device,
                collective,
            )
            .map_err(|e| TrainError::Diverged { task: e.term, epoch, step })?;
            trainable = stepped;
            // Counted whether or not the batch had a label, so that the step number (and the
            // learning rate and seed that depend on it) after a resume, which starts from
            // epochs × steps per epoch, is the uninterrupted run's.
            global_step += 1;
            let Some(losses) = losses else { continue };
            for (sum, &value) in task_sums.iter_mut().zip(&losses.tasks) {
                if !value.is_nan() {
                    sum.0 += value;
                    sum.1 += 1;
                }
            }
            for (name, value) in &losses.auxiliary {
                let sum = auxiliary_sums.entry(name.clone()).or_default();
                sum.0 += value;
                sum.1 += 1;
            }
            // A sharded step trains every rank's batch, each about this one's size.
            samples += batch.size * shard_rows.map_or(1, |rows| rows.ranks());
            observer.on_step(step, &losses);
        }
        train_batches.finish()?;
        let train_seconds = started.elapsed().as_secs_f64();
        // The same few training batches after every epoch, drawn with a seed of their own: the
        // training batch order and the weights are the same with or without this diagnostic.
        let gradient_cosines = if config.gradient_cosine_batches > 0 {
            let seed = config.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ COSINE_BATCH_SALT;
            let mut batches =
                UntilError::new(data.batches(Part::Train, config.batch_size, Some(seed)));
            let cosines = mean_gradient_cosines(
                &trainable.model,
                batches.by_ref().take(config.gradient_cosine_batches),
                &train_device,
            );
            batches.finish()?;
            cosines
        } else {
            BTreeMap::new()
        };

        let inference = trainable.model.valid();
        let valid = if has_validation {
            let mut batches =
                UntilError::new(data.batches(Part::Valid, config.eval_batch_size, None));
            let valid = evaluate_on_ranks(
                &inference,
                &tasks,
                batches.by_ref(),
                &infer_device,
                data,
                collective,
            )?;
            batches.finish()?;
            valid
        } else {
            Evaluation::default()
        };
        let epoch_score = score(&valid, &tasks, &config.early_stopping.monitor);
        let mean = |(sum, n): (f64, usize)| sum / n as f64;
        let record = EpochRecord {
            epoch,
            steps: steps_per_epoch,
            train_loss: task_names
                .iter()
                .zip(&task_sums)
                .filter(|(_, s)| s.1 > 0)
                .map(|(t, &s)| (t.clone(), mean(s)))
                .collect(),
            auxiliary_loss: auxiliary_sums.into_iter().map(|(n, s)| (n, mean(s))).collect(),
            task_weights: task_names.iter().cloned().zip(trainable.weighting.weights()).collect(),
            gradient_cosines,
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
        if let Some(dir) = run_dir.filter(|_| writes) {
            append_jsonl(&dir.join(METRICS_FILE), &record)?;
        }
        if let Some(checkpoint) = checkpoint.as_ref().filter(|_| writes) {
            let best = improved.then_some(best_model.as_ref()).flatten();
            checkpoint.save(&mut state, &trainable, &optimizer, best)?;
        }
        observer.on_epoch_end(&record);
    }
    let model = best_model.unwrap_or_else(|| trainable.model.valid());
    Ok(TrainOutcome {
        model,
        history: state.history,
        best_epoch: state.best_epoch,
        best_score: state.best_score,
    })
}

/// The configured optimiser for `module`'s parameters; with lazy embedding updates, its
/// embedding tables are stepped row by row (`crate::lazy_adam`).
/// `trainable` with the architecture's fit (`ArchitectureKind::fit`) rank 0 made: rank 0's own
/// model, the others' rebuilt from it when theirs (fitted on their shards) differs. Their
/// weights are replaced by rank 0's right after.
fn adopt_root_fit(
    trainable: Trainable,
    model_config: &ModelConfig,
    context: &ModelContext,
    device: &Device,
    collective: &dyn Collective,
) -> Result<Trainable> {
    let mine = serde_json::to_vec(&trainable.model.fitted).expect("a fitted state serialises");
    let root = collective.all_gather_bytes(&mine).swap_remove(0);
    if root == mine {
        return Ok(trainable);
    }
    let fitted = serde_json::from_slice(&root).map_err(|e| {
        TrainError::Config(format!("rank 0's fitted architecture state is unreadable: {e}"))
    })?;
    let model = MultiTaskModel::new(model_config, &context.clone().with_fitted(fitted), device)?;
    materialize_parameters(&model);
    Ok(Trainable { model, weighting: trainable.weighting })
}

pub fn build_optimizer<M: Module>(config: &TrainConfig, module: &M) -> ModuleOptimizer {
    let lambda = config.weight_decay as f32;
    let (dense, rule) = match config.optimizer {
        OptimizerKind::Adam => {
            let decay = (config.weight_decay > 0.0).then(|| WeightDecayConfig::new(lambda));
            (AdamConfig::new().with_weight_decay(decay).init(), LazyRule::Adam { l2: lambda })
        }
        OptimizerKind::AdamW => {
            (AdamWConfig::new().with_weight_decay(lambda).init(), LazyRule::AdamW { decay: lambda })
        }
    };
    match config.embedding_updates {
        EmbeddingUpdates::Dense => dense,
        EmbeddingUpdates::Lazy => dense.with_group(
            ParamGroup::from_ids(embedding_table_ids(module)),
            LazyAdam::new(rule),
            None,
        ),
    }
}

/// Replaces the metrics file with one line per record, atomically.
fn write_jsonl(path: &Path, records: &[EpochRecord]) -> Result<()> {
    let mut text = String::new();
    for record in records {
        text.push_str(&serde_json::to_string(record).expect("an epoch record serialises"));
        text.push('\n');
    }
    seesaw_data::atomic::write(path, text.as_bytes()).map_err(|e| checkpoint_error(path, e))?;
    Ok(())
}
