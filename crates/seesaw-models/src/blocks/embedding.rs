//! The input layer, driven by the `FeatureSchema` (torch-rechub style declarative features):
//! one embedding table per categorical slot, one per multi-valued slot (mean-pooled over its
//! non-padding entries), and the dense features appended as they are. Output: [B, input_dim]
//! rows, split by row group when the input has groups (see `crate::rows`).

use std::sync::{Arc, OnceLock};

use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig, Initializer};
use burn::tensor::kind::Basic;
use burn::tensor::module::embedding;
use burn::tensor::{Device, Int, Tensor};
use seesaw_data::feature_map::FeatureSchema;

use crate::error::{Result, invalid};
use crate::input::ModelInput;
use crate::joined_tables::JoinedTables;
use crate::rows::{
    PartValues, RowGrouping, Rows, SharedSlots, SideSlots, SplitPart, SplitRows, index_tensor,
};
use crate::shared_products::SharedProducts;
use crate::split_weights::SplitWeightCache;
use crate::varying_projections::VaryingProjections;

#[derive(Module, Debug)]
pub struct FeatureEmbedding {
    /// One table per categorical slot, [cardinality, dim].
    pub categorical: Vec<Embedding>,
    /// One table per multi-valued slot, [cardinality, dim]. Row 0 exists (so indices need no
    /// shifting) but is never read into the pooled mean.
    pub multi: Vec<Embedding>,
    /// Width of each multi-valued slot in `ModelInput::multi`, in slot order.
    pub multi_lens: Vec<usize>,
    pub n_dense: usize,
    pub dim: usize,
    /// The slots that are the same on every row of a group (user and context slots).
    #[module(skip)]
    pub shared: SharedSlots,
    /// The split weight rows of the first layers that read this embedding, kept for inputs
    /// with frozen parameters (`crate::split_weights`).
    #[module(skip)]
    pub split_weights: SplitWeightCache,
    /// The categorical tables joined, for inputs with frozen parameters
    /// (`crate::joined_tables`).
    #[module(skip)]
    pub joined: JoinedTables,
    /// The first layers' products of the varying slots, kept per distinct varying input for
    /// inputs with frozen parameters (`crate::varying_projections`).
    #[module(skip)]
    pub varying_projections: VaryingProjections,
    /// The first layers' products of the shared slots, kept per recent shared input for
    /// single-group inputs with frozen parameters (`crate::shared_products`).
    #[module(skip)]
    pub shared_products: SharedProducts,
    /// What a split call with frozen parameters derives from the embedding alone, made once.
    #[module(skip)]
    frozen_layout: FrozenLayout,
}

/// The layout of a split embedding: the columns of the plain embedding each part holds (the
/// rows of a first-layer weight), and for each column its position in [shared | varying].
#[derive(Debug, Clone)]
struct SplitLayout {
    shared_columns: Option<Tensor<1, Int>>,
    varying_columns: Option<Tensor<1, Int>>,
    inverse: Arc<[i64]>,
}

/// For inputs with frozen parameters, the split layout and a copy of the embedding for the
/// lazily embedded varying part to own, made at the first such call instead of at every one
/// (together 9% of a served call of the KuaiRand cross-stitch model, whose six embeddings each
/// listed 549 columns and cloned 34 tables per call). Shared by clones; a reloaded model starts
/// with an empty one. The copy holds an empty one of its own, so the two do not keep each other
/// alive.
#[derive(Clone, Default)]
struct FrozenLayout(Arc<OnceLock<(SplitLayout, Arc<FeatureEmbedding>)>>);

impl std::fmt::Debug for FrozenLayout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FrozenLayout(made: {})", self.0.get().is_some())
    }
}

/// Small normal init: the embeddings of a dozen slots are concatenated, and N(0, 1) (burn's
/// default) would swamp the dense features and saturate the first layer at the start.
const EMBEDDING_STD: f64 = 0.05;

impl FeatureEmbedding {
    pub fn new(schema: &FeatureSchema, dim: usize, device: &Device) -> Result<Self> {
        if dim == 0 {
            return invalid("embedding dimension must be at least 1");
        }
        if schema.categorical.is_empty() && schema.dense.is_empty() && schema.multi.is_empty() {
            return invalid("the feature schema has no features");
        }
        let table = |cardinality: usize| {
            // A slot seen with no values still has its out-of-vocabulary row 0.
            EmbeddingConfig::new(cardinality.max(1), dim)
                .with_initializer(Initializer::Normal { mean: 0.0, std: EMBEDDING_STD })
                .init(device)
        };
        for m in &schema.multi {
            if m.max_len == 0 {
                return invalid(format!("multi-valued slot {} has max_len 0", m.name));
            }
        }
        Ok(Self {
            categorical: schema.categorical.iter().map(|c| table(c.cardinality)).collect(),
            multi: schema.multi.iter().map(|m| table(m.cardinality)).collect(),
            multi_lens: schema.multi.iter().map(|m| m.max_len).collect(),
            n_dense: schema.dense.len(),
            dim,
            shared: SharedSlots::from_schema(schema),
            split_weights: SplitWeightCache::default(),
            joined: JoinedTables::default(),
            varying_projections: VaryingProjections::default(),
            shared_products: SharedProducts::default(),
            frozen_layout: FrozenLayout::default(),
        })
    }

