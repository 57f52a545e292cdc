//! The serving fast path: an input with row groups (`ModelInput::with_row_groups`) embeds the
//! slots the schema marks as shared (every slot whose source is not the video) once per group and
//! splits the first layers into a per-group and a per-row product. For every architecture this
//! gives the plain `forward`'s outputs; groups that put together rows that differ in a shared
//! slot do not (only the first row of a group is read for those slots), nor does a schema that
//! wrongly marks a varying slot as shared; `SharedSlots::row_groups` finds the requests of a
//! concatenated batch; `SharedSlots::from_schema` picks the user, context and user-id slots of a
//! feature map's schema; an input that says its parameters are frozen (as a served model's does)
//! gives the same outputs bit for bit. An ignored test times both paths on a KuaiRand-shaped
//! schema, with and without frozen parameters.

mod common;

use std::time::Instant;

use burn::tensor::Device;
use burn::tensor::Tensor;
use burn::tensor::activation::relu;
use seesaw_data::batch::Batch;
use seesaw_data::feature_map::{
    Encoding, FEATURE_MAP_VERSION, FeatureMap, FeatureSchema, FeatureSource, FittedFeature,
    MultiSlot, TaskInfo, TaskKind,
};
use seesaw_data::numeric::FittedNumeric;
use seesaw_data::spec::NumericTransform;
use seesaw_data::vocabulary::Vocabulary;
use seesaw_models::blocks::CrossStitchUnit;
use seesaw_models::joined_tables::MAX_JOINED_ROWS;
use seesaw_models::models::{
    CrossStitchConfig, MmoeConfig, PleConfig, SharedBottomConfig, SingleTaskConfig,
};
use seesaw_models::rows::Rows;
use seesaw_models::{
    Architecture, ModelConfig, ModelContext, ModelInput, ModelOutputs, MultiTaskModel, Network,
    SharedSlots,
};

use common::{Rng, cat, dense, every_architecture, max_abs_diff, multi, tiny_tasks, to_vec};

use FeatureSource::{Log, User, Video};

/// Every architecture, plus the corners: no hidden layer (the tower reads the embedding itself),
/// a two-expert MMoE with a sharper gate, and a PLE with a softer one.
fn small_set() -> Vec<Architecture> {
    let mut set = every_architecture(vec![16, 8]);
    set.extend([
        Architecture::SingleTask(SingleTaskConfig { hidden: vec![] }),
        Architecture::SharedBottom(SharedBottomConfig { hidden: vec![] }),
        Architecture::Mmoe(MmoeConfig {
            experts: 2,
            expert_hidden: vec![8],
            gate_temperature: 0.5,
        }),
        Architecture::Ple(PleConfig {
            levels: 2,
            shared_experts: 2,
            task_experts: 1,
            expert_hidden: vec![16, 8],
            gate_temperature: 2.0,
        }),
    ]);
    set
}

/// Categorical: user_id, video_id, a user feature, a context feature, a video feature; multi:
/// a user-side slot and a video-side one; dense: two user-side, two video-side (interleaved).
/// The slots that are not the video's are the shared ones of `mixed_plan`.
fn mixed_schema() -> FeatureSchema {
    FeatureSchema {
        categorical: vec![
            cat("user_id", 9, User),
            cat("video_id", 13, Video),
            cat("user_age", 5, User),
            cat("tab", 4, Log),
            cat("video_type", 6, Video),
        ],
        dense: vec![
            dense("user_d0", User),
            dense("video_d0", Video),
            dense("user_d1", User),
            dense("video_d1", Video),
        ],
        multi: vec![multi("user_tags", 6, 2, User), multi("video_tags", 7, 3, Video)],
    }
}

/// The shared slots of `mixed_schema`, by index.
fn mixed_plan(schema: &FeatureSchema) -> SharedSlots {
    SharedSlots::new(schema, [0, 2, 3], [0], [0, 2]).unwrap()
}

