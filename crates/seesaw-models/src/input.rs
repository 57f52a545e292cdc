//! `ModelInput`: a `Batch`'s plain buffers turned into tensors once, so that every model reads
//! the same tensors and the conversion is not repeated per model or per task. It also says how
//! the rows fall into groups of one user (a serving request) and which optional outputs the
//! caller wants.

use burn::tensor::{Device, Int, Tensor, TensorData};
use seesaw_data::batch::Batch;

use crate::varying_projections::{VaryingKeys, VaryingNumbering};

#[derive(Debug, Clone)]
pub struct ModelInput {
    /// [B, n_categorical] indices, in `FeatureSchema::categorical` order (0 = out-of-vocabulary).
    pub categorical: Tensor<2, Int>,
    /// [B, n_dense], or `None` when the schema has no dense features.
    pub dense: Option<Tensor<2>>,
    /// [B, multi_width], slots laid side by side in `FeatureSchema::multi` order, 0 = padding;
    /// `None` when the schema has no multi-valued slots.
    pub multi: Option<Tensor<2, Int>>,
    /// [B, N_c, d]: each row's video's clip feature vectors, when the dataset has them.
    pub clip_features: Option<Tensor<3>>,
    pub batch_size: usize,
    /// Sizes of runs of consecutive rows that share the user and the context (one serving
    /// request, or the part of it whose candidates keep the request's context), summing to
    /// `batch_size`. When given, the input layer embeds the user and context slots once per group
    /// and the first linear layers split into a per-group and a per-row product; the outputs are
    /// the same up to float rounding. Rows of a group must agree on those slots: only the first
    /// row of each group is read for them.
    pub row_groups: Option<Vec<usize>>,
    /// Ask for the shared representation h in `ModelOutputs::shared` (it may cost a copy).
    pub want_shared: bool,
    /// Ask for diagnostics (gate weights) in `ModelOutputs::diagnostics`.
    pub want_diagnostics: bool,
    /// The caller promises the parameters never change while this model lives (a served
    /// model): blocks may then keep what they derive from them, such as the first layers'
    /// weight rows for a split embedding (`crate::split_weights`) and the joined embedding
    /// tables (`crate::joined_tables`). Never set it on a model that is trained.
    pub parameters_frozen: bool,
    /// Each row's varying inputs as a key, computed at the first use by a served model's
    /// embedding (`crate::varying_projections`). Derived from the tensors above: an input built
    /// with other tensors needs `VaryingKeys::default()`.
    pub varying_keys: VaryingKeys,
    /// The served model's numbering of distinct varying inputs, which its embeddings share
    /// (`crate::varying_projections`); `MultiTaskModel::forward` sets it on frozen inputs.
    pub varying_numbering: Option<VaryingNumbering>,
}

impl ModelInput {
    pub fn from_batch(batch: &Batch, device: &Device) -> Self {
        let b = batch.size;
        // Indices go through i64 so that the conversion to the device's integer type is a
        // plain widening/narrowing of small non-negative numbers, whatever that type is.
        let categorical = Tensor::<2, Int>::from_data(
            TensorData::new(
                batch.categorical.iter().map(|&v| v as i64).collect::<Vec<_>>(),
                [b, batch.n_categorical],
            ),
            device,
        );
        let dense = (batch.n_dense > 0).then(|| {
            Tensor::<2>::from_data(TensorData::new(batch.dense.clone(), [b, batch.n_dense]), device)
        });
        let multi = (batch.multi_width > 0).then(|| {
            Tensor::<2, Int>::from_data(
                TensorData::new(
                    batch.multi.iter().map(|&v| v as i64).collect::<Vec<_>>(),
                    [b, batch.multi_width],
                ),
                device,
            )
        });
        let clip_features = batch.clips.as_ref().filter(|c| c.dim > 0).map(|c| {
            Tensor::<3>::from_data(
                TensorData::new(c.features.clone(), [b, c.n_clips, c.dim]),
                device,
            )
        });
        Self {
            categorical,
            dense,
            multi,
            clip_features,
            batch_size: b,
            row_groups: None,
            want_shared: false,
            want_diagnostics: false,
            parameters_frozen: false,
            varying_keys: VaryingKeys::default(),
            varying_numbering: None,
        }
    }

    /// The same input with its rows in the given groups (see `row_groups`). Panics when a group
    /// is empty or the sizes do not sum to the batch size.
    pub fn with_row_groups(self, groups: Vec<usize>) -> Self {
        assert!(groups.iter().all(|&g| g > 0), "row groups must not be empty");
        assert_eq!(
            groups.iter().sum::<usize>(),
            self.batch_size,
            "row groups must cover the batch"
        );
        Self { row_groups: Some(groups), ..self }
    }

    pub fn with_diagnostics(self) -> Self {
        Self { want_diagnostics: true, ..self }
    }

    pub fn with_shared(self) -> Self {
        Self { want_shared: true, ..self }
    }

    /// The same input for a model whose parameters never change again (see
    /// `parameters_frozen`).
    pub fn with_frozen_parameters(self) -> Self {
        Self { parameters_frozen: true, ..self }
    }
}
