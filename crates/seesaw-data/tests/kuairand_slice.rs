//! The shared KuaiRand-Pure slice, read with the `kuairand` preset: the counts its README states,
//! asserted exactly.

mod common;

use seesaw_data::cleaning::DropReason;
use seesaw_data::dataset::prepare;
use seesaw_data::split::Part;

#[test]
fn counts_match_the_readme_exactly() {
    let Some(dir) = common::kuairand_dir() else { return };
    let data = prepare(&common::kuairand_spec(&dir)).unwrap();
    let report = &data.report;
    assert_eq!(report.rows_read, 171_671);
    assert_eq!(report.dropped.get(DropReason::DurationNotPositive.as_str()), Some(&2_646));
    assert_eq!(report.users, 24_076);
    assert_eq!(report.videos, 6_075);
    // The README's rates are over the file as read; the kept-row rates differ because the
    // zero-duration rows and repeated impressions are gone.
    assert_eq!(format!("{:.4}", report.label_rates_read["click"]), "0.4433");
    assert_eq!(format!("{:.4}", report.label_rates_read["long_view"]), "0.3119");
    // 4,739 rows repeat an earlier (user, video, time_ms): logging duplicates.
    assert_eq!(report.dropped.get(DropReason::DuplicateImpression.as_str()), Some(&4_739));
    assert_eq!(report.rows_kept, 171_671 - 2_646 - 4_739);
    assert_eq!(format!("{:.4}", report.label_rates["click"]), "0.4553");
    assert_eq!(report.users_kept, 24_026);
    // Temporal split: the last two days (05-03, 05-04) validate.
    assert_eq!(report.split["train"] + report.split["valid"], report.rows_kept as usize);
    assert!(
        data.day
            .iter()
            .zip(0..)
            .all(|(&d, r)| (d >= 20220503) == data.split.valid.binary_search(&r).is_ok())
    );
}

#[test]
fn batches_carry_every_slot_and_task() {
    let Some(dir) = common::kuairand_dir() else { return };
    let data = prepare(&common::kuairand_spec(&dir)).unwrap();
    let batch = data.batches(Part::Train, 512, Some(7)).next().unwrap();
    assert_eq!(batch.size, 512);
    assert_eq!(batch.categorical.len(), 512 * data.schema.categorical.len());
    assert_eq!(batch.dense.len(), 512 * data.schema.dense.len());
    assert_eq!(batch.labels.len(), 512 * data.feature_map.tasks.len());
    for (slot, c) in data.schema.categorical.iter().enumerate() {
        assert!(
            batch
                .categorical
                .iter()
                .skip(slot)
                .step_by(batch.n_categorical)
                .all(|&i| (i as usize) < c.cardinality)
        );
    }
    assert!(batch.dense.iter().all(|v| v.is_finite()));
    let tasks: Vec<&str> = data.feature_map.tasks.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        tasks,
        [
            "click",
            "like",
            "follow",
            "comment",
            "forward",
            "hate",
            "long_view",
            "watch_ratio",
            "skip"
        ]
    );
    // Same seed, same batches.
    let again = data.batches(Part::Train, 512, Some(7)).next().unwrap();
    assert_eq!(batch, again);
}

#[test]
fn streaming_through_the_saved_feature_map_encodes_like_the_in_memory_path() {
    use seesaw_data::feature_map::FeatureMap;
    use seesaw_data::streaming::{EncodedSideTables, StreamingBatches};
    let Some(dir) = common::kuairand_dir() else { return };
    let spec = common::kuairand_spec(&dir);
    let data = prepare(&spec).unwrap();
    // Round-trip the feature map through JSON, as a model directory would.
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("feature_map.json");
    data.feature_map.save(&path).unwrap();
    let map = FeatureMap::load(&path).unwrap();
    assert_eq!(map, data.feature_map);

    let tables = EncodedSideTables::load(&map).unwrap();
    let log = spec.log.path.as_ref().unwrap();
    // One chunk holding the whole file: deduplication sees every row, so the rows must agree.
    let mut stream = StreamingBatches::open(&map, &tables, log, 200_000).unwrap();
    let streamed = stream.next().unwrap().unwrap();
    assert!(stream.next().is_none());
    let all: Vec<u32> = (0..data.len() as u32).collect();
    let in_memory = data.batch(&all);
    assert_eq!(streamed.size, in_memory.size);
    assert_eq!(streamed.categorical, in_memory.categorical);
    assert_eq!(streamed.dense, in_memory.dense);
    assert_eq!(streamed.multi, in_memory.multi);
    assert_eq!(streamed.labels, in_memory.labels);
    assert_eq!(streamed.masks, in_memory.masks);

    // Small chunks: bounded batches, and every row read is accounted for.
    let mut stream = StreamingBatches::open(&map, &tables, log, 4096).unwrap();
    let mut rows = 0;
    for batch in stream.by_ref() {
        let batch = batch.unwrap();
        assert!(batch.size <= 4096);
        rows += batch.size as u64;
    }
    assert_eq!(stream.rows_read(), 171_671);
    assert_eq!(rows + stream.dropped().total(), 171_671);
    assert!(
        rows >= data.len() as u64,
        "chunked deduplication can only miss repeats, not invent drops"
    );
}

