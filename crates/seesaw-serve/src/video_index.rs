//! Every video key a served model knows, with what encoding a candidate needs of it: its index in
//! the model's video-id vocabulary and its rows in the video and clip side tables, found by one
//! fast-hash lookup per candidate.
//!
//! Encoding a 500-candidate request looked each key up in the vocabulary and in the video table
//! (and the clip table, where there is one), each a string-keyed map with the standard library's
//! DoS-resistant hash: 12% of the server's CPU in a profile at 1 × 100/s, most of it cache misses
//! on the maps and the keys. The index holds the same answers in one map with a fast hash, built
//! once when the model loads. Its keys come from the model's own files, not from requests, so a
//! request cannot lengthen its probe chains; a key it lacks gets the out-of-vocabulary index and
//! the tables' default rows, as the separate lookups gave.
//!
//! Keys of up to 24 bytes (every KuaiRand id) are kept inside the map's buckets (`CompactString`)
//! rather than each in an allocation of its own: comparing a request's key then reads the bucket
//! the hash led to, not a second cache line elsewhere. With boxed keys, the key comparison
//! (memcmp, mostly its cache misses) was 2.8% of the server's CPU at 1 × 100/s.

use std::collections::HashMap;

use compact_str::CompactString;
use rustc_hash::FxBuildHasher;
use seesaw_data::clips::ClipTable;
use seesaw_data::entity::EntityTable;
use seesaw_data::vocabulary::{OOV_INDEX, Vocabulary};

/// A candidate video's encoding inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoRows {
    /// Index in the video-id vocabulary (`OOV_INDEX` when unknown).
    pub id: u32,
    /// Row in the video side table (its default row when absent).
    pub row: u32,
    /// Row in the clip table (its zero row when absent; 0 without a clip table).
    pub clip_row: u32,
}

pub struct VideoIndex {
    known: HashMap<CompactString, VideoRows, FxBuildHasher>,
    unknown: VideoRows,
}

impl VideoIndex {
    /// The index of every key in `vocabulary`, `videos` and `clips`.
    pub fn new(vocabulary: &Vocabulary, videos: &EntityTable, clips: Option<&ClipTable>) -> Self {
        let rows_of = |key: &str| VideoRows {
            id: vocabulary.index(key),
            row: videos.row_of(key),
            clip_row: clips.map_or(0, |c| c.row_of(key)),
        };
        let vocabulary_keys =
            (1..vocabulary.cardinality() as u32).filter_map(|i| vocabulary.token(i));
        let table_keys =
            videos.keys.tokens().chain(clips.into_iter().flat_map(|c| c.keys.tokens()));
        let mut known = HashMap::default();
        for key in vocabulary_keys.chain(table_keys) {
            if !known.contains_key(key) {
                known.insert(key.into(), rows_of(key));
            }
        }
        let unknown = VideoRows {
            id: OOV_INDEX,
            row: videos.default_row(),
            clip_row: clips.map_or(0, ClipTable::default_row),
        };
        Self { known, unknown }
    }

    pub fn rows_of(&self, key: &str) -> VideoRows {
        self.known.get(key).copied().unwrap_or(self.unknown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use seesaw_data::interner::Interner;

    #[test]
    fn gives_what_the_separate_lookups_give() {
        // "a" in the vocabulary and the table, "b" only in the vocabulary, "c" only in the table.
        let vocabulary = Vocabulary::fit([("a", 5), ("b", 3), ("rare", 1)], 2);
        let mut keys = Interner::new();
        for key in ["c", "a"] {
            keys.intern(key);
        }
        let videos = EntityTable { keys, ..EntityTable::default() };
        let index = VideoIndex::new(&vocabulary, &videos, None);
        for key in ["a", "b", "c", "rare", "unknown", ""] {
            let separate =
                VideoRows { id: vocabulary.index(key), row: videos.row_of(key), clip_row: 0 };
            assert_eq!(index.rows_of(key), separate, "{key}");
        }
        assert_eq!(index.rows_of("a"), VideoRows { id: 1, row: 1, clip_row: 0 });
        assert_eq!(index.rows_of("unknown"), VideoRows { id: OOV_INDEX, row: 2, clip_row: 0 });
    }
}
