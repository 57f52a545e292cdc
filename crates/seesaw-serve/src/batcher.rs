//! Micro-batching: concurrent requests are scored together. Requests wait in a bounded queue; a
//! worker takes what is queued (up to `max_batch_rows`), waits at most `max_wait` for more,
//! scores the lot and answers each request with its own rows. Small requests share a model call;
//! a request of `MIN_ROWS_PER_CALL` rows or more gets its own. Each request hands the model its
//! row groups (runs of candidates that share the user and the context), so the model computes
//! the user and context part of its first layers once per group (`ModelInput::row_groups`).
//! When the queue is full a request is refused at once (503) instead of waiting without bound.
//!
//! A job carries the model it was encoded with, and jobs are only batched with jobs of the same
//! model: a reload never mixes encodings, and a request that started on the old model finishes
//! on it.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use burn::tensor::Device;
use seesaw_data::batch::Batch;
use seesaw_models::{ModelInput, to_vec};
use tokio::sync::oneshot;

use crate::error::ApiError;
use crate::loaded_model::{EncodedRequest, LoadedModel};
use crate::metrics::Metrics;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatcherConfig {
    /// Requests that may wait to be scored; one more is answered 503.
    pub queue_capacity: usize,
    /// A worker stops adding requests to a batch once it holds this many rows.
    pub max_batch_rows: usize,
    /// How long a worker waits for more requests after the first one of a batch.
    pub max_wait: Duration,
    /// Threads that run the model.
    pub workers: usize,
}

impl Default for BatcherConfig {
    fn default() -> Self {
        Self {
            queue_capacity: 64,
            max_batch_rows: 4096,
            max_wait: Duration::from_micros(500),
            workers: 1,
        }
    }
}

/// Per task (model order), then per extra score (declaration order), one prediction per
/// candidate row of the request.
pub type JobPredictions = Vec<Vec<f32>>;

struct Job {
    model: Arc<LoadedModel>,
    batch: Batch,
    /// The request's row groups (see `LoadedModel::encode`).
    groups: Vec<usize>,
    reply: oneshot::Sender<Result<JobPredictions, ApiError>>,
}

/// The sending side, cheap to clone into request handlers.
#[derive(Clone)]
pub struct Batcher {
    queue: SyncSender<Job>,
    queued: Arc<AtomicUsize>,
    metrics: Arc<Metrics>,
    capacity: usize,
}

pub struct BatcherWorkers {
    threads: Vec<JoinHandle<()>>,
}

