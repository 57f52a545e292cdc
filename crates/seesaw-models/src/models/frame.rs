//! FRAME (Shang, Gao, Chen, Jin, Wang, Li, SIGIR 2023, "Learning Fine-grained User Interests for
//! Micro-video Recommendation"): each video is N_c clips; where a user leaves a video says which
//! clip they did not want.
//!
//! - **Graphs** (fitted state, from the training split only): a positive user–clip graph (the
//!   clips a user watched through) and a negative one (the clip in which the user left), both
//!   read off the clip labels seesaw-data derives (clip i is watched when the watch ratio reaches
//!   (i+1)/N_c; the clip holding the stop position is the skip clip). Stored as sorted edge lists
//!   with multiplicities; never a dense users × clips matrix. The out-of-vocabulary user and
//!   video (index 0) get no edge.
//! - **Clip nodes** start from H⁰: the clip features (`raw`), their transform act(xW + b)
//!   (`linear`, the paper's), or a free embedding per clip (`none`: no visual features).
//! - **Graph convolution** (users have no free embedding), per round l = 1..gcn_layers:
//!   U±ˡ = act(Ã± Cˡ⁻¹ W±ˡ) and Cˡ = ½(act(Ã₊ᵀ U₊ˡ V₊ˡ) + act(Ã₋ᵀ U₋ˡ V₋ˡ)), with C⁰ = H⁰ and
//!   Ã the normalised adjacency (`symmetric`: count/√(d_u d_c), the paper's; `row`: count/d_u,
//!   the authors' code). Aggregation is a gather of the edge sources and a scatter-add into the
//!   destinations, so a step costs O(edges × width). A user unseen in training has no edge: with
//!   relu or tanh both user vectors are exactly 0 and the row scores through the clip side alone.
//! - **Scores**: clip i of the row's video gets s_i = α_p·MLP₊(u₊ ‖ c_i) − α_n·MLP₋(u₋ ‖ c_i)
//!   (a logit of continuing through the clip); the video logit is their mean (paper) or their
//!   sum (the authors' code, σ(Σ s_i)). The task named `video_task` (default `watch_through`)
//!   is the video logit; every other task reads a tower on [u₊ ‖ u₋ ‖ mean_i c_i ‖ s]. The clip
//!   logits are extra scores `clip_0 .. clip_{N_c−1}` (probability of watching through each clip).
//! - **Loss**: the per-task losses, plus `clip_bce` (position-weighted BCE on the clip labels:
//!   weight (i+1)/N_c for the i-th watched clip, 1 for the skip clip) and `bpr`
//!   (−ln σ(s_watched − s_skip): by default within each video, the mean logit of its watched
//!   clips against its skip clip; `bpr_scope = "batch"` takes every watched × skip clip pair of
//!   the batch, as the authors' code does).
//!
//! The authors' code differs from the paper in several places; each is an option here, the paper's
//! version the default: row normalisation (`normalization = "row"`), only the positive branch
//! (`alpha_p = 1, alpha_n = 0`), σ(Σ clip logits) (`video_score = "sum"`), batch-wide BPR
//! (`bpr_scope = "batch"`), one GCN weight for both graphs (`share_gcn_weights`), a trainable
//! clip table initialised from the features (`trainable_features`), and a per-row weight (the
//! watched fraction, times 0.3) on positive clips (`clip_weighting = "watched_fraction"`).

use std::sync::Arc;

use burn::module::{Module, Param};
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::tensor::activation::{relu, sigmoid, tanh};
use burn::tensor::{Device, IndexingUpdateOp, Int, Tensor, TensorData};
use seesaw_data::batch::Batch;
use seesaw_data::feature_map::{FeatureSchema, FeatureSource, TaskKind};
use serde::{Deserialize, Serialize};

use crate::blocks::Tower;
use crate::context::{FittedState, ModelContext};
use crate::contract::{ArchitectureConfig, TaskModel};
use crate::error::{ModelError, Result, invalid};
use crate::heads::TaskHeads;
use crate::input::ModelInput;
use crate::loss::{LossTerms, bce_with_logits};
use crate::models::check_layers;
use crate::outputs::{ExtraScore, ModelOutputs, OutputKind, TaskOutput};
use crate::targets::ModelTargets;

