//! A task tower: an MLP followed by one linear output unit, giving [B, 1]. The head (sigmoid for
//! probabilities, the regression head) is applied by the model, so the tower stays a pure
//! function of its input and binary tasks can hand the trainer a logit.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Tensor};

use crate::blocks::Mlp;

#[derive(Module, Debug)]
pub struct Tower {
    pub mlp: Mlp,
    pub output: Linear,
}

impl Tower {
    pub fn new(input_dim: usize, hidden: &[usize], device: &Device) -> Self {
        let mlp = Mlp::new(input_dim, hidden, device);
        let output = LinearConfig::new(mlp.output_dim(), 1).init(device);
        Self { mlp, output }
    }

    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.output.forward(self.mlp.forward(x))
    }
}
