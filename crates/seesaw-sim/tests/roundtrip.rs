//! The simulator's files read back through the `kuairand` preset: the same rows, clip labels
//! and clip features, and a truth file aligned with the log.

use seesaw_data::dataset::prepare;
use seesaw_data::presets::preset;
use seesaw_data::split::Part;
use seesaw_sim::{Platform, SimConfig, write_kuairand};

#[test]
fn the_kuairand_preset_reads_what_the_simulator_writes() {
    let dir = tempfile::tempdir().unwrap();
    let config = SimConfig {
        n_users: 300,
        n_videos: 200,
        n_impressions: 20_000,
        n_clips: 4,
        clip_feature_dim: 3,
        ..SimConfig::default()
    };
    let platform = Platform::new(&config).unwrap();
    let files = write_kuairand(&platform, dir.path()).unwrap();

    let mut spec = preset("kuairand").unwrap();
    spec.log.path = Some(files.log.clone());
    spec.users.as_mut().unwrap().path = Some(files.user_features.clone());
    spec.videos.as_mut().unwrap().path = Some(files.video_features.clone());
    spec.clips.as_mut().unwrap().path = Some(files.clip_features.clone());
    spec.labels.clips = Some(4);
    let data = prepare(&spec).unwrap();
    assert_eq!(data.report.rows_read, 20_000);
    assert_eq!(
        data.report.rows_kept, 20_000,
        "the simulator writes no bad rows: {:?}",
        data.report.dropped
    );
    assert_eq!(data.report.users_without_features, 0);
    assert_eq!(data.report.videos_without_features, 0);
    assert_eq!(data.feature_map.clip_feature_dim, Some(3));
    let clip_table = data.clips.as_ref().unwrap();
    assert_eq!(clip_table.missing_clips, 0);

    // Label rates read back equal the impressions' own.
    let impressions: Vec<_> = platform.impressions().collect();
    let like_rate = impressions.iter().filter(|i| i.like).count() as f64 / impressions.len() as f64;
    assert!((data.report.label_rates["like"] - like_rate).abs() < 1e-12);

    // Clip labels agree with where the simulated viewer left.
    let batch = data.batches(Part::Train, 256, None).next().unwrap();
    let clips = batch.clips.as_ref().unwrap();
    assert_eq!(clips.labels.len(), 256 * 4);
    assert_eq!(clips.features.len(), 256 * 4 * 3);
    for (r, &row) in batch.rows.iter().enumerate() {
        let impression = &impressions[row as usize];
        let labelled: Vec<(f32, f32)> =
            (0..4).map(|c| (clips.labels[r * 4 + c], clips.masks[r * 4 + c])).collect();
        match impression.skip_clip {
            None => assert!(labelled.iter().all(|&(y, m)| y == 1.0 && m == 1.0), "{labelled:?}"),
            Some(k) => {
                // The ratio's clip is the skip clip, except a stop exactly on a clip boundary.
                let k = k as usize;
                assert!(labelled[..k.min(4)].iter().all(|&(y, m)| y == 1.0 && m == 1.0) || k == 0);
                let skip = labelled.iter().position(|&(y, m)| y == 0.0 && m == 1.0);
                assert!(matches!(skip, Some(s) if s == k || s + 1 == k), "{k} vs {labelled:?}");
            }
        }
        // Clip features are the video's own rows of the clip file.
        let video = impression.video as usize;
        let expected = platform.world().videos.clip(video, 0);
        assert!((clips.features[r * 12] - expected[0]).abs() < 1e-4);
    }

    // The truth file has one row per log row, in the same order.
    let truth = std::fs::read_to_string(&files.truth).unwrap();
    let log = std::fs::read_to_string(&files.log).unwrap();
    assert_eq!(truth.lines().count(), log.lines().count());
    for (t, l) in truth.lines().zip(log.lines()).skip(1).take(100) {
        let t: Vec<&str> = t.split(',').collect();
        let l: Vec<&str> = l.split(',').collect();
        assert_eq!((t[0], t[1], t[2]), (l[0], l[1], l[4]));
    }
}