/// How clip nodes start (H⁰).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClipFeatures {
    /// No visual features: a free embedding per clip (the paper's "without visual features").
    None,
    /// The clip features as they are.
    Raw,
    /// act(x W + b): the paper's transformed features.
    Linear,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    Relu,
    Sigmoid,
    Tanh,
}

impl Activation {
    fn apply<const D: usize>(self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Activation::Relu => relu(x),
            Activation::Sigmoid => sigmoid(x),
            Activation::Tanh => tanh(x),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Normalization {
    /// count / √(deg_user · deg_clip), in both directions (the paper's).
    Symmetric,
    /// count / deg_user, in both directions (the authors' code: a row-normalised matrix and its
    /// transpose).
    Row,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VideoScore {
    /// The video logit is the mean of the clip logits (the paper's).
    Mean,
    /// The sum of the clip logits (the authors' code).
    Sum,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClipWeighting {
    /// The data's position weights: (i+1)/N_c for the i-th watched clip, 1 for the skip clip.
    Position,
    /// The authors' code: every watched clip of a row weighted 0.3 × (watched clips / N_c), the
    /// skip clip 1.
    WatchedFraction,
    /// Every labelled clip weighs 1.
    Uniform,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BprScope {
    /// Per row: the mean logit of the watched clips against the skip clip of the same video.
    Video,
    /// Every watched clip against every skip clip of the batch (at most `bpr_max_per_side` of
    /// each, the first in batch order), as in the authors' code.
    Batch,
}

/// `kind = "frame"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FrameConfig {
    /// N_c: must equal the dataset's `labels.clips`.
    pub n_clips: usize,
    pub features: ClipFeatures,
    /// The clip feature table is a parameter initialised from the features (the authors' code);
    /// otherwise the features are fixed inputs.
    pub trainable_features: bool,
    /// Width of the clip embeddings and of every graph-convolution layer.
    pub dim: usize,
    pub activation: Activation,
    /// Rounds of user ← clip, clip ← user propagation (the paper: 1).
    pub gcn_layers: usize,
    pub normalization: Normalization,
    pub use_negative_graph: bool,
    /// One set of GCN weights for both graphs (the authors' code).
    pub share_gcn_weights: bool,
    pub alpha_p: f32,
    pub alpha_n: f32,
    /// Hidden layers of the clip-scoring MLPs.
    pub score_hidden: Vec<usize>,
    pub video_score: VideoScore,
    /// The task that is the video score (a binary task); other tasks read a tower.
    pub video_task: String,
    pub clip_weighting: ClipWeighting,
    pub clip_loss_weight: f32,
    pub bpr_weight: f32,
    pub bpr_scope: BprScope,
    pub bpr_max_per_side: usize,
}

impl Default for FrameConfig {
    fn default() -> Self {
        Self {
            n_clips: 4,
            features: ClipFeatures::Linear,
            trainable_features: false,
            dim: 32,
            activation: Activation::Relu,
            gcn_layers: 1,
            normalization: Normalization::Symmetric,
            use_negative_graph: true,
            share_gcn_weights: false,
            alpha_p: 0.8,
            alpha_n: 0.2,
            score_hidden: vec![64],
            video_score: VideoScore::Mean,
            video_task: "watch_through".into(),
            clip_weighting: ClipWeighting::Position,
            clip_loss_weight: 1.0,
            bpr_weight: 1.0,
            bpr_scope: BprScope::Video,
            bpr_max_per_side: 200,
        }
    }
}

/// One bipartite graph: edges sorted by (user, clip node), with multiplicities (a user who saw
/// a video twice).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EdgeList {
    pub users: Vec<u32>,
    /// Clip node = video index × N_c + clip.
    pub clips: Vec<u32>,
    pub counts: Vec<f32>,
}

impl EdgeList {
    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    fn from_pairs(mut pairs: Vec<(u32, u32)>) -> Self {
        pairs.sort_unstable();
        let mut out = EdgeList::default();
        for (u, c) in pairs {
            if out.users.last() == Some(&u) && out.clips.last() == Some(&c) {
                *out.counts.last_mut().expect("an edge was pushed") += 1.0;
            } else {
                out.users.push(u);
                out.clips.push(c);
                out.counts.push(1.0);
            }
        }
        out
    }
}

/// FRAME's fitted state: the two graphs and, when the dataset has clip features, the feature
/// table of the training videos (zeros for the others).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FrameState {
    pub n_users: usize,
    pub n_videos: usize,
    pub n_clips: usize,
    pub feature_dim: usize,
    /// n_videos × n_clips × feature_dim, or empty when there are no features.
    pub features: Vec<f32>,
    pub positive: EdgeList,
    pub negative: EdgeList,
}

/// The user_id and video_id slots of a schema.
fn id_slots(schema: &FeatureSchema) -> Result<(usize, usize)> {
    let find = |name: &str, source: FeatureSource| {
        schema.categorical.iter().position(|c| c.name == name && c.source == source)
    };
    match (find("user_id", FeatureSource::User), find("video_id", FeatureSource::Video)) {
        (Some(u), Some(v)) => Ok((u, v)),
        _ => invalid("frame: the schema has no user_id and video_id slots"),
    }
}

fn config_error(message: impl Into<String>) -> ModelError {
    ModelError::InvalidConfig(message.into())
}

impl FrameConfig {
    /// The clip count of the data, checked against `n_clips`.
    fn check_clips(&self, context: &ModelContext) -> Result<usize> {
        let Some(clips) = context.clips else {
            return invalid(
                "frame: the dataset has no clips; set [dataset.labels] clips = N_c (and give clip \
                 features unless features = \"none\")",
            );
        };
        if clips.n_clips != self.n_clips {
            return invalid(format!(
                "frame: n_clips = {} but the dataset splits videos into {} clips \
                 ([dataset.labels] clips)",
                self.n_clips, clips.n_clips
            ));
        }
        if self.features != ClipFeatures::None && clips.feature_dim == 0 {
            return invalid(
                "frame: features = \"raw\"/\"linear\" need clip features, and the dataset has none \
                 (use features = \"none\")",
            );
        }
        Ok(clips.feature_dim)
    }

    fn n_video_task(&self, context: &ModelContext) -> Result<Option<usize>> {
        let Some(k) = context.tasks.iter().position(|t| t.name == self.video_task) else {
            return Ok(None);
        };
        if context.tasks[k].kind != TaskKind::Binary {
            return invalid(format!(
                "frame: video_task '{}' is not a binary task",
                self.video_task
            ));
        }
        Ok(Some(k))
    }
}

impl ArchitectureConfig for FrameConfig {
    type Model = Frame;

    fn validate(&self) -> Result<()> {
        if self.n_clips == 0 || self.n_clips > 255 {
            return invalid("frame: n_clips must be in 1..=255");
        }
        if self.dim == 0 {
            return invalid("frame: dim must be at least 1");
        }
        if self.gcn_layers == 0 {
            return invalid("frame: gcn_layers must be at least 1");
        }
        check_layers("frame", "score_hidden", &self.score_hidden, true)?;
        for (name, v) in [
            ("alpha_p", self.alpha_p),
            ("alpha_n", self.alpha_n),
            ("clip_loss_weight", self.clip_loss_weight),
            ("bpr_weight", self.bpr_weight),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return invalid(format!("frame: {name} must be a number ≥ 0, got {v}"));
            }
        }
        if self.alpha_p == 0.0 && self.alpha_n == 0.0 {
            return invalid("frame: alpha_p and alpha_n cannot both be 0");
        }
        if self.alpha_n > 0.0 && !self.use_negative_graph {
            return invalid(
                "frame: alpha_n > 0 needs use_negative_graph = true (or set alpha_n = 0)",
            );
        }
        if self.bpr_max_per_side == 0 {
            return invalid("frame: bpr_max_per_side must be at least 1");
        }
        if self.trainable_features && self.features == ClipFeatures::None {
            return invalid("frame: trainable_features needs features = \"raw\" or \"linear\"");
        }
        Ok(())
    }

    fn fit(
        &self,
        context: &ModelContext,
        train: &mut dyn Iterator<Item = Batch>,
    ) -> Result<Option<FittedState>> {
        let feature_dim = self.check_clips(context)?;
        let (user_slot, video_slot) = id_slots(&context.schema)?;
        let n_users = context.schema.categorical[user_slot].cardinality;
        let n_videos = context.schema.categorical[video_slot].cardinality;
        let nc = self.n_clips;
        let width = nc * feature_dim;
        let mut features = vec![0.0f32; if feature_dim > 0 { n_videos * width } else { 0 }];
        let mut seen = vec![false; n_videos];
        let (mut positive, mut negative) = (Vec::new(), Vec::new());
        for batch in train {
            let Some(clips) = &batch.clips else {
                return invalid("frame: the training batches carry no clip labels");
            };
            if clips.n_clips != nc {
                return invalid(format!(
                    "frame: batches have {} clips, the config {nc}",
                    clips.n_clips
                ));
            }
            for r in 0..batch.size {
                let row = &batch.categorical[r * batch.n_categorical..];
                let (user, video) = (row[user_slot], row[video_slot]);
                if video == 0 || video as usize >= n_videos {
                    continue;
                }
                if feature_dim > 0 && clips.dim == feature_dim && !seen[video as usize] {
                    seen[video as usize] = true;
                    features[video as usize * width..][..width]
                        .copy_from_slice(&clips.features[r * width..][..width]);
                }
                if user == 0 || user as usize >= n_users {
                    continue;
                }
                for i in 0..nc {
                    let (label, mask) = (clips.labels[r * nc + i], clips.masks[r * nc + i]);
                    if mask <= 0.0 {
                        continue;
                    }
                    let node = video * nc as u32 + i as u32;
                    if label > 0.5 {
                        positive.push((user, node));
                    } else {
                        negative.push((user, node));
                    }
                }
            }
        }
        let state = FrameState {
            n_users,
            n_videos,
            n_clips: nc,
            feature_dim,
            features,
            positive: EdgeList::from_pairs(positive),
            negative: EdgeList::from_pairs(negative),
        };
        Ok(Some(FittedState(serde_json::to_value(state).expect("the FRAME state serialises"))))
    }

    fn extra_scores(&self) -> Vec<ExtraScore> {
        (0..self.n_clips)
            .map(|i| ExtraScore::clip(format!("clip_{i}"), OutputKind::Logit, i))
            .collect()
    }

    fn init(&self, context: &ModelContext, device: &Device) -> Result<Frame> {
        self.validate()?;
        let feature_dim = self.check_clips(context)?;
        let (user_slot, video_slot) = id_slots(&context.schema)?;
        let Some(fitted) = &context.fitted else {
            return invalid("frame: built without its fitted state (the user–clip graphs)");
        };
        let state: FrameState = serde_json::from_value(fitted.0.clone())
            .map_err(|e| config_error(format!("frame: fitted state: {e}")))?;
        let n_users = context.schema.categorical[user_slot].cardinality;
        let n_videos = context.schema.categorical[video_slot].cardinality;
        if (state.n_users, state.n_videos, state.n_clips, state.feature_dim)
            != (n_users, n_videos, self.n_clips, feature_dim)
        {
            return invalid(format!(
                "frame: the fitted graphs are for {} users, {} videos, {} clips, {} features; the \
                 data has {n_users}, {n_videos}, {}, {feature_dim}",
                state.n_users, state.n_videos, state.n_clips, state.feature_dim, self.n_clips
            ));
        }
        let nodes = n_videos * self.n_clips;
        if state.features.len() != if feature_dim > 0 { nodes * feature_dim } else { 0 } {
            return invalid("frame: the fitted feature table has the wrong size");
        }
        for edges in [&state.positive, &state.negative] {
            let bad = edges.users.len() != edges.clips.len()
                || edges.users.len() != edges.counts.len()
                || edges.users.iter().any(|&u| u as usize >= n_users)
                || edges.clips.iter().any(|&c| c as usize >= nodes);
            if bad {
                return invalid("frame: the fitted graph has an edge outside the users or clips");
            }
        }
        let graphs = Arc::new(Graphs::new(&state, self.normalization, self.use_negative_graph));

        let dim = self.dim;
        let linear = |d_in: usize, d_out: usize, bias: bool| {
            LinearConfig::new(d_in, d_out).with_bias(bias).init(device)
        };
        let from_features = |values: &[f32]| {
            Param::from_data(TensorData::new(values.to_vec(), [nodes, feature_dim]), device)
        };
        let (table, fixed, transform, d0) = match self.features {
            ClipFeatures::None => {
                let init = Initializer::Normal { mean: 0.0, std: 0.1 };
                (Some(init.init([nodes, dim], device)), None, None, dim)
            }
            ClipFeatures::Raw | ClipFeatures::Linear => {
                let (table, fixed) = if self.trainable_features {
                    (Some(from_features(&state.features)), None)
                } else {
                    (None, Some(Arc::new(state.features.clone())))
                };
                let (transform, d0) = if self.features == ClipFeatures::Linear {
                    (Some(linear(feature_dim, dim, true)), dim)
                } else {
                    (None, feature_dim)
                };
                (table, fixed, transform, d0)
            }
        };
        let mut user_pos = Vec::new();
        let mut clip_pos = Vec::new();
        let mut user_neg = Vec::new();
        let mut clip_neg = Vec::new();
        for l in 0..self.gcn_layers {
            let d_in = if l == 0 { d0 } else { dim };
            user_pos.push(linear(d_in, dim, false));
            clip_pos.push(linear(dim, dim, false));
            if self.use_negative_graph && !self.share_gcn_weights {
                user_neg.push(linear(d_in, dim, false));
                clip_neg.push(linear(dim, dim, false));
            }
        }
        let score_pos = Tower::new(2 * dim, &self.score_hidden, device);
        let score_neg: Vec<Tower> = (self.use_negative_graph && self.alpha_n > 0.0)
            .then(|| Tower::new(2 * dim, &self.score_hidden, device))
            .into_iter()
            .collect();
        let video_task = self.n_video_task(context)?;
        let z_dim = dim * if self.use_negative_graph { 3 } else { 2 } + self.n_clips;
        let towers = (0..context.tasks.len())
            .filter(|&k| Some(k) != video_task)
            .map(|_| Tower::new(z_dim, &context.tower_hidden, device))
            .collect();
        Ok(Frame {
            table,
            transform: transform.into_iter().collect(),
            user_pos,
            clip_pos,
            user_neg,
            clip_neg,
            score_pos,
            score_neg,
            towers,
            heads: TaskHeads::new(context),
            graphs,
            fixed_features: fixed,
            settings: Arc::new(Settings {
                n_clips: self.n_clips,
                nodes,
                n_users,
                feature_dim,
                user_slot,
                video_slot,
                activation: self.activation,
                use_negative_graph: self.use_negative_graph,
                alpha_p: self.alpha_p,
                alpha_n: self.alpha_n,
                video_score: self.video_score,
                video_task,
                n_tasks: context.tasks.len(),
                clip_weighting: self.clip_weighting,
                clip_loss_weight: self.clip_loss_weight,
                bpr_weight: self.bpr_weight,
                bpr_scope: self.bpr_scope,
                bpr_max_per_side: self.bpr_max_per_side,
            }),
        })
    }
}

/// One graph's edges as index and weight buffers, ready to become tensors.
#[derive(Debug, Clone, Default)]
pub struct GraphBuffers {
    users: Vec<i64>,
    clips: Vec<i64>,
    /// Weight of each edge in Ã (the same in both directions).
    weights: Vec<f32>,
}

impl GraphBuffers {
    fn new(edges: &EdgeList, n_users: usize, nodes: usize, normalization: Normalization) -> Self {
        let mut deg_user = vec![0.0f64; n_users];
        let mut deg_clip = vec![0.0f64; nodes];
        for ((&u, &c), &n) in edges.users.iter().zip(&edges.clips).zip(&edges.counts) {
            deg_user[u as usize] += n as f64;
            deg_clip[c as usize] += n as f64;
        }
        let weights = edges
            .users
            .iter()
            .zip(&edges.clips)
            .zip(&edges.counts)
            .map(|((&u, &c), &n)| {
                let (du, dc) = (deg_user[u as usize], deg_clip[c as usize]);
                let w = match normalization {
                    Normalization::Symmetric => n as f64 / (du * dc).sqrt(),
                    Normalization::Row => n as f64 / du,
                };
                w as f32
            })
            .collect();
        Self {
            users: edges.users.iter().map(|&u| u as i64).collect(),
            clips: edges.clips.iter().map(|&c| c as i64).collect(),
            weights,
        }
    }

