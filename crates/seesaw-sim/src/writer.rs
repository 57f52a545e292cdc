//! Writes a simulated platform as KuaiRand-shaped CSV files plus the ground truth, so that the
//! real-data loaders, models and reports run unchanged on data whose answer is known.
//! Every file goes to a temporary file in the output folder first and is renamed into place
//! only once complete: an interrupted run never leaves a half-written table behind.

use std::fmt::Write as _;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use tempfile::NamedTempFile;

use super::joint::TrueCmi;
use super::normal::{std_normal, unit};
use super::platform::Platform;
use super::side_tables::{self, USER_FEATURES_HEADER, VIDEO_FEATURES_HEADER};
use crate::error::{Result, SimError};

pub const LOG_HEADER: [&str; 19] = [
    "user_id",
    "video_id",
    "date",
    "hourmin",
    "time_ms",
    "is_click",
    "is_like",
    "is_follow",
    "is_comment",
    "is_forward",
    "is_hate",
    "long_view",
    "play_time_ms",
    "duration_ms",
    "profile_stay_time",
    "comment_stay_time",
    "is_profile_enter",
    "is_rand",
    "tab",
];

/// The truth file's first columns: the true probabilities of every label given (user, video,
/// context), then the impression's drawn emotion state and whether the video is objectionable
/// (for DLEN's checks). The joint probabilities of label pairs follow (`truth_header`).
pub const TRUTH_HEADER: [&str; 15] = [
    "user_id",
    "video_id",
    "time_ms",
    "p_click",
    "p_like",
    "p_follow",
    "p_comment",
    "p_forward",
    "p_hate",
    "p_long_view",
    "p_skip",
    "p_complete",
    "p_emotion",
    "emotion",
    "objectionable",
];

pub const LOG_FILE: &str = "log_standard_sim.csv";
pub const USER_FEATURES_FILE: &str = "user_features_sim.csv";
pub const VIDEO_FEATURES_FILE: &str = "video_features_sim.csv";
pub const CLIP_FEATURES_FILE: &str = "clip_features.csv";
pub const TRUTH_FILE: &str = "truth.csv";
/// The true CMI of every label pair given (user, video): `joint::TrueCmiFile`.
pub const TRUE_CMI_FILE: &str = "true_cmi.json";
pub const CONFIG_FILE: &str = "sim_config.json";

/// Where [`write_kuairand`] put each table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimFiles {
    pub log: PathBuf,
    pub user_features: PathBuf,
    pub video_features: PathBuf,
    pub clip_features: PathBuf,
    pub truth: PathBuf,
    pub true_cmi: PathBuf,
    pub config: PathBuf,
}

#[derive(Serialize)]
struct LogRow {
    user_id: u32,
    video_id: u32,
    date: u32,
    hourmin: u32,
    time_ms: i64,
    is_click: u8,
    is_like: u8,
    is_follow: u8,
    is_comment: u8,
    is_forward: u8,
    is_hate: u8,
    long_view: u8,
    play_time_ms: i64,
    duration_ms: i64,
    profile_stay_time: i64,
    comment_stay_time: i64,
    is_profile_enter: u8,
    is_rand: u8,
    tab: u8,
}

fn csv_error(path: &Path, e: csv::Error) -> SimError {
    match e.into_kind() {
        csv::ErrorKind::Io(io) => SimError::io(path, io),
        other => SimError::io(path, std::io::Error::other(format!("{other:?}"))),
    }
}

/// A CSV file being written to a temporary file beside its final path.
struct AtomicCsv {
    path: PathBuf,
    writer: csv::Writer<BufWriter<NamedTempFile>>,
}

impl AtomicCsv {
    fn create(dir: &Path, name: &str, header: &[&str]) -> Result<Self> {
        let path = dir.join(name);
        let tmp = seesaw_data::atomic::temp_file_in(dir).map_err(|e| SimError::io(&path, e))?;
        let mut writer = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(BufWriter::with_capacity(1 << 20, tmp));
        writer.write_record(header).map_err(|e| csv_error(&path, e))?;
        Ok(Self { path, writer })
    }

