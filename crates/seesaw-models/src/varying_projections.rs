//! The first layers' products of the varying part of a split embedding (`crate::rows`), kept per
//! distinct varying input, for a model whose parameters are frozen (a served model).
//!
//! The varying slots of a serving request are the candidate video's: its id and its side
//! features. A feed re-ranks the same videos request after request (the KuaiRand catalogue has
//! 7,583), and a served model's weights never change, so a first layer's varying product,
//! x_varying·W[varying rows], is a function of the row's varying inputs alone. Kept per distinct
//! input (the row's varying ids and dense values, bit for bit), a row seen before costs a copy
//! of the layer's output width per first layer instead of its embedding lookups, its pooled
//! tags and its share of the first product. A row not seen before is embedded and multiplied as
//! without the cache (the rows of one call that miss, in one product) and its result kept.
//! Measured on the KuaiRand cross-stitch model in `seesaw serve`: the mean model call of a
//! 500-candidate request went from 4.0 to 2.5 ms (docs/performance.md).
//!
//! Each row's key is read from the input once per call (`ModelInput::varying_keys`) and looked
//! up, by a 64-bit fingerprint, in the model's numbering of the inputs seen (`VaryingNumbering`),
//! also once per call for all the embeddings of the model; each embedding keeps its products by
//! those numbers. Two keys with one fingerprint are told apart, and the second is computed at
//! every call rather than kept.
//!
//! The kept products are those the first call that saw an input computed, so a later call's
//! outputs equal those of a call without the cache up to float rounding (a product's kernel may
//! block its sums differently for another number of rows; the tests find them equal bit for
//! bit). Memory: at most `MAX_CACHED_INPUTS` inputs per model, each holding every first
//! layer's output width in floats (the KuaiRand cross-stitch model: six columns of 128, 3 KB an
//! input, 23 MB for the whole catalogue); the inputs beyond it are computed at every call and not
//! kept. Nothing is kept without the frozen-parameter promise: a trained model's weights change
//! at every step.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};

use burn::module::ParamId;
use burn::tensor::{Int, Tensor};
use rustc_hash::FxBuildHasher;

use crate::input::ModelInput;
use crate::rows::{SharedSlots, SideSlots, index_tensor};

/// Distinct varying inputs numbered (and so kept) per model; further ones are computed at every
/// call.
pub const MAX_CACHED_INPUTS: usize = 1 << 16;

/// The numbers of the distinct varying inputs seen, by which the embeddings find their kept
/// products. One per served model: `MultiTaskModel::forward` hands its numbering to every
/// embedding through `ModelInput::varying_numbering`, and a call numbers its rows once, for all
/// of them (the KuaiRand cross-stitch model has six column embeddings; looking each row up six
/// times cost an eighth of a served call back to back, a sixth after a pause). An embedding
/// that is given none numbers with its own.
///
/// Behind a read-write lock: the two halves of a split request (`seesaw_serve::batcher`) look
/// up the same inputs at the same moment on two cores, and once the inputs are numbered neither
/// writes. A call takes the write lock only to number new inputs.
#[derive(Clone)]
pub struct VaryingNumbering(Arc<RwLock<Numbering>>);

struct Numbering {
    /// Distinct varying inputs numbered at most.
    limit: usize,
    /// Each numbered input's number by its key's fingerprint (`RowKeys::fingerprints`).
    ids: HashMap<u64, u32, FxBuildHasher>,
    /// The numbered inputs' keys, input i's at `keys[i * width..]`, to tell a fingerprint shared
    /// by two keys (such an input is computed at every call, not kept).
    keys: Vec<u32>,
}

impl Default for VaryingNumbering {
    fn default() -> Self {
        Self::with_limit(MAX_CACHED_INPUTS)
    }
}

impl std::fmt::Debug for VaryingNumbering {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VaryingNumbering({} inputs)", self.kept_inputs())
    }
}

