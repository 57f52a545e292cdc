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
//! A request of at least `split_rows` rows that a worker takes while another worker is idle is
//! scored in two halves, one on each (`Reply` puts the answer back together): on a light load a
//! request's model call takes about half as long, and when every worker is busy nothing is split.
//!
//! A job carries the model it was encoded with, and jobs are only batched with jobs of the same
//! model: a reload never mixes encodings, and a request that started on the old model finishes
//! on it.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
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
    /// A request of at least this many rows is scored in two halves when a worker is idle as it
    /// is taken (0: never split).
    pub split_rows: usize,
    /// Pin worker i to the i-th core the process may run on (when there are as many cores as
    /// workers). Without it, on the 2-core KVM guests we measure on, the kernel often queued a
    /// woken worker on the busy core of the worker that woke it instead of waking the idle one:
    /// a request's second half then waited for its first (1.4 ms in 1 of 10 requests).
    pub pin_workers: bool,
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
            // Halves of 128 rows or more: the KuaiRand cross-stitch model scores 250 rows in
            // 1.4 ms and 500 in 2.4 ms, so below that the hand-off and the second call's fixed
            // costs eat most of the gain.
            split_rows: 256,
            pin_workers: true,
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
    reply: Reply,
}

impl Job {
    /// The job's rows in two jobs, the first `at` rows and the rest, answering the request
    /// together.
    fn split(self, at: usize) -> (Job, Job) {
        let Job { model, batch, groups, reply } = self;
        let (first_groups, second_groups) = split_groups(&groups, at);
        let (first_reply, second_reply) = reply.split(batch.size, at);
        let first = Job {
            model: model.clone(),
            batch: batch.slice_rows(0..at),
            groups: first_groups,
            reply: first_reply,
        };
        let second = Job {
            model,
            batch: batch.slice_rows(at..batch.size),
            groups: second_groups,
            reply: second_reply,
        };
        (first, second)
    }

    /// Rows the queue counts for this job: a request's half as a full call, so that it is
    /// scored at once instead of waiting for company, which would undo the split.
    fn queue_rows(&self, full_call: usize) -> usize {
        match self.reply {
            Reply::Whole(_) => self.batch.size,
            Reply::Part { .. } => self.batch.size.max(full_call),
        }
    }
}

/// Row group sizes cut at row `at`: those of rows `..at` and those of rows `at..` (a group that
/// spans the cut is in both, each with its own rows).
fn split_groups(groups: &[usize], at: usize) -> (Vec<usize>, Vec<usize>) {
    let (mut first, mut second) = (Vec::new(), Vec::new());
    let mut start = 0;
    for &size in groups {
        let end = start + size;
        if end <= at {
            first.push(size);
        } else if start >= at {
            second.push(size);
        } else {
            first.push(at - start);
            second.push(end - at);
        }
        start = end;
    }
    (first, second)
}

/// Where a job's predictions go: the request's answer, or one half of it.
enum Reply {
    Whole(oneshot::Sender<Result<JobPredictions, ApiError>>),
    /// Rows `offset..` of a request scored in parts; the part that finishes last answers.
    Part {
        answer: Arc<Mutex<PartsAnswer>>,
        offset: usize,
    },
}

/// A request scored in parts, while its parts are being scored.
struct PartsAnswer {
    sender: Option<oneshot::Sender<Result<JobPredictions, ApiError>>>,
    rows: usize,
    parts_left: usize,
    /// Per score, one prediction per row of the request, filled in as the parts finish.
    predictions: JobPredictions,
    failed: Option<ApiError>,
}

impl Reply {
    /// Two replies for a job of `rows` rows cut at row `at`.
    fn split(self, rows: usize, at: usize) -> (Reply, Reply) {
        let (answer, offset) = match self {
            Reply::Whole(sender) => {
                let answer = PartsAnswer {
                    sender: Some(sender),
                    rows,
                    parts_left: 1,
                    predictions: Vec::new(),
                    failed: None,
                };
                (Arc::new(Mutex::new(answer)), 0)
            }
            Reply::Part { answer, offset } => (answer, offset),
        };
        lock(&answer).parts_left += 1;
        let second = Reply::Part { answer: answer.clone(), offset: offset + at };
        (Reply::Part { answer, offset }, second)
    }

    /// Whether the client has gone (timed out, disconnected): its rows are not worth a call.
    fn is_closed(&self) -> bool {
        match self {
            Reply::Whole(sender) => sender.is_closed(),
            Reply::Part { answer, .. } => {
                lock(answer).sender.as_ref().is_none_or(|s| s.is_closed())
            }
        }
    }

    /// This job's predictions (one per row per score) or its failure.
    fn send(self, outcome: Result<JobPredictions, ApiError>) {
        match self {
            // The receiver may have gone; nothing to do then.
            Reply::Whole(sender) => {
                let _ = sender.send(outcome);
            }
            Reply::Part { answer, offset } => {
                let mut answer = lock(&answer);
                match outcome {
                    Ok(own) => {
                        if answer.predictions.is_empty() {
                            answer.predictions = vec![vec![0.0; answer.rows]; own.len()];
                        }
                        for (all, part) in answer.predictions.iter_mut().zip(&own) {
                            all[offset..offset + part.len()].copy_from_slice(part);
                        }
                    }
                    Err(error) => answer.failed = Some(error),
                }
                answer.parts_left -= 1;
                if answer.parts_left == 0 {
                    let outcome = match answer.failed.take() {
                        Some(error) => Err(error),
                        None => Ok(std::mem::take(&mut answer.predictions)),
                    };
                    if let Some(sender) = answer.sender.take() {
                        let _ = sender.send(outcome);
                    }
                }
            }
        }
    }
}

