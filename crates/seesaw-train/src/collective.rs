//! What data-parallel training asks of the engine that joins its processes: how many ranks there
//! are, which one this is, and an element-wise sum across all of them. One process is the case of
//! one rank ([`SingleProcess`]); MPI is one implementation (behind the `distributed` feature),
//! [`InProcessRanks`] another, for tests that run several ranks as threads of one process.
//!
//! A sum is all the trainer needs: gradients are averaged with it, and rank 0's initial weights
//! reach every rank as a sum in which the other ranks add zeros (exact: x + 0 = x).

use std::sync::{Arc, Barrier, Mutex};

pub trait Collective {
    /// This process's rank, in 0..size.
    fn rank(&self) -> usize;
    fn size(&self) -> usize;
    /// Replaces `values` by their element-wise sum over every rank; every rank calls it with a
    /// buffer of the same length, and every rank gets the same sum back.
    fn sum_f32(&self, values: &mut [f32]);

    /// Every rank's `mine`, in rank order, on every rank (the lengths may differ): how ranks
    /// that read disjoint shards merge what they fitted and what they scored.
    fn all_gather_bytes(&self, mine: &[u8]) -> Vec<Vec<u8>>;

    /// Rank 0 writes the run's files (metrics, checkpoints, the model).
    fn is_root(&self) -> bool {
        self.rank() == 0
    }

    /// Where the training is (`epoch`, `step` of the epoch), for a collective that reports a
    /// stalled sum ([`crate::rank_watchdog::Watched`]); the others ignore it.
    fn at_step(&self, _epoch: usize, _step: usize) {}

    /// What this rank's sums cost so far, for a collective that keeps count.
    fn traffic(&self) -> Option<SumTraffic> {
        None
    }
}

/// A rank's sums so far: how many, how many values in all, and the wall time spent in them
/// (the transfer and the wait for slower ranks).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SumTraffic {
    pub sums: u64,
    pub values: u64,
    pub seconds: f64,
}

/// Training in one process: the sum over one rank is the value itself.
pub struct SingleProcess;

impl Collective for SingleProcess {
    fn rank(&self) -> usize {
        0
    }
    fn size(&self) -> usize {
        1
    }
    fn sum_f32(&self, _values: &mut [f32]) {}
    fn all_gather_bytes(&self, mine: &[u8]) -> Vec<Vec<u8>> {
        vec![mine.to_vec()]
    }
}

/// Ranks as threads of one process, each holding one [`InProcessRanks`] of the same group: the
/// data-parallel arithmetic tested without an MPI installation.
pub struct InProcessRanks {
    rank: usize,
    shared: Arc<SharedSum>,
}

struct SharedSum {
    size: usize,
    sum: Mutex<Vec<f32>>,
    /// One slot per rank for `all_gather_bytes`.
    gathered: Mutex<Vec<Vec<u8>>>,
    arrived: Barrier,
    read: Barrier,
}

impl InProcessRanks {
    /// One handle per rank, to be moved into `size` threads.
    pub fn group(size: usize) -> Vec<InProcessRanks> {
        assert!(size > 0, "a group has at least one rank");
        let shared = Arc::new(SharedSum {
            size,
            sum: Mutex::new(Vec::new()),
            gathered: Mutex::new(vec![Vec::new(); size]),
            arrived: Barrier::new(size),
            read: Barrier::new(size),
        });
        (0..size).map(|rank| InProcessRanks { rank, shared: shared.clone() }).collect()
    }
}

impl Collective for InProcessRanks {
    fn rank(&self) -> usize {
        self.rank
    }
    fn size(&self) -> usize {
        self.shared.size
    }
    fn sum_f32(&self, values: &mut [f32]) {
        let shared = &self.shared;
        // Added in rank order, as a reduction that does not depend on which thread came first.
        for turn in 0..shared.size {
            if turn == self.rank {
                let mut sum = shared.sum.lock().expect("no rank panicked holding the sum");
                if turn == 0 {
                    sum.clear();
                    sum.extend_from_slice(values);
                } else {
                    assert_eq!(sum.len(), values.len(), "ranks summed buffers of other lengths");
                    sum.iter_mut().zip(values.iter()).for_each(|(s, v)| *s += v);
                }
            }
            shared.arrived.wait();
        }
        values.copy_from_slice(&shared.sum.lock().expect("no rank panicked holding the sum"));
        // Nobody starts the next sum before every rank has read this one.
        shared.read.wait();
    }
    fn all_gather_bytes(&self, mine: &[u8]) -> Vec<Vec<u8>> {
        let shared = &self.shared;
        shared.gathered.lock().expect("no rank panicked holding the slots")[self.rank] =
            mine.to_vec();
        shared.arrived.wait();
        let all = shared.gathered.lock().expect("no rank panicked holding the slots").clone();
        shared.read.wait();
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rank_gets_the_sum_of_all_ranks() {
        let handles: Vec<_> = InProcessRanks::group(3)
            .into_iter()
            .map(|ranks| {
                std::thread::spawn(move || {
                    let mut sums = Vec::new();
                    for round in 0..4 {
                        let mut v = vec![ranks.rank() as f32 + round as f32, 1.0];
                        ranks.sum_f32(&mut v);
                        sums.push(v);
                    }
                    sums
                })
            })
            .collect();
        for handle in handles {
            let sums = handle.join().unwrap();
            for (round, v) in sums.iter().enumerate() {
                assert_eq!(v, &vec![3.0 + 3.0 * round as f32, 3.0]);
            }
        }
    }

    #[test]
    fn every_rank_gets_every_ranks_bytes_in_rank_order() {
        let handles: Vec<_> = InProcessRanks::group(3)
            .into_iter()
            .map(|ranks| {
                std::thread::spawn(move || {
                    let mine = vec![ranks.rank() as u8; ranks.rank() + 1];
                    (ranks.all_gather_bytes(&mine), ranks.all_gather_bytes(&[9]))
                })
            })
            .collect();
        for handle in handles {
            let (first, second) = handle.join().unwrap();
            assert_eq!(first, vec![vec![0], vec![1, 1], vec![2, 2, 2]]);
            assert_eq!(second, vec![vec![9]; 3]);
        }
    }
}
