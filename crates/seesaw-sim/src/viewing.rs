//! The viewing process: a video is N_c equal clips and at each clip the user either watches it
//! through or stops inside it. Because this is a Markov chain over clips with a uniform stop
//! position, every viewing label (skip, long view, completion) has a closed-form probability,
//! which is what lets the simulator publish exact ground truth.

use rand::RngCore;

use super::normal::{sigmoid, unit};

/// Logit shift of every clip's continue probability when the user is in the positive state.
const EMOTION_LIFT: f64 = 0.9;
/// A user in the positive state replays a completed video much more often; replays are why
/// real logs have watch ratios above 1.
const REPLAY_POSITIVE: f64 = 0.30;
const REPLAY_NEGATIVE: f64 = 0.05;
/// A replay adds up to this many extra durations.
const REPLAY_MAX_EXTRA: f64 = 2.0;

/// The per-video part of every clip's continue logit, precomputed once per video: long clips
/// and objectionable content lose viewers faster, quality keeps them.
pub fn video_bias(clip_len_s: f64, quality: f64, objectionable: bool) -> f64 {
    -0.45 * (clip_len_s / 2.5).ln() + 0.3 * quality - if objectionable { 2.5 } else { 0.0 }
}

/// The state-independent logit of watching a clip through. Interest in the clip's own content
/// (not just the video's topic) is what makes a video that drifts off topic lose its viewers
/// halfway.
#[inline]
pub fn continue_logit(interest: f64, video_bias: f64) -> f64 {
    1.5 + 2.0 * interest + video_bias
}

/// Fills `survival[i]` = P(clips 0..=i all watched through | state); `survival[n-1]` is the
/// completion probability.
#[inline]
pub fn fill_survival(logits: &[f64], emotion: bool, survival: &mut [f64]) {
    let lift = if emotion { EMOTION_LIFT } else { 0.0 };
    let mut s = 1.0;
    for (out, l) in survival.iter_mut().zip(logits) {
        s *= sigmoid(l + lift);
        *out = s;
    }
}

/// Exact viewing-label probabilities for one state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ViewingProbs {
    pub complete: f64,
    /// P(watch_ratio < skip_ratio).
    pub skip: f64,
    /// P(play_time ≥ min(duration, long_view_ms)).
    pub long_view: f64,
}

/// `long_view_ratio` = min(duration, long_view_ms) / duration ∈ (0, 1].
pub fn viewing_probs(survival: &[f64], skip_ratio: f64, long_view_ratio: f64) -> ViewingProbs {
    let n = survival.len() as f64;
    let (mut skip, mut long_view) = (0.0, 0.0);
    let mut before = 1.0;
    for (i, &s) in survival.iter().enumerate() {
        // The stop position is uniform over clip i, i.e. over watch ratios [i/n, (i+1)/n).
        let stop_here = before - s;
        let below = |t: f64| (n * t - i as f64).clamp(0.0, 1.0);
        skip += stop_here * below(skip_ratio);
        long_view += stop_here * (1.0 - below(long_view_ratio));
        before = s;
    }
    let complete = before;
    // A completed view has ratio ≥ 1: long, and a skip only if skip_ratio exceeded 1.
    ViewingProbs { complete, skip, long_view: long_view + complete }
}

/// One sampled view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct View {
    /// The clip the user stopped in; None when the video was watched through.
    pub skip_clip: Option<u8>,
    pub play_time_ms: i64,
}

/// Samples a view with a fixed number of draws (three), so that the streams of two
/// configurations stay aligned impression by impression.
#[inline]
pub fn sample_view(
    survival: &[f64],
    duration_ms: i64,
    emotion: bool,
    rng: &mut impl RngCore,
) -> View {
    let (u_stop, u_pos, u_replay) = (unit(rng), unit(rng), unit(rng));
    let n = survival.len();
    let fail = 1.0 - u_stop; // P(fail ≤ s) = s: stop at the first clip whose survival drops below it
    let dur = duration_ms as f64;
    match survival.iter().position(|&s| fail > s) {
        Some(i) => {
            let pos = (i as f64 + u_pos) * dur / n as f64;
            View {
                skip_clip: Some(i as u8),
                play_time_ms: (pos.floor() as i64).min(duration_ms - 1),
            }
        }
        None => {
            let replay = if emotion { REPLAY_POSITIVE } else { REPLAY_NEGATIVE };
            let extra =
                if u_replay < replay { (u_pos * REPLAY_MAX_EXTRA * dur).floor() as i64 } else { 0 };
            View { skip_clip: None, play_time_ms: duration_ms + extra }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;

    #[test]
    fn sampled_views_match_exact_probabilities() {
        let logits = [2.5, 1.0, 0.5, 2.0, -0.5, 1.5, 3.0, 0.0];
        let mut surv = [0.0; 8];
        let dur = 30_000i64;
        let lv_ratio = 18_000.0 / 30_000.0;
        for emotion in [false, true] {
            fill_survival(&logits, emotion, &mut surv);
            let p = viewing_probs(&surv, 0.5, lv_ratio);
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
            let n = 200_000;
            let (mut c, mut s, mut l) = (0, 0, 0);
            for _ in 0..n {
                let v = sample_view(&surv, dur, emotion, &mut rng);
                c += v.skip_clip.is_none() as u32;
                s += ((v.play_time_ms as f64) < 0.5 * dur as f64) as u32;
                l += (v.play_time_ms >= 18_000) as u32;
                assert_eq!(v.skip_clip.is_none(), v.play_time_ms >= dur);
            }
            for (name, got, want) in
                [("complete", c, p.complete), ("skip", s, p.skip), ("long", l, p.long_view)]
            {
                let f = got as f64 / n as f64;
                let se = (want * (1.0 - want) / n as f64).sqrt();
                assert!((f - want).abs() < 4.0 * se, "{name} (e={emotion}): {f} vs {want}");
            }
        }
    }
}
