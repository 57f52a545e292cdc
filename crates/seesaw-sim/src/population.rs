//! The latent world: users, authors, videos and their clips. Nothing here is observed directly;
//! the side tables expose noisy or bucketed views of it, and the impression process reads it to
//! produce labels whose probabilities are therefore known exactly.

use rand::RngCore;
use rand_xoshiro::Xoshiro256PlusPlus;

use super::alias::AliasTable;
use super::config::SimConfig;
use super::normal::{std_normal, unit};

/// Indices into the needs triple.
pub const NEED_ENTERTAINMENT: usize = 0;
pub const NEED_INFORMATION: usize = 1;
pub const NEED_SOCIAL: usize = 2;

/// Users in flat arrays: the per-impression inner loop reads a user's taste and interests
/// together, and flat slices keep that to two cache lines without per-user allocations.
#[derive(Debug, Clone)]
pub struct Users {
    pub n_topics: usize,
    pub dim: usize,
    /// n_users × n_topics, each row on the simplex.
    pub interest: Vec<f64>,
    /// n_users × dim: the interests projected into clip-feature space, unit length, so that
    /// interest in a clip is a cosine.
    pub taste: Vec<f64>,
    /// n_users × 3 (entertainment, information, social), each row on the simplex.
    pub needs: Vec<f64>,
    /// Relative number of impressions (log-normal): some users are far more active.
    pub activity: Vec<f64>,
    /// Per-user propensity to click, on the logit scale.
    pub click_bias: Vec<f64>,
    /// Per-user baseline mood, on the logit scale of the emotion state.
    pub mood: Vec<f64>,
}

impl Users {
    pub fn len(&self) -> usize {
        self.activity.len()
    }
    pub fn is_empty(&self) -> bool {
        self.activity.is_empty()
    }
    #[inline]
    pub fn interest(&self, u: usize) -> &[f64] {
        &self.interest[u * self.n_topics..(u + 1) * self.n_topics]
    }
    #[inline]
    pub fn taste(&self, u: usize) -> &[f64] {
        &self.taste[u * self.dim..(u + 1) * self.dim]
    }
    #[inline]
    pub fn needs(&self, u: usize) -> &[f64] {
        &self.needs[u * 3..u * 3 + 3]
    }
    pub fn dominant_topic(&self, u: usize) -> usize {
        argmax(self.interest(u))
    }
}

#[derive(Debug, Clone)]
pub struct Videos {
    pub n_topics: usize,
    pub n_clips: usize,
    pub dim: usize,
    /// n_videos × n_topics, each row on the simplex.
    pub topic_mix: Vec<f64>,
    /// n_videos × 3: how much the video serves each need, on the simplex.
    pub serves: Vec<f64>,
    pub duration_ms: Vec<i64>,
    pub author: Vec<u32>,
    pub objectionable: Vec<bool>,
    /// Production quality, standard normal: raises emotion, watching and liking for everyone.
    pub quality: Vec<f64>,
    /// Standard normal: draws comments and some hate regardless of taste.
    pub controversy: Vec<f64>,
    /// Unnormalised Zipf popularity weight.
    pub popularity: Vec<f64>,
    /// n_videos × n_clips × dim clip content vectors (unit length); f32 because they are also
    /// the observable clip features.
    pub clips: Vec<f32>,
    pub dominant_topic: Vec<u32>,
}

impl Videos {
    pub fn len(&self) -> usize {
        self.duration_ms.len()
    }
    pub fn is_empty(&self) -> bool {
        self.duration_ms.is_empty()
    }
    #[inline]
    pub fn topic_mix(&self, v: usize) -> &[f64] {
        &self.topic_mix[v * self.n_topics..(v + 1) * self.n_topics]
    }
    #[inline]
    pub fn serves(&self, v: usize) -> &[f64] {
        &self.serves[v * 3..v * 3 + 3]
    }
    #[inline]
    pub fn clip(&self, v: usize, c: usize) -> &[f32] {
        let start = (v * self.n_clips + c) * self.dim;
        &self.clips[start..start + self.dim]
    }
}

