//! A pulse: the publisher's timestamp record and its signature, exactly as
//! published, which is all a receiver needs to learn, with the pinned key, that
//! a newer version exists.
//!
//! The record comes from the repository (`publish --announce`) or from the state
//! folder, where a sync keeps the one it verified so that the pulse after the run
//! and a listener's answer carry it. Checking one is `manifest::verify`'s
//! [`verify_timestamp`] with the same rules as a sync (signature over the exact
//! bytes first, then rollback and expiry); this file only frames it.

use std::path::Path;

use crate::manifest::format::{SIGNATURE_MAX_BYTES, TIMESTAMP_FILE, signature_of};
use crate::manifest::verify::{
    Accepted, ManifestError, PinnedKey, VerifiedTimestamp, verify_timestamp,
};
use crate::store::StoreError;
use crate::store::state_dir::{StateDir, StateFile};

use super::datagram::{Datagram, EncodeError, MAX_DATAGRAM, Message};

/// A timestamp record and its detached signature; not yet verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedRecord {
    /// The exact bytes of `timestamp.json`.
    pub record: Vec<u8>,
    /// The exact bytes of `timestamp.json.sig`.
    pub signature: Vec<u8>,
}

impl SignedRecord {
    /// Reads `timestamp.json` and its signature from a repository's
    /// `.wpkgsync` folder, bounded by the size of a datagram.
    pub fn read(meta_dir: &Path) -> std::io::Result<SignedRecord> {
        SignedRecord::read_files(
            &meta_dir.join(TIMESTAMP_FILE),
            &meta_dir.join(signature_of(TIMESTAMP_FILE)),
        )
    }

    fn read_files(record: &Path, signature: &Path) -> std::io::Result<SignedRecord> {
        Ok(SignedRecord {
            record: read_limited(record, MAX_DATAGRAM as u64)?,
            signature: read_limited(signature, SIGNATURE_MAX_BYTES)?,
        })
    }

    /// The record a sync verified, kept in `state_dir`, if any.
    pub fn kept(state_dir: &StateDir) -> Option<SignedRecord> {
        SignedRecord::read_files(
            &state_dir.file(StateFile::Timestamp),
            &state_dir.file(StateFile::TimestampSignature),
        )
        .ok()
    }

    /// Keeps a record a sync just verified in `state_dir`; signature first, so
    /// the record never sits beside another record's signature after a crash
    /// for longer than the next run.
    pub fn keep(&self, state_dir: &StateDir) -> Result<(), StoreError> {
        state_dir.write(StateFile::TimestampSignature, &self.signature)?;
        state_dir.write(StateFile::Timestamp, &self.record)
    }

    /// Checks the signature with the pinned key, then rollback against
    /// `accepted` and expiry against `now_unix`, as a sync would. The manifest
    /// accepted under that version is not asked for: an equal version is no
    /// news to a listener, whatever manifest it names.
    pub fn verify(
        &self,
        key: &PinnedKey,
        accepted: Option<u64>,
        now_unix: u64,
    ) -> Result<VerifiedTimestamp, ManifestError> {
        let accepted = accepted.map(Accepted::version);
        verify_timestamp(key, &self.record, &self.signature, accepted, now_unix)
    }

    /// The datagram carrying this record; refused when it would not fit.
    pub fn datagram(&self, spread: bool, ttl: u8) -> Result<Vec<u8>, EncodeError> {
        Datagram::pulse(self.record.clone(), self.signature.clone(), spread, ttl).encode()
    }

    /// The record of a decoded pulse; `None` for other messages.
    pub fn from_message(message: Message) -> Option<SignedRecord> {
        match message {
            Message::Pulse { record, signature } => Some(SignedRecord { record, signature }),
            Message::Have { .. } => None,
        }
    }
}

/// Reads a file, refusing one larger than `limit` bytes.
fn read_limited(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(limit + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{} is larger than {limit} bytes", path.display()),
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::manifest::format::{FORMAT, Timestamp};
    use crate::manifest::sign;

    /// A far future expiry for records that must stay valid.
    pub(crate) const NEVER: u64 = 4_000_000_000;

    /// The pinned half of the test key pair.
    pub(crate) fn public_key() -> PinnedKey {
        PinnedKey::from_pem(&sign::test_key_pair().public_pem).unwrap()
    }

    /// A timestamp record of `version`, expiring at `expires`, signed with the
    /// test key, pretty-printed as `publish` writes it.
    pub(crate) fn signed(version: u64, expires: u64) -> SignedRecord {
        let record = serde_json::to_vec_pretty(&Timestamp {
            format: FORMAT,
            version,
            manifest_sha256: "ab".repeat(32),
            manifest_size: 12_345_678,
            published: 1_700_000_000,
            expires,
        })
        .unwrap();
        let key = sign::SigningKey::from_pkcs8_pem(&sign::test_key_pair().private_pem).unwrap();
        let signature = key.sign(&record).unwrap();
        SignedRecord { record, signature }
    }

    #[test]
    fn a_published_record_with_a_3072_bit_signature_fits_a_datagram() {
        let signed = signed(u64::MAX, u64::MAX);
        let bytes = signed.datagram(true, 16).unwrap();
        assert!(bytes.len() < 800, "{} bytes", bytes.len());
        let decoded = Datagram::decode(&bytes).unwrap();
        assert_eq!(SignedRecord::from_message(decoded.message), Some(signed));
    }

    #[test]
    fn a_genuine_pulse_verifies_and_a_forged_one_does_not() {
        let key = public_key();
        let genuine = signed(42, NEVER);
        assert_eq!(
            genuine
                .verify(&key, Some(41), 1_800_000_000)
                .unwrap()
                .version(),
            42
        );

        // The version raised, the signature kept: what a forger can do.
        let text = String::from_utf8(genuine.record.clone()).unwrap();
        let forged = SignedRecord {
            record: text.replace("42", "43").into_bytes(),
            signature: genuine.signature.clone(),
        };
        assert!(matches!(
            forged.verify(&key, None, 1_800_000_000),
            Err(ManifestError::BadSignature { .. })
        ));

        // Signed by someone else.
        let other = sign::generate_key_pair(1024).unwrap();
        let other = rsa::pkcs8::DecodePrivateKey::from_pkcs8_pem(&other.private_pem).unwrap();
        let other = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(other);
        let signature = rsa::signature::SignatureEncoding::to_vec(&rsa::signature::Signer::sign(
            &other,
            &genuine.record,
        ));
        let stranger = SignedRecord {
            record: genuine.record.clone(),
            signature,
        };
        assert!(matches!(
            stranger.verify(&key, None, 1_800_000_000),
            Err(ManifestError::BadSignature { .. })
        ));
    }

    #[test]
    fn old_and_expired_pulses_are_refused() {
        let key = public_key();
        assert!(matches!(
            signed(5, NEVER).verify(&key, Some(6), 1_800_000_000),
            Err(ManifestError::Rollback { .. })
        ));
        assert!(matches!(
            signed(7, 1_800_000_000).verify(&key, Some(6), 1_800_000_000),
            Err(ManifestError::Expired { .. })
        ));
    }

    #[test]
    fn kept_records_read_back() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(SignedRecord::kept(&StateDir::new(dir.path())), None);
        let signed = signed(3, NEVER);
        signed.keep(&StateDir::new(dir.path())).unwrap();
        assert_eq!(SignedRecord::kept(&StateDir::new(dir.path())), Some(signed));
        std::fs::write(dir.path().join(TIMESTAMP_FILE), vec![b' '; 2000]).unwrap();
        assert_eq!(SignedRecord::kept(&StateDir::new(dir.path())), None);
    }
}
