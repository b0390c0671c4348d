//! Block signatures (fast_rsync, librsync format) as the publisher writes them
//! and the client reads them.
//!
//! The block size grows with the file, about its square root within 1 KiB and
//! 64 KiB, so a signature stays small and an edit costs about one block on each
//! side. A signature comes from the server and is not signed: the client uses it
//! only to guess which blocks it already has, and the manifest's sha256 decides.

use std::io::Read;

use fast_rsync::{Signature, SignatureOptions};

/// Files below this size are always fetched whole: a delta could not save
/// more than the requests it costs.
pub const MIN_SIGNED: u64 = 4 * 1024;
/// Signatures of files below this size go in their part's bundle, so that a
/// small file's signature costs no file of its own to open.
pub const BUNDLED_BELOW: u64 = 64 * 1024;
/// Bytes of the MD4 digest kept per block; the sha256 check catches the rare
/// false match this allows.
pub const HASH_BYTES: u32 = 8;
const MIN_BLOCK: u64 = 1024;
const MAX_BLOCK: u64 = 64 * 1024;
/// Header: magic, block size, hash size.
const HEADER_BYTES: u64 = 12;
/// Each block's entry: CRC and truncated MD4.
const ENTRY_BYTES: u64 = 4 + HASH_BYTES as u64;
/// Bytes read at once while signing; a multiple of the block size is used.
const READ_CHUNK: u64 = 8 * 1024 * 1024;

/// The block size for a file of `size` bytes: about its square root, a whole
/// number of KiB, within 1 KiB and 64 KiB.
pub fn block_size_for(size: u64) -> u32 {
    let root = (size as f64).sqrt() as u64;
    let rounded = root.div_ceil(MIN_BLOCK) * MIN_BLOCK;
    rounded.clamp(MIN_BLOCK, MAX_BLOCK) as u32
}

/// The exact length of a genuine signature of a `size`-byte file: the client's
/// read limit for it.
pub fn signature_len(size: u64) -> u64 {
    HEADER_BYTES + size.div_ceil(u64::from(block_size_for(size))) * ENTRY_BYTES
}

/// Signs `reader` (`size` bytes) chunk by chunk, so memory stays flat for any
/// file size: each block's entry depends only on that block.
pub fn calculate(mut reader: impl Read, size: u64) -> std::io::Result<Vec<u8>> {
    let block = u64::from(block_size_for(size));
    let options = SignatureOptions {
        block_size: block as u32,
        crypto_hash_size: HASH_BYTES,
    };
    let chunk = (READ_CHUNK / block).max(1) * block;
    let mut out = Vec::with_capacity(signature_len(size) as usize);
    let mut buffer = vec![0u8; chunk as usize];
    let mut first = true;
    loop {
        let filled = read_full(&mut reader, &mut buffer)?;
        if filled == 0 && !first {
            break;
        }
        let part = Signature::calculate(&buffer[..filled], options).into_serialized();
        // Every chunk's signature repeats the header; keep only the first.
        let skip = if first { 0 } else { HEADER_BYTES as usize };
        out.extend_from_slice(&part[skip..]);
        first = false;
        if filled < buffer.len() {
            break;
        }
    }
    Ok(out)
}

/// Whether `candidate` is the short last block that `signature` (of a
/// `size`-byte file) describes: its entry, computed as the publisher computed
/// it, equals the signature's last one. The matcher only finds whole blocks,
/// so without this an unchanged tail shorter than a block is always fetched.
pub fn is_short_last_block(signature: &Signature, size: u64, candidate: &[u8]) -> bool {
    let block = block_size_for(size);
    let tail = size % u64::from(block);
    if tail == 0 || candidate.len() as u64 != tail {
        return false;
    }
    let options = SignatureOptions {
        block_size: block,
        crypto_hash_size: HASH_BYTES,
    };
    let computed = Signature::calculate(candidate, options).into_serialized();
    let published = signature.serialized();
    published.len() as u64 == signature_len(size)
        && published.ends_with(&computed[HEADER_BYTES as usize..])
}