    fn tensors(&self, device: &Device) -> Option<GraphTensors> {
        let n = self.users.len();
        if n == 0 {
            return None;
        }
        let index =
            |v: &[i64]| Tensor::<1, Int>::from_data(TensorData::new(v.to_vec(), [n]), device);
        Some(GraphTensors {
            users: index(&self.users),
            clips: index(&self.clips),
            weights: Tensor::from_data(TensorData::new(self.weights.clone(), [n, 1]), device),
        })
    }
}

struct GraphTensors {
    users: Tensor<1, Int>,
    clips: Tensor<1, Int>,
    weights: Tensor<2>,
}

/// Σ over edges of w_e · src[from_e] into row to_e of an [n_to, d] result: a sparse product
/// by gather and scatter-add.
fn aggregate(
    src: Tensor<2>,
    from: &Tensor<1, Int>,
    to: &Tensor<1, Int>,
    weights: &Tensor<2>,
    n_to: usize,
) -> Tensor<2> {
    let d = src.dims()[1];
    let device = src.device();
    let messages = src.select(0, from.clone()) * weights.clone();
    Tensor::zeros([n_to, d], &device).select_assign(0, to.clone(), messages, IndexingUpdateOp::Add)
}

/// Both graphs, normalised.
#[derive(Debug, Clone, Default)]
pub struct Graphs {
    positive: GraphBuffers,
    negative: Option<GraphBuffers>,
    /// Edges of each graph (for cost reports).
    pub n_edges: [usize; 2],
}

impl Graphs {
    fn new(state: &FrameState, normalization: Normalization, use_negative: bool) -> Self {
        let nodes = state.n_videos * state.n_clips;
        Self {
            positive: GraphBuffers::new(&state.positive, state.n_users, nodes, normalization),
            negative: use_negative
                .then(|| GraphBuffers::new(&state.negative, state.n_users, nodes, normalization)),
            n_edges: [state.positive.len(), state.negative.len()],
        }
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    n_clips: usize,
    nodes: usize,
    n_users: usize,
    feature_dim: usize,
    user_slot: usize,
    video_slot: usize,
    activation: Activation,
    use_negative_graph: bool,
    alpha_p: f32,
    alpha_n: f32,
    video_score: VideoScore,
    video_task: Option<usize>,
    n_tasks: usize,
    clip_weighting: ClipWeighting,
    clip_loss_weight: f32,
    bpr_weight: f32,
    bpr_scope: BprScope,
    bpr_max_per_side: usize,
}

#[derive(Module, Debug)]
pub struct Frame {
    /// [nodes, d]: the free clip embedding (`features = "none"`) or the trainable feature table.
    pub table: Option<Param<Tensor<2>>>,
    /// `features = "linear"`: act(x W + b).
    /// (A list of zero or one, here and for `score_neg`, to keep the module small.)
    pub transform: Vec<Linear>,
    /// Per GCN round, users ← clips and clips ← users, positive graph (and negative, unless the
    /// weights are shared or there is no negative graph).
    pub user_pos: Vec<Linear>,
    pub clip_pos: Vec<Linear>,
    pub user_neg: Vec<Linear>,
    pub clip_neg: Vec<Linear>,
    pub score_pos: Tower,
    pub score_neg: Vec<Tower>,
    /// One per task other than the video task, in task order.
    pub towers: Vec<Tower>,
    #[module(skip)]
    pub heads: TaskHeads,
    #[module(skip)]
    pub graphs: Arc<Graphs>,
    /// The fixed feature table (raw/linear features that are not trainable).
    #[module(skip)]
    pub fixed_features: Option<Arc<Vec<f32>>>,
    #[module(skip)]
    pub settings: Arc<Settings>,
}

/// What the graph part of a forward pass gives.
struct Propagated {
    users_pos: Tensor<2>,
    users_neg: Option<Tensor<2>>,
    clips: Tensor<2>,
}

impl Frame {
    fn device(&self) -> Device {
        self.score_pos.output.weight.device()
    }

