//! Finding which blocks of the new file the client already holds.
//!
//! `fast_rsync::diff(signature_of_new, old_bytes)` writes a delta that would
//! rebuild the *old* bytes from the *new* file. Read the other way round, each
//! COPY says "new bytes at this offset sit in the old file at the current
//! position". The old file is scanned in windows of a few MiB that overlap by
//! one block, so memory stays flat whatever its size; at most one match per
//! window boundary is lost.

use std::io::{Read, Seek, SeekFrom};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use fast_rsync::Signature;

/// Where a block of the new file can be read locally.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Located {
    /// Which basis file (index into the caller's list).
    pub basis: usize,
    /// Byte offset in that file.
    pub offset: u64,
}

/// For every block of the new file, where it can be read locally, if anywhere.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct BlockMap {
    block: u64,
    size: u64,
    blocks: Vec<Option<Located>>,
}

/// Bytes of the old file matched at once.
const WINDOW: u64 = 8 * 1024 * 1024;

impl BlockMap {
    /// An empty map for a new file of `size` bytes in blocks of `block` bytes.
    pub(crate) fn new(size: u64, block: u32) -> BlockMap {
        let block = u64::from(block.max(1));
        BlockMap {
            block,
            size,
            blocks: vec![None; size.div_ceil(block) as usize],
        }
    }

    /// Block size in bytes.
    pub(crate) fn block(&self) -> u64 {
        self.block
    }

    /// Size of the new file.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// Where block `index` can be read, if anywhere.
    pub(crate) fn get(&self, index: usize) -> Option<Located> {
        self.blocks.get(index).copied().flatten()
    }

    /// Number of blocks.
    pub(crate) fn len(&self) -> usize {
        self.blocks.len()
    }

    /// Records that new bytes `[new_offset, new_offset + len)` are at
    /// `old_offset` in `basis`. Only whole blocks count (the matcher never
    /// matches the new file's short last block: [`Self::match_short_tail`]
    /// looks for it), and the first basis to offer a block keeps it.
    fn record(&mut self, basis: usize, new_offset: u64, old_offset: u64, len: u64) {
        let mut index = new_offset.div_ceil(self.block);
        while (index + 1) * self.block <= (new_offset + len).min(self.size) {
            let Some(slot) = self.blocks.get_mut(index as usize) else {
                break;
            };
            if slot.is_none() {
                *slot = Some(Located {
                    basis,
                    offset: old_offset + (index * self.block - new_offset),
                });
            }
            index += 1;
        }
    }

    /// Looks for the new file's short last block, which the matcher never
    /// finds, where an edit elsewhere leaves it: at the end of `old` (`len`
    /// bytes) and at its own offset. Records it when `signature` confirms it.
    pub(crate) fn match_short_tail(
        &mut self,
        signature: &Signature,
        basis: usize,
        old: &mut (impl Read + Seek),
        len: u64,
    ) -> std::io::Result<()> {
        let tail = self.size % self.block;
        let last = self.blocks.len().saturating_sub(1);
        if tail == 0 || self.blocks.get(last).is_none_or(Option::is_some) {
            return Ok(());
        }
        let own = self.size - tail;
        let mut candidate = vec![0u8; tail as usize];
        for offset in [len.checked_sub(tail), Some(own)].into_iter().flatten() {
            if offset + tail > len {
                continue;
            }
            old.seek(SeekFrom::Start(offset))?;
            old.read_exact(&mut candidate)?;
            if crate::delta::signature::is_short_last_block(signature, self.size, &candidate) {
                self.blocks[last] = Some(Located { basis, offset });
                return Ok(());
            }
        }
        Ok(())
    }

