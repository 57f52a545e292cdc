//! Progress bars for training: one bar per epoch with the running per-task losses.

use indicatif::ProgressBar;
use seesaw_train::EpochRecord;
use seesaw_train::compare::{CompareObserver, RunResult};
use seesaw_train::trainer::{StepLosses, TrainObserver};

use crate::progress;

pub struct TrainProgress {
    tasks: Vec<String>,
    bar: Option<ProgressBar>,
    /// Running sums and counts of each task's loss, then of each auxiliary term (by name).
    running: Vec<(f64, usize)>,
    auxiliary: Vec<(String, f64, usize)>,
    prefix: String,
    /// Print one line per epoch (for `seesaw train`; `compare` prints one line per run).
    pub print_epochs: bool,
}

impl TrainProgress {
    pub fn new(tasks: Vec<String>, print_epochs: bool) -> Self {
        Self {
            running: vec![(0.0, 0); tasks.len()],
            auxiliary: Vec::new(),
            tasks,
            bar: None,
            prefix: String::new(),
            print_epochs,
        }
    }
}

impl TrainObserver for TrainProgress {
    fn on_epoch_start(&mut self, epoch: usize, steps: usize) {
        self.running = vec![(0.0, 0); self.tasks.len()];
        self.auxiliary.clear();
        self.bar = Some(progress::bar(steps as u64, format!("{}epoch {}", self.prefix, epoch + 1)));
    }

    fn on_step(&mut self, step: usize, losses: &StepLosses) {
        for (slot, &loss) in self.running.iter_mut().zip(&losses.tasks) {
            if loss.is_finite() {
                slot.0 += loss;
                slot.1 += 1;
            }
        }
        for (name, value) in &losses.auxiliary {
            match self.auxiliary.iter_mut().find(|a| &a.0 == name) {
                Some(slot) => {
                    slot.1 += value;
                    slot.2 += 1;
                }
                None => self.auxiliary.push((name.clone(), *value, 1)),
            }
        }
        if let Some(bar) = &self.bar {
            bar.set_position(step as u64 + 1);
            if step.is_multiple_of(10) {
                let text: Vec<String> = self
                    .tasks
                    .iter()
                    .zip(&self.running)
                    .filter(|(_, r)| r.1 > 0)
                    .map(|(t, r)| format!("{t} {:.4}", r.0 / r.1 as f64))
                    .chain(
                        self.auxiliary.iter().map(|(n, s, c)| format!("{n} {:.4}", s / *c as f64)),
                    )
                    .collect();
                bar.set_message(format!("{}loss {}", self.prefix, text.join(" ")));
            }
        }
    }

    fn on_epoch_end(&mut self, record: &EpochRecord) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if self.print_epochs {
            let aucs: Vec<String> = record
                .valid
                .tasks
                .iter()
                .filter_map(|(t, m)| Some(format!("{t} {:.4}", m.auc.or(m.rmse)?)))
                .collect();
            eprintln!(
                "epoch {:>2}: {:.1} s, {:.0} samples/s, validation score {}  [{}]",
                record.epoch + 1,
                record.seconds,
                record.samples_per_second,
                record.score.map_or("–".into(), |s| format!("{s:.4}")),
                aucs.join(", ")
            );
        }
    }
}

impl CompareObserver for TrainProgress {
    fn on_run_start(&mut self, architecture: &str, seed: u64, index: usize, total: usize) {
        self.prefix = format!("[{}/{total}] {architecture} seed {seed} ", index + 1);
    }

    fn trainer(&mut self) -> &mut dyn TrainObserver {
        self
    }

    fn on_run_end(&mut self, result: &RunResult) {
        let aucs: Vec<String> = result
            .evaluation
            .tasks
            .iter()
            .filter_map(|(t, m)| Some(format!("{t} {:.4}", m.auc.or(m.rmse)?)))
            .collect();
        eprintln!("{}done in {:.1} s: {}", self.prefix, result.train_seconds, aucs.join(", "));
    }
}
