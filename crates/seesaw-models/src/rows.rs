//! What the first layers of a model read: `Rows`, the embedded input either plain ([B, D]) or
//! split for rows that come in groups of one user (a serving request).
//!
//! Most input slots of a request (the user id, user and context features) hold the same value on
//! every row, and every architecture's first layers are linear maps of the concatenated
//! embedding, so `W·x = W_shared·x_shared + W_varying·x_varying` with `x_shared` computed once
//! per group. `SharedSlots` (read from the schema's slot sources) says which slots those are;
//! `FeatureEmbedding::forward` gives `Rows::Split` when the input has row groups, and the blocks
//! that read it (`Rows::linear`, `Rows::batched`) compute the same result either way. There is
//! one forward path per block and model; the split is a property of the input.

use std::ops::Range;
use std::sync::{Arc, OnceLock};

use burn::module::Param;
use burn::nn::Linear;
use burn::tensor::kind::Basic;
use burn::tensor::{Device, Int, Tensor, TensorData};
use seesaw_data::batch::Batch;
use seesaw_data::feature_map::{FeatureSchema, FeatureSource};

use crate::error::{Result, invalid};
use crate::shared_products::SharedProducts;
use crate::split_weights::{SplitColumns, SplitWeightCache};
use crate::to_vec;
use crate::varying_projections::{CachedRows, PerGroupAddend, select_rows};

/// The input slots that are the same on every row of a group (a request): indices into
/// `FeatureSchema::categorical`, `::multi` and `::dense`, sorted and unique.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedSlots {
    categorical: Vec<usize>,
    multi: Vec<usize>,
    dense: Vec<usize>,
    /// The columns of each shared multi-valued slot in a `Batch::multi` row.
    multi_columns: Vec<Range<usize>>,
    /// The other slots (the varying ones), in the same three kinds, sorted.
    varying_categorical: Vec<usize>,
    varying_multi: Vec<usize>,
    varying_dense: Vec<usize>,
    /// The columns of the varying multi-valued slots in a `Batch::multi` row, in slot order.
    varying_multi_columns: Vec<usize>,
    n_categorical: usize,
    n_multi: usize,
    n_dense: usize,
}

impl SharedSlots {
    /// The given slots of `schema` as shared; refuses an index outside the schema.
    pub fn new(
        schema: &FeatureSchema,
        categorical: impl IntoIterator<Item = usize>,
        multi: impl IntoIterator<Item = usize>,
        dense: impl IntoIterator<Item = usize>,
    ) -> Result<Self> {
        let sorted = |what: &str, it: &mut dyn Iterator<Item = usize>, n: usize| {
            let mut v: Vec<usize> = it.collect();
            v.sort_unstable();
            v.dedup();
            match v.last() {
                Some(&last) if last >= n => {
                    invalid(format!("shared {what} slot {last} is outside the schema ({n} slots)"))
                }
                _ => Ok(v),
            }
        };
        let categorical =
            sorted("categorical", &mut categorical.into_iter(), schema.categorical.len())?;
        let multi = sorted("multi-valued", &mut multi.into_iter(), schema.multi.len())?;
        let dense = sorted("dense", &mut dense.into_iter(), schema.dense.len())?;
        let mut starts = Vec::with_capacity(schema.multi.len());
        let mut offset = 0;
        for slot in &schema.multi {
            starts.push(offset..offset + slot.max_len);
            offset += slot.max_len;
        }
        let multi_columns = multi.iter().map(|&m| starts[m].clone()).collect();
        let others = |shared: &[usize], n: usize| -> Vec<usize> {
            (0..n).filter(|j| shared.binary_search(j).is_err()).collect()
        };
        let varying_multi = others(&multi, schema.multi.len());
        Ok(Self {
            varying_categorical: others(&categorical, schema.categorical.len()),
            varying_dense: others(&dense, schema.dense.len()),
            varying_multi_columns: varying_multi.iter().flat_map(|&m| starts[m].clone()).collect(),
            varying_multi,
            categorical,
            multi,
            dense,
            multi_columns,
            n_categorical: schema.categorical.len(),
            n_multi: schema.multi.len(),
            n_dense: schema.dense.len(),
        })
    }

