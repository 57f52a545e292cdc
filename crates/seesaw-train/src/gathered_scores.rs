//! Scores of rows that several ranks hold apart (each its shard of the log): every rank
//! predicts its own rows, the predictions are all-gathered and joined in rank order, with the
//! user groups (numbered by each rank on its own) matched by user key. The metrics over the
//! joined scores are exact — the ones one process computes over the same rows — and the same
//! on every rank, so every rank takes the same early-stopping decision.

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use seesaw_data::batch::Batch;
use seesaw_data::feature_map::TaskInfo;
use seesaw_data::interner::Interner;
use seesaw_data::training_data::{ShardedData, TrainingData};
use seesaw_models::MultiTaskModel;

use crate::collective::Collective;
use crate::error::Result;
use crate::evaluate::{Evaluation, Predictions, metrics, predict};

/// [`predict`] over the rows of `batches`, joined with the other ranks' when `data` is sharded.
pub fn predict_on_ranks(
    model: &MultiTaskModel,
    tasks: &[TaskInfo],
    batches: impl Iterator<Item = Batch>,
    device: &Device,
    data: &dyn TrainingData,
    collective: &dyn Collective,
) -> Predictions {
    let local = predict(model, tasks, batches, device);
    match data.shard() {
        Some(shard) => join_ranks(local, shard, collective),
        None => local,
    }
}

/// [`crate::evaluate::evaluate`] over every rank's rows.
pub fn evaluate_on_ranks(
    model: &MultiTaskModel,
    tasks: &[TaskInfo],
    batches: impl Iterator<Item = Batch>,
    device: &Device,
    data: &dyn TrainingData,
    collective: &dyn Collective,
) -> Result<Evaluation> {
    metrics(tasks, &predict_on_ranks(model, tasks, batches, device, data, collective))
}

/// What a rank sends: its predictions, and the user key of each of its user groups.
#[derive(Serialize, Deserialize)]
struct RankScores {
    /// The distinct user groups of `predictions`, sorted, and their keys.
    groups: Vec<u32>,
    keys: Vec<String>,
    predictions: Predictions,
}

fn join_ranks(
    local: Predictions,
    shard: &dyn ShardedData,
    collective: &dyn Collective,
) -> Predictions {
    let mut groups = local.user_group.clone();
    groups.sort_unstable();
    groups.dedup();
    let keys = shard.user_group_keys(&groups);
    let sent = RankScores { groups, keys, predictions: local };
    let bytes = postcard::to_stdvec(&sent).expect("predictions serialise");
    let n_tasks = sent.predictions.predictions.len();
    let extra_names: Vec<String> = sent.predictions.extras.iter().map(|e| e.0.clone()).collect();
    drop(sent);
    let mut joined = Predictions {
        predictions: vec![Vec::new(); n_tasks],
        labels: vec![Vec::new(); n_tasks],
        masks: vec![Vec::new(); n_tasks],
        extras: extra_names.into_iter().map(|name| (name, Vec::new())).collect(),
        ..Default::default()
    };
    let mut users = Interner::new();
    for bytes in collective.all_gather_bytes(&bytes) {
        let rank: RankScores = postcard::from_bytes(&bytes).expect("every rank sends scores");
        append_rank(&mut joined, rank, &mut users);
    }
    let rows = joined.rows.len().max(1) as f64;
    joined.gate_utilisation.values_mut().for_each(|sums| sums.iter_mut().for_each(|s| *s /= rows));
    in_log_order(joined)
}

/// The rows sorted by their place in the log (a sharded batch's `rows`), as one process scores
/// them: per-user ranking metrics break ties in score by that order.
fn in_log_order(mut joined: Predictions) -> Predictions {
    let mut order: Vec<usize> = (0..joined.rows.len()).collect();
    order.sort_by_key(|&i| joined.rows[i]);
    fn permute<T: Copy>(values: &mut Vec<T>, order: &[usize]) {
        *values = order.iter().map(|&i| values[i]).collect();
    }
    permute(&mut joined.rows, &order);
    permute(&mut joined.user_group, &order);
    let columns = joined.predictions.iter_mut().chain(&mut joined.labels).chain(&mut joined.masks);
    columns.chain(joined.extras.iter_mut().map(|(_, v)| v)).for_each(|v| permute(v, &order));
    joined
}

/// Appends one rank's scores: user groups are renumbered by key, and gate means are added weighted by the rank's rows (divided by all
/// rows once every rank is in).
fn append_rank(joined: &mut Predictions, rank: RankScores, users: &mut Interner) {
    let RankScores { groups, keys, predictions: theirs } = rank;
    let ids: Vec<u32> = keys.iter().map(|k| users.intern(k)).collect();
    let group_id = |g: &u32| ids[groups.binary_search(g).expect("every group has its key")];
    joined.user_group.extend(theirs.user_group.iter().map(group_id));
    joined.rows.extend_from_slice(&theirs.rows);
    for (all, part) in [
        (&mut joined.predictions, theirs.predictions),
        (&mut joined.labels, theirs.labels),
        (&mut joined.masks, theirs.masks),
    ] {
        all.iter_mut().zip(part).for_each(|(all, part)| all.extend(part));
    }
    for ((_, all), (_, part)) in joined.extras.iter_mut().zip(theirs.extras) {
        all.extend(part);
    }
    let n = theirs.rows.len() as f64;
    for (gate, means) in theirs.gate_utilisation {
        let sums = joined.gate_utilisation.entry(gate).or_insert_with(|| vec![0.0; means.len()]);
        sums.iter_mut().zip(means).for_each(|(s, m)| *s += m * n);
    }
}