impl VaryingNumbering {
    /// Numbering at most `limit` distinct varying inputs.
    pub fn with_limit(limit: usize) -> Self {
        Self(Arc::new(RwLock::new(Numbering { limit, ids: HashMap::default(), keys: Vec::new() })))
    }

    /// Distinct varying inputs numbered.
    pub fn kept_inputs(&self) -> usize {
        self.read().ids.len()
    }

    /// Each row's number (`None` for an input beyond the bound), numbering the inputs not seen
    /// before while fewer than the limit are numbered.
    fn number(&self, keys: &RowKeys, batch_size: usize) -> Arc<[Option<u32>]> {
        if let Some(ids) = self.numbers_if_known(keys, batch_size) {
            return ids.into();
        }
        let width = keys.width;
        let mut numbering = self.write();
        (0..batch_size)
            .map(|r| {
                let key = &keys.words[r * width..(r + 1) * width];
                let fingerprint = keys.fingerprints[r];
                if let Some(&id) = numbering.ids.get(&fingerprint) {
                    return numbering.number_if_same(id, key, width);
                }
                let id = numbering.ids.len();
                (id < numbering.limit).then(|| {
                    numbering.ids.insert(fingerprint, id as u32);
                    numbering.keys.extend_from_slice(key);
                    id as u32
                })
            })
            .collect()
    }

    /// The rows' numbers under the read lock, when no row would number a new input (every key
    /// is known, or the bound is reached); `None` when one would, which takes the write lock.
    fn numbers_if_known(&self, keys: &RowKeys, batch_size: usize) -> Option<Vec<Option<u32>>> {
        let width = keys.width;
        let numbering = self.read();
        (0..batch_size)
            .map(|r| match numbering.ids.get(&keys.fingerprints[r]) {
                Some(&id) => {
                    Some(numbering.number_if_same(id, &keys.words[r * width..][..width], width))
                }
                None => (numbering.ids.len() >= numbering.limit).then_some(None),
            })
            .collect()
    }

    fn read(&self) -> RwLockReadGuard<'_, Numbering> {
        self.0.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Numbering> {
        self.0.write().unwrap_or_else(|e| e.into_inner())
    }
}

impl Numbering {
    /// Input `id`'s number if its key is `key`; `None` for another key with the same
    /// fingerprint, which is computed every time, not kept.
    fn number_if_same(&self, id: u32, key: &[u32], width: usize) -> Option<u32> {
        let start = id as usize * width;
        (self.keys[start..start + width] == *key).then_some(id)
    }
}

/// The kept products of every first layer that reads one embedding, by input number; shared by
/// clones of the embedding, empty again for a reloaded model.
///
/// Behind a read-write lock, like the numbering: the halves of a split request copy their kept
/// products side by side; a call takes the write lock only to keep new products.
#[derive(Clone)]
pub struct VaryingProjections {
    /// The numbering of an input that brings none (an embedding used outside a model).
    own_numbering: VaryingNumbering,
    products: Arc<RwLock<KeptProducts>>,
}

#[derive(Default)]
struct KeptProducts {
    /// Per first layer (its weight's `ParamId`), the products of the numbered inputs.
    layers: HashMap<ParamId, LayerProducts>,
    /// Rows whose products were computed rather than copied, over every layer and call.
    computed_rows: u64,
}

impl Default for VaryingProjections {
    fn default() -> Self {
        Self::with_limit(MAX_CACHED_INPUTS)
    }
}

/// One layer's products: input i's `width` floats at `values[i * width..]`, valid where
/// `filled[i]`.
struct LayerProducts {
    width: usize,
    values: Vec<f32>,
    filled: Vec<bool>,
}

impl std::fmt::Debug for VaryingProjections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VaryingProjections({} rows computed)", self.computed_rows())
    }
}

impl VaryingProjections {
    /// Numbering at most `limit` distinct varying inputs of its own (an input that brings a
    /// model's numbering is numbered by that one's bound).
    pub fn with_limit(limit: usize) -> Self {
        Self {
            own_numbering: VaryingNumbering::with_limit(limit),
            products: Arc::new(RwLock::new(KeptProducts::default())),
        }
    }

