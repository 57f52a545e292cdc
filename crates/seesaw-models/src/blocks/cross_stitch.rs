//! The cross-stitch unit (Misra et al. 2016): given one activation per task, x̃_k = Σ_j α_kj x_j.
//! α starts as a convex combination (0.9 on the diagonal, 0.1 spread evenly off it), so each
//! column begins mostly its own and the network can learn how much to share; zeros would cut
//! every column off from its own input.

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor, TensorData};

#[derive(Module, Debug)]
pub struct CrossStitchUnit {
    /// [K, K]: row k mixes the K columns into column k.
    pub alpha: Param<Tensor<2>>,
}

impl CrossStitchUnit {
    pub fn new(n_tasks: usize, device: &Device) -> Self {
        let mut a = vec![0.0f32; n_tasks * n_tasks];
        for k in 0..n_tasks {
            for j in 0..n_tasks {
                a[k * n_tasks + j] = if k == j {
                    if n_tasks == 1 { 1.0 } else { 0.9 }
                } else {
                    0.1 / (n_tasks - 1) as f32
                };
            }
        }
        Self { alpha: Param::from_data(TensorData::new(a, [n_tasks, n_tasks]), device) }
    }

    /// [K, B, D] -> [K, B, D]: the K columns' activations stacked, mixed. The columns stay
    /// stacked between the layers of a cross-stitch network, so the mix reads them where they
    /// are (stacking K separate tensors was a tenth of a served call).
    pub fn forward(&self, columns: Tensor<3>) -> Tensor<3> {
        let [k, b, d] = columns.dims();
        let mixed = self.alpha.val().matmul(columns.reshape([k, b * d])); // [K, B*D]
        mixed.reshape([k, b, d])
    }
}
