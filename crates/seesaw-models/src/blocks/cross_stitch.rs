//! The cross-stitch unit (Misra et al. 2016): given one activation per task, x̃_k = Σ_j α_kj x_j.
//! α starts as a convex combination (0.9 on the diagonal, 0.1 spread evenly off it), so each
//! column begins mostly its own and the network can learn how much to share; zeros would cut
//! every column off from its own input.

use burn::module::{Module, Param};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor, TensorData};

use crate::to_vec;

#[derive(Module, Debug)]
pub struct CrossStitchUnit {
    /// [K, K]: row k mixes the K columns into column k.
    pub alpha: Param<Tensor<2>>,
}

impl CrossStitchUnit {
    pub fn new(n_tasks: usize, device: &Device) -> Self {
        let mut a = vec![0.0f32; n_tasks * n_tasks];
        for k in 0..n_tasks {
            for j in 0..n_tasks {
                a[k * n_tasks + j] = if k == j {
                    if n_tasks == 1 { 1.0 } else { 0.9 }
                } else {
                    0.1 / (n_tasks - 1) as f32
                };
            }
        }
        Self { alpha: Param::from_data(TensorData::new(a, [n_tasks, n_tasks]), device) }
    }

    /// [K, B, D] -> [K, B, D]: the K columns' activations stacked, mixed. The columns stay
    /// stacked between the layers of a cross-stitch network, so the mix reads them where they
    /// are (stacking K separate tensors was a tenth of a served call).
    pub fn forward(&self, columns: Tensor<3>) -> Tensor<3> {
        let [k, b, d] = columns.dims();
        let mixed = self.alpha.val().matmul(columns.reshape([k, b * d])); // [K, B*D]
        mixed.reshape([k, b, d])
    }

    /// `forward(relu(columns + bias))`, bias [K, 1, D] per column, as a cross-stitch layer
    /// applies it. With `in_one_pass` (a model whose parameters are frozen, never on a tracked
    /// tensor: it would lose the gradient) the bias, the ReLU and the mix go over the host data
    /// once, in place, with the same arithmetic as the three tensor passes, bit for bit: the
    /// passes read and wrote the [K, B, D] activations three times, which on a served
    /// KuaiRand call (six columns of 250 × 128) was a sixth of the call.
    pub fn forward_rectified(
        &self,
        columns: Tensor<3>,
        bias: Option<Tensor<3>>,
        in_one_pass: bool,
    ) -> Tensor<3> {
        let [k, b, d] = columns.dims();
        // Below three columns, or for a single position, gemm multiplies with other kernels
        // (`gevv`, which starts from the first product rather than zero; `gemv`), so the pass
        // would round differently there.
        if !in_one_pass || k < 3 || b * d < 2 {
            let pre_activation = match bias {
                Some(bias) => columns + bias,
                None => columns,
            };
            return self.forward(relu(pre_activation));
        }
        let device = columns.device();
        let alpha = to_vec(self.alpha.val());
        let bias = bias.map(|bias| {
            assert_eq!(bias.dims(), [k, 1, d], "one bias row per column");
            to_vec(bias)
        });
        let mut data = columns.into_data();
        let values = data.as_mut_slice::<f32>().expect("activations are f32");
        mix_rectified_in_place(values, &alpha, bias.as_deref(), [k, b, d]);
        Tensor::from_data(data, &device)
    }
}

/// values [K, B, D] <- α · relu(values + bias), bias [K, D] broadcast over B.
///
/// Bit for bit what the tensor passes compute: the add and burn-flex's ReLU (NaN passes, every
/// other non-positive value becomes +0) element by element, then the [K, K] × [K, B·D] product
/// as gemm's general kernels accumulate a depth of K ≥ 3: one fused multiply-add per column in
/// column order, from zero. `cross_stitch_in_one_pass_equals_the_tensor_passes_bit_for_bit` holds it to that.
fn mix_rectified_in_place(
    values: &mut [f32],
    alpha: &[f32],
    bias: Option<&[f32]>,
    dims: [usize; 3],
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("fma") && std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has the features the function is compiled for (checked just above).
        return unsafe { mix_rectified_fma(values, alpha, bias, dims) };
    }
    mix_rectified(values, alpha, bias, dims)
}

/// The same loop compiled with FMA and AVX2, so that `mul_add` is one instruction on eight
/// lanes instead of a call into libm (the baseline x86-64 target has neither).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn mix_rectified_fma(
    values: &mut [f32],
    alpha: &[f32],
    bias: Option<&[f32]>,
    dims: [usize; 3],
) {
    mix_rectified(values, alpha, bias, dims)
}