    /// Distinct varying inputs numbered by the embedding's own numbering (inputs that bring no
    /// model's numbering).
    pub fn kept_inputs(&self) -> usize {
        self.own_numbering.kept_inputs()
    }

    /// Rows whose first-layer products were computed rather than copied, summed over layers
    /// and calls.
    pub fn computed_rows(&self) -> u64 {
        self.read().computed_rows
    }

    /// The numbers of the varying inputs of `input`'s rows (the slots `shared` does not hold):
    /// by the model's numbering the input brings, once per input for all its embeddings, or by
    /// the embedding's own.
    pub fn rows_of(&self, input: &ModelInput, shared: &SharedSlots) -> CachedRows {
        let keys = input.varying_keys.get_or_compute(input, shared);
        let batch_size = input.batch_size;
        let ids = match (&input.varying_numbering, &keys) {
            (Some(numbering), Cow::Borrowed(keys)) => {
                input.varying_keys.ids_or_number(|| numbering.number(keys, batch_size))
            }
            _ => self.own_numbering.number(&keys, batch_size),
        };
        CachedRows {
            projections: self.clone(),
            ids,
            first_row_shared: keys.first_row_shared.clone(),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, KeptProducts> {
        self.products.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, KeptProducts> {
        self.products.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// The rows of one call as numbered varying inputs: what the split layers read their varying
/// products through.
#[derive(Clone)]
pub struct CachedRows {
    projections: VaryingProjections,
    /// Per row, its input's number; `None` for an input beyond the bound (computed, not kept).
    ids: Arc<[Option<u32>]>,
    /// `RowKeys::first_row_shared`.
    first_row_shared: Arc<[u32]>,
}

impl CachedRows {
    /// What the first row holds in the shared slots, as words (see `RowKeys`): for an input of
    /// one row group, a key to what its shared slots lead to (`crate::shared_products`).
    pub fn first_row_shared(&self) -> &[u32] {
        &self.first_row_shared
    }
}

impl std::fmt::Debug for CachedRows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CachedRows({} rows)", self.ids.len())
    }
}

/// What a gather of products adds to each row: the row of `values` ([G, width], row after row)
/// of the row's group, the groups being runs of consecutive rows of `group_sizes`. A split
/// layer's per-group shared product, added while the row is in cache rather than in a pass of
/// its own over the [B, width] products; `kept + shared` is the sum the unfused layer takes.
#[derive(Debug, Clone, Copy)]
pub struct PerGroupAddend<'a> {
    pub values: &'a [f32],
    pub group_sizes: &'a [usize],
}

impl CachedRows {
    /// Appends to `out` every row's varying product for the layer `layer`, `width` floats a row,
    /// row after row, plus `addend`'s row of the row's group: the kept products copied, the
    /// others from `compute` (given the rows to compute, it returns their products row after
    /// row) and kept. Appending lets several layers' products share one buffer (the columns of a
    /// cross-stitch network, stacked without a copy).
    /// Holds the embedding's write lock while computing, so that two calls never compute the
    /// same input for the same layer at once; a call whose rows are all kept only reads.
    pub fn products(
        &self,
        layer: ParamId,
        width: usize,
        addend: Option<PerGroupAddend<'_>>,
        compute: impl FnOnce(&[usize]) -> Vec<f32>,
        out: &mut Vec<f32>,
    ) {
        {
            let kept = self.projections.read();
            if let Some(products) = kept.layers.get(&layer) {
                assert_eq!(products.width, width, "a layer's output width does not change");
                let all_kept = self.ids.iter().all(|id| {
                    id.is_some_and(|id| products.filled.get(id as usize).is_some_and(|&f| f))
                });
                if all_kept {
                    let row = |id: &Option<u32>| {
                        let id = id.expect("checked above") as usize;
                        &products.values[id * width..][..width]
                    };
                    return gather(self.ids.iter().map(row), width, addend, out);
                }
            }
        }
        let mut guard = self.projections.write();
        let kept = &mut *guard;
        // Inputs are numbered in order, so the highest number of the call bounds the store.
        let n_inputs = self.ids.iter().flatten().max().map_or(0, |&id| id as usize + 1);
        let products = kept.layers.entry(layer).or_insert_with(|| LayerProducts {
            width,
            values: Vec::new(),
            filled: Vec::new(),
        });
        assert_eq!(products.width, width, "a layer's output width does not change");
        if products.filled.len() < n_inputs {
            products.filled.resize(n_inputs, false);
            products.values.resize(n_inputs * width, 0.0);
        }
        // The rows to compute: the first row of each input not yet kept for this layer, and
        // every row beyond the bound. `computed[r]`: row r's place among them.
        let mut wanted: Vec<usize> = Vec::new();
        let mut computed: Vec<Option<usize>> = vec![None; self.ids.len()];
        let mut first_of: HashMap<u32, usize, FxBuildHasher> = HashMap::default();
        for (r, id) in self.ids.iter().enumerate() {
            match id {
                Some(id) if products.filled[*id as usize] => {}
                Some(id) => {
                    let place = *first_of.entry(*id).or_insert_with(|| {
                        wanted.push(r);
                        wanted.len() - 1
                    });
                    computed[r] = Some(place);
                }
                None => {
                    wanted.push(r);
                    computed[r] = Some(wanted.len() - 1);
                }
            }
        }
        let fresh = if wanted.is_empty() { Vec::new() } else { compute(&wanted) };
        kept.computed_rows += wanted.len() as u64;
        assert_eq!(fresh.len(), wanted.len() * width, "one product per row to compute");
        for (place, &r) in wanted.iter().enumerate() {
            if let Some(id) = self.ids[r] {
                let id = id as usize;
                products.values[id * width..(id + 1) * width]
                    .copy_from_slice(&fresh[place * width..(place + 1) * width]);
                products.filled[id] = true;
            }
        }
        let row = |(r, id): (usize, &Option<u32>)| match (computed[r], id) {
            (Some(place), _) => &fresh[place * width..][..width],
            (None, Some(id)) => &products.values[*id as usize * width..][..width],
            (None, None) => unreachable!("a row beyond the bound is always computed"),
        };
        gather(self.ids.iter().enumerate().map(row), width, addend, out)
    }
}

/// Appends the given rows of `width` floats to `out`, one after another, each plus its group's
/// row of `addend`.
fn gather<'a>(
    rows: impl ExactSizeIterator<Item = &'a [f32]>,
    width: usize,
    addend: Option<PerGroupAddend<'_>>,
    out: &mut Vec<f32>,
) {
    out.reserve(rows.len() * width);
    let Some(addend) = addend else {
        rows.for_each(|row| out.extend_from_slice(row));
        return;
    };
    assert_eq!(addend.group_sizes.iter().sum::<usize>(), rows.len(), "groups cover the rows");
    assert_eq!(addend.values.len(), addend.group_sizes.len() * width, "one addend row a group");
    let group_of_row =
        addend.group_sizes.iter().enumerate().flat_map(|(g, &size)| std::iter::repeat_n(g, size));
    for (row, g) in rows.zip(group_of_row) {
        let start = out.len();
        out.extend_from_slice(row);
        let plus = &addend.values[g * width..][..width];
        out[start..].iter_mut().zip(plus).for_each(|(value, plus)| *value += plus);
    }
}

/// Each row's varying inputs as one key of `width` words (categorical ids, multi-valued ids,
/// dense values' bits, in slot order), for the slots `slots` does not share, with a fingerprint
/// of each. Computed once per input (`ModelInput::varying_keys`) for all the embeddings of a
/// model, which share one schema.
#[derive(Debug, Clone)]
pub struct RowKeys {
    slots: SharedSlots,
    width: usize,
    /// Row r's key at `words[r * width..]`.
    words: Vec<u32>,
    fingerprints: Vec<u64>,
    /// Row 0's shared slots the same way (categorical ids, multi-valued ids, dense values'
    /// bits, in slot order); empty for an empty input.
    first_row_shared: Arc<[u32]>,
}

impl RowKeys {
    fn of(input: &ModelInput, shared: &SharedSlots) -> Self {
        let b = input.batch_size;
        let varying = shared.varying_side();
        let multi_columns = shared.varying_multi_columns();
        let [_, n_cat] = input.categorical.dims();
        let categorical = int_rows(&input.categorical);
        let multi = input.multi.as_ref().map(|m| (int_rows(m), m.dims()[1]));
        let (dense, n_dense) = match &input.dense {
            Some(d) => (d.to_data().iter::<f32>().collect::<Vec<_>>(), d.dims()[1]),
            None => (Vec::new(), 0),
        };
        // Row r's words for one side's slots, appended to `out`: categorical ids, the
        // multi-valued ids in `multi_columns` of a `Batch::multi` row, dense values' bits.
        let push_row =
            |r: usize, side: SideSlots<'_>, multi_columns: &[usize], out: &mut Vec<u32>| {
                out.extend(side.categorical.iter().map(|&j| categorical[r * n_cat + j]));
                if let Some((multi, multi_width)) = &multi {
                    out.extend(multi_columns.iter().map(|&c| multi[r * multi_width + c]));
                }
                out.extend(side.dense.iter().map(|&d| dense[r * n_dense + d].to_bits()));
            };
        let width = varying.categorical.len() + multi_columns.len() + varying.dense.len();
        let mut words = Vec::with_capacity(b * width);
        for r in 0..b {
            push_row(r, varying, multi_columns, &mut words);
        }
        let fingerprints =
            words.chunks(width.max(1)).take(b).map(|key| FxBuildHasher.hash_one(key)).collect();
        let mut first_row_shared = Vec::new();
        if b > 0 {
            let shared_multi: Vec<usize> = shared.shared_multi_columns().collect();
            push_row(0, shared.shared_side(), &shared_multi, &mut first_row_shared);
        }
        Self {
            slots: shared.clone(),
            width,
            words,
            fingerprints,
            first_row_shared: first_row_shared.into(),
        }
    }
}