    /// Matches the basis `basis` (a seekable file of `len` bytes) against the
    /// new file's signature and records every block found. As many threads
    /// as there are cores (at most 4) each take the next window, read it and
    /// match it, so one reads while another matches; each keeps one window's
    /// buffer for the whole basis.
    pub(crate) fn match_basis(
        &mut self,
        signature: &Signature,
        basis: usize,
        old: impl Read + Seek + Send,
        len: u64,
    ) -> std::io::Result<()> {
        let index = signature.index();
        let window = WINDOW.max(self.block * 4);
        let mut ranges = Vec::new();
        let mut start = 0u64;
        while start < len {
            let end = (start + window).min(len);
            ranges.push((start, end));
            if end == len {
                break;
            }
            // Overlap by one block so a block across the boundary is still seen.
            start = end - self.block;
        }
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
        let next = AtomicUsize::new(0);
        let old = Mutex::new(old);
        let (found, matched) = std::sync::mpsc::channel();
        std::thread::scope(|scope| {
            let mut matchers = Vec::with_capacity(threads);
            for _ in 0..threads {
                let found = found.clone();
                let (index, ranges, next, old) = (&index, &ranges, &next, &old);
                matchers.push(scope.spawn(move || {
                    let mut buffer = Vec::new();
                    while let Some(&(start, end)) = ranges.get(next.fetch_add(1, Ordering::Relaxed))
                    {
                        let copies = read_window(old, start, end, &mut buffer)
                            .and_then(|()| window_copies(index, &buffer));
                        let failed = copies.is_err();
                        if found.send((start, copies)).is_err() || failed {
                            break;
                        }
                    }
                }));
            }
            drop(found);
            for (start, copies) in matched {
                for (old_at, new_offset, copy_len) in copies? {
                    self.record(basis, new_offset, start + old_at, copy_len);
                }
            }
            matchers.into_iter().try_for_each(|matcher| {
                matcher
                    .join()
                    .map_err(|_| std::io::Error::other("matcher thread panicked"))
            })
        })
    }
}

/// Reads `[start, end)` of the old file into `buffer`.
fn read_window(
    old: &Mutex<impl Read + Seek>,
    start: u64,
    end: u64,
    buffer: &mut Vec<u8>,
) -> std::io::Result<()> {
    buffer.resize((end - start) as usize, 0);
    let mut old = old
        .lock()
        .map_err(|_| std::io::Error::other("basis lock poisoned"))?;
    old.seek(SeekFrom::Start(start))?;
    old.read_exact(buffer)
}

/// Matches one window of the old file: its COPY commands.
fn window_copies(
    index: &fast_rsync::IndexedSignature<'_>,
    window: &[u8],
) -> std::io::Result<Vec<(u64, u64, u64)>> {
    let mut delta = Vec::with_capacity(window.len() / 64);
    fast_rsync::diff(index, window, &mut delta)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
    copies(&delta)
}

