//! The gossip datagram: what goes into one UDP packet and how it is read back.
//!
//! Every datagram is at most [`MAX_DATAGRAM`] bytes (1 200, below any path MTU a
//! LAN or VPN is likely to have, so it is never fragmented). Integers are
//! big-endian. The byte layout:
//!
//! ```text
//! offset  size  field
//!  0      4     magic "WPGS"
//!  4      1     protocol version, 1
//!  5      1     type: 1 pulse (publisher-signed), 2 have (client-originated)
//!  6      1     flags: bit 0 spread (receivers may relay); bits 1-7 are zero
//!  7      1     TTL: relays left, 0..=16
//!  8      2     payload length N
//! 10      N     payload
//! 10+N    4     type 2 only: CRC-32 (IEEE) of bytes 0..10+N
//! ```
//!
//! Payload of a pulse (type 1), the publisher's records exactly as published,
//! so a receiver checks them with the pinned key and trusts nothing else:
//!
//! ```text
//!  0      2     record length R, at least 1
//!  2      R     .wpkgsync/timestamp.json
//!  2+R    2     signature length S, at least 1
//!  4+R    S     .wpkgsync/timestamp.json.sig
//! ```
//!
//! with 4 + R + S = N. Payload of a have (type 2): 8 bytes, the last manifest
//! version the sender accepted (0: none yet). A have is the sender's own word,
//! signed by no one: its CRC catches damage in transit, not lies, so it may only
//! ever ask for a pulse back, never cause a sync.
//!
//! The header's flags and TTL are not signed: a forger can raise a TTL (up to
//! 16) but not the version, so relaying stays bounded by "once per version".
//!
//! This file only encodes and decodes, checking every length; whether a pulse
//! is genuine is `pulse.rs`'s question, what to do with it `node.rs`'s.

use super::crc32::crc32;

/// Largest datagram sent or accepted, in bytes.
pub const MAX_DATAGRAM: usize = 1200;
/// The first four bytes of every datagram.
pub const MAGIC: [u8; 4] = *b"WPGS";
/// The protocol version this build speaks.
pub const PROTOCOL: u8 = 1;
/// Largest TTL sent or accepted; the INI allows the same range.
pub const MAX_TTL: u8 = 16;
/// Bytes before the payload.
pub const HEADER_LEN: usize = 10;
/// Bytes of the CRC trailer of a client-originated datagram.
pub const CRC_LEN: usize = 4;

const TYPE_PULSE: u8 = 1;
const TYPE_HAVE: u8 = 2;
const FLAG_SPREAD: u8 = 0b0000_0001;
const HAVE_PAYLOAD_LEN: usize = 8;

/// What a datagram carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// The publisher's timestamp record and its signature, as published.
    Pulse {
        /// The exact bytes of `timestamp.json`.
        record: Vec<u8>,
        /// The exact bytes of `timestamp.json.sig`.
        signature: Vec<u8>,
    },
    /// A client's word on the last version it accepted (0: none yet).
    Have {
        /// That version.
        version: u64,
    },
}

/// One decoded datagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Datagram {
    /// Receivers may relay it (when their own INI allows it too).
    pub spread: bool,
    /// Relays left.
    pub ttl: u8,
    /// The payload.
    pub message: Message,
}

/// Why bytes are not a datagram of this protocol.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Fewer bytes than the field being read needs.
    #[error("truncated: {len} bytes, at least {needed} needed")]
    Truncated {
        /// Bytes received.
        len: usize,
        /// Bytes the fields read so far need.
        needed: usize,
    },
    /// More than [`MAX_DATAGRAM`] bytes.
    #[error("oversized: {0} bytes, at most {MAX_DATAGRAM} allowed")]
    Oversized(usize),
    /// Not our magic: another program's packet.
    #[error("not a wpkgsync datagram")]
    BadMagic,
    /// A protocol version this build does not speak.
    #[error("unknown protocol version {0}")]
    UnknownProtocol(u8),
    /// A message type this build does not know.
    #[error("unknown message type {0}")]
    UnknownType(u8),
    /// Reserved flag bits are set.
    #[error("unknown flags {0:#04x}")]
    UnknownFlags(u8),
    /// A TTL above [`MAX_TTL`].
    #[error("TTL {0} above {MAX_TTL}")]
    TtlTooHigh(u8),
    /// The lengths inside do not add up to the bytes received.
    #[error("length fields do not match the {0} bytes received")]
    LengthMismatch(usize),
    /// An empty record or signature.
    #[error("empty {0}")]
    Empty(&'static str),
    /// A client-originated datagram damaged in transit.
    #[error("bad CRC")]
    BadCrc,
}

