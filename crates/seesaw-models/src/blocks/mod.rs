//! Building blocks shared by the models. Each block is a burn `Module` with public fields, so
//! tests (and the reductions between architectures) can read and set parameters directly.

pub mod cross_stitch;
pub mod embedding;
pub mod expert_bank;
pub mod gate;
pub mod mlp;
pub mod tower;

pub use cross_stitch::CrossStitchUnit;
pub use embedding::FeatureEmbedding;
pub use expert_bank::ExpertBank;
pub use gate::Gate;
pub use mlp::Mlp;
pub use tower::Tower;

use burn::module::Param;
use burn::nn::Initializer;
use burn::tensor::{Device, Tensor};

/// burn's `Linear` default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (Kaiming uniform with gain
/// 1/sqrt(3)), used for the parameters burn's `Linear` does not create (expert banks), so that
/// one expert starts on the same scale as one `Linear` layer.
pub(crate) fn linear_like_init<const D: usize>(
    shape: [usize; D],
    fan_in: usize,
    fan_out: usize,
    device: &Device,
) -> Param<Tensor<D>> {
    Initializer::KaimingUniform { gain: 1.0 / 3.0f64.sqrt(), fan_out_only: false }.init_with(
        shape,
        Some(fan_in),
        Some(fan_out),
        device,
    )
}