#[test]
fn a_streamed_fit_matches_the_in_memory_fit_and_an_epoch_holds_every_training_row() {
    use seesaw_data::batch::Batch;
    use seesaw_data::feature_map::Encoding;
    use seesaw_data::streamed_dataset::StreamedDataset;
    use seesaw_data::training_data::TrainingData;
    let Some(dir) = common::kuairand_dir() else { return };
    let spec = common::kuairand_spec(&dir);
    let memory = prepare(&spec).unwrap();
    let streamed = StreamedDataset::fit(&spec, 20_000).unwrap();
    assert_eq!(streamed.rows_read, 171_671);
    // Repeats are removed within 65,536-row chunks; in this slice none is split across two.
    assert_eq!(streamed.dropped.total(), memory.report.rows_read - memory.report.rows_kept);
    for part in [Part::Train, Part::Valid, Part::Test] {
        assert_eq!(streamed.part_len(part), memory.split.part(part).len(), "{part:?}");
    }
    let (a, b) = (streamed.feature_map(), &memory.feature_map);
    assert_eq!((&a.user_id, &a.video_id), (&b.user_id, &b.video_id));
    assert_eq!(a.tasks, b.tasks);
    assert_eq!(a.skip, b.skip);
    for (x, y) in a.features.iter().zip(&b.features) {
        assert_eq!((&x.name, x.source), (&y.name, y.source));
        match (&x.encoding, &y.encoding) {
            (Encoding::Numeric { numeric: p }, Encoding::Numeric { numeric: q }) => {
                let close = |u: f64, v: f64| (u - v).abs() <= 1e-9 * v.abs().max(1.0);
                assert!(close(p.mean, q.mean) && close(p.std, q.std), "{}: {p:?} {q:?}", x.name);
            }
            (p, q) => assert_eq!(p, q, "{}", x.name),
        }
    }

    // One shuffled epoch holds each training row once: the same multiset of rows as in memory.
    let key = |b: &Batch, r: usize| -> (Vec<u32>, Vec<u32>) {
        let cats = b.categorical[r * b.n_categorical..(r + 1) * b.n_categorical].to_vec();
        let labels = (0..b.n_tasks).map(|k| b.label(k)[r].to_bits()).collect();
        (cats, labels)
    };
    let rows_of = |batches: &mut dyn Iterator<Item = Batch>| {
        let mut rows = Vec::new();
        let mut sizes = Vec::new();
        for b in batches {
            sizes.push(b.size);
            rows.extend((0..b.size).map(|r| key(&b, r)));
        }
        rows.sort();
        (rows, sizes)
    };
    let (epoch, sizes) =
        rows_of(&mut streamed.batches(Part::Train, 512, Some(7)).map(Result::unwrap));
    assert_eq!(epoch.len(), streamed.part_len(Part::Train));
    assert!(sizes[..sizes.len() - 1].iter().all(|&s| s == 512), "only the last batch is short");
    let (in_memory, _) = rows_of(&mut memory.batches(Part::Train, 512, Some(7)));
    assert_eq!(epoch, in_memory);
    // Shuffled: another seed gives another order of the same rows; unshuffled validation
    // batches come in log order.
    let first = |seed| streamed.batches(Part::Train, 512, Some(seed)).next().unwrap().unwrap();
    assert_ne!(first(7).rows, first(8).rows);
    assert_eq!(first(7), first(7));
    let valid: Vec<u32> =
        streamed.batches(Part::Valid, 1000, None).flat_map(|b| b.unwrap().rows).collect();
    assert!(valid.windows(2).all(|w| w[0] < w[1]));
}