/// Why a datagram cannot be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// It would exceed [`MAX_DATAGRAM`].
    #[error("a datagram of {0} bytes exceeds the {MAX_DATAGRAM} bytes a pulse may have")]
    Oversized(usize),
    /// A TTL above [`MAX_TTL`].
    #[error("TTL {0} above {MAX_TTL}")]
    TtlTooHigh(u8),
    /// An empty record or signature.
    #[error("empty {0}")]
    Empty(&'static str),
}

impl Datagram {
    /// A pulse of the published timestamp record and its signature.
    pub fn pulse(record: Vec<u8>, signature: Vec<u8>, spread: bool, ttl: u8) -> Datagram {
        Datagram {
            spread,
            ttl,
            message: Message::Pulse { record, signature },
        }
    }

    /// A client's report of its accepted version; never relayed.
    pub fn have(version: u64) -> Datagram {
        Datagram {
            spread: false,
            ttl: 0,
            message: Message::Have { version },
        }
    }

    /// The bytes to send; refuses anything over [`MAX_DATAGRAM`].
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        if self.ttl > MAX_TTL {
            return Err(EncodeError::TtlTooHigh(self.ttl));
        }
        let (kind, payload_len) = match &self.message {
            Message::Pulse { record, signature } => {
                if record.is_empty() {
                    return Err(EncodeError::Empty("record"));
                }
                if signature.is_empty() {
                    return Err(EncodeError::Empty("signature"));
                }
                (TYPE_PULSE, 4 + record.len() + signature.len())
            }
            Message::Have { .. } => (TYPE_HAVE, HAVE_PAYLOAD_LEN),
        };
        let trailer = if kind == TYPE_HAVE { CRC_LEN } else { 0 };
        let total = HEADER_LEN + payload_len + trailer;
        // Checking the total first also keeps every length below in a u16.
        if total > MAX_DATAGRAM {
            return Err(EncodeError::Oversized(total));
        }
        let mut out = Vec::with_capacity(total);
        out.extend_from_slice(&MAGIC);
        out.push(PROTOCOL);
        out.push(kind);
        out.push(if self.spread { FLAG_SPREAD } else { 0 });
        out.push(self.ttl);
        out.extend_from_slice(&u16_len(payload_len));
        match &self.message {
            Message::Pulse { record, signature } => {
                out.extend_from_slice(&u16_len(record.len()));
                out.extend_from_slice(record);
                out.extend_from_slice(&u16_len(signature.len()));
                out.extend_from_slice(signature);
            }
            Message::Have { version } => out.extend_from_slice(&version.to_be_bytes()),
        }
        if kind == TYPE_HAVE {
            let crc = crc32(&out);
            out.extend_from_slice(&crc.to_be_bytes());
        }
        debug_assert_eq!(out.len(), total);
        Ok(out)
    }

    /// Reads one datagram, checking every length against the bytes received.
    pub fn decode(bytes: &[u8]) -> Result<Datagram, DecodeError> {
        if bytes.len() > MAX_DATAGRAM {
            return Err(DecodeError::Oversized(bytes.len()));
        }
        let mut reader = Reader { bytes, at: 0 };
        if reader.take(MAGIC.len())? != MAGIC {
            return Err(DecodeError::BadMagic);
        }
        let protocol = reader.byte()?;
        if protocol != PROTOCOL {
            return Err(DecodeError::UnknownProtocol(protocol));
        }
        let kind = reader.byte()?;
        if kind != TYPE_PULSE && kind != TYPE_HAVE {
            return Err(DecodeError::UnknownType(kind));
        }
        let flags = reader.byte()?;
        if flags & !FLAG_SPREAD != 0 {
            return Err(DecodeError::UnknownFlags(flags));
        }
        let ttl = reader.byte()?;
        if ttl > MAX_TTL {
            return Err(DecodeError::TtlTooHigh(ttl));
        }
        let payload_len = usize::from(reader.u16()?);
        let trailer = if kind == TYPE_HAVE { CRC_LEN } else { 0 };
        let needed = HEADER_LEN + payload_len + trailer;
        if bytes.len() < needed {
            return Err(DecodeError::Truncated {
                len: bytes.len(),
                needed,
            });
        }
        if bytes.len() != needed {
            return Err(DecodeError::LengthMismatch(bytes.len()));
        }
        let message = if kind == TYPE_HAVE {
            // The checksum first: nothing of a damaged datagram is read.
            let (body, trailer) = bytes.split_at(HEADER_LEN + payload_len);
            let mut sent = [0u8; CRC_LEN];
            sent.copy_from_slice(trailer);
            if crc32(body) != u32::from_be_bytes(sent) {
                return Err(DecodeError::BadCrc);
            }
            if payload_len != HAVE_PAYLOAD_LEN {
                return Err(DecodeError::LengthMismatch(bytes.len()));
            }
            let mut version = [0u8; HAVE_PAYLOAD_LEN];
            version.copy_from_slice(reader.take(HAVE_PAYLOAD_LEN)?);
            Message::Have {
                version: u64::from_be_bytes(version),
            }
        } else {
            let record_len = usize::from(reader.u16()?);
            if record_len == 0 {
                return Err(DecodeError::Empty("record"));
            }
            let record = reader.take(record_len)?.to_vec();
            let signature_len = usize::from(reader.u16()?);
            if signature_len == 0 {
                return Err(DecodeError::Empty("signature"));
            }
            let signature = reader.take(signature_len)?.to_vec();
            if 4 + record_len + signature_len != payload_len {
                return Err(DecodeError::LengthMismatch(bytes.len()));
            }
            Message::Pulse { record, signature }
        };
        Ok(Datagram {
            spread: flags & FLAG_SPREAD != 0,
            ttl,
            message,
        })
    }
}

