//! A served model's first-layer products of the shared slots (a request's user and context),
//! kept for the most recent distinct shared inputs of each first layer.
//!
//! A served request is one row group: its user and context slots are embedded once, and every
//! first layer multiplies that one row by the weight rows of the shared columns (`crate::rows`).
//! The product reads the whole [D_shared, out] block of weights (in each of the KuaiRand
//! cross-stitch model's six first layers, from memory after the pause between two requests) to
//! produce one row of `out` floats, and the same user's next request computes it again. For an
//! input with frozen parameters, the product (with the bias) is kept per first layer and per
//! shared input, for the `CAPACITY` most recent distinct inputs of each layer.
//!
//! A shared input is keyed by what the request holds in the shared slots (ids, and dense values
//! bit for bit; `CachedRows::first_row_shared`), not by its embedding: with frozen parameters
//! the one decides the other, and a kept product then needs no embedding of the shared slots at
//! all (six lookups and concatenations per call, a seventh of a served KuaiRand call).
//!
//! Only calls with a single row group read or fill it. The gemm crate multiplies one row by its
//! matrix-vector path and several rows by its matrix kernels, which sum in another order, so a
//! row kept from a many-group call could differ in its last bits from the same row computed
//! alone: keeping only single-group products, a request's scores never depend on what was
//! served before it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use burn::module::ParamId;

/// How many distinct shared inputs each first layer keeps: the most recent ones. An entry is the
/// shared input (the key, a word per shared id or dense value) and the product (`out` floats).
pub const CAPACITY: usize = 512;

/// The kept shared products of every first layer that has read this embedding with frozen
/// parameters. Shared by clones of the embedding; a reloaded model starts with an empty one.
#[derive(Clone, Default)]
pub struct SharedProducts(Arc<Mutex<Kept>>);

#[derive(Default)]
struct Kept {
    layers: HashMap<ParamId, Recent>,
    computed: u64,
}

/// One layer's products by shared input, and the inputs in the order they were first kept.
#[derive(Default)]
struct Recent {
    products: HashMap<Arc<[u32]>, Arc<[f32]>>,
    order: VecDeque<Arc<[u32]>>,
}

impl std::fmt::Debug for SharedProducts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SharedProducts({} computed)", self.computed())
    }
}

impl SharedProducts {
    fn lock(&self) -> MutexGuard<'_, Kept> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The product of the shared input `shared` (one row's shared slots as words, compared
    /// exactly) for the layer `layer`: kept, or from `compute` and then kept. `compute` runs
    /// without the lock held, so two calls may both compute a new input; both get the same
    /// values.
    pub fn get_or_compute(
        &self,
        layer: ParamId,
        shared: &[u32],
        compute: impl FnOnce() -> Vec<f32>,
    ) -> Arc<[f32]> {
        let key: Arc<[u32]> = shared.into();
        if let Some(product) = self.lock().layers.get(&layer).and_then(|r| r.products.get(&key)) {
            return product.clone();
        }
        let product: Arc<[f32]> = compute().into();
        let mut kept = self.lock();
        kept.computed += 1;
        let recent = kept.layers.entry(layer).or_default();
        if recent.products.insert(key.clone(), product.clone()).is_none() {
            recent.order.push_back(key);
            if recent.order.len() > CAPACITY {
                let oldest = recent.order.pop_front().expect("longer than the capacity");
                recent.products.remove(&oldest);
            }
        }
        product
    }

    /// How many products have been computed (not read from the kept ones), over all layers.
    pub fn computed(&self) -> u64 {
        self.lock().computed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_most_recent_inputs_of_each_layer() {
        let kept = SharedProducts::default();
        let (layer, other_layer) = (ParamId::new(), ParamId::new());
        let product = |x: f32| move || vec![x, 2.0 * x];
        for i in 0..=CAPACITY {
            let got = kept.get_or_compute(layer, &[i as u32, 7], product(i as f32));
            assert_eq!(*got, [i as f32, 2.0 * i as f32]);
        }
        assert_eq!(kept.computed(), CAPACITY as u64 + 1);
        // Input 1 is still kept (a wrong product shows it was not recomputed); input 0, the
        // oldest, was dropped when the last came in; a key differing in any word is another
        // input.
        assert_eq!(*kept.get_or_compute(layer, &[1, 7], || vec![9.0, 9.0]), [1.0, 2.0]);
        assert_eq!(kept.computed(), CAPACITY as u64 + 1);
        assert_eq!(*kept.get_or_compute(layer, &[0, 7], || vec![7.0, 7.0]), [7.0, 7.0]);
        assert_eq!(*kept.get_or_compute(layer, &[1, 8], || vec![5.0, 5.0]), [5.0, 5.0]);
        // Each layer keeps its own.
        assert_eq!(*kept.get_or_compute(other_layer, &[1, 7], || vec![3.0, 3.0]), [3.0, 3.0]);
        assert_eq!(kept.computed(), CAPACITY as u64 + 4);
    }
}