fn lock(answer: &Mutex<PartsAnswer>) -> MutexGuard<'_, PartsAnswer> {
    // Every change to a PartsAnswer leaves it whole; a panic elsewhere cannot break it.
    answer.lock().unwrap_or_else(PoisonError::into_inner)
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
        let cores = if config.pin_workers { worker_cores(workers) } else { None };
        let threads = (0..workers)
            .map(|i| {
                let (queue, metrics, device) = (queue.clone(), metrics.clone(), device.clone());
                let core = cores.as_ref().map(|cores| cores[i]);
                std::thread::Builder::new()
                    .name(format!("seesaw-score-{i}"))
                    .spawn(move || {
                        if let Some(core) = core
                            && !core_affinity::set_for_current(core)
                        {
                            tracing::warn!(
                                worker = i,
                                "could not pin the scoring worker to a core"
                            );
                        }
                        work(i, &queue, &metrics, &device, config)
                    })
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
        match self.queue.0.push(Job { model, batch, groups, reply: Reply::Whole(reply) }) {
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

/// A core for each of `workers` workers, among those the process may run on; `None` when there
/// are fewer (pinning two workers to one core would only make them take turns).
fn worker_cores(workers: usize) -> Option<Vec<core_affinity::CoreId>> {
    let cores = core_affinity::get_core_ids()?;
    (cores.len() >= workers).then(|| cores.into_iter().take(workers).collect())
}

fn work(
    worker: usize,
    queue: &JobQueue<Job>,
    metrics: &Metrics,
    device: &Device,
    config: BatcherConfig,
) {
    let full_call = config.max_batch_rows;
    while let Some((mut collected, depth)) =
        queue.next_batch(worker, full_call, config.max_wait, |job| job.queue_rows(full_call))
    {
        metrics.queue_depth().set(depth as i64);
        // A large request taken while another worker idles: that worker scores its second half.
        if let [job] = collected.as_slice()
            && config.split_rows > 0
            && job.batch.size >= config.split_rows
            && queue.has_idle_worker()
        {
            let job = collected.pop().expect("one job");
            let at = job.batch.size / 2;
            let (first, second) = job.split(at);
            queue.push_front(second);
            collected.push(first);
        }
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
                job.reply.send(Err(ApiError::internal("the model failed on this batch")));
            }
            return;
        }
    };
    let mut offset = 0;
    for job in jobs {
        let rows = offset..offset + job.batch.size;
        offset = rows.end;
        let own = predictions.iter().map(|task| task[rows.clone()].to_vec()).collect();
        job.reply.send(Ok(own));
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

    #[test]
    fn row_groups_cut_at_a_row_keep_every_row_in_its_group() {
        // Groups [3, 4, 2] cut inside the second group, at its edge, and at the ends.
        assert_eq!(split_groups(&[3, 4, 2], 5), (vec![3, 2], vec![2, 2]));
        assert_eq!(split_groups(&[3, 4, 2], 3), (vec![3], vec![4, 2]));
        assert_eq!(split_groups(&[3, 4, 2], 7), (vec![3, 4], vec![2]));
        assert_eq!(split_groups(&[500], 250), (vec![250], vec![250]));
    }

    /// Two parts of a 5-row request with two scores, answered in either order.
    fn answered_in_order(second_first: bool) -> Result<JobPredictions, ApiError> {
        let (sender, mut receiver) = oneshot::channel();
        let (first, second) = Reply::Whole(sender).split(5, 2);
        let first_rows = vec![vec![0.0, 1.0], vec![10.0, 11.0]];
        let second_rows = vec![vec![2.0, 3.0, 4.0], vec![12.0, 13.0, 14.0]];
        let (a, b) = if second_first {
            (second.send_and(second_rows), first.send_and(first_rows))
        } else {
            (first.send_and(first_rows), second.send_and(second_rows))
        };
        // Nothing is answered before the last part is in.
        assert!(a, "the first part answered does not complete the request");
        assert!(!b);
        receiver.try_recv().expect("answered once both parts are in")
    }

    impl Reply {
        /// `send`, then whether the request is still waiting for another part.
        fn send_and(self, predictions: JobPredictions) -> bool {
            let answer = match &self {
                Reply::Part { answer, .. } => answer.clone(),
                Reply::Whole(_) => unreachable!("the tests send parts"),
            };
            self.send(Ok(predictions));
            lock(&answer).sender.is_some()
        }
    }

    #[test]
    fn a_request_scored_in_two_parts_gets_its_rows_back_in_order() {
        let expected = vec![vec![0.0, 1.0, 2.0, 3.0, 4.0], vec![10.0, 11.0, 12.0, 13.0, 14.0]];
        assert_eq!(answered_in_order(false).unwrap(), expected);
        assert_eq!(answered_in_order(true).unwrap(), expected);
    }

    #[test]
    fn a_failed_part_fails_the_request_once_and_a_gone_client_closes_both_parts() {
        let (sender, mut receiver) = oneshot::channel();
        let (first, second) = Reply::Whole(sender).split(4, 2);
        first.send(Err(ApiError::internal("the model failed on this batch")));
        assert!(receiver.try_recv().is_err(), "no answer while a part is still scoring");
        second.send(Ok(vec![vec![1.0, 2.0]]));
        let error = receiver.try_recv().unwrap().unwrap_err();
        assert_eq!((error.status, error.code), (500, "internal"));

        let (sender, receiver) = oneshot::channel();
        let (first, second) = Reply::Whole(sender).split(4, 2);
        assert!(!first.is_closed() && !second.is_closed());
        drop(receiver);
        assert!(first.is_closed() && second.is_closed());
    }
}
