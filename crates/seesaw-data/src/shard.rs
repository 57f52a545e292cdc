//! A rank's share of a Parquet log when several processes train on it: each file's rows are
//! cut into blocks of [`SHARD_BLOCK_ROWS`] (the last one of a file may be shorter), and the
//! blocks of all files, in path order, are dealt to the ranks, each to the rank holding the
//! fewest rows so far (a log too small for 16 such blocks per rank is cut into smaller ones). Each rank reads only its
//! blocks — a block is a row range the Parquet reader seeks to, one row group when the file was
//! written with row groups of that size (`seesaw convert` writes them so) — so no rank reads the
//! whole log, the shards are disjoint and cover it, they differ by at most one block, and every
//! day of a time-ordered log is spread over all ranks alike: a split by days gives every rank
//! its share of training, validation and test rows, where whole files per rank would give one
//! rank all the held-out days.
//!
//! The deal depends only on the files' row counts (from their Parquet footers) and the number of
//! ranks, so a resumed run reads the same shards.

use std::ops::Range;
use std::path::Path;

use crate::table::TableFormat;

/// Rows per dealt block: the reader's chunk, so that a block is read as one chunk.
pub const SHARD_BLOCK_ROWS: u64 = crate::table::DEFAULT_CHUNK_ROWS as u64;

/// Rank `rank` of `ranks` processes reading one log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub rank: usize,
    pub ranks: usize,
}

impl Shard {
    /// The whole log: one process.
    pub const WHOLE: Shard = Shard { rank: 0, ranks: 1 };

    pub fn new(rank: usize, ranks: usize) -> Self {
        assert!(rank < ranks, "rank {rank} of {ranks}");
        Self { rank, ranks }
    }

    pub fn is_whole(&self) -> bool {
        self.ranks == 1
    }

    /// Whether a log at `path` can be read in shards: a Parquet file or a directory of them.
    /// Delimited text cannot (its rows have no index to seek to without reading what precedes).
    pub fn can_split(path: &Path) -> bool {
        path.is_dir() || TableFormat::from_path(path) == TableFormat::Parquet
    }

    /// This rank's row ranges of each file, given the files' row counts in read order: pairs of
    /// (file index, rows of that file), in read order.
    pub fn pieces(&self, file_rows: &[u64]) -> Vec<(usize, Range<u64>)> {
        let block = block_rows(file_rows.iter().sum(), self.ranks);
        let mut pieces = Vec::new();
        // Each block to the rank holding the fewest rows so far (the lowest such rank): in turn
        // while the blocks are whole, and within one block of each other whatever the files'
        // short last blocks.
        let mut held = vec![0u64; self.ranks];
        for (file, &n) in file_rows.iter().enumerate() {
            for start in (0..n).step_by(block as usize) {
                let rows = start..(start + block).min(n);
                let least = (0..self.ranks).min_by_key(|&r| (held[r], r)).expect("a rank");
                held[least] += rows.end - rows.start;
                if least == self.rank {
                    pieces.push((file, rows));
                }
            }
        }
        pieces
    }
}

/// The rows of a dealt block: [`SHARD_BLOCK_ROWS`], or for a log too small to give every rank
/// 16 of those, a block small enough that it does, so that small logs are balanced too.
fn block_rows(total_rows: u64, ranks: usize) -> u64 {
    SHARD_BLOCK_ROWS.min(total_rows.div_ceil(16 * ranks as u64)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every row of every file, as (file, row), from the pieces of all ranks.
    fn dealt_rows(file_rows: &[u64], ranks: usize) -> Vec<Vec<(usize, u64)>> {
        (0..ranks)
            .map(|rank| {
                Shard::new(rank, ranks)
                    .pieces(file_rows)
                    .into_iter()
                    .flat_map(|(file, rows)| rows.map(move |r| (file, r)))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn the_shards_are_disjoint_and_cover_every_row_once() {
        let b = SHARD_BLOCK_ROWS;
        for (file_rows, ranks) in [
            (vec![40 * b + 7], 2),
            (vec![1000], 2),
            (vec![20 * b, 30 * b, 0, b + 1, 5], 3),
            (vec![1, 1, 1], 4),
            (vec![2 * b], 1),
            (vec![b / 2, 3 * b, 0, b + 1, 5], 3),
        ] {
            let dealt = dealt_rows(&file_rows, ranks);
            let mut all: Vec<(usize, u64)> = dealt.concat();
            all.sort_unstable();
            let expected: Vec<(usize, u64)> = file_rows
                .iter()
                .enumerate()
                .flat_map(|(f, &n)| (0..n).map(move |r| (f, r)))
                .collect();
            assert_eq!(all, expected, "files {file_rows:?} over {ranks} ranks");
            // Balanced to one block.
            let block = block_rows(file_rows.iter().sum(), ranks);
            let sizes: Vec<u64> = dealt.iter().map(|d| d.len() as u64).collect();
            assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= block);
        }
    }

    #[test]
    fn blocks_start_at_each_file_and_go_to_the_rank_holding_fewest_rows() {
        let b = SHARD_BLOCK_ROWS;
        // Files of 17.5 blocks (long enough for whole blocks: at least 32 over two ranks).
        let files = [17 * b + b / 2, 17 * b + b / 2];
        let (zero, one) = (Shard::new(0, 2).pieces(&files), Shard::new(1, 2).pieces(&files));
        assert_eq!(zero[..2], [(0, 0..b), (0, 2 * b..3 * b)]);
        assert_eq!(one[..2], [(0, b..2 * b), (0, 3 * b..4 * b)]);
        // File 0 ends with a half block, to rank 1 (8 blocks against 9): rank 1 then holds
        // fewer rows and takes file 1's first block.
        assert_eq!(one[8], (0, 17 * b..17 * b + b / 2));
        assert_eq!(one[9], (1, 0..b));
        assert_eq!(zero[9], (1, b..2 * b));
    }
}