fn read_full(reader: &mut impl Read, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// Why a downloaded signature is not usable; the file is then fetched whole.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    /// Not a librsync MD4 signature.
    #[error("not a block signature")]
    Malformed,
    /// Another block size or hash size than this file's would have.
    #[error("block signature has block size {found}, expected {expected}")]
    WrongBlockSize {
        /// In the signature.
        found: u32,
        /// For this file.
        expected: u32,
    },
}

/// Parses a downloaded signature of a `size`-byte file.
pub fn parse(bytes: Vec<u8>, size: u64) -> Result<Signature, SignatureError> {
    let header = |at: usize| -> Option<u32> {
        Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
    };
    let expected = block_size_for(size);
    match (header(4), header(8)) {
        (Some(found), Some(HASH_BYTES)) if found == expected => {}
        (Some(found), Some(_)) => return Err(SignatureError::WrongBlockSize { found, expected }),
        _ => return Err(SignatureError::Malformed),
    }
    Signature::deserialize(bytes).map_err(|_| SignatureError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_size_grows_with_the_file_within_bounds() {
        assert_eq!(block_size_for(0), 1024);
        assert_eq!(block_size_for(64 * 1024), 1024);
        assert_eq!(block_size_for(256 * 1024 * 1024), 16 * 1024);
        assert_eq!(block_size_for(2 * 1024 * 1024 * 1024), 46 * 1024);
        assert_eq!(block_size_for(u64::MAX / 2), 64 * 1024);
    }

    #[test]
    fn chunked_signing_equals_signing_at_once() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        let size = data.len() as u64;
        let whole = Signature::calculate(
            &data,
            SignatureOptions {
                block_size: block_size_for(size),
                crypto_hash_size: HASH_BYTES,
            },
        );
        let chunked = {
            // A small chunk forces many pieces.
            let mut out = Vec::new();
            let block = u64::from(block_size_for(size));
            for (i, piece) in data.chunks((block * 3) as usize).enumerate() {
                let part = Signature::calculate(
                    piece,
                    SignatureOptions {
                        block_size: block as u32,
                        crypto_hash_size: HASH_BYTES,
                    },
                )
                .into_serialized();
                out.extend_from_slice(&part[if i == 0 { 0 } else { 12 }..]);
            }
            out
        };
        assert_eq!(whole.serialized(), &chunked[..]);
        assert_eq!(calculate(&data[..], size).unwrap(), whole.serialized());
        assert_eq!(whole.serialized().len() as u64, signature_len(size));
    }

    #[test]
    fn the_short_last_block_is_recognised_by_its_entry() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
        let signature = parse(calculate(&data[..], 5000).unwrap(), 5000).unwrap();
        // 1 KiB blocks: the last 904 bytes are the short block.
        assert!(is_short_last_block(&signature, 5000, &data[4096..]));
        let mut other = data[4096..].to_vec();
        other[10] ^= 1;
        assert!(!is_short_last_block(&signature, 5000, &other));
        assert!(!is_short_last_block(&signature, 5000, &data[4095..]));
        // A file of whole blocks has no short block.
        let whole = parse(calculate(&data[..4096], 4096).unwrap(), 4096).unwrap();
        assert!(!is_short_last_block(&whole, 4096, &[]));
    }

    #[test]
    fn empty_files_have_a_header_only_signature() {
        let sig = calculate(&[][..], 0).unwrap();
        assert_eq!(sig.len() as u64, signature_len(0));
        assert!(parse(sig, 0).is_ok());
    }

    #[test]
    fn a_signature_for_another_size_is_refused() {
        let data = vec![1u8; 300_000];
        let sig = calculate(&data[..], 300_000).unwrap();
        assert!(parse(sig.clone(), 300_000).is_ok());
        assert!(matches!(
            parse(sig, 300_000_000),
            Err(SignatureError::WrongBlockSize { .. })
        ));
        assert!(matches!(
            parse(vec![1, 2, 3], 10),
            Err(SignatureError::Malformed)
        ));
    }
}
