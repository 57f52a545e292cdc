//! The vendored burn-flex patch splits a large matrix product across two threads (half of the
//! output rows, or columns, each). Each output element must come out bit for bit as without the
//! split: the trainer's fixed-seed reproducibility rests on it, and a product computed whole
//! (the helper was busy with another thread's product) must not differ from a split one.

use burn::tensor::{Device, Distribution, Tensor};
use seesaw_models::set_split_matmul;

fn product(a: &Tensor<2>, b: &Tensor<2>, split: bool) -> Vec<u32> {
    set_split_matmul(split);
    let out = a.clone().matmul(b.clone()).into_data().try_to_vec::<f32>().unwrap();
    set_split_matmul(true);
    out.into_iter().map(f32::to_bits).collect()
}

#[test]
fn a_split_product_equals_the_whole_one_bit_for_bit() {
    let device = Device::flex();
    // [m, k, n] of the reference MMoE's forward and backward products (batch 512 and 4096, the
    // k = batch weight gradients), a cross-stitch mix, and split by columns (m < n).
    let shapes = [
        (512, 58, 128),
        (4096, 128, 64),
        (128, 4096, 64),
        (58, 4096, 128),
        (9, 9, 64_000),
        (3, 5000, 700),
    ];
    for (m, k, n) in shapes {
        let a = Tensor::<2>::random([m, k], Distribution::Normal(0.0, 1.0), &device);
        let b = Tensor::<2>::random([k, n], Distribution::Normal(0.0, 1.0), &device);
        assert_eq!(product(&a, &b, true), product(&a, &b, false), "{m}x{k}x{n}");
        // Transposed operands (strided views), as the backward pass multiplies them.
        let (at, bt) = (b.clone().transpose(), a.clone().transpose());
        assert_eq!(product(&at, &bt, true), product(&at, &bt, false), "{m}x{k}x{n} transposed");
    }
}