    /// One record of displayable fields (each printed in its shortest form), without the
    /// intermediate struct `row` needs, for tables whose columns are known only at run time.
    fn record(&mut self, fields: &[&dyn std::fmt::Display], buf: &mut String) -> Result<()> {
        for f in fields {
            buf.clear();
            let _ = write!(buf, "{f}");
            self.writer.write_field(&*buf).map_err(|e| csv_error(&self.path, e))?;
        }
        self.writer.write_record(None::<&[u8]>).map_err(|e| csv_error(&self.path, e))
    }

    fn row(&mut self, row: &impl Serialize) -> Result<()> {
        self.writer.serialize(row).map_err(|e| csv_error(&self.path, e))
    }

    fn commit(self) -> Result<PathBuf> {
        let Self { path, writer } = self;
        let buf = writer
            .into_inner()
            .map_err(|e| SimError::io(&path, std::io::Error::other(e.to_string())))?;
        let tmp = buf.into_inner().map_err(|e| SimError::io(&path, e.into_error()))?;
        tmp.as_file().sync_all().map_err(|e| SimError::io(&path, e))?;
        tmp.persist(&path).map_err(|e| SimError::io(&path, e.error))?;
        Ok(path)
    }
}

/// Bytes the log and truth files take per impression, over-estimated: a log row (72 bytes
/// measured at the defaults) and 13 per truth column (ids, time and probabilities written as
/// shortest round-trip floats, 11–12 bytes each measured). The truth file is most of it (491 of
/// 562 bytes measured), and grows with every column added to it, so the estimate counts them.
fn bytes_per_impression() -> u64 {
    80 + 13 * truth_header().len() as u64
}

/// Refuses to start a simulation whose files would not fit on the disk, rather than writing
/// until the disk is full.
fn check_free_space(out_dir: &Path, n_impressions: u64) -> Result<()> {
    let Some(free) = free_bytes(out_dir) else { return Ok(()) };
    let needed = n_impressions.saturating_mul(bytes_per_impression());
    if needed > free {
        let gb = |b: u64| b as f64 / 1e9;
        return Err(SimError::Config(format!(
            "{} impressions take about {:.1} GB, and {} has {:.1} GB free: simulate fewer, or \
             write elsewhere",
            n_impressions,
            gb(needed),
            out_dir.display(),
            gb(free)
        )));
    }
    Ok(())
}

/// Free bytes on the file system holding `dir`, for an unprivileged writer; None where unknown.
#[cfg(unix)]
fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut stats = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `path` is a valid C string and `stats` a buffer of the right type; statvfs only
    // writes into it, and its contents are read only when the call succeeds.
    let stats = unsafe {
        if libc::statvfs(path.as_ptr(), stats.as_mut_ptr()) != 0 {
            return None;
        }
        stats.assume_init()
    };
    Some((stats.f_bavail as u64).saturating_mul(stats.f_frsize as u64))
}

#[cfg(not(unix))]
fn free_bytes(_dir: &Path) -> Option<u64> {
    None
}

/// [`write_kuairand_with_progress`] without a progress callback.
pub fn write_kuairand(platform: &Platform, out_dir: &Path) -> Result<SimFiles> {
    write_kuairand_with_progress(platform, out_dir, |_| {})
}

