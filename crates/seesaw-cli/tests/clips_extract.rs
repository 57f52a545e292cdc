//! `seesaw clips extract` end to end on a small frame folder, with the tiny ONNX network kept in
//! tests/data (tiny_cnn.onnx, made by make_tiny_cnn.py): a 1x1 convolution, a global average
//! pool and a flatten, so that a frame's features are W · (its mean colour) + b, computable by
//! hand. Frames of one solid colour each; a clip's features are the mean over its frames.

mod common;

use std::path::Path;

use common::seesaw;

const W: [[f64; 3]; 4] = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.5, -0.25, 2.0]];
const B: [f64; 4] = [0.0, 0.1, -0.2, 1.0];

fn model() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/tiny_cnn.onnx")
}

fn write_frame(path: &Path, rgb: [u8; 3]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    image::RgbImage::from_pixel(6, 4, image::Rgb(rgb)).save(path).unwrap();
}

fn expected(colours: &[[u8; 3]]) -> Vec<f64> {
    (0..4)
        .map(|k| {
            let per_frame = colours
                .iter()
                .map(|c| B[k] + (0..3).map(|j| W[k][j] * f64::from(c[j]) / 255.0).sum::<f64>());
            per_frame.sum::<f64>() / colours.len() as f64
        })
        .collect()
}

#[test]
fn clip_features_are_the_networks_mean_output_over_each_clips_frames() {
    let dir = tempfile::tempdir().unwrap();
    let frames = dir.path().join("frames");
    let clips: [(&str, usize, Vec<[u8; 3]>); 4] = [
        ("17", 0, vec![[255, 0, 0], [0, 0, 255]]),
        ("17", 1, vec![[10, 200, 30]]),
        ("5", 0, vec![[0, 0, 0], [255, 255, 255], [128, 64, 32]]),
        ("5", 1, vec![[90, 90, 90]]),
    ];
    for (video, clip, colours) in &clips {
        for (i, c) in colours.iter().enumerate() {
            write_frame(&frames.join(format!("{video}/{clip}/frame{i:03}.png")), *c);
        }
    }
    let out = dir.path().join("clip_features.csv");
    let output = seesaw()
        .args(["clips", "extract", "--onnx"])
        .arg(model())
        .arg("--frames")
        .arg(&frames)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "video_id,clip,f0,f1,f2,f3");
    // Videos in name order ("17" < "5"), clips in index order.
    assert_eq!(lines.len(), 5);
    for ((video, clip, colours), line) in clips.iter().zip(&lines[1..]) {
        let cells: Vec<&str> = line.split(',').collect();
        assert_eq!((cells[0], cells[1]), (*video, clip.to_string().as_str()), "{line}");
        let got: Vec<f64> = cells[2..].iter().map(|c| c.parse().unwrap()).collect();
        for (g, e) in got.iter().zip(expected(colours)) {
            assert!((g - e).abs() < 1e-5, "{line}: {got:?} vs {:?}", expected(colours));
        }
    }
}

#[test]
fn badly_laid_out_frames_are_refused_with_the_folder_named() {
    let dir = tempfile::tempdir().unwrap();
    let run = |frames: &Path| {
        seesaw()
            .args(["clips", "extract", "--onnx"])
            .arg(model())
            .arg("--frames")
            .arg(frames)
            .arg("--out")
            .arg(dir.path().join("out.csv"))
            .output()
            .unwrap()
    };
    let gap = dir.path().join("gap");
    write_frame(&gap.join("1/0/a.png"), [1, 2, 3]);
    write_frame(&gap.join("1/2/a.png"), [1, 2, 3]);
    let named = dir.path().join("named");
    write_frame(&named.join("1/intro/a.png"), [1, 2, 3]);
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(empty.join("1/0")).unwrap();
    for (frames, needle) in [
        (&gap, "without gaps"),
        (&named, "named by their index"),
        (&empty, "no .png or .jpg frames"),
    ] {
        let output = run(frames);
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(needle), "{stderr}");
    }
    assert!(!dir.path().join("out.csv").exists(), "nothing written on failure");
}