impl BatcherWorkers {
    /// Waits for the workers to finish the jobs already queued; they stop once every `Batcher`
    /// clone is dropped.
    pub fn join(self) {
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

impl Batcher {
    pub fn start(
        config: BatcherConfig,
        metrics: Arc<Metrics>,
        device: Device,
    ) -> (Self, BatcherWorkers) {
        let (queue, jobs) = std::sync::mpsc::sync_channel(config.queue_capacity.max(1));
        let jobs = Arc::new(Mutex::new(jobs));
        let queued = Arc::new(AtomicUsize::new(0));
        let threads = (0..config.workers.max(1))
            .map(|i| {
                let (jobs, queued, metrics, device) =
                    (jobs.clone(), queued.clone(), metrics.clone(), device.clone());
                std::thread::Builder::new()
                    .name(format!("seesaw-score-{i}"))
                    .spawn(move || work(&jobs, &queued, &metrics, &device, config))
                    .expect("spawning a scoring thread")
            })
            .collect();
        let batcher = Self { queue, queued, metrics, capacity: config.queue_capacity.max(1) };
        (batcher, BatcherWorkers { threads })
    }

    /// Queues a request's rows for scoring; refuses at once when the queue is full.
    pub fn submit(
        &self,
        model: Arc<LoadedModel>,
        request: EncodedRequest,
    ) -> Result<oneshot::Receiver<Result<JobPredictions, ApiError>>, ApiError> {
        let (reply, answer) = oneshot::channel();
        let EncodedRequest { batch, groups } = request;
        // Counted before sending so that the worker's decrement can never run first.
        let depth = self.queued.fetch_add(1, Ordering::SeqCst) + 1;
        match self.queue.try_send(Job { model, batch, groups, reply }) {
            Ok(()) => {
                self.metrics.queue_depth().set(depth as i64);
                Ok(answer)
            }
            Err(e) => {
                self.queued.fetch_sub(1, Ordering::SeqCst);
                Err(match e {
                    TrySendError::Full(_) => ApiError::overloaded(format!(
                        "the scoring queue is full ({} requests waiting); retry shortly",
                        self.capacity
                    )),
                    TrySendError::Disconnected(_) => {
                        ApiError::overloaded("the server is shutting down")
                    }
                })
            }
        }
    }
}

fn work(
    jobs: &Mutex<Receiver<Job>>,
    queued: &AtomicUsize,
    metrics: &Metrics,
    device: &Device,
    config: BatcherConfig,
) {
    loop {
        let collected = {
            let Ok(receiver) = jobs.lock() else { return };
            collect(&receiver, config)
        };
        let Some(collected) = collected else { return };
        let depth = queued.fetch_sub(collected.len(), Ordering::SeqCst) - collected.len();
        metrics.queue_depth().set(depth as i64);
        let mut pending = collected;
        while let Some(first) = pending.first() {
            let model = first.model.clone();
            let (same, rest): (Vec<Job>, Vec<Job>) =
                pending.into_iter().partition(|job| Arc::ptr_eq(&job.model, &model));
            score(&model, same, metrics, device);
            pending = rest;
        }
    }
}

/// The next batch of jobs: blocks for the first one (None once every sender is gone), then takes
/// what is queued and waits up to `max_wait` for more, until `max_batch_rows` rows are held.
fn collect(receiver: &Receiver<Job>, config: BatcherConfig) -> Option<Vec<Job>> {
    let first = receiver.recv().ok()?;
    let mut rows = first.batch.size;
    let mut jobs = vec![first];
    let deadline = Instant::now() + config.max_wait;
    while rows < config.max_batch_rows {
        let next = match receiver.try_recv() {
            Ok(job) => job,
            Err(TryRecvError::Disconnected) => break,
            Err(TryRecvError::Empty) => {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                match receiver.recv_timeout(deadline - now) {
                    Ok(job) => job,
                    Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
                }
            }
        };
        rows += next.batch.size;
        jobs.push(next);
    }
    Some(jobs)
}

/// Requests are concatenated into one model call until it holds this many rows; a bigger request
/// gets a call of its own. The shared-slot fast path gathers per-request results back to rows
/// in a concatenated call, which costs more than it saves once requests are this large.
const MIN_ROWS_PER_CALL: usize = 256;

/// Scores the jobs' rows (a few model calls, see `MIN_ROWS_PER_CALL`) and answers each job with
/// its slice.
fn score(model: &LoadedModel, jobs: Vec<Job>, metrics: &Metrics, device: &Device) {
    // A client that gave up (timed out, disconnected) is not worth a model call.
    let jobs: Vec<Job> = jobs.into_iter().filter(|job| !job.reply.is_closed()).collect();
    if jobs.is_empty() {
        return;
    }
    let rows: usize = jobs.iter().map(|job| job.batch.size).sum();
    let n_scores = model.map.tasks.len() + model.model.extra_scores.len();
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
        let mut predictions: Vec<Vec<f32>> = vec![Vec::with_capacity(rows); n_scores];
        let mut calls: Vec<Vec<&Job>> = vec![Vec::new()];
        let mut call_rows = 0;
        for job in &jobs {
            if call_rows >= MIN_ROWS_PER_CALL {
                calls.push(Vec::new());
                call_rows = 0;
            }
            calls.last_mut().expect("one call at least").push(job);
            call_rows += job.batch.size;
        }
        for call in calls {
            let call_started = Instant::now();
            let joined;
            let batch = if let [only] = call.as_slice() {
                &only.batch
            } else {
                joined = concat(call.iter().map(|job| &job.batch));
                &joined
            };
            let groups: Vec<usize> =
                call.iter().flat_map(|job| job.groups.iter().copied()).collect();
            let input = ModelInput::from_batch(batch, device);
            // The plain forward when groups are too small for the split to pay.
            let input =
                if groups.len() * 4 > batch.size { input } else { input.with_row_groups(groups) };
            let outputs = model.model.forward(&input);
            let scores = outputs.predictions().into_iter().chain(outputs.extra_predictions());
            for (all, score) in predictions.iter_mut().zip(scores) {
                all.extend(to_vec(score));
            }
            metrics.observe_model_call(batch.size, call.len(), call_started.elapsed());
        }
        predictions
    }));
    let predictions = match outcome {
        Ok(predictions) => predictions,
        Err(_) => {
            tracing::error!(rows, "the model panicked while scoring a batch");
            for job in jobs {
                let _ = job.reply.send(Err(ApiError::internal("the model failed on this batch")));
            }
            return;
        }
    };
    let mut offset = 0;
    for job in jobs {
        let rows = offset..offset + job.batch.size;
        offset = rows.end;
        let own = predictions.iter().map(|task| task[rows.clone()].to_vec()).collect();
        // The receiver may have gone since the check above; nothing to do then.
        let _ = job.reply.send(Ok(own));
    }
}

/// The model inputs of several batches, one after another (labels are not needed to score).
fn concat<'a>(batches: impl Iterator<Item = &'a Batch> + Clone) -> Batch {
    let first = batches.clone().next().expect("at least one batch to join");
    let mut joined = Batch {
        n_categorical: first.n_categorical,
        n_dense: first.n_dense,
        multi_width: first.multi_width,
        n_tasks: first.n_tasks,
        ..Default::default()
    };
    for batch in batches {
        joined.size += batch.size;
        joined.categorical.extend_from_slice(&batch.categorical);
        joined.dense.extend_from_slice(&batch.dense);
        joined.multi.extend_from_slice(&batch.multi);
        joined.rows.extend_from_slice(&batch.rows);
        joined.user_group.extend_from_slice(&batch.user_group);
        if let Some(clips) = &batch.clips {
            let into = joined.clips.get_or_insert_with(|| seesaw_data::batch::ClipBatch {
                n_clips: clips.n_clips,
                dim: clips.dim,
                ..Default::default()
            });
            into.features.extend_from_slice(&clips.features);
        }
    }
    joined
}