    /// The slots that are the same for every candidate of one request: every slot whose source
    /// is not the video (`user_id`, user-side and context features), as the schema records.
    ///
    /// Context features are shared only while a request's candidates do not override them; the
    /// server starts a new row group at a candidate that does.
    pub fn from_schema(schema: &FeatureSchema) -> Self {
        let shared = |source: FeatureSource| source != FeatureSource::Video;
        let pick = |sources: &mut dyn Iterator<Item = FeatureSource>| -> Vec<usize> {
            sources.enumerate().filter(|&(_, s)| shared(s)).map(|(i, _)| i).collect()
        };
        Self::new(
            schema,
            pick(&mut schema.categorical.iter().map(|c| c.source)),
            pick(&mut schema.multi.iter().map(|m| m.source)),
            pick(&mut schema.dense.iter().map(|d| d.source)),
        )
        .expect("slots picked from the schema are slots of the schema")
    }

    pub fn categorical(&self) -> &[usize] {
        &self.categorical
    }

    pub fn multi(&self) -> &[usize] {
        &self.multi
    }

    pub fn dense(&self) -> &[usize] {
        &self.dense
    }

    pub fn is_empty(&self) -> bool {
        self.categorical.is_empty() && self.multi.is_empty() && self.dense.is_empty()
    }

    /// The shared slots, by kind.
    pub fn shared_side(&self) -> SideSlots<'_> {
        SideSlots { categorical: &self.categorical, multi: &self.multi, dense: &self.dense }
    }

    /// The slots that are not shared (the video's), by kind.
    pub fn varying_side(&self) -> SideSlots<'_> {
        SideSlots {
            categorical: &self.varying_categorical,
            multi: &self.varying_multi,
            dense: &self.varying_dense,
        }
    }

    /// The columns of the shared multi-valued slots in a `Batch::multi` row, in slot order.
    pub fn shared_multi_columns(&self) -> impl Iterator<Item = usize> + '_ {
        self.multi_columns.iter().flat_map(Clone::clone)
    }

    /// The columns of the varying multi-valued slots in a `Batch::multi` row, in slot order.
    pub fn varying_multi_columns(&self) -> &[usize] {
        &self.varying_multi_columns
    }

    /// Splits the rows of `batch` into runs of consecutive rows that agree on every shared slot
    /// (dense values compared bit for bit): the group sizes, summing to `batch.size`. A batch of
    /// requests that each keep their user and context gives one group per request (or fewer,
    /// when neighbours share a user and context).
    pub fn row_groups(&self, batch: &Batch) -> Vec<usize> {
        assert_eq!(
            (batch.n_categorical, batch.n_dense),
            (self.n_categorical, self.n_dense),
            "the batch does not have the schema the shared slots were made for"
        );
        let cat = |r: usize| &batch.categorical[r * batch.n_categorical..][..batch.n_categorical];
        let dense = |r: usize| &batch.dense[r * batch.n_dense..][..batch.n_dense];
        let multi = |r: usize| &batch.multi[r * batch.multi_width..][..batch.multi_width];
        let same = |a: usize, b: usize| {
            self.categorical.iter().all(|&j| cat(a)[j] == cat(b)[j])
                && self.dense.iter().all(|&j| dense(a)[j].to_bits() == dense(b)[j].to_bits())
                && self.multi_columns.iter().all(|c| multi(a)[c.clone()] == multi(b)[c.clone()])
        };
        let mut groups = Vec::new();
        let mut start = 0;
        for r in 1..batch.size {
            if !same(start, r) {
                groups.push(r - start);
                start = r;
            }
        }
        if batch.size > 0 {
            groups.push(batch.size - start);
        }
        groups
    }

    /// Panics unless these slots were made for a schema of this shape.
    pub(crate) fn assert_fits(&self, n_categorical: usize, n_multi: usize, n_dense: usize) {
        assert_eq!(
            (self.n_categorical, self.n_multi, self.n_dense),
            (n_categorical, n_multi, n_dense),
            "the shared slots were made for another schema (categorical, multi, dense counts)"
        );
    }
}

