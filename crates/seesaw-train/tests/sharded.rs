//! Ranks that each read only their shard of a Parquet log (threads of one process standing in
//! for MPI ranks): they fit the feature map one process fits on the whole log, their gathered
//! scores give one process's metrics, and they keep identical weights while training.

use std::sync::{Mutex, MutexGuard, OnceLock};

use burn::tensor::Device;
use serde_json::Value;

use seesaw_data::parquet_dataset::write_parquet_dataset;
use seesaw_data::presets::preset;
use seesaw_data::shard::Shard;
use seesaw_data::spec::{DatasetSpec, SplitSpec};
use seesaw_data::split::Part;
use seesaw_data::streamed_dataset::StreamedDataset;
use seesaw_data::training_data::TrainingData;
use seesaw_models::models::MmoeConfig;
use seesaw_models::{Architecture, ModelConfig, ModelContext, MultiTaskModel, RegressionHead};
use seesaw_sim::{Platform, SimConfig, write_kuairand};
use seesaw_train::collective::{Collective, InProcessRanks};
use seesaw_train::config::EarlyStopping;
use seesaw_train::data_parallel::{materialize_parameters, parameter_hash};
use seesaw_train::trainer::NoObserver;
use seesaw_train::{Evaluation, TrainConfig, evaluate, evaluate_on_ranks, train_on_ranks};

/// burn draws initial weights from one process-wide generator: tests that build models take
/// turns.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

struct Fixture {
    _dir: tempfile::TempDir,
    spec: DatasetSpec,
}

/// A simulated log of 60,000 impressions as a Parquet directory partitioned by date.
fn spec() -> &'static DatasetSpec {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    &FIXTURE
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let config = SimConfig {
                seed: 5,
                n_users: 400,
                n_videos: 200,
                n_impressions: 60_000,
                ..SimConfig::default()
            };
            let files = write_kuairand(&Platform::new(&config).unwrap(), dir.path()).unwrap();
            let log = dir.path().join("log");
            write_parquet_dataset(&files.log, None, &log, Some("date"), 4_000, &mut |_| {})
                .unwrap();
            let mut spec = preset("kuairand").unwrap();
            spec.log.path = Some(log);
            spec.users.as_mut().unwrap().path = Some(files.user_features.clone());
            spec.videos.as_mut().unwrap().path = Some(files.video_features.clone());
            spec.clips = None;
            spec.labels.tasks = Some(["click", "like", "watch_ratio"].map(String::from).to_vec());
            spec.split = SplitSpec::Temporal {
                train_end: None,
                valid_end: None,
                valid_days: 1,
                test_days: 1,
            };
            // Repeats are removed within a read chunk, and a shard's chunks are other rows than
            // one process's: without the repeat rule, both keep the same rows.
            spec.cleaning.deduplicate = false;
            Fixture { _dir: dir, spec }
        })
        .spec
}

const SHUFFLE_ROWS: usize = 8_192;

