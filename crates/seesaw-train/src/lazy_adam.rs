//! Row-sparse embedding updates: Adam (or AdamW) applied only to the rows of an embedding table
//! that the step's batch touched, with "lazy" moments as PyTorch's `SparseAdam` keeps them: a
//! row's moments decay only on the steps that update it, and an untouched row does not move.
//!
//! Why: most parameters of a ranking model are embedding rows (640k of the 708k of the reference
//! MMoE), and a batch touches a few thousand of them. Dense Adam reads and writes every row's
//! weight and both moments on every step, a dozen element-wise passes over the whole table,
//! whatever the batch held; with millions of ids that is the whole cost of a step. Here a step
//! reads the gradient once to find the touched rows (those with a non-zero gradient) and updates
//! those in place. Two passes over the table remain: burn's embedding backward still builds the
//! gradient dense (zero-filled, then scattered), and this step scans it.
//!
//! A row that every step touches is updated exactly as burn's `Adam`/`AdamW` updates it (the
//! same operations in the same order, bit for bit; a test checks it). The state is burn's
//! `AdamState`, so checkpoints save and resume it like any other optimiser state.

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::optim::{AdamState, AdaptiveMomentumState, Optimizer};
use burn::tensor::{Device, Tensor, TensorData};

/// Which dense optimiser the lazy update follows, with its weight decay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LazyRule {
    /// burn's `Adam`; a positive λ adds the L2 penalty λw to the gradient.
    Adam { l2: f32 },
    /// burn's `AdamW`: decoupled decay, w(1 - lr·λ), before the step.
    AdamW { decay: f32 },
}

#[derive(Debug, Clone)]
pub struct LazyAdam {
    pub beta_1: f32,
    pub beta_2: f32,
    pub epsilon: f32,
    pub rule: LazyRule,
}

impl LazyAdam {
    /// burn's Adam and AdamW defaults (β = 0.9, 0.999; ε = 1e-5), so that switching between the
    /// dense and the lazy update changes nothing but which rows move.
    pub fn new(rule: LazyRule) -> Self {
        Self { beta_1: 0.9, beta_2: 0.999, epsilon: 1e-5, rule }
    }
}

impl Optimizer for LazyAdam {
    type State<const D: usize> = AdamState<D>;

    fn step<const D: usize>(
        &self,
        lr: f64,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let device = tensor.device();
        let dims = tensor.dims();
        let width = dims.last().copied().unwrap_or(1).max(1);
        let n: usize = dims.iter().product();
        // Owned buffers: a tensor nobody else holds gives its storage up without a copy.
        let mut weights = tensor.into_data();
        let (time, mut moment_1, mut moment_2) = match state {
            Some(state) => {
                let m = state.momentum;
                (m.time + 1, m.moment_1.into_data(), m.moment_2.into_data())
            }
            None => (1, zeros(n, dims), zeros(n, dims)),
        };
        let grad = grad.into_data();
        let g = grad.as_slice::<f32>().expect("f32 gradients");
        let w = weights.as_mut_slice::<f32>().expect("f32 parameters");
        let m = moment_1.as_mut_slice::<f32>().expect("f32 moments");
        let v = moment_2.as_mut_slice::<f32>().expect("f32 moments");

        // burn's Adam and AdamW, term for term and in their order of operations.
        let (b1, b2, t) = (self.beta_1, self.beta_2, time as i32);
        let (factor_1, factor_2) = (1.0 - b1, 1.0 - b2);
        let (correction_1, correction_2) = (1.0 - b1.powi(t), 1.0 - b2.powi(t));
        let bias_correction2_sqrt = correction_2.sqrt();
        let combined_factor = bias_correction2_sqrt / correction_1;
        let adam_epsilon = self.epsilon * bias_correction2_sqrt;
        let lr32 = lr as f32;
        // AdamW's decay multiplies by 1 - lr·λ, or not at all when that rate is 0.
        let keep = match self.rule {
            LazyRule::AdamW { decay } if lr * decay as f64 != 0.0 => {
                Some((1.0 - lr * decay as f64) as f32)
            }
            _ => None,
        };
        for row in (0..n).step_by(width) {
            let rows = row..row + width;
            if g[rows.clone()].iter().all(|&x| x == 0.0) {
                continue;
            }
            for i in rows {
                match self.rule {
                    LazyRule::Adam { l2 } => {
                        let gi = if l2 > 0.0 { w[i] * l2 + g[i] } else { g[i] };
                        m[i] = m[i] * b1 + gi * factor_1;
                        v[i] = v[i] * b2 + gi * gi * factor_2;
                        let update = m[i] * combined_factor / (v[i].sqrt() + adam_epsilon);
                        w[i] -= update * lr32;
                    }
                    LazyRule::AdamW { .. } => {
                        let gi = g[i];
                        m[i] = m[i] * b1 + gi * factor_1;
                        v[i] = v[i] * b2 + gi * gi * factor_2;
                        let update =
                            m[i] / correction_1 / ((v[i] / correction_2).sqrt() + self.epsilon);
                        let decayed = keep.map_or(w[i], |keep| w[i] * keep);
                        w[i] = decayed - update * lr32;
                    }
                }
            }
        }
        let momentum = AdaptiveMomentumState::new(
            time,
            Tensor::from_data(moment_1, &device),
            Tensor::from_data(moment_2, &device),
        );
        (Tensor::from_data(weights, &device), Some(AdamState::new(momentum)))
    }

