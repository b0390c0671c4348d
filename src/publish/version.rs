//! The version of a new publish: above the one in the previous timestamp
//! record, once the signing key vouches for that record.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use super::error::PublishError;
use crate::manifest::format::{
    MANIFEST_FILE, SIGNATURE_MAX_BYTES, TIMESTAMP_FILE, TIMESTAMP_MAX_BYTES, signature_of,
};
use crate::manifest::sign::SigningKey;
use crate::manifest::verify::{ManifestError, PinnedKey, verify_published_version};

/// The version to publish at Unix time `now` in the records folder `meta_dir`,
/// checked against the previous record with `signer`'s public half; nothing is
/// written, so a refusal leaves the repository as it was.
pub(super) fn next_version(
    meta_dir: &Path,
    signer: &SigningKey,
    now: u64,
) -> Result<u64, PublishError> {
    above(meta_dir, previous_version(meta_dir, signer)?, now)
}

/// The version after `previous`: above it and, normally, `now`, so versions
/// also go up across a lost `.wpkgsync` folder. Refused when the previous
/// version is the last one: a repeated version would let a server serve either
/// manifest under it.
fn above(meta_dir: &Path, previous: Option<u64>, now: u64) -> Result<u64, PublishError> {
    match previous {
        None => Ok(now),
        Some(version) => version
            .checked_add(1)
            .map(|next| next.max(now))
            .ok_or_else(|| PublishError::VersionExhausted {
                path: meta_dir.join(TIMESTAMP_FILE),
                version,
            }),
    }
}

/// The version of the previous timestamp record, checked with the public half
/// of the signing key: anyone who can write the repository can edit the
/// unsigned bytes, and a version moved to the end of the range could never go
/// up again. `None` for a repository never published (none of the four records
/// is there); a record that is missing beside the others, damaged, or signed
/// with another key is refused.
fn previous_version(meta_dir: &Path, signer: &SigningKey) -> Result<Option<u64>, PublishError> {
    let record_path = meta_dir.join(TIMESTAMP_FILE);
    let signature_path = meta_dir.join(signature_of(TIMESTAMP_FILE));
    let refused = |path: &Path, why: String| PublishError::PreviousRecord {
        path: path.to_path_buf(),
        why,
    };
    let record = read_record(&record_path, TIMESTAMP_MAX_BYTES)?;
    let signature = read_record(&signature_path, SIGNATURE_MAX_BYTES)?;
    let (record, signature) = match (record, signature) {
        (Some(record), Some(signature)) => (record, signature),
        (None, None) => {
            let manifests = [MANIFEST_FILE.to_string(), signature_of(MANIFEST_FILE)];
            return match manifests
                .iter()
                .find(|name| meta_dir.join(name).symlink_metadata().is_ok())
            {
                None => Ok(None),
                Some(name) => Err(refused(&record_path, format!("is missing beside {name}"))),
            };
        }
        (None, Some(_)) => return Err(refused(&record_path, "is missing".into())),
        (Some(_), None) => return Err(refused(&signature_path, "is missing".into())),
    };
    let key = PinnedKey::from_public(signer.public_key())
        .map_err(|why| refused(&record_path, format!("cannot be checked: {why}")))?;
    match verify_published_version(&key, &record, &signature) {
        Ok(version) => Ok(Some(version)),
        Err(ManifestError::BadSignature { .. }) => Err(refused(
            &record_path,
            "does not verify with the signing key (edited without it, or signed with another key)"
                .into(),
        )),
        Err(err) => Err(refused(&record_path, err.to_string())),
    }
}

/// Reads a record of the previous publish, at most `limit` bytes; `None` when
/// it is not there.
fn read_record(path: &Path, limit: u64) -> Result<Option<Vec<u8>>, PublishError> {
    let read_error = |source| PublishError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(read_error(err)),
    };
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > limit {
        return Err(PublishError::PreviousRecord {
            path: path.to_path_buf(),
            why: format!("is larger than {limit} bytes"),
        });
    }
    Ok(Some(bytes))
}
