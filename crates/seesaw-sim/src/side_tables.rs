//! User and video side tables in KuaiRand's layout. Most columns are plausible noise with the
//! real value distributions, but a few are noisy views of the latent world (dominant topic,
//! need buckets, activity, click propensity) so that a model can learn from features and not
//! only from ids, as it can on the real data.

use rand::RngCore;
use serde::Serialize;

use super::calendar;
use super::normal::{std_normal, unit};
use super::population::{NEED_ENTERTAINMENT, NEED_INFORMATION, NEED_SOCIAL, World};

pub const USER_FEATURES_HEADER: [&str; 31] = [
    "user_id",
    "user_active_degree",
    "is_lowactive_period",
    "is_live_streamer",
    "is_video_author",
    "follow_user_num",
    "follow_user_num_range",
    "fans_user_num",
    "fans_user_num_range",
    "friend_user_num",
    "friend_user_num_range",
    "register_days",
    "register_days_range",
    "onehot_feat0",
    "onehot_feat1",
    "onehot_feat2",
    "onehot_feat3",
    "onehot_feat4",
    "onehot_feat5",
    "onehot_feat6",
    "onehot_feat7",
    "onehot_feat8",
    "onehot_feat9",
    "onehot_feat10",
    "onehot_feat11",
    "onehot_feat12",
    "onehot_feat13",
    "onehot_feat14",
    "onehot_feat15",
    "onehot_feat16",
    "onehot_feat17",
];

pub const VIDEO_FEATURES_HEADER: [&str; 12] = [
    "video_id",
    "author_id",
    "video_type",
    "upload_dt",
    "upload_type",
    "visible_status",
    "video_duration",
    "server_width",
    "server_height",
    "music_id",
    "music_type",
    "tag",
];

/// Field order must match [`USER_FEATURES_HEADER`].
#[derive(Debug, Serialize)]
pub struct UserRow {
    pub user_id: u32,
    pub user_active_degree: &'static str,
    pub is_lowactive_period: u8,
    pub is_live_streamer: i32,
    pub is_video_author: u8,
    pub follow_user_num: u64,
    pub follow_user_num_range: &'static str,
    pub fans_user_num: u64,
    pub fans_user_num_range: &'static str,
    pub friend_user_num: u64,
    pub friend_user_num_range: &'static str,
    pub register_days: u64,
    pub register_days_range: &'static str,
    pub onehot_feat0: u8,
    /// The user's dominant latent topic (same ids as the video `tag`).
    pub onehot_feat1: u32,
    /// Social need, in tenths.
    pub onehot_feat2: u32,
    pub onehot_feat3: u32,
    /// Entertainment need, in eighths, as a float like the real column.
    pub onehot_feat4: f64,
    pub onehot_feat5: u32,
    pub onehot_feat6: u32,
    /// Information need, in tenths.
    pub onehot_feat7: u32,
    pub onehot_feat8: u32,
    pub onehot_feat9: u32,
    /// Quintile of the user's click propensity.
    pub onehot_feat10: u32,
    pub onehot_feat11: u32,
    pub onehot_feat12: f64,
    pub onehot_feat13: f64,
    pub onehot_feat14: f64,
    pub onehot_feat15: f64,
    pub onehot_feat16: f64,
    pub onehot_feat17: f64,
}

/// Field order must match [`VIDEO_FEATURES_HEADER`].
#[derive(Debug, Serialize)]
pub struct VideoRow {
    pub video_id: u32,
    pub author_id: u64,
    pub video_type: &'static str,
    pub upload_dt: String,
    pub upload_type: &'static str,
    pub visible_status: f64,
    /// Milliseconds, as a float like the real column.
    pub video_duration: f64,
    pub server_width: f64,
    pub server_height: f64,
    pub music_id: u64,
    pub music_type: f64,
    /// The video's dominant latent topic.
    pub tag: u32,
}

