//! A softmax gate over experts: g(x) = softmax(W x / T). The temperature T > 1 flattens the
//! mixture (experts shared more evenly), T < 1 sharpens it towards one expert per task; T = 1 is
//! the MMoE paper's gate.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor};

use crate::rows::Rows;

#[derive(Module, Debug)]
pub struct Gate {
    pub linear: Linear,
    pub temperature: f32,
}

impl Gate {
    pub fn new(input_dim: usize, n_experts: usize, temperature: f32, device: &Device) -> Self {
        Self { linear: LinearConfig::new(input_dim, n_experts).init(device), temperature }
    }

    pub fn n_experts(&self) -> usize {
        self.linear.weight.shape().dims::<2>()[1]
    }

    /// [B, in] -> [B, n_experts], rows summing to 1.
    pub fn forward(&self, x: &Rows) -> Tensor<2> {
        let logits = x.linear(&self.linear);
        let logits =
            if self.temperature == 1.0 { logits } else { logits.div_scalar(self.temperature) };
        softmax(logits, 1)
    }

    /// Gate weights [B, n] mixing expert outputs [n, B, D] into [B, D].
    pub fn mix(weights: Tensor<2>, experts: Tensor<3>) -> Tensor<2> {
        let [n, b, d] = experts.dims();
        let w = weights.transpose().reshape([n, b, 1]);
        (experts * w).sum_dim(0).reshape([b, d])
    }
}