/// The slots of one side of a split embedding (shared or varying): indices into
/// `FeatureSchema::categorical`, `::multi` and `::dense`, each sorted.
#[derive(Debug, Clone, Copy)]
pub struct SideSlots<'a> {
    pub categorical: &'a [usize],
    pub multi: &'a [usize],
    pub dense: &'a [usize],
}

/// How the rows of one model input fall into groups of consecutive rows sharing the shared
/// slots, as the tensors the split layers need. Built once per embedding of a grouped input.
#[derive(Debug, Clone)]
pub struct RowGrouping<'a> {
    pub slots: &'a SharedSlots,
    pub batch_size: usize,
    /// The sizes of the groups, in row order, summing to `batch_size`.
    pub sizes: &'a [usize],
    /// [G]: the first row of each group; `None` for a single group (row 0).
    pub starts: Option<Tensor<1, Int>>,
    /// [B]: the group of each row; `None` for a single group (broadcast instead of gathered).
    pub row_group: Option<Tensor<1, Int>>,
}

impl<'a> RowGrouping<'a> {
    /// `groups`: sizes of consecutive row groups, each at least 1, summing to `batch_size`.
    pub fn new(
        slots: &'a SharedSlots,
        groups: &'a [usize],
        batch_size: usize,
        device: &Device,
    ) -> Self {
        assert!(groups.iter().all(|&g| g > 0), "row groups must not be empty");
        assert_eq!(groups.iter().sum::<usize>(), batch_size, "row groups must cover the batch");
        if groups.len() <= 1 {
            return Self { slots, batch_size, sizes: groups, starts: None, row_group: None };
        }
        let mut starts = Vec::with_capacity(groups.len());
        let mut row_group = Vec::with_capacity(batch_size);
        let mut offset = 0i64;
        for (g, &size) in groups.iter().enumerate() {
            starts.push(offset);
            row_group.extend(std::iter::repeat_n(g as i64, size));
            offset += size as i64;
        }
        Self {
            slots,
            batch_size,
            sizes: groups,
            starts: Some(index_tensor(starts, device)),
            row_group: Some(index_tensor(row_group, device)),
        }
    }

    /// The first row of each group of `t` ([B, n] -> [G, n]), for float and integer tensors.
    pub(crate) fn group_rows<K: Basic>(&self, t: Tensor<2, K>) -> Tensor<2, K> {
        match &self.starts {
            None => t.narrow(0, 0, 1),
            Some(starts) => t.select(0, starts.clone()),
        }
    }
}

pub(crate) fn index_tensor(indices: Vec<i64>, device: &Device) -> Tensor<1, Int> {
    let n = indices.len();
    Tensor::from_data(TensorData::new(indices, [n]), device)
}

/// One part of a split embedding: its values and the columns of the plain concatenated
/// embedding (so the rows of a first-layer weight) they hold.
#[derive(Debug, Clone)]
pub struct SplitPart {
    /// [G, D_s] for the shared part (one row per group), [B, D_v] for the varying part.
    pub values: PartValues,
    /// [D_s] or [D_v]: column indices into the plain embedding.
    pub columns: Tensor<1, Int>,
}

/// A part's values: computed, or computed when first read. A served model's varying part is
/// read only for the rows whose first-layer products are not kept yet
/// (`crate::varying_projections`), so it is not embedded when every row's are.
#[derive(Clone)]
pub struct PartValues {
    values: Arc<OnceLock<Tensor<2>>>,
    compute: Option<Arc<dyn Fn() -> Tensor<2> + Send + Sync>>,
}

impl PartValues {
    pub fn now(values: Tensor<2>) -> Self {
        Self { values: Arc::new(OnceLock::from(values)), compute: None }
    }

    pub fn later(compute: impl Fn() -> Tensor<2> + Send + Sync + 'static) -> Self {
        Self { values: Arc::new(OnceLock::new()), compute: Some(Arc::new(compute)) }
    }

    /// The values, computed at the first read.
    pub fn get(&self) -> Tensor<2> {
        let compute = || (self.compute.as_ref().expect("values computed later have a way to"))();
        self.values.get_or_init(compute).clone()
    }
}

