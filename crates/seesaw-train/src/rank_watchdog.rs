//! A bound on how long a rank waits for the others. A sum across ranks blocks until every rank
//! has joined it, so one rank that hangs (stopped, deadlocked, swapping) or dies without the
//! launcher noticing would hang every other rank for ever. [`Watched`] wraps a collective and a
//! watchdog thread: when one sum has waited longer than the limit, the watchdog calls its
//! `on_stall` with a message naming this rank and the training step, and the caller ends the
//! process (the CLI exits non-zero, and mpirun then stops the other ranks).

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::collective::{Collective, SumTraffic};

/// A collective whose sums are timed by a watchdog thread.
pub struct Watched<C: Collective> {
    inner: C,
    state: Arc<(Mutex<WatchState>, Condvar)>,
    watchdog: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct WatchState {
    /// When the sum now in progress started; `None` between sums.
    waiting_since: Option<Instant>,
    epoch: Option<usize>,
    step: usize,
    sums: u64,
    values: u64,
    seconds_in_sums: f64,
    stop: bool,
}

impl<C: Collective> Watched<C> {
    /// `on_stall` runs on the watchdog thread, at most once, when a sum has waited `limit`.
    pub fn new(inner: C, limit: Duration, on_stall: impl FnOnce(String) + Send + 'static) -> Self {
        let state = Arc::new((Mutex::new(WatchState::default()), Condvar::new()));
        let (rank, size) = (inner.rank(), inner.size());
        let watched = state.clone();
        let watchdog = std::thread::Builder::new()
            .name("rank-watchdog".into())
            .spawn(move || watch(&watched, limit, rank, size, on_stall))
            .expect("the watchdog thread starts");
        Self { inner, state, watchdog: Some(watchdog) }
    }
}

fn watch(
    state: &(Mutex<WatchState>, Condvar),
    limit: Duration,
    rank: usize,
    size: usize,
    on_stall: impl FnOnce(String),
) {
    let (lock, wake) = state;
    let mut guard = lock.lock().expect("the watch state is never poisoned");
    loop {
        if guard.stop {
            return;
        }
        let Some(since) = guard.waiting_since else {
            guard = wake.wait(guard).expect("the watch state is never poisoned");
            continue;
        };
        let waited = since.elapsed();
        if waited < limit {
            guard = wake.wait_timeout(guard, limit - waited).expect("never poisoned").0;
            continue;
        }
        let place = match guard.epoch {
            Some(epoch) => format!("at epoch {} step {}", epoch + 1, guard.step + 1),
            None => "before the first training step".to_string(),
        };
        let message = format!(
            "rank {rank} of {size}: the other ranks have not joined sum {} for {} s ({place}); \
             a rank has died or hangs, so this rank gives up (the limit is --rank-timeout)",
            guard.sums,
            waited.as_secs()
        );
        drop(guard);
        on_stall(message);
        return;
    }
}

impl<C: Collective> Collective for Watched<C> {
    fn rank(&self) -> usize {
        self.inner.rank()
    }
    fn size(&self) -> usize {
        self.inner.size()
    }
    fn sum_f32(&self, values: &mut [f32]) {
        let (lock, wake) = &*self.state;
        {
            let mut state = lock.lock().expect("never poisoned");
            state.waiting_since = Some(Instant::now());
            state.sums += 1;
        }
        wake.notify_one();
        self.inner.sum_f32(values);
        let mut state = lock.lock().expect("never poisoned");
        if let Some(since) = state.waiting_since.take() {
            state.seconds_in_sums += since.elapsed().as_secs_f64();
        }
        state.values += values.len() as u64;
    }
    fn all_gather_bytes(&self, mine: &[u8]) -> Vec<Vec<u8>> {
        let (lock, wake) = &*self.state;
        lock.lock().expect("never poisoned").waiting_since = Some(Instant::now());
        wake.notify_one();
        let all = self.inner.all_gather_bytes(mine);
        lock.lock().expect("never poisoned").waiting_since = None;
        all
    }
    fn traffic(&self) -> Option<SumTraffic> {
        let state = self.state.0.lock().expect("never poisoned");
        Some(SumTraffic { sums: state.sums, values: state.values, seconds: state.seconds_in_sums })
    }
    fn at_step(&self, epoch: usize, step: usize) {
        let mut state = self.state.0.lock().expect("never poisoned");
        state.epoch = Some(epoch);
        state.step = step;
    }
}

impl<C: Collective> Drop for Watched<C> {
    fn drop(&mut self) {
        self.state.0.lock().expect("never poisoned").stop = true;
        self.state.1.notify_one();
        if let Some(watchdog) = self.watchdog.take() {
            let _ = watchdog.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;
    use crate::collective::InProcessRanks;

    #[test]
    fn a_sum_the_other_rank_never_joins_is_reported_with_the_rank_and_step() {
        let mut group = InProcessRanks::group(2);
        let _silent_rank = group.pop();
        let (sender, stalls) = mpsc::channel();
        let watched = Watched::new(group.pop().unwrap(), Duration::from_millis(200), move |m| {
            sender.send(m).unwrap();
        });
        watched.at_step(1, 56);
        // The sum blocks for ever (rank 1 never calls); the watchdog reports it meanwhile.
        std::thread::spawn(move || watched.sum_f32(&mut [1.0]));
        let message = stalls.recv_timeout(Duration::from_secs(10)).expect("the stall is reported");
        assert!(message.starts_with("rank 0 of 2"), "{message}");
        assert!(message.contains("epoch 2 step 57"), "{message}");
    }

    #[test]
    fn sums_that_finish_in_time_are_not_reported() {
        let stalled = Arc::new(Mutex::new(false));
        let flag = stalled.clone();
        let handles: Vec<_> = InProcessRanks::group(2)
            .into_iter()
            .map(|rank| {
                let flag = flag.clone();
                std::thread::spawn(move || {
                    let watched = Watched::new(rank, Duration::from_millis(500), move |_| {
                        *flag.lock().unwrap() = true;
                    });
                    for _ in 0..50 {
                        watched.sum_f32(&mut [1.0; 4]);
                    }
                    // A pause between sums is not a stall.
                    std::thread::sleep(Duration::from_millis(800));
                    watched.sum_f32(&mut [1.0]);
                })
            })
            .collect();
        handles.into_iter().for_each(|h| h.join().unwrap());
        assert!(!*stalled.lock().unwrap());
    }
}
