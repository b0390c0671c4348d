//! The only way to a [`VerifiedManifest`]: the timestamp, then the manifest it
//! names, then the parts a run needs, each read bounded from the source and
//! verified. A record that changed since the copy the state folder keeps is
//! fetched as a patch against that copy when the server has one; one that did
//! not change is not fetched at all.

use futures::{StreamExt, TryStreamExt, stream};
use sha2::{Digest, Sha256};

use super::compress::{self, DecodeError};
use super::format::{
    MANIFEST_FILE, MANIFEST_MAX_BYTES, META_DIR, SIGNATURE_MAX_BYTES, TIMESTAMP_FILE,
    TIMESTAMP_MAX_BYTES, compressed_limit, delta_path, part_path, signature_of,
};
use super::verify::{
    Accepted, ManifestError, PinnedKey, VerifiedManifest, VerifiedTimestamp, verify_manifest,
    verify_timestamp,
};
use crate::clock::now_unix;
use crate::error::Error;
use crate::gossip::pulse::SignedRecord;
use crate::store::manifest_cache;
use crate::store::state_dir::StateDir;
use crate::transport::{Source, TransportError, TransportErrorKind};

/// Parts fetched at once: each is a few requests, so several overlap.
const PARTS_IN_FLIGHT: usize = 8;

/// Reads and verifies the timestamp, the manifest it names and the part of
/// the files outside the package folders (the top level and the package
/// definitions, which the selection reads). With `keep` (not in a dry run),
/// the timestamp record is kept in `state_dir` for the gossip pulse and what
/// was downloaded is cached for the next run.
pub(crate) async fn load<S: Source>(
    source: &S,
    key: &PinnedKey,
    accepted: Option<Accepted>,
    state_dir: &StateDir,
    keep: bool,
) -> Result<VerifiedManifest, Error> {
    let record = read_record(source, TIMESTAMP_FILE, TIMESTAMP_MAX_BYTES).await?;
    let signature = read_record(source, &signature_of(TIMESTAMP_FILE), SIGNATURE_MAX_BYTES).await?;
    let timestamp = verify_timestamp(key, &record, &signature, accepted, now_unix())?;
    if keep {
        // The pulse after the run and a listener's answers carry it as published.
        SignedRecord { record, signature }.keep(state_dir)?;
    }
    let cached = manifest_cache::load(state_dir);
    let unchanged = cached
        .as_ref()
        .filter(|(bytes, _)| sha256(bytes) == *timestamp.manifest_sha256())
        .and_then(|(bytes, signature)| verify_manifest(key, &timestamp, bytes, signature).ok());
    let mut manifest = match unchanged {
        Some(manifest) => manifest,
        None => {
            let base = cached.as_ref().map(|(bytes, _)| bytes.as_slice());
            let (bytes, signature) = download_manifest(source, &timestamp, base).await?;
            let verified = verify_manifest(key, &timestamp, &bytes, &signature)?;
            if keep {
                manifest_cache::save(state_dir, &bytes, &signature)?;
            }
            verified
        }
    };
    load_parts(
        source,
        &mut manifest,
        |folder| folder.is_none(),
        state_dir,
        keep,
    )
    .await?;
    Ok(manifest)
}

/// The manifest the timestamp names and its signature, from a patch against
/// `base` (the cached manifest) when the server has one, else whole.
async fn download_manifest<S: Source>(
    source: &S,
    timestamp: &VerifiedTimestamp,
    base: Option<&[u8]>,
) -> Result<(Vec<u8>, Vec<u8>), Error> {
    let size = timestamp.manifest_size().min(MANIFEST_MAX_BYTES);
    let bytes = match patched(source, timestamp.manifest_sha256(), size, base).await? {
        Some(bytes) => bytes,
        None => read_record(source, MANIFEST_FILE, size).await?,
    };
    let signature = read_record(source, &signature_of(MANIFEST_FILE), SIGNATURE_MAX_BYTES).await?;
    Ok((bytes, signature))
}

