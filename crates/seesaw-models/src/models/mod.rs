//! One file per architecture: its config (`XxxConfig`, the fields of its `architecture` table)
//! and its module. Each is listed once in `crate::registry`.

#[cfg(feature = "contract-probe")]
pub mod contract_probe;
pub mod cross_stitch;
pub mod dlen;
pub mod frame;
pub mod logistic;
pub mod mmoe;
pub mod ple;
pub mod shared_bottom;
pub mod single_task;

pub use cross_stitch::{CrossStitch, CrossStitchConfig};
pub use dlen::{Dlen, DlenConfig};
pub use frame::{Frame, FrameConfig};
pub use logistic::{Logistic, LogisticConfig};
pub use mmoe::{Mmoe, MmoeConfig};
pub use ple::{CgcConfig, Ple, PleConfig};
pub use shared_bottom::{SharedBottom, SharedBottomConfig};
pub use single_task::{SingleTask, SingleTaskConfig};

use burn::tensor::Tensor;

use crate::error::{Result, invalid};

/// Refuses a layer list with a zero-width layer, or an empty one unless `allow_empty`.
pub(crate) fn check_layers(
    kind: &str,
    what: &str,
    layers: &[usize],
    allow_empty: bool,
) -> Result<()> {
    if !allow_empty && layers.is_empty() {
        return invalid(format!("{kind}: {what} must have at least one layer"));
    }
    if layers.contains(&0) {
        return invalid(format!("{kind}: {what} layers must have at least 1 unit"));
    }
    Ok(())
}

pub(crate) fn check_temperature(kind: &str, t: f32) -> Result<()> {
    if !(t.is_finite() && t > 0.0) {
        return invalid(format!("{kind}: gate_temperature must be > 0, got {t}"));
    }
    Ok(())
}

/// Expert outputs [n, B, D] side by side per row: [B, n·D], the shared representation of a
/// mixture-of-experts model.
pub(crate) fn experts_side_by_side(experts: Tensor<3>) -> Tensor<2> {
    let [n, b, d] = experts.dims();
    experts.swap_dims(0, 1).reshape([b, n * d])
}