/// Row by row: the row's K inputs are rectified into a scratch buffer, then each output column
/// is accumulated over them in fixed-size blocks (the sums in registers, the copies inline) and
/// written where column k's input was (a position's outputs depend only on that position's
/// inputs, so in place is safe).
#[inline(always)]
fn mix_rectified(values: &mut [f32], alpha: &[f32], bias: Option<&[f32]>, [k, b, d]: [usize; 3]) {
    let plane = b * d;
    assert_eq!(values.len(), k * plane, "[K, B, D] activations");
    assert_eq!(alpha.len(), k * k, "a [K, K] mix");
    let rectify = |x: f32| if x.is_nan() || x > 0.0 { x } else { 0.0 };
    let mut inputs = vec![0.0f32; k * d];
    for row in 0..b {
        let at = row * d;
        for (j, input) in inputs.chunks_exact_mut(d).enumerate() {
            let column = &values[j * plane + at..][..d];
            match bias {
                Some(bias) => {
                    let bias = &bias[j * d..][..d];
                    for ((x, &v), &b) in input.iter_mut().zip(column).zip(bias) {
                        *x = rectify(v + b);
                    }
                }
                None => {
                    for (x, &v) in input.iter_mut().zip(column) {
                        *x = rectify(v);
                    }
                }
            }
        }
        for (out, alphas) in alpha.chunks_exact(k).enumerate() {
            let output = &mut values[out * plane + at..][..d];
            // Wide blocks first: a block's lanes are independent sums, so a wide one keeps the
            // FMA units busy while each sum waits for its previous step.
            let mut done = mix_blocks::<64>(output, alphas, &inputs, d, 0);
            done = mix_blocks::<16>(output, alphas, &inputs, d, done);
            for p in done..d {
                let mut sum = 0.0f32;
                for (&a, input) in alphas.iter().zip(inputs.chunks_exact(d)) {
                    sum = a.mul_add(input[p], sum);
                }
                output[p] = sum;
            }
        }
    }
}

/// output[p] = Σ_j alphas[j] · inputs[j][p] for the whole blocks of `W` positions from `from`;
/// returns where they end.
#[inline(always)]
fn mix_blocks<const W: usize>(
    output: &mut [f32],
    alphas: &[f32],
    inputs: &[f32],
    d: usize,
    from: usize,
) -> usize {
    let mut at = from;
    while at + W <= d {
        let mut sums = [0.0f32; W];
        for (&a, input) in alphas.iter().zip(inputs.chunks_exact(d)) {
            let x: &[f32; W] = input[at..at + W].try_into().expect("a block");
            for (sum, &x) in sums.iter_mut().zip(x) {
                *sum = a.mul_add(x, *sum);
            }
        }
        output[at..at + W].copy_from_slice(&sums);
        at += W;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values in [-1, 1) from a fixed seed, with every fifth an exact zero or minus zero, so that
    /// the ReLU's edge and the sign of a zero sum are exercised.
    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (0..n)
            .map(|i| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                match i % 10 {
                    3 => 0.0,
                    8 => -0.0,
                    _ => (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0,
                }
            })
            .collect()
    }

    fn bits(tensor: Tensor<3>) -> Vec<u32> {
        to_vec(tensor).into_iter().map(f32::to_bits).collect()
    }

    #[test]
    fn cross_stitch_in_one_pass_equals_the_tensor_passes_bit_for_bit() {
        let device = Device::flex();
        // A served KuaiRand layer (six columns of 250 × 128); widths that are not a whole number
        // of blocks; small products, where gemm could pick other kernels; one position, and two
        // and one columns, which take the tensor passes either way.
        let shapes = [
            [6, 250, 128],
            [6, 37, 64],
            [4, 3, 100],
            [3, 5, 20],
            [3, 1, 5],
            [4, 2, 3],
            [6, 1, 2],
            [3, 1, 1],
            [2, 4, 7],
            [1, 3, 5],
        ];
        for [k, b, d] in shapes {
            for seed in 0..4 {
                let mut unit = CrossStitchUnit::new(k, &device);
                // A learned mix: negative weights too, not the initial convex one.
                let alpha = values(k * k, 100 + seed).iter().map(|a| 1.5 * a).collect();
                unit.alpha = Param::from_data(TensorData::new(alpha, [k, k]), &device);
                let columns = Tensor::<3>::from_data(
                    TensorData::new(values(k * b * d, seed), [k, b, d]),
                    &device,
                );
                let bias = Tensor::<3>::from_data(
                    TensorData::new(values(k * d, 50 + seed), [k, 1, d]),
                    &device,
                );
                for bias in [None, Some(bias)] {
                    let with_bias = bias.is_some();
                    let passes = unit.forward_rectified(columns.clone(), bias.clone(), false);
                    let one_pass = unit.forward_rectified(columns.clone(), bias, true);
                    assert_eq!(
                        bits(one_pass),
                        bits(passes),
                        "[{k}, {b}, {d}], seed {seed}, with a bias: {with_bias}"
                    );
                }
            }
        }
    }
}