/// The row keys of one input, and its rows' numbers by the model's numbering, computed at the
/// first use (see `RowKeys`, `VaryingNumbering`). A clone shares them: an input whose tensors
/// change needs a new one (`Default`), and so does an input handed to another model's numbering.
#[derive(Debug, Clone, Default)]
pub struct VaryingKeys(Arc<KeysAndNumbers>);

#[derive(Debug, Default)]
struct KeysAndNumbers {
    keys: OnceLock<RowKeys>,
    ids: OnceLock<Arc<[Option<u32>]>>,
}

impl VaryingKeys {
    /// The keys of `input` for `shared`; computed anew, not kept, for other slots than the
    /// first caller's (the embeddings of one model share their slots).
    fn get_or_compute(&self, input: &ModelInput, shared: &SharedSlots) -> Cow<'_, RowKeys> {
        let keys = self.0.keys.get_or_init(|| RowKeys::of(input, shared));
        if keys.slots == *shared {
            Cow::Borrowed(keys)
        } else {
            Cow::Owned(RowKeys::of(input, shared))
        }
    }

    /// The rows' numbers for the kept keys, from `number` at the first call.
    fn ids_or_number(&self, number: impl FnOnce() -> Arc<[Option<u32>]>) -> Arc<[Option<u32>]> {
        self.0.ids.get_or_init(number).clone()
    }
}

/// An integer tensor's values as u32 (ids are small and non-negative), row after row.
fn int_rows(t: &Tensor<2, Int>) -> Vec<u32> {
    t.to_data().iter::<i64>().map(|v| v as u32).collect()
}

/// [rows.len(), D]: the given rows of `values` [B, D].
pub(crate) fn select_rows(values: Tensor<2>, rows: &[usize]) -> Tensor<2> {
    let device = values.device();
    values.select(0, index_tensor(rows.iter().map(|&r| r as i64).collect(), &device))
}
