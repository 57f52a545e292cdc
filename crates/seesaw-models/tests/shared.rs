//! The inference fast path (`MultiTaskModel::forward_shared`): for every architecture, splitting
//! the first layers into a per-request and a per-row part gives the plain `forward`'s outputs;
//! a plan that wrongly marks a varying slot shared does not; `SharedSlots::row_groups` finds the
//! requests of a concatenated batch; `SharedSlots::from_feature_map` picks user, context and
//! user-id slots. An ignored test times both paths on a KuaiRand-shaped schema.

mod common;

use std::time::Instant;

use burn::tensor::Device;
use seesaw_data::batch::Batch;
use seesaw_data::feature_map::{
    CategoricalSlot, Encoding, FEATURE_MAP_VERSION, FeatureMap, FeatureSchema, FeatureSource,
    FittedFeature, MultiSlot, TaskInfo, TaskKind,
};
use seesaw_data::numeric::FittedNumeric;
use seesaw_data::spec::NumericTransform;
use seesaw_data::vocabulary::Vocabulary;
use seesaw_models::{Architecture, ModelConfig, ModelInput, MultiTaskModel, SharedSlots};

use common::{Rng, max_abs_diff, tiny_tasks, to_vec};

fn small_set() -> Vec<Architecture> {
    let h = vec![16, 8];
    vec![
        Architecture::Logistic,
        Architecture::SingleTask { hidden: h.clone() },
        // No hidden layer: the tower reads the embedding itself.
        Architecture::SingleTask { hidden: vec![] },
        Architecture::SharedBottom { hidden: h.clone() },
        Architecture::SharedBottom { hidden: vec![] },
        Architecture::CrossStitch { hidden: h.clone() },
        Architecture::Mmoe { experts: 3, expert_hidden: h.clone(), gate_temperature: 1.0 },
        Architecture::Mmoe { experts: 2, expert_hidden: vec![8], gate_temperature: 0.5 },
        Architecture::Cgc {
            shared_experts: 2,
            task_experts: 1,
            expert_hidden: h.clone(),
            gate_temperature: 1.0,
        },
        Architecture::Ple {
            levels: 2,
            shared_experts: 2,
            task_experts: 1,
            expert_hidden: h,
            gate_temperature: 2.0,
        },
    ]
}

/// Categorical: user_id, video_id, a user feature, a context feature, a video feature; multi:
/// a user-side slot and a video-side one; dense: two user-side, two video-side (interleaved).
fn mixed_schema() -> FeatureSchema {
    let cat = |name: &str, cardinality| CategoricalSlot { name: name.into(), cardinality };
    FeatureSchema {
        categorical: vec![
            cat("user_id", 9),
            cat("video_id", 13),
            cat("user_age", 5),
            cat("tab", 4),
            cat("video_type", 6),
        ],
        dense: vec!["user_d0".into(), "video_d0".into(), "user_d1".into(), "video_d1".into()],
        multi: vec![
            MultiSlot { name: "user_tags".into(), cardinality: 6, max_len: 2 },
            MultiSlot { name: "video_tags".into(), cardinality: 7, max_len: 3 },
        ],
    }
}

fn mixed_plan(schema: &FeatureSchema) -> SharedSlots {
    SharedSlots::new(schema, [0, 2, 3], [0], [0, 2]).unwrap()
}

/// Requests of the given sizes, one after another: within a request the shared slots of
/// `mixed_plan` are constant (each request its own user), everything else random per row.
fn requests(schema: &FeatureSchema, sizes: &[usize], seed: u64) -> Batch {
    let mut rng = Rng(seed);
    let size: usize = sizes.iter().sum();
    let (mut categorical, mut dense, mut multi) = (Vec::new(), Vec::new(), Vec::new());
    let tags = |rng: &mut Rng, slot: &MultiSlot| -> Vec<u32> {
        let n = rng.below(slot.max_len + 1);
        (0..slot.max_len)
            .map(|i| if i < n { 1 + rng.below(slot.cardinality - 1) as u32 } else { 0 })
            .collect()
    };
    for (r, &n) in sizes.iter().enumerate() {
        let user = [(r % 8 + 1) as u32, rng.below(5) as u32, rng.below(4) as u32];
        let user_tags = tags(&mut rng, &schema.multi[0]);
        let user_dense = [rng.normal() as f32, rng.normal() as f32];
        for _ in 0..n {
            categorical.extend([
                user[0],
                rng.below(13) as u32,
                user[1],
                user[2],
                rng.below(6) as u32,
            ]);
            multi.extend(&user_tags);
            multi.extend(tags(&mut rng, &schema.multi[1]));
            dense.extend([user_dense[0], rng.normal() as f32, user_dense[1], rng.normal() as f32]);
        }
    }
    Batch {
        size,
        categorical,
        n_categorical: schema.categorical.len(),
        dense,
        n_dense: schema.dense.len(),
        multi,
        multi_width: schema.multi_width(),
        labels: vec![0.0; size * 2],
        masks: vec![1.0; size * 2],
        n_tasks: 2,
        user_group: vec![0; size],
        rows: (0..size as u32).collect(),
        clips: None,
    }
}