/// A length known to fit: [`Datagram::encode`] checked the total first.
fn u16_len(len: usize) -> [u8; 2] {
    u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes()
}

/// Reads fields front to back, never past the end.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.at.checked_add(len).filter(|&e| e <= self.bytes.len());
        let Some(end) = end else {
            return Err(DecodeError::Truncated {
                len: self.bytes.len(),
                needed: self.at.saturating_add(len),
            });
        };
        let field = &self.bytes[self.at..end];
        self.at = end;
        Ok(field)
    }

    fn byte(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        let field = self.take(2)?;
        Ok(u16::from_be_bytes([field[0], field[1]]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample_pulse() -> Datagram {
        Datagram::pulse(
            br#"{"format":1,"version":7}"#.to_vec(),
            vec![0xAB; 384],
            true,
            3,
        )
    }

    #[test]
    fn the_layout_is_the_documented_one() {
        let bytes = sample_pulse().encode().unwrap();
        assert_eq!(&bytes[..4], b"WPGS");
        assert_eq!(bytes[4..8], [PROTOCOL, TYPE_PULSE, FLAG_SPREAD, 3]);
        let payload = u16::from_be_bytes([bytes[8], bytes[9]]) as usize;
        assert_eq!(bytes.len(), HEADER_LEN + payload);
        assert_eq!(u16::from_be_bytes([bytes[10], bytes[11]]), 24);
        assert_eq!(&bytes[12..36], br#"{"format":1,"version":7}"#);
        assert_eq!(u16::from_be_bytes([bytes[36], bytes[37]]), 384);

        let have = Datagram::have(0x0102_0304_0506_0708).encode().unwrap();
        assert_eq!(have.len(), HEADER_LEN + 8 + CRC_LEN);
        assert_eq!(have[4..10], [PROTOCOL, TYPE_HAVE, 0, 0, 0, 8]);
        assert_eq!(have[10..18], [1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(have[18..], crc32(&have[..18]).to_be_bytes());
    }

    #[test]
    fn round_trips() {
        for datagram in [
            sample_pulse(),
            Datagram::pulse(vec![1], vec![2], false, 0),
            Datagram::have(0),
            Datagram::have(u64::MAX),
        ] {
            let bytes = datagram.encode().unwrap();
            assert_eq!(Datagram::decode(&bytes), Ok(datagram));
        }
    }

    #[test]
    fn a_timestamp_and_a_4096_bit_signature_fit() {
        // A pretty-printed record with twenty-digit numbers, the largest genuine one.
        let record = vec![b'x'; 300];
        let datagram = Datagram::pulse(record, vec![0; 512], true, MAX_TTL);
        assert!(datagram.encode().unwrap().len() <= MAX_DATAGRAM);
    }

    #[test]
    fn nothing_over_1200_bytes_is_encoded() {
        let exactly = MAX_DATAGRAM - HEADER_LEN - 4 - 384;
        let fits = Datagram::pulse(vec![b'x'; exactly], vec![0; 384], true, 1);
        assert_eq!(fits.encode().unwrap().len(), MAX_DATAGRAM);
        let over = Datagram::pulse(vec![b'x'; exactly + 1], vec![0; 384], true, 1);
        assert_eq!(over.encode(), Err(EncodeError::Oversized(MAX_DATAGRAM + 1)));
        let huge = Datagram::pulse(vec![b'x'; 70_000], vec![0; 384], true, 1);
        assert!(matches!(huge.encode(), Err(EncodeError::Oversized(_))));
        let ttl = Datagram::pulse(vec![1], vec![1], true, MAX_TTL + 1);
        assert_eq!(ttl.encode(), Err(EncodeError::TtlTooHigh(MAX_TTL + 1)));
        let empty = Datagram::pulse(Vec::new(), vec![1], true, 1);
        assert_eq!(empty.encode(), Err(EncodeError::Empty("record")));
    }

    #[test]
    fn every_truncation_is_refused() {
        for datagram in [sample_pulse(), Datagram::have(9)] {
            let bytes = datagram.encode().unwrap();
            for len in 0..bytes.len() {
                let err = Datagram::decode(&bytes[..len]).unwrap_err();
                assert!(
                    matches!(
                        err,
                        DecodeError::Truncated { .. } | DecodeError::LengthMismatch(_)
                    ),
                    "{len}: {err:?}"
                );
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert_eq!(
                Datagram::decode(&longer),
                Err(DecodeError::LengthMismatch(bytes.len() + 1))
            );
        }
    }

    #[test]
    fn header_fields_are_checked() {
        let good = sample_pulse().encode().unwrap();
        let with = |at: usize, value: u8| {
            let mut bytes = good.clone();
            bytes[at] = value;
            Datagram::decode(&bytes)
        };
        assert_eq!(with(0, b'X'), Err(DecodeError::BadMagic));
        assert_eq!(with(4, 2), Err(DecodeError::UnknownProtocol(2)));
        assert_eq!(with(5, 0), Err(DecodeError::UnknownType(0)));
        assert_eq!(with(5, 3), Err(DecodeError::UnknownType(3)));
        assert_eq!(with(6, 0b10), Err(DecodeError::UnknownFlags(0b10)));
        assert_eq!(with(7, MAX_TTL + 1), Err(DecodeError::TtlTooHigh(17)));
        assert_eq!(
            Datagram::decode(&vec![0; MAX_DATAGRAM + 1]),
            Err(DecodeError::Oversized(MAX_DATAGRAM + 1))
        );
    }

    #[test]
    fn inner_lengths_must_add_up() {
        let good = sample_pulse().encode().unwrap();
        // Record length one more: the signature length is read from the wrong place.
        let mut bytes = good.clone();
        bytes[11] += 1;
        assert!(Datagram::decode(&bytes).is_err());
        // Signature length one less: a byte is left over.
        let mut bytes = good.clone();
        bytes[37] -= 1;
        assert_eq!(
            Datagram::decode(&bytes),
            Err(DecodeError::LengthMismatch(good.len()))
        );
        // Empty record.
        let bytes = [&good[..10], &[0, 0], &good[12..]].concat();
        assert_eq!(Datagram::decode(&bytes), Err(DecodeError::Empty("record")));
    }

    #[test]
    fn a_damaged_have_fails_its_crc() {
        let good = Datagram::have(41).encode().unwrap();
        for at in 0..good.len() {
            for bit in 0..8 {
                let mut bytes = good.clone();
                bytes[at] ^= 1 << bit;
                assert!(
                    Datagram::decode(&bytes).is_err(),
                    "flipping bit {bit} of byte {at} went unnoticed"
                );
            }
        }
        let mut bytes = good.clone();
        bytes[17] ^= 1;
        assert_eq!(Datagram::decode(&bytes), Err(DecodeError::BadCrc));
    }

    /// The seeds and what libFuzzer kept of three minutes of `cargo fuzz run
    /// datagram_decode`: replayed on every test run, with the verdict each
    /// named seed must get.
    #[test]
    fn the_fuzz_corpus_replays() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/datagram_decode");
        let mut named = 0;
        let mut total = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let decoded = Datagram::decode(&bytes);
            if let Ok(datagram) = &decoded {
                assert_eq!(datagram.encode().unwrap(), bytes, "{name}");
            }
            total += 1;
            // Fuzzer finds are named by their sha1; the seeds say what they are.
            if name.len() == 40 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
                continue;
            }
            named += 1;
            let valid = name.starts_with("pulse-") || name == "have" || name == "have-none";
            assert_eq!(decoded.is_ok(), valid, "{name}: {decoded:?}");
        }
        assert!(
            named >= 19 && total > named,
            "{named} seeds of {total} files"
        );
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic_and_decoded_ones_round_trip(
            bytes in proptest::collection::vec(any::<u8>(), 0..1300)
        ) {
            if let Ok(datagram) = Datagram::decode(&bytes) {
                prop_assert_eq!(datagram.encode().unwrap(), bytes);
            }
        }

        #[test]
        fn random_bytes_behind_a_valid_header_never_panic(
            kind in 0u8..4,
            flags in 0u8..3,
            ttl in 0u8..20,
            tail in proptest::collection::vec(any::<u8>(), 0..1200)
        ) {
            let mut bytes = MAGIC.to_vec();
            bytes.extend_from_slice(&[PROTOCOL, kind, flags, ttl]);
            bytes.extend_from_slice(&tail);
            bytes.truncate(MAX_DATAGRAM);
            if let Ok(datagram) = Datagram::decode(&bytes) {
                prop_assert_eq!(datagram.encode().unwrap(), bytes);
            }
        }

        #[test]
        fn encoded_pulses_decode_to_themselves(
            record in proptest::collection::vec(any::<u8>(), 1..600),
            signature in proptest::collection::vec(any::<u8>(), 1..600),
            spread in any::<bool>(),
            ttl in 0..=MAX_TTL,
        ) {
            let datagram = Datagram::pulse(record, signature, spread, ttl);
            match datagram.encode() {
                Ok(bytes) => {
                    prop_assert!(bytes.len() <= MAX_DATAGRAM);
                    prop_assert_eq!(Datagram::decode(&bytes), Ok(datagram));
                }
                Err(EncodeError::Oversized(len)) => prop_assert!(len > MAX_DATAGRAM),
                Err(e) => prop_assert!(false, "{e}"),
            }
        }
    }
}
