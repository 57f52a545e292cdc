//! `MultiTaskModel`: the one type the trainer, evaluator and server hold. It builds the
//! architecture named in `ModelConfig` through the registry, keeps the tasks and the fitted
//! state beside the network, and saves/loads its parameters in burn's record format (burnpack).

use std::path::{Path, PathBuf};

use burn::module::{Module, ModuleVisitor, Param};
use burn::store::ModuleRecord;
use burn::tensor::{Bytes, Device, Tensor};
use seesaw_data::batch::Batch;
use seesaw_data::feature_map::TaskInfo;

use crate::cmi::CmiModule;
use crate::config::ModelConfig;
use crate::context::{FittedState, ModelContext};
use crate::error::{ModelError, Result, invalid};
use crate::input::ModelInput;
use crate::loss::LossTerms;
use crate::outputs::{ExtraScore, ModelOutputs};
use crate::registry::Network;
use crate::targets::ModelTargets;
use crate::varying_projections::{VaryingKeys, VaryingNumbering};

#[derive(Module, Debug)]
pub struct MultiTaskModel {
    pub network: Network,
    /// `[model.cmi]`'s joint heads or critics, on the network's shared representation.
    pub cmi: Option<CmiModule>,
    #[module(skip)]
    pub tasks: Vec<TaskInfo>,
    /// What the architecture's `fit` learned from the training split (saved beside the weights).
    #[module(skip)]
    pub fitted: Option<FittedState>,
    #[module(skip)]
    pub extra_scores: Vec<ExtraScore>,
    /// The numbering of distinct varying inputs that every embedding of this model shares when
    /// its parameters are frozen (`crate::varying_projections`); new for a reloaded model.
    #[module(skip)]
    pub varying_numbering: VaryingNumbering,
}

impl MultiTaskModel {
    /// Builds the model for `config` in `context` (whose `fitted` is what `fit` returned, or
    /// `None` for architectures that fit nothing).
    pub fn new(config: &ModelConfig, context: &ModelContext, device: &Device) -> Result<Self> {
        config.validate()?;
        if context.tasks.is_empty() {
            return invalid("a model needs at least one task");
        }
        let extra_scores = config.architecture.extra_scores();
        for (i, extra) in extra_scores.iter().enumerate() {
            if context.tasks.iter().any(|t| t.name == extra.name)
                || extra_scores[..i].iter().any(|e| e.name == extra.name)
            {
                return invalid(format!(
                    "{}: the extra score '{}' is named like a task or another score",
                    config.architecture.name(),
                    extra.name
                ));
            }
        }
        let network = config.architecture.init(context, device)?;
        let cmi = match &config.cmi {
            None => None,
            Some(cmi) => {
                let Some(h_dim) = network.shared_dim() else {
                    return invalid(format!(
                        "[model.cmi] needs an architecture with a shared representation; \
                         `{}` has none",
                        config.architecture.label()
                    ));
                };
                Some(CmiModule::new(cmi, context, h_dim, device)?)
            }
        };
        Ok(Self {
            network,
            cmi,
            tasks: context.tasks.clone(),
            fitted: context.fitted.clone(),
            extra_scores,
            varying_numbering: VaryingNumbering::default(),
        })
    }

    /// Runs the architecture's `fit` on the training batches, then builds the model with what it
    /// learned: how the trainer starts a run.
    pub fn fit_new(
        config: &ModelConfig,
        context: &ModelContext,
        train: &mut dyn Iterator<Item = Batch>,
        device: &Device,
    ) -> Result<Self> {
        config.validate()?;
        let fitted = config.architecture.fit(context, train)?;
        Self::new(config, &context.clone().with_fitted(fitted), device)
    }

    /// The network's outputs; with `[model.cmi]`, h is always among them (its loss term reads
    /// it).
    pub fn forward(&self, input: &ModelInput) -> ModelOutputs {
        let want_shared = input.want_shared || self.cmi.is_some();
        if input.parameters_frozen {
            // The embeddings number the rows once, by this model's numbering: fresh keys, so
            // that numbers another model gave this input's rows are not read as this one's.
            let varying_numbering = Some(self.varying_numbering.clone());
            let varying_keys = VaryingKeys::default();
            let input =
                ModelInput { want_shared, varying_numbering, varying_keys, ..input.clone() };
            return self.network.forward(&input);
        }
        if want_shared && !input.want_shared {
            return self.network.forward(&ModelInput { want_shared, ..input.clone() });
        }
        self.network.forward(input)
    }

    /// The network's loss terms, plus the CMI term when `[model.cmi]` is set.
    pub fn loss(&self, outputs: &ModelOutputs, targets: &ModelTargets) -> LossTerms {
        let terms = self.network.loss(outputs, targets);
        match self.cmi.as_ref().and_then(|cmi| cmi.loss(outputs, targets)) {
            Some((name, term)) => terms.with_auxiliary(name, term),
            None => terms,
        }
    }

    pub fn num_params(&self) -> usize {
        Module::num_params(self)
    }

    pub fn tasks(&self) -> &[TaskInfo] {
        &self.tasks
    }

    /// Writes the parameters to `path` (burnpack); see `save_module`.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        save_module(self, path.as_ref())
    }

    /// Builds the model for `config` in `context` and loads the parameters saved at `path`.
    /// A file saved from a different architecture or shape is refused (missing, unused or
    /// mis-shaped tensors), not silently half-loaded.
    pub fn load(
        config: &ModelConfig,
        context: &ModelContext,
        path: impl AsRef<Path>,
        device: &Device,
    ) -> Result<Self> {
        let path = path.as_ref();
        let model = load_module(Self::new(config, context, device)?, path)?;
        model.check_finite(path)?;
        Ok(model)
    }

    /// Refuses a model with a NaN or infinite parameter (a corrupt or diverged file): it would
    /// load and answer every request with null predictions.
    fn check_finite(&self, path: &Path) -> Result<()> {
        struct Finite {
            bad: usize,
            total: usize,
        }
        impl ModuleVisitor for Finite {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                let values = param.val().into_data();
                let values = values.as_slice::<f32>().unwrap_or(&[]);
                self.total += values.len();
                self.bad += values.iter().filter(|v| !v.is_finite()).count();
            }
        }
        let mut finite = Finite { bad: 0, total: 0 };
        self.visit(&mut finite);
        if finite.bad > 0 {
            return Err(ModelError::Record {
                path: path.to_path_buf(),
                message: format!(
                    "{} of the model's {} parameters are NaN or infinite: the file is corrupt or \
                     comes from a diverged run",
                    finite.bad, finite.total
                ),
            });
        }
        Ok(())
    }
}

/// Writes the parameters of any module to `path` (burnpack), through a temporary file in the
/// same directory and a rename, so a failed save never leaves a half-written file behind.
pub fn save_module<M: Module>(module: &M, path: &Path) -> Result<()> {
    let bytes = module
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

/// Loads the parameters saved at `path` into `module` (built with the same shape). A file saved
/// from another shape is refused (missing, unused or mis-shaped tensors), not half-loaded.
pub fn load_module<M: Module>(module: M, path: &Path) -> Result<M> {
    let data = std::fs::read(path)
        .map_err(|source| ModelError::Read { path: path.to_path_buf(), source })?;
    let record_err = |e: burn::store::RecordError| ModelError::Record {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(data)).map_err(record_err)?;
    module.try_load_record(record).map_err(record_err)
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(format!(".tmp-{}", std::process::id()));
    path.with_file_name(name)
}