fn bucket(value: u64, bounds: &[(u64, &'static str)], top: &'static str) -> &'static str {
    bounds.iter().find(|(b, _)| value <= *b).map_or(top, |(_, s)| s)
}

fn pick<T: Copy>(rng: &mut impl RngCore, table: &[(T, f64)]) -> T {
    let total: f64 = table.iter().map(|t| t.1).sum();
    let mut u = unit(rng) * total;
    for &(v, w) in table {
        if u < w {
            return v;
        }
        u -= w;
    }
    table[table.len() - 1].0
}

fn lognormal_count(rng: &mut impl RngCore, mu: f64, sigma: f64, max: f64) -> u64 {
    ((mu + sigma * std_normal(rng)).exp() - 1.0).clamp(0.0, max) as u64
}

fn flag(rng: &mut impl RngCore, p: f64) -> f64 {
    if unit(rng) < p { 1.0 } else { 0.0 }
}

/// One row per user, in user order.
pub fn user_rows(world: &World, rng: &mut impl RngCore) -> Vec<UserRow> {
    let users = &world.users;
    let n = users.len();
    // Activity and click-propensity ranks, so the published buckets follow the real shares.
    let rank_of = |values: &[f64]| {
        let mut idx: Vec<usize> = (0..n).collect();
        idx.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
        let mut rank = vec![0.0; n];
        for (r, &i) in idx.iter().enumerate() {
            rank[i] = r as f64 / n as f64;
        }
        rank
    };
    let activity_rank = rank_of(&users.activity);
    let click_rank = rank_of(&users.click_bias);
    (0..n)
        .map(|u| {
            let q = activity_rank[u];
            let degree = match q {
                q if q < 0.66 => "full_active",
                q if q < 0.885 => "high_active",
                q if q < 0.963 => "middle_active",
                q if q < 0.974 => "low_active",
                q if q < 0.997 => "2_14_day_new",
                _ => "single_low_active",
            };
            let needs = users.needs(u);
            let social = needs[NEED_SOCIAL];
            let follow = lognormal_count(rng, 3.5 + 3.0 * social, 1.3, 5000.0);
            let fans = lognormal_count(rng, 3.0, 1.8, 2_000_000.0);
            let friends = lognormal_count(rng, 1.0 + 4.0 * social, 1.3, 3000.0);
            let register_days = if degree == "2_14_day_new" {
                8 + rng.next_u64() % 7
            } else {
                (15.0 + (6.6 + 0.8 * std_normal(rng)).exp()).min(2800.0) as u64
            };
            UserRow {
                user_id: u as u32,
                user_active_degree: degree,
                is_lowactive_period: 0,
                is_live_streamer: if unit(rng) < 0.23 { 1 } else { -124 },
                is_video_author: (unit(rng) < 0.82) as u8,
                follow_user_num: follow,
                follow_user_num_range: bucket(
                    follow,
                    &[
                        (0, "0"),
                        (10, "(0,10]"),
                        (50, "(10,50]"),
                        (100, "(50,100]"),
                        (150, "(100,150]"),
                        (250, "(150,250]"),
                        (500, "(250,500]"),
                    ],
                    "500+",
                ),
                fans_user_num: fans,
                fans_user_num_range: bucket(
                    fans,
                    &[
                        (0, "0"),
                        (9, "[1,10)"),
                        (99, "[10,100)"),
                        (999, "[100,1k)"),
                        (4999, "[1k,5k)"),
                        (9999, "[5k,1w)"),
                        (99_999, "[1w,10w)"),
                        (999_999, "[10w,100w)"),
                    ],
                    "[100w,1000w)",
                ),
                friend_user_num: friends,
                friend_user_num_range: bucket(
                    friends,
                    &[
                        (0, "0"),
                        (4, "[1,5)"),
                        (29, "[5,30)"),
                        (59, "[30,60)"),
                        (119, "[60,120)"),
                        (249, "[120,250)"),
                    ],
                    "250+",
                ),
                register_days,
                register_days_range: bucket(
                    register_days,
                    &[
                        (14, "8-14"),
                        (30, "15-30"),
                        (60, "31-60"),
                        (90, "61-90"),
                        (180, "91-180"),
                        (365, "181-365"),
                        (730, "366-730"),
                    ],
                    "730+",
                ),
                onehot_feat0: (unit(rng) < 0.56) as u8,
                onehot_feat1: users.dominant_topic(u) as u32,
                onehot_feat2: ((social * 10.0) as u32).min(9),
                onehot_feat3: (rng.next_u64() % 1500) as u32,
                onehot_feat4: ((needs[NEED_ENTERTAINMENT] * 8.0) as u32).min(7) as f64,
                onehot_feat5: if unit(rng) < 0.99 { 0 } else { (rng.next_u64() % 34) as u32 },
                onehot_feat6: pick(rng, &[(0, 0.54), (1, 0.45), (2, 0.01)]),
                onehot_feat7: ((needs[NEED_INFORMATION] * 10.0) as u32).min(9),
                onehot_feat8: (rng.next_u64() % 454) as u32,
                onehot_feat9: (rng.next_u64() % 7) as u32,
                onehot_feat10: ((click_rank[u] * 5.0) as u32).min(4),
                onehot_feat11: pick(rng, &[(0, 0.745), (1, 0.01), (2, 0.245)]),
                onehot_feat12: flag(rng, 0.72),
                onehot_feat13: flag(rng, 0.07),
                onehot_feat14: flag(rng, 0.12),
                onehot_feat15: flag(rng, 0.02),
                onehot_feat16: flag(rng, 0.04),
                onehot_feat17: flag(rng, 0.015),
            }
        })
        .collect()
}

/// One row per video, in video order; uploads fall 14–16 days before the log starts, as in
/// the KuaiRand slice.
pub fn video_rows(world: &World, start_day: i64, rng: &mut impl RngCore) -> Vec<VideoRow> {
    let videos = &world.videos;
    (0..videos.len())
        .map(|v| {
            let (w, h) = pick(
                rng,
                &[
                    ((720.0, 1280.0), 0.72),
                    ((1280.0, 720.0), 0.18),
                    ((1080.0, 1920.0), 0.05),
                    ((960.0, 1280.0), 0.05),
                ],
            );
            VideoRow {
                video_id: v as u32,
                author_id: world.authors.external_id[videos.author[v] as usize],
                video_type: if unit(rng) < 0.99 { "NORMAL" } else { "AD" },
                upload_dt: calendar::iso_date(start_day - 16 + (rng.next_u64() % 3) as i64),
                upload_type: pick(
                    rng,
                    &[
                        ("LongImport", 0.39),
                        ("Web", 0.32),
                        ("ShortImport", 0.12),
                        ("Kmovie", 0.12),
                        ("LongPicture", 0.02),
                        ("UNKNOWN", 0.01),
                        ("ShortPicture", 0.02),
                    ],
                ),
                visible_status: 0.0,
                video_duration: videos.duration_ms[v] as f64,
                server_width: w,
                server_height: h,
                music_id: 5_000_000_000 + rng.next_u64() % 4_999_999_999,
                music_type: pick(rng, &[(9.0, 0.88), (4.0, 0.09), (8.0, 0.02), (7.0, 0.01)]),
                tag: videos.dominant_topic[v],
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Platform, SimConfig};

    #[test]
    fn features_carry_latent_signal() {
        let p =
            Platform::new(&SimConfig { n_impressions: 100_000, ..SimConfig::default() }).unwrap();
        let mut rng = p.side_rng();
        let users = user_rows(p.world(), &mut rng);
        let videos = video_rows(p.world(), p.start_day(), &mut rng);
        let (mut same, mut other) = ((0.0, 0.0), (0.0, 0.0));
        let mut per_degree = std::collections::HashMap::<&str, (f64, f64)>::new();
        for u in &users {
            per_degree.entry(u.user_active_degree).or_default().1 += 1.0;
        }
        for i in p.impressions() {
            let (u, v) = (&users[i.user as usize], &videos[i.video as usize]);
            let slot = if u.onehot_feat1 == v.tag { &mut same } else { &mut other };
            slot.0 += i.emotion as u8 as f64;
            slot.1 += 1.0;
            per_degree.get_mut(u.user_active_degree).unwrap().0 += 1.0;
        }
        let (es, eo) = (same.0 / same.1, other.0 / other.1);
        println!("P(e=1): user topic = video tag {es:.3}, otherwise {eo:.3}");
        assert!(es > eo + 0.1, "{es} vs {eo}");
        let per_user = |d: &str| per_degree.get(d).map_or(0.0, |(n, u)| n / u);
        println!(
            "impressions per user: full {:.1}, middle {:.1}",
            per_user("full_active"),
            per_user("middle_active")
        );
        assert!(per_user("full_active") > 3.0 * per_user("middle_active"));
        assert!(videos.iter().all(|v| (v.tag as usize) < 8 && v.video_duration >= 5000.0));
    }
}