fn outputs(out: &seesaw_models::TaskOutputs) -> Vec<Vec<f64>> {
    out.outputs.iter().map(to_vec).collect()
}

fn largest_difference(a: &[Vec<f64>], b: &[Vec<f64>]) -> f64 {
    a.iter().zip(b).map(|(x, y)| max_abs_diff(x, y)).fold(0.0, f64::max)
}

#[test]
fn forward_shared_equals_forward_for_every_architecture() {
    let schema = mixed_schema();
    let tasks = tiny_tasks();
    let device = Device::flex();
    let plan = mixed_plan(&schema);
    let sizes = [5, 1, 7, 3];
    let batch = requests(&schema, &sizes, 11);
    let input = ModelInput::from_batch(&batch, &device);
    assert_eq!(plan.row_groups(&batch), sizes, "one group per request");

    let one = requests(&schema, &[9], 12);
    let one_input = ModelInput::from_batch(&one, &device);

    // Marks video_id and the video-side dense features (varying) shared as well: the first
    // row's video would be used for all.
    let wrong = SharedSlots::new(&schema, [0, 1, 2, 3], [0], 0..4).unwrap();

    for arch in small_set() {
        let name = format!("{arch:?}");
        let cfg = ModelConfig {
            architecture: arch,
            embedding_dim: 4,
            tower_hidden: vec![8],
            ..ModelConfig::default()
        };
        let model = MultiTaskModel::new(&cfg, &schema, &tasks, &device).unwrap();

        let plain = outputs(&model.forward(&input));
        let fast = outputs(&model.forward_shared(&input, &plan, &sizes));
        let grouped = largest_difference(&plain, &fast);
        assert!(grouped < 1e-5, "{name}: grouped fast path differs from forward by {grouped}");

        let plain_one = outputs(&model.forward(&one_input));
        let fast_one = outputs(&model.forward_shared(&one_input, &plan, &[9]));
        let diff = largest_difference(&plain_one, &fast_one);
        assert!(diff < 1e-5, "{name}: single-request fast path differs by {diff}");

        // Nothing shared, or everything in groups of one: still the plain forward.
        let none = SharedSlots::new(&schema, [], [], []).unwrap();
        let diff =
            largest_difference(&plain, &outputs(&model.forward_shared(&input, &none, &sizes)));
        assert!(diff < 1e-5, "{name}: empty plan differs by {diff}");
        let all = SharedSlots::new(&schema, 0..5, 0..2, 0..4).unwrap();
        let singles = vec![1; batch.size];
        let diff =
            largest_difference(&plain, &outputs(&model.forward_shared(&input, &all, &singles)));
        assert!(diff < 1e-5, "{name}: all-shared plan over single rows differs by {diff}");

        // A plan that is wrong for the data must show: video_id is not constant per request.
        let bad =
            largest_difference(&plain, &outputs(&model.forward_shared(&input, &wrong, &sizes)));
        // (The tolerance above must catch it; deep gated models move little at init.)
        println!("{name}: grouped fast path {grouped:.1e}, wrong plan {bad:.1e}");
        assert!(bad > 1e-5, "{name}: marking video_id shared changed nothing ({bad})");
        // ... unless the groups are found from the data, which splits the requests.
        let groups = wrong.row_groups(&batch);
        assert!(groups.len() > sizes.len(), "{name}: {groups:?}");
        let diff =
            largest_difference(&plain, &outputs(&model.forward_shared(&input, &wrong, &groups)));
        assert!(diff < 1e-5, "{name}: data-driven groups differ by {diff}");
    }
}

