//! Micro-batching over the cores: requests wait in a bounded queue (`crate::job_queue`), and one
//! scoring thread per core (by default) takes them, the most recently idle one first. A worker
//! takes the first queued job and, while its call holds fewer than `max_batch_rows` rows, joins
//! what else is queued, waiting at most `max_wait` for more; it scores the lot in one model call
//! and answers each request with its own rows. So small requests share a call, while a larger
//! one is scored at once and the jobs behind it are left to the other workers: requests that
//! arrive together are scored side by side rather than one after another.
//!
//! Each job hands the model its row groups (runs of candidates that share the user and the
//! context), so the model computes the user and context part of its first layers once per group
//! (`ModelInput::row_groups`). When the queue is full a request is refused at once (503) instead
//! of waiting without bound.
//!
//! A job carries the model it was encoded with, and jobs are only batched with jobs of the same
//! model: a reload never mixes encodings, and a request that started on the old model finishes
//! on it.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use burn::tensor::Device;
use seesaw_data::batch::Batch;
use seesaw_models::{ModelInput, to_vec};
use tokio::sync::oneshot;

use crate::error::ApiError;
use crate::job_queue::{JobQueue, Refused};
use crate::loaded_model::{EncodedRequest, LoadedModel};
use crate::metrics::Metrics;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatcherConfig {
    /// Requests that may wait to be scored; one more is answered 503.
    pub queue_capacity: usize,
    /// A model call takes no more requests once it holds this many rows, and one that holds
    /// them is scored without waiting for more. Small requests share a call; a larger one is
    /// scored alone, and the requests queued behind it are left to the other workers. (The
    /// shared-slot fast path gathers each request's results back to rows in a joined call,
    /// which costs more than it saves once requests are this large.)
    pub max_batch_rows: usize,
    /// How long a call of fewer than `max_batch_rows` rows waits for more requests.
    pub max_wait: Duration,
    /// Threads that run the model.
    pub workers: usize,
}

impl Default for BatcherConfig {
    fn default() -> Self {
        Self {
            queue_capacity: 64,
            max_batch_rows: 256,
            max_wait: Duration::from_micros(500),
            // One per core: a model call runs on one thread, so a second core only helps when a
            // second thread can score.
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
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
    queue: Arc<QueueSender>,
    metrics: Arc<Metrics>,
}

/// The workers' queue as the request handlers hold it: closed when the last `Batcher` clone
/// drops it, so that the workers finish what is queued and stop.
struct QueueSender(Arc<JobQueue<Job>>);

impl Drop for QueueSender {
    fn drop(&mut self) {
        self.0.close();
    }
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
        let workers = config.workers.max(1);
        let queue = Arc::new(JobQueue::new(config.queue_capacity, workers));
        let threads = (0..workers)
            .map(|i| {
                let (queue, metrics, device) = (queue.clone(), metrics.clone(), device.clone());
                std::thread::Builder::new()
                    .name(format!("seesaw-score-{i}"))
                    .spawn(move || work(i, &queue, &metrics, &device, config))
                    .expect("spawning a scoring thread")
            })
            .collect();
        let batcher = Self { queue: Arc::new(QueueSender(queue)), metrics };
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
        match self.queue.0.push(Job { model, batch, groups, reply }) {
            Ok(depth) => {
                self.metrics.queue_depth().set(depth as i64);
                Ok(answer)
            }
            Err(Refused::Full(_)) => Err(ApiError::overloaded(format!(
                "the scoring queue is full ({} requests waiting); retry shortly",
                self.queue.0.capacity()
            ))),
            Err(Refused::Closed(_)) => Err(ApiError::overloaded("the server is shutting down")),
        }
    }
}

fn work(
    worker: usize,
    queue: &JobQueue<Job>,
    metrics: &Metrics,
    device: &Device,
    config: BatcherConfig,
) {
    while let Some((collected, depth)) =
        queue.next_batch(worker, config.max_batch_rows, config.max_wait, |job| job.batch.size)
    {
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

/// Scores the jobs' rows in one model call and answers each job with its slice.
fn score(model: &LoadedModel, jobs: Vec<Job>, metrics: &Metrics, device: &Device) {
    // A client that gave up (timed out, disconnected) is not worth a model call.
    let jobs: Vec<Job> = jobs.into_iter().filter(|job| !job.reply.is_closed()).collect();
    if jobs.is_empty() {
        return;
    }
    let rows: usize = jobs.iter().map(|job| job.batch.size).sum();
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
        let call_started = Instant::now();
        let joined;
        let batch = if let [only] = jobs.as_slice() {
            &only.batch
        } else {
            joined = concat(jobs.iter().map(|job| &job.batch));
            &joined
        };
        let groups: Vec<usize> = jobs.iter().flat_map(|job| job.groups.iter().copied()).collect();
        // A served model's weights never change, so its blocks may keep what they derive from
        // them (the first layers' split weight rows, the joined embedding tables).
        let input = ModelInput::from_batch(batch, device).with_frozen_parameters();
        // The plain forward when groups are too small for the split to pay.
        let input =
            if groups.len() * 4 > batch.size { input } else { input.with_row_groups(groups) };
        let outputs = model.model.forward(&input);
        let scores = outputs.predictions().into_iter().chain(outputs.extra_predictions());
        let predictions: Vec<Vec<f32>> = scores.map(to_vec).collect();
        metrics.observe_model_call(batch.size, jobs.len(), call_started.elapsed());
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
