//! The kuairec and watch-history presets on small files in their layouts, and the split and
//! filter strategies on a log whose answer is known.

use std::path::{Path, PathBuf};

use seesaw_data::dataset::prepare;
use seesaw_data::presets::preset;
use seesaw_data::spec::{DatasetSpec, SplitSpec};
use seesaw_data::split::Part;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn kuairec_matrix_with_float_dates_and_list_categories() {
    let dir = tempfile::tempdir().unwrap();
    let log = write(
        dir.path(),
        "small_matrix.csv",
        "user_id,video_id,play_duration,video_duration,time,date,timestamp,watch_ratio\n\
         14,148,4381,6067,2020-07-05 05:27:48.378,20200705.0,1593898068.378,0.722103\n\
         14,183,11635,6100,2020-07-05 05:28:00.057,20200705.0,1593898080.057,1.907377\n\
         14,3649,22422,10867,2020-07-05 05:29:09.479,20200705.0,1593898149.479,2.063311\n\
         19,148,100,6067,2020-07-06 05:29:09.479,20200706.0,1593984549.479,0.016482\n\
         19,183,0,0,,,,\n",
    );
    let categories = write(
        dir.path(),
        "item_categories.csv",
        "video_id,feat\n148,[8]\n183,\"[27, 9]\"\n3649,[9]\n",
    );
    let mut spec = preset("kuairec").unwrap();
    spec.log.path = Some(log);
    spec.users = None;
    spec.videos.as_mut().unwrap().path = Some(categories);
    spec.split = SplitSpec::Random { seed: 1, valid_fraction: 0.25, test_fraction: 0.0 };
    let data = prepare(&spec).unwrap();
    assert_eq!(data.report.rows_read, 5);
    assert_eq!(data.report.rows_kept, 4);
    assert_eq!(data.report.dropped.values().sum::<u64>(), 1);
    // "[27, 9]" splits into 27 and 9; both, with 8, are in the category vocabulary.
    assert_eq!(data.report.vocabulary["category"], 4);
    assert!(
        (data.report.label_means["watch_ratio"] - (0.722103 + 1.0 + 1.0 + 0.016482) / 4.0).abs()
            < 1e-6
    );
    assert_eq!(data.day[0], 20200705);
}

#[test]
fn watch_history_takes_durations_from_the_content_table() {
    let dir = tempfile::tempdir().unwrap();
    let mut history = String::from("user_id,content_id,watch_date,watch_time\n");
    // u1 watches 12 titles (kept: more than ten), u2 watches 3 (filtered out).
    for i in 0..12 {
        history.push_str(&format!("u1,c{},2023-01-{:02},{}\n", i % 3, i + 1, 10 + i));
    }
    for i in 0..3 {
        history.push_str(&format!("u2,c{i},2023-02-01,5\n"));
    }
    let log = write(dir.path(), "watch_history.csv", &history);
    let content = write(
        dir.path(),
        "content.csv",
        "content_id,genre,content_rating,duration\nc0,Drama|Crime,TV-MA,40\nc1,Comedy,TV-14,20\nc2,Drama,PG,100\n",
    );
    let users = write(dir.path(), "users.csv", "user_id,age,gender\nu1,34,F\nu2,19,M\n");
    let mut spec = preset("watch-history").unwrap();
    spec.log.path = Some(log);
    spec.videos.as_mut().unwrap().path = Some(content);
    spec.users.as_mut().unwrap().path = Some(users);
    spec.videos.as_mut().unwrap().features[0].separator = "|".into();
    let data = prepare(&spec).unwrap();
    assert_eq!(data.report.rows_read, 15);
    assert_eq!(data.report.dropped["user_below_min_interactions"], 3);
    assert_eq!(data.report.rows_kept, 12);
    // c1 (20 minutes) watched for 11, 14, 17 and 20 minutes: ratios 0.55, 0.7, 0.85, 1.0.
    let c1_rows: Vec<usize> =
        (0..data.len()).filter(|&r| data.video_keys.token(data.video[r]) == "c1").collect();
    let ratios: Vec<f32> = c1_rows.iter().map(|&r| data.watch_ratio[r]).collect();
    assert_eq!(ratios, [0.55, 0.7, 0.85, 1.0]);
    // Skip at the seed study's fixed 0.5.
    let skip = data.feature_map.task_index("skip").unwrap();
    assert!(c1_rows.iter().all(|&r| data.labels[skip].get(r) == (0.0, true)));
    // The 70/30 random split of the seed study.
    assert_eq!(data.split.valid.len(), 4);
    assert_eq!(data.report.vocabulary["genre"], 4);
}

fn tiny_log(dir: &Path) -> DatasetSpec {
    // Users a (6 rows over days 1..6), b (2 rows), c (1 row); videos x, y.
    let mut text =
        String::from("user_id,video_id,date,time_ms,is_click,play_time_ms,duration_ms\n");
    for day in 1..=6 {
        text.push_str(&format!(
            "a,{},2022010{day},{},1,500,1000\n",
            if day % 2 == 0 { "x" } else { "y" },
            day * 1000
        ));
    }
    text.push_str(
        "b,x,20220101,1500,0,100,1000\nb,y,20220106,6500,0,900,1000\nc,x,20220103,3500,1,10,1000\n",
    );
    let path = write(dir, "log.csv", &text);
    DatasetSpec::from_toml_str(&format!(
        r#"
        [log]
        path = "{}"
        user = "user_id"
        video = "video_id"
        date = "date"
        timestamp = "time_ms"
        play_time = "play_time_ms"
        duration = "duration_ms"
        flags = ["is_click"]
        "#,
        path.display()
    ))
    .unwrap()
}