/// Writes every table; `progress` is called with the number of log rows written so far, every
/// 65 536 rows and once at the end, so a CLI can drive a progress bar.
pub fn write_kuairand_with_progress(
    platform: &Platform,
    out_dir: &Path,
    mut progress: impl FnMut(u64),
) -> Result<SimFiles> {
    std::fs::create_dir_all(out_dir).map_err(|e| SimError::io(out_dir, e))?;
    // The half-written files of a simulation into this folder that was killed (a kill skips
    // their cleanup), before the free space is counted.
    seesaw_data::atomic::remove_stale_temp_files(out_dir)
        .map_err(|e| SimError::io(out_dir, std::io::Error::other(e)))?;
    check_free_space(out_dir, platform.config().n_impressions)?;
    let world = platform.world();

    // Side tables.
    let mut side = platform.side_rng();
    let mut users = AtomicCsv::create(out_dir, USER_FEATURES_FILE, &USER_FEATURES_HEADER)?;
    for row in side_tables::user_rows(world, &mut side) {
        users.row(&row)?;
    }
    let user_features = users.commit()?;
    let mut videos = AtomicCsv::create(out_dir, VIDEO_FEATURES_FILE, &VIDEO_FEATURES_HEADER)?;
    for row in side_tables::video_rows(world, platform.start_day(), &mut side) {
        videos.row(&row)?;
    }
    let video_features = videos.commit()?;

    // Clip features: the latent clip content vectors themselves.
    let dim = world.videos.dim;
    let header: Vec<String> = ["video_id".to_string(), "clip".to_string()]
        .into_iter()
        .chain((0..dim).map(|i| format!("f{i}")))
        .collect();
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut clips = AtomicCsv::create(out_dir, CLIP_FEATURES_FILE, &header)?;
    let mut field = String::new();
    for v in 0..world.videos.len() {
        for c in 0..world.videos.n_clips {
            let w = &mut clips.writer;
            let path = &clips.path;
            field.clear();
            let _ = write!(field, "{v}");
            w.write_field(&field).map_err(|e| csv_error(path, e))?;
            field.clear();
            let _ = write!(field, "{c}");
            w.write_field(&field).map_err(|e| csv_error(path, e))?;
            for x in world.videos.clip(v, c) {
                field.clear();
                let _ = write!(field, "{x}");
                w.write_field(&field).map_err(|e| csv_error(path, e))?;
            }
            w.write_record(None::<&[u8]>).map_err(|e| csv_error(path, e))?;
        }
    }
    let clip_features = clips.commit()?;

    // Log and truth, in one pass over the stream so they line up row for row.
    let mut log = AtomicCsv::create(out_dir, LOG_FILE, &LOG_HEADER)?;
    let truth_header = truth_header();
    let truth_header: Vec<&str> = truth_header.iter().map(String::as_str).collect();
    let mut truth = AtomicCsv::create(out_dir, TRUTH_FILE, &truth_header)?;
    let mut true_cmi = TrueCmi::new(platform.config().dependence);
    let (mut joint, mut buf) = (Vec::new(), String::new());
    let mut extras = platform.extras_rng();
    let objectionable = &platform.world().videos.objectionable;
    let mut written = 0u64;
    for i in platform.impressions() {
        // Cosmetic columns: profile visits follow follows, comment stay time follows comments.
        let (u_enter, u_stay, z) = (unit(&mut extras), unit(&mut extras), std_normal(&mut extras));
        let is_profile_enter = i.follow || u_enter < 0.012;
        let profile_stay_time =
            if is_profile_enter && u_stay < 0.2 { (8.0 + 1.0 * z).exp() as i64 } else { 0 };
        let comment_stay_time = if i.comment { (8.3 + 0.8 * z).exp() as i64 } else { 0 };
        log.row(&LogRow {
            user_id: i.user,
            video_id: i.video,
            date: i.date,
            hourmin: i.hourmin,
            time_ms: i.time_ms,
            is_click: i.click as u8,
            is_like: i.like as u8,
            is_follow: i.follow as u8,
            is_comment: i.comment as u8,
            is_forward: i.forward as u8,
            is_hate: i.hate as u8,
            long_view: i.long_view as u8,
            play_time_ms: i.play_time_ms,
            duration_ms: i.duration_ms,
            profile_stay_time,
            comment_stay_time,
            is_profile_enter: is_profile_enter as u8,
            is_rand: 0,
            tab: i.tab,
        })?;
        let t = &i.truth;
        true_cmi.add(t.emotion as f64, &i.by_state, &mut joint);
        let (emotion, objectionable) = (i.emotion as u8, objectionable[i.video as usize] as u8);
        let mut fields: Vec<&dyn std::fmt::Display> = vec![
            &i.user,
            &i.video,
            &i.time_ms,
            &t.click,
            &t.like,
            &t.follow,
            &t.comment,
            &t.forward,
            &t.hate,
            &t.long_view,
            &t.skip,
            &t.complete,
            &t.emotion,
            &emotion,
            &objectionable,
        ];
        let joint32: Vec<f32> = joint.iter().map(|&p| p as f32).collect();
        fields.extend(joint32.iter().map(|p| p as &dyn std::fmt::Display));
        truth.record(&fields, &mut buf)?;
        written += 1;
        if written.is_multiple_of(65_536) {
            progress(written);
        }
    }
    let log_path = log.commit()?;
    let truth_path = truth.commit()?;
    progress(written);

    let true_cmi_path = out_dir.join(TRUE_CMI_FILE);
    write_json_atomically(&true_cmi_path, &true_cmi.finish())?;

    let config = out_dir.join(CONFIG_FILE);
    write_json_atomically(&config, platform.config())?;

    Ok(SimFiles {
        log: log_path,
        user_features,
        video_features,
        clip_features,
        truth: truth_path,
        true_cmi: true_cmi_path,
        config,
    })
}

