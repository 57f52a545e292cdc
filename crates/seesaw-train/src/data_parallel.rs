//! Data-parallel training over a [`Collective`]: every rank takes its slice of each global batch,
//! computes the gradient of its share of the global batch's loss, and the gradients are summed
//! across ranks, so that every rank takes the same optimiser step as one process would on the
//! whole batch, and the weights stay bit-identical across ranks.
//!
//! The losses are masked per-task means, so a rank's share of task t is not 1/N of it: a rank
//! holding n_rt of the global batch's n_t labels of t weighs its mean by n_rt / n_t. Summing
//! those weighted gradients gives the gradient of the global batch's mean, whatever the labels'
//! spread over the ranks.

use std::ops::Range;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};
use seesaw_data::batch::Batch;

use crate::collective::Collective;

/// The rows of a global batch of `batch_size` rows that `rank` of `ranks` trains on: consecutive,
/// disjoint, covering the batch, sizes differing by at most one.
pub fn rank_rows(batch_size: usize, rank: usize, ranks: usize) -> Range<usize> {
    batch_size * rank / ranks..batch_size * (rank + 1) / ranks
}

/// Per task, the weight of this rank's mean loss in the global batch's mean: the share of the
/// task's labels that `rows` hold; `None` when the global batch has none.
pub fn task_shares(batch: &Batch, rows: &Range<usize>) -> Vec<Option<f32>> {
    (0..batch.n_tasks)
        .map(|task| {
            let mask = batch.mask(task);
            let global: f32 = mask.iter().sum();
            let local: f32 = mask[rows.clone()].iter().sum();
            (global > 0.0).then(|| local / global)
        })
        .collect()
}

/// Sums `grads` (this rank's gradient of `module`) over every rank, together with `extra`
/// (numbers such as the step's weighted losses, summed in the same call). A parameter has a
/// gradient afterwards when any rank had one. `None` when no rank had any: no step is taken.
pub fn sum_gradients<M: Module>(
    module: &M,
    grads: GradientsParams,
    extra: &mut [f32],
    collective: &dyn Collective,
) -> Option<GradientsParams> {
    let mut flatten = FlattenGradients { grads: &grads, presence: Vec::new(), values: Vec::new() };
    module.visit(&mut flatten);
    let FlattenGradients { presence, values, .. } = flatten;
    let (n_params, n_values) = (presence.len(), values.len());
    // One buffer, values first: the small flags and extras are appended to the large gradient
    // vector, never the other way round (no copy of the gradients per step).
    let mut buffer = values;
    buffer.extend(presence);
    buffer.extend_from_slice(extra);
    collective.sum_f32(&mut buffer);
    let (values, rest) = buffer.split_at(n_values);
    let (presence, summed_extra) = rest.split_at(n_params);
    extra.copy_from_slice(summed_extra);
    if presence.iter().all(|&p| p == 0.0) {
        return None;
    }
    let mut summed = GradientsParams::new();
    let mut rebuild =
        RebuildGradients { presence, values, index: 0, offset: 0, grads: &mut summed };
    module.visit(&mut rebuild);
    Some(summed)
}

/// Every rank's parameters set to rank 0's: a sum to which the other ranks add zeros.
pub fn broadcast_from_root<M: Module>(module: M, collective: &dyn Collective) -> M {
    if collective.size() == 1 {
        return module;
    }
    let mut buffer = parameter_values(&module);
    if !collective.is_root() {
        buffer.fill(0.0);
    }
    collective.sum_f32(&mut buffer);
    module.map(&mut SetParameters { values: &buffer, offset: 0 })
}

/// Draws every parameter's initial value now, in visit order. burn initialises a parameter
/// lazily, on its first access, from the backend's one process-wide random generator, so the
/// values drawn depend on the order of first access: the forward pass's in one process, the
/// visit order in a broadcast. Materialising them right after the model is built makes the draw
/// the same on every path (one process, rank 0 of several, a resumed run before loading).
pub fn materialize_parameters<M: Module>(module: &M) {
    module.visit(&mut Materialize);
}

struct Materialize;

impl ModuleVisitor for Materialize {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        // `val` runs the deferred initialiser; the returned handle is a cheap clone.
        let _ = param.val();
    }
}

/// Every parameter's values, flattened in visit order.
pub fn parameter_values<M: Module>(module: &M) -> Vec<f32> {
    let mut values = ParameterValues::default();
    module.visit(&mut values);
    values.0
}

/// A hash of every parameter's bits, in visit order: equal on two ranks exactly when their
/// weights are bit-identical (up to a hash collision).
pub fn parameter_hash<M: Module>(module: &M) -> u64 {
    // FNV-1a over the f32 bit patterns.
    parameter_values(module).iter().fold(0xCBF2_9CE4_8422_2325u64, |hash, v| {
        v.to_bits()
            .to_le_bytes()
            .iter()
            .fold(hash, |h, &b| (h ^ b as u64).wrapping_mul(0x100_0000_01B3))
    })
}

struct FlattenGradients<'a> {
    grads: &'a GradientsParams,
    /// Per parameter, 1 where this rank has its gradient.
    presence: Vec<f32>,
    values: Vec<f32>,
}

impl ModuleVisitor for FlattenGradients<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let n: usize = param.shape().dims::<D>().iter().product();
        match self.grads.get::<D>(param.id) {
            Some(grad) => {
                self.presence.push(1.0);
                self.values.extend(grad.into_data().iter::<f32>());
            }
            None => {
                self.presence.push(0.0);
                self.values.extend(std::iter::repeat_n(0.0, n));
            }
        }
    }
}

struct RebuildGradients<'a> {
    presence: &'a [f32],
    values: &'a [f32],
    index: usize,
    offset: usize,
    grads: &'a mut GradientsParams,
}

impl ModuleVisitor for RebuildGradients<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let dims = param.shape().dims::<D>();
        let n: usize = dims.iter().product();
        let values = &self.values[self.offset..self.offset + n];
        self.offset += n;
        let present = self.presence[self.index] > 0.0;
        self.index += 1;
        if present {
            // Gradients live on the inner (non-autodiff) device.
            let grad =
                Tensor::<D>::from_data(TensorData::new(values.to_vec(), dims), &Device::flex());
            self.grads.register::<D>(param.id, grad);
        }
    }
}

#[derive(Default)]
struct ParameterValues(Vec<f32>);

impl ModuleVisitor for ParameterValues {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.0.extend(param.val().into_data().iter::<f32>());
    }
}

struct SetParameters<'a> {
    values: &'a [f32],
    offset: usize,
}

impl ModuleMapper for SetParameters<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, value, mapper) = param.consume();
        let dims = value.shape().dims::<D>();
        let n: usize = dims.iter().product();
        let values = self.values[self.offset..self.offset + n].to_vec();
        self.offset += n;
        let set = Tensor::from_data(TensorData::new(values, dims), &value.device())
            .set_require_grad(value.is_require_grad());
        Param::from_mapped_value(id, set, mapper)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_rows_cover_the_batch_disjointly() {
        for (size, ranks) in [(10, 3), (512, 2), (1, 2), (7, 7)] {
            let rows: Vec<_> = (0..ranks).map(|r| rank_rows(size, r, ranks)).collect();
            assert_eq!(rows[0].start, 0);
            assert_eq!(rows[ranks - 1].end, size);
            for pair in rows.windows(2) {
                assert_eq!(pair[0].end, pair[1].start);
            }
            assert!(rows.iter().all(|r| r.len() <= size.div_ceil(ranks)));
        }
    }
}
