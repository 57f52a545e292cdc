//! The input layer, driven by the `FeatureSchema` (torch-rechub style declarative features):
//! one embedding table per categorical slot, one per multi-valued slot (mean-pooled over its
//! non-padding entries), and the dense features appended as they are. Output: [B, input_dim]
//! rows, split by row group when the input has groups (see `crate::rows`).

use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig, Initializer};
use burn::tensor::module::embedding;
use burn::tensor::{Device, Int, Tensor};
use seesaw_data::feature_map::FeatureSchema;

use crate::error::{Result, invalid};
use crate::input::ModelInput;
use crate::joined_tables::JoinedTables;
use crate::rows::{RowGrouping, Rows, SharedSlots, SplitPart, SplitRows, index_tensor};
use crate::split_weights::SplitWeightCache;

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
    /// the shared slots.
    fn forward_split(&self, input: &ModelInput, grouping: &RowGrouping<'_>) -> SplitRows {
        let slots = grouping.slots;
        slots.assert_fits(self.categorical.len(), self.multi.len(), self.n_dense);
        let (b, g, dim) = (input.batch_size, grouping.n_groups, self.dim);
        let device = input.categorical.device();
        let n_cat = self.categorical.len();
        let mut shared_cat = vec![false; n_cat];
        slots.categorical().iter().for_each(|&j| shared_cat[j] = true);
        let mut shared_multi = vec![false; self.multi.len()];
        slots.multi().iter().for_each(|&m| shared_multi[m] = true);
        let mut shared_dense = vec![false; self.n_dense];
        slots.dense().iter().for_each(|&d| shared_dense[d] = true);

        // (values, columns) of each side, in slot order.
        let mut parts: [(Vec<Tensor<2>>, Vec<i64>); 2] = Default::default();
        let block = |start: usize, width: usize| start as i64..(start + width) as i64;

        let cat_rows = [grouping.group_rows(input.categorical.clone()), input.categorical.clone()];
        if input.parameters_frozen {
            // One lookup per side in the joined tables: the same values as the loop below.
            for (side, part) in parts.iter_mut().enumerate() {
                let slots: Vec<usize> =
                    (0..n_cat).filter(|&j| shared_cat[j] == (side == 0)).collect();
                for (values, slots) in self.joined.embed(&self.categorical, &cat_rows[side], &slots)
                {
                    part.0.push(values);
                    part.1.extend(slots.iter().flat_map(|&j| block(j * dim, dim)));
                }
            }
        } else {
            for (j, table) in self.categorical.iter().enumerate() {
                let side = usize::from(!shared_cat[j]);
                parts[side].0.push(embed_slot(table, &cat_rows[side], j));
                parts[side].1.extend(block(j * dim, dim));
            }
        }
        if !self.multi.is_empty() {
            let multi =
                input.multi.as_ref().expect("schema has multi-valued slots but the input has none");
            let multi_rows = [grouping.group_rows(multi.clone()), multi.clone()];
            let mut offset = 0;
            for (m, (table, &len)) in self.multi.iter().zip(&self.multi_lens).enumerate() {
                let side = usize::from(!shared_multi[m]);
                let ids = multi_rows[side].clone().narrow(1, offset, len);
                parts[side].0.push(mean_pool(table.weight.val(), ids));
                parts[side].1.extend(block((n_cat + m) * dim, dim));
                offset += len;
            }
        }
        if self.n_dense > 0 {
            let dense =
                input.dense.clone().expect("schema has dense features but the input has none");
            let base = (n_cat + self.multi.len()) * dim;
            for (side, part) in parts.iter_mut().enumerate() {
                let picked: Vec<i64> = (0..self.n_dense)
                    .filter(|&d| shared_dense[d] == (side == 0))
                    .map(|d| d as i64)
                    .collect();
                if picked.is_empty() {
                    continue;
                }
                let values =
                    if side == 0 { grouping.group_rows(dense.clone()) } else { dense.clone() };
                let values = if picked.len() == self.n_dense {
                    values
                } else {
                    values.select(1, index_tensor(picked.clone(), &device))
                };
                part.0.push(values);
                part.1.extend(picked.iter().map(|&d| base as i64 + d));
            }
        }

        let mut inverse = vec![0i64; self.input_dim()];
        let mut position = 0;
        for (_, columns) in &parts {
            for &c in columns {
                inverse[c as usize] = position;
                position += 1;
            }
        }
        let [shared, varying] = parts.map(|(values, columns)| {
            (!values.is_empty()).then(|| SplitPart {
                values: Tensor::cat(values, 1),
                columns: index_tensor(columns, &device),
            })
        });
        SplitRows {
            shared,
            varying,
            batch_size: b,
            n_groups: g,
            row_group: grouping.row_group.clone(),
            input_dim: self.input_dim(),
            inverse,
            weights: input.parameters_frozen.then(|| self.split_weights.clone()),
        }
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
