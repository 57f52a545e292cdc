//! `ModelTargets`: a batch's labels and masks as tensors, one [B, 1] pair per task, and the clip
//! labels when the dataset has clips.

use burn::tensor::{Device, Tensor, TensorData};
use seesaw_data::batch::Batch;

pub struct TaskTargets {
    pub labels: Tensor<2>,
    pub mask: Tensor<2>,
    /// Rows where the label exists: the loss is their mean.
    pub count: f32,
}

/// Per-clip labels ([B, N_c] each): see `seesaw_data::batch::ClipBatch`.
pub struct ClipTargets {
    pub labels: Tensor<2>,
    pub masks: Tensor<2>,
    pub weights: Tensor<2>,
}

pub struct ModelTargets {
    /// In task order.
    pub tasks: Vec<TaskTargets>,
    pub clips: Option<ClipTargets>,
    /// The trainer's global step when the targets are a training batch's (terms with a warm-up
    /// read it); `None` elsewhere, where every term counts in full.
    pub step: Option<usize>,
}

impl ModelTargets {
    pub fn from_batch(batch: &Batch, device: &Device) -> Self {
        let tasks = (0..batch.n_tasks).map(|k| TaskTargets::of(batch, k, device)).collect();
        let clips = batch.clips.as_ref().map(|c| {
            let tensor = |values: &[f32]| {
                Tensor::from_data(TensorData::new(values.to_vec(), [batch.size, c.n_clips]), device)
            };
            ClipTargets {
                labels: tensor(&c.labels),
                masks: tensor(&c.masks),
                weights: tensor(&c.weights),
            }
        });
        Self { tasks, clips, step: None }
    }
}

impl ModelTargets {
    /// The same targets, marked as the training batch of global step `step`.
    pub fn at_step(self, step: usize) -> Self {
        Self { step: Some(step), ..self }
    }
}

impl TaskTargets {
    pub fn of(batch: &Batch, task: usize, device: &Device) -> Self {
        let n = batch.size;
        let labels = Tensor::from_data(TensorData::new(batch.label(task).to_vec(), [n, 1]), device);
        let mask_values = batch.mask(task).to_vec();
        let count = mask_values.iter().sum();
        let mask = Tensor::from_data(TensorData::new(mask_values, [n, 1]), device);
        TaskTargets { labels, mask, count }
    }
}
