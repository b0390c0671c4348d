//! The only way to a [`VerifiedManifest`]: the timestamp, then the manifest it
//! names, each read bounded from the source and verified against the pinned
//! key; the manifest comes from the state folder's cache when the verified
//! timestamp names exactly those bytes.

use super::format::{
    MANIFEST_FILE, MANIFEST_MAX_BYTES, META_DIR, SIGNATURE_MAX_BYTES, TIMESTAMP_FILE,
    TIMESTAMP_MAX_BYTES, signature_of,
};
use super::verify::{
    Accepted, ManifestError, PinnedKey, VerifiedManifest, verify_manifest, verify_timestamp,
};
use crate::clock::now_unix;
use crate::error::Error;
use crate::gossip::pulse::SignedRecord;
use crate::store::manifest_cache;
use crate::store::state_dir::StateDir;
use crate::transport::{Source, TransportError, TransportErrorKind};

/// Reads and verifies the timestamp, then the manifest it names. With `keep`
/// (not in a dry run), the timestamp record is kept in `state_dir` for the
/// gossip pulse and a downloaded manifest is cached for the next run.
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
    if let Some((manifest, signature)) =
        manifest_cache::load(state_dir, timestamp.manifest_sha256())
        && let Ok(verified) = verify_manifest(key, &timestamp, &manifest, &signature)
    {
        return Ok(verified);
    }
    let limit = timestamp.manifest_size().min(MANIFEST_MAX_BYTES);
    let manifest = read_record(source, MANIFEST_FILE, limit).await?;
    let signature = read_record(source, &signature_of(MANIFEST_FILE), SIGNATURE_MAX_BYTES).await?;
    let verified = verify_manifest(key, &timestamp, &manifest, &signature)?;
    if keep {
        manifest_cache::save(state_dir, &manifest, &signature)?;
    }
    Ok(verified)
}

/// Reads one record of `.wpkgsync/`; a missing or oversized one is a manifest
/// error (204), a lost connection stays a transport error.
async fn read_record<S: Source>(source: &S, name: &str, limit: u64) -> Result<Vec<u8>, Error> {
    let path = format!("{META_DIR}/{name}");
    source
        .read_limited(&path, limit)
        .await
        .map_err(|e: TransportError| match e.kind() {
            TransportErrorKind::NotFound => Error::Manifest(ManifestError::Missing { name: path }),
            TransportErrorKind::TooLarge => {
                Error::Manifest(ManifestError::TooLarge { name: path, limit })
            }
            _ => Error::Transport(e),
        })
}