/// The COPY commands of a librsync delta as (position in the output, offset in
/// the signature's file, length).
fn copies(delta: &[u8]) -> std::io::Result<Vec<(u64, u64, u64)>> {
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "malformed delta");
    let mut at = 4; // magic
    let mut output = 0u64;
    let mut found = Vec::new();
    let number = |at: &mut usize, width: usize| -> std::io::Result<u64> {
        let bytes = delta.get(*at..*at + width).ok_or_else(bad)?;
        *at += width;
        Ok(bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    };
    loop {
        let op = *delta.get(at).ok_or_else(bad)?;
        at += 1;
        match op {
            0x00 => return Ok(found),
            0x01..=0x40 => {
                let len = u64::from(op);
                at += len as usize;
                output += len;
            }
            0x41..=0x44 => {
                let len = number(&mut at, 1 << (op - 0x41))?;
                at = at.checked_add(len as usize).ok_or_else(bad)?;
                output += len;
            }
            0x45..=0x54 => {
                let class = op - 0x45;
                let offset = number(&mut at, 1 << (class / 4))?;
                let len = number(&mut at, 1 << (class % 4))?;
                found.push((output, offset, len));
                output += len;
            }
            _ => return Err(bad()),
        }
        if at > delta.len() {
            return Err(bad());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delta::signature::{block_size_for, calculate, parse};
    use std::io::Cursor;

    fn map_for(new: &[u8], old: &[u8]) -> BlockMap {
        let size = new.len() as u64;
        let sig = parse(calculate(new, size).unwrap(), size).unwrap();
        let mut map = BlockMap::new(size, block_size_for(size));
        map.match_basis(&sig, 0, Cursor::new(old), old.len() as u64)
            .unwrap();
        map
    }

    /// [`map_for`] with the short last block looked for too, as a sync does.
    fn full_map_for(new: &[u8], old: &[u8]) -> BlockMap {
        let size = new.len() as u64;
        let sig = parse(calculate(new, size).unwrap(), size).unwrap();
        let mut map = map_for(new, old);
        map.match_short_tail(&sig, 0, &mut Cursor::new(old), old.len() as u64)
            .unwrap();
        map
    }

    #[test]
    fn the_short_last_block_is_found_at_the_end_or_in_place() {
        let old = noise(7, 30_000);
        // An edit in the middle: the tail sits at the end of the old file.
        let mut edited = old.clone();
        edited[12_000..13_000].copy_from_slice(&noise(8, 1000));
        let map = full_map_for(&edited, &old);
        let last = map.get(map.len() - 1).expect("tail found");
        assert_eq!(
            last.offset,
            old.len() as u64 - old.len() as u64 % map.block()
        );
        // Bytes inserted: the tail is still the old file's last bytes.
        let mut inserted = old.clone();
        inserted.splice(5_000..5_000, noise(9, 300));
        let map = full_map_for(&inserted, &old);
        let tail = inserted.len() as u64 % map.block();
        assert_eq!(
            map.get(map.len() - 1).unwrap().offset,
            old.len() as u64 - tail
        );
        // A changed tail is not taken from the old file.
        let mut changed = old.clone();
        *changed.last_mut().unwrap() ^= 1;
        let map = full_map_for(&changed, &old);
        assert_eq!(map.get(map.len() - 1), None);
    }

    fn noise(seed: u32, len: usize) -> Vec<u8> {
        let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect()
    }

    #[test]
    fn identical_files_match_every_block() {
        let data = noise(1, 200_000);
        let map = map_for(&data, &data);
        // All but the short last block, which the matcher never matches.
        assert_ne!(data.len() as u64 % map.block(), 0);
        assert!((0..map.len() - 1).all(|i| map.get(i).is_some()));
        assert_eq!(map.get(map.len() - 1), None);
        assert_eq!(map.get(3).unwrap().offset, 3 * map.block());
    }

    #[test]
    fn shifted_content_is_found_at_its_old_offset() {
        let tail = noise(2, 100_000);
        let mut new = b"inserted".to_vec();
        new.extend_from_slice(&tail);
        let map = map_for(&new, &tail);
        // Block 1 of the new file starts at new offset `block`, old offset block - 8.
        let located = map.get(1).unwrap();
        assert_eq!(located.offset, map.block() - 8);
        assert_eq!(map.get(0), None, "the first block holds the insertion");
    }

    #[test]
    fn matches_across_window_boundaries_are_kept() {
        let old = noise(3, (WINDOW * 2 + 12_345) as usize);
        let map = map_for(&old, &old);
        let missing = (0..map.len()).filter(|i| map.get(*i).is_none()).count();
        assert!(missing <= 2, "{missing} blocks lost at window boundaries");
    }

    #[test]
    fn a_garbage_delta_is_an_error_not_a_panic() {
        assert!(copies(&[0, 0, 0, 0, 0x44, 0xff]).is_err());
        assert!(copies(&[0, 0, 0, 0, 0x60]).is_err());
        assert!(copies(&[0, 0, 0, 0]).is_err());
        assert_eq!(copies(&[0, 0, 0, 0, 0x45, 3, 4, 0]).unwrap(), [(0, 3, 4)]);
    }
}