/// Adds to `manifest` the parts of the package folders `wanted` accepts
/// (`wanted(Some(folder))`; `wanted(None)` is the part of every other file),
/// each from the state folder's cache when it holds those exact bytes, else
/// from `source`. With `keep`, fetched parts are cached and cached parts of
/// folders the manifest no longer names are removed.
pub(crate) async fn load_parts<S: Source>(
    source: &S,
    manifest: &mut VerifiedManifest,
    wanted: impl Fn(Option<&str>) -> bool,
    state_dir: &StateDir,
    keep: bool,
) -> Result<(), Error> {
    let needed: Vec<usize> = (0..manifest.parts().len())
        .filter(|&i| {
            let part = &manifest.parts()[i];
            !part.is_loaded() && wanted(part.folder())
        })
        .collect();
    let parts = manifest.parts();
    let loaded: Vec<(usize, Vec<u8>, bool)> = stream::iter(needed)
        .map(|index| async move {
            let part = &parts[index];
            let cached = manifest_cache::part(state_dir, part.folder());
            if let Some(bytes) = &cached
                && sha256(bytes) == *part.sha256()
            {
                return Ok((index, cached.expect("matched above"), false));
            }
            let bytes = match patched(source, part.sha256(), part.size(), cached.as_deref()).await?
            {
                Some(bytes) => bytes,
                None => whole_part(source, part.sha256(), part.size()).await?,
            };
            Ok::<_, Error>((index, bytes, true))
        })
        .buffered(PARTS_IN_FLIGHT)
        .try_collect()
        .await?;
    let (loaded, fetched): (Vec<(usize, Vec<u8>)>, Vec<bool>) = loaded
        .into_iter()
        .map(|(index, bytes, fetched)| ((index, bytes), fetched))
        .unzip();
    manifest.add_parts(&loaded)?;
    if keep {
        for ((index, bytes), _) in loaded.iter().zip(fetched).filter(|(_, fetched)| *fetched) {
            manifest_cache::save_part(state_dir, manifest.parts()[*index].folder(), bytes)?;
        }
        manifest_cache::prune_parts(state_dir, manifest.parts().iter().map(|p| p.folder()));
    }
    Ok(())
}

/// The record of sha256 `sha256` and `size` bytes made from `base` by the
/// server's patch, when the server has one for that base and it yields those
/// exact bytes. A patch is unsigned: one that fails is ignored, and the caller
/// fetches the whole record.
async fn patched<S: Source>(
    source: &S,
    sha256: &[u8; 32],
    size: u64,
    base: Option<&[u8]>,
) -> Result<Option<Vec<u8>>, Error> {
    let Some(base) = base else {
        return Ok(None);
    };
    let path = delta_path(&hex::encode(sha256), &hex::encode(self::sha256(base)));
    let data = match source.read_limited(&path, compressed_limit(size)).await {
        Ok(data) => data,
        Err(e)
            if matches!(
                e.kind(),
                TransportErrorKind::Unreachable | TransportErrorKind::Timeout
            ) =>
        {
            return Err(Error::Transport(e));
        }
        Err(_) => return Ok(None),
    };
    Ok(compress::apply_patch(base, &data, size)
        .ok()
        .filter(|bytes| self::sha256(bytes) == *sha256))
}

/// The compressed part of sha256 `sha256`, decompressed to at most `size`
/// bytes; the caller checks them against the manifest.
async fn whole_part<S: Source>(source: &S, sha256: &[u8; 32], size: u64) -> Result<Vec<u8>, Error> {
    let path = part_path(&hex::encode(sha256));
    let data = read_bounded(source, &path, compressed_limit(size)).await?;
    compress::decompress(&data, size).map_err(|e| {
        Error::Manifest(match e {
            DecodeError::TooLarge(limit) => ManifestError::TooLarge { name: path, limit },
            DecodeError::Invalid(_) => ManifestError::Malformed {
                name: path,
                why: e.to_string(),
            },
        })
    })
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Reads one record of `.wpkgsync/` by name.
async fn read_record<S: Source>(source: &S, name: &str, limit: u64) -> Result<Vec<u8>, Error> {
    read_bounded(source, &format!("{META_DIR}/{name}"), limit).await
}

/// Reads the repository-relative `path`; a missing or oversized file is a
/// manifest error (204), a lost connection stays a transport error.
async fn read_bounded<S: Source>(source: &S, path: &str, limit: u64) -> Result<Vec<u8>, Error> {
    source
        .read_limited(path, limit)
        .await
        .map_err(|e: TransportError| match e.kind() {
            TransportErrorKind::NotFound => Error::Manifest(ManifestError::Missing {
                name: path.to_owned(),
            }),
            TransportErrorKind::TooLarge => Error::Manifest(ManifestError::TooLarge {
                name: path.to_owned(),
                limit,
            }),
            _ => Error::Transport(e),
        })
}
