//! The scoring workers' queue: bounded, and it hands work to the worker that went idle last.
//!
//! Why not a channel behind a mutex, as before: the workers waiting for the mutex took turns, so
//! at a light load every request went to the other thread than the one before it, whose caches
//! had gone cold in the meantime (the core's L2, its malloc arena, gemm's thread-local packing
//! buffers). Measured on the configs/kuairand.toml model at 1 client × 100 requests/s, the mean
//! model call was 2.82 ms with two workers taking turns and 2.33 ms with one worker. Waking the
//! most recently idle worker keeps a light load on one warm thread, and still brings in the
//! others as soon as requests arrive together.
//!
//! A worker that has taken a job may wait a little for company (`next_batch`'s `max_wait`); while
//! it waits, new jobs go to it rather than to an idle worker, so that small requests share a call.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

pub struct JobQueue<J> {
    state: Mutex<State<J>>,
    /// One per worker: a worker waits on its own, so that a push wakes the one chosen.
    wake: Vec<Condvar>,
    capacity: usize,
}

struct State<J> {
    jobs: VecDeque<J>,
    /// Workers waiting for a job, the most recently idle last.
    idle: Vec<usize>,
    /// The worker waiting for company for the call it has started, if one is.
    collecting: Option<usize>,
    closed: bool,
}

/// Why a job was not queued; the job comes back.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused<J> {
    /// `capacity` jobs are waiting already.
    Full(J),
    /// The queue was closed: no job will be taken any more.
    Closed(J),
}