impl std::fmt::Debug for PartValues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.values.get() {
            Some(values) => write!(f, "PartValues({:?})", values.dims()),
            None => write!(f, "PartValues(not computed)"),
        }
    }
}

/// The embedding of a `FeatureEmbedding::forward_split`: the shared slots once per group, the
/// varying ones for every row. Equal, after `materialize`, to `FeatureEmbedding::forward`.
#[derive(Debug, Clone)]
pub struct SplitRows {
    pub shared: Option<SplitPart>,
    pub varying: Option<SplitPart>,
    pub batch_size: usize,
    /// The sizes of the groups, in row order, summing to `batch_size`.
    pub group_sizes: Vec<usize>,
    /// [B] row -> group, `None` for a single group.
    pub row_group: Option<Tensor<1, Int>>,
    /// Width of the plain embedding.
    pub input_dim: usize,
    /// For each column of the plain embedding, its position in [shared | varying].
    pub inverse: Arc<[i64]>,
    /// Where the first layers keep their split weight rows; `Some` only when the input's
    /// parameters are frozen (`crate::split_weights`).
    pub weights: Option<SplitWeightCache>,
    /// The rows as numbered varying inputs, through which the first layers read their kept
    /// varying products; `Some` only when the input's parameters are frozen and a slot varies
    /// (`crate::varying_projections`).
    pub cached: Option<CachedRows>,
    /// Where the first layers keep their products of the shared part for single-group inputs;
    /// `Some` only when the input's parameters are frozen (`crate::shared_products`).
    pub shared_products: Option<SharedProducts>,
}

impl SplitRows {
    /// G, the number of row groups (one for an empty batch).
    pub fn n_groups(&self) -> usize {
        self.group_sizes.len().max(1)
    }

    /// Spreads a per-group [G, out] result to the rows: [B, out].
    fn spread(&self, y: Tensor<2>) -> Tensor<2> {
        match &self.row_group {
            None => {
                let out = y.dims()[1];
                y.expand([self.batch_size, out])
            }
            Some(rows) => y.select(0, rows.clone()),
        }
    }

