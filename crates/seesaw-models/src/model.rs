//! `MultiTaskModel`: the one type the trainer, evaluator and server hold. It builds the
//! architecture named in `ModelConfig`, applies the regression head, and saves/loads its
//! parameters in burn's record format (burnpack).

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::activation::sigmoid;
use burn::tensor::{Bytes, Device, Tensor};
use seesaw_data::feature_map::{FeatureSchema, TaskInfo, TaskKind};

use crate::config::{Architecture, ModelConfig, RegressionHead};
use crate::error::{ModelError, Result, invalid};
use crate::input::ModelInput;
use crate::models::ple::PleShape;
use crate::models::{CrossStitch, Logistic, Mmoe, Ple, SharedBottom, SingleTask};
use crate::outputs::{GateWeights, TaskOutputs};
use crate::shared::{RowGrouping, SharedSlots};

/// The architectures, as one module type (burn derives `Module` for enums: records, optimiser
/// and device moves go through whichever variant is built).
#[derive(Module, Debug)]
pub enum Network {
    Logistic(Logistic),
    SingleTask(SingleTask),
    SharedBottom(SharedBottom),
    CrossStitch(CrossStitch),
    Mmoe(Mmoe),
    /// CGC and PLE share one implementation (CGC = one level).
    Ple(Ple),
}

#[derive(Module, Debug)]
pub struct MultiTaskModel {
    pub network: Network,
    #[module(skip)]
    pub tasks: Vec<TaskInfo>,
    #[module(skip)]
    pub regression_head: RegressionHead,
}

impl MultiTaskModel {
    pub fn new(
        config: &ModelConfig,
        schema: &FeatureSchema,
        tasks: &[TaskInfo],
        device: &Device,
    ) -> Result<Self> {
        config.validate()?;
        if tasks.is_empty() {
            return invalid("a model needs at least one task");
        }
        let k = tasks.len();
        let e = config.embedding_dim;
        let tower = &config.tower_hidden;
        let network = match &config.architecture {
            Architecture::Logistic => Network::Logistic(Logistic::new(schema, k, device)?),
            Architecture::SingleTask { hidden } => {
                Network::SingleTask(SingleTask::new(schema, k, e, hidden, tower, device)?)
            }
            Architecture::SharedBottom { hidden } => {
                Network::SharedBottom(SharedBottom::new(schema, k, e, hidden, tower, device)?)
            }
            Architecture::CrossStitch { hidden } => {
                Network::CrossStitch(CrossStitch::new(schema, k, e, hidden, tower, device)?)
            }
            Architecture::Mmoe { experts, expert_hidden, gate_temperature } => Network::Mmoe(
                Mmoe::new(schema, k, e, *experts, expert_hidden, *gate_temperature, tower, device)?,
            ),
            Architecture::Cgc { shared_experts, task_experts, expert_hidden, gate_temperature } => {
                let shape = PleShape {
                    levels: 1,
                    shared_experts: *shared_experts,
                    task_experts: *task_experts,
                    expert_hidden,
                    gate_temperature: *gate_temperature,
                };
                Network::Ple(Ple::new(schema, k, e, &shape, tower, device)?)
            }
            Architecture::Ple {
                levels,
                shared_experts,
                task_experts,
                expert_hidden,
                gate_temperature,
            } => {
                let shape = PleShape {
                    levels: *levels,
                    shared_experts: *shared_experts,
                    task_experts: *task_experts,
                    expert_hidden,
                    gate_temperature: *gate_temperature,
                };
                Network::Ple(Ple::new(schema, k, e, &shape, tower, device)?)
            }
        };
        Ok(Self { network, tasks: tasks.to_vec(), regression_head: config.regression_head })
    }

    /// One [B, 1] per task: the logit for binary tasks, the prediction after the regression head
    /// for regression tasks.
    pub fn forward(&self, input: &ModelInput) -> TaskOutputs {
        let raw = match &self.network {
            Network::Logistic(m) => m.forward(input),
            Network::SingleTask(m) => m.forward(input),
            Network::SharedBottom(m) => m.forward(input),
            Network::CrossStitch(m) => m.forward(input),
            Network::Mmoe(m) => m.forward(input),
            Network::Ple(m) => m.forward(input),
        };
        self.head(raw)
    }