#[test]
fn row_groups_split_where_a_shared_slot_changes() {
    let schema = mixed_schema();
    let plan = mixed_plan(&schema);
    let mut batch = requests(&schema, &[4, 4], 3);
    assert_eq!(plan.row_groups(&batch), vec![4, 4]);
    // A candidate that overrides a context feature (slot 3) starts its own group.
    let n_cat = batch.n_categorical;
    batch.categorical[2 * n_cat + 3] = (batch.categorical[3] + 1) % 4;
    assert_eq!(plan.row_groups(&batch), vec![2, 1, 1, 4]);
    // So does a change in a shared dense value or in the shared multi-valued slot.
    let mut batch = requests(&schema, &[6], 4);
    batch.dense[3 * batch.n_dense + 2] += 1.0;
    assert_eq!(plan.row_groups(&batch), vec![3, 1, 2]);
    let mut batch = requests(&schema, &[6], 5);
    batch.multi[5 * batch.multi_width + 1] = 5;
    batch.multi[5 * batch.multi_width] = 5;
    assert_eq!(plan.row_groups(&batch), vec![5, 1]);
    // Changes in varying slots never split.
    let mut batch = requests(&schema, &[6], 6);
    batch.categorical[n_cat + 1] = 12;
    batch.multi[batch.multi_width + 4] = 6;
    batch.dense[batch.n_dense + 3] = 9.0;
    assert_eq!(plan.row_groups(&batch), vec![6]);
    assert!(plan.row_groups(&requests(&schema, &[], 0)).is_empty());
    // Out-of-range slots are refused.
    assert!(SharedSlots::new(&schema, [5], [], []).is_err());
    assert!(SharedSlots::new(&schema, [], [2], []).is_err());
    assert!(SharedSlots::new(&schema, [], [], [4]).is_err());
}

#[test]
fn plan_from_feature_map_shares_user_and_context_slots() {
    let vocab = |tokens: &[&str]| Vocabulary::fit(tokens.iter().map(|t| (*t, 10u64)), 1);
    let numeric = |transform| FittedNumeric::fit(transform, [1.0f32, 2.0, 3.0, 4.0].into_iter(), 3);
    let feature = |name: &str, source, encoding| FittedFeature {
        name: name.into(),
        column: name.into(),
        source,
        encoding,
    };
    use FeatureSource::{Log, User, Video};
    let features = vec![
        feature("tab", Log, Encoding::Categorical { vocabulary: vocab(&["a", "b"]) }),
        feature("video_type", Video, Encoding::Categorical { vocabulary: vocab(&["x", "y"]) }),
        feature("user_active", User, Encoding::Categorical { vocabulary: vocab(&["l", "h"]) }),
        feature("follow", User, Encoding::Numeric { numeric: numeric(NumericTransform::Zscore) }),
        feature("device", User, Encoding::OneHot { vocabulary: vocab(&["ios", "android", "web"]) }),
        feature(
            "duration",
            Video,
            Encoding::Bucketized { numeric: numeric(NumericTransform::Quantile) },
        ),
        feature(
            "tag",
            Video,
            Encoding::Multi { vocabulary: vocab(&["t1", "t2"]), separator: ",".into(), max_len: 4 },
        ),
        feature("likes", Video, Encoding::Numeric { numeric: numeric(NumericTransform::Zscore) }),
        feature(
            "interests",
            User,
            Encoding::Multi { vocabulary: vocab(&["i1"]), separator: ",".into(), max_len: 2 },
        ),
        feature("hour", Log, Encoding::Numeric { numeric: numeric(NumericTransform::None) }),
    ];
    let map = FeatureMap {
        version: FEATURE_MAP_VERSION,
        spec: seesaw_data::presets::preset("kuairand").unwrap(),
        user_id: vocab(&["u1", "u2"]),
        video_id: vocab(&["v1", "v2"]),
        features,
        tasks: vec![TaskInfo { name: "click".into(), kind: TaskKind::Binary }],
        skip: None,
        clip_feature_dim: None,
    };
    let plan = SharedSlots::from_feature_map(&map);
    let schema = map.schema();
    let names = |slots: &[usize], all: &[String]| -> Vec<String> {
        slots.iter().map(|&i| all[i].clone()).collect()
    };
    let cat_names: Vec<String> = schema.categorical.iter().map(|c| c.name.clone()).collect();
    let multi_names: Vec<String> = schema.multi.iter().map(|m| m.name.clone()).collect();
    assert_eq!(names(plan.categorical(), &cat_names), ["user_id", "tab", "user_active"]);
    assert_eq!(names(plan.multi(), &multi_names), ["interests"]);
    let dense: Vec<String> = names(plan.dense(), &schema.dense)
        .iter()
        .map(|n| n.split('=').next().unwrap().to_string())
        .collect();
    assert_eq!(dense, ["follow", "device", "device", "device", "device", "hour"]);
    assert_eq!(plan.categorical(), [0, 2, 4]);
    assert_eq!(plan.dense(), [0, 1, 2, 3, 4, 6]);
}

// ---- timing ------------------------------------------------------------------------------