    /// H⁰ for every clip node.
    fn clip_nodes(&self, device: &Device) -> Tensor<2> {
        let s = &self.settings;
        let x = match (&self.table, &self.fixed_features) {
            (Some(table), _) => table.val(),
            (None, Some(fixed)) => Tensor::from_data(
                TensorData::new(fixed.as_ref().clone(), [s.nodes, s.feature_dim]),
                device,
            ),
            (None, None) => unreachable!("a FRAME model has a clip table or fixed features"),
        };
        match self.transform.first() {
            Some(t) => s.activation.apply(t.forward(x)),
            None => x,
        }
    }

    fn propagate(&self, device: &Device) -> Propagated {
        let s = &self.settings;
        let act = s.activation;
        let pos = self.graphs.positive.tensors(device);
        let neg = self.graphs.negative.as_ref().and_then(|g| g.tensors(device));
        let mut clips = self.clip_nodes(device);
        let mut users_pos = None;
        let mut users_neg = None;
        let width = |t: &Tensor<2>| t.dims()[1];
        let zeros = |rows: usize, d: usize| Tensor::<2>::zeros([rows, d], device);
        for l in 0..self.user_pos.len() {
            let (user_w_neg, clip_w_neg) = if self.user_neg.is_empty() {
                (&self.user_pos[l], &self.clip_pos[l])
            } else {
                (&self.user_neg[l], &self.clip_neg[l])
            };
            let to_users = |g: &Option<GraphTensors>, w: &Linear| match g {
                Some(g) => act.apply(w.forward(aggregate(
                    clips.clone(),
                    &g.clips,
                    &g.users,
                    &g.weights,
                    s.n_users,
                ))),
                None => act.apply(w.forward(zeros(s.n_users, width(&clips)))),
            };
            let up = to_users(&pos, &self.user_pos[l]);
            let un = s.use_negative_graph.then(|| to_users(&neg, user_w_neg));
            let to_clips = |g: &Option<GraphTensors>, users: &Tensor<2>, w: &Linear| match g {
                Some(g) => act.apply(w.forward(aggregate(
                    users.clone(),
                    &g.users,
                    &g.clips,
                    &g.weights,
                    s.nodes,
                ))),
                None => act.apply(w.forward(zeros(s.nodes, width(users)))),
            };
            let cp = to_clips(&pos, &up, &self.clip_pos[l]);
            clips = match &un {
                Some(un) => (cp + to_clips(&neg, un, clip_w_neg)).mul_scalar(0.5),
                None => cp,
            };
            users_pos = Some(up);
            users_neg = un;
        }
        Propagated { users_pos: users_pos.expect("gcn_layers ≥ 1"), users_neg, clips }
    }

