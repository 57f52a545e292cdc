//! Minimum-interaction filters. One pass over the cleaned log: counts are taken once and rows
//! of users or videos below the minimum are dropped together, so the result does not depend on
//! which filter runs first (a video may fall below its minimum after users are removed; that is
//! accepted, as in the seed study).

use crate::cleaning::DropReason;
use crate::log::InteractionLog;
use crate::spec::FilterSpec;

pub fn apply(log: &mut InteractionLog, spec: &FilterSpec) {
    if spec.min_user_interactions <= 1 && spec.min_video_interactions <= 1 {
        return;
    }
    let mut per_user = vec![0u32; log.users.len()];
    let mut per_video = vec![0u32; log.videos.len()];
    for (&u, &v) in log.user.iter().zip(&log.video) {
        per_user[u as usize] += 1;
        per_video[v as usize] += 1;
    }
    let mut keep = vec![true; log.len()];
    let (mut by_user, mut by_video) = (0, 0);
    for (row, (&u, &v)) in log.user.iter().zip(&log.video).enumerate() {
        if per_user[u as usize] < spec.min_user_interactions {
            keep[row] = false;
            by_user += 1;
        } else if per_video[v as usize] < spec.min_video_interactions {
            keep[row] = false;
            by_video += 1;
        }
    }
    log.retain(&keep);
    log.stats.dropped.add(DropReason::UserBelowMinInteractions, by_user);
    log.stats.dropped.add(DropReason::VideoBelowMinInteractions, by_video);
}
