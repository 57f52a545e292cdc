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

#[test]
fn split_broadcast_and_allocating_passes_equal_the_whole_ones() {
    let device = Device::flex();
    let normal = Distribution::Normal(0.0, 1.0);
    for rows in [4097, 3] {
        // Held here, so every op on a clone of `a` or `b` must allocate its output.
        let a = Tensor::<2>::random([rows, 129], normal, &device);
        let b = Tensor::<2>::random([rows, 129], normal, &device);
        let bias = Tensor::<2>::random([1, 129], normal, &device);
        let per_row = Tensor::<2>::random([rows, 1], normal, &device);
        let fresh = |t: &Tensor<2>| t.clone() * 1.0;
        let (split, whole) = both(|| {
            // Allocating: unary, scalar, same-shape binary, and broadcast binary (a row, a
            // column); then in place with a broadcast operand.
            let allocated = relu(a.clone()) + a.clone() * 0.5 - (a.clone() * b.clone()) / 3.0;
            let broadcast = a.clone() * bias.clone() - per_row.clone() * b.clone();
            (fresh(&allocated) + bias.clone()) * per_row.clone() + broadcast
        });
        same(&split, &whole, &format!("{rows} rows"));
        // The same arithmetic on the host: the split halves must also be the right halves.
        let [av, bv, biasv, rowv] = [&a, &b, &bias, &per_row].map(|t| floats(t.clone()));
        let expected: Vec<u32> = (0..rows * 129)
            .map(|i| {
                let (x, y, c, r) = (av[i], bv[i], biasv[i % 129], rowv[i / 129]);
                let allocated = x.max(0.0) + x * 0.5 - (x * y) / 3.0;
                ((allocated * 1.0 + c) * r + (x * c - r * y)).to_bits()
            })
            .collect();
        same(&split, &expected, &format!("{rows} rows, against the host"));
    }
    // A 3-d broadcast with a short outer dimension, as an expert bank's bias add: [4, B, 64] +
    // [4, 1, 64], allocating and in place.
    let x = Tensor::<3>::random([4, 1025, 64], normal, &device);
    let bias = Tensor::<3>::random([4, 1, 64], normal, &device);
    let flat = |t: Tensor<3>| t.reshape([4 * 1025, 64]);
    let (xv, biasv) = (floats(flat(x.clone())), floats(bias.clone().reshape([4, 64])));
    let expected: Vec<u32> = (0..4 * 1025 * 64)
        .map(|i| (xv[i] + biasv[i / (1025 * 64) * 64 + i % 64]).to_bits())
        .collect();
    let (split, whole) = both(|| flat(x.clone() + bias.clone()));
    same(&split, &whole, "allocating 3-d broadcast");
    same(&split, &expected, "allocating 3-d broadcast, against the host");
    let (split, whole) = both(|| flat((x.clone() * 1.0) + bias.clone()));
    same(&split, &whole, "in-place 3-d broadcast");
    same(&split, &expected, "in-place 3-d broadcast, against the host");
}

/// Equal bit patterns, or a panic naming the first element that differs (not the whole vectors).
fn same(got: &[u32], want: &[u32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    if let Some(i) = (0..got.len()).find(|&i| got[i] != want[i]) {
        let (g, w) = (f32::from_bits(got[i]), f32::from_bits(want[i]));
        panic!("{what}: element {i} is {g}, not {w}");
    }
}

fn floats(t: Tensor<2>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

#[test]
fn split_sums_over_rows_equal_the_whole_ones() {
    let device = Device::flex();
    let normal = Distribution::Normal(0.0, 1.0);
    // A bias gradient ([B, out] summed over B) and a gate mixture's sum ([n, B, D] over n), then
    // an expert bank's bias gradient ([n, B, out] over B): first-dim and middle-dim sums.
    let x = Tensor::<2>::random([4097, 129], normal, &device);
    let xv = floats(x.clone());
    let mut want = vec![0.0f32; 129];
    for row in xv.chunks(129) {
        for (w, v) in want.iter_mut().zip(row) {
            *w += v;
        }
    }
    let want: Vec<u32> = want.into_iter().map(f32::to_bits).collect();
    let (split, whole) = both(|| x.clone().sum_dim(0));
    same(&split, &whole, "[4097, 129] over rows");
    same(&split, &want, "[4097, 129] over rows, against the host");

    let e = Tensor::<3>::random([4, 1025, 64], normal, &device);
    let ev = floats(e.clone().reshape([4 * 1025, 64]));
    let (split, whole) = both(|| e.clone().sum_dim(0).reshape([1025, 64]));
    same(&split, &whole, "[4, 1025, 64] over the experts");
    let want: Vec<u32> = (0..1025 * 64)
        .map(|i| (0..4).fold(0.0f32, |acc, n| acc + ev[n * 1025 * 64 + i]).to_bits())
        .collect();
    same(&split, &want, "[4, 1025, 64] over the experts, against the host");
    let (split, whole) = both(|| e.clone().sum_dim(1).reshape([4, 64]));
    same(&split, &whole, "[4, 1025, 64] over the rows");
    let want: Vec<u32> = (0..4 * 64)
        .map(|i| {
            let (n, c) = (i / 64, i % 64);
            (0..1025).fold(0.0f32, |acc, r| acc + ev[(n * 1025 + r) * 64 + c]).to_bits()
        })
        .collect();
    same(&split, &want, "[4, 1025, 64] over the rows, against the host");
}
