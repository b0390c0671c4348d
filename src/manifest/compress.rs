//! How parts and manifests travel: zstd-compressed whole, or as a zstd patch
//! against the version of the record the client verified before (zstd's
//! patch-from: the old bytes are the reference prefix of the new frame).
//!
//! Decoding is bounded by the size the signed manifest names: the decoder's
//! window may not exceed what a genuine frame of that size needs, and output
//! past the size is refused, so a hostile frame cannot make the client hold
//! more than the record it claims to be.

use std::io::{self, Read, Write};

use zstd::stream::read::Decoder;
use zstd::stream::write::Encoder;

/// Compression level of whole records: the hex digests that fill them gain
/// little from more effort.
const LEVEL: i32 = 9;
/// The decoder accepts windows of 8 MiB whatever the record's size.
const MIN_WINDOW_LOG: u32 = 23;

/// Why compressed bytes did not decode into a record.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DecodeError {
    /// The frame decodes to more than the named size.
    #[error("it decodes to more than {0} bytes")]
    TooLarge(u64),
    /// Not a zstd frame, or not one made against this base.
    #[error("it is not valid zstd data: {0}")]
    Invalid(io::Error),
}

/// `bytes` as one zstd frame.
pub(crate) fn compress(bytes: &[u8]) -> io::Result<Vec<u8>> {
    encode(bytes, &[])
}

/// A patch that turns `from` into `to`.
pub(crate) fn patch(from: &[u8], to: &[u8]) -> io::Result<Vec<u8>> {
    encode(to, from)
}

/// The record of `size` bytes in the frame `data`.
pub(crate) fn decompress(data: &[u8], size: u64) -> Result<Vec<u8>, DecodeError> {
    decode(data, &[], size)
}

/// The record of `size` bytes that the patch `data` makes of `from`.
pub(crate) fn apply_patch(from: &[u8], data: &[u8], size: u64) -> Result<Vec<u8>, DecodeError> {
    decode(data, from, size)
}

fn encode(bytes: &[u8], prefix: &[u8]) -> io::Result<Vec<u8>> {
    let mut encoder = Encoder::with_ref_prefix(Vec::new(), LEVEL, prefix)?;
    encoder.set_pledged_src_size(Some(bytes.len() as u64))?;
    encoder.include_checksum(false)?;
    if !prefix.is_empty() {
        // The window must reach back over the whole prefix, as `zstd
        // --patch-from` sets it; long-distance matching finds the far matches.
        encoder.window_log(window_log(prefix.len() as u64 + bytes.len() as u64))?;
        encoder.long_distance_matching(true)?;
    }
    encoder.write_all(bytes)?;
    encoder.finish()
}

fn decode(data: &[u8], prefix: &[u8], size: u64) -> Result<Vec<u8>, DecodeError> {
    let mut decoder = Decoder::with_ref_prefix(data, prefix).map_err(DecodeError::Invalid)?;
    // Frames made without their size in the header declare the level's
    // default window; up to 8 MiB costs little, beyond that only what the
    // record needs.
    decoder
        .window_log_max(window_log(prefix.len() as u64 + size).max(MIN_WINDOW_LOG))
        .map_err(DecodeError::Invalid)?;
    let mut out = Vec::with_capacity(size.min(1 << 20) as usize);
    decoder
        .take(size + 1)
        .read_to_end(&mut out)
        .map_err(DecodeError::Invalid)?;
    if out.len() as u64 > size {
        return Err(DecodeError::TooLarge(size));
    }
    Ok(out)
}

/// The smallest window (as a power of two, within zstd's limits) that covers
/// `span` bytes.
fn window_log(span: u64) -> u32 {
    let needed = 64 - span.max(1).saturating_sub(1).leading_zeros();
    needed.clamp(10, 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(seed: u64, entries: usize) -> Vec<u8> {
        use sha2::{Digest, Sha256};
        let mut out = String::from("{\"files\":[\n");
        for i in 0..entries {
            let digest = hex::encode(Sha256::digest(format!("{seed}-{i}")));
            out.push_str(&format!(
                "{{\"path\":\"packages/tree/f{i:05}.bin\",\"size\":{},\"sha256\":\"{digest}\"}},\n",
                i * 7
            ));
        }
        out.push_str("]}\n");
        out.into_bytes()
    }

    #[test]
    fn a_record_round_trips_whole_and_as_a_patch() {
        let old = record(1, 2000);
        let mut new = old.clone();
        // One entry changed in the middle.
        let at = new.len() / 2;
        new[at..at + 8].copy_from_slice(b"01234567");
        let whole = compress(&new).unwrap();
        assert_eq!(decompress(&whole, new.len() as u64).unwrap(), new);
        let patch = patch(&old, &new).unwrap();
        assert!(
            patch.len() < 200,
            "a patch of one changed entry takes {} bytes",
            patch.len()
        );
        assert_eq!(apply_patch(&old, &patch, new.len() as u64).unwrap(), new);
    }

    #[test]
    fn more_than_the_named_size_is_refused() {
        let bytes = record(2, 100);
        let whole = compress(&bytes).unwrap();
        let err = decompress(&whole, bytes.len() as u64 - 1).unwrap_err();
        assert!(matches!(err, DecodeError::TooLarge(_)), "{err}");
    }

    #[test]
    fn a_patch_against_another_base_or_garbage_is_refused() {
        let old = record(3, 500);
        let new = record(4, 500);
        let patch = patch(&old, &new).unwrap();
        let other = record(5, 500);
        // Decoding against another prefix yields other bytes or fails: never
        // the record, which the sha256 check then tells.
        if let Ok(out) = apply_patch(&other, &patch, new.len() as u64) {
            assert_ne!(out, new);
        }
        assert!(matches!(
            decompress(b"not zstd at all", 100),
            Err(DecodeError::Invalid(_))
        ));
    }

    #[test]
    fn a_frame_needing_a_larger_window_than_the_size_allows_is_refused() {
        // A frame declaring a 128 MiB window, claimed to be a 2 KiB record:
        // the decoder refuses the window instead of allocating it.
        let big = vec![7u8; 4 << 20];
        let mut encoder = Encoder::new(Vec::new(), 3).unwrap();
        encoder.window_log(27).unwrap();
        encoder.write_all(&big).unwrap();
        let frame = encoder.finish().unwrap();
        assert!(decompress(&frame, 2048).is_err());
    }
}
