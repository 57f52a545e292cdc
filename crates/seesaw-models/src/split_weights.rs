//! A first layer's weight rows for the shared and for the varying columns of a split embedding
//! (`crate::rows`), selected once for a model whose parameters are frozen.
//!
//! Every call of a split first layer multiplies the shared part by W[shared rows] and the varying
//! part by W[varying rows]; selecting those rows copies the whole weight (for the KuaiRand
//! cross-stitch model, 549 × 128 floats in each of six columns, on every request). A served model
//! never changes its weights, so for an input with `parameters_frozen` the selected rows are kept
//! in the embedding's `SplitWeightCache`, one entry per weight (by `ParamId`), for as long as the
//! model lives. Without the flag nothing is kept: a trained model's weights change at every step
//! while their `ParamId` stays.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use burn::module::{Param, ParamId};
use burn::tensor::{Int, Tensor};

/// The rows of `weight` along its input dimension: the shared columns' and the varying ones'.
pub type SplitWeights<const D: usize> = (Option<Tensor<D>>, Option<Tensor<D>>);

/// The split weight rows of every first layer that has read this embedding with frozen
/// parameters. Shared by clones of the embedding; a reloaded model starts with an empty one.
#[derive(Clone, Default)]
pub struct SplitWeightCache {
    linear: Arc<Mutex<HashMap<ParamId, SplitWeights<2>>>>,
    batched: Arc<Mutex<HashMap<ParamId, SplitWeights<3>>>>,
}

impl std::fmt::Debug for SplitWeightCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let linear = self.linear.lock().map_or(0, |m| m.len());
        let batched = self.batched.lock().map_or(0, |m| m.len());
        write!(f, "SplitWeightCache({} layers)", linear + batched)
    }
}

/// The columns (input rows of a first-layer weight) of each part of a split embedding.
pub struct SplitColumns<'a> {
    pub shared: Option<&'a Tensor<1, Int>>,
    pub varying: Option<&'a Tensor<1, Int>>,
}

impl SplitColumns<'_> {
    /// The rows of `weight` ([in, out]) for each part, from `cache` when there is one.
    pub fn linear(
        &self,
        weight: &Param<Tensor<2>>,
        cache: Option<&SplitWeightCache>,
    ) -> SplitWeights<2> {
        self.rows(weight, 0, cache.map(|c| &*c.linear))
    }

    /// The rows of an expert bank's first weight ([n, in, out]) for each part, from `cache`
    /// when there is one.
    pub fn batched(
        &self,
        weight: &Param<Tensor<3>>,
        cache: Option<&SplitWeightCache>,
    ) -> SplitWeights<3> {
        self.rows(weight, 1, cache.map(|c| &*c.batched))
    }

    /// `weight`'s rows along `dim`, selected now, or once per weight when there is a cache.
    fn rows<const D: usize>(
        &self,
        weight: &Param<Tensor<D>>,
        dim: usize,
        cache: Option<&Mutex<HashMap<ParamId, SplitWeights<D>>>>,
    ) -> SplitWeights<D> {
        let select = || {
            let value = weight.val();
            let rows = |c: Option<&Tensor<1, Int>>| c.map(|c| value.clone().select(dim, c.clone()));
            (rows(self.shared), rows(self.varying))
        };
        match cache {
            None => select(),
            Some(cache) => {
                let mut map = cache.lock().unwrap_or_else(|e| e.into_inner());
                map.entry(weight.id).or_insert_with(select).clone()
            }
        }
    }
}
