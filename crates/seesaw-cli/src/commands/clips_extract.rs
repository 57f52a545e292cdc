//! `seesaw clips extract --onnx MODEL --frames DIR --out FILE`: clip feature vectors from video
//! frames, for FRAME. Runs a user-supplied image network (ONNX, through tract: pure Rust, nothing
//! downloaded) over every frame of every clip and averages its outputs per clip.
//!
//! The frames are laid out as `DIR/<video_id>/<clip>/<frame>.{png,jpg,jpeg}`, clips numbered from
//! 0. Each frame goes in as one RGB image, values in [0, 1], shape [1, 3, H, W]: the model's own
//! H and W when it fixes them (the frame is resized to them), else the frame's size; a model
//! that expects another normalisation should do it in its first layer. The output is flattened
//! to one vector per frame. The file written is the clip feature table the dataset spec reads:
//! `video_id,clip,f0,..,f{d-1}`, one line per clip, videos in name order.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::Factoid;
use tract_onnx::tract_hir::internal::DimLike;

use crate::progress;

#[derive(Args, Debug)]
pub struct ClipsExtractArgs {
    /// The image network, an ONNX file with one input [1, 3, H, W] and one output.
    #[arg(long)]
    pub onnx: PathBuf,
    /// Frames as DIR/<video_id>/<clip>/<frame>.png (or .jpg).
    #[arg(long)]
    pub frames: PathBuf,
    /// The clip feature CSV to write.
    #[arg(long)]
    pub out: PathBuf,
}

/// One clip's frames, in name order.
struct Clip {
    video: String,
    index: usize,
    frames: Vec<PathBuf>,
}

pub fn run(args: ClipsExtractArgs) -> Result<()> {
    let clips = list_clips(&args.frames)?;
    let net = Network::load(&args.onnx)?;
    let n_frames: usize = clips.iter().map(|c| c.frames.len()).sum();
    let bar = progress::bar(n_frames as u64, "frames");
    let mut rows: Vec<(String, usize, Vec<f32>)> = Vec::with_capacity(clips.len());
    let mut width = None;
    for clip in &clips {
        let mut sum: Vec<f64> = Vec::new();
        for frame in &clip.frames {
            let features = net.features(frame)?;
            if *width.get_or_insert(features.len()) != features.len() {
                bail!(
                    "{}: the model gave {} features for this frame, {} for earlier ones",
                    frame.display(),
                    features.len(),
                    width.unwrap_or(0)
                );
            }
            if sum.is_empty() {
                sum = vec![0.0; features.len()];
            }
            for (s, f) in sum.iter_mut().zip(&features) {
                *s += f64::from(*f);
            }
            bar.inc(1);
        }
        let n = clip.frames.len() as f64;
        rows.push((clip.video.clone(), clip.index, sum.iter().map(|s| (s / n) as f32).collect()));
    }
    bar.finish_and_clear();
    let d = width.unwrap_or(0);
    seesaw_data::atomic::write_with(&args.out, |file| {
        let mut out = csv::Writer::from_writer(std::io::BufWriter::new(file));
        let header = ["video_id".to_string(), "clip".to_string()]
            .into_iter()
            .chain((0..d).map(|i| format!("f{i}")));
        out.write_record(header)?;
        for (video, index, features) in &rows {
            let mut record = vec![video.clone(), index.to_string()];
            record.extend(features.iter().map(f32::to_string));
            out.write_record(&record)?;
        }
        out.flush()
    })
    .with_context(|| format!("writing {}", args.out.display()))?;
    println!(
        "{} clips of {} videos ({} frames), {} features each, written to {}",
        rows.len(),
        clips.iter().map(|c| &c.video).collect::<std::collections::BTreeSet<_>>().len(),
        n_frames,
        d,
        args.out.display()
    );
    Ok(())
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut entries = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<Vec<_>>>()
        .with_context(|| format!("reading {}", dir.display()))?;
    entries.sort();
    Ok(entries)
}