/// `schema` with the source of every slot replaced by `source(kind, index, old source)`, where
/// kind is "categorical", "multi" or "dense".
fn with_sources(
    schema: &FeatureSchema,
    source: impl Fn(&str, usize, FeatureSource) -> FeatureSource,
) -> FeatureSchema {
    let mut schema = schema.clone();
    schema.categorical.iter_mut().enumerate().for_each(|(i, c)| {
        c.source = source("categorical", i, c.source);
    });
    schema.multi.iter_mut().enumerate().for_each(|(i, m)| m.source = source("multi", i, m.source));
    schema.dense.iter_mut().enumerate().for_each(|(i, d)| d.source = source("dense", i, d.source));
    schema
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

fn outputs(out: &ModelOutputs) -> Vec<Vec<f64>> {
    out.tasks.iter().map(|t| to_vec(&t.tensor)).collect()
}

fn largest_difference(a: &[Vec<f64>], b: &[Vec<f64>]) -> f64 {
    a.iter().zip(b).map(|(x, y)| max_abs_diff(x, y)).fold(0.0, f64::max)
}

fn grouped(input: &ModelInput, groups: &[usize]) -> ModelInput {
    input.clone().with_row_groups(groups.to_vec())
}

fn config(arch: Architecture) -> ModelConfig {
    ModelConfig {
        architecture: arch,
        embedding_dim: 4,
        tower_hidden: vec![8],
        ..ModelConfig::default()
    }
}

fn build(cfg: &ModelConfig, schema: &FeatureSchema, device: &Device) -> MultiTaskModel {
    MultiTaskModel::new(cfg, &ModelContext::new(cfg, schema.clone(), tiny_tasks()), device).unwrap()
}

#[test]
fn grouped_forward_equals_forward_for_every_architecture() {
    let schema = mixed_schema();
    let device = Device::flex();
    let plan = SharedSlots::from_schema(&schema);
    assert_eq!(plan, mixed_plan(&schema), "the non-video slots are shared");
    let sizes = [5, 1, 7, 3];
    let batch = requests(&schema, &sizes, 11);
    let input = ModelInput::from_batch(&batch, &device);
    assert_eq!(plan.row_groups(&batch), sizes, "one group per request");
    let singles = vec![1; batch.size];
    // One group for the whole batch: the four requests have different users.
    let lumped = [batch.size];

    let one = requests(&schema, &[9], 12);
    let one_input = ModelInput::from_batch(&one, &device);

    // The same slots with no slot shared (all from the video), and with every slot shared.
    let no_shared = with_sources(&schema, |_, _, _| Video);
    assert!(SharedSlots::from_schema(&no_shared).is_empty());
    let all_shared = with_sources(&schema, |_, _, _| User);
    assert_eq!(
        SharedSlots::from_schema(&all_shared),
        SharedSlots::new(&schema, 0..5, 0..2, 0..4).unwrap()
    );
    // A schema that marks video_id and the video-side dense features (varying) as context:
    // the first row's video would be used for all rows of a request.
    let wrong = with_sources(&schema, |kind, i, source| match (kind, i) {
        ("categorical", 1) | ("dense", 1) | ("dense", 3) => Log,
        _ => source,
    });
    let wrong_plan = SharedSlots::from_schema(&wrong);
    assert_eq!(wrong_plan, SharedSlots::new(&schema, [0, 1, 2, 3], [0], 0..4).unwrap());

    for arch in small_set() {
        let name = format!("{arch:?}");
        let cfg = config(arch);
        let model = build(&cfg, &schema, &device);

        let plain = outputs(&model.forward(&input));
        let fast = outputs(&model.forward(&grouped(&input, &sizes)));
        let diff_grouped = largest_difference(&plain, &fast);
        assert!(diff_grouped < 1e-5, "{name}: grouped forward differs by {diff_grouped}");

        let plain_one = outputs(&model.forward(&one_input));
        let fast_one = outputs(&model.forward(&grouped(&one_input, &[9])));
        let diff_one = largest_difference(&plain_one, &fast_one);
        assert!(diff_one < 1e-5, "{name}: single-request grouped forward differs by {diff_one}");

        // Groups of one row: every row reads its own shared slots.
        let diff_singles =
            largest_difference(&plain, &outputs(&model.forward(&grouped(&input, &singles))));
        assert!(diff_singles < 1e-5, "{name}: single-row groups differ by {diff_singles}");

        // Groups that put together rows that differ in a shared slot must show: only the first
        // row of a group is read for the user and context slots.
        let bad_groups =
            largest_difference(&plain, &outputs(&model.forward(&grouped(&input, &lumped))));
        assert!(
            bad_groups > 1e-5,
            "{name}: one group over four users changed nothing ({bad_groups})"
        );

        // Nothing shared: any grouping, even the wrong one, is the plain forward.
        let model = build(&cfg, &no_shared, &device);
        let plain_none = outputs(&model.forward(&input));
        for groups in [&sizes[..], &lumped[..]] {
            let diff =
                largest_difference(&plain_none, &outputs(&model.forward(&grouped(&input, groups))));
            assert!(diff < 1e-5, "{name}: no shared slot, groups {groups:?} differ by {diff}");
        }

        // Everything shared, in groups of one row: still the plain forward.
        let model = build(&cfg, &all_shared, &device);
        let plain_all = outputs(&model.forward(&input));
        let diff_all =
            largest_difference(&plain_all, &outputs(&model.forward(&grouped(&input, &singles))));
        assert!(diff_all < 1e-5, "{name}: all slots shared over single rows differ by {diff_all}");
        // (Not vacuous: with every slot shared, the requests' videos are read from their first
        // rows.)
        let bad_all =
            largest_difference(&plain_all, &outputs(&model.forward(&grouped(&input, &sizes))));
        assert!(
            bad_all > 1e-5,
            "{name}: all slots shared over requests changed nothing ({bad_all})"
        );

        // A schema that is wrong for the data must show: video_id is not constant per request.
        let model = build(&cfg, &wrong, &device);
        let plain_wrong = outputs(&model.forward(&input));
        let bad_schema =
            largest_difference(&plain_wrong, &outputs(&model.forward(&grouped(&input, &sizes))));
        // (The tolerance above must catch it; deep gated models move little at init.)
        println!(
            "{name}: grouped {diff_grouped:.1e}, one request {diff_one:.1e}, single rows \
             {diff_singles:.1e}, all shared {diff_all:.1e}; one group over four users \
             {bad_groups:.1e}, wrong schema {bad_schema:.1e}"
        );
        assert!(
            bad_schema > 1e-5,
            "{name}: marking video_id shared changed nothing ({bad_schema})"
        );
        // ... unless the groups are found from the data, which splits the requests.
        let groups = wrong_plan.row_groups(&batch);
        assert!(groups.len() > sizes.len(), "{name}: {groups:?}");
        let diff =
            largest_difference(&plain_wrong, &outputs(&model.forward(&grouped(&input, &groups))));
        assert!(diff < 1e-5, "{name}: data-driven groups differ by {diff}");
    }
}

/// A served model's input says its parameters are frozen; the blocks then keep the first
/// layers' split weight rows and the joined embedding tables, which must change nothing: the
/// grouped outputs are bit for bit those without the flag, at the call that fills the caches and
/// at the calls that read them, for every architecture and for schemas with nothing or
/// everything shared. Each model keeps its own: a second model scored after the first gives its
/// own outputs, not the first model's.
#[test]
fn frozen_parameters_change_no_output() {
    let schema = mixed_schema();
    let device = Device::flex();
    let sizes = [5, 1, 7, 3];
    let input = ModelInput::from_batch(&requests(&schema, &sizes, 31), &device);
    let one_input = ModelInput::from_batch(&requests(&schema, &[9], 32), &device);
    // user_id with a table too large to copy into the joined table: looked up on its own.
    let mut large = schema.clone();
    large.categorical[0].cardinality = MAX_JOINED_ROWS + 1;
    let schemas = [
        ("mixed", schema.clone()),
        ("nothing shared", with_sources(&schema, |_, _, _| Video)),
        ("everything shared", with_sources(&schema, |_, _, _| User)),
        ("a table too large to join", large),
    ];
    for arch in small_set() {
        let cfg = config(arch.clone());
        for (what, schema) in &schemas {
            let name = format!("{arch:?}, {what}");
            let model = build(&cfg, schema, &device);
            let other = build(&cfg, schema, &device);
            for (input, groups) in [(&input, &sizes[..]), (&one_input, &[9][..])] {
                let grouped = grouped(input, groups);
                let frozen = grouped.clone().with_frozen_parameters();
                let expected = outputs(&model.forward(&grouped));
                for call in ["first", "second"] {
                    let got = outputs(&model.forward(&frozen));
                    assert_eq!(got, expected, "{name}, groups {groups:?}: {call} frozen call");
                }
                let other_expected = outputs(&other.forward(&grouped));
                assert_ne!(other_expected, expected, "{name}: the two models differ");
                let other_got = outputs(&other.forward(&frozen));
                assert_eq!(other_got, other_expected, "{name}: the second model's own outputs");
            }
        }
    }
}

/// A cross-stitch network keeps its columns stacked, [K, B, D], from the first layer on: the
/// first layers write into one buffer (a served model's kept products straight into it), the
/// later layers are one batched product, the units mix without stacking. That is the same
/// arithmetic as running each column on its own and stacking before each unit, bit for bit,
/// for plain, grouped and frozen inputs, with three units.
#[test]
fn cross_stitch_columns_stacked_equal_the_columns_one_by_one_bit_for_bit() {
    let schema = mixed_schema();
    let device = Device::flex();
    let sizes = [5, 1, 7, 3];
    let plain = ModelInput::from_batch(&requests(&schema, &sizes, 41), &device);
    let cfg = config(Architecture::CrossStitch(CrossStitchConfig { hidden: vec![16, 8, 4] }));
    let model = build(&cfg, &schema, &device);
    let Network::CrossStitch(cs) = &model.network else { unreachable!() };
    // The columns one by one: each stacked only for the unit's product, split right after.
    let unit = |unit: &CrossStitchUnit, xs: Vec<Tensor<2>>| -> Vec<Tensor<2>> {
        let (k, [b, d]) = (xs.len(), xs[0].dims());
        let mixed = unit.alpha.val().matmul(Tensor::stack::<3>(xs, 0).reshape([k, b * d]));
        mixed.reshape([k, b, d]).chunk(k, 0).into_iter().map(|t| t.reshape([b, d])).collect()
    };
    let one_by_one = |input: &ModelInput| -> Vec<Vec<f64>> {
        let rows: Vec<Rows> = cs.columns.iter().map(|c| c.embedding.forward(input)).collect();
        let firsts = rows.iter().zip(&cs.columns).map(|(r, c)| relu(r.linear(&c.mlp.layers[0])));
        let mut xs = unit(&cs.units[0], firsts.collect());
        for (l, u) in cs.units.iter().enumerate().skip(1) {
            let layers = xs.into_iter().zip(&cs.columns);
            xs = unit(u, layers.map(|(x, c)| relu(c.mlp.layers[l].forward(x))).collect());
        }
        let raw = xs.into_iter().zip(&cs.columns).map(|(x, c)| c.tower.forward(x)).collect();
        cs.heads.apply(raw).iter().map(|t| to_vec(&t.tensor)).collect()
    };
    let grouped = grouped(&plain, &sizes);
    for (what, input) in [
        ("plain", plain.clone()),
        ("grouped", grouped.clone()),
        ("frozen", grouped.clone().with_frozen_parameters()),
    ] {
        let want = one_by_one(&input);
        for call in ["first", "second"] {
            assert_eq!(outputs(&model.forward(&input)), want, "{what} input, {call} call");
        }
    }
}

#[test]
fn only_the_first_row_of_a_group_is_read_for_shared_slots() {
    let schema = mixed_schema();
    let device = Device::flex();
    let sizes = [5, 1, 7, 3];
    let batch = requests(&schema, &sizes, 21);
    // Rows 3 (in the first group) and 10 (in the third) get another user feature, another
    // shared dense value and other user tags; the first rows of their groups keep theirs.
    let mut changed = batch.clone();
    for r in [3, 10] {
        let c = &mut changed.categorical[r * changed.n_categorical + 2];
        *c = (*c + 1) % 5;
        changed.dense[r * changed.n_dense] += 3.0;
        let tags = &mut changed.multi[r * changed.multi_width..][..2];
        let other: [u32; 2] = if tags.contains(&1) || tags.contains(&2) { [3, 4] } else { [1, 2] };
        tags.copy_from_slice(&other);
    }
    let plan = SharedSlots::from_schema(&schema);
    assert_eq!(plan.row_groups(&changed), [3, 1, 1, 1, 4, 1, 2, 3]);
    let input = ModelInput::from_batch(&batch, &device);
    let changed_input = ModelInput::from_batch(&changed, &device);
    for arch in small_set() {
        let name = format!("{arch:?}");
        let model = build(&config(arch), &schema, &device);
        let plain = outputs(&model.forward(&input));
        // The plain forward reads the changed rows ...
        let moved = largest_difference(&plain, &outputs(&model.forward(&changed_input)));
        assert!(moved > 1e-5, "{name}: the changes do not move the outputs ({moved})");
        // ... the grouped one does not: it reads the first row of each group.
        let stale = outputs(&model.forward(&grouped(&changed_input, &sizes)));
        let diff = largest_difference(&plain, &stale);
        assert!(diff < 1e-5, "{name}: a row other than the first was read ({diff})");
    }
}

#[test]
fn row_groups_split_where_a_shared_slot_changes() {
    let schema = mixed_schema();
    let plan = SharedSlots::from_schema(&schema);
    assert_eq!(plan, mixed_plan(&schema));
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
fn shared_slots_from_feature_map_schema_are_user_and_context_slots() {
    let vocab = |tokens: &[&str]| Vocabulary::fit(tokens.iter().map(|t| (*t, 10u64)), 1);
    let numeric = |transform| FittedNumeric::fit(transform, [1.0f32, 2.0, 3.0, 4.0].into_iter(), 3);
    let feature = |name: &str, source, encoding| FittedFeature {
        name: name.into(),
        column: name.into(),
        source,
        encoding,
    };
    // Sources deliberately interleaved: the schema lays slots out by source (log, user, video)
    // after user_id and video_id, whatever the order here.
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
        tasks: vec![TaskInfo::new("click", TaskKind::Binary)],
        skip: None,
        clip_feature_dim: None,
    };
    let schema = map.schema();
    let plan = SharedSlots::from_schema(&schema);
    // Categorical: user_id, video_id, tab (log), user_active (user), video_type, duration
    // (video). Dense: hour (log), follow, device=<oov|ios|android|web> (user), likes (video).
    // Multi: interests (user), tag (video).
    let cat_names: Vec<String> = schema.categorical.iter().map(|c| c.name.clone()).collect();
    let multi_names: Vec<String> = schema.multi.iter().map(|m| m.name.clone()).collect();
    let dense_names: Vec<String> =
        schema.dense.iter().map(|d| d.name.split('=').next().unwrap().to_string()).collect();
    assert_eq!(cat_names, ["user_id", "video_id", "tab", "user_active", "video_type", "duration"]);
    assert_eq!(dense_names, ["hour", "follow", "device", "device", "device", "device", "likes"]);
    assert_eq!(multi_names, ["interests", "tag"]);
    let names = |slots: &[usize], all: &[String]| -> Vec<String> {
        slots.iter().map(|&i| all[i].clone()).collect()
    };
    assert_eq!(names(plan.categorical(), &cat_names), ["user_id", "tab", "user_active"]);
    assert_eq!(names(plan.multi(), &multi_names), ["interests"]);
    assert_eq!(
        names(plan.dense(), &dense_names),
        ["hour", "follow", "device", "device", "device", "device"]
    );
    assert_eq!(plan.categorical(), [0, 2, 3]);
    assert_eq!(plan.multi(), [0]);
    assert_eq!(plan.dense(), [0, 1, 2, 3, 4, 5]);
}

// ---- timing ------------------------------------------------------------------------------

/// KuaiRand-shaped: 36 categorical slots (user_id, video_id, 30 user features, tab, 3 video
/// features), one video-side multi slot of max_len 4, 5 dense of which 4 user-side.
fn kuairand_like() -> (FeatureSchema, SharedSlots) {
    let mut categorical = vec![cat("user_id", 27_000, User), cat("video_id", 7_600, Video)];
    categorical.extend((0..30).map(|i| cat(&format!("user_f{i}"), 20 + i * 7, User)));
    categorical.push(cat("tab", 15, Log));
    categorical.extend((0..3).map(|i| cat(&format!("video_f{i}"), 40 + i, Video)));
    let schema = FeatureSchema {
        categorical,
        dense: (0..5).map(|i| dense(&format!("d{i}"), if i < 4 { User } else { Video })).collect(),
        multi: vec![multi("tag", 70, 4, Video)],
    };
    let plan = SharedSlots::from_schema(&schema);
    let shared_cat = std::iter::once(0).chain(2..33);
    assert_eq!(plan, SharedSlots::new(&schema, shared_cat, [], 0..4).unwrap());
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
fn time_grouped_forward_on_kuairand_shape() {
    let (schema, plan) = kuairand_like();
    let tasks: Vec<TaskInfo> = (0..9)
        .map(|i| {
            let kind = if i == 7 { TaskKind::Regression } else { TaskKind::Binary };
            TaskInfo::new(format!("t{i}"), kind)
        })
        .collect();
    let device = Device::flex();
    let archs = [
        Architecture::Mmoe(MmoeConfig {
            experts: 4,
            expert_hidden: vec![128, 64],
            gate_temperature: 1.0,
        }),
        Architecture::CrossStitch(CrossStitchConfig { hidden: vec![128, 64] }),
    ];
    for arch in archs {
        let name = arch.name();
        let cfg = ModelConfig {
            architecture: arch,
            embedding_dim: 16,
            tower_hidden: vec![32],
            ..ModelConfig::default()
        };
        let context = ModelContext::new(&cfg, schema.clone(), tasks.clone());
        let model = MultiTaskModel::new(&cfg, &context, &device).unwrap();
        for sizes in [vec![500], vec![500; 4]] {
            let batch = kuairand_requests(&schema, &plan, &sizes);
            let groups = plan.row_groups(&batch);
            assert_eq!(groups, sizes);
            let input = ModelInput::from_batch(&batch, &device);
            let grouped_input = grouped(&input, &groups);
            let plain = outputs(&model.forward(&input));
            let fast = outputs(&model.forward(&grouped_input));
            let diff = largest_difference(&plain, &fast);
            let sync = |out: ModelOutputs| {
                out.tasks.iter().for_each(|t| {
                    t.tensor.to_data();
                })
            };
            let frozen_input = grouped_input.clone().with_frozen_parameters();
            assert_eq!(outputs(&model.forward(&frozen_input)), fast, "frozen parameters");
            let reps = 31;
            let plain_ms = median_ms(|| sync(model.forward(&input)), reps);
            let fast_ms = median_ms(|| sync(model.forward(&grouped_input)), reps);
            let frozen_ms = median_ms(|| sync(model.forward(&frozen_input)), reps);
            let grouping_ms = median_ms(
                || {
                    std::hint::black_box(plan.row_groups(&batch));
                },
                reps,
            );
            println!(
                "{name:>12} rows {:>5} ({} requests): forward {plain_ms:7.2} ms, grouped forward \
                 {fast_ms:7.2} ms ({:.1}x), with frozen parameters {frozen_ms:7.2} ms ({:.1}x), \
                 row_groups {grouping_ms:.3} ms, max |diff| {diff:.2e}",
                batch.size,
                sizes.len(),
                plain_ms / fast_ms,
                plain_ms / frozen_ms
            );
            assert!(diff < 1e-5);
        }
    }
}

/// `batch` with row `to`'s varying slots (those `plan` does not share) set to row `from`'s: the
/// same video, as it would come back in another request.
fn same_video(batch: &mut Batch, plan: &SharedSlots, from: usize, to: usize) {
    let varying = plan.varying_side();
    let (categorical, dense) = (varying.categorical, varying.dense);
    let (nc, nd, nm) = (batch.n_categorical, batch.n_dense, batch.multi_width);
    for &j in categorical {
        batch.categorical[to * nc + j] = batch.categorical[from * nc + j];
    }
    for &d in dense {
        batch.dense[to * nd + d] = batch.dense[from * nd + d];
    }
    for &c in plan.varying_multi_columns() {
        batch.multi[to * nm + c] = batch.multi[from * nm + c];
    }
}

/// A served embedding (frozen parameters) keeps the shared part's first-layer product of a
/// single-group input (one request's user and context) and reads it for the next input with the
/// same shared slots, with the outputs of the embedding without the promise; another user's is
/// computed, and inputs of several groups neither read nor fill it (`shared_products.rs`).
#[test]
fn a_served_embedding_keeps_the_shared_products_of_single_group_inputs() {
    use burn::nn::LinearConfig;
    use seesaw_models::blocks::FeatureEmbedding;
    use seesaw_models::rows::Rows;

    let schema = mixed_schema();
    let device = Device::flex();
    let embedding = FeatureEmbedding::new(&schema, 4, &device).unwrap();
    let layer = LinearConfig::new(embedding.input_dim(), 5).init(&device);
    let input = |sizes: &[usize], seed| {
        ModelInput::from_batch(&requests(&schema, sizes, seed), &device)
            .with_row_groups(sizes.to_vec())
    };
    let linear = |input: &ModelInput| match embedding.forward(input) {
        Rows::Split(rows) => to_vec(&rows.linear(&layer)),
        Rows::Plain(_) => panic!("a grouped input with shared slots is split"),
    };
    let kept = &embedding.shared_products;
    let (one, other, two_groups) = (input(&[6], 51), input(&[6], 52), input(&[3, 3], 53));
    let want = [&one, &other, &two_groups].map(linear);
    assert_ne!(want[0], want[1], "the two users differ");
    assert_eq!(kept.computed(), 0, "without frozen parameters nothing is kept");

    assert_eq!(linear(&one.clone().with_frozen_parameters()), want[0]);
    assert_eq!(kept.computed(), 1);
    // The same request again, as a new input: read, not computed.
    assert_eq!(linear(&input(&[6], 51).with_frozen_parameters()), want[0]);
    assert_eq!(kept.computed(), 1);
    assert_eq!(linear(&other.clone().with_frozen_parameters()), want[1]);
    assert_eq!(kept.computed(), 2);
    assert_eq!(linear(&two_groups.clone().with_frozen_parameters()), want[2]);
    assert_eq!(kept.computed(), 2, "several groups neither read nor fill it");

    // Products are kept by what the shared slots hold: a request that differs from the first
    // in one shared slot only (a user feature, a shared dense value, the user's tags) is another
    // input, computed, with its own outputs.
    let base = requests(&schema, &[6], 51);
    type Change = fn(&mut Batch, usize);
    let changes: [(&str, Change); 3] = [
        ("a user feature", |b, r| {
            let c = &mut b.categorical[r * b.n_categorical + 2];
            *c = (*c + 1) % 5;
        }),
        ("a shared dense value", |b, r| b.dense[r * b.n_dense] += 3.0),
        ("the user's tags", |b, r| {
            let tags = &mut b.multi[r * b.multi_width..][..2];
            let other: [u32; 2] =
                if tags.contains(&1) || tags.contains(&2) { [3, 4] } else { [1, 2] };
            tags.copy_from_slice(&other);
        }),
    ];
    for (n, (what, change)) in changes.into_iter().enumerate() {
        let mut batch = base.clone();
        (0..batch.size).for_each(|r| change(&mut batch, r));
        let changed = ModelInput::from_batch(&batch, &device).with_row_groups(vec![6]);
        let want = linear(&changed);
        assert_ne!(want, linear(&one), "{what}: the change moves the outputs");
        assert_eq!(linear(&changed.with_frozen_parameters()), want, "{what}");
        assert_eq!(kept.computed(), 3 + n as u64, "{what}: computed, not read");
    }
}

/// A served embedding (frozen parameters) embeds and multiplies each distinct varying input once
/// per first layer and copies its kept products afterwards (`varying_projections.rs`), with the
/// outputs of the embedding without the promise; inputs beyond its bound are computed at every
/// call.
#[test]
fn a_served_embedding_computes_each_varying_input_once_per_layer() {
    use burn::module::Param;
    use burn::nn::LinearConfig;
    use burn::tensor::{Distribution, Tensor};
    use seesaw_models::blocks::FeatureEmbedding;
    use seesaw_models::rows::Rows;
    use seesaw_models::varying_projections::VaryingProjections;

    let schema = mixed_schema();
    let plan = mixed_plan(&schema);
    let device = Device::flex();
    let sizes = [4, 3];
    let mut batch = requests(&schema, &sizes, 41);
    // Row 2 shows row 0's video again, row 5 (another user) row 1's: five distinct videos.
    same_video(&mut batch, &plan, 0, 2);
    same_video(&mut batch, &plan, 1, 5);
    let input = ModelInput::from_batch(&batch, &device).with_row_groups(sizes.to_vec());
    let frozen = input.clone().with_frozen_parameters();
    // The same rows (the same seed) and two more: one new video, one seen (row 3's).
    let mut longer = requests(&schema, &[4, 5], 41);
    same_video(&mut longer, &plan, 0, 2);
    same_video(&mut longer, &plan, 1, 5);
    same_video(&mut longer, &plan, 3, 8);
    let longer_input = ModelInput::from_batch(&longer, &device).with_row_groups(vec![4, 5]);

    let embedding = FeatureEmbedding::new(&schema, 4, &device).unwrap();
    let layer = LinearConfig::new(embedding.input_dim(), 5).init(&device);
    let bank_weight = Param::from_tensor(Tensor::<3>::random(
        [3, embedding.input_dim(), 2],
        Distribution::Normal(0.0, 0.5),
        &device,
    ));
    let bank_bias = Tensor::<3>::random([3, 1, 2], Distribution::Normal(0.0, 0.5), &device);
    let split = |input: &ModelInput| match embedding.forward(input) {
        Rows::Split(rows) => rows,
        Rows::Plain(_) => panic!("a grouped input with shared slots is split"),
    };
    let linear = |input: &ModelInput| to_vec(&split(input).linear(&layer));
    let batched = |input: &ModelInput| {
        let y = split(input).batched(&bank_weight, bank_bias.clone());
        let [n, b, out] = y.dims();
        to_vec(&y.reshape([n * b, out]))
    };
    let expected = (linear(&input), batched(&input));
    let expected_longer = (linear(&longer_input), batched(&longer_input));
    let kept = &embedding.varying_projections;
    assert_eq!((kept.kept_inputs(), kept.computed_rows()), (0, 0), "nothing kept unfrozen");

    assert_eq!(linear(&frozen), expected.0, "first call");
    assert_eq!((kept.kept_inputs(), kept.computed_rows()), (5, 5), "each distinct video once");
    assert_eq!(batched(&frozen), expected.1, "first call of the expert bank");
    assert_eq!(kept.computed_rows(), 10, "once more for the second layer");
    assert_eq!(linear(&frozen), expected.0, "second call");
    assert_eq!(batched(&frozen), expected.1, "second call of the expert bank");
    assert_eq!(kept.computed_rows(), 10, "a second call copies every product");

    let longer_frozen = longer_input.clone().with_frozen_parameters();
    assert_eq!(linear(&longer_frozen), expected_longer.0, "two more rows");
    assert_eq!(batched(&longer_frozen), expected_longer.1, "two more rows, expert bank");
    assert_eq!((kept.kept_inputs(), kept.computed_rows()), (6, 12), "only the new video");

    // Bounded: the first two videos are kept, the others computed at every call.
    let mut bounded = embedding.clone();
    bounded.varying_projections = VaryingProjections::with_limit(2);
    let bounded_linear = || match bounded.forward(&frozen) {
        Rows::Split(rows) => to_vec(&rows.linear(&layer)),
        Rows::Plain(_) => unreachable!(),
    };
    assert_eq!(bounded_linear(), expected.0, "bounded, first call");
    let counts =
        || (bounded.varying_projections.kept_inputs(), bounded.varying_projections.computed_rows());
    // Rows 0 and 1 kept (row 2 and 5 repeat them); rows 3, 4 and 6 beyond the bound.
    assert_eq!(counts(), (2, 5));
    assert_eq!(bounded_linear(), expected.0, "bounded, second call");
    assert_eq!(counts(), (2, 8), "the rows beyond the bound again, the kept ones copied");
}

/// The column embeddings of one served model number a call's rows once, by the model's
/// numbering (`VaryingNumbering`), not each by its own: the model's numbering holds the distinct
/// videos, each embedding's own holds none, and each embedding still computes every distinct
/// video once per first layer and copies it afterwards, with the outputs of the model without
/// the promise.
#[test]
fn the_embeddings_of_a_served_model_share_one_numbering() {
    use seesaw_models::registry::Network;

    let schema = mixed_schema();
    let plan = mixed_plan(&schema);
    let device = Device::flex();
    let sizes = [4, 3];
    let mut batch = requests(&schema, &sizes, 43);
    same_video(&mut batch, &plan, 0, 2);
    same_video(&mut batch, &plan, 1, 5);
    let input = grouped(&ModelInput::from_batch(&batch, &device), &sizes);
    let cfg = config(Architecture::CrossStitch(CrossStitchConfig { hidden: vec![8] }));
    let model = build(&cfg, &schema, &device);
    let expected = outputs(&model.forward(&input));
    let Network::CrossStitch(network) = &model.network else { unreachable!() };
    let embeddings: Vec<_> = network.columns.iter().map(|c| &c.embedding).collect();
    assert!(embeddings.len() > 1, "one embedding per task column");

    let frozen = input.clone().with_frozen_parameters();
    for call in ["first", "second"] {
        assert_eq!(outputs(&model.forward(&frozen)), expected, "{call} frozen call");
        assert_eq!(model.varying_numbering.kept_inputs(), 5, "{call}: five distinct videos");
        for (i, embedding) in embeddings.iter().enumerate() {
            let kept = &embedding.varying_projections;
            assert_eq!(kept.kept_inputs(), 0, "{call}: embedding {i} numbers nothing itself");
            assert_eq!(kept.computed_rows(), 5, "{call}: embedding {i} computes each video once");
        }
    }

    // Another model numbers other videos first; then the input the first model numbered must
    // be numbered by the second model's numbering, not read with the first one's numbers.
    let other = build(&cfg, &schema, &device);
    let others = grouped(&ModelInput::from_batch(&requests(&schema, &[6], 44), &device), &[6]);
    let others_expected = outputs(&other.forward(&others));
    let expected = outputs(&other.forward(&input));
    assert_eq!(outputs(&other.forward(&others.with_frozen_parameters())), others_expected);
    assert_eq!(outputs(&other.forward(&frozen)), expected, "the second model's own numbers");
}