    /// The columns of each part, the input rows of a first-layer weight.
    fn columns(&self) -> SplitColumns<'_> {
        SplitColumns {
            shared: self.shared.as_ref().map(|p| &p.columns),
            varying: self.varying.as_ref().map(|p| &p.columns),
        }
    }

    /// `x·W + b` for the plain embedding x, with W [in, out]: what `Linear::forward` gives,
    /// computed as shared·W[shared rows] (per group) + varying·W[varying rows].
    pub fn linear(&self, layer: &Linear) -> Tensor<2> {
        let mut kept = Vec::new();
        if let Some(width) = self.kept_linear_into(layer, &mut kept) {
            let device = layer.weight.device();
            return Tensor::from_data(TensorData::new(kept, [self.batch_size, width]), &device);
        }
        let (shared_weight, varying_weight) =
            self.columns().linear(&layer.weight, self.weights.as_ref());
        let bias = layer.bias.as_ref().map(|b| b.val().unsqueeze::<2>());
        let shared = self.shared_product(shared_weight, &bias);
        let varying =
            self.varying.as_ref().zip(varying_weight).map(|(p, w)| p.values.get().matmul(w));
        match (shared, varying) {
            (Some(s), Some(v)) => match &self.row_group {
                None => v + s,
                Some(rows) => v + s.select(0, rows.clone()),
            },
            (Some(s), None) => self.spread(s),
            (None, Some(v)) => match bias {
                Some(b) => v + b,
                None => v,
            },
            (None, None) => unreachable!("an embedding has at least one column"),
        }
    }

    /// `shared·W[shared rows] + b`, once per group: [G, out].
    fn shared_product(
        &self,
        shared_weight: Option<Tensor<2>>,
        bias: &Option<Tensor<2>>,
    ) -> Option<Tensor<2>> {
        self.shared.as_ref().zip(shared_weight).map(|(p, w)| {
            let y = p.values.get().matmul(w);
            match bias {
                Some(b) => y + b.clone(),
                None => y,
            }
        })
    }

    /// Whether `linear` reads kept varying products (a frozen input with varying slots), and so
    /// can append its result to a buffer (`kept_linear_into`).
    fn keeps_products(&self) -> bool {
        self.cached.is_some() && self.varying.is_some()
    }

    /// `linear` through kept varying products, appended to `out` row after row; returns the
    /// output width, or `None` (appending nothing) unless `keeps_products`. Each row is its kept
    /// product plus its group's shared product (with the bias), or plus the bias alone when no
    /// slot is shared, added as the row is copied rather than in a pass of its own over the
    /// [B, out] result; the sums are the ones the unfused `v + s` and `v + b` take (one f32
    /// addition an element), so the outputs are the same bit for bit. A single group's shared
    /// product comes from `shared_products` when its user and context were seen lately.
    fn kept_linear_into(&self, layer: &Linear, out: &mut Vec<f32>) -> Option<usize> {
        let (Some(cached), Some(varying)) = (&self.cached, &self.varying) else { return None };
        let (shared_weight, varying_weight) =
            self.columns().linear(&layer.weight, self.weights.as_ref());
        let varying_weight = varying_weight.expect("a varying part has its weight rows");
        let [_, width] = varying_weight.dims();
        let bias = layer.bias.as_ref().map(|b| b.val().unsqueeze::<2>());
        let product = || self.shared_product(shared_weight, &bias).map(to_vec);
        let addend: Option<Arc<[f32]>> = match (&self.shared, &self.shared_products) {
            // Keyed by what the input holds in the shared slots, so that a kept product needs
            // no embedding of them (`forward_split` embeds them only when read).
            (Some(_), Some(kept)) if self.group_sizes.len() == 1 => {
                let compute = || product().expect("a shared part has its weight rows");
                Some(kept.get_or_compute(layer.weight.id, cached.first_row_shared(), compute))
            }
            (Some(_), _) => product().map(Arc::from),
            // Without shared slots, every group adds the bias.
            (None, _) => bias.map(|b| Arc::from(to_vec(b).repeat(self.group_sizes.len()))),
        };
        let addend = addend
            .as_deref()
            .map(|values| PerGroupAddend { values, group_sizes: &self.group_sizes });
        let compute =
            |rows: &[usize]| to_vec(select_rows(varying.values.get(), rows).matmul(varying_weight));
        cached.products(layer.weight.id, width, addend, compute, out);
        Some(width)
    }

    /// `x·W[i] + b[i]` for every expert i, W [n, in, out], b [n, 1, out]: [n, B, out], what the
    /// first layer of an `ExpertBank` computes before its activation.
    pub fn batched(&self, weight: &Param<Tensor<3>>, bias: Tensor<3>) -> Tensor<3> {
        let [n, _, out] = weight.dims();
        let (b, g) = (self.batch_size, self.n_groups());
        let (shared_weight, varying_weight) = self.columns().batched(weight, self.weights.as_ref());
        let shared = self.shared.as_ref().zip(shared_weight).map(|(p, w)| {
            let x = p.values.get();
            let d = x.dims()[1];
            let x = x.reshape([1, g, d]).expand([n, g, d]);
            x.matmul(w) + bias.clone() // [n, G, out]
        });
        let varying = self.varying.as_ref().zip(varying_weight).map(|(p, w)| {
            let each_expert = |x: Tensor<2>| {
                let [rows, d] = x.dims();
                x.reshape([1, rows, d]).expand([n, rows, d]).matmul(w.clone()) // [n, rows, out]
            };
            match &self.cached {
                None => each_expert(p.values.get()),
                Some(cached) => {
                    // Kept row after row, each row's n experts side by side.
                    let mut products = Vec::new();
                    let compute = |rows: &[usize]| {
                        to_vec(each_expert(select_rows(p.values.get(), rows)).swap_dims(0, 1))
                    };
                    cached.products(weight.id, n * out, None, compute, &mut products);
                    let device = w.device();
                    Tensor::<3>::from_data(TensorData::new(products, [b, n, out]), &device)
                        .swap_dims(0, 1)
                }
            }
        });
        let spread = |s: Tensor<3>| match &self.row_group {
            None => s.expand([n, b, out]),
            Some(rows) => s.select(1, rows.clone()),
        };
        match (shared, varying) {
            (Some(s), Some(v)) => match &self.row_group {
                None => v + s,
                Some(rows) => v + s.select(1, rows.clone()),
            },
            (Some(s), None) => spread(s),
            (None, Some(v)) => v + bias,
            (None, None) => unreachable!("an embedding has at least one column"),
        }
    }

    /// The plain [B, input_dim] embedding, for a first layer that is not linear (an empty MLP).
    pub fn materialize(&self) -> Tensor<2> {
        let mut parts = Vec::with_capacity(2);
        let mut device = None;
        if let Some(p) = &self.shared {
            let values = p.values.get();
            device = Some(values.device());
            parts.push(self.spread(values));
        }
        if let Some(p) = &self.varying {
            let values = p.values.get();
            device = Some(values.device());
            parts.push(values);
        }
        let device = device.expect("an embedding has at least one column");
        Tensor::cat(parts, 1).select(1, index_tensor(self.inverse.to_vec(), &device))
    }
}