    /// Width of the concatenated output.
    pub fn input_dim(&self) -> usize {
        (self.categorical.len() + self.multi.len()) * self.dim + self.n_dense
    }

    /// The embedded rows: split by the input's row groups when it has them (and any slot is
    /// shared), plain otherwise.
    pub fn forward(&self, input: &ModelInput) -> Rows {
        match &input.row_groups {
            Some(groups) if input.batch_size > 0 && !self.shared.is_empty() => {
                let device = input.categorical.device();
                let grouping = RowGrouping::new(&self.shared, groups, input.batch_size, &device);
                Rows::Split(self.forward_split(input, &grouping))
            }
            _ => Rows::Plain(self.forward_plain(input)),
        }
    }

    /// The plain [B, input_dim] embedding.
    pub fn forward_plain(&self, input: &ModelInput) -> Tensor<2> {
        let mut parts: Vec<Tensor<2>> =
            Vec::with_capacity(self.categorical.len() + self.multi.len() + 1);
        for (j, table) in self.categorical.iter().enumerate() {
            parts.push(embed_slot(table, &input.categorical, j));
        }
        if !self.multi.is_empty() {
            let multi =
                input.multi.as_ref().expect("schema has multi-valued slots but the input has none");
            let mut offset = 0;
            for (table, &len) in self.multi.iter().zip(&self.multi_lens) {
                let ids = multi.clone().narrow(1, offset, len); // [B, L]
                parts.push(mean_pool(table.weight.val(), ids));
                offset += len;
            }
        }
        if self.n_dense > 0 {
            parts.push(
                input.dense.clone().expect("schema has dense features but the input has none"),
            );
        }
        Tensor::cat(parts, 1)
    }
}

impl FeatureEmbedding {
    /// The embedding split by row groups: the shared slots of `grouping` from the first row
    /// of each group ([G, D_s]), the others for every row ([B, D_v]), each with the columns of
    /// `forward`'s output it holds. Within a group, rows other than the first are not read for
    /// the shared slots. With frozen parameters the varying part is embedded only when a first
    /// layer reads it for rows whose products it has not kept (`crate::varying_projections`),
    /// and so is the shared part of a single group (`crate::shared_products`).
    fn forward_split(&self, input: &ModelInput, grouping: &RowGrouping<'_>) -> SplitRows {
        let slots = grouping.slots;
        // `forward` groups rows by this embedding's own slots, which the lazy varying part below
        // reads from its copy of the embedding (the same slots) instead of copying them again.
        debug_assert!(std::ptr::eq(slots, &self.shared), "grouped by another embedding's slots");
        slots.assert_fits(self.categorical.len(), self.multi.len(), self.n_dense);
        let device = input.categorical.device();
        let frozen = input.parameters_frozen;
        let (layout, copy) = if frozen {
            let (layout, copy) = self.frozen_layout.0.get_or_init(|| {
                let mut copy = self.clone();
                copy.frozen_layout = FrozenLayout::default();
                (self.layout(&device), Arc::new(copy))
            });
            (layout.clone(), Some(copy.clone()))
        } else {
            (self.layout(&device), None)
        };
        let shared = layout.shared_columns.map(|columns| {
            let values = match &copy {
                // A served request (one group): its first layers key their kept shared products
                // by the input (`crate::shared_products`), so the shared slots are embedded only
                // when a product is not kept.
                Some(embedding) if grouping.sizes.len() == 1 => {
                    let (embedding, input) = (embedding.clone(), input.clone());
                    PartValues::later(move || {
                        let (slots, sizes) = (&embedding.shared, [input.batch_size]);
                        let device = input.categorical.device();
                        let grouping = RowGrouping::new(slots, &sizes, input.batch_size, &device);
                        embedding.embed_side(&input, slots.shared_side(), Some(&grouping))
                    })
                }
                _ => PartValues::now(self.embed_side(input, slots.shared_side(), Some(grouping))),
            };
            SplitPart { values, columns }
        });
        let cached = (frozen && layout.varying_columns.is_some())
            .then(|| self.varying_projections.rows_of(input, slots));
        let varying = layout.varying_columns.map(|columns| {
            let values = match copy.clone() {
                Some(embedding) => {
                    let input = input.clone();
                    PartValues::later(move || {
                        embedding.embed_side(&input, embedding.shared.varying_side(), None)
                    })
                }
                None => PartValues::now(self.embed_side(input, slots.varying_side(), None)),
            };
            SplitPart { values, columns }
        });
        SplitRows {
            shared,
            varying,
            batch_size: input.batch_size,
            group_sizes: grouping.sizes.to_vec(),
            row_group: grouping.row_group.clone(),
            input_dim: self.input_dim(),
            inverse: layout.inverse,
            weights: frozen.then(|| self.split_weights.clone()),
            cached,
            shared_products: frozen.then(|| self.shared_products.clone()),
        }
    }