/// KuaiRand-shaped: 36 categorical slots (user_id, video_id, 30 user features, tab, 3 video
/// features), one video-side multi slot of max_len 4, 5 dense of which 4 user-side.
fn kuairand_like() -> (FeatureSchema, SharedSlots) {
    let cat = |name: String, cardinality| CategoricalSlot { name, cardinality };
    let mut categorical = vec![cat("user_id".into(), 27_000), cat("video_id".into(), 7_600)];
    categorical.extend((0..30).map(|i| cat(format!("user_f{i}"), 20 + i * 7)));
    categorical.push(cat("tab".into(), 15));
    categorical.extend((0..3).map(|i| cat(format!("video_f{i}"), 40 + i)));
    let schema = FeatureSchema {
        categorical,
        dense: (0..5).map(|i| format!("d{i}")).collect(),
        multi: vec![MultiSlot { name: "tag".into(), cardinality: 70, max_len: 4 }],
    };
    let shared_cat = std::iter::once(0).chain(2..33);
    let plan = SharedSlots::new(&schema, shared_cat, [], 0..4).unwrap();
    assert_eq!(plan.categorical().len(), 32);
    (schema, plan)
}

fn kuairand_requests(schema: &FeatureSchema, plan: &SharedSlots, sizes: &[usize]) -> Batch {
    let mut rng = Rng(99);
    let size: usize = sizes.iter().sum();
    let n_cat = schema.categorical.len();
    let mut batch = Batch {
        size,
        n_categorical: n_cat,
        n_dense: 5,
        multi_width: 4,
        n_tasks: 9,
        rows: (0..size as u32).collect(),
        user_group: vec![0; size],
        ..Default::default()
    };
    for &n in sizes {
        let user: Vec<u32> =
            schema.categorical.iter().map(|c| rng.below(c.cardinality) as u32).collect();
        let user_dense: Vec<f32> = (0..5).map(|_| rng.normal() as f32).collect();
        for _ in 0..n {
            for (j, c) in schema.categorical.iter().enumerate() {
                let shared = plan.categorical().contains(&j);
                batch.categorical.push(if shared {
                    user[j]
                } else {
                    rng.below(c.cardinality) as u32
                });
            }
            for (d, &v) in user_dense.iter().enumerate() {
                batch.dense.push(if d < 4 { v } else { rng.normal() as f32 });
            }
            let tags = rng.below(5);
            batch.multi.extend((0..4).map(|i| if i < tags { 1 + rng.below(69) as u32 } else { 0 }));
        }
    }
    batch
}

fn median_ms(mut run: impl FnMut(), reps: usize) -> f64 {
    for _ in 0..3 {
        run();
    }
    let mut times: Vec<f64> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            run();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[reps / 2]
}

#[test]
#[ignore = "timing; run with --release -- --ignored --nocapture"]
fn time_forward_shared_on_kuairand_shape() {
    let (schema, plan) = kuairand_like();
    let tasks: Vec<TaskInfo> = (0..9)
        .map(|i| TaskInfo {
            name: format!("t{i}"),
            kind: if i == 7 { TaskKind::Regression } else { TaskKind::Binary },
        })
        .collect();
    let device = Device::flex();
    let archs = [
        Architecture::Mmoe { experts: 4, expert_hidden: vec![128, 64], gate_temperature: 1.0 },
        Architecture::CrossStitch { hidden: vec![128, 64] },
    ];
    for arch in archs {
        let name = arch.name();
        let cfg = ModelConfig {
            architecture: arch,
            embedding_dim: 16,
            tower_hidden: vec![32],
            ..ModelConfig::default()
        };
        let model = MultiTaskModel::new(&cfg, &schema, &tasks, &device).unwrap();
        for sizes in [vec![500], vec![500; 4]] {
            let batch = kuairand_requests(&schema, &plan, &sizes);
            let groups = plan.row_groups(&batch);
            assert_eq!(groups, sizes);
            let input = ModelInput::from_batch(&batch, &device);
            let plain = outputs(&model.forward(&input));
            let fast = outputs(&model.forward_shared(&input, &plan, &groups));
            let diff = largest_difference(&plain, &fast);
            let sync = |out: seesaw_models::TaskOutputs| {
                out.outputs.iter().for_each(|t| {
                    t.to_data();
                })
            };
            let reps = 31;
            let plain_ms = median_ms(|| sync(model.forward(&input)), reps);
            let fast_ms = median_ms(|| sync(model.forward_shared(&input, &plan, &groups)), reps);
            let grouping_ms = median_ms(
                || {
                    std::hint::black_box(plan.row_groups(&batch));
                },
                reps,
            );
            println!(
                "{name:>12} rows {:>5} ({} requests): forward {plain_ms:7.2} ms, forward_shared \
                 {fast_ms:7.2} ms ({:.1}x), row_groups {grouping_ms:.3} ms, max |diff| {diff:.2e}",
                batch.size,
                sizes.len(),
                plain_ms / fast_ms
            );
            assert!(diff < 1e-5);
        }
    }
}
