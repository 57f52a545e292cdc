//! An embedding's categorical tables joined into one, for a model whose parameters are frozen:
//! the categorical slots of one part of a split embedding (`crate::rows`) are then embedded by a
//! single lookup, instead of one lookup per slot and a concatenation.
//!
//! A serving request of the KuaiRand model embeds 28 user and context slots and 5 video slots in
//! each of six cross-stitch columns; the per-slot path runs a lookup, a reshape and a piece of a
//! concatenation for each, and copies every row 16 floats at a time. The joined table holds the
//! same rows (a copy of the tables, made at the first call with frozen parameters and kept for as
//! long as the model lives), so the embedded values are bit for bit those of the per-slot path.
//! A table of more than `MAX_JOINED_ROWS` rows (millions of ids) is not copied: its slot keeps
//! its own lookup, which costs the same for a large table as for a small one.

use std::sync::{Arc, OnceLock};

use burn::nn::Embedding;
use burn::tensor::module::embedding;
use burn::tensor::{Int, Tensor, TensorData};

use crate::blocks::embedding::embed_slot;

/// Tables with more rows are looked up on their own rather than copied into the joined table.
pub const MAX_JOINED_ROWS: usize = 1 << 20;

/// The categorical tables of one embedding, one after another, once joined.
#[derive(Clone, Default)]
pub struct JoinedTables(Arc<OnceLock<Joined>>);

struct Joined {
    /// [Σ cardinality, dim]: the joined slots' tables, in slot order; `None` when none is.
    table: Option<Tensor<2>>,
    /// Per slot, the first row of its table in `table`; `None` for a slot not joined.
    starts: Vec<Option<i64>>,
}

impl std::fmt::Debug for JoinedTables {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JoinedTables(joined: {})", self.0.get().is_some())
    }
}

/// Part of an embedding: [R, slots × dim] values, the listed slots side by side.
pub type EmbeddedSlots = (Tensor<2>, Vec<usize>);

impl JoinedTables {
    /// The embeddings of `slots` (indices into `tables`) for ids [R, n_cat], in the order given:
    /// one part for each run of joined slots, and one for each slot whose table is too large to
    /// join. (Keeping the order keeps the first layer's sums in the per-slot path's order, so the
    /// outputs stay bit for bit the same.) Joins the tables at the first call.
    pub fn embed(
        &self,
        tables: &[Embedding],
        ids: &Tensor<2, Int>,
        slots: &[usize],
    ) -> Vec<EmbeddedSlots> {
        let joined = self.0.get_or_init(|| join(tables));
        let mut parts = Vec::new();
        let mut run: Vec<usize> = Vec::new();
        for &slot in slots {
            if joined.starts[slot].is_some() {
                run.push(slot);
                continue;
            }
            if !run.is_empty() {
                parts.push(joined.embed_run(ids, std::mem::take(&mut run)));
            }
            parts.push((embed_slot(&tables[slot], ids, slot), vec![slot]));
        }
        if !run.is_empty() {
            parts.push(joined.embed_run(ids, run));
        }
        parts
    }
}

impl Joined {
    /// One lookup in the joined table for a run of joined slots.
    fn embed_run(&self, ids: &Tensor<2, Int>, run: Vec<usize>) -> EmbeddedSlots {
        let table = self.table.as_ref().expect("a joined slot has a joined table");
        let ([rows, _], n, dim) = (ids.dims(), run.len(), table.dims()[1]);
        let device = ids.device();
        let index = |values: Vec<i64>, shape: [usize; 2]| {
            Tensor::<2, Int>::from_data(TensorData::new(values, shape), &device)
        };
        let columns = index(run.iter().map(|&s| s as i64).collect(), [1, n]).reshape([n]);
        let starts = run.iter().map(|&s| self.starts[s].expect("a joined slot")).collect();
        let ids = ids.clone().select(1, columns) + index(starts, [1, n]);
        (embedding(table.clone(), ids).reshape([rows, n * dim]), run)
    }
}

fn join(tables: &[Embedding]) -> Joined {
    let mut starts = Vec::with_capacity(tables.len());
    let mut joined = Vec::new();
    let mut next = 0;
    for table in tables {
        let rows = table.weight.dims()[0];
        if rows <= MAX_JOINED_ROWS {
            starts.push(Some(next as i64));
            joined.push(table.weight.val());
            next += rows;
        } else {
            starts.push(None);
        }
    }
    let table = (!joined.is_empty()).then(|| Tensor::cat(joined, 0));
    Joined { table, starts }
}
