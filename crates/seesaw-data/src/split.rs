//! Train/validation/test splits. Temporal is the default for real logs: a model is judged on days
//! it has not seen, as it will be in production.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::error::{DataError, Result};
use crate::log::InteractionLog;
use crate::spec::SplitSpec;

/// Row indices of each part, ascending.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Split {
    pub train: Vec<u32>,
    pub valid: Vec<u32>,
    pub test: Vec<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Train,
    Valid,
    Test,
}

impl Split {
    pub fn part(&self, part: Part) -> &[u32] {
        match part {
            Part::Train => &self.train,
            Part::Valid => &self.valid,
            Part::Test => &self.test,
        }
    }

    fn from_parts(parts: &[Part]) -> Self {
        let mut split = Split::default();
        for (i, part) in parts.iter().enumerate() {
            match part {
                Part::Train => split.train.push(i as u32),
                Part::Valid => split.valid.push(i as u32),
                Part::Test => split.test.push(i as u32),
            }
        }
        split
    }
}

pub fn split(log: &InteractionLog, spec: &SplitSpec) -> Result<Split> {
    let n = log.len();
    let parts = match *spec {
        SplitSpec::Random { seed, valid_fraction, test_fraction } => {
            let mut order: Vec<u32> = (0..n as u32).collect();
            order.shuffle(&mut Xoshiro256PlusPlus::seed_from_u64(seed));
            let n_valid = (n as f64 * valid_fraction).round() as usize;
            let n_test = (n as f64 * test_fraction).round() as usize;
            let mut parts = vec![Part::Train; n];
            for (rank, &row) in order.iter().enumerate() {
                if rank < n_valid {
                    parts[row as usize] = Part::Valid;
                } else if rank < n_valid + n_test {
                    parts[row as usize] = Part::Test;
                }
            }
            parts
        }
        SplitSpec::Temporal { train_end, valid_end, valid_days, test_days } => {
            if log.day.is_empty() {
                return Err(DataError::spec(
                    "split: a temporal split needs a date or timestamp column in the log",
                ));
            }
            let (train_end, valid_end) = match (train_end, valid_end) {
                (Some(t), v) => (t, v.unwrap_or(u32::MAX)),
                (None, _) => {
                    let mut days = log.day.clone();
                    days.sort_unstable();
                    days.dedup();
                    let boundary = |from_end: u32| {
                        let index = days.len().saturating_sub(from_end as usize + 1);
                        if from_end as usize >= days.len() { 0 } else { days[index] }
                    };
                    (
                        boundary(valid_days + test_days),
                        if test_days == 0 { u32::MAX } else { boundary(test_days) },
                    )
                }
            };
            log.day
                .iter()
                .map(|&d| {
                    if d <= train_end {
                        Part::Train
                    } else if d <= valid_end {
                        Part::Valid
                    } else {
                        Part::Test
                    }
                })
                .collect()
        }
        SplitSpec::LeaveLast { valid, test } => {
            let mut by_user: Vec<Vec<u32>> = vec![Vec::new(); log.users.len()];
            for (row, &user) in log.user.iter().enumerate() {
                by_user[user as usize].push(row as u32);
            }
            let mut parts = vec![Part::Train; n];
            for rows in &mut by_user {
                if rows.len() <= valid + test {
                    continue;
                }
                if !log.timestamp_ms.is_empty() {
                    rows.sort_by_key(|&r| (log.timestamp_ms[r as usize], r));
                }
                let len = rows.len();
                for (k, &row) in rows.iter().enumerate() {
                    if k >= len - test {
                        parts[row as usize] = Part::Test;
                    } else if k >= len - test - valid {
                        parts[row as usize] = Part::Valid;
                    }
                }
            }
            parts
        }
    };
    Ok(Split::from_parts(&parts))
}
