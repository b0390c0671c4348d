//! The range plan: the new file as an ordered list of pieces, each read from a
//! local basis or fetched from the source, adjacent pieces merged and every
//! piece no larger than one request.

use super::matching::BlockMap;

/// One stretch of the new file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Piece {
    /// Copy `len` bytes from basis `basis` at `offset`.
    Local {
        /// Index of the basis file.
        basis: usize,
        /// Offset in the basis.
        offset: u64,
        /// Bytes.
        len: u64,
    },
    /// Fetch `len` bytes of the new file at `offset`.
    Remote {
        /// Offset in the new file.
        offset: u64,
        /// Bytes.
        len: u64,
    },
}

impl Piece {
    /// Length in bytes.
    pub(crate) fn len(&self) -> u64 {
        match self {
            Piece::Local { len, .. } | Piece::Remote { len, .. } => *len,
        }
    }
}

/// Largest local piece: one read of the basis.
const MAX_LOCAL_PIECE: u64 = 1024 * 1024;

/// Turns a block map into pieces covering the new file in order. `max_remote`
/// bounds every remote piece (one read request); local pieces stay within
/// 1 MiB so reads of the basis stay few but small.
pub(crate) fn plan(map: &BlockMap, max_remote: u64) -> Vec<Piece> {
    let max_remote = max_remote.max(1);
    let mut merged: Vec<Piece> = Vec::new();
    for index in 0..map.len() {
        let offset = index as u64 * map.block();
        let len = map.block().min(map.size() - offset);
        let piece = match map.get(index) {
            Some(at) => Piece::Local {
                basis: at.basis,
                offset: at.offset,
                len,
            },
            None => Piece::Remote { offset, len },
        };
        match (merged.last_mut(), piece) {
            (
                Some(Piece::Local {
                    basis: b,
                    offset: o,
                    len: l,
                }),
                Piece::Local { basis, offset, len },
            ) if *b == basis && *o + *l == offset => *l += len,
            (Some(Piece::Remote { offset: o, len: l }), Piece::Remote { offset, len })
                if *o + *l == offset =>
            {
                *l += len
            }
            _ => merged.push(piece),
        }
    }
    let mut bounded = Vec::with_capacity(merged.len());
    for piece in merged {
        let max_piece = match piece {
            Piece::Local { .. } => MAX_LOCAL_PIECE,
            Piece::Remote { .. } => max_remote,
        };
        let mut done = 0;
        while done < piece.len() {
            let len = (piece.len() - done).min(max_piece);
            bounded.push(match piece {
                Piece::Local { basis, offset, .. } => Piece::Local {
                    basis,
                    offset: offset + done,
                    len,
                },
                Piece::Remote { offset, .. } => Piece::Remote {
                    offset: offset + done,
                    len,
                },
            });
            done += len;
        }
    }
    bounded
}