/// Every clip folder under `root`, checked: clip folders named 0, 1, ..., each with frames.
fn list_clips(root: &Path) -> Result<Vec<Clip>> {
    let mut clips = Vec::new();
    for video_dir in sorted_entries(root)?.into_iter().filter(|p| p.is_dir()) {
        let video = video_dir.file_name().unwrap_or_default().to_string_lossy().into_owned();
        let mut indices = Vec::new();
        for clip_dir in sorted_entries(&video_dir)?.into_iter().filter(|p| p.is_dir()) {
            let name = clip_dir.file_name().unwrap_or_default().to_string_lossy().into_owned();
            let index: usize = name.parse().with_context(|| {
                format!("{}: clip folders are named by their index (0, 1, ...)", clip_dir.display())
            })?;
            let frames: Vec<PathBuf> = sorted_entries(&clip_dir)?
                .into_iter()
                .filter(|p| {
                    p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                        matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg")
                    })
                })
                .collect();
            if frames.is_empty() {
                bail!("{}: no .png or .jpg frames in this clip folder", clip_dir.display());
            }
            indices.push(index);
            clips.push(Clip { video: video.clone(), index, frames });
        }
        indices.sort_unstable();
        if indices.iter().enumerate().any(|(i, &c)| i != c) {
            bail!(
                "{}: clips must be numbered 0..N without gaps, found {indices:?}",
                video_dir.display()
            );
        }
    }
    if clips.is_empty() {
        bail!("{}: no <video_id>/<clip>/ folders with frames", root.display());
    }
    clips.sort_by(|a, b| (&a.video, a.index).cmp(&(&b.video, b.index)));
    Ok(clips)
}

type Plan = TypedRunnableModel<TypedModel>;

/// The ONNX model, optimised once per input size.
struct Network {
    model: InferenceModel,
    /// H and W when the model fixes them.
    fixed_size: Option<(usize, usize)>,
    plans: std::cell::RefCell<HashMap<(usize, usize), std::rc::Rc<Plan>>>,
    path: PathBuf,
}

impl Network {
    fn load(path: &Path) -> Result<Self> {
        let model = tract_onnx::onnx()
            .model_for_path(path)
            .map_err(|e| anyhow::anyhow!("{e:?}"))
            .with_context(|| format!("reading the ONNX model {}", path.display()))?;
        let fact = model.input_fact(0).map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let dims: Vec<Option<usize>> = (0..4)
            .map(|i| fact.shape.dim(i).and_then(|d| d.concretize()).and_then(|d| d.to_usize().ok()))
            .collect();
        let fixed_size = match (dims.get(2).copied().flatten(), dims.get(3).copied().flatten()) {
            (Some(h), Some(w)) => Some((h, w)),
            _ => None,
        };
        Ok(Self { model, fixed_size, plans: Default::default(), path: path.to_path_buf() })
    }

    fn plan(&self, h: usize, w: usize) -> Result<std::rc::Rc<Plan>> {
        if let Some(plan) = self.plans.borrow().get(&(h, w)) {
            return Ok(plan.clone());
        }
        let plan = self
            .model
            .clone()
            .with_input_fact(0, f32::fact([1, 3, h, w]).into())
            .and_then(|m| m.into_optimized())
            .and_then(|m| m.into_runnable())
            .map_err(|e| anyhow::anyhow!("{e:?}"))
            .with_context(|| {
                format!("preparing {} for [1, 3, {h}, {w}] inputs", self.path.display())
            })?;
        let plan = std::rc::Rc::new(plan);
        self.plans.borrow_mut().insert((h, w), plan.clone());
        Ok(plan)
    }

    /// The model's output for one frame, flattened.
    fn features(&self, frame: &Path) -> Result<Vec<f32>> {
        let image = image::open(frame)
            .with_context(|| format!("reading the frame {}", frame.display()))?
            .to_rgb8();
        let image = match self.fixed_size {
            Some((h, w)) if (image.height() as usize, image.width() as usize) != (h, w) => {
                image::imageops::resize(
                    &image,
                    w as u32,
                    h as u32,
                    image::imageops::FilterType::Triangle,
                )
            }
            _ => image,
        };
        let (h, w) = (image.height() as usize, image.width() as usize);
        let mut chw = vec![0.0f32; 3 * h * w];
        for (x, y, pixel) in image.enumerate_pixels() {
            for c in 0..3 {
                chw[c * h * w + y as usize * w + x as usize] = f32::from(pixel[c]) / 255.0;
            }
        }
        let input =
            Tensor::from_shape(&[1, 3, h, w], &chw).map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let outputs = self
            .plan(h, w)?
            .run(tvec!(input.into()))
            .map_err(|e| anyhow::anyhow!("{e:?}"))
            .with_context(|| format!("running the model on {}", frame.display()))?;
        let view = outputs[0].to_array_view::<f32>().map_err(|e| anyhow::anyhow!("{e:?}"))?;
        Ok(view.iter().copied().collect())
    }
}
