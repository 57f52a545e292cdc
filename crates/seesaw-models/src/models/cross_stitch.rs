//! Cross-stitch networks (Misra et al. 2016): one full column per task (own embeddings and
//! hidden layers, like single-task networks); after each hidden layer a cross-stitch unit mixes
//! the columns, x̃_k = Σ_j α_kj x_j. With α = I it is exactly K independent single-task
//! networks, which the tests check.

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::blocks::{CrossStitchUnit, FeatureEmbedding, Mlp, Tower};
use crate::context::ModelContext;
use crate::contract::{ArchitectureConfig, TaskModel};
use crate::error::Result;
use crate::heads::TaskHeads;
use crate::input::ModelInput;
use crate::models::check_layers;
use crate::outputs::ModelOutputs;
use crate::rows::Rows;

/// `kind = "cross_stitch"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrossStitchConfig {
    /// Hidden layers of each column; a unit follows each, so at least one.
    pub hidden: Vec<usize>,
}

impl ArchitectureConfig for CrossStitchConfig {
    type Model = CrossStitch;

    fn validate(&self) -> Result<()> {
        // Cross-stitch units sit after hidden layers, so without one there is nothing to mix.
        check_layers("cross_stitch", "hidden", &self.hidden, false)
    }

    fn init(&self, context: &ModelContext, device: &Device) -> Result<CrossStitch> {
        let n_tasks = context.tasks.len();
        let columns = (0..n_tasks)
            .map(|_| {
                let embedding =
                    FeatureEmbedding::new(&context.schema, context.embedding_dim, device)?;
                let mlp = Mlp::new(embedding.input_dim(), &self.hidden, device);
                let tower = Tower::new(mlp.output_dim(), &context.tower_hidden, device);
                Ok(Column { embedding, mlp, tower })
            })
            .collect::<Result<Vec<_>>>()?;
        let units = self.hidden.iter().map(|_| CrossStitchUnit::new(n_tasks, device)).collect();
        Ok(CrossStitch { columns, units, heads: TaskHeads::new(context) })
    }
}

#[derive(Module, Debug)]
pub struct Column {
    pub embedding: FeatureEmbedding,
    /// Stepped through layer by layer, so the units can mix between layers.
    pub mlp: Mlp,
    pub tower: Tower,
}

#[derive(Module, Debug)]
pub struct CrossStitch {
    pub columns: Vec<Column>,
    /// One unit after each hidden layer.
    pub units: Vec<CrossStitchUnit>,
    #[module(skip)]
    pub heads: TaskHeads,
}

impl TaskModel for CrossStitch {
    fn forward(&self, input: &ModelInput) -> ModelOutputs {
        // The first hidden layer of each column reads its (plain or split) embedding; the units
        // and the later layers read the columns' activations stacked, [K, B, D].
        // Every column's embedding first, then every first layer: burn initialises parameters
        // when they are first read, so this order is what fixes a seed's initial weights.
        let rows: Vec<Rows> = self.columns.iter().map(|c| c.embedding.forward(input)).collect();
        let firsts: Vec<(&Rows, &Linear)> =
            rows.iter().zip(&self.columns).map(|(rows, c)| (rows, &c.mlp.layers[0])).collect();
        let mut stacked = self.units[0].forward(relu(Rows::linear_stacked(&firsts)));
        for (l, unit) in self.units.iter().enumerate().skip(1) {
            let layers: Vec<&Linear> = self.columns.iter().map(|c| &c.mlp.layers[l]).collect();
            stacked = unit.forward(relu(linear_each(stacked, &layers)));
        }
        let [k, b, d] = stacked.dims();
        let xs: Vec<Tensor<2>> =
            stacked.chunk(k, 0).into_iter().map(|x| x.reshape([b, d])).collect();
        // The shared representation: the stitched columns side by side, the last place where
        // every task's column sees the others.
        let shared = input.want_shared.then(|| Tensor::cat(xs.clone(), 1));
        let raw = xs.into_iter().zip(&self.columns).map(|(x, c)| c.tower.forward(x)).collect();
        ModelOutputs { shared, ..ModelOutputs::of_tasks(self.heads.apply(raw)) }
    }

    fn shared_dim(&self) -> Option<usize> {
        Some(self.columns.iter().map(|c| c.mlp.output_dim()).sum())
    }
}

/// Column k's layer applied to column k's activations, for stacked columns: [K, B, in] ->
/// [K, B, out], as one batched product. Each column's product is the gemm call its own
/// `Linear::forward` makes (same shapes, same kernel), and its bias is added after, so the
/// values are the same bit for bit. Reads each layer's weight, then its bias, in column order,
/// as K calls of `Linear::forward` would (see `CrossStitch::forward` on initialisation order).
fn linear_each(stacked: Tensor<3>, layers: &[&Linear]) -> Tensor<3> {
    let mut weights = Vec::with_capacity(layers.len());
    let mut biases = Vec::with_capacity(layers.len());
    for layer in layers {
        weights.push(layer.weight.val());
        biases.extend(layer.bias.as_ref().map(|b| b.val().unsqueeze::<2>()));
    }
    let y = stacked.matmul(Tensor::stack(weights, 0));
    match biases.len() {
        0 => y,
        n if n == layers.len() => y + Tensor::stack(biases, 0),
        _ => unreachable!("a model's hidden layers all have biases or none do"),
    }
}
