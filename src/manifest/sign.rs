//! The publisher's half of the trust chain: RSA keys and detached signatures.
//!
//! A [`SigningKey`] is loaded from a PKCS#8 PEM private key and signs the exact
//! bytes of a record with RSA PKCS#1 v1.5 and SHA-256; the result is the raw
//! signature that goes into the `.sig` file beside the record. Keys below
//! [`MIN_KEY_BITS`] are refused here, so nothing weaker is ever published.
//! Reading the key file and naming it in errors is left to `publish`; checking
//! signatures is `verify.rs`'s job and never needs anything from this file.
//!
//! The `rsa` crate's timing advisory (RUSTSEC-2023-0071) concerns private-key
//! operations an attacker can time; signing happens offline on the publisher.

use rsa::pkcs1v15::SigningKey as Pkcs1SigningKey;
use rsa::pkcs8::der::zeroize::Zeroizing;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::signature::{SignatureEncoding, Signer};
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};
use sha2::Sha256;

use super::format::MIN_KEY_BITS;

/// Why a key could not be made, loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The text is not a PKCS#8 PEM RSA private key, or its numbers are inconsistent.
    #[error("not a PKCS#8 PEM RSA private key")]
    KeyFormat(#[source] rsa::pkcs8::Error),
    /// The key parsed but failed the consistency check of its components.
    #[error("inconsistent RSA private key")]
    KeyInvalid(#[source] rsa::Error),
    /// The modulus is shorter than [`MIN_KEY_BITS`].
    #[error("key has {bits} bits, fewer than the {MIN_KEY_BITS} required")]
    KeyTooSmall {
        /// Bits of the refused key's modulus.
        bits: usize,
    },
    /// Generating a key pair failed.
    #[error("failed to generate an RSA key pair of {bits} bits")]
    Generate {
        /// Bits asked for.
        bits: usize,
        /// What the `rsa` crate reported.
        #[source]
        source: rsa::Error,
    },
    /// Writing a private key as PKCS#8 PEM failed.
    #[error("failed to encode the private key")]
    EncodePrivate(#[source] rsa::pkcs8::Error),
    /// Writing a public key as SPKI PEM failed.
    #[error("failed to encode the public key")]
    EncodePublic(#[source] rsa::pkcs8::spki::Error),
    /// The RSA operation itself failed.
    #[error("failed to sign")]
    Sign(#[source] rsa::signature::Error),
}

/// A private key that is fit to sign published records.
pub(crate) struct SigningKey {
    signing: Pkcs1SigningKey<Sha256>,
    bits: usize,
}

impl std::fmt::Debug for SigningKey {
    /// Shows only the size, so a stray `{:?}` never prints key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("bits", &self.bits)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Parses a PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`) RSA private key and
    /// refuses one shorter than [`MIN_KEY_BITS`].
    pub(crate) fn from_pkcs8_pem(pem: &str) -> Result<SigningKey, SignError> {
        let key = RsaPrivateKey::from_pkcs8_pem(pem).map_err(SignError::KeyFormat)?;
        SigningKey::from_private_key(key)
    }

    /// Wraps a private key after the size and consistency checks.
    fn from_private_key(key: RsaPrivateKey) -> Result<SigningKey, SignError> {
        let bits = key.n().bits();
        if bits < MIN_KEY_BITS {
            return Err(SignError::KeyTooSmall { bits });
        }
        key.validate().map_err(SignError::KeyInvalid)?;
        Ok(SigningKey {
            signing: Pkcs1SigningKey::new(key),
            bits,
        })
    }

    /// Bits of the modulus.
    #[cfg(test)]
    pub(crate) fn bits(&self) -> usize {
        self.bits
    }

    /// The public half, which clients pin: `publish` checks the previous
    /// record with it before going up from its version.
    pub(crate) fn public_key(&self) -> RsaPublicKey {
        RsaPublicKey::from(self.signing.as_ref())
    }

    /// Signs `bytes` exactly as given (no canonicalisation) and returns the raw
    /// signature, as long as the modulus in bytes.
    pub(crate) fn sign(&self, bytes: &[u8]) -> Result<Vec<u8>, SignError> {
        let signature = self.signing.try_sign(bytes).map_err(SignError::Sign)?;
        Ok(signature.to_vec())
    }
}

/// A fresh key pair, both halves as PEM text ready to be written to files.
pub(crate) struct KeyPair {
    /// PKCS#8 PEM private key; wiped from memory when dropped.
    pub private_pem: Zeroizing<String>,
    /// SPKI PEM public key (`-----BEGIN PUBLIC KEY-----`), the one clients pin.
    pub public_pem: String,
}

impl std::fmt::Debug for KeyPair {
    /// Shows only the public half.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair")
            .field("public_pem", &self.public_pem)
            .finish_non_exhaustive()
    }
}

/// Generates an RSA key pair with a modulus of `bits` bits and exponent 65537.
///
/// Any size is generated, so tests can make a small key to see it refused;
/// [`SigningKey::from_pkcs8_pem`] is where the minimum is enforced.
pub(crate) fn generate_key_pair(bits: usize) -> Result<KeyPair, SignError> {
    let private = RsaPrivateKey::new(&mut rand::thread_rng(), bits)
        .map_err(|source| SignError::Generate { bits, source })?;
    let private_pem = private
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(SignError::EncodePrivate)?;
    let public_pem = RsaPublicKey::from(&private)
        .to_public_key_pem(LineEnding::LF)
        .map_err(SignError::EncodePublic)?;
    Ok(KeyPair {
        private_pem,
        public_pem,
    })
}

/// One 3072-bit key pair for the whole test binary: generating one takes
/// seconds, and every test that signs can share it.
#[cfg(test)]
pub(crate) fn test_key_pair() -> &'static KeyPair {
    static KEY: std::sync::OnceLock<KeyPair> = std::sync::OnceLock::new();
    KEY.get_or_init(|| generate_key_pair(MIN_KEY_BITS).expect("test key generation"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::pkcs1v15::{Signature, VerifyingKey};
    use rsa::pkcs8::DecodePublicKey;
    use rsa::signature::Verifier;

    fn verifying_key(pair: &KeyPair) -> VerifyingKey<Sha256> {
        let public = RsaPublicKey::from_public_key_pem(&pair.public_pem).expect("public pem");
        VerifyingKey::new(public)
    }

    #[test]
    fn signature_verifies_over_the_exact_bytes() {
        let pair = test_key_pair();
        let key = SigningKey::from_pkcs8_pem(&pair.private_pem).expect("load key");
        assert_eq!(key.bits(), MIN_KEY_BITS);
        let message = b"{\n  \"format\": 1\n}\n";
        let raw = key.sign(message).expect("sign");
        assert_eq!(raw.len(), MIN_KEY_BITS / 8);

        let verifier = verifying_key(pair);
        let signature = Signature::try_from(raw.as_slice()).expect("raw signature");
        verifier.verify(message, &signature).expect("verifies");
        assert!(
            verifier
                .verify(b"{\n  \"format\": 2\n}\n", &signature)
                .is_err()
        );
    }

    #[test]
    fn key_pair_is_pkcs8_and_spki_pem() {
        let pair = test_key_pair();
        assert!(
            pair.private_pem
                .starts_with("-----BEGIN PRIVATE KEY-----\n")
        );
        assert!(pair.public_pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        assert!(!format!("{pair:?}").contains("PRIVATE"));
    }

    #[test]
    fn small_key_is_refused() {
        let pair = generate_key_pair(2048).expect("generate");
        let err = SigningKey::from_pkcs8_pem(&pair.private_pem).expect_err("too small");
        assert!(
            matches!(err, SignError::KeyTooSmall { bits: 2048 }),
            "{err:?}"
        );
    }

    #[test]
    fn pkcs1_and_garbage_are_refused() {
        let private = RsaPrivateKey::from_pkcs8_pem(&test_key_pair().private_pem).expect("pem");
        let pkcs1 = private.to_pkcs1_pem(LineEnding::LF).expect("pkcs1");
        assert!(pkcs1.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
        let err = SigningKey::from_pkcs8_pem(&pkcs1).expect_err("pkcs1");
        assert!(matches!(err, SignError::KeyFormat(_)), "{err:?}");

        let err = SigningKey::from_pkcs8_pem(&test_key_pair().public_pem).expect_err("public");
        assert!(matches!(err, SignError::KeyFormat(_)), "{err:?}");
        let err = SigningKey::from_pkcs8_pem("not a key").expect_err("garbage");
        assert!(matches!(err, SignError::KeyFormat(_)), "{err:?}");
    }
}
