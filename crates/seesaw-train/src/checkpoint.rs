//! A run's checkpoint directory, committed atomically. Each save writes the epoch's files under
//! new names (`trainable-<epoch>.bpk`, `optimizer-<epoch>.bpk`, `best-<epoch>.bpk`), then
//! replaces `state.json`, which names them, in one rename: that rename is the commit. Files that
//! the committed state does not name (an earlier epoch's, or those of a save that was killed
//! before its commit) are removed after the commit and again when a run starts, so a kill at any
//! moment leaves either the old checkpoint or the new one, whole, and no stray file survives the
//! next start.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use serde::{Deserialize, Serialize};

use seesaw_data::fault;
use seesaw_models::model::{load_module, save_module};
use seesaw_models::{FittedState, ModelConfig};

use crate::config::TrainConfig;
use crate::error::{Result, TrainError};
use crate::history::EpochRecord;

pub const STATE_FILE: &str = "state.json";

/// What `state.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckpointState {
    /// Epochs completed.
    pub epochs_done: usize,
    pub history: Vec<EpochRecord>,
    pub best_epoch: usize,
    pub best_score: Option<f64>,
    /// The run's settings: resuming with other settings would not continue the same run.
    pub train: TrainConfig,
    pub model: ModelConfig,
    /// The model's fitted state, learnt once before the first step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fitted: Option<FittedState>,
    /// The files of this checkpoint, by role (None until the first save).
    #[serde(default)]
    pub files: Option<CheckpointFiles>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckpointFiles {
    /// The model and the weighting's parameters.
    pub trainable: String,
    pub optimizer: String,
    /// The best epoch's model (inference weights), when there is one.
    pub best: Option<String>,
}

pub struct Checkpoint {
    pub dir: PathBuf,
}

impl Checkpoint {
    pub fn new(dir: PathBuf) -> Result<Self> {
        std::fs::create_dir_all(&dir).map_err(|e| error(&dir, e))?;
        Ok(Self { dir })
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The committed state, if any.
    pub fn load_state(&self) -> Result<Option<CheckpointState>> {
        let path = self.path(STATE_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| error(&path, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(error(&path, e)),
        }
    }

    /// Starts a fresh run here: drops any earlier run's state and files.
    pub fn clear(&self) -> Result<()> {
        match std::fs::remove_file(self.path(STATE_FILE)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(error(&self.path(STATE_FILE), e));
            }
            _ => {}
        }
        self.remove_unreferenced(None)
    }

    /// Writes the epoch's files, commits `state` (with their names), then removes every file
    /// the new state does not name.
    pub fn save<T: Module, B: Module>(
        &self,
        state: &mut CheckpointState,
        trainable: &T,
        optimizer: &ModuleOptimizer,
        best: Option<&B>,
    ) -> Result<()> {
        let epoch = state.epochs_done;
        let trainable_name = format!("trainable-{epoch}.bpk");
        let optimizer_name = format!("optimizer-{epoch}.bpk");
        save_module(trainable, &self.path(&trainable_name))?;
        fault::point("checkpoint:trainable");
        optimizer
            .save(self.path(&optimizer_name))
            .map_err(|e| error(&self.path(&optimizer_name), e))?;
        fault::point("checkpoint:optimizer");
        let best_name = match best {
            Some(best) => {
                let name = format!("best-{epoch}.bpk");
                save_module(best, &self.path(&name))?;
                fault::point("checkpoint:best");
                Some(name)
            }
            None => state.files.as_ref().and_then(|f| f.best.clone()),
        };
        state.files = Some(CheckpointFiles {
            trainable: trainable_name,
            optimizer: optimizer_name,
            best: best_name,
        });
        let json = serde_json::to_vec_pretty(state).expect("the checkpoint state serialises");
        seesaw_data::atomic::write(&self.path(STATE_FILE), &json)?;
        fault::point("checkpoint:state");
        self.remove_unreferenced(state.files.as_ref())
    }

    /// Loads the module named by `name` into `module`.
    pub fn load_module<M: Module>(&self, module: M, name: &str) -> Result<M> {
        Ok(load_module(module, &self.path(name))?)
    }

    pub fn load_optimizer(
        &self,
        optimizer: ModuleOptimizer,
        name: &str,
    ) -> Result<ModuleOptimizer> {
        let path = self.path(name);
        optimizer.load(&path).map_err(|e| error(&path, e))
    }

    /// Removes every file of the directory except the state and the files it names.
    pub fn remove_unreferenced(&self, files: Option<&CheckpointFiles>) -> Result<()> {
        let keep: Vec<&str> = files
            .map(|f| {
                let mut names = vec![f.trainable.as_str(), f.optimizer.as_str()];
                names.extend(f.best.as_deref());
                names
            })
            .unwrap_or_default();
        let entries = std::fs::read_dir(&self.dir).map_err(|e| error(&self.dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| error(&self.dir, e))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name == STATE_FILE || keep.contains(&name.as_ref()) || !entry.path().is_file() {
                continue;
            }
            std::fs::remove_file(entry.path()).map_err(|e| error(&entry.path(), e))?;
        }
        Ok(())
    }
}

pub fn error(path: &Path, e: impl std::fmt::Display) -> TrainError {
    TrainError::Checkpoint { path: path.to_owned(), message: e.to_string() }
}