/// The embedded input the first layers read: plain, or split by row groups. Both give the same
/// results from every block (up to float rounding); the plain form takes exactly the operations
/// a model without the split would.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // a handful live per forward call
pub enum Rows {
    Plain(Tensor<2>),
    Split(SplitRows),
}

impl From<Tensor<2>> for Rows {
    fn from(x: Tensor<2>) -> Self {
        Rows::Plain(x)
    }
}

impl Rows {
    /// `layer.forward(x)` of the plain rows.
    pub fn linear(&self, layer: &Linear) -> Tensor<2> {
        match self {
            Rows::Plain(x) => layer.forward(x.clone()),
            Rows::Split(x) => x.linear(layer),
        }
    }

    /// `linear` of each (rows, layer) pair, stacked: [K, B, out] for K pairs of one batch and
    /// one output width, the first layers of K columns (cross-stitch). Rows that read kept
    /// products (a served model) write them straight into the stacked buffer; others are stacked
    /// after. Either way the same values as stacking each `linear`, bit for bit. The layers read
    /// their parameters in pair order, as K calls of `linear` would (burn initialises a
    /// parameter when first read, so the order fixes a seed's weights).
    pub fn linear_stacked(pairs: &[(&Rows, &Linear)]) -> Tensor<3> {
        fn keeping(rows: &Rows) -> Option<&SplitRows> {
            match rows {
                Rows::Split(s) if s.keeps_products() => Some(s),
                _ => None,
            }
        }
        let all_kept: Option<Vec<&SplitRows>> = pairs.iter().map(|(r, _)| keeping(r)).collect();
        let Some(kept) = all_kept.filter(|k| !k.is_empty()) else {
            return Tensor::stack(
                pairs.iter().map(|(rows, layer)| rows.linear(layer)).collect(),
                0,
            );
        };
        let batch_size = kept[0].batch_size;
        assert!(kept.iter().all(|s| s.batch_size == batch_size), "one batch for every column");
        let mut stacked = Vec::new();
        let mut width = None;
        for (rows, (_, layer)) in kept.iter().zip(pairs) {
            let w = rows.kept_linear_into(layer, &mut stacked).expect("checked: keeps products");
            match width {
                // Room for the other columns at once, rather than regrowing (copying) the buffer.
                None => stacked.reserve_exact((pairs.len() - 1) * batch_size * w),
                Some(before) => assert_eq!(before, w, "every layer has one output width"),
            }
            width = Some(w);
        }
        let width = width.expect("at least one pair");
        let device = pairs[0].1.weight.device();
        Tensor::from_data(TensorData::new(stacked, [pairs.len(), batch_size, width]), &device)
    }

    /// The plain [B, D] rows.
    pub fn materialize(&self) -> Tensor<2> {
        match self {
            Rows::Plain(x) => x.clone(),
            Rows::Split(x) => x.materialize(),
        }
    }
}