    fn to_device<const D: usize>(mut state: Self::State<D>, device: &Device) -> Self::State<D> {
        state.momentum = state.momentum.to_device(device);
        state
    }
}

fn zeros<const D: usize>(n: usize, dims: [usize; D]) -> TensorData {
    TensorData::new(vec![0.0f32; n], dims)
}

/// The parameters of every embedding lookup table (burn's `Embedding`) in `module`: the rows a
/// batch does not look up get no gradient, which is what the lazy update is for.
pub fn embedding_table_ids<M: Module>(module: &M) -> Vec<ParamId> {
    #[derive(Default)]
    struct Tables {
        /// The container type of every module entered and not yet left.
        containers: Vec<String>,
        ids: Vec<ParamId>,
    }
    impl ModuleVisitor for Tables {
        fn enter_module(&mut self, _name: &str, container_type: &str) {
            self.containers.push(container_type.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.containers.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if self.containers.last().is_some_and(|c| c == "Struct:Embedding") {
                self.ids.push(param.id);
            }
        }
    }
    let mut tables = Tables::default();
    module.visit(&mut tables);
    tables.ids
}

#[cfg(test)]
mod tests {
    use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig};
    use burn::optim::{AdamConfig, AdamWConfig, decay::WeightDecayConfig};

    use super::*;

    fn tensor(values: &[f32], rows: usize) -> Tensor<2> {
        let cols = values.len() / rows;
        Tensor::from_data(TensorData::new(values.to_vec(), [rows, cols]), &Device::flex())
    }

    fn values(t: Tensor<2>) -> Vec<f32> {
        seesaw_models::to_vec(t)
    }

    /// Five steps of `optimizer` on a [3, 2] table from `gradients(step)`.
    fn run<O: Optimizer>(optimizer: &O, gradients: impl Fn(usize) -> Vec<f32>) -> Vec<f32> {
        let mut weights = tensor(&[0.5, -0.25, 1.0, 0.75, -1.5, 0.125], 3);
        let mut state = None;
        for step in 0..5 {
            let (w, s) = optimizer.step(3e-2, weights, tensor(&gradients(step), 3), state);
            (weights, state) = (w, s);
        }
        values(weights)
    }

    /// Gradients on every row, different at every step.
    fn dense(step: usize) -> Vec<f32> {
        (0..6).map(|i| ((i * 7 + step * 3) % 11) as f32 * 0.1 - 0.45).collect()
    }

    #[test]
    fn rows_touched_every_step_move_exactly_as_burns_dense_optimisers() {
        let pairs: [(Vec<f32>, Vec<f32>); 3] = [
            (
                run(&AdamConfig::new().build(), dense),
                run(&LazyAdam::new(LazyRule::Adam { l2: 0.0 }), dense),
            ),
            (
                run(
                    &AdamConfig::new().with_weight_decay(Some(WeightDecayConfig::new(0.1))).build(),
                    dense,
                ),
                run(&LazyAdam::new(LazyRule::Adam { l2: 0.1 }), dense),
            ),
            (
                run(&AdamWConfig::new().with_weight_decay(0.1).build(), dense),
                run(&LazyAdam::new(LazyRule::AdamW { decay: 0.1 }), dense),
            ),
        ];
        for (burn, lazy) in pairs {
            // Bit for bit: the same operations in the same order.
            assert_eq!(burn, lazy);
        }
    }

    #[test]
    fn a_row_without_gradient_keeps_its_weights_and_moments() {
        // Row 1 gets a gradient at steps 0 and 1 only.
        let sparse = |step: usize| {
            let mut g = dense(step);
            if step >= 2 {
                g[2] = 0.0;
                g[3] = 0.0;
            }
            g
        };
        let lazy = LazyAdam::new(LazyRule::Adam { l2: 0.0 });
        let two_steps = |optimizer: &LazyAdam| {
            let mut weights = tensor(&[0.5, -0.25, 1.0, 0.75, -1.5, 0.125], 3);
            let mut state = None;
            for step in 0..2 {
                (weights, state) = optimizer.step(3e-2, weights, tensor(&sparse(step), 3), state);
            }
            values(weights)
        };
        let after_two = two_steps(&lazy);
        let after_five = run(&lazy, sparse);
        assert_eq!(after_five[2..4], after_two[2..4], "the untouched row stayed where it was");
        assert_ne!(after_five[0..2], after_two[0..2], "the touched rows moved on");
        // Dense Adam keeps moving the row on its momentum: the test tells the two apart.
        let dense_adam = run(&AdamConfig::new().build(), sparse);
        assert_ne!(dense_adam[2..4], after_two[2..4]);
        // The rows touched every step still move as dense Adam moves them.
        assert_eq!(dense_adam[0..2], after_five[0..2]);
    }

    #[derive(Module, Debug)]
    struct Tables {
        users: Embedding,
        layer: Linear,
        tags: Vec<Embedding>,
    }

    #[test]
    fn the_embedding_tables_are_found_and_nothing_else() {
        let device = Device::flex();
        let module = Tables {
            users: EmbeddingConfig::new(10, 4).init(&device),
            layer: LinearConfig::new(4, 2).init(&device),
            tags: vec![
                EmbeddingConfig::new(5, 4).init(&device),
                EmbeddingConfig::new(6, 4).init(&device),
            ],
        };
        let found = embedding_table_ids(&module);
        let expected =
            vec![module.users.weight.id, module.tags[0].weight.id, module.tags[1].weight.id];
        assert_eq!(found, expected);
    }
}
