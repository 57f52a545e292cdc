//! The vendored burn-flex patch does half of a large matrix product (half of the output rows, or
//! columns) or of a large in-place element-wise pass on a helper thread. Each output element
//! must come out bit for bit as without the split: the trainer's fixed-seed reproducibility
//! rests on it, and work done whole (the helper was busy with another thread's) must not differ
//! from work split.

use burn::tensor::activation::relu;
use burn::tensor::{Device, Distribution, Tensor};
use seesaw_models::set_helper_thread;

fn bits(t: Tensor<2>) -> Vec<u32> {
    t.into_data().try_to_vec::<f32>().unwrap().into_iter().map(f32::to_bits).collect()
}

/// `f` computed with the helper on and off.
fn both(f: impl Fn() -> Tensor<2>) -> (Vec<u32>, Vec<u32>) {
    set_helper_thread(true);
    let split = bits(f());
    set_helper_thread(false);
    let whole = bits(f());
    set_helper_thread(true);
    (split, whole)
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
        let (split, whole) = both(|| a.clone().matmul(b.clone()));
        assert_eq!(split, whole, "{m}x{k}x{n}");
        // Transposed operands (strided views), as the backward pass multiplies them.
        let (at, bt) = (b.clone().transpose(), a.clone().transpose());
        let (split, whole) = both(|| at.clone().matmul(bt.clone()));
        assert_eq!(split, whole, "{m}x{k}x{n} transposed");
    }
}

#[test]
fn split_element_wise_passes_equal_the_whole_ones() {
    let device = Device::flex();
    // Odd sizes, so that the halves differ in length; above and below the split threshold.
    for rows in [4097, 3] {
        let a = Tensor::<2>::random([rows, 129], Distribution::Normal(0.0, 1.0), &device);
        let b = Tensor::<2>::random([rows, 129], Distribution::Normal(0.0, 1.0), &device);
        // Fresh operands each time: the in-place paths (and so the split) need unique buffers.
        let fresh = |t: &Tensor<2>| t.clone() * 1.0;
        let (split, whole) = both(|| relu(fresh(&a)) + fresh(&b) * 0.5 - fresh(&a) / 3.0);
        assert_eq!(split, whole, "{rows} rows");
        // And against the same arithmetic on the host, element by element.
        let (av, bv) = (bits(a.clone()), bits(b.clone()));
        let expected: Vec<u32> = av
            .iter()
            .zip(&bv)
            .map(|(&x, &y)| {
                let (x, y) = (f32::from_bits(x), f32::from_bits(y));
                (x.max(0.0) + y * 0.5 - x / 3.0).to_bits()
            })
            .collect();
        assert_eq!(split, expected, "{rows} rows");
    }
}
