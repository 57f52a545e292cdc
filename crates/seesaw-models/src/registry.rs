//! The registry: every architecture, once. Adding a model is its file in `models/` plus one line
//! here (`Variant = "kind" => its config type`). The macro builds from this list:
//!
//! - `Architecture`, the serde enum tagged by `kind` (`architecture = { kind = "mmoe", ... }`),
//!   with `name`, `validate`, `fit`, `extra_scores` and `init`;
//! - `Network`, the burn module enum of the built models, with `forward` and `loss`.
//!
//! so nothing else in the workspace names a model kind.

use burn::module::Module;
use burn::tensor::Device;
use seesaw_data::batch::Batch;
use serde::{Deserialize, Serialize};

use crate::context::{FittedState, ModelContext};
use crate::contract::{ArchitectureConfig, TaskModel};
use crate::error::Result;
use crate::input::ModelInput;
use crate::loss::LossTerms;
use crate::models::*;
use crate::outputs::{ExtraScore, ModelOutputs};
use crate::targets::ModelTargets;

macro_rules! registry {
    ($( $(#[$attr:meta])* $variant:ident = $kind:literal => $config:ty ),* $(,)?) => {
        /// The architecture of a model, as the run config's `[model.architecture]` table.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "kind")]
        pub enum Architecture {
            $( $(#[$attr])* #[serde(rename = $kind)] $variant($config), )*
        }

        /// A built model of any architecture, as one burn module: records, the optimiser and
        /// device moves go through whichever variant is built.
        #[derive(Module, Debug)]
        pub enum Network {
            $( $(#[$attr])* $variant(<$config as ArchitectureConfig>::Model), )*
        }

        impl Architecture {
            /// Every registered kind, in registry order.
            // Pushed one by one so that a `#[cfg]` on a registry line applies to its kind too.
            #[allow(clippy::vec_init_then_push)]
            pub fn kinds() -> Vec<&'static str> {
                let mut kinds = Vec::new();
                $( $(#[$attr])* kinds.push($kind); )*
                kinds
            }

            /// The `kind` tag.
            pub fn name(&self) -> &'static str {
                match self { $( $(#[$attr])* Self::$variant(_) => $kind, )* }
            }

            /// How reports and compare name it: the kind, or e.g. `dlen-mmoe` for a model on
            /// top of another.
            pub fn label(&self) -> String {
                match self { $( $(#[$attr])* Self::$variant(c) => c.label($kind), )* }
            }

            pub fn validate(&self) -> Result<()> {
                match self { $( $(#[$attr])* Self::$variant(c) => c.validate(), )* }
            }

            pub fn fit(
                &self,
                context: &ModelContext,
                train: &mut dyn Iterator<Item = Batch>,
            ) -> Result<Option<FittedState>> {
                match self { $( $(#[$attr])* Self::$variant(c) => c.fit(context, train), )* }
            }

            pub fn extra_scores(&self) -> Vec<ExtraScore> {
                match self { $( $(#[$attr])* Self::$variant(c) => c.extra_scores(), )* }
            }

            pub fn init(&self, context: &ModelContext, device: &Device) -> Result<Network> {
                match self {
                    $( $(#[$attr])* Self::$variant(c) => Ok(Network::$variant(c.init(context, device)?)), )*
                }
            }
        }

        impl Network {
            pub fn forward(&self, input: &ModelInput) -> ModelOutputs {
                match self { $( $(#[$attr])* Self::$variant(m) => m.forward(input), )* }
            }

            pub fn loss(&self, outputs: &ModelOutputs, targets: &ModelTargets) -> LossTerms {
                match self { $( $(#[$attr])* Self::$variant(m) => m.loss(outputs, targets), )* }
            }

            pub fn shared_dim(&self) -> Option<usize> {
                match self { $( $(#[$attr])* Self::$variant(m) => m.shared_dim(), )* }
            }

        }
    };
}

registry! {
    Logistic = "logistic" => LogisticConfig,
    SingleTask = "single_task" => SingleTaskConfig,
    SharedBottom = "shared_bottom" => SharedBottomConfig,
    CrossStitch = "cross_stitch" => CrossStitchConfig,
    Mmoe = "mmoe" => MmoeConfig,
    Cgc = "cgc" => CgcConfig,
    Ple = "ple" => PleConfig,
    Dlen = "dlen" => DlenConfig,
    Frame = "frame" => FrameConfig,
    // A model that exercises every part of the contract (tests only).
    #[cfg(feature = "contract-probe")]
    ContractProbe = "contract_probe" => crate::models::contract_probe::ContractProbeConfig,
}