    fn id_column(&self, input: &ModelInput, slot: usize) -> Tensor<1, Int> {
        input.categorical.clone().narrow(1, slot, 1).reshape([input.batch_size])
    }
}

impl TaskModel for Frame {
    fn forward(&self, input: &ModelInput) -> ModelOutputs {
        let s = &self.settings;
        let (b, nc) = (input.batch_size, s.n_clips);
        let device = self.device();
        let graph = self.propagate(&device);
        let dim = graph.clips.dims()[1];
        let users = self.id_column(input, s.user_slot);
        let videos = self.id_column(input, s.video_slot);
        let nodes = videos.reshape([b, 1]).mul_scalar(nc as i64)
            + Tensor::<1, Int>::arange(0..nc as i64, &device).reshape([1, nc]);
        let clips = graph.clips.select(0, nodes.reshape([b * nc])); // [B·N_c, dim]
        let per_clip =
            |u: Tensor<2>| u.reshape([b, 1, dim]).expand([b, nc, dim]).reshape([b * nc, dim]);
        let u_pos = graph.users_pos.select(0, users.clone()); // [B, dim]
        let mut logits = self
            .score_pos
            .forward(Tensor::cat(vec![per_clip(u_pos.clone()), clips.clone()], 1))
            .mul_scalar(s.alpha_p);
        let u_neg = graph.users_neg.map(|un| un.select(0, users));
        if let (Some(tower), Some(un)) = (self.score_neg.first(), &u_neg) {
            let neg = tower.forward(Tensor::cat(vec![per_clip(un.clone()), clips.clone()], 1));
            logits = logits - neg.mul_scalar(s.alpha_n);
        }
        let logits = logits.reshape([b, nc]); // s_i
        let video = match s.video_score {
            VideoScore::Mean => logits.clone().mean_dim(1),
            VideoScore::Sum => logits.clone().sum_dim(1),
        };
        let clip_mean = clips.reshape([b, nc, dim]).mean_dim(1).reshape([b, dim]);
        let mut parts = vec![u_pos];
        parts.extend(u_neg);
        parts.extend([clip_mean, logits.clone()]);
        let z = Tensor::cat(parts, 1);
        let mut towers = self.towers.iter();
        let raw: Vec<Tensor<2>> = (0..s.n_tasks)
            .map(|k| match s.video_task {
                Some(v) if v == k => video.clone(),
                _ => towers.next().expect("a tower per other task").forward(z.clone()),
            })
            .collect();
        let mut tasks = self.heads.apply(raw);
        if let Some(v) = s.video_task {
            // The video score is a logit whatever the heads say (a binary task: they agree).
            tasks[v] = TaskOutput { tensor: video, kind: OutputKind::Logit };
        }
        let extras = (0..nc)
            .map(|i| TaskOutput { tensor: logits.clone().narrow(1, i, 1), kind: OutputKind::Logit })
            .collect();
        ModelOutputs { tasks, extras, shared: input.want_shared.then_some(z), gates: Vec::new() }
    }