/// `work` run by each of `ranks` threads with its rank's shard of the log, fitted.
fn on_shards<T: Send>(
    ranks: usize,
    work: impl Fn(&StreamedDataset, &InProcessRanks) -> T + Sync,
) -> Vec<T> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = InProcessRanks::group(ranks)
            .into_iter()
            .map(|rank| {
                let work = &work;
                scope.spawn(move || {
                    let shard = Shard::new(rank.rank(), rank.size());
                    let gather = |mine: &[u8]| rank.all_gather_bytes(mine);
                    let data =
                        StreamedDataset::fit_shard(spec(), SHUFFLE_ROWS, shard, &gather).unwrap();
                    work(&data, &rank)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

fn whole_log() -> StreamedDataset {
    StreamedDataset::fit(spec(), SHUFFLE_ROWS).unwrap()
}

/// `a` and `b` equal, numbers to `tolerance` relative (sums over shards add in another order).
fn assert_close(a: &Value, b: &Value, tolerance: f64, at: &str) {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!((x - y).abs() <= tolerance * x.abs().max(1.0), "{at}: {x} against {y}");
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "{at}: lengths");
            for (i, (x, y)) in x.iter().zip(y).enumerate() {
                assert_close(x, y, tolerance, &format!("{at}[{i}]"));
            }
        }
        (Value::Object(x), Value::Object(y)) => {
            assert_eq!(x.keys().collect::<Vec<_>>(), y.keys().collect::<Vec<_>>(), "{at}: keys");
            for (key, x) in x {
                assert_close(x, &y[key], tolerance, &format!("{at}.{key}"));
            }
        }
        _ => assert_eq!(a, b, "{at}"),
    }
}

#[test]
fn ranks_fit_from_their_shards_the_feature_map_one_process_fits_on_the_whole_log() {
    let whole = whole_log();
    let map_of = |data: &StreamedDataset| serde_json::to_value(data.feature_map()).unwrap();
    for ranks in [2, 3] {
        let fitted = on_shards(ranks, |data, _| {
            let shard = data.shard().expect("sharded").rows().clone();
            let parts = [Part::Train, Part::Valid, Part::Test].map(|p| data.part_len(p));
            // This rank's batches hold its shard's rows.
            let rows: usize =
                data.batches(Part::Train, 500, Some(3)).map(|b| b.unwrap().size).sum();
            (map_of(data), shard, parts, rows)
        });
        let (map, shard, parts, _) = &fitted[0];
        for (rank, (other, other_shard, other_parts, rows)) in fitted.iter().enumerate() {
            assert_eq!(other, map, "rank {rank} of {ranks} fitted another map");
            assert_eq!(other_shard.per_rank, shard.per_rank);
            assert_eq!(other_parts, parts);
            assert_eq!(*rows, shard.per_rank[rank][Part::Train as usize]);
        }
        for part in [Part::Train, Part::Valid, Part::Test] {
            let held: usize = shard.per_rank.iter().map(|rows| rows[part as usize]).sum();
            assert_eq!(held, whole.part_len(part), "{part:?}: the shards cover the part");
            assert!(shard.per_rank.iter().all(|rows| rows[part as usize] > 0), "{part:?}");
        }
        assert_close(map, &map_of(&whole), 1e-9, "feature map");
    }
}

fn model_config() -> ModelConfig {
    ModelConfig {
        architecture: Architecture::Mmoe(MmoeConfig {
            experts: 2,
            expert_hidden: vec![16],
            gate_temperature: 1.0,
        }),
        embedding_dim: 4,
        tower_hidden: vec![8],
        regression_head: RegressionHead::Sigmoid,
        cmi: None,
    }
}

#[test]
fn scores_gathered_from_the_shards_give_the_metrics_one_process_computes() {
    let _serial = serial();
    let whole = whole_log();
    let device = Device::flex();
    let context = ModelContext::from_feature_map(&model_config(), whole.feature_map());
    let model = MultiTaskModel::new(&model_config(), &context, &device).unwrap();
    materialize_parameters(&model);
    let tasks = &whole.feature_map().tasks;
    fn batches(data: &StreamedDataset) -> impl Iterator<Item = seesaw_data::batch::Batch> + '_ {
        data.batches(Part::Test, 1_000, None).map(Result::unwrap)
    }
    let alone = evaluate(&model, tasks, batches(&whole), &device).unwrap();
    let gathered: Vec<Evaluation> = on_shards(2, |data, rank| {
        evaluate_on_ranks(&model, tasks, batches(data), &device, data, rank).unwrap()
    });
    assert_eq!(gathered[0], gathered[1], "every rank computes the same metrics");
    assert_eq!(gathered[0].rows, alone.rows);
    let (alone, gathered) =
        (serde_json::to_value(&alone).unwrap(), serde_json::to_value(&gathered[0]).unwrap());
    assert!(alone["tasks"]["click"]["gauc"].is_number(), "{alone}");
    assert_close(&gathered, &alone, 1e-6, "evaluation");
}

#[test]
fn sharded_ranks_keep_identical_weights_and_learn() {
    let _serial = serial();
    let config = TrainConfig {
        epochs: 2,
        batch_size: 512,
        learning_rate: 3e-3,
        seed: 4,
        early_stopping: EarlyStopping { monitor: Vec::new(), patience: 100 },
        ..TrainConfig::default()
    };
    let outcomes = on_shards(2, |data, rank| {
        let outcome =
            train_on_ranks(&config, &model_config(), data, None, false, &mut NoObserver, rank)
                .unwrap();
        let steps = data.shard().unwrap().rows().steps(Part::Train, config.batch_size);
        (parameter_hash(&outcome.model), outcome.history, steps)
    });
    assert_eq!(outcomes[0].0, outcomes[1].0, "the ranks' weights differ");
    let (_, history, steps) = &outcomes[0];
    for (mine, theirs) in history.iter().zip(&outcomes[1].1) {
        assert_eq!((&mine.valid, &mine.train_loss), (&theirs.valid, &theirs.train_loss));
    }
    assert_eq!(history[0].steps, *steps);
    let auc = |epoch: usize| history[epoch].valid.tasks["click"].auc.unwrap();
    assert!(auc(1) > 0.55, "click validation AUC {} after two epochs", auc(1));
}
