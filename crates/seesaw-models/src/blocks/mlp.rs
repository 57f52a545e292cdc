//! A stack of Linear + ReLU layers: the body of shared bottoms, single-task columns and towers.
//! Every layer is followed by ReLU; the output unit of a tower is separate (see tower.rs), so
//! no layer here is linear-only.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use crate::rows::Rows;

#[derive(Module, Debug)]
pub struct Mlp {
    pub layers: Vec<Linear>,
    pub input_dim: usize,
}

impl Mlp {
    /// `hidden` may be empty: the MLP is then the identity and `output_dim() == input_dim`.
    pub fn new(input_dim: usize, hidden: &[usize], device: &Device) -> Self {
        let mut layers = Vec::with_capacity(hidden.len());
        let mut d_in = input_dim;
        for &d_out in hidden {
            layers.push(LinearConfig::new(d_in, d_out).init(device));
            d_in = d_out;
        }
        Self { layers, input_dim }
    }

    pub fn output_dim(&self) -> usize {
        self.layers.last().map(|l| l.weight.shape().dims::<2>()[1]).unwrap_or(self.input_dim)
    }

    /// The first layer reads the rows (plain or split, see `Rows::linear`), the others the
    /// previous layer's output. An empty MLP returns the plain rows.
    pub fn forward(&self, x: impl Into<Rows>) -> Tensor<2> {
        let x = x.into();
        let Some((first, rest)) = self.layers.split_first() else { return x.materialize() };
        let h = relu(x.linear(first));
        rest.iter().fold(h, |x, layer| relu(layer.forward(x)))
    }
}
