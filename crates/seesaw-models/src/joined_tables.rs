//! An embedding's categorical tables joined into one, for a model whose parameters are frozen:
//! every categorical slot of one part of a split embedding (`crate::rows`) is then embedded by a
//! single lookup, instead of one lookup per slot and a concatenation.
//!
//! A serving request of the KuaiRand model embeds 28 user and context slots and 5 video slots in
//! each of six cross-stitch columns; the per-slot path runs a lookup, a reshape and a piece of a
//! concatenation for each, and copies every row 16 floats at a time. The joined table holds the
//! same rows (a copy of the tables, made at the first call with frozen parameters and kept for as
//! long as the model lives), so the embedded values are bit for bit those of the per-slot path.

use std::sync::{Arc, OnceLock};

use burn::nn::Embedding;
use burn::tensor::module::embedding;
use burn::tensor::{Int, Tensor, TensorData};

/// The categorical tables of one embedding, one after another, once joined.
#[derive(Clone, Default)]
pub struct JoinedTables(Arc<OnceLock<Joined>>);

struct Joined {
    /// [Σ cardinality, dim]: every categorical slot's table, in slot order.
    table: Tensor<2>,
    /// The first row of each slot's table in `table`.
    starts: Vec<i64>,
}

impl std::fmt::Debug for JoinedTables {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JoinedTables(joined: {})", self.0.get().is_some())
    }
}

impl JoinedTables {
    /// The embeddings of `slots` (indices into `tables`) for ids [R, n_cat]: [R, slots × dim],
    /// the slots side by side in the order given. Joins the tables at the first call.
    pub fn embed(&self, tables: &[Embedding], ids: &Tensor<2, Int>, slots: &[usize]) -> Tensor<2> {
        let joined = self.0.get_or_init(|| {
            let mut starts = Vec::with_capacity(tables.len());
            let mut start = 0;
            for table in tables {
                starts.push(start as i64);
                start += table.weight.dims()[0];
            }
            let table = Tensor::cat(tables.iter().map(|t| t.weight.val()).collect(), 0);
            Joined { table, starts }
        });
        let [rows, _] = ids.dims();
        let n = slots.len();
        let device = ids.device();
        let columns: Vec<i64> = slots.iter().map(|&s| s as i64).collect();
        let starts: Vec<i64> = slots.iter().map(|&s| joined.starts[s]).collect();
        let ids = ids.clone().select(1, Tensor::from_data(TensorData::new(columns, [n]), &device))
            + Tensor::<2, Int>::from_data(TensorData::new(starts, [1, n]), &device);
        let dim = joined.table.dims()[1];
        embedding(joined.table.clone(), ids).reshape([rows, n * dim])
    }
}