impl<J> JobQueue<J> {
    /// A queue for `workers` workers (numbered 0..workers) that holds at most `capacity` jobs.
    pub fn new(capacity: usize, workers: usize) -> Self {
        Self {
            state: Mutex::new(State {
                jobs: VecDeque::new(),
                idle: Vec::new(),
                collecting: None,
                closed: false,
            }),
            wake: (0..workers).map(|_| Condvar::new()).collect(),
            capacity: capacity.max(1),
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Queues a job and wakes the worker that should take it; the jobs now waiting.
    pub fn push(&self, job: J) -> Result<usize, Refused<J>> {
        let mut state = self.lock();
        if state.closed {
            return Err(Refused::Closed(job));
        }
        if state.jobs.len() >= self.capacity {
            return Err(Refused::Full(job));
        }
        state.jobs.push_back(job);
        self.wake_one(&mut state);
        Ok(state.jobs.len())
    }

    /// Queues part of a job already taken, ahead of the jobs waiting, and wakes a worker for it.
    /// Never refused: the job it belongs to was accepted, and a closed queue still hands out the
    /// jobs it holds.
    pub fn push_front(&self, job: J) {
        let mut state = self.lock();
        state.jobs.push_front(job);
        self.wake_one(&mut state);
    }

    /// Whether a worker waits for a job (and so would take one pushed now).
    pub fn has_idle_worker(&self) -> bool {
        !self.lock().idle.is_empty()
    }

    /// No more jobs are queued; the workers take those already waiting, then `next_batch`
    /// answers `None`.
    pub fn close(&self) {
        self.lock().closed = true;
        self.wake.iter().for_each(Condvar::notify_all);
    }

    /// The next call's jobs for `worker` and the jobs left waiting: blocks for the first job
    /// (`None` once the queue is closed and empty), then, while the call holds fewer than
    /// `max_rows` rows, takes what is queued and waits up to `max_wait` for more.
    pub fn next_batch(
        &self,
        worker: usize,
        max_rows: usize,
        max_wait: Duration,
        rows_of: impl Fn(&J) -> usize,
    ) -> Option<(Vec<J>, usize)> {
        let mut state = self.lock();
        let first = loop {
            if let Some(job) = state.jobs.pop_front() {
                break job;
            }
            if state.closed {
                return None;
            }
            state.idle.push(worker);
            state = self.wake[worker].wait(state).unwrap_or_else(PoisonError::into_inner);
            // Whoever woke this worker took it off the list; a spurious wake-up did not.
            state.idle.retain(|&w| w != worker);
        };
        let mut rows = rows_of(&first);
        let mut jobs = vec![first];
        let deadline = Instant::now() + max_wait;
        while rows < max_rows {
            if let Some(job) = state.jobs.pop_front() {
                rows += rows_of(&job);
                jobs.push(job);
                continue;
            }
            let now = Instant::now();
            // One worker waits for company at a time; a second scores what it has.
            if state.closed || now >= deadline || state.collecting.is_some() {
                break;
            }
            state.collecting = Some(worker);
            state = self.wake[worker]
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            state.collecting = None;
        }
        // This call is full: what is still queued is another worker's.
        if !state.jobs.is_empty() {
            self.wake_one(&mut state);
        }
        Some((jobs, state.jobs.len()))
    }

    /// Wakes the worker waiting for company, or else the most recently idle one.
    fn wake_one(&self, state: &mut State<J>) {
        if let Some(worker) = state.collecting.or_else(|| state.idle.pop()) {
            self.wake[worker].notify_one();
        }
    }

    /// Workers waiting for a job.
    #[cfg(test)]
    fn idle_workers(&self) -> usize {
        self.lock().idle.len()
    }

    fn lock(&self) -> MutexGuard<'_, State<J>> {
        // A panicking worker cannot leave the state half-changed: every change is one step.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Jobs stand for their row counts.
    fn queue(jobs: &[usize]) -> JobQueue<usize> {
        let queue = JobQueue::new(16, 2);
        jobs.iter().for_each(|&rows| {
            queue.push(rows).unwrap();
        });
        queue
    }

    fn next(queue: &JobQueue<usize>, max_rows: usize, max_wait: Duration) -> Option<Vec<usize>> {
        queue.next_batch(0, max_rows, max_wait, |&rows| rows).map(|(jobs, _)| jobs)
    }

    #[test]
    fn small_requests_share_a_call_up_to_the_row_limit() {
        let queue = queue(&[10, 20, 30, 250, 5]);
        // 10 + 20 + 30 + 250 crosses 256: the call stops taking requests there.
        assert_eq!(next(&queue, 256, Duration::ZERO), Some(vec![10, 20, 30, 250]));
        assert_eq!(next(&queue, 256, Duration::ZERO), Some(vec![5]));
    }

    #[test]
    fn a_full_call_leaves_the_requests_behind_it_to_other_workers() {
        // Requests that arrive together: each call takes one, instead of the first taking all
        // of them and scoring them one after another while the other workers wait.
        let queue = queue(&[500, 500, 500]);
        let started = Instant::now();
        for left in [2, 1, 0] {
            let (jobs, waiting) =
                queue.next_batch(0, 256, Duration::from_secs(60), |&r| r).unwrap();
            assert_eq!((jobs, waiting), (vec![500], left));
        }
        // A full call does not wait for company (the wait here is a minute).
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn a_small_call_waits_for_company_at_most_max_wait() {
        let queue = Arc::new(queue(&[10]));
        let late = {
            let queue = queue.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                queue.push(20).unwrap();
            })
        };
        let started = Instant::now();
        assert_eq!(next(&queue, 256, Duration::from_millis(300)), Some(vec![10, 20]));
        // Still short of the limit, it waited out the rest of max_wait, and no longer.
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert!(started.elapsed() < Duration::from_secs(5));
        late.join().unwrap();
    }

    #[test]
    fn a_full_queue_and_a_closed_one_refuse_and_give_the_job_back() {
        let queue = JobQueue::new(2, 1);
        assert_eq!(queue.push(1), Ok(1));
        assert_eq!(queue.push(2), Ok(2));
        assert_eq!(queue.push(3), Err(Refused::Full(3)));
        queue.close();
        assert_eq!(queue.push(4), Err(Refused::Closed(4)));
        // What was queued before the close is still taken, then the workers are told to stop.
        assert_eq!(next(&queue, 1, Duration::ZERO), Some(vec![1]));
        assert_eq!(next(&queue, 1, Duration::ZERO), Some(vec![2]));
        assert_eq!(next(&queue, 1, Duration::ZERO), None);
    }

    /// Two workers; jobs pushed one at a time, each after the last was taken and done: every
    /// job goes to the worker that finished last, none to the one idle longer.
    #[test]
    fn one_job_at_a_time_stays_on_the_most_recently_idle_worker() {
        let queue = Arc::new(JobQueue::<usize>::new(4, 2));
        let taken = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
        let workers: Vec<_> = (0..2)
            .map(|worker| {
                let (queue, taken) = (queue.clone(), taken.clone());
                std::thread::spawn(move || {
                    while let Some((jobs, _)) = queue.next_batch(worker, 1, Duration::ZERO, |_| 1) {
                        taken[worker].fetch_add(jobs.len(), Ordering::SeqCst);
                    }
                })
            })
            .collect();
        let both_idle = || {
            while queue.idle_workers() < 2 {
                std::thread::sleep(Duration::from_millis(1));
            }
        };
        // Find which worker took the first job.
        both_idle();
        queue.push(0).unwrap();
        both_idle();
        let first = (0..2).find(|&w| taken[w].load(Ordering::SeqCst) == 1).unwrap();
        for _ in 1..20 {
            // Each job is done and its worker idle again before the next is pushed.
            queue.push(0).unwrap();
            both_idle();
        }
        queue.close();
        workers.into_iter().for_each(|w| w.join().unwrap());
        assert_eq!(taken[first].load(Ordering::SeqCst), 20);
        assert_eq!(taken[1 - first].load(Ordering::SeqCst), 0);
    }

    /// A job's part goes ahead of the jobs waiting, even in a full or closed queue, and a worker
    /// that is idle is reported as such.
    #[test]
    fn a_part_pushed_to_the_front_is_taken_first_even_from_a_full_queue() {
        let queue = queue(&[]);
        assert!(!queue.has_idle_worker());
        let queue = JobQueue::new(2, 1);
        queue.push(1).unwrap();
        queue.push(2).unwrap();
        queue.push_front(9);
        queue.close();
        assert_eq!(next(&queue, 1, Duration::ZERO), Some(vec![9]));
        assert_eq!(next(&queue, 1, Duration::ZERO), Some(vec![1]));
        queue.push_front(8);
        assert_eq!(next(&queue, 1, Duration::ZERO), Some(vec![8]));
        assert_eq!(next(&queue, 1, Duration::ZERO), Some(vec![2]));
        assert_eq!(next(&queue, 1, Duration::ZERO), None);

        let queue = Arc::new(JobQueue::<usize>::new(4, 1));
        let worker = {
            let queue = queue.clone();
            std::thread::spawn(move || queue.next_batch(0, 1, Duration::ZERO, |_| 1))
        };
        while !queue.has_idle_worker() {
            std::thread::sleep(Duration::from_millis(1));
        }
        queue.push_front(7);
        assert_eq!(worker.join().unwrap(), Some((vec![7], 0)));
        assert!(!queue.has_idle_worker());
    }

    /// Jobs that arrive together while a worker is busy are taken by the idle one.
    #[test]
    fn a_job_queued_while_one_worker_is_busy_goes_to_another() {
        let queue = Arc::new(JobQueue::<usize>::new(4, 2));
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let release_rx = Arc::new(Mutex::new(release_rx));
        let workers: Vec<_> = (0..2)
            .map(|worker| {
                let (queue, started_tx, release_rx) =
                    (queue.clone(), started_tx.clone(), release_rx.clone());
                std::thread::spawn(move || {
                    while queue.next_batch(worker, 1, Duration::ZERO, |_| 1).is_some() {
                        started_tx.send(worker).unwrap();
                        // Held busy until the test lets go.
                        let _ = release_rx.lock().unwrap().recv();
                    }
                })
            })
            .collect();
        queue.push(0).unwrap();
        let busy = started_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        queue.push(0).unwrap();
        let other = started_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_ne!(busy, other);
        queue.close();
        drop(release_tx);
        workers.into_iter().for_each(|w| w.join().unwrap());
    }
}
