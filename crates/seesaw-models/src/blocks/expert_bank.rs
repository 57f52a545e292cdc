//! A bank of n identical-shape MLP experts computed together: each layer is ONE batched matmul
//! over all experts (weights [n, in, out], the input broadcast to [n, B, in]) instead of n small
//! ones, which on a CPU backend saves the per-op overhead that dominates at MMoE sizes.

use burn::module::{Module, Param};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use crate::blocks::linear_like_init;
use crate::rows::Rows;

#[derive(Module, Debug)]
pub struct ExpertLayer {
    /// [n, in, out]
    pub weight: Param<Tensor<3>>,
    /// [n, 1, out], broadcast over the batch.
    pub bias: Param<Tensor<3>>,
}

#[derive(Module, Debug)]
pub struct ExpertBank {
    pub layers: Vec<ExpertLayer>,
    pub n_experts: usize,
    pub input_dim: usize,
}

impl ExpertBank {
    /// `hidden` must be non-empty (an expert with no layer would be the identity).
    pub fn new(n_experts: usize, input_dim: usize, hidden: &[usize], device: &Device) -> Self {
        assert!(!hidden.is_empty(), "an expert needs at least one layer");
        let mut layers = Vec::with_capacity(hidden.len());
        let mut d_in = input_dim;
        for &d_out in hidden {
            layers.push(ExpertLayer {
                weight: linear_like_init([n_experts, d_in, d_out], d_in, d_out, device),
                bias: linear_like_init([n_experts, 1, d_out], d_in, d_out, device),
            });
            d_in = d_out;
        }
        Self { layers, n_experts, input_dim }
    }

    pub fn output_dim(&self) -> usize {
        self.layers.last().map(|l| l.weight.shape().dims::<3>()[2]).unwrap_or(self.input_dim)
    }

    /// [B, in] -> [n, B, out], every expert reading the same rows (plain, or split with the
    /// first layer computed per group and per row).
    pub fn forward(&self, x: &Rows) -> Tensor<3> {
        match x {
            Rows::Plain(x) => {
                let [b, d] = x.dims();
                self.forward_each(x.clone().reshape([1, b, d]).expand([self.n_experts, b, d]))
            }
            Rows::Split(x) => {
                let (first, rest) =
                    self.layers.split_first().expect("an expert has at least one layer");
                let h = relu(x.batched(&first.weight, first.bias.val()));
                rest.iter()
                    .fold(h, |x, layer| relu(x.matmul(layer.weight.val()) + layer.bias.val()))
            }
        }
    }

    /// [n, B, in] -> [n, B, out], expert i reading x[i].
    pub fn forward_each(&self, x: Tensor<3>) -> Tensor<3> {
        self.layers.iter().fold(x, |x, layer| relu(x.matmul(layer.weight.val()) + layer.bias.val()))
    }
}