    fn loss(&self, outputs: &ModelOutputs, targets: &ModelTargets) -> LossTerms {
        let s = &self.settings;
        let terms = LossTerms::per_task(outputs, targets);
        let Some(clips) = &targets.clips else { return terms };
        let nc = s.n_clips;
        let logits =
            Tensor::cat(outputs.extras[..nc].iter().map(|e| e.tensor.clone()).collect(), 1);
        let (y, m) = (clips.labels.clone(), clips.masks.clone());
        let labelled: f32 = m.clone().sum().into_scalar();
        if labelled == 0.0 {
            return terms;
        }
        let weights = match s.clip_weighting {
            ClipWeighting::Position => clips.weights.clone(),
            ClipWeighting::Uniform => m.clone(),
            ClipWeighting::WatchedFraction => {
                let watched = (y.clone() * m.clone()).sum_dim(1).mul_scalar(0.3 / nc as f64);
                y.clone() * watched + y.clone().neg().add_scalar(1.0)
            }
        };
        let bce = (bce_with_logits(logits.clone(), y.clone()) * weights * m.clone())
            .sum()
            .div_scalar(labelled);
        let mut terms = terms.with_auxiliary("clip_bce", bce.mul_scalar(s.clip_loss_weight));
        if s.bpr_weight > 0.0
            && let Some(bpr) = self.bpr(logits, y, m)
        {
            terms = terms.with_auxiliary("bpr", bpr.mul_scalar(s.bpr_weight));
        }
        terms
    }
}

impl Frame {
    /// −ln σ(s_watched − s_skip), averaged over the pairs of the scope; `None` without a pair.
    fn bpr(&self, logits: Tensor<2>, y: Tensor<2>, m: Tensor<2>) -> Option<Tensor<1>> {
        let s = &self.settings;
        let [b, nc] = logits.dims();
        let watched = y.clone() * m.clone();
        let skipped = (y.neg().add_scalar(1.0)) * m;
        match s.bpr_scope {
            BprScope::Video => {
                let n_watched = watched.clone().sum_dim(1); // [B, 1]
                let n_skipped = skipped.clone().sum_dim(1);
                let valid = n_watched.clone().clamp_max(1.0) * n_skipped.clamp_max(1.0);
                let count: f32 = valid.clone().sum().into_scalar();
                if count == 0.0 {
                    return None;
                }
                let mean_watched = (logits.clone() * watched).sum_dim(1) / n_watched.clamp_min(1.0);
                let skip = (logits * skipped).sum_dim(1);
                let diff = mean_watched - skip;
                let ones = Tensor::ones([b, 1], &diff.device());
                Some((bce_with_logits(diff, ones) * valid).sum().div_scalar(count))
            }
            BprScope::Batch => {
                let pick = |mask: Tensor<2>| -> Vec<i64> {
                    let values: Vec<f32> = mask.into_data().iter::<f32>().collect();
                    values
                        .iter()
                        .enumerate()
                        .filter(|(_, v)| **v > 0.5)
                        .map(|(i, _)| i as i64)
                        .take(s.bpr_max_per_side)
                        .collect()
                };
                let (pos, neg) = (pick(watched), pick(skipped));
                if pos.is_empty() || neg.is_empty() {
                    return None;
                }
                let device = logits.device();
                let flat = logits.reshape([b * nc]);
                let (p, n) = (pos.len(), neg.len());
                let index = |v: Vec<i64>| {
                    let len = v.len();
                    Tensor::<1, Int>::from_data(TensorData::new(v, [len]), &device)
                };
                let sp = flat.clone().select(0, index(pos)).reshape([p, 1]).expand([p, n]);
                let sn = flat.select(0, index(neg)).reshape([1, n]).expand([p, n]);
                let ones = Tensor::ones([p, n], &device);
                Some(bce_with_logits(sp - sn, ones).mean())
            }
        }
    }

    /// Edges of the positive and negative graphs.
    pub fn n_edges(&self) -> [usize; 2] {
        self.graphs.n_edges
    }

    /// How the video logit is made from the clip logits.
    pub fn video_score(&self) -> VideoScore {
        self.settings.video_score
    }
}
