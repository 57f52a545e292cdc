//! `ModelInput`: a `Batch`'s plain buffers turned into tensors once, so that every model reads
//! the same tensors and the conversion is not repeated per model or per task.

use burn::tensor::{Device, Int, Tensor, TensorData};
use seesaw_data::batch::Batch;

#[derive(Debug, Clone)]
pub struct ModelInput {
    /// [B, n_categorical] indices, in `FeatureSchema::categorical` order (0 = out-of-vocabulary).
    pub categorical: Tensor<2, Int>,
    /// [B, n_dense], or `None` when the schema has no dense features.
    pub dense: Option<Tensor<2>>,
    /// [B, multi_width], slots laid side by side in `FeatureSchema::multi` order, 0 = padding;
    /// `None` when the schema has no multi-valued slots.
    pub multi: Option<Tensor<2, Int>>,
    pub batch_size: usize,
}

impl ModelInput {
    pub fn from_batch(batch: &Batch, device: &Device) -> Self {
        let b = batch.size;
        // Indices go through i64 so that the conversion to the device's integer type is a
        // plain widening/narrowing of small non-negative numbers, whatever that type is.
        let categorical = Tensor::<2, Int>::from_data(
            TensorData::new(
                batch.categorical.iter().map(|&v| v as i64).collect::<Vec<_>>(),
                [b, batch.n_categorical],
            ),
            device,
        );
        let dense = (batch.n_dense > 0).then(|| {
            Tensor::<2>::from_data(TensorData::new(batch.dense.clone(), [b, batch.n_dense]), device)
        });
        let multi = (batch.multi_width > 0).then(|| {
            Tensor::<2, Int>::from_data(
                TensorData::new(
                    batch.multi.iter().map(|&v| v as i64).collect::<Vec<_>>(),
                    [b, batch.multi_width],
                ),
                device,
            )
        });
        Self { categorical, dense, multi, batch_size: b }
    }
}