/// Bytes the plan fetches from the source.
pub(crate) fn remote_bytes(pieces: &[Piece]) -> u64 {
    pieces
        .iter()
        .filter(|p| matches!(p, Piece::Remote { .. }))
        .map(Piece::len)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delta::signature::{block_size_for, calculate, parse};
    use proptest::prelude::*;
    use std::io::Cursor;

    /// Rebuilds the new file from the plan: local pieces from `old`, remote
    /// ones from `new` (what the server would send).
    fn rebuild(pieces: &[Piece], old: &[u8], new: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for piece in pieces {
            match *piece {
                Piece::Local { offset, len, .. } => {
                    out.extend_from_slice(&old[offset as usize..(offset + len) as usize]);
                }
                Piece::Remote { offset, len } => {
                    out.extend_from_slice(&new[offset as usize..(offset + len) as usize]);
                }
            }
        }
        out
    }

    fn pieces_for(old: &[u8], new: &[u8]) -> (Vec<Piece>, u64) {
        let size = new.len() as u64;
        let block = block_size_for(size);
        let sig = parse(calculate(new, size).unwrap(), size).unwrap();
        let mut map = BlockMap::new(size, block);
        map.match_basis(&sig, 0, Cursor::new(old), old.len() as u64)
            .unwrap();
        (plan(&map, 64 * 1024), u64::from(block))
    }

    /// One edit of a random file: what the new file is, and how many of its
    /// bytes are new (0 for a deletion).
    #[derive(Clone, Debug)]
    enum Edit {
        Insert { at: usize, len: usize },
        Delete { at: usize, len: usize },
        Replace { at: usize, len: usize },
        Move { from: usize, len: usize, to: usize },
        Truncate { keep: usize },
        Append { len: usize },
    }

    fn edit_strategy() -> impl Strategy<Value = Edit> {
        prop_oneof![
            (any::<usize>(), 1..5000usize).prop_map(|(at, len)| Edit::Insert { at, len }),
            (any::<usize>(), 1..5000usize).prop_map(|(at, len)| Edit::Delete { at, len }),
            (any::<usize>(), 1..5000usize).prop_map(|(at, len)| Edit::Replace { at, len }),
            (any::<usize>(), 1..20000usize, any::<usize>())
                .prop_map(|(from, len, to)| Edit::Move { from, len, to }),
            any::<usize>().prop_map(|keep| Edit::Truncate { keep }),
            (1..5000usize).prop_map(|len| Edit::Append { len }),
        ]
    }

    /// Applies `edit`, returning the bytes of the new file it added and the
    /// number of places it touched.
    fn apply(
        data: &mut Vec<u8>,
        edit: &Edit,
        fresh: &mut impl FnMut(usize) -> Vec<u8>,
    ) -> (u64, u64) {
        let n = data.len();
        match *edit {
            Edit::Insert { at, len } => {
                let at = at % (n + 1);
                data.splice(at..at, fresh(len));
                (len as u64, 1)
            }
            Edit::Delete { at, len } => {
                if n == 0 {
                    return (0, 0);
                }
                let at = at % n;
                let end = (at + len).min(n);
                data.drain(at..end);
                (0, 1)
            }
            Edit::Replace { at, len } => {
                if n == 0 {
                    return (0, 0);
                }
                let at = at % n;
                let end = (at + len).min(n);
                let bytes = fresh(end - at);
                data[at..end].copy_from_slice(&bytes);
                ((end - at) as u64, 1)
            }
            Edit::Move { from, len, to } => {
                if n == 0 {
                    return (0, 0);
                }
                let from = from % n;
                let end = (from + len).min(n);
                let moved: Vec<u8> = data.drain(from..end).collect();
                let to = to % (data.len() + 1);
                data.splice(to..to, moved);
                // The hole and the landing place are two edited regions.
                (0, 2)
            }
            Edit::Truncate { keep } => {
                data.truncate(keep % (n + 1));
                (0, 1)
            }
            Edit::Append { len } => {
                data.extend(fresh(len));
                (len as u64, 1)
            }
        }
    }

    fn noise(seed: u64, len: usize) -> Vec<u8> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        #[test]
        fn plans_rebuild_the_new_file_and_fetch_little_more_than_the_edits(
            seed in any::<u64>(),
            size in prop_oneof![0..2000usize, 2000..400_000usize],
            edits in proptest::collection::vec(edit_strategy(), 0..6),
        ) {
            let old = noise(seed, size);
            let mut new = old.clone();
            let mut counter = seed;
            let mut fresh = |len: usize| { counter = counter.wrapping_add(1); noise(counter ^ 0xABCD, len) };
            let (mut added, mut regions) = (0u64, 0u64);
            for edit in &edits {
                let (a, r) = apply(&mut new, edit, &mut fresh);
                added += a;
                regions += r;
            }
            let (pieces, block) = pieces_for(&old, &new);
            prop_assert_eq!(rebuild(&pieces, &old, &new), new.clone());
            // Each edited region costs at most a block on either side, and the
            // short last block is always fetched.
            let bound = added + 2 * block * regions + block;
            let fetched = remote_bytes(&pieces);
            prop_assert!(fetched <= bound, "fetched {} > bound {} (added {}, {} regions, block {})", fetched, bound, added, regions, block);
        }
    }

    #[test]
    fn identical_files_fetch_at_most_the_short_last_block() {
        let data = noise(9, 300_000);
        let (pieces, block) = pieces_for(&data, &data);
        assert!(remote_bytes(&pieces) < block);
        assert_eq!(rebuild(&pieces, &data, &data), data);
    }

    #[test]
    fn empty_and_tiny_files_are_fetched_whole() {
        for size in [0, 1, 1023] {
            let new = noise(4, size);
            let (pieces, _) = pieces_for(&[], &new);
            assert_eq!(remote_bytes(&pieces), size as u64);
            assert_eq!(rebuild(&pieces, &[], &new), new);
        }
    }

    #[test]
    fn pieces_never_exceed_the_bound() {
        let data = noise(5, 1_000_000);
        let size = data.len() as u64;
        let sig = parse(calculate(&data[..], size).unwrap(), size).unwrap();
        let mut map = BlockMap::new(size, block_size_for(size));
        map.match_basis(&sig, 0, Cursor::new(&data[..500_000]), 500_000)
            .unwrap();
        let pieces = plan(&map, 10_000);
        assert!(pieces.iter().all(|p| p.len() > 0));
        assert!(pieces.iter().all(|p| match p {
            Piece::Remote { len, .. } => *len <= 10_000,
            Piece::Local { len, .. } => *len <= MAX_LOCAL_PIECE,
        }));
        assert_eq!(pieces.iter().map(Piece::len).sum::<u64>(), size);
    }
}