#[test]
fn temporal_split_puts_the_last_days_in_validation_and_test() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = tiny_log(dir.path());
    spec.split =
        SplitSpec::Temporal { train_end: None, valid_end: None, valid_days: 2, test_days: 1 };
    let data = prepare(&spec).unwrap();
    let days =
        |part| data.split.part(part).iter().map(|&r| data.day[r as usize]).collect::<Vec<_>>();
    assert!(days(Part::Train).iter().all(|&d| d <= 20220103));
    assert_eq!(days(Part::Valid), [20220104, 20220105]);
    assert_eq!(days(Part::Test), [20220106, 20220106]);
    // Explicit end days give the same split.
    spec.split = SplitSpec::Temporal {
        train_end: Some(20220103),
        valid_end: Some(20220105),
        valid_days: 0,
        test_days: 0,
    };
    assert_eq!(prepare(&spec).unwrap().split, data.split);
}

#[test]
fn leave_last_holds_out_each_users_latest_rows() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = tiny_log(dir.path());
    spec.split = SplitSpec::LeaveLast { valid: 1, test: 1 };
    let data = prepare(&spec).unwrap();
    let keyed = |part| {
        data.split
            .part(part)
            .iter()
            .map(|&r| {
                (data.user_keys.token(data.user[r as usize]).to_owned(), data.day[r as usize])
            })
            .collect::<Vec<_>>()
    };
    // a: day 5 validates, day 6 tests; b and c have too few rows and stay in training.
    assert_eq!(keyed(Part::Valid), [("a".to_string(), 20220105)]);
    assert_eq!(keyed(Part::Test), [("a".to_string(), 20220106)]);
    assert_eq!(data.split.train.len(), 7);
}

#[test]
fn random_split_is_seeded_and_sized() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = tiny_log(dir.path());
    spec.split = SplitSpec::Random { seed: 3, valid_fraction: 0.3, test_fraction: 0.2 };
    let a = prepare(&spec).unwrap().split;
    assert_eq!((a.train.len(), a.valid.len(), a.test.len()), (4, 3, 2));
    assert_eq!(prepare(&spec).unwrap().split, a);
    spec.split = SplitSpec::Random { seed: 4, valid_fraction: 0.3, test_fraction: 0.2 };
    assert_ne!(prepare(&spec).unwrap().split, a);
}

#[test]
fn filters_drop_sparse_users_and_videos_and_count_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = tiny_log(dir.path());
    spec.filter.min_user_interactions = 2;
    spec.split = SplitSpec::Random { seed: 0, valid_fraction: 0.1, test_fraction: 0.0 };
    let data = prepare(&spec).unwrap();
    assert_eq!(data.report.dropped["user_below_min_interactions"], 1);
    assert_eq!(data.report.rows_kept, 8);
    spec.filter.min_video_interactions = 5;
    let data = prepare(&spec).unwrap();
    // Counts are taken once, before either filter drops anything: x has 5 rows (a 3, b 1,
    // c 1) and stays; y has 4 (a 3, b 1) and its rows go. c's row counts under the user filter.
    assert_eq!(data.report.dropped["video_below_min_interactions"], 4);
}

#[test]
fn vocabularies_and_normalisers_see_only_training_rows() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = tiny_log(dir.path());
    spec.split = SplitSpec::Temporal {
        train_end: Some(20220102),
        valid_end: None,
        valid_days: 0,
        test_days: 0,
    };
    let data = prepare(&spec).unwrap();
    // Training days 1-2 see users a and b only; c (day 3) is out of vocabulary.
    assert_eq!(data.feature_map.user_id.cardinality(), 3);
    assert_eq!(data.feature_map.user_id.index("c"), 0);
    let valid = data.batch(data.split.part(Part::Valid));
    let c_rows: Vec<usize> =
        (0..valid.size).filter(|&r| data.user_keys.token(valid.user_group[r]) == "c").collect();
    assert_eq!(c_rows.len(), 1);
    assert_eq!(
        valid.categorical[c_rows[0] * valid.n_categorical],
        0,
        "an unseen user takes the OOV index"
    );
}

#[test]
fn skip_strategies_change_the_label_as_documented() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = tiny_log(dir.path());
    spec.split = SplitSpec::Random { seed: 0, valid_fraction: 0.1, test_fraction: 0.0 };
    let rate = |spec: &DatasetSpec| prepare(spec).unwrap().report.label_rates["skip"];
    // Ratios: a 0.5 x6, b 0.1 and 0.9, c 0.01. Fixed 0.5: 0.1 and 0.01 skip → 2/9.
    assert!((rate(&spec) - 2.0 / 9.0).abs() < 1e-12);
    spec.labels.skip = seesaw_data::labels::SkipStrategy::Fixed { threshold: 0.6 };
    assert!((rate(&spec) - 8.0 / 9.0).abs() < 1e-12);
}
