//! Label and mask tensors of a batch, one [B, 1] pair per task.

use burn::tensor::{Device, Tensor, TensorData};
use seesaw_data::batch::Batch;

pub struct TaskTargets {
    pub labels: Tensor<2>,
    pub mask: Tensor<2>,
    /// Rows where the label exists: the loss is their mean.
    pub count: f32,
}

pub fn task_targets(batch: &Batch, task: usize, device: &Device) -> TaskTargets {
    let n = batch.size;
    let labels = Tensor::from_data(TensorData::new(batch.label(task).to_vec(), [n, 1]), device);
    let mask_values = batch.mask(task).to_vec();
    let count = mask_values.iter().sum();
    let mask = Tensor::from_data(TensorData::new(mask_values, [n, 1]), device);
    TaskTargets { labels, mask, count }
}

pub fn to_vec(tensor: Tensor<2>) -> Vec<f32> {
    tensor.into_data().try_to_vec().expect("model outputs are f32")
}