#[derive(Debug, Clone)]
pub struct Authors {
    /// Opaque ids that look like KuaiRand's (seven digits).
    pub external_id: Vec<u64>,
    /// Logit-scale pull of the author on follows.
    pub appeal: Vec<f64>,
}

/// The whole latent world plus the sampling tables the impression stream needs.
#[derive(Debug, Clone)]
pub struct World {
    pub users: Users,
    pub videos: Videos,
    pub authors: Authors,
    /// Unit vectors, n_topics × dim: where each topic sits in clip-feature space.
    pub topic_embedding: Vec<f64>,
    pub user_table: AliasTable,
    pub video_table: AliasTable,
    /// Per topic: the videos whose dominant topic it is, and an alias table over their
    /// popularity, for the personalised share of the feed.
    pub topic_videos: Vec<(Vec<u32>, Option<AliasTable>)>,
}

fn softmax_in_place(v: &mut [f64], temperature: f64) {
    let m = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let mut s = 0.0;
    for x in v.iter_mut() {
        *x = ((*x - m) * temperature).exp();
        s += *x;
    }
    for x in v.iter_mut() {
        *x /= s;
    }
}

fn normalise(v: &mut [f64]) {
    let n = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    if n > 0.0 {
        for x in v.iter_mut() {
            *x /= n;
        }
    }
}

pub fn argmax(v: &[f64]) -> usize {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if *x > v[best] {
            best = i;
        }
    }
    best
}

/// Project a topic mixture into feature space (unit length).
fn embed(mix: &[f64], topic_embedding: &[f64], dim: usize, out: &mut [f64]) {
    out.iter_mut().for_each(|x| *x = 0.0);
    for (t, w) in mix.iter().enumerate() {
        for (o, e) in out.iter_mut().zip(&topic_embedding[t * dim..(t + 1) * dim]) {
            *o += w * e;
        }
    }
    normalise(out);
}