    /// `forward` for inputs whose rows come in groups of consecutive rows (requests: one user,
    /// many candidates) that agree on the `shared` slots: those slots are embedded once per
    /// group (read from its first row) and the first linear layers split into a per-group and a
    /// per-row product, which saves most of their cost. Equal to `forward` up to float rounding
    /// when the rows of each group do agree on the shared slots; `shared.row_groups(&batch)`
    /// gives groups that always do.
    ///
    /// `groups`: the group sizes in row order, each at least 1, summing to `input.batch_size`
    /// (`&[input.batch_size]` for one request). Panics when they do not, or when `shared` was
    /// made for another schema.
    pub fn forward_shared(
        &self,
        input: &ModelInput,
        shared: &SharedSlots,
        groups: &[usize],
    ) -> TaskOutputs {
        if input.batch_size == 0 {
            return self.forward(input);
        }
        let device = input.categorical.device();
        let grouping = RowGrouping::new(shared, groups, input.batch_size, &device);
        let raw = match &self.network {
            Network::Logistic(m) => m.forward_shared(input, &grouping),
            Network::SingleTask(m) => m.forward_shared(input, &grouping),
            Network::SharedBottom(m) => m.forward_shared(input, &grouping),
            Network::CrossStitch(m) => m.forward_shared(input, &grouping),
            Network::Mmoe(m) => m.forward_shared(input, &grouping),
            Network::Ple(m) => m.forward_shared(input, &grouping),
        };
        self.head(raw)
    }

    /// Applies the regression head to the raw tower outputs.
    fn head(&self, raw: Vec<Tensor<2>>) -> TaskOutputs {
        let outputs = raw
            .into_iter()
            .zip(&self.tasks)
            .map(|(out, task)| match (task.kind, self.regression_head) {
                (TaskKind::Regression, RegressionHead::Sigmoid) => sigmoid(out),
                _ => out,
            })
            .collect();
        TaskOutputs { outputs }
    }

    /// Every gate's softmax weights ([B, n_experts] each); empty for ungated models.
    pub fn gate_weights(&self, input: &ModelInput) -> Vec<GateWeights> {
        match &self.network {
            Network::Mmoe(m) => m.gate_weights(input, &self.tasks),
            Network::Ple(m) => m.gate_weights(input, &self.tasks),
            _ => Vec::new(),
        }
    }

    pub fn num_params(&self) -> usize {
        Module::num_params(self)
    }

    /// Writes the parameters to `path` (burnpack), through a temporary file in the same
    /// directory and a rename, so a failed save never leaves a half-written model behind.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let bytes = self
            .clone()
            .into_record()
            .into_bytes()
            .map_err(|e| ModelError::Record { path: path.to_path_buf(), message: e.to_string() })?;
        let tmp = temp_path(path);
        let write = |p: &Path| -> std::io::Result<()> {
            use std::io::Write;
            let mut f = std::fs::File::create(p)?;
            f.write_all(&bytes)?;
            f.sync_all()
        };
        if let Err(source) = write(&tmp).and_then(|_| std::fs::rename(&tmp, path)) {
            let _ = std::fs::remove_file(&tmp);
            return Err(ModelError::Write { path: path.to_path_buf(), source });
        }
        Ok(())
    }

    /// Builds the model for `config`/`schema`/`tasks` and loads the parameters saved at `path`.
    /// A file saved from a different architecture or shape is refused (missing, unused or
    /// mis-shaped tensors), not silently half-loaded.
    pub fn load(
        config: &ModelConfig,
        schema: &FeatureSchema,
        tasks: &[TaskInfo],
        path: impl AsRef<Path>,
        device: &Device,
    ) -> Result<Self> {
        let path = path.as_ref();
        let model = Self::new(config, schema, tasks, device)?;
        let data = std::fs::read(path)
            .map_err(|source| ModelError::Read { path: path.to_path_buf(), source })?;
        let record_err = |e: burn::store::RecordError| ModelError::Record {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(data)).map_err(record_err)?;
        model.try_load_record(record).map_err(record_err)
    }

    pub fn tasks(&self) -> &[TaskInfo] {
        &self.tasks
    }
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(format!(".tmp-{}", std::process::id()));
    path.with_file_name(name)
}
