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
//!
//! Keys written as plain decimal numbers (every KuaiRand and simulator id) are answered from an
//! array indexed by the number instead, 12 bytes a video: between two requests the scoring
//! workers sweep tens of megabytes of kept products through the caches, and each hash lookup
//! then waited on memory twice (the control bytes, then the bucket). In a profile at 1 × 100/s
//! those two misses were most of `encode`'s own time (a tenth of the HTTP thread's). Only the
//! canonical spelling takes the array ("12", not "012" or "+12"), so a key means what it means
//! as a string.

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
    /// `by_number[n]`: the rows of the key spelled as the number n (the unknown rows where no
    /// key is), for every n below the array's length.
    by_number: Vec<VideoRows>,
    /// Every other key.
    known: HashMap<CompactString, VideoRows, FxBuildHasher>,
    unknown: VideoRows,
}

/// Numbered keys go to the array while it stays within this many entries per key (plus a
/// floor), so that a few huge numbers cannot make it large; the rest go to the map.
const ARRAY_ENTRIES_PER_KEY: usize = 4;
const ARRAY_FLOOR: usize = 1 << 16;

/// The number a key spells in canonical decimal (no sign, no leading zero, fits in a u32).
fn canonical_number(key: &str) -> Option<u32> {
    let bytes = key.as_bytes();
    if bytes.is_empty() || bytes.len() > 10 || (bytes[0] == b'0' && bytes.len() > 1) {
        return None;
    }
    let mut n: u64 = 0;
    for &b in bytes {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u64::from(b - b'0');
    }
    u32::try_from(n).ok()
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
        let unknown = VideoRows {
            id: OOV_INDEX,
            row: videos.default_row(),
            clip_row: clips.map_or(0, ClipTable::default_row),
        };
        let keys: Vec<&str> = vocabulary_keys.chain(table_keys).collect();
        let array_limit = ARRAY_FLOOR.max(ARRAY_ENTRIES_PER_KEY * keys.len());
        let mut by_number = Vec::new();
        let mut known = HashMap::default();
        for key in keys {
            match canonical_number(key).map(|n| n as usize).filter(|&n| n < array_limit) {
                Some(n) => {
                    if by_number.len() <= n {
                        by_number.resize(n + 1, None);
                    }
                    by_number[n].get_or_insert_with(|| rows_of(key));
                }
                None => {
                    if !known.contains_key(key) {
                        known.insert(key.into(), rows_of(key));
                    }
                }
            }
        }
        let by_number = by_number.into_iter().map(|rows| rows.unwrap_or(unknown)).collect();
        Self { by_number, known, unknown }
    }

    pub fn rows_of(&self, key: &str) -> VideoRows {
        if let Some(n) = canonical_number(key) {
            // A number past the array was never a key under the array's limit, so it is either
            // in the map (a key past the limit) or unknown.
            if let Some(&rows) = self.by_number.get(n as usize) {
                return rows;
            }
        }
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

    #[test]
    fn numbered_keys_mean_what_they_mean_as_strings() {
        // Numbers the array holds, spellings of them it must not take ("012", "+12", "12 "), a
        // number too large for the array and one too large for a u32, and "0".
        let vocabulary =
            Vocabulary::fit([("12", 5), ("7", 4), ("0", 4), ("012", 3), ("90000000", 3)], 2);
        let mut keys = Interner::new();
        for key in ["7", "12", "+12", "4294967296", "x3"] {
            keys.intern(key);
        }
        let videos = EntityTable { keys, ..EntityTable::default() };
        let index = VideoIndex::new(&vocabulary, &videos, None);
        assert!(index.by_number.len() > 12, "the small numbers are in the array");
        let probes = [
            "12",
            "7",
            "0",
            "012",
            "+12",
            "12 ",
            "90000000",
            "4294967296",
            "x3",
            "13",
            "8",
            "99",
            "4294967295",
            "18446744073709551616",
            "",
            "00",
            "-7",
        ];
        for key in probes {
            let separate =
                VideoRows { id: vocabulary.index(key), row: videos.row_of(key), clip_row: 0 };
            assert_eq!(index.rows_of(key), separate, "{key:?}");
        }
        assert_ne!(index.rows_of("12"), index.rows_of("012"));
        assert_eq!(index.rows_of("13"), index.unknown);
    }
}