impl World {
    /// `streams` are independent generators for (topics, users, videos) so that, e.g., adding
    /// videos does not reshuffle the users.
    pub fn generate(cfg: &SimConfig, streams: [&mut Xoshiro256PlusPlus; 3]) -> Self {
        let [topic_rng, user_rng, video_rng] = streams;
        let k = cfg.n_topics as usize;
        let dim = cfg.clip_feature_dim as usize;
        let n_clips = cfg.n_clips as usize;

        let mut topic_embedding = vec![0.0; k * dim];
        for t in 0..k {
            let row = &mut topic_embedding[t * dim..(t + 1) * dim];
            row.iter_mut().for_each(|x| *x = std_normal(topic_rng));
            normalise(row);
        }

        // Users.
        let n_users = cfg.n_users as usize;
        let mut users = Users {
            n_topics: k,
            dim,
            interest: vec![0.0; n_users * k],
            taste: vec![0.0; n_users * dim],
            needs: vec![0.0; n_users * 3],
            activity: Vec::with_capacity(n_users),
            click_bias: Vec::with_capacity(n_users),
            mood: Vec::with_capacity(n_users),
        };
        for u in 0..n_users {
            let row = &mut users.interest[u * k..(u + 1) * k];
            row.iter_mut().for_each(|x| *x = std_normal(user_rng));
            softmax_in_place(row, 1.5);
            let (interest, taste) =
                (&users.interest[u * k..(u + 1) * k], &mut users.taste[u * dim..(u + 1) * dim]);
            embed(interest, &topic_embedding, dim, taste);
            let needs = &mut users.needs[u * 3..u * 3 + 3];
            needs.iter_mut().for_each(|x| *x = std_normal(user_rng));
            softmax_in_place(needs, 1.2);
            users.activity.push((cfg.activity_sigma * std_normal(user_rng)).exp());
            users.click_bias.push(0.7 * std_normal(user_rng));
            users.mood.push(0.5 * std_normal(user_rng));
        }

        // Authors: fewer than videos, so some authors have several.
        let n_authors = ((cfg.n_videos as f64 / 1.3).ceil() as usize).max(1);
        let mut authors = Authors {
            external_id: Vec::with_capacity(n_authors),
            appeal: Vec::with_capacity(n_authors),
        };
        for _ in 0..n_authors {
            authors.external_id.push(1_000_000 + video_rng.next_u64() % 8_000_000);
            authors.appeal.push(0.8 * std_normal(video_rng));
        }

        // Videos.
        let n_videos = cfg.n_videos as usize;
        let mut videos = Videos {
            n_topics: k,
            n_clips,
            dim,
            topic_mix: vec![0.0; n_videos * k],
            serves: vec![0.0; n_videos * 3],
            duration_ms: Vec::with_capacity(n_videos),
            author: Vec::with_capacity(n_videos),
            objectionable: Vec::with_capacity(n_videos),
            quality: Vec::with_capacity(n_videos),
            controversy: Vec::with_capacity(n_videos),
            popularity: vec![0.0; n_videos],
            clips: vec![0.0; n_videos * n_clips * dim],
            dominant_topic: Vec::with_capacity(n_videos),
        };
        let mut c = vec![0.0; dim];
        for v in 0..n_videos {
            let mix = &mut videos.topic_mix[v * k..(v + 1) * k];
            mix.iter_mut().for_each(|x| *x = std_normal(video_rng));
            softmax_in_place(mix, 2.5);
            let mix = &videos.topic_mix[v * k..(v + 1) * k];
            videos.dominant_topic.push(argmax(mix) as u32);
            let serves = &mut videos.serves[v * 3..v * 3 + 3];
            serves.iter_mut().for_each(|x| *x = std_normal(video_rng));
            softmax_in_place(serves, 1.5);
            // Log-normal duration, median ≈ 20 s, clamped to the 5 s – 300 s of a short-video feed.
            let secs = (20.0f64.ln() + 0.9 * std_normal(video_rng)).exp().clamp(5.0, 300.0);
            videos.duration_ms.push((secs * 1000.0).round() as i64);
            // Sequential author ids would make authorship trivially learnable from video ids.
            videos.author.push((video_rng.next_u64() % n_authors as u64) as u32);
            videos.objectionable.push(unit(video_rng) < cfg.objectionable_share);
            videos.quality.push(std_normal(video_rng));
            videos.controversy.push(std_normal(video_rng));
            // Clip content: starts near the video's topic embedding and random-walks, each video
            // with its own drift speed, so some stay on topic and some wander off.
            embed(mix, &topic_embedding, dim, &mut c);
            for x in c.iter_mut() {
                *x += 0.3 * std_normal(video_rng) / (dim as f64).sqrt();
            }
            normalise(&mut c);
            let drift = cfg.clip_drift * (0.6 * std_normal(video_rng)).exp() / (dim as f64).sqrt();
            for clip in 0..n_clips {
                if clip > 0 {
                    for x in c.iter_mut() {
                        *x += drift * std_normal(video_rng);
                    }
                    normalise(&mut c);
                }
                let start = (v * n_clips + clip) * dim;
                for (o, x) in videos.clips[start..start + dim].iter_mut().zip(&c) {
                    *o = *x as f32;
                }
            }
        }
        // Zipf popularity over a random ranking of the videos.
        let mut rank: Vec<usize> = (0..n_videos).collect();
        for i in (1..n_videos).rev() {
            let j = (video_rng.next_u64() % (i as u64 + 1)) as usize;
            rank.swap(i, j);
        }
        for (r, &v) in rank.iter().enumerate() {
            videos.popularity[v] = (r as f64 + 1.0).powf(-cfg.popularity_skew);
        }

        let user_table = AliasTable::new(&users.activity);
        let video_table = AliasTable::new(&videos.popularity);
        let mut topic_videos: Vec<(Vec<u32>, Option<AliasTable>)> =
            (0..k).map(|_| (Vec::new(), None)).collect();
        for v in 0..n_videos {
            topic_videos[videos.dominant_topic[v] as usize].0.push(v as u32);
        }
        for (list, table) in topic_videos.iter_mut() {
            if !list.is_empty() {
                let w: Vec<f64> = list.iter().map(|&v| videos.popularity[v as usize]).collect();
                *table = Some(AliasTable::new(&w));
            }
        }
        Self { users, videos, authors, topic_embedding, user_table, video_table, topic_videos }
    }
}