    /// The split layout of this embedding's slots (see `SplitLayout`).
    fn layout(&self, device: &Device) -> SplitLayout {
        let columns =
            [self.columns(self.shared.shared_side()), self.columns(self.shared.varying_side())];
        let mut inverse = vec![0i64; self.input_dim()];
        for (position, &c) in columns.iter().flatten().enumerate() {
            inverse[c as usize] = position as i64;
        }
        let [shared, varying] = columns.map(|c| (!c.is_empty()).then(|| index_tensor(c, device)));
        SplitLayout { shared_columns: shared, varying_columns: varying, inverse: inverse.into() }
    }

    /// The columns of `forward`'s output that `side`'s slots fill, in the order `embed_side`
    /// gives their values: categorical, multi-valued, dense, each in slot order.
    fn columns(&self, side: SideSlots<'_>) -> Vec<i64> {
        let (dim, n_cat, n_multi) = (self.dim, self.categorical.len(), self.multi.len());
        let block = |slot: usize| (slot * dim) as i64..((slot + 1) * dim) as i64;
        let dense_base = (n_cat + n_multi) * dim;
        let categorical = side.categorical.iter().flat_map(|&j| block(j));
        let multi = side.multi.iter().flat_map(|&m| block(n_cat + m));
        let dense = side.dense.iter().map(|&d| (dense_base + d) as i64);
        categorical.chain(multi).chain(dense).collect()
    }

    /// The values of `side`'s slots side by side, in the order of `columns`: from the first row
    /// of each group of `grouping` ([G, D]), or from every row without one ([B, D]). With frozen
    /// parameters the categorical slots are looked up in the joined tables, which gives the
    /// same values as the per-slot lookups.
    fn embed_side(
        &self,
        input: &ModelInput,
        side: SideSlots<'_>,
        grouping: Option<&RowGrouping<'_>>,
    ) -> Tensor<2> {
        let mut values: Vec<Tensor<2>> = Vec::new();
        let categorical = picked_rows(grouping, input.categorical.clone());
        if input.parameters_frozen {
            let joined = self.joined.embed(&self.categorical, &categorical, side.categorical);
            values.extend(joined.into_iter().map(|(v, _)| v));
        } else {
            for &j in side.categorical {
                values.push(embed_slot(&self.categorical[j], &categorical, j));
            }
        }
        if !side.multi.is_empty() {
            let multi =
                input.multi.clone().expect("schema has multi-valued slots but the input has none");
            let multi = picked_rows(grouping, multi);
            for &m in side.multi {
                let offset: usize = self.multi_lens[..m].iter().sum();
                let ids = multi.clone().narrow(1, offset, self.multi_lens[m]);
                values.push(mean_pool(self.multi[m].weight.val(), ids));
            }
        }
        if !side.dense.is_empty() {
            let dense =
                input.dense.clone().expect("schema has dense features but the input has none");
            let dense = picked_rows(grouping, dense);
            values.push(if side.dense.len() == self.n_dense {
                dense
            } else {
                let picked = side.dense.iter().map(|&d| d as i64).collect();
                dense.select(1, index_tensor(picked, &input.categorical.device()))
            });
        }
        Tensor::cat(values, 1)
    }
}

/// The first row of each group of `grouping` ([G, n]), or every row of `t` without one ([B, n]).
fn picked_rows<K: Basic>(grouping: Option<&RowGrouping<'_>>, t: Tensor<2, K>) -> Tensor<2, K> {
    match grouping {
        Some(g) => g.group_rows(t),
        None => t,
    }
}

/// The embedding of categorical slot `slot` for ids [R, n_cat]: [R, dim].
pub(crate) fn embed_slot(table: &Embedding, ids: &Tensor<2, Int>, slot: usize) -> Tensor<2> {
    let [rows, _] = ids.dims();
    let dim = table.weight.dims()[1];
    table.forward(ids.clone().narrow(1, slot, 1)).reshape([rows, dim])
}

/// Mean of the embeddings of the non-zero indices of each row; a row with none gives zeros.
/// Index 0 is both padding and out-of-vocabulary, and is masked out of the mean: an unknown tag
/// tells nothing, and counting it would shrink the mean of short lists.
pub fn mean_pool(weight: Tensor<2>, ids: Tensor<2, Int>) -> Tensor<2> {
    let [b, len] = ids.dims();
    let dim = weight.dims()[1];
    let mask = ids.clone().not_equal_elem(0).float().reshape([b, len, 1]); // [B, L, 1]
    let emb = embedding(weight, ids); // [B, L, D]
    let sum = (emb * mask.clone()).sum_dim(1).reshape([b, dim]); // [B, D]
    let count = mask.sum_dim(1).reshape([b, 1]).clamp_min(1.0);
    sum / count
}
