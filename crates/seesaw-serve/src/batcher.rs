//! Micro-batching over the cores: requests wait in a bounded queue, and one scoring thread per
//! core (by default) takes them. A worker takes the first queued job and, while its call holds
//! fewer than `max_batch_rows` rows, joins what else is queued, waiting at most `max_wait` for
//! more; it scores the lot in one model call and answers each request with its own rows. So
//! small requests share a call, while a larger one is scored at once and the jobs behind it are
//! left to the other workers: requests that arrive together are scored side by side rather than
//! one after another.
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
            collect(&receiver, config, |job| job.batch.size)
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

/// The next call's jobs: blocks for the first one (None once every sender is gone), then, while
/// they hold fewer than `max_batch_rows` rows, takes what is queued and waits up to `max_wait`
/// for more.
fn collect<J>(
    receiver: &Receiver<J>,
    config: BatcherConfig,
    rows_of: impl Fn(&J) -> usize,
) -> Option<Vec<J>> {
    let first = receiver.recv().ok()?;
    let mut rows = rows_of(&first);
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
        rows += rows_of(&next);
        jobs.push(next);
    }
    Some(jobs)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn config(max_batch_rows: usize, max_wait: Duration) -> BatcherConfig {
        BatcherConfig { queue_capacity: 16, max_batch_rows, max_wait, workers: 2 }
    }

    /// Jobs stand for their row counts.
    fn queue(jobs: &[usize]) -> Receiver<usize> {
        let (send, receive) = std::sync::mpsc::sync_channel(16);
        jobs.iter().for_each(|&rows| send.send(rows).unwrap());
        receive
    }

    #[test]
    fn small_requests_share_a_call_up_to_the_row_limit() {
        let receiver = queue(&[10, 20, 30, 250, 5]);
        let config = config(256, Duration::ZERO);
        // 10 + 20 + 30 + 250 crosses 256: the call stops taking requests there.
        assert_eq!(collect(&receiver, config, |&r| r), Some(vec![10, 20, 30, 250]));
        assert_eq!(collect(&receiver, config, |&r| r), Some(vec![5]));
    }

    #[test]
    fn a_full_call_leaves_the_requests_behind_it_to_other_workers() {
        // Requests that arrive together: each worker takes one, instead of the first worker
        // taking all of them and scoring them one after another while the others wait.
        let receiver = queue(&[500, 500, 500]);
        let config = config(256, Duration::from_secs(60));
        let started = Instant::now();
        for _ in 0..3 {
            assert_eq!(collect(&receiver, config, |&r| r), Some(vec![500]));
        }
        // A full call does not wait for company (the wait here is a minute).
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn a_small_call_waits_for_company_at_most_max_wait() {
        let (send, receiver) = std::sync::mpsc::sync_channel(4);
        send.send(10).unwrap();
        let late = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            send.send(20).unwrap();
            send // kept alive: a closed queue would end the wait early
        });
        let started = Instant::now();
        let joined = collect(&receiver, config(256, Duration::from_millis(300)), |&r| r);
        assert_eq!(joined, Some(vec![10, 20]));
        // Still short of the limit, it waited out the rest of max_wait, and no longer.
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert!(started.elapsed() < Duration::from_secs(5));
        let _send = late.join().unwrap();
    }
}