/// Writes `value` as pretty JSON to `path` through a temporary file and a rename.
fn write_json_atomically(path: &Path, value: &impl Serialize) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = seesaw_data::atomic::temp_file_in(dir).map_err(|e| SimError::io(path, e))?;
    let json = serde_json::to_vec_pretty(value)
        .map_err(|e| SimError::Json { path: path.to_path_buf(), message: e.to_string() })?;
    tmp.write_all(&json).map_err(|e| SimError::io(path, e))?;
    tmp.persist(path).map_err(|e| SimError::io(path, e.error))?;
    Ok(())
}

/// The truth file's columns: `TRUTH_HEADER`, then P(a = 1, b = 1 | user, video) of every pair
/// with an exact joint (`joint::label_pairs`), `p_click_and_like`, ...
pub fn truth_header() -> Vec<String> {
    TRUTH_HEADER.iter().map(|s| s.to_string()).chain(TrueCmi::columns()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SimConfig;

    fn lines(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path).unwrap().lines().map(str::to_owned).collect()
    }

    #[cfg(unix)]
    #[test]
    fn a_simulation_larger_than_the_free_disk_is_refused_before_writing() {
        let dir = tempfile::tempdir().unwrap();
        let free = free_bytes(dir.path()).expect("statvfs answers on unix");
        let too_many = free / bytes_per_impression() + 1_000_000;
        let message = check_free_space(dir.path(), too_many).unwrap_err().to_string();
        assert!(message.contains("GB free") && message.contains("simulate fewer"), "{message}");
        check_free_space(dir.path(), 1000).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nothing was written");
    }

    #[test]
    fn the_disk_estimate_covers_what_a_simulation_writes_without_doubling_it() {
        let dir = tempfile::tempdir().unwrap();
        let n = 20_000;
        let cfg = SimConfig { n_impressions: n, ..SimConfig::default() };
        let files = write_kuairand(&Platform::new(&cfg).unwrap(), dir.path()).unwrap();
        let written: u64 =
            [&files.log, &files.truth].iter().map(|f| std::fs::metadata(f).unwrap().len()).sum();
        let estimate = n * bytes_per_impression();
        assert!(
            written <= estimate && 2 * written > estimate,
            "{written} bytes written, {estimate} estimated"
        );
    }

    #[test]
    fn writes_kuairand_shaped_files() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("sim");
        let cfg =
            SimConfig { n_users: 300, n_videos: 200, n_impressions: 5000, ..SimConfig::default() };
        let p = Platform::new(&cfg).unwrap();
        let mut calls = Vec::new();
        let files = write_kuairand_with_progress(&p, &out, |n| calls.push(n)).unwrap();
        assert_eq!(calls.last(), Some(&5000));

        for f in [
            &files.log,
            &files.user_features,
            &files.video_features,
            &files.clip_features,
            &files.truth,
        ] {
            println!("{}:\n{}\n", f.display(), lines(f)[..3].join("\n"));
        }
        let log = lines(&files.log);
        assert_eq!(
            log[0],
            "user_id,video_id,date,hourmin,time_ms,is_click,is_like,is_follow,is_comment,is_forward,is_hate,long_view,play_time_ms,duration_ms,profile_stay_time,comment_stay_time,is_profile_enter,is_rand,tab"
        );
        assert_eq!(log.len(), 5001);
        let users = lines(&files.user_features);
        let mut want = "user_id,user_active_degree,is_lowactive_period,is_live_streamer,is_video_author,follow_user_num,follow_user_num_range,fans_user_num,fans_user_num_range,friend_user_num,friend_user_num_range,register_days,register_days_range".to_string();
        for i in 0..18 {
            want.push_str(&format!(",onehot_feat{i}"));
        }
        assert_eq!(users[0], want);
        assert_eq!(users.len(), 301);
        // Ranges with commas are quoted, so every row parses to the header's width.
        let mut rdr = csv::Reader::from_path(&files.user_features).unwrap();
        for r in rdr.records() {
            assert_eq!(r.unwrap().len(), 31);
        }
        let videos = lines(&files.video_features);
        assert_eq!(
            videos[0],
            "video_id,author_id,video_type,upload_dt,upload_type,visible_status,video_duration,server_width,server_height,music_id,music_type,tag"
        );
        assert_eq!(videos.len(), 201);
        let first: Vec<&str> = videos[1].split(',').collect();
        assert!(first[6].ends_with(".0") && first[3].starts_with("2022-04-"), "{}", videos[1]);
        let clips = lines(&files.clip_features);
        assert!(clips[0].starts_with("video_id,clip,f0,f1,") && clips[0].ends_with(",f15"));
        assert_eq!(clips.len(), 1 + 200 * 8);
        assert_eq!(clips[1].split(',').count(), 18);
        let truth = lines(&files.truth);
        assert!(truth[0].starts_with(
            "user_id,video_id,time_ms,p_click,p_like,p_follow,p_comment,p_forward,p_hate,p_long_view,p_skip,p_complete,p_emotion,emotion,objectionable,p_click_and_like,"
        ));
        let width = truth[0].split(',').count();
        assert_eq!(width, 15 + 27);
        assert!(truth.iter().all(|t| t.split(',').count() == width));
        let cmi: crate::joint::TrueCmiFile =
            serde_json::from_slice(&std::fs::read(&files.true_cmi).unwrap()).unwrap();
        assert_eq!((cmi.rows, cmi.pairs.len()), (5000, 27));
        assert!(cmi.pairs.iter().all(|p| p.cmi >= 0.0 && p.cmi < 0.1), "{cmi:?}");
        assert_eq!(truth.len(), log.len());
        for (l, t) in log.iter().zip(&truth).skip(1) {
            let (l, t): (Vec<&str>, Vec<&str>) = (l.split(',').collect(), t.split(',').collect());
            assert_eq!((l[0], l[1], l[4]), (t[0], t[1], t[2]));
        }
        let back: SimConfig =
            serde_json::from_slice(&std::fs::read(&files.config).unwrap()).unwrap();
        assert_eq!(back, cfg);
        // Nothing but the seven files: no temporary files left behind.
        let mut names: Vec<String> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                CLIP_FEATURES_FILE,
                LOG_FILE,
                CONFIG_FILE,
                TRUE_CMI_FILE,
                TRUTH_FILE,
                USER_FEATURES_FILE,
                VIDEO_FEATURES_FILE
            ]
        );
    }

    #[test]
    fn failure_leaves_no_partial_file() {
        let dir = tempfile::tempdir().unwrap();
        // The output folder is a file: nothing can be created, and nothing must appear.
        let blocker = dir.path().join("not_a_dir");
        std::fs::write(&blocker, b"x").unwrap();
        let p = Platform::new(&SimConfig { n_impressions: 10, ..SimConfig::default() }).unwrap();
        assert!(matches!(write_kuairand(&p, &blocker), Err(SimError::Io { .. })));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    /// Release-mode measurement of the whole writer (log + truth + side tables):
    /// `cargo test --release -p seesaw-sim --lib writer::tests::writer_throughput -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn writer_throughput() {
        let dir = tempfile::tempdir().unwrap();
        let p =
            Platform::new(&SimConfig { n_impressions: 1_000_000, ..SimConfig::default() }).unwrap();
        let start = std::time::Instant::now();
        let files = write_kuairand(&p, dir.path()).unwrap();
        let secs = start.elapsed().as_secs_f64();
        let mb = std::fs::metadata(&files.log).unwrap().len() as f64 / 1e6;
        println!(
            "wrote 1M log+truth rows in {secs:.2} s ({:.0} rows/s, log {mb:.0} MB)",
            1e6 / secs
        );
    }
}
